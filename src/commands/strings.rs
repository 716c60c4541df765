//! String commands: GET, SET and its variants, MGET/MSET, counters, ranges, LCS.
//! Bit commands (SETBIT, BITCOUNT, BITFIELD, ...) live in `bits.rs`.

use bytes::Bytes;

use super::args::{int, is, syntax, NOT_FLOAT, NOT_INT, R};
use super::{Command, Ctx, Flags as F};
use crate::db::{Value, WRONGTYPE};
use crate::protocol::ldouble::{self, IncrError};
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;

const W: u32 = F::WRITE;
const WD: u32 = F::WRITE | F::DENYOOM;
const WDF: u32 = F::WRITE | F::DENYOOM | F::FAST;
const RF: u32 = F::READONLY | F::FAST;

pub const COMMANDS: &[Command] = &[
    Command::new("get", 2, RF, get)
        .keys(1, 1, 1)
        .doc("string", "Get the value of a key", "key"),
    Command::new("set", -3, WD, set).keys(1, 1, 1).doc(
        "string",
        "Set the string value of a key",
        "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]",
    ),
    Command::new("setnx", 3, WDF, setnx).keys(1, 1, 1).doc(
        "string",
        "Set the value of a key, only if the key does not exist",
        "key value",
    ),
    Command::new("setex", 4, WD, setex).keys(1, 1, 1).doc(
        "string",
        "Set the value and expiration of a key",
        "key seconds value",
    ),
    Command::new("psetex", 4, WD, setex).keys(1, 1, 1).doc(
        "string",
        "Set the value and expiration in milliseconds of a key",
        "key milliseconds value",
    ),
    Command::new("getset", 3, WDF, getset).keys(1, 1, 1).doc(
        "string",
        "Set the string value of a key and return its old value",
        "key value",
    ),
    Command::new("getdel", 2, W | F::FAST, getdel).keys(1, 1, 1).doc(
        "string",
        "Get the value of a key and delete the key",
        "key",
    ),
    Command::new("getex", -2, W | F::FAST, getex).keys(1, 1, 1).doc(
        "string",
        "Get the value of a key and optionally set its expiration",
        "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]",
    ),
    Command::new("mget", -2, RF, mget).keys(1, -1, 1).doc(
        "string",
        "Get the values of all the given keys",
        "key [key ...]",
    ),
    Command::new("mset", -3, WD, mset).keys(1, -1, 2).doc(
        "string",
        "Set multiple keys to multiple values",
        "key value [key value ...]",
    ),
    Command::new("msetnx", -3, WD, msetnx).keys(1, -1, 2).doc(
        "string",
        "Set multiple keys to multiple values, only if none of the keys exist",
        "key value [key value ...]",
    ),
    Command::new("incr", 2, WDF, incr).keys(1, 1, 1).doc(
        "string",
        "Increment the integer value of a key by one",
        "key",
    ),
    Command::new("decr", 2, WDF, decr).keys(1, 1, 1).doc(
        "string",
        "Decrement the integer value of a key by one",
        "key",
    ),
    Command::new("incrby", 3, WDF, incrby).keys(1, 1, 1).doc(
        "string",
        "Increment the integer value of a key by the given amount",
        "key increment",
    ),
    Command::new("decrby", 3, WDF, decrby).keys(1, 1, 1).doc(
        "string",
        "Decrement the integer value of a key by the given number",
        "key decrement",
    ),
    Command::new("incrbyfloat", 3, WDF, incrbyfloat)
        .keys(1, 1, 1)
        .doc(
            "string",
            "Increment the float value of a key by the given amount",
            "key increment",
        ),
    Command::new("append", 3, WDF, append).keys(1, 1, 1).doc(
        "string",
        "Append a value to a key",
        "key value",
    ),
    Command::new("strlen", 2, RF, strlen).keys(1, 1, 1).doc(
        "string",
        "Get the length of the value stored in a key",
        "key",
    ),
    Command::new("getrange", 4, F::READONLY, getrange)
        .keys(1, 1, 1)
        .doc(
            "string",
            "Get a substring of the string stored at a key",
            "key start end",
        ),
    Command::new("substr", 4, F::READONLY, getrange).keys(1, 1, 1).doc(
        "string",
        "Get a substring of the string stored at a key",
        "key start end",
    ),
    Command::new("setrange", 4, WD, setrange).keys(1, 1, 1).doc(
        "string",
        "Overwrite part of a string at key starting at the specified offset",
        "key offset value",
    ),
    Command::new("lcs", -3, F::READONLY, lcs).keys(1, 2, 1).doc(
        "string",
        "Find longest common substring",
        "key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]",
    ),
];

pub const MAX_SIZE_ERR: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// The string at `key` (None if missing), or WRONGTYPE.
pub fn read_str(ctx: &mut Ctx, key: &[u8]) -> R<Option<Bytes>> {
    Ok(ctx.db().get_str(key)?.cloned())
}

/// `checkStringLength`: would a string of `len` bytes exceed proto-max-bulk-len?
pub fn check_len(ctx: &Ctx, len: u64) -> R<()> {
    let max = ctx.w.config.get_i64("proto-max-bulk-len").max(0) as u64;
    if len > max {
        return Err(Reply::err(MAX_SIZE_ERR));
    }
    Ok(())
}

fn invalid_expire(name: &str) -> Reply {
    Reply::err(format!("ERR invalid expire time in '{name}' command"))
}

/// `getExpireMillisecondsOrReply`: an EX/PX/EXAT/PXAT argument as an absolute unix ms time.
fn expire_at(arg: &[u8], secs: bool, relative: bool, now: i64, name: &str) -> R<i64> {
    let v = int(arg)?;
    if v <= 0 || (secs && v > i64::MAX / 1000) {
        return Err(invalid_expire(name));
    }
    let mut ms = if secs { v * 1000 } else { v };
    if relative {
        if ms > i64::MAX - now {
            return Err(invalid_expire(name));
        }
        ms += now;
    }
    Ok(ms)
}

#[derive(Default)]
struct SetOpts {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// (argument, in seconds, relative)
    expire: Option<(Bytes, bool, bool)>,
}

/// `parseExtendedStringArgumentsOrReply` for SET (`set_cmd`) or GETEX.
fn parse_set_opts(argv: &[Bytes], start: usize, set_cmd: bool) -> R<SetOpts> {
    let mut o = SetOpts::default();
    let mut kind = "";
    let mut j = start;
    while j < argv.len() {
        let a = &argv[j];
        let has_next = j + 1 < argv.len();
        let expire_ok = |k: &str, o: &SetOpts, kind: &str| {
            !o.keepttl && !o.persist && (kind.is_empty() || kind == k) && has_next
        };
        if set_cmd && is(a, "nx") && !o.xx {
            o.nx = true;
        } else if set_cmd && is(a, "xx") && !o.nx {
            o.xx = true;
        } else if set_cmd && is(a, "get") {
            o.get = true;
        } else if set_cmd && is(a, "keepttl") && !o.persist && kind.is_empty() {
            o.keepttl = true;
        } else if !set_cmd && is(a, "persist") && kind.is_empty() && !o.keepttl {
            o.persist = true;
        } else if let Some((k, secs, rel)) = [
            ("ex", true, true),
            ("px", false, true),
            ("exat", true, false),
            ("pxat", false, false),
        ]
        .into_iter()
        .find(|(k, ..)| is(a, k))
        {
            if !expire_ok(k, &o, kind) {
                return syntax();
            }
            kind = k;
            o.expire = Some((argv[j + 1].clone(), secs, rel));
            j += 1;
        } else {
            return syntax();
        }
        j += 1;
    }
    Ok(o)
}

fn get(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    match read_str(ctx, &argv[1]) {
        Ok(v) => Reply::bulk_opt(v),
        Err(e) => e,
    }
}

fn set(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    set_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn set_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let o = parse_set_opts(argv, 3, true)?;
    let now = ctx.now;
    let when = match &o.expire {
        Some((arg, secs, rel)) => Some(expire_at(arg, *secs, *rel, now, "set")?),
        None => None,
    };
    let key = &argv[1];
    let old = if o.get { read_str(ctx, key)? } else { None };
    let found = ctx.db().exists(key);
    if (o.nx && found) || (o.xx && !found) {
        return Ok(if o.get {
            Reply::bulk_opt(old)
        } else {
            Reply::Nil
        });
    }
    let value = Value::Str(argv[2].clone());
    if o.keepttl {
        ctx.db().set_keep_ttl(key.clone(), value);
    } else {
        ctx.db().set(key.clone(), value);
    }
    if let Some(t) = when {
        ctx.db().set_expire(key, Some(t));
    }
    ctx.modified(key);
    Ok(if o.get {
        Reply::bulk_opt(old)
    } else {
        Reply::ok()
    })
}

fn setnx(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if ctx.db().exists(&argv[1]) {
        return Reply::Int(0);
    }
    ctx.db().set(argv[1].clone(), Value::Str(argv[2].clone()));
    ctx.modified(&argv[1]);
    Reply::Int(1)
}

/// SETEX and PSETEX.
fn setex(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let name = if is(&argv[0], "setex") {
        "setex"
    } else {
        "psetex"
    };
    let when = match expire_at(&argv[2], name == "setex", true, ctx.now, name) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let key = &argv[1];
    ctx.db().set(key.clone(), Value::Str(argv[3].clone()));
    ctx.db().set_expire(key, Some(when));
    ctx.modified(key);
    Reply::ok()
}

fn getset(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let old = match read_str(ctx, &argv[1]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    ctx.db().set(argv[1].clone(), Value::Str(argv[2].clone()));
    ctx.modified(&argv[1]);
    Reply::bulk_opt(old)
}

fn getdel(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    match read_str(ctx, &argv[1]) {
        Err(e) => e,
        Ok(None) => Reply::Nil,
        Ok(Some(v)) => {
            ctx.db().remove(&argv[1]);
            ctx.modified(&argv[1]);
            Reply::Bulk(v)
        }
    }
}

fn getex(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    getex_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn getex_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let o = parse_set_opts(argv, 2, false)?;
    let key = &argv[1];
    let Some(v) = read_str(ctx, key)? else {
        return Ok(Reply::Nil);
    };
    let now = ctx.now;
    if let Some((arg, secs, rel)) = &o.expire {
        let when = expire_at(arg, *secs, *rel, now, "getex")?;
        if when <= now {
            ctx.db().remove(key);
        } else {
            ctx.db().set_expire(key, Some(when));
        }
        ctx.modified(key);
    } else if o.persist && ctx.db().entry(key).is_some_and(|e| e.expire_at.is_some()) {
        ctx.db().set_expire(key, None);
        ctx.modified(key);
    }
    Ok(Reply::Bulk(v))
}

fn mget(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let db = ctx.db();
    Reply::Array(
        argv[1..]
            .iter()
            .map(|k| match db.get(k) {
                Some(Value::Str(s)) => Reply::Bulk(s.clone()),
                _ => Reply::Nil,
            })
            .collect(),
    )
}

fn mset(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len().is_multiple_of(2) {
        return super::args::wrong_args("mset");
    }
    for kv in argv[1..].chunks(2) {
        ctx.db().set(kv[0].clone(), Value::Str(kv[1].clone()));
        ctx.modified(&kv[0]);
    }
    Reply::ok()
}

fn msetnx(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len().is_multiple_of(2) {
        return super::args::wrong_args("msetnx");
    }
    if argv[1..].iter().step_by(2).any(|k| ctx.db().exists(k)) {
        return Reply::Int(0);
    }
    for kv in argv[1..].chunks(2) {
        ctx.db().set(kv[0].clone(), Value::Str(kv[1].clone()));
        ctx.modified(&kv[0]);
    }
    Reply::Int(1)
}

/// Stores a new string value keeping the key's TTL (in-place updates: INCR, APPEND, ...).
pub fn store_keep_ttl(ctx: &mut Ctx, key: &Bytes, v: Bytes) {
    ctx.db().set_keep_ttl(key.clone(), Value::Str(v));
    ctx.modified(key);
}

fn incr_by(ctx: &mut Ctx, key: &Bytes, by: i64) -> Reply {
    let cur = match read_str(ctx, key) {
        Err(e) => return e,
        Ok(None) => 0,
        Ok(Some(s)) => match parse_i64(&s) {
            Some(v) => v,
            None => return Reply::err(NOT_INT),
        },
    };
    let Some(n) = cur.checked_add(by) else {
        return Reply::err("ERR increment or decrement would overflow");
    };
    store_keep_ttl(ctx, key, Bytes::from(n.to_string()));
    Reply::Int(n)
}

fn incr(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    incr_by(ctx, &argv[1], 1)
}

fn decr(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    incr_by(ctx, &argv[1], -1)
}

fn incrby(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    match int(&argv[2]) {
        Ok(by) => incr_by(ctx, &argv[1], by),
        Err(e) => e,
    }
}

fn decrby(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    match int(&argv[2]) {
        Ok(i64::MIN) => Reply::err("ERR decrement would overflow"),
        Ok(by) => incr_by(ctx, &argv[1], -by),
        Err(e) => e,
    }
}

fn incrbyfloat(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let key = &argv[1];
    let cur = match read_str(ctx, key) {
        Err(e) => return e,
        Ok(v) => v.unwrap_or_else(|| Bytes::from_static(b"0")),
    };
    let text = match ldouble::incr(&cur, &argv[2]) {
        Ok(t) => t,
        Err(IncrError::NotFloat) => return Reply::err(NOT_FLOAT),
        Err(IncrError::NanOrInf) => {
            return Reply::err("ERR increment would produce NaN or Infinity")
        }
    };
    let v = Bytes::from(text);
    store_keep_ttl(ctx, key, v.clone());
    Reply::Bulk(v)
}

fn append(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    append_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn append_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let key = &argv[1];
    let Some(old_len) = ctx.db().get_str(key)?.map(|s| s.len()) else {
        ctx.db().set(key.clone(), Value::Str(argv[2].clone()));
        ctx.modified(key);
        return Ok(Reply::Int(argv[2].len() as i64));
    };
    check_len(ctx, (old_len + argv[2].len()) as u64)?;
    let n = with_grown(ctx, key, 0, |v| {
        v.extend_from_slice(&argv[2]);
        v.len()
    })?;
    ctx.modified(key);
    Ok(Reply::Int(n as i64))
}

fn strlen(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    match read_str(ctx, &argv[1]) {
        Err(e) => e,
        Ok(v) => Reply::Int(v.map_or(0, |s| s.len() as i64)),
    }
}

/// Redis's start/end normalisation for GETRANGE (and BITCOUNT): None for an empty range.
pub fn clamp_range(mut start: i64, mut end: i64, len: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

fn getrange(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let (start, end) = match (int(&argv[2]), int(&argv[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let s = match read_str(ctx, &argv[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::bulk(Bytes::new()),
        Ok(Some(s)) => s,
    };
    match clamp_range(start, end, s.len() as i64) {
        None => Reply::bulk(Bytes::new()),
        Some((a, b)) => Reply::Bulk(s.slice(a..=b)),
    }
}

fn setrange(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    setrange_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn setrange_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let offset = int(&argv[2])?;
    if offset < 0 {
        return Err(Reply::err("ERR offset is out of range"));
    }
    let (key, value) = (&argv[1], &argv[3]);
    let old_len = ctx.db().get_str(key)?.map(|s| s.len());
    if value.is_empty() {
        return Ok(Reply::Int(old_len.unwrap_or(0) as i64));
    }
    check_len(ctx, offset as u64 + value.len() as u64)?;
    let off = offset as usize;
    let n = with_grown(ctx, key, off + value.len(), |v| {
        v[off..off + value.len()].copy_from_slice(value);
        v.len()
    })?;
    ctx.modified(key);
    Ok(Reply::Int(n as i64))
}

fn lcs(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    lcs_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn lcs_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let mut strs = Vec::new();
    for k in &argv[1..3] {
        strs.push(match ctx.db().get(k) {
            None => Bytes::new(),
            Some(Value::Str(s)) => s.clone(),
            Some(_) => {
                return Err(Reply::err(
                    "ERR The specified keys must contain string values",
                ))
            }
        });
    }
    let (mut getlen, mut getidx, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    let mut j = 3;
    while j < argv.len() {
        let a = &argv[j];
        if is(a, "idx") {
            getidx = true;
        } else if is(a, "len") {
            getlen = true;
        } else if is(a, "withmatchlen") {
            withmatchlen = true;
        } else if is(a, "minmatchlen") && j + 1 < argv.len() {
            minmatchlen = int(&argv[j + 1])?.max(0);
            j += 1;
        } else {
            return syntax();
        }
        j += 1;
    }
    if getidx && getlen {
        return Err(Reply::err(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let (a, b) = (&strs[0][..], &strs[1][..]);
    let (alen, blen) = (a.len(), b.len());
    let w = blen + 1;
    let mut t = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let total = t[alen * w + blen] as usize;
    if getlen {
        return Ok(Reply::Int(total as i64));
    }
    let mut result = vec![0u8; total];
    let mut matches = Vec::new();
    let mut idx = total;
    let (mut i, mut j) = (alen, blen);
    let (mut as_, mut ae, mut bs, mut be) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if as_ == alen {
                as_ = i - 1;
                ae = i - 1;
                bs = j - 1;
                be = j - 1;
            } else if as_ == i && bs == j {
                as_ -= 1;
                bs -= 1;
            } else {
                emit = true;
            }
            if as_ == 0 || bs == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if as_ != alen {
                emit = true;
            }
        }
        if emit {
            let len = (ae - as_ + 1) as i64;
            if getidx && (minmatchlen == 0 || len >= minmatchlen) {
                let mut m = vec![
                    Reply::Array(vec![Reply::Int(as_ as i64), Reply::Int(ae as i64)]),
                    Reply::Array(vec![Reply::Int(bs as i64), Reply::Int(be as i64)]),
                ];
                if withmatchlen {
                    m.push(Reply::Int(len));
                }
                matches.push(Reply::Array(m));
            }
            as_ = alen;
        }
    }
    if getidx {
        return Ok(Reply::Map(vec![
            (Reply::bulk_str("matches"), Reply::Array(matches)),
            (Reply::bulk_str("len"), Reply::Int(total as i64)),
        ]));
    }
    Ok(Reply::Bulk(Bytes::from(result)))
}

/// Runs `f` on the string at `key` grown with zeros to at least `min_len` bytes, creating it if
/// missing; the TTL is kept. Zero-copy when the value is not shared.
pub fn with_grown<T>(
    ctx: &mut Ctx,
    key: &Bytes,
    min_len: usize,
    f: impl FnOnce(&mut Vec<u8>) -> T,
) -> R<T> {
    let db = ctx.db();
    let cur = match db.get_str_mut(key)? {
        Some(b) => b,
        None => {
            db.set(key.clone(), Value::Str(Bytes::new()));
            db.get_str_mut(key)?.expect("just set")
        }
    };
    let mut v = Vec::from(std::mem::take(cur));
    if v.len() < min_len {
        v.resize(min_len, 0);
    }
    let out = f(&mut v);
    *cur = Bytes::from(v);
    Ok(out)
}

/// WRONGTYPE as a reply, for callers outside the typed accessors.
pub fn wrongtype() -> Reply {
    Reply::err(WRONGTYPE)
}
