//! The reply type every command returns, and its RESP2 / RESP3 encodings.
//!
//! Commands build RESP3-shaped replies (maps, sets, doubles, booleans); `encode` downgrades them
//! to their RESP2 shapes exactly as Redis's `addReply*` functions do for a RESP2 client.

use bytes::{BufMut, Bytes, BytesMut};

use super::numbers::fmt_double;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+text`
    Status(String),
    /// `-text`: the full text including its code, e.g. `ERR syntax error`.
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// Null bulk: RESP2 `$-1`, RESP3 `_`.
    Nil,
    /// Null array: RESP2 `*-1`, RESP3 `_`.
    NilArray,
    Array(Vec<Reply>),
    /// RESP3 map; RESP2 flat array of key, value, ...
    Map(Vec<(Reply, Reply)>),
    /// RESP3 set; RESP2 array.
    Set(Vec<Reply>),
    /// RESP3 double; RESP2 bulk string in `%.17g`.
    Double(f64),
    /// A double as `addReplyHumanLongDouble` sends it (GEOPOS coordinates): `%.17Lf` with
    /// trailing zeros removed, a RESP3 double or a RESP2 bulk string.
    HumanDouble(f64),
    /// RESP3 boolean; RESP2 integer 1 / 0.
    Bool(bool),
    /// RESP3 verbatim string (`txt`); RESP2 bulk.
    Verbatim(Bytes),
    /// RESP3 push; RESP2 array.
    Push(Vec<Reply>),
    /// Pre-encoded bytes, identical in both protocols.
    Raw(Bytes),
    /// Nothing is sent (CLIENT REPLY OFF, subscription confirmations sent separately).
    None,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status("OK".into())
    }
    pub fn status(s: &str) -> Reply {
        Reply::Status(s.into())
    }
    pub fn err(s: impl Into<String>) -> Reply {
        Reply::Error(s.into())
    }
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }
    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
    pub fn bulk_opt(b: Option<Bytes>) -> Reply {
        b.map(Reply::Bulk).unwrap_or(Reply::Nil)
    }
    pub fn bulks<I: IntoIterator<Item = Bytes>>(items: I) -> Reply {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    pub fn encode(&self, out: &mut BytesMut, resp3: bool) {
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => {
                // Like addReplyErrorLength: newlines would break the protocol, so they become spaces.
                let clean: Vec<u8> = s
                    .bytes()
                    .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c })
                    .collect();
                line(out, b'-', &clean)
            }
            Reply::Int(i) => int_line(out, b':', *i),
            Reply::Bulk(b) => bulk(out, b),
            Reply::Nil => out.put_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
            Reply::NilArray => out.put_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
            Reply::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                items.iter().for_each(|r| r.encode(out, resp3));
            }
            Reply::Set(items) => {
                int_line(out, if resp3 { b'~' } else { b'*' }, items.len() as i64);
                items.iter().for_each(|r| r.encode(out, resp3));
            }
            Reply::Push(items) => {
                int_line(out, if resp3 { b'>' } else { b'*' }, items.len() as i64);
                items.iter().for_each(|r| r.encode(out, resp3));
            }
            Reply::Map(pairs) => {
                if resp3 {
                    int_line(out, b'%', pairs.len() as i64);
                } else {
                    int_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
            Reply::Double(d) => {
                let text = fmt_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::HumanDouble(d) => {
                let text = human_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Bool(b) => {
                if resp3 {
                    out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" });
                }
            }
            Reply::Verbatim(b) => {
                if resp3 {
                    int_line(out, b'=', b.len() as i64 + 4);
                    out.put_slice(b"txt:");
                    out.put_slice(b);
                    out.put_slice(b"\r\n");
                } else {
                    bulk(out, b);
                }
            }
            Reply::Raw(b) => out.put_slice(b),
            Reply::None => {}
        }
    }
}

/// `ld2string(.., LD_STR_HUMAN)` of a double.
pub fn human_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    super::ldouble::format_human(super::ldouble::Ld::from_f64(d))
}

fn line(out: &mut BytesMut, sigil: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(sigil);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, sigil: u8, n: i64) {
    let mut buf = itoa_buf(n);
    line(out, sigil, buf.as_bytes_mut());
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    int_line(out, b'$', data.len() as i64);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

struct ItoaBuf {
    buf: [u8; 24],
    start: usize,
}

impl ItoaBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(n: i64) -> ItoaBuf {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    ItoaBuf { buf, start: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, resp3: bool) -> String {
        let mut b = BytesMut::new();
        r.encode(&mut b, resp3);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn shapes() {
        let m = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Double(1.5))]);
        assert_eq!(enc(&m, false), "*2\r\n$1\r\na\r\n$3\r\n1.5\r\n");
        assert_eq!(enc(&m, true), "%1\r\n$1\r\na\r\n,1.5\r\n");
        assert_eq!(
            enc(&Reply::Int(i64::MIN), false),
            ":-9223372036854775808\r\n"
        );
        assert_eq!(enc(&Reply::NilArray, false), "*-1\r\n");
        assert_eq!(enc(&Reply::err("ERR a\r\nb"), false), "-ERR a  b\r\n");
    }

    /// Every encoding must be valid RESP as an independent decoder (redis-protocol) reads it.
    #[test]
    fn decodes_with_redis_protocol() {
        let r = Reply::Array(vec![
            Reply::Map(vec![(
                Reply::bulk_str("k"),
                Reply::Set(vec![Reply::Int(1)]),
            )]),
            Reply::Double(f64::INFINITY),
            Reply::Bool(true),
            Reply::Verbatim(Bytes::from_static(b"hi")),
            Reply::Nil,
            Reply::Push(vec![Reply::status("x")]),
        ]);
        let mut b = BytesMut::new();
        r.encode(&mut b, true);
        let (_, used) = redis_protocol::resp3::decode::complete::decode(&b)
            .unwrap()
            .unwrap();
        assert_eq!(used, b.len());
        let mut b2 = BytesMut::new();
        r.encode(&mut b2, false);
        let (_, used2) = redis_protocol::resp2::decode::decode(&b2).unwrap().unwrap();
        assert_eq!(used2, b2.len());
    }
}
