//! Consumer groups: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM.

use bytes::Bytes;

use super::args::{int, is, R, SYNTAX};
use super::server::{help, subcommand_syntax_error};
use super::streams::{
    entry_reply, id_reply, interval_end, interval_start, parse_id, parse_strict_id, reply,
};
use super::{Command, Ctx, Flags as F};
use crate::db::stream::{Group, Nack, StreamId, INVALID_READ};
use crate::db::Value;
use crate::protocol::Reply;

const G: &str = "stream";

pub const COMMANDS: &[Command] = &[
    Command::new("xgroup", -2, 0, super::server::container)
        .subs(XGROUP_SUBS)
        .doc(G, "A container for consumer groups commands", ""),
    Command::new("xack", -4, F::WRITE | F::FAST, xack).keys(1, 1, 1).doc(
        G,
        "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.",
        "key group id [id ...]",
    ),
    Command::new("xpending", -3, F::READONLY, xpending)
        .keys(1, 1, 1)
        .doc(
            G,
            "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.",
            "key group [[IDLE min-idle-time] start end count [consumer]]",
        ),
    Command::new("xclaim", -6, F::WRITE | F::FAST, xclaim)
        .keys(1, 1, 1)
        .doc(
            G,
            "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.",
            "key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]",
        ),
    Command::new("xautoclaim", -6, F::WRITE | F::FAST, xautoclaim)
        .keys(1, 1, 1)
        .doc(
            G,
            "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.",
            "key group consumer min-idle-time start [COUNT count] [JUSTID]",
        ),
];

const XGROUP_SUBS: &[Command] = &[
    Command::new("xgroup|create", -5, F::WRITE | F::DENYOOM, xgroup)
        .keys(2, 2, 1)
        .doc(
            G,
            "Create a consumer group.",
            "key groupname id|$ [MKSTREAM] [ENTRIESREAD entries_read]",
        ),
    Command::new("xgroup|createconsumer", 5, F::WRITE | F::DENYOOM, xgroup)
        .keys(2, 2, 1)
        .doc(
            G,
            "Create a consumer in a consumer group.",
            "key groupname consumername",
        ),
    Command::new("xgroup|delconsumer", 5, F::WRITE, xgroup)
        .keys(2, 2, 1)
        .doc(
            G,
            "Delete a consumer from a consumer group.",
            "key groupname consumername",
        ),
    Command::new("xgroup|destroy", 4, F::WRITE, xgroup)
        .keys(2, 2, 1)
        .doc(G, "Destroy a consumer group.", "key groupname"),
    Command::new("xgroup|setid", -5, F::WRITE, xgroup)
        .keys(2, 2, 1)
        .doc(
            G,
            "Set a consumer group to an arbitrary last delivered ID value.",
            "key groupname id|$ [ENTRIESREAD entries_read]",
        ),
    Command::new("xgroup|help", 2, F::LOADING | F::STALE, xgroup_help).doc(
        G,
        "Show helpful text about the different subcommands",
        "",
    ),
];

fn xgroup_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help(
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    )
}

fn s(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn xgroup(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let opt = &argv[1];
        let key = &argv[2];
        let grp = &argv[3];
        let create = is(opt, "create");
        let setid = is(opt, "setid");
        let mut mkstream = false;
        let mut entries_read = INVALID_READ;
        let mut i = 5;
        while i < argv.len() {
            if create && is(&argv[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if (create || setid) && is(&argv[i], "entriesread") && i + 1 < argv.len() {
                entries_read = int(&argv[i + 1])?;
                if entries_read < 0 && entries_read != INVALID_READ {
                    return Err(Reply::err(
                        "ERR value for ENTRIESREAD must be positive or -1",
                    ));
                }
                i += 2;
            } else {
                return Err(subcommand_syntax_error(argv));
            }
        }
        let exists = ctx.db().get_stream(key)?.is_some();
        if !mkstream {
            if !exists {
                return Err(Reply::err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
            }
            let has = ctx
                .db()
                .get_stream(key)?
                .is_some_and(|s| s.groups.contains_key(grp));
            if !has && !create && !is(opt, "destroy") {
                return Err(Reply::err(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    s(grp),
                    s(key)
                )));
            }
        }
        let now = ctx.now;
        if create {
            if argv.len() > 8 {
                return Err(subcommand_syntax_error(argv));
            }
            let id = if &argv[4][..] == b"$" {
                match ctx.db().get_stream(key)? {
                    Some(st) => st.last_id,
                    None => StreamId::MIN,
                }
            } else {
                parse_strict_id(&argv[4], 0)?
            };
            if !exists {
                ctx.db().set(key.clone(), Value::Stream(Box::default()));
                ctx.modified(key);
            }
            let st = ctx.db().get_stream_mut(key)?.expect("stream");
            if st.groups.contains_key(grp) {
                return Err(Reply::err("BUSYGROUP Consumer Group name already exists"));
            }
            st.groups.insert(grp.clone(), Group::new(id, entries_read));
            ctx.w.dirty += 1;
            return Ok(Reply::ok());
        }
        if setid {
            if argv.len() != 5 && argv.len() != 7 {
                return Err(subcommand_syntax_error(argv));
            }
            let st = ctx.db().get_stream_mut(key)?.expect("stream");
            let id = if &argv[4][..] == b"$" {
                st.last_id
            } else {
                parse_id(&argv[4], 0)?
            };
            let g = st.groups.get_mut(grp).expect("group");
            g.last_id = id;
            g.entries_read = entries_read;
            ctx.w.dirty += 1;
            return Ok(Reply::ok());
        }
        if is(opt, "destroy") {
            let st = ctx.db().get_stream_mut(key)?.expect("stream");
            if st.groups.remove(grp).is_none() {
                return Ok(Reply::Int(0));
            }
            ctx.w.dirty += 1;
            ctx.signal_ready(key);
            return Ok(Reply::Int(1));
        }
        let st = ctx.db().get_stream_mut(key)?.expect("stream");
        let g = st.groups.get_mut(grp).expect("group");
        if is(opt, "createconsumer") {
            let created = g.create_consumer(&argv[4], now);
            if created {
                ctx.w.dirty += 1;
            }
            return Ok(Reply::Int(created as i64));
        }
        // delconsumer
        let n = g.delete_consumer(&argv[4]);
        ctx.w.dirty += 1;
        Ok(Reply::Int(n as i64))
    })())
}

fn nogroup(key: &[u8], group: &[u8]) -> Reply {
    Reply::err(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        s(key),
        s(group)
    ))
}

fn xack(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let key = &argv[1];
        let has = match ctx.db().get_stream(key)? {
            Some(st) => st.groups.contains_key(&argv[2]),
            None => false,
        };
        if !has {
            return Ok(Reply::Int(0));
        }
        let ids = argv[3..]
            .iter()
            .map(|a| parse_strict_id(a, 0))
            .collect::<R<Vec<_>>>()?;
        let st = ctx.db().get_stream_mut(key)?.expect("stream");
        let g = st.groups.get_mut(&argv[2]).expect("group");
        let mut n = 0;
        for id in &ids {
            if g.drop_nack(id) {
                n += 1;
            }
        }
        if n > 0 {
            ctx.w.dirty += 1;
        }
        Ok(Reply::Int(n))
    })())
}

fn xpending(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let argc = argv.len();
        let justinfo = argc == 3;
        if argc != 3 && !(6..=9).contains(&argc) {
            return Err(Reply::err(SYNTAX));
        }
        let mut minidle = 0;
        let mut range = None;
        let mut consumer = None;
        if argc >= 6 {
            let mut at = 3;
            if is(&argv[3], "idle") {
                minidle = int(&argv[4])?;
                if argc < 8 {
                    return Err(Reply::err(SYNTAX));
                }
                at += 2;
            }
            let count = int(&argv[at + 2])?.max(0);
            let start = interval_start(&argv[at])?;
            let end = interval_end(&argv[at + 1])?;
            range = Some((start, end, count));
            if at + 3 < argc {
                consumer = Some(argv[at + 3].clone());
            }
        }
        let now = ctx.now;
        let key = &argv[1];
        let Some(st) = ctx.db().get_stream(key)? else {
            return Err(nogroup(key, &argv[2]));
        };
        let Some(g) = st.groups.get(&argv[2]) else {
            return Err(nogroup(key, &argv[2]));
        };
        if justinfo {
            if g.pel.is_empty() {
                return Ok(Reply::Array(vec![
                    Reply::Int(0),
                    Reply::Nil,
                    Reply::Nil,
                    Reply::NilArray,
                ]));
            }
            let first = g.pel.keys().next().expect("first");
            let last = g.pel.keys().next_back().expect("last");
            let consumers = g
                .consumers
                .iter()
                .filter(|(_, c)| !c.pel.is_empty())
                .map(|(n, c)| {
                    Reply::Array(vec![
                        Reply::Bulk(n.clone()),
                        Reply::Bulk(c.pel.len().to_string().into()),
                    ])
                })
                .collect();
            return Ok(Reply::Array(vec![
                Reply::Int(g.pel.len() as i64),
                id_reply(first),
                id_reply(last),
                Reply::Array(consumers),
            ]));
        }
        let (start, end, mut count) = range.expect("range");
        let ids: Vec<StreamId> = match &consumer {
            Some(name) => match g.consumers.get(name) {
                None => return Ok(Reply::Array(vec![])),
                Some(c) => {
                    if start > end {
                        Vec::new()
                    } else {
                        c.pel.range(start..=end).copied().collect()
                    }
                }
            },
            None => {
                if start > end {
                    Vec::new()
                } else {
                    g.pel.range(start..=end).map(|(k, _)| *k).collect()
                }
            }
        };
        let mut out = Vec::new();
        for id in ids {
            if count == 0 {
                break;
            }
            let n = &g.pel[&id];
            if minidle != 0 && now - n.delivery_time < minidle {
                continue;
            }
            count -= 1;
            out.push(Reply::Array(vec![
                id_reply(&id),
                Reply::Bulk(n.consumer.clone()),
                Reply::Int((now - n.delivery_time).max(0)),
                Reply::Int(n.delivery_count as i64),
            ]));
        }
        Ok(Reply::Array(out))
    })())
}

fn opt_int(arg: &[u8], msg: &str) -> R<i64> {
    int(arg).map_err(|_| Reply::err(format!("ERR {msg}")))
}

/// Gives a pending entry to `consumer`, creating the consumer on first use.
fn claim_one(
    g: &mut Group,
    id: StreamId,
    consumer: &Bytes,
    created: &mut bool,
    now: i64,
    when: i64,
) {
    if !*created {
        g.touch_consumer(consumer, now);
        *created = true;
    }
    let n = g.pel.get_mut(&id).expect("nack");
    n.delivery_time = when;
    g.assign(id, consumer);
}

fn xclaim(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let key = &argv[1];
        let grp = &argv[2];
        let has = match ctx.db().get_stream(key)? {
            Some(st) => st.groups.contains_key(grp),
            None => false,
        };
        if !has {
            return Err(nogroup(key, grp));
        }
        let minidle = opt_int(&argv[4], "Invalid min-idle-time argument for XCLAIM")?.max(0);
        let mut j = 5;
        let mut ids = Vec::new();
        while j < argv.len() {
            match parse_strict_id(&argv[j], 0) {
                Ok(id) => ids.push(id),
                Err(_) => break,
            }
            j += 1;
        }
        let now = ctx.now;
        let mut force = false;
        let mut justid = false;
        let mut deliverytime: i64 = -1;
        let mut retrycount: i64 = -1;
        let mut last_id = StreamId::MIN;
        while j < argv.len() {
            let more = argv.len() - 1 - j;
            let o = &argv[j];
            if is(o, "force") {
                force = true;
            } else if is(o, "justid") {
                justid = true;
            } else if is(o, "idle") && more > 0 {
                j += 1;
                let v = opt_int(&argv[j], "Invalid IDLE option argument for XCLAIM")?;
                deliverytime = now.wrapping_sub(v);
            } else if is(o, "time") && more > 0 {
                j += 1;
                deliverytime = opt_int(&argv[j], "Invalid TIME option argument for XCLAIM")?;
            } else if is(o, "retrycount") && more > 0 {
                j += 1;
                retrycount = opt_int(&argv[j], "Invalid RETRYCOUNT option argument for XCLAIM")?;
            } else if is(o, "lastid") && more > 0 {
                j += 1;
                last_id = parse_strict_id(&argv[j], 0)?;
            } else {
                return Err(Reply::err(format!(
                    "ERR Unrecognized XCLAIM option '{}'",
                    s(o)
                )));
            }
            j += 1;
        }
        if deliverytime == -1 || deliverytime < 0 || deliverytime > now {
            deliverytime = now;
        }
        let consumer = argv[3].clone();
        let st = ctx.db().get_stream_mut(key)?.expect("stream");
        let st = &mut **st;
        let g = st.groups.get_mut(grp).expect("group");
        let mut changed = false;
        if last_id > g.last_id {
            g.last_id = last_id;
            changed = true;
        }
        let mut created = false;
        let mut out = Vec::new();
        for id in ids {
            let exists = st.entries.contains_key(&id);
            if !exists {
                if g.drop_nack(&id) {
                    changed = true;
                }
                continue;
            }
            let mut fresh = false;
            if force && !g.pel.contains_key(&id) {
                g.pel.insert(
                    id,
                    Nack {
                        delivery_time: now,
                        delivery_count: 1,
                        consumer: Bytes::new(),
                    },
                );
                fresh = true;
            }
            let Some(n) = g.pel.get(&id) else { continue };
            if !fresh && minidle > 0 && now - n.delivery_time < minidle {
                continue;
            }
            claim_one(g, id, &consumer, &mut created, now, deliverytime);
            let n = g.pel.get_mut(&id).expect("nack");
            if retrycount >= 0 {
                n.delivery_count = retrycount as u64;
            } else if !justid {
                n.delivery_count += 1;
            }
            changed = true;
            if justid {
                out.push(id_reply(&id));
            } else {
                out.push(entry_reply(&id, &st.entries[&id]));
            }
        }
        if changed || created {
            ctx.w.dirty += 1;
        }
        Ok(Reply::Array(out))
    })())
}

fn xautoclaim(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let key = &argv[1];
        let grp = &argv[2];
        let minidle = opt_int(&argv[4], "Invalid min-idle-time argument for XAUTOCLAIM")?.max(0);
        let start = interval_start(&argv[5])?;
        let mut count: i64 = 100;
        let mut justid = false;
        let mut j = 6;
        while j < argv.len() {
            let more = argv.len() - 1 - j;
            if is(&argv[j], "count") && more > 0 {
                let max = i64::MAX / 16;
                count = match int(&argv[j + 1]) {
                    Ok(v) if (1..=max).contains(&v) => v,
                    _ => return Err(Reply::err("ERR COUNT must be > 0")),
                };
                j += 1;
            } else if is(&argv[j], "justid") {
                justid = true;
            } else {
                return Err(Reply::err(SYNTAX));
            }
            j += 1;
        }
        let has = match ctx.db().get_stream(key)? {
            Some(st) => st.groups.contains_key(grp),
            None => false,
        };
        if !has {
            return Err(nogroup(key, grp));
        }
        // Redis allocates COUNT ids up front; past the address space the allocation fails.
        if (count as u128) * 16 > 1 << 47 {
            return Err(Reply::err(
                "ERR Insufficient memory, failed allocating transient memory, COUNT too high.",
            ));
        }
        let now = ctx.now;
        let consumer = argv[3].clone();
        let st = ctx.db().get_stream_mut(key)?.expect("stream");
        let st = &mut **st;
        let g = st.groups.get_mut(grp).expect("group");
        let keys: Vec<StreamId> = g.pel.range(start..).map(|(k, _)| *k).collect();
        let mut attempts = count * 10;
        let mut next = 0;
        let mut eof = false;
        let mut created = false;
        let mut changed = false;
        let mut out = Vec::new();
        let mut deleted = Vec::new();
        loop {
            if attempts == 0 {
                break;
            }
            attempts -= 1;
            if count == 0 {
                break;
            }
            if next >= keys.len() {
                eof = true;
                break;
            }
            let id = keys[next];
            next += 1;
            if !st.entries.contains_key(&id) {
                g.drop_nack(&id);
                deleted.push(id_reply(&id));
                changed = true;
                count -= 1;
                continue;
            }
            let n = &g.pel[&id];
            if minidle > 0 && now - n.delivery_time < minidle {
                continue;
            }
            claim_one(g, id, &consumer, &mut created, now, now);
            if !justid {
                g.pel.get_mut(&id).expect("nack").delivery_count += 1;
            }
            changed = true;
            if justid {
                out.push(id_reply(&id));
            } else {
                out.push(entry_reply(&id, &st.entries[&id]));
            }
            count -= 1;
        }
        let cursor = if !eof && next < keys.len() {
            keys[next]
        } else {
            StreamId::MIN
        };
        if changed || created {
            ctx.w.dirty += 1;
        }
        Ok(Reply::Array(vec![
            id_reply(&cursor),
            Reply::Array(out),
            Reply::Array(deleted),
        ]))
    })())
}
