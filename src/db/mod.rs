//! The keyspace: 16 databases of keys to typed values, with expiry and a stable SCAN order.

pub mod collections;
pub mod csort;
pub mod geohash;
pub mod glob;
pub mod hyperloglog;
pub mod journal;
pub mod listpack;
pub mod scan;
pub mod stream;
pub mod zset;

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use crate::protocol::Reply;
pub use collections::{Hash, List, Set};
pub use stream::Stream;
pub use zset::ZSet;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[derive(Debug, Clone)]
pub enum Value {
    Str(Bytes),
    // Collections are boxed so an entry stays small (the key table is probed on every
    // command, and most job-system keys are strings or a few big collections).
    List(Box<List>),
    /// Insertion-ordered, so small hashes list fields in the order Redis's listpack does.
    Hash(Box<Hash>),
    Set(Box<Set>),
    ZSet(Box<ZSet>),
    Stream(Box<Stream>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// Element count (string: 1); collections at 0 are removed by the commands that empty them.
    pub fn len(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.len(),
            Value::Hash(h) => h.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            Value::Stream(s) => s.len(),
        }
    }

    /// Empty collections are removed; an empty stream is kept (it has ids and groups).
    pub fn is_empty(&self) -> bool {
        !matches!(self, Value::Stream(_)) && self.len() == 0
    }
}

#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry, unix milliseconds.
    pub expire_at: Option<i64>,
    /// Last access, unix milliseconds (OBJECT IDLETIME).
    pub accessed: i64,
    /// Persistence: the version its element records are stored under; 0 = not yet written
    /// (a new or replaced value, written in full at the next commit).
    pub(crate) version: u64,
}

impl Entry {
    pub fn new(value: Value, expire_at: Option<i64>, accessed: i64) -> Entry {
        Entry {
            value,
            expire_at,
            accessed,
            version: 0,
        }
    }
}

/// A copy is a new value: it gets its own version when written.
impl Clone for Entry {
    fn clone(&self) -> Entry {
        Entry::new(self.value.clone(), self.expire_at, self.accessed)
    }
}

/// A value removed or replaced: its metadata record and (version != 0) its element records on
/// disk are deleted at the next commit (persistence).
#[derive(Debug)]
pub struct Dead {
    pub key: Bytes,
    pub version: u64,
    /// What to delete: a list's index range, or a few members, or (None) a scan of the version.
    pub range: Option<(i64, i64)>,
    pub members: Option<Vec<Bytes>>,
}

impl Dead {
    fn of(key: Bytes, e: &Entry) -> Dead {
        let members = |it: &mut dyn Iterator<Item = &Bytes>, n: usize| {
            (n <= 64).then(|| it.cloned().collect::<Vec<Bytes>>())
        };
        let (range, members) = match &e.value {
            _ if e.version == 0 => (None, Some(Vec::new())),
            Value::Str(_) => (None, Some(Vec::new())),
            Value::List(l) => (Some(l.base), None),
            Value::Hash(h) => (
                None,
                members(&mut h.keys().chain(h.dirty.iter()), h.len() + h.dirty.len()),
            ),
            Value::Set(s) => (
                None,
                members(&mut s.iter().chain(s.dirty.iter()), s.len() + s.dirty.len()),
            ),
            Value::ZSet(z) => (
                None,
                members(
                    &mut z.members().chain(z.dirty.iter()),
                    z.len() + z.dirty.len(),
                ),
            ),
            // Entries are removed by a background scan of the version.
            Value::Stream(_) => (None, None),
        };
        Dead {
            key,
            version: e.version,
            range,
            members,
        }
    }
}

/// One database. Keys live in a hash map; a second index ordered by a fixed hash of the key gives
/// SCAN a cursor that is stable across inserts and deletes (every key present for the whole
/// scan is returned), which Redis gets from its reverse-binary dict cursor.
#[derive(Debug, Default)]
pub struct Db {
    /// foldhash: seeded per process like std's SipHash (no collision flooding), at a fraction
    /// of its cost (SipHash was about 8% of the CPU of a SET).
    map: HashMap<Bytes, Entry, foldhash::fast::RandomState>,
    expiries: BTreeSet<(i64, Bytes)>,
    pub(crate) order: BTreeSet<(u64, Bytes)>,
    /// The current command's time (unix ms), set before each use: expiry is judged against it,
    /// so a key does not expire halfway through a command or script.
    pub now: i64,
    /// Values removed or replaced since the last commit that have records on disk.
    pub(crate) dead: Vec<Dead>,
    /// Client-side caching is in use: keys deleted by lazy expiry are collected in `expired`
    /// so their trackers can be told (off until a client first enables tracking).
    pub track_expired: bool,
    pub expired: Vec<Bytes>,
    /// During a `SCRIPT DEBUG YES` session: what to restore when it ends (`journal.rs`).
    pub(crate) journal: Option<Box<journal::Journal>>,
}

macro_rules! typed_accessors {
    ($get:ident, $get_mut:ident, $variant:ident, $ty:ty) => {
        /// The value at `key` if it has this type; `Err(WRONGTYPE)` if it has another.
        pub fn $get(&mut self, key: &[u8]) -> Result<Option<&$ty>, Reply> {
            match self.get(key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(Reply::err(WRONGTYPE)),
            }
        }
        pub fn $get_mut(&mut self, key: &[u8]) -> Result<Option<&mut $ty>, Reply> {
            match self.get_mut(key) {
                None => Ok(None),
                Some(Value::$variant(v)) => Ok(Some(v)),
                Some(_) => Err(Reply::err(WRONGTYPE)),
            }
        }
    };
}

impl Db {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn expires_count(&self) -> usize {
        self.expiries.len()
    }

    fn is_expired(e: &Entry, now: i64) -> bool {
        matches!(e.expire_at, Some(t) if t <= now)
    }

    /// Looks a key up, deleting it first if its time has passed (lazy expiry).
    pub fn entry(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let expired = match self.map.get(key) {
            None => return None,
            Some(e) => Self::is_expired(e, self.now),
        };
        if self.journal.is_some() {
            self.journal_key(key);
        }
        if expired {
            if self.track_expired {
                self.expired.push(Bytes::copy_from_slice(key));
            }
            self.remove(key);
            return None;
        }
        let e = self.map.get_mut(key)?;
        e.accessed = self.now;
        Some(e)
    }

    /// Read without side effects (no lazy delete, no access time): for SCAN, KEYS, RANDOMKEY.
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key).filter(|e| !Self::is_expired(e, self.now))
    }

    /// True if the key is still stored but its time has passed (not yet lazily deleted).
    pub fn has_expired_entry(&self, key: &[u8]) -> bool {
        self.map
            .get(key)
            .is_some_and(|e| Self::is_expired(e, self.now))
    }

    pub fn get(&mut self, key: &[u8]) -> Option<&Value> {
        self.entry(key).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.entry(key).map(|e| &mut e.value)
    }

    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.entry(key).is_some()
    }

    typed_accessors!(get_str, get_str_mut, Str, Bytes);
    typed_accessors!(get_list, get_list_mut, List, List);
    typed_accessors!(get_hash, get_hash_mut, Hash, Hash);
    typed_accessors!(get_set, get_set_mut, Set, Set);
    typed_accessors!(get_zset, get_zset_mut, ZSet, ZSet);
    typed_accessors!(get_stream, get_stream_mut, Stream, Box<Stream>);

    /// Stores a value, dropping any TTL (SET semantics).
    pub fn set(&mut self, key: Bytes, value: Value) {
        self.insert_entry(key, Entry::new(value, None, self.now));
    }

    /// Replaces the value but keeps the key's TTL (KEEPTTL, and in-place rewrites).
    pub fn set_keep_ttl(&mut self, key: Bytes, value: Value) {
        let ttl = self.entry(&key).and_then(|e| e.expire_at);
        self.insert_entry(key, Entry::new(value, ttl, self.now));
    }

    pub fn insert_entry(&mut self, key: Bytes, entry: Entry) {
        if self.journal.is_some() {
            self.journal_key(&key);
        }
        let expire_at = entry.expire_at;
        match self.map.insert(key.clone(), entry) {
            Some(old) => {
                if let Some(t) = old.expire_at {
                    self.expiries.remove(&(t, key.clone()));
                }
                self.dead.push(Dead::of(key.clone(), &old));
            }
            None => {
                self.order.insert((scan::key_hash(&key), key.clone()));
            }
        }
        if let Some(t) = expire_at {
            self.expiries.insert((t, key));
        }
    }

    /// The value at `key`, created with `make` if absent; `Err(WRONGTYPE)` if `check` rejects it.
    pub fn get_or_insert_with(&mut self, key: &Bytes, make: impl FnOnce() -> Value) -> &mut Value {
        if self.entry(key).is_none() {
            self.set(key.clone(), make());
        }
        &mut self.map.get_mut(&key[..]).expect("just inserted").value
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        if self.journal.is_some() {
            self.journal_key(key);
        }
        let (k, e) = self.map.remove_entry(key)?;
        if let Some(t) = e.expire_at {
            self.expiries.remove(&(t, k.clone()));
        }
        self.dead.push(Dead::of(k.clone(), &e));
        self.order.remove(&(scan::key_hash(&k), k));
        Some(e)
    }

    /// Deletes a key that is live (not expired); returns whether it existed.
    pub fn remove_live(&mut self, key: &[u8]) -> bool {
        self.entry(key).is_some() && self.remove(key).is_some()
    }

    /// Removes the key if its collection became empty; returns whether it did.
    pub fn remove_if_empty(&mut self, key: &[u8]) -> bool {
        if self.map.get(key).is_some_and(|e| e.value.is_empty()) {
            self.remove(key);
            return true;
        }
        false
    }

    pub fn set_expire(&mut self, key: &[u8], at: Option<i64>) {
        if self.journal.is_some() {
            self.journal_key(key);
        }
        let Some((k, e)) = self.map.get_key_value(key) else {
            return;
        };
        let k = k.clone();
        if let Some(t) = e.expire_at {
            self.expiries.remove(&(t, k.clone()));
        }
        if let Some(t) = at {
            self.expiries.insert((t, k.clone()));
        }
        if let Some(e) = self.map.get_mut(key) {
            e.expire_at = at;
        }
    }

    /// Deletes up to `limit` keys whose time has passed; returns the deleted keys.
    pub fn expire_due(&mut self, now: i64, limit: usize) -> Vec<Bytes> {
        let mut due = Vec::new();
        while due.len() < limit {
            match self.expiries.first() {
                Some((t, _)) if *t <= now => {
                    let (_, k) = self.expiries.pop_first().expect("first");
                    due.push(k);
                }
                _ => break,
            }
        }
        for k in &due {
            if self.journal.is_some() {
                self.journal_key(k);
            }
            if let Some(e) = self.map.get_mut(&k[..]) {
                e.expire_at = None; // its expiries entry is already gone
            }
            self.remove(k);
        }
        due
    }

    pub fn keys(&self) -> impl Iterator<Item = &Bytes> {
        self.map.keys()
    }

    pub fn clear(&mut self) {
        let now = self.now;
        let dead = std::mem::take(&mut self.dead);
        let journal = self.journal_all();
        *self = Db {
            now,
            dead,
            journal,
            ..Db::default()
        };
    }

    /// A key's entry as stored, expired or not, without side effects (persistence).
    pub(crate) fn raw_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.map.get_mut(key)
    }

    pub fn random_key(&self) -> Option<Bytes> {
        use rand::seq::IteratorRandom;
        let mut rng = rand::thread_rng();
        // A few tries so a db full of expired-but-not-yet-reaped keys still finds a live one.
        for _ in 0..100 {
            let (k, e) = self.map.iter().choose(&mut rng)?;
            if !Self::is_expired(e, self.now) {
                return Some(k.clone());
            }
        }
        None
    }
}

pub struct Keyspace {
    pub dbs: Vec<Db>,
}

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        Keyspace {
            dbs: (0..databases).map(|_| Db::default()).collect(),
        }
    }
}
