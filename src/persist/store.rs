//! The storage engine behind one small trait; fjall (default) and sled implement it.

use std::io;
use std::path::Path;

/// One write of a batch: `Some` puts, `None` deletes.
pub type Op = (Vec<u8>, Option<Vec<u8>>);

pub trait Store: Send {
    fn engine(&self) -> &'static str;
    /// Applies every op atomically (all or none survive a crash); data reaches the OS.
    fn apply(&mut self, ops: &[Op]) -> io::Result<()>;
    /// Makes everything applied so far durable.
    fn sync(&mut self) -> io::Result<()>;
    fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>>;
    fn contains(&self, key: &[u8]) -> io::Result<bool>;
    /// Every record in key order.
    fn for_each(&self, f: &mut dyn FnMut(&[u8], &[u8])) -> io::Result<()>;
    /// Up to `limit` keys under `prefix` (background reclaim only: never on the hot path).
    fn keys_with_prefix(&self, prefix: &[u8], limit: usize) -> io::Result<Vec<Vec<u8>>>;
    fn disk_size(&self) -> u64;
}

fn err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

/// fjall's errors, keeping the OS error (its text is what MISCONF shows, as Redis shows
/// strerror: "No space left on device").
fn ferr(e: fjall::Error) -> io::Error {
    match e {
        fjall::Error::Io(e) => e,
        fjall::Error::Storage(fjall::LsmError::Io(e)) => e,
        fjall::Error::Poisoned => io::Error::other("the store is poisoned by an earlier I/O error"),
        other => err(other),
    }
}

pub fn open(engine: &str, dir: &Path) -> io::Result<Box<dyn Store>> {
    match engine {
        "fjall" => Ok(Box::new(FjallStore::open(&dir.join("fjall"))?)),
        "sled" => Ok(Box::new(SledStore::open(&dir.join("sled"))?)),
        other => Err(io::Error::other(format!(
            "unknown storage-engine '{other}' (fjall or sled)"
        ))),
    }
}

pub struct FjallStore {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

impl FjallStore {
    fn open(path: &Path) -> io::Result<Self> {
        // The store is read only at startup (one sequential pass) and by checkpoints (point
        // lookups that bloom filters mostly answer): a small block cache leaves the memory to
        // the data (fjall's default is 32 MiB).
        let db = fjall::Database::builder(path)
            .cache_size(4 << 20)
            .open()
            .map_err(err)?;
        // A small memtable keeps disk use and reopen time down (design.md, rule 3).
        let ks = db
            .keyspace("berth", || {
                fjall::KeyspaceCreateOptions::default().max_memtable_size(8 * 1024 * 1024)
            })
            .map_err(err)?;
        Ok(FjallStore { db, ks })
    }
}

impl Store for FjallStore {
    fn engine(&self) -> &'static str {
        "fjall"
    }

    fn apply(&mut self, ops: &[Op]) -> io::Result<()> {
        // Buffer: the journal's user-space buffer is written out with the batch, so an applied
        // batch is in the OS (survives kill -9; a reopen after an I/O error finds it).
        let mut b = self.db.batch().durability(Some(fjall::PersistMode::Buffer));
        for (k, v) in ops {
            match v {
                Some(v) => b.insert(&self.ks, k.as_slice(), v.as_slice()),
                None => b.remove(&self.ks, k.as_slice()),
            }
        }
        b.commit().map_err(ferr)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.db.persist(fjall::PersistMode::SyncData).map_err(ferr)
    }

    fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.ks.get(key).map_err(err)?.map(|v| v.to_vec()))
    }

    fn contains(&self, key: &[u8]) -> io::Result<bool> {
        self.ks.contains_key(key).map_err(err)
    }

    fn for_each(&self, f: &mut dyn FnMut(&[u8], &[u8])) -> io::Result<()> {
        for g in self.ks.iter() {
            let (k, v) = g.into_inner().map_err(err)?;
            f(&k, &v);
        }
        Ok(())
    }

    fn keys_with_prefix(&self, prefix: &[u8], limit: usize) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for g in self.ks.prefix(prefix).take(limit) {
            out.push(g.key().map_err(err)?.to_vec());
        }
        Ok(out)
    }

    fn disk_size(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }
}

pub struct SledStore {
    db: sled::Db,
}

impl SledStore {
    fn open(path: &Path) -> io::Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(err)?;
        Ok(SledStore { db })
    }
}

impl Store for SledStore {
    fn engine(&self) -> &'static str {
        "sled"
    }

    fn apply(&mut self, ops: &[Op]) -> io::Result<()> {
        let mut b = sled::Batch::default();
        for (k, v) in ops {
            match v {
                Some(v) => b.insert(k.as_slice(), v.as_slice()),
                None => b.remove(k.as_slice()),
            }
        }
        self.db.apply_batch(b).map_err(err)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.db.flush().map(|_| ()).map_err(err)
    }

    fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.db.get(key).map_err(err)?.map(|v| v.to_vec()))
    }

    fn contains(&self, key: &[u8]) -> io::Result<bool> {
        self.db.contains_key(key).map_err(err)
    }

    fn for_each(&self, f: &mut dyn FnMut(&[u8], &[u8])) -> io::Result<()> {
        for r in self.db.iter() {
            let (k, v) = r.map_err(err)?;
            f(&k, &v);
        }
        Ok(())
    }

    fn keys_with_prefix(&self, prefix: &[u8], limit: usize) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for r in self.db.scan_prefix(prefix).keys().take(limit) {
            out.push(r.map_err(err)?.to_vec());
        }
        Ok(out)
    }

    fn disk_size(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}
