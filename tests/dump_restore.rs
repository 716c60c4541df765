//! DUMP payloads cross both ways between a real `redis-server` (7.0.15) and Berth: every type,
//! in its small and its large encoding, is created on both, DUMPed on one and RESTOREd on the
//! other, and the values compared; payloads of values built the same way must be the same
//! bytes where Redis's output is deterministic; a restored key survives a Berth restart; MIGRATE
//! moves keys each way. Skipped (with a message) when `redis-server` is not on PATH.

use berth::persist::testkit::{start_redis, Berth, Conn, DataDir, V};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn ok(c: &mut Conn, args: &[&str]) {
    let r = c.cmd(args).expect("reply");
    assert!(!matches!(r, V::Err(_)), "{args:?} -> {r:?}");
}

/// The same data on a server: every type, small and large encodings.
fn fill(c: &mut Conn) {
    ok(c, &["SET", "str:short", "hello"]);
    ok(c, &["SET", "str:int", "12345"]);
    ok(c, &["SET", "str:bigint", "-9223372036854775808"]);
    ok(c, &["SET", "str:lzf", &"abcabcabc".repeat(50)]);
    ok(c, &["SET", "str:raw", "x7$Qz!pL0@mK#2vN^8bR&4wT*6yU(1eA)"]);
    ok(c, &["SET", "str:binary", "\u{0}\u{1}\u{ff}"]);
    ok(c, &["SET", "str:ttl", "v", "PX", "100000000"]);
    ok(
        c,
        &["RPUSH", "list:small", "a", "1", "-20000", "3000000000", ""],
    );
    let mut big = vec!["RPUSH".to_string(), "list:big".into()];
    for i in 0..3000 {
        big.push(if i % 3 == 0 {
            i.to_string()
        } else {
            format!("element-{i}-{}", "z".repeat(i % 90))
        });
    }
    ok(c, &big.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    ok(
        c,
        &["HSET", "hash:small", "f1", "v1", "f2", "200", "f3", ""],
    );
    let mut big = vec!["HSET".to_string(), "hash:big".into()];
    for i in 0..300 {
        big.push(format!("field{i}"));
        big.push(format!("value{}", i * 7));
    }
    ok(c, &big.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    ok(c, &["HSET", "hash:longvalue", "f", &"v".repeat(100)]);
    ok(
        c,
        &["SADD", "set:ints", "1", "2", "-3", "70000", "9000000000"],
    );
    ok(c, &["SADD", "set:strings", "a", "b", "1"]);
    let mut big = vec!["SADD".to_string(), "set:bigints".into()];
    big.extend((0..600).map(|i| (i * 3).to_string()));
    ok(c, &big.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    ok(
        c,
        &[
            "ZADD",
            "zset:small",
            "1",
            "a",
            "2.5",
            "b",
            "-3",
            "c",
            "inf",
            "d",
            "0.1",
            "e",
        ],
    );
    let mut big = vec!["ZADD".to_string(), "zset:big".into()];
    for i in 0..200 {
        big.push(format!("{}", i as f64 / 7.0));
        big.push(format!("member{i}"));
    }
    ok(c, &big.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    ok(c, &["ZADD", "zset:longmember", "1", &"m".repeat(100)]);
    for i in 1..=5 {
        ok(
            c,
            &[
                "XADD",
                "stream:small",
                &format!("{i}-1"),
                "a",
                &i.to_string(),
                "b",
                "x",
            ],
        );
    }
    ok(c, &["XADD", "stream:small", "9-0", "other", "fields"]);
    ok(c, &["XGROUP", "CREATE", "stream:small", "g1", "0"]);
    ok(c, &["XGROUP", "CREATE", "stream:small", "g2", "$"]);
    ok(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "stream:small",
            ">",
        ],
    );
    ok(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "1",
            "STREAMS",
            "stream:small",
            ">",
        ],
    );
    ok(
        c,
        &["XGROUP", "CREATECONSUMER", "stream:small", "g1", "carol"],
    );
    ok(c, &["XDEL", "stream:small", "2-1"]);
    for i in 1..=700 {
        let f = if i % 50 == 0 { "odd" } else { "field" };
        ok(
            c,
            &[
                "XADD",
                "stream:big",
                &format!("{i}-0"),
                f,
                &"v".repeat(i % 40),
                "n",
                &i.to_string(),
            ],
        );
    }
    ok(c, &["XGROUP", "CREATE", "stream:big", "g", "0"]);
    ok(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "COUNT",
            "300",
            "STREAMS",
            "stream:big",
            ">",
        ],
    );
    ok(c, &["XACK", "stream:big", "g", "5-0", "6-0"]);
    ok(c, &["XADD", "stream:empty", "1-1", "f", "v"]);
    ok(c, &["XDEL", "stream:empty", "1-1"]);
}

/// The keys `fill` creates, and whether Redis's DUMP of each is deterministic (no hash-table
/// order, no times), so Berth's must be the same bytes.
const KEYS: &[(&str, bool)] = &[
    ("str:short", true),
    ("str:int", true),
    ("str:bigint", true),
    ("str:lzf", true),
    ("str:raw", true),
    ("str:binary", true),
    ("str:ttl", true),
    ("list:small", true),
    ("list:big", true),
    ("hash:small", true),
    ("hash:big", false),
    ("hash:longvalue", false),
    ("set:ints", true),
    ("set:strings", false),
    ("set:bigints", false),
    ("zset:small", true),
    ("zset:big", false),
    ("zset:longmember", false),
    ("stream:small", false),
    ("stream:big", false),
    ("stream:empty", true),
];

fn strip_idle(v: &V) -> V {
    // XINFO/XPENDING idle times and seen times differ by when they are read.
    match v {
        V::Arr(Some(a)) => {
            let mut out = Vec::new();
            let mut i = 0;
            while i < a.len() {
                let name = a[i].text();
                if matches!(
                    name.as_str(),
                    "idle" | "seen-time" | "delivery-time" | "inactive"
                ) && i + 1 < a.len()
                {
                    i += 2;
                    continue;
                }
                out.push(strip_idle(&a[i]));
                i += 1;
            }
            V::Arr(Some(out))
        }
        other => other.clone(),
    }
}

/// A server-independent view of a key's value.
fn view(c: &mut Conn, key: &str) -> Vec<String> {
    let t = c.cmd(&["TYPE", key]).unwrap().text();
    let mut out = vec![t.clone()];
    let sorted = |r: V| {
        let mut items = r.items();
        items.sort();
        items.join(",")
    };
    match t.as_str() {
        "string" => out.push(c.cmd(&["GET", key]).unwrap().text()),
        "list" => out.push(c.cmd(&["LRANGE", key, "0", "-1"]).unwrap().text()),
        "hash" => {
            let r = c.cmd(&["HGETALL", key]).unwrap().items();
            let mut pairs: Vec<String> = r.chunks(2).map(|p| p.join("=")).collect();
            pairs.sort();
            out.push(pairs.join(","));
        }
        "set" => out.push(sorted(c.cmd(&["SMEMBERS", key]).unwrap())),
        "zset" => out.push(
            c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"])
                .unwrap()
                .text(),
        ),
        "stream" => {
            out.push(format!("{:?}", c.cmd(&["XRANGE", key, "-", "+"]).unwrap()));
            let info = c.cmd(&["XINFO", "STREAM", key, "FULL"]).unwrap();
            // The node layout (radix-tree-*) may differ after deletions; the rest must not.
            let mut info = strip_idle(&info);
            if let V::Arr(Some(a)) = &mut info {
                let mut i = 0;
                while i + 1 < a.len() {
                    if a[i].text().starts_with("radix-tree") {
                        a.drain(i..i + 2);
                    } else {
                        i += 2;
                    }
                }
            }
            out.push(format!("{info:?}"));
        }
        other => panic!("type {other}"),
    }
    let ttl = c.cmd(&["PTTL", key]).unwrap().int();
    out.push(if ttl > 0 {
        "ttl".into()
    } else {
        ttl.to_string()
    });
    out
}

fn dump_of(c: &mut Conn, key: &str) -> Vec<u8> {
    match c.cmd(&["DUMP", key]).unwrap() {
        V::Bulk(Some(b)) => b,
        other => panic!("DUMP {key}: {other:?}"),
    }
}

fn restore(c: &mut Conn, key: &str, payload: &[u8], ttl: i64) {
    let ttl = ttl.to_string();
    let r = c
        .cmd_bin(&[
            b"RESTORE",
            key.as_bytes(),
            ttl.as_bytes(),
            payload,
            b"REPLACE",
        ])
        .unwrap();
    assert_eq!(r, V::Str("OK".into()), "RESTORE {key}");
}

fn pttl(c: &mut Conn, key: &str) -> i64 {
    c.cmd(&["PTTL", key]).unwrap().int().max(0)
}

#[test]
fn payloads_cross_both_ways() {
    let Some(redis) = start_redis() else {
        eprintln!("skipped: redis-server is not on PATH (or did not start)");
        return;
    };
    let dir = DataDir::new("dr", "cross");
    let mut berth = Berth::start(BIN, &dir.0, &["--loglevel", "warning"]).unwrap();
    let mut r = Conn::connect(redis.port).unwrap();
    let mut b = Conn::connect(berth.port).unwrap();
    fill(&mut r);
    fill(&mut b);
    let mut identical = 0;
    for (key, deterministic) in KEYS {
        let from_redis = dump_of(&mut r, key);
        let from_berth = dump_of(&mut b, key);
        if *deterministic {
            assert_eq!(
                from_berth, from_redis,
                "DUMP {key}: Berth's bytes differ from Redis's"
            );
            identical += 1;
        }
        // Redis -> Berth
        let copy = format!("fromredis:{key}");
        restore(&mut b, &copy, &from_redis, pttl(&mut r, key));
        assert_eq!(
            view(&mut b, &copy),
            view(&mut r, key),
            "Redis -> Berth: {key}"
        );
        // Berth -> Redis
        let copy = format!("fromberth:{key}");
        restore(&mut r, &copy, &from_berth, pttl(&mut b, key));
        assert_eq!(
            view(&mut r, &copy),
            view(&mut b, key),
            "Berth -> Redis: {key}"
        );
        // Berth's DUMP of what it restored from Redis restores into Redis again.
        let again = dump_of(&mut b, &format!("fromredis:{key}"));
        restore(&mut r, "roundtrip", &again, 0);
        assert_eq!(
            view(&mut r, "roundtrip")[..2],
            view(&mut r, key)[..2],
            "round trip: {key}"
        );
    }
    assert!(identical >= 12);

    // Restored keys are written through change capture: they survive a restart.
    let before: Vec<Vec<String>> = KEYS
        .iter()
        .map(|(k, _)| view(&mut b, &format!("fromredis:{k}")))
        .collect();
    drop(b);
    berth.shutdown();
    let berth = Berth::start(BIN, &dir.0, &["--loglevel", "warning"]).unwrap();
    let mut b = Conn::connect(berth.port).unwrap();
    for ((k, _), want) in KEYS.iter().zip(before) {
        assert_eq!(
            view(&mut b, &format!("fromredis:{k}")),
            want,
            "after restart: {k}"
        );
    }

    // MIGRATE each way (Berth's MIGRATE sends to Redis; Redis's to Berth).
    let rp = redis.port.to_string();
    let bp = berth.port.to_string();
    ok(&mut b, &["RPUSH", "mig:list", "a", "b", "c"]);
    ok(&mut b, &["SET", "mig:str", "v", "EX", "1000"]);
    let want = view(&mut b, "mig:list");
    let reply = b
        .cmd(&[
            "MIGRATE",
            "127.0.0.1",
            &rp,
            "",
            "0",
            "5000",
            "KEYS",
            "mig:list",
            "mig:str",
        ])
        .unwrap();
    assert_eq!(reply, V::Str("OK".into()));
    assert_eq!(b.cmd(&["EXISTS", "mig:list", "mig:str"]).unwrap().int(), 0);
    assert_eq!(view(&mut r, "mig:list"), want);
    assert!(pttl(&mut r, "mig:str") > 990_000);
    let reply = b
        .cmd(&[
            "MIGRATE",
            "127.0.0.1",
            &rp,
            "str:short",
            "0",
            "5000",
            "COPY",
        ])
        .unwrap();
    assert!(
        matches!(reply, V::Err(ref e) if e.starts_with("ERR Target instance replied with error: BUSYKEY")),
        "{reply:?}"
    );
    let reply = r
        .cmd(&["MIGRATE", "127.0.0.1", &bp, "mig:list", "0", "5000"])
        .unwrap();
    assert_eq!(reply, V::Str("OK".into()));
    assert_eq!(view(&mut b, "mig:list"), want);
}
