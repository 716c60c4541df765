//! Stream records: entries under the stream's version, keyed `0x01 ++ ms ++ seq`, valued with
//! their field/value list; the metadata's inline part carries the header (last id, entries
//! added, max deleted id) and the consumer groups with their pending entries and consumers.
//! Groups are small in job systems (BullMQ uses none), so they are rewritten with the metadata.

use bytes::Bytes;

use crate::db::stream::{Consumer, Group, Nack, NodeLimits, Stream, StreamId};

pub fn entry_sub(id: &StreamId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = 0x01;
    k[1..9].copy_from_slice(&id.ms.to_be_bytes());
    k[9..17].copy_from_slice(&id.seq.to_be_bytes());
    k
}

pub fn sub_entry_id(sub: &[u8]) -> Option<StreamId> {
    if sub.len() != 17 || sub[0] != 0x01 {
        return None;
    }
    let u = |i: usize| u64::from_be_bytes(sub[i..i + 8].try_into().expect("8"));
    Some(StreamId::new(u(1), u(9)))
}

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn id(&mut self, id: &StreamId) {
        self.u64(id.ms);
        self.u64(id.seq);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn id(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.u64()?, self.u64()?))
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()? as usize;
        Some(Bytes::copy_from_slice(self.take(n)?))
    }
}

pub fn encode_fields(fv: &[Bytes]) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(
        4 + fv.iter().map(|b| b.len() + 4).sum::<usize>(),
    ));
    w.0.extend_from_slice(&(fv.len() as u32).to_be_bytes());
    fv.iter().for_each(|b| w.bytes(b));
    w.0
}

pub fn decode_fields(v: &[u8]) -> Option<Vec<Bytes>> {
    let mut r = Reader(v);
    let n = r.u32()? as usize;
    (0..n).map(|_| r.bytes()).collect()
}

/// The metadata's inline part: header and groups.
pub fn encode_header(s: &Stream) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.id(&s.last_id);
    w.u64(s.entries_added);
    w.id(&s.max_deleted);
    w.0.extend_from_slice(&(s.groups.len() as u32).to_be_bytes());
    for (name, g) in &s.groups {
        w.bytes(name);
        w.id(&g.last_id);
        w.u64(g.entries_read as u64);
        w.0.extend_from_slice(&(g.pel.len() as u32).to_be_bytes());
        for (id, n) in &g.pel {
            w.id(id);
            w.u64(n.delivery_time as u64);
            w.u64(n.delivery_count);
            w.bytes(&n.consumer);
        }
        w.0.extend_from_slice(&(g.consumers.len() as u32).to_be_bytes());
        for (cname, c) in &g.consumers {
            w.bytes(cname);
            w.u64(c.seen_time as u64);
        }
    }
    w.0
}

/// Rebuilds a stream from its entries (in id order) and its metadata's inline part.
pub fn rebuild(entries: Vec<(StreamId, Vec<Bytes>)>, header: &[u8]) -> Option<Stream> {
    let mut s = Stream::default();
    for (id, fv) in entries {
        s.append(id, fv, NodeLimits::default());
    }
    let mut r = Reader(header);
    s.last_id = r.id()?;
    s.entries_added = r.u64()?;
    s.max_deleted = r.id()?;
    for _ in 0..r.u32()? {
        let name = r.bytes()?;
        let mut g = Group::new(r.id()?, r.u64()? as i64);
        for _ in 0..r.u32()? {
            let id = r.id()?;
            let delivery_time = r.u64()? as i64;
            let delivery_count = r.u64()?;
            let consumer = r.bytes()?;
            g.pel.insert(
                id,
                Nack {
                    delivery_time,
                    delivery_count,
                    consumer,
                },
            );
        }
        for _ in 0..r.u32()? {
            let cname = r.bytes()?;
            let seen_time = r.u64()? as i64;
            let pel = g
                .pel
                .iter()
                .filter(|(_, n)| n.consumer == cname)
                .map(|(id, _)| *id)
                .collect();
            g.consumers.insert(cname, Consumer { seen_time, pel });
        }
        s.groups.insert(name, g);
    }
    s.dirty.clear();
    Some(s)
}
