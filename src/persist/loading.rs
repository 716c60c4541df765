//! Startup in the background: Berth listens first, a loader thread rebuilds the databases from
//! the store (plain data, `load.rs`) while the keyspace thread answers, and then hands them
//! over. Meanwhile every command without Redis's `loading` flag gets
//! `-LOADING Redis is loading the dataset in memory` and `INFO persistence` shows `loading:1`
//! with the `loading_*` progress fields, as Redis prints them while it reads its AOF.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::store::Store;
use super::{checkpoint, committer, load, redo, CommitterSlot, Persist, Status};
use crate::commands::table::{self, Resolved};
use crate::commands::{Command, Flags};
use crate::db::Keyspace;
use crate::protocol::Reply;
use crate::server::core::World;

pub const LOADING_ERR: &str = "LOADING Redis is loading the dataset in memory";

/// While the loader runs: what INFO shows, and what the hand-over needs.
pub struct Loading {
    pub started: Instant,
    pub started_unix: i64,
    /// The store's size on disk, once opened (shared with the loader).
    pub total_bytes: Arc<AtomicU64>,
    /// Bytes of records read so far (shared with the loader).
    pub loaded_bytes: Arc<AtomicU64>,
    status: Arc<Status>,
    slot: CommitterSlot,
    dir: PathBuf,
    engine: String,
    mode_text: String,
    done: std::sync::mpsc::Receiver<Loaded>,
}

/// What the loader hands over.
pub struct Loaded {
    store: Box<dyn Store>,
    keyspace: Keyspace,
    loaded: load::Loaded,
    /// The LSN the store is up to date with, after the log tail was replayed into it.
    lsn: u64,
    next_segment: u64,
    replayed: u64,
}

/// Starts the loader thread; the world answers LOADING until it has taken the data.
pub fn start(
    world: &mut World,
    status: Arc<Status>,
    slot: CommitterSlot,
    dir: PathBuf,
    engine: String,
) -> Result<(), String> {
    let ndb = world.keyspace.dbs.len();
    let (done_tx, done) = std::sync::mpsc::channel();
    let progress = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    world.loading = Some(Box::new(Loading {
        started: Instant::now(),
        started_unix: crate::server::now_ms() / 1000,
        total_bytes: total.clone(),
        loaded_bytes: progress.clone(),
        status,
        slot,
        dir: dir.clone(),
        engine: engine.clone(),
        mode_text: world.config.get("appendfsync").to_string(),
        done,
    }));
    std::thread::Builder::new()
        .name("loader".into())
        .spawn(move || {
            let started = Instant::now();
            match run(&engine, &dir, ndb, &progress, &total) {
                Ok(l) => {
                    tracing::info!(
                        "loaded {} keys from the {engine} store in {} ms ({} expired keys \
                         dropped, {} dead records reclaimed)",
                        l.loaded.keys,
                        started.elapsed().as_millis(),
                        l.loaded.expired,
                        l.loaded.garbage
                    );
                    // The keyspace thread's loop polls for it.
                    let _ = done_tx.send(l);
                }
                Err(e) => {
                    // Never serve an empty keyspace over a dataset that did not load.
                    let e = format!("the {engine} store in {}: {e}", dir.display());
                    tracing::error!("{e}");
                    eprintln!("berth: {e}");
                    std::process::exit(1);
                }
            }
        })
        .map_err(|e| format!("cannot start the loader: {e}"))?;
    Ok(())
}

fn run(
    engine: &str,
    dir: &std::path::Path,
    ndb: usize,
    progress: &AtomicU64,
    total: &AtomicU64,
) -> Result<Loaded, String> {
    let mut store = super::store::open(engine, dir)
        .map_err(|e| unreadable(format!("cannot open {}: {e}", dir.join(engine).display())))?;
    total.store(store.disk_size(), Ordering::Relaxed);
    let replay = replay_log(&mut *store, dir)?;
    let mut keyspace = Keyspace::new(ndb);
    let now = crate::server::now_ms();
    let loaded = load::load(&*store, &mut keyspace, now, progress)
        .map_err(|e| unreadable(format!("cannot load {}: {e}", dir.join(engine).display())))?;
    write_synced(&mut *store, &loaded.ops)?;
    Ok(Loaded {
        store,
        keyspace,
        loaded,
        lsn: replay.last_lsn,
        next_segment: replay.next_segment,
        replayed: replay.records,
    })
}

/// Why Berth refuses to start over a dataset it cannot read, and the way out.
fn unreadable(e: String) -> String {
    format!(
        "{e}. Berth will not start over a dataset it cannot read: restore the directory from a \
         backup, or move it aside to start empty"
    )
}

/// Writes `ops` into the store in batches, then syncs it.
fn write_synced(store: &mut dyn Store, ops: &[super::store::Op]) -> Result<(), String> {
    for chunk in ops.chunks(8192) {
        store
            .apply(chunk)
            .map_err(|e| format!("cannot write to the store: {e}"))?;
    }
    store
        .sync()
        .map_err(|e| format!("cannot sync the store: {e}"))
}

/// Startup = store + log tail: the write sets logged after the store's checkpoint go into the
/// store (coalesced by key, the checkpoint LSN with the last batch), the store is synced, and
/// then the segments are deleted. A crash anywhere here replays the same tail again.
fn replay_log(store: &mut dyn Store, dir: &std::path::Path) -> Result<redo::Replay, String> {
    let checkpoint = checkpoint::checkpoint_lsn(store)
        .map_err(|e| unreadable(format!("cannot read {}: {e}", dir.display())))?;
    // A store of another format is refused by `load`, before anything is written to it.
    let format = store.get(super::record::FORMAT_KEY).ok().flatten();
    if format.is_some_and(|f| f != super::record::FORMAT) {
        return Ok(redo::Replay::empty(checkpoint));
    }
    let mut replay = redo::replay(dir, checkpoint).map_err(unreadable)?;
    if replay.records > 0 {
        let started = Instant::now();
        let mut ops = std::mem::take(&mut replay.ops);
        let records = ops.len();
        ops.push(checkpoint::checkpoint_op(replay.last_lsn));
        write_synced(store, &ops)?;
        tracing::info!(
            "redo log: replayed {} write sets ({records} records) after checkpoint {} in {} ms",
            replay.records,
            checkpoint,
            started.elapsed().as_millis()
        );
    }
    for path in &replay.segments {
        std::fs::remove_file(path).map_err(|e| format!("cannot delete {}: {e}", path.display()))?;
    }
    if !replay.segments.is_empty() {
        let _ = redo::sync_dir(&redo::log_dir(dir));
    }
    Ok(replay)
}

/// Whether a command is refused while loading: Redis's rule, commands without the `loading`
/// flag, and EXEC of a transaction holding one.
pub fn refuses(cmd: &Command, multi: Option<&[Vec<bytes::Bytes>]>) -> bool {
    if !cmd.has(Flags::LOADING) {
        return true;
    }
    cmd.name == "exec"
        && multi.is_some_and(|q| {
            q.iter()
                .any(|a| matches!(table::resolve(a), Resolved::Found(c) if !c.has(Flags::LOADING)))
        })
}

impl World {
    /// `-LOADING` if the dataset is still loading and the command may not run meanwhile.
    pub fn loading_refusal(
        &self,
        cmd: &Command,
        multi: Option<&[Vec<bytes::Bytes>]>,
    ) -> Option<Reply> {
        (self.loading.is_some() && refuses(cmd, multi)).then(|| Reply::err(LOADING_ERR))
    }

    /// Before serving (Berth already listens): waits up to `grace` for the loader, so a small
    /// dataset is served without a LOADING phase, as Redis answers LOADING only once it has
    /// been reading for a while. Connections made meanwhile wait for their first reply.
    pub fn persist_wait_loaded(&mut self, grace: std::time::Duration) {
        let got = self.loading.as_ref().map(|l| l.done.recv_timeout(grace));
        if let Some(Ok(done)) = got {
            self.persist_loaded(done);
        }
    }

    /// Called by the loop while loading: take the data if the loader has finished.
    pub fn persist_poll_loaded(&mut self) {
        let got = self.loading.as_ref().map(|l| l.done.try_recv());
        if let Some(Ok(done)) = got {
            self.persist_loaded(done);
        }
    }

    /// The loader finished: take its databases and start the committer.
    fn persist_loaded(&mut self, done: Loaded) {
        let Some(l) = self.loading.take() else {
            return;
        };
        let Loaded {
            store,
            keyspace,
            loaded,
            lsn,
            next_segment,
            replayed,
        } = done;
        self.keyspace = keyspace;
        self.load_libraries(&loaded.libraries);
        let load_ms = l.started.elapsed().as_millis() as u64;
        let (tx, rx) = std::sync::mpsc::channel();
        let st = l.status.clone();
        st.start_at(lsn);
        let reopen: Option<checkpoint::Reopen> = (l.engine == "fjall").then(|| {
            let dir = l.dir.clone();
            Box::new(move || super::store::open("fjall", &dir)) as checkpoint::Reopen
        });
        let dir = l.dir.clone();
        let slot = committer::Slot::default();
        let committer = slot.clone();
        let thread = std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || committer::run(store, dir, next_segment, rx, st, reopen, slot))
            .expect("spawn the committer");
        *l.slot.lock().expect("lock") = Some(thread);
        self.persist = Some(Box::new(Persist {
            tx,
            committer,
            inline: std::env::var("BERTH_INLINE_COMMIT").map_or(true, |v| v != "0"),
            status: l.status.clone(),
            spaces: loaded.spaces,
            next_id: loaded.next_id,
            lsn,
            replayed,
            events: Vec::new(),
            libraries: Vec::new(),
            dead_spaces: Vec::new(),
            spaces_changed: false,
            force_sync: false,
            unsynced: Default::default(),
            changes: 0,
            mode_text: l.mode_text,
            engine: if l.engine == "sled" { "sled" } else { "fjall" },
            loaded_keys: loaded.keys,
            expired_at_load: loaded.expired,
            load_ms,
            garbage_at_load: loaded.garbage,
            inflight: Default::default(),
            reads: Default::default(),
        }));
        tracing::info!(
            "DB loaded from disk: {:.3} seconds",
            load_ms as f64 / 1000.0
        );
    }

    /// Compiles the function libraries the store holds (in the Lua state, which only this
    /// thread may touch). A library that no longer loads is logged and left out.
    fn load_libraries(&mut self, stored: &[(String, bytes::Bytes)]) {
        let fs = &mut *self.functions;
        let mut libs = std::mem::take(&mut fs.libs);
        for (name, code) in stored {
            if let Err(e) = fs.create(&mut libs, code, false, false) {
                tracing::error!("function library '{name}' could not be loaded: {e}");
            }
        }
        fs.libs = libs;
    }

    /// The `loading_*` fields of INFO persistence while loading (Redis's names).
    pub fn loading_info(&self) -> Option<Vec<String>> {
        let l = self.loading.as_ref()?;
        let loaded = l.loaded_bytes.load(Ordering::Relaxed);
        let total = l.total_bytes.load(Ordering::Relaxed).max(loaded).max(1);
        let secs = l.started.elapsed().as_secs_f64();
        let eta = if loaded == 0 {
            1
        } else {
            ((total - loaded) as f64 * secs / loaded as f64) as i64
        };
        Some(vec![
            format!("loading_start_time:{}", l.started_unix),
            format!("loading_total_bytes:{total}"),
            "loading_rdb_used_mem:0".to_string(),
            format!("loading_loaded_bytes:{loaded}"),
            format!(
                "loading_loaded_perc:{:.2}",
                loaded as f64 * 100.0 / total as f64
            ),
            format!("loading_eta_seconds:{eta}"),
        ])
    }
}
