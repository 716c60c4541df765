//! Writes that must leave no trace: a `SCRIPT DEBUG YES` session. Redis runs it in a forked
//! child whose changes die with it; Berth runs it on the keyspace thread (blocking the server
//! for the session, as Redis's SYNC mode does) and undoes every change when it ends: each
//! database journals the entries the session touches (`db/journal.rs`), SWAPDBs are swapped
//! back, and meanwhile nothing reaches change capture, WATCH, client-side caching or the
//! `dirty` counter, so the turn's write set holds nothing of the session.

use super::core::World;

/// What a discarding session changed outside the databases' own journals.
#[derive(Default)]
pub struct Discard {
    /// SWAPDBs run by the session, in order.
    swaps: Vec<(usize, usize)>,
    /// Whether this turn counted as one that wrote before the session (durability).
    wrote: bool,
    /// The change counter before the session (FLUSHDB/FLUSHALL add to it directly).
    dirty: u64,
}

impl World {
    /// Starts a session whose changes are discarded at `discard_end`.
    pub fn discard_begin(&mut self) {
        for db in self.keyspace.dbs.iter_mut() {
            db.journal_begin();
        }
        let wrote = self.persist.as_ref().is_some_and(|p| p.reads.wrote);
        self.discard = Some(Box::new(Discard {
            swaps: Vec::new(),
            wrote,
            dirty: self.dirty,
        }));
    }

    /// Whether changes are being discarded (a key change is then not recorded anywhere).
    pub fn discarding(&self) -> bool {
        self.discard.is_some()
    }

    /// A SWAPDB during the session: undone at the end instead of persisted.
    pub fn discard_swap(&mut self, a: usize, b: usize) {
        if let Some(d) = self.discard.as_mut() {
            d.swaps.push((a, b));
        }
    }

    /// Ends the session: every database gets back what it held before it.
    pub fn discard_end(&mut self) {
        let Some(d) = self.discard.take() else {
            return;
        };
        for db in self.keyspace.dbs.iter_mut() {
            db.journal_rollback();
        }
        for &(a, b) in d.swaps.iter().rev() {
            self.keyspace.dbs.swap(a, b);
        }
        self.dirty = d.dirty;
        if let Some(p) = self.persist.as_mut() {
            p.reads.wrote = d.wrote;
        }
    }
}
