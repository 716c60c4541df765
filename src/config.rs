//! Configuration: command-line flags (each also a `BERTH_*` environment variable) and the runtime
//! parameter table behind CONFIG GET / SET / REWRITE.

use std::collections::BTreeMap;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "berth",
    version,
    about = "A durable, Redis-compatible server for background jobs"
)]
pub struct Args {
    /// Optional config file in redis.conf syntax (directives as `name value` lines).
    pub config_file: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "BERTH_BIND")]
    pub bind: Option<String>,
    /// TCP port.
    #[arg(long, env = "BERTH_PORT")]
    pub port: Option<u16>,
    /// Password clients must send with AUTH (or HELLO ... AUTH).
    #[arg(long, env = "BERTH_REQUIREPASS")]
    pub requirepass: Option<String>,
    /// Data directory.
    #[arg(long, env = "BERTH_DIR")]
    pub dir: Option<String>,
    /// Number of databases.
    #[arg(long, env = "BERTH_DATABASES")]
    pub databases: Option<usize>,
    /// always | everysec | no.
    #[arg(long, env = "BERTH_APPENDFSYNC")]
    pub appendfsync: Option<String>,
    /// Log level: debug | verbose | notice | warning.
    #[arg(long, env = "BERTH_LOGLEVEL")]
    pub loglevel: Option<String>,
    /// Milliseconds a script may run before other clients get BUSY.
    #[arg(long, env = "BERTH_BUSY_REPLY_THRESHOLD")]
    pub busy_reply_threshold: Option<u64>,
    /// Maximum number of connected clients.
    #[arg(long, env = "BERTH_MAXCLIENTS")]
    pub maxclients: Option<u64>,
    /// fjall | sled.
    #[arg(long, env = "BERTH_STORAGE_ENGINE")]
    pub storage_engine: Option<String>,
    /// yes | no: `no` keeps the data in memory only.
    #[arg(long, env = "BERTH_APPENDONLY")]
    pub appendonly: Option<String>,
    /// Close a client after it has been idle this many seconds (0: never).
    #[arg(long, env = "BERTH_TIMEOUT")]
    pub timeout: Option<i64>,
    /// Write the log to this file instead of stderr.
    #[arg(long, env = "BERTH_LOGFILE")]
    pub logfile: Option<String>,
    /// yes | no: with `yes` and no requirepass, only loopback clients are accepted.
    #[arg(long, env = "BERTH_PROTECTED_MODE")]
    pub protected_mode: Option<String>,
    /// Do not serve: PING the server this configuration describes and exit 0 if it answers
    /// (+PONG, or -NOAUTH when a password is set), 1 otherwise. For container health checks.
    #[arg(long)]
    pub healthcheck: bool,
    /// Do not serve: check the redo log in `<dir>/log` and report each segment; exit 1 if a
    /// segment is damaged in the middle (Berth then refuses to start). With `--fix`, cut such
    /// a segment at its first bad record, as `redis-check-aof --fix` does.
    #[arg(long)]
    pub check_log: bool,
    /// With --check-log: cut damaged segments.
    #[arg(long)]
    pub fix: bool,
    /// Any other directive given as `--name value ...` (as redis-server takes them), in order.
    #[arg(skip)]
    pub extra: Vec<(String, String)>,
}

impl Args {
    /// Parses the command line. Arguments for directives without a flag of their own
    /// (`--slowlog-max-len 64`, `--save 900 1 300 10`) are taken out first, as redis-server
    /// reads them: the name, then every word up to the next `--` argument.
    pub fn from_command_line(argv: Vec<String>) -> Args {
        use clap::{CommandFactory, Parser};
        let flags: Vec<String> = Args::command()
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .chain(["help".to_string(), "version".to_string()])
            .collect();
        let mut rest = Vec::new();
        let mut extra = Vec::new();
        let mut i = 0;
        while i < argv.len() {
            let arg = &argv[i];
            let name = arg.strip_prefix("--").map(|n| n.to_ascii_lowercase());
            match name {
                Some(n)
                    if i > 0
                        && !n.is_empty()
                        && !n.contains('=')
                        && !flags.contains(&n)
                        && Config::canonical(&n).is_some() =>
                {
                    let mut words = Vec::new();
                    i += 1;
                    while i < argv.len() && !argv[i].starts_with("--") {
                        words.push(argv[i].clone());
                        i += 1;
                    }
                    extra.push((n, words.join(" ")));
                }
                _ => {
                    rest.push(arg.clone());
                    i += 1;
                }
            }
        }
        let mut args = Args::parse_from(rest);
        args.extra = extra;
        args
    }
}

/// How a parameter's value is checked (the error texts are Redis 7.0's `CONFIG SET` ones).
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Enum(&'static [&'static str]),
    Int(i64, i64),
    /// Byte counts that accept units (`1gb`).
    Memory(i64, i64),
    Str,
    Save,
    KeyspaceEvents,
}

const LONG_MAX: i64 = i64::MAX;
const INT_MAX: i64 = i32::MAX as i64;

/// Parameters, their defaults (Redis 7.0's built-in defaults) and their kinds, as CONFIG GET
/// names them.
const PARAMS: &[(&str, &str, Kind)] = &[
    (
        "appendfsync",
        "always",
        Kind::Enum(&["everysec", "always", "no"]),
    ),
    ("appendonly", "yes", Kind::Bool),
    ("bind", "127.0.0.1", Kind::Str),
    ("busy-reply-threshold", "5000", Kind::Int(0, LONG_MAX)),
    // Berth's own: how often the redo log's net effect goes into the store (persist/checkpoint.rs).
    ("checkpoint-interval", "10", Kind::Int(1, 86400)),
    (
        "checkpoint-log-size",
        "67108864",
        Kind::Memory(1024 * 1024, LONG_MAX),
    ),
    ("daemonize", "no", Kind::Bool),
    ("databases", "16", Kind::Int(1, INT_MAX)),
    ("dbfilename", "dump.rdb", Kind::Str),
    ("dir", "./data", Kind::Str),
    ("hash-max-listpack-entries", "512", Kind::Int(0, LONG_MAX)),
    ("hash-max-listpack-value", "64", Kind::Int(0, LONG_MAX)),
    ("hz", "10", Kind::Int(0, INT_MAX)),
    (
        "list-max-listpack-size",
        "-2",
        Kind::Int(i32::MIN as i64, INT_MAX),
    ),
    ("logfile", "", Kind::Str),
    (
        "loglevel",
        "notice",
        Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
    ),
    ("maxclients", "10000", Kind::Int(1, u32::MAX as i64)),
    ("maxmemory", "0", Kind::Memory(0, LONG_MAX)),
    (
        "maxmemory-policy",
        "noeviction",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
    ),
    ("notify-keyspace-events", "", Kind::KeyspaceEvents),
    ("port", "6379", Kind::Int(0, 65535)),
    (
        "proto-max-bulk-len",
        "536870912",
        Kind::Memory(1024 * 1024, LONG_MAX),
    ),
    ("protected-mode", "yes", Kind::Bool),
    ("requirepass", "", Kind::Str),
    ("save", "", Kind::Save),
    ("set-max-intset-entries", "512", Kind::Int(0, LONG_MAX)),
    ("shutdown-timeout", "10", Kind::Int(0, INT_MAX)),
    ("slowlog-log-slower-than", "10000", Kind::Int(-1, LONG_MAX)),
    ("slowlog-max-len", "128", Kind::Int(0, LONG_MAX)),
    ("storage-engine", "fjall", Kind::Enum(&["fjall", "sled"])),
    ("stream-node-max-bytes", "4096", Kind::Memory(0, LONG_MAX)),
    ("stream-node-max-entries", "100", Kind::Int(0, LONG_MAX)),
    ("tcp-keepalive", "300", Kind::Int(0, INT_MAX)),
    ("timeout", "0", Kind::Int(0, INT_MAX)),
    ("zset-max-listpack-entries", "128", Kind::Int(0, LONG_MAX)),
    ("zset-max-listpack-value", "64", Kind::Int(0, LONG_MAX)),
];

/// Parameters fixed at startup.
const IMMUTABLE: &[&str] = &[
    "bind",
    "port",
    "databases",
    "daemonize",
    "dir",
    "logfile",
    "storage-engine",
];

/// Old names CONFIG accepts for a parameter.
const ALIASES: &[(&str, &str)] = &[
    ("lua-time-limit", "busy-reply-threshold"),
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
];

const EVENT_CLASSES: &str = "Ag$lshzxeKEtmdn";

/// Redis's keyspaceEventsStringToFlags + FlagsToString: validates and normalizes `KEA` style
/// event classes (`A` stands for `g$lshzxetd`).
fn normalize_events(value: &str) -> Option<String> {
    const ALL: &str = "g$lshzxetd";
    let mut set = std::collections::HashSet::new();
    for c in value.chars() {
        if !EVENT_CLASSES.contains(c) {
            return None;
        }
        if c == 'A' {
            set.extend(ALL.chars());
        } else {
            set.insert(c);
        }
    }
    let mut out = String::new();
    if ALL.chars().all(|c| set.contains(&c)) {
        out.push('A');
    } else {
        out.extend(ALL.chars().filter(|c| set.contains(c)));
    }
    // Redis 7.0 accepts `n` (new-key events) but does not print it back.
    out.extend("KEm".chars().filter(|c| set.contains(c)));
    Some(out)
}

#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<String, String>,
    pub file: Option<String>,
}

impl Config {
    pub fn defaults() -> Config {
        Config {
            values: PARAMS
                .iter()
                .map(|(k, v, _)| (k.to_string(), v.to_string()))
                .collect(),
            file: None,
        }
    }

    /// Builds the startup configuration: defaults, then the config file, then flags.
    pub fn from_args(args: &Args) -> Result<Config, String> {
        let mut c = Config::defaults();
        if let Some(path) = &args.config_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("Can't open config file '{path}': {e}"))?;
            c.load_file(&text, path)?;
            c.file = Some(path.clone());
        }
        let flags: [(&str, Option<String>); 14] = [
            ("bind", args.bind.clone()),
            ("port", args.port.map(|p| p.to_string())),
            ("requirepass", args.requirepass.clone()),
            ("dir", args.dir.clone()),
            ("databases", args.databases.map(|d| d.to_string())),
            ("appendfsync", args.appendfsync.clone()),
            ("loglevel", args.loglevel.clone()),
            (
                "busy-reply-threshold",
                args.busy_reply_threshold.map(|d| d.to_string()),
            ),
            ("maxclients", args.maxclients.map(|d| d.to_string())),
            ("storage-engine", args.storage_engine.clone()),
            ("appendonly", args.appendonly.clone()),
            ("timeout", args.timeout.map(|d| d.to_string())),
            ("logfile", args.logfile.clone()),
            ("protected-mode", args.protected_mode.clone()),
        ];
        for (k, v) in flags {
            if let Some(v) = v {
                c.set_checked(k, &v).map_err(|e| format!("--{k}: {e}"))?;
            }
        }
        for (k, v) in &args.extra {
            c.set_checked(k, v).map_err(|e| format!("--{k}: {e}"))?;
        }
        Ok(c)
    }

    fn load_file(&mut self, text: &str, path: &str) -> Result<(), String> {
        let mut saves: Vec<String> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = crate::protocol::request::split_args(line.as_bytes())
                .ok_or_else(|| format!("{path}:{}: unbalanced quotes", n + 1))?;
            let name = String::from_utf8_lossy(&words[0]).to_ascii_lowercase();
            let value: Vec<String> = words[1..]
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            let mut value = value.join(" ");
            if name == "save" {
                // Several `save` lines add up, as in redis.conf.
                if !value.is_empty() {
                    saves.push(value);
                }
                value = saves.join(" ");
            }
            self.set_checked(&name, &value)
                .map_err(|e| format!("{path}:{}: '{}': {e}", n + 1, line))?;
        }
        Ok(())
    }

    pub fn canonical(name: &str) -> Option<&'static str> {
        let name = ALIASES
            .iter()
            .find(|(a, _)| *a == name)
            .map(|(_, c)| *c)
            .unwrap_or(name);
        PARAMS
            .iter()
            .find(|(k, _, _)| *k == name)
            .map(|(k, _, _)| *k)
    }

    /// Every name CONFIG GET patterns are matched against (aliases included), with the
    /// parameter each stands for.
    pub fn names() -> impl Iterator<Item = (&'static str, &'static str)> {
        PARAMS
            .iter()
            .map(|(k, _, _)| (*k, *k))
            .chain(ALIASES.iter().map(|(a, c)| (*a, *c)))
    }

    /// Why a parameter cannot be changed at runtime, if it cannot.
    pub fn immutable_reason(name: &str) -> Option<&'static str> {
        match name {
            "dir" => Some("can't set protected config"),
            n if IMMUTABLE.contains(&n) => Some("can't set immutable config"),
            _ => None,
        }
    }

    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(|s| s.as_str()).unwrap_or("")
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.values.iter()
    }

    pub fn is_mutable(name: &str) -> bool {
        !IMMUTABLE.contains(&name)
    }

    /// Validates and stores a value; the error text is what CONFIG SET reports after its prefix.
    pub fn set_checked(&mut self, name: &str, value: &str) -> Result<(), String> {
        let canon = Config::canonical(name)
            .ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        let kind = PARAMS
            .iter()
            .find(|(k, _, _)| *k == canon)
            .map(|(_, _, kind)| *kind)
            .unwrap_or(Kind::Str);
        let range = |v: i64, min: i64, max: i64| {
            if v < min || v > max {
                Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ))
            } else {
                Ok(v.to_string())
            }
        };
        let stored = match kind {
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "yes" | "no" => value.to_ascii_lowercase(),
                _ => return Err("argument must be 'yes' or 'no'".into()),
            },
            Kind::Enum(options) => {
                let v = value.to_ascii_lowercase();
                if !options.contains(&v.as_str()) {
                    let shown: Vec<&str> = options
                        .iter()
                        .copied()
                        .filter(|o| *o != "nothing")
                        .collect();
                    return Err(format!(
                        "argument(s) must be one of the following: {}",
                        shown.join(", ")
                    ));
                }
                v
            }
            Kind::Int(min, max) => {
                let v = crate::protocol::request::parse_i64(value.as_bytes())
                    .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
                range(v, min, max)?
            }
            Kind::Memory(min, max) => {
                let v = parse_memory(value)
                    .filter(|v| *v <= i64::MAX as u64)
                    .ok_or_else(|| "argument must be a memory value".to_string())?;
                range(v as i64, min, max)?
            }
            Kind::Str => value.to_string(),
            Kind::Save => {
                let parts: Vec<&str> = if value.is_empty() {
                    vec![]
                } else {
                    value.split(' ').collect()
                };
                if !parts.len().is_multiple_of(2) || parts.iter().any(|p| p.parse::<u64>().is_err())
                {
                    return Err("Invalid save parameters".into());
                }
                parts.join(" ")
            }
            Kind::KeyspaceEvents => normalize_events(value)
                .ok_or_else(|| format!("Invalid event class character. Use '{EVENT_CLASSES}'."))?,
        };
        self.values.insert(canon.to_string(), stored);
        Ok(())
    }

    /// The file CONFIG REWRITE writes, as Redis's rewriteConfig does: the old file's lines are
    /// kept (trimmed) with their comments; each parameter's first line is replaced in place by
    /// its current value and any further lines for it are blanked; parameters that differ from
    /// their default and had no line are appended after a `# Generated by CONFIG REWRITE` line.
    pub fn rewrite_text(&self, old: &str) -> String {
        const SIGNATURE: &str = "# Generated by CONFIG REWRITE";
        let mut lines: Vec<String> = old.lines().map(|l| l.trim().to_string()).collect();
        let mut has_signature = false;
        // parameter -> indices of the old lines that set it
        let mut at: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        for (i, line) in lines.iter().enumerate() {
            if line == SIGNATURE {
                has_signature = true;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name = line.split_whitespace().next().unwrap_or("");
            if let Some(canon) = Config::canonical(&name.to_ascii_lowercase()) {
                at.entry(canon).or_default().push(i);
            }
        }
        for (k, default, kind) in PARAMS {
            let value = self.get(k);
            let new_lines = rewrite_lines(k, value, *kind);
            let mut old_at = at.remove(k).unwrap_or_default().into_iter();
            if old_at.len() == 0 && value == *default {
                continue;
            }
            let mut appended = false;
            for line in new_lines {
                if let Some(i) = old_at.next() {
                    lines[i] = line;
                    continue;
                }
                if !has_signature && !appended {
                    if lines.last().is_some_and(|l| !l.is_empty()) {
                        lines.push(String::new());
                    }
                    lines.push(SIGNATURE.to_string());
                    has_signature = true;
                }
                appended = true;
                lines.push(line);
            }
            for i in old_at {
                lines[i] = String::new();
            }
        }
        let mut out = lines.join("\n");
        out.push('\n');
        out
    }
}

/// The line(s) CONFIG REWRITE writes for a parameter: strings quoted as Redis's sdscatrepr
/// does, byte counts in the largest exact unit, one `save` line per pair.
fn rewrite_lines(name: &str, value: &str, kind: Kind) -> Vec<String> {
    match kind {
        Kind::Str | Kind::KeyspaceEvents if name != "bind" => {
            vec![format!("{name} {}", repr(value))]
        }
        Kind::Save => {
            let parts: Vec<&str> = value.split_whitespace().collect();
            if parts.is_empty() {
                return vec![format!("{name} \"\"")];
            }
            parts
                .chunks(2)
                .map(|p| format!("{name} {}", p.join(" ")))
                .collect()
        }
        Kind::Memory(..) => {
            let v: u64 = value.parse().unwrap_or(0);
            let shown = [("gb", 1u64 << 30), ("mb", 1 << 20), ("kb", 1 << 10)]
                .iter()
                .find(|(_, m)| v != 0 && v.is_multiple_of(*m))
                .map(|(u, m)| format!("{}{u}", v / m))
                .unwrap_or_else(|| v.to_string());
            vec![format!("{name} {shown}")]
        }
        _ => vec![format!("{name} {value}")],
    }
}

/// Redis's sdscatrepr, as MONITOR and CLIENT LIST use it.
fn repr(s: &str) -> String {
    crate::server::core::repr(s.as_bytes())
}

type LoglevelHook = Box<dyn Fn(&str) + Send + Sync>;
static LOGLEVEL_HOOK: std::sync::OnceLock<LoglevelHook> = std::sync::OnceLock::new();

/// Installed by the binary's logging setup: applies a new `loglevel` to the running logger.
pub fn set_loglevel_hook(hook: LoglevelHook) {
    let _ = LOGLEVEL_HOOK.set(hook);
}

/// Called after CONFIG SET loglevel.
pub fn apply_loglevel(level: &str) {
    if let Some(hook) = LOGLEVEL_HOOK.get() {
        hook(level);
    }
}

/// `1gb`, `512mb`, `100k`, plain bytes.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let units: [(&str, u64); 6] = [
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
    ];
    for (suffix, mult) in units {
        if let Some(n) = lower.strip_suffix(suffix) {
            return n.parse::<u64>().ok().map(|n| n * mult);
        }
    }
    lower.parse().ok()
}
