//! Networking (tokio connection tasks) and the keyspace thread they talk to.

pub mod blocking;
pub mod client;
pub mod core;
pub mod discard;
pub mod dispatch;
pub mod maxmemory;
pub mod net;
pub mod output_limits;
pub mod pause;
pub mod pubsub;
pub mod tracking;

use std::net::SocketAddr;

use bytes::Bytes;
use std::rc::Rc;

pub type ClientId = u64;

/// Messages from connection tasks to the keyspace thread.
pub enum ToCore {
    Connected {
        id: ClientId,
        addr: SocketAddr,
        local: SocketAddr,
        out: Rc<net::Conn>,
    },
    /// Every command parsed from one read, in order; `error` is a protocol error that followed
    /// them (the connection is closed after its reply).
    Commands {
        id: ClientId,
        cmds: Vec<Vec<Bytes>>,
        error: Option<String>,
    },
    Closed {
        id: ClientId,
    },
    /// SIGTERM / SIGINT.
    Shutdown,
}

/// Messages from the keyspace thread to a connection task.
#[derive(Debug)]
pub enum Out {
    Data(Bytes),
    /// Write nothing more until this LSN is durable (persistence, `appendfsync always`).
    Hold(u64),
    /// Write what is queued, then close the connection.
    Close,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
