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
        if !self.failing.swap(true, Ordering::SeqCst) {
            tracing::error!("persistence: {what} failed: {e}; retrying, writes refused");
        }
        *self.error.lock().expect("lock") = e.to_string();
    }
}

/// The store plus what it needs to survive I/O errors: the batches applied since the last
/// successful sync, written again on retry, since a failed write or fsync may have lost them.
///
/// The store is retried in place, not reopened: reopening fjall in-process after an ENOSPC
/// (its journal half-written, its workers still holding the old instance) lost writes made
/// after the reopen in a test here. fjall poisons itself after a failed journal write, so with
/// fjall writes stay refused (MISCONF) until Berth is restarted; nothing acknowledged is lost.
struct Engine {
    store: Box<dyn Store>,
    unsynced: Vec<Vec<Op>>,
    st: Arc<Status>,
}

impl Engine {
    /// Applies a batch; on failure flags MISCONF and retries until it is in.
    fn apply(&mut self, ops: Vec<Op>, keep: bool) {
        if let Err(e) = self.store.apply(&ops) {
            self.st.fail("write", &e);
            self.unsynced.push(ops);
            self.recover();
        } else if keep {
            self.unsynced.push(ops);
        }
    }

    fn sync(&mut self) {
        if let Err(e) = self.store.sync() {
            self.st.fail("sync", &e);
            self.recover();
        }
        self.unsynced.clear();
    }

    /// Writes every batch not known to be durable again, then syncs; retries with a growing
    /// pause until all of it succeeds.
    fn recover(&mut self) {
        let mut delay = 10;
        loop {
            std::thread::sleep(Duration::from_millis(delay));
            delay = (delay * 2).min(1000);
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
                        return;
                    }
                    Err(e) => self.st.fail("sync", &e),
                }
            }
        }
    }
}

pub fn run(store: Box<dyn Store>, rx: Receiver<WriteSet>, st: Arc<Status>) {
    let mut gc: VecDeque<Gc> = VecDeque::new();
    let mut last_sync = Instant::now();
    let mut unsynced = false;
    st.disk_size.store(store.disk_size(), Ordering::Relaxed);
    let mut eng = Engine {
        store,
        unsynced: Vec::new(),
        st: st.clone(),
    };
    let mut last_size = Instant::now();
    loop {
        st.gc_pending.store(gc.len() as u64, Ordering::Relaxed);
        let wait = if !gc.is_empty() {
            Duration::from_millis(1)
        } else if unsynced {
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
            st.failing.store(false, Ordering::SeqCst);
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
    // Finish reclaiming before stopping, so a clean restart finds no garbage.
    while let Some(item) = gc.pop_front() {
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
