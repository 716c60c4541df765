//! Berth: a durable, Redis-compatible server for background-job systems.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

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

    let (core_tx, core_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    // The keyspace thread builds the World (its Lua state is not Send), locks the data directory
    // and opens the store, and reports back before anything listens; the store then loads in
    // the background while clients get -LOADING (persist/loading.rs).
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let loader_tx = core_tx.clone();
    let core = std::thread::Builder::new()
        .name("keyspace".into())
        // Deep Lua tables (cjson nesting up to 1000) recurse in Rust on this thread.
        .stack_size(256 << 20)
        .spawn(move || {
            let mut world = World::new(config);
            let persistence = if world.config.get("appendonly") == "no" {
                None
            } else {
                match berth::persist::open(&mut world, loader_tx) {
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
            let _ = ready_tx.send(durable);
            // A small store is loaded before anything is answered (no LOADING phase).
            world.persist_wait_loaded(std::time::Duration::from_millis(1000));
            world.run(core_rx);
            if let Some((_lock, committer, st)) = persistence {
                // The World is gone, so the committer drains, syncs and stops (bounded while
                // the store is failing).
                berth::persist::close(&committer, &st);
            }
            let _ = done_tx.send(());
        })
        .expect("spawn keyspace thread");
    let Ok(durable) = ready_rx.recv() else {
        std::process::exit(1);
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
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
        let shared = Arc::new(Shared {
            core: core_tx.clone(),
            next_id: AtomicU64::new(1),
            connected: AtomicUsize::new(0),
            maxclients,
            limits,
            durable,
        });
        tokio::spawn(serve(listener, shared));
        tokio::select! {
            _ = wait_for_signal() => {
                tracing::info!("received signal, shutting down");
                let _ = core_tx.send(ToCore::Shutdown);
            }
            _ = done_rx => {}
        }
        // Give connection tasks a moment to write their last replies.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    });
    let _ = core.join();
    tracing::info!("berth is now ready to exit, bye bye");
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
