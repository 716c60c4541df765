//! Command handlers, grouped by data type, and the context they run in.
//!
//! Every handler has the signature `fn(&mut Ctx, &[Bytes]) -> Reply`; `argv[0]` is the command
//! name as the client sent it. Handlers run on the keyspace thread, one at a time.

pub mod args;
pub mod bits;
pub mod client;
pub mod client_tracking;
pub mod command_docs;
pub mod command_info;
pub mod command_keys;
pub mod config_cmd;
pub mod connection;
pub mod dump;
pub mod functions;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod info;
pub mod introspection;
pub mod keys;
pub mod lists;
pub mod lists_blocking;
pub mod lolwut;
pub mod migrate;
pub mod pubsub;
pub mod scripting;
pub mod scripting_debug;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod streams_groups;
pub mod streams_read;
pub mod strings;
pub mod table;
pub mod transactions;
pub mod zsets;
pub mod zsets_ranges;
pub mod zsets_store;

use bytes::Bytes;

use crate::db::Db;
use crate::protocol::Reply;
use crate::server::core::World;
use crate::server::ClientId;

pub use table::{Command, Flags};

pub type Handler = fn(&mut Ctx, &[Bytes]) -> Reply;

/// What a blocking command asks for when it finds nothing to serve yet.
#[derive(Debug, Clone)]
pub struct BlockRequest {
    pub keys: Vec<Bytes>,
    /// Absolute deadline in unix ms; None blocks forever.
    pub deadline: Option<i64>,
    /// Sent when the deadline passes.
    pub timeout_reply: Reply,
    /// The argv to re-run instead of the original one (XREAD with `$` resolved to an id).
    pub rerun_argv: Option<Vec<Bytes>>,
}

pub struct Ctx<'a> {
    pub w: &'a mut World,
    pub client: ClientId,
    pub db: usize,
    pub now: i64,
    pub resp3: bool,
    /// False inside MULTI/EXEC and scripts: blocking commands then answer at once.
    pub may_block: bool,
    /// Set by a blocking command that has to wait.
    pub block: Option<BlockRequest>,
}

impl<'a> Ctx<'a> {
    /// The selected database, with its clock set to this command's time.
    pub fn db(&mut self) -> &mut Db {
        let db = &mut self.w.keyspace.dbs[self.db];
        db.now = self.now;
        db
    }

    /// Another database (MOVE, COPY ... DB, SWAPDB), clock set likewise.
    pub fn db_at(&mut self, index: usize) -> &mut Db {
        let db = &mut self.w.keyspace.dbs[index];
        db.now = self.now;
        db
    }

    /// Records that `key` was written: invalidates WATCHes and counts a change.
    pub fn modified(&mut self, key: &[u8]) {
        self.w.key_modified(self.db, key);
    }

    /// Records that `key` may now satisfy clients blocked on it (after the command completes).
    pub fn signal_ready(&mut self, key: &Bytes) {
        self.w.signal_ready(self.db, key);
    }

    /// While the core re-runs this blocked client because a key of this database received
    /// data: that key (Redis serves a waiter from the key that became ready).
    pub fn serving_key(&self) -> Option<Bytes> {
        let blocked = self
            .w
            .clients
            .get(&self.client)
            .is_some_and(|c| c.blocked.is_some());
        match &self.w.serving_key {
            Some((db, key)) if blocked && *db == self.db => Some(key.clone()),
            _ => None,
        }
    }

    /// Asks to block; returns the placeholder reply the caller should return.
    pub fn block_on(
        &mut self,
        keys: Vec<Bytes>,
        deadline: Option<i64>,
        timeout_reply: Reply,
    ) -> Reply {
        self.block = Some(BlockRequest {
            keys,
            deadline,
            timeout_reply,
            rerun_argv: None,
        });
        Reply::None
    }

    /// Like `block_on`, but the command is re-run with `argv` when one of its keys is ready.
    pub fn block_on_rerun(
        &mut self,
        keys: Vec<Bytes>,
        deadline: Option<i64>,
        timeout_reply: Reply,
        argv: Vec<Bytes>,
    ) -> Reply {
        self.block_on(keys, deadline, timeout_reply);
        if let Some(b) = self.block.as_mut() {
            b.rerun_argv = Some(argv);
        }
        Reply::None
    }
}
