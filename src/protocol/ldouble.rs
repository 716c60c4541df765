//! INCRBYFLOAT arithmetic exactly as Redis on x86-64 does it: both operands are parsed with
//! `strtold` into an x87 80-bit `long double` (64-bit mantissa), added with round-to-nearest-even,
//! and printed with `%.17Lf` minus trailing zeros (`ld2string(.., LD_STR_HUMAN)`).
//!
//! Values are kept as `m * 2^e` with a 64-bit mantissa; conversions use a small big integer so
//! every rounding step is exact, like glibc's.

use std::cmp::Ordering;

/// Little-endian base-2^32 digits, no trailing zero limbs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn zero() -> Big {
        Big(Vec::new())
    }

    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bits(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(top) => (self.0.len() as u64 - 1) * 32 + (32 - top.leading_zeros() as u64),
        }
    }

    fn bit(&self, i: u64) -> bool {
        let limb = (i / 32) as usize;
        limb < self.0.len() && (self.0[limb] >> (i % 32)) & 1 == 1
    }

    /// Any bit below position `i` set?
    fn any_below(&self, i: u64) -> bool {
        let full = (i / 32) as usize;
        if self.0.iter().take(full).any(|&l| l != 0) {
            return true;
        }
        let rem = i % 32;
        rem > 0 && full < self.0.len() && self.0[full] & ((1u32 << rem) - 1) != 0
    }

    fn mul_small(&mut self, m: u32, add: u32) {
        let mut carry = add as u64;
        for l in self.0.iter_mut() {
            let v = *l as u64 * m as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn mul_pow10(&mut self, mut n: u64) {
        while n >= 9 {
            self.mul_small(1_000_000_000, 0);
            n -= 9;
        }
        if n > 0 {
            self.mul_small(10u32.pow(n as u32), 0);
        }
    }

    fn shl(&self, n: u64) -> Big {
        if self.is_zero() {
            return Big::zero();
        }
        let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &l in &self.0 {
            if bits == 0 {
                out.push(l);
            } else {
                out.push((l << bits) | carry);
                carry = l >> (32 - bits);
            }
        }
        if carry > 0 {
            out.push(carry);
        }
        Big(out)
    }

    fn shr(&self, n: u64) -> Big {
        let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
        if limbs >= self.0.len() {
            return Big::zero();
        }
        let src = &self.0[limbs..];
        let mut out = Vec::with_capacity(src.len());
        for i in 0..src.len() {
            let lo = src[i] >> bits;
            let hi = if bits > 0 && i + 1 < src.len() {
                src[i + 1] << (32 - bits)
            } else {
                0
            };
            out.push(lo | hi);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn low_u64(&self) -> u64 {
        self.0.first().copied().unwrap_or(0) as u64
            | (self.0.get(1).copied().unwrap_or(0) as u64) << 32
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = self.0.get(i).copied().unwrap_or(0) as u64
                + o.0.get(i).copied().unwrap_or(0) as u64
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry > 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// self - o, requires self >= o.
    fn sub(&self, o: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v = self.0[i] as i64 - o.0.get(i).copied().unwrap_or(0) as i64 - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            out.push(v as u32);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    /// (num / den, num % den != 0) for a quotient known to be below 2^qbits.
    fn div_small_quotient(num: &Big, den: &Big, qbits: u64) -> (Big, bool) {
        let mut rem = num.clone();
        let mut q = Big::zero();
        for i in (0..qbits).rev() {
            let d = den.shl(i);
            if rem.cmp(&d) != Ordering::Less {
                rem = rem.sub(&d);
                q = q.add(&Big::from_u64(1).shl(i));
            }
        }
        (q, !rem.is_zero())
    }

    fn to_decimal(&self) -> String {
        let mut limbs = self.0.clone();
        let mut chunks = Vec::new();
        while !limbs.is_empty() {
            let mut rem = 0u64;
            for l in limbs.iter_mut().rev() {
                let v = (rem << 32) | *l as u64;
                *l = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
            chunks.push(rem as u32);
        }
        let mut s = match chunks.pop() {
            None => return "0".into(),
            Some(top) => top.to_string(),
        };
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

/// A finite long double: (-1)^neg * m * 2^e, m is 0 or has its top bit set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ld {
    neg: bool,
    m: u64,
    e: i64,
}

/// Largest binary exponent of a finite value's top bit (LDBL_MAX < 2^16384); below MIN_TOP a
/// value rounds to zero, which is strtold's only underflow ERANGE (subnormals are accepted;
/// their reduced precision is not modelled).
const MAX_TOP: i64 = 16383;
const MIN_TOP: i64 = -16446;

#[derive(Debug, PartialEq)]
pub enum Parsed {
    Finite(Ld),
    Inf(bool),
}

/// Rounds `x * 2^exp` (plus a sticky non-zero tail below it) to 64 bits, nearest-even.
fn round(x: &Big, exp: i64, sticky: bool, neg: bool) -> Ld {
    if x.is_zero() {
        return Ld { neg, m: 0, e: 0 };
    }
    let len = x.bits();
    if len <= 64 {
        let m = x.low_u64() << (64 - len);
        return Ld {
            neg,
            m,
            e: exp - (64 - len as i64),
        };
    }
    let s = len - 64;
    let mut m = x.shr(s).low_u64();
    let half = x.bit(s - 1);
    let rest = sticky || x.any_below(s - 1);
    let mut e = exp + s as i64;
    if half && (rest || m & 1 == 1) {
        m = m.wrapping_add(1);
        if m == 0 {
            m = 1 << 63;
            e += 1;
        }
    }
    Ld { neg, m, e }
}

fn top(v: &Ld) -> i64 {
    v.e + 63
}

/// `strtold` over the whole string as Redis's `string2ld` uses it: None if the string is not a
/// number, has leading space or junk, is NaN, or is out of range (ERANGE).
pub fn parse(s: &[u8]) -> Option<Parsed> {
    if s.is_empty() || s.len() >= 5 * 1024 || s[0].is_ascii_whitespace() {
        return None;
    }
    let (neg, t) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = t.to_ascii_lowercase();
    if lower == b"inf" || lower == b"infinity" {
        return Some(Parsed::Inf(neg));
    }
    let v = if lower.starts_with(b"0x") {
        parse_hex(&lower[2..], neg)?
    } else {
        parse_dec(&lower, neg)?
    };
    if v.m != 0 && (top(&v) > MAX_TOP || top(&v) < MIN_TOP) {
        return None;
    }
    Some(Parsed::Finite(v))
}

/// Splits `digits[.digits][<marker>[sign]digits]`; returns (all digits, fraction length, exp).
fn split_number(t: &[u8], marker: u8, hex: bool) -> Option<(Vec<u8>, i64, i64)> {
    let is_digit = |c: u8| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    };
    let mut i = 0;
    let mut digits = Vec::new();
    while i < t.len() && is_digit(t[i]) {
        digits.push(t[i]);
        i += 1;
    }
    let mut frac = 0i64;
    if i < t.len() && t[i] == b'.' {
        i += 1;
        while i < t.len() && is_digit(t[i]) {
            digits.push(t[i]);
            frac += 1;
            i += 1;
        }
    }
    if digits.is_empty() {
        return None;
    }
    let mut exp = 0i64;
    if i < t.len() && t[i] == marker {
        i += 1;
        let eneg = match t.get(i) {
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
        let start = i;
        while i < t.len() && t[i].is_ascii_digit() {
            exp = (exp * 10 + (t[i] - b'0') as i64).min(1_000_000);
            i += 1;
        }
        if i == start {
            return None; // strtold would stop before the marker: trailing junk
        }
        if eneg {
            exp = -exp;
        }
    }
    if i != t.len() {
        return None;
    }
    Some((digits, frac, exp))
}

fn parse_dec(t: &[u8], neg: bool) -> Option<Ld> {
    let (digits, frac, exp) = split_number(t, b'e', false)?;
    let digits: Vec<u8> = digits.into_iter().skip_while(|&c| c == b'0').collect();
    let mut d = Big::zero();
    for &c in &digits {
        d.mul_small(10, (c - b'0') as u32);
    }
    if d.is_zero() {
        return Some(Ld { neg, m: 0, e: 0 });
    }
    let e10 = exp - frac;
    let magnitude = digits.len() as i64 + e10; // value is in [10^(mag-1), 10^mag)
    if magnitude > 4940 {
        return Some(Ld {
            neg,
            m: 1 << 63,
            e: MAX_TOP + 1,
        });
    }
    if magnitude < -4960 {
        return Some(Ld {
            neg,
            m: 1 << 63,
            e: MIN_TOP - 100,
        });
    }
    if e10 >= 0 {
        d.mul_pow10(e10 as u64);
        return Some(round(&d, 0, false, neg));
    }
    let mut q = Big::from_u64(1);
    q.mul_pow10((-e10) as u64);
    // Scale so the quotient has 66..67 bits: enough for the 64 bits, a round bit and more.
    let k = 66 + q.bits() as i64 - d.bits() as i64;
    let (num, den) = if k >= 0 {
        (d.shl(k as u64), q)
    } else {
        (d, q.shl((-k) as u64))
    };
    let (quot, sticky) = Big::div_small_quotient(&num, &den, 68);
    Some(round(&quot, -k, sticky, neg))
}

fn parse_hex(t: &[u8], neg: bool) -> Option<Ld> {
    let (digits, frac, exp) = split_number(t, b'p', true)?;
    let mut d = Big::zero();
    for &c in &digits {
        d.mul_small(16, (c as char).to_digit(16)?);
    }
    Some(round(&d, exp - 4 * frac, false, neg))
}

/// Exact sum rounded to a long double; None when it overflows to infinity.
pub fn add(a: Ld, b: Ld) -> Option<Ld> {
    if b.m == 0 {
        return Some(if a.m == 0 {
            Ld {
                neg: a.neg && b.neg,
                ..a
            }
        } else {
            a
        });
    }
    if a.m == 0 {
        return Some(b);
    }
    let emin = a.e.min(b.e);
    let x = Big::from_u64(a.m).shl((a.e - emin) as u64);
    let y = Big::from_u64(b.m).shl((b.e - emin) as u64);
    let (sum, neg) = if a.neg == b.neg {
        (x.add(&y), a.neg)
    } else {
        match x.cmp(&y) {
            Ordering::Equal => {
                return Some(Ld {
                    neg: false,
                    m: 0,
                    e: 0,
                })
            }
            Ordering::Greater => (x.sub(&y), a.neg),
            Ordering::Less => (y.sub(&x), b.neg),
        }
    };
    let r = round(&sum, emin, false, neg);
    if r.m != 0 && top(&r) > MAX_TOP {
        return None;
    }
    Some(r)
}

impl Ld {
    /// A finite double as a long double (exact: every double is one).
    pub fn from_f64(x: f64) -> Ld {
        let bits = x.to_bits();
        let neg = bits >> 63 == 1;
        let exp = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1 << 52) - 1);
        let (m, e) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1 << 52), exp - 1075)
        };
        if m == 0 {
            return Ld { neg, m: 0, e: 0 };
        }
        let shift = m.leading_zeros() as i64;
        Ld {
            neg,
            m: m << shift,
            e: e - shift,
        }
    }
}

/// `%.17Lf` with trailing zeros (and a trailing '.') removed, "-0" printed as "0".
pub fn format_human(v: Ld) -> String {
    let mut n = Big::from_u64(v.m);
    n.mul_pow10(17);
    let scaled = if v.e >= 0 {
        n.shl(v.e as u64)
    } else {
        let s = (-v.e) as u64;
        let mut q = n.shr(s);
        let half = n.bit(s - 1);
        if half && (n.any_below(s - 1) || q.bit(0)) {
            q = q.add(&Big::from_u64(1));
        }
        q
    };
    let mut digits = scaled.to_decimal();
    if digits.len() < 18 {
        digits = format!("{}{digits}", "0".repeat(18 - digits.len()));
    }
    let (int, frac) = digits.split_at(digits.len() - 17);
    let frac = frac.trim_end_matches('0');
    let mut out = String::new();
    if v.neg {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if out == "-0" {
        out = "0".into();
    }
    out
}

#[derive(Debug, PartialEq)]
pub enum IncrError {
    NotFloat,
    NanOrInf,
}

/// INCRBYFLOAT / HINCRBYFLOAT: the new value's text, or which error Redis gives.
pub fn incr(current: &[u8], incr: &[u8]) -> Result<String, IncrError> {
    let a = parse(current).ok_or(IncrError::NotFloat)?;
    let b = parse(incr).ok_or(IncrError::NotFloat)?;
    match (a, b) {
        (Parsed::Finite(a), Parsed::Finite(b)) => {
            add(a, b).map(format_human).ok_or(IncrError::NanOrInf)
        }
        _ => Err(IncrError::NanOrInf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(a: &str, b: &str) -> String {
        incr(a.as_bytes(), b.as_bytes()).unwrap()
    }

    #[test]
    fn matches_redis() {
        assert_eq!(inc("0", "0.1"), "0.1");
        assert_eq!(inc("0.1", "0.2"), "0.3");
        assert_eq!(inc("3001", "1e-5"), "3001.00001000000000007");
        assert_eq!(inc("3.14159265358979323846", "0"), "3.14159265358979324");
        assert_eq!(inc("10.5", "-10.5"), "0");
        assert_eq!(inc("2", "0.333333333333333333"), "2.33333333333333333");
        assert_eq!(inc("-1.5", "1.5"), "0");
        assert_eq!(inc("5", "0x10"), "21");
        assert_eq!(incr(b"1", b"abc"), Err(IncrError::NotFloat));
        assert_eq!(incr(b"1", b"inf"), Err(IncrError::NanOrInf));
        assert_eq!(incr(b"1", b" 1"), Err(IncrError::NotFloat));
        assert_eq!(incr(b"1", b"1e"), Err(IncrError::NotFloat));
        assert_eq!(incr(b"1", b"nan"), Err(IncrError::NotFloat));
    }
}
