//! Lists edited in the middle (LREM, LINSERT: only the shorter side's records are rewritten)
//! mixed with LPUSH/RPUSH/RPOP/LTRIM/LSET, several edits per loop turn (MULTI, pipelines),
//! checkpoints in between: after each SIGKILL or graceful restart every list reloads as a
//! model of the commands says, and the whole keyspace as it was before.

use std::collections::VecDeque;

use berth::persist::testkit::{dump, Berth, Conn, DataDir, V};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// Keys of the lists; the last one starts with 2,000 elements.
const KEYS: [&str; 4] = ["l0", "l1", "l2", "big"];

/// A value: mostly unique, sometimes one of a few repeated ones (LREM then removes several).
fn value(rng: &mut StdRng, n: &mut u64) -> String {
    *n += 1;
    if rng.gen_bool(0.2) {
        format!("d{}", rng.gen_range(0..3))
    } else {
        format!("v{n}")
    }
}

/// Redis's LTRIM index rules (`ltrimCommand`).
fn ltrim(l: &mut VecDeque<String>, start: i64, end: i64) {
    let len = l.len() as i64;
    let s = if start < 0 { len + start } else { start }.max(0);
    let e = if end < 0 { len + end } else { end };
    if s > e || s >= len {
        l.clear();
    } else {
        l.truncate(e.min(len - 1) as usize + 1);
        l.drain(..s as usize);
    }
}

fn lrem(l: &mut VecDeque<String>, count: i64, v: &str) {
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    let mut at: Vec<usize> = (0..l.len()).filter(|&i| l[i] == v).collect();
    if count < 0 {
        at.reverse();
    }
    at.truncate(limit);
    at.sort_unstable();
    for i in at.into_iter().rev() {
        l.remove(i);
    }
}

/// One random command on `key`, applied to its model `l`.
fn command(rng: &mut StdRng, key: &str, l: &mut VecDeque<String>, n: &mut u64) -> Vec<String> {
    let len = l.len();
    let some = |rng: &mut StdRng, n: &mut u64| {
        if len > 0 && rng.gen_bool(0.8) {
            l[rng.gen_range(0..len)].clone()
        } else {
            value(rng, n)
        }
    };
    let mut cmd: Vec<String> = match rng.gen_range(0..12) {
        0 | 1 => {
            let (a, b) = (value(rng, n), value(rng, n));
            l.push_front(a.clone());
            l.push_front(b.clone());
            vec!["LPUSH".into(), a, b]
        }
        2 => {
            let a = value(rng, n);
            l.push_back(a.clone());
            vec!["RPUSH".into(), a]
        }
        3 => {
            l.pop_back();
            vec!["RPOP".into()]
        }
        4 => {
            // Wide trims only on the small lists: the big one stays big.
            let (s, e) = if key == "big" || rng.gen_bool(0.8) {
                (rng.gen_range(0..3), rng.gen_range(-3..0))
            } else {
                (rng.gen_range(-60..60), rng.gen_range(-60..60))
            };
            ltrim(l, s, e);
            vec!["LTRIM".into(), s.to_string(), e.to_string()]
        }
        5 | 6 if len > 0 => {
            let i = rng.gen_range(-(len as i64)..len as i64);
            let v = value(rng, n);
            l[if i < 0 { len as i64 + i } else { i } as usize] = v.clone();
            vec!["LSET".into(), i.to_string(), v]
        }
        7..=9 => {
            let count = rng.gen_range(-2..=2);
            let v = some(rng, n);
            lrem(l, count, &v);
            vec!["LREM".into(), count.to_string(), v]
        }
        _ => {
            let (pivot, v, after) = (some(rng, n), value(rng, n), rng.gen_bool(0.5));
            if let Some(i) = l.iter().position(|x| *x == pivot) {
                l.insert(i + after as usize, v.clone());
            }
            let side = if after { "AFTER" } else { "BEFORE" };
            vec!["LINSERT".into(), side.into(), pivot, v]
        }
    };
    cmd.insert(1, key.to_string());
    cmd
}

fn send(c: &mut Conn, cmd: &[String]) {
    let args: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
    c.send(&args).unwrap();
}

fn reply_ok(c: &mut Conn, cmd: &[String]) {
    let r = c.read().unwrap();
    assert!(!matches!(r, V::Err(_)), "{cmd:?} -> {r:?}");
}

/// A round of batches: single commands, MULTI/EXEC blocks and pipelines, so one loop turn
/// often holds several edits of the same list.
fn round(c: &mut Conn, rng: &mut StdRng, model: &mut [VecDeque<String>], n: &mut u64) {
    for batch in 0..150 {
        let size = rng.gen_range(1..6);
        let cmds: Vec<Vec<String>> = (0..size)
            .map(|_| {
                let k = rng.gen_range(0..KEYS.len());
                command(rng, KEYS[k], &mut model[k], n)
            })
            .collect();
        if rng.gen_bool(0.3) {
            send(c, &["MULTI".into()]);
            cmds.iter().for_each(|cmd| send(c, cmd));
            send(c, &["EXEC".into()]);
            for _ in 0..=size {
                reply_ok(c, &["MULTI".into()]);
            }
            assert!(matches!(c.read().unwrap(), V::Arr(Some(_))));
        } else {
            cmds.iter().for_each(|cmd| send(c, cmd));
            cmds.iter().for_each(|cmd| reply_ok(c, cmd));
        }
        if batch % 50 == 49 && rng.gen_bool(0.5) {
            // Let a checkpoint (every second) take the journal so far into the store.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
    }
}

fn check(c: &mut Conn, model: &[VecDeque<String>], when: &str) {
    for (k, l) in KEYS.iter().zip(model) {
        let got = c.cmd(&["LRANGE", k, "0", "-1"]).unwrap().items();
        assert_eq!(got, Vec::from(l.clone()), "{k} {when}");
    }
}

fn edits_survive(engine: &str, seed: u64) {
    let dir = DataDir::new("le", engine);
    let extra = [
        "--storage-engine",
        engine,
        "--checkpoint-interval",
        "1",
        "--loglevel",
        "warning",
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = vec![VecDeque::new(); KEYS.len()];
    let mut n = 0;
    let mut s = Berth::start(BIN, &dir.0, &extra).unwrap();
    let mut c = Conn::connect(s.port).unwrap();
    let big: Vec<String> = (0..2000).map(|_| value(&mut rng, &mut n)).collect();
    let mut args = vec!["RPUSH", "big"];
    args.extend(big.iter().map(|s| s.as_str()));
    c.cmd(&args).unwrap();
    model[3].extend(big);
    for r in 0..8 {
        round(&mut c, &mut rng, &mut model, &mut n);
        check(&mut c, &model, &format!("before restart {r}"));
        let before = dump(&mut c, 1).unwrap();
        if r % 2 == 0 {
            s.kill9();
        } else {
            s.shutdown();
        }
        s = Berth::start(BIN, &dir.0, &extra).unwrap();
        c = Conn::connect(s.port).unwrap();
        let how = if r % 2 == 0 { "SIGKILL" } else { "restart" };
        check(&mut c, &model, &format!("after {how} {r}"));
        assert_eq!(before, dump(&mut c, 1).unwrap(), "after {how} {r}");
        let info = c.cmd(&["INFO", "persistence"]).unwrap().text();
        if r % 2 == 1 {
            // A graceful stop leaves no stray element records behind.
            assert!(info.contains("berth_load_garbage_records:0\r\n"), "{info}");
        }
    }
}

#[test]
fn middle_edits_survive_kills_and_restarts_fjall() {
    edits_survive("fjall", 1);
}

#[test]
fn middle_edits_survive_kills_and_restarts_sled() {
    edits_survive("sled", 2);
}
