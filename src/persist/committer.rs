//! The committer thread: takes write sets in LSN order, applies as many as are waiting in one
//! atomic batch (group commit), syncs as `appendfsync` says, then publishes the durable LSN.
//! Between batches it reclaims dead versions and spaces. It never touches the in-memory data.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::record::{self, Meta, T_LIST};
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
    /// Retries of a failing store so far (INFO berth_store_retries).
    pub retries: AtomicU64,
    /// Times the store recovered after failing (INFO berth_store_recoveries).
    pub recoveries: AtomicU64,
    pub error: Mutex<String>,
    /// Unix seconds of the last successful sync.
    pub last_sync: AtomicI64,
    pub synced_lsn: AtomicU64,
    pub disk_size: AtomicU64,
    pub gc_pending: AtomicU64,
    pub batches: AtomicU64,
    pub syncs: AtomicU64,
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
            error: Mutex::new(String::new()),
            last_sync: AtomicI64::new(crate::server::now_ms() / 1000),
            synced_lsn: AtomicU64::new(lsn),
            disk_size: AtomicU64::new(0),
            gc_pending: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        }
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

/// Opens the store again (fjall after a failed journal write: it poisons itself).
pub type Reopen = Box<dyn Fn() -> std::io::Result<Box<dyn Store>> + Send>;

/// The store plus what it needs to survive I/O errors: the batches applied since the last
/// successful sync, written again on retry, since a failed write or fsync may have lost them.
///
/// fjall poisons itself after a failed journal write or fsync, so each retry first drops the
/// instance (its workers stop and its lock is released before the new one opens) and opens the
/// store again, which recovers the journal up to its last complete batch; then every kept batch
/// is written again, in order, and synced. Only then is MISCONF cleared and the LSN published.
/// sled is retried in place (see `persist::open`).
struct Engine {
    store: Box<dyn Store>,
    unsynced: Vec<Vec<Op>>,
    st: Arc<Status>,
    reopen: Option<Reopen>,
    /// Set once the committer gave up (SHUTDOWN NOSAVE/FORCE, or SIGTERM past its grace):
    /// nothing more is written.
    stopped: bool,
}

impl Engine {
    /// Applies a batch; on failure flags MISCONF and retries until it is in.
    fn apply(&mut self, ops: Vec<Op>, keep: bool) {
        if self.stopped {
            return;
        }
        if let Err(e) = self.store.apply(&ops) {
            self.st.fail("write", &e);
            self.unsynced.push(ops);
            self.recover();
        } else if keep {
            self.unsynced.push(ops);
        }
    }

    fn sync(&mut self) {
        if self.stopped {
            return;
        }
        if let Err(e) = self.store.sync() {
            self.st.fail("sync", &e);
            self.recover();
        }
        self.unsynced.clear();
    }

    /// Writes every batch not known to be durable again, then syncs; retries with a growing
    /// pause until all of it succeeds, or until told to give up.
    fn recover(&mut self) {
        let mut delay = 10;
        let mut waited = 0;
        loop {
            // Sleep in short steps so a give-up request is seen at once.
            while waited < delay {
                if self.st.give_up.load(Ordering::SeqCst) {
                    self.stopped = true;
                    tracing::warn!(
                        "persistence: giving up on the failing store; {} batches that were \
                         never acknowledged are not written",
                        self.unsynced.len()
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
                waited += 5;
            }
            waited = 0;
            delay = (delay * 2).min(1000);
            self.st.retries.fetch_add(1, Ordering::Relaxed);
            if let Some(reopen) = &self.reopen {
                // Drop the poisoned instance first: the new one needs its lock and journal.
                self.store = Box::new(Closed);
                match reopen() {
                    Ok(s) => self.store = s,
                    Err(e) => {
                        self.st.fail("reopen", &e);
                        continue;
                    }
                }
            }
            let mut ok = true;
            for ops in &self.unsynced {
                if let Err(e) = self.store.apply(ops) {
                    self.st.fail("write", &e);
                    ok = false;
                    break;
                }
            }
            if ok {
                match self.store.sync() {
                    Ok(()) => {
                        tracing::warn!("persistence: the store accepts writes again");
                        self.unsynced.clear();
                        self.st.recovered();
                        return;
                    }
                    Err(e) => self.st.fail("sync", &e),
                }
            }
        }
    }
}

/// The placeholder while a store is being reopened: every call fails.
struct Closed;

impl Store for Closed {
    fn engine(&self) -> &'static str {
        "closed"
    }
    fn apply(&mut self, _: &[Op]) -> std::io::Result<()> {
        Err(std::io::Error::other("store closed"))
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::other("store closed"))
    }
    fn get(&self, _: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
        Err(std::io::Error::other("store closed"))
    }
    fn for_each(&self, _: &mut dyn FnMut(&[u8], &[u8])) -> std::io::Result<()> {
        Err(std::io::Error::other("store closed"))
    }
    fn keys_with_prefix(&self, _: &[u8], _: usize) -> std::io::Result<Vec<Vec<u8>>> {
        Err(std::io::Error::other("store closed"))
    }
    fn disk_size(&self) -> u64 {
        0
    }
}

pub fn run(store: Box<dyn Store>, rx: Receiver<WriteSet>, st: Arc<Status>, reopen: Option<Reopen>) {
    let mut gc: VecDeque<Gc> = VecDeque::new();
    let mut last_sync = Instant::now();
    let mut unsynced = false;
    st.disk_size.store(store.disk_size(), Ordering::Relaxed);
    let mut eng = Engine {
        store,
        unsynced: Vec::new(),
        st: st.clone(),
        reopen,
        stopped: false,
    };
    let mut last_size = Instant::now();
    loop {
        if eng.stopped {
            break;
        }
        st.gc_pending.store(gc.len() as u64, Ordering::Relaxed);
        let wait = if !gc.is_empty() {
            Duration::from_millis(1)
        } else if unsynced && st.mode.load(Ordering::Relaxed) == EVERYSEC {
            // The next timed sync is due. (Under `no` nothing is ever due: waiting for a sync
            // that never comes would spin this loop.)
            Duration::from_millis(1000).saturating_sub(last_sync.elapsed())
        } else {
            Duration::from_millis(1000)
        };
        let first = match rx.recv_timeout(wait) {
            Ok(ws) => Some(ws),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mode = st.mode.load(Ordering::Relaxed);
        if let Some(first) = first {
            let mut sets = vec![first];
            let mut n_ops = sets[0].ops.len();
            while n_ops < 100_000 {
                match rx.try_recv() {
                    Ok(ws) => {
                        n_ops += ws.ops.len();
                        sets.push(ws);
                    }
                    Err(_) => break,
                }
            }
            let lsn = sets.last().expect("one").lsn;
            let force = sets.iter().any(|s| s.sync);
            let ops = merge(&mut sets, &mut gc);
            // Under `no` nothing is promised across an OS crash, so nothing is kept to replay.
            eng.apply(ops, mode != NO);
            st.batches.fetch_add(1, Ordering::Relaxed);
            unsynced = true;
            if mode == ALWAYS || force || (mode == EVERYSEC && last_sync.elapsed().as_secs() >= 1) {
                sync(&mut eng, &st, lsn);
                last_sync = Instant::now();
                unsynced = false;
            }
            if eng.stopped {
                break;
            }
            st.publish(lsn);
            continue;
        }
        if unsynced && mode == EVERYSEC && last_sync.elapsed().as_millis() >= 1000 {
            let lsn = st.durable_now.load(Ordering::Acquire);
            sync(&mut eng, &st, lsn);
            last_sync = Instant::now();
            unsynced = false;
        }
        if let Some(item) = gc.pop_front() {
            let ops = reclaim(&*eng.store, item, &mut gc);
            if !ops.is_empty() {
                eng.apply(ops, false);
                unsynced = true;
            }
        }
        if last_size.elapsed().as_secs() >= 5 {
            st.disk_size.store(eng.store.disk_size(), Ordering::Relaxed);
            last_size = Instant::now();
        }
    }
    if eng.stopped {
        tracing::warn!("persistence: committer stopped with the store failing");
        return;
    }
    // Finish reclaiming before stopping, so a clean restart finds no garbage.
    while let Some(item) = gc.pop_front() {
        if eng.stopped {
            break;
        }
        let ops = reclaim(&*eng.store, item, &mut gc);
        if !ops.is_empty() {
            eng.apply(ops, false);
        }
    }
    eng.sync();
    let lsn = st.durable_now.load(Ordering::Acquire);
    st.synced_lsn.store(lsn, Ordering::Relaxed);
    tracing::info!("persistence: store synced and closed");
}

fn sync(eng: &mut Engine, st: &Status, lsn: u64) {
    eng.sync();
    st.syncs.fetch_add(1, Ordering::Relaxed);
    st.synced_lsn.store(lsn, Ordering::Relaxed);
    st.last_sync
        .store(crate::server::now_ms() / 1000, Ordering::Relaxed);
}

/// One batch from many write sets: a key written twice keeps its last write.
fn merge(sets: &mut [WriteSet], gc: &mut VecDeque<Gc>) -> Vec<Op> {
    if sets.len() == 1 {
        gc.extend(sets[0].gc.drain(..));
        return std::mem::take(&mut sets[0].ops);
    }
    let mut at: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut out: Vec<Op> = Vec::new();
    for s in sets.iter_mut() {
        gc.extend(s.gc.drain(..));
        for (k, v) in s.ops.drain(..) {
            match at.get(&k) {
                Some(&i) => out[i].1 = v,
                None => {
                    at.insert(k.clone(), out.len());
                    out.push((k, v));
                }
            }
        }
    }
    out
}

const CHUNK: usize = 2048;

/// A chunk of deletes for one reclaim item; what remains goes back on the queue.
fn reclaim(store: &dyn Store, item: Gc, gc: &mut VecDeque<Gc>) -> Vec<Op> {
    let mut ops = Vec::new();
    match item {
        Gc::Range(v, lo, hi) => {
            let end = hi.min(lo + CHUNK as i64);
            for i in lo..end {
                ops.push((record::list_elem_key(v, i), None));
            }
            if end < hi {
                gc.push_front(Gc::Range(v, end, hi));
            }
        }
        Gc::Version(v) => match store.keys_with_prefix(&record::elem_prefix(v), CHUNK) {
            Ok(keys) => {
                let more = keys.len() == CHUNK;
                ops.extend(keys.into_iter().map(|k| (k, None)));
                if more {
                    gc.push_front(Gc::Version(v));
                }
            }
            Err(e) => {
                tracing::warn!("persistence: reclaim scan failed: {e}");
                gc.push_back(Gc::Version(v));
            }
        },
        Gc::Space(s) => match store.keys_with_prefix(&record::meta_prefix(s), CHUNK) {
            Ok(keys) => {
                let more = keys.len() == CHUNK;
                for k in keys {
                    if let Ok(Some(m)) = store.get(&k).map(|v| v.and_then(|v| Meta::decode(&v))) {
                        if m.kind == T_LIST {
                            gc.push_back(Gc::Range(m.version, m.a, m.b));
                        } else if m.kind != record::T_STR {
                            gc.push_back(Gc::Version(m.version));
                        }
                    }
                    ops.push((k, None));
                }
                if more {
                    gc.push_front(Gc::Space(s));
                }
            }
            Err(e) => {
                tracing::warn!("persistence: reclaim scan failed: {e}");
                gc.push_back(Gc::Space(s));
            }
        },
    }
    ops
}

/// Members of a dead value known in memory, as deletes (small values, inline in the batch).
pub fn member_deletes(version: u64, members: &[Bytes], ops: &mut Vec<Op>) {
    for m in members {
        ops.push((record::elem_key(version, m), None));
    }
}
