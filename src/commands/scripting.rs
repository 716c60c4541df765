//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (LOAD, EXISTS, FLUSH,
//! KILL, HELP). The Lua engine itself is `crate::scripting`.

use bytes::Bytes;

use super::scripting_debug::script_debug;
use super::{Command, Ctx, Flags as F};
use crate::protocol::Reply;
use crate::scripting::Engine;

const EVAL_FLAGS: u32 = F::NOSCRIPT | F::STALE | F::SKIP_MONITOR | F::NO_MANDATORY_KEYS;

/// Key positions of `EVAL script numkeys key ...` (FCALL's too).
pub fn eval_keys(argv: &[Bytes]) -> Vec<usize> {
    let n = argv
        .get(2)
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    if 3 + n > argv.len() {
        // More keys announced than arguments: COMMAND GETKEYS finds none, as Redis.
        return Vec::new();
    }
    (3..3 + n).collect()
}

pub const COMMANDS: &[Command] = &[
    Command::new("eval", -3, EVAL_FLAGS | F::MAY_REPLICATE, eval)
        .keys_fn(0, 0, 0, eval_keys)
        .doc(
            "scripting",
            "Execute a Lua script server side",
            "script numkeys [key [key ...]] [arg [arg ...]]",
        ),
    Command::new("evalsha", -3, EVAL_FLAGS | F::MAY_REPLICATE, evalsha)
        .keys_fn(0, 0, 0, eval_keys)
        .doc(
            "scripting",
            "Execute a Lua script server side",
            "sha1 numkeys [key [key ...]] [arg [arg ...]]",
        ),
    Command::new("eval_ro", -3, EVAL_FLAGS | F::READONLY, eval_ro)
        .keys_fn(0, 0, 0, eval_keys)
        .doc(
            "scripting",
            "Execute a read-only Lua script server side",
            "script numkeys [key [key ...]] [arg [arg ...]]",
        ),
    Command::new("evalsha_ro", -3, EVAL_FLAGS | F::READONLY, evalsha_ro)
        .keys_fn(0, 0, 0, eval_keys)
        .doc(
            "scripting",
            "Execute a read-only Lua script server side",
            "sha1 numkeys [key [key ...]] [arg [arg ...]]",
        ),
    Command::new("script", -2, 0, container)
        .subs(SCRIPT_SUBS)
        .doc(
            "scripting",
            "A container for Lua scripts management commands",
            "",
        ),
];

const SCRIPT_SUBS: &[Command] = &[
    Command::new("script|debug", 3, F::NOSCRIPT, script_debug).doc(
        "scripting",
        "Set the debug mode for executed scripts.",
        "YES|SYNC|NO",
    ),
    Command::new("script|exists", -3, F::NOSCRIPT, script_exists).doc(
        "scripting",
        "Check existence of scripts in the script cache.",
        "sha1 [sha1 ...]",
    ),
    Command::new("script|flush", -2, F::NOSCRIPT, script_flush).doc(
        "scripting",
        "Remove all the scripts from the script cache.",
        "[ASYNC|SYNC]",
    ),
    Command::new("script|help", 2, F::LOADING | F::STALE, script_help).doc(
        "scripting",
        "Show helpful text about the different subcommands",
        "",
    ),
    Command::new("script|kill", 2, F::NOSCRIPT | F::ALLOW_BUSY, script_kill).doc(
        "scripting",
        "Kill the script currently in execution.",
        "",
    ),
    Command::new("script|load", 3, F::NOSCRIPT | F::STALE, script_load).doc(
        "scripting",
        "Load the specified Lua script into the script cache.",
        "script",
    ),
];

fn container(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::err("ERR wrong number of arguments for 'script' command")
}

fn eval(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    run(ctx, argv, false, false)
}

fn evalsha(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    run(ctx, argv, true, false)
}

fn eval_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    run(ctx, argv, false, true)
}

fn evalsha_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    run(ctx, argv, true, true)
}

/// Takes the engine out of the World for the duration of `f` (the script reaches the World
/// through its context while it runs).
pub(super) fn with_engine<R>(ctx: &mut Ctx, f: impl FnOnce(&mut Engine, &mut Ctx) -> R) -> R {
    let mut engine = ctx.w.scripting.take().unwrap_or_default();
    let r = f(&mut engine, ctx);
    if ctx.w.scripting.is_none() {
        ctx.w.scripting = Some(engine);
    }
    r
}

fn run(ctx: &mut Ctx, argv: &[Bytes], by_sha: bool, ro: bool) -> Reply {
    // MONITOR sees the script before the commands it runs (and even when it is refused).
    ctx.w.feed_monitors(ctx.client, ctx.db, argv);
    let debug = ctx.w.clients.get(&ctx.client).and_then(|c| c.lua_debug);
    if by_sha {
        if argv[1].len() != 40 {
            return Reply::err("NOSCRIPT No matching script. Please use EVAL.");
        }
        if debug.is_some() {
            return Reply::err("ERR Please use EVAL instead of EVALSHA for debugging");
        }
    }
    match debug {
        Some(mode) => super::scripting_debug::eval(ctx, argv, ro, mode),
        None => eval_generic(ctx, argv, by_sha, ro),
    }
}

/// Redis's evalGenericCommand: the keys, the script (compiled and cached for EVAL), the run.
pub(super) fn eval_generic(ctx: &mut Ctx, argv: &[Bytes], by_sha: bool, ro: bool) -> Reply {
    let numkeys = match crate::commands::args::int(&argv[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if numkeys > (argv.len() - 3) as i64 {
        return Reply::err("ERR Number of keys can't be greater than number of args");
    }
    if numkeys < 0 {
        return Reply::err("ERR Number of keys can't be negative");
    }
    let split = 3 + numkeys as usize;
    let (keys, args) = (&argv[3..split], &argv[split..]);
    with_engine(ctx, |engine, ctx| {
        let sha = if by_sha {
            let sha = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
            if !engine.scripts.contains_key(&sha) {
                return Reply::err("NOSCRIPT No matching script. Please use EVAL.");
            }
            sha
        } else {
            match engine.load(&argv[1]) {
                Ok(sha) => sha,
                Err(e) => return e,
            }
        };
        engine.run(ctx, &sha, keys, args, ro)
    })
}

fn script_load(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    with_engine(ctx, |engine, _| match engine.load(&argv[2]) {
        Ok(sha) => Reply::bulk_str(&sha),
        Err(e) => e,
    })
}

fn script_exists(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    with_engine(ctx, |engine, _| {
        Reply::Array(
            argv[2..]
                .iter()
                .map(|a| {
                    let sha = String::from_utf8_lossy(a).to_ascii_lowercase();
                    Reply::Int(engine.scripts.contains_key(&sha) as i64)
                })
                .collect(),
        )
    })
}

fn script_flush(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 3
        || (argv.len() == 3
            && !crate::commands::args::is(&argv[2], "sync")
            && !crate::commands::args::is(&argv[2], "async"))
    {
        return Reply::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    ctx.w.scripting = Some(Box::default());
    Reply::ok()
}

fn script_kill(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    kill(ctx, true)
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL: `scriptKill`. Each stops only its own kind of
/// script, answering the other with the BUSY text that names the right command.
pub fn kill(ctx: &mut Ctx, eval: bool) -> Reply {
    match ctx.w.script_run.as_mut() {
        None => Reply::err("NOTBUSY No scripts in execution right now."),
        Some(run) if run.wrote => Reply::err(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. \
             You can either wait the script termination or kill the server in a hard way using \
             the SHUTDOWN NOSAVE command.",
        ),
        Some(run) if run.function == eval => run.busy_error(),
        Some(run) => {
            run.kill = true;
            Reply::ok()
        }
    }
}

fn script_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    const LINES: &[&str] = &[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ];
    Reply::Array(LINES.iter().map(|l| Reply::status(l)).collect())
}
