//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! The dispatcher queues commands while a client is in MULTI (and marks the transaction failed
//! on queue-time errors); EXEC replays the queue through `call_nested`, which never blocks.

use bytes::Bytes;

use super::{Command, Ctx, Flags as F};
use crate::commands::table::{self, Resolved};
use crate::protocol::Reply;
use crate::server::dispatch::call_nested;

pub const COMMANDS: &[Command] = &[
    Command::new(
        "multi",
        1,
        F::NOSCRIPT | F::LOADING | F::STALE | F::FAST | F::ALLOW_BUSY,
        multi,
    )
    .doc("transactions", "Mark the start of a transaction block", ""),
    Command::new(
        "exec",
        1,
        F::NOSCRIPT | F::LOADING | F::STALE | F::SKIP_SLOWLOG,
        exec,
    )
    .doc(
        "transactions",
        "Execute all commands issued after MULTI",
        "",
    ),
    Command::new(
        "discard",
        1,
        F::NOSCRIPT | F::LOADING | F::STALE | F::FAST | F::ALLOW_BUSY,
        discard,
    )
    .doc(
        "transactions",
        "Discard all commands issued after MULTI",
        "",
    ),
    Command::new(
        "watch",
        -2,
        F::NOSCRIPT | F::LOADING | F::STALE | F::FAST | F::ALLOW_BUSY,
        watch,
    )
    .keys(1, -1, 1)
    .doc(
        "transactions",
        "Watch the given keys to determine execution of the MULTI/EXEC block",
        "key [key ...]",
    ),
    Command::new(
        "unwatch",
        1,
        F::NOSCRIPT | F::LOADING | F::STALE | F::FAST | F::ALLOW_BUSY,
        unwatch,
    )
    .doc("transactions", "Forget about all watched keys", ""),
];

fn in_multi(ctx: &Ctx) -> bool {
    ctx.w
        .clients
        .get(&ctx.client)
        .is_some_and(|c| c.multi.is_some())
}

fn multi(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let Some(c) = ctx.w.clients.get_mut(&ctx.client) else {
        return Reply::None;
    };
    if c.multi.is_some() {
        return Reply::err("ERR MULTI calls can not be nested");
    }
    c.multi = Some(Vec::new());
    c.multi_failed = false;
    Reply::ok()
}

fn discard(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    if !in_multi(ctx) {
        return Reply::err("ERR DISCARD without MULTI");
    }
    discard_state(ctx);
    Reply::ok()
}

/// True if a WATCHed key has expired since it was watched (Redis's isWatchedKeyExpired).
fn watched_key_expired(ctx: &mut Ctx) -> bool {
    let Some(c) = ctx.w.clients.get(&ctx.client) else {
        return false;
    };
    let watched = c.watched.clone();
    let now = ctx.now;
    watched.iter().any(|(db, key)| {
        let d = &mut ctx.w.keyspace.dbs[*db];
        d.now = now;
        d.has_expired_entry(key)
    })
}

fn exec(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    if !in_multi(ctx) {
        return Reply::err("ERR EXEC without MULTI");
    }
    if watched_key_expired(ctx) {
        if let Some(c) = ctx.w.clients.get_mut(&ctx.client) {
            c.watch_dirty = true;
        }
    }
    let c = ctx.w.clients.get_mut(&ctx.client).expect("client");
    let (failed, dirty) = (c.multi_failed, c.watch_dirty);
    let queued = c.multi.take().unwrap_or_default();
    discard_state(ctx);
    if failed {
        return Reply::err("EXECABORT Transaction discarded because of previous errors.");
    }
    if dirty {
        return Reply::NilArray;
    }
    let mut replies = Vec::with_capacity(queued.len());
    for argv in &queued {
        let reply = match table::resolve(argv) {
            Resolved::Found(cmd) => {
                let r = call_nested(ctx, cmd, argv);
                // A command that changed the protocol (HELLO) affects the replies after it.
                if let Some(c) = ctx.w.clients.get(&ctx.client) {
                    ctx.resp3 = c.resp3;
                }
                r
            }
            _ => Reply::err("ERR unknown command"),
        };
        replies.push(reply);
    }
    Reply::Array(replies)
}

fn watch(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if in_multi(ctx) {
        return Reply::err("ERR WATCH inside MULTI is not allowed");
    }
    let id = ctx.client;
    let db = ctx.db;
    for key in &argv[1..] {
        // A key already expired is dropped now, so only later expiries dirty the WATCH.
        ctx.db().exists(key);
        let k = (db, key.clone());
        let c = ctx.w.clients.get_mut(&id).expect("client");
        if c.watched.contains(&k) {
            continue;
        }
        c.watched.push(k.clone());
        ctx.w.watchers.entry(k).or_default().push(id);
    }
    Reply::ok()
}

fn unwatch(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let id = ctx.client;
    let Some(c) = ctx.w.clients.get_mut(&id) else {
        return Reply::ok();
    };
    c.watch_dirty = false;
    let watched = std::mem::take(&mut c.watched);
    for k in &watched {
        ctx.w.unwatch_key(id, k);
    }
    Reply::ok()
}

/// Leaves MULTI and forgets WATCHed keys (DISCARD, RESET).
pub fn discard_state(ctx: &mut crate::commands::Ctx) {
    let id = ctx.client;
    let Some(c) = ctx.w.clients.get_mut(&id) else {
        return;
    };
    c.multi = None;
    c.multi_failed = false;
    c.watch_dirty = false;
    let watched = std::mem::take(&mut c.watched);
    for k in &watched {
        ctx.w.unwatch_key(id, k);
    }
}
