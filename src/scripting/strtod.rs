//! C's `strtod` on a prefix of a byte string, as lua-cjson uses it to read numbers.

/// C's strtod on a prefix: (value, bytes consumed), None when nothing converts.
pub fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let neg = match s.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let sign = if neg { -1.0 } else { 1.0 };
    let rest = &s[i..];
    let lower: Vec<u8> = rest
        .iter()
        .take(8)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if lower.starts_with(b"infinity") {
        return Some((sign * f64::INFINITY, i + 8));
    }
    if lower.starts_with(b"inf") {
        return Some((sign * f64::INFINITY, i + 3));
    }
    if lower.starts_with(b"nan") {
        let mut j = i + 3;
        if s.get(j) == Some(&b'(') {
            if let Some(close) = s[j..].iter().position(|&c| c == b')') {
                if s[j + 1..j + close]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    j += close + 1;
                }
            }
        }
        return Some((f64::NAN, j));
    }
    if lower.starts_with(b"0x") {
        let mut j = i + 2;
        let mut mant = 0f64;
        let mut any = false;
        let mut exp = 0i32;
        while let Some(d) = s.get(j).and_then(|c| (*c as char).to_digit(16)) {
            mant = mant * 16.0 + d as f64;
            any = true;
            j += 1;
        }
        if s.get(j) == Some(&b'.') {
            j += 1;
            while let Some(d) = s.get(j).and_then(|c| (*c as char).to_digit(16)) {
                mant = mant * 16.0 + d as f64;
                exp -= 4;
                any = true;
                j += 1;
            }
        }
        if !any {
            // "0x" alone converts the "0".
            return Some((sign * 0.0, i + 1));
        }
        if matches!(s.get(j), Some(b'p') | Some(b'P')) {
            let mut k = j + 1;
            let eneg = match s.get(k) {
                Some(b'-') => {
                    k += 1;
                    true
                }
                Some(b'+') => {
                    k += 1;
                    false
                }
                _ => false,
            };
            let start = k;
            let mut e = 0i32;
            while let Some(c) = s.get(k).filter(|c| c.is_ascii_digit()) {
                e = e.saturating_mul(10).saturating_add((c - b'0') as i32);
                k += 1;
            }
            if k > start {
                exp += if eneg { -e } else { e };
                j = k;
            }
        }
        return Some((sign * mant * 2f64.powi(exp), j));
    }
    let mut j = i;
    let mut digits = 0;
    while s.get(j).is_some_and(|c| c.is_ascii_digit()) {
        j += 1;
        digits += 1;
    }
    if s.get(j) == Some(&b'.') {
        j += 1;
        while s.get(j).is_some_and(|c| c.is_ascii_digit()) {
            j += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if matches!(s.get(j), Some(b'e') | Some(b'E')) {
        let mut k = j + 1;
        if matches!(s.get(k), Some(b'-') | Some(b'+')) {
            k += 1;
        }
        let start = k;
        while s.get(k).is_some_and(|c| c.is_ascii_digit()) {
            k += 1;
        }
        if k > start {
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[i..j]).ok()?;
    let text = if text.starts_with('.') {
        format!("0{text}")
    } else {
        text.to_string()
    };
    let text = text
        .strip_suffix('.')
        .map(|t| t.to_string())
        .unwrap_or(text);
    let v: f64 = text.replace(".e", "e").replace(".E", "E").parse().ok()?;
    Some((sign * v, j))
}

#[cfg(test)]
mod tests {
    use super::strtod;

    #[test]
    fn prefixes() {
        assert_eq!(strtod(b"12abc"), Some((12.0, 2)));
        assert_eq!(strtod(b"-1.5e3,"), Some((-1500.0, 6)));
        assert_eq!(strtod(b"0x10]"), Some((16.0, 4)));
        assert_eq!(strtod(b"1e"), Some((1.0, 1)));
        assert_eq!(strtod(b".5"), Some((0.5, 2)));
        assert_eq!(strtod(b"-"), None);
        assert_eq!(strtod(b"inf"), Some((f64::INFINITY, 3)));
        assert!(strtod(b"nan").is_some_and(|(v, n)| v.is_nan() && n == 3));
    }
}
