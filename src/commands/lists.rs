//! List commands: LPUSH, RPUSH, LPOP, LRANGE, LPOS, LMOVE, LMPOP, ... (blocking forms are in
//! `lists_blocking.rs`). Follows Redis 7.0's `t_list.c`: argument checks in its order, empty
//! lists are deleted, every push signals blocked clients.

use bytes::Bytes;

use super::args::{int, is, wrong_args, NO_SUCH_KEY, OUT_OF_RANGE, R, SYNTAX};
use super::lists_blocking as lb;
use super::{Command, Ctx, Flags as F};
use crate::db::Value;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[
    Command::new("lpush", -3, F::WRITE | F::DENYOOM | F::FAST, lpush)
        .keys(1, 1, 1)
        .doc("list", "Prepend one or multiple elements to a list", "key element [element ...]"),
    Command::new("rpush", -3, F::WRITE | F::DENYOOM | F::FAST, rpush)
        .keys(1, 1, 1)
        .doc("list", "Append one or multiple elements to a list", "key element [element ...]"),
    Command::new("lpushx", -3, F::WRITE | F::DENYOOM | F::FAST, lpushx)
        .keys(1, 1, 1)
        .doc(
            "list",
            "Prepend an element to a list, only if the list exists",
            "key element [element ...]",
        ),
    Command::new("rpushx", -3, F::WRITE | F::DENYOOM | F::FAST, rpushx)
        .keys(1, 1, 1)
        .doc(
            "list",
            "Append an element to a list, only if the list exists",
            "key element [element ...]",
        ),
    Command::new("lpop", -2, F::WRITE | F::FAST, lpop)
        .keys(1, 1, 1)
        .doc("list", "Remove and get the first elements in a list", "key [count]"),
    Command::new("rpop", -2, F::WRITE | F::FAST, rpop)
        .keys(1, 1, 1)
        .doc("list", "Remove and get the last elements in a list", "key [count]"),
    Command::new("llen", 2, F::READONLY | F::FAST, llen)
        .keys(1, 1, 1)
        .doc("list", "Get the length of a list", "key"),
    Command::new("lrange", 4, F::READONLY, lrange)
        .keys(1, 1, 1)
        .doc("list", "Get a range of elements from a list", "key start stop"),
    Command::new("lindex", 3, F::READONLY, lindex)
        .keys(1, 1, 1)
        .doc("list", "Get an element from a list by its index", "key index"),
    Command::new("lset", 4, F::WRITE | F::DENYOOM, lset)
        .keys(1, 1, 1)
        .doc("list", "Set the value of an element in a list by its index", "key index element"),
    Command::new("lrem", 4, F::WRITE, lrem)
        .keys(1, 1, 1)
        .doc("list", "Remove elements from a list", "key count element"),
    Command::new("ltrim", 4, F::WRITE, ltrim)
        .keys(1, 1, 1)
        .doc("list", "Trim a list to the specified range", "key start stop"),
    Command::new("linsert", 5, F::WRITE | F::DENYOOM, linsert)
        .keys(1, 1, 1)
        .doc(
            "list",
            "Insert an element before or after another element in a list",
            "key BEFORE|AFTER pivot element",
        ),
    Command::new("lpos", -3, F::READONLY, lpos).keys(1, 1, 1).doc(
        "list",
        "Return the index of matching elements on a list",
        "key element [RANK rank] [COUNT num-matches] [MAXLEN len]",
    ),
    Command::new("lmove", 5, F::WRITE | F::DENYOOM, lmove)
        .keys(1, 2, 1)
        .doc(
            "list",
            "Pop an element from a list, push it to another list and return it",
            "source destination LEFT|RIGHT LEFT|RIGHT",
        ),
    Command::new("rpoplpush", 3, F::WRITE | F::DENYOOM, rpoplpush)
        .keys(1, 2, 1)
        .doc(
            "list",
            "Remove the last element in a list, prepend it to another list and return it",
            "source destination",
        ),
    Command::new("lmpop", -4, F::WRITE, lmpop)
        .keys_fn(0, 0, 0, lb::lmpop_keys)
        .doc(
            "list",
            "Pop elements from a list",
            "numkeys key [key ...] LEFT|RIGHT [COUNT count]",
        ),
    Command::new("blpop", -3, F::WRITE | F::NOSCRIPT | F::BLOCKING, lb::blpop)
        .keys(1, -2, 1)
        .doc(
            "list",
            "Remove and get the first element in a list, or block until one is available",
            "key [key ...] timeout",
        ),
    Command::new("brpop", -3, F::WRITE | F::NOSCRIPT | F::BLOCKING, lb::brpop)
        .keys(1, -2, 1)
        .doc(
            "list",
            "Remove and get the last element in a list, or block until one is available",
            "key [key ...] timeout",
        ),
    Command::new(
        "blmove",
        6,
        F::WRITE | F::DENYOOM | F::NOSCRIPT | F::BLOCKING,
        lb::blmove,
    )
    .keys(1, 2, 1)
    .doc(
        "list",
        "Pop an element from a list, push it to another list and return it; or block until one is available",
        "source destination LEFT|RIGHT LEFT|RIGHT timeout",
    ),
    Command::new(
        "brpoplpush",
        4,
        F::WRITE | F::DENYOOM | F::NOSCRIPT | F::BLOCKING,
        lb::brpoplpush,
    )
    .keys(1, 2, 1)
    .doc(
        "list",
        "Pop an element from a list, push it to another list and return it; or block until one is available",
        "source destination timeout",
    ),
    Command::new("blmpop", -5, F::WRITE | F::BLOCKING, lb::blmpop)
        .keys_fn(0, 0, 0, lb::lmpop_keys)
        .doc(
            "list",
            "Pop elements from a list, or block until one is available",
            "timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]",
        ),
];

pub(crate) fn reply(r: R<Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// LEFT -> true (head), RIGHT -> false (tail); anything else is a syntax error.
pub(crate) fn side(arg: &[u8]) -> R<bool> {
    if is(arg, "left") {
        Ok(true)
    } else if is(arg, "right") {
        Ok(false)
    } else {
        Err(Reply::err(SYNTAX))
    }
}

/// Pushes values onto a list, creating it unless `only_existing`; returns the new length,
/// or None if the key was absent and `only_existing`.
pub(crate) fn push_values(
    ctx: &mut Ctx,
    key: &Bytes,
    values: &[Bytes],
    left: bool,
    only_existing: bool,
) -> R<Option<usize>> {
    let db = ctx.db();
    if db.get_list_mut(key)?.is_none() {
        if only_existing {
            return Ok(None);
        }
        db.set(key.clone(), Value::List(Box::new(crate::db::List::new())));
    }
    let list = db.get_list_mut(key)?.expect("list exists");
    for v in values {
        if left {
            list.push_front(v.clone());
        } else {
            list.push_back(v.clone());
        }
    }
    let n = list.len();
    ctx.modified(key);
    ctx.signal_ready(key);
    Ok(Some(n))
}

fn push(ctx: &mut Ctx, argv: &[Bytes], left: bool, only_existing: bool) -> Reply {
    match push_values(ctx, &argv[1], &argv[2..], left, only_existing) {
        Ok(n) => Reply::Int(n.unwrap_or(0) as i64),
        Err(e) => e,
    }
}

fn lpush(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    push(ctx, argv, true, false)
}

fn rpush(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    push(ctx, argv, false, false)
}

fn lpushx(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    push(ctx, argv, true, true)
}

fn rpushx(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    push(ctx, argv, false, true)
}

/// Pops up to `count` elements from a list that exists and is non-empty, deleting it when it
/// becomes empty.
pub(crate) fn pop_values(ctx: &mut Ctx, key: &Bytes, left: bool, count: usize) -> Vec<Bytes> {
    let db = ctx.db();
    let mut out = Vec::new();
    if let Ok(Some(list)) = db.get_list_mut(key) {
        while out.len() < count {
            let v = if left {
                list.pop_front()
            } else {
                list.pop_back()
            };
            match v {
                Some(v) => out.push(v),
                None => break,
            }
        }
    }
    db.remove_if_empty(key);
    ctx.modified(key);
    out
}

fn pop(ctx: &mut Ctx, argv: &[Bytes], left: bool) -> R<Reply> {
    if argv.len() > 3 {
        return Err(wrong_args(if left { "lpop" } else { "rpop" }));
    }
    let count = match argv.get(2) {
        Some(a) => Some(non_negative(a, POSITIVE)?),
        None => None,
    };
    let key = &argv[1];
    let len = match ctx.db().get_list(key)? {
        None => {
            return Ok(if count.is_some() {
                Reply::NilArray
            } else {
                Reply::Nil
            })
        }
        Some(l) => l.len(),
    };
    match count {
        Some(0) => Ok(Reply::Array(vec![])),
        None if len == 0 => Ok(Reply::Nil),
        None => Ok(Reply::bulk_opt(
            pop_values(ctx, key, left, 1).into_iter().next(),
        )),
        Some(n) => Ok(Reply::bulks(pop_values(ctx, key, left, n as usize))),
    }
}

fn lpop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(pop(ctx, argv, true))
}

fn rpop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(pop(ctx, argv, false))
}

fn llen(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    match ctx.db().get_list(&argv[1]) {
        Ok(l) => Reply::Int(l.map_or(0, |l| l.len()) as i64),
        Err(e) => e,
    }
}

fn lrange(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let start = int(&argv[2])?;
        let end = int(&argv[3])?;
        let Some(list) = ctx.db().get_list(&argv[1])? else {
            return Ok(Reply::Array(vec![]));
        };
        Ok(match super::args::clamp_range(start, end, list.len()) {
            None => Reply::Array(vec![]),
            Some((s, e)) => Reply::bulks(list.range(s..=e).cloned()),
        })
    })())
}

/// A list index (negative counts from the tail) as a position, if it is inside the list.
fn position(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (i >= 0 && i < len as i64).then_some(i as usize)
}

fn lindex(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let Some(list) = ctx.db().get_list(&argv[1])? else {
            return Ok(Reply::Nil);
        };
        let len = list.len();
        let index = int(&argv[2])?;
        let list = ctx.db().get_list(&argv[1])?.expect("list");
        Ok(Reply::bulk_opt(
            position(index, len).map(|i| list[i].clone()),
        ))
    })())
}

fn lset(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let key = &argv[1];
        if ctx.db().get_list(key)?.is_none() {
            return Err(Reply::err(NO_SUCH_KEY));
        }
        let index = int(&argv[2])?;
        let list = ctx.db().get_list_mut(key)?.expect("list");
        let i = position(index, list.len()).ok_or_else(|| Reply::err(OUT_OF_RANGE))?;
        list.set(i, argv[3].clone());
        ctx.modified(key);
        Ok(Reply::ok())
    })())
}

fn lrem(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let count = int(&argv[2])?;
        let key = &argv[1];
        let elem = &argv[3];
        let Some(list) = ctx.db().get_list_mut(key)? else {
            return Ok(Reply::Int(0));
        };
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs().min(usize::MAX as u64) as usize
        };
        // One pass: the positions of the first `limit` matches from the chosen end.
        let mut pos = Vec::new();
        let order: Box<dyn Iterator<Item = usize>> = if count >= 0 {
            Box::new(0..list.len())
        } else {
            Box::new((0..list.len()).rev())
        };
        for i in order {
            if pos.len() >= limit {
                break;
            }
            if list[i] == elem {
                pos.push(i);
            }
        }
        let removed = pos.len();
        if count < 0 {
            pos.reverse();
        }
        list.remove_at(&pos);
        if removed > 0 {
            ctx.db().remove_if_empty(key);
            ctx.modified(key);
        }
        Ok(Reply::Int(removed as i64))
    })())
}

fn ltrim(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let start = int(&argv[2])?;
        let end = int(&argv[3])?;
        let key = &argv[1];
        let Some(list) = ctx.db().get_list_mut(key)? else {
            return Ok(Reply::ok());
        };
        match super::args::clamp_range(start, end, list.len()) {
            None => list.clear(),
            Some((s, e)) => {
                list.trim(s, e);
            }
        }
        ctx.db().remove_if_empty(key);
        ctx.modified(key);
        Ok(Reply::ok())
    })())
}

fn linsert(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let after = if is(&argv[2], "after") {
            true
        } else if is(&argv[2], "before") {
            false
        } else {
            return Err(Reply::err(SYNTAX));
        };
        let key = &argv[1];
        let Some(list) = ctx.db().get_list_mut(key)? else {
            return Ok(Reply::Int(0));
        };
        let Some(i) = list.iter().position(|v| *v == argv[3]) else {
            return Ok(Reply::Int(-1));
        };
        list.insert(if after { i + 1 } else { i }, argv[4].clone());
        let n = list.len();
        ctx.modified(key);
        Ok(Reply::Int(n as i64))
    })())
}

fn lpos(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let mut rank: i64 = 1;
        let mut count: Option<i64> = None;
        let mut maxlen: i64 = 0;
        let mut j = 3;
        while j < argv.len() {
            let more = j + 1 < argv.len();
            let opt = &argv[j];
            if is(opt, "rank") && more {
                j += 1;
                rank = int(&argv[j])?;
                if rank == 0 {
                    return Err(Reply::err(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                    ));
                }
            } else if is(opt, "count") && more {
                j += 1;
                count = Some(non_negative(&argv[j], "ERR COUNT can't be negative")?);
            } else if is(opt, "maxlen") && more {
                j += 1;
                maxlen = non_negative(&argv[j], "ERR MAXLEN can't be negative")?;
            } else {
                return Err(Reply::err(SYNTAX));
            }
            j += 1;
        }
        let Some(list) = ctx.db().get_list(&argv[1])? else {
            return Ok(if count.is_some() {
                Reply::Array(vec![])
            } else {
                Reply::Nil
            });
        };
        let elem = &argv[2];
        let want = match count {
            None => 1,
            Some(0) => usize::MAX,
            Some(n) => n as usize,
        };
        // Redis negates the rank in a C long: LONG_MIN stays negative and so skips nothing.
        let mut skip = if rank == i64::MIN {
            0
        } else {
            rank.unsigned_abs() - 1
        };
        let limit = if maxlen == 0 {
            usize::MAX
        } else {
            maxlen as usize
        };
        let len = list.len();
        let mut found = Vec::new();
        for step in 0..len.min(limit) {
            let i = if rank > 0 { step } else { len - 1 - step };
            if list[i] == elem {
                if skip > 0 {
                    skip -= 1;
                } else {
                    found.push(i as i64);
                    if found.len() >= want {
                        break;
                    }
                }
            }
        }
        Ok(match count {
            Some(_) => Reply::Array(found.into_iter().map(Reply::Int).collect()),
            None => found.first().map_or(Reply::Nil, |i| Reply::Int(*i)),
        })
    })())
}

/// Redis's message when `getPositiveLongFromObjectOrReply` has none of its own.
pub(crate) const POSITIVE: &str = "ERR value is out of range, must be positive";

/// `getPositiveLongFromObjectOrReply`: one message for both non-integers and negatives.
pub(crate) fn non_negative(arg: &[u8], msg: &str) -> R<i64> {
    match int(arg) {
        Ok(v) if v >= 0 => Ok(v),
        _ => Err(Reply::err(msg)),
    }
}

/// LMOVE's work once the source is known to be a non-empty list and the destination is not
/// another type: pops, pushes, and returns the element.
pub(crate) fn move_element(
    ctx: &mut Ctx,
    src: &Bytes,
    dst: &Bytes,
    from_left: bool,
    to_left: bool,
) -> R<Option<Bytes>> {
    let db = ctx.db();
    match db.get_list(src)? {
        None => return Ok(None),
        Some(l) if l.is_empty() => return Ok(None),
        Some(_) => {}
    }
    db.get_list(dst)?;
    let list = db.get_list_mut(src)?.expect("source");
    let v = if from_left {
        list.pop_front()
    } else {
        list.pop_back()
    }
    .expect("non-empty");
    if src == dst {
        if to_left {
            list.push_front(v.clone());
        } else {
            list.push_back(v.clone());
        }
        ctx.modified(src);
        ctx.signal_ready(src);
        return Ok(Some(v));
    }
    db.remove_if_empty(src);
    ctx.modified(src);
    push_values(ctx, dst, std::slice::from_ref(&v), to_left, false)?;
    Ok(Some(v))
}

fn lmove(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let from = side(&argv[3])?;
        let to = side(&argv[4])?;
        Ok(Reply::bulk_opt(move_element(
            ctx, &argv[1], &argv[2], from, to,
        )?))
    })())
}

fn rpoplpush(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(move_element(ctx, &argv[1], &argv[2], false, true).map(Reply::bulk_opt))
}

fn lmpop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    lb::mpop(ctx, argv, 1, false)
}
