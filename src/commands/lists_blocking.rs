//! Blocking list commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) and LMPOP, which shares
//! BLMPOP's parsing.
//!
//! A blocking handler first tries to serve at once, keys in argument order; if nothing is there
//! and the client may block, it asks the core to block it (`ctx.block_on`). When one of its keys
//! receives data the core re-runs the same command, oldest waiter first; finding nothing again,
//! the command asks to block again and the client keeps its place.

use bytes::Bytes;

use super::args::{int, timeout_deadline, R, SYNTAX};
use super::lists::{move_element, pop_values, reply, side};
use super::Ctx;
use crate::protocol::Reply;

/// Key positions of LMPOP (numkeys at 1) and BLMPOP (numkeys at 2).
pub fn lmpop_keys(argv: &[Bytes]) -> Vec<usize> {
    let at = if argv[0].eq_ignore_ascii_case(b"blmpop") {
        2
    } else {
        1
    };
    let n = argv.get(at).and_then(|a| int(a).ok()).unwrap_or(0).max(0) as usize;
    (at + 1..argv.len().min(at + 1 + n)).collect()
}

/// The key to pop from: the first key (in order) holding a non-empty list, WRONGTYPE if an
/// earlier key is another type. When serving a blocked client, Redis looks only at the key
/// that became ready (so other keys may meanwhile hold anything).
fn first_ready(ctx: &mut Ctx, keys: &[Bytes]) -> R<Option<Bytes>> {
    if let Some(key) = ctx.serving_key().filter(|k| keys.contains(k)) {
        return Ok(match ctx.db().get_list(&key) {
            Ok(Some(l)) if !l.is_empty() => Some(key),
            _ => None,
        });
    }
    for key in keys {
        if let Some(l) = ctx.db().get_list(key)? {
            if !l.is_empty() {
                return Ok(Some(key.clone()));
            }
        }
    }
    Ok(None)
}

fn bpop(ctx: &mut Ctx, argv: &[Bytes], left: bool) -> R<Reply> {
    let deadline = timeout_deadline(&argv[argv.len() - 1], ctx.now)?;
    let keys = &argv[1..argv.len() - 1];
    if let Some(key) = first_ready(ctx, keys)? {
        let v = pop_values(ctx, &key, left, 1);
        return Ok(Reply::Array(vec![
            Reply::Bulk(key),
            Reply::Bulk(v.into_iter().next().expect("non-empty")),
        ]));
    }
    if !ctx.may_block {
        return Ok(Reply::NilArray);
    }
    Ok(ctx.block_on(keys.to_vec(), deadline, Reply::NilArray))
}

pub fn blpop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(bpop(ctx, argv, true))
}

pub fn brpop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(bpop(ctx, argv, false))
}

fn bmove(ctx: &mut Ctx, argv: &[Bytes], from: bool, to: bool, deadline: Option<i64>) -> R<Reply> {
    let (src, dst) = (&argv[1], &argv[2]);
    if let Some(v) = move_element(ctx, src, dst, from, to)? {
        return Ok(Reply::Bulk(v));
    }
    if !ctx.may_block {
        return Ok(Reply::Nil);
    }
    Ok(ctx.block_on(vec![src.clone()], deadline, Reply::NilArray))
}

pub fn blmove(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let from = side(&argv[3])?;
        let to = side(&argv[4])?;
        let deadline = timeout_deadline(&argv[5], ctx.now)?;
        bmove(ctx, argv, from, to, deadline)
    })())
}

pub fn brpoplpush(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let deadline = timeout_deadline(&argv[3], ctx.now)?;
        bmove(ctx, argv, false, true, deadline)
    })())
}

/// `getRangeLongFromObjectOrReply(.., 1, LONG_MAX, msg)`.
fn at_least_one(arg: &[u8], msg: &str) -> R<i64> {
    match int(arg) {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(Reply::err(msg)),
    }
}

/// LMPOP (`numkeys_at` 1) and BLMPOP (`numkeys_at` 2, `blocking`).
pub(crate) fn mpop(ctx: &mut Ctx, argv: &[Bytes], numkeys_at: usize, blocking: bool) -> Reply {
    reply((|| {
        let numkeys = at_least_one(&argv[numkeys_at], "ERR numkeys should be greater than 0")?;
        let where_at = (numkeys_at as u64).saturating_add(numkeys as u64) + 1;
        if where_at >= argv.len() as u64 {
            return Err(Reply::err(SYNTAX));
        }
        let where_at = where_at as usize;
        let left = side(&argv[where_at])?;
        let mut count: Option<i64> = None;
        let mut j = where_at + 1;
        while j < argv.len() {
            if count.is_none() && super::args::is(&argv[j], "count") && j + 1 < argv.len() {
                j += 1;
                count = Some(at_least_one(
                    &argv[j],
                    "ERR count should be greater than 0",
                )?);
            } else {
                return Err(Reply::err(SYNTAX));
            }
            j += 1;
        }
        let count = count.unwrap_or(1) as usize;
        let deadline = if blocking {
            timeout_deadline(&argv[1], ctx.now)?
        } else {
            None
        };
        let keys = &argv[numkeys_at + 1..where_at];
        if let Some(key) = first_ready(ctx, keys)? {
            let v = pop_values(ctx, &key, left, count);
            return Ok(Reply::Array(vec![Reply::Bulk(key), Reply::bulks(v)]));
        }
        if !blocking || !ctx.may_block {
            return Ok(Reply::NilArray);
        }
        Ok(ctx.block_on(keys.to_vec(), deadline, Reply::NilArray))
    })())
}

pub fn blmpop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    mpop(ctx, argv, 2, true)
}
