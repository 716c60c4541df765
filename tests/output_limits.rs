//! client-output-buffer-limit against a real process: a subscriber that stops reading is
//! closed at the pubsub hard limit (Redis's default 32mb) and the server does not keep what was
//! published to it; a normal client past a limit set with CONFIG SET is closed too; a client
//! that reads keeps working.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use berth::persist::testkit::{Berth, Conn, DataDir, V};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// CLIENT LIST lines whose name is `name`.
fn clients_named(c: &mut Conn, name: &str) -> usize {
    let list = c.cmd(&["CLIENT", "LIST"]).unwrap().text();
    list.lines()
        .filter(|l| l.contains(&format!(" name={name} ")))
        .count()
}

fn wait_gone(c: &mut Conn, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if clients_named(c, name) == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_subscriber_that_stops_reading_is_closed_at_the_pubsub_limit() {
    let dir = DataDir::new("obuf", "pubsub");
    let s = Berth::start(BIN, &dir.0, &["--appendonly", "no"]).unwrap();
    let mut sub = Conn::connect(s.port).unwrap();
    sub.cmd(&["CLIENT", "SETNAME", "stuck"]).unwrap();
    sub.cmd(&["SUBSCRIBE", "jobs"]).unwrap();
    // From here the subscriber reads nothing.
    let mut publisher = Conn::connect(s.port).unwrap();
    let message = "x".repeat(1 << 20);
    let mut delivered_to_one = 0;
    for _ in 0..200 {
        // 200 MiB in all: far past the 32 MiB hard limit.
        if publisher.cmd(&["PUBLISH", "jobs", &message]).unwrap() == V::Int(1) {
            delivered_to_one += 1;
        }
    }
    assert!(delivered_to_one > 0, "the subscriber never got a message");
    assert!(
        delivered_to_one < 200,
        "the stuck subscriber was never closed"
    );
    assert!(
        wait_gone(&mut publisher, "stuck"),
        "the subscriber is still listed"
    );
    let rss = rss_mib(s.child.id());
    assert!(
        rss < 150,
        "the server holds {rss} MiB after the subscriber was closed"
    );
    // The server goes on serving.
    assert_eq!(publisher.cmd(&["PING"]).unwrap(), V::Str("PONG".into()));
}

#[test]
fn a_normal_client_past_a_configured_limit_is_closed_and_a_reading_one_is_not() {
    let dir = DataDir::new("obuf", "normal");
    let s = Berth::start(BIN, &dir.0, &["--appendonly", "no"]).unwrap();
    let mut admin = Conn::connect(s.port).unwrap();
    let set = admin
        .cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 4mb 0 0",
        ])
        .unwrap();
    assert_eq!(set, V::Str("OK".into()));
    admin.cmd(&["SET", "big", &"v".repeat(256 << 10)]).unwrap();

    // A reader: 64 GETs of 256 KiB, each reply read before the next, stays connected (as in
    // Redis, pipelining them all at once would pass the limit within one turn).
    let mut reader = Conn::connect(s.port).unwrap();
    reader.cmd(&["CLIENT", "SETNAME", "reader"]).unwrap();
    for _ in 0..64 {
        let got = reader.cmd(&["GET", "big"]).unwrap();
        assert!(matches!(got, V::Bulk(Some(b)) if b.len() == 256 << 10));
    }

    // A client that pipelines 400 of them (100 MiB of replies) and reads nothing.
    let mut stuck = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let name = b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$5\r\nstuck\r\n";
    std::io::Write::write_all(&mut stuck, name).unwrap();
    let get = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(400);
    std::io::Write::write_all(&mut stuck, &get).unwrap();
    assert!(
        wait_gone(&mut admin, "stuck"),
        "the stuck client is still listed"
    );
    // Its socket is closed: reading drains what was sent before, then reaches the end.
    stuck
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stuck.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("the socket was not closed: {e}"),
        }
    }
    assert!(total < 100 << 20, "all {total} bytes were delivered");
    assert_eq!(clients_named(&mut admin, "reader"), 1);
    assert_eq!(reader.cmd(&["PING"]).unwrap(), V::Str("PONG".into()));
}
