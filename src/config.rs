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
}

/// Parameters and their defaults, as CONFIG GET names them.
const PARAMS: &[(&str, &str)] = &[
    ("appendfsync", "always"),
    ("appendonly", "yes"),
    ("bind", "127.0.0.1"),
    ("busy-reply-threshold", "5000"),
    ("daemonize", "no"),
    ("databases", "16"),
    ("dbfilename", "dump.rdb"),
    ("dir", "./data"),
    ("hash-max-listpack-entries", "128"),
    ("hash-max-listpack-value", "64"),
    ("hz", "10"),
    ("list-max-listpack-size", "-2"),
    ("logfile", ""),
    ("loglevel", "notice"),
    ("maxclients", "10000"),
    ("maxmemory", "0"),
    ("maxmemory-policy", "noeviction"),
    ("notify-keyspace-events", ""),
    ("port", "6379"),
    ("proto-max-bulk-len", "536870912"),
    ("protected-mode", "no"),
    ("requirepass", ""),
    ("save", ""),
    ("set-max-intset-entries", "512"),
    ("slowlog-log-slower-than", "10000"),
    ("slowlog-max-len", "128"),
    ("storage-engine", "fjall"),
    ("tcp-keepalive", "300"),
    ("timeout", "0"),
    ("zset-max-listpack-entries", "128"),
    ("zset-max-listpack-value", "64"),
];

/// Parameters fixed at startup.
const IMMUTABLE: &[&str] = &[
    "bind",
    "port",
    "databases",
    "daemonize",
    "dir",
    "storage-engine",
];

/// Old names CONFIG accepts for a parameter.
const ALIASES: &[(&str, &str)] = &[("lua-time-limit", "busy-reply-threshold")];

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
                .map(|(k, v)| (k.to_string(), v.to_string()))
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
        let flags: [(&str, Option<String>); 9] = [
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
        ];
        for (k, v) in flags {
            if let Some(v) = v {
                c.set_checked(k, &v).map_err(|e| format!("--{k}: {e}"))?;
            }
        }
        Ok(c)
    }

    fn load_file(&mut self, text: &str, path: &str) -> Result<(), String> {
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
            self.set_checked(&name, &value.join(" "))
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
        PARAMS.iter().find(|(k, _)| *k == name).map(|(k, _)| *k)
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
        let ok = match canon {
            "appendfsync" => matches!(value, "always" | "everysec" | "no"),
            "appendonly" | "daemonize" | "protected-mode" => matches!(value, "yes" | "no"),
            "maxmemory-policy" => matches!(
                value,
                "noeviction"
                    | "allkeys-lru"
                    | "volatile-lru"
                    | "allkeys-lfu"
                    | "volatile-lfu"
                    | "allkeys-random"
                    | "volatile-random"
                    | "volatile-ttl"
            ),
            "loglevel" => matches!(
                value,
                "debug" | "verbose" | "notice" | "warning" | "nothing"
            ),
            "port" => value.parse::<u16>().is_ok(),
            "databases" => value
                .parse::<usize>()
                .is_ok_and(|d| (1..=1_000_000).contains(&d)),
            "maxmemory" | "proto-max-bulk-len" => parse_memory(value).is_some(),
            "storage-engine" => matches!(value, "fjall" | "sled"),
            "bind"
            | "dir"
            | "logfile"
            | "requirepass"
            | "dbfilename"
            | "notify-keyspace-events"
            | "save" => true,
            _ => value.parse::<i64>().is_ok(),
        };
        if !ok {
            return Err(format!(
                "argument couldn't be parsed into an integer or is not valid: '{value}'"
            ));
        }
        let stored = match canon {
            "maxmemory" | "proto-max-bulk-len" => parse_memory(value).expect("checked").to_string(),
            _ => value.to_string(),
        };
        self.values.insert(canon.to_string(), stored);
        Ok(())
    }

    /// The file CONFIG REWRITE writes: every parameter that differs from its default.
    pub fn rewrite_text(&self) -> String {
        let mut out = String::from("# Written by Berth CONFIG REWRITE\n");
        for (k, default) in PARAMS {
            let v = self.get(k);
            if v != *default {
                out.push_str(&format!(
                    "{k} \"{}\"\n",
                    v.replace('\\', "\\\\").replace('"', "\\\"")
                ));
            }
        }
        out
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
