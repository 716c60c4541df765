//! The one command table: name, arity, flags, key positions and handler for every command.
//! COMMAND, dispatch, MULTI, AUTH checks (and later scripting) all read this table.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::Handler;

/// Command flags, named as COMMAND INFO prints them.
pub struct Flags;

impl Flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const NO_MULTI: u32 = 1 << 13;
    pub const ALLOW_BUSY: u32 = 1 << 14;
    pub const MAY_REPLICATE: u32 = 1 << 15;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 16;
    pub const ASKING: u32 = 1 << 17;

    pub const NAMES: &'static [(u32, &'static str)] = &[
        (Self::WRITE, "write"),
        (Self::READONLY, "readonly"),
        (Self::DENYOOM, "denyoom"),
        (Self::ADMIN, "admin"),
        (Self::PUBSUB, "pubsub"),
        (Self::NOSCRIPT, "noscript"),
        (Self::BLOCKING, "blocking"),
        (Self::LOADING, "loading"),
        (Self::STALE, "stale"),
        (Self::SKIP_MONITOR, "skip_monitor"),
        (Self::SKIP_SLOWLOG, "skip_slowlog"),
        (Self::ASKING, "asking"),
        (Self::FAST, "fast"),
        (Self::NO_AUTH, "no_auth"),
        (Self::NO_MULTI, "no_multi"),
        (Self::ALLOW_BUSY, "allow_busy"),
        (Self::MAY_REPLICATE, "may_replicate"),
        (Self::NO_MANDATORY_KEYS, "no_mandatory_keys"),
    ];
}

/// Where a command's keys are.
#[derive(Clone, Copy)]
pub enum Keys {
    None,
    /// first, last (negative counts from the end), step: COMMAND's legacy triple.
    Range(i32, i32, i32),
    /// Keys found by reading the arguments (numkeys forms); returns argument indexes.
    Custom(i32, i32, i32, fn(&[Bytes]) -> Vec<usize>),
}

pub struct Command {
    /// Lowercase name.
    pub name: &'static str,
    /// Positive: exact argument count (name included); negative: at least -arity.
    pub arity: i32,
    pub flags: u32,
    pub keys: Keys,
    pub handler: Handler,
    pub subcommands: &'static [Command],
    pub group: &'static str,
    pub summary: &'static str,
    /// Argument syntax after the name, as the Redis docs write it (`key value [EX seconds]`).
    pub syntax: &'static str,
}

impl Command {
    pub const fn new(name: &'static str, arity: i32, flags: u32, handler: Handler) -> Command {
        Command {
            name,
            arity,
            flags,
            keys: Keys::None,
            handler,
            subcommands: &[],
            group: "generic",
            summary: "",
            syntax: "",
        }
    }

    pub const fn keys(mut self, first: i32, last: i32, step: i32) -> Command {
        self.keys = Keys::Range(first, last, step);
        self
    }

    pub const fn keys_fn(
        mut self,
        first: i32,
        last: i32,
        step: i32,
        f: fn(&[Bytes]) -> Vec<usize>,
    ) -> Command {
        self.keys = Keys::Custom(first, last, step, f);
        self
    }

    pub const fn subs(mut self, subs: &'static [Command]) -> Command {
        self.subcommands = subs;
        self
    }

    pub const fn doc(
        mut self,
        group: &'static str,
        summary: &'static str,
        syntax: &'static str,
    ) -> Command {
        self.group = group;
        self.summary = summary;
        self.syntax = syntax;
        self
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        (a > 0 && argc == a as usize) || (a < 0 && argc >= (-a) as usize)
    }

    /// Indexes of the key arguments in `argv`.
    pub fn key_indexes(&self, argv: &[Bytes]) -> Vec<usize> {
        match self.keys {
            Keys::None => Vec::new(),
            Keys::Custom(.., f) => f(argv),
            Keys::Range(first, last, step) => {
                if first <= 0 {
                    return Vec::new();
                }
                let last = if last < 0 {
                    argv.len() as i32 + last
                } else {
                    last
                };
                let mut out = Vec::new();
                let mut i = first;
                while i <= last && (i as usize) < argv.len() {
                    out.push(i as usize);
                    i += step.max(1);
                }
                out
            }
        }
    }

    pub fn subcommand(&self, name: &[u8]) -> Option<&'static Command> {
        self.subcommands.iter().find(|c| {
            c.name
                .rsplit('|')
                .next()
                .is_some_and(|n| n.as_bytes().eq_ignore_ascii_case(name))
        })
    }
}

/// Every group's commands; a new group file adds its `COMMANDS` here.
const GROUPS: &[&[Command]] = {
    use super::*;
    &[
        connection::COMMANDS,
        server::COMMANDS,
        introspection::COMMANDS,
        keys::COMMANDS,
        dump::COMMANDS,
        strings::COMMANDS,
        bits::COMMANDS,
        hyperloglog::COMMANDS,
        lists::COMMANDS,
        hashes::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        geo::COMMANDS,
        streams::COMMANDS,
        streams_read::COMMANDS,
        streams_groups::COMMANDS,
        pubsub::COMMANDS,
        transactions::COMMANDS,
        scripting::COMMANDS,
        functions::COMMANDS,
        sort::COMMANDS,
    ]
};

/// Every top-level command, in table order.
pub fn all() -> impl Iterator<Item = &'static Command> {
    GROUPS.iter().flat_map(|g| g.iter())
}

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    static INDEX: OnceLock<HashMap<Vec<u8>, &'static Command>> = OnceLock::new();
    let index = INDEX.get_or_init(|| all().map(|c| (c.name.as_bytes().to_vec(), c)).collect());
    if name.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 32];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    index.get(&lower[..]).copied()
}

/// The command an argv names, descending into a container's subcommand.
pub enum Resolved {
    Found(&'static Command),
    Unknown,
    UnknownSub(&'static Command),
}

pub fn resolve(argv: &[Bytes]) -> Resolved {
    let Some(cmd) = lookup(&argv[0]) else {
        return Resolved::Unknown;
    };
    if cmd.subcommands.is_empty() {
        return Resolved::Found(cmd);
    }
    match argv.get(1) {
        // A container with no subcommand: arity check reports it with the container's name.
        None => Resolved::Found(cmd),
        Some(sub) => match cmd.subcommand(sub) {
            Some(s) => Resolved::Found(s),
            None => Resolved::UnknownSub(cmd),
        },
    }
}
