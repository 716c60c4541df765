//! Which replies wait for durability.
//!
//! A reply must not show data that could still be lost, so it waits until the write sets it
//! may show are durable. In a turn in which something was written, every reply waits for that
//! turn's write set, except those of clients that only ran commands showing no key data
//! (PING, INFO, CLIENT, CONFIG, SELECT, QUEUED, ...). Otherwise a reply waits only if its
//! command read a key of a write set not yet durable, or read everything (DBSIZE, SCAN, KEYS,
//! RANDOMKEY) while any write set is not durable; reads of other keys leave at once. EXEC and
//! scripts are judged by the commands they run. (INFO keyspace counts and DEBUG OBJECT are not
//! tracked.)
//!
//! This is what keeps reads working while the store is failing: writes are refused (MISCONF)
//! before they run, so memory never diverges from the store for new writes, and only reads of
//! the write set that failed mid-commit (whose writers are still waiting for their replies)
//! wait for it, until the disk recovers. Write sets that hold only expirations are not
//! remembered: showing an expired key gone is harmless (it would be dropped at load anyway).

use std::collections::HashSet;

use bytes::Bytes;

use super::Persist;
use crate::commands::{Command, Flags};
use crate::server::core::World;
use crate::server::ClientId;

/// The (key space, key) pairs of one write set.
pub type KeySet = HashSet<(u64, Bytes), foldhash::fast::RandomState>;

/// The keys of one write set not yet durable.
pub struct Inflight {
    pub lsn: u64,
    pub keys: KeySet,
    /// A FLUSHDB/FLUSHALL/SWAPDB: every key may differ.
    pub all: bool,
}

/// What the tracking keeps for the current turn.
#[derive(Default)]
pub struct Reads {
    /// Clients whose output this turn may show data not yet durable.
    pub tainted: HashSet<ClientId>,
    /// Clients that ran only commands showing no data this turn.
    pub plain: HashSet<ClientId>,
    /// A command wrote this turn: hold every reply but `plain` ones until the flush after
    /// its write set.
    pub wrote: bool,
    /// `persist_commit` ran since the last flush: this turn's writes are in `inflight`.
    pub committed: bool,
}

impl Persist {
    /// Forgets write sets that became durable.
    pub fn trim_inflight(&mut self) {
        let durable = self.durable();
        while self.inflight.front().is_some_and(|f| f.lsn <= durable) {
            self.inflight.pop_front();
        }
    }

    fn dirty(&self, space: u64, key: &Bytes) -> Option<bool> {
        let durable = self.durable();
        let mut any = false;
        for f in self.inflight.iter().filter(|f| f.lsn > durable) {
            any = true;
            if f.all || f.keys.contains(&(space, key.clone())) {
                return Some(true);
            }
        }
        any.then_some(false)
    }

    fn anything_dirty(&self) -> bool {
        let durable = self.durable();
        self.inflight.back().is_some_and(|f| f.lsn > durable)
    }

    /// Whether running `cmd` may put data that is not durable into its reply.
    fn reveals(&mut self, db: usize, cmd: &Command, argv: &[Bytes]) -> bool {
        if cmd.has(Flags::WRITE) {
            self.reads.wrote = true;
            return true;
        }
        if !self.anything_dirty() {
            return false;
        }
        if !cmd.has(Flags::READONLY) {
            // Only data commands reach here: subscriptions (keyspace notifications).
            return true;
        }
        if cmd.key_indexes(argv).is_empty() {
            // Reads of everything: DBSIZE, SCAN, KEYS, RANDOMKEY.
            return true;
        }
        let space = self.spaces.get(db).copied().unwrap_or(0);
        cmd.key_indexes(argv)
            .into_iter()
            .filter_map(|i| argv.get(i))
            .any(|k| self.dirty(space, k).unwrap_or(false))
    }

    /// Whether this client's output, about to be flushed, must wait for `lsn` to be durable.
    pub fn must_hold(&self, id: ClientId, out: &[u8]) -> bool {
        let r = &self.reads;
        // In a turn that wrote, every client waits except those that only ran commands showing
        // no data; a refused write (MISCONF) reveals nothing.
        (r.tainted.contains(&id) || (r.wrote && !r.plain.contains(&id)))
            && !super::only_misconf(out)
    }

    /// At each write set (`persist_commit`): remembers its keys until it is durable. A write
    /// set made in a turn where no command wrote holds only expirations and is not remembered:
    /// otherwise every key expiring during a failure would hold its readers.
    pub fn note_write_set(&mut self, keys: KeySet, all: bool) {
        self.trim_inflight();
        if self.reads.wrote {
            self.inflight.push_back(Inflight {
                lsn: self.lsn,
                keys,
                all,
            });
        }
    }

    /// After a flush: the next turn starts clean (a mid-turn flush, during a long script,
    /// keeps `wrote` until the write set is made).
    pub fn flushed(&mut self) {
        self.reads.tainted.clear();
        self.reads.plain.clear();
        if std::mem::take(&mut self.reads.committed) {
            self.reads.wrote = false;
        }
    }
}

impl World {
    /// Called for each command about to run (after the checks): notes whether its reply may
    /// show data not yet durable.
    pub fn persist_note(&mut self, id: ClientId, cmd: &Command, argv: &[Bytes]) {
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        let Some(c) = self.clients.get(&id) else {
            return;
        };
        let queued =
            c.multi.is_some() && !matches!(cmd.name, "exec" | "discard" | "multi" | "watch");
        if queued || !shows_data(cmd) {
            // PING, INFO, CONFIG, CLIENT, QUEUED, ...: nothing of the keyspace, so it need not
            // wait even in a turn that wrote, unless something else may reach this client:
            // messages (subscriptions, MONITOR), or output already there after a write (a
            // blocked command served by it). Output from before the write cannot show it.
            if c.subscriptions() == 0
                && (!p.reads.wrote || c.out.is_empty())
                && !self.monitors.contains(&id)
            {
                p.reads.plain.insert(id);
            }
            return;
        }
        if !p.reads.plain.is_empty() {
            p.reads.plain.remove(&id);
        }
        if p.reads.wrote {
            // A read after a write of this turn: it waits for the turn's write set.
            return;
        }
        if NESTED.contains(&cmd.name) {
            // EXEC and scripts are judged by the commands they run (persist_note_nested).
            return;
        }
        let reveals = p.reveals(c.db, cmd, argv);
        if reveals {
            p.reads.tainted.insert(id);
        }
    }

    /// A command without the WRITE flag wrote a key (PFCOUNT storing its cached cardinality):
    /// the turn counts as one that wrote, so replies wait for its write set and the write set
    /// is remembered until durable, as for any write.
    pub fn persist_wrote(&mut self) {
        if self.discarding() {
            return;
        }
        if let Some(p) = self.persist.as_mut() {
            p.reads.wrote = true;
        }
    }

    /// A command run inside EXEC or a script (`dispatch::call_nested`), in database `db`: the
    /// transaction or script is judged by what it runs, not as a read of everything.
    pub fn persist_note_nested(&mut self, id: ClientId, db: usize, cmd: &Command, argv: &[Bytes]) {
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        if p.reads.wrote && !cmd.has(Flags::WRITE) {
            // Every reply but plain ones waits for this turn's write set anyway.
            return;
        }
        if p.reveals(db, cmd, argv) {
            p.reads.tainted.insert(id);
        }
    }
}

/// Commands that run others through `dispatch::call_nested`.
const NESTED: &[&str] = &[
    "exec",
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// Commands whose reply may show keyspace data (or that start a stream of it), or function
/// libraries (persisted with the data).
fn shows_data(cmd: &Command) -> bool {
    cmd.has(Flags::WRITE | Flags::READONLY)
        || NESTED.contains(&cmd.name)
        || matches!(
            cmd.name,
            "subscribe"
                | "psubscribe"
                | "ssubscribe"
                | "monitor"
                | "function|list"
                | "function|dump"
        )
}
