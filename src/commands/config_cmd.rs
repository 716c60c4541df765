//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP over the parameter table in `config.rs`.

use bytes::Bytes;

use super::server::help;
use super::{Command, Ctx, Flags as F};
use crate::config::Config;
use crate::config_table::{self as table, Param};
use crate::db::glob::glob_match;
use crate::protocol::Reply;

const ADM: u32 = F::ADMIN | F::NOSCRIPT | F::LOADING | F::STALE;

pub const SUBS: &[Command] = &[
    Command::new("config|get", -3, ADM, config_get).doc(
        "server",
        "Get the values of configuration parameters",
        "parameter [parameter ...]",
    ),
    Command::new("config|set", -4, ADM, config_set).doc(
        "server",
        "Set configuration parameters to the given values",
        "parameter value [parameter value ...]",
    ),
    Command::new("config|resetstat", 2, ADM, config_resetstat).doc(
        "server",
        "Reset the stats returned by INFO",
        "",
    ),
    Command::new("config|rewrite", 2, ADM, config_rewrite).doc(
        "server",
        "Rewrite the configuration file with the in memory configuration",
        "",
    ),
    Command::new("config|help", 2, F::LOADING | F::STALE, config_help).doc(
        "server",
        "Show helpful text about the different subcommands",
        "",
    ),
];

fn config_get(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    // (name as replied, canonical parameter), without repeats of a parameter.
    let mut matched: Vec<(String, &'static str)> = Vec::new();
    for arg in &argv[2..] {
        let text = String::from_utf8_lossy(arg).into_owned();
        if !arg.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
            let Some(canon) = Config::canonical(&text.to_ascii_lowercase()) else {
                continue;
            };
            if !matched.iter().any(|(n, _)| n.eq_ignore_ascii_case(&text)) {
                matched.push((text, canon));
            }
            continue;
        }
        for (name, canon) in Config::names() {
            if matched.iter().any(|(n, _)| n == name) {
                continue;
            }
            if glob_match(arg, name.as_bytes(), true) {
                matched.push((name.to_string(), canon));
            }
        }
    }
    Reply::Map(
        matched
            .into_iter()
            .map(|(name, canon)| {
                (
                    Reply::bulk_str(&name),
                    Reply::bulk_str(ctx.w.config.get(canon)),
                )
            })
            .collect(),
    )
}

fn set_failed(arg: &str, why: &str) -> Reply {
    Reply::err(format!(
        "ERR CONFIG SET failed (possibly related to argument '{arg}') - {why}"
    ))
}

fn config_set(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if !argv.len().is_multiple_of(2) {
        return Reply::err(super::args::SYNTAX);
    }
    // (name as registered: the parameter or the alias given, the parameter, the value)
    let mut pairs: Vec<(&'static str, &'static Param, String)> = Vec::new();
    // The first problem found is the one reported, as in Redis's configSetCommand.
    for pair in argv[2..].chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).into_owned();
        let Some((registered, p)) = table::lookup(&name) else {
            return Reply::err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        };
        if p.flags & table::IMMUTABLE != 0 {
            return set_failed(&name, "can't set immutable config");
        }
        // Berth's data directory is fixed at startup whatever enable-protected-configs says.
        if p.flags & table::PROTECTED != 0 && (p.name == "dir" || !protected_allowed(ctx)) {
            return set_failed(&name, "can't set protected config");
        }
        if p.flags & table::DENY_LOADING != 0 && ctx.w.loading.is_some() {
            return Reply::err(crate::persist::loading::LOADING_ERR);
        }
        // An alias and its parameter are different entries, as in Redis.
        if pairs.iter().any(|(r, _, _)| *r == registered) {
            return set_failed(&name, "duplicate parameter");
        }
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        pairs.push((registered, p, value));
    }
    // All or nothing: on a bad value, restore what was set before it.
    let saved = ctx.w.config.clone();
    for (registered, p, value) in &pairs {
        if let Err(why) = ctx.w.config.set_checked(p.name, value) {
            ctx.w.config = saved;
            return set_failed(registered, &why);
        }
    }
    if pairs.iter().any(|(_, p, _)| p.name == "loglevel") {
        crate::config::apply_loglevel(ctx.w.config.get("loglevel"));
    }
    Reply::ok()
}

/// Redis's allowProtectedAction for `enable-protected-configs`: `yes`, or `local` for a
/// loopback client.
fn protected_allowed(ctx: &Ctx) -> bool {
    match ctx.w.config.get("enable-protected-configs") {
        "yes" => true,
        "local" => ctx
            .w
            .clients
            .get(&ctx.client)
            .is_some_and(|c| crate::server::core::is_loopback(&c.addr)),
        _ => false,
    }
}

fn config_resetstat(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    ctx.w.stats = Default::default();
    Reply::ok()
}

fn config_rewrite(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let Some(path) = ctx.w.config.file.clone() else {
        return Reply::err("ERR The server is running without a config file");
    };
    // A missing file is written from scratch, as Redis does.
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Reply::err(format!("ERR Rewriting config file: {e}")),
    };
    match write_config(&path, &ctx.w.config.rewrite_text(&old)) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            Reply::ok()
        }
        Err(e) => Reply::err(format!("ERR Rewriting config file: {e}")),
    }
}

/// Writes a temporary file beside the config and renames it over the config (atomic, as Redis
/// 7.0 does). A file that cannot be replaced by rename (a single file bind-mounted into a
/// container, or a directory the server may not write) is overwritten in place instead.
fn write_config(path: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let target = std::path::Path::new(path);
    let tmp = target.with_file_name(format!(
        ".{}.berth-rewrite-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let renamed = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(target) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, target)
    })();
    if renamed.is_ok() {
        return Ok(());
    }
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(true)
        .open(target)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

fn config_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    )
}
