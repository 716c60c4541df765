//! Undo for a `SCRIPT DEBUG YES` session. Redis runs that session in a forked child, so the
//! script's writes never reach the parent; Berth cannot fork, so each database remembers the
//! entry every key had before the session first touched it and puts it back at the end.
//!
//! The first touch moves the original entry into the journal and leaves a copy in its place
//! (a copy is a new value with an empty change journal): the session mutates only the copy, so
//! the original comes back exactly as it was, with its persistence version and change journal,
//! and the turn's write set holds nothing from the session.

use std::collections::HashMap;

use bytes::Bytes;

use super::{scan, Db, Entry};

#[derive(Debug)]
pub struct Journal {
    /// Each touched key's entry before the session (None: it did not exist).
    before: HashMap<Bytes, Option<Entry>>,
    /// Lengths of `dead` and `expired` at the start: what the session added is dropped.
    dead: usize,
    expired: usize,
}

impl Db {
    /// Starts remembering what the session changes.
    pub fn journal_begin(&mut self) {
        self.journal = Some(Box::new(Journal {
            before: HashMap::new(),
            dead: self.dead.len(),
            expired: self.expired.len(),
        }));
    }

    /// Before a key is changed (or read, which may delete it by expiry): keeps its original.
    pub(super) fn journal_key(&mut self, key: &[u8]) {
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        if j.before.contains_key(key) {
            return;
        }
        let before = self.map.get_mut(key).map(|e| {
            let copy = e.clone();
            std::mem::replace(e, copy)
        });
        j.before.insert(Bytes::copy_from_slice(key), before);
    }

    /// FLUSHDB/FLUSHALL during the session: every key not yet journaled keeps its entry as it
    /// is now (untouched, so the original). Returns the journal to carry over the reset.
    pub(super) fn journal_all(&mut self) -> Option<Box<Journal>> {
        let mut j = self.journal.take()?;
        for (k, e) in self.map.drain() {
            j.before.entry(k).or_insert(Some(e));
        }
        Some(j)
    }

    /// Ends the session: every key it touched gets its original entry back.
    pub fn journal_rollback(&mut self) {
        let Some(j) = self.journal.take() else {
            return;
        };
        for (key, before) in j.before {
            if let Some(now) = self.map.remove(&key) {
                if let Some(t) = now.expire_at {
                    self.expiries.remove(&(t, key.clone()));
                }
                self.order.remove(&(scan::key_hash(&key), key.clone()));
            }
            if let Some(e) = before {
                if let Some(t) = e.expire_at {
                    self.expiries.insert((t, key.clone()));
                }
                self.order.insert((scan::key_hash(&key), key.clone()));
                self.map.insert(key, e);
            }
        }
        self.dead.truncate(j.dead);
        self.expired.truncate(j.expired);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Value;

    #[test]
    fn rollback_restores_originals() {
        let mut db = Db::default();
        db.set(Bytes::from("a"), Value::Str(Bytes::from("1")));
        db.set(Bytes::from("gone"), Value::Str(Bytes::from("x")));
        db.set_expire(b"gone", Some(i64::MAX));
        let dead = db.dead.len();
        db.journal_begin();
        db.set(Bytes::from("a"), Value::Str(Bytes::from("2")));
        db.remove(b"gone");
        db.set(Bytes::from("new"), Value::Str(Bytes::from("y")));
        db.clear();
        db.set(Bytes::from("after"), Value::Str(Bytes::from("z")));
        db.journal_rollback();
        assert!(matches!(db.get(b"a"), Some(Value::Str(s)) if s == "1"));
        assert!(db
            .peek(b"gone")
            .is_some_and(|e| e.expire_at == Some(i64::MAX)));
        assert!(db.peek(b"new").is_none() && db.peek(b"after").is_none());
        assert_eq!(db.len(), 2);
        assert_eq!(db.expires_count(), 1);
        assert_eq!(db.order.len(), 2);
        assert_eq!(db.dead.len(), dead);
    }
}
