//! Set commands, after Redis 7.0's `t_set.c`.
//!
//! Reply order imitates Redis's encodings: a set whose members are all integers (as Redis's
//! intset accepts them) with at most `set-max-intset-entries` members is listed in numeric
//! order; other sets come in hash-table order, which clients must not rely on.

use std::collections::HashSet;

use bytes::Bytes;
use rand::seq::IteratorRandom;
use rand::Rng;

use super::args::{int, is, NOT_INT, R, SYNTAX};
use super::lists::{non_negative, POSITIVE};
use super::{Command, Ctx, Flags as F};
use crate::db::glob::glob_match;
use crate::db::scan::page_dict;
use crate::db::Value;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[
    Command::new("sadd", -3, F::WRITE | F::DENYOOM | F::FAST, sadd)
        .keys(1, 1, 1)
        .doc(
            "set",
            "Add one or more members to a set",
            "key member [member ...]",
        ),
    Command::new("srem", -3, F::WRITE | F::FAST, srem)
        .keys(1, 1, 1)
        .doc(
            "set",
            "Remove one or more members from a set",
            "key member [member ...]",
        ),
    Command::new("smembers", 2, F::READONLY, smembers)
        .keys(1, 1, 1)
        .doc("set", "Get all the members in a set", "key"),
    Command::new("sismember", 3, F::READONLY | F::FAST, sismember)
        .keys(1, 1, 1)
        .doc(
            "set",
            "Determine if a given value is a member of a set",
            "key member",
        ),
    Command::new("smismember", -3, F::READONLY | F::FAST, smismember)
        .keys(1, 1, 1)
        .doc(
            "set",
            "Returns the membership associated with the given elements for a set",
            "key member [member ...]",
        ),
    Command::new("scard", 2, F::READONLY | F::FAST, scard)
        .keys(1, 1, 1)
        .doc("set", "Get the number of members in a set", "key"),
    Command::new("spop", -2, F::WRITE | F::FAST, spop)
        .keys(1, 1, 1)
        .doc(
            "set",
            "Remove and return one or multiple random members from a set",
            "key [count]",
        ),
    Command::new("srandmember", -2, F::READONLY, srandmember)
        .keys(1, 1, 1)
        .doc(
            "set",
            "Get one or multiple random members from a set",
            "key [count]",
        ),
    Command::new("smove", 4, F::WRITE | F::FAST, smove)
        .keys(1, 2, 1)
        .doc(
            "set",
            "Move a member from one set to another",
            "source destination member",
        ),
    Command::new("sinter", -2, F::READONLY, sinter)
        .keys(1, -1, 1)
        .doc("set", "Intersect multiple sets", "key [key ...]"),
    Command::new("sunion", -2, F::READONLY, sunion)
        .keys(1, -1, 1)
        .doc("set", "Add multiple sets", "key [key ...]"),
    Command::new("sdiff", -2, F::READONLY, sdiff)
        .keys(1, -1, 1)
        .doc("set", "Subtract multiple sets", "key [key ...]"),
    Command::new("sinterstore", -3, F::WRITE | F::DENYOOM, sinterstore)
        .keys(1, -1, 1)
        .doc(
            "set",
            "Intersect multiple sets and store the resulting set in a key",
            "destination key [key ...]",
        ),
    Command::new("sunionstore", -3, F::WRITE | F::DENYOOM, sunionstore)
        .keys(1, -1, 1)
        .doc(
            "set",
            "Add multiple sets and store the resulting set in a key",
            "destination key [key ...]",
        ),
    Command::new("sdiffstore", -3, F::WRITE | F::DENYOOM, sdiffstore)
        .keys(1, -1, 1)
        .doc(
            "set",
            "Subtract multiple sets and store the resulting set in a key",
            "destination key [key ...]",
        ),
    Command::new("sintercard", -3, F::READONLY, sintercard)
        .keys_fn(0, 0, 0, sintercard_keys)
        .doc(
            "set",
            "Intersect multiple sets and return the cardinality of the result",
            "numkeys key [key ...] [LIMIT limit]",
        ),
    Command::new("sscan", -3, F::READONLY, sscan)
        .keys(1, 1, 1)
        .doc(
            "set",
            "Incrementally iterate Set elements",
            "key cursor [MATCH pattern] [COUNT count]",
        ),
];

fn reply(r: R<Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

fn intset_limit(ctx: &Ctx) -> usize {
    ctx.w.config.get_i64("set-max-intset-entries").max(0) as usize
}

/// Members in the order Redis would list them: numeric for an intset-sized set of integers,
/// otherwise as they come.
pub(crate) fn ordered<'a>(items: impl Iterator<Item = &'a Bytes>, limit: usize) -> Vec<&'a Bytes> {
    let items: Vec<&Bytes> = items.collect();
    if items.len() > limit {
        return items;
    }
    let nums: Option<Vec<i64>> = items.iter().map(|m| parse_i64(m)).collect();
    match nums {
        None => items,
        Some(nums) => {
            let mut pairs: Vec<(i64, &Bytes)> = nums.into_iter().zip(items).collect();
            pairs.sort_unstable_by_key(|p| p.0);
            pairs.into_iter().map(|p| p.1).collect()
        }
    }
}

fn set_reply<'a>(ctx: &Ctx, items: impl Iterator<Item = &'a Bytes>) -> Reply {
    Reply::Set(
        ordered(items, intset_limit(ctx))
            .into_iter()
            .map(|m| Reply::Bulk(m.clone()))
            .collect(),
    )
}

fn sadd(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let key = &argv[1];
        let db = ctx.db();
        if db.get_set(key)?.is_none() {
            db.set(key.clone(), Value::Set(Box::new(crate::db::Set::new())));
        }
        let set = db.get_set_mut(key)?.expect("set");
        let added = argv[2..]
            .iter()
            .filter(|m| set.insert((*m).clone()))
            .count();
        if added > 0 {
            ctx.modified(key);
        }
        Ok(Reply::Int(added as i64))
    })())
}

fn srem(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let key = &argv[1];
        let Some(set) = ctx.db().get_set_mut(key)? else {
            return Ok(Reply::Int(0));
        };
        let removed = argv[2..].iter().filter(|m| set.remove(&m[..])).count();
        if removed > 0 {
            ctx.db().remove_if_empty(key);
            ctx.modified(key);
        }
        Ok(Reply::Int(removed as i64))
    })())
}

fn smembers(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let limit = intset_limit(ctx);
        let Some(set) = ctx.db().get_set(&argv[1])? else {
            return Ok(Reply::Set(vec![]));
        };
        Ok(Reply::Set(
            ordered(set.iter(), limit)
                .into_iter()
                .map(|m| Reply::Bulk(m.clone()))
                .collect(),
        ))
    })())
}

fn sismember(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let set = ctx.db().get_set(&argv[1])?;
        Ok(Reply::Int(
            set.is_some_and(|s| s.contains(&argv[2][..])) as i64
        ))
    })())
}

fn smismember(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let set = ctx.db().get_set(&argv[1])?;
        Ok(Reply::Array(
            argv[2..]
                .iter()
                .map(|m| Reply::Int(set.is_some_and(|s| s.contains(&m[..])) as i64))
                .collect(),
        ))
    })())
}

fn scard(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let set = ctx.db().get_set(&argv[1])?;
        Ok(Reply::Int(set.map_or(0, |s| s.len()) as i64))
    })())
}

fn spop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        if argv.len() > 3 {
            return Err(Reply::err(SYNTAX));
        }
        let key = &argv[1];
        let count = match argv.get(2) {
            Some(a) => Some(non_negative(a, POSITIVE)? as usize),
            None => None,
        };
        let limit = intset_limit(ctx);
        let Some(set) = ctx.db().get_set_mut(key)? else {
            return Ok(if count.is_some() {
                Reply::Set(vec![])
            } else {
                Reply::Nil
            });
        };
        let mut rng = rand::thread_rng();
        let out = match count {
            Some(0) => return Ok(Reply::Set(vec![])),
            None => {
                let m = set.iter().choose(&mut rng).cloned().expect("non-empty");
                set.remove(&m);
                ctx.db().remove_if_empty(key);
                ctx.modified(key);
                return Ok(Reply::Bulk(m));
            }
            Some(n) if n >= set.len() => {
                let all = std::mem::take(set);
                ordered(all.iter(), limit).into_iter().cloned().collect()
            }
            Some(n) => {
                let picked: Vec<Bytes> = set.iter().cloned().choose_multiple(&mut rng, n);
                for m in &picked {
                    set.remove(m);
                }
                picked
            }
        };
        ctx.db().remove_if_empty(key);
        ctx.modified(key);
        Ok(Reply::Set(out.into_iter().map(Reply::Bulk).collect()))
    })())
}

fn srandmember(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        if argv.len() > 3 {
            return Err(Reply::err(SYNTAX));
        }
        let key = &argv[1];
        let count = match argv.get(2) {
            None => None,
            Some(a) => {
                let v = int(a)?;
                if v == i64::MIN {
                    return Err(Reply::err(
                        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                    ));
                }
                Some(v)
            }
        };
        let limit = intset_limit(ctx);
        let Some(set) = ctx.db().get_set(key)? else {
            return Ok(if count.is_some() {
                Reply::Array(vec![])
            } else {
                Reply::Nil
            });
        };
        let mut rng = rand::thread_rng();
        let Some(count) = count else {
            return Ok(Reply::bulk_opt(set.iter().choose(&mut rng).cloned()));
        };
        if count == 0 {
            return Ok(Reply::Array(vec![]));
        }
        if count < 0 {
            let members: Vec<&Bytes> = set.iter().collect();
            let n = count.unsigned_abs() as usize;
            return Ok(Reply::Array(
                (0..n)
                    .map(|_| Reply::Bulk(members[rng.gen_range(0..members.len())].clone()))
                    .collect(),
            ));
        }
        let count = count as usize;
        let out: Vec<&Bytes> = if count >= set.len() {
            ordered(set.iter(), limit)
        } else {
            set.iter().choose_multiple(&mut rng, count)
        };
        Ok(Reply::Array(
            out.into_iter().map(|m| Reply::Bulk(m.clone())).collect(),
        ))
    })())
}

fn smove(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let (src, dst, member) = (&argv[1], &argv[2], &argv[3]);
        let db = ctx.db();
        let Some(_) = db.get_set(src)? else {
            return Ok(Reply::Int(0));
        };
        db.get_set(dst)?;
        if src == dst {
            let has = db.get_set(src)?.is_some_and(|s| s.contains(&member[..]));
            return Ok(Reply::Int(has as i64));
        }
        let set = db.get_set_mut(src)?.expect("source");
        if !set.remove(&member[..]) {
            return Ok(Reply::Int(0));
        }
        db.remove_if_empty(src);
        ctx.modified(src);
        let db = ctx.db();
        if db.get_set(dst)?.is_none() {
            db.set(dst.clone(), Value::Set(Box::new(crate::db::Set::new())));
        }
        db.get_set_mut(dst)?.expect("dest").insert(member.clone());
        ctx.modified(dst);
        Ok(Reply::Int(1))
    })())
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Computes an intersection, union or difference (LIMIT stops an intersection early).
/// Checks every key's type first, as Redis does.
fn combine(ctx: &mut Ctx, keys: &[Bytes], op: Op, limit: usize) -> R<Vec<Bytes>> {
    for k in keys {
        ctx.db().get_set(k)?;
    }
    let db = &*ctx.db();
    let sets: Vec<Option<&HashSet<Bytes>>> = keys
        .iter()
        .map(|k| {
            db.peek(k).and_then(|e| match &e.value {
                Value::Set(s) => Some(&***s),
                _ => None,
            })
        })
        .collect();
    Ok(match op {
        Op::Inter => {
            if sets.iter().any(|s| s.is_none()) {
                return Ok(Vec::new());
            }
            let mut sets: Vec<&HashSet<Bytes>> = sets.into_iter().flatten().collect();
            sets.sort_by_key(|s| s.len());
            let mut out = Vec::new();
            for m in sets[0] {
                if sets[1..].iter().all(|s| s.contains(m)) {
                    out.push(m.clone());
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            out
        }
        Op::Union => {
            let mut all: HashSet<&Bytes> = HashSet::new();
            for s in sets.iter().flatten() {
                all.extend(s.iter());
            }
            all.into_iter().cloned().collect()
        }
        Op::Diff => {
            let Some(first) = sets[0] else {
                return Ok(Vec::new());
            };
            first
                .iter()
                .filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(*m)))
                .cloned()
                .collect()
        }
    })
}

fn set_op(ctx: &mut Ctx, argv: &[Bytes], op: Op) -> Reply {
    reply((|| {
        let out = combine(ctx, &argv[1..], op, usize::MAX)?;
        Ok(set_reply(ctx, out.iter()))
    })())
}

fn set_op_store(ctx: &mut Ctx, argv: &[Bytes], op: Op) -> Reply {
    reply((|| {
        let out = combine(ctx, &argv[2..], op, usize::MAX)?;
        let dst = &argv[1];
        let n = out.len();
        if n == 0 {
            if ctx.db().remove_live(dst) {
                ctx.modified(dst);
            }
        } else {
            ctx.db()
                .set(dst.clone(), Value::Set(Box::new(out.into_iter().collect())));
            ctx.modified(dst);
        }
        Ok(Reply::Int(n as i64))
    })())
}

fn sinter(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    set_op(ctx, argv, Op::Inter)
}

fn sunion(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    set_op(ctx, argv, Op::Union)
}

fn sdiff(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    set_op(ctx, argv, Op::Diff)
}

fn sinterstore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    set_op_store(ctx, argv, Op::Inter)
}

fn sunionstore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    set_op_store(ctx, argv, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    set_op_store(ctx, argv, Op::Diff)
}

fn sintercard_keys(argv: &[Bytes]) -> Vec<usize> {
    let n = argv.get(1).and_then(|a| int(a).ok()).unwrap_or(0).max(0) as usize;
    (2..argv.len().min(2 + n)).collect()
}

fn sintercard(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let numkeys = match int(&argv[1]) {
            Ok(n) if n >= 1 => n as u64,
            _ => return Err(Reply::err("ERR numkeys should be greater than 0")),
        };
        if numkeys > (argv.len() - 2) as u64 {
            return Err(Reply::err(
                "ERR Number of keys can't be greater than number of args",
            ));
        }
        let end = 2 + numkeys as usize;
        let mut limit = 0i64;
        let mut j = end;
        while j < argv.len() {
            if is(&argv[j], "limit") && j + 1 < argv.len() {
                j += 1;
                limit = match int(&argv[j]) {
                    Ok(v) if v >= 0 => v,
                    _ => return Err(Reply::err("ERR LIMIT can't be negative")),
                };
            } else {
                return Err(Reply::err(SYNTAX));
            }
            j += 1;
        }
        let limit = if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        };
        let out = combine(ctx, &argv[2..end], Op::Inter, limit)?;
        Ok(Reply::Int(out.len() as i64))
    })())
}

fn sscan(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let cursor = super::args::scan_cursor(&argv[2])?;
        let limit = intset_limit(ctx);
        let empty = || Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(vec![])]);
        if ctx.db().get_set(&argv[1])?.is_none() {
            return Ok(empty());
        }
        let mut count = 10usize;
        let mut pattern: Option<&Bytes> = None;
        let mut j = 3;
        while j < argv.len() {
            let more = j + 1 < argv.len();
            if is(&argv[j], "count") && more {
                let c = int(&argv[j + 1]).map_err(|_| Reply::err(NOT_INT))?;
                if c < 1 {
                    return Err(Reply::err(SYNTAX));
                }
                count = c as usize;
            } else if is(&argv[j], "match") && more {
                pattern = Some(&argv[j + 1]);
            } else {
                return Err(Reply::err(SYNTAX));
            }
            j += 2;
        }
        let set = ctx.db().get_set(&argv[1])?.expect("set");
        let sorted = ordered(set.iter(), limit);
        let is_intset = sorted.len() <= limit && sorted.iter().all(|m| parse_i64(m).is_some());
        let (page, next) = if is_intset {
            (sorted, 0)
        } else {
            page_dict(set.iter(), set.len(), cursor, count, 1)
        };
        let items = page
            .into_iter()
            .filter(|m| pattern.is_none_or(|p| &p[..] == b"*" || glob_match(p, m, false)))
            .map(|m| Reply::Bulk(m.clone()))
            .collect();
        Ok(Reply::Array(vec![
            Reply::bulk_str(&next.to_string()),
            Reply::Array(items),
        ]))
    })())
}
