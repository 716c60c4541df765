//! Stream commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID, XINFO.
//! Reading (XREAD, XREADGROUP) is in `streams_read.rs`, consumer groups in `streams_groups.rs`.

use bytes::Bytes;

use super::args::{int, is, wrong_args, NOT_INT, NO_SUCH_KEY, R, SYNTAX};
use super::server::{help, subcommand_syntax_error};
use super::{Command, Ctx, Flags as F};
use crate::db::stream::{Group, NodeLimits, Stream, StreamId, INVALID_READ};
use crate::db::Value;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;

const G: &str = "stream";

pub const COMMANDS: &[Command] = &[
    Command::new("xadd", -5, F::WRITE | F::DENYOOM | F::FAST, xadd)
        .keys(1, 1, 1)
        .doc(
            G,
            "Appends a new entry to a stream",
            "key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]",
        ),
    Command::new("xlen", 2, F::READONLY | F::FAST, xlen)
        .keys(1, 1, 1)
        .doc(G, "Return the number of entries in a stream", "key"),
    Command::new("xrange", -4, F::READONLY, xrange).keys(1, 1, 1).doc(
        G,
        "Return a range of elements in a stream, with IDs matching the specified IDs interval",
        "key start end [COUNT count]",
    ),
    Command::new("xrevrange", -4, F::READONLY, xrevrange)
        .keys(1, 1, 1)
        .doc(
            G,
            "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE",
            "key end start [COUNT count]",
        ),
    Command::new("xdel", -3, F::WRITE | F::FAST, xdel).keys(1, 1, 1).doc(
        G,
        "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.",
        "key id [id ...]",
    ),
    Command::new("xtrim", -4, F::WRITE, xtrim).keys(1, 1, 1).doc(
        G,
        "Trims the stream to (approximately if '~' is passed) a certain size",
        "key MAXLEN|MINID [=|~] threshold [LIMIT count]",
    ),
    Command::new("xsetid", -3, F::WRITE | F::DENYOOM | F::FAST, xsetid)
        .keys(1, 1, 1)
        .doc(
            G,
            "An internal command for replicating stream values",
            "key last-id [ENTRIESADDED entries_added] [MAXDELETEDID max_deleted_entry_id]",
        ),
    Command::new("xinfo", -2, 0, super::server::container)
        .subs(XINFO_SUBS)
        .doc(G, "A container for stream introspection commands", ""),
];

const XINFO_SUBS: &[Command] = &[
    Command::new("xinfo|consumers", 4, F::READONLY, xinfo)
        .keys(2, 2, 1)
        .doc(G, "List the consumers in a consumer group", "key groupname"),
    Command::new("xinfo|groups", 3, F::READONLY, xinfo)
        .keys(2, 2, 1)
        .doc(G, "List the consumer groups of a stream", "key"),
    Command::new("xinfo|stream", -3, F::READONLY, xinfo)
        .keys(2, 2, 1)
        .doc(
            G,
            "Get information about a stream",
            "key [FULL [COUNT count]]",
        ),
    Command::new("xinfo|help", 2, F::LOADING | F::STALE, xinfo_help).doc(
        G,
        "Show helpful text about the different subcommands",
        "",
    ),
];

pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

pub(crate) fn reply(r: R<Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// `string2ull`: string2ll for the common case, then strtoull's looser rules.
fn str2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return (v >= 0).then_some(v as u64);
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i >= s.len() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in &s[i..] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// `streamGenericParseIDOrReply`. Returns the id and whether the sequence was given (false for
/// `ms-*`, accepted only when `seq_star`).
pub fn parse_id_full(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_star: bool,
) -> R<(StreamId, bool)> {
    let invalid = || Reply::err(INVALID_ID);
    // The C code works on a NUL-terminated copy of at most 127 bytes.
    if arg.len() > 127 {
        return Err(invalid());
    }
    let arg = match arg.iter().position(|&b| b == 0) {
        Some(p) => &arg[..p],
        None => arg,
    };
    if arg == b"-" || arg == b"+" {
        if strict {
            return Err(invalid());
        }
        return Ok((
            if arg == b"-" {
                StreamId::MIN
            } else {
                StreamId::MAX
            },
            true,
        ));
    }
    let (ms_part, seq_part) = match arg.iter().position(|&b| b == b'-') {
        Some(p) => (&arg[..p], Some(&arg[p + 1..])),
        None => (arg, None),
    };
    let ms = str2ull(ms_part).ok_or_else(invalid)?;
    match seq_part {
        None => Ok((StreamId::new(ms, missing_seq), true)),
        Some(b"*") if seq_star => Ok((StreamId::new(ms, 0), false)),
        Some(s) => Ok((StreamId::new(ms, str2ull(s).ok_or_else(invalid)?), true)),
    }
}

pub fn parse_id(arg: &[u8], missing_seq: u64) -> R<StreamId> {
    parse_id_full(arg, missing_seq, false, false).map(|(id, _)| id)
}

pub fn parse_strict_id(arg: &[u8], missing_seq: u64) -> R<StreamId> {
    parse_id_full(arg, missing_seq, true, false).map(|(id, _)| id)
}

/// `streamParseIntervalIdOrReply`: an id with an optional `(` for exclusive bounds.
pub fn parse_interval_id(arg: &[u8], missing_seq: u64) -> R<(StreamId, bool)> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_strict_id(&arg[1..], missing_seq)?, true))
    } else {
        Ok((parse_id(arg, missing_seq)?, false))
    }
}

/// The start of an interval: exclusive starts move one up.
pub fn interval_start(arg: &[u8]) -> R<StreamId> {
    let (id, ex) = parse_interval_id(arg, 0)?;
    if ex {
        return id
            .incr()
            .ok_or_else(|| Reply::err("ERR invalid start ID for the interval"));
    }
    Ok(id)
}

pub fn interval_end(arg: &[u8]) -> R<StreamId> {
    let (id, ex) = parse_interval_id(arg, u64::MAX)?;
    if ex {
        return id
            .decr()
            .ok_or_else(|| Reply::err("ERR invalid end ID for the interval"));
    }
    Ok(id)
}

pub fn id_reply(id: &StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

pub fn entry_reply(id: &StreamId, fv: &[Bytes]) -> Reply {
    Reply::Array(vec![id_reply(id), Reply::bulks(fv.iter().cloned())])
}

pub fn entries_reply(items: &[(StreamId, &Vec<Bytes>)]) -> Reply {
    Reply::Array(items.iter().map(|(id, fv)| entry_reply(id, fv)).collect())
}

/// The parsed trimming and XADD options (`streamAddTrimArgs`).
#[derive(Default)]
struct AddTrimArgs {
    maxlen: Option<usize>,
    minid: Option<StreamId>,
    approx: bool,
    limit: usize,
    nomkstream: bool,
    id: Option<(StreamId, bool)>,
}

impl AddTrimArgs {
    fn has_strategy(&self) -> bool {
        self.maxlen.is_some() || self.minid.is_some()
    }
}

/// `streamParseAddOrTrimArgsOrReply`; returns the options and the position of the id (XADD).
fn parse_add_trim(argv: &[Bytes], xadd: bool, limits: NodeLimits) -> R<(AddTrimArgs, usize)> {
    let mut a = AddTrimArgs::default();
    let mut limit: Option<i64> = None;
    let mut i = 2;
    let exclusive = || {
        Reply::err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
    };
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = &argv[i][..];
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if a.has_strategy() {
                return Err(exclusive());
            }
            a.approx = false;
            let next = &argv[i + 1][..];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if is(opt, "maxlen") {
                let v = int(&argv[i + 1])?;
                if v < 0 {
                    return Err(Reply::err("ERR The MAXLEN argument must be >= 0."));
                }
                a.maxlen = Some(v as usize);
            } else {
                a.minid = Some(parse_strict_id(&argv[i + 1], 0)?);
            }
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            let v = int(&argv[i + 1])?;
            if v < 0 {
                return Err(Reply::err("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(v);
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            a.id = Some(parse_id_full(opt, 0, true, true)?);
            break;
        } else {
            return Err(Reply::err(SYNTAX));
        }
        i += 1;
    }
    if limit.is_some_and(|l| l != 0) && !a.has_strategy() {
        return Err(Reply::err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && !a.has_strategy() {
        return Err(Reply::err(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    match limit {
        Some(_) if !a.approx => {
            return Err(Reply::err(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ))
        }
        Some(l) => a.limit = l as usize,
        None if a.approx => {
            a.limit = match 100 * limits.entries {
                0 => 10_000,
                l => l.min(10_000),
            }
        }
        None => a.limit = 0,
    }
    Ok((a, i))
}

fn trim(s: &mut Stream, a: &AddTrimArgs, limits: NodeLimits) -> usize {
    s.trim(a.maxlen, a.minid, a.approx, a.limit, limits.entries)
}

/// The node limits from CONFIG.
fn node_limits(ctx: &Ctx) -> NodeLimits {
    let c = &ctx.w.config;
    NodeLimits {
        entries: c.get_i64("stream-node-max-entries").max(0) as usize,
        bytes: c.get_i64("stream-node-max-bytes").max(0) as usize,
    }
}

fn xadd(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let limits = node_limits(ctx);
        let (a, idpos) = parse_add_trim(argv, true, limits)?;
        let field_pos = idpos + 1;
        if argv.len() < field_pos + 2 || (argv.len() - field_pos) % 2 == 1 {
            return Err(wrong_args("xadd"));
        }
        if let Some((id, true)) = a.id {
            if id.is_zero() {
                return Err(Reply::err(
                    "ERR The ID specified in XADD must be greater than 0-0",
                ));
            }
        }
        let key = &argv[1];
        let exists = ctx.db().get_stream(key)?.is_some();
        if !exists {
            if a.nomkstream {
                return Ok(Reply::Nil);
            }
            ctx.db().set(key.clone(), Value::Stream(Box::default()));
        }
        let now = ctx.now;
        let s = ctx.db().get_stream_mut(key)?.expect("stream");
        if s.last_id == StreamId::MAX {
            return Err(Reply::err(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let too_small = || {
            Reply::err(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            )
        };
        let id = match a.id {
            Some((id, true)) => id,
            Some((id, false)) => {
                if s.last_id.ms == id.ms {
                    if s.last_id.seq == u64::MAX {
                        return Err(too_small());
                    }
                    StreamId::new(id.ms, s.last_id.seq + 1)
                } else {
                    id
                }
            }
            None => {
                let ms = now.max(0) as u64;
                if ms > s.last_id.ms {
                    StreamId::new(ms, 0)
                } else {
                    s.last_id.incr().expect("not exhausted")
                }
            }
        };
        if id <= s.last_id {
            return Err(too_small());
        }
        s.append(id, argv[field_pos..].to_vec(), limits);
        if a.has_strategy() {
            trim(s, &a, limits);
        }
        ctx.modified(key);
        ctx.signal_ready(key);
        Ok(id_reply(&id))
    })())
}

fn xlen(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        Ok(Reply::Int(
            ctx.db().get_stream(&argv[1])?.map_or(0, |s| s.len()) as i64,
        ))
    })())
}

fn xrange_generic(ctx: &mut Ctx, argv: &[Bytes], rev: bool) -> R<Reply> {
    let (start_arg, end_arg) = if rev {
        (&argv[3], &argv[2])
    } else {
        (&argv[2], &argv[3])
    };
    let start = interval_start(start_arg)?;
    let end = interval_end(end_arg)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < argv.len() {
        if is(&argv[j], "count") && j + 1 < argv.len() {
            count = int(&argv[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(Reply::err(SYNTAX));
        }
    }
    let Some(s) = ctx.db().get_stream(&argv[1])? else {
        return Ok(Reply::Array(vec![]));
    };
    if count == 0 {
        return Ok(Reply::NilArray);
    }
    let count = if count < 0 { 0 } else { count as usize };
    Ok(entries_reply(&s.range(start, end, count, rev)))
}

fn xrange(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(xrange_generic(ctx, argv, false))
}

fn xrevrange(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply(xrange_generic(ctx, argv, true))
}

fn xdel(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let key = &argv[1];
        if ctx.db().get_stream(key)?.is_none() {
            return Ok(Reply::Int(0));
        }
        let ids = argv[2..]
            .iter()
            .map(|a| parse_strict_id(a, 0))
            .collect::<R<Vec<_>>>()?;
        let s = ctx.db().get_stream_mut(key)?.expect("stream");
        let mut deleted = 0;
        for id in &ids {
            if s.delete(id) {
                if *id > s.max_deleted {
                    s.max_deleted = *id;
                }
                deleted += 1;
            }
        }
        if deleted > 0 {
            ctx.modified(key);
        }
        Ok(Reply::Int(deleted))
    })())
}

fn xtrim(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let limits = node_limits(ctx);
        let (a, _) = parse_add_trim(argv, false, limits)?;
        let key = &argv[1];
        let Some(s) = ctx.db().get_stream_mut(key)? else {
            return Ok(Reply::Int(0));
        };
        let n = trim(s, &a, limits);
        if n > 0 {
            ctx.modified(key);
        }
        Ok(Reply::Int(n as i64))
    })())
}

fn xsetid(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let id = parse_strict_id(&argv[2], 0)?;
        let mut entries_added: i64 = -1;
        let mut max_xdel = StreamId::MIN;
        let mut i = 3;
        while i < argv.len() {
            let more = argv.len() - 1 - i;
            if is(&argv[i], "entriesadded") && more > 0 {
                entries_added = int(&argv[i + 1])?;
                if entries_added < 0 {
                    return Err(Reply::err("ERR entries_added must be positive"));
                }
                i += 2;
            } else if is(&argv[i], "maxdeletedid") && more > 0 {
                max_xdel = parse_strict_id(&argv[i + 1], 0)?;
                if id < max_xdel {
                    return Err(Reply::err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
                }
                i += 2;
            } else {
                return Err(Reply::err(SYNTAX));
            }
        }
        let key = &argv[1];
        let Some(s) = ctx.db().get_stream_mut(key)? else {
            return Err(Reply::err(NO_SUCH_KEY));
        };
        if !s.is_empty() {
            if id < s.last_valid_id() {
                return Err(Reply::err(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if entries_added != -1 && s.len() as i64 > entries_added {
                return Err(Reply::err("ERR The entries_added specified in XSETID is smaller than the target stream length"));
            }
        }
        s.last_id = id;
        if entries_added != -1 {
            s.entries_added = entries_added as u64;
        }
        if !max_xdel.is_zero() {
            s.max_deleted = max_xdel;
        }
        // Redis does not signal a modified key here (WATCH is not touched).
        ctx.w.dirty += 1;
        Ok(Reply::ok())
    })())
}

fn xinfo_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help(
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    )
}

fn kv(k: &str, v: Reply) -> (Reply, Reply) {
    (Reply::bulk_str(k), v)
}

fn entries_read_reply(g: &Group) -> Reply {
    if g.entries_read != INVALID_READ {
        Reply::Int(g.entries_read)
    } else {
        Reply::Nil
    }
}

fn lag_reply(s: &Stream, g: &Group) -> Reply {
    s.lag(g).map_or(Reply::Nil, Reply::Int)
}

fn xinfo(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    reply((|| {
        let now = ctx.now;
        let key = &argv[2];
        let Some(s) = ctx.db().get_stream(key)? else {
            return Err(Reply::err(NO_SUCH_KEY));
        };
        let sub = &argv[1];
        if is(sub, "consumers") {
            let Some(g) = s.groups.get(&argv[3]) else {
                return Err(Reply::err(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(&argv[3]),
                    String::from_utf8_lossy(key)
                )));
            };
            let out = g
                .consumers
                .iter()
                .map(|(name, c)| {
                    Reply::Map(vec![
                        kv("name", Reply::Bulk(name.clone())),
                        kv("pending", Reply::Int(c.pel.len() as i64)),
                        kv("idle", Reply::Int((now - c.seen_time).max(0))),
                    ])
                })
                .collect();
            return Ok(Reply::Array(out));
        }
        if is(sub, "groups") {
            let out = s
                .groups
                .iter()
                .map(|(name, g)| {
                    Reply::Map(vec![
                        kv("name", Reply::Bulk(name.clone())),
                        kv("consumers", Reply::Int(g.consumers.len() as i64)),
                        kv("pending", Reply::Int(g.pel.len() as i64)),
                        kv("last-delivered-id", id_reply(&g.last_id)),
                        kv("entries-read", entries_read_reply(g)),
                        kv("lag", lag_reply(s, g)),
                    ])
                })
                .collect();
            return Ok(Reply::Array(out));
        }
        // STREAM [FULL [COUNT n]]
        let opts = &argv[3..];
        let mut full = true;
        let mut count: i64 = 10;
        if opts.is_empty() {
            full = false;
        } else {
            if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
                return Err(subcommand_syntax_error(argv));
            }
            if opts.len() == 3 {
                if !is(&opts[1], "count") {
                    return Err(subcommand_syntax_error(argv));
                }
                count = parse_i64(&opts[2]).ok_or_else(|| Reply::err(NOT_INT))?;
                if count < 0 {
                    count = 10;
                }
            }
        }
        let mut m = vec![
            kv("length", Reply::Int(s.len() as i64)),
            kv("radix-tree-keys", Reply::Int(s.rax_keys() as i64)),
            kv("radix-tree-nodes", Reply::Int(s.rax_nodes() as i64)),
            kv("last-generated-id", id_reply(&s.last_id)),
            kv("max-deleted-entry-id", id_reply(&s.max_deleted)),
            kv("entries-added", Reply::Int(s.entries_added as i64)),
            kv("recorded-first-entry-id", id_reply(&s.first_id())),
        ];
        if !full {
            m.push(kv("groups", Reply::Int(s.groups.len() as i64)));
            let edge = |rev: bool| {
                s.range(StreamId::MIN, StreamId::MAX, 1, rev)
                    .first()
                    .map_or(Reply::Nil, |(id, fv)| entry_reply(id, fv))
            };
            m.push(kv("first-entry", edge(false)));
            m.push(kv("last-entry", edge(true)));
            return Ok(Reply::Map(m));
        }
        let count = count as usize;
        let take = |n: usize| if count == 0 { n } else { n.min(count) };
        m.push(kv(
            "entries",
            entries_reply(&s.range(StreamId::MIN, StreamId::MAX, count, false)),
        ));
        let groups = s
            .groups
            .iter()
            .map(|(name, g)| {
                let pel = g
                    .pel
                    .iter()
                    .take(take(g.pel.len()))
                    .map(|(id, n)| {
                        Reply::Array(vec![
                            id_reply(id),
                            Reply::Bulk(n.consumer.clone()),
                            Reply::Int(n.delivery_time),
                            Reply::Int(n.delivery_count as i64),
                        ])
                    })
                    .collect();
                let consumers = g
                    .consumers
                    .iter()
                    .map(|(cname, c)| {
                        let cpel = c
                            .pel
                            .iter()
                            .take(take(c.pel.len()))
                            .map(|id| {
                                let n = &g.pel[id];
                                Reply::Array(vec![
                                    id_reply(id),
                                    Reply::Int(n.delivery_time),
                                    Reply::Int(n.delivery_count as i64),
                                ])
                            })
                            .collect();
                        Reply::Map(vec![
                            kv("name", Reply::Bulk(cname.clone())),
                            kv("seen-time", Reply::Int(c.seen_time)),
                            kv("pel-count", Reply::Int(c.pel.len() as i64)),
                            kv("pending", Reply::Array(cpel)),
                        ])
                    })
                    .collect();
                Reply::Map(vec![
                    kv("name", Reply::Bulk(name.clone())),
                    kv("last-delivered-id", id_reply(&g.last_id)),
                    kv("entries-read", entries_read_reply(g)),
                    kv("lag", lag_reply(s, g)),
                    kv("pel-count", Reply::Int(g.pel.len() as i64)),
                    kv("pending", Reply::Array(pel)),
                    kv("consumers", Reply::Array(consumers)),
                ])
            })
            .collect();
        m.push(kv("groups", Reply::Array(groups)));
        Ok(Reply::Map(m))
    })())
}
