//! XREAD and XREADGROUP, with BLOCK.
//!
//! A blocked XREAD is re-run by the core when one of its keys is signalled; `$` ids are
//! resolved to the stream's last id when the command first blocks and the re-run uses the
//! rewritten argv, so everything added after that moment is delivered. As in Redis, a re-run
//! serves only the key that became ready, with COUNT (or 1000 without it).

use bytes::Bytes;

use super::args::{int, is, timeout_deadline_ms, R, SYNTAX};
use super::streams::{entries_reply, entry_reply, id_reply, parse_strict_id, reply};
use super::{Command, Ctx, Flags as F};
use crate::db::stream::{Nack, StreamId};
use crate::protocol::Reply;

const G: &str = "stream";
const BLOCKED_DEFAULT_COUNT: usize = 1000;

pub const COMMANDS: &[Command] = &[
    Command::new("xread", -4, F::READONLY | F::BLOCKING, xread)
        .keys_fn(0, 0, 0, stream_keys)
        .doc(
            G,
            "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.",
            "[COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]",
        ),
    Command::new("xreadgroup", -7, F::WRITE | F::BLOCKING, xreadgroup)
        .keys_fn(0, 0, 0, stream_keys)
        .doc(
            G,
            "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.",
            "GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]",
        ),
];

/// Key positions: the first half of the arguments after STREAMS.
pub fn stream_keys(argv: &[Bytes]) -> Vec<usize> {
    let start = if argv[0].len() == 10 { 4 } else { 1 };
    for i in start..argv.len() {
        if is(&argv[i], "streams") {
            let n = (argv.len() - i - 1) / 2;
            return (i + 1..i + 1 + n).collect();
        }
    }
    Vec::new()
}

struct ReadArgs {
    block: Option<Option<i64>>,
    count: usize,
    streams_at: usize,
    n: usize,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
}

fn parse(ctx: &Ctx, argv: &[Bytes], group_cmd: bool) -> R<ReadArgs> {
    let mut a = ReadArgs {
        block: None,
        count: 0,
        streams_at: 0,
        n: 0,
        group: None,
        noack: false,
    };
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        let o = &argv[i];
        if is(o, "block") && more > 0 {
            i += 1;
            a.block = Some(timeout_deadline_ms(&argv[i], ctx.now)?);
        } else if is(o, "count") && more > 0 {
            i += 1;
            a.count = int(&argv[i])?.max(0) as usize;
        } else if is(o, "streams") && more > 0 {
            a.streams_at = i + 1;
            let c = argv.len() - a.streams_at;
            if !c.is_multiple_of(2) {
                return Err(Reply::err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            a.n = c / 2;
            break;
        } else if is(o, "group") && more >= 2 {
            if !group_cmd {
                return Err(Reply::err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            a.group = Some((argv[i + 1].clone(), argv[i + 2].clone()));
            i += 2;
        } else if is(o, "noack") {
            if !group_cmd {
                return Err(Reply::err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            a.noack = true;
        } else {
            return Err(Reply::err(SYNTAX));
        }
        i += 1;
    }
    if a.streams_at == 0 {
        return Err(Reply::err(SYNTAX));
    }
    if group_cmd && a.group.is_none() {
        return Err(Reply::err("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(a)
}

/// RESP3: a map stream -> entries; RESP2: an array of [stream, entries] pairs.
fn streams_reply(ctx: &Ctx, items: Vec<(Bytes, Reply)>) -> Reply {
    if ctx.resp3 {
        Reply::Map(
            items
                .into_iter()
                .map(|(k, v)| (Reply::Bulk(k), v))
                .collect(),
        )
    } else {
        Reply::Array(
            items
                .into_iter()
                .map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v]))
                .collect(),
        )
    }
}

/// Delivers entries after `gt` to a consumer of a group (the `>` case), updating the group's
/// last id and, unless NOACK, the pending entries lists.
fn deliver_new(
    ctx: &mut Ctx,
    key: &Bytes,
    group: &Bytes,
    consumer: &Bytes,
    gt: StreamId,
    count: usize,
    noack: bool,
) -> Reply {
    let now = ctx.now;
    let Ok(Some(s)) = ctx.db().get_stream_mut(key) else {
        return Reply::Array(vec![]);
    };
    let Some(start) = gt.incr() else {
        return Reply::Array(vec![]);
    };
    let items: Vec<(StreamId, Vec<Bytes>)> = s
        .range(start, StreamId::MAX, count, false)
        .into_iter()
        .map(|(id, fv)| (id, fv.clone()))
        .collect();
    for (id, _) in &items {
        s.advance_group(group, *id);
        if !noack {
            let g = s.groups.get_mut(group).expect("group");
            g.drop_nack(id);
            g.pel.insert(
                *id,
                Nack {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: consumer.clone(),
                },
            );
            g.assign(*id, consumer);
        }
    }
    Reply::Array(items.iter().map(|(id, fv)| entry_reply(id, fv)).collect())
}

/// The consumer's own pending entries after `gt` (XREADGROUP with an explicit id).
fn deliver_history(
    ctx: &mut Ctx,
    key: &Bytes,
    group: &Bytes,
    consumer: &Bytes,
    gt: StreamId,
    count: usize,
) -> Reply {
    let now = ctx.now;
    let Ok(Some(s)) = ctx.db().get_stream_mut(key) else {
        return Reply::Array(vec![]);
    };
    let Some(start) = gt.incr() else {
        return Reply::Array(vec![]);
    };
    let s = &mut **s;
    let g = s.groups.get_mut(group).expect("group");
    let ids: Vec<StreamId> = match g.consumers.get(consumer) {
        Some(c) => c
            .pel
            .range(start..)
            .take(if count == 0 { usize::MAX } else { count })
            .copied()
            .collect(),
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for id in ids {
        match s.entries.get(&id) {
            Some(fv) => {
                out.push(entry_reply(&id, fv));
                if let Some(n) = g.pel.get_mut(&id) {
                    n.delivery_time = now;
                    n.delivery_count += 1;
                }
            }
            None => out.push(Reply::Array(vec![id_reply(&id), Reply::NilArray])),
        }
    }
    Reply::Array(out)
}

/// A blocked client re-run for `key`: serve it from that key only, or keep it waiting.
fn serve_blocked(ctx: &mut Ctx, argv: &[Bytes], a: &ReadArgs, key: &Bytes) -> R<Reply> {
    let keys = &argv[a.streams_at..a.streams_at + a.n];
    let idx = keys.iter().position(|k| k == key).expect("key");
    let count = if a.count > 0 {
        a.count
    } else {
        BLOCKED_DEFAULT_COUNT
    };
    let deadline = a.block.flatten();
    let wait = |ctx: &mut Ctx| Ok(ctx.block_on(keys.to_vec(), deadline, Reply::NilArray));
    let now = ctx.now;
    if let Some((group, consumer)) = &a.group {
        let gt =
            match ctx.db().get_stream(key) {
                Ok(Some(s)) => match s.groups.get(group) {
                    None => return Err(Reply::err(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    )),
                    Some(g) => (g.last_id < s.last_id).then_some(g.last_id),
                },
                _ => return Err(Reply::err("UNBLOCKED the stream key no longer exists")),
            };
        let Some(gt) = gt else { return wait(ctx) };
        let s = ctx.db().get_stream_mut(key)?.expect("stream");
        s.groups
            .get_mut(group)
            .expect("group")
            .touch_consumer(consumer, now);
        let entries = deliver_new(ctx, key, group, consumer, gt, count, a.noack);
        ctx.w.dirty += 1;
        return Ok(streams_reply(ctx, vec![(key.clone(), entries)]));
    }
    let gt = parse_strict_id(&argv[a.streams_at + a.n + idx], 0)?;
    let entries = match ctx.db().get_stream(key) {
        Ok(Some(s)) if s.last_id > gt => match gt.incr() {
            Some(start) => entries_reply(&s.range(start, StreamId::MAX, count, false)),
            None => Reply::Array(vec![]),
        },
        _ => return wait(ctx),
    };
    Ok(streams_reply(ctx, vec![(key.clone(), entries)]))
}

fn read_generic(ctx: &mut Ctx, argv: &[Bytes], group_cmd: bool) -> R<Reply> {
    let a = parse(ctx, argv, group_cmd)?;
    let keys: Vec<Bytes> = argv[a.streams_at..a.streams_at + a.n].to_vec();
    if let Some(k) = ctx.serving_key().filter(|k| keys.contains(k)) {
        return serve_blocked(ctx, argv, &a, &k);
    }
    // Resolve ids; for XREADGROUP `>` is StreamId::MAX.
    let mut ids = Vec::with_capacity(a.n);
    let mut rewritten = false;
    let mut new_argv = argv.to_vec();
    for (i, key) in keys.iter().enumerate() {
        let arg = &argv[a.streams_at + a.n + i];
        let s = ctx.db().get_stream(key)?;
        if let Some((group, _)) = &a.group {
            if !s.is_some_and(|s| s.groups.contains_key(group)) {
                return Err(Reply::err(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(group)
                )));
            }
        }
        if &arg[..] == b"$" {
            if group_cmd {
                return Err(Reply::err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            let id = s.map_or(StreamId::MIN, |s| s.last_id);
            new_argv[a.streams_at + a.n + i] = id.to_bytes();
            rewritten = true;
            ids.push(id);
            continue;
        }
        if &arg[..] == b">" {
            if !group_cmd {
                return Err(Reply::err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
            }
            ids.push(StreamId::MAX);
            continue;
        }
        ids.push(parse_strict_id(arg, 0)?);
    }
    let now = ctx.now;
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(s) = ctx.db().get_stream_mut(key)? else {
            continue;
        };
        let mut gt = ids[i];
        if let Some((group, consumer)) = &a.group {
            let maxid = s.last_valid_id();
            let len = s.len();
            let g = s.groups.get_mut(group).expect("group");
            let mut serve = None;
            if gt != StreamId::MAX {
                serve = Some(true);
            } else if len > 0 && maxid > g.last_id {
                gt = g.last_id;
                serve = Some(false);
            }
            if let Some(history) = serve {
                g.touch_consumer(consumer, now);
                let entries = if history {
                    deliver_history(ctx, key, group, consumer, gt, a.count)
                } else {
                    deliver_new(ctx, key, group, consumer, gt, a.count, a.noack)
                };
                ctx.w.dirty += 1;
                out.push((key.clone(), entries));
            }
        } else if !s.is_empty() && s.last_valid_id() > gt {
            let entries = match gt.incr() {
                Some(start) => entries_reply(&s.range(start, StreamId::MAX, a.count, false)),
                None => Reply::Array(vec![]),
            };
            out.push((key.clone(), entries));
        }
    }
    if !out.is_empty() {
        return Ok(streams_reply(ctx, out));
    }
    let Some(deadline) = a.block else {
        return Ok(Reply::NilArray);
    };
    if !ctx.may_block {
        return Ok(Reply::NilArray);
    }
    if rewritten {
        return Ok(ctx.block_on_rerun(keys, deadline, Reply::NilArray, new_argv));
    }
    Ok(ctx.block_on(keys, deadline, Reply::NilArray))
}

fn xread(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read_generic(ctx, argv, false))
}

fn xreadgroup(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(read_generic(ctx, argv, true))
}
