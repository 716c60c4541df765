//! The records on disk (a Kvrocks-style layout).
//!
//! ```text
//! 0x01 "format"                          -> FORMAT (refused if different)
//! 0x02 db:u32be                          -> space:u64be       which key space a database uses
//! 0x03 space:u64be key                   -> metadata          one per key
//! 0x04 version:u64be subkey              -> element           under the key's version
//! 0x05 library name                      -> code              a function library (FUNCTION LOAD)
//! ```
//! Metadata: type:u8, version:u64, expire:i64 (i64::MIN = none), count:u64, then per type:
//! string: its bytes; list: head:i64, tail:i64; hash: next_seq:u64; set, zset: nothing.
//! Elements: list: subkey = index (i64, sign-flipped big-endian so they sort in list order),
//! value = element; hash: subkey = field, value = seq:u64be ++ value; set: subkey = member,
//! value empty; zset: subkey = member, value = score (f64 bits, big-endian); stream (type 6):
//! subkey = 0x01 ++ id (ms:u64be seq:u64be), value = its field/value list, and the metadata's
//! inline part carries the header and consumer groups (see `stream_records.rs`).
//!
//! Versions and spaces come from one counter, never reused while records of them remain.
//! FLUSHDB gives the database a new space; DEL, RENAME over and expiry of a collection leave
//! its version dead. Dead spaces and versions are deleted in the background (and any found at
//! startup are deleted then).

use bytes::Bytes;

pub const FORMAT_KEY: &[u8] = b"\x01format";
pub const FORMAT: &[u8] = b"berth-store-1";

pub const T_STR: u8 = 1;
pub const T_LIST: u8 = 2;
pub const T_HASH: u8 = 3;
pub const T_SET: u8 = 4;
pub const T_ZSET: u8 = 5;
pub const T_STREAM: u8 = 6;

pub fn space_key(db: u32) -> Vec<u8> {
    let mut k = vec![0x02];
    k.extend_from_slice(&db.to_be_bytes());
    k
}

pub fn meta_prefix(space: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(0x03);
    k.extend_from_slice(&space.to_be_bytes());
    k
}

pub fn meta_key(space: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.push(0x03);
    k.extend_from_slice(&space.to_be_bytes());
    k.extend_from_slice(key);
    k
}

pub fn library_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(0x05);
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn elem_prefix(version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(0x04);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub fn elem_key(version: u64, sub: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + sub.len());
    k.push(0x04);
    k.extend_from_slice(&version.to_be_bytes());
    k.extend_from_slice(sub);
    k
}

pub fn index_sub(i: i64) -> [u8; 8] {
    ((i as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn sub_index(b: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(b.try_into().ok()?) ^ (1 << 63)) as i64)
}

pub fn list_elem_key(version: u64, i: i64) -> Vec<u8> {
    elem_key(version, &index_sub(i))
}

/// A key's metadata record.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub kind: u8,
    pub version: u64,
    pub expire: Option<i64>,
    pub count: u64,
    /// string: value; others: empty.
    pub inline: Bytes,
    /// list: (head, tail); hash: (next_seq, 0).
    pub a: i64,
    pub b: i64,
}

impl Meta {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(33 + self.inline.len());
        v.push(self.kind);
        v.extend_from_slice(&self.version.to_be_bytes());
        v.extend_from_slice(&self.expire.unwrap_or(i64::MIN).to_be_bytes());
        v.extend_from_slice(&self.count.to_be_bytes());
        match self.kind {
            T_STR | T_STREAM => v.extend_from_slice(&self.inline),
            T_LIST => {
                v.extend_from_slice(&self.a.to_be_bytes());
                v.extend_from_slice(&self.b.to_be_bytes());
            }
            T_HASH => v.extend_from_slice(&self.a.to_be_bytes()),
            _ => {}
        }
        v
    }

    pub fn decode(v: &[u8]) -> Option<Meta> {
        if v.len() < 25 {
            return None;
        }
        let u = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().expect("8"));
        let kind = v[0];
        let expire = u(9) as i64;
        let mut m = Meta {
            kind,
            version: u(1),
            expire: (expire != i64::MIN).then_some(expire),
            count: u(17),
            inline: Bytes::new(),
            a: 0,
            b: 0,
        };
        match kind {
            T_STR | T_STREAM => m.inline = Bytes::copy_from_slice(&v[25..]),
            T_LIST if v.len() >= 41 => {
                m.a = u(25) as i64;
                m.b = u(33) as i64;
            }
            T_HASH if v.len() >= 33 => m.a = u(25) as i64,
            T_SET | T_ZSET => {}
            _ => return None,
        }
        Some(m)
    }
}

pub fn hash_value(seq: u64, v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + v.len());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(v);
    out
}

pub fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}
