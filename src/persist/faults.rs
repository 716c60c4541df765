//! Reads while the store is failing.
//!
//! Normally every reply waits until the LSN current when it was produced is durable, so a read
//! never shows a write that could still be lost. While the store is failing that LSN may never
//! come, so Redis's rule applies instead: writes are refused (MISCONF) before they run, and
//! reads are answered at once unless they could show data of a write set that is not durable
//! yet (the one that failed mid-commit, whose writers are still waiting for their replies).
//! Those reads wait for it, as before; everything else goes out without waiting.
//!
//! Tracking is on for a whole loop turn or not at all: `watching` is sampled after each flush,
//! so a turn whose commands ran untracked is held as before.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::Persist;
use crate::commands::table::{self, Resolved};
use crate::commands::{Command, Flags};
use crate::server::core::World;
use crate::server::ClientId;

/// The keys of one write set not yet durable.
pub struct Inflight {
    pub lsn: u64,
    pub keys: HashSet<(u64, Bytes)>,
    /// A FLUSHDB/FLUSHALL/SWAPDB: every key may differ.
    pub all: bool,
}

/// What the read tracking keeps between flushes.
#[derive(Default)]
pub struct Reads {
    /// The store was failing at the last flush: this turn's commands are being tracked.
    pub watching: bool,
    /// Clients whose output this turn may show data not yet durable.
    pub tainted: HashSet<ClientId>,
    /// A write ran this turn while tracking (the store recovered meanwhile): hold every reply
    /// until the flush after its write set was made.
    pub wrote: bool,
    /// A write set was made since the last flush.
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
        self.inflight.iter().any(|f| f.lsn > durable)
    }

    /// Whether running `cmd` may put data that is not durable into its reply.
    fn reveals(&mut self, db: usize, cmd: &Command, argv: &[Bytes]) -> bool {
        if cmd.has(Flags::WRITE) {
            self.reads.wrote = true;
            return true;
        }
        let script = matches!(
            cmd.name,
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" | "exec"
        );
        if script || (cmd.has(Flags::READONLY) && cmd.key_indexes(argv).is_empty()) {
            // Reads of anything (scripts, transactions, DBSIZE, SCAN, KEYS, RANDOMKEY).
            return self.anything_dirty();
        }
        if !cmd.has(Flags::READONLY) {
            // PING, INFO, CLIENT, CONFIG, SELECT, ...: no key data.
            return false;
        }
        let space = self.spaces.get(db).copied().unwrap_or(0);
        cmd.key_indexes(argv)
            .into_iter()
            .filter_map(|i| argv.get(i))
            .any(|k| self.dirty(space, k).unwrap_or(false))
    }

    /// Whether this client's output, about to be flushed, must wait for `lsn` to be durable.
    pub fn must_hold(&self, id: ClientId, out: &[u8]) -> bool {
        if super::only_misconf(out) {
            // A refused write reveals nothing.
            return false;
        }
        !self.reads.watching || self.reads.wrote || self.reads.tainted.contains(&id)
    }

    /// At each write set (`persist_commit`): remembers its keys until it is durable. A write
    /// set made while tracking with no write command run holds only expirations, which are
    /// harmless to show (the keys would be dropped at load anyway), so it is not remembered:
    /// otherwise every key expiring during a failure would hold its readers.
    pub fn note_write_set(&mut self, keys: HashSet<(u64, Bytes)>, all: bool) {
        self.trim_inflight();
        if !self.reads.watching || self.reads.wrote {
            self.inflight.push_back(Inflight {
                lsn: self.lsn,
                keys,
                all,
            });
        }
        self.reads.committed = true;
    }

    /// After a flush: start (or stop) tracking for the next turn.
    pub fn flushed(&mut self) {
        self.reads.tainted.clear();
        if std::mem::take(&mut self.reads.committed) {
            self.reads.wrote = false;
        }
        self.reads.watching = self.status.failing.load(Ordering::SeqCst);
    }
}

impl World {
    /// Called for each command about to run (after the checks): notes whether its reply may
    /// show data not yet durable, while the store is failing.
    pub fn persist_note(&mut self, id: ClientId, cmd: &Command, argv: &[Bytes]) {
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        if !p.reads.watching {
            return;
        }
        let Some(c) = self.clients.get(&id) else {
            return;
        };
        let db = c.db;
        let reveals = match &c.multi {
            // Queued, not run: QUEUED shows nothing.
            Some(_) if !matches!(cmd.name, "exec" | "discard" | "multi" | "watch") => false,
            Some(queued) if cmd.name == "exec" => {
                let writes = queued.iter().any(|q| {
                    matches!(table::resolve(q), Resolved::Found(c) if c.has(Flags::WRITE))
                });
                if writes {
                    p.reads.wrote = true;
                }
                writes || p.anything_dirty()
            }
            _ => p.reveals(db, cmd, argv),
        };
        if reveals {
            p.reads.tainted.insert(id);
        }
    }
}
