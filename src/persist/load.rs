//! Startup: rebuild memory from the store, dropping expired keys and collecting garbage.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;

use super::record::{self, Meta, T_HASH, T_LIST, T_SET, T_STR, T_STREAM, T_ZSET};
use super::store::{Op, Store};
use super::stream_records;
use crate::db::stream::StreamId;
use crate::db::{Entry, Hash, Keyspace, List, Set, Value, ZSet};

pub struct Loaded {
    pub spaces: Vec<u64>,
    pub next_id: u64,
    /// Deletes of garbage found while loading, and the records a new store starts with.
    pub ops: Vec<Op>,
    pub keys: u64,
    pub expired: u64,
    /// Records of dead values found (not yet reclaimed when the last run stopped).
    pub garbage: u64,
    /// Function libraries (name, code), compiled by the keyspace thread at the hand-over.
    pub libraries: Vec<(String, Bytes)>,
}

struct Building {
    db: usize,
    key: Bytes,
    meta: Meta,
    list: VecDeque<Bytes>,
    first: Option<i64>,
    hash: Vec<(u64, Bytes, Bytes)>,
    set: HashSet<Bytes>,
    zset: ZSet,
    stream: Vec<(StreamId, Vec<Bytes>)>,
}

/// `progress` counts the bytes of records read (INFO loading_loaded_bytes while loading).
pub fn load(
    store: &dyn Store,
    ks: &mut Keyspace,
    now: i64,
    progress: &std::sync::atomic::AtomicU64,
) -> Result<Loaded, String> {
    let ndb = ks.dbs.len();
    let mut out = Loaded {
        spaces: Vec::new(),
        next_id: 0,
        ops: Vec::new(),
        keys: 0,
        expired: 0,
        garbage: 0,
        libraries: Vec::new(),
    };
    let format = store.get(record::FORMAT_KEY).map_err(|e| e.to_string())?;
    match format {
        Some(f) if f == record::FORMAT => {}
        Some(f) => {
            return Err(format!(
                "the store has format '{}', this Berth reads only '{}'; refusing to open it \
                 (use the Berth version that wrote it)",
                String::from_utf8_lossy(&f),
                String::from_utf8_lossy(record::FORMAT)
            ))
        }
        None => {
            let mut any = false;
            store
                .for_each(&mut |_, _| any = true)
                .map_err(|e| e.to_string())?;
            if any {
                return Err(
                    "the store holds records but no format record: it is not a Berth \
                            store, or it is damaged; refusing to start over it"
                        .into(),
                );
            }
            out.ops
                .push((record::FORMAT_KEY.to_vec(), Some(record::FORMAT.to_vec())));
        }
    }
    let mut space_db: HashMap<u64, usize> = HashMap::new();
    let mut spaces: Vec<Option<u64>> = vec![None; ndb];
    let mut building: HashMap<u64, Building> = HashMap::new();
    let mut max_id = 0u64;
    let mut error: Option<String> = None;
    let mut strings: Vec<(usize, Bytes, Meta)> = Vec::new();
    let mut garbage: Vec<Vec<u8>> = Vec::new();
    let mut read = 0u64;
    store
        .for_each(&mut |k, v| {
            if error.is_some() {
                return;
            }
            read += (k.len() + v.len()) as u64;
            if read >= 1 << 20 {
                progress.fetch_add(read, std::sync::atomic::Ordering::Relaxed);
                read = 0;
            }
            match k.first() {
                Some(0x01) => {}
                Some(0x02) if k.len() == 5 => {
                    let db = u32::from_be_bytes(k[1..5].try_into().expect("4")) as usize;
                    let Some(space) = record::be_u64(v) else {
                        error = Some("a database record is damaged".into());
                        return;
                    };
                    max_id = max_id.max(space);
                    if db >= ndb {
                        error = Some(format!(
                            "the store has database {db} but `databases` is {ndb}; \
                             start with databases {}",
                            db + 1
                        ));
                        return;
                    }
                    spaces[db] = Some(space);
                    space_db.insert(space, db);
                }
                Some(0x03) if k.len() >= 9 => {
                    let space = record::be_u64(&k[1..]).expect("8");
                    max_id = max_id.max(space);
                    let Some(meta) = Meta::decode(v) else {
                        error = Some("a key's metadata record is damaged".into());
                        return;
                    };
                    max_id = max_id.max(meta.version);
                    let key = Bytes::copy_from_slice(&k[9..]);
                    let Some(&db) = space_db.get(&space) else {
                        // A flushed space not yet reclaimed.
                        garbage.push(k.to_vec());
                        return;
                    };
                    if meta.expire.is_some_and(|t| t <= now) {
                        out.expired += 1;
                        // Its elements, under a version no live key has, go as garbage below.
                        garbage.push(k.to_vec());
                        return;
                    }
                    if meta.kind == T_STR {
                        strings.push((db, key, meta));
                        return;
                    }
                    building.insert(
                        meta.version,
                        Building {
                            db,
                            key,
                            meta,
                            list: VecDeque::new(),
                            first: None,
                            hash: Vec::new(),
                            set: HashSet::new(),
                            zset: ZSet::default(),
                            stream: Vec::new(),
                        },
                    );
                }
                Some(0x04) if k.len() >= 9 => {
                    let version = record::be_u64(&k[1..]).expect("8");
                    max_id = max_id.max(version);
                    let sub = &k[9..];
                    let Some(b) = building.get_mut(&version) else {
                        garbage.push(k.to_vec());
                        return;
                    };
                    let sub_b = || Bytes::copy_from_slice(sub);
                    match b.meta.kind {
                        T_LIST => {
                            let Some(i) = record::sub_index(sub) else {
                                error = Some("a list element record is damaged".into());
                                return;
                            };
                            if i < b.meta.a || i >= b.meta.b {
                                garbage.push(k.to_vec());
                                return;
                            }
                            let expect = b.first.unwrap_or(i) + b.list.len() as i64;
                            if i != expect {
                                error = Some(format!(
                                    "list '{}' is missing elements on disk",
                                    String::from_utf8_lossy(&b.key)
                                ));
                                return;
                            }
                            b.first.get_or_insert(i);
                            b.list.push_back(Bytes::copy_from_slice(v));
                        }
                        T_HASH => {
                            let Some(seq) = record::be_u64(v) else {
                                error = Some("a hash field record is damaged".into());
                                return;
                            };
                            b.hash.push((seq, sub_b(), Bytes::copy_from_slice(&v[8..])));
                        }
                        T_SET => {
                            b.set.insert(sub_b());
                        }
                        T_ZSET => {
                            let Some(bits) = record::be_u64(v) else {
                                error = Some("a sorted set record is damaged".into());
                                return;
                            };
                            b.zset.insert_exact(sub_b(), f64::from_bits(bits));
                        }
                        T_STREAM => {
                            let (Some(id), Some(fv)) = (
                                stream_records::sub_entry_id(sub),
                                stream_records::decode_fields(v),
                            ) else {
                                error = Some("a stream entry record is damaged".into());
                                return;
                            };
                            b.stream.push((id, fv));
                        }
                        _ => garbage.push(k.to_vec()),
                    }
                }
                Some(0x05) => out.libraries.push((
                    String::from_utf8_lossy(&k[1..]).into_owned(),
                    Bytes::copy_from_slice(v),
                )),
                _ => {
                    error = Some(format!(
                        "unknown record {:?}",
                        String::from_utf8_lossy(&k[..k.len().min(16)])
                    ))
                }
            }
        })
        .map_err(|e| e.to_string())?;
    if let Some(e) = error {
        return Err(e);
    }
    let mut next_id = max_id;
    for (d, s) in spaces.iter_mut().enumerate() {
        if s.is_none() {
            next_id += 1;
            *s = Some(next_id);
            out.ops.push((
                record::space_key(d as u32),
                Some(next_id.to_be_bytes().to_vec()),
            ));
        }
    }
    out.spaces = spaces.into_iter().map(|s| s.expect("set")).collect();
    out.next_id = next_id;
    for (db, key, meta) in strings {
        let e = Entry::new(Value::Str(meta.inline), meta.expire, now);
        ks.dbs[db].insert_entry(key, e);
        out.keys += 1;
    }
    for (version, b) in building {
        let value = match b.meta.kind {
            T_LIST => {
                if b.list.is_empty() {
                    continue;
                }
                Value::List(Box::new(List::loaded(b.list, b.first.unwrap_or(b.meta.a))))
            }
            T_HASH => Value::Hash(Box::new(Hash::loaded(b.hash, b.meta.a as u64))),
            T_SET => Value::Set(Box::new(Set::from(b.set))),
            T_STREAM => match stream_records::rebuild(b.stream, &b.meta.inline) {
                Some(s) => Value::Stream(Box::new(s)),
                None => {
                    return Err(format!(
                        "stream '{}': its metadata record is damaged",
                        String::from_utf8_lossy(&b.key)
                    ))
                }
            },
            _ => {
                let mut z = b.zset;
                z.dirty.clear();
                Value::ZSet(Box::new(z))
            }
        };
        if value.is_empty() {
            continue;
        }
        if value.len() as u64 != b.meta.count {
            tracing::warn!(
                "key '{}': {} elements on disk, metadata says {}",
                String::from_utf8_lossy(&b.key),
                value.len(),
                b.meta.count
            );
        }
        let mut e = Entry::new(value, b.meta.expire, now);
        e.version = version;
        ks.dbs[b.db].insert_entry(b.key, e);
        out.keys += 1;
    }
    for db in ks.dbs.iter_mut() {
        db.dead.clear();
    }
    out.garbage = garbage.len() as u64;
    out.ops.extend(garbage.into_iter().map(|k| (k, None)));
    Ok(out)
}
