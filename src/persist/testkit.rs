//! A small blocking RESP2 client and a full keyspace dump, for the persistence tests and the
//! crash tool (`src/bin/berth-crash.rs`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Str(String),
    Err(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Arr(Option<Vec<V>>),
}

impl V {
    pub fn int(&self) -> i64 {
        match self {
            V::Int(i) => *i,
            V::Bulk(Some(b)) => String::from_utf8_lossy(b).parse().unwrap_or(i64::MIN),
            _ => i64::MIN,
        }
    }
    pub fn text(&self) -> String {
        match self {
            V::Str(s) | V::Err(s) => s.clone(),
            V::Int(i) => i.to_string(),
            V::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            V::Bulk(None) | V::Arr(None) => "(nil)".into(),
            V::Arr(Some(a)) => a.iter().map(|v| v.text()).collect::<Vec<_>>().join(","),
        }
    }
    pub fn items(&self) -> Vec<String> {
        match self {
            V::Arr(Some(a)) => a.iter().map(|v| v.text()).collect(),
            _ => Vec::new(),
        }
    }
}

pub struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    pub fn connect(port: u16) -> io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    pub fn send(&mut self, args: &[&str]) -> io::Result<()> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_bin(&args)
    }

    /// Sends a command whose arguments are bytes (DUMP payloads).
    pub fn send_bin(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out)
    }

    pub fn cmd_bin(&mut self, args: &[&[u8]]) -> io::Result<V> {
        self.send_bin(args)?;
        self.read()
    }

    pub fn cmd(&mut self, args: &[&str]) -> io::Result<V> {
        self.send(args)?;
        self.read()
    }

    pub fn read(&mut self) -> io::Result<V> {
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        let line = line.trim_end_matches("\r\n");
        let (t, rest) = line.split_at(1);
        Ok(match t {
            "+" => V::Str(rest.into()),
            "-" => V::Err(rest.into()),
            ":" => V::Int(rest.parse().unwrap_or(0)),
            "$" => {
                let n: i64 = rest.parse().unwrap_or(-1);
                if n < 0 {
                    V::Bulk(None)
                } else {
                    let mut b = vec![0; n as usize + 2];
                    self.r.read_exact(&mut b)?;
                    b.truncate(n as usize);
                    V::Bulk(Some(b))
                }
            }
            "*" => {
                let n: i64 = rest.parse().unwrap_or(-1);
                if n < 0 {
                    V::Arr(None)
                } else {
                    let mut a = Vec::new();
                    for _ in 0..n {
                        a.push(self.read()?);
                    }
                    V::Arr(Some(a))
                }
            }
            _ => return Err(io::Error::other(format!("bad reply line {line:?}"))),
        })
    }
}

/// Every key of every database with its type, value and absolute expiry, one line per key,
/// sorted (sets sorted; lists and hashes in their order).
pub fn dump(c: &mut Conn, dbs: usize) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for db in 0..dbs {
        c.cmd(&["SELECT", &db.to_string()])?;
        let mut cursor = "0".to_string();
        let mut keys = Vec::new();
        loop {
            let r = c.cmd(&["SCAN", &cursor, "COUNT", "1000"])?;
            let V::Arr(Some(parts)) = r else {
                return Err(io::Error::other("bad SCAN reply"));
            };
            cursor = parts[0].text();
            keys.extend(parts[1].items());
            if cursor == "0" {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        for k in keys {
            let t = c.cmd(&["TYPE", &k])?.text();
            let v = match t.as_str() {
                "string" => c.cmd(&["GET", &k])?.text(),
                "list" => c.cmd(&["LRANGE", &k, "0", "-1"])?.text(),
                "hash" => c.cmd(&["HGETALL", &k])?.text(),
                "set" => {
                    let mut m = c.cmd(&["SMEMBERS", &k])?.items();
                    m.sort();
                    m.join(",")
                }
                "zset" => c.cmd(&["ZRANGE", &k, "0", "-1", "WITHSCORES"])?.text(),
                other => format!("<{other}>"),
            };
            let exp = c.cmd(&["PEXPIRETIME", &k])?.text();
            out.push(format!("{db} {k} {t} exp={exp} {v}"));
        }
    }
    c.cmd(&["SELECT", "0"])?;
    Ok(out)
}

/// A fresh data directory, `<tmp>/berth-<suite>-<name>-<pid>`, removed when dropped.
pub struct DataDir(pub String);

impl DataDir {
    pub fn new(suite: &str, name: &str) -> DataDir {
        let d = std::env::temp_dir().join(format!("berth-{suite}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        DataDir(d.to_string_lossy().into_owned())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A berth process on a free port over a given data directory.
pub struct Berth {
    pub child: Child,
    pub port: u16,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

impl Berth {
    /// Starts berth and waits until it has loaded its data (PING answers PONG, not LOADING).
    pub fn start(bin: &str, dir: &str, extra: &[&str]) -> io::Result<Berth> {
        Berth::spawn(bin, dir, extra, true)
    }

    /// Starts berth and returns as soon as it answers, possibly still loading.
    pub fn start_loading(bin: &str, dir: &str, extra: &[&str]) -> io::Result<Berth> {
        Berth::spawn(bin, dir, extra, false)
    }

    fn spawn(bin: &str, dir: &str, extra: &[&str], loaded: bool) -> io::Result<Berth> {
        let port = free_port();
        let mut args = vec![
            "--port".to_string(),
            port.to_string(),
            "--dir".into(),
            dir.into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut b = Berth { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = b.child.try_wait() {
                return Err(io::Error::other(format!("berth exited at startup: {st}")));
            }
            if let Ok(mut c) = Conn::connect(port) {
                match c.cmd(&["PING"]) {
                    Ok(V::Err(e)) if loaded && e.starts_with("LOADING") => {}
                    Ok(_) => break,
                    Err(_) => {}
                }
            }
            if Instant::now() > deadline {
                let _ = b.child.kill();
                return Err(io::Error::other("berth did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        b.port = port;
        Ok(b)
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SHUTDOWN and wait for the process to exit.
    pub fn shutdown(&mut self) {
        if let Ok(mut c) = Conn::connect(self.port) {
            let _ = c.cmd(&["SHUTDOWN"]);
        }
        let _ = self.child.wait();
    }
}

/// A real `redis-server` (the reference) on a free port, without persistence; killed when
/// dropped.
pub struct Redis {
    pub child: Child,
    pub port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` from PATH; None if it is not there or does not answer.
pub fn start_redis() -> Option<Redis> {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let r = Redis { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut c) = Conn::connect(port) {
            if c.cmd(&["PING"]).is_ok_and(|v| v == V::Str("PONG".into())) {
                return Some(r);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
