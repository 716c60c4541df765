//! Sorted set: member -> score map plus an index ordered by (score, member bytes), as Redis's
//! skiplist orders ties lexicographically.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

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

#[derive(Debug, Clone, Default)]
pub struct ZSet {
    scores: HashMap<Bytes, f64>,
    index: BTreeSet<(Score, Bytes)>,
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
                    self.index.remove(&(Score(*old), member.clone()));
                    *old = score;
                    self.index.insert((Score(score), member));
                }
                false
            }
            None => {
                self.scores.insert(member.clone(), score);
                self.index.insert((Score(score), member));
                true
            }
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove_entry(member) {
            Some((m, s)) => {
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
        let key = (Score(score), Bytes::copy_from_slice(member));
        if rev {
            Some(
                self.index
                    .range((Bound::Excluded(key), Bound::Unbounded))
                    .count(),
            )
        } else {
            Some(self.index.range(..key).count())
        }
    }

    /// Members within a score range, ascending, lazily (LIMIT 0 1 on a huge set is cheap).
    pub fn range_by_score(&self, min: ScoreBound, max: ScoreBound) -> ZIter<'_> {
        if Self::empty_range(min, max) {
            return Box::new(std::iter::empty());
        }
        let from = (
            Bound::Included((Score(min.value), Bytes::new())),
            Bound::Unbounded,
        );
        Box::new(
            self.index
                .range(from)
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
        let upper = if max.value == f64::INFINITY {
            Bound::Unbounded
        } else {
            Bound::Excluded((Score(max.value.next_up()), Bytes::new()))
        };
        Box::new(
            self.index
                .range((Bound::Unbounded, upper))
                .rev()
                .skip_while(move |(s, _)| max.exclusive && s.0 == max.value)
                .take_while(move |(s, _)| s.0 > min.value || (!min.exclusive && s.0 == min.value))
                .map(|(s, m)| (m, s.0)),
        )
    }

    fn empty_range(min: ScoreBound, max: ScoreBound) -> bool {
        min.value > max.value || (min.value == max.value && (min.exclusive || max.exclusive))
    }

    /// Where an ascending lex scan can start: when every score is equal (the case lex ranges
    /// are meant for) the index is in member order, so it can seek; otherwise from the start.
    fn lex_start(&self, min: &LexBound) -> Bound<(Score, Bytes)> {
        let (Some((lo, _)), Some((hi, _))) = (self.index.first(), self.index.last()) else {
            return Bound::Unbounded;
        };
        match min {
            LexBound::Inclusive(b) | LexBound::Exclusive(b) if lo == hi => {
                Bound::Included((*lo, b.clone()))
            }
            _ => Bound::Unbounded,
        }
    }

    /// The same for a descending scan, from the max end.
    fn lex_end(&self, max: &LexBound) -> Bound<(Score, Bytes)> {
        let (Some((lo, _)), Some((hi, _))) = (self.index.first(), self.index.last()) else {
            return Bound::Unbounded;
        };
        match max {
            LexBound::Inclusive(b) | LexBound::Exclusive(b) if lo == hi => {
                Bound::Included((*lo, b.clone()))
            }
            _ => Bound::Unbounded,
        }
    }

    /// Members within a lex range, ascending (meaningful when all scores are equal).
    pub fn range_by_lex<'a>(&'a self, min: &'a LexBound, max: &'a LexBound) -> ZIter<'a> {
        Box::new(
            self.index
                .range((self.lex_start(min), Bound::Unbounded))
                .skip_while(move |(_, m)| !lex_gte_min(m, min))
                .take_while(move |(_, m)| lex_lte_max(m, max))
                .map(|(s, m)| (m, s.0)),
        )
    }

    /// Members within a lex range, descending.
    pub fn rev_range_by_lex<'a>(&'a self, min: &'a LexBound, max: &'a LexBound) -> ZIter<'a> {
        Box::new(
            self.index
                .range((Bound::Unbounded, self.lex_end(max)))
                .rev()
                .skip_while(move |(_, m)| !lex_lte_max(m, max))
                .take_while(move |(_, m)| lex_gte_min(m, min))
                .map(|(s, m)| (m, s.0)),
        )
    }

    /// Elements with ranks `start..=end` (0-based, already clamped to the set), ascending, or
    /// counted from the highest score when `rev`.
    pub fn range_by_rank(&self, start: usize, end: usize, rev: bool) -> Vec<(Bytes, f64)> {
        let n = end + 1 - start;
        let map = |(s, m): &(Score, Bytes)| (m.clone(), s.0);
        if rev {
            self.index
                .iter()
                .rev()
                .skip(start)
                .take(n)
                .map(map)
                .collect()
        } else if start > self.len() / 2 {
            // Nearer the end: walk from the back.
            let skip_back = self.len() - 1 - end;
            let mut v: Vec<_> = self
                .index
                .iter()
                .rev()
                .skip(skip_back)
                .take(n)
                .map(map)
                .collect();
            v.reverse();
            v
        } else {
            self.index.iter().skip(start).take(n).map(map).collect()
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
        Some((m, s.0))
    }
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
