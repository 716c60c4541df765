//! Ziplists (Redis's `ziplist.c`), read only: RDB 9 and older payloads (Redis 6) carry lists,
//! hashes and sorted sets as ziplists; Redis 7 converts them to listpacks when it loads them.

use super::listpack::Elem;

/// Every element of a ziplist, validated as `ziplistValidateIntegrity(..., deep=1)` does
/// (header sizes, each entry's prevlen and encoding inside the buffer, the tail offset, the
/// count unless it is saturated); None if damaged.
pub fn parse(zl: &[u8]) -> Option<Vec<Elem<'_>>> {
    const HDR: usize = 10;
    if zl.len() < HDR + 1 || zl[zl.len() - 1] != 0xff {
        return None;
    }
    if u32::from_le_bytes(zl[..4].try_into().ok()?) as usize != zl.len() {
        return None;
    }
    let tail = u32::from_le_bytes(zl[4..8].try_into().ok()?) as usize;
    let count = u16::from_le_bytes([zl[8], zl[9]]) as usize;
    let end = zl.len() - 1;
    let mut out = Vec::new();
    let (mut p, mut prev_len, mut last) = (HDR, 0usize, HDR);
    while p < end {
        let rest = &zl[p..end];
        let need = |n: usize| (rest.len() >= n).then_some(());
        // prevlen
        let (prevlen, pl) = if rest[0] < 254 {
            (rest[0] as usize, 1)
        } else {
            need(5)?;
            (u32::from_le_bytes(rest[1..5].try_into().ok()?) as usize, 5)
        };
        if prevlen != prev_len {
            return None;
        }
        need(pl + 1)?;
        let e = &rest[pl..];
        let b = e[0];
        let (elem, len) = match b >> 6 {
            0 => {
                let n = (b & 0x3f) as usize;
                (e.get(1..1 + n).map(Elem::Str)?, 1 + n)
            }
            1 => {
                let n = (((b & 0x3f) as usize) << 8) | *e.get(1)? as usize;
                (e.get(2..2 + n).map(Elem::Str)?, 2 + n)
            }
            2 => {
                if b != 0x80 {
                    return None;
                }
                let n = u32::from_be_bytes(e.get(1..5)?.try_into().ok()?) as usize;
                (e.get(5..5usize.checked_add(n)?).map(Elem::Str)?, 5 + n)
            }
            _ => match b {
                0xc0 => (
                    Elem::Int(i16::from_le_bytes(e.get(1..3)?.try_into().ok()?) as i64),
                    3,
                ),
                0xd0 => (
                    Elem::Int(i32::from_le_bytes(e.get(1..5)?.try_into().ok()?) as i64),
                    5,
                ),
                0xe0 => (
                    Elem::Int(i64::from_le_bytes(e.get(1..9)?.try_into().ok()?)),
                    9,
                ),
                0xf0 => {
                    let x = e.get(1..4)?;
                    (
                        Elem::Int((i32::from_le_bytes([0, x[0], x[1], x[2]]) >> 8) as i64),
                        4,
                    )
                }
                0xfe => (Elem::Int(*e.get(1)? as i8 as i64), 2),
                0xf1..=0xfd => (Elem::Int((b & 0x0f) as i64 - 1), 1),
                _ => return None,
            },
        };
        need(pl + len)?;
        out.push(elem);
        last = p;
        prev_len = pl + len;
        p += pl + len;
    }
    if p != end || (!out.is_empty() && tail != last) || (out.is_empty() && tail != HDR) {
        return None;
    }
    if count != u16::MAX as usize && count != out.len() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis6_list_ziplist() {
        // A ziplist of "a", 1, 300, "-5" as Redis 6 writes it.
        let mut zl = vec![0u8; 10];
        let entries: Vec<Vec<u8>> = vec![
            vec![0x01, b'a'],
            vec![0xf2],
            vec![0xc0, 0x2c, 0x01],
            vec![0x02, b'-', b'5'],
        ];
        let mut prev = 0;
        let mut tail = 10;
        for e in &entries {
            tail = zl.len();
            zl.push(prev as u8);
            zl.extend_from_slice(e);
            prev = e.len() + 1;
        }
        zl.push(0xff);
        let n = zl.len() as u32;
        zl[..4].copy_from_slice(&n.to_le_bytes());
        zl[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
        zl[8..10].copy_from_slice(&4u16.to_le_bytes());
        let got = parse(&zl).unwrap();
        assert_eq!(
            got,
            vec![
                Elem::Str(b"a"),
                Elem::Int(1),
                Elem::Int(300),
                Elem::Str(b"-5")
            ]
        );
        for cut in 0..zl.len() {
            assert!(parse(&zl[..cut]).is_none());
        }
    }
}
