//! Sorted set: member -> score map plus an index ordered by (score, member bytes), as Redis's
//! skiplist orders ties lexicographically.
//!
//! The index is a list of sorted chunks (a two-level B-tree): inserts and deletes move at most
//! one chunk's elements, and ranks and rank offsets (ZRANK, ZRANGE 5000 5010, LIMIT offsets)
//! cost one pass over the chunk lengths instead of a walk over the elements.

use std::cmp::Ordering;
use std::collections::HashMap;

use bytes::Bytes;

/// A score; never NaN, so the order is total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

pub type ZIter<'a> = Box<dyn Iterator<Item = (&'a Bytes, f64)> + 'a>;

type Item = (Score, Bytes);

/// Largest chunk before it is split in two.
const CHUNK_MAX: usize = 512;

/// Ordered (score, member) pairs with positional access.
#[derive(Debug, Clone, Default)]
struct Index {
    /// Non-empty sorted chunks; every element of a chunk sorts before the next chunk's.
    chunks: Vec<Vec<Item>>,
    len: usize,
}

impl Index {
    /// The chunk an item belongs in: the first whose last element is >= it (or the last one).
    fn chunk_for(&self, item: &Item) -> usize {
        let ci = self
            .chunks
            .partition_point(|c| c.last().expect("non-empty") < item);
        ci.min(self.chunks.len().saturating_sub(1))
    }

    fn insert(&mut self, item: Item) {
        if self.chunks.is_empty() {
            self.chunks.push(vec![item]);
            self.len = 1;
            return;
        }
        let ci = self.chunk_for(&item);
        let chunk = &mut self.chunks[ci];
        let pos = chunk.partition_point(|x| x < &item);
        chunk.insert(pos, item);
        self.len += 1;
        if chunk.len() > CHUNK_MAX {
            let tail = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(ci + 1, tail);
        }
    }

    fn remove(&mut self, item: &Item) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let ci = self.chunk_for(item);
        let chunk = &mut self.chunks[ci];
        match chunk.binary_search(item) {
            Ok(pos) => {
                chunk.remove(pos);
                if chunk.is_empty() {
                    self.chunks.remove(ci);
                }
                self.len -= 1;
                true
            }
            Err(_) => false,
        }
    }

    fn prefix(&self, ci: usize) -> usize {
        self.chunks[..ci].iter().map(Vec::len).sum()
    }

    /// Global position of the first element >= item (`strict`: > item).
    fn bound(&self, item: &Item, strict: bool) -> usize {
        let ci = self.chunks.partition_point(|c| {
            let last = c.last().expect("non-empty");
            if strict {
                last <= item
            } else {
                last < item
            }
        });
        if ci == self.chunks.len() {
            return self.len;
        }
        let c = &self.chunks[ci];
        let pos = if strict {
            c.partition_point(|x| x <= item)
        } else {
            c.partition_point(|x| x < item)
        };
        self.prefix(ci) + pos
    }

    /// (chunk, offset) of a global position; (chunks.len(), 0) past the end.
    fn locate(&self, mut pos: usize) -> (usize, usize) {
        for (ci, c) in self.chunks.iter().enumerate() {
            if pos < c.len() {
                return (ci, pos);
            }
            pos -= c.len();
        }
        (self.chunks.len(), 0)
    }

    /// Ascending from global position `pos`.
    fn iter_from(&self, pos: usize) -> impl Iterator<Item = &Item> + '_ {
        let (ci, off) = self.locate(pos);
        let head: &[Item] = self.chunks.get(ci).map_or(&[], |c| &c[off..]);
        let rest = self.chunks.get(ci + 1..).unwrap_or(&[]);
        head.iter().chain(rest.iter().flatten())
    }

    /// Descending from the element before global position `end`.
    fn iter_rev_before(&self, end: usize) -> impl Iterator<Item = &Item> + '_ {
        let (ci, off) = self.locate(end);
        let head: &[Item] = self.chunks.get(ci).map_or(&[], |c| &c[..off]);
        let rest = &self.chunks[..ci.min(self.chunks.len())];
        head.iter()
            .rev()
            .chain(rest.iter().rev().flat_map(|c| c.iter().rev()))
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &Item> + '_ {
        self.chunks.iter().flatten()
    }

    fn first(&self) -> Option<&Item> {
        self.chunks.first().and_then(|c| c.first())
    }

    fn last(&self) -> Option<&Item> {
        self.chunks.last().and_then(|c| c.last())
    }

    fn pop_first(&mut self) -> Option<Item> {
        let c = self.chunks.first_mut()?;
        let item = c.remove(0);
        if c.is_empty() {
            self.chunks.remove(0);
        }
        self.len -= 1;
        Some(item)
    }

    fn pop_last(&mut self) -> Option<Item> {
        let c = self.chunks.last_mut()?;
        let item = c.pop().expect("non-empty");
        if c.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        Some(item)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ZSet {
    scores: HashMap<Bytes, f64>,
    index: Index,
    /// Members added, rescored or removed since the last commit (persistence journal).
    pub(crate) dirty: std::collections::HashSet<Bytes>,
}

/// One end of a score range: `(x` is exclusive.
#[derive(Debug, Clone, Copy)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// One end of a lex range: `-`, `+`, `[x` or `(x`.
#[derive(Debug, Clone)]
pub enum LexBound {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets a member's score; returns true if the member is new.
    pub fn insert(&mut self, member: Bytes, score: f64) -> bool {
        // Redis's compact encoding stores -0 as the integer 0, so a stored -0 reads back as 0.
        let score = if score == 0.0 { 0.0 } else { score };
        self.insert_exact(member, score)
    }

    /// Like `insert` but keeps a -0 score (a ZUNION / ZINTER result that is only replied,
    /// which Redis builds as a skiplist and prints as `-0`).
    pub fn insert_exact(&mut self, member: Bytes, score: f64) -> bool {
        match self.scores.get_mut(&member) {
            Some(old) => {
                if *old != score {
                    self.dirty.insert(member.clone());
                    self.index.remove(&(Score(*old), member.clone()));
                    *old = score;
                    self.index.insert((Score(score), member));
                }
                false
            }
            None => {
                self.dirty.insert(member.clone());
                self.scores.insert(member.clone(), score);
                self.index.insert((Score(score), member));
                true
            }
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove_entry(member) {
            Some((m, s)) => {
                self.dirty.insert(m.clone());
                self.index.remove(&(Score(s), m));
                true
            }
            None => false,
        }
    }

    pub fn members(&self) -> impl Iterator<Item = &Bytes> {
        self.scores.keys()
    }

    /// Ascending by (score, member).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        self.index.iter().map(|(s, m)| (m, s.0))
    }

    /// 0-based rank in ascending order (or descending, `rev`).
    pub fn rank(&self, member: &[u8], rev: bool) -> Option<usize> {
        let score = self.score(member)?;
        let r = self
            .index
            .bound(&(Score(score), Bytes::copy_from_slice(member)), false);
        Some(if rev { self.len() - 1 - r } else { r })
    }

    /// Members within a score range, ascending, lazily (LIMIT 0 1 on a huge set is cheap).
    pub fn range_by_score(&self, min: ScoreBound, max: ScoreBound) -> ZIter<'_> {
        if Self::empty_range(min, max) {
            return Box::new(std::iter::empty());
        }
        let start = self.index.bound(&(Score(min.value), Bytes::new()), false);
        Box::new(
            self.index
                .iter_from(start)
                .skip_while(move |(s, _)| min.exclusive && s.0 == min.value)
                .take_while(move |(s, _)| s.0 < max.value || (!max.exclusive && s.0 == max.value))
                .map(|(s, m)| (m, s.0)),
        )
    }

    /// Members within a score range, descending.
    pub fn rev_range_by_score(&self, min: ScoreBound, max: ScoreBound) -> ZIter<'_> {
        if Self::empty_range(min, max) {
            return Box::new(std::iter::empty());
        }
        let end = if max.value == f64::INFINITY {
            self.index.len
        } else {
            self.index
                .bound(&(Score(max.value.next_up()), Bytes::new()), false)
        };
        Box::new(
            self.index
                .iter_rev_before(end)
                .skip_while(move |(s, _)| max.exclusive && s.0 == max.value)
                .take_while(move |(s, _)| s.0 > min.value || (!min.exclusive && s.0 == min.value))
                .map(|(s, m)| (m, s.0)),
        )
    }

    fn empty_range(min: ScoreBound, max: ScoreBound) -> bool {
        min.value > max.value || (min.value == max.value && (min.exclusive || max.exclusive))
    }

    /// The single score every member has, if so: lex ranges are meant for that case, where
    /// the index is in member order and a lex bound can be sought directly.
    fn uniform_score(&self) -> Option<Score> {
        match (self.index.first(), self.index.last()) {
            (Some((lo, _)), Some((hi, _))) if lo == hi => Some(*lo),
            _ => None,
        }
    }

    fn lex_seek(&self, b: &LexBound, strict: bool) -> Option<usize> {
        let s = self.uniform_score()?;
        match b {
            LexBound::Inclusive(m) | LexBound::Exclusive(m) => {
                Some(self.index.bound(&(s, m.clone()), strict))
            }
            _ => None,
        }
    }

    /// Members within a lex range, as Redis's listpack walk finds them (`zzlFirstInLexRange`,
    /// `zzlLastInLexRange`, `genericZrangebylexCommand`): nothing when the range is empty or the
    /// last member (in score order) is below `min` or the first above `max`; otherwise from the
    /// first member >= `min` (the last <= `max` when `rev`), which must itself be within the
    /// range, `offset` members are skipped without looking at them, then members are taken
    /// while they stay <= `max` (>= `min`), at most `limit` (negative: no limit). With one score
    /// for every member this is the plain lex range; with mixed scores it is Redis's answer.
    pub fn lex_walk<'a>(
        &'a self,
        min: &'a LexBound,
        max: &'a LexBound,
        rev: bool,
        offset: i64,
        limit: i64,
    ) -> ZIter<'a> {
        if offset < 0 || lex_range_empty(min, max) {
            return Box::new(std::iter::empty());
        }
        let (Some((_, first)), Some((_, last))) = (self.index.first(), self.index.last()) else {
            return Box::new(std::iter::empty());
        };
        if !lex_gte_min(last, min) || !lex_lte_max(first, max) {
            return Box::new(std::iter::empty());
        }
        let take = if limit < 0 {
            usize::MAX
        } else {
            limit as usize
        };
        let map = |(s, m): &'a Item| (m, s.0);
        if rev {
            // With one score the members are in lex order: those after the seek are > max.
            let hint = self.lex_seek(max, true).unwrap_or(self.index.len);
            let Some(skipped) = self
                .index
                .iter_rev_before(hint)
                .position(|(_, m)| lex_lte_max(m, max))
            else {
                return Box::new(std::iter::empty());
            };
            let end = hint - skipped;
            let (_, m) = self.index.iter_rev_before(end).next().expect("found");
            if !lex_gte_min(m, min) {
                return Box::new(std::iter::empty());
            }
            let end = end - offset.min(end as i64) as usize;
            Box::new(
                self.index
                    .iter_rev_before(end)
                    .take_while(move |(_, m)| lex_gte_min(m, min))
                    .take(take)
                    .map(map),
            )
        } else {
            let hint = self.lex_seek(min, false).unwrap_or(0);
            let Some(skipped) = self
                .index
                .iter_from(hint)
                .position(|(_, m)| lex_gte_min(m, min))
            else {
                return Box::new(std::iter::empty());
            };
            let start = hint + skipped;
            let (_, m) = self.index.iter_from(start).next().expect("found");
            if !lex_lte_max(m, max) {
                return Box::new(std::iter::empty());
            }
            let start = start.saturating_add(offset.min(self.len() as i64) as usize);
            Box::new(
                self.index
                    .iter_from(start.min(self.len()))
                    .take_while(move |(_, m)| lex_lte_max(m, max))
                    .take(take)
                    .map(map),
            )
        }
    }

    /// Elements with ranks `start..=end` (0-based, already clamped to the set), ascending, or
    /// counted from the highest score when `rev`.
    pub fn range_by_rank(&self, start: usize, end: usize, rev: bool) -> Vec<(Bytes, f64)> {
        let n = end + 1 - start;
        let map = |(s, m): &Item| (m.clone(), s.0);
        if rev {
            self.index
                .iter_rev_before(self.len() - start)
                .take(n)
                .map(map)
                .collect()
        } else {
            self.index.iter_from(start).take(n).map(map).collect()
        }
    }

    /// Removes and returns the lowest (or highest, `max`) element.
    pub fn pop(&mut self, max: bool) -> Option<(Bytes, f64)> {
        let (s, m) = if max {
            self.index.pop_last()?
        } else {
            self.index.pop_first()?
        };
        self.scores.remove(&m);
        self.dirty.insert(m.clone());
        Some((m, s.0))
    }
}

/// A range no member can be in (Redis's `sdscmplex(min, max)` test, `-` and `+` exclusive).
fn lex_range_empty(min: &LexBound, max: &LexBound) -> bool {
    use LexBound::*;
    let (cmp, ex) = match (min, max) {
        (Min, Min) | (Max, Max) => (Ordering::Equal, true),
        (Min, _) | (_, Max) => (Ordering::Less, true),
        (Max, _) | (_, Min) => (Ordering::Greater, true),
        (Inclusive(a) | Exclusive(a), Inclusive(b) | Exclusive(b)) => (
            a.cmp(b),
            matches!(min, Exclusive(_)) || matches!(max, Exclusive(_)),
        ),
    };
    cmp == Ordering::Greater || (cmp == Ordering::Equal && ex)
}

pub fn lex_gte_min(m: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Inclusive(b) => m >= &b[..],
        LexBound::Exclusive(b) => m > &b[..],
    }
}

pub fn lex_lte_max(m: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Inclusive(b) => m <= &b[..],
        LexBound::Exclusive(b) => m < &b[..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use std::collections::BTreeSet;

    fn b(s: String) -> Bytes {
        Bytes::from(s)
    }

    /// The chunked index against a BTreeSet model, through splits and emptied chunks.
    #[test]
    fn matches_btreeset_model() {
        let mut rng = rand::thread_rng();
        let mut z = ZSet::default();
        let mut model: BTreeSet<(Score, Bytes)> = BTreeSet::new();
        let mut scores: HashMap<Bytes, f64> = HashMap::new();
        for round in 0..20_000 {
            let m = b(format!("m{}", rng.gen_range(0..3000)));
            let s = rng.gen_range(0..50) as f64;
            if rng.gen_bool(0.65) {
                z.insert(m.clone(), s);
                if let Some(old) = scores.insert(m.clone(), s) {
                    model.remove(&(Score(old), m.clone()));
                }
                model.insert((Score(s), m));
            } else {
                z.remove(&m);
                if let Some(old) = scores.remove(&m) {
                    model.remove(&(Score(old), m));
                }
            }
            if round % 1000 == 0 {
                let got: Vec<_> = z.iter().map(|(m, s)| (Score(s), m.clone())).collect();
                let want: Vec<_> = model.iter().cloned().collect();
                assert_eq!(got, want);
                assert_eq!(z.index.len, model.len());
                for (i, (s, m)) in model.iter().enumerate().step_by(97) {
                    assert_eq!(z.rank(m, false), Some(i));
                    assert_eq!(z.rank(m, true), Some(model.len() - 1 - i));
                    let _ = s;
                }
                let n = model.len();
                if n > 10 {
                    let r = z.range_by_rank(3, n - 4, true);
                    let w: Vec<_> = model.iter().rev().skip(3).take(n - 6).collect();
                    assert_eq!(r.len(), w.len());
                    assert!(r.iter().zip(w).all(|(a, b)| a.0 == b.1 && a.1 == b.0 .0));
                }
                let lo = ScoreBound {
                    value: 10.0,
                    exclusive: true,
                };
                let hi = ScoreBound {
                    value: 20.0,
                    exclusive: false,
                };
                let fwd: Vec<_> = z.range_by_score(lo, hi).map(|(m, _)| m.clone()).collect();
                let want: Vec<_> = model
                    .iter()
                    .filter(|(s, _)| s.0 > 10.0 && s.0 <= 20.0)
                    .map(|(_, m)| m.clone())
                    .collect();
                assert_eq!(fwd, want);
                let mut rev: Vec<_> = z
                    .rev_range_by_score(lo, hi)
                    .map(|(m, _)| m.clone())
                    .collect();
                rev.reverse();
                assert_eq!(rev, want);
            }
        }
        while let Some((m, _)) = z.pop(true) {
            let last = model.pop_last().expect("model");
            assert_eq!(m, last.1);
        }
        assert!(model.is_empty());
        assert!(z.index.chunks.is_empty());
    }
}
