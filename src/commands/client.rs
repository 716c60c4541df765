//! CLIENT and its subcommands.

use bytes::Bytes;

use super::args::{int, is, lower, timeout_deadline_ms, SYNTAX};
use super::client_tracking::{caching, getredir, list_flags, redir, tracking, trackinginfo};
use super::introspection::validate_client_name;
use super::server::help;
use super::{Command, Ctx, Flags as F};
use crate::protocol::Reply;
use crate::server::client::{Client, ReplyMode};
use crate::server::ClientId;

const NS: u32 = F::NOSCRIPT | F::LOADING | F::STALE;
const ADM: u32 = F::ADMIN | NS;

pub const CLIENT: Command = Command::new("client", -2, 0, super::server::container)
    .subs(SUBS)
    .doc(
        "connection",
        "A container for client connection commands",
        "",
    );

const SUBS: &[Command] = &[
    Command::new("client|caching", 3, NS, caching).doc(
        "connection",
        "Instruct the server about tracking or not keys in the next request",
        "YES|NO",
    ),
    Command::new("client|getname", 2, NS, getname).doc(
        "connection",
        "Get the current connection name",
        "",
    ),
    Command::new("client|getredir", 2, NS, getredir).doc(
        "connection",
        "Get tracking notifications redirection client ID if any",
        "",
    ),
    Command::new("client|id", 2, NS, id).doc(
        "connection",
        "Returns the client ID for the current connection",
        "",
    ),
    Command::new("client|info", 2, NS, info).doc(
        "connection",
        "Returns information about the current client connection.",
        "",
    ),
    Command::new("client|kill", -3, ADM, kill).doc(
        "connection",
        "Kill the connection of a client",
        "ip:port|[ID client-id] [TYPE NORMAL|MASTER|SLAVE|REPLICA|PUBSUB] [USER username] [ADDR ip:port] [LADDR ip:port] [SKIPME yes/no]",
    ),
    Command::new("client|list", -2, ADM, list).doc(
        "connection",
        "Get the list of client connections",
        "[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id [client-id ...]]",
    ),
    Command::new("client|no-evict", 3, ADM, no_evict).doc(
        "connection",
        "Set client eviction mode for the current connection",
        "ON|OFF",
    ),
    Command::new("client|pause", -3, ADM, pause).doc(
        "connection",
        "Stop processing commands from clients for some time",
        "timeout [WRITE|ALL]",
    ),
    Command::new("client|reply", 3, NS, reply).doc(
        "connection",
        "Instruct the server whether to reply to commands",
        "ON|OFF|SKIP",
    ),
    Command::new("client|setinfo", 4, NS, setinfo).doc(
        "connection",
        "Set client or connection specific info",
        "LIB-NAME libname|LIB-VER libver",
    ),
    Command::new("client|setname", 3, NS, setname).doc(
        "connection",
        "Set the current connection name",
        "connection-name",
    ),
    Command::new("client|tracking", -3, NS, tracking).doc(
        "connection",
        "Enable or disable server assisted client side caching support",
        "ON|OFF [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]",
    ),
    Command::new("client|trackinginfo", 2, NS, trackinginfo).doc(
        "connection",
        "Return information about server assisted client side caching for the current connection",
        "",
    ),
    Command::new("client|unblock", -3, ADM, unblock).doc(
        "connection",
        "Unblock a client blocked in a blocking command from a different connection",
        "client-id [TIMEOUT|ERROR]",
    ),
    Command::new("client|unpause", 2, ADM, unpause).doc(
        "connection",
        "Resume processing of clients that were paused",
        "",
    ),
    Command::new("client|help", 2, F::LOADING | F::STALE, client_help).doc(
        "connection",
        "Show helpful text about the different subcommands",
        "",
    ),
];

fn me<'a>(ctx: &'a mut Ctx) -> &'a mut Client {
    ctx.w.clients.get_mut(&ctx.client).expect("client")
}

/// `flags=` as Redis 7.0's catClientInfoString orders them.
fn flags(c: &Client) -> String {
    let mut f = String::new();
    if c.monitor {
        f.push('O');
    }
    if c.subscriptions() > 0 {
        f.push('P');
    }
    if c.multi.is_some() {
        f.push('x');
    }
    if c.blocked.is_some() {
        f.push('b');
    }
    list_flags(c.tracking.as_deref(), &mut f);
    if c.watch_dirty {
        f.push('d');
    }
    if c.closing {
        f.push('c');
    }
    if c.no_evict {
        f.push('e');
    }
    if f.is_empty() {
        f.push('N');
    }
    f
}

/// One CLIENT LIST line (Redis 7.0 fields), without the newline.
fn info_line(c: &Client, now: i64) -> String {
    let multi = c.multi.as_ref().map_or(-1, |m| m.len() as i64);
    // Output the socket has not taken yet (what the output buffer limits count).
    let omem = c.sender.pending_bytes();
    let name = c
        .name
        .as_ref()
        .map(|n| String::from_utf8_lossy(n).into_owned());
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir={} resp={}",
        c.id,
        c.addr,
        c.local,
        c.id + 7,
        name.unwrap_or_default(),
        ((now - c.created) / 1000).max(0),
        ((now - c.last_active) / 1000).max(0),
        flags(c),
        c.db,
        c.channels.len(),
        c.patterns.len(),
        c.shard_channels.len(),
        multi,
        omem,
        1024 + omem,
        c.last_cmd,
        redir(c.tracking.as_deref()),
        if c.resp3 { 3 } else { 2 },
    )
}

fn getname(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::bulk_opt(me(ctx).name.clone())
}

fn id(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Int(ctx.client as i64)
}

fn info(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let now = ctx.now;
    let line = info_line(me(ctx), now);
    Reply::Verbatim(Bytes::from(line + "\n"))
}

/// Redis's getClientType names: normal, replica/slave, master, pubsub.
fn client_type(name: &[u8]) -> Option<&'static str> {
    match lower(name).as_str() {
        "normal" => Some("normal"),
        "slave" | "replica" => Some("replica"),
        "master" => Some("master"),
        "pubsub" => Some("pubsub"),
        _ => None,
    }
}

fn type_of(c: &Client) -> &'static str {
    if c.subscriptions() > 0 {
        "pubsub"
    } else {
        "normal"
    }
}

fn unknown_type(name: &[u8]) -> Reply {
    Reply::err(format!(
        "ERR Unknown client type '{}'",
        String::from_utf8_lossy(name)
    ))
}

fn list(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let now = ctx.now;
    let mut ids: Vec<ClientId> = Vec::new();
    if argv.len() == 4 && is(&argv[2], "type") {
        let Some(t) = client_type(&argv[3]) else {
            return unknown_type(&argv[3]);
        };
        ids = ctx
            .w
            .clients
            .values()
            .filter(|c| type_of(c) == t)
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
    } else if argv.len() >= 4 && is(&argv[2], "id") {
        for a in &argv[3..] {
            match int(a) {
                Ok(v) => {
                    if let Ok(v) = ClientId::try_from(v) {
                        ids.push(v);
                    }
                }
                Err(_) => return Reply::err("ERR Invalid client ID"),
            }
        }
        ids.retain(|i| ctx.w.clients.contains_key(i));
    } else if argv.len() != 2 {
        return Reply::err(SYNTAX);
    } else {
        ids = ctx.w.clients.keys().copied().collect();
        ids.sort_unstable();
    }
    let mut out = String::new();
    for i in ids {
        out.push_str(&info_line(&ctx.w.clients[&i], now));
        out.push('\n');
    }
    Reply::Verbatim(Bytes::from(out))
}

fn kill(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let me_id = ctx.client;
    if argv.len() == 3 {
        // Old form: CLIENT KILL addr.
        let addr = String::from_utf8_lossy(&argv[2]).into_owned();
        let found = ctx
            .w
            .clients
            .values()
            .find(|c| c.addr.to_string() == addr)
            .map(|c| c.id);
        return match found {
            Some(id) => {
                ctx.w.kill_client(id);
                Reply::ok()
            }
            None => Reply::err("ERR No such client"),
        };
    }
    let mut id_filter: Option<ClientId> = None;
    let mut type_filter: Option<&'static str> = None;
    let mut addr: Option<String> = None;
    let mut laddr: Option<String> = None;
    let mut skipme = true;
    let mut i = 2;
    while i < argv.len() {
        if i + 1 >= argv.len() {
            return Reply::err(SYNTAX);
        }
        let (opt, val) = (&argv[i], &argv[i + 1]);
        if is(opt, "id") {
            match int(val) {
                Ok(v) if v > 0 => id_filter = Some(v as ClientId),
                _ => return Reply::err("ERR client-id should be greater than 0"),
            }
        } else if is(opt, "type") {
            match client_type(val) {
                Some(t) => type_filter = Some(t),
                None => return unknown_type(val),
            }
        } else if is(opt, "addr") {
            addr = Some(String::from_utf8_lossy(val).into_owned());
        } else if is(opt, "laddr") {
            laddr = Some(String::from_utf8_lossy(val).into_owned());
        } else if is(opt, "user") {
            if val.as_ref() != b"default" {
                return Reply::err(format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(val)
                ));
            }
        } else if is(opt, "skipme") {
            if is(val, "yes") {
                skipme = true;
            } else if is(val, "no") {
                skipme = false;
            } else {
                return Reply::err(SYNTAX);
            }
        } else {
            return Reply::err(SYNTAX);
        }
        i += 2;
    }
    let victims: Vec<ClientId> = ctx
        .w
        .clients
        .values()
        .filter(|c| id_filter.is_none_or(|i| c.id == i))
        .filter(|c| type_filter.is_none_or(|t| type_of(c) == t))
        .filter(|c| addr.as_ref().is_none_or(|a| c.addr.to_string() == *a))
        .filter(|c| laddr.as_ref().is_none_or(|a| c.local.to_string() == *a))
        .filter(|c| !(skipme && c.id == me_id))
        .map(|c| c.id)
        .collect();
    for v in &victims {
        ctx.w.kill_client(*v);
    }
    Reply::Int(victims.len() as i64)
}

fn on_off(arg: &[u8]) -> Option<bool> {
    if is(arg, "on") {
        Some(true)
    } else if is(arg, "off") {
        Some(false)
    } else {
        None
    }
}

fn no_evict(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    match on_off(&argv[2]) {
        Some(v) => {
            me(ctx).no_evict = v;
            Reply::ok()
        }
        None => Reply::err(SYNTAX),
    }
}

fn pause(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 4 {
        return super::server::subcommand_syntax_error(argv);
    }
    let deadline = match timeout_deadline_ms(&argv[2], ctx.now) {
        Ok(d) => d.unwrap_or(ctx.now),
        Err(e) => return e,
    };
    let all = match argv.len() {
        3 => true,
        4 if is(&argv[3], "all") => true,
        4 if is(&argv[3], "write") => false,
        _ => return Reply::err("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    ctx.w.pause_clients(deadline, all);
    Reply::ok()
}

fn unpause(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    ctx.w.unpause_clients();
    Reply::ok()
}

fn reply(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let c = me(ctx);
    if is(&argv[2], "on") {
        c.reply_mode = ReplyMode::On;
        Reply::ok()
    } else if is(&argv[2], "off") {
        c.reply_mode = ReplyMode::Off;
        Reply::None
    } else if is(&argv[2], "skip") {
        if c.reply_mode != ReplyMode::Off {
            c.reply_mode = ReplyMode::SkipNext;
        }
        Reply::None
    } else {
        Reply::err(SYNTAX)
    }
}

fn setinfo(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let attr = lower(&argv[2]);
    if attr != "lib-name" && attr != "lib-ver" {
        return Reply::err(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(&argv[2])
        ));
    }
    if argv[3].iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Reply::err(format!(
            "ERR {attr} cannot contain spaces, newlines or special characters."
        ));
    }
    let value = (!argv[3].is_empty()).then(|| argv[3].clone());
    let c = me(ctx);
    if attr == "lib-name" {
        c.lib_name = value;
    } else {
        c.lib_ver = value;
    }
    Reply::ok()
}

fn setname(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if let Err(e) = validate_client_name(&argv[2]) {
        return e;
    }
    let name = (!argv[2].is_empty()).then(|| argv[2].clone());
    me(ctx).name = name;
    Reply::ok()
}

fn unblock(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let target = match int(&argv[2]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let error = match argv.len() {
        3 => false,
        4 if is(&argv[3], "timeout") => false,
        4 if is(&argv[3], "error") => true,
        _ => return Reply::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let Ok(target) = ClientId::try_from(target) else {
        return Reply::Int(0);
    };
    let timeout_reply = match ctx.w.clients.get(&target).and_then(|c| c.blocked.as_ref()) {
        Some(b) => b.req.timeout_reply.clone(),
        None => return Reply::Int(0),
    };
    let reply = if error {
        Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    } else {
        timeout_reply
    };
    ctx.w.unblock(target, reply);
    Reply::Int(1)
}

fn client_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help(
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    )
}
