//! The parameter table behind CONFIG GET / SET / REWRITE and the config file: every parameter
//! of Redis 7.0.15's `standardConfig static_configs[]` (config.c) with its alias, flags, type,
//! bounds and default, plus Berth's own. Values are checked as Redis's `*ConfigSet` functions
//! check them, with their error texts, and stored as Redis's `*ConfigGet` prints them.

/// `CONFIG SET` refuses it: "can't set immutable config".
pub const IMMUTABLE: u32 = 1;
/// Refused unless `enable-protected-configs` allows it: "can't set protected config".
pub const PROTECTED: u32 = 1 << 1;
/// Not matched by `CONFIG GET` patterns, only by its exact name.
pub const HIDDEN: u32 = 1 << 2;
/// The value is several words (CONFIG SET splits it on spaces).
pub const MULTI_ARG: u32 = 1 << 3;
/// `CONFIG SET` answers -LOADING while the dataset loads.
pub const DENY_LOADING: u32 = 1 << 4;

const IMM: u32 = IMMUTABLE;
const MULTI: u32 = MULTI_ARG;

mod values;
pub use values::{memtoull, normalize_events, parse, strtoll_radix, EVENT_CLASSES};

/// Number formats of Redis's numeric configs.
pub const MEM: u8 = 1;
pub const PCT: u8 = 2;
pub const OCT: u8 = 4;

/// A check a string parameter runs on its new value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StrCheck {
    None,
    DbFilename,
    AofFilename,
    AofDirname,
    Hostname,
    ProcTitle,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Dir,
    Save,
    OutputBufferLimit,
    OomScoreAdjValues,
    KeyspaceEvents,
    Bind,
    ReplicaOf,
    Percentiles,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Bool,
    /// Names and values; with MULTI_ARG the values are bit flags and several names may be given.
    Enum(&'static [(&'static str, i32)]),
    Str(StrCheck),
    /// Bounds as Redis's `long long` bounds; `unsigned` compares as unsigned (Redis's unsigned
    /// int, unsigned long long and size_t configs); `fmt` is MEM / PCT / OCT.
    Num {
        min: i64,
        max: i64,
        unsigned: bool,
        fmt: u8,
    },
    Special(Special),
}

pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub flags: u32,
    pub kind: Kind,
    pub default: &'static str,
}

impl Param {
    const fn alias(mut self, alias: &'static str) -> Param {
        self.alias = Some(alias);
        self
    }
}

const fn p(name: &'static str, flags: u32, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        alias: None,
        flags,
        kind,
        default,
    }
}
const fn boolean(name: &'static str, flags: u32, default: &'static str) -> Param {
    p(name, flags, Kind::Bool, default)
}
const fn string(name: &'static str, flags: u32, default: &'static str) -> Param {
    p(name, flags, Kind::Str(StrCheck::None), default)
}
const fn checked(name: &'static str, flags: u32, check: StrCheck, d: &'static str) -> Param {
    p(name, flags, Kind::Str(check), d)
}
const fn enumeration(
    name: &'static str,
    flags: u32,
    values: &'static [(&'static str, i32)],
    default: &'static str,
) -> Param {
    p(name, flags, Kind::Enum(values), default)
}
/// A signed integer config (Redis's int, long, unsigned long, long long, ssize_t, off_t, time_t).
const fn int(name: &'static str, flags: u32, min: i64, max: i64, default: &'static str) -> Param {
    let kind = Kind::Num {
        min,
        max,
        unsigned: false,
        fmt: 0,
    };
    p(name, flags, kind, default)
}
/// An unsigned integer config (Redis's unsigned int, unsigned long long, size_t).
const fn uint(name: &'static str, flags: u32, min: i64, max: i64, default: &'static str) -> Param {
    let kind = Kind::Num {
        min,
        max,
        unsigned: true,
        fmt: 0,
    };
    p(name, flags, kind, default)
}
/// A byte count that takes units (`1gb`), signed or unsigned.
const fn mem(name: &'static str, unsigned: bool, min: i64, max: i64, d: &'static str) -> Param {
    let kind = Kind::Num {
        min,
        max,
        unsigned,
        fmt: MEM,
    };
    p(name, 0, kind, d)
}
const fn special(name: &'static str, flags: u32, s: Special, default: &'static str) -> Param {
    p(name, flags, Kind::Special(s), default)
}

const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;
const UINT_MAX: i64 = u32::MAX as i64;
const LONG_MAX: i64 = i64::MAX;
/// ULLONG_MAX as Redis stores it in a `long long` bound.
const ULLONG_MAX: i64 = -1;
const MB: i64 = 1024 * 1024;

pub const LOGLEVEL: &[(&str, i32)] = &[("debug", 0), ("verbose", 1), ("notice", 2), ("warning", 3)];
const MAXMEMORY_POLICY: &[(&str, i32)] = &[
    ("volatile-lru", 1),
    ("volatile-lfu", 2),
    ("volatile-random", 3),
    ("volatile-ttl", 4),
    ("allkeys-lru", 5),
    ("allkeys-lfu", 6),
    ("allkeys-random", 7),
    ("noeviction", 8),
];
const SYSLOG_FACILITY: &[(&str, i32)] = &[
    ("user", 0),
    ("local0", 1),
    ("local1", 2),
    ("local2", 3),
    ("local3", 4),
    ("local4", 5),
    ("local5", 6),
    ("local6", 7),
    ("local7", 8),
];
const SUPERVISED: &[(&str, i32)] = &[("upstart", 3), ("systemd", 2), ("auto", 1), ("no", 0)];
const APPENDFSYNC: &[(&str, i32)] = &[("everysec", 2), ("always", 1), ("no", 0)];
pub const SHUTDOWN_SAVE: i32 = 1;
pub const SHUTDOWN_NOSAVE: i32 = 2;
const SHUTDOWN_ON_SIG: &[(&str, i32)] = &[
    ("default", 0),
    ("save", SHUTDOWN_SAVE),
    ("nosave", SHUTDOWN_NOSAVE),
    ("now", 4),
    ("force", 8),
];
const REPL_DISKLESS_LOAD: &[(&str, i32)] = &[("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)];
const TLS_AUTH_CLIENTS: &[(&str, i32)] = &[("no", 0), ("yes", 1), ("optional", 2)];
const OOM_SCORE_ADJ: &[(&str, i32)] = &[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];
const ACL_PUBSUB_DEFAULT: &[(&str, i32)] = &[("allchannels", 8), ("resetchannels", 0)];
const SANITIZE_DUMP: &[(&str, i32)] = &[("no", 0), ("yes", 1), ("clients", 2)];
pub const PROTECTED_ACTION: &[(&str, i32)] = &[("no", 0), ("yes", 1), ("local", 2)];
const ENDPOINT_TYPE: &[(&str, i32)] = &[("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)];
const PROPAGATION_ERROR: &[(&str, i32)] = &[("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)];
const STORAGE_ENGINE: &[(&str, i32)] = &[("fjall", 0), ("sled", 1)];

/// Every parameter, in the order of Redis's table (then Berth's own). Defaults are Redis
/// 7.0.15's built-in ones except where Berth's differ on purpose: `appendonly yes` and
/// `appendfsync always` (durability), `bind 127.0.0.1`, `dir ./data`, `save ""` (no RDB).
pub const PARAMS: &[Param] = &[
    // Bool configs
    boolean("rdbchecksum", IMM, "yes"),
    boolean("daemonize", IMM, "no"),
    boolean("io-threads-do-reads", IMM, "no"),
    boolean("always-show-logo", IMM, "no"),
    boolean("protected-mode", 0, "yes"),
    boolean("rdbcompression", 0, "yes"),
    boolean("rdb-del-sync-files", 0, "no"),
    boolean("activerehashing", 0, "yes"),
    boolean("stop-writes-on-bgsave-error", 0, "yes"),
    boolean("set-proc-title", IMM, "yes"),
    boolean("dynamic-hz", 0, "yes"),
    boolean("lazyfree-lazy-eviction", 0, "no"),
    boolean("lazyfree-lazy-expire", 0, "no"),
    boolean("lazyfree-lazy-server-del", 0, "no"),
    boolean("lazyfree-lazy-user-del", 0, "no"),
    boolean("lazyfree-lazy-user-flush", 0, "no"),
    boolean("repl-disable-tcp-nodelay", 0, "no"),
    boolean("repl-diskless-sync", 0, "yes"),
    boolean("aof-rewrite-incremental-fsync", 0, "yes"),
    boolean("no-appendfsync-on-rewrite", 0, "no"),
    boolean("cluster-require-full-coverage", 0, "yes"),
    boolean("rdb-save-incremental-fsync", 0, "yes"),
    boolean("aof-load-truncated", 0, "yes"),
    boolean("aof-use-rdb-preamble", 0, "yes"),
    boolean("aof-timestamp-enabled", 0, "no"),
    boolean("cluster-replica-no-failover", 0, "no").alias("cluster-slave-no-failover"),
    boolean("replica-lazy-flush", 0, "no").alias("slave-lazy-flush"),
    boolean("replica-serve-stale-data", 0, "yes").alias("slave-serve-stale-data"),
    boolean("replica-read-only", 0, "yes").alias("slave-read-only"),
    boolean("replica-ignore-maxmemory", 0, "yes").alias("slave-ignore-maxmemory"),
    boolean("jemalloc-bg-thread", 0, "yes"),
    boolean("activedefrag", 0, "no"),
    boolean("syslog-enabled", IMM, "no"),
    boolean("cluster-enabled", IMM, "no"),
    boolean("appendonly", DENY_LOADING, "yes"),
    boolean("cluster-allow-reads-when-down", 0, "no"),
    boolean("cluster-allow-pubsubshard-when-down", 0, "yes"),
    boolean("crash-log-enabled", 0, "yes"),
    boolean("crash-memcheck-enabled", 0, "yes"),
    boolean("use-exit-on-panic", HIDDEN, "no"),
    boolean("disable-thp", IMM, "yes"),
    boolean("cluster-allow-replica-migration", 0, "yes"),
    boolean("replica-announced", 0, "yes"),
    boolean("latency-tracking", 0, "yes"),
    boolean("aof-disable-auto-gc", 0, "no"),
    boolean("replica-ignore-disk-write-errors", 0, "no"),
    // String configs
    string("aclfile", IMM, ""),
    string("unixsocket", IMM, ""),
    string("pidfile", IMM, ""),
    string("replica-announce-ip", 0, "").alias("slave-announce-ip"),
    string("masteruser", 0, ""),
    string("cluster-announce-ip", 0, ""),
    string("cluster-config-file", IMM, "nodes.conf"),
    checked("cluster-announce-hostname", 0, StrCheck::Hostname, ""),
    string("syslog-ident", IMM, "redis"),
    checked("dbfilename", PROTECTED, StrCheck::DbFilename, "dump.rdb"),
    checked(
        "appendfilename",
        IMM,
        StrCheck::AofFilename,
        "appendonly.aof",
    ),
    checked("appenddirname", IMM, StrCheck::AofDirname, "appendonlydir"),
    string("server_cpulist", IMM, ""),
    string("bio_cpulist", IMM, ""),
    string("aof_rewrite_cpulist", IMM, ""),
    string("bgsave_cpulist", IMM, ""),
    string("ignore-warnings", 0, ""),
    checked(
        "proc-title-template",
        0,
        StrCheck::ProcTitle,
        "{title} {listen-addr} {server-mode}",
    ),
    string("bind-source-addr", 0, ""),
    string("logfile", IMM, ""),
    string("masterauth", 0, ""),
    string("requirepass", 0, ""),
    // Enum configs
    enumeration("supervised", IMM, SUPERVISED, "no"),
    enumeration("syslog-facility", IMM, SYSLOG_FACILITY, "local0"),
    enumeration(
        "repl-diskless-load",
        DENY_LOADING,
        REPL_DISKLESS_LOAD,
        "disabled",
    ),
    enumeration("loglevel", 0, LOGLEVEL, "notice"),
    enumeration("maxmemory-policy", 0, MAXMEMORY_POLICY, "noeviction"),
    enumeration("appendfsync", 0, APPENDFSYNC, "always"),
    enumeration("oom-score-adj", 0, OOM_SCORE_ADJ, "no"),
    enumeration("acl-pubsub-default", 0, ACL_PUBSUB_DEFAULT, "resetchannels"),
    enumeration("sanitize-dump-payload", 0, SANITIZE_DUMP, "no"),
    enumeration("enable-protected-configs", IMM, PROTECTED_ACTION, "no"),
    enumeration("enable-debug-command", IMM, PROTECTED_ACTION, "no"),
    enumeration("enable-module-command", IMM, PROTECTED_ACTION, "no"),
    enumeration("cluster-preferred-endpoint-type", 0, ENDPOINT_TYPE, "ip"),
    enumeration("propagation-error-behavior", 0, PROPAGATION_ERROR, "ignore"),
    enumeration("shutdown-on-sigint", MULTI, SHUTDOWN_ON_SIG, "default"),
    enumeration("shutdown-on-sigterm", MULTI, SHUTDOWN_ON_SIG, "default"),
    // Integer configs
    int("databases", IMM, 1, INT_MAX, "16"),
    // Berth listens once, at startup: `port` and `bind` cannot change at runtime.
    int("port", IMM, 0, 65535, "6379"),
    int("io-threads", IMM, 1, 128, "1"),
    int("auto-aof-rewrite-percentage", 0, 0, INT_MAX, "100"),
    int("cluster-replica-validity-factor", 0, 0, INT_MAX, "10")
        .alias("cluster-slave-validity-factor"),
    int("list-max-listpack-size", 0, INT_MIN, INT_MAX, "-2").alias("list-max-ziplist-size"),
    int("tcp-keepalive", 0, 0, INT_MAX, "300"),
    int("cluster-migration-barrier", 0, 0, INT_MAX, "1"),
    int("active-defrag-cycle-min", 0, 1, 99, "1"),
    int("active-defrag-cycle-max", 0, 1, 99, "25"),
    int("active-defrag-threshold-lower", 0, 0, 1000, "10"),
    int("active-defrag-threshold-upper", 0, 0, 1000, "100"),
    int("lfu-log-factor", 0, 0, INT_MAX, "10"),
    int("lfu-decay-time", 0, 0, INT_MAX, "1"),
    int("replica-priority", 0, 0, INT_MAX, "100").alias("slave-priority"),
    int("repl-diskless-sync-delay", 0, 0, INT_MAX, "5"),
    int("maxmemory-samples", 0, 1, INT_MAX, "5"),
    int("maxmemory-eviction-tenacity", 0, 0, 100, "10"),
    int("timeout", 0, 0, INT_MAX, "0"),
    int("replica-announce-port", 0, 0, 65535, "0").alias("slave-announce-port"),
    int("tcp-backlog", IMM, 0, INT_MAX, "511"),
    int("cluster-port", IMM, 0, 65535, "0"),
    int("cluster-announce-bus-port", 0, 0, 65535, "0"),
    int("cluster-announce-port", 0, 0, 65535, "0"),
    int("cluster-announce-tls-port", 0, 0, 65535, "0"),
    int("repl-timeout", 0, 1, INT_MAX, "60"),
    int("repl-ping-replica-period", 0, 1, INT_MAX, "10").alias("repl-ping-slave-period"),
    int("list-compress-depth", 0, 0, INT_MAX, "0"),
    int("rdb-key-save-delay", HIDDEN, INT_MIN, INT_MAX, "0"),
    int("key-load-delay", HIDDEN, INT_MIN, INT_MAX, "0"),
    int("active-expire-effort", 0, 1, 10, "1"),
    int("hz", 0, 0, INT_MAX, "10"),
    int("min-replicas-to-write", 0, 0, INT_MAX, "0").alias("min-slaves-to-write"),
    int("min-replicas-max-lag", 0, 0, INT_MAX, "10").alias("min-slaves-max-lag"),
    int("watchdog-period", HIDDEN, 0, INT_MAX, "0"),
    int("shutdown-timeout", 0, 0, INT_MAX, "10"),
    int("repl-diskless-sync-max-replicas", 0, 0, INT_MAX, "0"),
    // Unsigned int configs
    uint("maxclients", 0, 1, UINT_MAX, "10000"),
    p(
        "unixsocketperm",
        IMM,
        Kind::Num {
            min: 0,
            max: 0o777,
            unsigned: true,
            fmt: OCT,
        },
        "0",
    ),
    uint("socket-mark-id", IMM, 0, UINT_MAX, "0"),
    // Unsigned long configs (bounds checked as signed, as Redis does)
    int("active-defrag-max-scan-fields", 0, 1, LONG_MAX, "1000"),
    int("slowlog-max-len", 0, 0, LONG_MAX, "128"),
    int("acllog-max-len", 0, 0, LONG_MAX, "128"),
    // Long long configs
    int("busy-reply-threshold", 0, 0, LONG_MAX, "5000").alias("lua-time-limit"),
    int("cluster-node-timeout", 0, 0, LONG_MAX, "15000"),
    int("slowlog-log-slower-than", 0, -1, LONG_MAX, "10000"),
    int("latency-monitor-threshold", 0, 0, LONG_MAX, "0"),
    mem("proto-max-bulk-len", false, MB, LONG_MAX, "536870912"),
    int("stream-node-max-entries", 0, 0, LONG_MAX, "100"),
    mem("repl-backlog-size", false, 1, LONG_MAX, "1048576"),
    // Unsigned long long configs
    mem("maxmemory", true, 0, ULLONG_MAX, "0"),
    mem("cluster-link-sendbuf-limit", true, 0, ULLONG_MAX, "0"),
    // Size_t configs
    uint("hash-max-listpack-entries", 0, 0, LONG_MAX, "512").alias("hash-max-ziplist-entries"),
    uint("set-max-intset-entries", 0, 0, LONG_MAX, "512"),
    uint("zset-max-listpack-entries", 0, 0, LONG_MAX, "128").alias("zset-max-ziplist-entries"),
    mem("active-defrag-ignore-bytes", true, 1, LONG_MAX, "104857600"),
    mem("hash-max-listpack-value", true, 0, LONG_MAX, "64").alias("hash-max-ziplist-value"),
    mem("stream-node-max-bytes", true, 0, LONG_MAX, "4096"),
    mem("zset-max-listpack-value", true, 0, LONG_MAX, "64").alias("zset-max-ziplist-value"),
    mem("hll-sparse-max-bytes", true, 0, LONG_MAX, "3000"),
    uint("tracking-table-max-keys", 0, 0, LONG_MAX, "1000000"),
    mem(
        "client-query-buffer-limit",
        true,
        MB,
        LONG_MAX,
        "1073741824",
    ),
    p(
        "maxmemory-clients",
        0,
        Kind::Num {
            min: -100,
            max: LONG_MAX,
            unsigned: false,
            fmt: MEM | PCT,
        },
        "0",
    ),
    // Other numeric configs
    int("repl-backlog-ttl", 0, 0, LONG_MAX, "3600"),
    mem("auto-aof-rewrite-min-size", false, 0, LONG_MAX, "67108864"),
    int(
        "loading-process-events-interval-bytes",
        HIDDEN,
        1024,
        INT_MAX,
        "2097152",
    ),
    // TLS configs (Berth has no TLS: accepted and reported only)
    int("tls-port", 0, 0, 65535, "0"),
    int("tls-session-cache-size", 0, 0, INT_MAX, "20480"),
    int("tls-session-cache-timeout", 0, 0, INT_MAX, "300"),
    boolean("tls-cluster", 0, "no"),
    boolean("tls-replication", 0, "no"),
    enumeration("tls-auth-clients", 0, TLS_AUTH_CLIENTS, "yes"),
    boolean("tls-prefer-server-ciphers", 0, "no"),
    boolean("tls-session-caching", 0, "yes"),
    string("tls-cert-file", 0, ""),
    string("tls-key-file", 0, ""),
    string("tls-key-file-pass", 0, ""),
    string("tls-client-cert-file", 0, ""),
    string("tls-client-key-file", 0, ""),
    string("tls-client-key-file-pass", 0, ""),
    string("tls-dh-params-file", 0, ""),
    string("tls-ca-cert-file", 0, ""),
    string("tls-ca-cert-dir", 0, ""),
    string("tls-protocols", 0, ""),
    string("tls-ciphers", 0, ""),
    string("tls-ciphersuites", 0, ""),
    // Special configs
    special("dir", PROTECTED | DENY_LOADING, Special::Dir, "./data"),
    special("save", MULTI, Special::Save, ""),
    special(
        "client-output-buffer-limit",
        MULTI,
        Special::OutputBufferLimit,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    special(
        "oom-score-adj-values",
        MULTI,
        Special::OomScoreAdjValues,
        "0 200 800",
    ),
    special("notify-keyspace-events", 0, Special::KeyspaceEvents, ""),
    special("bind", IMM | MULTI, Special::Bind, "127.0.0.1"),
    special("replicaof", IMM | MULTI, Special::ReplicaOf, "").alias("slaveof"),
    special(
        "latency-tracking-info-percentiles",
        MULTI,
        Special::Percentiles,
        "50 99 99.9",
    ),
    // Berth's own: how often the redo log's net effect goes into the store
    // (persist/checkpoint.rs), and which store holds the data.
    int("checkpoint-interval", 0, 1, 86400, "10"),
    mem("checkpoint-log-size", false, MB, LONG_MAX, "67108864"),
    enumeration("storage-engine", IMM, STORAGE_ENGINE, "fjall"),
];

/// The parameter a name (or alias, any case) stands for, with the name as registered
/// (lowercase; an alias is a registration of its own, as in Redis's dict).
pub fn lookup(name: &str) -> Option<(&'static str, &'static Param)> {
    PARAMS.iter().find_map(|p| {
        if p.name.eq_ignore_ascii_case(name) {
            Some((p.name, p))
        } else {
            p.alias
                .filter(|a| a.eq_ignore_ascii_case(name))
                .map(|a| (a, p))
        }
    })
}
