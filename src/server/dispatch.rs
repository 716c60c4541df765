//! From argv to reply: table lookup, the checks Redis's `processCommand` makes (in its order),
//! MULTI queueing, then the handler.

use bytes::Bytes;

use super::client::ReplyMode;
use super::core::World;
use super::{now_ms, ClientId};
use crate::commands::args::wrong_args;
use crate::commands::table::{self, Resolved};
use crate::commands::{BlockRequest, Command, Ctx, Flags};
use crate::protocol::Reply;

/// Runs one command from a client's queue and writes its reply (or registers it as blocked).
pub fn execute(w: &mut World, id: ClientId, argv: Vec<Bytes>) {
    if argv.is_empty() {
        return;
    }
    let cmd = match check(w, id, &argv) {
        Ok(cmd) => cmd,
        Err(reply) => {
            match table::resolve(&argv) {
                Resolved::Found(c) => w.stats.record_rejected(c.name),
                _ => w.stats.rejected_calls += 1,
            }
            if let Reply::Error(e) = &reply {
                w.stats.record_error(e);
            }
            let mut reply = reply;
            if let Some(c) = w.clients.get_mut(&id) {
                if c.multi.is_some() {
                    c.multi_failed = true;
                }
                // A refused EXEC discards any transaction, saying why (execCommandAbort).
                if argv[0].eq_ignore_ascii_case(b"exec") {
                    c.multi = None;
                    c.multi_failed = false;
                    c.watch_dirty = false;
                    let watched = std::mem::take(&mut c.watched);
                    for k in &watched {
                        w.unwatch_key(id, k);
                    }
                    if let Reply::Error(e) = &reply {
                        let why = e.strip_prefix("ERR ").unwrap_or(e);
                        reply = Reply::err(format!(
                            "EXECABORT Transaction discarded because of: {why}"
                        ));
                    }
                }
            }
            write_reply(w, id, &reply);
            if w.tracking.armed {
                let client_cmd = matches!(table::resolve(&argv), Resolved::Found(c) if c.name.starts_with("client"));
                end_caching(w, id, client_cmd);
            }
            return;
        }
    };
    w.persist_note(id, cmd, &argv);
    if w.tracking.clients > 0 {
        // Redis keeps the tracking table within its limit before each command.
        w.tracking_limit();
    }
    let client = w.clients.get_mut(&id).expect("client");
    if let Some(queue) = client.multi.as_mut() {
        if !matches!(
            cmd.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        ) {
            queue.push(argv);
            write_reply(w, id, &Reply::status("QUEUED"));
            return;
        }
    }
    let outer = w.tracking.current.replace(id);
    let (reply, block) = call(w, id, cmd, &argv, true);
    w.tracking.current = outer;
    match block {
        Some(req) => w.block_client(id, argv, req),
        None if is_pushing(cmd) => write_push(w, id, &reply),
        None => write_reply(w, id, &reply),
    }
    w.flush_monitor_self();
    if w.tracking.armed {
        // Invalidations a command caused to its own client follow its reply.
        w.tracking_send_pending(id);
        end_caching(w, id, cmd.name.starts_with("client"));
    }
}

/// CLIENT CACHING applies to the next command (or transaction) only: cleared after any
/// other command outside MULTI, as Redis's resetClient does.
fn end_caching(w: &mut World, id: ClientId, client_cmd: bool) {
    if let Some(c) = w.clients.get_mut(&id) {
        if let Some(t) = c.tracking.as_deref_mut() {
            if c.multi.is_none() && !client_cmd {
                t.caching = false;
            }
        }
    }
}

/// Redis's processCommand checks, in its order; the error reply if one fails.
fn check(w: &World, id: ClientId, argv: &[Bytes]) -> Result<&'static Command, Reply> {
    let client = &w.clients[&id];
    let cmd = match table::resolve(argv) {
        Resolved::Found(cmd) => cmd,
        Resolved::Unknown => return Err(unknown_command(argv)),
        Resolved::UnknownSub(container) => {
            let sub = String::from_utf8_lossy(c_str(&argv[1], 128));
            return Err(Reply::err(format!(
                "ERR unknown subcommand '{sub}'. Try {} HELP.",
                container.name.to_ascii_uppercase()
            )));
        }
    };
    if !cmd.arity_ok(argv.len()) {
        return Err(wrong_args(cmd.name));
    }
    if !client.authenticated && !cmd.has(Flags::NO_AUTH) {
        return Err(Reply::err("NOAUTH Authentication required."));
    }
    if client.multi.is_some() && cmd.has(Flags::NO_MULTI) {
        return Err(Reply::err("ERR Command not allowed inside a transaction"));
    }
    // Redis skips this while a script yields (BUSY comes first then).
    let busy = w.script_run.as_ref().is_some_and(|r| r.busy);
    if !busy
        && w.out_of_memory()
        && super::maxmemory::refused_when_oom(cmd, client.multi.as_deref())
    {
        return Err(Reply::err(&super::maxmemory::OOM_ERROR[1..]));
    }
    if let Some(e) = w.loading_refusal(cmd, client.multi.as_deref()) {
        return Err(e);
    }
    if let Some(run) = w.script_run.as_ref().filter(|r| r.busy) {
        if !cmd.has(Flags::ALLOW_BUSY) {
            return Err(run.busy_error());
        }
    }
    if !client.resp3
        && client.subscriptions() > 0
        && !matches!(
            cmd.name,
            "ping"
                | "subscribe"
                | "ssubscribe"
                | "unsubscribe"
                | "sunsubscribe"
                | "psubscribe"
                | "punsubscribe"
                | "quit"
                | "reset"
        )
    {
        return Err(Reply::err(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            cmd.name
        )));
    }
    if let Some(e) = w.persist_misconf() {
        // FCALL writes unless its function has the `no-writes` flag (getCommandFlags).
        let writes = |c: &Command, a: &[Bytes]| {
            c.has(Flags::WRITE) || crate::commands::functions::writes(c.name, a, &w.functions)
        };
        let queued_write = cmd.name == "exec"
            && client.multi.as_ref().is_some_and(|q| {
                q.iter()
                    .any(|a| matches!(table::resolve(a), Resolved::Found(c) if writes(c, a)))
            });
        if (writes(cmd, argv) && client.multi.is_none()) || queued_write {
            return Err(Reply::err(e));
        }
    }
    Ok(cmd)
}

/// What C's `%.Ns` prints of an argument: the bytes before the first NUL, at most `max`.
pub fn c_str(arg: &[u8], max: usize) -> &[u8] {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    &arg[..end.min(max)]
}

/// Redis's commandCheckExistence text: the name and up to 128 bytes of quoted arguments, each
/// cut at a NUL as C's `%s` does.
fn unknown_command(argv: &[Bytes]) -> Reply {
    let mut args: Vec<u8> = Vec::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let shown = c_str(a, 128 - args.len());
        args.push(b'\'');
        args.extend_from_slice(shown);
        args.extend_from_slice(b"' ");
    }
    let name = String::from_utf8_lossy(c_str(&argv[0], 128));
    let args = String::from_utf8_lossy(&args);
    Reply::err(format!(
        "ERR unknown command '{name}', with args beginning with: {args}"
    ))
}

/// Runs a resolved command for a client: builds the context, calls the handler, keeps stats and
/// feeds MONITOR. Returns the reply, or the block request of a command that must wait.
pub fn call(
    w: &mut World,
    id: ClientId,
    cmd: &'static Command,
    argv: &[Bytes],
    may_block: bool,
) -> (Reply, Option<BlockRequest>) {
    let client = w.clients.get_mut(&id).expect("client");
    let now = now_ms();
    client.last_active = now;
    client.last_cmd = cmd.name;
    let (db, resp3) = (client.db, client.resp3);
    let mut ctx = Ctx {
        w,
        client: id,
        db,
        now,
        resp3,
        may_block,
        block: None,
    };
    let (reply, block) = run(&mut ctx, cmd, argv);
    let db = ctx.db;
    if let Some(c) = w.clients.get_mut(&id) {
        c.db = db;
    }
    (reply, block)
}

/// Runs a command inside another one (EXEC, scripts), in the caller's context; never blocks.
pub fn call_nested(ctx: &mut Ctx, cmd: &'static Command, argv: &[Bytes]) -> Reply {
    ctx.w.persist_note_nested(ctx.client, ctx.db, cmd, argv);
    // Inside a script the clock stands still at the script's start, so keys do not expire
    // halfway through it (as Redis 7.0 does).
    let now = ctx.w.script_run.as_ref().map_or_else(now_ms, |r| r.now_ms);
    let mut inner = Ctx {
        w: &mut *ctx.w,
        client: ctx.client,
        db: ctx.db,
        now,
        resp3: ctx.resp3,
        may_block: false,
        block: None,
    };
    let (reply, _) = run(&mut inner, cmd, argv);
    ctx.db = inner.db;
    reply
}

fn run(ctx: &mut Ctx, cmd: &'static Command, argv: &[Bytes]) -> (Reply, Option<BlockRequest>) {
    let started = std::time::Instant::now();
    let reply = (cmd.handler)(ctx, argv);
    let micros = started.elapsed().as_micros() as u64;
    if ctx.w.tracking.armed {
        ctx.w.tracking_after_run(ctx.client, cmd, argv);
    }
    let block = ctx.block.take();
    if block.is_none() {
        ctx.w.stats.record(cmd.name, micros, reply.is_error());
        if let Reply::Error(e) = &reply {
            ctx.w.stats.record_error(e);
        }
        if !cmd.has(Flags::SKIP_MONITOR | Flags::ADMIN) {
            ctx.w.feed_monitors(ctx.client, ctx.db, argv);
        }
        if !cmd.has(Flags::SKIP_SLOWLOG) {
            ctx.w.slowlog_check(ctx.client, argv, micros);
        }
    }
    (reply, block)
}

/// The pub/sub commands whose replies Redis sends as pushes (CLIENT_PUSHING): subscription
/// confirmations reach the client even under CLIENT REPLY OFF / SKIP, in RESP2 as in RESP3.
fn is_pushing(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ssubscribe" | "sunsubscribe"
    )
}

/// Writes a push whatever CLIENT REPLY says; a SKIP still ends with the command.
fn write_push(w: &mut World, id: ClientId, reply: &Reply) {
    let Some(c) = w.clients.get_mut(&id) else {
        return;
    };
    reply.encode(&mut c.out, c.resp3);
    if c.reply_mode == ReplyMode::Skip {
        c.reply_mode = ReplyMode::On;
    }
    w.mark_output(id);
}

/// Writes a reply to a client, honouring CLIENT REPLY OFF / SKIP.
pub fn write_reply(w: &mut World, id: ClientId, reply: &Reply) {
    let Some(c) = w.clients.get_mut(&id) else {
        return;
    };
    match c.reply_mode {
        ReplyMode::On => reply.encode(&mut c.out, c.resp3),
        ReplyMode::Off => {}
        ReplyMode::Skip => c.reply_mode = ReplyMode::On,
        // Set by CLIENT REPLY SKIP itself: its own reply is dropped, the next one skipped.
        ReplyMode::SkipNext => c.reply_mode = ReplyMode::Skip,
    }
    w.mark_output(id);
}
