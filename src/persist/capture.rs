//! Change capture: the keyspace thread's log of touched keys becomes one write set per turn.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::checkpoint::member_deletes;
use super::committer::{Gc, WriteSet};
use super::record::{self, Meta, T_HASH, T_LIST, T_SET, T_STR, T_STREAM, T_ZSET};
use super::store::Op;
use super::stream_records;
use super::Persist;
use crate::db::collections::ListChanges;
use crate::db::stream::StreamId;
use crate::db::{Dead, Entry, Value};
use crate::server::core::World;

/// Dead list ranges up to this size are deleted in the same batch; larger ones in the background.
const INLINE_DELETES: i64 = 256;

impl World {
    /// Records a write of `key` in database `db` (called by `key_modified`).
    pub fn persist_key(&mut self, db: usize, key: &[u8]) {
        if let Some(p) = self.persist.as_mut() {
            p.events.push((p.spaces[db], Bytes::copy_from_slice(key)));
        }
    }

    /// FUNCTION LOAD / DELETE / FLUSH / RESTORE changed these libraries: their records are
    /// written (or deleted) in this turn's write set, with the keys the turn wrote.
    pub fn libraries_changed(&mut self, names: Vec<String>) {
        self.dirty += 1;
        if let Some(p) = self.persist.as_mut() {
            p.libraries.extend(names);
        }
    }

    /// FLUSHDB (`Some(db)`) / FLUSHALL (`None`): the databases get new, empty key spaces.
    pub fn persist_flush(&mut self, db: Option<usize>) {
        if self.discarding() {
            return;
        }
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        let dbs: Vec<usize> = match db {
            Some(d) => vec![d],
            None => (0..p.spaces.len()).collect(),
        };
        for d in dbs {
            let old = p.spaces[d];
            p.dead_spaces.push(old);
            p.spaces[d] = p.alloc();
        }
        p.spaces_changed = true;
    }

    /// SWAPDB: the two databases exchange key spaces.
    pub fn persist_swap(&mut self, a: usize, b: usize) {
        if self.discarding() {
            self.discard_swap(a, b);
            return;
        }
        if let Some(p) = self.persist.as_mut() {
            p.spaces.swap(a, b);
            p.spaces_changed = true;
        }
    }

    /// SAVE, BGSAVE, BGREWRITEAOF: the next write set is synced whatever `appendfsync` says.
    pub fn persist_force_sync(&mut self) {
        if let Some(p) = self.persist.as_mut() {
            p.force_sync = true;
        }
    }

    /// SHUTDOWN NOSAVE/FORCE while the store is failing: the committer stops retrying.
    pub fn persist_give_up(&mut self) {
        if let Some(p) = self.persist.as_ref() {
            p.status
                .give_up
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Why a write is refused now (MISCONF), if the store is failing.
    pub fn persist_misconf(&self) -> Option<String> {
        self.persist.as_ref().and_then(|p| p.misconf())
    }

    /// Turns everything logged since the last call into one write set and hands it to the
    /// committer. Called once per loop turn, before replies are flushed.
    pub fn persist_commit(&mut self) {
        let Some(p) = self.persist.as_mut() else {
            for db in self.keyspace.dbs.iter_mut() {
                db.dead.clear();
            }
            return;
        };
        p.reads.committed = true;
        let mode = self.config.get("appendfsync");
        if p.mode_text != mode {
            p.mode_text = mode.to_string();
            p.status.mode.store(
                super::committer::mode_of(mode),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let (every, size) = (
            self.config.get_i64("checkpoint-interval").max(1) as u64 * 1000,
            self.config.get_i64("checkpoint-log-size").max(1) as u64,
        );
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        p.status.checkpoint_interval_ms.store(every, relaxed);
        p.status.checkpoint_log_size.store(size, relaxed);
        let dbs = &mut self.keyspace.dbs;
        let has_dead = dbs.iter().any(|d| !d.dead.is_empty());
        if p.events.is_empty()
            && !has_dead
            && !p.spaces_changed
            && !p.force_sync
            && p.libraries.is_empty()
        {
            return;
        }
        let mut ops: Vec<Op> = Vec::new();
        let mut gc: Vec<Gc> = Vec::new();
        let mut dead: HashMap<u64, Dead> = HashMap::new();
        let mut meta_dels: HashSet<Vec<u8>> = HashSet::new();
        for (i, db) in dbs.iter_mut().enumerate() {
            for d in db.dead.drain(..) {
                meta_dels.insert(record::meta_key(p.spaces[i], &d.key));
                if d.version != 0 {
                    dead.insert(d.version, d);
                }
            }
        }
        let events = std::mem::take(&mut p.events);
        let changes = (events.len() + p.libraries.len()) as u64;
        let libraries: HashSet<String> = p.libraries.drain(..).collect();
        for name in libraries {
            let code = self.functions.libs.libs.get(&name).map(|l| l.code.to_vec());
            ops.push((record::library_key(&name), code));
        }
        let mut seen =
            super::faults::KeySet::with_capacity_and_hasher(events.len(), Default::default());
        for (space, key) in events {
            if seen.contains(&(space, key.clone())) {
                continue;
            }
            let mk = record::meta_key(space, &key);
            meta_dels.remove(&mk);
            let at = p.spaces.iter().position(|s| *s == space);
            match at.and_then(|d| dbs[d].raw_mut(&key)) {
                None => ops.push((mk, None)),
                Some(e) => {
                    dead.remove(&e.version);
                    let meta = write_entry(p, e, &mut ops, &mut gc);
                    ops.push((mk, Some(meta.encode())));
                }
            }
            seen.insert((space, key));
        }
        ops.extend(meta_dels.into_iter().map(|k| (k, None)));
        for (_, d) in dead {
            match (d.range, d.members) {
                (Some((lo, hi)), _) if hi - lo <= INLINE_DELETES => {
                    ops.extend((lo..hi).map(|i| (record::list_elem_key(d.version, i), None)))
                }
                (Some((lo, hi)), _) => gc.push(Gc::Range(d.version, lo, hi)),
                (None, Some(m)) => member_deletes(d.version, &m, &mut ops),
                (None, None) => gc.push(Gc::Version(d.version)),
            }
        }
        let all = p.spaces_changed;
        if p.spaces_changed {
            for (d, s) in p.spaces.iter().enumerate() {
                ops.push((record::space_key(d as u32), Some(s.to_be_bytes().to_vec())));
            }
            p.spaces_changed = false;
        }
        gc.extend(p.dead_spaces.drain(..).map(Gc::Space));
        p.lsn += 1;
        p.note_write_set(seen, all);
        p.changes += changes;
        let synced = p
            .status
            .synced_lsn
            .load(std::sync::atomic::Ordering::Relaxed);
        while p.unsynced.front().is_some_and(|(l, _)| *l <= synced) {
            p.unsynced.pop_front();
        }
        p.unsynced.push_back((p.lsn, changes));
        // Bounded under `appendfsync no` (rarely synced): fold the oldest into the next.
        if p.unsynced.len() > 4096 {
            let (_, n) = p.unsynced.pop_front().expect("non-empty");
            p.unsynced.front_mut().expect("non-empty").1 += n;
        }
        let ws = WriteSet {
            lsn: p.lsn,
            ops,
            gc,
            sync: std::mem::take(&mut p.force_sync),
        };
        p.hand_over(ws);
    }
}

/// The records for one entry's changes since the last commit; returns its metadata.
fn write_entry(p: &mut Persist, e: &mut Entry, ops: &mut Vec<Op>, gc: &mut Vec<Gc>) -> Meta {
    let mut meta = Meta {
        kind: T_STR,
        version: 0,
        expire: e.expire_at,
        count: e.value.len() as u64,
        inline: Bytes::new(),
        a: 0,
        b: 0,
    };
    let fresh = e.version == 0;
    match &mut e.value {
        Value::Str(s) => {
            meta.inline = s.clone();
            return meta;
        }
        Value::List(l) => {
            meta.kind = T_LIST;
            let all = fresh || l.rewrite;
            if all && !fresh {
                let (lo, hi) = l.base;
                gc.push(Gc::Range(e.version, lo, hi));
            }
            if all {
                e.version = p.alloc();
            }
            let v = e.version;
            match l.take_changes(all) {
                ListChanges::All { head } => {
                    for (i, x) in l.iter().enumerate() {
                        ops.push((record::list_elem_key(v, head + i as i64), Some(x.to_vec())));
                    }
                }
                ListChanges::Delta { puts, dels } => {
                    for (i, x) in puts {
                        ops.push((record::list_elem_key(v, i), Some(x.to_vec())));
                    }
                    for i in dels {
                        ops.push((record::list_elem_key(v, i), None));
                    }
                }
            }
            meta.a = l.head();
            meta.b = l.tail();
        }
        Value::Hash(h) => {
            meta.kind = T_HASH;
            if fresh {
                e.version = p.alloc();
            }
            let v = e.version;
            let dirty = std::mem::take(&mut h.dirty);
            if fresh {
                for (k, x, seq) in h.iter_with_seq() {
                    ops.push((record::elem_key(v, k), Some(record::hash_value(seq, x))));
                }
            } else {
                for f in dirty {
                    let rec = h
                        .get_with_seq(&f)
                        .map(|(x, seq)| record::hash_value(seq, x));
                    ops.push((record::elem_key(v, &f), rec));
                }
            }
            meta.a = h.next_seq() as i64;
        }
        Value::Set(s) => {
            meta.kind = T_SET;
            if fresh {
                e.version = p.alloc();
            }
            let v = e.version;
            let dirty = std::mem::take(&mut s.dirty);
            if fresh {
                for m in s.iter() {
                    ops.push((record::elem_key(v, m), Some(Vec::new())));
                }
            } else {
                for m in dirty {
                    let rec = s.contains(&m).then(Vec::new);
                    ops.push((record::elem_key(v, &m), rec));
                }
            }
        }
        Value::ZSet(z) => {
            meta.kind = T_ZSET;
            if fresh {
                e.version = p.alloc();
            }
            let v = e.version;
            let dirty = std::mem::take(&mut z.dirty);
            if fresh {
                for (m, score) in z.iter() {
                    ops.push((
                        record::elem_key(v, m),
                        Some(score.to_bits().to_be_bytes().to_vec()),
                    ));
                }
            } else {
                for m in dirty {
                    let rec = z.score(&m).map(|s| s.to_bits().to_be_bytes().to_vec());
                    ops.push((record::elem_key(v, &m), rec));
                }
            }
        }
        Value::Stream(st) => {
            meta.kind = T_STREAM;
            if fresh {
                e.version = p.alloc();
            }
            let v = e.version;
            let dirty = std::mem::take(&mut st.dirty);
            let put = |id: &StreamId, fv: &Vec<Bytes>| {
                (
                    record::elem_key(v, &stream_records::entry_sub(id)),
                    Some(stream_records::encode_fields(fv)),
                )
            };
            if fresh {
                ops.extend(st.entries.iter().map(|(id, fv)| put(id, fv)));
            } else {
                for id in dirty {
                    match st.entries.get(&id) {
                        Some(fv) => ops.push(put(&id, fv)),
                        None => {
                            ops.push((record::elem_key(v, &stream_records::entry_sub(&id)), None))
                        }
                    }
                }
            }
            meta.inline = Bytes::from(stream_records::encode_header(st));
        }
    }
    meta.version = e.version;
    meta
}
