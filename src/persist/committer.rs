//! The committer thread: appends each write set to the redo log (`redo.rs`), as many as are
//! waiting in one write (group commit), fdatasyncs as `appendfsync` says, then publishes the
//! LSN whose replies may leave. It keeps the net effect of the write sets since the last
//! checkpoint, one op per key, and hands it to the checkpointer thread (`checkpoint.rs`) every
//! `checkpoint-interval` seconds or `checkpoint-log-size` bytes of log. It never touches the
//! in-memory data, and never waits for the store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::checkpoint::{self, wait_or_give_up, Job, Reopen, ToCheckpointer};
use super::redo::{self, Segment};
use super::store::{Op, Store};

pub const ALWAYS: u8 = 0;
pub const EVERYSEC: u8 = 1;
pub const NO: u8 = 2;

pub fn mode_of(s: &str) -> u8 {
    match s {
        "everysec" => EVERYSEC,
        "no" => NO,
        _ => ALWAYS,
    }
}

/// Records of a dead value to delete.
#[derive(Debug)]
pub enum Gc {
    /// A list's index range under a version.
    Range(u64, i64, i64),
    /// Every record under a version (prefix scan, background only).
    Version(u64),
    /// Every key of a space (and their versions).
    Space(u64),
}

pub struct WriteSet {
    pub lsn: u64,
    pub ops: Vec<Op>,
    pub gc: Vec<Gc>,
    /// SAVE / BGSAVE / BGREWRITEAOF: sync before publishing whatever the mode.
    pub sync: bool,
}

/// State shared by the keyspace thread, the committer and the connection tasks.
pub struct Status {
    /// The last LSN whose reply may leave (durable under `always`, applied otherwise).
    pub durable: watch::Sender<u64>,
    pub durable_now: AtomicU64,
    pub mode: AtomicU8,
    /// A commit is failing (MISCONF); the reason.
    pub failing: AtomicBool,
    /// Stop retrying a failing store and stop writing (SHUTDOWN NOSAVE/FORCE, SIGTERM grace).
    pub give_up: AtomicBool,
    /// How long a stop waits for a failing store to recover (`shutdown-timeout`).
    pub grace_ms: AtomicU64,
    /// Retries of a failing log so far, and times it recovered (INFO berth_log_retries,
    /// berth_log_recoveries).
    pub retries: AtomicU64,
    pub recoveries: AtomicU64,
    /// The same for the store behind checkpoints (INFO berth_store_*).
    pub store_retries: AtomicU64,
    pub store_recoveries: AtomicU64,
    pub error: Mutex<String>,
    /// Unix seconds of the last successful sync.
    pub last_sync: AtomicI64,
    pub synced_lsn: AtomicU64,
    pub disk_size: AtomicU64,
    pub gc_pending: AtomicU64,
    pub batches: AtomicU64,
    pub syncs: AtomicU64,
    /// The store failed and the checkpointer is retrying (writes go on: the log has them).
    pub store_failing: AtomicBool,
    /// A checkpoint is in progress; the next one waits for it.
    pub checkpoint_busy: AtomicBool,
    /// The LSN the store is up to date with.
    pub checkpoint_lsn: AtomicU64,
    pub checkpoints: AtomicU64,
    /// Records written to the store by checkpoints, and deletes skipped (never in the store).
    pub checkpoint_records: AtomicU64,
    pub checkpoint_skipped: AtomicU64,
    /// How long the last checkpoint took.
    pub checkpoint_ms: AtomicU64,
    /// `checkpoint-interval` (ms) and `checkpoint-log-size` (bytes), set by the keyspace thread.
    pub checkpoint_interval_ms: AtomicU64,
    pub checkpoint_log_size: AtomicU64,
    /// Bytes of log on disk, and of log written since the last checkpoint began.
    pub log_bytes: AtomicU64,
    pub log_records: AtomicU64,
    /// Microseconds spent in log fdatasync, in total (INFO berth_log_sync_us).
    pub sync_us: AtomicU64,
    /// Bytes of records in the last segment closed (sizes the next spare).
    pub last_segment_bytes: AtomicU64,
    /// A zero-filled spare segment is waiting (set by the checkpointer, cleared by a rotation).
    pub spare_ready: AtomicBool,
}

impl Status {
    pub fn new(mode: u8, lsn: u64) -> Status {
        Status {
            durable: watch::channel(lsn).0,
            durable_now: AtomicU64::new(lsn),
            mode: AtomicU8::new(mode),
            failing: AtomicBool::new(false),
            give_up: AtomicBool::new(false),
            grace_ms: AtomicU64::new(10_000),
            retries: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            store_retries: AtomicU64::new(0),
            store_recoveries: AtomicU64::new(0),
            error: Mutex::new(String::new()),
            last_sync: AtomicI64::new(crate::server::now_ms() / 1000),
            synced_lsn: AtomicU64::new(lsn),
            disk_size: AtomicU64::new(0),
            gc_pending: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            store_failing: AtomicBool::new(false),
            checkpoint_busy: AtomicBool::new(false),
            checkpoint_lsn: AtomicU64::new(lsn),
            checkpoints: AtomicU64::new(0),
            checkpoint_records: AtomicU64::new(0),
            checkpoint_skipped: AtomicU64::new(0),
            checkpoint_ms: AtomicU64::new(0),
            checkpoint_interval_ms: AtomicU64::new(10_000),
            checkpoint_log_size: AtomicU64::new(64 << 20),
            log_bytes: AtomicU64::new(0),
            log_records: AtomicU64::new(0),
            sync_us: AtomicU64::new(0),
            last_segment_bytes: AtomicU64::new(0),
            spare_ready: AtomicBool::new(false),
        }
    }

    /// Where the LSNs continue after a restart (the last one in the store or the log).
    pub fn start_at(&self, lsn: u64) {
        self.checkpoint_lsn.store(lsn, Ordering::Relaxed);
        self.synced_lsn.store(lsn, Ordering::Relaxed);
        self.publish(lsn);
    }

    fn publish(&self, lsn: u64) {
        self.durable_now.store(lsn, Ordering::Release);
        self.durable.send_replace(lsn);
    }

    fn fail(&self, what: &str, e: &std::io::Error) {
        // The OS's text alone, as Redis prints strerror(errno).
        let text = e.to_string();
        let text = match text.rfind(" (os error ") {
            Some(i) if text.ends_with(')') => text[..i].to_string(),
            _ => text,
        };
        *self.error.lock().expect("lock") = text;
        if !self.failing.swap(true, Ordering::SeqCst) {
            tracing::error!("persistence: {what} failed: {e}; retrying, writes refused");
        }
    }

    fn recovered(&self) {
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        self.failing.store(false, Ordering::SeqCst);
    }
}

/// The log side of the committer: the segment being appended to, the segments written since
/// the last checkpoint began, and what has not been synced yet.
struct Log {
    dir: PathBuf,
    seg: Segment,
    /// Earlier segments not yet handed to a checkpoint, with their bytes of records.
    closed: Vec<(PathBuf, u64)>,
    /// Bytes of log written since the last checkpoint began.
    since_checkpoint: u64,
    /// Records written since the last successful sync. A failed write or fsync leaves the
    /// file's state unknown (the kernel may drop the dirty pages), so recovery writes these
    /// again into a new segment.
    unsynced: Vec<u8>,
    /// The last LSN written.
    lsn: u64,
    st: Arc<Status>,
    /// Told to give up while failing: nothing more is written.
    stopped: bool,
}

impl Log {
    fn write(&mut self, buf: &[u8], lsn: u64) {
        if self.stopped {
            return;
        }
        if let Err(e) = self.try_write(buf, lsn) {
            self.st.fail("write", &e);
            self.recover();
        }
    }

    /// Appends `buf` (write sets up to `lsn`); on an error the records stay in `unsynced`
    /// for `recover`.
    fn try_write(&mut self, buf: &[u8], lsn: u64) -> std::io::Result<()> {
        self.unsynced.extend_from_slice(buf);
        self.lsn = lsn;
        self.since_checkpoint += buf.len() as u64;
        self.st
            .log_bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.seg.write(buf)
    }

    fn sync(&mut self) {
        if self.stopped || self.unsynced.is_empty() {
            return;
        }
        if let Err(e) = self.try_sync() {
            self.st.fail("fsync", &e);
            self.recover();
            if !self.stopped {
                self.mark_synced();
            }
        }
    }

    /// fdatasyncs the segment; on an error `unsynced` keeps what `recover` must write again.
    fn try_sync(&mut self) -> std::io::Result<()> {
        let started = Instant::now();
        let synced = self.seg.sync();
        self.st
            .sync_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.st.syncs.fetch_add(1, Ordering::Relaxed);
        synced?;
        self.unsynced.clear();
        self.mark_synced();
        Ok(())
    }

    /// The segment is full (or a plain file) and a spare is ready: appends past the end would
    /// change the file's size, so every fdatasync would write the inode too.
    fn wants_spare(&self) -> bool {
        self.seg.bytes >= self.seg.capacity && self.st.spare_ready.load(Ordering::Acquire)
    }

    /// Moves to the spare when `wants_spare`, and asks the checkpointer for the next one.
    fn move_to_spare(&mut self, ckpt_tx: &std::sync::mpsc::Sender<ToCheckpointer>) {
        if !self.wants_spare() || !self.unsynced.is_empty() {
            return;
        }
        match self.rotate() {
            Ok(()) => {
                let _ = ckpt_tx.send(None);
            }
            Err(e) => tracing::warn!("redo log: cannot open a new segment ({e})"),
        }
    }

    fn mark_synced(&self) {
        self.st.synced_lsn.store(self.lsn, Ordering::Relaxed);
        self.st
            .last_sync
            .store(crate::server::now_ms() / 1000, Ordering::Relaxed);
    }

    /// Opens the next segment; the current one joins those the next checkpoint covers.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.st.spare_ready.store(false, Ordering::Release);
        let next = Segment::create(&self.dir, self.seg.number + 1)?;
        let old = std::mem::replace(&mut self.seg, next);
        self.st
            .last_segment_bytes
            .store(old.bytes, Ordering::Relaxed);
        self.closed.push((old.path(), old.bytes));
        Ok(())
    }

    /// After a failed write or sync: a new segment with every record not known to be durable,
    /// synced, retried with a growing pause until it succeeds or the committer gives up.
    fn recover(&mut self) {
        let mut delay = 10;
        loop {
            if wait_or_give_up(&self.st.give_up, delay) {
                self.stopped = true;
                tracing::warn!(
                    "persistence: giving up on the failing log; {} bytes of write sets that \
                     were never acknowledged are not written",
                    self.unsynced.len()
                );
                return;
            }
            delay = (delay * 2).min(1000);
            self.st.retries.fetch_add(1, Ordering::Relaxed);
            let retried = self.rotate().and_then(|_| {
                let unsynced = std::mem::take(&mut self.unsynced);
                let done = self.seg.write(&unsynced).and_then(|_| self.seg.sync());
                self.unsynced = unsynced;
                done
            });
            match retried {
                Ok(()) => {
                    tracing::warn!("persistence: the log accepts writes again");
                    self.unsynced.clear();
                    self.st.recovered();
                    return;
                }
                Err(e) => self.st.fail("write", &e),
            }
        }
    }
}

/// The net effect of the write sets since the last checkpoint began. Only the committer
/// thread folds into it, outside the committer's lock, from the write sets' ops queued in
/// `Committer::unfolded` (in LSN order).
#[derive(Default)]
struct Delta {
    ops: HashMap<Vec<u8>, Option<Vec<u8>>, foldhash::fast::RandomState>,
    gc: Vec<Gc>,
}

impl Delta {
    fn fold(&mut self, unfolded: Vec<(Vec<Op>, Vec<Gc>)>) {
        for (ops, gc) in unfolded {
            self.ops.extend(ops);
            self.gc.extend(gc);
        }
    }
}

/// Ops of commits on the keyspace thread waiting to be folded past which it nudges the
/// committer thread.
const UNFOLDED_NUDGE: usize = 8192;

/// Under `always`: how long a group may wait for more write sets in all, the longest gap
/// between two, and from how many write sets in the last group on it waits (`append_group`).
const GATHER: Duration = Duration::from_micros(400);
const GAP: Duration = Duration::from_micros(50);
const GATHER_FROM: u64 = 3;

/// What the keyspace thread sends the committer thread: a write set, or `None` to make it look
/// at the log now (a commit on the keyspace thread failed and needs recovering, or a
/// checkpoint is due).
pub type ToCommitter = Option<WriteSet>;

/// The committer's state: the log, the delta since the last checkpoint and when to sync and
/// checkpoint. The committer thread holds it while it commits a group; the keyspace thread may
/// take it for a commit of its own when nothing else is queued (`commit_inline`).
pub struct Committer {
    log: Log,
    /// Write sets' ops and dead values not yet folded into the delta, oldest first.
    unfolded: Vec<(Vec<Op>, Vec<Gc>)>,
    unfolded_ops: usize,
    buf: Vec<u8>,
    last_sync: Instant,
    last_checkpoint: Instant,
    want_checkpoint: bool,
    /// Write sets in the last group (1 for a commit on the keyspace thread).
    last_group: u64,
    ckpt_tx: std::sync::mpsc::Sender<ToCheckpointer>,
    /// A write or sync on the keyspace thread failed: the committer thread recovers the log.
    broken: bool,
    /// An inline commit was slow (`SLOW_INLINE`): commits go to the committer thread until then.
    inline_paused_until: Option<Instant>,
}

/// An append + fdatasync on the keyspace thread slower than this sends the next commits to the
/// committer thread for `INLINE_PAUSE` (a disk this slow would stall every client in turn).
const SLOW_INLINE: Duration = Duration::from_millis(5);
const INLINE_PAUSE: Duration = Duration::from_secs(1);

/// Where the committer's state lives once the committer has opened its first segment; empty
/// before that and after it stopped.
pub type Slot = Arc<Mutex<Option<Committer>>>;

/// What `commit_inline` did with a write set.
pub enum Inline {
    /// Written, synced and published.
    Done,
    /// Written, but the log failed or a checkpoint is due: the committer thread must look.
    Nudge,
    /// Not taken (something is queued, or the log is failing): send it to the committer.
    Declined(WriteSet),
}

impl Committer {
    /// How long the committer thread may sleep before it has timed work to do.
    fn wait(&self) -> Duration {
        let st = &self.log.st;
        let interval = Duration::from_millis(st.checkpoint_interval_ms.load(Ordering::Relaxed));
        // At most a second: with commits on the keyspace thread nothing else wakes this
        // thread, and CONFIG SET may have shortened the interval.
        let mut wait = interval
            .saturating_sub(self.last_checkpoint.elapsed())
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        if !self.log.unsynced.is_empty() && st.mode.load(Ordering::Relaxed) == EVERYSEC {
            wait = wait.min(Duration::from_millis(1000).saturating_sub(self.last_sync.elapsed()));
        }
        wait
    }

    /// Commits `first` and every write set waiting behind it as one group.
    fn commit_group(&mut self, first: WriteSet, rx: &Receiver<ToCommitter>) {
        let st = self.log.st.clone();
        let mode = st.mode.load(Ordering::Relaxed);
        // Gathers only when the last group showed concurrent writers: a client alone never
        // waits.
        let gather = (mode == ALWAYS && self.last_group >= GATHER_FROM).then_some(GATHER);
        let (lsn, force, n) = append_group(
            first,
            rx,
            &mut self.log,
            &mut self.unfolded,
            &mut self.buf,
            gather,
        );
        self.last_group = n;
        st.batches.fetch_add(1, Ordering::Relaxed);
        let due = match mode {
            ALWAYS => true,
            EVERYSEC => self.last_sync.elapsed().as_secs() >= 1,
            // Under `no` the OS decides; a bound keeps the retry buffer small.
            _ => self.log.unsynced.len() > 64 << 20,
        };
        if due || force {
            self.log.sync();
            self.last_sync = Instant::now();
        }
        if self.log.stopped {
            return;
        }
        st.publish(lsn);
        self.log.move_to_spare(&self.ckpt_tx);
        self.want_checkpoint |= force;
    }

    /// Under `appendfsync always`, with no write set queued before it and the log healthy:
    /// appends and syncs `ws` on the calling thread (the keyspace thread, at the end of its
    /// loop turn, as Redis's flushAppendOnlyFile does), so its replies leave in the same turn
    /// without waking two threads. A failure is left to the committer thread to recover.
    pub fn commit_inline(&mut self, ws: WriteSet) -> Inline {
        let st = self.log.st.clone();
        if self.broken
            || self.log.stopped
            || self.inline_paused_until.is_some_and(|t| Instant::now() < t)
            || self.log.lsn + 1 != ws.lsn
            || st.mode.load(Ordering::Relaxed) != ALWAYS
            || st.failing.load(Ordering::Relaxed)
        {
            return Inline::Declined(ws);
        }
        self.buf.clear();
        redo::encode(&mut self.buf, ws.lsn, &ws.ops);
        // Folded by the committer thread (a hash map insert per op is a good part of a
        // write's cost): this thread only queues them.
        self.unfolded_ops += ws.ops.len();
        self.unfolded.push((ws.ops, ws.gc));
        self.want_checkpoint |= ws.sync;
        self.last_group = 1;
        st.log_records.fetch_add(1, Ordering::Relaxed);
        st.batches.fetch_add(1, Ordering::Relaxed);
        let buf = std::mem::take(&mut self.buf);
        let started = Instant::now();
        let done = self
            .log
            .try_write(&buf, ws.lsn)
            .and_then(|_| self.log.try_sync());
        self.buf = buf;
        self.last_sync = Instant::now();
        // A slow disk must not freeze the keyspace thread: reads and other clients' commands
        // go on while the committer thread waits for it instead.
        if self.last_sync - started > SLOW_INLINE {
            self.inline_paused_until = Some(self.last_sync + INLINE_PAUSE);
        }
        if let Err(e) = done {
            st.fail("write", &e);
            self.broken = true;
            return Inline::Nudge;
        }
        st.publish(ws.lsn);
        if self.checkpoint_due() || self.log.wants_spare() || self.unfolded_ops > UNFOLDED_NUDGE {
            return Inline::Nudge;
        }
        Inline::Done
    }

    fn take_unfolded(&mut self) -> Vec<(Vec<Op>, Vec<Gc>)> {
        self.unfolded_ops = 0;
        std::mem::take(&mut self.unfolded)
    }

    fn checkpoint_due(&self) -> bool {
        let st = &self.log.st;
        let interval = Duration::from_millis(st.checkpoint_interval_ms.load(Ordering::Relaxed));
        (self.want_checkpoint
            || self.last_checkpoint.elapsed() >= interval
            || self.log.since_checkpoint >= st.checkpoint_log_size.load(Ordering::Relaxed))
            && !st.checkpoint_busy.load(Ordering::Acquire)
    }

    /// The committer thread's timed work: recovering a log a keyspace-thread commit left
    /// broken, everysec syncs, the move to a ready spare, checkpoints.
    fn housekeeping(&mut self, delta: &mut Delta) {
        let st = self.log.st.clone();
        if self.broken {
            self.broken = false;
            self.log.recover();
            if !self.log.stopped {
                self.log.mark_synced();
                st.publish(self.log.lsn);
            }
        }
        if !self.log.unsynced.is_empty()
            && st.mode.load(Ordering::Relaxed) == EVERYSEC
            && self.last_sync.elapsed().as_millis() >= 1000
        {
            self.log.sync();
            self.last_sync = Instant::now();
        }
        self.log.move_to_spare(&self.ckpt_tx);
        if self.checkpoint_due() {
            delta.fold(self.take_unfolded());
            if start_checkpoint(&mut self.log, delta, &self.ckpt_tx) {
                self.want_checkpoint = false;
            }
            self.last_checkpoint = Instant::now();
        }
    }
}

/// Runs the committer; the checkpointer runs on a thread of its own, started here with the
/// store. `next_segment` numbers the first segment this run opens. The committer's state is
/// in `slot` while it runs.
pub fn run(
    store: Box<dyn Store>,
    dir: PathBuf,
    next_segment: u64,
    rx: Receiver<ToCommitter>,
    st: Arc<Status>,
    reopen: Option<Reopen>,
    slot: Slot,
) {
    let (ckpt_tx, ckpt_rx) = std::sync::mpsc::channel::<ToCheckpointer>();
    let ckpt_st = st.clone();
    let ckpt_dir = dir.clone();
    let checkpointer = std::thread::Builder::new()
        .name("checkpointer".into())
        .spawn(move || checkpoint::run(store, ckpt_dir, ckpt_rx, ckpt_st, reopen))
        .expect("spawn the checkpointer");
    let seg = loop {
        match Segment::create(&dir, next_segment) {
            Ok(seg) => break seg,
            Err(e) => {
                st.fail("create the log", &e);
                if wait_or_give_up(&st.give_up, 500) {
                    return;
                }
            }
        }
    };
    if st.failing.load(Ordering::SeqCst) {
        st.recovered();
    }
    let log = Log {
        dir,
        seg,
        closed: Vec::new(),
        since_checkpoint: 0,
        unsynced: Vec::new(),
        lsn: st.durable_now.load(Ordering::Acquire),
        st: st.clone(),
        stopped: false,
    };
    *slot.lock().expect("lock") = Some(Committer {
        log,
        unfolded: Vec::new(),
        unfolded_ops: 0,
        buf: Vec::new(),
        last_sync: Instant::now(),
        last_checkpoint: Instant::now(),
        want_checkpoint: false,
        last_group: 0,
        ckpt_tx,
        broken: false,
        inline_paused_until: None,
    });
    let mut delta = Delta::default();
    loop {
        let wait = slot
            .lock()
            .expect("lock")
            .as_ref()
            .expect("committer")
            .wait();
        let msg = match rx.recv_timeout(wait) {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut guard = slot.lock().expect("lock");
        let c = guard.as_mut().expect("committer");
        if let Some(first) = msg {
            c.commit_group(first, &rx);
        }
        if c.log.stopped {
            break;
        }
        let unfolded = c.take_unfolded();
        drop(guard);
        // Outside the lock, so commits on the keyspace thread go on meanwhile.
        delta.fold(unfolded);
        let mut guard = slot.lock().expect("lock");
        guard.as_mut().expect("committer").housekeeping(&mut delta);
    }
    let mut c = slot.lock().expect("lock").take().expect("committer");
    if !c.log.stopped {
        // A clean stop leaves the store up to date, so the next start replays nothing.
        c.log.sync();
        delta.fold(c.take_unfolded());
        start_checkpoint(&mut c.log, &mut delta, &c.ckpt_tx);
    }
    let stopped = c.log.stopped;
    drop(c);
    let _ = checkpointer.join();
    if stopped {
        tracing::warn!("persistence: committer stopped with the log failing");
    }
}

/// Appends the first write set and every one waiting behind it as one write.
///
/// With `gather`, it keeps taking write sets while they keep coming (each within `GAP` of the
/// last, for at most `gather` in all): with many clients in flight, their next commands arrive
/// spread over the time it takes to answer them, and a short wait puts more of them behind one
/// fdatasync (MySQL's binlog_group_commit_sync_delay, PostgreSQL's commit_delay). Returns the
/// last LSN, whether one asked for a sync (SAVE, BGSAVE, BGREWRITEAOF), and how many write sets
/// went in.
fn append_group(
    first: WriteSet,
    rx: &Receiver<ToCommitter>,
    log: &mut Log,
    unfolded: &mut Vec<(Vec<Op>, Vec<Gc>)>,
    buf: &mut Vec<u8>,
    gather: Option<Duration>,
) -> (u64, bool, u64) {
    buf.clear();
    let started = Instant::now();
    let mut next = Some(first);
    let (mut lsn, mut force, mut records) = (0, false, 0);
    while let Some(ws) = next.take() {
        redo::encode(buf, ws.lsn, &ws.ops);
        lsn = ws.lsn;
        force |= ws.sync;
        records += 1;
        unfolded.push((ws.ops, ws.gc));
        if buf.len() < 16 << 20 {
            // A nudge (None) in the queue ends the group; housekeeping follows it anyway.
            next = rx.try_recv().ok().flatten();
            if next.is_none() && gather.is_some_and(|g| started.elapsed() < g) {
                next = rx.recv_timeout(GAP).ok().flatten();
            }
        }
    }
    log.st.log_records.fetch_add(records, Ordering::Relaxed);
    log.write(buf, lsn);
    (lsn, force, records)
}

/// Hands the delta so far to the checkpointer and starts a new segment for what follows.
fn start_checkpoint(
    log: &mut Log,
    delta: &mut Delta,
    tx: &std::sync::mpsc::Sender<ToCheckpointer>,
) -> bool {
    if log.since_checkpoint == 0 && delta.gc.is_empty() {
        return true;
    }
    // Synced first: a failed write after this point rewrites only records of the new segment.
    log.sync();
    // A segment less than half full is kept (replay skips what the checkpoint covers), so a
    // trickle of writes does not use up a preallocated segment every checkpoint.
    if log.seg.bytes >= log.seg.capacity / 2 {
        if let Err(e) = log.rotate() {
            tracing::warn!("redo log: cannot open a new segment ({e}); the checkpoint waits");
            return false;
        }
    }
    let job = Job {
        ops: std::mem::take(&mut delta.ops),
        lsn: log.lsn,
        segments: std::mem::take(&mut log.closed),
        gc: std::mem::take(&mut delta.gc),
    };
    log.since_checkpoint = 0;
    log.st.checkpoint_busy.store(true, Ordering::Release);
    tx.send(Some(job)).is_ok()
}
