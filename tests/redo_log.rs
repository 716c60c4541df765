//! The redo log and checkpoints against a real `berth` process: acknowledged writes live in
//! the log until a checkpoint and come back after SIGKILL; a job pushed and popped between two
//! checkpoints never reaches the store; a torn tail is dropped; a damaged log is refused;
//! the checkpoint directives apply at runtime.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth::persist::redo;
use berth::persist::testkit::{Berth, Conn, DataDir, V};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// Checkpoints only when asked (BGREWRITEAOF) or at a clean stop.
const NO_TIMED_CHECKPOINTS: [&str; 4] = ["--checkpoint-interval", "86400", "--loglevel", "warning"];

fn info(c: &mut Conn, field: &str) -> u64 {
    let text = c.cmd(&["INFO", "persistence"]).unwrap().text();
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

fn cmd(c: &mut Conn, args: &[&str]) -> V {
    let r = c.cmd(args).unwrap();
    assert!(!matches!(r, V::Err(_)), "{args:?} -> {r:?}");
    r
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

/// Runs berth on `dir` to its exit: a start that must be refused, or `--check-log`. With
/// `--port 0`, a Berth that wrongly started would serve forever; the timeout ends it.
fn run_once(dir: &str, extra: &[&str]) -> std::process::Output {
    std::process::Command::new("timeout")
        .args([
            "20",
            BIN,
            "--port",
            "0",
            "--dir",
            dir,
            "--loglevel",
            "warning",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn segments(dir: &str) -> Vec<PathBuf> {
    redo::segments(Path::new(dir))
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn acknowledged_writes_come_back_from_the_log_after_sigkill() {
    let dir = DataDir::new("redo", "kill");
    let mut s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    cmd(&mut c, &["SET", "ttl", "v", "EX", "1000"]);
    cmd(&mut c, &["RPUSH", "q", "a", "b", "c"]);
    cmd(&mut c, &["HSET", "h", "f", "1"]);
    cmd(&mut c, &["ZADD", "z", "1", "m"]);
    cmd(&mut c, &["XADD", "s", "1-1", "f", "v"]);
    cmd(&mut c, &["LPOP", "q"]);
    assert_eq!(info(&mut c, "berth_checkpoints"), 0);
    assert!(info(&mut c, "berth_log_bytes") > 0);
    s.kill9();
    let logged = segments(&dir.0);
    assert!(!logged.is_empty());
    let s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert!(info(&mut c, "berth_log_replayed_write_sets") >= 6);
    assert_eq!(c.cmd(&["LRANGE", "q", "0", "-1"]).unwrap().text(), "b,c");
    assert_eq!(c.cmd(&["HGET", "h", "f"]).unwrap().text(), "1");
    assert_eq!(c.cmd(&["ZSCORE", "z", "m"]).unwrap().text(), "1");
    assert_eq!(c.cmd(&["XLEN", "s"]).unwrap().int(), 1);
    let ttl = c.cmd(&["TTL", "ttl"]).unwrap().int();
    assert!((990..=1000).contains(&ttl), "{ttl}");
    // The replayed tail went into the store and its segments are gone.
    assert!(logged.iter().all(|p| !p.exists()), "{logged:?}");
    // And the store alone holds it now: a second SIGKILL with nothing new replays nothing.
    let mut s = s;
    s.kill9();
    let s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert_eq!(info(&mut c, "berth_log_replayed_write_sets"), 0);
    assert_eq!(c.cmd(&["LRANGE", "q", "0", "-1"]).unwrap().text(), "b,c");
}

#[test]
fn a_job_pushed_and_popped_between_checkpoints_never_reaches_the_store() {
    let dir = DataDir::new("redo", "coalesce");
    let s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    cmd(&mut c, &["SET", "keep", "1"]);
    checkpoint_now(&mut c);
    let records = info(&mut c, "berth_checkpoint_records");
    // 500 jobs through a queue, one command each, all between two checkpoints.
    for i in 0..500 {
        cmd(&mut c, &["LPUSH", "queue", &format!("job-{i}")]);
    }
    for _ in 0..500 {
        cmd(&mut c, &["RPOP", "queue"]);
    }
    checkpoint_now(&mut c);
    let written = info(&mut c, "berth_checkpoint_records") - records;
    assert!(written <= 2, "{written} records reached the store");
    assert!(info(&mut c, "berth_checkpoint_skipped_deletes") >= 500);
    // The same jobs left in the queue do reach it.
    for i in 0..500 {
        cmd(&mut c, &["LPUSH", "queue", &format!("job-{i}")]);
    }
    checkpoint_now(&mut c);
    let written = info(&mut c, "berth_checkpoint_records") - records;
    assert!(written >= 500, "{written}");
}

#[test]
fn a_torn_tail_is_dropped_and_everything_acknowledged_kept() {
    let dir = DataDir::new("redo", "torn");
    let mut s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    for i in 0..50 {
        cmd(&mut c, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    s.kill9();
    // A write cut short by the crash: a header promising more than is there, then garbage.
    let last = segments(&dir.0).pop().unwrap();
    let mut torn = Vec::new();
    redo::encode(
        &mut torn,
        1_000_000,
        &[(b"never".to_vec(), Some(b"x".to_vec()))],
    );
    torn.truncate(torn.len() - 3);
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&torn);
    std::fs::write(&last, bytes).unwrap();
    let s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert_eq!(c.cmd(&["DBSIZE"]).unwrap().int(), 50);
    assert_eq!(c.cmd(&["GET", "k49"]).unwrap().text(), "v49");
}

#[test]
fn a_log_with_a_missing_write_set_is_refused() {
    let dir = DataDir::new("redo", "gap");
    let mut s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    cmd(&mut c, &["SET", "a", "1"]);
    s.kill9();
    // A later segment whose first write set is far ahead of the last one logged.
    let (number, _) = redo::segments(Path::new(&dir.0)).unwrap().pop().unwrap();
    let mut seg = redo::Segment::create(Path::new(&dir.0), number + 1).unwrap();
    let mut buf = Vec::new();
    redo::encode(&mut buf, 1_000, &[(b"x".to_vec(), None)]);
    seg.write(&buf).unwrap();
    let out = run_once(&dir.0, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("redo log") && err.contains("is missing"),
        "{err}"
    );
}

#[test]
fn a_clean_stop_checkpoints_everything() {
    let dir = DataDir::new("redo", "clean");
    let mut s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    cmd(&mut c, &["RPUSH", "q", "1", "2"]);
    s.shutdown();
    let s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert_eq!(info(&mut c, "berth_log_replayed_write_sets"), 0);
    assert_eq!(c.cmd(&["LRANGE", "q", "0", "-1"]).unwrap().text(), "1,2");
}

#[test]
fn checkpoint_directives_apply_at_runtime() {
    let dir = DataDir::new("redo", "config");
    let s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "checkpoint-interval"])
            .unwrap()
            .text(),
        "checkpoint-interval,86400"
    );
    let e = c
        .cmd(&["CONFIG", "SET", "checkpoint-log-size", "1kb"])
        .unwrap();
    assert!(
        matches!(&e, V::Err(t) if t.contains("argument must be between")),
        "{e:?}"
    );
    cmd(&mut c, &["CONFIG", "SET", "checkpoint-log-size", "1mb"]);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "checkpoint-log-size"])
            .unwrap()
            .text(),
        "checkpoint-log-size,1048576"
    );
    // 3 MB of log passes the size twice over: checkpoints follow without being asked.
    let value = "x".repeat(10_000);
    for i in 0..300 {
        cmd(&mut c, &["SET", &format!("k{i}"), &value]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while info(&mut c, "berth_checkpoints") < 2 {
        assert!(Instant::now() < deadline, "no checkpoint by size");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The log on disk stays near the size, not the total written.
    assert!(info(&mut c, "berth_log_bytes") < 3 << 20);
    cmd(&mut c, &["CONFIG", "SET", "checkpoint-interval", "1"]);
    cmd(&mut c, &["SET", "after", "1"]);
    let before = info(&mut c, "berth_checkpoints");
    let deadline = Instant::now() + Duration::from_secs(10);
    while info(&mut c, "berth_checkpoints") == before {
        assert!(Instant::now() < deadline, "no timed checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn damage_in_the_middle_is_refused_until_check_log_fix_cuts_it() {
    let dir = DataDir::new("redo", "damaged");
    let mut s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    for i in 0..20 {
        cmd(&mut c, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    s.kill9();
    let last = segments(&dir.0).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    // The middle of what was written (a segment may be a zero-filled spare beyond it).
    let written = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    bytes[written / 2] ^= 0xff;
    std::fs::write(&last, &bytes).unwrap();
    let run = |extra: &[&str]| run_once(&dir.0, extra);
    let out = run(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&last.display().to_string()) && err.contains("damaged at offset"),
        "{err}"
    );
    assert!(err.contains("--check-log"), "{err}");
    let check = run(&["--check-log"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stdout).contains("DAMAGED"));
    assert!(run(&["--check-log", "--fix"]).status.success());
    assert!(run(&["--check-log"]).status.success());
    // The write sets before the damage are served; those after it are gone.
    let s = Berth::start(BIN, &dir.0, &NO_TIMED_CHECKPOINTS).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    let n = c.cmd(&["DBSIZE"]).unwrap().int();
    assert!((1..20).contains(&n), "{n}");
    assert_eq!(c.cmd(&["GET", "k0"]).unwrap().text(), "v0");
}
