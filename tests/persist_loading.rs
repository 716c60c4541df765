//! Startup with a big dataset: Berth listens at once, answers -LOADING to everything without
//! Redis's `loading` flag while the store loads, shows `loading:1` in INFO persistence, keeps
//! the directory locked meanwhile, drops keys that expired, then serves the data; a SIGKILL
//! while loading loses nothing.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use berth::persist::testkit::{Berth, Conn, DataDir, V};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

const BATCHES: usize = 200;
const PER: usize = 1000;

/// BATCHES x PER keys through pipelined MSETs, plus keys that expire before the restart.
fn fill(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut out = Vec::new();
    for j in 0..BATCHES {
        let mut args: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
        for i in 0..PER {
            args.push(format!("key:{j}:{i}").into_bytes());
            args.push(format!("value-{i}").into_bytes());
        }
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in &args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }
    s.write_all(&out).unwrap();
    let mut c = Conn::connect(port).unwrap();
    // The pipeline's replies: wait until every MSET ran.
    let want = (BATCHES * PER) as i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while c.cmd(&["DBSIZE"]).unwrap().int() < want {
        assert!(Instant::now() < deadline, "the writes did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..20 {
        let k = format!("short:{i}");
        assert_eq!(
            c.cmd(&["SET", &k, "x", "PX", "700"]).unwrap(),
            V::Str("OK".into())
        );
    }
    drop(s);
}

#[test]
fn loading_phase_answers_loading_then_serves_the_data() {
    let dir = DataDir::new("ld", "big");
    let extra = ["--loglevel", "warning"];
    let mut s = Berth::start(BIN, &dir.0, &extra).unwrap();
    fill(s.port);
    s.shutdown();
    // The short keys expire on disk before the restart reads them.
    std::thread::sleep(Duration::from_millis(1000));

    // start() returns as soon as Berth answers (PING gets -LOADING).
    let s = Berth::start_loading(BIN, &dir.0, &extra).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    let loading = V::Err("LOADING Redis is loading the dataset in memory".into());
    assert_eq!(c.cmd(&["DBSIZE"]).unwrap(), loading);
    assert_eq!(c.cmd(&["GET", "key:1:1"]).unwrap(), loading);
    assert_eq!(c.cmd(&["SET", "new", "1"]).unwrap(), loading);
    let info = c.cmd(&["INFO", "persistence"]).unwrap().text();
    assert!(info.contains("\r\nloading:1\r\n"), "{info}");
    assert!(info.contains("\r\nloading_loaded_perc:"), "{info}");
    assert!(info.contains("\r\nloading_eta_seconds:"), "{info}");
    // PING has no `loading` flag in Redis 7.0 either; SELECT, MULTI, INFO, CONFIG have it.
    assert_eq!(c.cmd(&["PING"]).unwrap(), loading);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "port"]).unwrap().items()[0],
        "port"
    );
    assert_eq!(c.cmd(&["SELECT", "1"]).unwrap(), V::Str("OK".into()));
    assert_eq!(c.cmd(&["SELECT", "0"]).unwrap(), V::Str("OK".into()));
    assert_eq!(c.cmd(&["MULTI"]).unwrap(), V::Str("OK".into()));
    assert_eq!(c.cmd(&["INCR", "n"]).unwrap(), loading);
    assert!(c.cmd(&["EXEC"]).unwrap().text().starts_with("EXECABORT"));
    // The directory is locked while loading.
    let out = std::process::Command::new(BIN)
        .args(["--port", "0", "--dir", &dir.0])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another Berth"));
    // Then the data, without the keys that expired.
    let deadline = Instant::now() + Duration::from_secs(120);
    let n = loop {
        match c.cmd(&["DBSIZE"]).unwrap() {
            V::Int(n) => break n,
            V::Err(e) if e.starts_with("LOADING") => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "loading did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(n, (BATCHES * PER) as i64);
    assert_eq!(c.cmd(&["GET", "key:199:999"]).unwrap().text(), "value-999");
    assert_eq!(c.cmd(&["EXISTS", "short:3"]).unwrap(), V::Int(0));
    let info = c.cmd(&["INFO", "persistence"]).unwrap().text();
    assert!(info.contains("\r\nloading:0\r\n"), "{info}");
    assert!(!info.contains("loading_loaded_perc"), "{info}");
    let field = |name: &str| -> i64 {
        let at = info.find(&format!("\r\n{name}:")).expect(name) + name.len() + 3;
        info[at..].split("\r\n").next().unwrap().parse().unwrap()
    };
    // Active expiry may have deleted one or two before the stop; the rest were dropped at load.
    assert!(field("berth_load_expired_keys") > 10, "{info}");
    assert_eq!(
        field("rdb_last_load_keys_expired"),
        field("berth_load_expired_keys")
    );
    assert_eq!(field("rdb_last_load_keys_loaded"), (BATCHES * PER) as i64);
    for i in 0..20 {
        let k = format!("short:{i}");
        assert_eq!(c.cmd(&["EXISTS", &k]).unwrap(), V::Int(0));
    }
    assert_eq!(c.cmd(&["SET", "new", "1"]).unwrap(), V::Str("OK".into()));

    // A crash while loading is harmless: SIGKILL mid-load, then everything is still there.
    drop(c);
    let mut s = s;
    s.kill9();
    let mut s = Berth::start_loading(BIN, &dir.0, &extra).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert_eq!(c.cmd(&["DBSIZE"]).unwrap(), loading);
    std::thread::sleep(Duration::from_millis(300));
    s.kill9();
    let s = Berth::start(BIN, &dir.0, &extra).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    assert_eq!(
        c.cmd(&["DBSIZE"]).unwrap(),
        V::Int((BATCHES * PER) as i64 + 1)
    );
    assert_eq!(c.cmd(&["GET", "new"]).unwrap().text(), "1");
}

#[test]
fn corrupt_journal_is_refused_with_the_way_out() {
    let dir = DataDir::new("ld", "corrupt");
    let extra = ["--loglevel", "warning"];
    let mut s = Berth::start(BIN, &dir.0, &extra).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    for i in 0..200 {
        let (k, v) = (format!("key{i}"), format!("value{i}"));
        assert_eq!(c.cmd(&["SET", &k, &v]).unwrap(), V::Str("OK".into()));
    }
    s.shutdown();
    // Damage one record in the middle of the journal.
    let jnl = std::path::Path::new(&dir.0).join("fjall").join("0.jnl");
    let mut data = std::fs::read(&jnl).unwrap();
    let at = data
        .windows(8)
        .position(|w| w == b"value100")
        .expect("record in the journal");
    data[at] = b'X';
    std::fs::write(&jnl, data).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--port", "0", "--dir", &dir.0])
        .output()
        .unwrap();
    assert!(!out.status.success(), "started over a damaged store");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot open {}/fjall", dir.0)),
        "{err}"
    );
    assert!(
        err.contains("restore the directory from a backup, or move it aside"),
        "{err}"
    );
}
