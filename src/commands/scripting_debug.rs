//! SCRIPT DEBUG and EVAL under the Lua debugger (`crate::scripting::ldb`), as Redis 7.0.15's
//! eval.c: YES or SYNC makes the client's next EVAL a debugging session; at its end the
//! client gets `<endsession>`, the EVAL reply, and the connection is closed.
//!
//! Redis runs a YES session in a forked child, so its changes never reach the server; Berth
//! cannot fork: it runs the session on the keyspace thread like SYNC (blocking the server for
//! the session) and undoes every change the script made when it ends (`server/discard.rs`).

use bytes::Bytes;

use super::scripting::{eval_generic, with_engine};
use super::Ctx;
use crate::protocol::Reply;
use crate::scripting::{ldb, sha1hex};
use crate::server::client::LuaDebug;

/// SCRIPT DEBUG YES|SYNC|NO.
pub fn script_debug(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    // Inside EXEC the transaction's reply has begun (Redis's clientHasPendingReplies).
    let in_exec = !ctx.may_block;
    let Some(c) = ctx.w.clients.get_mut(&ctx.client) else {
        return Reply::None;
    };
    if in_exec || !c.out.is_empty() || c.sender.has_pending_output() {
        return Reply::err("ERR SCRIPT DEBUG must be called outside a pipeline");
    }
    let mode = &argv[2];
    if mode.eq_ignore_ascii_case(b"no") {
        c.lua_debug = None;
    } else if mode.eq_ignore_ascii_case(b"yes") {
        ldb::enable();
        c.lua_debug = Some(LuaDebug::Fork);
    } else if mode.eq_ignore_ascii_case(b"sync") {
        ldb::enable();
        c.lua_debug = Some(LuaDebug::Sync);
    } else {
        return Reply::err("ERR Use SCRIPT DEBUG YES/SYNC/NO");
    }
    Reply::ok()
}

/// EVAL of a client in debug mode (evalGenericCommandWithDebugging): the whole command,
/// errors included, is the session; the connection closes after its reply.
pub fn eval(ctx: &mut Ctx, argv: &[Bytes], ro: bool, mode: LuaDebug) -> Reply {
    let fork = mode == LuaDebug::Fork;
    let Some(fd) = ctx.w.clients.get(&ctx.client).map(|c| c.sender.raw_fd()) else {
        return Reply::None;
    };
    if fork {
        tracing::warn!("Redis forked for debugging eval");
        ctx.w.discard_begin();
    } else {
        tracing::warn!("Redis synchronous debugging eval session started");
    }
    ldb::start(fd, &argv[1], ctx.w.config.get_i64("busy-reply-threshold"));
    let sha = sha1hex(&argv[1]);
    let cached = with_engine(ctx, |engine, _| {
        engine.debugging = true;
        engine.scripts.contains_key(&sha)
    });
    let reply = eval_generic(ctx, argv, false, ro);
    with_engine(ctx, |engine, _| {
        engine.debugging = false;
        if fork && !cached {
            // The forked child compiled it: the server never had it.
            engine.scripts.remove(&sha);
        }
    });
    ldb::end();
    if fork {
        ctx.w.discard_end();
        tracing::warn!("Lua debugging session child exiting");
    } else {
        tracing::warn!("Redis synchronous debugging eval session ended");
    }
    if let Some(c) = ctx.w.clients.get_mut(&ctx.client) {
        // Closed after the EVAL reply: that is how the session's end shows (and the client's
        // later commands, like those Redis left in its query buffer, are not run).
        c.lua_debug = None;
        c.closing = true;
    }
    ctx.w.mark_output(ctx.client);
    reply
}
