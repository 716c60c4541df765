//! Argument parsing shared by handlers, with Redis's exact error texts.

use bytes::Bytes;

use crate::protocol::numbers::parse_f64;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;

pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const OUT_OF_RANGE: &str = "ERR index out of range";

pub type R<T> = Result<T, Reply>;

pub fn syntax<T>() -> R<T> {
    Err(Reply::err(SYNTAX))
}

pub fn int(arg: &[u8]) -> R<i64> {
    parse_i64(arg).ok_or_else(|| Reply::err(NOT_INT))
}

/// An integer that must be >= 0 (COUNT and similar), with Redis's message for negatives.
pub fn positive(arg: &[u8]) -> R<i64> {
    let v = int(arg)?;
    if v < 0 {
        return Err(Reply::err("ERR value is out of range, must be positive"));
    }
    Ok(v)
}

pub fn float(arg: &[u8]) -> R<f64> {
    parse_f64(arg).ok_or_else(|| Reply::err(NOT_FLOAT))
}

pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

pub fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

/// `getTimeoutFromObjectOrReply` for blocking commands: seconds as a float, truncated to whole
/// milliseconds as Redis does (so 0.0001 means 0, which blocks forever); 0 blocks forever.
/// Like Redis's `(long long)` cast on x86-64, infinities and values beyond the i64 range
/// become i64::MIN, so they are reported as negative.
pub fn timeout_deadline(arg: &[u8], now: i64) -> R<Option<i64>> {
    let secs = parse_f64(arg)
        .filter(|v| !v.is_nan())
        .ok_or_else(|| Reply::err("ERR timeout is not a float or out of range"))?;
    let ms = secs * 1000.0;
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let ms = if (-TWO_63..TWO_63).contains(&ms) {
        ms as i64
    } else {
        i64::MIN
    };
    ms_deadline(ms, now)
}

/// The same for millisecond timeouts (XREAD BLOCK).
pub fn timeout_deadline_ms(arg: &[u8], now: i64) -> R<Option<i64>> {
    let ms = parse_i64(arg)
        .ok_or_else(|| Reply::err("ERR timeout is not an integer or out of range"))?;
    ms_deadline(ms, now)
}

fn ms_deadline(ms: i64, now: i64) -> R<Option<i64>> {
    if ms < 0 {
        return Err(Reply::err("ERR timeout is negative"));
    }
    if ms == 0 {
        return Ok(None);
    }
    if ms > i64::MAX - now {
        return Err(Reply::err("ERR timeout is out of range"));
    }
    Ok(Some(now + ms))
}

/// Redis's "wrong number of arguments" text for a command (its lowercase full name).
pub fn wrong_args(name: &str) -> Reply {
    Reply::err(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

pub fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub fn int_bytes(v: i64) -> Bytes {
    bytes(&v.to_string())
}

/// `parseScanCursorOrReply`: strtoul rules (a sign is accepted and a negative wraps, leading
/// spaces are not; the empty string is 0). Shared by SCAN, SSCAN, HSCAN and ZSCAN.
pub fn scan_cursor(arg: &[u8]) -> R<u64> {
    let bad = || Reply::err("ERR invalid cursor");
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul parses nothing: the cursor is 0 only if the whole text was empty.
        return if arg.is_empty() { Ok(0) } else { Err(bad()) };
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(bad());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as u64))
            .ok_or_else(bad)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// Redis's start/end normalisation for index ranges (LRANGE, LTRIM, ZRANGE by rank): negative
/// indexes count from the end; None when the range is empty, else inclusive in-range indexes.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}
