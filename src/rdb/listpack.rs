//! Listpacks (Redis's `listpack.c`): a writer that encodes elements as `lpAppend` does
//! (strings that are canonical integers become integers) and a reader that validates every
//! entry as `lpValidateIntegrity(..., deep=1)` does, never reading past the buffer.

use bytes::Bytes;

use crate::db::listpack::backlen_size;
pub use crate::db::listpack::{int_size, str_size, string_to_i64};

const HDR: usize = 6;
const EOF: u8 = 0xff;
/// `LP_HDR_NUMELE_UNKNOWN`.
const NUMELE_UNKNOWN: usize = u16::MAX as usize;

/// One listpack element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Elem<'_> {
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Elem::Int(v) => Bytes::from(v.to_string()),
            Elem::Str(s) => Bytes::copy_from_slice(s),
        }
    }

    /// `lpGetIntegerIfValid`: an integer element, or a string holding one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Elem::Int(v) => Some(*v),
            Elem::Str(s) => string_to_i64(s),
        }
    }
}

fn push_backlen(buf: &mut Vec<u8>, l: usize) {
    let l = l as u64;
    match backlen_size(l as usize) {
        1 => buf.push(l as u8),
        2 => buf.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]),
        3 => buf.extend_from_slice(&[
            (l >> 14) as u8,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        4 => buf.extend_from_slice(&[
            (l >> 21) as u8,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        _ => buf.extend_from_slice(&[
            (l >> 28) as u8,
            ((l >> 21) & 127) as u8 | 128,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
    }
}

/// Builds a listpack by appending elements.
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            buf: vec![0; HDR],
            count: 0,
        }
    }

    /// Total bytes the listpack would have if finished now (`lpBytes`).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        match v {
            0..=127 => self.buf.push(v as u8),
            -4096..=4095 => {
                let u = if v < 0 { (1i64 << 13) + v } else { v } as u64;
                self.buf
                    .extend_from_slice(&[(u >> 8) as u8 | 0xc0, u as u8]);
            }
            -32768..=32767 => {
                self.buf.push(0xf1);
                self.buf.extend_from_slice(&(v as i16).to_le_bytes());
            }
            -8388608..=8388607 => {
                self.buf.push(0xf2);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            -2147483648..=2147483647 => {
                self.buf.push(0xf3);
                self.buf.extend_from_slice(&(v as i32).to_le_bytes());
            }
            _ => {
                self.buf.push(0xf4);
                self.buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        let enc = self.buf.len() - start;
        push_backlen(&mut self.buf, enc);
        self.count += 1;
    }

    /// `lpAppend`: a canonical integer string is stored as an integer.
    pub fn push_str(&mut self, s: &[u8]) {
        if let Some(v) = string_to_i64(s) {
            return self.push_int(v);
        }
        let start = self.buf.len();
        match s.len() {
            n @ 0..=63 => self.buf.push(0x80 | n as u8),
            n @ 64..=4095 => self
                .buf
                .extend_from_slice(&[0xe0 | (n >> 8) as u8, n as u8]),
            n => {
                self.buf.push(0xf0);
                self.buf.extend_from_slice(&(n as u32).to_le_bytes());
            }
        }
        self.buf.extend_from_slice(s);
        let enc = self.buf.len() - start;
        push_backlen(&mut self.buf, enc);
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let n = self.count.min(NUMELE_UNKNOWN) as u16;
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

/// Every element of a listpack, validated as Redis's deep integrity check does (header size,
/// terminator, each entry's encoding and back length, the element count); None if damaged.
pub fn parse(lp: &[u8]) -> Option<Vec<Elem<'_>>> {
    if lp.len() < HDR + 1 || lp[lp.len() - 1] != EOF {
        return None;
    }
    if u32::from_le_bytes(lp[..4].try_into().ok()?) as usize != lp.len() {
        return None;
    }
    let numele = u16::from_le_bytes([lp[4], lp[5]]) as usize;
    let end = lp.len() - 1;
    let mut out = Vec::new();
    let mut p = HDR;
    while p < end {
        let rest = &lp[p..end];
        let b = rest[0];
        let need = |n: usize| (rest.len() >= n).then_some(());
        let (elem, enc) = if b & 0x80 == 0 {
            (Elem::Int((b & 0x7f) as i64), 1)
        } else if b & 0xc0 == 0x80 {
            let n = (b & 0x3f) as usize;
            need(1 + n)?;
            (Elem::Str(&rest[1..1 + n]), 1 + n)
        } else if b & 0xe0 == 0xc0 {
            need(2)?;
            let mut v = (((b & 0x1f) as i64) << 8) | rest[1] as i64;
            if v >= 1 << 12 {
                v -= 1 << 13;
            }
            (Elem::Int(v), 2)
        } else if b & 0xf0 == 0xe0 {
            need(2)?;
            let n = (((b & 0x0f) as usize) << 8) | rest[1] as usize;
            need(2 + n)?;
            (Elem::Str(&rest[2..2 + n]), 2 + n)
        } else {
            match b {
                0xf0 => {
                    need(5)?;
                    let n = u32::from_le_bytes(rest[1..5].try_into().ok()?) as usize;
                    need(5usize.checked_add(n)?)?;
                    (Elem::Str(&rest[5..5 + n]), 5 + n)
                }
                0xf1 => {
                    need(3)?;
                    (Elem::Int(i16::from_le_bytes([rest[1], rest[2]]) as i64), 3)
                }
                0xf2 => {
                    need(4)?;
                    let v = i32::from_le_bytes([0, rest[1], rest[2], rest[3]]) >> 8;
                    (Elem::Int(v as i64), 4)
                }
                0xf3 => {
                    need(5)?;
                    (
                        Elem::Int(i32::from_le_bytes(rest[1..5].try_into().ok()?) as i64),
                        5,
                    )
                }
                0xf4 => {
                    need(9)?;
                    (
                        Elem::Int(i64::from_le_bytes(rest[1..9].try_into().ok()?)),
                        9,
                    )
                }
                _ => return None,
            }
        };
        let bl = backlen_size(enc);
        need(enc + bl)?;
        let mut expect = Vec::with_capacity(5);
        push_backlen(&mut expect, enc);
        if rest[enc..enc + bl] != expect[..] {
            return None;
        }
        out.push(elem);
        p += enc + bl;
    }
    if numele != NUMELE_UNKNOWN && numele != out.len() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_list_listpack() {
        // The listpack inside Redis 7.0.15's DUMP of RPUSH l a b 1 -5 300.
        let mut w = Writer::new();
        for s in ["a", "b", "1", "-5", "300"] {
            w.push_str(s.as_bytes());
        }
        let lp = w.finish();
        assert_eq!(
            lp,
            b"\x15\x00\x00\x00\x05\x00\x81a\x02\x81b\x02\x01\x01\xdf\xfb\x02\xc1,\x02\xff"
        );
        let back = parse(&lp).unwrap();
        assert_eq!(
            back,
            vec![
                Elem::Str(b"a"),
                Elem::Str(b"b"),
                Elem::Int(1),
                Elem::Int(-5),
                Elem::Int(300)
            ]
        );
    }

    #[test]
    fn every_encoding_round_trips() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 100];
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            -32768,
            32767,
            8388607,
            -8388608,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ];
        let mut w = Writer::new();
        for v in ints {
            w.push_int(v);
        }
        w.push_str(&long);
        w.push_str(&mid);
        w.push_str(b"");
        w.push_str(b"-0");
        let n = w.bytes();
        let lp = w.finish();
        assert_eq!(lp.len(), n);
        let back = parse(&lp).unwrap();
        for (i, v) in ints.iter().enumerate() {
            assert_eq!(back[i], Elem::Int(*v));
            assert_eq!(int_size(*v), {
                let mut w = Writer::new();
                w.push_int(*v);
                w.bytes() - 7
            });
        }
        assert_eq!(back[ints.len()], Elem::Str(&long));
        assert_eq!(back[ints.len() + 1], Elem::Str(&mid));
        assert_eq!(back[ints.len() + 3], Elem::Str(b"-0"));
        assert_eq!(str_size(&long), 5000 + 5 + 2);
    }

    #[test]
    fn damaged_listpacks_are_refused() {
        let mut w = Writer::new();
        w.push_str(b"hello");
        let lp = w.finish();
        for cut in 0..lp.len() {
            assert!(parse(&lp[..cut]).is_none());
        }
        let mut bad = lp.clone();
        bad[4] = 2;
        assert!(parse(&bad).is_none());
        let mut bad = lp.clone();
        bad[lp.len() - 2] = 9;
        assert!(parse(&bad).is_none());
    }
}
