//! Functions: FCALL, FCALL_RO and FUNCTION (LOAD, LIST, DELETE, FLUSH, KILL, STATS, DUMP,
//! RESTORE, HELP), with Redis 7.0.15's arguments, replies and error texts (`functions.c`). The
//! engine is `crate::scripting::functions`.

use bytes::Bytes;

use super::args::is;
use super::server::{help, subcommand_syntax_error};
use super::{Command, Ctx, Flags as F};
use crate::protocol::Reply;
use crate::rdb::{self, RdbReader, RdbWriter};
use crate::scripting::functions::{flag_names, Functions, Libraries};
use crate::scripting::FLAG_NO_WRITES;

/// `RDB_OPCODE_FUNCTION2`: a library's code (Redis 7.0 GA).
const OPCODE_FUNCTION2: u8 = 245;
/// `RDB_OPCODE_FUNCTION`: name, engine, description and code (Redis 7.0 rc1/rc2).
const OPCODE_FUNCTION: u8 = 246;

const FCALL_FLAGS: u32 = F::NOSCRIPT | F::STALE | F::SKIP_MONITOR | F::NO_MANDATORY_KEYS;

/// Key positions of `FCALL function numkeys key ...` (as EVAL's).
fn fcall_keys(argv: &[Bytes]) -> Vec<usize> {
    super::scripting::eval_keys(argv)
}

pub const COMMANDS: &[Command] = &[
    Command::new("fcall", -3, FCALL_FLAGS, fcall)
        .keys_fn(0, 0, 0, fcall_keys)
        .doc(
            "scripting",
            "Invoke a function",
            "function numkeys [key [key ...]] [arg [arg ...]]",
        ),
    Command::new("fcall_ro", -3, FCALL_FLAGS | F::READONLY, fcall_ro)
        .keys_fn(0, 0, 0, fcall_keys)
        .doc(
            "scripting",
            "Invoke a read-only function",
            "function numkeys [key [key ...]] [arg [arg ...]]",
        ),
    Command::new("function", -2, 0, super::server::container)
        .subs(FUNCTION_SUBS)
        .doc("scripting", "A container for function commands", ""),
];

const FUNCTION_SUBS: &[Command] = &[
    Command::new("function|delete", 3, F::WRITE | F::NOSCRIPT, delete).doc(
        "scripting",
        "Delete a function by name",
        "library-name",
    ),
    Command::new("function|dump", 2, F::NOSCRIPT, dump).doc(
        "scripting",
        "Dump all functions into a serialized binary payload",
        "",
    ),
    Command::new("function|flush", -2, F::WRITE | F::NOSCRIPT, flush).doc(
        "scripting",
        "Deleting all functions",
        "[ASYNC|SYNC]",
    ),
    Command::new("function|help", 2, F::LOADING | F::STALE, function_help).doc(
        "scripting",
        "Show helpful text about the different subcommands",
        "",
    ),
    Command::new("function|kill", 2, F::NOSCRIPT | F::ALLOW_BUSY, kill).doc(
        "scripting",
        "Kill the function currently in execution.",
        "",
    ),
    Command::new("function|list", -2, F::NOSCRIPT, list).doc(
        "scripting",
        "List information about all the functions",
        "[LIBRARYNAME library-name-pattern] [WITHCODE]",
    ),
    Command::new(
        "function|load",
        -3,
        F::WRITE | F::DENYOOM | F::NOSCRIPT,
        load,
    )
    .doc(
        "scripting",
        "Create a function with the given arguments (name, code, description)",
        "[REPLACE] function-code",
    ),
    Command::new(
        "function|restore",
        -3,
        F::WRITE | F::DENYOOM | F::NOSCRIPT,
        restore,
    )
    .doc(
        "scripting",
        "Restore all the functions on the given payload",
        "serialized-value [FLUSH|APPEND|REPLACE]",
    ),
    Command::new("function|stats", 2, F::NOSCRIPT | F::ALLOW_BUSY, stats).doc(
        "scripting",
        "Return information about the function currently running (name, description, duration)",
        "",
    ),
];

fn fcall(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    fcall_generic(ctx, argv, false)
}

fn fcall_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    fcall_generic(ctx, argv, true)
}

/// `fcallCommandGeneric` with `scriptPrepareForRun`'s checks.
fn fcall_generic(ctx: &mut Ctx, argv: &[Bytes], ro: bool) -> Reply {
    // MONITOR sees the function before the commands it runs (and even when it is refused).
    ctx.w.feed_monitors(ctx.client, ctx.db, argv);
    let Some(f) = ctx.w.functions.libs.function(&argv[1]).cloned() else {
        return Reply::err("ERR Function not found");
    };
    let Ok(numkeys) = super::args::int(&argv[2]) else {
        return Reply::err("ERR Bad number of keys provided");
    };
    if numkeys > (argv.len() - 3) as i64 {
        return Reply::err("ERR Number of keys can't be greater than number of args");
    }
    if numkeys < 0 {
        return Reply::err("ERR Number of keys can't be negative");
    }
    if f.flags & FLAG_NO_WRITES == 0 {
        if let Some(e) = ctx.w.persist_misconf() {
            let why = e.rsplit(": ").next().unwrap_or_default();
            return Reply::err(format!(
                "MISCONF Redis is configured to persist data to AOF, but it's currently unable \
                 to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read \
                 only scripts. AOF error: {why}"
            ));
        }
        if ro {
            return Reply::err("ERR Can not execute a script with write flag using *_ro command.");
        }
    }
    Functions::call(ctx, &f, argv, numkeys as usize, ro)
}

/// Whether FCALL / FCALL_RO counts as a write (MISCONF refuses it): when its function lacks
/// the `no-writes` flag (`fcallGetCommandFlags`; an unknown function does not write).
pub fn writes(name: &str, argv: &[Bytes], functions: &Functions) -> bool {
    matches!(name, "fcall" | "fcall_ro")
        && argv.get(1).is_some_and(|n| {
            functions
                .libs
                .function(n)
                .is_some_and(|f| f.flags & FLAG_NO_WRITES == 0)
        })
}

/// Whether CLIENT PAUSE WRITE holds FCALL / FCALL_RO: a writing function, or FCALL of an
/// unknown one (FCALL has the hidden `may_replicate` flag, which a known function's flags
/// replace).
pub fn may_replicate(name: &str, argv: &[Bytes], functions: &Functions) -> bool {
    let unknown = || {
        argv.get(1)
            .is_none_or(|n| functions.libs.function(n).is_none())
    };
    writes(name, argv, functions) || (name == "fcall" && unknown())
}

/// FUNCTION LOAD [REPLACE] code
fn load(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut replace = false;
    let mut pos = 2;
    while pos < argv.len() - 1 {
        if !is(&argv[pos], "replace") {
            return Reply::err(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(&argv[pos])
            ));
        }
        replace = true;
        pos += 1;
    }
    let fs = &mut *ctx.w.functions;
    let mut libs = std::mem::take(&mut fs.libs);
    let created = fs.create(&mut libs, &argv[pos], replace, true);
    fs.libs = libs;
    match created {
        Ok(name) => {
            ctx.w.libraries_changed(vec![name.clone()]);
            Reply::bulk_str(&name)
        }
        Err(e) => Reply::err(format!("ERR {e}")),
    }
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
fn list(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let (mut with_code, mut pattern): (bool, Option<&Bytes>) = (false, None);
    let mut i = 2;
    while i < argv.len() {
        if !with_code && is(&argv[i], "withcode") {
            with_code = true;
        } else if pattern.is_none() && is(&argv[i], "libraryname") {
            if i >= argv.len() - 1 {
                return Reply::err("ERR library name argument was not given");
            }
            i += 1;
            pattern = Some(&argv[i]);
        } else {
            return Reply::err(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(&argv[i])
            ));
        }
        i += 1;
    }
    let libs = ctx.w.functions.libs.libs.values();
    let shown = libs.filter(|l| {
        pattern.is_none_or(|p| crate::db::glob::glob_match(p, l.name.as_bytes(), true))
    });
    Reply::Array(
        shown
            .map(|lib| {
                let functions = lib.functions.iter().map(|f| {
                    Reply::Map(vec![
                        (Reply::bulk_str("name"), Reply::bulk_str(&f.name)),
                        (
                            Reply::bulk_str("description"),
                            Reply::bulk_opt(f.desc.clone()),
                        ),
                        (
                            Reply::bulk_str("flags"),
                            Reply::Set(flag_names(f.flags).map(Reply::status).collect()),
                        ),
                    ])
                });
                let mut fields = vec![
                    (Reply::bulk_str("library_name"), Reply::bulk_str(&lib.name)),
                    (Reply::bulk_str("engine"), Reply::bulk_str("LUA")),
                    (
                        Reply::bulk_str("functions"),
                        Reply::Array(functions.collect()),
                    ),
                ];
                if with_code {
                    fields.push((
                        Reply::bulk_str("library_code"),
                        Reply::bulk(lib.code.clone()),
                    ));
                }
                Reply::Map(fields)
            })
            .collect(),
    )
}

/// FUNCTION DELETE library
fn delete(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&argv[2]).into_owned();
    if ctx.w.functions.libs.unlink(&name).is_none() {
        return Reply::err("ERR Library not found");
    }
    ctx.w.libraries_changed(vec![name]);
    Reply::ok()
}

/// FUNCTION FLUSH [ASYNC|SYNC]
fn flush(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 3 {
        return subcommand_syntax_error(argv);
    }
    if argv.len() == 3 && !is(&argv[2], "sync") && !is(&argv[2], "async") {
        return Reply::err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    }
    let old = std::mem::take(&mut ctx.w.functions.libs);
    ctx.w.libraries_changed(old.libs.into_keys().collect());
    Reply::ok()
}

/// FUNCTION KILL (`scriptKill(c, 0)`)
fn kill(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    super::scripting::kill(ctx, false)
}

/// FUNCTION STATS
fn stats(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let running = match ctx.w.script_run.as_ref() {
        Some(run) if !run.function => return run.busy_error(),
        Some(run) => Reply::Map(vec![
            (Reply::bulk_str("name"), Reply::bulk_str(&run.sha)),
            (
                Reply::bulk_str("command"),
                Reply::bulks(run.command.iter().cloned()),
            ),
            (
                Reply::bulk_str("duration_ms"),
                Reply::Int(run.started.elapsed().as_millis() as i64),
            ),
        ]),
        None => Reply::Nil,
    };
    let libs = &ctx.w.functions.libs;
    let lua = Reply::Map(vec![
        (
            Reply::bulk_str("libraries_count"),
            Reply::Int(libs.libs.len() as i64),
        ),
        (
            Reply::bulk_str("functions_count"),
            // Per library, as Redis's engine stats count (INFO counts distinct names).
            Reply::Int(libs.libs.values().map(|l| l.functions.len() as i64).sum()),
        ),
    ]);
    Reply::Map(vec![
        (Reply::bulk_str("running_script"), running),
        (
            Reply::bulk_str("engines"),
            Reply::Map(vec![(Reply::bulk_str("LUA"), lua)]),
        ),
    ])
}

/// FUNCTION DUMP: each library as `RDB_OPCODE_FUNCTION2` + its code, then the DUMP footer.
fn dump(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let o = super::dump::encode_options(ctx);
    let mut w = RdbWriter::new(o.compression);
    for lib in ctx.w.functions.libs.libs.values() {
        w.byte(OPCODE_FUNCTION2);
        w.raw_string(&lib.code);
    }
    Reply::bulk(rdb::footer(w.buf))
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
fn restore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 4 {
        return subcommand_syntax_error(argv);
    }
    let (mut flush, mut replace) = (false, false);
    if let Some(policy) = argv.get(3) {
        if is(policy, "flush") {
            flush = true;
        } else if is(policy, "replace") {
            replace = true;
        } else if !is(policy, "append") {
            return Reply::err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            );
        }
    }
    let payload = &argv[2];
    if !rdb::verify(payload, false) {
        return Reply::err("ERR DUMP payload version or checksum are wrong");
    }
    let restored = match read_libraries(&ctx.w.functions, payload) {
        Ok(libs) => libs,
        Err(e) => return Reply::err(format!("ERR {e}")),
    };
    let fs = &mut ctx.w.functions;
    let names: Vec<String> = restored.libs.keys().cloned().collect();
    let changed = if flush {
        let old = std::mem::replace(&mut fs.libs, restored);
        old.libs.into_keys().chain(names).collect()
    } else {
        if let Err(e) = fs.libs.join(restored, replace) {
            return Reply::err(format!("ERR {e}"));
        }
        names
    };
    ctx.w.libraries_changed(changed);
    Reply::ok()
}

/// The libraries of a FUNCTION DUMP payload (footer already checked), loaded into a new set.
fn read_libraries(fs: &Functions, payload: &[u8]) -> Result<Libraries, String> {
    let mut libs = Libraries::default();
    let mut r = RdbReader::new(payload);
    while r.remaining() > 10 {
        let kind = r.byte().ok_or("can not read data type")?;
        let code = match kind {
            OPCODE_FUNCTION2 => r.bytes().ok_or("Failed loading library payload")?,
            OPCODE_FUNCTION => old_format(&mut r)?,
            _ => return Err("given type is not a function".into()),
        };
        fs.create(&mut libs, &code, false, false)?;
    }
    Ok(libs)
}

/// A library as Redis 7.0 rc1/rc2 saved it, turned into the shebang form.
fn old_format(r: &mut RdbReader) -> Result<Bytes, String> {
    let name = r.bytes().ok_or("Failed loading library name")?;
    let engine = r.bytes().ok_or("Failed loading engine name")?;
    let has_desc = r
        .load_len()
        .ok_or("Failed loading library description indicator")?;
    if has_desc != 0 {
        r.bytes().ok_or("Failed loading library description")?;
    }
    let blob = r.bytes().ok_or("Failed loading library blob")?;
    let mut code = format!(
        "#!{} name={}\n",
        String::from_utf8_lossy(&engine),
        String::from_utf8_lossy(&name)
    )
    .into_bytes();
    code.extend_from_slice(&blob);
    Ok(Bytes::from(code))
}

fn function_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help("FUNCTION", HELP)
}

const HELP: &[&str] = &[
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
];
