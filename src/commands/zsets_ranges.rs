//! Sorted-set ranges: ZRANGE and its older forms, ZRANGESTORE, ZCOUNT, ZLEXCOUNT and
//! ZREMRANGEBY{SCORE,RANK,LEX}, following Redis's `zrangeGenericCommand` argument rules.

use bytes::Bytes;

use super::args::{int, is, syntax, R};
use super::zsets::{after_write, push_scored, read, reply};
use super::Ctx;
use crate::db::zset::{LexBound, ScoreBound};
use crate::db::{Value, ZSet};
use crate::protocol::numbers::parse_f64;
use crate::protocol::Reply;

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// C `strtod` over the whole string, as `zslParseRange` uses it: leading white space is
/// skipped, "" is 0, overflow gives +-inf; only NaN and trailing garbage are rejected.
fn strtod_full(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let t = std::str::from_utf8(&s[start..]).ok()?;
    let v = match t.parse::<f64>() {
        Ok(v) => v,
        Err(_) => parse_f64(t.as_bytes())?,
    };
    (!v.is_nan()).then_some(v)
}

fn score_bound(arg: &[u8]) -> Option<ScoreBound> {
    match arg.first() {
        Some(b'(') => strtod_full(&arg[1..]).map(|value| ScoreBound {
            value,
            exclusive: true,
        }),
        _ => strtod_full(arg).map(|value| ScoreBound {
            value,
            exclusive: false,
        }),
    }
}

pub fn score_range(min: &[u8], max: &[u8]) -> R<(ScoreBound, ScoreBound)> {
    match (score_bound(min), score_bound(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Reply::err(NOT_FLOAT_RANGE)),
    }
}

fn lex_bound(arg: &Bytes) -> Option<LexBound> {
    match arg.first()? {
        b'+' if arg.len() == 1 => Some(LexBound::Max),
        b'-' if arg.len() == 1 => Some(LexBound::Min),
        b'(' => Some(LexBound::Exclusive(arg.slice(1..))),
        b'[' => Some(LexBound::Inclusive(arg.slice(1..))),
        _ => None,
    }
}

pub fn lex_range(min: &Bytes, max: &Bytes) -> R<(LexBound, LexBound)> {
    match (lex_bound(min), lex_bound(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Reply::err(NOT_LEX_RANGE)),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Rank,
    Score,
    Lex,
}

enum Range {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

struct Spec {
    range: Range,
    rev: bool,
    offset: i64,
    limit: i64,
    withscores: bool,
}

/// Parses `key min max [options]` starting at `key_at`; `kind` / `rev` are fixed by the older
/// command forms (which then reject BYSCORE / BYLEX / REV as syntax errors).
fn parse(
    argv: &[Bytes],
    key_at: usize,
    store: bool,
    mut kind: Option<Kind>,
    mut rev: Option<bool>,
) -> R<Spec> {
    let (fixed_kind, fixed_rev) = (kind.is_some(), rev.is_some());
    let mut withscores = false;
    let (mut offset, mut limit) = (0, -1);
    let mut j = key_at + 3;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = &argv[j];
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = int(&argv[j + 1])?;
            limit = int(&argv[j + 2])?;
            j += 2;
        } else if !fixed_rev && rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if !fixed_kind && kind.is_none() && is(a, "bylex") {
            kind = Some(Kind::Lex);
        } else if !fixed_kind && kind.is_none() && is(a, "byscore") {
            kind = Some(Kind::Score);
        } else {
            return syntax();
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    let kind = kind.unwrap_or(Kind::Rank);
    if limit != -1 && kind == Kind::Rank {
        return Err(Reply::err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(Reply::err(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (&argv[key_at + 1], &argv[key_at + 2]);
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let range = match kind {
        Kind::Rank => Range::Rank(int(lo)?, int(hi)?),
        Kind::Score => {
            let (a, b) = score_range(lo, hi)?;
            Range::Score(a, b)
        }
        Kind::Lex => {
            let (a, b) = lex_range(lo, hi)?;
            Range::Lex(a, b)
        }
    };
    Ok(Spec {
        range,
        rev,
        offset,
        limit,
        withscores,
    })
}

fn limited<'a>(
    it: Box<dyn Iterator<Item = (&'a Bytes, f64)> + 'a>,
    offset: i64,
    limit: i64,
) -> Vec<(Bytes, f64)> {
    if offset < 0 {
        return Vec::new();
    }
    let it = it.skip(offset as usize).map(|(m, s)| (m.clone(), s));
    if limit < 0 {
        it.collect()
    } else {
        it.take(limit as usize).collect()
    }
}

fn collect(z: &ZSet, spec: &Spec) -> Vec<(Bytes, f64)> {
    match &spec.range {
        Range::Rank(s, e) => match super::args::clamp_range(*s, *e, z.len()) {
            Some((s, e)) => z.range_by_rank(s, e, spec.rev),
            None => Vec::new(),
        },
        Range::Score(min, max) => {
            let it = if spec.rev {
                z.rev_range_by_score(*min, *max)
            } else {
                z.range_by_score(*min, *max)
            };
            limited(it, spec.offset, spec.limit)
        }
        Range::Lex(min, max) => z
            .lex_walk(min, max, spec.rev, spec.offset, spec.limit)
            .map(|(m, s)| (m.clone(), s))
            .collect(),
    }
}

fn range_cmd(ctx: &mut Ctx, argv: &[Bytes], kind: Option<Kind>, rev: Option<bool>) -> Reply {
    reply((|| {
        let spec = parse(argv, 1, false, kind, rev)?;
        let resp3 = ctx.resp3;
        let Some(z) = read(ctx, &argv[1])? else {
            return Ok(Reply::Array(vec![]));
        };
        let mut out = Vec::new();
        for (m, s) in collect(z, &spec) {
            push_scored(&mut out, resp3, m, spec.withscores.then_some(s));
        }
        Ok(Reply::Array(out))
    })())
}

pub fn zrange(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    range_cmd(ctx, argv, None, None)
}

pub fn zrevrange(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    range_cmd(ctx, argv, Some(Kind::Rank), Some(true))
}

pub fn zrangebyscore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    range_cmd(ctx, argv, Some(Kind::Score), Some(false))
}

pub fn zrevrangebyscore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    range_cmd(ctx, argv, Some(Kind::Score), Some(true))
}

pub fn zrangebylex(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    range_cmd(ctx, argv, Some(Kind::Lex), Some(false))
}

pub fn zrevrangebylex(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    range_cmd(ctx, argv, Some(Kind::Lex), Some(true))
}

/// Stores `result` at `dst` as a new zset (dropping its TTL), or deletes `dst` when empty.
pub fn store_result(ctx: &mut Ctx, dst: &Bytes, result: ZSet) -> Reply {
    let n = result.len();
    if n > 0 {
        ctx.db().set(dst.clone(), Value::ZSet(Box::new(result)));
        ctx.modified(dst);
        ctx.signal_ready(dst);
    } else if ctx.db().remove_live(dst) {
        ctx.modified(dst);
    }
    Reply::Int(n as i64)
}

pub fn zrangestore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let spec = parse(argv, 2, true, None, None)?;
        let result = match read(ctx, &argv[2])? {
            None => ZSet::default(),
            Some(z) => {
                let mut out = ZSet::default();
                for (m, s) in collect(z, &spec) {
                    out.insert(m, s);
                }
                out
            }
        };
        Ok(store_result(ctx, &argv[1], result))
    })())
}

pub fn zcount(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let (min, max) = score_range(&argv[2], &argv[3])?;
        let z = read(ctx, &argv[1])?;
        Ok(Reply::Int(
            z.map_or(0, |z| z.range_by_score(min, max).count()) as i64,
        ))
    })())
}

pub fn zlexcount(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let (min, max) = lex_range(&argv[2], &argv[3])?;
        let z = read(ctx, &argv[1])?;
        Ok(Reply::Int(
            z.map_or(0, |z| z.lex_walk(&min, &max, false, 0, -1).count()) as i64,
        ))
    })())
}

fn remrange(ctx: &mut Ctx, argv: &[Bytes], kind: Kind) -> Reply {
    reply((|| {
        let range = match kind {
            Kind::Rank => Range::Rank(int(&argv[2])?, int(&argv[3])?),
            Kind::Score => {
                let (a, b) = score_range(&argv[2], &argv[3])?;
                Range::Score(a, b)
            }
            Kind::Lex => {
                let (a, b) = lex_range(&argv[2], &argv[3])?;
                Range::Lex(a, b)
            }
        };
        let key = &argv[1];
        let Some(z) = ctx.db().get_zset_mut(key)? else {
            return Ok(Reply::Int(0));
        };
        let spec = Spec {
            range,
            rev: false,
            offset: 0,
            limit: -1,
            withscores: false,
        };
        let gone = collect(z, &spec);
        for (m, _) in &gone {
            z.remove(m);
        }
        if !gone.is_empty() {
            after_write(ctx, key);
        }
        Ok(Reply::Int(gone.len() as i64))
    })())
}

pub fn zremrangebyscore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    remrange(ctx, argv, Kind::Score)
}

pub fn zremrangebyrank(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    remrange(ctx, argv, Kind::Rank)
}

pub fn zremrangebylex(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    remrange(ctx, argv, Kind::Lex)
}
