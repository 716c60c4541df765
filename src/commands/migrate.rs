//! MIGRATE (`migrateCommand` in Redis 7.0.15's `cluster.c`): DUMP each key, send RESTORE to the
//! target over a plain connection, delete the local key once the target acknowledged it (unless
//! COPY). Like Redis it waits for the target on the keyspace thread, bounded by the timeout.
//! Redis keeps a cached connection per target for 10 s; Berth connects for each call (and so
//! always sends SELECT).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;

use super::args::{is, syntax, NOT_INT, R};
use super::{Command, Ctx, Flags as F};
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;
use crate::rdb;

pub const MIGRATE: Command = Command::new("migrate", -6, F::WRITE, migrate)
    .keys_fn(3, 3, 1, migrate_keys)
    .doc(
        "generic",
        "Atomically transfer a key from a Redis instance to another one.",
        "host port key|\"\" destination-db timeout [COPY] [REPLACE] [AUTH password|AUTH2 username password] [KEYS key [key ...]]",
    );

/// `migrateGetKeys`: argv[3], or with an empty argv[3] everything after KEYS.
fn migrate_keys(argv: &[Bytes]) -> Vec<usize> {
    if argv.len() > 3 && argv[3].is_empty() {
        return match argv.iter().skip(6).position(|a| is(a, "keys")) {
            Some(p) => (p + 7..argv.len()).collect(),
            None => Vec::new(),
        };
    }
    vec![3]
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        bulk(out, a);
    }
}

fn migrate(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    migrate_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn migrate_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let (mut copy, mut replace) = (false, false);
    let (mut username, mut password): (Option<&Bytes>, Option<&Bytes>) = (None, None);
    let (mut first_key, mut num_keys) = (3, 1);
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if is(&argv[j], "copy") {
            copy = true;
        } else if is(&argv[j], "replace") {
            replace = true;
        } else if is(&argv[j], "auth") {
            if more == 0 {
                return syntax();
            }
            j += 1;
            password = Some(&argv[j]);
        } else if is(&argv[j], "auth2") {
            if more < 2 {
                return syntax();
            }
            username = Some(&argv[j + 1]);
            password = Some(&argv[j + 2]);
            j += 2;
        } else if is(&argv[j], "keys") {
            if !argv[3].is_empty() {
                return Err(Reply::err(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            first_key = j + 1;
            num_keys = argv.len() - j - 1;
            break;
        } else {
            return syntax();
        }
        j += 1;
    }
    let not_int = || Reply::err(NOT_INT);
    let timeout = parse_i64(&argv[5]).ok_or_else(not_int)?;
    let dbid = parse_i64(&argv[4]).ok_or_else(not_int)?;
    let timeout = if timeout <= 0 { 1000 } else { timeout };

    let o = super::dump::encode_options(ctx);
    let now = ctx.now;
    let mut keys: Vec<&Bytes> = Vec::new();
    let mut out = Vec::new();
    if let Some(p) = password {
        match username {
            Some(u) => command(&mut out, &[&b"AUTH"[..], u, p]),
            None => command(&mut out, &[&b"AUTH"[..], p]),
        }
    }
    command(&mut out, &[&b"SELECT"[..], dbid.to_string().as_bytes()]);
    let mut found = 0;
    for key in &argv[first_key..first_key + num_keys] {
        let db = ctx.db();
        let Some(e) = db.entry(key) else { continue };
        found += 1;
        let ttl = match e.expire_at {
            None => 0,
            Some(t) => (t - now).max(1),
        };
        let payload = rdb::dump(&e.value, &o);
        let ttl = ttl.to_string();
        let mut args: Vec<&[u8]> = vec![&b"RESTORE"[..], &key[..], ttl.as_bytes(), &payload[..]];
        if replace {
            args.push(&b"REPLACE"[..]);
        }
        command(&mut out, &args);
        keys.push(key);
    }
    if found == 0 {
        return Ok(Reply::Status("NOKEY".into()));
    }

    let timeout = Duration::from_millis(timeout as u64);
    let host = String::from_utf8_lossy(&argv[1]).into_owned();
    let port = String::from_utf8_lossy(&argv[2]).into_owned();
    // Redis connects without blocking and waits for the socket to be writable: a refused
    // connection shows up as a failed write, only a timeout (or an address that does not
    // resolve) as a failed connect.
    let write_err = || Reply::err("IOERR error or timeout writing to target instance");
    let connect_err = || Reply::err("IOERR error or timeout connecting to the client");
    let addr = port
        .parse::<u16>()
        .ok()
        .and_then(|p| (host.as_str(), p).to_socket_addrs().ok()?.next())
        .ok_or_else(connect_err)?;
    let mut sock = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(connect_err()),
        Err(_) => return Err(write_err()),
    };
    let setup = sock
        .set_read_timeout(Some(timeout))
        .and_then(|_| sock.set_write_timeout(Some(timeout)))
        .and_then(|_| sock.set_nodelay(true));
    if setup.is_err() {
        return Err(write_err());
    }
    if sock.write_all(&out).is_err() {
        return Err(write_err());
    }
    let mut reader = BufReader::new(match sock.try_clone() {
        Ok(s) => s,
        Err(_) => {
            return Err(Reply::err(
                "IOERR error or timeout reading to target instance",
            ))
        }
    });
    let mut read_line = || -> Option<String> {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        line.truncate(1023);
        Some(String::from_utf8_lossy(&line).into_owned())
    };
    let read_err = || Reply::err("IOERR error or timeout reading to target instance");
    let auth = match password {
        Some(_) => Some(read_line().ok_or_else(read_err)?),
        None => None,
    };
    let select = read_line().ok_or_else(read_err)?;
    let mut target_error: Option<Reply> = None;
    for key in keys {
        let Some(line) = read_line() else {
            if target_error.is_none() {
                return Err(read_err());
            }
            break;
        };
        let failed = [auth.as_deref(), Some(select.as_str()), Some(line.as_str())]
            .into_iter()
            .flatten()
            .find(|l| l.starts_with('-'));
        match failed {
            Some(e) => {
                if target_error.is_none() {
                    target_error = Some(Reply::err(format!(
                        "ERR Target instance replied with error: {}",
                        &e[1..]
                    )));
                }
            }
            None => {
                if !copy && ctx.db().remove_live(key) {
                    ctx.modified(key);
                }
            }
        }
    }
    match target_error {
        Some(e) => Err(e),
        None => Ok(Reply::ok()),
    }
}
