//! DUMP, RESTORE (and RESTORE-ASKING) with Redis 7.0.15's payloads (`src/rdb/`), MIGRATE in
//! `migrate.rs`.

use bytes::Bytes;

use super::args::{int, is, syntax, R};
use super::{Command, Ctx, Flags as F};
use crate::db::stream::NodeLimits;
use crate::db::Entry;
use crate::protocol::Reply;
use crate::rdb::{self, DecodeOptions, EncodeOptions, PayloadError};

pub const COMMANDS: &[Command] = &[
    Command::new("dump", 2, F::READONLY, dump)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "Return a serialized version of the value stored at the specified key.",
            "key",
        ),
    Command::new("restore", -4, F::WRITE | F::DENYOOM, restore)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "Create a key using the provided serialized value, previously obtained using DUMP.",
            "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]",
        ),
    Command::new(
        "restore-asking",
        -4,
        F::WRITE | F::DENYOOM | F::ASKING,
        restore,
    )
    .keys(1, 1, 1)
    .doc(
        "server",
        "An internal command for migrating keys in a cluster",
        "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]",
    ),
    super::migrate::MIGRATE,
];

pub const BUSYKEY: &str = "BUSYKEY Target key name already exists.";

/// The encoding parameters from CONFIG.
pub fn encode_options(ctx: &Ctx) -> EncodeOptions {
    let c = &ctx.w.config;
    let n = |name: &str| c.get_i64(name).max(0) as usize;
    EncodeOptions {
        hash_max_listpack_entries: n("hash-max-listpack-entries"),
        hash_max_listpack_value: n("hash-max-listpack-value"),
        zset_max_listpack_entries: n("zset-max-listpack-entries"),
        zset_max_listpack_value: n("zset-max-listpack-value"),
        set_max_intset_entries: n("set-max-intset-entries"),
        list_max_listpack_size: c.get_i64("list-max-listpack-size"),
        stream_node_max_entries: n("stream-node-max-entries"),
        stream_node_max_bytes: n("stream-node-max-bytes"),
        compression: c.get("rdbcompression") != "no",
    }
}

pub fn decode_options(ctx: &Ctx) -> DecodeOptions {
    let c = &ctx.w.config;
    DecodeOptions {
        stream_limits: NodeLimits {
            entries: c.get_i64("stream-node-max-entries").max(0) as usize,
            bytes: c.get_i64("stream-node-max-bytes").max(0) as usize,
        },
    }
}

fn dump(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let o = encode_options(ctx);
    match ctx.db().get(&argv[1]) {
        None => Reply::Nil,
        Some(v) => Reply::Bulk(Bytes::from(rdb::dump(v, &o))),
    }
}

fn restore(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    restore_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn restore_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        if is(&argv[j], "replace") {
            replace = true;
        } else if is(&argv[j], "absttl") {
            absttl = true;
        } else if is(&argv[j], "idletime") && more && freq.is_none() {
            let v = int(&argv[j + 1])?;
            if v < 0 {
                return Err(Reply::err("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v);
            j += 1;
        } else if is(&argv[j], "freq") && more && idle.is_none() {
            let v = int(&argv[j + 1])?;
            if !(0..=255).contains(&v) {
                return Err(Reply::err(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            freq = Some(v);
            j += 1;
        } else {
            return syntax();
        }
        j += 1;
    }
    let key = &argv[1];
    if !replace && ctx.db().exists(key) {
        return Err(Reply::err(BUSYKEY));
    }
    let ttl = int(&argv[2])?;
    if ttl < 0 {
        return Err(Reply::err("ERR Invalid TTL value, must be >= 0"));
    }
    let o = decode_options(ctx);
    let value = match rdb::restore(&argv[3], false, &o) {
        Ok(v) => v,
        Err(PayloadError::VersionOrChecksum) => {
            return Err(Reply::err("ERR DUMP payload version or checksum are wrong"))
        }
        Err(PayloadError::BadFormat) => return Err(Reply::err("ERR Bad data format")),
    };
    let now = ctx.now;
    let deleted = replace && ctx.db().remove_live(key);
    let at = match ttl {
        0 => None,
        t if absttl => Some(t),
        t => Some(t.wrapping_add(now)),
    };
    if at.is_some_and(|t| t <= now) {
        // Already expired: nothing is created (a replaced key is gone).
        if deleted {
            ctx.modified(key);
        }
        return Ok(Reply::ok());
    }
    // Berth does not keep LFU counters; FREQ is accepted and has no effect (OBJECT FREQ).
    let _ = freq;
    let accessed = match idle {
        Some(s) => now.saturating_sub(s.saturating_mul(1000)),
        None => now,
    };
    ctx.db()
        .insert_entry(key.clone(), Entry::new(value, at, accessed));
    ctx.modified(key);
    ctx.signal_ready(key);
    Ok(Reply::ok())
}
