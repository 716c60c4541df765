//! Hash commands: HSET, HGET, HGETALL, HINCRBY, HSCAN, HRANDFIELD, ...
//!
//! Hashes are insertion-ordered maps; while small (as Redis's listpack, <= 512 entries) fields
//! are removed with `shift_remove` so the order HGETALL prints stays Redis's.

use bytes::Bytes;
use rand::seq::index::sample;
use rand::Rng;

use super::args::{self, int, is, syntax, wrong_args, R};
use super::{Command, Ctx, Flags as F};
use crate::db::glob::glob_match;
use crate::db::scan::page_dict;
use crate::db::Value;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;

use crate::db::Hash;

const W: u32 = F::WRITE | F::DENYOOM | F::FAST;
const RF: u32 = F::READONLY | F::FAST;

pub const COMMANDS: &[Command] = &[
    Command::new("hset", -4, W, hset).keys(1, 1, 1).doc(
        "hash",
        "Set the string value of a hash field",
        "key field value [field value ...]",
    ),
    Command::new("hsetnx", 4, W, hsetnx).keys(1, 1, 1).doc(
        "hash",
        "Set the value of a hash field, only if the field does not exist",
        "key field value",
    ),
    Command::new("hmset", -4, W, hmset).keys(1, 1, 1).doc(
        "hash",
        "Set multiple hash fields to multiple values",
        "key field value [field value ...]",
    ),
    Command::new("hget", 3, RF, hget).keys(1, 1, 1).doc(
        "hash",
        "Get the value of a hash field",
        "key field",
    ),
    Command::new("hmget", -3, RF, hmget).keys(1, 1, 1).doc(
        "hash",
        "Get the values of all the given hash fields",
        "key field [field ...]",
    ),
    Command::new("hgetall", 2, F::READONLY, hgetall)
        .keys(1, 1, 1)
        .doc("hash", "Get all the fields and values in a hash", "key"),
    Command::new("hdel", -3, F::WRITE | F::FAST, hdel)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "Delete one or more hash fields",
            "key field [field ...]",
        ),
    Command::new("hexists", 3, RF, hexists).keys(1, 1, 1).doc(
        "hash",
        "Determine if a hash field exists",
        "key field",
    ),
    Command::new("hlen", 2, RF, hlen).keys(1, 1, 1).doc(
        "hash",
        "Get the number of fields in a hash",
        "key",
    ),
    Command::new("hkeys", 2, F::READONLY, hkeys)
        .keys(1, 1, 1)
        .doc("hash", "Get all the fields in a hash", "key"),
    Command::new("hvals", 2, F::READONLY, hvals)
        .keys(1, 1, 1)
        .doc("hash", "Get all the values in a hash", "key"),
    Command::new("hincrby", 4, W, hincrby).keys(1, 1, 1).doc(
        "hash",
        "Increment the integer value of a hash field by the given number",
        "key field increment",
    ),
    Command::new("hincrbyfloat", 4, W, hincrbyfloat)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "Increment the float value of a hash field by the given amount",
            "key field increment",
        ),
    Command::new("hstrlen", 3, RF, hstrlen).keys(1, 1, 1).doc(
        "hash",
        "Get the length of the value of a hash field",
        "key field",
    ),
    Command::new("hscan", -3, F::READONLY, hscan)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "Incrementally iterate hash fields and associated values",
            "key cursor [MATCH pattern] [COUNT count]",
        ),
    Command::new("hrandfield", -2, F::READONLY, hrandfield)
        .keys(1, 1, 1)
        .doc(
            "hash",
            "Get one or multiple random fields from a hash",
            "key [count [WITHVALUES]]",
        ),
];

fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> R<Option<&'a Hash>> {
    ctx.db().get_hash(key)
}

/// The hash at `key`, created empty if missing; WRONGTYPE for another type.
fn write<'a>(ctx: &'a mut Ctx, key: &Bytes) -> R<&'a mut Hash> {
    ctx.db().get_hash_mut(key)?;
    match ctx
        .db()
        .get_or_insert_with(key, || Value::Hash(Box::new(Hash::new())))
    {
        Value::Hash(h) => Ok(h),
        _ => unreachable!("type checked above"),
    }
}

/// Removes a field keeping the order of the rest while the hash is small (listpack order).
pub fn remove_field(h: &mut Hash, field: &[u8]) -> bool {
    // 512: hash-max-listpack-entries' default.
    if h.len() <= 512 {
        h.shift_remove(field).is_some()
    } else {
        h.swap_remove(field).is_some()
    }
}

fn reply(r: R<Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

fn hset(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() % 2 == 1 {
        return wrong_args("hset");
    }
    reply(set_pairs(ctx, argv).map(Reply::Int))
}

fn hmset(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() % 2 == 1 {
        return wrong_args("hmset");
    }
    reply(set_pairs(ctx, argv).map(|_| Reply::ok()))
}

fn set_pairs(ctx: &mut Ctx, argv: &[Bytes]) -> R<i64> {
    let h = write(ctx, &argv[1])?;
    let mut added = 0;
    for pair in argv[2..].chunks(2) {
        if h.insert(pair[0].clone(), pair[1].clone()).is_none() {
            added += 1;
        }
    }
    ctx.modified(&argv[1]);
    Ok(added)
}

fn hsetnx(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let h = write(ctx, &argv[1])?;
        if h.contains_key(&argv[2]) {
            return Ok(Reply::Int(0));
        }
        h.insert(argv[2].clone(), argv[3].clone());
        ctx.modified(&argv[1]);
        Ok(Reply::Int(1))
    })())
}

fn hget(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read(ctx, &argv[1]).map(|h| Reply::bulk_opt(h.and_then(|h| h.get(&argv[2]).cloned()))))
}

fn hmget(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read(ctx, &argv[1]).map(|h| {
        Reply::Array(
            argv[2..]
                .iter()
                .map(|f| Reply::bulk_opt(h.and_then(|h| h.get(f).cloned())))
                .collect(),
        )
    }))
}

fn hgetall(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read(ctx, &argv[1]).map(|h| {
        Reply::Map(
            h.into_iter()
                .flatten()
                .map(|(k, v)| (Reply::Bulk(k.clone()), Reply::Bulk(v.clone())))
                .collect(),
        )
    }))
}

fn hkeys(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read(ctx, &argv[1]).map(|h| Reply::bulks(h.into_iter().flat_map(|h| h.keys().cloned()))))
}

fn hvals(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(
        read(ctx, &argv[1]).map(|h| Reply::bulks(h.into_iter().flat_map(|h| h.values().cloned()))),
    )
}

fn hdel(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let key = &argv[1];
    let h = match ctx.db().get_hash_mut(key) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(h)) => h,
    };
    let mut n = 0;
    for f in &argv[2..] {
        if remove_field(h, f) {
            n += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    if n > 0 {
        ctx.db().remove_if_empty(key);
        ctx.modified(key);
    }
    Reply::Int(n)
}

fn hexists(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(
        read(ctx, &argv[1]).map(|h| Reply::Int(h.is_some_and(|h| h.contains_key(&argv[2])) as i64)),
    )
}

fn hlen(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read(ctx, &argv[1]).map(|h| Reply::Int(h.map_or(0, |h| h.len()) as i64)))
}

fn hstrlen(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(
        read(ctx, &argv[1])
            .map(|h| Reply::Int(h.and_then(|h| h.get(&argv[2])).map_or(0, |v| v.len()) as i64)),
    )
}

fn hincrby(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let incr = int(&argv[3])?;
        let h = write(ctx, &argv[1])?;
        let cur = match h.get(&argv[2]) {
            None => 0,
            Some(v) => {
                parse_i64(v).ok_or_else(|| Reply::err("ERR hash value is not an integer"))?
            }
        };
        let new = cur
            .checked_add(incr)
            .ok_or_else(|| Reply::err("ERR increment or decrement would overflow"))?;
        h.insert(argv[2].clone(), args::int_bytes(new));
        ctx.modified(&argv[1]);
        Ok(Reply::Int(new))
    })())
}

fn hincrbyfloat(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        // Redis adds in long double: ldouble reproduces its parsing, sum and `%.17Lf` text.
        use crate::protocol::ldouble::{self, IncrError, Parsed};
        match ldouble::parse(&argv[3]) {
            None => return Err(Reply::err(args::NOT_FLOAT)),
            Some(Parsed::Finite(_)) => {}
            Some(_) => return Err(Reply::err("ERR value is NaN or Infinity")),
        }
        let h = write(ctx, &argv[1])?;
        let cur = h
            .get(&argv[2])
            .cloned()
            .unwrap_or_else(|| Bytes::from_static(b"0"));
        let text = ldouble::incr(&cur, &argv[3]).map_err(|e| match e {
            IncrError::NotFloat => Reply::err("ERR hash value is not a float"),
            IncrError::NanOrInf => Reply::err("ERR increment would produce NaN or Infinity"),
        })?;
        let text = args::bytes(&text);
        h.insert(argv[2].clone(), text.clone());
        ctx.modified(&argv[1]);
        Ok(Reply::Bulk(text))
    })())
}

/// SCAN's options after the cursor: MATCH and COUNT (Redis's `scanGenericCommand` checks).
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: usize,
}

/// The options after the cursor (parsed by the caller first, before the key lookup).
pub fn parse_scan_args(argv: &[Bytes], cursor_at: usize, cursor: u64) -> R<ScanArgs> {
    let mut out = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
    };
    let mut i = cursor_at + 1;
    while i < argv.len() {
        let more = argv.len() - i >= 2;
        if is(&argv[i], "count") && more {
            let c = int(&argv[i + 1])?;
            if c < 1 {
                return syntax();
            }
            out.count = c as usize;
        } else if is(&argv[i], "match") && more {
            let p = &argv[i + 1];
            out.pattern = if &p[..] == b"*" {
                None
            } else {
                Some(p.clone())
            };
        } else {
            return syntax();
        }
        i += 2;
    }
    Ok(out)
}

/// Small collections (Redis's compact encodings: listpack, intset) come back whole in their
/// order, whatever the cursor; hashtable-encoded ones page as Redis's dict scan does.
/// `weight` is 2 where each element is replied with its value (HSCAN, ZSCAN).
pub fn scan_page<'a, I>(
    items: I,
    len: usize,
    small: bool,
    sa: &ScanArgs,
    weight: usize,
) -> (Vec<&'a Bytes>, u64)
where
    I: Iterator<Item = &'a Bytes>,
{
    if small {
        return (items.collect(), 0);
    }
    page_dict(items, len, sa.cursor, sa.count, weight)
}

pub fn scan_matches(pattern: &Option<Bytes>, item: &[u8]) -> bool {
    pattern.as_ref().is_none_or(|p| glob_match(p, item, false))
}

pub fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(args::bytes(&cursor.to_string())),
        Reply::Array(items),
    ])
}

fn hscan(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let cursor = super::args::scan_cursor(&argv[2])?;
        let max_len = ctx.w.config.get_i64("hash-max-listpack-entries").max(0) as usize;
        let max_value = ctx.w.config.get_i64("hash-max-listpack-value").max(0) as usize;
        let Some(h) = read(ctx, &argv[1])? else {
            return Ok(scan_reply(0, vec![]));
        };
        let sa = parse_scan_args(argv, 2, cursor)?;
        // A listpack (few fields, short values) is returned whole, in insertion order.
        let small = h.len() <= max_len
            && h.iter()
                .all(|(f, v)| f.len() <= max_value && v.len() <= max_value);
        let (fields, next) = scan_page(h.keys(), h.len(), small, &sa, 2);
        let mut items = Vec::new();
        for f in fields {
            if scan_matches(&sa.pattern, f) {
                items.push(Reply::Bulk(f.clone()));
                items.push(Reply::Bulk(h[f].clone()));
            }
        }
        Ok(scan_reply(next, items))
    })())
}

/// HRANDFIELD / ZRANDMEMBER argument checks: the count and whether the flag word is present.
pub fn rand_args(argv: &[Bytes], word: &str) -> R<Option<(i64, bool)>> {
    if argv.len() < 3 {
        return Ok(None);
    }
    let l = int(&argv[2])?;
    if l == i64::MIN {
        return Err(Reply::err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if argv.len() > 4 || (argv.len() == 4 && !is(&argv[3], word)) {
        return syntax();
    }
    let with = argv.len() == 4;
    if with && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err(Reply::err("ERR value is out of range"));
    }
    Ok(Some((l, with)))
}

/// Which positions a random reply takes: with repeats for a negative count, else distinct ones
/// (all of them, in order, when the count covers the collection).
pub fn rand_positions(len: usize, l: i64) -> Vec<usize> {
    let mut rng = rand::thread_rng();
    if l < 0 {
        let n = l.unsigned_abs() as usize;
        (0..n).map(|_| rng.gen_range(0..len)).collect()
    } else if l as usize >= len {
        (0..len).collect()
    } else {
        sample(&mut rng, len, l as usize).into_vec()
    }
}

/// One random element reply entry: the element, or a `[element, extra]` pair in RESP3 / flat
/// in RESP2.
pub fn push_pair(out: &mut Vec<Reply>, resp3: bool, a: Reply, b: Option<Reply>) {
    match b {
        None => out.push(a),
        Some(b) if resp3 => out.push(Reply::Array(vec![a, b])),
        Some(b) => {
            out.push(a);
            out.push(b);
        }
    }
}

fn hrandfield(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let Some((l, with)) = rand_args(argv, "withvalues")? else {
            let Some(h) = read(ctx, &argv[1])? else {
                return Ok(Reply::Nil);
            };
            let i = rand::thread_rng().gen_range(0..h.len());
            return Ok(Reply::Bulk(h.get_index(i).expect("in range").0.clone()));
        };
        let resp3 = ctx.resp3;
        let Some(h) = read(ctx, &argv[1])? else {
            return Ok(Reply::Array(vec![]));
        };
        if l == 0 {
            return Ok(Reply::Array(vec![]));
        }
        let mut out = Vec::new();
        for i in rand_positions(h.len(), l) {
            let (k, v) = h.get_index(i).expect("in range");
            let v = with.then(|| Reply::Bulk(v.clone()));
            push_pair(&mut out, resp3, Reply::Bulk(k.clone()), v);
        }
        Ok(Reply::Array(out))
    })())
}
