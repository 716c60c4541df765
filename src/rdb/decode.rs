//! RDB object encodings into values (`rdbLoadObjectType` + `rdbLoadObject` in Redis 7.0.15's
//! `rdb.c`), for every type Redis 7.0 loads except modules and zipmaps. Every length is checked
//! against the bytes left before anything is allocated, so a hostile payload costs at most
//! what its own size backs; damage gives `None` (RESTORE's `Bad data format`).

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};

use bytes::Bytes;

use super::listpack::{self, Elem};
use super::{intset, lzf, types, ziplist, DecodeOptions};
use crate::db::{Hash, List, Set, Value, ZSet};
use crate::protocol::numbers::parse_f64;

/// An RDB byte stream being read.
pub struct RdbReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> RdbReader<'a> {
    pub fn new(data: &'a [u8]) -> RdbReader<'a> {
        RdbReader { data, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.remaining() {
            return None;
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Some(s)
    }

    pub fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// `rdbLoadLenByRef`: the length, and whether it is a special encoding instead.
    pub fn len_or_enc(&mut self) -> Option<(u64, bool)> {
        let b = self.byte()?;
        Some(match b >> 6 {
            3 => ((b & 0x3f) as u64, true),
            0 => ((b & 0x3f) as u64, false),
            1 => ((((b & 0x3f) as u64) << 8) | self.byte()? as u64, false),
            _ => match b {
                0x80 => (
                    u32::from_be_bytes(self.take(4)?.try_into().ok()?) as u64,
                    false,
                ),
                0x81 => (u64::from_be_bytes(self.take(8)?.try_into().ok()?), false),
                _ => return None,
            },
        })
    }

    /// `rdbLoadLen(rdb, NULL)`: an encoding byte reads as its 6-bit value, as in Redis.
    pub fn load_len(&mut self) -> Option<u64> {
        self.len_or_enc().map(|(v, _)| v)
    }

    /// `rdbGenericLoadStringObject`: integer-encoded, LZF-compressed or plain.
    pub fn string(&mut self) -> Option<Cow<'a, [u8]>> {
        let (len, encoded) = self.len_or_enc()?;
        if !encoded {
            let n = usize::try_from(len).ok()?;
            return self.take(n).map(Cow::Borrowed);
        }
        let v: i64 = match len {
            0 => self.byte()? as i8 as i64,
            1 => i16::from_le_bytes(self.take(2)?.try_into().ok()?) as i64,
            2 => i32::from_le_bytes(self.take(4)?.try_into().ok()?) as i64,
            3 => {
                let clen = usize::try_from(self.load_len()?).ok()?;
                let ulen = usize::try_from(self.load_len()?).ok()?;
                let c = self.take(clen)?;
                return lzf::decompress(c, ulen).map(Cow::Owned);
            }
            _ => return None,
        };
        Some(Cow::Owned(v.to_string().into_bytes()))
    }

    pub fn bytes(&mut self) -> Option<Bytes> {
        self.string().map(|c| Bytes::copy_from_slice(&c))
    }

    /// `rdbLoadBinaryDoubleValue`.
    pub fn binary_double(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// `rdbLoadDoubleValue` (RDB_TYPE_ZSET): a length byte and the text, or 253/254/255 for
    /// nan/+inf/-inf.
    pub fn text_double(&mut self) -> Option<f64> {
        match self.byte()? {
            255 => Some(f64::NEG_INFINITY),
            254 => Some(f64::INFINITY),
            253 => Some(f64::NAN),
            n => {
                let t = self.take(n as usize)?;
                let s = std::str::from_utf8(t).ok()?;
                s.trim().parse().ok()
            }
        }
    }

    /// `rdbLoadMillisecondTime`.
    pub fn ms_time(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// `rdbLoadObjectType` then `rdbLoadObject`.
pub fn read_value(r: &mut RdbReader, o: &DecodeOptions) -> Option<Value> {
    let t = r.byte()?;
    let v = match t {
        types::STRING => Value::Str(r.bytes()?),
        types::LIST => {
            let n = r.load_len()?;
            let mut items = VecDeque::new();
            for _ in 0..n {
                items.push_back(r.bytes()?);
            }
            list(items)?
        }
        types::SET => {
            let n = r.load_len()?;
            let mut s = Set::new();
            for _ in 0..n {
                if !s.insert(r.bytes()?) {
                    return None; // "Duplicate set members detected"
                }
            }
            non_empty(Value::Set(Box::new(s)))?
        }
        types::ZSET | types::ZSET_2 => {
            let n = r.load_len()?;
            let mut z = ZSet::default();
            for _ in 0..n {
                let m = r.bytes()?;
                let score = if t == types::ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                if score.is_nan() || !z.insert(m, score) {
                    return None;
                }
            }
            non_empty(Value::ZSet(Box::new(z)))?
        }
        types::HASH => {
            let n = r.load_len()?;
            let mut h = Hash::new();
            for _ in 0..n {
                let (k, v) = (r.bytes()?, r.bytes()?);
                if h.insert(k, v).is_some() {
                    return None; // "Duplicate hash fields detected"
                }
            }
            non_empty(Value::Hash(Box::new(h)))?
        }
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
            let n = r.load_len()?;
            let mut items = VecDeque::new();
            for _ in 0..n {
                let container = if t == types::LIST_QUICKLIST_2 {
                    r.load_len()?
                } else {
                    2
                };
                let data = r.string()?;
                if data.is_empty() {
                    return None;
                }
                match container {
                    1 => items.push_back(Bytes::copy_from_slice(&data)),
                    2 => {
                        let elems = if t == types::LIST_QUICKLIST_2 {
                            listpack::parse(&data)?
                        } else {
                            ziplist::parse(&data)?
                        };
                        items.extend(elems.iter().map(Elem::to_bytes));
                    }
                    _ => return None, // "Quicklist integrity check failed."
                }
            }
            list(items)?
        }
        types::SET_INTSET => {
            let blob = r.string()?;
            let ints = intset::decode(&blob)?;
            let s: Set = ints.iter().map(|v| Bytes::from(v.to_string())).collect();
            Value::Set(Box::new(s))
        }
        types::LIST_ZIPLIST => {
            let blob = r.string()?;
            list(ziplist::parse(&blob)?.iter().map(Elem::to_bytes).collect())?
        }
        types::HASH_ZIPLIST | types::HASH_LISTPACK => {
            let blob = r.string()?;
            let elems = parse_compact(&blob, t == types::HASH_LISTPACK)?;
            if elems.len() % 2 != 0 {
                return None;
            }
            let mut h = Hash::new();
            for pair in elems.chunks(2) {
                if h.insert(pair[0].to_bytes(), pair[1].to_bytes()).is_some() {
                    return None;
                }
            }
            non_empty(Value::Hash(Box::new(h)))?
        }
        types::ZSET_ZIPLIST | types::ZSET_LISTPACK => {
            let blob = r.string()?;
            let elems = parse_compact(&blob, t == types::ZSET_LISTPACK)?;
            if elems.len() % 2 != 0 {
                return None;
            }
            let mut z = ZSet::default();
            for pair in elems.chunks(2) {
                let score = match pair[1] {
                    Elem::Int(v) => v as f64,
                    Elem::Str(s) => parse_f64(s)?,
                };
                if !z.insert(pair[0].to_bytes(), score) {
                    return None;
                }
            }
            non_empty(Value::ZSet(Box::new(z)))?
        }
        types::STREAM_LISTPACKS | types::STREAM_LISTPACKS_2 => {
            Value::Stream(Box::new(super::stream::read_stream(r, t, o)?))
        }
        _ => return None,
    };
    Some(v)
}

fn parse_compact(blob: &[u8], listpack: bool) -> Option<Vec<Elem<'_>>> {
    if listpack {
        listpack::parse(blob)
    } else {
        ziplist::parse(blob)
    }
}

fn list(items: VecDeque<Bytes>) -> Option<Value> {
    non_empty(Value::List(Box::new(List::from(items))))
}

/// Redis refuses empty collections (`RDB_LOAD_ERR_EMPTY_KEY`).
fn non_empty(v: Value) -> Option<Value> {
    (!v.is_empty()).then_some(v)
}

/// Distinct names, as Redis's consumer groups, consumers and PELs require.
pub(super) fn unique<T: std::hash::Hash + Eq>(seen: &mut HashSet<T>, t: T) -> Option<()> {
    seen.insert(t).then_some(())
}
