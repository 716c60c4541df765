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

/// One page of a collection without its own index (hash fields, set and zset members): the
/// elements are ranked by hash on each call. Small collections are returned whole, as Redis
/// does for its compact encodings.
pub fn page_unordered<'a, I>(
    items: I,
    len: usize,
    cursor: u64,
    count: usize,
) -> (Vec<&'a Bytes>, u64)
where
    I: Iterator<Item = &'a Bytes>,
{
    if cursor == 0 && len <= 128 {
        return (items.collect(), 0);
    }
    let mut ranked: Vec<(u64, &Bytes)> = items
        .map(|k| (key_hash(k), k))
        .filter(|(h, _)| *h >= cursor)
        .collect();
    ranked.sort_unstable();
    let mut out = Vec::new();
    let mut last = None;
    for (h, k) in ranked {
        if out.len() >= count && last != Some(h) {
            return (out, h);
        }
        last = Some(h);
        out.push(k);
    }
    (out, 0)
}
