//! Store faults against a real disk that fills up: a small tmpfs (needs root to mount; the
//! tests say so and pass vacuously otherwise). Writes are refused with MISCONF, reads keep
//! working, a read of the write that failed waits for it, writes resume when space is freed,
//! nothing acknowledged is lost; SHUTDOWN and SIGTERM during a failure.

use std::io::Write;
use std::time::{Duration, Instant};

use berth::persist::testkit::{free_port, Conn, V};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// A tmpfs of a few MB, unmounted on drop.
struct Tmpfs(String);

impl Tmpfs {
    fn mount(name: &str) -> Option<Tmpfs> {
        let d = std::env::temp_dir().join(format!("berth-fault-{name}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        let d = d.to_string_lossy().into_owned();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs", &d])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("cannot mount a tmpfs (not root?): skipping the disk-full test");
            return None;
        }
        Some(Tmpfs(d))
    }

    fn fill(&self) -> String {
        let path = format!("{}/fill", self.0);
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l", &self.0])
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Proc {
    child: std::process::Child,
    port: u16,
    log: String,
}

impl Proc {
    fn start(dir: &str, extra: &[&str]) -> Proc {
        let port = free_port();
        let log = format!("{dir}.log");
        let mut args = vec!["--port".to_string(), port.to_string(), "--dir".into()];
        args.push(format!("{dir}/data"));
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = std::process::Command::new(BIN)
            .args(&args)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = Conn::connect(port) {
                if let Ok(V::Str(_)) = c.cmd(&["PING"]) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "berth did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Proc { child, port, log }
    }

    fn conn(&self) -> Conn {
        Conn::connect(self.port).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `secs` for the process to exit.
    fn exited_within(&mut self, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Bytes of the value whose write fails: more than a log segment preallocated for a quiet
/// server (1 MB of zeros, which a full disk does not take away).
const BIG: i64 = 1_500_000;

/// A value that does not compress: it needs real space on disk.
fn big_value() -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..BIG)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

/// Sends a command on its own thread; the reply, if it arrives within `ms`.
fn replies_within(c: Conn, args: &[&str], ms: u64) -> Option<V> {
    pending(c, args)
        .recv_timeout(Duration::from_millis(ms))
        .ok()
}

/// Sends a command; its reply comes through the receiver whenever it arrives.
fn pending(mut c: Conn, args: &[&str]) -> std::sync::mpsc::Receiver<V> {
    c.send(args).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok(v) = c.read() {
            let _ = tx.send(v);
        }
    });
    rx
}

/// Starts berth on a tmpfs, writes a few keys, fills the disk and makes one write fail.
/// Returns the server, the pending write's reply, and the fill file.
fn failing(fs: &Tmpfs, extra: &[&str]) -> (Proc, std::sync::mpsc::Receiver<V>, String) {
    let s = Proc::start(&fs.0, extra);
    let mut c = s.conn();
    for i in 0..50 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        assert_eq!(c.cmd(&["SET", &k, &v]).unwrap(), V::Str("OK".into()));
    }
    let fill = fs.fill();
    let w = pending(s.conn(), &["SET", "big", &big_value()]);
    // Wait for the failure to show.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = c.cmd(&["INFO", "persistence"]).unwrap().text();
        if info.contains("aof_last_write_status:err") {
            break;
        }
        assert!(Instant::now() < deadline, "the write did not fail: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (s, w, fill)
}

#[test]
fn disk_full_refuses_writes_keeps_reads_and_resumes() {
    let Some(fs) = Tmpfs::mount("full") else {
        return;
    };
    let (s, w, fill) = failing(&fs, &["--loglevel", "warning"]);
    let mut r = s.conn();
    // Reads of durable data and commands that show no data are answered at once.
    assert_eq!(r.cmd(&["GET", "k7"]).unwrap().text(), "v7");
    assert_eq!(r.cmd(&["PING"]).unwrap(), V::Str("PONG".into()));
    assert_eq!(r.cmd(&["MGET", "k1", "k2"]).unwrap().text(), "v1,v2");
    // Writes are refused before they run, with the reason.
    let e = r.cmd(&["SET", "x", "1"]).unwrap();
    assert_eq!(
        e,
        V::Err("MISCONF Errors writing to the AOF file: No space left on device".into())
    );
    let e = r
        .cmd(&["EVAL", "return redis.call('SET','x','1')", "0"])
        .unwrap();
    assert!(e.text().contains("MISCONF"), "{e:?}");
    assert_eq!(r.cmd(&["SAVE"]).unwrap(), V::Err("ERR".into()));
    assert_eq!(r.cmd(&["EXISTS", "x"]).unwrap(), V::Int(0));
    // A read of the write that failed waits for it; so does a read of everything.
    let held = pending(s.conn(), &["STRLEN", "big"]);
    assert_eq!(replies_within(s.conn(), &["DBSIZE"], 300), None);
    // Scripts and transactions are judged by what they read.
    let script = "return redis.call('GET', KEYS[1])";
    assert_eq!(r.cmd(&["EVAL", script, "1", "k7"]).unwrap().text(), "v7");
    assert_eq!(
        replies_within(s.conn(), &["EVAL", script, "1", "big"], 300),
        None
    );
    assert_eq!(r.cmd(&["MULTI"]).unwrap(), V::Str("OK".into()));
    assert_eq!(r.cmd(&["GET", "k1"]).unwrap(), V::Str("QUEUED".into()));
    assert_eq!(r.cmd(&["EXEC"]).unwrap().text(), "v1");
    assert!(held.recv_timeout(Duration::from_millis(100)).is_err());
    // The writer still has no reply.
    assert!(w.try_recv().is_err());
    // Space comes back: the pending write commits, its reply and the held reads leave.
    std::fs::remove_file(fill).unwrap();
    assert_eq!(
        w.recv_timeout(Duration::from_secs(10)).unwrap(),
        V::Str("OK".into())
    );
    let mut w = s.conn();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match w.cmd(&["SET", "after", "1"]).unwrap() {
            V::Str(ok) if ok == "OK" => break,
            V::Err(e) if e.starts_with("MISCONF") => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "writes did not resume");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(w.cmd(&["STRLEN", "big"]).unwrap(), V::Int(BIG));
    assert_eq!(
        held.recv_timeout(Duration::from_secs(5)).unwrap(),
        V::Int(BIG)
    );
    let info = w.cmd(&["INFO", "persistence"]).unwrap().text();
    assert!(info.contains("aof_last_write_status:ok"), "{info}");
    assert!(info.contains("berth_log_recoveries:1"), "{info}");
    // Everything acknowledged survives a restart (and a SIGKILL).
    let mut s = s;
    let _ = s.child.kill();
    let _ = s.child.wait();
    let s = Proc::start(&fs.0, &["--loglevel", "warning"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["STRLEN", "big"]).unwrap(), V::Int(BIG));
    assert_eq!(c.cmd(&["GET", "after"]).unwrap().text(), "1");
    assert_eq!(c.cmd(&["GET", "k49"]).unwrap().text(), "v49");
    assert_eq!(c.cmd(&["DBSIZE"]).unwrap(), V::Int(52));
}

#[test]
fn shutdown_during_a_store_failure() {
    let Some(fs) = Tmpfs::mount("shutdown") else {
        return;
    };
    let (mut s, _w, _fill) = failing(&fs, &["--loglevel", "warning"]);
    let mut c = s.conn();
    // As Redis when the final save fails: refused, the server keeps running.
    assert_eq!(
        c.cmd(&["SHUTDOWN"]).unwrap(),
        V::Err("ERR Errors trying to SHUTDOWN. Check logs.".into())
    );
    assert_eq!(c.cmd(&["GET", "k3"]).unwrap().text(), "v3");
    assert!(s.log().contains("Error trying to save the DB, can't exit."));
    // NOSAVE gives up on the failing store and exits at once.
    let _ = c.cmd(&["SHUTDOWN", "NOSAVE"]);
    assert!(s.exited_within(5), "SHUTDOWN NOSAVE did not exit");
    std::fs::remove_file(format!("{}/fill", fs.0)).unwrap();
    // Every acknowledged write is there; the one never acknowledged may or may not be.
    let s = Proc::start(&fs.0, &["--loglevel", "warning"]);
    let mut c = s.conn();
    for i in 0..50 {
        let k = format!("k{i}");
        assert_eq!(c.cmd(&["GET", &k]).unwrap().text(), format!("v{i}"));
    }
}

#[test]
fn sigterm_during_a_store_failure_exits_after_shutdown_timeout() {
    let Some(fs) = Tmpfs::mount("sigterm") else {
        return;
    };
    let conf = format!("{}.conf", fs.0);
    std::fs::write(&conf, "shutdown-timeout 1\nloglevel warning\n").unwrap();
    let (mut s, _w, _fill) = failing(&fs, &[&conf]);
    let started = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    assert!(s.exited_within(8), "SIGTERM did not exit");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let log = s.log();
    assert!(log.contains("waiting up to 1 s"), "{log}");
    assert!(
        log.contains("exiting without the writes that were never acknowledged"),
        "{log}"
    );
    let _ = std::fs::remove_file(conf);
}
