//! The Lua debugger against real processes: a `SCRIPT DEBUG YES` session leaves no trace (not
//! in memory, not for a WATCHing client, not on disk after a SIGKILL and a restart), a SYNC
//! session keeps its changes, and `redis-cli --ldb-sync-mode` drives Berth as it drives a real
//! redis-server (the same output for the same commands on stdin).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth::persist::testkit::{dump, start_redis, Berth, Conn, DataDir, V};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn ok(c: &mut Conn, args: &[&str]) -> V {
    let r = c.cmd(args).expect("reply");
    assert!(!matches!(r, V::Err(_)), "{args:?} -> {r:?}");
    r
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// A debugging session over a raw socket: SCRIPT DEBUG `mode`, the EVAL, then each debugger
/// command after the previous stop's logs; returns everything the server sent after the EVAL,
/// up to its closing the connection.
fn session(port: u16, mode: &str, eval: &[&str], cmds: &[&str]) -> String {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    w.write_all(&encode(&["SCRIPT", "DEBUG", mode])).unwrap();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    let mut out = String::new();
    w.write_all(&encode(eval)).unwrap();
    for cmd in cmds {
        // One stop's logs: "*N" then N status lines.
        line.clear();
        r.read_line(&mut line).unwrap();
        out.push_str(&line);
        let n: usize = line.trim_end()[1..].parse().expect("log count");
        for _ in 0..n {
            line.clear();
            r.read_line(&mut line).unwrap();
            out.push_str(&line);
        }
        let args: Vec<&str> = cmd.split(' ').collect();
        w.write_all(&encode(&args)).unwrap();
    }
    let mut rest = String::new();
    r.read_to_string(&mut rest).expect("read to the close");
    out + &rest
}

const YES_SCRIPT: &str = "\
redis.call('set', 's', 'changed')
redis.call('incr', 'n')
redis.call('rpush', 'l', 'x')
redis.call('lpop', 'l')
redis.call('hset', 'h', 'f', 'changed', 'g', 'new')
redis.call('sadd', 'set', 'z')
redis.call('srem', 'set', 'a')
redis.call('zadd', 'z', 5, 'm')
redis.call('xadd', 'st', '*', 'f', 'v')
redis.call('persist', 'ttl')
redis.call('expire', 's', 100)
redis.call('rename', 'n', 'n2')
redis.call('set', 'fresh', '1')
redis.call('move', 's', 1)
redis.call('swapdb', 0, 1)
redis.call('flushdb')
redis.call('select', 1)
redis.call('del', 'h')
redis.call('set', 'after-flush', '1')
return redis.call('dbsize')";

fn populate(c: &mut Conn) {
    ok(c, &["SET", "s", "before"]);
    ok(c, &["SET", "n", "10"]);
    ok(c, &["RPUSH", "l", "a", "b", "c"]);
    ok(c, &["HSET", "h", "f", "v"]);
    ok(c, &["SADD", "set", "a", "b"]);
    ok(c, &["ZADD", "z", "1", "a"]);
    ok(c, &["XADD", "st", "1-1", "f", "v"]);
    ok(c, &["SET", "ttl", "v", "EX", "1000"]);
    ok(c, &["SELECT", "1"]);
    ok(c, &["SET", "one", "1"]);
    ok(c, &["SELECT", "0"]);
}

#[test]
fn yes_session_leaves_no_trace() {
    let dir = DataDir::new("ldb", "yes");
    let mut b = Berth::start(BIN, &dir.0, &[]).expect("start");
    let mut c = Conn::connect(b.port).unwrap();
    populate(&mut c);
    let before = dump(&mut c, 16).unwrap();
    let mut watcher = Conn::connect(b.port).unwrap();
    ok(&mut watcher, &["WATCH", "s", "l", "one"]);

    let out = session(b.port, "yes", &["EVAL", YES_SCRIPT, "0"], &["s", "s", "c"]);
    assert!(out.contains("+<redis> set s changed\r\n"), "{out}");
    assert!(out.contains("+<endsession>\r\n:"), "{out}");

    assert_eq!(dump(&mut c, 16).unwrap(), before);
    ok(&mut watcher, &["MULTI"]);
    ok(&mut watcher, &["GET", "s"]);
    let exec = watcher.cmd(&["EXEC"]).unwrap();
    assert_eq!(exec, V::Arr(Some(vec![V::Bulk(Some(b"before".to_vec()))])));
    let sha = berth::scripting::sha1hex(YES_SCRIPT.as_bytes());
    let exists = ok(&mut c, &["SCRIPT", "EXISTS", &sha]);
    assert_eq!(exists, V::Arr(Some(vec![V::Int(0)])));

    // Later writes persist normally, and nothing of the session reaches the disk.
    ok(&mut c, &["SET", "later", "1"]);
    let mut expected = before.clone();
    expected.extend(
        dump(&mut c, 16)
            .unwrap()
            .into_iter()
            .filter(|l| l.contains("later")),
    );
    expected.sort();
    b.kill9();
    let b = Berth::start(BIN, &dir.0, &[]).expect("restart");
    let mut c = Conn::connect(b.port).unwrap();
    let mut after = dump(&mut c, 16).unwrap();
    after.sort();
    assert_eq!(after, expected);
}

#[test]
fn sync_session_keeps_changes() {
    let dir = DataDir::new("ldb", "sync");
    let b = Berth::start(BIN, &dir.0, &[]).expect("start");
    let mut c = Conn::connect(b.port).unwrap();
    populate(&mut c);
    let script = "redis.call('incr', 'n')\nreturn redis.call('get', 'n')";
    let out = session(b.port, "sync", &["EVAL", script, "0"], &["s", "c"]);
    assert!(out.ends_with("+<endsession>\r\n$2\r\n11\r\n"), "{out}");
    assert_eq!(ok(&mut c, &["GET", "n"]), V::Bulk(Some(b"11".to_vec())));
    // The server serves other clients again.
    assert_eq!(ok(&mut c, &["PING"]), V::Str("PONG".into()));
}

/// `redis-cli --ldb-sync-mode --eval` with debugger commands piped on stdin.
fn redis_cli(port: u16, script: &str, stdin: &str) -> Option<String> {
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--ldb-sync-mode", "--eval", script])
        .args(["key1", ",", "arg1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn redis_cli_ldb_sync_mode() {
    let script = std::env::temp_dir().join(format!("berth-ldb-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        "local t = {1, 'two', {x = 3}}\n\
         redis.call('set', KEYS[1], ARGV[1])\n\
         local v = redis.call('get', KEYS[1])\n\
         redis.debug('v is', v)\n\
         redis.breakpoint()\n\
         return {v, #t}\n",
    )
    .unwrap();
    let script = script.to_string_lossy().into_owned();
    let stdin = "s\np\ns\nr get key1\nb 6\nl\nw\nprint v\ne #t * 2\nt\nhelp\nc\nc\n";
    let dir = DataDir::new("ldb", "cli");
    let b = Berth::start(BIN, &dir.0, &[]).expect("start");
    let Some(ours) = redis_cli(b.port, &script, stdin) else {
        eprintln!("redis-cli not found: skipped");
        return;
    };
    assert!(ours.contains("Lua debugging session started"), "{ours}");
    assert!(ours.contains("<redis> set key1 arg1"), "{ours}");
    assert!(ours.contains("(Lua debugging session ended)"), "{ours}");
    let mut c = Conn::connect(b.port).unwrap();
    assert_eq!(
        ok(&mut c, &["GET", "key1"]),
        V::Bulk(Some(b"arg1".to_vec()))
    );
    if let Some(redis) = start_redis() {
        let theirs = redis_cli(redis.port, &script, stdin).expect("redis-cli");
        assert_eq!(ours, theirs);
    }
    let _ = std::fs::remove_file(&script);
}
