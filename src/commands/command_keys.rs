//! COMMAND GETKEYS / GETKEYSANDFLAGS as Redis 7.0.15 finds keys (db.c): the command's key
//! specs (from `command_meta.tsv`) first, and the command's own key finder where a spec has
//! variable flags or does not apply to the arguments given.

use bytes::Bytes;

use super::command_info::{key_specs, KeySpec, SpecVal};
use super::{table, Command, Flags as F};
use crate::protocol::Reply;

const RO: u32 = 1;
const RW: u32 = 1 << 1;
const OW: u32 = 1 << 2;
const ACCESS: u32 = 1 << 4;
const UPDATE: u32 = 1 << 5;
const DELETE: u32 = 1 << 7;
const NOT_KEY: u32 = 1 << 8;
const INCOMPLETE: u32 = 1 << 9;
const VARIABLE_FLAGS: u32 = 1 << 10;

/// Key spec flags in Redis's reply order (addReplyFlagsForKeyArgs).
const FLAG_NAMES: &[(u32, &str)] = &[
    (RO, "RO"),
    (RW, "RW"),
    (OW, "OW"),
    (1 << 3, "RM"),
    (ACCESS, "access"),
    (UPDATE, "update"),
    (1 << 6, "insert"),
    (DELETE, "delete"),
    (NOT_KEY, "not_key"),
    (INCOMPLETE, "incomplete"),
    (VARIABLE_FLAGS, "variable_flags"),
];

fn spec_flags(spec: &KeySpec) -> u32 {
    spec.flags
        .iter()
        .filter_map(|f| FLAG_NAMES.iter().find(|(_, n)| n == f).map(|(v, _)| *v))
        .fold(0, |a, b| a | b)
}

/// The commands with a key finder of their own (Redis's `getkeys_proc`).
fn has_finder(name: &str) -> bool {
    matches!(
        name,
        "bitfield"
            | "migrate"
            | "sort"
            | "sort_ro"
            | "georadius"
            | "georadiusbymember"
            | "blmpop"
            | "lmpop"
            | "eval"
            | "evalsha"
            | "evalsha_ro"
            | "eval_ro"
            | "fcall"
            | "fcall_ro"
            | "sintercard"
            | "bzmpop"
            | "zdiff"
            | "zdiffstore"
            | "zinter"
            | "zintercard"
            | "zinterstore"
            | "zmpop"
            | "zunion"
            | "zunionstore"
            | "xread"
            | "xreadgroup"
            | "set"
    )
}

fn int(v: Option<&(String, SpecVal)>) -> i64 {
    match v {
        Some((_, SpecVal::Int(n))) => *n,
        _ => 0,
    }
}

/// Redis's getKeysUsingKeySpecs: (position, flags) of each key, None when a spec does not
/// fit the arguments (the command's own finder is asked then).
fn keys_from_specs(specs: &[KeySpec], argv: &[Bytes], arity: i32) -> Option<Vec<(usize, u32)>> {
    let argc = argv.len() as i64;
    let mut out = Vec::new();
    for spec in specs {
        let flags = spec_flags(spec);
        if flags & NOT_KEY != 0 {
            continue;
        }
        let mut first: i64 = 0;
        match spec.begin.0.as_str() {
            "index" => first = int(spec.begin.1.first()),
            "keyword" => {
                let keyword = match spec.begin.1.first() {
                    Some((_, SpecVal::Str(k))) => k.as_bytes(),
                    _ => b"",
                };
                let startfrom = int(spec.begin.1.get(1));
                let start = if startfrom > 0 {
                    startfrom
                } else {
                    argc + startfrom
                };
                let end = if startfrom > 0 { argc - 1 } else { 1 };
                let mut i = start;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if argv[i as usize].eq_ignore_ascii_case(keyword) {
                        first = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if first == 0 {
                    continue;
                }
            }
            _ => return None,
        }
        let (last, step) = match spec.find.0.as_str() {
            "range" => {
                let lastkey = int(spec.find.1.first());
                let step = int(spec.find.1.get(1));
                let limit = int(spec.find.1.get(2));
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, step)
            }
            "keynum" => {
                let keynumidx = int(spec.find.1.first());
                let firstkey = int(spec.find.1.get(1));
                let step = int(spec.find.1.get(2));
                if keynumidx >= argc || first + keynumidx >= argc {
                    return None;
                }
                let n = crate::protocol::request::parse_i64(&argv[(first + keynumidx) as usize])
                    .filter(|n| *n >= 0)?;
                first += firstkey;
                (first + (n as i32) as i64 - 1, step)
            }
            _ => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            if i >= argc || i < first {
                if arity < 0 {
                    i += step.max(1);
                    continue;
                }
                break;
            }
            out.push((i as usize, flags));
            i += step.max(1);
        }
        if flags & INCOMPLETE != 0 {
            return None;
        }
    }
    Some(out)
}

/// C's atoi: leading white space, a sign, digits, the rest ignored.
fn atoi(b: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(b);
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |a, c| {
            a.saturating_mul(10).saturating_add((c - b'0') as i64)
        });
    let n = if neg { -n } else { n };
    n as i32 as i64
}

/// Redis's genericGetKeys: `[store] numkeys key ...`; the store key comes last.
fn generic(argv: &[Bytes], store: usize, count: usize, first: usize) -> Vec<(usize, u32)> {
    let num = atoi(&argv[count]);
    if num < 1 || num > (argv.len() as i64 - first as i64) {
        return vec![];
    }
    let mut out: Vec<(usize, u32)> = (0..num as usize).map(|i| (first + i, 0)).collect();
    if store > 0 {
        out.push((store, 0));
    }
    out
}

/// The command's own key finder (Redis's `*GetKeys` functions in db.c).
fn finder(name: &str, argv: &[Bytes]) -> Vec<(usize, u32)> {
    let is = |i: usize, w: &str| argv[i].eq_ignore_ascii_case(w.as_bytes());
    match name {
        "zunionstore" | "zinterstore" | "zdiffstore" => generic(argv, 1, 2, 3),
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => {
            generic(argv, 0, 1, 2)
        }
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" | "blmpop"
        | "bzmpop" => generic(argv, 0, 2, 3),
        "set" => {
            let get = argv[3.min(argv.len())..]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(b"get"));
            vec![(
                1,
                if get {
                    RW | ACCESS | UPDATE
                } else {
                    OW | UPDATE
                },
            )]
        }
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < argv.len() {
                let rem = argv.len() - i - 1;
                if is(i, "get") && rem >= 2 {
                    i += 2;
                } else if (is(i, "set") || is(i, "incrby")) && rem >= 3 {
                    readonly = false;
                    break;
                } else if is(i, "overflow") && rem >= 1 {
                    i += 1;
                } else {
                    readonly = false;
                    break;
                }
                i += 1;
            }
            let flags = if readonly {
                RO | ACCESS
            } else {
                RW | ACCESS | UPDATE
            };
            vec![(1, flags)]
        }
        "xread" | "xreadgroup" => {
            let mut streams = None;
            let mut i = 1;
            while i < argv.len() {
                if is(i, "block") || is(i, "count") {
                    i += 1;
                } else if is(i, "group") {
                    i += 2;
                } else if is(i, "noack") {
                } else if is(i, "streams") {
                    streams = Some(i);
                    break;
                } else {
                    break;
                }
                i += 1;
            }
            let Some(at) = streams else { return vec![] };
            let num = argv.len() - at - 1;
            if num == 0 || !num.is_multiple_of(2) {
                return vec![];
            }
            (at + 1..argv.len() - num / 2).map(|i| (i, 0)).collect()
        }
        "sort_ro" => vec![(1, RO | ACCESS)],
        "sort" => {
            let mut out = vec![(1, RO | ACCESS)];
            let mut store = None;
            let mut i = 2;
            while i < argv.len() {
                if is(i, "limit") {
                    i += 2;
                } else if is(i, "get") || is(i, "by") {
                    i += 1;
                } else if is(i, "store") && i + 1 < argv.len() {
                    store = Some(i + 1);
                }
                i += 1;
            }
            out.extend(store.map(|s| (s, OW | UPDATE)));
            out
        }
        "migrate" => {
            let (mut first, mut num) = (3, 1);
            let mut i = 6;
            while argv.len() > 6 && i < argv.len() {
                if is(i, "keys") {
                    if !argv[3].is_empty() {
                        num = 0;
                    } else {
                        first = i + 1;
                        num = argv.len() - first;
                    }
                    break;
                }
                if is(i, "auth") {
                    i += 1;
                } else if is(i, "auth2") {
                    i += 2;
                }
                i += 1;
            }
            (first..first + num)
                .map(|i| (i, RW | ACCESS | DELETE))
                .collect()
        }
        "georadius" | "georadiusbymember" => {
            let mut stored = None;
            let mut i = 5;
            while i < argv.len() {
                if (is(i, "store") || is(i, "storedist")) && i + 1 < argv.len() {
                    stored = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            std::iter::once((1, 0))
                .chain(stored.map(|s| (s, 0)))
                .collect()
        }
        _ => vec![],
    }
}

/// Redis's getKeysSubcommandImpl: the keys of a full command (`argv` after GETKEYS), with
/// their flags, or Redis's error.
pub fn keys_of(argv: &[Bytes]) -> Result<Vec<(usize, u32)>, Reply> {
    let cmd: &Command = match table::resolve(argv) {
        table::Resolved::Found(c) => c,
        _ => return Err(Reply::err("ERR Invalid command specified")),
    };
    let specs = key_specs(cmd.name);
    let all_not_key = specs.iter().all(|s| spec_flags(s) & NOT_KEY != 0);
    if !has_finder(cmd.name) && all_not_key {
        return Err(Reply::err("ERR The command has no key arguments"));
    }
    if !cmd.arity_ok(argv.len()) {
        return Err(Reply::err(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let variable = specs.iter().any(|s| spec_flags(s) & VARIABLE_FLAGS != 0);
    let from_specs = if !all_not_key && !variable {
        keys_from_specs(specs, argv, cmd.arity)
    } else {
        None
    };
    let keys = match from_specs {
        Some(keys) => keys,
        None if has_finder(cmd.name) => finder(cmd.name, argv),
        None => vec![],
    };
    if keys.is_empty() && !cmd.has(F::NO_MANDATORY_KEYS) {
        return Err(Reply::err("ERR Invalid arguments specified for command"));
    }
    Ok(keys)
}

/// The flags of a key as GETKEYSANDFLAGS prints them (a set).
pub fn flags_reply(flags: u32) -> Reply {
    Reply::Set(
        FLAG_NAMES
            .iter()
            .filter(|(v, _)| flags & v != 0)
            .map(|(_, n)| Reply::status(n))
            .collect(),
    )
}
