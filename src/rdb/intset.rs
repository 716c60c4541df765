//! Intsets (Redis's `intset.c`): a sorted array of integers, 16, 32 or 64 bits wide, with a
//! little-endian header (encoding, length).

/// The intset blob for these integers (any order, no duplicates).
pub fn encode(values: &mut [i64]) -> Vec<u8> {
    values.sort_unstable();
    let width: usize = if values
        .iter()
        .all(|&v| v >= i16::MIN as i64 && v <= i16::MAX as i64)
    {
        2
    } else if values
        .iter()
        .all(|&v| v >= i32::MIN as i64 && v <= i32::MAX as i64)
    {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values.iter() {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// The integers of an intset blob, validated as `intsetValidateIntegrity(..., deep=1)`:
/// a known width, the size matching the count, not empty, strictly ascending.
pub fn decode(blob: &[u8]) -> Option<Vec<i64>> {
    if blob.len() < 8 {
        return None;
    }
    let width = u32::from_le_bytes(blob[..4].try_into().ok()?) as usize;
    let count = u32::from_le_bytes(blob[4..8].try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || count == 0 || 8 + count.checked_mul(width)? != blob.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for c in blob[8..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes(c.try_into().ok()?) as i64,
            _ => i64::from_le_bytes(c.try_into().ok()?),
        };
        if out.last().is_some_and(|&p| v <= p) {
            return None;
        }
        out.push(v);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis() {
        // Redis 7.0.15's DUMP of SADD s 1 2 3 carries this intset.
        let blob = encode(&mut [3, 1, 2]);
        assert_eq!(
            blob,
            b"\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00"
        );
        assert_eq!(decode(&blob).unwrap(), vec![1, 2, 3]);
        let blob = encode(&mut [i64::MIN, 5, 70000]);
        assert_eq!(blob.len(), 8 + 24);
        assert_eq!(decode(&blob).unwrap(), vec![i64::MIN, 5, 70000]);
        assert_eq!(encode(&mut [70000, -1]).len(), 8 + 8);
    }

    #[test]
    fn refuses_damage() {
        assert!(decode(b"\x02\x00\x00\x00\x00\x00\x00\x00").is_none());
        assert!(decode(b"\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x01\x00").is_none());
        assert!(decode(b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00").is_none());
        assert!(decode(b"\x02\x00\x00\x00\xff\xff\xff\xff\x01\x00").is_none());
    }
}
