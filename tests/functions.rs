//! Function libraries against real processes: FUNCTION DUMP payloads cross both ways between
//! a real `redis-server` (7.0.15) and Berth (the same bytes for the same library), and loaded
//! libraries survive SIGKILL, a restart and a checkpoint, as data does.

use std::time::{Duration, Instant};

use berth::persist::testkit::{start_redis, Berth, Conn, DataDir, V};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// A library that compresses (LZF), one with every flag and a description, a small one.
const LIBS: &[&str] = &[
    "#!lua name=queue\n\
     local function push(keys, args) return redis.call('rpush', keys[1], unpack(args)) end\n\
     local function pop(keys) return redis.call('lpop', keys[1]) end\n\
     redis.register_function('qpush', push)\n\
     redis.register_function('qpop', pop)\n\
     -- padding padding padding padding padding padding padding padding padding padding\n",
    "#!lua name=flagged\n\
     redis.register_function{function_name='peek', callback=function(keys) return \
     redis.call('lindex', keys[1], 0) end, flags={'no-writes', 'allow-oom', 'allow-stale', \
     'no-cluster', 'allow-cross-slot-keys'}, description='first element'}",
    "#!lua name=tiny\nredis.register_function('one', function() return 1 end)",
];

fn cmd(c: &mut Conn, args: &[&str]) -> V {
    let r = c.cmd(args).expect("reply");
    assert!(!matches!(r, V::Err(_)), "{args:?} -> {r:?}");
    r
}

fn load_all(c: &mut Conn) {
    cmd(c, &["FUNCTION", "FLUSH"]);
    for code in LIBS {
        cmd(c, &["FUNCTION", "LOAD", code]);
    }
}

fn dump(c: &mut Conn) -> Vec<u8> {
    match cmd(c, &["FUNCTION", "DUMP"]) {
        V::Bulk(Some(b)) => b,
        other => panic!("FUNCTION DUMP: {other:?}"),
    }
}

fn restore(c: &mut Conn, payload: &[u8], policy: &str) -> V {
    c.cmd_bin(&[b"FUNCTION", b"RESTORE", payload, policy.as_bytes()])
        .expect("reply")
}

/// FUNCTION LIST WITHCODE, one line per library, in name order (servers list in hash order).
fn listing(c: &mut Conn) -> Vec<String> {
    let V::Arr(Some(libs)) = cmd(c, &["FUNCTION", "LIST", "WITHCODE"]) else {
        panic!("FUNCTION LIST");
    };
    let mut out: Vec<String> = libs.iter().map(describe).collect();
    out.sort();
    out
}

/// A reply as text with nested arrays sorted (function order within a library is hash order).
fn describe(v: &V) -> String {
    match v {
        V::Arr(Some(items)) => {
            let mut parts: Vec<String> = items.iter().map(describe).collect();
            parts.sort();
            format!("[{}]", parts.join(" "))
        }
        other => other.text(),
    }
}

/// What the libraries do: calls of each function on the same data.
fn behaviour(c: &mut Conn) -> Vec<String> {
    let _ = c.cmd(&["DEL", "fq"]);
    [
        vec!["FCALL", "qpush", "1", "fq", "a", "b"],
        vec!["FCALL_RO", "peek", "1", "fq"],
        vec!["FCALL", "qpop", "1", "fq"],
        vec!["FCALL", "ONE", "0"],
        vec!["FCALL_RO", "qpop", "1", "fq"],
    ]
    .iter()
    .map(|a| c.cmd(a).expect("reply").text())
    .collect()
}

#[test]
fn dump_payloads_cross_both_ways() {
    let Some(redis) = start_redis() else {
        eprintln!("skipped: redis-server is not on PATH (or did not start)");
        return;
    };
    let dir = DataDir::new("fn", "cross");
    let berth = Berth::start(BIN, &dir.0, &["--loglevel", "warning"]).unwrap();
    let mut r = Conn::connect(redis.port).unwrap();
    let mut b = Conn::connect(berth.port).unwrap();

    // One library at a time: the payloads are the same bytes.
    for code in LIBS {
        for c in [&mut r, &mut b] {
            cmd(c, &["FUNCTION", "FLUSH"]);
            cmd(c, &["FUNCTION", "LOAD", code]);
        }
        assert_eq!(dump(&mut b), dump(&mut r), "FUNCTION DUMP of {code:?}");
    }
    load_all(&mut r);
    load_all(&mut b);
    let want_list = listing(&mut r);
    let want_calls = behaviour(&mut r);
    assert_eq!(listing(&mut b), want_list);
    assert_eq!(behaviour(&mut b), want_calls);

    // Redis -> Berth, and Berth -> Redis, each replacing everything.
    let from_redis = dump(&mut r);
    let from_berth = dump(&mut b);
    cmd(&mut b, &["FUNCTION", "FLUSH"]);
    cmd(&mut r, &["FUNCTION", "FLUSH"]);
    assert_eq!(restore(&mut b, &from_redis, "FLUSH"), V::Str("OK".into()));
    assert_eq!(restore(&mut r, &from_berth, "FLUSH"), V::Str("OK".into()));
    assert_eq!(listing(&mut b), want_list, "Redis -> Berth");
    assert_eq!(listing(&mut r), want_list, "Berth -> Redis");
    assert_eq!(behaviour(&mut b), want_calls);
    assert_eq!(behaviour(&mut r), want_calls);

    // APPEND over the same libraries fails the same way on both; REPLACE succeeds.
    let e_b = restore(&mut b, &from_redis, "APPEND");
    let e_r = restore(&mut r, &from_berth, "APPEND");
    assert!(matches!(e_r, V::Err(_)), "{e_r:?}");
    let lib_named = |e: &V| e.text().contains("already exists");
    assert!(lib_named(&e_b) && lib_named(&e_r), "{e_b:?} / {e_r:?}");
    assert_eq!(restore(&mut b, &from_redis, "REPLACE"), V::Str("OK".into()));
    assert_eq!(restore(&mut r, &from_berth, "REPLACE"), V::Str("OK".into()));
    assert_eq!(listing(&mut b), want_list);
    assert_eq!(listing(&mut r), want_list);
}

fn info(c: &mut Conn, field: &str) -> u64 {
    let text = c.cmd(&["INFO", "persistence"]).unwrap().text();
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {text}"))
}

/// BGREWRITEAOF asks for a checkpoint; waits until one more has completed.
fn checkpoint_now(c: &mut Conn) {
    let before = info(c, "berth_checkpoints");
    cmd(c, &["BGREWRITEAOF"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while info(c, "berth_checkpoints") == before {
        assert!(Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn libraries_survive_sigkill_restart_and_checkpoints() {
    let dir = DataDir::new("fn", "persist");
    let args = ["--checkpoint-interval", "86400", "--loglevel", "warning"];
    let mut berth = Berth::start(BIN, &dir.0, &args).unwrap();
    let mut c = Conn::connect(berth.port).unwrap();
    load_all(&mut c);
    // A replaced library, a deleted one, one restored from a payload, one loaded in MULTI.
    cmd(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=tiny\nredis.register_function('one', function() return 'one v2' end)",
        ],
    );
    cmd(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=gone\nredis.register_function('g', function() end)",
        ],
    );
    cmd(&mut c, &["FUNCTION", "DELETE", "gone"]);
    cmd(&mut c, &["MULTI"]);
    cmd(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=inmulti\nredis.register_function('m', function() return 'm' end)",
        ],
    );
    cmd(&mut c, &["EXEC"]);
    let want_list = listing(&mut c);
    let want_calls = behaviour(&mut c);
    assert_eq!(want_calls[3], "one v2");

    // SIGKILL: the libraries come back from the redo log.
    drop(c);
    berth.kill9();
    let mut berth = Berth::start(BIN, &dir.0, &args).unwrap();
    let mut c = Conn::connect(berth.port).unwrap();
    assert_eq!(listing(&mut c), want_list, "after SIGKILL");
    assert_eq!(behaviour(&mut c), want_calls);

    // After a checkpoint the store holds them; a RESTORE FLUSH then replaces them all.
    checkpoint_now(&mut c);
    drop(c);
    berth.kill9();
    let mut berth = Berth::start(BIN, &dir.0, &args).unwrap();
    let mut c = Conn::connect(berth.port).unwrap();
    assert_eq!(listing(&mut c), want_list, "after a checkpoint and SIGKILL");
    cmd(&mut c, &["FUNCTION", "DELETE", "inmulti"]);
    let payload = dump(&mut c);
    cmd(&mut c, &["FUNCTION", "FLUSH"]);
    cmd(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=other\nredis.register_function('o', function() end)",
        ],
    );
    assert_eq!(restore(&mut c, &payload, "FLUSH"), V::Str("OK".into()));
    let want_list = listing(&mut c);
    checkpoint_now(&mut c);
    drop(c);
    berth.shutdown();
    let mut berth = Berth::start(BIN, &dir.0, &args).unwrap();
    let mut c = Conn::connect(berth.port).unwrap();
    assert_eq!(listing(&mut c), want_list, "after a clean restart");
    assert_eq!(behaviour(&mut c), want_calls);

    // FUNCTION FLUSH is durable too.
    cmd(&mut c, &["FUNCTION", "FLUSH"]);
    drop(c);
    berth.kill9();
    let berth = Berth::start(BIN, &dir.0, &args).unwrap();
    let mut c = Conn::connect(berth.port).unwrap();
    assert_eq!(
        listing(&mut c),
        Vec::<String>::new(),
        "after FUNCTION FLUSH"
    );
}
