//! Persistence: every type survives a graceful restart and a SIGKILL, for each engine; the
//! crash tool runs a short version; a second Berth on the same directory refuses to start.

use berth::persist::testkit::{dump, Berth, Conn, DataDir};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn ok(c: &mut Conn, args: &[&str]) {
    let r = c.cmd(args).expect("reply");
    assert!(
        !matches!(r, berth::persist::testkit::V::Err(_)),
        "{args:?} -> {r:?}"
    );
}

/// A workload touching every type and every kind of change capture.
fn workload(c: &mut Conn, round: usize) {
    let r = round.to_string();
    // Lists: both ends, middle edits, trims, moves, emptied and recreated, big ones.
    ok(c, &["RPUSH", "l", "a", "b", "c", "d", "e", "f"]);
    ok(c, &["LPUSH", "l", "z", "y"]);
    ok(c, &["LPOP", "l"]);
    ok(c, &["RPOP", "l"]);
    ok(c, &["LSET", "l", "2", &format!("B{r}")]);
    ok(c, &["RPUSH", "l2", "1", "2", "3", "4", "5", "6", "7"]);
    ok(c, &["LINSERT", "l2", "BEFORE", "4", "3.5"]);
    ok(c, &["LREM", "l2", "1", "2"]);
    ok(c, &["LTRIM", "l2", "1", "-2"]);
    ok(c, &["LMOVE", "l", "l2", "LEFT", "RIGHT"]);
    ok(c, &["RPUSH", "gone", "x"]);
    ok(c, &["RPOP", "gone"]);
    let many: Vec<String> = (0..400).map(|i| format!("v{i}")).collect();
    let mut args = vec!["RPUSH", "big"];
    args.extend(many.iter().map(|s| s.as_str()));
    ok(c, &args);
    ok(c, &["LPOP", "big", "10"]);
    let mut args = vec!["RPUSH", "bigdel"];
    args.extend(many.iter().map(|s| s.as_str()));
    ok(c, &args);
    ok(c, &["DEL", "bigdel"]);
    // Hashes: order must survive (small hashes list fields in insertion order).
    ok(
        c,
        &["HSET", "h", "f1", "1", "f2", "2", "f3", "3", "f4", "4"],
    );
    ok(c, &["HDEL", "h", "f2"]);
    ok(c, &["HSET", "h", "f2", "again", "f1", &r]);
    ok(c, &["HINCRBY", "h", "n", "5"]);
    ok(c, &["HINCRBYFLOAT", "h", "fl", "1.5"]);
    // Sets and sorted sets.
    ok(c, &["SADD", "s", "a", "b", "c", "1", "2"]);
    ok(c, &["SREM", "s", "b"]);
    ok(c, &["SPOP", "s"]);
    ok(c, &["SMOVE", "s", "s2", "a"]);
    ok(c, &["SINTERSTORE", "s3", "s", "s"]);
    ok(
        c,
        &[
            "ZADD", "z", "1", "a", "2", "b", "3", "c", "-1.5", "d", "inf", "e",
        ],
    );
    ok(c, &["ZREM", "z", "b"]);
    ok(c, &["ZINCRBY", "z", "10", "a"]);
    ok(c, &["ZPOPMIN", "z"]);
    ok(c, &["ZUNIONSTORE", "z2", "2", "z", "z"]);
    // Strings with TTLs.
    ok(c, &["SET", "str", &format!("hello{r}"), "EX", "1000"]);
    ok(c, &["SET", "str2", "v", "PXAT", "99999999999999"]);
    ok(c, &["INCRBY", "n", "7"]);
    ok(c, &["APPEND", "str", "!"]);
    ok(c, &["SETRANGE", "sr", "3", "abc"]);
    ok(c, &["SET", "short", "x", "PX", "1"]);
    ok(c, &["EXPIRE", "h", "5000"]);
    ok(c, &["PERSIST", "str2"]);
    // Keyspace moves.
    ok(c, &["SET", "ren", "1"]);
    ok(c, &["RENAME", "ren", "ren2"]);
    ok(c, &["RENAME", "l2", "l3"]);
    ok(c, &["COPY", "h", "hcopy", "REPLACE"]);
    ok(c, &["HSET", "hcopy", "extra", "1"]);
    ok(c, &["MOVE", "s2", "1"]);
    ok(c, &["SET", "type", "string"]);
    ok(c, &["DEL", "type"]);
    ok(c, &["RPUSH", "type", "now-a-list"]);
    // Databases: FLUSHDB, SWAPDB.
    ok(c, &["SELECT", "2"]);
    ok(c, &["RPUSH", "flushed", "1", "2"]);
    ok(c, &["SET", "flushed2", "x"]);
    ok(c, &["FLUSHDB"]);
    ok(c, &["SET", "after-flush", &r]);
    ok(c, &["SELECT", "4"]);
    ok(c, &["HSET", "in4", "a", "1"]);
    ok(c, &["SWAPDB", "4", "5"]);
    ok(c, &["SELECT", "0"]);
    // MULTI/EXEC.
    ok(c, &["MULTI"]);
    ok(c, &["RPUSH", "tx", "1"]);
    ok(c, &["INCR", "txn"]);
    ok(c, &["HSET", "txh", "a", "b"]);
    ok(c, &["EXEC"]);
}

fn roundtrip(engine: &str) {
    let dir = DataDir::new("pt", engine);
    let extra = ["--storage-engine", engine, "--loglevel", "warning"];
    let mut s = Berth::start(BIN, &dir.0, &extra).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    workload(&mut c, 1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let before = dump(&mut c, 16).unwrap();
    assert!(before.iter().any(|l| l.starts_with("0 big list")));
    assert!(!before.iter().any(|l| l.contains("flushed")));
    s.shutdown();
    let s = Berth::start(BIN, &dir.0, &extra).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert_eq!(
        before,
        dump(&mut c, 16).unwrap(),
        "after a graceful restart"
    );
    // Every dead record was reclaimed before the clean stop.
    let info = c.cmd(&["INFO", "persistence"]).unwrap().text();
    assert!(info.contains("berth_load_garbage_records:0\r\n"), "{info}");
    // Second round on top of loaded data (journals start from loaded state), then SIGKILL.
    workload(&mut c, 2);
    ok(&mut c, &["FLUSHALL"]);
    workload(&mut c, 3);
    let before = dump(&mut c, 16).unwrap();
    let mut s = s;
    s.kill9();
    let s = Berth::start(BIN, &dir.0, &extra).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert_eq!(before, dump(&mut c, 16).unwrap(), "after SIGKILL");
    // Once more after reclaim has run, to see nothing live was reclaimed.
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(s);
    let s = Berth::start(BIN, &dir.0, &extra).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert_eq!(before, dump(&mut c, 16).unwrap(), "after a second SIGKILL");
}

#[test]
fn every_type_survives_restart_fjall() {
    roundtrip("fjall");
}

#[test]
fn every_type_survives_restart_sled() {
    roundtrip("sled");
}

fn crash(engine: &str) {
    let dir = DataDir::new("pt", &format!("crash-{engine}"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-crash"))
        .args([
            "--berth",
            BIN,
            "--engine",
            engine,
            "--trials",
            "3",
            "--clients",
            "6",
            "--dir",
            &dir.0,
            "--max-ms",
            "600",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "crash suite failed:\n{text}");
    assert!(text.contains("0 problems"), "{text}");
}

#[test]
fn crash_suite_short_fjall() {
    crash("fjall");
}

#[test]
fn crash_suite_short_sled() {
    crash("sled");
}

#[test]
fn second_berth_on_the_same_directory_refuses() {
    let dir = DataDir::new("pt", "lock");
    let _s = Berth::start(BIN, &dir.0, &["--loglevel", "warning"]).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--port", "0", "--dir", &dir.0])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another Berth"), "{err}");
}

#[test]
fn unknown_format_is_refused() {
    let dir = DataDir::new("pt", "format");
    let mut s = Berth::start(BIN, &dir.0, &["--loglevel", "warning"]).unwrap();
    s.shutdown();
    // Rewrite the format record through the engine, as a future version would.
    {
        let db = fjall::Database::builder(std::path::Path::new(&dir.0).join("fjall"))
            .open()
            .unwrap();
        let ks = db
            .keyspace("berth", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        ks.insert(b"\x01format", b"berth-store-99").unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let out = std::process::Command::new(BIN)
        .args(["--port", "0", "--dir", &dir.0])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("berth-store-99") && err.contains("refusing"),
        "{err}"
    );
}
