//! Sorted-set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZRANK, pops (and blocking pops), ZSCAN,
//! ZRANDMEMBER, and the table for the whole group. Ranges live in `zsets_ranges`, the
//! union / intersection / difference family in `zsets_store`.

use bytes::Bytes;
use rand::Rng;

use super::args::{self, is, syntax, timeout_deadline, R};
use super::hashes::{
    parse_scan_args, push_pair, rand_args, rand_positions, scan_matches, scan_page, scan_reply,
};
use super::zsets_ranges as rg;
use super::zsets_store as st;
use super::{Command, Ctx, Flags as F};
use crate::db::{Value, ZSet};
use crate::protocol::numbers::fmt_double;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;

const W: u32 = F::WRITE | F::DENYOOM | F::FAST;
const RF: u32 = F::READONLY | F::FAST;
const RO: u32 = F::READONLY;
const G: &str = "sorted_set";

pub const COMMANDS: &[Command] = &[
    Command::new("zadd", -4, W, zadd).keys(1, 1, 1).doc(
        G,
        "Add one or more members to a sorted set, or update its score if it already exists",
        "key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]",
    ),
    Command::new("zincrby", 4, W, zincrby).keys(1, 1, 1).doc(
        G,
        "Increment the score of a member in a sorted set",
        "key increment member",
    ),
    Command::new("zrem", -3, F::WRITE | F::FAST, zrem).keys(1, 1, 1).doc(
        G,
        "Remove one or more members from a sorted set",
        "key member [member ...]",
    ),
    Command::new("zcard", 2, RF, zcard)
        .keys(1, 1, 1)
        .doc(G, "Get the number of members in a sorted set", "key"),
    Command::new("zcount", 4, RF, rg::zcount).keys(1, 1, 1).doc(
        G,
        "Count the members in a sorted set with scores within the given values",
        "key min max",
    ),
    Command::new("zlexcount", 4, RF, rg::zlexcount).keys(1, 1, 1).doc(
        G,
        "Count the number of members in a sorted set between a given lexicographical range",
        "key min max",
    ),
    Command::new("zscore", 3, RF, zscore).keys(1, 1, 1).doc(
        G,
        "Get the score associated with the given member in a sorted set",
        "key member",
    ),
    Command::new("zmscore", -3, RF, zmscore).keys(1, 1, 1).doc(
        G,
        "Get the score associated with the given members in a sorted set",
        "key member [member ...]",
    ),
    Command::new("zrank", 3, RF, zrank).keys(1, 1, 1).doc(
        G,
        "Determine the index of a member in a sorted set",
        "key member",
    ),
    Command::new("zrevrank", 3, RF, zrevrank).keys(1, 1, 1).doc(
        G,
        "Determine the index of a member in a sorted set, with scores ordered from high to low",
        "key member",
    ),
    Command::new("zrange", -4, RO, rg::zrange).keys(1, 1, 1).doc(
        G,
        "Return a range of members in a sorted set",
        "key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]",
    ),
    Command::new("zrangebyscore", -4, RO, rg::zrangebyscore)
        .keys(1, 1, 1)
        .doc(
            G,
            "Return a range of members in a sorted set, by score",
            "key min max [WITHSCORES] [LIMIT offset count]",
        ),
    Command::new("zrevrangebyscore", -4, RO, rg::zrevrangebyscore)
        .keys(1, 1, 1)
        .doc(
            G,
            "Return a range of members in a sorted set, by score, with scores ordered from high to low",
            "key max min [WITHSCORES] [LIMIT offset count]",
        ),
    Command::new("zrangebylex", -4, RO, rg::zrangebylex)
        .keys(1, 1, 1)
        .doc(
            G,
            "Return a range of members in a sorted set, by lexicographical range",
            "key min max [LIMIT offset count]",
        ),
    Command::new("zrevrangebylex", -4, RO, rg::zrevrangebylex)
        .keys(1, 1, 1)
        .doc(
            G,
            "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.",
            "key max min [LIMIT offset count]",
        ),
    Command::new("zrevrange", -4, RO, rg::zrevrange).keys(1, 1, 1).doc(
        G,
        "Return a range of members in a sorted set, by index, with scores ordered from high to low",
        "key start stop [WITHSCORES]",
    ),
    Command::new("zrangestore", -5, F::WRITE | F::DENYOOM, rg::zrangestore)
        .keys(1, 2, 1)
        .doc(
            G,
            "Store a range of members from sorted set into another key",
            "dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]",
        ),
    Command::new("zremrangebyscore", 4, F::WRITE, rg::zremrangebyscore)
        .keys(1, 1, 1)
        .doc(
            G,
            "Remove all members in a sorted set within the given scores",
            "key min max",
        ),
    Command::new("zremrangebyrank", 4, F::WRITE, rg::zremrangebyrank)
        .keys(1, 1, 1)
        .doc(
            G,
            "Remove all members in a sorted set within the given indexes",
            "key start stop",
        ),
    Command::new("zremrangebylex", 4, F::WRITE, rg::zremrangebylex)
        .keys(1, 1, 1)
        .doc(
            G,
            "Remove all members in a sorted set between the given lexicographical range",
            "key min max",
        ),
    Command::new("zpopmin", -2, F::WRITE | F::FAST, zpopmin)
        .keys(1, 1, 1)
        .doc(
            G,
            "Remove and return members with the lowest scores in a sorted set",
            "key [count]",
        ),
    Command::new("zpopmax", -2, F::WRITE | F::FAST, zpopmax)
        .keys(1, 1, 1)
        .doc(
            G,
            "Remove and return members with the highest scores in a sorted set",
            "key [count]",
        ),
    Command::new("zmpop", -4, F::WRITE, zmpop)
        .keys_fn(0, 0, 0, zmpop_keys)
        .doc(
            G,
            "Remove and return members with scores in a sorted set",
            "numkeys key [key ...] MIN|MAX [COUNT count]",
        ),
    Command::new(
        "bzpopmin",
        -3,
        F::WRITE | F::NOSCRIPT | F::BLOCKING | F::FAST,
        bzpopmin,
    )
    .keys(1, -2, 1)
    .doc(
        G,
        "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available",
        "key [key ...] timeout",
    ),
    Command::new(
        "bzpopmax",
        -3,
        F::WRITE | F::NOSCRIPT | F::BLOCKING | F::FAST,
        bzpopmax,
    )
    .keys(1, -2, 1)
    .doc(
        G,
        "Remove and return the member with the highest score from one or more sorted sets, or block until one is available",
        "key [key ...] timeout",
    ),
    Command::new("bzmpop", -5, F::WRITE | F::BLOCKING, bzmpop)
        .keys_fn(0, 0, 0, bzmpop_keys)
        .doc(
            G,
            "Remove and return members with scores in a sorted set or block until one is available",
            "timeout numkeys key [key ...] MIN|MAX [COUNT count]",
        ),
    Command::new("zrandmember", -2, RO, zrandmember)
        .keys(1, 1, 1)
        .doc(
            G,
            "Get one or multiple random elements from a sorted set",
            "key [count [WITHSCORES]]",
        ),
    Command::new("zunionstore", -4, F::WRITE | F::DENYOOM, st::zunionstore)
        .keys_fn(1, 1, 1, st::store_keys)
        .doc(
            G,
            "Add multiple sorted sets and store the resulting sorted set in a new key",
            "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]",
        ),
    Command::new("zinterstore", -4, F::WRITE | F::DENYOOM, st::zinterstore)
        .keys_fn(1, 1, 1, st::store_keys)
        .doc(
            G,
            "Intersect multiple sorted sets and store the resulting sorted set in a new key",
            "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]",
        ),
    Command::new("zdiffstore", -4, F::WRITE | F::DENYOOM, st::zdiffstore)
        .keys_fn(1, 1, 1, st::store_keys)
        .doc(
            G,
            "Subtract multiple sorted sets and store the resulting sorted set in a new key",
            "destination numkeys key [key ...]",
        ),
    Command::new("zunion", -3, RO, st::zunion)
        .keys_fn(0, 0, 0, st::numkeys_keys)
        .doc(
            G,
            "Add multiple sorted sets",
            "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]",
        ),
    Command::new("zinter", -3, RO, st::zinter)
        .keys_fn(0, 0, 0, st::numkeys_keys)
        .doc(
            G,
            "Intersect multiple sorted sets",
            "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]",
        ),
    Command::new("zintercard", -3, RO, st::zintercard)
        .keys_fn(0, 0, 0, st::numkeys_keys)
        .doc(
            G,
            "Intersect multiple sorted sets and return the cardinality of the result",
            "numkeys key [key ...] [LIMIT limit]",
        ),
    Command::new("zdiff", -3, RO, st::zdiff)
        .keys_fn(0, 0, 0, st::numkeys_keys)
        .doc(
            G,
            "Subtract multiple sorted sets",
            "numkeys key [key ...] [WITHSCORES]",
        ),
    Command::new("zscan", -3, RO, zscan).keys(1, 1, 1).doc(
        G,
        "Incrementally iterate sorted sets elements and associated scores",
        "key cursor [MATCH pattern] [COUNT count]",
    ),
];

pub fn reply(r: R<Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

pub fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> R<Option<&'a ZSet>> {
    ctx.db().get_zset(key)
}

/// The member/score reply entry: `[member, score]` in RESP3, flat in RESP2 (WITHSCORES).
pub fn push_scored(out: &mut Vec<Reply>, resp3: bool, m: Bytes, score: Option<f64>) {
    push_pair(out, resp3, Reply::Bulk(m), score.map(Reply::Double));
}

/// Deletes the key if the zset became empty and records the write.
pub fn after_write(ctx: &mut Ctx, key: &[u8]) {
    ctx.db().remove_if_empty(key);
    ctx.modified(key);
}

// ---- ZADD / ZINCRBY ----

pub fn zadd(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(zadd_generic(ctx, argv, false))
}

fn zincrby(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(zadd_generic(ctx, argv, true))
}

fn zadd_generic(ctx: &mut Ctx, argv: &[Bytes], mut incr: bool) -> R<Reply> {
    let (mut nx, mut xx, mut ch, mut gt, mut lt) = (false, false, false, false, false);
    let mut i = 2;
    while i < argv.len() {
        let a = &argv[i];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if is(a, "ch") {
            ch = true;
        } else if is(a, "incr") {
            incr = true;
        } else if is(a, "gt") {
            gt = true;
        } else if is(a, "lt") {
            lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let elements = argv.len() - i;
    if elements % 2 == 1 || elements == 0 {
        return syntax();
    }
    if nx && xx {
        return Err(Reply::err(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(Reply::err(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && elements > 2 {
        return Err(Reply::err(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let pairs: Vec<(f64, &Bytes)> = argv[i..]
        .chunks(2)
        .map(|p| args::float(&p[0]).map(|s| (s, &p[1])))
        .collect::<R<_>>()?;
    let key = &argv[1];
    let exists = ctx.db().get_zset(key)?.is_some();
    if !exists && xx {
        return Ok(if incr { Reply::Nil } else { Reply::Int(0) });
    }
    let Value::ZSet(z) = ctx
        .db()
        .get_or_insert_with(key, || Value::ZSet(Box::default()))
    else {
        unreachable!("type checked above")
    };
    let (mut added, mut updated, mut processed) = (0, 0, 0);
    let mut last = 0.0;
    let mut nan = false;
    for (score, member) in pairs {
        match z.score(member) {
            Some(cur) => {
                if nx {
                    continue;
                }
                let new = if incr { score + cur } else { score };
                if new.is_nan() {
                    nan = true;
                    break;
                }
                if (lt && new >= cur) || (gt && new <= cur) {
                    continue;
                }
                last = new;
                processed += 1;
                if new != cur {
                    z.insert(member.clone(), new);
                    updated += 1;
                }
            }
            None => {
                if xx {
                    continue;
                }
                z.insert(member.clone(), score);
                added += 1;
                processed += 1;
                last = score;
            }
        }
    }
    if added + updated > 0 {
        ctx.modified(key);
    }
    if added > 0 {
        ctx.signal_ready(key);
    }
    ctx.db().remove_if_empty(key);
    if nan {
        return Err(Reply::err("ERR resulting score is not a number (NaN)"));
    }
    Ok(if incr {
        if processed > 0 {
            Reply::Double(last)
        } else {
            Reply::Nil
        }
    } else {
        Reply::Int(if ch { added + updated } else { added })
    })
}

// ---- simple reads and ZREM ----

fn zrem(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let key = &argv[1];
    let z = match ctx.db().get_zset_mut(key) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(z)) => z,
    };
    let n = argv[2..].iter().filter(|m| z.remove(m)).count();
    if n > 0 {
        after_write(ctx, key);
    }
    Reply::Int(n as i64)
}

fn zcard(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read(ctx, &argv[1]).map(|z| Reply::Int(z.map_or(0, |z| z.len()) as i64)))
}

fn score_reply(s: Option<f64>) -> Reply {
    s.map(Reply::Double).unwrap_or(Reply::Nil)
}

fn zscore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read(ctx, &argv[1]).map(|z| score_reply(z.and_then(|z| z.score(&argv[2])))))
}

fn zmscore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read(ctx, &argv[1]).map(|z| {
        Reply::Array(
            argv[2..]
                .iter()
                .map(|m| score_reply(z.and_then(|z| z.score(m))))
                .collect(),
        )
    }))
}

fn rank(ctx: &mut Ctx, argv: &[Bytes], rev: bool) -> Reply {
    reply(
        read(ctx, &argv[1]).map(|z| match z.and_then(|z| z.rank(&argv[2], rev)) {
            Some(r) => Reply::Int(r as i64),
            None => Reply::Nil,
        }),
    )
}

fn zrank(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    rank(ctx, argv, false)
}

fn zrevrank(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    rank(ctx, argv, true)
}

fn zscan(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let cursor = super::args::scan_cursor(&argv[2])?;
        let limit = |n: &str| ctx.w.config.get_i64(n).max(0) as usize;
        let (max_len, max_value) = (
            limit("zset-max-listpack-entries"),
            limit("zset-max-listpack-value"),
        );
        let Some(z) = read(ctx, &argv[1])? else {
            return Ok(scan_reply(0, vec![]));
        };
        let sa = parse_scan_args(argv, 2, cursor)?;
        let small = z.len() <= max_len && z.members().all(|m| m.len() <= max_value);
        // A listpack lists its members in score order.
        let (members, next) = if small {
            (z.iter().map(|(m, _)| m).collect(), 0)
        } else {
            scan_page(z.members(), z.len(), false, &sa, 2)
        };
        let mut items = Vec::new();
        for m in members {
            if scan_matches(&sa.pattern, m) {
                let s = z.score(m).expect("member");
                items.push(Reply::Bulk(m.clone()));
                items.push(Reply::Bulk(args::bytes(&fmt_double(s))));
            }
        }
        Ok(scan_reply(next, items))
    })())
}

fn zrandmember(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let Some((l, with)) = rand_args(argv, "withscores")? else {
            let Some(z) = read(ctx, &argv[1])? else {
                return Ok(Reply::Nil);
            };
            let i = rand::thread_rng().gen_range(0..z.len());
            let (m, _) = z.iter().nth(i).expect("in range");
            return Ok(Reply::Bulk(m.clone()));
        };
        let resp3 = ctx.resp3;
        let Some(z) = read(ctx, &argv[1])? else {
            return Ok(Reply::Array(vec![]));
        };
        if l == 0 {
            return Ok(Reply::Array(vec![]));
        }
        let all: Vec<(&Bytes, f64)> = z.iter().collect();
        let mut out = Vec::new();
        let mut positions = rand_positions(all.len(), l);
        if l > 0 && l as usize >= all.len() {
            positions.reverse(); // the whole set comes back as ZREVRANGE 0 -1 would
        }
        for i in positions {
            let (m, s) = all[i];
            push_scored(&mut out, resp3, m.clone(), with.then_some(s));
        }
        Ok(Reply::Array(out))
    })())
}

// ---- pops ----

/// How a pop reply is shaped (Redis's `genericZpopCommand` flags).
#[derive(Clone, Copy)]
struct PopShape {
    emit_key: bool,
    nested: bool,
    nil_when_empty: bool,
}

/// Pops up to `count` elements from the first non-empty zset among `keys`. `count` None is
/// the plain single pop. WRONGTYPE stops at the first key of another type.
fn pop_generic(
    ctx: &mut Ctx,
    keys: &[Bytes],
    max: bool,
    count: Option<i64>,
    shape: PopShape,
) -> R<Reply> {
    let mut found = None;
    for k in keys {
        if ctx.db().get_zset(k)?.is_some() {
            found = Some(k);
            break;
        }
    }
    let Some(key) = found else {
        return Ok(if shape.nil_when_empty {
            Reply::NilArray
        } else {
            Reply::Array(vec![])
        });
    };
    if count == Some(0) {
        return Ok(Reply::Array(vec![]));
    }
    let count = count.unwrap_or(1) as usize;
    let z = ctx.db().get_zset_mut(key)?.expect("found above");
    let mut popped = Vec::new();
    while popped.len() < count {
        match z.pop(max) {
            Some(e) => popped.push(e),
            None => break,
        }
    }
    after_write(ctx, key);
    let mut items = Vec::new();
    for (m, s) in popped {
        if shape.nested {
            items.push(Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]));
        } else {
            items.push(Reply::Bulk(m));
            items.push(Reply::Double(s));
        }
    }
    Ok(match (shape.emit_key, shape.nested) {
        (false, _) => Reply::Array(items),
        (true, false) => {
            items.insert(0, Reply::Bulk(key.clone()));
            Reply::Array(items)
        }
        (true, true) => Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(items)]),
    })
}

fn zpop(ctx: &mut Ctx, argv: &[Bytes], max: bool) -> Reply {
    reply((|| {
        if argv.len() > 3 {
            return syntax();
        }
        let count = match argv.get(2) {
            Some(a) => Some(
                parse_i64(a)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| Reply::err("ERR value is out of range, must be positive"))?,
            ),
            None => None,
        };
        let shape = PopShape {
            emit_key: false,
            nested: ctx.resp3 && count.is_some(),
            nil_when_empty: false,
        };
        pop_generic(ctx, &argv[1..2], max, count, shape)
    })())
}

fn zpopmin(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    zpop(ctx, argv, false)
}

fn zpopmax(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    zpop(ctx, argv, true)
}

/// Serves a blocking pop now if any key has elements, else blocks (or answers nil when the
/// client may not block).
fn blocking_pop(
    ctx: &mut Ctx,
    keys: &[Bytes],
    timeout: &[u8],
    max: bool,
    count: Option<i64>,
    shape: PopShape,
) -> R<Reply> {
    let deadline = timeout_deadline(timeout, ctx.now)?;
    // Re-run for a client already blocked because a key was signalled: Redis serves it from
    // that key only (`serveClientsBlockedOnSortedSetKey`), if it holds a zset, whatever the
    // other keys hold meanwhile.
    if let Some(k) = ctx.serving_key().filter(|k| keys.contains(k)) {
        if let Ok(Some(_)) = ctx.db().get_zset(&k) {
            return pop_generic(ctx, std::slice::from_ref(&k), max, count, shape);
        }
        return Ok(ctx.block_on(keys.to_vec(), deadline, Reply::NilArray));
    }
    // A re-run for another reason (SWAPDB, a key moved in): a key of another type is passed
    // over instead of answering WRONGTYPE.
    let rerun = ctx
        .w
        .clients
        .get(&ctx.client)
        .is_some_and(|c| c.blocked.is_some());
    for k in keys {
        match ctx.db().get_zset(k) {
            Ok(Some(_)) => return pop_generic(ctx, std::slice::from_ref(k), max, count, shape),
            Ok(None) => {}
            Err(_) if rerun => {}
            Err(e) => return Err(e),
        }
    }
    if !ctx.may_block {
        return Ok(Reply::NilArray);
    }
    Ok(ctx.block_on(keys.to_vec(), deadline, Reply::NilArray))
}

fn bzpop(ctx: &mut Ctx, argv: &[Bytes], max: bool) -> Reply {
    let shape = PopShape {
        emit_key: true,
        nested: false,
        nil_when_empty: false,
    };
    let n = argv.len();
    reply(blocking_pop(
        ctx,
        &argv[1..n - 1],
        &argv[n - 1],
        max,
        None,
        shape,
    ))
}

fn bzpopmin(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    bzpop(ctx, argv, false)
}

fn bzpopmax(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    bzpop(ctx, argv, true)
}

/// ZMPOP / BZMPOP arguments from `numkeys_at`: (keys, max, count).
fn mpop_args(argv: &[Bytes], numkeys_at: usize) -> R<(&[Bytes], bool, i64)> {
    let numkeys = parse_i64(&argv[numkeys_at])
        .filter(|n| *n >= 1)
        .ok_or_else(|| Reply::err("ERR numkeys should be greater than 0"))?;
    let where_at = (numkeys_at as u64).saturating_add(numkeys as u64) + 1;
    if where_at >= argv.len() as u64 {
        return syntax();
    }
    let where_at = where_at as usize;
    let max = if is(&argv[where_at], "min") {
        false
    } else if is(&argv[where_at], "max") {
        true
    } else {
        return syntax();
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < argv.len() {
        if count.is_none() && is(&argv[j], "count") && j + 1 < argv.len() {
            j += 1;
            let c = parse_i64(&argv[j])
                .filter(|n| *n >= 1)
                .ok_or_else(|| Reply::err("ERR count should be greater than 0"))?;
            count = Some(c);
        } else {
            return syntax();
        }
        j += 1;
    }
    Ok((&argv[numkeys_at + 1..where_at], max, count.unwrap_or(1)))
}

const MPOP_SHAPE: PopShape = PopShape {
    emit_key: true,
    nested: true,
    nil_when_empty: true,
};

fn zmpop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let (keys, max, count) = mpop_args(argv, 1)?;
        pop_generic(ctx, keys, max, Some(count), MPOP_SHAPE)
    })())
}

fn bzmpop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let (keys, max, count) = mpop_args(argv, 2)?;
        blocking_pop(ctx, keys, &argv[1], max, Some(count), MPOP_SHAPE)
    })())
}

fn numkeys_span(argv: &[Bytes], at: usize) -> Vec<usize> {
    let n = argv
        .get(at)
        .and_then(|a| parse_i64(a))
        .filter(|n| *n > 0)
        .unwrap_or(0) as usize;
    (at + 1..argv.len().min(at + 1 + n)).collect()
}

fn zmpop_keys(argv: &[Bytes]) -> Vec<usize> {
    numkeys_span(argv, 1)
}

fn bzmpop_keys(argv: &[Bytes]) -> Vec<usize> {
    numkeys_span(argv, 2)
}

pub fn numkeys_keys_at(argv: &[Bytes], at: usize) -> Vec<usize> {
    numkeys_span(argv, at)
}
