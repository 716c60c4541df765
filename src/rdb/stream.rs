//! Streams from `RDB_TYPE_STREAM_LISTPACKS` (Redis 5-6) and `_2` (Redis 7): listpack nodes keyed
//! by their master id, the stream's counters, then consumer groups with their pending entries
//! lists. Nodes are checked as `streamValidateListpackIntegrity(..., deep=1)` checks them, and
//! beyond Redis's shallow RESTORE checks every id must ascend, the length must match the live
//! entries and every pending entry must have a consumer, so the result is a sound stream.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bytes::Bytes;

use super::decode::{unique, RdbReader};
use super::listpack::{self, Elem};
use super::{types, DecodeOptions};
use crate::db::stream::{Consumer, Group, Nack, Stream, StreamId};

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

fn id_from(raw: &[u8]) -> Option<StreamId> {
    if raw.len() != 16 {
        return None;
    }
    Some(StreamId::new(
        u64::from_be_bytes(raw[..8].try_into().ok()?),
        u64::from_be_bytes(raw[8..].try_into().ok()?),
    ))
}

/// The live entries of one node, appended to `out` (ids must ascend past `last`).
fn read_node(
    master: StreamId,
    elems: &[Elem],
    last: &mut Option<StreamId>,
    out: &mut Vec<(StreamId, Vec<Bytes>)>,
) -> Option<()> {
    let mut it = elems.iter();
    fn int(it: &mut std::slice::Iter<Elem>) -> Option<i64> {
        it.next()?.int()
    }
    let count = int(&mut it)?;
    let deleted = int(&mut it)?;
    let nmaster = int(&mut it)?;
    if count < 0 || deleted < 0 || nmaster < 0 || nmaster as usize > elems.len() {
        return None;
    }
    let master_fields: Vec<Bytes> = (0..nmaster)
        .map(|_| it.next().map(Elem::to_bytes))
        .collect::<Option<_>>()?;
    if int(&mut it)? != 0 {
        return None; // the master entry's zero terminator
    }
    let total = count.checked_add(deleted)?;
    for _ in 0..total {
        let flags = int(&mut it)?;
        let ms = master.ms.wrapping_add(int(&mut it)? as u64);
        let seq = master.seq.wrapping_add(int(&mut it)? as u64);
        let id = StreamId::new(ms, seq);
        let same = flags & FLAG_SAMEFIELDS != 0;
        let nfields = if same {
            nmaster
        } else {
            let n = int(&mut it)?;
            if n < 0 || n as usize > elems.len() {
                return None;
            }
            n
        };
        let mut fv = Vec::with_capacity(2 * nfields as usize);
        let mut master_field = master_fields.iter();
        for _ in 0..nfields {
            let field = if same {
                master_field.next()?.clone()
            } else {
                it.next()?.to_bytes()
            };
            fv.push(field);
            fv.push(it.next()?.to_bytes());
        }
        let expect = if same { nfields + 3 } else { 2 * nfields + 4 };
        if int(&mut it)? != expect {
            return None;
        }
        if flags & FLAG_DELETED == 0 {
            if last.is_some_and(|l| id <= l) {
                return None;
            }
            *last = Some(id);
            out.push((id, fv));
        }
    }
    it.next().is_none().then_some(())
}

pub fn read_stream(r: &mut RdbReader, t: u8, o: &DecodeOptions) -> Option<Stream> {
    let v2 = t == types::STREAM_LISTPACKS_2;
    let nodes = r.load_len()?;
    let mut entries = Vec::new();
    let mut last = None;
    let mut prev_key: Option<StreamId> = None;
    for _ in 0..nodes {
        let master = id_from(&r.string()?)?;
        if prev_key.is_some_and(|p| master <= p) {
            return None; // "Listpack re-added with existing key" (or out of order)
        }
        prev_key = Some(master);
        let lp = r.string()?;
        let elems = listpack::parse(&lp)?;
        if elems.is_empty() {
            return None; // "Empty listpack inside stream"
        }
        read_node(master, &elems, &mut last, &mut entries)?;
    }
    let length = r.load_len()?;
    let last_id = StreamId::new(r.load_len()?, r.load_len()?);
    let (max_deleted, entries_added) = if v2 {
        let _first = StreamId::new(r.load_len()?, r.load_len()?);
        (StreamId::new(r.load_len()?, r.load_len()?), r.load_len()?)
    } else {
        (StreamId::MIN, length)
    };
    if length != entries.len() as u64 || last.is_some_and(|l| l > last_id) || entries_added < length
    {
        return None;
    }
    let mut s = Stream::default();
    for (id, fv) in entries {
        s.append(id, fv, o.stream_limits);
    }
    s.last_id = last_id;
    s.entries_added = entries_added;
    s.max_deleted = max_deleted;
    s.dirty.clear();

    let ngroups = r.load_len()?;
    for _ in 0..ngroups {
        let name = r.bytes()?;
        let gid = StreamId::new(r.load_len()?, r.load_len()?);
        let entries_read = if v2 {
            r.load_len()? as i64
        } else {
            s.estimate_distance(&gid)
        };
        if s.groups.contains_key(&name) {
            return None; // "Duplicated consumer group name"
        }
        let mut g = Group::new(gid, entries_read);
        let mut pending: BTreeMap<StreamId, (i64, u64)> = BTreeMap::new();
        for _ in 0..r.load_len()? {
            let id = id_from(r.take(16)?)?;
            let time = r.ms_time()?;
            let count = r.load_len()?;
            if pending.insert(id, (time, count)).is_some() {
                return None; // "Duplicated global PEL entry"
            }
        }
        let mut names = HashSet::new();
        for _ in 0..r.load_len()? {
            let cname = r.bytes()?;
            unique(&mut names, cname.clone())?;
            let seen_time = r.ms_time()?;
            let mut pel = BTreeSet::new();
            for _ in 0..r.load_len()? {
                let id = id_from(r.take(16)?)?;
                // "Consumer entry not found in group global PEL"; a second owner is refused too.
                let (delivery_time, delivery_count) = pending.remove(&id)?;
                pel.insert(id);
                g.pel.insert(
                    id,
                    Nack {
                        delivery_time,
                        delivery_count,
                        consumer: cname.clone(),
                    },
                );
            }
            g.consumers.insert(cname, Consumer { seen_time, pel });
        }
        if !pending.is_empty() {
            return None; // "Stream CG PEL entry without consumer"
        }
        s.groups.insert(name, g);
    }
    Some(s)
}
