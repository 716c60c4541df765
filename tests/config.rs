//! The config file, its flags and the directives that act outside the keyspace (timeout,
//! logfile, protected-mode, requirepass, bind), CONFIG REWRITE and `--healthcheck`, against a
//! real `berth` process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "berth-config-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn berth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    // The tests' own environment must not configure the server.
    for (k, _) in std::env::vars() {
        if k.starts_with("BERTH_") {
            c.env_remove(k);
        }
    }
    c
}

/// Starts berth with these arguments and waits until `port` accepts connections.
fn start(args: &[&str], port: u16) -> Server {
    let child = berth()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start berth");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "berth did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child, port }
}

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn new(s: TcpStream) -> Conn {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Conn {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn to(port: u16) -> Conn {
        Conn::new(TcpStream::connect(("127.0.0.1", port)).unwrap())
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
        }
        self.w.write_all(out.as_bytes()).unwrap();
    }

    /// One reply, flattened to text: `+OK`, `-ERR ...`, `:1`, bulk contents, arrays as
    /// their elements joined by newlines.
    fn read(&mut self) -> String {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let line = line.trim_end().to_string();
        match line.as_bytes().first() {
            Some(b'$') => {
                let n: i64 = line[1..].parse().unwrap();
                if n < 0 {
                    return "(nil)".into();
                }
                let mut buf = vec![0; n as usize + 2];
                self.r.read_exact(&mut buf).unwrap();
                String::from_utf8_lossy(&buf[..n as usize]).into_owned()
            }
            Some(b'*') => {
                let n: i64 = line[1..].parse().unwrap();
                (0..n.max(0))
                    .map(|_| self.read())
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            _ => line,
        }
    }

    fn cmd(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.read()
    }

    /// True once the server has closed the connection (EOF within the read timeout).
    fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.r.read(&mut buf), Ok(0))
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn file_then_flags_then_config_get() {
    let tmp = TempDir::new("layers");
    let port = free_port();
    let conf = tmp.path("berth.conf");
    write(
        &conf,
        &format!(
            "# comment\nport {}\ndir {}\nappendfsync everysec\nmaxclients 50\n\
             busy-reply-threshold 700\ndatabases 4\nloglevel warning\nrequirepass \"pw one\"\n",
            free_port(),
            tmp.path("data").display()
        ),
    );
    // The flag overrides the file's port and maxclients.
    let s = start(
        &[
            conf.to_str().unwrap(),
            "--port",
            &port.to_string(),
            "--maxclients",
            "60",
        ],
        port,
    );
    let mut c = Conn::to(s.port);
    assert!(c.cmd(&["PING"]).starts_with("-NOAUTH"));
    assert_eq!(
        c.cmd(&["AUTH", "wrong"]).split(' ').next(),
        Some("-WRONGPASS")
    );
    assert_eq!(c.cmd(&["AUTH", "pw one"]), "+OK");
    let get = |c: &mut Conn, name: &str| c.cmd(&["CONFIG", "GET", name]);
    assert_eq!(get(&mut c, "port"), format!("port\n{port}"));
    assert_eq!(get(&mut c, "maxclients"), "maxclients\n60");
    assert_eq!(get(&mut c, "appendfsync"), "appendfsync\neverysec");
    assert_eq!(
        get(&mut c, "busy-reply-threshold"),
        "busy-reply-threshold\n700"
    );
    assert_eq!(get(&mut c, "databases"), "databases\n4");
    assert_eq!(get(&mut c, "loglevel"), "loglevel\nwarning");
    assert!(c
        .cmd(&["SELECT", "4"])
        .starts_with("-ERR DB index is out of range"));
    assert!(
        tmp.path("data").join("fjall").is_dir(),
        "data is in the file's dir"
    );
}

#[test]
fn bad_directive_reports_file_and_line() {
    let tmp = TempDir::new("bad");
    let conf = tmp.path("berth.conf");
    write(&conf, "port 7000\n\n# ok so far\nno-such-directive 1\n");
    let out: Output = berth().arg(&conf).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:4:", conf.display())) && err.contains("Bad directive"),
        "{err}"
    );
    write(&conf, "port 7000\nappendfsync sometimes\n");
    let out = berth().arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(":2:") && err.contains("must be one of"),
        "{err}"
    );
}

#[test]
fn rewrite_keeps_comments_and_places_values() {
    let tmp = TempDir::new("rewrite");
    let port = free_port();
    let conf = tmp.path("berth.conf");
    write(
        &conf,
        &format!(
            "# top comment\nport {port}\n   # indented comment\n\ndir {}\ntimeout 5\n\
             maxclients 100\nmaxclients 200\nlua-time-limit 900\n",
            tmp.path("data").display()
        ),
    );
    let s = start(&[conf.to_str().unwrap()], port);
    let mut c = Conn::to(s.port);
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxclients"]), "maxclients\n200");
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "timeout",
            "0",
            "slowlog-max-len",
            "7",
            "maxmemory",
            "2097152",
            "notify-keyspace-events",
            "Ex",
            "busy-reply-threshold",
            "800"
        ]),
        "+OK"
    );
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), "+OK");
    let text = std::fs::read_to_string(&conf).unwrap();
    let expected = format!(
        "# top comment\nport {port}\n# indented comment\n\ndir \"{}\"\ntimeout 0\n\
         maxclients 200\n\nbusy-reply-threshold 800\n\n# Generated by CONFIG REWRITE\n\
         latency-tracking-info-percentiles 50 99 99.9\nmaxmemory 2mb\n\
         notify-keyspace-events \"xE\"\nsave \"\"\nslowlog-max-len 7\n",
        tmp.path("data").display()
    );
    assert_eq!(text, expected);
    // A second rewrite changes values in place and does not repeat the signature.
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-max-len", "128"]), "+OK");
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), "+OK");
    let again = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(
        again,
        expected.replace("slowlog-max-len 7", "slowlog-max-len 128")
    );
    drop(s);
    // The rewritten file starts a server with the same values.
    let s = start(&[conf.to_str().unwrap()], port);
    let mut c = Conn::to(s.port);
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "maxmemory\n2097152");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
        "notify-keyspace-events\nxE"
    );
    // Without a config file there is nothing to rewrite.
    let port2 = free_port();
    let data2 = tmp.path("data2");
    let s2 = start(
        &[
            "--port",
            &port2.to_string(),
            "--dir",
            data2.to_str().unwrap(),
        ],
        port2,
    );
    assert_eq!(
        Conn::to(s2.port).cmd(&["CONFIG", "REWRITE"]),
        "-ERR The server is running without a config file"
    );
}

#[test]
fn timeout_closes_idle_clients_only() {
    let tmp = TempDir::new("timeout");
    let port = free_port();
    let data = tmp.path("data");
    let s = start(
        &[
            "--port",
            &port.to_string(),
            "--dir",
            data.to_str().unwrap(),
            "--timeout",
            "1",
        ],
        port,
    );
    let mut idle = Conn::to(s.port);
    assert_eq!(idle.cmd(&["PING"]), "+PONG");
    let mut subscriber = Conn::to(s.port);
    subscriber.send(&["SUBSCRIBE", "ch"]);
    assert_eq!(subscriber.read(), "subscribe\nch\n:1");
    let mut blocked = Conn::to(s.port);
    blocked.send(&["BLPOP", "q", "0"]);
    let mut busy = Conn::to(s.port);
    let start_at = Instant::now();
    while start_at.elapsed() < Duration::from_millis(2600) {
        assert_eq!(busy.cmd(&["PING"]), "+PONG");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(idle.closed_by_server(), "the idle client is closed");
    assert_eq!(busy.cmd(&["RPUSH", "q", "job"]), ":1");
    assert_eq!(blocked.read(), "q\njob", "the blocked client was kept");
    assert_eq!(busy.cmd(&["PUBLISH", "ch", "hi"]), ":1");
    assert_eq!(subscriber.read(), "message\nch\nhi");
    assert_eq!(busy.cmd(&["CONFIG", "SET", "timeout", "0"]), "+OK");
    let mut later = Conn::to(s.port);
    assert_eq!(later.cmd(&["PING"]), "+PONG");
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(later.cmd(&["PING"]), "+PONG");
}

#[test]
fn logfile_receives_the_log() {
    let tmp = TempDir::new("logfile");
    let port = free_port();
    let log = tmp.path("berth.log");
    let conf = tmp.path("berth.conf");
    write(
        &conf,
        &format!(
            "port {port}\ndir {}\nlogfile {}\nloglevel notice\n",
            tmp.path("data").display(),
            log.display()
        ),
    );
    let s = start(&[conf.to_str().unwrap()], port);
    let mut c = Conn::to(s.port);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "logfile"]),
        format!("logfile\n{}", log.display())
    );
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), "+OK");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("ready to accept connections"), "{text}");
    assert!(
        text.contains("CONFIG REWRITE executed with success"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour codes in a file");
    let out = berth()
        .args([
            "--port",
            &free_port().to_string(),
            "--logfile",
            "/nonexistent-dir/x.log",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Can't open the log file"));
}

/// An address of this machine that is not loopback (the one a packet to a public address
/// would leave from), if there is one.
fn outside_address() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn protected_mode_refuses_outside_clients_without_password() {
    let Some(ip) = outside_address() else {
        eprintln!("no non-loopback address: skipped");
        return;
    };
    let tmp = TempDir::new("protected");
    let port = free_port();
    let data = tmp.path("data");
    let s = start(
        &[
            "--port",
            &port.to_string(),
            "--dir",
            data.to_str().unwrap(),
            "--bind",
            "0.0.0.0",
        ],
        port,
    );
    let mut local = Conn::to(s.port);
    assert_eq!(
        local.cmd(&["CONFIG", "GET", "protected-mode"]),
        "protected-mode\nyes"
    );
    let mut outside = Conn::new(TcpStream::connect((ip, port)).unwrap());
    let mut line = String::new();
    outside.r.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("-DENIED Redis is running in protected mode"),
        "{line}"
    );
    assert!(outside.closed_by_server());
    // A password lifts it (the client must then AUTH) ...
    assert_eq!(local.cmd(&["CONFIG", "SET", "requirepass", "pw"]), "+OK");
    let mut outside = Conn::new(TcpStream::connect((ip, port)).unwrap());
    assert!(outside.cmd(&["PING"]).starts_with("-NOAUTH"));
    assert_eq!(outside.cmd(&["AUTH", "pw"]), "+OK");
    assert_eq!(outside.cmd(&["PING"]), "+PONG");
    // ... and so does protected-mode no.
    assert_eq!(local.cmd(&["AUTH", "pw"]), "+OK");
    assert_eq!(
        local.cmd(&["CONFIG", "SET", "requirepass", "", "protected-mode", "no"]),
        "+OK"
    );
    let mut outside = Conn::new(TcpStream::connect((ip, port)).unwrap());
    assert_eq!(outside.cmd(&["PING"]), "+PONG");
}

#[test]
fn binds_several_addresses_and_healthcheck() {
    let tmp = TempDir::new("bind");
    let port = free_port();
    let conf = tmp.path("berth.conf");
    write(
        &conf,
        &format!(
            "bind 127.0.0.1 -::1\nport {port}\ndir {}\n",
            tmp.path("data").display()
        ),
    );
    let health = || {
        let out = berth()
            .args([conf.to_str().unwrap(), "--healthcheck"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(health().0, Some(1), "nothing is listening yet");
    let s = start(&[conf.to_str().unwrap()], port);
    let mut c = Conn::to(s.port);
    assert_eq!(c.cmd(&["CONFIG", "GET", "bind"]), "bind\n127.0.0.1 -::1");
    if let Ok(v6) = TcpStream::connect(("::1", port)) {
        assert_eq!(Conn::new(v6).cmd(&["PING"]), "+PONG");
    }
    assert_eq!(health(), (Some(0), "+PONG\n".to_string()));
    // With a password the server still counts as up.
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "pw"]), "+OK");
    let (code, out) = health();
    assert_eq!(code, Some(0));
    assert!(out.starts_with("-NOAUTH"), "{out}");
    drop(s);
    assert_eq!(health().0, Some(1), "the server is gone");
}

#[test]
fn any_directive_as_a_flag_like_redis_server() {
    let tmp = TempDir::new("generic");
    let port = free_port();
    let conf = tmp.path("berth.conf");
    write(&conf, "slowlog-max-len 5\nsave 60 1\n");
    let s = start(
        &[
            conf.to_str().unwrap(),
            "--port",
            &port.to_string(),
            "--dir",
            tmp.path("data").to_str().unwrap(),
            "--slowlog-max-len",
            "9",
            "--save",
            "900",
            "1",
            "300",
            "10",
            "--notify-keyspace-events",
            "KEA",
        ],
        port,
    );
    let mut c = Conn::to(s.port);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "slowlog-max-len"]),
        "slowlog-max-len\n9"
    );
    // `save` lines of the file and `--save` flags add up, as in Redis.
    assert_eq!(c.cmd(&["CONFIG", "GET", "save"]), "save\n60 1 900 1 300 10");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
        "notify-keyspace-events\nAKE"
    );
    let out = berth().args(["--hz", "abc"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--hz: argument couldn't be parsed"));
    let out = berth().args(["--no-such-directive", "1"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn every_redis_directive_in_the_file() {
    let tmp = TempDir::new("all");
    let port = free_port();
    let conf = tmp.path("berth.conf");
    write(
        &conf,
        "list-compress-depth 2\nclient-output-buffer-limit pubsub 1mb 2mb 10\n\
         client-output-buffer-limit replica 1gb 0 0\nshutdown-on-sigint save now\n\
         hash-max-ziplist-value 1kb\nslave-priority 7\nmaxmemory-clients 10%\n\
         oom-score-adj-values \"0 100 200\"\nsave 60 1\nsave \"\"\nsave 30 2\n\
         list-max-ziplist-entries 512\nhz 1000\nactivedefrag no\nrdbchecksum no\n\
         latency-tracking-info-percentiles 50 99.990\ntls-ciphers HIGH\n",
    );
    let s = start(
        &[
            conf.to_str().unwrap(),
            "--port",
            &port.to_string(),
            "--dir",
            tmp.path("data").to_str().unwrap(),
        ],
        port,
    );
    let mut c = Conn::to(s.port);
    for (name, value) in [
        ("list-compress-depth", "2"),
        (
            "client-output-buffer-limit",
            "normal 0 0 0 slave 1073741824 0 0 pubsub 1048576 2097152 10",
        ),
        ("shutdown-on-sigint", "save now"),
        ("hash-max-listpack-value", "1024"),
        ("replica-priority", "7"),
        ("maxmemory-clients", "10%"),
        ("oom-score-adj-values", "0 100 200"),
        ("save", "30 2"),
        ("hz", "500"),
        ("rdbchecksum", "no"),
        ("latency-tracking-info-percentiles", "50 99.99"),
        ("tls-ciphers", "HIGH"),
    ] {
        assert_eq!(
            c.cmd(&["CONFIG", "GET", name]),
            format!("{name}\n{value}"),
            "{name}"
        );
    }
    drop(s);
    // Redis's checks and texts apply to the file too.
    for (line, why) in [
        (
            "list-compress-depth x",
            "argument couldn't be parsed into an integer",
        ),
        ("list-compress-depth 1 2", "wrong number of arguments"),
        ("shutdown-on-sigint save nosave", "SAVE and NOSAVE"),
        (
            "dbfilename a/b",
            "dbfilename can't be a path, just a filename",
        ),
        ("replicaof host", "wrong number of arguments"),
    ] {
        write(&conf, &format!("{line}\n"));
        let out = berth().arg(&conf).output().unwrap();
        assert!(!out.status.success(), "{line}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(":1:") && err.contains(why), "{line}: {err}");
    }
}
