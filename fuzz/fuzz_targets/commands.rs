//! Parsed commands run on a real keyspace (no sockets): no input may panic the server, and
//! every reply must be valid RESP (the encoder's output is consumed by the connection as is).
#![no_main]

use berth::config::Config;
use berth::protocol::request::{Limits, Parse, Parser};
use berth::server::core::World;
use berth::server::net::Conn;
use berth::server::ToCore;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

/// Commands that stop the process, sleep, allocate by design (SETBIT at 2^32), run scripts
/// that may loop forever (scripting has its own differential cases), or connect out (MIGRATE;
/// its payloads have the `restore` target).
const SKIP: &[&str] = &[
    "shutdown", "debug", "setrange", "setbit", "bitfield", "monitor", "client", "wait", "eval",
    "evalsha", "eval_ro", "evalsha_ro", "script", "migrate",
];

fuzz_target!(|data: &[u8]| {
    let mut world = World::new(Config::defaults());
    let conn = Conn::detached();
    let addr = "127.0.0.1:1".parse().unwrap();
    world.handle(ToCore::Connected { id: 1, addr, local: addr, out: conn.clone() });
    let mut parser = Parser::new(true);
    let mut buf = BytesMut::from(data);
    let mut cmds = Vec::new();
    while let Parse::Command(argv) = parser.parse(&mut buf, &Limits::default()) {
        let name = argv.first().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase());
        if name.is_some_and(|n| SKIP.contains(&n.as_str())) {
            continue;
        }
        if !argv.is_empty() {
            cmds.push(argv);
        }
    }
    world.handle(ToCore::Commands { id: 1, cmds, error: None });
    world.flush_pending_output();
    let out = conn.take_output();
    // Each reply must decode as RESP2 or (after HELLO 3) RESP3.
    let mut rest = &out[..];
    while !rest.is_empty() {
        let used = match redis_protocol::resp2::decode::decode(rest) {
            Ok(Some((_, used))) => used,
            _ => match redis_protocol::resp3::decode::complete::decode(rest) {
                Ok(Some((_, used))) => used,
                other => panic!("invalid reply {:?}: {:?}", other.map(|_| ()), &rest[..rest.len().min(80)]),
            },
        };
        rest = &rest[used..];
    }
});
