//! `maxmemory`: past it, commands that may grow memory (the table's DENYOOM flag) are refused
//! with Redis's `-OOM` error, as Redis does under `noeviction`. Berth never evicts (a job store
//! must not drop jobs), so every `maxmemory-policy` behaves as `noeviction`. Used memory is the
//! process's RSS (what INFO reports as used_memory), sampled every 100 ms so the check costs
//! nothing per command.

use bytes::Bytes;

use super::core::World;
use crate::commands::table::{self, Resolved};
use crate::commands::{Command, Flags};

/// Redis's shared.oomerr, with its dash (as scripts raise it; replies drop the dash).
pub const OOM_ERROR: &str = "-OOM command not allowed when used memory > 'maxmemory'.";

impl World {
    /// Takes a new sample of the memory in use (the 100 ms timer, and at startup).
    pub fn sample_memory(&mut self) {
        self.used_memory_sample = crate::commands::introspection::rss_bytes();
    }

    /// Past `maxmemory` (0: no limit).
    pub fn out_of_memory(&self) -> bool {
        let max = self.config.maxmemory();
        max > 0 && self.used_memory_sample > max
    }
}

/// Whether Redis's processCommand refuses this command when out of memory: a DENYOOM command,
/// EXEC of a transaction holding one, or anything but EXEC/DISCARD/QUIT/RESET inside MULTI
/// (queuing grows memory too).
pub fn refused_when_oom(cmd: &Command, multi: Option<&[Vec<Bytes>]>) -> bool {
    let denyoom = |c: &Command| c.has(Flags::DENYOOM);
    match multi {
        Some(queued) if cmd.name == "exec" => queued
            .iter()
            .any(|a| matches!(table::resolve(a), Resolved::Found(c) if denyoom(c))),
        Some(_) => !matches!(cmd.name, "discard" | "quit" | "reset"),
        None => denyoom(cmd),
    }
}
