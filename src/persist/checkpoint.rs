//! The checkpointer thread: brings the store up to date with the redo log, off the reply path.
//!
//! The committer hands it the net effect of the write sets since the last checkpoint (one op
//! per key, coalesced as they arrived), the LSN they end at, the log segments they cover and
//! the dead values they left. It writes the ops in batches, the checkpoint LSN with the last
//! one, syncs the store, and only then deletes the segments. A delete of a record the store
//! never had (a job pushed and popped between two checkpoints) is skipped: it would only
//! leave a tombstone. Between checkpoints it reclaims dead versions and spaces.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::committer::{Gc, Status};
use super::record::{self, Meta, T_LIST};
use super::store::{Op, Store};

pub const CHECKPOINT_KEY: &[u8] = b"\x01checkpoint";

/// The LSN the store is up to date with (0 for a store from before the redo log).
pub fn checkpoint_lsn(store: &dyn Store) -> std::io::Result<u64> {
    Ok(store
        .get(CHECKPOINT_KEY)?
        .and_then(|v| record::be_u64(&v))
        .unwrap_or(0))
}

pub fn checkpoint_op(lsn: u64) -> Op {
    (CHECKPOINT_KEY.to_vec(), Some(lsn.to_be_bytes().to_vec()))
}

/// One checkpoint's worth of work.
pub struct Job {
    pub ops: HashMap<Vec<u8>, Option<Vec<u8>>, foldhash::fast::RandomState>,
    pub lsn: u64,
    /// Segments wholly covered by `lsn`, with the bytes of records in each: deleted once the
    /// store is synced.
    pub segments: Vec<(PathBuf, u64)>,
    /// Dead values of these write sets, reclaimed once their records are in the store.
    pub gc: Vec<Gc>,
}

/// A checkpoint, or `None` when the committer took the spare segment and wants the next.
pub type ToCheckpointer = Option<Job>;

/// Store batches are cut at this many ops, so a large checkpoint never builds one huge batch.
const BATCH: usize = 8192;

/// Opens the store again (fjall after a failed journal write: it poisons itself).
pub type Reopen = Box<dyn Fn() -> std::io::Result<Box<dyn Store>> + Send>;

pub fn run(
    store: Box<dyn Store>,
    dir: PathBuf,
    rx: Receiver<ToCheckpointer>,
    st: Arc<Status>,
    reopen: Option<Reopen>,
) {
    let mut gc: VecDeque<Gc> = VecDeque::new();
    let spare = || {
        let size = super::redo::spare_size(
            st.last_segment_bytes.load(Ordering::Relaxed),
            st.checkpoint_log_size.load(Ordering::Relaxed),
        );
        match super::redo::prepare_spare(&dir, size) {
            Ok(()) => st.spare_ready.store(true, Ordering::Release),
            Err(e) => tracing::debug!("redo log: no spare segment ({e})"),
        }
    };
    spare();
    st.disk_size.store(store.disk_size(), Ordering::Relaxed);
    let mut eng = Engine {
        store,
        unsynced: Vec::new(),
        st: st.clone(),
        reopen,
        stopped: false,
    };
    let mut last_size = Instant::now();
    while !eng.stopped {
        st.gc_pending.store(gc.len() as u64, Ordering::Relaxed);
        let wait = Duration::from_millis(if gc.is_empty() { 1000 } else { 1 });
        match rx.recv_timeout(wait) {
            Ok(None) => spare(),
            Ok(Some(job)) => {
                let rotated = !job.segments.is_empty();
                checkpoint(&mut eng, job, &mut gc);
                st.checkpoint_busy.store(false, Ordering::Release);
                if rotated {
                    spare();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                reclaim_next(&mut eng, &mut gc);
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_size.elapsed().as_secs() >= 5 {
            st.disk_size.store(eng.store.disk_size(), Ordering::Relaxed);
            last_size = Instant::now();
        }
    }
    if eng.stopped {
        tracing::warn!("persistence: checkpointer stopped with the store failing; the redo log keeps every acknowledged write");
        return;
    }
    // Finish reclaiming before stopping, so a clean restart finds no garbage.
    while !eng.stopped && reclaim_next(&mut eng, &mut gc) {}
    if eng.stopped {
        return;
    }
    eng.sync();
    tracing::info!("persistence: store synced and closed");
}

/// Deletes one chunk of the next dead value; false when none is left. The deletes are not kept
/// for a retry: garbage a crash leaves behind is reclaimed at the next start.
fn reclaim_next(eng: &mut Engine, gc: &mut VecDeque<Gc>) -> bool {
    let Some(item) = gc.pop_front() else {
        return false;
    };
    let ops = reclaim(&*eng.store, item, gc);
    if !ops.is_empty() {
        eng.apply(ops, false);
    }
    true
}

fn checkpoint(eng: &mut Engine, job: Job, gc: &mut VecDeque<Gc>) {
    let started = Instant::now();
    let st = eng.st.clone();
    let mut batch: Vec<Op> = Vec::with_capacity(BATCH.min(job.ops.len() + 1));
    let (mut written, mut skipped) = (0u64, 0u64);
    for (k, v) in job.ops {
        if v.is_none() && !eng.contains(&k) {
            skipped += 1;
            continue;
        }
        batch.push((k, v));
        if batch.len() == BATCH {
            written += batch.len() as u64;
            eng.apply(std::mem::take(&mut batch), true);
        }
    }
    written += batch.len() as u64;
    batch.push(checkpoint_op(job.lsn));
    eng.apply(batch, true);
    eng.sync();
    if eng.stopped {
        return;
    }
    for (path, len) in &job.segments {
        st.log_bytes.fetch_sub(*len, Ordering::Relaxed);
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!("redo log: cannot delete {}: {e}", path.display());
        }
    }
    if let Some(dir) = job.segments.first().and_then(|(p, _)| p.parent()) {
        let _ = super::redo::sync_dir(dir);
    }
    gc.extend(job.gc);
    st.checkpoint_lsn.store(job.lsn, Ordering::Release);
    st.checkpoints.fetch_add(1, Ordering::Relaxed);
    st.checkpoint_records.fetch_add(written, Ordering::Relaxed);
    st.checkpoint_skipped.fetch_add(skipped, Ordering::Relaxed);
    st.checkpoint_ms
        .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
}

/// The store plus what it needs to survive I/O errors: the batches applied since the last
/// successful sync, written again on retry, since a failed write or fsync may have lost them.
///
/// fjall poisons itself after a failed journal write or fsync, so each retry first drops the
/// instance (its workers stop and its lock is released before the new one opens) and opens the
/// store again, which recovers the journal up to its last complete batch; then every kept batch
/// is written again, in order, and synced. sled is retried in place (see `persist::open`).
/// Meanwhile the redo log holds every acknowledged write, so nothing waits on this.
struct Engine {
    store: Box<dyn Store>,
    unsynced: Vec<Vec<Op>>,
    st: Arc<Status>,
    reopen: Option<Reopen>,
    /// Set once told to give up (SHUTDOWN NOSAVE/FORCE, or SIGTERM past its grace).
    stopped: bool,
}

impl Engine {
    fn contains(&mut self, key: &[u8]) -> bool {
        // Unsure means present: a delete too many is harmless.
        self.store.contains(key).unwrap_or(true)
    }

    /// Applies a batch; on failure retries until it is in.
    fn apply(&mut self, ops: Vec<Op>, keep: bool) {
        if self.stopped {
            return;
        }
        if let Err(e) = self.store.apply(&ops) {
            self.failed("write", &e);
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
            self.failed("sync", &e);
            self.recover();
        }
        self.unsynced.clear();
    }

    fn failed(&self, what: &str, e: &std::io::Error) {
        if !self.st.store_failing.swap(true, Ordering::SeqCst) {
            tracing::error!(
                "persistence: store {what} failed: {e}; retrying (the redo log keeps every \
                 acknowledged write meanwhile)"
            );
        }
    }

    /// Writes every batch not known to be durable again, then syncs; retries with a growing
    /// pause until all of it succeeds, or until told to give up.
    fn recover(&mut self) {
        let mut delay = 10;
        loop {
            if wait_or_give_up(&self.st.give_up, delay) {
                self.stopped = true;
                tracing::warn!("persistence: giving up on the failing store");
                return;
            }
            delay = (delay * 2).min(1000);
            self.st.store_retries.fetch_add(1, Ordering::Relaxed);
            if let Some(reopen) = &self.reopen {
                // Drop the poisoned instance first: the new one needs its lock and journal.
                self.store = Box::new(Closed);
                match reopen() {
                    Ok(s) => self.store = s,
                    Err(e) => {
                        self.failed("reopen", &e);
                        continue;
                    }
                }
            }
            let retried = self
                .unsynced
                .iter()
                .try_for_each(|ops| self.store.apply(ops))
                .and_then(|_| self.store.sync());
            match retried {
                Ok(()) => {
                    tracing::warn!("persistence: the store accepts writes again");
                    self.unsynced.clear();
                    self.st.store_recoveries.fetch_add(1, Ordering::Relaxed);
                    self.st.store_failing.store(false, Ordering::SeqCst);
                    return;
                }
                Err(e) => self.failed("write", &e),
            }
        }
    }
}

/// Sleeps `ms` in short steps; true if told to give up meanwhile.
pub fn wait_or_give_up(give_up: &AtomicBool, ms: u64) -> bool {
    let mut waited = 0;
    while waited < ms {
        if give_up.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
        waited += 5;
    }
    give_up.load(Ordering::SeqCst)
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
    fn contains(&self, _: &[u8]) -> std::io::Result<bool> {
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

const CHUNK: usize = 2048;

/// A chunk of deletes for one reclaim item; what remains goes back on the queue.
fn reclaim(store: &dyn Store, item: Gc, gc: &mut VecDeque<Gc>) -> Vec<Op> {
    let mut ops = Vec::new();
    match item {
        Gc::Range(v, lo, hi) => {
            let end = hi.min(lo + CHUNK as i64);
            for i in lo..end {
                let k = record::list_elem_key(v, i);
                // Elements that died before a checkpoint never reached the store.
                if store.contains(&k).unwrap_or(true) {
                    ops.push((k, None));
                }
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
