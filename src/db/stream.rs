//! Streams: entries by (ms, seq) id, consumer groups with their pending entries lists.
//!
//! Entries live in a BTreeMap. Redis stores them in listpack "nodes" (at most
//! `stream-node-max-entries` entries or `stream-node-max-bytes` bytes each) indexed by a radix
//! tree; approximate trimming (`~`) removes whole nodes only, and XINFO reports the radix tree's
//! size, so the node boundaries are modelled too (ids and an estimate of the listpack bytes).

use super::listpack::{int_size, str_size};
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

/// `stream-node-max-entries` and `stream-node-max-bytes` (0: no limit).
#[derive(Debug, Clone, Copy)]
pub struct NodeLimits {
    pub entries: usize,
    pub bytes: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            entries: 100,
            bytes: 4096,
        }
    }
}

/// `STREAM_LISTPACK_MAX_SIZE`.
const LISTPACK_MAX_SIZE: usize = 1 << 30;
/// `SCG_INVALID_ENTRIES_READ`.
pub const INVALID_READ: i64 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// `streamIncrID`: None on overflow.
    pub fn incr(&self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// `streamDecrID`: None on underflow.
    pub fn decr(&self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(format!("{}-{}", self.ms, self.seq))
    }

    fn key(&self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&self.ms.to_be_bytes());
        k[8..].copy_from_slice(&self.seq.to_be_bytes());
        k
    }
}

#[derive(Debug, Clone)]
pub struct Nack {
    pub delivery_time: i64,
    pub delivery_count: u64,
    pub consumer: Bytes,
}

#[derive(Debug, Clone)]
pub struct Consumer {
    pub seen_time: i64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// `streamCreateConsumer`: false if it already exists.
    pub fn create_consumer(&mut self, name: &Bytes, now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            name.clone(),
            Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Looks up (refreshing its seen time) or creates a consumer.
    pub fn touch_consumer(&mut self, name: &Bytes, now: i64) -> &mut Consumer {
        let c = self.consumers.entry(name.clone()).or_insert(Consumer {
            seen_time: now,
            pel: BTreeSet::new(),
        });
        c.seen_time = now;
        c
    }

    /// `streamDelConsumer`: the number of pending entries it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> usize {
        let Some(c) = self.consumers.remove(name) else {
            return 0;
        };
        for id in &c.pel {
            self.pel.remove(id);
        }
        c.pel.len()
    }

    /// Removes a pending entry from the group and its consumer.
    pub fn drop_nack(&mut self, id: &StreamId) -> bool {
        match self.pel.remove(id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(id);
                }
                true
            }
            None => false,
        }
    }

    /// Gives a pending entry to `consumer` (which must exist).
    pub fn assign(&mut self, id: StreamId, consumer: &Bytes) {
        let old = self.pel.get(&id).map(|n| n.consumer.clone());
        if let Some(old) = old {
            if old != consumer {
                if let Some(c) = self.consumers.get_mut(&old) {
                    c.pel.remove(&id);
                }
            }
        }
        if let Some(n) = self.pel.get_mut(&id) {
            n.consumer = consumer.clone();
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}

/// One listpack node: the ids it holds (deleted ones included) and its size estimate.
#[derive(Debug, Clone)]
struct Node {
    master_fields: Vec<Bytes>,
    ids: Vec<StreamId>,
    live: usize,
    /// Bytes of everything but the count and deleted counters.
    base_bytes: usize,
    /// The size last asked of the allocator (preallocated, grown, or shrunk to fit).
    alloc_req: usize,
}

impl Node {
    fn bytes(&self) -> usize {
        self.base_bytes + int_size(self.live as i64) + int_size((self.ids.len() - self.live) as i64)
    }
    fn master(&self) -> StreamId {
        self.ids[0]
    }
}

#[derive(Debug, Clone, Default)]
pub struct Stream {
    pub entries: BTreeMap<StreamId, Vec<Bytes>>,
    pub last_id: StreamId,
    pub entries_added: u64,
    pub max_deleted: StreamId,
    pub groups: BTreeMap<Bytes, Group>,
    /// Keyed by master id.
    nodes: BTreeMap<StreamId, Node>,
    /// Entries added or deleted since the last commit (persistence writes just these).
    pub dirty: std::collections::HashSet<StreamId>,
}

/// `raxSize`-style node count of a radix tree holding these equal-length keys.
fn rax_nodes(keys: &[[u8; 16]], depth: usize) -> usize {
    if keys.is_empty() || depth == 16 {
        return 1;
    }
    // Longest common prefix from `depth`.
    let first = &keys[0];
    let last = &keys[keys.len() - 1];
    let mut p = depth;
    while p < 16 && first[p] == last[p] {
        p += 1;
    }
    if p > depth {
        return 1 + rax_nodes(keys, p);
    }
    let mut total = 1;
    let mut i = 0;
    while i < keys.len() {
        let c = keys[i][depth];
        let mut j = i;
        while j < keys.len() && keys[j][depth] == c {
            j += 1;
        }
        total += rax_nodes(&keys[i..j], depth + 1);
        i = j;
    }
    total
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    /// `streamLastValidID`.
    pub fn last_valid_id(&self) -> StreamId {
        self.entries.keys().next_back().copied().unwrap_or_default()
    }

    pub fn rax_keys(&self) -> usize {
        self.nodes.len()
    }

    pub fn rax_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.key()).collect();
        rax_nodes(&keys, 0)
    }

    /// `objectComputeSize` for a stream (robj and value, not the key), sampling `samples`
    /// listpacks; `alloc` gives the allocator's size class for a request.
    pub fn memory(&self, alloc: &dyn Fn(usize) -> usize, samples: usize) -> usize {
        // streamRadixTreeMemoryUsage (its sizeof(rax) term is overwritten in Redis).
        let rax = |numele: usize, numnodes: usize| numele * 16 + numnodes * (4 + 8 * 30);
        let mut size = 16 + 80 + rax(self.nodes.len(), self.rax_nodes());
        let lps: Vec<usize> = self.nodes.values().map(|n| alloc(n.alloc_req)).collect();
        let sampled: Vec<usize> = lps.iter().take(samples.max(1)).copied().collect();
        if lps.len() <= sampled.len() {
            size += sampled.iter().sum::<usize>();
        } else {
            let avg = sampled.iter().sum::<usize>() / sampled.len();
            size += avg * (lps.len() - 1) + lps[lps.len() - 1];
        }
        let keys = |ids: &mut dyn Iterator<Item = &StreamId>| {
            let k: Vec<[u8; 16]> = ids.map(|id| id.key()).collect();
            (k.len(), rax_nodes(&k, 0))
        };
        for g in self.groups.values() {
            let (n, nodes) = keys(&mut g.pel.keys());
            size += 40 + rax(n, nodes) + 24 * n;
            for (name, c) in &g.consumers {
                let (n, nodes) = keys(&mut c.pel.iter());
                size += 24 + name.len() + rax(n, nodes);
            }
        }
        size
    }

    /// Appends an entry with an id already checked to be greater than `last_id`.
    pub fn append(&mut self, id: StreamId, fv: Vec<Bytes>, limits: NodeLimits) {
        let totelelen: usize = fv.iter().map(|b| b.len()).sum();
        let fields: Vec<Bytes> = fv.iter().step_by(2).cloned().collect();
        let mut new_node = true;
        if let Some((_, n)) = self.nodes.iter().next_back() {
            let max_bytes = match limits.bytes {
                0 => LISTPACK_MAX_SIZE,
                b => b.min(LISTPACK_MAX_SIZE),
            };
            new_node = n.bytes() + totelelen >= max_bytes
                || (limits.entries > 0 && n.ids.len() >= limits.entries);
        }
        if new_node {
            if let Some((_, n)) = self.nodes.iter_mut().next_back() {
                n.alloc_req = n.bytes();
            }
            let base = 7
                + int_size(fields.len() as i64)
                + fields.iter().map(|f| str_size(f)).sum::<usize>()
                + int_size(0);
            self.nodes.insert(
                id,
                Node {
                    master_fields: fields.clone(),
                    ids: Vec::new(),
                    live: 0,
                    base_bytes: base,
                    alloc_req: match limits.bytes {
                        b if b > 0 && b < 4096 => b,
                        _ => 4096,
                    },
                },
            );
        }
        let (_, node) = self.nodes.iter_mut().next_back().expect("node");
        let master = if node.ids.is_empty() {
            id
        } else {
            node.master()
        };
        let same = node.master_fields == fields;
        let numfields = fields.len() as i64;
        let mut b = int_size(if same { 2 } else { 0 })
            + int_size(id.ms.wrapping_sub(master.ms) as i64)
            + int_size(id.seq.wrapping_sub(master.seq) as i64);
        let lp_count = if same {
            b += fv
                .iter()
                .skip(1)
                .step_by(2)
                .map(|v| str_size(v))
                .sum::<usize>();
            numfields + 3
        } else {
            b += int_size(numfields) + fv.iter().map(|v| str_size(v)).sum::<usize>();
            numfields * 2 + 4
        };
        b += int_size(lp_count);
        node.base_bytes += b;
        node.ids.push(id);
        node.live += 1;
        node.alloc_req = node.alloc_req.max(node.bytes());
        self.entries.insert(id, fv);
        self.dirty.insert(id);
        self.entries_added += 1;
        self.last_id = id;
    }

    fn node_of(&self, id: &StreamId) -> Option<StreamId> {
        self.nodes.range(..=*id).next_back().map(|(k, _)| *k)
    }

    /// Deletes one entry (XDEL); its node goes when its last live entry does.
    pub fn delete(&mut self, id: &StreamId) -> bool {
        self.dirty.insert(*id);
        if self.entries.remove(id).is_none() {
            return false;
        }
        if let Some(k) = self.node_of(id) {
            let n = self.nodes.get_mut(&k).expect("node");
            let before = n.bytes();
            n.live -= 1;
            if n.bytes() < before {
                n.alloc_req = n.bytes();
            }
            if n.live == 0 {
                self.nodes.remove(&k);
            }
        }
        true
    }

    /// `streamTrim`: MAXLEN (`minid` None) or MINID; `limit` 0 means no limit.
    pub fn trim(
        &mut self,
        maxlen: Option<usize>,
        minid: Option<StreamId>,
        approx: bool,
        limit: usize,
        node_max_entries: usize,
    ) -> usize {
        if let Some(m) = maxlen {
            if self.len() <= m {
                return 0;
            }
        }
        let mut deleted = 0;
        let keys: Vec<StreamId> = self.nodes.keys().copied().collect();
        for k in keys {
            if limit > 0 && deleted + node_max_entries > limit {
                break;
            }
            let node = &self.nodes[&k];
            let live = node.live;
            let remove = match (maxlen, minid) {
                (Some(m), _) => self.len() - live >= m,
                (None, Some(min)) => *node.ids.last().expect("id") < min,
                _ => false,
            };
            if remove {
                let node = self.nodes.remove(&k).expect("node");
                for id in &node.ids {
                    self.entries.remove(id);
                    self.dirty.insert(*id);
                }
                deleted += live;
                continue;
            }
            if approx {
                break;
            }
            let ids = node.ids.clone();
            let mut n_del = 0;
            for id in ids {
                let done = match (maxlen, minid) {
                    (Some(m), _) => self.len() <= m,
                    (None, Some(min)) => id >= min,
                    _ => true,
                };
                if done {
                    break;
                }
                self.dirty.insert(id);
                if self.entries.remove(&id).is_some() {
                    n_del += 1;
                }
            }
            let n = self.nodes.get_mut(&k).expect("node");
            let before = n.bytes();
            n.live -= n_del;
            if n.bytes() < before {
                n.alloc_req = n.bytes();
            }
            deleted += n_del;
            break;
        }
        deleted
    }

    /// Entries with start <= id <= end, in order (or reversed), at most `count` (0: all).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        count: usize,
        rev: bool,
    ) -> Vec<(StreamId, &Vec<Bytes>)> {
        if start > end {
            return Vec::new();
        }
        let it = self.entries.range(start..=end).map(|(k, v)| (*k, v));
        if rev {
            let it = it.rev();
            if count > 0 {
                it.take(count).collect()
            } else {
                it.collect()
            }
        } else if count > 0 {
            it.take(count).collect()
        } else {
            it.collect()
        }
    }

    /// `streamRangeHasTombstones(s, start, NULL)`.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.is_empty() || self.max_deleted.is_zero() {
            return false;
        }
        if self.first_id() > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// `streamEstimateDistanceFromFirstEverEntry`.
    pub fn estimate_distance(&self, id: &StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.is_empty() && *id <= self.last_id {
            return self.entries_added as i64;
        }
        if *id == self.last_id {
            return self.entries_added as i64;
        } else if *id > self.last_id {
            return INVALID_READ;
        }
        let first = self.first_id();
        if self.max_deleted.is_zero() || self.max_deleted < first {
            if *id < first {
                return (self.entries_added - self.len() as u64) as i64;
            } else if *id == first {
                return (self.entries_added - self.len() as u64 + 1) as i64;
            }
        }
        INVALID_READ
    }

    /// Group lag as XINFO reports it; None when it cannot be known.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_READ && !self.has_tombstones_from(g.last_id) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let read = self.estimate_distance(&g.last_id);
        (read != INVALID_READ).then(|| self.entries_added as i64 - read)
    }

    /// Moves a group's last id forward to `id` after delivering it (streamReplyWithRange).
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let tomb = self.has_tombstones_from(id);
        let est = self.estimate_distance(&id);
        let added = self.entries_added;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if id > g.last_id {
            if g.entries_read != INVALID_READ && !tomb {
                g.entries_read += 1;
            } else if added > 0 {
                g.entries_read = est;
            }
            g.last_id = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fv() -> Vec<Bytes> {
        vec![Bytes::from_static(b"f"), Bytes::from_static(b"v")]
    }

    #[test]
    fn id_arithmetic() {
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.decr(), None);
        assert_eq!(&StreamId::new(5, 7).to_bytes()[..], b"5-7");
    }

    #[test]
    fn nodes_and_approximate_trim() {
        let mut s = Stream::default();
        assert_eq!(s.rax_nodes(), 1);
        for i in 1..=250 {
            s.append(StreamId::new(i, 0), fv(), NodeLimits::default());
        }
        assert_eq!(s.rax_keys(), 3);
        // `~` only drops whole nodes of 100 entries.
        assert_eq!(s.trim(Some(120), None, true, 10_000, 100), 100);
        assert_eq!(s.len(), 150);
        assert_eq!(s.trim(Some(120), None, false, 0, 100), 30);
        assert_eq!(s.len(), 120);
        assert_eq!(s.first_id(), StreamId::new(131, 0));
    }

    #[test]
    fn deleting_the_last_live_entry_drops_its_node() {
        let mut s = Stream::default();
        s.append(StreamId::new(1, 0), fv(), NodeLimits::default());
        s.append(StreamId::new(2, 0), fv(), NodeLimits::default());
        assert!(s.delete(&StreamId::new(1, 0)));
        assert_eq!(s.rax_keys(), 1);
        assert!(s.delete(&StreamId::new(2, 0)));
        assert!(!s.delete(&StreamId::new(2, 0)));
        assert_eq!(s.rax_keys(), 0);
        assert_eq!(s.last_id, StreamId::new(2, 0));
    }
}
