//! The keyspace thread: owns every database and every client's state, and runs commands one
//! at a time in arrival order, as Redis's main thread does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

use bytes::Bytes;

use super::blocking::BlockRegistry;
use super::client::{Blocked, Client};
use super::dispatch::{self, write_reply};
use super::pubsub::PubSub;
use super::{now_ms, now_us, ClientId, Out, ToCore};
use crate::commands::table;
use crate::commands::BlockRequest;
use crate::config::Config;
use crate::db::Keyspace;
use crate::protocol::Reply;

#[derive(Default)]
pub struct CommandStats {
    pub calls: u64,
    pub usec: u64,
    pub failed: u64,
    /// Refused before running (arity, NOAUTH, ...): INFO commandstats `rejected_calls`.
    pub rejected: u64,
    /// Run times in nanoseconds, by HdrHistogram bucket (lowest equivalent value, 2
    /// significant digits as Redis configures it): INFO latencystats, LATENCY HISTOGRAM.
    pub latency: std::collections::BTreeMap<u64, u64>,
}

/// The lowest value of the HdrHistogram bucket `ns` falls in (2 significant digits).
pub fn hdr_lowest(ns: u64) -> u64 {
    let bucket = (63 - (ns | 255).leading_zeros()) - 7;
    (ns >> bucket) << bucket
}

/// The highest value that falls in the same HdrHistogram bucket as `ns`.
pub fn hdr_highest(ns: u64) -> u64 {
    let bucket = (63 - (ns | 255).leading_zeros()) - 7;
    hdr_lowest(ns) + (1u64 << bucket) - 1
}

/// FNV-1a: command names are short and come from the command table, so SipHash's
/// flooding resistance buys nothing on this per-command path.
#[derive(Default)]
pub struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub type NameMap<V> = HashMap<&'static str, V, std::hash::BuildHasherDefault<NameHasher>>;

#[derive(Default)]
pub struct Stats {
    pub commands: NameMap<CommandStats>,
    pub total_commands: u64,
    pub total_connections: u64,
    pub rejected_connections: u64,
    pub rejected_calls: u64,
    pub expired_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    /// Error replies by their code (`ERR`, `WRONGTYPE`): INFO errorstats.
    pub errors: HashMap<String, u64>,
}

impl Stats {
    pub fn record(&mut self, name: &'static str, usec: u64, failed: bool) {
        self.total_commands += 1;
        let s = self.commands.entry(name).or_default();
        s.calls += 1;
        s.usec += usec;
        *s.latency.entry(hdr_lowest(usec.max(1) * 1000)).or_default() += 1;
        if failed {
            s.failed += 1;
        }
    }

    /// Counts an error reply under its code (the text before the first space).
    pub fn record_error(&mut self, text: &str) {
        let code = text.split(' ').next().unwrap_or("ERR");
        if let Some(n) = self.errors.get_mut(code) {
            *n += 1;
        } else if self.errors.len() < 128 {
            self.errors.insert(code.to_string(), 1);
        }
    }

    /// Counts a command refused before it ran.
    pub fn record_rejected(&mut self, name: &'static str) {
        self.rejected_calls += 1;
        self.commands.entry(name).or_default().rejected += 1;
    }
}

pub struct SlowlogEntry {
    pub id: u64,
    pub time: i64,
    pub micros: u64,
    pub argv: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

pub struct World {
    pub keyspace: Keyspace,
    pub clients: HashMap<ClientId, Client, foldhash::fast::RandomState>,
    pub config: Config,
    pub blocking: BlockRegistry,
    pub pubsub: PubSub,
    /// (db, key) -> clients WATCHing it.
    pub watchers: HashMap<(usize, Bytes), Vec<ClientId>>,
    pub stats: Stats,
    pub started_ms: i64,
    /// Writes since the last SAVE (rdb_changes_since_last_save).
    pub dirty: u64,
    pub last_save: i64,
    pub slowlog: VecDeque<SlowlogEntry>,
    pub slowlog_next_id: u64,
    pub monitors: Vec<ClientId>,
    pub shutdown: bool,
    /// While a blocked client is re-run because a key received data: that (db, key). Redis
    /// serves a waiter from the key that became ready, not from its first non-empty key.
    pub serving_key: Option<(usize, Bytes)>,
    /// CLIENT PAUSE: until when (unix ms), and whether every command waits or only writes.
    pub pause: Option<(i64, bool)>,
    /// Clients holding commands back because of a pause.
    pub(super) paused_clients: Vec<ClientId>,
    monitor_self: Vec<(ClientId, String)>,
    ready: VecDeque<(usize, Bytes)>,
    ready_set: HashSet<(usize, Bytes)>,
    with_output: Vec<ClientId>,
    last_expire_cycle: i64,
    /// The Lua engine and script cache (taken out while a script runs).
    pub scripting: Option<Box<crate::scripting::Engine>>,
    /// Redis 7.0 functions: the loaded libraries and their Lua state.
    pub functions: Box<crate::scripting::functions::Functions>,
    /// The script being run, if any: BUSY replies and SCRIPT KILL look at it.
    pub script_run: Option<crate::scripting::ScriptRun>,
    /// The connection tasks' channel, reachable while a long script polls it.
    pub rx: Option<UnboundedReceiver<ToCore>>,
    /// Messages that arrived during a script and wait for it to end (client closes).
    deferred: Vec<ToCore>,
    /// The listener's shared state, for accepts during a busy script (None without sockets).
    pub net: Option<std::rc::Rc<super::net::Shared>>,
    /// Durable persistence (None: memory only, as in tests and fuzzing).
    pub persist: Option<Box<crate::persist::Persist>>,
    /// The store is being loaded in the background (commands get -LOADING).
    pub loading: Option<Box<crate::persist::loading::Loading>>,
    /// Client-side caching (CLIENT TRACKING).
    pub tracking: super::tracking::Tracking,
    /// RSS as last sampled, for `maxmemory` (maxmemory.rs).
    pub used_memory_sample: u64,
    /// A `SCRIPT DEBUG YES` session runs: its changes are undone when it ends.
    pub(super) discard: Option<Box<super::discard::Discard>>,
}

impl World {
    pub fn new(config: Config) -> World {
        let dbs = config.get_i64("databases").max(1) as usize;
        let now = now_ms();
        World {
            keyspace: Keyspace::new(dbs),
            clients: HashMap::default(),
            config,
            blocking: BlockRegistry::default(),
            pubsub: PubSub::default(),
            watchers: HashMap::new(),
            stats: Stats::default(),
            started_ms: now,
            dirty: 0,
            last_save: now / 1000,
            slowlog: VecDeque::new(),
            slowlog_next_id: 0,
            monitors: Vec::new(),
            shutdown: false,
            serving_key: None,
            pause: None,
            paused_clients: Vec::new(),
            monitor_self: Vec::new(),
            ready: VecDeque::new(),
            ready_set: HashSet::new(),
            with_output: Vec::new(),
            last_expire_cycle: now,
            scripting: Some(Box::default()),
            functions: Box::default(),
            script_run: None,
            rx: None,
            deferred: Vec::new(),
            net: None,
            persist: None,
            loading: None,
            tracking: Default::default(),
            used_memory_sample: crate::commands::introspection::rss_bytes(),
            discard: None,
        }
    }

    /// The core task's loop: wait for messages or the next timer, run, flush replies. It shares
    /// the thread with the connection tasks, so while it runs no socket is served.
    pub async fn run(mut self, rx: UnboundedReceiver<ToCore>) {
        self.rx = Some(rx);
        loop {
            let wait = self.next_timer_wait();
            let recv = self.rx.as_mut().expect("receiver").recv();
            match tokio::time::timeout(wait, recv).await {
                Ok(Some(msg)) => self.handle(msg),
                Ok(None) => break,
                Err(_) => {}
            }
            // Take whatever else is queued before flushing, so replies to many clients go out together.
            for _ in 0..1024 {
                let got = self.rx.as_mut().expect("receiver").try_recv();
                match got {
                    Ok(msg) => self.handle(msg),
                    Err(_) => break,
                }
            }
            for msg in std::mem::take(&mut self.deferred) {
                self.handle(msg);
            }
            if self.loading.is_some() {
                // The loader thread cannot reach this thread's channel (its messages are not
                // Send); the loop looks for its result at least every 100 ms instead.
                self.persist_poll_loaded();
            }
            self.timers();
            if self.tracking.armed {
                self.tracking_broadcast();
            }
            self.persist_commit();
            self.flush_output();
            if self.shutdown {
                break;
            }
        }
        for c in self.clients.values_mut() {
            c.flush();
            c.sender.send(Out::Close);
        }
    }

    fn next_timer_wait(&self) -> Duration {
        let now = now_ms();
        let mut next = self.last_expire_cycle + 100;
        if let Some(t) = self.blocking.next_deadline() {
            next = next.min(t);
        }
        if let Some((t, _)) = self.pause {
            next = next.min(t);
        }
        Duration::from_millis((next - now).clamp(0, 100) as u64)
    }

    /// Handles one message from a connection task (public so fuzz targets can drive the core).
    pub fn handle(&mut self, msg: ToCore) {
        match msg {
            ToCore::Connected {
                id,
                addr,
                local,
                out,
            } => {
                let auth = self.config.get("requirepass").is_empty();
                if self.clients.len() >= self.config.get_i64("maxclients").max(1) as usize {
                    // As Redis: accepted, told, closed (CONFIG SET maxclients applies at once).
                    self.stats.rejected_connections += 1;
                    out.send(Out::Data(Bytes::from_static(
                        b"-ERR max number of clients reached\r\n",
                    )));
                    out.send(Out::Close);
                    return;
                }
                if auth && self.protected_mode_denies(&addr) {
                    // Redis counts the connection, then refuses it.
                    self.stats.total_connections += 1;
                    out.send(Out::Data(Bytes::from_static(PROTECTED_MODE_DENIED)));
                    out.send(Out::Close);
                    return;
                }
                self.clients
                    .insert(id, Client::new(id, addr, local, out, now_ms(), auth));
                self.stats.total_connections += 1;
            }
            ToCore::Commands { id, cmds, error } => {
                let Some(c) = self.clients.get_mut(&id) else {
                    return;
                };
                c.pending.extend(cmds);
                if error.is_some() {
                    c.pending_error = error;
                }
                self.run_client(id);
                self.serve_ready();
            }
            ToCore::Closed { id } => self.disconnect(id),
            ToCore::Shutdown => self.shutdown = true,
        }
    }

    /// Runs a client's queued commands until it blocks or the queue is empty.
    pub fn run_client(&mut self, id: ClientId) {
        loop {
            let Some(c) = self.clients.get_mut(&id) else {
                return;
            };
            if c.blocked.is_some() || c.closing {
                return;
            }
            let Some(argv) = c.pending.pop_front() else {
                break;
            };
            if let Some((_, all)) = self.pause {
                if all
                    || super::pause::pause_holds(
                        &argv,
                        c.multi.as_deref(),
                        self.scripting.as_deref(),
                        &self.functions,
                    )
                {
                    let c = self.clients.get_mut(&id).expect("client");
                    c.pending.push_front(argv);
                    if !self.paused_clients.contains(&id) {
                        self.paused_clients.push(id);
                    }
                    return;
                }
            }
            dispatch::execute(self, id, argv);
            self.serve_ready();
        }
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        if let Some(e) = c.pending_error.take() {
            Reply::err(format!("ERR {e}")).encode(&mut c.out, c.resp3);
            c.closing = true;
            self.mark_output(id);
        }
    }

    /// Called from a script that has run past busy-reply-threshold: handles what connections
    /// sent meanwhile (other clients get BUSY unless their command is allowed while busy; the
    /// script's own client only queues), then flushes replies. The script holds the thread the
    /// connection tasks run on, so sockets are read and written here directly.
    pub fn serve_during_script(&mut self) {
        let own = self.script_run.as_ref().map(|r| r.client);
        let mut arrived: VecDeque<ToCore> = self
            .net
            .as_ref()
            .map(super::net::accept_now)
            .unwrap_or_default()
            .into();
        while let Some(msg) = self.rx.as_mut().and_then(|rx| rx.try_recv().ok()) {
            arrived.push_back(msg);
        }
        for (&id, c) in &self.clients {
            if let Some((cmds, error)) = c.sender.read_now() {
                arrived.push_back(ToCore::Commands { id, cmds, error });
            }
        }
        while let Some(msg) = arrived.pop_front() {
            match msg {
                ToCore::Commands { id, cmds, error } if Some(id) == own => {
                    if let Some(c) = self.clients.get_mut(&id) {
                        c.pending.extend(cmds);
                        if error.is_some() {
                            c.pending_error = error;
                        }
                    }
                }
                msg @ ToCore::Commands { .. } | msg @ ToCore::Connected { .. } => self.handle(msg),
                other => self.deferred.push(other),
            }
        }
        self.flush_output();
        let durable = self.persist.as_ref().map_or(u64::MAX, |p| p.durable());
        for c in self.clients.values() {
            c.sender.write_now(durable);
        }
    }

    pub fn mark_output(&mut self, id: ClientId) {
        self.with_output.push(id);
    }

    /// Sends buffered replies now (the loop does this once per turn; tests and fuzzing call it).
    pub fn flush_pending_output(&mut self) {
        self.flush_output();
    }

    fn flush_output(&mut self) {
        // In the order the clients' commands ran this turn (first output first): held replies
        // are released in this order, so a reply never overtakes one produced before it.
        let mut ids = std::mem::take(&mut self.with_output);
        let mut seen: HashSet<ClientId, foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(ids.len(), Default::default());
        ids.retain(|id| seen.insert(*id));
        // Replies leave only once every write set executed before them is durable.
        let hold = self
            .persist
            .as_ref()
            .map(|p| p.lsn)
            .filter(|lsn| self.persist.as_ref().is_some_and(|p| p.durable() < *lsn));
        for &id in &ids {
            if let Some(c) = self.clients.get_mut(&id) {
                self.stats.net_output_bytes += c.out.len() as u64;
                if let (Some(lsn), false) = (hold, c.out.is_empty()) {
                    // Only replies that may show a write set not yet durable wait for it
                    // (persist/faults.rs): reads keep working while the store is failing.
                    if self
                        .persist
                        .as_ref()
                        .is_some_and(|p| p.must_hold(id, &c.out))
                    {
                        c.sender.send(Out::Hold(lsn));
                        if let Some(net) = &self.net {
                            net.releases.hold(lsn, &c.sender);
                        }
                    }
                }
                c.flush();
                if c.closing {
                    c.sender.send(Out::Close);
                }
            }
        }
        self.enforce_output_limits(&ids);
        if let Some(p) = self.persist.as_mut() {
            p.flushed();
        }
    }

    pub fn disconnect(&mut self, id: ClientId) {
        let Some(c) = self.clients.remove(&id) else {
            return;
        };
        if let Some(b) = &c.blocked {
            self.blocking.remove(id, b.db, &b.req.keys, b.req.deadline);
        }
        for ch in &c.channels {
            PubSub::unsubscribe(&mut self.pubsub.channels, ch, id);
        }
        for p in &c.patterns {
            PubSub::unsubscribe(&mut self.pubsub.patterns, p, id);
        }
        for ch in &c.shard_channels {
            PubSub::unsubscribe(&mut self.pubsub.shard_channels, ch, id);
        }
        for k in &c.watched {
            self.unwatch_key(id, k);
        }
        self.monitors.retain(|m| *m != id);
        if let Some(t) = &c.tracking {
            self.tracking_release(id, t);
        }
    }

    /// Closes a client from the server side (CLIENT KILL, QUIT after its reply).
    pub fn kill_client(&mut self, id: ClientId) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.closing = true;
            // A killed client must not be handed data it will never read.
            if let Some(b) = c.blocked.take() {
                self.blocking.remove(id, b.db, &b.req.keys, b.req.deadline);
            }
            self.mark_output(id);
        }
    }

    pub fn unwatch_key(&mut self, id: ClientId, key: &(usize, Bytes)) {
        if let Some(w) = self.watchers.get_mut(key) {
            w.retain(|c| *c != id);
            if w.is_empty() {
                self.watchers.remove(key);
            }
        }
    }

    pub fn key_modified(&mut self, db: usize, key: &[u8]) {
        if self.discard.is_some() {
            // A SCRIPT DEBUG YES session: the change is undone when it ends (discard.rs).
            return;
        }
        self.dirty += 1;
        self.signal_if_stream_gone(db, key);
        self.persist_key(db, key);
        if self.tracking.armed {
            self.tracking_modified(key);
        }
        if self.watchers.is_empty() {
            return;
        }
        if let Some(ids) = self.watchers.get(&(db, Bytes::copy_from_slice(key))) {
            for id in ids.clone() {
                if let Some(c) = self.clients.get_mut(&id) {
                    c.watch_dirty = true;
                }
            }
        }
    }

    /// FLUSHDB / FLUSHALL / SWAPDB: every WATCHed key of the database that exists is touched.
    /// Not a change of the keys for client-side caching (Redis's touchAllWatchedKeysInDb does
    /// not invalidate; a flush sends its own null).
    pub fn touch_all_watched(&mut self, db: Option<usize>) {
        let armed = std::mem::replace(&mut self.tracking.armed, false);
        self.touch_watched_keys(db);
        self.tracking.armed = armed;
    }

    fn touch_watched_keys(&mut self, db: Option<usize>) {
        let now = now_ms();
        let keys: Vec<(usize, Bytes)> = self.watchers.keys().cloned().collect();
        for (d, k) in keys {
            if db.is_none_or(|x| x == d) && {
                self.keyspace.dbs[d].now = now;
                self.keyspace.dbs[d].peek(&k).is_some()
            } {
                self.key_modified(d, &k);
            }
        }
    }

    /// A key that clients block on was deleted or replaced by another type: clients blocked in
    /// XREADGROUP on it are answered with an error (Redis's `signalDeletedKeyAsReady`).
    fn signal_if_stream_gone(&mut self, db: usize, key: &[u8]) {
        if self.blocking.count() == 0 {
            return;
        }
        let key = Bytes::copy_from_slice(key);
        if !self.blocking.has_waiters(db, &key) {
            return;
        }
        let d = &mut self.keyspace.dbs[db];
        d.now = now_ms();
        if !matches!(
            d.peek(&key).map(|e| &e.value),
            Some(crate::db::Value::Stream(_))
        ) {
            self.signal_ready(db, &key);
        }
    }

    /// FLUSHDB / FLUSHALL / SWAPDB: blocked keys of `db` that no longer hold a stream.
    pub fn signal_streams_gone(&mut self, db: usize) {
        for key in self.blocking.keys_in_db(db) {
            self.signal_if_stream_gone(db, &key);
        }
    }

    pub fn signal_ready(&mut self, db: usize, key: &Bytes) {
        if self.blocking.has_waiters(db, key) && self.ready_set.insert((db, key.clone())) {
            self.ready.push_back((db, key.clone()));
        }
    }

    pub fn block_client(&mut self, id: ClientId, argv: Vec<Bytes>, mut req: BlockRequest) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let argv = req.rerun_argv.take().unwrap_or(argv);
        let db = c.db;
        self.blocking.add(id, db, &req.keys, req.deadline);
        c.blocked = Some(Blocked { argv, db, req });
    }

    /// Ends a client's block with a reply, then runs the commands it queued meanwhile.
    pub fn unblock(&mut self, id: ClientId, reply: Reply) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let Some(b) = c.blocked.take() else { return };
        // Redis counts the reply written to a client as interaction (for `timeout`).
        c.last_active = now_ms();
        self.blocking.remove(id, b.db, &b.req.keys, b.req.deadline);
        write_reply(self, id, &reply);
        if self.tracking.armed {
            self.tracking_send_pending(id);
        }
        self.run_client(id);
    }

    /// Serves clients blocked on keys that received data, oldest waiter first, after the
    /// command, transaction or script that wrote them has finished.
    pub fn serve_ready(&mut self) {
        if self.script_run.is_some() {
            return;
        }
        while let Some((db, key)) = self.ready.pop_front() {
            self.ready_set.remove(&(db, key.clone()));
            for id in self.blocking.waiting(db, &key) {
                self.serving_key = Some((db, key.clone()));
                self.retry_blocked(id);
            }
            self.serving_key = None;
        }
    }

    /// Re-runs a blocked command; it either completes now or stays blocked in its place.
    fn retry_blocked(&mut self, id: ClientId) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let Some(b) = &c.blocked else { return };
        let argv = b.argv.clone();
        let saved_db = c.db;
        c.db = b.db;
        let table::Resolved::Found(cmd) = table::resolve(&argv) else {
            return;
        };
        let outer = self.tracking.current.replace(id);
        let (reply, again) = dispatch::call(self, id, cmd, &argv, true);
        self.tracking.current = outer;
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        c.db = saved_db;
        if again.is_none() {
            self.unblock(id, reply);
        }
    }

    fn timers(&mut self) {
        let now = now_ms();
        if self.pause.is_some_and(|(t, _)| t <= now) {
            self.unpause_clients();
        }
        for id in self.blocking.expired(now) {
            let reply = match self.clients.get(&id).and_then(|c| c.blocked.as_ref()) {
                Some(b) => b.req.timeout_reply.clone(),
                None => continue,
            };
            self.unblock(id, reply);
        }
        if now - self.last_expire_cycle >= 100 {
            self.last_expire_cycle = now;
            self.sample_memory();
            self.close_idle_clients(now);
            self.active_expire(now);
            if self.tracking.clients > 0 {
                self.tracking_limit();
            }
            self.serve_ready();
        }
    }

    /// `protected-mode yes` without a password: only loopback clients may connect (Redis 7.0
    /// checks this whatever `bind` says, and answers others with -DENIED, then closes).
    fn protected_mode_denies(&self, addr: &std::net::SocketAddr) -> bool {
        self.config.get("protected-mode") == "yes" && !is_loopback(addr)
    }

    /// `timeout`: closes clients idle for longer than that many seconds, except blocked,
    /// subscribed and MONITOR clients (Redis's clientsCronHandleTimeout), and clients whose
    /// commands wait behind a CLIENT PAUSE (Redis counts those as blocked).
    fn close_idle_clients(&mut self, now: i64) {
        let max_idle = self.config.get_i64("timeout");
        if max_idle <= 0 {
            return;
        }
        let idle: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| {
                !c.closing
                    && c.blocked.is_none()
                    && c.pending.is_empty()
                    && c.subscriptions() == 0
                    && !c.monitor
                    && (now - c.last_active) / 1000 > max_idle
            })
            .map(|c| c.id)
            .collect();
        for id in idle {
            tracing::debug!("Closing idle client");
            self.kill_client(id);
        }
    }

    /// Deletes keys whose TTL passed, so keys nobody reads (heartbeats) really disappear.
    fn active_expire(&mut self, now: i64) {
        for db in 0..self.keyspace.dbs.len() {
            let gone = self.keyspace.dbs[db].expire_due(now, 10_000);
            self.stats.expired_keys += gone.len() as u64;
            for k in gone {
                self.key_modified(db, &k);
            }
        }
    }

    pub fn feed_monitors(&mut self, from: ClientId, db: usize, argv: &[Bytes]) {
        if self.monitors.is_empty() {
            return;
        }
        let addr = match self.clients.get(&from) {
            // Commands a script runs show as coming from "lua".
            Some(c) if self.script_run.is_none() => c.addr.to_string(),
            _ => "lua".into(),
        };
        let us = now_us();
        let mut line = format!("{}.{:06} [{} {}]", us / 1_000_000, us % 1_000_000, db, addr);
        for a in argv {
            line.push(' ');
            line.push_str(&repr(a));
        }
        for id in self.monitors.clone() {
            if id == from {
                // A monitor sees its own commands too, after their replies.
                self.monitor_self.push((id, line.clone()));
                continue;
            }
            if let Some(c) = self.clients.get_mut(&id) {
                Reply::Status(line.clone()).encode(&mut c.out, c.resp3);
                self.with_output.push(id);
            }
        }
    }

    /// Writes the MONITOR lines of a monitoring client's own command, after its reply.
    pub fn flush_monitor_self(&mut self) {
        for (id, line) in std::mem::take(&mut self.monitor_self) {
            if let Some(c) = self.clients.get_mut(&id) {
                Reply::Status(line).encode(&mut c.out, c.resp3);
                self.with_output.push(id);
            }
        }
    }

    pub fn slowlog_check(&mut self, id: ClientId, argv: &[Bytes], micros: u64) {
        let threshold = self.config.slowlog_slower_than();
        if threshold < 0 || (micros as i64) < threshold {
            return;
        }
        let (addr, name) = self
            .clients
            .get(&id)
            .map(|c| (c.addr.to_string(), c.name.clone().unwrap_or_default()))
            .unwrap_or_default();
        let entry = SlowlogEntry {
            id: self.slowlog_next_id,
            time: now_ms() / 1000,
            micros,
            argv: slowlog_argv(argv),
            addr,
            name,
        };
        self.slowlog_next_id += 1;
        self.slowlog.push_front(entry);
        let max = self.config.get_i64("slowlog-max-len").max(0) as usize;
        self.slowlog.truncate(max);
    }
}

/// Redis 7.0's reply to a client refused by protected mode (byte for byte).
/// A client on the loopback interface (Redis's islocalClient).
pub fn is_loopback(addr: &std::net::SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Arguments as SLOWLOG keeps them: at most 32 (the last then says how many more) and each cut
/// to 128 bytes.
fn slowlog_argv(argv: &[Bytes]) -> Vec<Bytes> {
    let keep = if argv.len() > 32 { 31 } else { argv.len() };
    let mut out: Vec<Bytes> = argv[..keep]
        .iter()
        .map(|a| {
            if a.len() > 128 {
                let mut v = a[..128].to_vec();
                v.extend_from_slice(format!("... ({} more bytes)", a.len() - 128).as_bytes());
                Bytes::from(v)
            } else {
                a.clone()
            }
        })
        .collect();
    if argv.len() > 32 {
        out.push(Bytes::from(format!(
            "... ({} more arguments)",
            argv.len() - 31
        )));
    }
    out
}

/// `sdscatrepr`: a quoted, escaped rendering of a string (MONITOR, CLIENT LIST).
pub fn repr(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for &c in s {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
    out
}
