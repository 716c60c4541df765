//! Client-side caching, as Redis 7.0's tracking.c: which clients may hold which keys, the
//! BCAST prefixes, and the invalidation messages.
//!
//! Nothing here runs until a client first enables tracking (`Tracking::armed`), so a server
//! where nobody tracks pays one boolean test per modified key and per command.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use super::core::World;
use super::ClientId;
use crate::commands::{Command, Flags};
use crate::protocol::Reply;

/// A client's tracking mode (Redis's CLIENT_TRACKING_* flags); `None` on the client is off.
#[derive(Debug, Default, Clone)]
pub struct ClientTracking {
    /// Client that receives the invalidations (0: this one).
    pub redirect: ClientId,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING yes (OPTIN) / no (OPTOUT) for the next command or transaction.
    pub caching: bool,
    /// The redirect client has gone.
    pub broken_redir: bool,
    /// BCAST prefixes, in Redis's (lexicographic) order.
    pub prefixes: BTreeSet<Bytes>,
}

/// Options of CLIENT TRACKING ON.
#[derive(Debug, Default, Clone, Copy)]
pub struct TrackingOptions {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
}

/// One BCAST prefix: the keys modified under it this loop turn (with the client that modified
/// each last, for NOLOOP) and the clients subscribed to it.
#[derive(Default)]
struct Bcast {
    keys: BTreeMap<Bytes, Option<ClientId>>,
    clients: BTreeSet<ClientId>,
}

/// What an invalidation carries: one key, the null of a flush, or a BCAST array of keys.
enum Payload {
    Key(Bytes),
    Null,
    Keys(Vec<Bytes>),
}

#[derive(Default)]
pub struct Tracking {
    /// Some client enabled tracking at least once: the hooks below run from then on.
    pub armed: bool,
    /// Clients with tracking on (INFO `tracking_clients`).
    pub clients: usize,
    /// Key -> clients that may have cached it. Like Redis's table, one for every database.
    table: HashMap<Bytes, Vec<ClientId>>,
    /// Client ids stored across the table (INFO `tracking_total_items`).
    items: u64,
    prefixes: BTreeMap<Bytes, Bcast>,
    /// Invalidations for a client's own command, sent after its reply (None: a flush).
    pending: Vec<(ClientId, Option<Bytes>)>,
    /// The client whose command is running (Redis's `current_client` within `call`).
    pub current: Option<ClientId>,
    /// Consecutive limit passes that did not get under tracking-table-max-keys.
    over_limit_runs: u32,
}

impl Tracking {
    pub fn total_keys(&self) -> usize {
        self.table.len()
    }
    pub fn total_items(&self) -> u64 {
        self.items
    }
    pub fn total_prefixes(&self) -> usize {
        self.prefixes.len()
    }
}

/// Redis's stringCheckPrefix: one of the two is a prefix of the other.
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Redis's checkPrefixCollisionsOrReply, with its quirk: a collision among the new prefixes
/// found past the first one is reported, yet tracking is enabled and +OK follows (it returns
/// the index as its success value). `Err` refuses; `Ok(Some(e))` is that error-then-OK case.
pub fn check_prefixes(existing: &BTreeSet<Bytes>, new: &[Bytes]) -> Result<Option<String>, String> {
    let s = |b: &[u8]| {
        String::from_utf8_lossy(crate::server::dispatch::c_str(b, usize::MAX)).into_owned()
    };
    for (i, p) in new.iter().enumerate() {
        if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                s(p),
                s(e)
            ));
        }
        if let Some(q) = new[i + 1..].iter().find(|q| overlap(p, q)) {
            let e = format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                s(p),
                s(q)
            );
            return if i == 0 { Err(e) } else { Ok(Some(e)) };
        }
    }
    Ok(None)
}

impl World {
    fn tracking_of(&self, id: ClientId) -> Option<&ClientTracking> {
        self.clients.get(&id).and_then(|c| c.tracking.as_deref())
    }

    /// Redis's enableTracking: flags replaced (CACHING kept), prefixes added to the old ones.
    pub fn tracking_enable(
        &mut self,
        id: ClientId,
        redirect: ClientId,
        opts: TrackingOptions,
        prefixes: &[Bytes],
    ) {
        if !self.tracking.armed {
            self.tracking.armed = true;
            for db in &mut self.keyspace.dbs {
                db.track_expired = true;
            }
        }
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let t = match &mut c.tracking {
            Some(t) => t,
            None => {
                self.tracking.clients += 1;
                c.tracking.insert(Box::default())
            }
        };
        t.redirect = redirect;
        t.broken_redir = false;
        t.bcast = opts.bcast;
        t.optin = opts.optin;
        t.optout = opts.optout;
        t.noloop = opts.noloop;
        if opts.bcast {
            let empty = [Bytes::new()];
            let list = if prefixes.is_empty() {
                &empty[..]
            } else {
                prefixes
            };
            for p in list {
                t.prefixes.insert(p.clone());
                let bs = self.tracking.prefixes.entry(p.clone()).or_default();
                bs.clients.insert(id);
            }
        }
    }

    /// Redis's disableTracking. The client's entries in the table are dropped lazily (when
    /// their key is invalidated), as Redis does.
    pub fn tracking_disable(&mut self, id: ClientId) {
        if let Some(t) = self.clients.get_mut(&id).and_then(|c| c.tracking.take()) {
            self.tracking_release(id, &t);
        }
    }

    /// A client's tracking ends (disabled or disconnected): it leaves its BCAST prefixes.
    pub fn tracking_release(&mut self, id: ClientId, t: &ClientTracking) {
        self.tracking.clients -= 1;
        for p in &t.prefixes {
            if let Some(bs) = self.tracking.prefixes.get_mut(p) {
                bs.clients.remove(&id);
                if bs.clients.is_empty() {
                    self.tracking.prefixes.remove(p);
                }
            }
        }
    }

    /// After a command ran: keys that expired lazily during it are invalidated, and a read-only
    /// command of a tracking client remembers its keys (Redis's `call`).
    pub fn tracking_after_run(&mut self, id: ClientId, cmd: &Command, argv: &[Bytes]) {
        for db in 0..self.keyspace.dbs.len() {
            if !self.keyspace.dbs[db].expired.is_empty() {
                for key in std::mem::take(&mut self.keyspace.dbs[db].expired) {
                    // Redis deletes an expired key outside any client's context.
                    self.tracking_invalidate(&key, true, None);
                }
            }
        }
        if !cmd.has(Flags::READONLY) || matches!(cmd.name, "eval_ro" | "evalsha_ro" | "fcall_ro") {
            return;
        }
        let Some(t) = self.tracking_of(id) else {
            return;
        };
        if t.bcast || (t.optin && !t.caching) || (t.optout && t.caching) {
            return;
        }
        // Inside a script Redis remembers the keys the script declared (its caller's command).
        let keys: Vec<Bytes> = match &self.script_run {
            Some(run) => run.keys.clone(),
            None if cmd.has(Flags::PUBSUB) => return,
            None => cmd
                .key_indexes(argv)
                .into_iter()
                .map(|i| argv[i].clone())
                .collect(),
        };
        for key in keys {
            let ids = self.tracking.table.entry(key).or_default();
            if !ids.contains(&id) {
                ids.push(id);
                self.tracking.items += 1;
            }
        }
    }

    /// Redis's trackingInvalidateKey: `key` changed (or, `bcast` false, its entry is evicted).
    /// `by` is the client that changed it, for BCAST's NOLOOP.
    pub fn tracking_invalidate(&mut self, key: &[u8], bcast: bool, by: Option<ClientId>) {
        if bcast && !self.tracking.prefixes.is_empty() {
            for (p, bs) in self.tracking.prefixes.iter_mut() {
                if key.starts_with(p) {
                    bs.keys.insert(Bytes::copy_from_slice(key), by);
                }
            }
        }
        let Some((key, mut ids)) = self.tracking.table.remove_entry(key) else {
            return;
        };
        // Redis walks a radix tree of the ids' native (little-endian) bytes.
        ids.sort_unstable_by_key(|id| id.to_le_bytes());
        self.tracking.items -= ids.len() as u64;
        let current = self.tracking.current;
        for target in ids {
            let Some(t) = self.tracking_of(target) else {
                continue;
            };
            if t.bcast || (t.noloop && Some(target) == current) {
                continue;
            }
            if Some(target) == current {
                // Its own command: the message follows the reply (trackingHandlePending...).
                self.tracking.pending.push((target, Some(key.clone())));
            } else {
                self.tracking_send(target, Payload::Key(key.clone()));
            }
        }
    }

    /// A key written by the running command (`World::key_modified`).
    pub fn tracking_modified(&mut self, key: &[u8]) {
        // Writes from a script come from its own client in Redis, never its caller.
        let by = if self.script_run.is_some() {
            None
        } else {
            self.tracking.current
        };
        self.tracking_invalidate(key, true, by);
    }

    /// FLUSHDB / FLUSHALL: every tracking client is told that all keys are invalid (a null),
    /// and the table is emptied (trackingInvalidateKeysOnFlush).
    pub fn tracking_flush(&mut self) {
        if !self.tracking.armed || self.discarding() {
            return;
        }
        let mut ids: Vec<ClientId> = self
            .clients
            .values()
            .filter(|c| c.tracking.is_some())
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            if Some(id) == self.tracking.current {
                self.tracking.pending.push((id, None));
            } else {
                self.tracking_send(id, Payload::Null);
            }
        }
        self.tracking.table.clear();
        self.tracking.items = 0;
    }

    /// After a top-level command's reply: the invalidations its client caused to itself.
    pub fn tracking_send_pending(&mut self, id: ClientId) {
        if self.tracking.pending.iter().all(|(c, _)| *c != id) {
            return;
        }
        let mut mine = Vec::new();
        self.tracking.pending.retain(|(c, k)| {
            if *c == id {
                mine.push(k.clone());
            }
            *c != id
        });
        for key in mine {
            let payload = key.map_or(Payload::Null, Payload::Key);
            self.tracking_send(id, payload);
        }
    }

    /// Redis's trackingLimitUsedSlots, before each command while clients track and in the
    /// cron: over tracking-table-max-keys, keys are evicted (their clients told as if they had
    /// changed), with more effort each time the limit is still not reached.
    pub fn tracking_limit(&mut self) {
        let max = self.config.get_i64("tracking-table-max-keys").max(0) as usize;
        if max == 0 || self.tracking.table.len() <= max {
            self.tracking.over_limit_runs = 0;
            return;
        }
        let effort = 100 * (self.tracking.over_limit_runs as usize + 1);
        let victims: Vec<Bytes> = self.tracking.table.keys().take(effort).cloned().collect();
        let saved = self.tracking.current.take();
        for key in victims {
            self.tracking_invalidate(&key, false, None);
            if self.tracking.table.len() <= max {
                self.tracking.over_limit_runs = 0;
                self.tracking.current = saved;
                return;
            }
        }
        self.tracking.current = saved;
        self.tracking.over_limit_runs += 1;
    }

    /// Once per loop turn (Redis's beforeSleep): each BCAST prefix sends the keys modified
    /// under it to its clients, one array per prefix; NOLOOP clients miss their own keys.
    pub fn tracking_broadcast(&mut self) {
        if self.tracking.clients == 0 || self.tracking.prefixes.values().all(|b| b.keys.is_empty())
        {
            return;
        }
        let mut sends: Vec<(ClientId, Vec<Bytes>)> = Vec::new();
        for bs in self.tracking.prefixes.values_mut() {
            let keys = std::mem::take(&mut bs.keys);
            if keys.is_empty() {
                continue;
            }
            for &id in &bs.clients {
                let noloop = self
                    .clients
                    .get(&id)
                    .and_then(|c| c.tracking.as_deref())
                    .is_some_and(|t| t.noloop);
                let list: Vec<Bytes> = keys
                    .iter()
                    .filter(|(_, by)| !noloop || **by != Some(id))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !list.is_empty() {
                    sends.push((id, list));
                }
            }
        }
        for (id, keys) in sends {
            self.tracking_send(id, Payload::Keys(keys));
        }
    }

    /// Redis's sendTrackingMessage: to the client itself in RESP3, else to its redirect client
    /// (a push in RESP3, a `__redis__:invalidate` message to a RESP2 subscriber). A redirect
    /// to a client that has gone marks the client and, in RESP3, tells it.
    fn tracking_send(&mut self, id: ClientId, payload: Payload) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let Some(t) = c.tracking.as_deref_mut() else {
            return;
        };
        // The null of a flush is written in the tracking client's protocol, even when sent on.
        let null: &'static [u8] = if c.resp3 { b"_\r\n" } else { b"$-1\r\n" };
        let mut to = id;
        let redirected = t.redirect != 0;
        if redirected {
            let redirect = t.redirect;
            if !self.clients.contains_key(&redirect) {
                let c = self.clients.get_mut(&id).expect("client");
                if let Some(t) = c.tracking.as_deref_mut() {
                    t.broken_redir = true;
                }
                if c.resp3 {
                    let msg = Reply::Push(vec![
                        Reply::bulk_str("tracking-redir-broken"),
                        Reply::Int(redirect as i64),
                    ]);
                    msg.encode(&mut c.out, true);
                    self.note_message(id);
                }
                return;
            }
            to = redirect;
        }
        let value = match payload {
            Payload::Key(k) => Reply::Array(vec![Reply::Bulk(k)]),
            Payload::Null => Reply::Raw(Bytes::from_static(null)),
            Payload::Keys(keys) => Reply::bulks(keys),
        };
        let target = self.clients.get_mut(&to).expect("client");
        let msg = if target.resp3 {
            Reply::Push(vec![Reply::bulk_str("invalidate"), value])
        } else if redirected && target.subscriptions() > 0 {
            Reply::Array(vec![
                Reply::bulk_str("message"),
                Reply::bulk_str("__redis__:invalidate"),
                value,
            ])
        } else {
            // RESP2 without a subscribed redirect client: nowhere to say it.
            return;
        };
        msg.encode(&mut target.out, target.resp3);
        self.note_message(to);
    }

    /// Output that is not a reply reached a client: flushed this turn, and (persistence) held
    /// like a reply that shows data.
    fn note_message(&mut self, id: ClientId) {
        if let Some(p) = self.persist.as_mut() {
            p.reads.plain.remove(&id);
        }
        self.mark_output(id);
    }
}
