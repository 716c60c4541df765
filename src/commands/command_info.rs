//! COMMAND and its subcommands, generated from the command table (`table::all()`).
//!
//! What the table does not say (ACL categories, command tips, key specs, the `since` version
//! and complexity) comes from `command_meta.tsv`, recorded from redis-server 7.0.15's
//! `COMMAND INFO` and `COMMAND DOCS` by `gen_command_meta.py`; commands Redis 7.0 lacks get
//! categories derived from their flags and group.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::args::{is, lower, SYNTAX};
use super::server::help;
use super::table::{self, Keys};
use super::{Command, Ctx, Flags as F};
use crate::db::glob::glob_match;
use crate::protocol::Reply;

const LS: u32 = F::LOADING | F::STALE;

pub const COMMAND: Command = Command::new("command", -1, LS, command_all).subs(SUBS).doc(
    "server",
    "Get array of Redis command details",
    "",
);

const SUBS: &[Command] = &[
    Command::new("command|count", 2, LS, count).doc(
        "server",
        "Get total number of Redis commands",
        "",
    ),
    Command::new("command|docs", -2, LS, docs).doc(
        "server",
        "Get array of specific Redis command documentation",
        "[command-name [command-name ...]]",
    ),
    Command::new("command|getkeys", -4, LS, getkeys).doc(
        "server",
        "Extract keys given a full Redis command",
        "command [arg [arg ...]]",
    ),
    Command::new("command|getkeysandflags", -4, LS, getkeysandflags).doc(
        "server",
        "Extract keys and access flags given a full Redis command",
        "command [arg [arg ...]]",
    ),
    Command::new("command|info", -2, LS, info).doc(
        "server",
        "Get array of specific Redis command details, or all when no argument is given",
        "[command-name [command-name ...]]",
    ),
    Command::new("command|list", -2, LS, list).doc(
        "server",
        "Get an array of Redis command names",
        "[FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]",
    ),
    Command::new("command|help", 2, LS, command_help).doc(
        "server",
        "Show helpful text about the different subcommands",
        "",
    ),
];

/// A key spec as COMMAND INFO prints it.
pub(super) struct KeySpec {
    notes: Option<String>,
    pub(super) flags: Vec<String>,
    /// ("index", [("index", n)]) / ("keyword", ...) / ("unknown", []).
    pub(super) begin: (String, Vec<(String, SpecVal)>),
    pub(super) find: (String, Vec<(String, SpecVal)>),
}

pub(super) enum SpecVal {
    Int(i64),
    Str(String),
}

#[derive(Default)]
struct Meta {
    acl: Vec<String>,
    tips: Vec<String>,
    specs: Vec<KeySpec>,
    extra_flags: Vec<String>,
    since: String,
    complexity: String,
}

fn parse_spec(text: &str) -> KeySpec {
    let parts: Vec<&str> = text.splitn(4, '|').collect();
    let num = |s: &str| SpecVal::Int(s.parse().unwrap_or(0));
    let begin = {
        let f: Vec<&str> = parts[1].split(':').collect();
        match f[0] {
            "index" => ("index".into(), vec![("index".into(), num(f[1]))]),
            "keyword" => (
                "keyword".into(),
                vec![
                    ("keyword".into(), SpecVal::Str(f[1].into())),
                    ("startfrom".into(), num(f[2])),
                ],
            ),
            _ => ("unknown".into(), vec![]),
        }
    };
    let find = {
        let f: Vec<&str> = parts[2].split(':').collect();
        match f[0] {
            "range" => (
                "range".into(),
                vec![
                    ("lastkey".into(), num(f[1])),
                    ("keystep".into(), num(f[2])),
                    ("limit".into(), num(f[3])),
                ],
            ),
            "keynum" => (
                "keynum".into(),
                vec![
                    ("keynumidx".into(), num(f[1])),
                    ("firstkey".into(), num(f[2])),
                    ("keystep".into(), num(f[3])),
                ],
            ),
            _ => ("unknown".into(), vec![]),
        }
    };
    KeySpec {
        notes: parts.get(3).map(|s| s.to_string()),
        flags: parts[0].split(',').map(String::from).collect(),
        begin,
        find,
    }
}

fn metadata() -> &'static HashMap<String, Meta> {
    static META: OnceLock<HashMap<String, Meta>> = OnceLock::new();
    META.get_or_init(|| {
        let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        include_str!("command_meta.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let specs = if f[3].is_empty() {
                    vec![]
                } else {
                    f[3].split(";;").map(parse_spec).collect()
                };
                (
                    f[0].to_string(),
                    Meta {
                        acl: words(f[1]),
                        tips: words(f[2]),
                        specs,
                        extra_flags: words(f[4]),
                        since: f[5].to_string(),
                        complexity: f[6].to_string(),
                    },
                )
            })
            .collect()
    })
}

/// ACL categories in Redis's bit order.
const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

fn acl_categories(cmd: &Command) -> Vec<String> {
    if let Some(m) = metadata().get(cmd.name) {
        return m.acl.clone();
    }
    let mut cats: Vec<&str> = Vec::new();
    if cmd.has(F::WRITE) {
        cats.push("write");
    }
    if cmd.has(F::READONLY) {
        cats.push("read");
    }
    if cmd.has(F::ADMIN) {
        cats.extend(["admin", "dangerous"]);
    }
    if cmd.has(F::PUBSUB) {
        cats.push("pubsub");
    }
    cats.push(if cmd.has(F::FAST) { "fast" } else { "slow" });
    if cmd.has(F::BLOCKING) {
        cats.push("blocking");
    }
    cats.push(match cmd.group {
        "generic" => "keyspace",
        "sorted-set" | "sorted_set" => "sortedset",
        "transactions" => "transaction",
        g => g,
    });
    CATEGORIES
        .iter()
        .filter(|c| cats.contains(c))
        .map(|c| format!("@{c}"))
        .collect()
}

fn status_set<I: IntoIterator<Item = String>>(items: I) -> Reply {
    Reply::Set(items.into_iter().map(Reply::Status).collect())
}

fn flag_names(cmd: &Command) -> Vec<String> {
    let extra: &[String] = metadata()
        .get(cmd.name)
        .map(|m| m.extra_flags.as_slice())
        .unwrap_or(&[]);
    let movable = matches!(cmd.keys, Keys::Custom(..)) || extra.iter().any(|f| f == "movablekeys");
    let has = |bit: u32| cmd.has(bit);
    let mut out = Vec::new();
    let order: &[(Option<u32>, &str)] = &[
        (Some(F::WRITE), "write"),
        (Some(F::READONLY), "readonly"),
        (Some(F::DENYOOM), "denyoom"),
        (Some(F::ADMIN), "admin"),
        (Some(F::PUBSUB), "pubsub"),
        (Some(F::NOSCRIPT), "noscript"),
        (Some(F::BLOCKING), "blocking"),
        (Some(F::LOADING), "loading"),
        (Some(F::STALE), "stale"),
        (Some(F::SKIP_MONITOR), "skip_monitor"),
        (Some(F::SKIP_SLOWLOG), "skip_slowlog"),
        (Some(F::ASKING), "asking"),
        (Some(F::FAST), "fast"),
        (Some(F::NO_AUTH), "no_auth"),
        // may_replicate: hidden on purpose, as Redis does.
        (Some(F::NO_MANDATORY_KEYS), "no_mandatory_keys"),
        (None, "no_async_loading"),
        (Some(F::NO_MULTI), "no_multi"),
        (None, "movablekeys"),
        (Some(F::ALLOW_BUSY), "allow_busy"),
    ];
    for (bit, name) in order {
        let on = match bit {
            Some(b) => has(*b),
            None if *name == "movablekeys" => movable,
            None => extra.iter().any(|f| f == name),
        };
        if on {
            out.push(name.to_string());
        }
    }
    out
}

fn spec_reply(s: &KeySpec) -> Reply {
    let b = Reply::bulk_str;
    let val = |v: &SpecVal| match v {
        SpecVal::Int(i) => Reply::Int(*i),
        SpecVal::Str(s) => Reply::bulk_str(s),
    };
    let part = |(t, fields): &(String, Vec<(String, SpecVal)>)| {
        Reply::Map(vec![
            (b("type"), b(t)),
            (
                b("spec"),
                Reply::Map(fields.iter().map(|(k, v)| (b(k), val(v))).collect()),
            ),
        ])
    };
    let mut pairs = Vec::new();
    if let Some(n) = &s.notes {
        pairs.push((b("notes"), b(n)));
    }
    pairs.push((b("flags"), status_set(s.flags.iter().cloned())));
    pairs.push((b("begin_search"), part(&s.begin)));
    pairs.push((b("find_keys"), part(&s.find)));
    Reply::Map(pairs)
}

fn command_reply(cmd: &'static Command) -> Reply {
    let (first, last, step) = match cmd.keys {
        Keys::None => (0, 0, 0),
        Keys::Range(f, l, s) | Keys::Custom(f, l, s, _) => (f, l, s),
    };
    let meta = metadata().get(cmd.name);
    Reply::Array(vec![
        Reply::bulk_str(cmd.name),
        Reply::Int(cmd.arity as i64),
        status_set(flag_names(cmd)),
        Reply::Int(first as i64),
        Reply::Int(last as i64),
        Reply::Int(step as i64),
        status_set(acl_categories(cmd)),
        Reply::Set(
            meta.map(|m| m.tips.iter().map(|t| Reply::bulk_str(t)).collect())
                .unwrap_or_default(),
        ),
        Reply::Set(
            meta.map(|m| m.specs.iter().map(spec_reply).collect())
                .unwrap_or_default(),
        ),
        // Redis writes an empty set when there are none, else an array.
        if cmd.subcommands.is_empty() {
            Reply::Set(vec![])
        } else {
            Reply::Array(cmd.subcommands.iter().map(command_reply).collect())
        },
    ])
}

/// Finds `name` or `container|sub`, case-insensitively.
fn find(name: &[u8]) -> Option<&'static Command> {
    let text = lower(name);
    match text.split_once('|') {
        None => table::lookup(name),
        Some((parent, sub)) => table::lookup(parent.as_bytes())?.subcommand(sub.as_bytes()),
    }
}

fn command_all(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Array(table::all().map(command_reply).collect())
}

fn count(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Int(table::all().count() as i64)
}

fn info(_ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() == 2 {
        return command_all(_ctx, argv);
    }
    Reply::Array(
        argv[2..]
            .iter()
            .map(|n| find(n).map(command_reply).unwrap_or(Reply::Nil))
            .collect(),
    )
}

fn every_command() -> Vec<&'static Command> {
    let mut out = Vec::new();
    for c in table::all() {
        out.push(c);
        out.extend(c.subcommands.iter());
    }
    out
}

fn list(_ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let names = |f: &dyn Fn(&Command) -> bool| {
        Reply::Array(
            every_command()
                .into_iter()
                .filter(|c| f(c))
                .map(|c| Reply::bulk_str(c.name))
                .collect(),
        )
    };
    match argv.len() {
        2 => names(&|_| true),
        5 if is(&argv[2], "filterby") => {
            let value = &argv[4];
            if is(&argv[3], "module") {
                Reply::Array(vec![])
            } else if is(&argv[3], "aclcat") {
                let cat = format!("@{}", lower(value));
                names(&|c| acl_categories(c).contains(&cat))
            } else if is(&argv[3], "pattern") {
                names(&|c| glob_match(value, c.name.as_bytes(), true))
            } else {
                Reply::err(SYNTAX)
            }
        }
        _ => Reply::err(SYNTAX),
    }
}

/// Redis 7.0.15's key specs of a command, as COMMAND INFO prints them.
pub(super) fn key_specs(name: &str) -> &'static [KeySpec] {
    metadata()
        .get(name)
        .map(|m| m.specs.as_slice())
        .unwrap_or(&[])
}

fn getkeys(_ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let full = &argv[2..];
    match super::command_keys::keys_of(full) {
        Err(e) => e,
        Ok(keys) => Reply::Array(
            keys.into_iter()
                .map(|(i, _)| Reply::Bulk(full[i].clone()))
                .collect(),
        ),
    }
}

fn getkeysandflags(_ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let full = &argv[2..];
    match super::command_keys::keys_of(full) {
        Err(e) => e,
        Ok(keys) => Reply::Array(
            keys.into_iter()
                .map(|(i, flags)| {
                    Reply::Array(vec![
                        Reply::Bulk(full[i].clone()),
                        super::command_keys::flags_reply(flags),
                    ])
                })
                .collect(),
        ),
    }
}

fn command_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    )
}

// ---- COMMAND DOCS: arguments parsed from the table's syntax strings ----

fn docs(_ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let cmds: Vec<&'static Command> = if argv.len() == 2 {
        table::all().collect()
    } else {
        argv[2..].iter().filter_map(|n| find(n)).collect()
    };
    Reply::Map(
        cmds.into_iter()
            .map(|c| (Reply::bulk_str(c.name), doc_reply(c)))
            .collect(),
    )
}

fn doc_reply(cmd: &'static Command) -> Reply {
    let b = Reply::bulk_str;
    let meta = metadata().get(cmd.name);
    let mut pairs = vec![(b("summary"), b(cmd.summary))];
    if let Some(m) = meta.filter(|m| !m.since.is_empty()) {
        pairs.push((b("since"), b(&m.since)));
    }
    let group = match cmd.group {
        "sorted-set" => "sorted_set",
        g => g,
    };
    pairs.push((b("group"), b(group)));
    if let Some(m) = meta.filter(|m| !m.complexity.is_empty()) {
        pairs.push((b("complexity"), b(&m.complexity)));
    }
    let args = super::command_docs::parse_syntax(cmd.syntax);
    if !args.is_empty() {
        let mut key_index = 0;
        pairs.push((
            b("arguments"),
            Reply::Array(args.iter().map(|a| a.reply(&mut key_index)).collect()),
        ));
    }
    if !cmd.subcommands.is_empty() {
        pairs.push((
            b("subcommands"),
            Reply::Map(
                cmd.subcommands
                    .iter()
                    .map(|s| (b(s.name), doc_reply(s)))
                    .collect(),
            ),
        ));
    }
    Reply::Map(pairs)
}
