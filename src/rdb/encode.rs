//! Values into RDB object encodings (`rdbSaveObjectType` + `rdbSaveObject` in Redis 7.0.15's
//! `rdb.c`): strings with integer or LZF encoding, lists as quicklist 2 of listpacks, hashes and
//! sorted sets as listpacks when small, sets as intsets when small and all integers, streams as
//! `RDB_TYPE_STREAM_LISTPACKS_2` with their consumer groups.

use super::listpack::{self, string_to_i64, Writer};
use super::{intset, lzf, types, EncodeOptions};
use crate::db::stream::{Stream, StreamId};
use crate::db::Value;
use crate::protocol::numbers::fmt_g;

/// An RDB byte stream being written.
#[derive(Debug, Default)]
pub struct RdbWriter {
    pub buf: Vec<u8>,
    /// `rdbcompression`: strings over 20 bytes are LZF-compressed when that saves 4 bytes.
    pub compression: bool,
}

impl RdbWriter {
    pub fn new(compression: bool) -> RdbWriter {
        RdbWriter {
            buf: Vec::new(),
            compression,
        }
    }

    pub fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    /// `rdbSaveLen`.
    pub fn save_len(&mut self, len: u64) {
        if len < 1 << 6 {
            self.buf.push(len as u8);
        } else if len < 1 << 14 {
            self.buf
                .extend_from_slice(&[((len >> 8) as u8) | 0x40, len as u8]);
        } else if len <= u32::MAX as u64 {
            self.buf.push(0x80);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        } else {
            self.buf.push(0x81);
            self.buf.extend_from_slice(&len.to_be_bytes());
        }
    }

    /// `rdbEncodeInteger`: true if `v` fits an 8, 16 or 32-bit integer encoding.
    fn encoded_int(&mut self, v: i64) -> bool {
        if (-(1 << 7)..1 << 7).contains(&v) {
            self.buf.extend_from_slice(&[0xc0, v as u8]);
        } else if (-(1 << 15)..1 << 15).contains(&v) {
            self.buf.push(0xc1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-(1i64 << 31)..1i64 << 31).contains(&v) {
            self.buf.push(0xc2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            return false;
        }
        true
    }

    /// `rdbSaveLongLongAsStringObject`.
    pub fn int_string(&mut self, v: i64) {
        if !self.encoded_int(v) {
            let s = v.to_string();
            self.save_len(s.len() as u64);
            self.buf.extend_from_slice(s.as_bytes());
        }
    }

    /// `rdbSaveRawString`: integer encoding for short canonical integers, LZF when enabled
    /// and it helps, else length and bytes.
    pub fn raw_string(&mut self, s: &[u8]) {
        if s.len() <= 11 {
            if let Some(v) = string_to_i64(s) {
                if self.encoded_int(v) {
                    return;
                }
            }
        }
        if self.compression && s.len() > 20 {
            if let Some(c) = lzf::compress(s, s.len() - 4) {
                self.buf.push(0xc3);
                self.save_len(c.len() as u64);
                self.save_len(s.len() as u64);
                self.buf.extend_from_slice(&c);
                return;
            }
        }
        self.save_len(s.len() as u64);
        self.buf.extend_from_slice(s);
    }

    /// `rdbSaveBinaryDoubleValue`.
    pub fn binary_double(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `rdbSaveMillisecondTime`.
    pub fn ms_time(&mut self, t: i64) {
        self.buf.extend_from_slice(&t.to_le_bytes());
    }

    fn stream_id(&mut self, id: &StreamId) {
        self.buf.extend_from_slice(&id.ms.to_be_bytes());
        self.buf.extend_from_slice(&id.seq.to_be_bytes());
    }
}

/// The canonical-integer test Redis's `tryObjectEncoding` makes for a string value.
fn int_encoded(s: &[u8]) -> Option<i64> {
    string_to_i64(s)
}

/// Whether Redis would hold this hash/zset in a listpack or this set in an intset.
fn is_compact(v: &Value, o: &EncodeOptions) -> bool {
    match v {
        Value::Hash(h) => {
            h.len() <= o.hash_max_listpack_entries
                && h.iter().all(|(k, v)| {
                    k.len() <= o.hash_max_listpack_value && v.len() <= o.hash_max_listpack_value
                })
        }
        Value::ZSet(z) => {
            z.len() <= o.zset_max_listpack_entries
                && z.members().all(|m| m.len() <= o.zset_max_listpack_value)
        }
        Value::Set(s) => {
            s.len() <= o.set_max_intset_entries && s.iter().all(|m| int_encoded(m).is_some())
        }
        _ => false,
    }
}

/// `rdbSaveObjectType`: the RDB type byte for this value.
pub fn object_type(v: &Value, o: &EncodeOptions) -> u8 {
    let compact = is_compact(v, o);
    match v {
        Value::Str(_) => types::STRING,
        Value::List(_) => types::LIST_QUICKLIST_2,
        Value::Set(_) if compact => types::SET_INTSET,
        Value::Set(_) => types::SET,
        Value::ZSet(_) if compact => types::ZSET_LISTPACK,
        Value::ZSet(_) => types::ZSET_2,
        Value::Hash(_) if compact => types::HASH_LISTPACK,
        Value::Hash(_) => types::HASH,
        Value::Stream(_) => types::STREAM_LISTPACKS_2,
    }
}

/// `d2string` as `zzlInsertAt` stores a score: an integer when `double2ll` allows.
fn push_score(lp: &mut Writer, score: f64) {
    const LIM: f64 = (i64::MAX / 2) as f64;
    if (-LIM..=LIM).contains(&score) && (score as i64) as f64 == score {
        lp.push_int(score as i64);
    } else {
        lp.push_str(fmt_g(score, 17).as_bytes());
    }
}

/// `_quicklistNodeAllowInsert` for a node of `node_bytes` bytes and `count` elements.
fn quicklist_allows(node_bytes: usize, count: usize, fill: i64, sz: usize) -> bool {
    const LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
    let new_sz = node_bytes + sz + 8;
    if fill < 0 {
        let off = (-fill - 1) as usize;
        if off < LEVELS.len() && new_sz <= LEVELS[off] {
            return true;
        }
    }
    new_sz <= 8192 && fill >= 0 && (count as i64) < fill
}

/// A list's quicklist nodes as RPUSH builds them (`quicklistPushTail` with this fill).
pub fn quicklist_nodes(l: &crate::db::List, fill: i64) -> Vec<Writer> {
    let mut nodes: Vec<Writer> = Vec::new();
    for e in l.iter() {
        let fits = nodes
            .last()
            .is_some_and(|n| quicklist_allows(n.bytes(), n.count(), fill, e.len()));
        if !fits {
            nodes.push(Writer::new());
        }
        nodes.last_mut().expect("node").push_str(e);
    }
    nodes
}

/// `rdbSavedObjectLen`: the bytes `rdbSaveObject` writes (DEBUG OBJECT's serializedlength).
pub fn object_len(v: &Value, o: &EncodeOptions) -> usize {
    let mut w = RdbWriter::new(o.compression);
    write_value(&mut w, v, o);
    w.buf.len() - 1
}

/// `rdbSaveObjectType` then `rdbSaveObject`.
pub fn write_value(w: &mut RdbWriter, v: &Value, o: &EncodeOptions) {
    let t = object_type(v, o);
    w.byte(t);
    match v {
        Value::Str(s) => match int_encoded(s) {
            Some(i) => w.int_string(i),
            None => w.raw_string(s),
        },
        Value::List(l) => {
            let nodes = quicklist_nodes(l, o.list_max_listpack_size);
            w.save_len(nodes.len() as u64);
            for n in nodes {
                w.save_len(2); // QUICKLIST_NODE_CONTAINER_PACKED
                w.raw_string(&n.finish());
            }
        }
        Value::Set(s) => {
            if t == types::SET_INTSET {
                let mut ints: Vec<i64> = s.iter().filter_map(|m| int_encoded(m)).collect();
                w.raw_string(&intset::encode(&mut ints));
            } else {
                w.save_len(s.len() as u64);
                for m in s.iter() {
                    w.raw_string(m);
                }
            }
        }
        Value::ZSet(z) => {
            if t == types::ZSET_LISTPACK {
                let mut lp = Writer::new();
                for (m, score) in z.iter() {
                    lp.push_str(m);
                    push_score(&mut lp, score);
                }
                w.raw_string(&lp.finish());
            } else {
                // Greatest first, as Redis walks its skiplist from the tail.
                w.save_len(z.len() as u64);
                for (m, score) in z.iter().rev() {
                    w.raw_string(m);
                    w.binary_double(score);
                }
            }
        }
        Value::Hash(h) => {
            if t == types::HASH_LISTPACK {
                let mut lp = Writer::new();
                for (k, v) in h.iter() {
                    lp.push_str(k);
                    lp.push_str(v);
                }
                w.raw_string(&lp.finish());
            } else {
                w.save_len(h.len() as u64);
                for (k, v) in h.iter() {
                    w.raw_string(k);
                    w.raw_string(v);
                }
            }
        }
        Value::Stream(s) => write_stream(w, s, o),
    }
}

/// One stream node being filled as `streamAppendItem` fills it.
struct Node {
    master: StreamId,
    fields: Vec<bytes::Bytes>,
    /// Everything after the count element, as listpack bytes.
    body: Writer,
    count: usize,
}

impl Node {
    fn bytes(&self) -> usize {
        // `body` holds the count-less elements; the count is the first element.
        self.body.bytes() + listpack::int_size(self.count as i64)
    }

    fn finish(self) -> Vec<u8> {
        // Prepend the count: rebuild the listpack with it first.
        let body = self.body.finish();
        let n = u16::from_le_bytes([body[4], body[5]]) as usize;
        let mut w = Writer::new();
        w.push_int(self.count as i64);
        let mut out = w.finish();
        out.pop(); // EOF
        out.extend_from_slice(&body[6..]);
        let total = out.len() as u32;
        out[..4].copy_from_slice(&total.to_le_bytes());
        let count = if n == u16::MAX as usize {
            u16::MAX
        } else {
            (n + 1).min(u16::MAX as usize) as u16
        };
        out[4..6].copy_from_slice(&count.to_le_bytes());
        out
    }
}

fn write_stream(w: &mut RdbWriter, s: &Stream, o: &EncodeOptions) {
    let max_bytes = match o.stream_node_max_bytes {
        0 => 1 << 30,
        b => b.min(1 << 30),
    };
    let mut nodes: Vec<Node> = Vec::new();
    for (id, fv) in &s.entries {
        let fields: Vec<&bytes::Bytes> = fv.iter().step_by(2).collect();
        let totelelen: usize = fv.iter().map(|b| b.len()).sum();
        let new_node = match nodes.last() {
            None => true,
            Some(n) => {
                n.bytes() + totelelen >= max_bytes
                    || (o.stream_node_max_entries > 0 && n.count >= o.stream_node_max_entries)
            }
        };
        if new_node {
            let mut body = Writer::new();
            body.push_int(0); // deleted
            body.push_int(fields.len() as i64);
            for f in &fields {
                body.push_str(f);
            }
            body.push_int(0); // master entry terminator
            nodes.push(Node {
                master: *id,
                fields: fields.iter().map(|f| (*f).clone()).collect(),
                body,
                count: 0,
            });
        }
        let n = nodes.last_mut().expect("node");
        let same =
            n.fields.len() == fields.len() && n.fields.iter().zip(&fields).all(|(a, b)| a == *b);
        n.body.push_int(if same { 2 } else { 0 });
        n.body.push_int(id.ms.wrapping_sub(n.master.ms) as i64);
        n.body.push_int(id.seq.wrapping_sub(n.master.seq) as i64);
        if !same {
            n.body.push_int(fields.len() as i64);
        }
        for pair in fv.chunks(2) {
            if !same {
                n.body.push_str(&pair[0]);
            }
            n.body.push_str(pair.get(1).map(|b| &b[..]).unwrap_or(b""));
        }
        let nf = fields.len() as i64;
        n.body.push_int(if same { nf + 3 } else { nf * 2 + 4 });
        n.count += 1;
    }
    w.save_len(nodes.len() as u64);
    for n in nodes {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&n.master.ms.to_be_bytes());
        key[8..].copy_from_slice(&n.master.seq.to_be_bytes());
        w.raw_string(&key);
        w.raw_string(&n.finish());
    }
    w.save_len(s.len() as u64);
    w.save_len(s.last_id.ms);
    w.save_len(s.last_id.seq);
    let first = s.first_id();
    w.save_len(first.ms);
    w.save_len(first.seq);
    w.save_len(s.max_deleted.ms);
    w.save_len(s.max_deleted.seq);
    w.save_len(s.entries_added);
    w.save_len(s.groups.len() as u64);
    for (name, g) in &s.groups {
        w.raw_string(name);
        w.save_len(g.last_id.ms);
        w.save_len(g.last_id.seq);
        w.save_len(g.entries_read as u64);
        w.save_len(g.pel.len() as u64);
        for (id, n) in &g.pel {
            w.stream_id(id);
            w.ms_time(n.delivery_time);
            w.save_len(n.delivery_count);
        }
        w.save_len(g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            w.raw_string(cname);
            w.ms_time(c.seen_time);
            w.save_len(c.pel.len() as u64);
            for id in &c.pel {
                w.stream_id(id);
            }
        }
    }
}
