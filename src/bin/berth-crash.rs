//! Crash suite: clients do acknowledged writes of every kind, berth is SIGKILLed at a random
//! moment, restarted, and every acknowledged write must be there, no MULTI half-applied, TTLs
//! still set, and nothing FLUSHDB removed may come back.
//!
//! `berth-crash [--berth PATH] [--engine fjall|sled] [--trials N] [--clients N] [--dir DIR]
//!  [--max-ms MS] [--appendfsync always] [--checkpoint-interval S]`
//!
//! Without `--checkpoint-interval`, odd trials checkpoint every second and even ones every
//! 10 s; `--checkpoint-interval 1` makes most trials cross a checkpoint (and a log rotation).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth::persist::testkit::{Berth, Conn, V};
use rand::Rng;

#[derive(Default, Clone)]
struct Model {
    /// RPUSHed values acknowledged, and how many LPOPs were acknowledged.
    pushed: Vec<u64>,
    popped: usize,
    incr: i64,
    hfields: Vec<u64>,
    zmembers: Vec<u64>,
    smembers: Vec<u64>,
    multi: i64,
    ttl_set: Vec<u64>,
    /// Its own database (2 + id): keys set since the last acknowledged FLUSHDB; keys removed by it.
    live: HashSet<u64>,
    flushed: HashSet<u64>,
    /// The list edited in the middle (LREM, LINSERT, LSET, LPUSH, RPOP), and what it would be
    /// if the edit in flight happened.
    edited: Vec<String>,
    edited_next: Vec<String>,
    /// The operation in flight when the server died (kind, n): it may or may not have happened.
    inflight: Option<(u8, u64)>,
    acked: u64,
}

const KINDS: u8 = 10;

fn run_client(port: u16, id: usize, stop: Arc<AtomicBool>, start_n: u64, m: &mut Model) {
    let Ok(mut c) = Conn::connect(port) else {
        return;
    };
    let Ok(mut c3) = Conn::connect(port) else {
        return;
    };
    if c3.cmd(&["SELECT", &(2 + id).to_string()]).is_err() {
        return;
    }
    let mut n = start_n;
    let mut rng = rand::thread_rng();
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let kind = rng.gen_range(0..KINDS);
        m.inflight = Some((kind, n));
        let ns = n.to_string();
        let q = format!("q:{id}");
        let r: std::io::Result<()> = (|| {
            match kind {
                0 => {
                    c.cmd(&["RPUSH", &q, &ns])?;
                    m.pushed.push(n);
                }
                1 => {
                    let r = c.cmd(&["LPOP", &q])?;
                    if let V::Bulk(Some(_)) = r {
                        m.popped += 1;
                    }
                }
                2 => m.incr = c.cmd(&["INCR", &format!("c:{id}")])?.int(),
                3 => {
                    c.cmd(&["HSET", &format!("h:{id}"), &format!("f{n}"), &ns])?;
                    m.hfields.push(n);
                }
                4 => {
                    c.cmd(&["ZADD", &format!("z:{id}"), &ns, &format!("m{n}")])?;
                    m.zmembers.push(n);
                }
                5 => {
                    c.cmd(&["SADD", &format!("s:{id}"), &ns])?;
                    m.smembers.push(n);
                }
                6 => {
                    c.send(&["MULTI"])?;
                    c.send(&["INCR", &format!("a:{id}")])?;
                    c.send(&["RPUSH", &format!("ml:{id}"), &ns])?;
                    c.send(&["INCR", &format!("b:{id}")])?;
                    c.send(&["EXEC"])?;
                    for _ in 0..4 {
                        c.read()?;
                    }
                    if let V::Arr(Some(_)) = c.read()? {
                        m.multi += 1;
                    }
                }
                7 => {
                    c.cmd(&["SET", &format!("t:{id}:{n}"), &ns, "EX", "100000"])?;
                    m.ttl_set.push(n);
                }
                9 => {
                    let (args, next) = middle_edit(&mut rng, &m.edited, n);
                    m.edited_next = next;
                    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
                    let mut full = args[..1].to_vec();
                    let key = format!("e:{id}");
                    full.push(&key);
                    full.extend(&args[1..]);
                    c.cmd(&full)?;
                    m.edited = m.edited_next.clone();
                }
                _ => {
                    if n.is_multiple_of(7) {
                        c3.cmd(&["FLUSHDB"])?;
                        m.flushed.extend(m.live.drain());
                    } else {
                        c3.cmd(&["SET", &format!("g:{id}:{n}"), &ns])?;
                        m.live.insert(n);
                    }
                }
            }
            Ok(())
        })();
        if r.is_err() {
            return;
        }
        m.inflight = None;
        m.acked += 1;
    }
}

fn check(port: u16, id: usize, m: &Model) -> Result<(), String> {
    let mut c = Conn::connect(port).map_err(|e| e.to_string())?;
    let inflight = |k: u8| m.inflight.filter(|f| f.0 == k).map(|f| f.1);
    let err = |what: &str, detail: String| Err(format!("client {id}: {what}: {detail}"));
    let q = c
        .cmd(&["LRANGE", &format!("q:{id}"), "0", "-1"])
        .map_err(|e| e.to_string())?
        .items();
    let expect: Vec<String> = m.pushed[m.popped..].iter().map(|n| n.to_string()).collect();
    let mut ok = q == expect;
    if let Some(n) = inflight(0) {
        let mut e2 = expect.clone();
        e2.push(n.to_string());
        ok |= q == e2;
    }
    if inflight(1).is_some() && !expect.is_empty() {
        ok |= q[..] == expect[1..];
    }
    if !ok {
        return err("list", format!("expected {expect:?} got {q:?}"));
    }
    let e = c
        .cmd(&["LRANGE", &format!("e:{id}"), "0", "-1"])
        .map_err(|e| e.to_string())?
        .items();
    if e != m.edited && !(inflight(9).is_some() && e == m.edited_next) {
        return err(
            "middle-edited list",
            format!("expected {:?} got {e:?}", m.edited),
        );
    }
    let v = c
        .cmd(&["GET", &format!("c:{id}")])
        .map_err(|e| e.to_string())?;
    let got = if v == V::Bulk(None) { 0 } else { v.int() };
    if !(got == m.incr || (inflight(2).is_some() && got == m.incr + 1)) {
        return err("counter", format!("acked {} got {got}", m.incr));
    }
    for (key, kind, list, cmd) in [
        (format!("h:{id}"), 3u8, &m.hfields, "HLEN"),
        (format!("z:{id}"), 4, &m.zmembers, "ZCARD"),
        (format!("s:{id}"), 5, &m.smembers, "SCARD"),
    ] {
        let n = c.cmd(&[cmd, &key]).map_err(|e| e.to_string())?.int();
        let want = list.len() as i64;
        if !(n == want || (inflight(kind).is_some() && n == want + 1)) {
            return err(cmd, format!("acked {want} got {n}"));
        }
    }
    let h = c
        .cmd(&["HKEYS", &format!("h:{id}")])
        .map_err(|e| e.to_string())?
        .items();
    let want: Vec<String> = m.hfields.iter().map(|n| format!("f{n}")).collect();
    if h[..want.len().min(h.len())] != want[..] {
        return err("hash order", format!("{h:?} vs {want:?}"));
    }
    let a = c
        .cmd(&["GET", &format!("a:{id}")])
        .map_err(|e| e.to_string())?;
    let b = c
        .cmd(&["GET", &format!("b:{id}")])
        .map_err(|e| e.to_string())?;
    let ml = c
        .cmd(&["LLEN", &format!("ml:{id}")])
        .map_err(|e| e.to_string())?
        .int();
    let (a, b) = (
        if a == V::Bulk(None) { 0 } else { a.int() },
        if b == V::Bulk(None) { 0 } else { b.int() },
    );
    if a != b || a != ml {
        return err("MULTI half-applied", format!("a={a} b={b} list={ml}"));
    }
    if !(a == m.multi || (inflight(6).is_some() && a == m.multi + 1)) {
        return err("MULTI lost", format!("acked {} got {a}", m.multi));
    }
    for n in &m.ttl_set {
        let t = c
            .cmd(&["TTL", &format!("t:{id}:{n}")])
            .map_err(|e| e.to_string())?
            .int();
        if t <= 0 {
            return err("TTL", format!("t:{id}:{n} ttl {t}"));
        }
    }
    c.cmd(&["SELECT", &(2 + id).to_string()])
        .map_err(|e| e.to_string())?;
    for n in &m.live {
        let v = c
            .cmd(&["EXISTS", &format!("g:{id}:{n}")])
            .map_err(|e| e.to_string())?
            .int();
        // A FLUSHDB in flight (kind 8) may have removed it.
        if v != 1 && inflight(8).is_none() {
            return err("db3 key lost", format!("g:{id}:{n}"));
        }
    }
    for n in &m.flushed {
        let v = c
            .cmd(&["EXISTS", &format!("g:{id}:{n}")])
            .map_err(|e| e.to_string())?
            .int();
        if v != 0 {
            return err("FLUSHDB undone", format!("g:{id}:{n} came back"));
        }
    }
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut bin = "./target/debug/berth".to_string();
    let mut engine = "fjall".to_string();
    let mut trials = 5;
    let mut clients = 8;
    let mut dir = String::new();
    let mut max_ms = 1500u64;
    let mut fsync = "always".to_string();
    let mut checkpoint_interval = String::new();
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--berth" => bin = v,
            "--engine" => engine = v,
            "--trials" => trials = v.parse().expect("trials"),
            "--clients" => clients = v.parse().expect("clients"),
            "--dir" => dir = v,
            "--max-ms" => max_ms = v.parse().expect("ms"),
            "--appendfsync" => fsync = v,
            "--checkpoint-interval" => checkpoint_interval = v,
            _ => panic!("unknown option {a}"),
        }
    }
    assert!(
        clients <= 14,
        "at most 14 clients (each flushes its own database)"
    );
    if dir.is_empty() {
        dir = std::env::temp_dir()
            .join(format!("berth-crash-{engine}-{}", std::process::id()))
            .to_string_lossy()
            .into_owned();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let extra = [
        "--storage-engine",
        &engine,
        "--appendfsync",
        &fsync,
        "--loglevel",
        "warning",
    ];
    let mut models: Vec<Model> = vec![Model::default(); clients];
    let mut rng = rand::thread_rng();
    let mut total_acked = 0;
    let mut failures = 0;
    for trial in 0..trials {
        // By default odd trials checkpoint every second, so kills also land during and between
        // checkpoints; even ones (10 s) crash with everything since the start in the redo log.
        let interval = match checkpoint_interval.as_str() {
            "" if trial % 2 == 1 => "1",
            "" => "10",
            fixed => fixed,
        };
        let mut extra = extra.to_vec();
        extra.extend(["--checkpoint-interval", interval]);
        let mut server = Berth::start(&bin, &dir, &extra).expect("start berth");
        let stop = Arc::new(AtomicBool::new(false));
        let port = server.port;
        let handles: Vec<_> = models
            .drain(..)
            .enumerate()
            .map(|(id, mut m)| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let start = (trial as u64) << 32;
                    run_client(port, id, stop, start, &mut m);
                    m
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..=max_ms)));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        models = handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect();
        let server = Berth::start(&bin, &dir, &extra).expect("restart berth");
        let acked: u64 = models.iter().map(|m| m.acked).sum();
        let mut bad = Vec::new();
        for (id, m) in models.iter().enumerate() {
            if let Err(e) = check(server.port, id, m) {
                bad.push(e);
            }
        }
        // An operation in flight at the kill either happened or not: read which.
        for (id, m) in models.iter_mut().enumerate() {
            if let Err(e) = resolve(server.port, id, m) {
                bad.push(format!("client {id}: resolving: {e}"));
            }
        }
        println!(
            "trial {trial}: {} acknowledged writes so far, {} problems",
            acked - total_acked,
            bad.len()
        );
        total_acked = acked;
        for b in &bad {
            println!("  {b}");
        }
        failures += bad.len();
        drop(server);
    }
    println!(
        "{engine}: {trials} trials, {clients} clients, {total_acked} acknowledged writes, \
         {failures} problems"
    );
    let _ = std::fs::remove_dir_all(&dir);
    if failures > 0 {
        std::process::exit(1);
    }
}

/// A random edit of the list `list` (the command without its key) and the list after it:
/// mostly BullMQ's pattern (LPUSH a job id, LREM -1 one of them, anywhere in the list), with
/// LINSERT, LSET, RPOP and repeated values removed all at once (LREM 0), up to ~300 elements.
fn middle_edit(rng: &mut impl Rng, list: &[String], n: u64) -> (Vec<String>, Vec<String>) {
    let mut next = list.to_vec();
    let ns = n.to_string();
    let pick = |rng: &mut dyn rand::RngCore| list[rng.gen_range(0..list.len())].clone();
    let args: Vec<String> = match rng.gen_range(0..10) {
        _ if list.len() < 20 => {
            next.insert(0, ns.clone());
            vec!["LPUSH".into(), ns]
        }
        0..=2 if list.len() < 300 => {
            next.insert(0, ns.clone());
            vec!["LPUSH".into(), ns]
        }
        0..=4 => {
            let v = pick(rng);
            let at = next.iter().rposition(|x| *x == v).expect("present");
            next.remove(at);
            vec!["LREM".into(), "-1".into(), v]
        }
        5 => {
            let v = pick(rng);
            let at = next.iter().position(|x| *x == v).expect("present");
            next.insert(at, ns.clone());
            vec!["LINSERT".into(), "BEFORE".into(), v, ns]
        }
        6 => {
            let i = rng.gen_range(0..list.len());
            next[i] = if rng.gen_bool(0.3) { "dup".into() } else { ns };
            vec!["LSET".into(), i.to_string(), next[i].clone()]
        }
        7 => {
            next.retain(|x| x != "dup");
            vec!["LREM".into(), "0".into(), "dup".into()]
        }
        _ => {
            next.pop();
            vec!["RPOP".into()]
        }
    };
    (args, next)
}

/// After a check, folds the in-flight operation's outcome (read back from the server) into the
/// model, so the next trial starts from what the server really holds.
fn resolve(port: u16, id: usize, m: &mut Model) -> std::io::Result<()> {
    let Some((kind, n)) = m.inflight.take() else {
        return Ok(());
    };
    let mut c = Conn::connect(port)?;
    let yes = |v: V| v.int() == 1;
    match kind {
        0 => {
            let last = c.cmd(&["LINDEX", &format!("q:{id}"), "-1"])?.text();
            if last == n.to_string() {
                m.pushed.push(n);
            }
        }
        1 => {
            let len = c.cmd(&["LLEN", &format!("q:{id}")])?.int() as usize;
            if len + m.popped < m.pushed.len() {
                m.popped += 1;
            }
        }
        2 => {
            let v = c.cmd(&["GET", &format!("c:{id}")])?;
            m.incr = if v == V::Bulk(None) { 0 } else { v.int() };
        }
        3 => {
            if yes(c.cmd(&["HEXISTS", &format!("h:{id}"), &format!("f{n}")])?) {
                m.hfields.push(n);
            }
        }
        4 => {
            if c.cmd(&["ZSCORE", &format!("z:{id}"), &format!("m{n}")])? != V::Bulk(None) {
                m.zmembers.push(n);
            }
        }
        5 => {
            if yes(c.cmd(&["SISMEMBER", &format!("s:{id}"), &n.to_string()])?) {
                m.smembers.push(n);
            }
        }
        6 => {
            let v = c.cmd(&["GET", &format!("a:{id}")])?;
            m.multi = if v == V::Bulk(None) { 0 } else { v.int() };
        }
        7 => {
            if yes(c.cmd(&["EXISTS", &format!("t:{id}:{n}")])?) {
                m.ttl_set.push(n);
            }
        }
        9 => {
            if c.cmd(&["LRANGE", &format!("e:{id}"), "0", "-1"])?.items() == m.edited_next {
                m.edited = m.edited_next.clone();
            }
        }
        _ => {
            c.cmd(&["SELECT", &(2 + id).to_string()])?;
            if n.is_multiple_of(7) {
                let mut gone = true;
                for k in &m.live {
                    gone &= !yes(c.cmd(&["EXISTS", &format!("g:{id}:{k}")])?);
                }
                if gone {
                    m.flushed.extend(m.live.drain());
                }
            } else if yes(c.cmd(&["EXISTS", &format!("g:{id}:{n}")])?) {
                m.live.insert(n);
            }
        }
    }
    Ok(())
}
