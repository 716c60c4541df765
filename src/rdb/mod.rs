//! Redis's RDB serialization (version 10, Redis 7.0.15): the object encodings DUMP/RESTORE carry
//! and an RDB file holds, with the helpers they are built from (listpacks, ziplists, intsets,
//! LZF, CRC64). Replication will read and write whole RDB files with the same reader and writer.
//!
//! A DUMP payload is `type byte, object, RDB version (2 bytes LE), CRC64 of all before (8 bytes
//! LE)` (`createDumpPayload` / `verifyDumpPayload` in `cluster.c`).

pub mod crc64;
pub mod decode;
pub mod encode;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod stream;
pub mod ziplist;

use crate::db::stream::NodeLimits;
use crate::db::Value;

pub use decode::RdbReader;
pub use encode::RdbWriter;

/// `RDB_VERSION` of Redis 7.0.
pub const RDB_VERSION: u16 = 10;

/// `RDB_TYPE_*`.
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

/// The configuration that decides encodings (Redis's `*-max-*` parameters, `rdbcompression`).
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    /// `list-max-listpack-size` (negative: a size class, positive: an element count).
    pub list_max_listpack_size: i64,
    pub stream_node_max_entries: usize,
    pub stream_node_max_bytes: usize,
    pub compression: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
            list_max_listpack_size: -2,
            stream_node_max_entries: 100,
            stream_node_max_bytes: 4096,
            compression: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeOptions {
    /// Node limits restored streams are built with (XINFO and `~` trimming read them).
    pub stream_limits: NodeLimits,
}

/// Why a payload was refused: RESTORE answers these with different errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// `DUMP payload version or checksum are wrong`.
    VersionOrChecksum,
    /// `Bad data format`.
    BadFormat,
}

/// `createDumpPayload`: the value serialized, the version and the CRC64.
pub fn dump(v: &Value, o: &EncodeOptions) -> Vec<u8> {
    let mut w = RdbWriter::new(o.compression);
    encode::write_value(&mut w, v, o);
    footer(w.buf)
}

/// Appends the DUMP footer (RDB version, CRC64 of everything before it) to a payload: values
/// (DUMP) and libraries (FUNCTION DUMP) alike.
pub fn footer(mut buf: Vec<u8>) -> Vec<u8> {
    buf.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(0, &buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// `verifyDumpPayload`: at least the footer, a version Redis 7.0 reads, and (unless skipped)
/// the checksum.
pub fn verify(p: &[u8], skip_checksum: bool) -> bool {
    if p.len() < 10 {
        return false;
    }
    let footer = &p[p.len() - 10..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return false;
    }
    skip_checksum || crc64::crc64(0, &p[..p.len() - 8]).to_le_bytes() == footer[2..]
}

/// RESTORE's checks and load: the footer, then the value (read from the start of the payload;
/// like Redis, bytes after the object are not examined).
pub fn restore(p: &[u8], skip_checksum: bool, o: &DecodeOptions) -> Result<Value, PayloadError> {
    if !verify(p, skip_checksum) {
        return Err(PayloadError::VersionOrChecksum);
    }
    let mut r = RdbReader::new(p);
    decode::read_value(&mut r, o).ok_or(PayloadError::BadFormat)
}

#[cfg(test)]
mod tests;
