//! Per-connection state, owned by the keyspace thread (as Redis keeps `client` structs).

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use std::rc::Rc;

use super::net::Conn;
use super::{ClientId, Out};
use crate::commands::BlockRequest;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
    SkipNext,
}

/// SCRIPT DEBUG YES (`Fork`: Redis forks; Berth discards the changes) or SYNC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LuaDebug {
    Fork,
    Sync,
}

pub struct Blocked {
    pub argv: Vec<Bytes>,
    pub db: usize,
    pub req: BlockRequest,
}

pub struct Client {
    pub id: ClientId,
    pub addr: SocketAddr,
    pub local: SocketAddr,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    pub created: i64,
    pub last_active: i64,
    pub last_cmd: &'static str,
    pub out: BytesMut,
    pub sender: Rc<Conn>,
    /// Commands received but not yet run (behind a blocked command).
    pub pending: VecDeque<Vec<Bytes>>,
    /// Protocol error to report once `pending` is drained; then the connection closes.
    pub pending_error: Option<String>,
    pub blocked: Option<Blocked>,
    pub multi: Option<Vec<Vec<Bytes>>>,
    pub multi_failed: bool,
    pub watched: Vec<(usize, Bytes)>,
    pub watch_dirty: bool,
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    /// Shard channels (SSUBSCRIBE).
    pub shard_channels: HashSet<Bytes>,
    pub reply_mode: ReplyMode,
    pub monitor: bool,
    pub closing: bool,
    /// Unix second the output first passed the soft output buffer limit (output_limits.rs).
    pub obuf_soft_since: Option<i64>,
    pub no_evict: bool,
    /// CLIENT TRACKING on (None: off).
    pub tracking: Option<Box<super::tracking::ClientTracking>>,
    /// SCRIPT DEBUG YES/SYNC: the next EVAL runs under the Lua debugger.
    pub lua_debug: Option<LuaDebug>,
}

impl Client {
    pub fn new(
        id: ClientId,
        addr: SocketAddr,
        local: SocketAddr,
        sender: Rc<Conn>,
        now: i64,
        authenticated: bool,
    ) -> Client {
        Client {
            id,
            addr,
            local,
            name: None,
            lib_name: None,
            lib_ver: None,
            db: 0,
            resp3: false,
            authenticated,
            created: now,
            last_active: now,
            last_cmd: "NULL",
            out: BytesMut::new(),
            sender,
            pending: VecDeque::new(),
            pending_error: None,
            blocked: None,
            multi: None,
            multi_failed: false,
            watched: Vec::new(),
            watch_dirty: false,
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard_channels: HashSet::new(),
            reply_mode: ReplyMode::On,
            monitor: false,
            closing: false,
            obuf_soft_since: None,
            no_evict: false,
            tracking: None,
            lua_debug: None,
        }
    }

    /// Every subscription, shard channels included: non-zero is Redis's CLIENT_PUBSUB (the
    /// RESP2 subscribed context, `P` in CLIENT LIST).
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// Channels and patterns (`clientSubscriptionsCount`, what (P)SUBSCRIBE frames count).
    pub fn channel_subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Hands queued output to the connection task.
    pub fn flush(&mut self) {
        if !self.out.is_empty() {
            let data = self.out.split().freeze();
            self.sender.send(Out::Data(data));
        }
    }

    /// `flags=` in CLIENT LIST.
    pub fn flags(&self) -> String {
        let mut f = String::new();
        if self.blocked.is_some() {
            f.push('b');
        }
        if self.watch_dirty {
            f.push('d');
        }
        if self.multi.is_some() {
            f.push('x');
        }
        if self.subscriptions() > 0 {
            f.push('P');
        }
        if self.monitor {
            f.push('O');
        }
        if self.no_evict {
            f.push('e');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }
}
