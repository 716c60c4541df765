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
    if prec == 17 && x.fract() == 0.0 && x.abs() < 1e17 {
        // Integral and at most 17 digits: %.17g prints it as a plain integer.
        return (x as i64).to_string();
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
}
