//! LZF as Redis bundles it (liblzf 3.6 with HLOG 16, VERY_FAST): `lzf_compress` ported step by
//! step so DUMP compresses strings as Redis does, and a bounds-checked `lzf_decompress`.
//!
//! Redis leaves the hash table uninitialised between calls; here it starts empty for each call
//! (a generation tag instead of a memset), which is what Redis produces whenever the stale
//! slots find no match.

use std::cell::RefCell;

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

struct Table {
    generation: u32,
    slots: Vec<u64>,
}

thread_local! {
    static TABLE: RefCell<Table> = const { RefCell::new(Table { generation: 0, slots: Vec::new() }) };
}

fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// `lzf_compress(in, in_len, out, out_len)`: None when the result would not fit in `out_len`
/// bytes (Redis then stores the string verbatim).
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if input.is_empty() || out_len == 0 || input.len() >= u32::MAX as usize {
        return None;
    }
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if t.slots.is_empty() {
            t.slots = vec![0; HSIZE];
        }
        t.generation = t.generation.wrapping_add(1);
        if t.generation == 0 {
            t.slots.iter_mut().for_each(|s| *s = 0);
            t.generation = 1;
        }
        let g = (t.generation as u64) << 32;
        compress_with(input, out_len, &mut t.slots, g)
    })
}

fn compress_with(input: &[u8], out_len: usize, htab: &mut [u64], g: u64) -> Option<Vec<u8>> {
    let in_len = input.len();
    let mut out = vec![0u8; out_len];
    let get = |htab: &[u64], i: usize| -> Option<usize> {
        let s = htab[i];
        (s >> 32 == g >> 32).then_some((s & 0xffff_ffff) as usize)
    };
    let frst = |p: usize| ((input[p] as u32) << 8) | input[p + 1] as u32;
    let next = |v: u32, p: usize| (v << 8) | input[p + 2] as u32;
    let (mut ip, mut op, mut lit) = (0usize, 1usize, 0usize);
    let mut hval = if in_len >= 2 { frst(0) } else { 0 };
    while ip + 2 < in_len {
        hval = next(hval, ip);
        let slot = idx(hval);
        let reference = get(htab, slot);
        htab[slot] = g | ip as u64;
        let found = reference.filter(|&r| {
            r < ip
                && ip - r - 1 < MAX_OFF
                && r > 0
                && input[r + 2] == input[ip + 2]
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
        });
        if let Some(r) = found {
            let off = ip - r - 1;
            let mut len = 2usize;
            let maxlen = (in_len - ip - len).min(MAX_REF);
            if op + 3 + 1 >= out_len && op - usize::from(lit == 0) + 3 + 1 >= out_len {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1);
            op -= usize::from(lit == 0);
            'scan: {
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            break 'scan;
                        }
                    }
                }
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2;
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 2; // the byte, then start a run
            lit = 0;
            ip += len + 1;
            if ip + 2 >= in_len {
                break;
            }
            ip -= 2;
            hval = frst(ip);
            hval = next(hval, ip);
            htab[idx(hval)] = g | ip as u64;
            ip += 1;
            hval = next(hval, ip);
            htab[idx(hval)] = g | ip as u64;
            ip += 1;
        } else {
            if op >= out_len {
                return None;
            }
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
    }
    if op + 3 > out_len {
        return None;
    }
    while ip < in_len {
        if op >= out_len {
            return None;
        }
        lit += 1;
        out[op] = input[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    if op - lit > out_len {
        return None;
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// `lzf_decompress`: the data must expand to exactly `out_len` bytes. Output grows as it is
/// produced, so a hostile length costs nothing until data backs it.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(1 << 20));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if ip + n > input.len() || out.len() + n > out_len {
                return None;
            }
            out.extend_from_slice(&input[ip..ip + n]);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            let n = len + 2;
            if out.len() + n > out_len || back > out.len() {
                return None;
            }
            let start = out.len() - back;
            for k in 0..n {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let samples: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"hello world hello world hello world, this is a test".to_vec(),
            (0..5000u32).map(|i| (i % 251) as u8).collect(),
            (0..3000u32).map(|i| (i * 7919 % 256) as u8).collect(),
        ];
        for s in samples {
            if let Some(c) = compress(&s, s.len() - 4) {
                assert_eq!(decompress(&c, s.len()).unwrap(), s);
            }
        }
    }

    #[test]
    fn redis_output() {
        // DUMP of SET k "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" (30 a's) in Redis 7.0.15.
        let c = compress(&[b'a'; 30], 26).unwrap();
        assert_eq!(
            c,
            vec![0x01, b'a', b'a', 0xe0, 0x11, 0x00, 0x01, b'a', b'a']
        );
    }

    #[test]
    fn hostile_input() {
        assert!(decompress(&[0xe0, 0xff, 0x00], 1000).is_none());
        assert!(decompress(&[0x05, b'a'], 6).is_none());
        assert!(decompress(&[0x00, b'a', 0x20, 0x05], 4).is_none());
        assert_eq!(decompress(&[0x00, b'a', 0x20, 0x00], 4).unwrap(), b"aaaa");
    }
}
