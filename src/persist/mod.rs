//! Durable persistence: every write set reaches an embedded store through a committer thread.
//!
//! The keyspace thread logs what each command touches (`World::key_modified`, flushes, swaps);
//! once per loop turn `World::persist_commit` turns that log into one write set of records
//! (`record.rs`), numbered with an LSN, and hands it to the committer (`committer.rs`), which
//! group-commits and publishes the durable LSN. Replies that may show a write set not yet
//! durable wait in their connection task until it is (`faults.rs`). Startup loads the store in
//! the background while clients get -LOADING (`loading.rs`, `load.rs`).

pub mod capture;
pub mod checkpoint;
pub mod committer;
pub mod faults;
pub mod load;
pub mod loading;
pub mod record;
pub mod redo;
pub mod store;
pub mod stream_records;
pub mod testkit;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use bytes::Bytes;

use committer::{Inline, ToCommitter};
pub use committer::{Status, WriteSet};

/// The keyspace thread's side of persistence.
pub struct Persist {
    pub tx: Sender<ToCommitter>,
    /// The committer's state, for commits on this thread (`hand_over`).
    pub committer: committer::Slot,
    /// Whether to commit on this thread when nothing is queued (`BERTH_INLINE_COMMIT`).
    pub inline: bool,
    pub status: Arc<Status>,
    /// Key space of each database.
    pub spaces: Vec<u64>,
    pub next_id: u64,
    /// LSN of the last write set handed to the committer.
    pub lsn: u64,
    /// Write sets replayed from the redo log at startup.
    pub replayed: u64,
    /// (space, key) touched since the last commit, in order.
    pub events: Vec<(u64, Bytes)>,
    /// Function libraries loaded, replaced or deleted since the last commit.
    pub libraries: Vec<String>,
    pub dead_spaces: Vec<u64>,
    pub spaces_changed: bool,
    pub force_sync: bool,
    /// Changes per LSN not yet durable (INFO rdb_changes_since_last_save).
    pub unsynced: std::collections::VecDeque<(u64, u64)>,
    pub changes: u64,
    pub mode_text: String,
    pub engine: &'static str,
    pub loaded_keys: u64,
    pub expired_at_load: u64,
    pub load_ms: u64,
    pub garbage_at_load: u64,
    /// Keys of the write sets not yet durable (reads while the store is failing).
    pub inflight: std::collections::VecDeque<faults::Inflight>,
    pub reads: faults::Reads,
}

impl Persist {
    pub fn alloc(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Commits a write set: on this thread when the committer is idle and nothing is queued
    /// (`Committer::commit_inline`), else through the committer thread.
    pub fn hand_over(&mut self, ws: WriteSet) {
        let msg = match self.committer.try_lock() {
            // Not started yet or stopped: the channel keeps it for the committer (or drops it
            // with the rest at a stop, as before).
            Ok(mut c) if self.inline && c.is_some() => {
                match c.as_mut().expect("committer").commit_inline(ws) {
                    Inline::Done => return,
                    Inline::Nudge => None,
                    Inline::Declined(ws) => Some(ws),
                }
            }
            _ => Some(ws),
        };
        if self.tx.send(msg).is_err() {
            tracing::error!("persistence: committer is gone");
        }
    }

    /// Why writes are refused, if the store is failing.
    pub fn misconf(&self) -> Option<String> {
        if self.status.failing.load(Ordering::Relaxed) {
            let e = self.status.error.lock().expect("lock").clone();
            Some(format!("MISCONF Errors writing to the AOF file: {e}"))
        } else {
            None
        }
    }

    pub fn durable(&self) -> u64 {
        self.status.durable_now.load(Ordering::Acquire)
    }
}

/// True if `out` holds only MISCONF error replies.
pub fn only_misconf(out: &[u8]) -> bool {
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .all(|l| l.starts_with(b"-MISCONF "))
}

/// Holds the data directory's lock for the life of the process.
pub struct DirLock {
    _file: File,
    pub path: PathBuf,
}

pub fn lock_dir(dir: &Path) -> Result<DirLock, String> {
    use std::os::unix::io::AsRawFd;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let path = dir.join("berth.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(format!(
            "the data directory {} is in use by another Berth process (lock {} is held); \
             stop it or start this one with another --dir",
            dir.display(),
            path.display()
        ));
    }
    Ok(DirLock { _file: file, path })
}

/// What a stop needs: the committer, once loading has started it.
pub type CommitterSlot = Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>;

/// Locks the data directory (before anything listens: a second Berth on the directory stops
/// the start here), then opens and loads the store on a loader thread while the keyspace
/// thread answers `-LOADING` (`loading.rs`); a store that cannot be opened or read stops
/// Berth with the reason. When the load is done the keyspace thread takes the data and starts
/// the committer.
pub fn open(
    world: &mut crate::server::core::World,
) -> Result<(DirLock, CommitterSlot, Arc<Status>), String> {
    let dir = PathBuf::from(world.config.get("dir"));
    let lock = lock_dir(&dir)?;
    let engine = world.config.get("storage-engine").to_string();
    if !matches!(engine.as_str(), "fjall" | "sled") {
        return Err(format!("unknown storage-engine '{engine}' (fjall or sled)"));
    }
    let mode_text = world.config.get("appendfsync").to_string();
    let status = Arc::new(Status::new(committer::mode_of(&mode_text), 0));
    status.grace_ms.store(
        world.config.get_i64("shutdown-timeout").max(0) as u64 * 1000,
        Ordering::Relaxed,
    );
    let slot: CommitterSlot = Default::default();
    loading::start(world, status.clone(), slot.clone(), dir, engine)?;
    Ok((lock, slot, status))
}

/// After the keyspace thread stopped: waits for the committer to write what is left and close
/// the store. If the store is failing it waits up to `shutdown-timeout` seconds for it to
/// recover, then gives up: what is lost then are only write sets whose replies were never sent.
pub fn close(slot: &CommitterSlot, st: &Status) {
    // Stopped while loading: there is no committer yet, and nothing was written.
    let Some(committer) = slot.lock().expect("lock").take() else {
        return;
    };
    let grace = std::time::Duration::from_millis(st.grace_ms.load(Ordering::Relaxed));
    let started = std::time::Instant::now();
    let mut warned = false;
    let mut gave_up: Option<std::time::Instant> = None;
    while !committer.is_finished() {
        if st.give_up.load(Ordering::SeqCst) {
            let since = *gave_up.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= std::time::Duration::from_secs(2) {
                // Stuck inside the engine (sled can block forever after an I/O error).
                tracing::error!("persistence: the store does not answer; exiting without it");
                return;
            }
        }
        let failing = st.failing.load(Ordering::SeqCst) || st.store_failing.load(Ordering::SeqCst);
        if failing && !st.give_up.load(Ordering::SeqCst) {
            let e = st.error.lock().expect("lock").clone();
            if !warned {
                tracing::warn!(
                    "persistence: the store is failing ({e}); waiting up to {} s for it to \
                     recover before exiting",
                    grace.as_secs()
                );
                warned = true;
            }
            if started.elapsed() >= grace {
                tracing::error!(
                    "persistence: the store still fails ({e}) after {} s; exiting without the \
                     writes that were never acknowledged",
                    grace.as_secs()
                );
                st.give_up.store(true, Ordering::SeqCst);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = committer.join();
}
