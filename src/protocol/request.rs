//! Request parsing: RESP multibulk and inline commands, as `networking.c` reads them.
//!
//! This is written by hand rather than with `redis-protocol`'s decoder because a server must
//! reproduce Redis's own behaviour at the edges: inline commands with `sdssplitargs` quoting,
//! the exact `Protocol error: ...` texts, and the bulk and multibulk limits. The decoder in
//! `redis-protocol` is used by the tests to check the replies this server encodes.

use bytes::{Buf, Bytes, BytesMut};

/// Longest inline request, or multibulk/bulk header line, Redis accepts (`PROTO_INLINE_MAX_SIZE`).
const INLINE_MAX: usize = 64 * 1024;
/// Above this many arguments a bulk is read into its own buffer in Redis; here it only bounds
/// the preallocation so a huge `*N` header cannot make us reserve memory up front.
const PREALLOC_MAX: usize = 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bulk_len: i64,
    pub max_multibulk_len: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as i64,
        }
    }
}

/// A parse that made no progress because the buffer ends mid-command.
#[derive(Debug, PartialEq)]
pub enum Parse {
    /// A complete command (possibly empty, which callers skip).
    Command(Vec<Bytes>),
    /// More bytes are needed.
    Incomplete,
    /// A protocol error: the text after `ERR `; the connection must be closed.
    Error(String),
}

/// State kept between reads for a multibulk command that has not fully arrived, so a large
/// bulk is not re-scanned from the start on every read.
#[derive(Default, Debug)]
pub struct Parser {
    pending: Option<Multibulk>,
    pub authenticated: bool,
}

#[derive(Debug)]
struct Multibulk {
    remaining: usize,
    args: Vec<Bytes>,
    bulk_len: Option<usize>,
}

impl Parser {
    pub fn new(authenticated: bool) -> Self {
        Parser {
            pending: None,
            authenticated,
        }
    }

    /// Parses one command from the front of `buf`, consuming its bytes.
    pub fn parse(&mut self, buf: &mut BytesMut, limits: &Limits) -> Parse {
        if self.pending.is_none() {
            if buf.is_empty() {
                return Parse::Incomplete;
            }
            if buf[0] != b'*' {
                return parse_inline(buf);
            }
            match self.start_multibulk(buf, limits) {
                Ok(Some(n)) if n <= 0 => return Parse::Command(Vec::new()),
                Ok(Some(n)) => {
                    let n = n as usize;
                    self.pending = Some(Multibulk {
                        remaining: n,
                        args: Vec::with_capacity(n.min(PREALLOC_MAX)),
                        bulk_len: None,
                    });
                }
                Ok(None) => return Parse::Incomplete,
                Err(e) => return Parse::Error(e),
            }
        }
        self.continue_multibulk(buf, limits)
    }

    fn start_multibulk(&self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<i64>, String> {
        let Some(nl) = find_crlf(buf) else {
            if buf.len() > INLINE_MAX {
                return Err("Protocol error: too big mbulk count string".into());
            }
            return Ok(None);
        };
        let n = parse_i64(&buf[1..nl]);
        match n {
            Some(n) if n <= limits.max_multibulk_len => {
                if n > 10 && !self.authenticated {
                    return Err("Protocol error: unauthenticated multibulk length".into());
                }
                buf.advance(nl + 2);
                Ok(Some(n))
            }
            _ => Err("Protocol error: invalid multibulk length".into()),
        }
    }

    fn continue_multibulk(&mut self, buf: &mut BytesMut, limits: &Limits) -> Parse {
        let mb = self.pending.as_mut().expect("pending multibulk");
        while mb.remaining > 0 {
            let len = match mb.bulk_len {
                Some(len) => len,
                None => {
                    let Some(nl) = find_crlf(buf) else {
                        if buf.len() > INLINE_MAX {
                            return Parse::Error(
                                "Protocol error: too big bulk count string".into(),
                            );
                        }
                        return Parse::Incomplete;
                    };
                    if buf[0] != b'$' {
                        let got = buf[0] as char;
                        return Parse::Error(format!("Protocol error: expected '$', got '{got}'"));
                    }
                    match parse_i64(&buf[1..nl]) {
                        Some(l) if l >= 0 && l <= limits.max_bulk_len => {
                            if l > 16384 && !self.authenticated {
                                return Parse::Error(
                                    "Protocol error: unauthenticated bulk length".into(),
                                );
                            }
                            buf.advance(nl + 2);
                            mb.bulk_len = Some(l as usize);
                            l as usize
                        }
                        _ => return Parse::Error("Protocol error: invalid bulk length".into()),
                    }
                }
            };
            if buf.len() < len + 2 {
                // Reserve room for the whole bulk once, so a big value is not copied repeatedly.
                buf.reserve(len + 2 - buf.len());
                return Parse::Incomplete;
            }
            // Like Redis, the two bytes after the payload are skipped without being checked.
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            mb.args.push(arg);
            mb.bulk_len = None;
            mb.remaining -= 1;
        }
        let mb = self.pending.take().expect("pending multibulk");
        Parse::Command(mb.args)
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    let cr = memchr(b'\r', buf)?;
    if cr + 1 < buf.len() {
        Some(cr)
    } else {
        None
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// `string2ll`: an optional '-', digits, no leading zeros, no '+', fits in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

fn parse_inline(buf: &mut BytesMut) -> Parse {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX {
            return Parse::Error("Protocol error: too big inline request".into());
        }
        return Parse::Incomplete;
    };
    let line = buf.split_to(nl + 1);
    let mut end = nl;
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    match split_args(&line[..end]) {
        Some(args) => Parse::Command(args.into_iter().map(Bytes::from).collect()),
        None => Parse::Error("Protocol error: unbalanced quotes in request".into()),
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `sdssplitargs`: whitespace-separated words with "double" (C escapes) and 'single' quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            let c = line.get(i).copied();
            if in_dq {
                match c {
                    None => return None,
                    Some(b'\\')
                        if i + 3 < line.len()
                            && line[i + 1] == b'x'
                            && hex_val(line[i + 2]).is_some()
                            && hex_val(line[i + 3]).is_some() =>
                    {
                        cur.push(hex_val(line[i + 2])? * 16 + hex_val(line[i + 3])?);
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < line.len() => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if i + 1 < line.len() && !is_space(line[i + 1]) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => cur.push(c),
                }
            } else if in_sq {
                match c {
                    None => return None,
                    Some(b'\\') if i + 1 < line.len() && line[i + 1] == b'\'' => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if i + 1 < line.len() && !is_space(line[i + 1]) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => cur.push(c),
                }
            } else {
                match c {
                    None => break,
                    Some(c) if is_space(c) => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(c) => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<Parse> {
        let mut buf = BytesMut::from(input);
        let mut p = Parser::new(true);
        let mut out = Vec::new();
        loop {
            let r = p.parse(&mut buf, &Limits::default());
            let stop = !matches!(r, Parse::Command(_));
            out.push(r);
            if stop {
                return out;
            }
        }
    }

    fn cmd(args: &[&str]) -> Parse {
        Parse::Command(
            args.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn multibulk_and_inline() {
        let r = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\n*1\r\n$4\r\nPI");
        assert_eq!(
            r,
            vec![
                cmd(&["GET", "k"]),
                cmd(&["PING"]),
                cmd(&["set", "a", "b c"]),
                Parse::Incomplete
            ]
        );
    }

    #[test]
    fn protocol_errors() {
        assert_eq!(
            parse_all(b"*1\r\n+x\r\n").pop().unwrap(),
            Parse::Error("Protocol error: expected '$', got '+'".into())
        );
        assert_eq!(
            parse_all(b"*x\r\n").pop().unwrap(),
            Parse::Error("Protocol error: invalid multibulk length".into())
        );
        assert_eq!(
            parse_all(b"*1\r\n$-2\r\n").pop().unwrap(),
            Parse::Error("Protocol error: invalid bulk length".into())
        );
        assert_eq!(
            parse_all(b"set \"a\n").pop().unwrap(),
            Parse::Error("Protocol error: unbalanced quotes in request".into())
        );
    }

    #[test]
    fn split_args_escapes() {
        assert_eq!(
            split_args(b"a \"\\x41\\n\" 'it\\'s'").unwrap(),
            vec![b"a".to_vec(), b"A\n".to_vec(), b"it's".to_vec()]
        );
        assert!(split_args(b"\"a\"b").is_none());
    }
}
