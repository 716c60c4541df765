//! Introspection of keys and memory: OBJECT, MEMORY; shared helpers for CLIENT / DEBUG.

use bytes::Bytes;

use super::args::{int, is, SYNTAX};
use super::server::help;
use super::{Command, Ctx, Flags as F};
use crate::db::Value;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[
    super::client::CLIENT,
    super::command_info::COMMAND,
    Command::new("object", -2, 0, super::server::container)
        .subs(OBJECT_SUBS)
        .doc(
            "generic",
            "A container for object introspection commands",
            "",
        ),
    Command::new("memory", -2, 0, super::server::container)
        .subs(MEMORY_SUBS)
        .doc("server", "A container for memory diagnostics commands", ""),
];

const OBJECT_SUBS: &[Command] = &[
    Command::new("object|encoding", 3, F::READONLY, object_encoding)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "Inspect the internal encoding of a Redis object",
            "key",
        ),
    Command::new("object|freq", 3, F::READONLY, object_freq)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "Get the logarithmic access frequency counter of a Redis object",
            "key",
        ),
    Command::new("object|idletime", 3, F::READONLY, object_idletime)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "Get the time since a Redis object was last accessed",
            "key",
        ),
    Command::new("object|refcount", 3, F::READONLY, object_refcount)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "Get the number of references to the value of the key",
            "key",
        ),
    Command::new("object|help", 2, F::LOADING | F::STALE, object_help).doc(
        "generic",
        "Show helpful text about the different subcommands",
        "",
    ),
];

const MEMORY_SUBS: &[Command] = &[
    Command::new("memory|doctor", 2, 0, memory_doctor).doc(
        "server",
        "Outputs memory problems report",
        "",
    ),
    Command::new("memory|malloc-stats", 2, 0, memory_malloc_stats).doc(
        "server",
        "Show allocator internal stats",
        "",
    ),
    Command::new("memory|purge", 2, 0, memory_purge).doc(
        "server",
        "Ask the allocator to release memory",
        "",
    ),
    Command::new("memory|stats", 2, 0, memory_stats).doc("server", "Show memory usage details", ""),
    Command::new("memory|usage", -3, F::READONLY, memory_usage)
        .keys(2, 2, 1)
        .doc(
            "server",
            "Estimate the memory usage of a key",
            "key [SAMPLES count]",
        ),
    Command::new("memory|help", 2, F::LOADING | F::STALE, memory_help).doc(
        "server",
        "Show helpful text about the different subcommands",
        "",
    ),
];

/// CLIENT SETNAME / HELLO SETNAME: no spaces or newlines.
pub fn validate_client_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// Redis's `string2ll`: a canonical 64-bit integer (no sign '+', no leading zeros, no spaces).
pub fn is_canonical_int(s: &[u8]) -> bool {
    if s.is_empty() || s.len() > 20 {
        return false;
    }
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if digits[0] == b'0' && (digits.len() > 1 || s.len() > 1) {
        return false;
    }
    std::str::from_utf8(s).is_ok_and(|t| t.parse::<i64>().is_ok())
}

/// The default *-max-* limits, for callers without the running config (`encoding_with` takes it).
fn cfg(name: &str) -> usize {
    match name {
        "set-max-intset-entries" => 512,
        "hash-max-listpack-entries" | "zset-max-listpack-entries" => 128,
        _ => 64,
    }
}

/// The encoding Redis 7.0 would use for a value (OBJECT ENCODING, DEBUG OBJECT).
pub fn encoding(v: &Value) -> &'static str {
    encoding_with(v, &cfg)
}

pub fn encoding_with(v: &Value, limit: &dyn Fn(&str) -> usize) -> &'static str {
    match v {
        Value::Str(s) => {
            if is_canonical_int(s) {
                "int"
            } else if s.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        Value::List(_) => "quicklist",
        Value::Hash(h) => {
            let max = limit("hash-max-listpack-value");
            if h.len() <= limit("hash-max-listpack-entries")
                && h.iter().all(|(k, v)| k.len() <= max && v.len() <= max)
            {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Set(s) => {
            if s.len() <= limit("set-max-intset-entries") && s.iter().all(|m| is_canonical_int(m)) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            let max = limit("zset-max-listpack-value");
            if z.len() <= limit("zset-max-listpack-entries") && z.members().all(|m| m.len() <= max)
            {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Value::Stream(_) => "stream",
    }
}

/// jemalloc's size class for an allocation (what `zmalloc_size` reports).
fn alloc_size(n: usize) -> usize {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    let p = usize::BITS - (n - 1).leading_zeros(); // n <= 2^p
    let step = 1usize << (p - 3);
    n.div_ceil(step) * step
}

fn sds_size(len: usize) -> usize {
    let hdr = if len < 256 {
        3
    } else if len < 65536 {
        5
    } else {
        9
    };
    alloc_size(hdr + len + 1)
}

/// Bytes one listpack entry takes: small integers are packed, strings carry a length header
/// and every entry a back-length byte.
fn lp_entry(e: &[u8]) -> usize {
    if is_canonical_int(e) {
        let n: i64 = std::str::from_utf8(e)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        return match n {
            0..=127 => 2,
            -4096..=4095 => 3,
            -32768..=32767 => 4,
            -8388608..=8388607 => 5,
            -2147483648..=2147483647 => 6,
            _ => 10,
        };
    }
    let len = e.len();
    let header = if len <= 63 {
        1
    } else if len <= 4095 {
        2
    } else {
        5
    };
    let body = header + len;
    body + if body < 128 {
        1
    } else if body < 16384 {
        2
    } else {
        3
    }
}

/// An estimate of the bytes a key and its value take (MEMORY USAGE), modelled on Redis's
/// `objectComputeSize` with jemalloc size classes.
pub fn memory_usage_of(key: &[u8], v: &Value) -> usize {
    let value = match v {
        Value::Str(s) => {
            if is_canonical_int(s) {
                16
            } else if s.len() <= 44 {
                alloc_size(16 + 3 + s.len() + 1)
            } else {
                16 + sds_size(s.len())
            }
        }
        Value::List(l) => {
            let bytes: usize = l.iter().map(|e| lp_entry(e)).sum();
            let nodes = l.len().div_ceil(128).max(1);
            16 + 48 + nodes * (32 + alloc_size(bytes / nodes + 7))
        }
        Value::Hash(h) => {
            let bytes: usize = h.iter().map(|(k, v)| lp_entry(k) + lp_entry(v)).sum();
            if encoding(v) == "listpack" {
                16 + alloc_size(bytes + 7)
            } else {
                16 + 96
                    + h.iter()
                        .map(|(k, v)| 24 + sds_size(k.len()) + sds_size(v.len()))
                        .sum::<usize>()
                    + alloc_size(h.len().next_power_of_two() * 8)
            }
        }
        Value::Set(s) => {
            if encoding(v) == "intset" {
                let width = s
                    .iter()
                    .map(|m| {
                        let n: i64 = std::str::from_utf8(m)
                            .ok()
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(0);
                        if i16::try_from(n).is_ok() {
                            2
                        } else if i32::try_from(n).is_ok() {
                            4
                        } else {
                            8
                        }
                    })
                    .max()
                    .unwrap_or(2);
                16 + alloc_size(8 + s.len() * width)
            } else {
                16 + 96
                    + s.iter().map(|m| 24 + sds_size(m.len())).sum::<usize>()
                    + alloc_size(s.len().next_power_of_two() * 8)
            }
        }
        Value::ZSet(z) => {
            let bytes: usize = z
                .iter()
                .map(|(m, score)| {
                    let text = crate::protocol::numbers::fmt_double(score);
                    lp_entry(m) + lp_entry(text.as_bytes())
                })
                .sum();
            if encoding(v) == "listpack" {
                16 + alloc_size(bytes + 7)
            } else {
                16 + 96
                    + z.members()
                        .map(|m| 24 + sds_size(m.len()) + alloc_size(48))
                        .sum::<usize>()
                    + alloc_size(z.len().next_power_of_two() * 8)
            }
        }
        Value::Stream(st) => st.memory(&alloc_size, 5),
    };
    value + sds_size(key.len()) + 24
}

const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

fn lfu_policy(ctx: &Ctx) -> bool {
    ctx.w.config.get("maxmemory-policy").ends_with("-lfu")
}

fn object_encoding(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let now = ctx.now;
    let w = &mut *ctx.w;
    let db = &mut w.keyspace.dbs[ctx.db];
    db.now = now;
    let config = &w.config;
    match db.peek(&argv[2]) {
        None => Reply::Nil,
        Some(e) => {
            let limit = |n: &str| config.get_i64(n).max(0) as usize;
            Reply::bulk_str(encoding_with(&e.value, &limit))
        }
    }
}

fn object_freq(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let exists = ctx.db().peek(&argv[2]).is_some();
    if !exists {
        return Reply::Nil;
    }
    if !lfu_policy(ctx) {
        return Reply::err(LFU_NOT_SELECTED);
    }
    Reply::Int(0)
}

fn object_idletime(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let now = ctx.now;
    let accessed = match ctx.db().peek(&argv[2]) {
        None => return Reply::Nil,
        Some(e) => e.accessed,
    };
    if lfu_policy(ctx) {
        return Reply::err(LFU_SELECTED);
    }
    Reply::Int(((now - accessed) / 1000).max(0))
}

fn object_refcount(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    match ctx.db().peek(&argv[2]) {
        None => Reply::Nil,
        // Small integers are shared objects in Redis.
        Some(e) => match &e.value {
            Value::Str(s)
                if is_canonical_int(s)
                    && std::str::from_utf8(s)
                        .ok()
                        .and_then(|t| t.parse::<i64>().ok())
                        .is_some_and(|n| (0..10000).contains(&n)) =>
            {
                Reply::Int(i32::MAX as i64)
            }
            _ => Reply::Int(1),
        },
    }
}

fn object_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help(
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    )
}

fn memory_usage(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut j = 3;
    while j < argv.len() {
        if is(&argv[j], "samples") && j + 1 < argv.len() {
            match int(&argv[j + 1]) {
                Ok(v) if v < 0 => return Reply::err(SYNTAX),
                Ok(_) => {}
                Err(e) => return e,
            }
            j += 2;
        } else {
            return Reply::err(SYNTAX);
        }
    }
    match ctx.db().peek(&argv[2]) {
        None => Reply::Nil,
        Some(e) => Reply::Int(memory_usage_of(&argv[2], &e.value) as i64),
    }
}

/// Resident set size of this process, from /proc/self/statm (0 where unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Estimated bytes used by the dataset (sum of MEMORY USAGE over all keys).
pub fn dataset_bytes(ctx: &Ctx) -> u64 {
    let mut total = 0u64;
    for db in &ctx.w.keyspace.dbs {
        for k in db.keys() {
            if let Some(e) = db.peek(k) {
                total += memory_usage_of(k, &e.value) as u64;
            }
        }
    }
    total
}

fn memory_doctor(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Verbatim(Bytes::from_static(
        b"Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n",
    ))
}

fn memory_malloc_stats(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Verbatim(Bytes::from_static(
        b"Stats not supported for the current allocator",
    ))
}

fn memory_purge(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::ok()
}

fn memory_stats(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let s = Reply::bulk_str;
    let i = |v: u64| Reply::Int(v as i64);
    let rss = rss_bytes();
    let dataset = dataset_bytes(ctx);
    let startup = 876_224u64;
    let total = startup + dataset;
    let keys: usize = ctx.w.keyspace.dbs.iter().map(|d| d.len()).sum();
    let mut pairs = vec![
        (s("peak.allocated"), i(total.max(rss))),
        (s("total.allocated"), i(total)),
        (s("startup.allocated"), i(startup)),
        (s("replication.backlog"), i(0)),
        (s("clients.slaves"), i(0)),
        (s("clients.normal"), i(ctx.w.clients.len() as u64 * 20_496)),
        (s("cluster.links"), i(0)),
        (s("aof.buffer"), i(0)),
        (s("lua.caches"), i(0)),
        (s("functions.caches"), i(200)),
    ];
    for (n, db) in ctx.w.keyspace.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        pairs.push((
            s(&format!("db.{n}")),
            Reply::Map(vec![
                (s("overhead.hashtable.main"), i(db.len() as u64 * 32 + 200)),
                (
                    s("overhead.hashtable.expires"),
                    i(db.expires_count() as u64 * 32),
                ),
                (s("overhead.hashtable.slot-to-keys"), i(0)),
            ]),
        ));
    }
    let pct = |a: u64, b: u64| {
        Reply::Double(if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        })
    };
    pairs.extend([
        (s("overhead.total"), i(startup)),
        (s("keys.count"), i(keys as u64)),
        (
            s("keys.bytes-per-key"),
            i(if keys == 0 { 0 } else { total / keys as u64 }),
        ),
        (s("dataset.bytes"), i(dataset)),
        (s("dataset.percentage"), pct(dataset, total)),
        (s("peak.percentage"), pct(total, total.max(rss))),
        (s("allocator.allocated"), i(total)),
        (s("allocator.active"), i(total)),
        (s("allocator.resident"), i(rss)),
        (s("allocator-fragmentation.ratio"), Reply::Double(1.0)),
        (s("allocator-fragmentation.bytes"), i(0)),
        (s("allocator-rss.ratio"), Reply::Double(1.0)),
        (s("allocator-rss.bytes"), i(0)),
        (s("rss-overhead.ratio"), Reply::Double(1.0)),
        (s("rss-overhead.bytes"), i(0)),
        (
            s("fragmentation"),
            Reply::Double(if total == 0 {
                1.0
            } else {
                rss as f64 / total as f64
            }),
        ),
        (s("fragmentation.bytes"), i(rss.saturating_sub(total))),
    ]);
    Reply::Map(pairs)
}

fn memory_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    help(
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    )
}
