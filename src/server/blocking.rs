//! Clients blocked on keys (BLPOP, BZPOPMIN, BLMOVE, ...): served first come, first served.

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

use super::ClientId;

#[derive(Default)]
pub struct BlockRegistry {
    /// (db, key) -> clients blocked on it, oldest first.
    by_key: HashMap<(usize, Bytes), VecDeque<ClientId>>,
    pub deadlines: BTreeSet<(i64, ClientId)>,
}

impl BlockRegistry {
    pub fn add(&mut self, id: ClientId, db: usize, keys: &[Bytes], deadline: Option<i64>) {
        for k in keys {
            let q = self.by_key.entry((db, k.clone())).or_default();
            if !q.contains(&id) {
                q.push_back(id);
            }
        }
        if let Some(t) = deadline {
            self.deadlines.insert((t, id));
        }
    }

    pub fn remove(&mut self, id: ClientId, db: usize, keys: &[Bytes], deadline: Option<i64>) {
        for k in keys {
            let key = (db, k.clone());
            if let Some(q) = self.by_key.get_mut(&key) {
                q.retain(|c| *c != id);
                if q.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
        if let Some(t) = deadline {
            self.deadlines.remove(&(t, id));
        }
    }

    /// Clients waiting on a key, oldest first.
    pub fn waiting(&self, db: usize, key: &Bytes) -> Vec<ClientId> {
        self.by_key
            .get(&(db, key.clone()))
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn has_waiters(&self, db: usize, key: &Bytes) -> bool {
        self.by_key.contains_key(&(db, key.clone()))
    }

    /// Clients whose deadline has passed.
    pub fn expired(&self, now: i64) -> Vec<ClientId> {
        self.deadlines
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Keys of one database that clients are blocked on (SWAPDB re-checks them).
    pub fn keys_in_db(&self, db: usize) -> Vec<Bytes> {
        self.by_key
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.by_key.len()
    }
}
