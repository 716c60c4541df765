//! Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT.

use bytes::Bytes;

use super::args::{int, is, R};
use super::{Command, Ctx, Flags as F};
use crate::protocol::Reply;
use crate::server::client::ReplyMode;

pub const VERSION: &str = "7.0.15";

pub const COMMANDS: &[Command] = &[
    Command::new("ping", -1, F::FAST, ping).doc("connection", "Ping the server", "[message]"),
    Command::new("echo", 2, F::LOADING | F::STALE | F::FAST, echo).doc(
        "connection",
        "Echo the given string",
        "message",
    ),
    Command::new(
        "quit",
        -1,
        F::ALLOW_BUSY | F::NOSCRIPT | F::NO_AUTH | F::LOADING | F::STALE | F::FAST,
        quit,
    )
    .doc("connection", "Close the connection", ""),
    Command::new(
        "reset",
        1,
        F::NOSCRIPT | F::LOADING | F::STALE | F::NO_AUTH | F::FAST | F::ALLOW_BUSY,
        reset,
    )
    .doc("connection", "Reset the connection", ""),
    Command::new(
        "hello",
        -1,
        F::NOSCRIPT | F::LOADING | F::STALE | F::FAST | F::NO_AUTH | F::ALLOW_BUSY,
        hello,
    )
    .doc(
        "connection",
        "Handshake with Redis",
        "[protover [AUTH username password] [SETNAME clientname]]",
    ),
    Command::new(
        "auth",
        -2,
        F::NOSCRIPT | F::LOADING | F::STALE | F::FAST | F::NO_AUTH | F::ALLOW_BUSY,
        auth,
    )
    .doc(
        "connection",
        "Authenticate to the server",
        "[username] password",
    ),
    Command::new("select", 2, F::LOADING | F::STALE | F::FAST, select).doc(
        "connection",
        "Change the selected database for the current connection",
        "index",
    ),
];

fn ping(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 2 {
        return super::args::wrong_args("ping");
    }
    let subscribed = ctx
        .w
        .clients
        .get(&ctx.client)
        .is_some_and(|c| c.subscriptions() > 0);
    if subscribed && !ctx.resp3 {
        let msg = argv.get(1).cloned().unwrap_or_default();
        return Reply::Array(vec![Reply::bulk_str("pong"), Reply::Bulk(msg)]);
    }
    match argv.get(1) {
        Some(m) => Reply::Bulk(m.clone()),
        None => Reply::status("PONG"),
    }
}

fn echo(_ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    Reply::Bulk(argv[1].clone())
}

fn quit(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    if let Some(c) = ctx.w.clients.get_mut(&ctx.client) {
        // The OK is written first: closing happens when the output is flushed.
        if c.reply_mode == ReplyMode::On {
            Reply::ok().encode(&mut c.out, c.resp3);
        }
    }
    ctx.w.kill_client(ctx.client);
    Reply::None
}

fn reset(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    super::transactions::discard_state(ctx);
    super::pubsub::unsubscribe_all(ctx);
    let needs_auth = !ctx.w.config.get("requirepass").is_empty();
    let id = ctx.client;
    ctx.w.monitors.retain(|m| *m != id);
    ctx.w.tracking_disable(id);
    if let Some(c) = ctx.w.clients.get_mut(&id) {
        c.db = 0;
        c.resp3 = false;
        c.name = None;
        c.reply_mode = ReplyMode::On;
        c.monitor = false;
        c.no_evict = false;
        c.authenticated = !needs_auth;
    }
    ctx.db = 0;
    ctx.resp3 = false;
    Reply::status("RESET")
}

/// Checks a username/password pair against the default user.
fn check_password(ctx: &Ctx, user: &[u8], pass: &[u8]) -> bool {
    let required = ctx.w.config.get("requirepass");
    user == b"default" && (required.is_empty() || required.as_bytes() == pass)
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 3 {
        return Reply::err(super::args::SYNTAX);
    }
    let (user, pass) = if argv.len() == 2 {
        if ctx.w.config.get("requirepass").is_empty() {
            return Reply::err(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            );
        }
        (&b"default"[..], &argv[1][..])
    } else {
        (&argv[1][..], &argv[2][..])
    };
    if !check_password(ctx, user, pass) {
        return Reply::err(WRONGPASS);
    }
    if let Some(c) = ctx.w.clients.get_mut(&ctx.client) {
        c.authenticated = true;
    }
    Reply::ok()
}

fn hello(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    match hello_inner(ctx, argv) {
        Ok(r) | Err(r) => r,
    }
}

fn hello_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let mut proto = None;
    if argv.len() >= 2 {
        let v = int(&argv[1])
            .map_err(|_| Reply::err("ERR Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(Reply::err("NOPROTO unsupported protocol version"));
        }
        proto = Some(v == 3);
    }
    let mut i = 2;
    let mut name = None;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        if is(&argv[i], "auth") && more >= 2 {
            if !check_password(ctx, &argv[i + 1], &argv[i + 2]) {
                return Err(Reply::err(WRONGPASS));
            }
            if let Some(c) = ctx.w.clients.get_mut(&ctx.client) {
                c.authenticated = true;
            }
            i += 3;
        } else if is(&argv[i], "setname") && more >= 1 {
            super::introspection::validate_client_name(&argv[i + 1])?;
            name = Some(argv[i + 1].clone());
            i += 2;
        } else {
            return Err(Reply::err(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&argv[i])
            )));
        }
    }
    let c = ctx.w.clients.get_mut(&ctx.client).expect("client");
    if !c.authenticated {
        return Err(Reply::err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(n) = name {
        c.name = if n.is_empty() { None } else { Some(n) };
    }
    if let Some(p) = proto {
        c.resp3 = p;
        ctx.resp3 = p;
    }
    let s = |t: &str| Reply::bulk_str(t);
    Ok(Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(VERSION)),
        (s("proto"), Reply::Int(if ctx.resp3 { 3 } else { 2 })),
        (s("id"), Reply::Int(ctx.client as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(vec![])),
    ]))
}

fn select(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let id = match int(&argv[1]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if id < 0 || id as usize >= ctx.w.keyspace.dbs.len() || id > i32::MAX as i64 {
        return Reply::err("ERR DB index is out of range");
    }
    ctx.db = id as usize;
    Reply::ok()
}
