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
/// sits under a stable signed index and LPUSH/RPOP touch one record each. A middle edit
/// (LINSERT, LREM) shifts the elements on the shorter side of the edit point by one and moves
/// that end, so it rewrites min(i, n-1-i) + 1 records instead of the whole list.
#[derive(Debug, Default)]
pub struct List {
    items: VecDeque<Bytes>,
    /// Logical index of `items[0]`.
    head: i64,
    /// Logical range on disk at the last commit.
    pub(crate) base: (i64, i64),
    /// Part of `base` untouched since (still on disk under the same index). Only shrinks
    /// between commits.
    keep: (i64, i64),
    /// Index ranges inside `keep` whose contents changed in place (LSET, middle-edit shifts).
    touched: Vec<(i64, i64)>,
    /// `touched` is merged when it grows to this length (bounds it by the list's length).
    merge_at: usize,
    /// The list is written afresh under a new version (set when an LREM would otherwise write
    /// more records than the list keeps).
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
        self.clip_keep();
        Some(v)
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        let v = self.items.pop_back()?;
        self.clip_keep();
        Some(v)
    }

    /// LSET: replaces the element at position `i` (0-based from the head).
    pub fn set(&mut self, i: usize, v: Bytes) {
        self.items[i] = v;
        let idx = self.head + i as i64;
        self.touch(idx, idx + 1);
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

    /// LINSERT: `v` goes to position `i` (0..=len). The elements on the shorter side move one
    /// step outward (the head one index down, or the tail one up): min(i, n-i) + 1 records.
    pub fn insert(&mut self, i: usize, v: Bytes) {
        let n = self.items.len();
        self.items.insert(i, v);
        if i <= n - i {
            self.head -= 1;
            self.touch(self.head, self.head + i as i64 + 1);
        } else {
            self.touch(self.head + i as i64, self.tail());
        }
    }

    /// LREM: removes the elements at `pos` (ascending, distinct, in range). The first `s`
    /// removals close up from the head side (the elements before them move toward the tail and
    /// the head index rises by `s`), the rest from the tail side, with `s` chosen to write the
    /// fewest records. When even that is more than the list keeps (many matches spread over
    /// it), the list is rewritten under a new version instead: fewer records in the redo log,
    /// the old version reclaimed in the background.
    pub fn remove_at(&mut self, pos: &[usize]) {
        let (n, k) = (self.items.len(), pos.len());
        if k == 0 {
            return;
        }
        // Records for split `s`: the elements before pos[s-1] and the s indexes vacated at the
        // head, plus the elements after pos[s] and the k-s indexes vacated at the tail.
        let cost = |s: usize| {
            (if s > 0 { pos[s - 1] + 1 } else { 0 }) + (if s < k { n - pos[s] } else { 0 })
        };
        let s = (0..=k).min_by_key(|&s| cost(s)).expect("non-empty range");
        if k == 1 {
            self.items.remove(pos[0]);
        } else {
            let (mut at, mut next) = (0, 0);
            self.items.retain(|_| {
                let drop = next < k && pos[next] == at;
                next += drop as usize;
                at += 1;
                !drop
            });
        }
        if cost(s) > n - k {
            self.rewrite = true;
            return;
        }
        let front = if s > 0 { pos[s - 1] + 1 - s } else { 0 };
        let back = if s < k { n - pos[s] - (k - s) } else { 0 };
        self.head += s as i64;
        self.clip_keep();
        let (h, t) = (self.head, self.tail());
        self.touch(h, h + front as i64);
        self.touch(t - back as i64, t);
    }

    /// Shrinks `keep` to the list's current range (after pops and middle edits).
    fn clip_keep(&mut self) {
        let k0 = self.keep.0.max(self.head);
        let k1 = self.keep.1.min(self.tail()).max(k0);
        self.keep = (k0, k1);
    }

    /// Notes that indexes `lo..hi` now hold other elements than on disk.
    fn touch(&mut self, lo: i64, hi: i64) {
        let (lo, hi) = (lo.max(self.keep.0), hi.min(self.keep.1));
        if lo >= hi || self.rewrite {
            return;
        }
        self.touched.push((lo, hi));
        if self.touched.len() >= self.merge_at.max(64) {
            self.touched = merged(std::mem::take(&mut self.touched), self.keep);
            self.merge_at = 2 * self.touched.len();
        }
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
            let inside = (k0.max(h), k1.min(t));
            for (a, b) in merged(std::mem::take(&mut self.touched), inside) {
                for i in a..b {
                    put(i, &self.items);
                }
            }
            // Indices that were on disk and are outside the list now: popped from either end,
            // or vacated by a middle edit.
            let (b0, b1) = self.base;
            let dels = (b0..b1.min(h)).chain(b0.max(t)..b1).collect();
            ListChanges::Delta { puts, dels }
        };
        self.base = (self.head, self.tail());
        self.keep = self.base;
        self.touched = Vec::new();
        self.merge_at = 0;
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

/// `ranges` clipped to `within`, sorted and merged into disjoint ranges.
fn merged(mut ranges: Vec<(i64, i64)>, within: (i64, i64)) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (a, b) in ranges {
        let (a, b) = (a.max(within.0), b.min(within.1));
        if a >= b {
            continue;
        }
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    /// Applies a commit's records to `disk` (one list's element records, index → element) as
    /// change capture does (`All` is a new version: the old records are gone); returns how
    /// many records it wrote.
    fn commit(l: &mut List, disk: &mut BTreeMap<i64, Bytes>, all: bool) -> usize {
        match l.take_changes(all) {
            ListChanges::All { head } => {
                disk.clear();
                for (i, x) in l.iter().enumerate() {
                    disk.insert(head + i as i64, x.clone());
                }
                l.len()
            }
            ListChanges::Delta { puts, dels } => {
                let n = puts.len() + dels.len();
                let mut seen = HashSet::new();
                for (i, x) in puts {
                    assert!(seen.insert(i), "index {i} written twice");
                    disk.insert(i, x);
                }
                for i in dels {
                    assert!(seen.insert(i), "index {i} written and deleted");
                    assert!(disk.remove(&i).is_some(), "delete of {i}, not on disk");
                }
                n
            }
        }
    }

    /// What the store must hold: every element under head + position, nothing else.
    fn check(l: &List, model: &VecDeque<Bytes>, disk: &BTreeMap<i64, Bytes>) {
        assert_eq!(&l.items, model);
        let want: BTreeMap<i64, Bytes> = (l.head()..l.tail()).zip(model.iter().cloned()).collect();
        assert_eq!(disk, &want, "head {} tail {}", l.head(), l.tail());
    }

    fn b(n: u64) -> Bytes {
        Bytes::from(n.to_string())
    }

    /// One random list operation on both the list and the model; below `size` elements,
    /// mostly one that adds.
    fn step(rng: &mut StdRng, l: &mut List, m: &mut VecDeque<Bytes>, n: &mut u64, size: usize) {
        *n += 1;
        let len = m.len();
        let op = match rng.gen_range(0..10) {
            op if len < size && rng.gen_bool(0.5) => [0, 1, 6, 7][op % 4],
            op => op,
        };
        match op {
            0 => {
                l.push_front(b(*n));
                m.push_front(b(*n));
            }
            1 => {
                l.push_back(b(*n));
                m.push_back(b(*n));
            }
            2 => assert_eq!(l.pop_front(), m.pop_front()),
            3 => assert_eq!(l.pop_back(), m.pop_back()),
            4 if len > 0 => {
                let i = rng.gen_range(0..len);
                l.set(i, b(*n));
                m[i] = b(*n);
            }
            5 if len > 0 && rng.gen_bool(0.3) => {
                let s = rng.gen_range(0..len);
                let e = rng.gen_range(s..len);
                l.trim(s, e);
                m.truncate(e + 1);
                m.drain(..s);
            }
            6 | 7 => {
                let i = rng.gen_range(0..=len);
                l.insert(i, b(*n));
                m.insert(i, b(*n));
            }
            _ if len > 0 => {
                let most = if rng.gen_bool(0.8) { 1 } else { 6 };
                let k = rng.gen_range(1..=len.min(most));
                let mut pos = rand::seq::index::sample(rng, len, k).into_vec();
                pos.sort_unstable();
                l.remove_at(&pos);
                for &p in pos.iter().rev() {
                    m.remove(p);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn list_journal_matches_records_on_random_operations() {
        for seed in 0..300u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut l = List::new();
            let mut m = VecDeque::new();
            let mut disk = BTreeMap::new();
            let mut n = 0;
            let size = rng.gen_range(0..300);
            for _ in 0..size {
                step(&mut rng, &mut l, &mut m, &mut n, size);
            }
            commit(&mut l, &mut disk, true);
            check(&l, &m, &disk);
            for _ in 0..200 {
                // Several operations per loop turn (sometimes enough to merge `touched`), then
                // the commit.
                let ops = if rng.gen_bool(0.05) {
                    300
                } else {
                    rng.gen_range(1..6)
                };
                for _ in 0..ops {
                    step(&mut rng, &mut l, &mut m, &mut n, size);
                }
                commit(&mut l, &mut disk, rng.gen_bool(0.02));
                check(&l, &m, &disk);
                if rng.gen_bool(0.05) && !m.is_empty() {
                    // A restart: the list as loaded from its records.
                    let first = *disk.keys().next().expect("non-empty");
                    l = List::loaded(disk.values().cloned().collect(), first);
                    check(&l, &m, &disk);
                }
            }
        }
    }

    fn clean(n: u64) -> (List, BTreeMap<i64, Bytes>) {
        let mut l: List = (0..n).map(b).collect();
        let mut disk = BTreeMap::new();
        commit(&mut l, &mut disk, true);
        (l, disk)
    }

    #[test]
    fn a_middle_edit_rewrites_only_the_shorter_side() {
        for n in [1u64, 2, 3, 50, 2000] {
            for i in (0..n).step_by((n as usize / 25).max(1)).chain([n - 1]) {
                let (mut l, mut disk) = clean(n);
                l.remove_at(&[i as usize]);
                let want = i.min(n - 1 - i) as usize + 1;
                let wrote = commit(&mut l, &mut disk, false);
                if n > 1 {
                    assert_eq!(wrote, want, "LREM at {i} of {n}");
                }
                let (mut l, mut disk) = clean(n);
                l.insert(i as usize, b(9999));
                let want = i.min(n - i) as usize + 1;
                assert_eq!(
                    commit(&mut l, &mut disk, false),
                    want,
                    "LINSERT at {i} of {n}"
                );
            }
        }
    }

    #[test]
    fn removals_split_between_the_two_ends() {
        let (mut l, mut disk) = clean(100);
        // Two near the head, one near the tail: element 0 moves and 2 indexes are vacated at
        // the head, elements 98 and 99 move and one is vacated at the tail.
        l.remove_at(&[1, 2, 97]);
        assert_eq!(commit(&mut l, &mut disk, false), 6);
        // Every other element: shifting would write more records than the 48 left.
        let pos: Vec<usize> = (0..97).step_by(2).collect();
        l.remove_at(&pos);
        assert!(l.rewrite);
        assert!(matches!(l.take_changes(false), ListChanges::All { .. }));
    }
}
