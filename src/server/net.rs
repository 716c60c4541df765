//! Connection tasks. They run on the keyspace thread's single-threaded tokio runtime, beside the
//! core task, as Redis's event loop does: a task reads and parses, hands the commands to the core
//! task, and writes back what the core queued on its [`Conn`]. Every handoff is a wakeup on the
//! same thread, never a thread switch.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{watch, Notify};

use super::{Out, ToCore};
use crate::protocol::request::{Limits, Parse, Parser};

pub struct Shared {
    pub core: UnboundedSender<ToCore>,
    pub next_id: AtomicU64,
    pub limits: Limits,
    /// The durable LSN published by the committer (None without persistence).
    pub durable: Option<watch::Receiver<u64>>,
    /// Held replies, released in turn order as the durable LSN advances.
    pub releases: Releases,
    /// The listening sockets, for accepts during a busy script.
    pub listener_fds: Vec<RawFd>,
}

/// Replies held for durability, in the order their turns ran. One task releases them as the
/// committer publishes, writing each connection's reply itself in that order: a group commit
/// that makes several turns durable at once must not let a later turn's reply (a worker's
/// moveToActive) reach its client before an earlier one's (the producer's add), as Redis writes
/// each reply in the loop iteration that produced it.
pub struct Releases {
    released: Cell<u64>,
    held: RefCell<VecDeque<(u64, Rc<Conn>)>>,
}

impl Releases {
    pub fn new(persistent: bool) -> Releases {
        Releases {
            released: Cell::new(if persistent { 0 } else { u64::MAX }),
            held: RefCell::new(VecDeque::new()),
        }
    }

    /// The LSN up to which held replies may leave.
    pub fn released(&self) -> u64 {
        self.released.get()
    }

    /// `conn` holds output until write set `lsn` is durable (called in turn order).
    pub fn hold(&self, lsn: u64, conn: &Rc<Conn>) {
        self.held.borrow_mut().push_back((lsn, conn.clone()));
    }

    /// Writes the held replies of every turn up to `durable`, oldest first; what a socket does
    /// not take now its task writes later.
    fn release(&self, durable: u64) {
        self.released.set(durable);
        loop {
            let next = {
                let mut held = self.held.borrow_mut();
                match held.front() {
                    Some((lsn, _)) if *lsn <= durable => held.pop_front(),
                    _ => None,
                }
            };
            let Some((_, conn)) = next else {
                break;
            };
            conn.write_now(durable);
            conn.wake.notify_one();
        }
    }
}

/// Releases held replies as the committer publishes; everything once it has stopped.
pub async fn release_held(shared: Rc<Shared>) {
    let Some(mut durable) = shared.durable.clone() else {
        return;
    };
    loop {
        let lsn = *durable.borrow_and_update();
        shared.releases.release(lsn);
        if durable.changed().await.is_err() {
            shared.releases.release(u64::MAX);
            return;
        }
    }
}

/// One connection's buffers, shared by its task and the keyspace (both on one thread). The
/// keyspace queues replies here; while a long script holds the thread, it also reads and writes
/// the socket itself, so other clients still get BUSY and SCRIPT KILL still arrives.
pub struct Conn {
    state: RefCell<ConnState>,
    wake: Notify,
    /// The socket, for reads and writes during a busy script (-1: no socket, as in fuzzing).
    fd: RawFd,
    limits: Limits,
}

struct ConnState {
    queue: VecDeque<Out>,
    /// Bytes taken from `queue` in order and not yet written.
    unwritten: BytesMut,
    input: BytesMut,
    parser: Parser,
    /// False after a protocol error: nothing more is read.
    reading: bool,
    /// Closed at once, its output dropped (client-output-buffer-limit).
    aborted: bool,
}

/// What the task must wait for before it can write more.
struct Staged {
    writable: bool,
    held: bool,
    close: bool,
}

type Parsed = (Vec<Vec<Bytes>>, Option<String>);

impl Conn {
    fn new(fd: RawFd, limits: Limits) -> Conn {
        Conn {
            state: RefCell::new(ConnState {
                queue: VecDeque::new(),
                unwritten: BytesMut::new(),
                input: BytesMut::with_capacity(16 * 1024),
                // Redis also caps request sizes before AUTH; here the keyspace enforces
                // authentication, and the parser applies only the general limits.
                parser: Parser::new(true),
                reading: true,
                aborted: false,
            }),
            wake: Notify::new(),
            fd,
            limits,
        }
    }

    /// A connection without a socket: its output is collected with [`Conn::take_output`].
    pub fn detached() -> Rc<Conn> {
        Rc::new(Conn::new(-1, Limits::default()))
    }

    /// Queues output for the connection and wakes its task.
    pub fn send(&self, out: Out) {
        self.state.borrow_mut().queue.push_back(out);
        self.wake.notify_one();
    }

    /// The socket (-1 without one): the Lua debugger talks to its client directly.
    pub fn raw_fd(&self) -> RawFd {
        self.fd
    }

    /// Output queued or staged that the socket has not taken yet (Redis's
    /// clientHasPendingReplies).
    pub fn has_pending_output(&self) -> bool {
        let st = self.state.borrow();
        !st.unwritten.is_empty() || st.queue.iter().any(|o| matches!(o, Out::Data(_)))
    }

    /// Bytes of output the socket has not taken yet (CLIENT LIST omem, output buffer limits).
    pub fn pending_bytes(&self) -> usize {
        let st = self.state.borrow();
        let queued: usize = st
            .queue
            .iter()
            .map(|o| match o {
                Out::Data(d) => d.len(),
                _ => 0,
            })
            .sum();
        st.unwritten.len() + queued
    }

    /// Drops the pending output and closes the connection now, as Redis frees a client past
    /// its output buffer limit.
    pub fn abort(&self) {
        let mut st = self.state.borrow_mut();
        st.aborted = true;
        st.queue.clear();
        st.unwritten = BytesMut::new();
        drop(st);
        self.wake.notify_one();
    }

    /// Every reply byte queued so far (fuzzing and tests without sockets).
    pub fn take_output(&self) -> BytesMut {
        let mut st = self.state.borrow_mut();
        let mut all = std::mem::take(&mut st.unwritten);
        while let Some(out) = st.queue.pop_front() {
            if let Out::Data(d) = out {
                all.extend_from_slice(&d);
            }
        }
        all
    }

    /// Moves queued output into `unwritten`, up to a hold that is not yet durable or a close.
    fn stage(&self, durable: u64) -> Staged {
        let mut st = self.state.borrow_mut();
        let mut staged = Staged {
            writable: false,
            held: false,
            close: false,
        };
        while let Some(front) = st.queue.front() {
            match front {
                Out::Data(_) => {
                    if let Some(Out::Data(d)) = st.queue.pop_front() {
                        st.unwritten.extend_from_slice(&d);
                    }
                }
                Out::Hold(lsn) if *lsn <= durable => {
                    st.queue.pop_front();
                }
                Out::Hold(_) => {
                    staged.held = true;
                    break;
                }
                Out::Close => {
                    staged.close = true;
                    break;
                }
            }
        }
        staged.writable = !st.unwritten.is_empty();
        staged
    }

    /// Writes staged bytes until the socket would block; false once the socket failed.
    fn write_ready(&self, sock: &std::net::TcpStream) -> bool {
        use std::io::Write;
        let mut st = self.state.borrow_mut();
        while !st.unwritten.is_empty() {
            match (&*sock).write(&st.unwritten) {
                Ok(0) => return false,
                Ok(n) => st.unwritten.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Reads what the socket holds and parses every complete command, and says whether the
    /// socket is drained (a read shorter than the room offered, or would-block): the caller
    /// then clears its readiness instead of paying a read that fails with EAGAIN, as Redis
    /// reads once per readable event. None: the peer closed or the read failed.
    fn read_ready(&self) -> Option<(Parsed, bool)> {
        let mut st = self.state.borrow_mut();
        if st.input.capacity() - st.input.len() < 4096 {
            st.input.reserve(16 * 1024);
        }
        match recv_into(self.fd, &mut st.input) {
            Ok((0, _)) => None,
            Ok((_, drained)) => Some((st.parse_all(&self.limits), drained)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                Some(((Vec::new(), None), true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                Some(((Vec::new(), None), false))
            }
            Err(_) => None,
        }
    }

    /// During a busy script: reads and parses whatever has arrived, without waiting.
    pub fn read_now(&self) -> Option<Parsed> {
        if self.fd < 0 || !self.state.borrow().reading {
            return None;
        }
        let mut st = self.state.borrow_mut();
        st.input.reserve(16 * 1024);
        if !matches!(recv_into(self.fd, &mut st.input), Ok((1.., _))) {
            return None;
        }
        let parsed = st.parse_all(&self.limits);
        (!parsed.0.is_empty() || parsed.1.is_some()).then_some(parsed)
    }

    /// During a busy script: writes queued replies as far as the socket takes them now.
    pub fn write_now(&self, durable: u64) {
        if self.fd < 0 {
            return;
        }
        self.stage(durable);
        let mut st = self.state.borrow_mut();
        while !st.unwritten.is_empty() {
            // SAFETY: send reads `len` initialised bytes from the buffer.
            let n = unsafe {
                libc::send(
                    self.fd,
                    st.unwritten.as_ptr().cast(),
                    st.unwritten.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n <= 0 {
                return;
            }
            st.unwritten.advance(n as usize);
        }
    }
}

/// recv(2) into the spare room of `buf`, without waiting: the bytes read (0 at the end of the
/// stream) and whether they were fewer than the room offered.
fn recv_into(fd: RawFd, buf: &mut BytesMut) -> std::io::Result<(usize, bool)> {
    let spare = buf.spare_capacity_mut();
    let room = spare.len();
    // SAFETY: recv writes at most `room` bytes into memory the buffer owns.
    let n = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), room, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: recv initialised the first `n` spare bytes.
    unsafe { buf.set_len(buf.len() + n) };
    Ok((n, n < room))
}

impl ConnState {
    fn parse_all(&mut self, limits: &Limits) -> Parsed {
        let mut cmds = Vec::new();
        loop {
            match self.parser.parse(&mut self.input, limits) {
                Parse::Command(args) => {
                    if !args.is_empty() {
                        cmds.push(args);
                    }
                }
                Parse::Incomplete => return (cmds, None),
                Parse::Error(e) => {
                    self.reading = false;
                    return (cmds, Some(e));
                }
            }
        }
    }
}

pub async fn serve(listener: TcpListener, shared: Rc<Shared>) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Some(connected) = start(stream, addr, &shared) {
            let _ = shared.core.send(connected);
        }
    }
}

/// During a busy script: accepts waiting connections, so they too get BUSY (as in Redis). The
/// messages returned register them with the keyspace right away.
pub fn accept_now(shared: &Rc<Shared>) -> Vec<ToCore> {
    let mut connected = Vec::new();
    for &listener in &shared.listener_fds {
        accept_waiting(listener, shared, &mut connected);
    }
    connected
}

fn accept_waiting(listener: RawFd, shared: &Rc<Shared>, connected: &mut Vec<ToCore>) {
    loop {
        // SAFETY: accept4 on the listening socket; a returned fd is owned by the stream below.
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            return;
        }
        // SAFETY: `fd` is a fresh connected socket nobody else owns.
        let std_stream =
            unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let Ok(stream) = TcpStream::from_std(std_stream) else {
            continue;
        };
        let Ok(addr) = stream.peer_addr() else {
            continue;
        };
        connected.extend(start(stream, addr, shared));
    }
}

/// Spawns the task of a new connection and returns the message that registers it with the
/// keyspace (which may still refuse it: maxclients, protected mode).
fn start(stream: TcpStream, addr: std::net::SocketAddr, shared: &Rc<Shared>) -> Option<ToCore> {
    let _ = stream.set_nodelay(true);
    let shared = shared.clone();
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let local = stream.local_addr().unwrap_or(addr);
    // Readiness is managed by hand (`AsyncFd`): a short read clears it, saving the EAGAIN read.
    // SAFETY: the std stream owns its descriptor and the AsyncFd owns the stream, so the
    // descriptor stays open and the same for the AsyncFd's whole life.
    let registered = stream
        .into_std()
        .and_then(|s| unsafe { AsyncFd::register(s) }.map_err(std::io::Error::from));
    let sock = match registered {
        Ok(sock) => sock,
        Err(e) => {
            tracing::warn!("cannot register a connection: {e}");
            return None;
        }
    };
    let conn = Rc::new(Conn::new(sock.get_ref().as_raw_fd(), shared.limits));
    let connected = ToCore::Connected {
        id,
        addr,
        local,
        out: conn.clone(),
    };
    tokio::task::spawn_local(async move { connection(sock, id, conn, &shared).await });
    Some(connected)
}

async fn connection(sock: AsyncFd<std::net::TcpStream>, id: u64, conn: Rc<Conn>, shared: &Shared) {
    loop {
        if conn.state.borrow().aborted {
            break;
        }
        let staged = conn.stage(shared.releases.released());
        if staged.writable && !conn.write_ready(sock.get_ref()) {
            break;
        }
        let pending = !conn.state.borrow().unwritten.is_empty();
        if staged.close && !pending {
            break;
        }
        let reading = conn.state.borrow().reading;
        tokio::select! {
            ready = sock.readable(), if reading => {
                let Ok(mut guard) = ready else {
                    break;
                };
                let Some(((cmds, error), drained)) = conn.read_ready() else {
                    break;
                };
                if drained {
                    // Safe against a race: tokio keeps the readiness if an event came after
                    // the one this guard saw.
                    guard.clear_ready();
                }
                if !cmds.is_empty() || error.is_some() {
                    let _ = shared.core.send(ToCore::Commands { id, cmds, error });
                }
            }
            ready = sock.writable(), if pending => {
                let Ok(mut guard) = ready else {
                    break;
                };
                // The loop writes next; what the socket does not take then waits for a new
                // writable event.
                guard.clear_ready();
            }
            // Also how a held reply is released (`Releases::release`).
            _ = conn.wake.notified() => {}
        }
    }
    let _ = shared.core.send(ToCore::Closed { id });
}
