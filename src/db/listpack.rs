//! Sizes of listpack elements as Redis 7.0's `listpack.c` encodes them: what stream nodes
//! (`stream.rs`) count to pack as Redis does, and what the RDB writer (`rdb/listpack.rs`) emits.

/// `lpStringToInt64` (and `string2ll`): a canonical decimal 64-bit integer.
pub fn string_to_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Bytes of an element's backlen for an encoding of `l` bytes.
pub fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn int_enc_len(v: i64) -> usize {
    match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    }
}

/// Bytes an integer element takes (encoding and backlen).
pub fn int_size(v: i64) -> usize {
    let e = int_enc_len(v);
    e + backlen_size(e)
}

/// Bytes `lpAppend` of this string takes.
pub fn str_size(s: &[u8]) -> usize {
    if let Some(v) = string_to_i64(s) {
        return int_size(v);
    }
    let e = match s.len() {
        0..=63 => 1 + s.len(),
        64..=4095 => 2 + s.len(),
        n => 5 + n,
    };
    e + backlen_size(e)
}
