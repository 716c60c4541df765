//! Redis's Lua debugger (LDB), as eval.c of Redis 7.0.15 implements it: `SCRIPT DEBUG
//! YES|SYNC` makes the client's next EVAL run with a line hook that stops at steps and
//! breakpoints, sends what it logged as a multi-bulk of status lines straight to the client's
//! socket, and reads debugger commands from that socket (blocking the keyspace thread, as
//! Redis's main thread or forked child is blocked), until the script ends.
//!
//! The state is one per thread, as Redis's global `ldb`: only one session can run at a time
//! (the keyspace thread is held by it).

use std::cell::RefCell;
use std::ffi::c_int;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mlua::ffi;

use super::ldb_show::{c_bytes, cat_value, protocol_to_human};

const BREAKPOINTS_MAX: usize = 64;
const MAX_LEN_DEFAULT: usize = 256;

struct Ldb {
    active: bool,
    fd: RawFd,
    logs: Vec<Vec<u8>>,
    bp: [i32; BREAKPOINTS_MAX],
    bpcount: usize,
    /// Stop at the next line whatever the breakpoints say.
    step: bool,
    /// redis.breakpoint() was called: stop at the next line.
    luabp: bool,
    src: Vec<Vec<u8>>,
    currentline: i32,
    cbuf: Vec<u8>,
    maxlen: usize,
    maxlen_hint_sent: bool,
    /// The script's start or its last stop: the count hook's timeout counts from there.
    started: Instant,
    /// busy-reply-threshold in ms (5000 when 0).
    timelimit: u128,
}

thread_local! {
    static LDB: RefCell<Ldb> = RefCell::new(Ldb {
        active: false,
        fd: -1,
        logs: Vec::new(),
        bp: [0; BREAKPOINTS_MAX],
        bpcount: 0,
        step: false,
        luabp: false,
        src: Vec::new(),
        currentline: 0,
        cbuf: Vec::new(),
        maxlen: MAX_LEN_DEFAULT,
        maxlen_hint_sent: false,
        started: Instant::now(),
        timelimit: 5000,
    });
}

/// Short borrows only: Lua code run from the debugger logs too.
fn with<R>(f: impl FnOnce(&mut Ldb) -> R) -> R {
    LDB.with(|l| f(&mut l.borrow_mut()))
}

/// `ldbEnable`: SCRIPT DEBUG YES/SYNC resets the debugger for the next session.
pub fn enable() {
    with(|d| {
        d.logs.clear();
        d.step = true;
        d.bpcount = 0;
        d.luabp = false;
        d.cbuf.clear();
        d.maxlen = MAX_LEN_DEFAULT;
        d.maxlen_hint_sent = false;
    });
}

/// A debugging session runs.
pub fn active() -> bool {
    with(|d| d.active)
}

/// `ldbIsEnabled`: commands a script runs (and their errors and replies) are logged.
pub fn logging() -> bool {
    with(|d| d.active && d.step)
}

/// `ldbStartSession` (what follows the fork): talks to `fd`, splits the script into lines.
pub fn start(fd: RawFd, body: &[u8], busy_threshold_ms: i64) {
    let mut end = body.len();
    while end > 0 && matches!(body[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let src = if end == 0 {
        Vec::new()
    } else {
        body[..end]
            .split(|&c| c == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    };
    with(|d| {
        d.active = true;
        d.fd = fd;
        d.src = src;
        d.started = Instant::now();
        d.timelimit = if busy_threshold_ms > 0 {
            busy_threshold_ms as u128
        } else {
            5000
        };
    });
}

/// `ldbEndSession`: the last logs and an `<endsession>` mark.
pub fn end() {
    log(b"<endsession>".to_vec());
    send_logs();
    with(|d| {
        d.active = false;
        d.src.clear();
        d.fd = -1;
    });
}

/// `ldbLog`.
pub fn log(entry: Vec<u8>) {
    with(|d| d.logs.push(entry));
}

/// `ldbLogWithMaxLen`: cut to `maxlen`, with a hint the first time.
pub(super) fn log_max(mut entry: Vec<u8>) {
    with(|d| {
        let trimmed = d.maxlen != 0 && entry.len() > d.maxlen;
        if trimmed {
            entry.truncate(d.maxlen);
            entry.extend_from_slice(b" ...");
        }
        d.logs.push(entry);
        if trimmed && !d.maxlen_hint_sent {
            d.maxlen_hint_sent = true;
            d.logs.push(
                b"<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.".to_vec(),
            );
        }
    });
}

/// The `<redis>` line for a command a script runs while stepping.
pub fn log_command(argv: &[bytes::Bytes]) {
    let mut s = b"<redis>".to_vec();
    for (j, a) in argv.iter().enumerate() {
        if j == 10 {
            // Redis counts one fewer than it leaves out.
            s.extend_from_slice(format!(" ... ({} more)", argv.len() - j - 1).as_bytes());
            break;
        }
        s.push(b' ');
        s.extend_from_slice(a);
    }
    log(s);
}

/// `ldbLogRedisReply`: a reply (its RESP bytes) in human form.
pub fn log_reply(resp: &[u8]) {
    let mut s = b"<reply> ".to_vec();
    protocol_to_human(&mut s, resp);
    log_max(s);
}

/// `ldbSendLogs`: every log line as a status, in one multi-bulk, written to the socket now.
fn send_logs() {
    let (fd, proto) = with(|d| {
        let mut proto = format!("*{}\r\n", d.logs.len()).into_bytes();
        for mut l in d.logs.drain(..) {
            for c in l.iter_mut() {
                if *c == b'\r' || *c == b'\n' {
                    *c = b' ';
                }
            }
            proto.push(b'+');
            proto.extend_from_slice(&l);
            proto.extend_from_slice(b"\r\n");
        }
        (d.fd, proto)
    });
    write_all(fd, &proto);
}

/// A blocking write with Redis's 5 s send timeout on the debugging connection; errors are
/// ignored (the next read sees them).
fn write_all(fd: RawFd, mut data: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !data.is_empty() && fd >= 0 {
        // SAFETY: send reads `data.len()` initialised bytes.
        let n = unsafe {
            libc::send(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            data = &data[n as usize..];
            continue;
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as c_int;
        if n == 0 || !would_block() || left == 0 || !wait(fd, libc::POLLOUT, left) {
            return;
        }
    }
}

/// A blocking read of at most 1024 bytes: 0 or less when the client closed or failed.
fn read_some(fd: RawFd, buf: &mut [u8; 1024]) -> isize {
    loop {
        if fd < 0 {
            return -1;
        }
        // SAFETY: recv writes at most 1024 bytes into the buffer.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 || !would_block() || !wait(fd, libc::POLLIN, -1) {
            return n;
        }
    }
}

fn would_block() -> bool {
    let e = std::io::Error::last_os_error().raw_os_error();
    matches!(e, Some(libc::EAGAIN) | Some(libc::EINTR))
}

/// Waits for the socket (-1: forever); false on timeout or error.
fn wait(fd: RawFd, events: i16, ms: c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            return true;
        }
        if r == 0 || !would_block() {
            return false;
        }
    }
}

/// The debugger's line hook, installed for the session in place of the busy-script hook.
///
/// # Safety
/// Called by Lua with a live state; it raises Lua errors (longjmp) only after every Rust value
/// of this frame is gone.
pub unsafe extern "C-unwind" fn hook(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    let Some(msg) = hook_body(l, ar) else {
        return;
    };
    raise(l, &msg);
}

/// `luaPushError` + `luaError`: an error table `{err="ERR <msg>"}` raised.
unsafe fn raise(l: *mut ffi::lua_State, msg: &str) -> ! {
    let text = format!("ERR {msg}");
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushlstring(l, c"err".as_ptr(), 3);
    ffi::lua_pushlstring(l, text.as_ptr().cast(), text.len());
    drop(text);
    ffi::lua_rawset(l, -3);
    ffi::lua_error(l)
}

/// `luaLdbLineHook`; returns an error to raise in the script.
unsafe fn hook_body(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) -> Option<String> {
    ffi::lua_getstack(l, 0, ar);
    ffi::lua_getinfo(l, c"Sl".as_ptr(), ar);
    if c_bytes((*ar).source) == b"=berth" {
        // Berth's own Lua (the runner, pcall's wrapper) is no line of anything Redis runs.
        return None;
    }
    let line = (*ar).currentline;
    let short = c_bytes((*ar).short_src.as_ptr());
    let (bp, step, luabp) = with(|d| {
        d.currentline = line;
        (is_breakpoint(d, line) || d.luabp, d.step, d.luabp)
    });
    if !short.windows(11).any(|w| w == b"user_script") {
        return None;
    }
    let mut timeout = false;
    if (*ar).event == ffi::LUA_HOOKCOUNT && !step && !bp {
        if !with(|d| d.started.elapsed().as_millis() >= d.timelimit) {
            return None;
        }
        timeout = true;
    }
    if !(step || bp || timeout) {
        return None;
    }
    let reason = if bp {
        if luabp {
            "redis.breakpoint() called"
        } else {
            "break point"
        }
    } else if timeout {
        "timeout reached, infinite loop?"
    } else {
        "step over"
    };
    with(|d| {
        d.step = false;
        d.luabp = false;
    });
    log(format!("* Stopped at {line}, stop reason = {reason}").into_bytes());
    log_source_line(line);
    send_logs();
    let outcome = super::ldb_repl::repl(l);
    with(|d| d.started = Instant::now());
    match outcome {
        Err(super::ldb_repl::End::Closed) if timeout => {
            Some("timeout during Lua debugging with client closing connection".into())
        }
        Err(super::ldb_repl::End::Raise(msg)) => Some(msg),
        _ => None,
    }
}

fn is_breakpoint(d: &Ldb, line: i32) -> bool {
    d.bp[..d.bpcount].contains(&line)
}

/// `ldbLogSourceLine`.
pub(super) fn log_source_line(lnum: i32) {
    let entry = with(|d| {
        let text: &[u8] = match usize::try_from(lnum - 1).ok().and_then(|i| d.src.get(i)) {
            Some(t) => t,
            None => b"<out of range source code line>",
        };
        let prefix = match (d.currentline == lnum, is_breakpoint(d, lnum)) {
            (true, true) => "->#",
            (true, false) => "-> ",
            (false, true) => "  #",
            (false, false) => "   ",
        };
        let mut s = format!("{prefix}{lnum:<3} ").into_bytes();
        s.extend_from_slice(text);
        s
    });
    log(entry);
}

/// `ldbList`: the whole source (`around` 0) or the lines within `context` of `around`.
pub(super) fn list(around: i32, context: i32) {
    let lines = with(|d| d.src.len() as i32);
    for j in 1..=lines {
        if around != 0 && (around - j).abs() > context {
            continue;
        }
        log_source_line(j);
    }
}

/// The current line.
pub(super) fn current_line() -> i32 {
    with(|d| d.currentline)
}

/// Reads the next debugger command from the client; `Err(None)`: the client is gone,
/// `Err(Some(msg))`: an error to raise.
pub(super) fn read_command() -> Result<Vec<Vec<u8>>, Option<&'static str>> {
    loop {
        match with(|d| super::ldb_repl::parse(&d.cbuf)) {
            super::ldb_repl::Parsed::Command(argv) => {
                with(|d| d.cbuf.clear());
                return Ok(argv);
            }
            super::ldb_repl::Parsed::Error => return Err(Some("protocol error")),
            super::ldb_repl::Parsed::More => {}
        }
        let mut buf = [0u8; 1024];
        let n = read_some(with(|d| d.fd), &mut buf);
        if n <= 0 {
            // The script goes on without the client.
            with(|d| {
                d.step = false;
                d.bpcount = 0;
            });
            return Err(None);
        }
        let overflow = with(|d| {
            d.cbuf.extend_from_slice(&buf[..n as usize]);
            if d.cbuf.len() > 1 << 20 {
                d.cbuf.clear();
                return true;
            }
            false
        });
        if overflow {
            return Err(Some("max client buffer reached"));
        }
    }
}

/// `redis.breakpoint()`.
///
/// # Safety
/// A Lua C function.
pub unsafe extern "C-unwind" fn lua_breakpoint(l: *mut ffi::lua_State) -> c_int {
    let active = with(|d| {
        if d.active {
            d.luabp = true;
        }
        d.active
    });
    ffi::lua_pushboolean(l, active as c_int);
    1
}

/// `redis.debug(...)`: logs its arguments.
///
/// # Safety
/// A Lua C function.
pub unsafe extern "C-unwind" fn lua_debug(l: *mut ffi::lua_State) -> c_int {
    let Some(line) = with(|d| d.active.then_some(d.currentline)) else {
        return 0;
    };
    let argc = ffi::lua_gettop(l);
    let mut s = format!("<debug> line {line}: ").into_bytes();
    for i in 1..=argc {
        cat_value(&mut s, l, i);
        if i != argc {
            s.extend_from_slice(b", ");
        }
    }
    log(s);
    0
}

/// Sends what the last debugger command logged.
pub(super) fn send() {
    send_logs();
}

/// `maxlen [len]`.
pub(super) fn maxlen(argv: &[Vec<u8>]) {
    let entry = with(|d| {
        if argv.len() == 2 {
            let mut v = super::ldb_repl::atoi(&argv[1]);
            d.maxlen_hint_sent = true;
            if v != 0 && v <= 60 {
                v = 60;
            }
            d.maxlen = v as usize;
        }
        if d.maxlen != 0 {
            format!(
                "<value> replies are truncated at {} bytes.",
                d.maxlen as i32
            )
        } else {
            "<value> replies are unlimited.".to_string()
        }
    });
    log(entry.into_bytes());
}

/// `break`: list, add (`n`), remove (`-n`) or clear (`0`) breakpoints.
pub(super) fn breakpoints(argv: &[Vec<u8>]) {
    if argv.len() == 1 {
        let bps = with(|d| d.bp[..d.bpcount].to_vec());
        if bps.is_empty() {
            log(b"No breakpoints set. Use 'b <line>' to add one.".to_vec());
            return;
        }
        log(format!("{} breakpoints set:", bps.len()).into_bytes());
        for b in bps {
            log_source_line(b);
        }
        return;
    }
    for arg in &argv[1..] {
        let Some(line) = super::ldb_repl::string2l(arg) else {
            let mut s = b"Invalid argument:'".to_vec();
            s.extend_from_slice(arg);
            s.push(b'\'');
            log(s);
            continue;
        };
        if line == 0 {
            with(|d| d.bpcount = 0);
            log(b"All breakpoints removed.".to_vec());
        } else if line > 0 {
            match with(|d| add_breakpoint(d, line)) {
                None => log(b"Too many breakpoints set.".to_vec()),
                Some(true) => list(line as i32, 1),
                Some(false) => log(b"Wrong line number.".to_vec()),
            }
        } else if with(|d| del_breakpoint(d, -line)) {
            log(b"Breakpoint removed.".to_vec());
        } else {
            log(b"No breakpoint in the specified line.".to_vec());
        }
    }
}

/// None when the table is full; false for a line out of range or already set.
fn add_breakpoint(d: &mut Ldb, line: i64) -> Option<bool> {
    if d.bpcount == BREAKPOINTS_MAX {
        return None;
    }
    if line <= 0 || line > d.src.len() as i64 {
        return Some(false);
    }
    let line = line as i32;
    if is_breakpoint(d, line) {
        return Some(false);
    }
    d.bp[d.bpcount] = line;
    d.bpcount += 1;
    Some(true)
}

/// Redis's `ldbDelBreakpoint` moves `bpcount - j` bytes, not entries: the same bytes move
/// here, so the breakpoints left are the ones Redis leaves.
fn del_breakpoint(d: &mut Ldb, line: i64) -> bool {
    let Some(j) = d.bp[..d.bpcount].iter().position(|&b| b as i64 == line) else {
        return false;
    };
    d.bpcount -= 1;
    let mut bytes: Vec<u8> = d.bp.iter().flat_map(|b| b.to_ne_bytes()).collect();
    let n = d.bpcount - j;
    bytes.copy_within((j + 1) * 4..(j + 1) * 4 + n, j * 4);
    for (i, c) in bytes.chunks(4).enumerate() {
        d.bp[i] = i32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
    }
    true
}

/// Stop at the next line (`step`); also what makes `redis <cmd>` log its command and reply.
pub(super) fn set_step(on: bool) {
    with(|d| d.step = on);
}
