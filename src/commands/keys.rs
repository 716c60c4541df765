//! Generic key commands: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, MOVE, expiry, FLUSHDB, ...

use bytes::Bytes;

use super::args::{int, is, syntax, NO_SUCH_KEY, R};
use super::{Command, Ctx, Flags as F};
use crate::db::glob::glob_match;
use crate::db::scan::page_ordered;
use crate::db::{Db, Entry};
use crate::protocol::Reply;

const W: u32 = F::WRITE;
const WF: u32 = F::WRITE | F::FAST;
const RF: u32 = F::READONLY | F::FAST;

pub const COMMANDS: &[Command] = &[
    Command::new("del", -2, W, del)
        .keys(1, -1, 1)
        .doc("generic", "Delete a key", "key [key ...]"),
    Command::new("unlink", -2, WF, del).keys(1, -1, 1).doc(
        "generic",
        "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
        "key [key ...]",
    ),
    Command::new("exists", -2, RF, exists)
        .keys(1, -1, 1)
        .doc("generic", "Determine if a key exists", "key [key ...]"),
    Command::new("type", 2, RF, type_cmd)
        .keys(1, 1, 1)
        .doc("generic", "Determine the type stored at key", "key"),
    Command::new("keys", 2, F::READONLY, keys).doc(
        "generic",
        "Find all keys matching the given pattern",
        "pattern",
    ),
    Command::new("scan", -2, F::READONLY, scan).doc(
        "generic",
        "Incrementally iterate the keys space",
        "cursor [MATCH pattern] [COUNT count] [TYPE type]",
    ),
    Command::new("randomkey", 1, F::READONLY, randomkey).doc(
        "generic",
        "Return a random key from the keyspace",
        "",
    ),
    Command::new("rename", 3, W, rename)
        .keys(1, 2, 1)
        .doc("generic", "Rename a key", "key newkey"),
    Command::new("renamenx", 3, WF, rename).keys(1, 2, 1).doc(
        "generic",
        "Rename a key, only if the new key does not exist",
        "key newkey",
    ),
    Command::new("copy", -3, W | F::DENYOOM, copy).keys(1, 2, 1).doc(
        "generic",
        "Copy a key",
        "source destination [DB destination-db] [REPLACE]",
    ),
    Command::new("move", 3, WF, move_cmd).keys(1, 1, 1).doc(
        "generic",
        "Move a key to another database",
        "key db",
    ),
    Command::new("touch", -2, RF, touch).keys(1, -1, 1).doc(
        "generic",
        "Alters the last access time of a key(s). Returns the number of existing keys specified.",
        "key [key ...]",
    ),
    Command::new("expire", -3, WF, expire).keys(1, 1, 1).doc(
        "generic",
        "Set a key's time to live in seconds",
        "key seconds [NX|XX|GT|LT]",
    ),
    Command::new("pexpire", -3, WF, expire).keys(1, 1, 1).doc(
        "generic",
        "Set a key's time to live in milliseconds",
        "key milliseconds [NX|XX|GT|LT]",
    ),
    Command::new("expireat", -3, WF, expire).keys(1, 1, 1).doc(
        "generic",
        "Set the expiration for a key as a UNIX timestamp",
        "key unix-time-seconds [NX|XX|GT|LT]",
    ),
    Command::new("pexpireat", -3, WF, expire).keys(1, 1, 1).doc(
        "generic",
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
        "key unix-time-milliseconds [NX|XX|GT|LT]",
    ),
    Command::new("ttl", 2, RF, ttl)
        .keys(1, 1, 1)
        .doc("generic", "Get the time to live for a key in seconds", "key"),
    Command::new("pttl", 2, RF, ttl).keys(1, 1, 1).doc(
        "generic",
        "Get the time to live for a key in milliseconds",
        "key",
    ),
    Command::new("expiretime", 2, RF, ttl).keys(1, 1, 1).doc(
        "generic",
        "Get the expiration Unix timestamp for a key",
        "key",
    ),
    Command::new("pexpiretime", 2, RF, ttl).keys(1, 1, 1).doc(
        "generic",
        "Get the expiration Unix timestamp for a key in milliseconds",
        "key",
    ),
    Command::new("persist", 2, WF, persist)
        .keys(1, 1, 1)
        .doc("generic", "Remove the expiration from a key", "key"),
    Command::new("dbsize", 1, RF, dbsize).doc(
        "server",
        "Return the number of keys in the selected database",
        "",
    ),
    Command::new("flushdb", -1, W, flushdb).doc(
        "server",
        "Remove all keys from the current database",
        "[ASYNC|SYNC]",
    ),
    Command::new("flushall", -1, W, flushall).doc(
        "server",
        "Remove all keys from all databases",
        "[ASYNC|SYNC]",
    ),
    Command::new("swapdb", 3, WF, swapdb).doc(
        "server",
        "Swaps two Redis databases",
        "index1 index2",
    ),
];

const SAME_OBJECT: &str = "ERR source and destination objects are the same";
const DB_RANGE: &str = "ERR DB index is out of range";

fn del(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut n = 0;
    for key in &argv[1..] {
        if ctx.db().remove_live(key) {
            ctx.modified(key);
            n += 1;
        }
    }
    Reply::Int(n)
}

/// `lookupKeyReadWithFlags(.., LOOKUP_NOTOUCH)`: deletes the key if expired, but leaves its
/// access time alone (EXISTS, TYPE, TTL do not count as a use for OBJECT IDLETIME).
fn lookup_notouch<'a>(db: &'a mut Db, key: &[u8]) -> Option<&'a Entry> {
    if db.peek(key).is_none() {
        db.entry(key); // removes it if it is there but expired
        return None;
    }
    db.peek(key)
}

fn exists(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let db = ctx.db();
    let n = argv[1..]
        .iter()
        .filter(|k| lookup_notouch(db, k).is_some())
        .count();
    Reply::Int(n as i64)
}

fn touch(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let n = argv[1..].iter().filter(|k| ctx.db().exists(k)).count();
    Reply::Int(n as i64)
}

fn type_cmd(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let t = lookup_notouch(ctx.db(), &argv[1])
        .map(|e| e.value.type_name())
        .unwrap_or("none");
    Reply::status(t)
}

fn keys(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let pat = &argv[1];
    let all = &pat[..] == b"*";
    let db = ctx.db();
    let out: Vec<Bytes> = db
        .keys()
        .filter(|k| (all || glob_match(pat, k, false)) && db.peek(k).is_some())
        .cloned()
        .collect();
    Reply::bulks(out)
}

fn scan(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    scan_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn scan_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let cursor = super::args::scan_cursor(&argv[1])?;
    let (mut count, mut pattern, mut typ) = (10usize, None, None);
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - i >= 2;
        if is(&argv[i], "count") && more {
            let c = int(&argv[i + 1])?;
            if c < 1 {
                return syntax();
            }
            count = c as usize;
        } else if is(&argv[i], "match") && more {
            pattern = Some(argv[i + 1].clone());
        } else if is(&argv[i], "type") && more {
            typ = Some(argv[i + 1].clone());
        } else {
            return syntax();
        }
        i += 2;
    }
    let db = ctx.db();
    let (page, next) = page_ordered(&db.order, cursor, count);
    let keys: Vec<Reply> = page
        .into_iter()
        .filter(|k| {
            // Like Redis, SCAN deletes the expired keys it meets.
            let Some(e) = db.entry(k) else { return false };
            pattern.as_ref().is_none_or(|p| glob_match(p, k, false))
                && typ.as_ref().is_none_or(|t| is(t, e.value.type_name()))
        })
        .map(Reply::Bulk)
        .collect();
    Ok(Reply::Array(vec![
        Reply::bulk_str(&next.to_string()),
        Reply::Array(keys),
    ]))
}

fn randomkey(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::bulk_opt(ctx.db().random_key())
}

fn rename(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let nx = is(&argv[0], "renamenx");
    let (src, dst) = (&argv[1], &argv[2]);
    if !ctx.db().exists(src) {
        return Reply::err(NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { Reply::Int(0) } else { Reply::ok() };
    }
    if ctx.db().exists(dst) {
        if nx {
            return Reply::Int(0);
        }
        ctx.db().remove(dst);
    }
    let entry = ctx.db().remove(src).expect("exists");
    ctx.db().insert_entry(dst.clone(), entry);
    ctx.modified(src);
    ctx.modified(dst);
    ctx.signal_ready(dst);
    if nx {
        Reply::Int(1)
    } else {
        Reply::ok()
    }
}

/// `getIntFromObjectOrReply`: a 32-bit integer, with `msg` replacing both errors if given.
fn int32(arg: &[u8], msg: Option<&str>) -> R<i64> {
    let v = int(arg).map_err(|e| msg.map_or(e, Reply::err))?;
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return Err(Reply::err(msg.unwrap_or(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        )));
    }
    Ok(v)
}

fn db_index(ctx: &Ctx, v: i64) -> R<usize> {
    if v < 0 || v as usize >= ctx.w.keyspace.dbs.len() {
        return Err(Reply::err(DB_RANGE));
    }
    Ok(v as usize)
}

fn copy(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    copy_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn copy_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let (mut replace, mut dst_db) = (false, ctx.db);
    let mut j = 3;
    while j < argv.len() {
        if is(&argv[j], "replace") {
            replace = true;
        } else if is(&argv[j], "db") && j + 1 < argv.len() {
            let v = int32(&argv[j + 1], None)?;
            dst_db = db_index(ctx, v)?;
            j += 1;
        } else {
            return syntax();
        }
        j += 1;
    }
    let (src, dst) = (&argv[1], &argv[2]);
    if dst_db == ctx.db && src == dst {
        return Err(Reply::err(SAME_OBJECT));
    }
    let Some(e) = ctx.db().entry(src) else {
        return Ok(Reply::Int(0));
    };
    let (value, expire_at) = (e.value.clone(), e.expire_at);
    let now = ctx.now;
    let target = ctx.db_at(dst_db);
    if target.exists(dst) {
        if !replace {
            return Ok(Reply::Int(0));
        }
        target.remove(dst);
    }
    target.insert_entry(dst.clone(), Entry::new(value, expire_at, now));
    ctx.w.key_modified(dst_db, dst);
    ctx.w.signal_ready(dst_db, dst);
    Ok(Reply::Int(1))
}

fn move_cmd(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    move_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn move_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let v = int32(&argv[2], None)?;
    let dst_db = db_index(ctx, v)?;
    if dst_db == ctx.db {
        return Err(Reply::err(SAME_OBJECT));
    }
    let key = &argv[1];
    if !ctx.db().exists(key) {
        return Ok(Reply::Int(0));
    }
    if ctx.db_at(dst_db).exists(key) {
        return Ok(Reply::Int(0));
    }
    let e = ctx.db().remove(key).expect("exists");
    ctx.db_at(dst_db).insert_entry(key.clone(), e);
    ctx.modified(key);
    ctx.w.key_modified(dst_db, key);
    ctx.w.signal_ready(dst_db, key);
    Ok(Reply::Int(1))
}

fn expire(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    expire_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn expire_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    let (secs, relative) = match name.as_str() {
        "expire" => (true, true),
        "pexpire" => (false, true),
        "expireat" => (true, false),
        _ => (false, false),
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &argv[3..] {
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if is(a, "gt") {
            gt = true;
        } else if is(a, "lt") {
            lt = true;
        } else {
            return Err(Reply::err(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(a)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::err(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::err(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let invalid = || Reply::err(format!("ERR invalid expire time in '{name}' command"));
    let mut when = int(&argv[2])?;
    if secs {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(invalid());
        }
        when *= 1000;
    }
    let base = if relative { ctx.now } else { 0 };
    if when > i64::MAX - base {
        return Err(invalid());
    }
    when += base;
    let key = &argv[1];
    let Some(e) = ctx.db().entry(key) else {
        return Ok(Reply::Int(0));
    };
    let cur = e.expire_at;
    let skip = (nx && cur.is_some())
        || (xx && cur.is_none())
        || (gt && cur.is_none_or(|c| when <= c))
        || (lt && cur.is_some_and(|c| when >= c));
    if skip {
        return Ok(Reply::Int(0));
    }
    if when <= ctx.now {
        ctx.db().remove(key);
    } else {
        ctx.db().set_expire(key, Some(when));
    }
    ctx.modified(key);
    Ok(Reply::Int(1))
}

fn ttl(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    let ms = name.starts_with('p');
    let abs = name.ends_with("time");
    let now = ctx.now;
    let Some(e) = lookup_notouch(ctx.db(), &argv[1]) else {
        return Reply::Int(-2);
    };
    let Some(at) = e.expire_at else {
        return Reply::Int(-1);
    };
    let t = if abs { at } else { at - now }.max(0);
    Reply::Int(if ms { t } else { (t + 500) / 1000 })
}

fn persist(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let key = &argv[1];
    match ctx.db().entry(key) {
        Some(e) if e.expire_at.is_some() => {
            ctx.db().set_expire(key, None);
            ctx.modified(key);
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}

fn dbsize(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Int(ctx.db().len() as i64)
}

/// `getFlushCommandFlags`: an optional ASYNC or SYNC.
fn flush_flags(argv: &[Bytes]) -> R<()> {
    match argv.len() {
        1 => Ok(()),
        2 if is(&argv[1], "sync") || is(&argv[1], "async") => Ok(()),
        _ => syntax(),
    }
}

fn flushdb(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if let Err(e) = flush_flags(argv) {
        return e;
    }
    ctx.w.touch_all_watched(Some(ctx.db));
    ctx.w.tracking_flush();
    ctx.w.persist_flush(Some(ctx.db));
    let db = ctx.db();
    let n = db.len() as u64;
    db.clear();
    ctx.w.dirty += n;
    ctx.w.signal_streams_gone(ctx.db);
    Reply::ok()
}

fn flushall(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if let Err(e) = flush_flags(argv) {
        return e;
    }
    ctx.w.touch_all_watched(None);
    ctx.w.tracking_flush();
    ctx.w.persist_flush(None);
    let mut n = 0;
    for i in 0..ctx.w.keyspace.dbs.len() {
        let db = ctx.db_at(i);
        n += db.len() as u64;
        db.clear();
        ctx.w.signal_streams_gone(i);
    }
    ctx.w.dirty += n + 1;
    Reply::ok()
}

fn swapdb(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    swapdb_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn swapdb_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let a = int32(&argv[1], Some("ERR invalid first DB index"))?;
    let b = int32(&argv[2], Some("ERR invalid second DB index"))?;
    let n = ctx.w.keyspace.dbs.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(Reply::err(DB_RANGE));
    }
    let (a, b) = (a as usize, b as usize);
    if a == b {
        return Ok(Reply::ok());
    }
    // A WATCHed key is touched if it exists before or after the swap.
    ctx.w.touch_all_watched(Some(a));
    ctx.w.touch_all_watched(Some(b));
    ctx.w.keyspace.dbs.swap(a, b);
    ctx.w.persist_swap(a, b);
    ctx.w.touch_all_watched(Some(a));
    ctx.w.touch_all_watched(Some(b));
    // Clients blocked on keys of either database may now be served.
    for d in [a, b] {
        for key in ctx.w.blocking.keys_in_db(d) {
            if ctx.db_at(d).exists(&key) {
                ctx.w.signal_ready(d, &key);
            }
        }
        ctx.w.signal_streams_gone(d);
    }
    ctx.w.dirty += 1;
    Ok(Reply::ok())
}
