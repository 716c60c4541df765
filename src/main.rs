//! Berth: a durable, Redis-compatible server for background-job systems.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use clap::Parser as _;

use berth::config::{Args, Config};
use berth::protocol::request::Limits;
use berth::server::core::World;
use berth::server::net::{serve, Shared};
use berth::server::ToCore;

fn main() {
    let args = Args::parse();
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth: {e}");
            std::process::exit(1);
        }
    };
    init_logging(config.get("loglevel"));
    let addr = format!("{}:{}", config.get("bind"), config.get("port"));
    let limits = Limits {
        max_bulk_len: config.get_i64("proto-max-bulk-len"),
        ..Limits::default()
    };
    let maxclients = config.get_i64("maxclients").max(1) as usize;

    // One thread owns the keyspace and runs, on a single-threaded tokio runtime, the core task
    // and every connection task (Redis's event loop). It builds the World there, since its Lua
    // state is not Send, and loads the store into it before anything listens, so no client sees
    // a half-loaded keyspace.
    let keyspace = std::thread::Builder::new()
        .name("keyspace".into())
        // Deep Lua tables (cjson nesting up to 1000) recurse in Rust on this thread.
        .stack_size(256 << 20)
        .spawn(move || run_keyspace(config, addr, limits, maxclients))
        .expect("spawn keyspace thread");
    let _ = keyspace.join();
    tracing::info!("berth is now ready to exit, bye bye");
}

fn run_keyspace(config: Config, addr: String, limits: Limits, maxclients: usize) {
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
    let mut world = world;
    tasks.block_on(&runtime, async move {
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {addr}: {e}");
                std::process::exit(1);
            }
        };
        tracing::info!(
            "berth {} ready to accept connections on {addr}",
            env!("CARGO_PKG_VERSION")
        );
        let (core_tx, core_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Rc::new(Shared {
            core: core_tx.clone(),
            next_id: AtomicU64::new(1),
            connected: AtomicUsize::new(0),
            maxclients,
            limits,
            durable,
            listener_fd: std::os::fd::AsRawFd::as_raw_fd(&listener),
        });
        world.net = Some(shared.clone());
        tokio::task::spawn_local(serve(listener, shared));
        tokio::task::spawn_local(async move {
            wait_for_signal().await;
            tracing::info!("received signal, shutting down");
            let _ = core_tx.send(ToCore::Shutdown);
        });
        let _ = tokio::task::spawn_local(world.run(core_rx)).await;
        if let Some((lock, committer, _)) = persistence {
            // The World is gone, so the committer drains, syncs and stops; the replies it held
            // are released as it publishes the final durable LSN.
            let _ = tokio::task::spawn_blocking(move || {
                let _ = committer.join();
                drop(lock);
            })
            .await;
        }
        // Give connection tasks a moment to write their last replies.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    });
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

fn init_logging(level: &str) {
    let filter = match level {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    let env = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{filter},fjall=warn,lsm_tree=warn,sled=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_writer(std::io::stderr)
        .init();
}
