//! Berth: a durable, Redis-compatible server for background-job systems.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;

use berth::config::{Args, Config};
use berth::protocol::request::Limits;
use berth::server::core::World;
use berth::server::net::{serve, Shared};
use berth::server::ToCore;

// The allocator: Berth allocates and frees many small buffers per request (arguments, replies,
// Lua strings), where glibc's malloc spent a third of a BullMQ worker load; Redis ships jemalloc
// for the same reason.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::from_command_line(std::env::args().collect());
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth: {e}");
            std::process::exit(1);
        }
    };
    if args.healthcheck {
        std::process::exit(healthcheck(&config));
    }
    if args.check_log {
        let dir = std::path::Path::new(config.get("dir"));
        match berth::persist::redo::check(dir, args.fix) {
            Ok(ok) => std::process::exit(if ok { 0 } else { 1 }),
            Err(e) => {
                eprintln!("berth: cannot check the log in {}: {e}", dir.display());
                std::process::exit(1);
            }
        }
    }
    if let Err(e) = init_logging(config.get("loglevel"), config.get("logfile")) {
        eprintln!("berth: {e}");
        std::process::exit(1);
    }
    // One thread owns the keyspace and runs, on a single-threaded tokio runtime, the core task
    // and every connection task (Redis's event loop). It builds the World there, since its Lua
    // state is not Send, and loads the store into it before anything listens, so no client sees
    // a half-loaded keyspace.
    let keyspace = std::thread::Builder::new()
        .name("keyspace".into())
        // Deep Lua tables (cjson nesting up to 1000) recurse in Rust on this thread.
        .stack_size(256 << 20)
        .spawn(move || run_keyspace(config))
        .expect("spawn keyspace thread");
    let _ = keyspace.join();
    tracing::info!("berth is now ready to exit, bye bye");
}

fn run_keyspace(config: Config) {
    let port = config.get_i64("port") as u16;
    let binds = bind_addresses(config.get("bind"));
    let limits = Limits {
        max_bulk_len: config.get_i64("proto-max-bulk-len"),
        ..Limits::default()
    };
    let mut world = World::new(config);
    let persistence = if world.config.get("appendonly") == "no" {
        None
    } else {
        match berth::persist::open(&mut world) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("berth: {e}");
                std::process::exit(1);
            }
        }
    };
    let durable = persistence
        .as_ref()
        .map(|(_, _, st)| st.durable.subscribe());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tasks = tokio::task::LocalSet::new();
    tasks.block_on(&runtime, async move {
        let listeners = listen_all(&binds, port).await;
        let (core_tx, core_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Rc::new(Shared {
            core: core_tx.clone(),
            next_id: AtomicU64::new(1),
            limits,
            releases: berth::server::net::Releases::new(durable.is_some()),
            durable,
            listener_fds: listeners.iter().map(|l| l.as_raw_fd()).collect(),
        });
        world.net = Some(shared.clone());
        // A small store is loaded before anything is answered (no LOADING phase); connections
        // made meanwhile wait in the listen backlog.
        world.persist_wait_loaded(std::time::Duration::from_millis(1000));
        for listener in listeners {
            tokio::task::spawn_local(serve(listener, shared.clone()));
        }
        tokio::task::spawn_local(berth::server::net::release_held(shared.clone()));
        tokio::task::spawn_local(async move {
            wait_for_signal().await;
            tracing::info!("received signal, shutting down");
            let _ = core_tx.send(ToCore::Shutdown);
        });
        let _ = tokio::task::spawn_local(world.run(core_rx)).await;
        if let Some((lock, committer, st)) = persistence {
            // The World is gone, so the committer drains, syncs and stops (bounded while the
            // store is failing); the replies it held are released as it publishes the final
            // durable LSN.
            let _ = tokio::task::spawn_blocking(move || {
                berth::persist::close(&committer, &st);
                drop(lock);
            })
            .await;
        }
        // Give connection tasks a moment to write their last replies.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    });
}

/// Every `bind` address; one marked `-` may be missing (Redis 7.0's `bind * -::*`).
async fn listen_all(binds: &[(String, bool)], port: u16) -> Vec<tokio::net::TcpListener> {
    let mut listeners = Vec::new();
    for (host, optional) in binds {
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        match listen(&addr).await {
            Ok(l) => {
                tracing::info!(
                    "berth {} ready to accept connections on {addr}",
                    env!("CARGO_PKG_VERSION")
                );
                listeners.push(l);
            }
            Err(e) if *optional => tracing::warn!("not listening on {addr}: {e}"),
            Err(e) => {
                tracing::error!("cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        }
    }
    if listeners.is_empty() {
        tracing::error!("no address to listen on");
        std::process::exit(1);
    }
    listeners
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Listens on one address. IPv6 sockets are IPv6-only (as Redis makes them), so `::` and
/// `0.0.0.0` can both be bound on one port.
async fn listen(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut resolved = tokio::net::lookup_host(addr).await?;
    let sa = resolved
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let socket = if sa.is_ipv6() {
        let s = tokio::net::TcpSocket::new_v6()?;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket descriptor and a c_int option value of the right size.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        s
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(sa)?;
    socket.listen(511)
}

/// `bind`'s addresses as Redis reads them: `*` is every IPv4 address, `::*` every IPv6 one,
/// and a leading `-` marks an address that may be unavailable.
fn bind_addresses(bind: &str) -> Vec<(String, bool)> {
    bind.split_whitespace()
        .map(|a| {
            let (a, optional) = match a.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (a, false),
            };
            let host = match a {
                "*" => "0.0.0.0",
                "::*" => "::",
                other => other,
            };
            (host.to_string(), optional)
        })
        .collect()
}

/// `--healthcheck`: PING the server the configuration describes, over its first bind address
/// (a wildcard address means loopback). Healthy: `+PONG`, or `-NOAUTH` (it answers, but wants a
/// password) or `-DENIED`... which loopback never gets.
fn healthcheck(config: &Config) -> i32 {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let port = config.get_i64("port") as u16;
    let host = match bind_addresses(config.get("bind")).first() {
        Some((h, _)) if h == "0.0.0.0" => "127.0.0.1".to_string(),
        Some((h, _)) if h == "::" => "::1".to_string(),
        Some((h, _)) => h.clone(),
        None => "127.0.0.1".to_string(),
    };
    let timeout = std::time::Duration::from_secs(3);
    let result = (|| -> std::io::Result<String> {
        let addr = (host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n") {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&got).trim_end().to_string())
    })();
    match result {
        Ok(line) if line == "+PONG" || line.starts_with("-NOAUTH") => {
            println!("{line}");
            0
        }
        Ok(line) => {
            println!("unhealthy: {host}:{port} answered {line:?}");
            1
        }
        Err(e) => {
            println!("unhealthy: {host}:{port}: {e}");
            1
        }
    }
}

/// Logs go to stderr, or appended to `logfile` when it is set (as Redis's `logfile`). The level
/// follows `loglevel`, also when CONFIG SET changes it (unless `BERTH_LOG` sets a filter).
fn init_logging(level: &str, logfile: &str) -> Result<(), String> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, reload, EnvFilter};
    let from_env = EnvFilter::try_from_env("BERTH_LOG").ok();
    let fixed = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(log_filter(level)));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    if logfile.is_empty() {
        registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .init();
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logfile)
            .map_err(|e| format!("Can't open the log file: {e}"))?;
        registry
            .with(
                fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(file)),
            )
            .init();
    }
    if !fixed {
        berth::config::set_loglevel_hook(Box::new(move |level| {
            let _ = handle.reload(EnvFilter::new(log_filter(level)));
        }));
    }
    Ok(())
}

fn log_filter(level: &str) -> String {
    let level = match level {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    format!("{level},fjall=warn,lsm_tree=warn,sled=warn")
}
