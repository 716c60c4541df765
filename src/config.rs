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

use crate::config_table::{self as table, Kind, Param, Special, MULTI_ARG};

/// String parameters whose empty value is a value of its own (Redis's ALLOW_EMPTY_STRING):
/// CONFIG REWRITE writes them as `""`. Other empty strings are unset and leave the file.
const EMPTY_ALLOWED: &[&str] = &[
    "aclfile",
    "cluster-config-file",
    "syslog-ident",
    "dbfilename",
    "appendfilename",
    "appenddirname",
    "ignore-warnings",
    "proc-title-template",
    "logfile",
];

#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<String, String>,
    pub file: Option<String>,
    /// `slowlog-log-slower-than`, parsed once: every command reads it.
    slowlog_slower_than: i64,
    /// `maxmemory` in bytes, parsed once: every growing command reads it.
    maxmemory: u64,
    /// `client-output-buffer-limit`, parsed once: every loop turn reads it.
    output_limits: OutputLimits,
}

impl Config {
    pub fn defaults() -> Config {
        Config {
            values: table::PARAMS
                .iter()
                .map(|p| (p.name.to_string(), p.default.to_string()))
                .collect(),
            file: None,
            slowlog_slower_than: 0,
            maxmemory: 0,
            output_limits: OutputLimits::default(),
        }
        .cached()
    }

    /// Refreshes the parsed copies of hot parameters.
    fn cached(mut self) -> Config {
        self.slowlog_slower_than = self.get_i64("slowlog-log-slower-than");
        self.maxmemory = self.get_i64("maxmemory").max(0) as u64;
        self.output_limits = OutputLimits::parse(self.get("client-output-buffer-limit"));
        self
    }

    /// `client-output-buffer-limit` (server/output_limits.rs enforces it).
    pub fn output_limits(&self) -> &OutputLimits {
        &self.output_limits
    }

    /// `maxmemory` in bytes (0: no limit).
    pub fn maxmemory(&self) -> u64 {
        self.maxmemory
    }

    /// `slowlog-log-slower-than` (microseconds; negative: off).
    pub fn slowlog_slower_than(&self) -> i64 {
        self.slowlog_slower_than
    }

    /// Builds the startup configuration: defaults, then the config file, then flags.
    pub fn from_args(args: &Args) -> Result<Config, String> {
        let mut c = Config::defaults();
        // `save` lines of the file and `--save` flags add up, as in Redis.
        let mut saves = SaveLines::default();
        if let Some(path) = &args.config_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("Can't open config file '{path}': {e}"))?;
            c.load_file(&text, path, &mut saves)?;
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
                c.set_directive(k, &[v], None)
                    .map_err(|e| format!("--{k}: {e}"))?;
            }
        }
        for (k, v) in &args.extra {
            c.set_directive(k, std::slice::from_ref(v), Some(&mut saves))
                .map_err(|e| format!("--{k}: {e}"))?;
        }
        Ok(c)
    }

    fn load_file(&mut self, text: &str, path: &str, saves: &mut SaveLines) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_matches([' ', '\t', '\r', '\n']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = crate::protocol::request::split_args(line.as_bytes())
                .ok_or_else(|| format!("{path}:{}: unbalanced quotes", n + 1))?;
            if words.is_empty() {
                continue;
            }
            let name = String::from_utf8_lossy(&words[0]).to_ascii_lowercase();
            let value: Vec<String> = words[1..]
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            // Directives Redis 7.0 still accepts and ignores.
            let deprecated = [
                "list-max-ziplist-entries",
                "list-max-ziplist-value",
                "lua-replicate-commands",
            ];
            if table::lookup(&name).is_none()
                && deprecated.contains(&name.as_str())
                && value.len() == 1
            {
                continue;
            }
            self.set_directive(&name, &value, Some(saves))
                .map_err(|e| format!("{path}:{}: '{}': {e}", n + 1, line))?;
        }
        Ok(())
    }

    /// One directive of the config file or the command line, as Redis's
    /// loadServerConfigFromString reads it: a single-word parameter takes exactly one
    /// argument; a multi-word one given as one argument is split as redis-cli splits words.
    fn set_directive(
        &mut self,
        name: &str,
        args: &[String],
        saves: Option<&mut SaveLines>,
    ) -> Result<(), String> {
        let Some((_, p)) = table::lookup(name) else {
            return Err("Bad directive or wrong number of arguments".into());
        };
        let multi = p.flags & MULTI_ARG != 0;
        if !multi && args.len() != 1 {
            return Err("wrong number of arguments".into());
        }
        let words: Vec<String> = if multi && args.len() == 1 && !args[0].is_empty() {
            crate::protocol::request::split_args(args[0].as_bytes())
                .ok_or("Unbalanced quotes in configuration line")?
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect()
        } else {
            args.to_vec()
        };
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        // The first `save` of a file replaces the default; later ones add to it.
        let previous = match (p.kind, saves) {
            (Kind::Special(Special::Save), Some(saves)) => {
                let first = !saves.seen;
                saves.seen = true;
                (!first).then(|| self.get(p.name).to_string())
            }
            _ => None,
        };
        self.set_words(p, &words, previous.as_deref())
    }

    fn set_words(
        &mut self,
        p: &Param,
        words: &[&str],
        previous: Option<&str>,
    ) -> Result<(), String> {
        let previous = match p.kind {
            Kind::Special(Special::OutputBufferLimit) => Some(self.get(p.name).to_string()),
            _ => previous.map(str::to_string),
        };
        let value = table::parse(p, words, previous.as_deref())?;
        self.values.insert(p.name.to_string(), value);
        if p.name == "slowlog-log-slower-than" {
            self.slowlog_slower_than = self.get_i64(p.name);
        }
        if p.name == "maxmemory" {
            self.maxmemory = self.get_i64(p.name).max(0) as u64;
        }
        if p.name == "client-output-buffer-limit" {
            self.output_limits = OutputLimits::parse(self.get(p.name));
        }
        Ok(())
    }

    /// The parameter a name or alias (any case) stands for.
    pub fn canonical(name: &str) -> Option<&'static str> {
        table::lookup(name).map(|(_, p)| p.name)
    }

    /// Every name CONFIG GET patterns are matched against (aliases included, hidden
    /// parameters not), with the parameter each stands for.
    pub fn names() -> impl Iterator<Item = (&'static str, &'static str)> {
        table::PARAMS
            .iter()
            .filter(|p| p.flags & table::HIDDEN == 0)
            .flat_map(|p| std::iter::once((p.name, p.name)).chain(p.alias.map(|a| (a, p.name))))
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

    /// Validates and stores a value as CONFIG SET gives it (a multi-word parameter's value is
    /// split on single spaces); the error text is what CONFIG SET reports after its prefix.
    pub fn set_checked(&mut self, name: &str, value: &str) -> Result<(), String> {
        let Some((_, p)) = table::lookup(name) else {
            return Err("Bad directive or wrong number of arguments".into());
        };
        let words: Vec<&str> = if p.flags & MULTI_ARG != 0 {
            value.split(' ').collect()
        } else {
            vec![value]
        };
        self.set_words(p, &words, None)
    }

    /// The file CONFIG REWRITE writes, as Redis's rewriteConfig does: the old file's lines are
    /// kept (trimmed) with their comments; each parameter's lines are replaced in place by its
    /// current value and any further lines for it are blanked; lines for parameters that
    /// differ from their default and had no line are appended after a
    /// `# Generated by CONFIG REWRITE` line (in name order).
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
        let mut params: Vec<&Param> = table::PARAMS.iter().collect();
        params.sort_by_key(|p| p.name);
        for p in params {
            let mut old_at = at.remove(p.name).unwrap_or_default().into_iter();
            for (line, force) in rewrite_lines(p, self.get(p.name)) {
                if let Some(i) = old_at.next() {
                    lines[i] = line;
                    continue;
                }
                if !force {
                    continue;
                }
                if !has_signature {
                    if lines.last().is_some_and(|l| !l.is_empty()) {
                        lines.push(String::new());
                    }
                    lines.push(SIGNATURE.to_string());
                    has_signature = true;
                }
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

/// Whether a `save` line was read yet while loading a file or the command line.
#[derive(Default)]
struct SaveLines {
    seen: bool,
}

/// The lines CONFIG REWRITE writes for a parameter, each with whether it must be written
/// (differs from the default) or only replaces a line already there, as Redis's
/// `rewriteConfig*Option` functions do.
fn rewrite_lines(p: &Param, value: &str) -> Vec<(String, bool)> {
    let name = p.name;
    let differs = value != p.default;
    match p.kind {
        Kind::Str(_) => {
            if value.is_empty() && !EMPTY_ALLOWED.contains(&name) {
                return vec![];
            }
            vec![(format!("{name} {}", repr(value)), differs)]
        }
        Kind::Num { fmt, .. } if fmt & table::MEM != 0 && !value.ends_with('%') => {
            let v: u64 = value.parse().unwrap_or(0);
            vec![(format!("{name} {}", memory_text(v)), differs)]
        }
        Kind::Special(Special::Dir) => vec![(format!("{name} {}", repr(value)), true)],
        Kind::Special(Special::Save) => {
            let parts: Vec<&str> = value.split_whitespace().collect();
            if parts.is_empty() {
                return vec![(format!("{name} \"\""), true)];
            }
            parts
                .chunks(2)
                .map(|p| (format!("{name} {}", p.join(" ")), true))
                .collect()
        }
        Kind::Special(Special::OutputBufferLimit) => {
            let now: Vec<&str> = value.split(' ').collect();
            let default: Vec<&str> = p.default.split(' ').collect();
            now.chunks(4)
                .zip(default.chunks(4))
                .map(|(c, d)| {
                    let class = if c[0] == "slave" { "replica" } else { c[0] };
                    let hard = memory_text(c[1].parse().unwrap_or(0));
                    let soft = memory_text(c[2].parse().unwrap_or(0));
                    let line = format!("{name} {class} {hard} {soft} {}", c[3]);
                    (line, c != d)
                })
                .collect()
        }
        Kind::Special(Special::KeyspaceEvents) => {
            vec![(format!("{name} {}", repr(value)), !value.is_empty())]
        }
        Kind::Special(Special::Bind) if !differs => vec![],
        Kind::Special(Special::Bind) if value.is_empty() => vec![(format!("{name} \"\""), true)],
        Kind::Special(Special::ReplicaOf) if value.is_empty() => vec![],
        Kind::Special(Special::ReplicaOf) => vec![(format!("{name} {value}"), true)],
        Kind::Special(Special::Percentiles) if value.is_empty() => {
            vec![(format!("{name} \"\""), true)]
        }
        Kind::Special(Special::Percentiles) => vec![(format!("{name} {value}"), true)],
        _ => vec![(format!("{name} {value}"), differs)],
    }
}

/// Redis's rewriteConfigFormatMemory: the largest unit that divides the count exactly.
fn memory_text(v: u64) -> String {
    [("gb", 1u64 << 30), ("mb", 1 << 20), ("kb", 1 << 10)]
        .iter()
        .find(|(_, m)| v != 0 && v.is_multiple_of(*m))
        .map(|(u, m)| format!("{}{u}", v / m))
        .unwrap_or_else(|| v.to_string())
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

/// One class's limits: bytes (0 = none) and seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: i64,
}

/// `client-output-buffer-limit`, parsed: the normal and pubsub classes' limits (Berth has no replicas; MONITOR clients count as
/// normal, as in Redis).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OutputLimits {
    pub normal: Limit,
    pub pubsub: Limit,
}

impl OutputLimits {
    /// Parses the parameter as CONFIG GET prints it: `class hard soft seconds` groups, sizes
    /// already in bytes (the config table validated and normalised them).
    pub fn parse(text: &str) -> OutputLimits {
        let mut limits = OutputLimits::default();
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        for group in words.chunks(4) {
            let [class, hard, soft, secs] = group else {
                continue;
            };
            let limit = Limit {
                hard: hard.parse().unwrap_or(0),
                soft: soft.parse().unwrap_or(0),
                soft_seconds: secs.parse().unwrap_or(0),
            };
            match *class {
                "normal" => limits.normal = limit,
                "pubsub" => limits.pubsub = limit,
                _ => {}
            }
        }
        limits
    }
}
