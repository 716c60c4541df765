//! ZUNION, ZINTER, ZDIFF (and their STORE forms) and ZINTERCARD, as Redis's
//! `zunionInterDiffGenericCommand`: sets are accepted as inputs with score 1.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::args::{self, int, is, syntax, R};
use super::zsets::{numkeys_keys_at, push_scored, reply};
use super::zsets_ranges::store_result;
use super::Ctx;
use crate::db::{Value, ZSet, WRONGTYPE};
use crate::protocol::Reply;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// One input, copied out of the keyspace: member -> score.
struct Src {
    items: Vec<(Bytes, f64)>,
    lookup: HashMap<Bytes, f64>,
    weight: f64,
}

fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            // +inf + -inf is NaN: Redis's convention makes it 0.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

pub fn store_keys(argv: &[Bytes]) -> Vec<usize> {
    let mut v = vec![1];
    v.extend(numkeys_keys_at(argv, 2));
    v
}

pub fn numkeys_keys(argv: &[Bytes]) -> Vec<usize> {
    numkeys_keys_at(argv, 1)
}

struct Parsed {
    srcs: Vec<Src>,
    agg: Aggregate,
    withscores: bool,
    limit: usize,
}

fn load(ctx: &mut Ctx, key: &[u8]) -> R<Src> {
    let items: Vec<(Bytes, f64)> = match ctx.db().get(key) {
        None => Vec::new(),
        Some(Value::ZSet(z)) => z.iter().map(|(m, s)| (m.clone(), s)).collect(),
        Some(Value::Set(s)) => set_items(s),
        Some(_) => return Err(Reply::err(WRONGTYPE)),
    };
    Ok(Src {
        lookup: HashMap::new(),
        items,
        weight: 1.0,
    })
}

fn set_items(s: &HashSet<Bytes>) -> Vec<(Bytes, f64)> {
    s.iter().map(|m| (m.clone(), 1.0)).collect()
}

fn parse(
    ctx: &mut Ctx,
    argv: &[Bytes],
    numkeys_at: usize,
    op: Op,
    store: bool,
    card: bool,
) -> R<Parsed> {
    let setnum = int(&argv[numkeys_at])?;
    if setnum < 1 {
        let name = args::lower(&argv[0]);
        return Err(Reply::err(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    if setnum > (argv.len() - numkeys_at - 1) as i64 {
        return syntax();
    }
    let setnum = setnum as usize;
    let mut srcs = Vec::with_capacity(setnum);
    for key in &argv[numkeys_at + 1..numkeys_at + 1 + setnum] {
        srcs.push(load(ctx, key)?);
    }
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0;
    let mut j = numkeys_at + 1 + setnum;
    while j < argv.len() {
        let remaining = argv.len() - j;
        let a = &argv[j];
        if op != Op::Diff && !card && remaining > setnum && is(a, "weights") {
            j += 1;
            for src in srcs.iter_mut() {
                src.weight = crate::protocol::numbers::parse_f64(&argv[j])
                    .ok_or_else(|| Reply::err("ERR weight value is not a float"))?;
                j += 1;
            }
        } else if op != Op::Diff && !card && remaining >= 2 && is(a, "aggregate") {
            let w = &argv[j + 1];
            agg = if is(w, "sum") {
                Aggregate::Sum
            } else if is(w, "min") {
                Aggregate::Min
            } else if is(w, "max") {
                Aggregate::Max
            } else {
                return syntax();
            };
            j += 2;
        } else if !store && !card && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(a, "limit") {
            let l = crate::protocol::request::parse_i64(&argv[j + 1])
                .filter(|l| *l >= 0)
                .ok_or_else(|| Reply::err("ERR LIMIT can't be negative"))?;
            limit = l as usize;
            j += 2;
        } else {
            return syntax();
        }
    }
    Ok(Parsed {
        srcs,
        agg,
        withscores,
        limit,
    })
}

/// Computes the result zset, or for ZINTERCARD only its size (bounded by `limit`).
fn compute(p: &mut Parsed, op: Op, card: bool, store: bool) -> (ZSet, usize) {
    let put = |z: &mut ZSet, m: Bytes, s: f64| {
        if store {
            z.insert(m, s);
        } else {
            z.insert_exact(m, s);
        }
    };
    let mut out = ZSet::default();
    let srcs = &mut p.srcs;
    if op != Op::Diff {
        srcs.sort_by_key(|s| s.items.len());
    }
    match op {
        Op::Inter => {
            if srcs[0].items.is_empty() {
                return (out, 0);
            }
            for s in srcs[1..].iter_mut() {
                s.lookup = s.items.iter().cloned().collect();
            }
            let mut count = 0;
            let first = &srcs[0];
            'outer: for (m, s) in &first.items {
                let mut score = first.weight * s;
                if score.is_nan() {
                    score = 0.0;
                }
                for other in &srcs[1..] {
                    match other.lookup.get(m) {
                        Some(v) => aggregate(&mut score, v * other.weight, p.agg),
                        None => continue 'outer,
                    }
                }
                if card {
                    count += 1;
                    if p.limit > 0 && count >= p.limit {
                        break;
                    }
                } else {
                    put(&mut out, m.clone(), score);
                }
            }
            (out, count)
        }
        Op::Union => {
            let mut acc: HashMap<Bytes, f64> = HashMap::new();
            for src in srcs.iter() {
                for (m, s) in &src.items {
                    let mut score = src.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, p.agg),
                        None => {
                            acc.insert(m.clone(), score);
                        }
                    }
                }
            }
            for (m, s) in acc {
                put(&mut out, m, s);
            }
            (out, 0)
        }
        Op::Diff => {
            let others: HashSet<&Bytes> = srcs[1..]
                .iter()
                .flat_map(|s| s.items.iter().map(|(m, _)| m))
                .collect();
            for (m, s) in &srcs[0].items {
                if !others.contains(m) {
                    put(&mut out, m.clone(), *s);
                }
            }
            (out, 0)
        }
    }
}

fn store_cmd(ctx: &mut Ctx, argv: &[Bytes], op: Op) -> Reply {
    reply((|| {
        let mut p = parse(ctx, argv, 2, op, true, false)?;
        let (result, _) = compute(&mut p, op, false, true);
        Ok(store_result(ctx, &argv[1], result))
    })())
}

fn read_cmd(ctx: &mut Ctx, argv: &[Bytes], op: Op) -> Reply {
    reply((|| {
        let mut p = parse(ctx, argv, 1, op, false, false)?;
        let (result, _) = compute(&mut p, op, false, false);
        let mut out = Vec::new();
        for (m, s) in result.iter() {
            push_scored(&mut out, ctx.resp3, m.clone(), p.withscores.then_some(s));
        }
        Ok(Reply::Array(out))
    })())
}

pub fn zunionstore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    store_cmd(ctx, argv, Op::Union)
}

pub fn zinterstore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    store_cmd(ctx, argv, Op::Inter)
}

pub fn zdiffstore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    store_cmd(ctx, argv, Op::Diff)
}

pub fn zunion(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    read_cmd(ctx, argv, Op::Union)
}

pub fn zinter(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    read_cmd(ctx, argv, Op::Inter)
}

pub fn zdiff(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    read_cmd(ctx, argv, Op::Diff)
}

pub fn zintercard(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let mut p = parse(ctx, argv, 1, Op::Inter, false, true)?;
        let (_, n) = compute(&mut p, Op::Inter, true, false);
        Ok(Reply::Int(n as i64))
    })())
}
