//! SCAN cursors. A cursor is the fixed 64-bit hash of the next element to return: elements are
//! visited in hash order, so inserts and deletes during a scan never hide an element that stays
//! present throughout, and a finished scan returns cursor 0, as Redis guarantees.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

/// SipHash with fixed keys: stable across restarts, so a client's cursor stays meaningful.
pub fn key_hash(key: &[u8]) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// One page from a hash-ordered index: up to `count` keys with hash >= `cursor`, keeping keys that
/// share a hash together. Returns the keys and the next cursor (0 when done).
pub fn page_ordered(
    order: &BTreeSet<(u64, Bytes)>,
    cursor: u64,
    count: usize,
) -> (Vec<Bytes>, u64) {
    let mut out = Vec::new();
    let mut last_hash = None;
    for (h, k) in order.range((cursor, Bytes::new())..) {
        if out.len() >= count && last_hash != Some(*h) {
            return (out, *h);
        }
        last_hash = Some(*h);
        out.push(k.clone());
    }
    (out, 0)
}

/// The number of buckets Redis's dict has for `len` elements: a power of two, at least 4,
/// grown when an insert finds it full (and sized to the length on conversion from a compact
/// encoding), so the smallest power of two >= `len`.
fn dict_size(len: usize) -> u64 {
    (len.max(4).next_power_of_two()) as u64
}

/// The `bits` low bits of `v` in reverse order.
fn rev_bits(v: u64, bits: u32) -> u64 {
    if bits == 0 {
        0
    } else {
        v.reverse_bits() >> (64 - bits)
    }
}

/// One page of a hashtable-encoded collection (hash fields, set and zset members), as Redis's
/// `scanGenericCommand` walks a dict: the element of hash `h` is in bucket `h & mask` of a
/// table sized for the current length, buckets are visited in reverse-binary cursor order
/// (`dictScan`), whole buckets at a time, until `count` elements are collected, the table ends
/// (cursor 0) or `count * 10` more buckets were visited. The cursor is a bucket index, so it
/// stays below the table size as Redis's does, and the reverse-binary order keeps the guarantee
/// across resizes: an element present for the whole scan is returned at least once.
/// `weight` is what each element adds to the count (2 for HSCAN/ZSCAN: field and value).
pub fn page_dict<'a, I>(
    items: I,
    len: usize,
    cursor: u64,
    count: usize,
    weight: usize,
) -> (Vec<&'a Bytes>, u64)
where
    I: Iterator<Item = &'a Bytes>,
{
    let size = dict_size(len);
    let bits = size.trailing_zeros();
    let mask = size - 1;
    let count = count.saturating_mul(weight);
    let start = rev_bits(cursor & mask, bits);
    let mut ranked: Vec<(u64, &Bytes)> = items
        .map(|k| (rev_bits(key_hash(k) & mask, bits), k))
        .filter(|(pos, _)| *pos >= start)
        .collect();
    ranked.sort_unstable_by_key(|(pos, _)| *pos);
    let mut out = Vec::new();
    let mut collected = 0usize;
    let mut idx = 0;
    let mut pos = start;
    let mut budget = count.saturating_mul(10);
    loop {
        // One dictScan call: every element of bucket `pos`.
        while idx < ranked.len() && ranked[idx].0 == pos {
            out.push(ranked[idx].1);
            collected = collected.saturating_add(weight);
            idx += 1;
        }
        pos += 1;
        if pos == size {
            return (out, 0);
        }
        if budget == 0 || collected >= count {
            return (out, rev_bits(pos, bits));
        }
        budget -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(live: &mut Vec<Bytes>, count: usize, mut between: impl FnMut(&mut Vec<Bytes>)) {
        let mut seen = std::collections::HashSet::new();
        let stable: Vec<Bytes> = live.clone();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            let (page, next) = page_dict(live.iter(), live.len(), cursor, count, 1);
            assert!(next < dict_size(live.len()), "cursor within the table");
            seen.extend(page.into_iter().cloned());
            calls += 1;
            if next == 0 {
                break;
            }
            cursor = next;
            between(live);
        }
        assert!(calls > 1, "paged");
        for k in stable.iter().filter(|k| live.contains(k)) {
            assert!(seen.contains(k), "missed {k:?}");
        }
    }

    fn keys(range: std::ops::Range<usize>) -> Vec<Bytes> {
        range.map(|i| Bytes::from(format!("member:{i}"))).collect()
    }

    #[test]
    fn pages_by_count_and_ends_at_zero() {
        let items = keys(0..65);
        let (first, c1) = page_dict(items.iter(), items.len(), 0, 50, 1);
        assert!(first.len() >= 50 && c1 != 0);
        let (second, c2) = page_dict(items.iter(), items.len(), c1, 50, 1);
        assert_eq!(c2, 0);
        assert_eq!(first.len() + second.len(), 65);
    }

    #[test]
    fn every_stable_element_survives_growth_and_shrinking() {
        let mut live = keys(0..100);
        let mut next = 1000;
        scan_all(&mut live, 7, |l| {
            l.extend(keys(next..next + 40));
            next += 40;
        });
        let mut live = keys(0..1000);
        scan_all(&mut live, 13, |l| {
            let keep = l.len() * 2 / 3;
            l.truncate(keep);
        });
    }
}
