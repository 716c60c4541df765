//! Collection types that journal their own changes for persistence.
//!
//! Reads go through `Deref` to the inner std/indexmap collection; every mutation goes through a
//! method here, so the changes since the last commit are known without diffing or rewriting
//! the whole value. A clone is a new value: its journal is empty and it is written in full.

use std::collections::{HashSet, VecDeque};
use std::ops::Deref;

use bytes::Bytes;
use indexmap::IndexMap;

/// A list: its elements plus the logical index of the first one, so that on disk each element
/// sits under a stable signed index and LPUSH/RPOP touch one record each.
#[derive(Debug, Default)]
pub struct List {
    items: VecDeque<Bytes>,
    /// Logical index of `items[0]`.
    head: i64,
    /// Logical range on disk at the last commit.
    pub(crate) base: (i64, i64),
    /// Part of `base` untouched since (still on disk with the same contents).
    keep: (i64, i64),
    /// Indexes inside `keep` overwritten in place (LSET).
    touched: Vec<i64>,
    /// A middle edit (LINSERT, LREM): the list is written afresh under a new version.
    pub(crate) rewrite: bool,
}

impl Clone for List {
    fn clone(&self) -> Self {
        List::from(self.items.clone())
    }
}

impl Deref for List {
    type Target = VecDeque<Bytes>;
    fn deref(&self) -> &VecDeque<Bytes> {
        &self.items
    }
}

impl From<VecDeque<Bytes>> for List {
    fn from(items: VecDeque<Bytes>) -> Self {
        List {
            items,
            ..List::default()
        }
    }
}

impl FromIterator<Bytes> for List {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Self {
        List::from(iter.into_iter().collect::<VecDeque<_>>())
    }
}

/// What changed in a list since the last commit.
pub enum ListChanges {
    /// Write every element under indexes from `head`.
    All { head: i64 },
    /// Put these (index, value) records and delete these indexes.
    Delta {
        puts: Vec<(i64, Bytes)>,
        dels: Vec<i64>,
    },
}

impl List {
    pub fn new() -> Self {
        List::default()
    }

    pub fn head(&self) -> i64 {
        self.head
    }

    pub fn tail(&self) -> i64 {
        self.head + self.items.len() as i64
    }

    pub fn push_front(&mut self, v: Bytes) {
        self.head -= 1;
        self.items.push_front(v);
    }

    pub fn push_back(&mut self, v: Bytes) {
        self.items.push_back(v);
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        let v = self.items.pop_front()?;
        self.head += 1;
        self.keep.0 = self.keep.0.max(self.head);
        self.keep.1 = self.keep.1.max(self.keep.0);
        Some(v)
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        let v = self.items.pop_back()?;
        let tail = self.tail();
        self.keep.1 = self.keep.1.min(tail);
        self.keep.0 = self.keep.0.min(self.keep.1);
        Some(v)
    }

    /// LSET: replaces the element at position `i` (0-based from the head).
    pub fn set(&mut self, i: usize, v: Bytes) {
        self.items[i] = v;
        let idx = self.head + i as i64;
        if idx >= self.keep.0 && idx < self.keep.1 {
            self.touched.push(idx);
        }
    }

    /// LTRIM: keeps positions `s..=e` (both in range), as pops from each end.
    pub fn trim(&mut self, s: usize, e: usize) {
        let back = self.items.len() - 1 - e;
        for _ in 0..back {
            self.pop_back();
        }
        for _ in 0..s {
            self.pop_front();
        }
    }

    pub fn clear(&mut self) {
        while self.pop_back().is_some() {}
    }

    /// LINSERT.
    pub fn insert(&mut self, i: usize, v: Bytes) {
        self.items.insert(i, v);
        self.rewrite = true;
    }

    /// LREM and other middle edits.
    pub fn retain(&mut self, f: impl FnMut(&Bytes) -> bool) {
        self.items.retain(f);
        self.rewrite = true;
    }

    /// Takes the changes since the last commit and marks the current state as on disk.
    /// `all` asks for a full write (a new version).
    pub fn take_changes(&mut self, all: bool) -> ListChanges {
        let changes = if all || self.rewrite {
            self.head = 0;
            ListChanges::All { head: 0 }
        } else {
            let (h, t) = (self.head, self.tail());
            let (k0, k1) = self.keep;
            let mut puts = Vec::new();
            let mut put = |i: i64, items: &VecDeque<Bytes>| {
                puts.push((i, items[(i - h) as usize].clone()));
            };
            for i in h..t.min(k0.max(h)) {
                put(i, &self.items);
            }
            for i in k1.max(h).max(k0)..t {
                put(i, &self.items);
            }
            for &i in &self.touched {
                if i >= h && i < t && i >= k0 && i < k1 {
                    put(i, &self.items);
                }
            }
            // Indices that were on disk and are outside the list now: popped from either end.
            let (b0, b1) = self.base;
            let dels = (b0..b1.min(h)).chain(b0.max(t)..b1).collect();
            ListChanges::Delta { puts, dels }
        };
        self.base = (self.head, self.tail());
        self.keep = self.base;
        self.touched = Vec::new();
        self.rewrite = false;
        changes
    }

    /// After loading from disk: the elements sit at `head..` and all are on disk.
    pub fn loaded(items: VecDeque<Bytes>, head: i64) -> List {
        let mut l = List::from(items);
        l.head = head;
        l.base = (head, l.tail());
        l.keep = l.base;
        l
    }
}

/// A hash, insertion-ordered; each field carries a sequence number so the order survives a
/// restart, and the fields changed since the last commit are journaled.
#[derive(Debug, Default)]
pub struct Hash {
    map: IndexMap<Bytes, Bytes>,
    /// Sequence number of each field, parallel to `map`'s order.
    seqs: Vec<u64>,
    next_seq: u64,
    pub(crate) dirty: HashSet<Bytes>,
}

impl Clone for Hash {
    fn clone(&self) -> Self {
        Hash {
            map: self.map.clone(),
            seqs: self.seqs.clone(),
            next_seq: self.next_seq,
            dirty: HashSet::new(),
        }
    }
}

impl Deref for Hash {
    type Target = IndexMap<Bytes, Bytes>;
    fn deref(&self) -> &IndexMap<Bytes, Bytes> {
        &self.map
    }
}

impl From<IndexMap<Bytes, Bytes>> for Hash {
    fn from(map: IndexMap<Bytes, Bytes>) -> Self {
        let n = map.len() as u64;
        Hash {
            map,
            seqs: (0..n).collect(),
            next_seq: n,
            dirty: HashSet::new(),
        }
    }
}

impl FromIterator<(Bytes, Bytes)> for Hash {
    fn from_iter<I: IntoIterator<Item = (Bytes, Bytes)>>(iter: I) -> Self {
        Hash::from(iter.into_iter().collect::<IndexMap<_, _>>())
    }
}

impl Hash {
    pub fn new() -> Self {
        Hash::default()
    }

    pub fn insert(&mut self, k: Bytes, v: Bytes) -> Option<Bytes> {
        self.dirty.insert(k.clone());
        let (i, old) = self.map.insert_full(k, v);
        if old.is_none() {
            debug_assert_eq!(i, self.seqs.len());
            self.seqs.push(self.next_seq);
            self.next_seq += 1;
        }
        old
    }

    pub fn shift_remove(&mut self, k: &[u8]) -> Option<Bytes> {
        let (i, k, v) = self.map.shift_remove_full(k)?;
        self.seqs.remove(i);
        self.dirty.insert(k);
        Some(v)
    }

    pub fn swap_remove(&mut self, k: &[u8]) -> Option<Bytes> {
        let (i, k, v) = self.map.swap_remove_full(k)?;
        self.seqs.swap_remove(i);
        self.dirty.insert(k);
        Some(v)
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The field's value and sequence number.
    pub fn get_with_seq(&self, k: &[u8]) -> Option<(&Bytes, u64)> {
        let (i, _, v) = self.map.get_full(k)?;
        Some((v, self.seqs[i]))
    }

    pub fn iter_with_seq(&self) -> impl Iterator<Item = (&Bytes, &Bytes, u64)> {
        self.map
            .iter()
            .zip(self.seqs.iter())
            .map(|((k, v), s)| (k, v, *s))
    }

    /// After loading: fields in sequence order.
    pub fn loaded(mut fields: Vec<(u64, Bytes, Bytes)>, next_seq: u64) -> Hash {
        fields.sort_by_key(|f| f.0);
        let mut h = Hash {
            next_seq,
            ..Hash::default()
        };
        for (s, k, v) in fields {
            h.map.insert(k, v);
            h.seqs.push(s);
            h.next_seq = h.next_seq.max(s + 1);
        }
        h
    }
}

/// A set that journals the members added or removed since the last commit.
#[derive(Debug, Default)]
pub struct Set {
    set: HashSet<Bytes>,
    pub(crate) dirty: HashSet<Bytes>,
}

impl Clone for Set {
    fn clone(&self) -> Self {
        Set::from(self.set.clone())
    }
}

impl Deref for Set {
    type Target = HashSet<Bytes>;
    fn deref(&self) -> &HashSet<Bytes> {
        &self.set
    }
}

impl From<HashSet<Bytes>> for Set {
    fn from(set: HashSet<Bytes>) -> Self {
        Set {
            set,
            dirty: HashSet::new(),
        }
    }
}

impl FromIterator<Bytes> for Set {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Self {
        Set::from(iter.into_iter().collect::<HashSet<_>>())
    }
}

impl Set {
    pub fn new() -> Self {
        Set::default()
    }

    pub fn insert(&mut self, m: Bytes) -> bool {
        if self.set.insert(m.clone()) {
            self.dirty.insert(m);
            true
        } else {
            false
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.set.take(m) {
            Some(m) => {
                self.dirty.insert(m);
                true
            }
            None => false,
        }
    }
}

impl<'a> IntoIterator for &'a List {
    type Item = &'a Bytes;
    type IntoIter = std::collections::vec_deque::Iter<'a, Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<'a> IntoIterator for &'a Hash {
    type Item = (&'a Bytes, &'a Bytes);
    type IntoIter = indexmap::map::Iter<'a, Bytes, Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<'a> IntoIterator for &'a Set {
    type Item = &'a Bytes;
    type IntoIter = std::collections::hash_set::Iter<'a, Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.set.iter()
    }
}
