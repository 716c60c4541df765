//! Connection tasks: read bytes, parse every complete command, hand them to the keyspace thread
//! as one message, and write back whatever it sends.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Out, ToCore};
use crate::protocol::request::{Limits, Parse, Parser};

pub struct Shared {
    pub core: Sender<ToCore>,
    pub next_id: AtomicU64,
    pub connected: AtomicUsize,
    pub maxclients: usize,
    pub limits: Limits,
    /// The durable LSN published by the committer (None without persistence).
    pub durable: Option<tokio::sync::watch::Receiver<u64>>,
}

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if shared.connected.fetch_add(1, Ordering::SeqCst) >= shared.maxclients {
                let mut s = stream;
                let _ = s.write_all(b"-ERR max number of clients reached\r\n").await;
            } else {
                connection(stream, addr, &shared).await;
            }
            shared.connected.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn connection(mut stream: TcpStream, addr: std::net::SocketAddr, shared: &Shared) {
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let local = stream.local_addr().unwrap_or(addr);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    if shared
        .core
        .send(ToCore::Connected {
            id,
            addr,
            local,
            out: out_tx,
        })
        .is_err()
    {
        return;
    }
    // Redis also caps request sizes before AUTH; here the keyspace thread enforces
    // authentication, and the parser applies only the general limits.
    let mut parser = Parser::new(true);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut reading = true;
    let mut durable = shared.durable.clone();
    loop {
        tokio::select! {
            read = stream.read_buf(&mut buf), if reading => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let (cmds, error) = parse_all(&mut parser, &mut buf, &shared.limits);
                        if error.is_some() {
                            reading = false;
                        }
                        if !cmds.is_empty() || error.is_some() {
                            let _ = shared.core.send(ToCore::Commands { id, cmds, error });
                        }
                        if buf.capacity() - buf.len() < 4096 {
                            buf.reserve(16 * 1024);
                        }
                    }
                }
            }
            out = out_rx.recv() => {
                match out {
                    Some(Out::Data(data)) => {
                        if !write_coalesced(&mut stream, data, &mut out_rx, &mut durable).await {
                            break;
                        }
                    }
                    Some(Out::Hold(lsn)) => wait_durable(&mut durable, lsn).await,
                    Some(Out::Close) | None => {
                        let _ = stream.flush().await;
                        break;
                    }
                }
            }
        }
    }
    let _ = shared.core.send(ToCore::Closed { id });
}

/// Waits until the committer has made `lsn` durable.
async fn wait_durable(durable: &mut Option<tokio::sync::watch::Receiver<u64>>, lsn: u64) {
    if let Some(rx) = durable {
        let _ = rx.wait_for(|d| *d >= lsn).await;
    }
}

/// Writes one chunk plus any chunks already queued behind it, in one syscall where possible.
async fn write_coalesced(
    stream: &mut TcpStream,
    first: bytes::Bytes,
    rx: &mut mpsc::UnboundedReceiver<Out>,
    durable: &mut Option<tokio::sync::watch::Receiver<u64>>,
) -> bool {
    let mut more = Vec::new();
    let mut close = false;
    let mut hold = None;
    while let Ok(next) = rx.try_recv() {
        match next {
            Out::Data(d) => more.push(d),
            Out::Hold(lsn) => {
                hold = Some(lsn);
                break;
            }
            Out::Close => {
                close = true;
                break;
            }
        }
    }
    let ok = if more.is_empty() {
        stream.write_all(&first).await.is_ok()
    } else {
        let mut all =
            BytesMut::with_capacity(first.len() + more.iter().map(|d| d.len()).sum::<usize>());
        all.extend_from_slice(&first);
        more.iter().for_each(|d| all.extend_from_slice(d));
        stream.write_all(&all).await.is_ok()
    };
    if let Some(lsn) = hold {
        wait_durable(durable, lsn).await;
    }
    ok && !close
}

fn parse_all(
    parser: &mut Parser,
    buf: &mut BytesMut,
    limits: &Limits,
) -> (Vec<Vec<bytes::Bytes>>, Option<String>) {
    let mut cmds = Vec::new();
    loop {
        match parser.parse(buf, limits) {
            Parse::Command(args) => {
                if !args.is_empty() {
                    cmds.push(args);
                }
            }
            Parse::Incomplete => return (cmds, None),
            Parse::Error(e) => return (cmds, Some(e)),
        }
    }
}
