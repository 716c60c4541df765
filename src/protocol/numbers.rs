//! Number parsing and printing with Redis's exact rules (`util.c`: string2ll, string2d, ld2string).

/// C's `printf("%.{prec}g", x)`, used by Redis for doubles (`%.17g`).
pub fn fmt_g(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:.*e}", prec - 1, x);
    let (mantissa, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if exp < -4 || exp >= prec as i32 {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// How Redis 7.0 prints a double reply (`addReplyDouble`).
pub fn fmt_double(x: f64) -> String {
    fmt_g(x, 17)
}

/// `string2d` / `getDoubleFromObject`: strtod over the whole string, no leading space,
/// no overflow/underflow, no NaN.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty() || text.len() > 5000 || text.as_bytes()[0].is_ascii_whitespace() {
        return None;
    }
    let v: f64 = text.parse().ok().or_else(|| parse_hex_float(text))?;
    if v.is_nan() {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if v.is_infinite() && !lower.contains("inf") {
        return None; // ERANGE overflow
    }
    if v == 0.0 && has_nonzero_mantissa(&lower) {
        return None; // ERANGE underflow
    }
    Some(v)
}

fn has_nonzero_mantissa(lower: &str) -> bool {
    let mantissa = lower.split('e').next().unwrap_or("");
    !lower.starts_with("0x") && mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c))
}

/// strtod also accepts C99 hex floats ("0x1p3"); rare, but Redis takes them.
fn parse_hex_float(text: &str) -> Option<f64> {
    let (neg, t) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))?;
    let (mant, exp) = match t.find(['p', 'P']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

/// The result of INCRBYFLOAT / HINCRBYFLOAT: Redis adds two `long double`s and prints them with
/// `%.17Lf`, trailing zeros removed. Decimal inputs are added exactly in fixed point (which is
/// what the 64-bit long double mantissa yields at 17 decimals for ordinary values); anything
/// else falls back to f64.
pub fn incr_float(current: &[u8], incr: &[u8]) -> Option<(f64, String)> {
    let a = parse_f64(current)?;
    let b = parse_f64(incr)?;
    let sum = a + b;
    if !sum.is_finite() {
        return None;
    }
    if let (Some(x), Some(y)) = (fixed17(current), fixed17(incr)) {
        if let Some(total) = x.checked_add(y) {
            return Some((sum, fmt_fixed17(total)));
        }
    }
    Some((sum, fmt_ld_human(sum)))
}

const SCALE: i128 = 100_000_000_000_000_000; // 10^17

/// A decimal (optionally with an exponent, `2.5e-3`) with at most 17 fractional digits, as
/// value * 10^17.
fn fixed17(s: &[u8]) -> Option<i128> {
    let text = std::str::from_utf8(s).ok()?;
    let (neg, t) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (t, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if exp != 0 {
        if int.is_empty() && frac.is_empty() || exp.unsigned_abs() > 40 {
            return None;
        }
        // Move the decimal point: digits * 10^(exp - frac.len()).
        let digits = format!("{int}{frac}");
        let point = int.len() as i32 + exp;
        let (i, f) = if point <= 0 {
            (
                String::new(),
                format!("{}{digits}", "0".repeat((-point) as usize)),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let i = i.trim_start_matches('0');
        let f = f.trim_end_matches('0');
        let plain = format!(
            "{}{}.{}",
            if neg { "-" } else { "" },
            if i.is_empty() { "0" } else { i },
            f
        );
        return fixed17(plain.as_bytes());
    }
    if (int.is_empty() && frac.is_empty()) || int.len() > 19 || frac.len() > 17 {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let int_v: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut frac_v: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..17 {
        frac_v *= 10;
    }
    let v = int_v * SCALE + frac_v;
    Some(if neg { -v } else { v })
}

fn fmt_fixed17(v: i128) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let int = a / SCALE as u128;
    let frac = a % SCALE as u128;
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let f = format!("{frac:017}");
    format!("{sign}{int}.{}", f.trim_end_matches('0'))
}

/// `ld2string(..., LD_STR_HUMAN)` approximated with f64: `%.17f`, trailing zeros removed.
pub fn fmt_ld_human(x: f64) -> String {
    let s = format!("{x:.17}");
    let s = strip_zeros(&s);
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17() {
        assert_eq!(fmt_double(1.5), "1.5");
        assert_eq!(fmt_double(0.1), "0.10000000000000001");
        assert_eq!(fmt_double(1795423607.5), "1795423607.5");
        assert_eq!(fmt_double(1e16), "10000000000000000");
        assert_eq!(fmt_double(1e17), "1e+17");
        assert_eq!(fmt_double(5e-5), "5.0000000000000002e-05");
        assert_eq!(fmt_double(-3.0), "-3");
        assert_eq!(fmt_double(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn strtod() {
        assert_eq!(parse_f64(b"1.0e+16"), Some(1e16));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1e400"), None);
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"abc"), None);
    }

    #[test]
    fn incrbyfloat() {
        assert_eq!(incr_float(b"0", b"0.1").unwrap().1, "0.1");
        assert_eq!(incr_float(b"0.1", b"0.2").unwrap().1, "0.3");
        assert_eq!(incr_float(b"10.5", b"-10.5").unwrap().1, "0");
        assert_eq!(incr_float(b"3", b"2").unwrap().1, "5");
        assert_eq!(incr_float(b"1000", b"2.5e-3").unwrap().1, "1000.0025");
        assert_eq!(incr_float(b"0.5", b"-1.5E+2").unwrap().1, "-149.5");
        assert_eq!(incr_float(b"1", b"1e3").unwrap().1, "1001");
    }
}
