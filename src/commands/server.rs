//! Server commands: TIME, LASTSAVE, SAVE, BGSAVE, BGREWRITEAOF, SHUTDOWN, ROLE, WAIT, DEBUG,
//! MONITOR, SLOWLOG, LATENCY, plus helpers shared by the container commands (HELP texts).

use bytes::Bytes;

use super::args::{float, int, is, timeout_deadline_ms, wrong_args, SYNTAX};
use super::{Command, Ctx, Flags as F};
use crate::protocol::Reply;
use crate::server::now_us;

pub const COMMANDS: &[Command] = &[
    Command::new("lolwut", -1, F::READONLY | F::FAST, super::lolwut::lolwut).doc(
        "server",
        "Display some computer art and the Redis version",
        "[VERSION version]",
    ),
    Command::new("time", 1, F::LOADING | F::STALE | F::FAST, time).doc(
        "server",
        "Return the current server time",
        "",
    ),
    Command::new("lastsave", 1, F::LOADING | F::STALE | F::FAST, lastsave).doc(
        "server",
        "Get the UNIX time stamp of the last successful save to disk",
        "",
    ),
    Command::new("save", 1, F::ADMIN | F::NOSCRIPT | F::NO_MULTI, save).doc(
        "server",
        "Synchronously save the dataset to disk",
        "",
    ),
    Command::new("bgsave", -1, F::ADMIN | F::NOSCRIPT, bgsave).doc(
        "server",
        "Asynchronously save the dataset to disk",
        "[SCHEDULE]",
    ),
    Command::new("bgrewriteaof", 1, F::ADMIN | F::NOSCRIPT, bgrewriteaof).doc(
        "server",
        "Asynchronously rewrite the append-only file",
        "",
    ),
    Command::new(
        "shutdown",
        -1,
        F::ADMIN | F::NOSCRIPT | F::LOADING | F::STALE | F::NO_MULTI | F::ALLOW_BUSY,
        shutdown,
    )
    .doc(
        "server",
        "Synchronously save the dataset to disk and then shut down the server",
        "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]",
    ),
    Command::new("role", 1, F::NOSCRIPT | F::LOADING | F::STALE | F::FAST, role).doc(
        "server",
        "Return the role of the instance in the context of replication",
        "",
    ),
    Command::new("wait", 3, F::NOSCRIPT, wait).doc(
        "generic",
        "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
        "numreplicas timeout",
    ),
    Command::new(
        "debug",
        -2,
        F::ADMIN | F::NOSCRIPT | F::LOADING | F::STALE,
        debug,
    )
    .doc("server", "A container for debugging commands", "subcommand [argument ...]"),
    Command::new(
        "monitor",
        1,
        F::ADMIN | F::NOSCRIPT | F::LOADING | F::STALE,
        monitor,
    )
    .doc(
        "server",
        "Listen for all requests received by the server in real time",
        "",
    ),
    super::info::INFO,
    Command::new("config", -2, 0, container)
        .subs(super::config_cmd::SUBS)
        .doc("server", "A container for server configuration commands", ""),
    Command::new("slowlog", -2, 0, container)
        .subs(SLOWLOG_SUBS)
        .doc("server", "A container for slow log commands", ""),
    Command::new("latency", -2, 0, container)
        .subs(LATENCY_SUBS)
        .doc("server", "A container for latency diagnostics commands", ""),
];

const ADM: u32 = F::ADMIN | F::LOADING | F::STALE;
const ADMNS: u32 = F::ADMIN | F::NOSCRIPT | F::LOADING | F::STALE;

const SLOWLOG_SUBS: &[Command] = &[
    Command::new("slowlog|get", -2, ADM, slowlog_get).doc(
        "server",
        "Get the slow log's entries",
        "[count]",
    ),
    Command::new("slowlog|len", 2, ADM, slowlog_len).doc("server", "Get the slow log's length", ""),
    Command::new("slowlog|reset", 2, ADM, slowlog_reset).doc(
        "server",
        "Clear all entries from the slow log",
        "",
    ),
    Command::new("slowlog|help", 2, F::LOADING | F::STALE, slowlog_help).doc(
        "server",
        "Show helpful text about the different subcommands",
        "",
    ),
];

const LATENCY_SUBS: &[Command] = &[
    Command::new("latency|doctor", 2, ADMNS, latency_doctor).doc(
        "server",
        "Return a human readable latency analysis report",
        "",
    ),
    Command::new("latency|graph", 3, ADMNS, latency_graph).doc(
        "server",
        "Return a latency graph for the event",
        "event",
    ),
    Command::new("latency|history", 3, ADMNS, latency_history).doc(
        "server",
        "Return timestamp-latency samples for the event",
        "event",
    ),
    Command::new("latency|latest", 2, ADMNS, latency_latest).doc(
        "server",
        "Return the latest latency samples for all events",
        "",
    ),
    Command::new("latency|reset", -2, ADMNS, latency_reset).doc(
        "server",
        "Reset latency data for one or more events",
        "[event [event ...]]",
    ),
    Command::new("latency|histogram", -2, ADMNS, latency_histogram).doc(
        "server",
        "Return the cumulative distribution of latencies of a subset of commands or all.",
        "[command [command ...]]",
    ),
    Command::new("latency|help", 2, F::LOADING | F::STALE, latency_help).doc(
        "server",
        "Show helpful text about the different subcommands",
        "",
    ),
];

/// Handler of a container command (never reached: the dispatcher resolves a subcommand or
/// reports the arity error first).
pub fn container(_ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    wrong_args(&String::from_utf8_lossy(&argv[0]).to_ascii_lowercase())
}

/// `addReplyHelp`: the header line, the subcommand lines, then HELP.
pub fn help(name: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Status(format!(
        "{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::Status(l.to_string())));
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Prints this help."));
    Reply::Array(out)
}

/// `addReplySubcommandSyntaxError`.
pub fn subcommand_syntax_error(argv: &[Bytes]) -> Reply {
    use crate::server::dispatch::c_str;
    let sub = String::from_utf8_lossy(c_str(&argv[1], 128));
    Reply::err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {} HELP.",
        String::from_utf8_lossy(c_str(&argv[0], usize::MAX)).to_ascii_uppercase()
    ))
}

fn time(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let us = now_us();
    Reply::Array(vec![
        Reply::bulk_str(&(us / 1_000_000).to_string()),
        Reply::bulk_str(&(us % 1_000_000).to_string()),
    ])
}

/// With persistence, the last time the store was synced (every sync is a save).
fn lastsave(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let synced = ctx.w.persist.as_ref().map(|p| {
        p.status
            .last_sync
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    Reply::Int(synced.unwrap_or(ctx.w.last_save))
}

/// Marks the dataset as saved. Berth's storage engine persists writes as they happen, so a
/// snapshot has nothing further to write; the counters INFO and LASTSAVE report are reset.
fn mark_saved(ctx: &mut Ctx) {
    ctx.w.persist_force_sync();
    ctx.w.dirty = 0;
    ctx.w.last_save = ctx.now / 1000;
}

fn save(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    if let Some(e) = ctx.w.persist_misconf() {
        // As Redis when rdbSave fails: a bare error, the reason in the log.
        tracing::warn!("SAVE refused: {e}");
        return Reply::err("ERR");
    }
    mark_saved(ctx);
    Reply::ok()
}

fn bgsave(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 2 || (argv.len() == 2 && !is(&argv[1], "schedule")) {
        return Reply::err(SYNTAX);
    }
    mark_saved(ctx);
    Reply::status("Background saving started")
}

fn bgrewriteaof(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    ctx.w.persist_force_sync();
    Reply::status("Background append only file rewriting started")
}

fn shutdown(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let (mut nosave, mut save, mut abort, mut other) = (false, false, false, false);
    let mut force = false;
    for a in &argv[1..] {
        if is(a, "nosave") {
            nosave = true;
        } else if is(a, "save") {
            save = true;
        } else if is(a, "now") {
            other = true;
        } else if is(a, "force") {
            other = true;
            force = true;
        } else if is(a, "abort") {
            abort = true;
        } else {
            return Reply::err(SYNTAX);
        }
    }
    if (nosave && save) || (abort && (nosave || save || other)) {
        return Reply::err(SYNTAX);
    }
    if abort {
        return Reply::err("ERR No shutdown in progress.");
    }
    if let Some(e) = ctx.w.persist_misconf() {
        // Redis's finishShutdown: the final save failing refuses the shutdown unless NOSAVE or
        // FORCE; then write sets never acknowledged are dropped (their clients got no reply).
        if !(nosave || force) {
            tracing::warn!("Error trying to save the DB, can't exit. ({e})");
            return Reply::err("ERR Errors trying to SHUTDOWN. Check logs.");
        }
        tracing::warn!("Error trying to save the DB. Exit anyway. ({e})");
        ctx.w.persist_give_up();
    }
    if save {
        mark_saved(ctx);
    }
    tracing::info!("user requested shutdown");
    ctx.w.shutdown = true;
    Reply::None
}

fn role(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Array(vec![
        Reply::bulk_str("master"),
        Reply::Int(0),
        Reply::Array(vec![]),
    ])
}

fn wait(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let wanted = match int(&argv[1]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let deadline = match timeout_deadline_ms(&argv[2], ctx.now) {
        Ok(d) => d,
        Err(e) => return e,
    };
    // There are no replicas: enough acks only when none are asked for, else wait out the timeout.
    if wanted <= 0 || !ctx.may_block {
        return Reply::Int(0);
    }
    ctx.block_on(Vec::new(), deadline, Reply::Int(0))
}

fn debug(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let sub = &argv[1];
    if is(sub, "help") {
        return help(
            "DEBUG",
            &[
                "OBJECT <key>",
                "    Show low-level info about the <key> and associated value.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        );
    }
    if is(sub, "sleep") && argv.len() == 3 {
        let secs = match float(&argv[2]) {
            Ok(v) => v,
            Err(e) => return e,
        };
        if secs > 0.0 {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
        }
        return Reply::ok();
    }
    if is(sub, "object") && argv.len() == 3 {
        let now = ctx.now;
        let o = super::dump::encode_options(ctx);
        let db = ctx.db();
        let Some(e) = db.peek(&argv[2]) else {
            return Reply::err("ERR no such key");
        };
        let enc = super::introspection::encoding(&e.value);
        let idle = ((now - e.accessed) / 1000).max(0);
        let len = crate::rdb::encode::object_len(&e.value, &o);
        let mut s = format!(
            "Value at:0x{:012x} refcount:1 encoding:{enc} serializedlength:{len} lru:{} lru_seconds_idle:{idle}",
            (e as *const _ as usize) & 0xffff_ffff_ffff,
            (e.accessed / 1000) & 0xff_ffff,
        );
        if let crate::db::Value::List(l) = &e.value {
            let nodes = crate::rdb::encode::quicklist_nodes(l, o.list_max_listpack_size);
            let size: usize = nodes.iter().map(|n| n.bytes()).sum();
            s.push_str(&format!(
                " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:0 ql_uncompressed_size:{size}",
                nodes.len(),
                l.len() as f64 / nodes.len().max(1) as f64,
                o.list_max_listpack_size,
            ));
        }
        return Reply::Status(s);
    }
    let name = String::from_utf8_lossy(sub);
    Reply::err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{name}'. Try DEBUG HELP."
    ))
}

fn monitor(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let id = ctx.client;
    let Some(c) = ctx.w.clients.get_mut(&id) else {
        return Reply::None;
    };
    if c.multi.is_some() || !ctx.may_block {
        return Reply::err("ERR MONITOR isn't allowed for DENY BLOCKING client");
    }
    if c.monitor {
        // Redis answers nothing to a second MONITOR.
        return Reply::None;
    }
    c.monitor = true;
    ctx.w.monitors.push(id);
    Reply::ok()
}

fn slowlog_get(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 3 {
        return subcommand_syntax_error(argv);
    }
    let mut count: i64 = 10;
    if argv.len() == 3 {
        const MSG: &str = "ERR count should be greater than or equal to -1";
        count = match int(&argv[2]) {
            Ok(v) if v >= -1 => v,
            _ => return Reply::err(MSG),
        };
    }
    let take = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    let entries = ctx
        .w
        .slowlog
        .iter()
        .take(take)
        .map(|e| {
            Reply::Array(vec![
                Reply::Int(e.id as i64),
                Reply::Int(e.time),
                Reply::Int(e.micros as i64),
                Reply::bulks(e.argv.iter().cloned()),
                Reply::bulk_str(&e.addr),
                Reply::Bulk(e.name.clone()),
            ])
        })
        .collect();
    Reply::Array(entries)
}

fn slowlog_len(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Int(ctx.w.slowlog.len() as i64)
}

fn slowlog_reset(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    ctx.w.slowlog.clear();
    Reply::ok()
}

fn slowlog_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help(
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    )
}

// Latency monitoring is disabled (latency-monitor-threshold 0), so there are never samples.

fn latency_doctor(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Verbatim(Bytes::from_static(
        b"I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n",
    ))
}

fn latency_graph(_ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    Reply::err(format!(
        "ERR No samples available for event '{}'",
        String::from_utf8_lossy(&argv[2])
    ))
}

fn latency_history(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Array(vec![])
}

fn latency_latest(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Array(vec![])
}

fn latency_reset(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Int(0)
}

/// Redis's fillCommandCDF: cumulative counts at power-of-two reporting levels from 1024 ns.
fn command_cdf(s: &crate::server::core::CommandStats) -> Reply {
    use crate::server::core::hdr_highest;
    let total: u64 = s.latency.values().sum();
    let mut buckets = Vec::new();
    let mut prev = 0;
    let mut level: u64 = 1024;
    while prev < total && level < (1 << 40) {
        let top = hdr_highest(level);
        let cumulative: u64 = s.latency.range(..=top).map(|(_, n)| n).sum();
        if cumulative > prev {
            buckets.push((
                Reply::Int((top / 1000) as i64),
                Reply::Int(cumulative as i64),
            ));
        }
        prev = cumulative;
        level *= 2;
    }
    Reply::Map(vec![
        (Reply::bulk_str("calls"), Reply::Int(s.calls as i64)),
        (Reply::bulk_str("histogram_usec"), Reply::Map(buckets)),
    ])
}

fn latency_histogram(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let stats = &ctx.w.stats.commands;
    let mut out = Vec::new();
    if argv.len() == 2 {
        let mut names: Vec<_> = stats.iter().filter(|(_, s)| s.calls > 0).collect();
        names.sort_by_key(|(n, _)| **n);
        for (name, s) in names {
            out.push((Reply::bulk_str(name), command_cdf(s)));
        }
    } else {
        let mut seen: Vec<&'static str> = Vec::new();
        for a in &argv[2..] {
            let text = super::args::lower(a);
            let found = match text.split_once('|') {
                None => super::table::lookup(a),
                Some((p, sub)) => {
                    super::table::lookup(p.as_bytes()).and_then(|c| c.subcommand(sub.as_bytes()))
                }
            };
            // A container names all its subcommands.
            let cmds: Vec<&'static Command> = match found {
                None => continue,
                Some(c) if !c.subcommands.is_empty() => c.subcommands.iter().collect(),
                Some(c) => vec![c],
            };
            for c in cmds {
                if seen.contains(&c.name) {
                    continue;
                }
                seen.push(c.name);
                if let Some(s) = stats.get(c.name).filter(|s| s.calls > 0) {
                    out.push((Reply::bulk_str(c.name), command_cdf(s)));
                }
            }
        }
    }
    Reply::Map(out)
}

fn latency_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    )
}
