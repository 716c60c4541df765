//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST (Redis 7.0.15's
//! `hyperloglog.c`). The values are plain strings; `db/hyperloglog.rs` holds their format.

use bytes::Bytes;

use super::args::R;
use super::{Command, Ctx, Flags as F};
use crate::db::hyperloglog::{self as hll, Hll, Raw, REGISTERS};
use crate::db::Value;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[
    Command::new("pfadd", -2, F::WRITE | F::DENYOOM | F::FAST, pfadd)
        .keys(1, 1, 1)
        .doc(
            "hyperloglog",
            "Adds the specified elements to the specified HyperLogLog.",
            "key [element [element ...]]",
        ),
    // Redis flags it read-only, but a stale cached cardinality is written back.
    Command::new("pfcount", -2, F::READONLY | F::MAY_REPLICATE, pfcount)
        .keys(1, -1, 1)
        .doc(
            "hyperloglog",
            "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
            "key [key ...]",
        ),
    Command::new("pfmerge", -2, F::WRITE | F::DENYOOM, pfmerge)
        .keys(1, -1, 1)
        .doc(
            "hyperloglog",
            "Merge N different HyperLogLogs into a single one.",
            "destkey sourcekey [sourcekey ...]",
        ),
    Command::new("pfdebug", 3, F::WRITE | F::DENYOOM | F::ADMIN, pfdebug)
        .keys(2, 2, 1)
        .doc(
            "hyperloglog",
            "Internal commands for debugging HyperLogLog values",
            "subcommand key",
        ),
    Command::new("pfselftest", 1, F::ADMIN, pfselftest).doc(
        "hyperloglog",
        "An internal command for testing HyperLogLog values",
        "",
    ),
];

const INVALID_HLL: &str = "INVALIDOBJ Corrupted HLL object detected";
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

fn corrupt() -> Reply {
    Reply::err(INVALID_HLL)
}

/// The value at `key` if it is a HyperLogLog (`isHLLObjectOrReply`); None if missing.
fn lookup(ctx: &mut Ctx, key: &[u8]) -> R<Option<Bytes>> {
    match ctx.db().get_str(key)? {
        None => Ok(None),
        Some(s) if hll::is_valid(s) => Ok(Some(s.clone())),
        Some(_) => Err(Reply::err(NOT_HLL)),
    }
}

/// Edits the string at `key` (which exists) in place, keeping its TTL.
fn edit<T>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(&mut Hll) -> T) -> T {
    let cur = match ctx.db().get_str_mut(key) {
        Ok(Some(cur)) => cur,
        _ => unreachable!("edit of a key checked to hold a string"),
    };
    let mut h = Hll::new(Vec::from(std::mem::take(cur)));
    let out = f(&mut h);
    *cur = Bytes::from(h.bytes);
    out
}

/// The `hll-sparse-max-bytes` parameter.
fn sparse_max(ctx: &Ctx) -> usize {
    ctx.w.config.get_i64("hll-sparse-max-bytes").max(0) as usize
}

fn pfadd(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let key = &argv[1];
    let existed = match lookup(ctx, key) {
        Err(e) => return e,
        Ok(v) => v.is_some(),
    };
    if !existed {
        ctx.db()
            .set(key.clone(), Value::Str(Bytes::from(hll::new_sparse())));
    }
    let max = sparse_max(ctx);
    let mut updated = usize::from(!existed);
    let result = edit(ctx, key, |v| {
        for ele in &argv[2..] {
            if v.add(ele, max)? {
                updated += 1;
            }
        }
        if updated > 0 {
            hll::invalidate(&mut v.bytes);
        }
        Ok::<(), hll::Corrupt>(())
    });
    // Registers raised before a corrupted part was found stay raised, as in Redis.
    if updated > 0 {
        ctx.modified(key);
    }
    match result {
        Err(_) => corrupt(),
        Ok(()) => Reply::Int(i64::from(updated > 0)),
    }
}

fn pfcount(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 2 {
        return pfcount_union(ctx, &argv[1..]);
    }
    let key = &argv[1];
    let s = match lookup(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::Int(0),
        Ok(Some(s)) => s,
    };
    if let Some(card) = hll::cached(&s) {
        return Reply::Int(card as i64);
    }
    let Ok(card) = hll::count(&s) else {
        return corrupt();
    };
    edit(ctx, key, |v| hll::set_cached(&mut v.bytes, card));
    ctx.modified(key);
    // A read-only command that wrote: its reply waits for the write set like a write's.
    ctx.w.persist_wrote();
    Reply::Int(card as i64)
}

/// PFCOUNT of several keys: the cardinality of their union, nothing written.
fn pfcount_union(ctx: &mut Ctx, keys: &[Bytes]) -> Reply {
    let mut max: Box<Raw> = Box::new([0; REGISTERS]);
    match merge_keys(ctx, keys, &mut max) {
        Err(e) => e,
        Ok(_) => Reply::Int(hll::count_raw(&max) as i64),
    }
}

/// Merges the HyperLogLogs at `keys` (missing ones count as empty) into `max`; true if one
/// of them is dense.
fn merge_keys(ctx: &mut Ctx, keys: &[Bytes], max: &mut Raw) -> R<bool> {
    let mut any_dense = false;
    for key in keys {
        let Some(s) = lookup(ctx, key)? else {
            continue;
        };
        any_dense |= hll::encoding(&s) == hll::DENSE;
        hll::merge(max, &s).map_err(|_| corrupt())?;
    }
    Ok(any_dense)
}

fn pfmerge(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut max: Box<Raw> = Box::new([0; REGISTERS]);
    // The destination is merged too: its registers are part of the result.
    let use_dense = match merge_keys(ctx, &argv[1..], &mut max) {
        Err(e) => return e,
        Ok(d) => d,
    };
    let key = &argv[1];
    if !ctx.db().exists(key) {
        ctx.db()
            .set(key.clone(), Value::Str(Bytes::from(hll::new_sparse())));
    }
    let sparse_max = sparse_max(ctx);
    let result = edit(ctx, key, |v| {
        if use_dense {
            v.to_dense()?;
        }
        for (i, &m) in max.iter().enumerate() {
            if m != 0 {
                v.raise(i, m, sparse_max);
            }
        }
        hll::invalidate(&mut v.bytes);
        Ok::<(), hll::Corrupt>(())
    });
    if result.is_err() {
        return corrupt();
    }
    ctx.modified(key);
    Reply::ok()
}

fn pfdebug(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let key = &argv[2];
    let s = match lookup(ctx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::err("ERR The specified key does not exist"),
        Ok(Some(s)) => s,
    };
    let sub = argv[1].to_ascii_lowercase();
    match &sub[..] {
        b"getreg" => {
            if let Err(e) = to_dense(ctx, key, &s) {
                return e;
            }
            let s = ctx.db().get_str(key).ok().flatten().cloned().unwrap_or(s);
            Reply::Array(
                hll::dense_registers(&s)
                    .into_iter()
                    .map(|r| Reply::Int(r as i64))
                    .collect(),
            )
        }
        b"decode" => {
            if hll::encoding(&s) != hll::SPARSE {
                return Reply::err("ERR HLL encoding is not sparse");
            }
            Reply::bulk(hll::decode(&s).into_bytes())
        }
        b"encoding" => Reply::status(if hll::encoding(&s) == hll::DENSE {
            "dense"
        } else {
            "sparse"
        }),
        b"todense" => match to_dense(ctx, key, &s) {
            Err(e) => e,
            Ok(converted) => Reply::Int(i64::from(converted)),
        },
        _ => Reply::err(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(&argv[1])
        )),
    }
}

/// Converts a sparse value to dense in place; true if it was sparse.
fn to_dense(ctx: &mut Ctx, key: &Bytes, s: &[u8]) -> R<bool> {
    if hll::encoding(s) != hll::SPARSE {
        return Ok(false);
    }
    edit(ctx, key, Hll::to_dense).map_err(|_| corrupt())?;
    ctx.modified(key);
    Ok(true)
}

fn pfselftest(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let max = sparse_max(ctx);
    let mut rng = rand::thread_rng();
    match hll::selftest(max, || rand::Rng::gen::<u32>(&mut rng) & 0x7fff_ffff) {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::err(format!("ERR {e}")),
    }
}
