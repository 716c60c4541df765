//! HyperLogLog values as Redis 7.0.15's `hyperloglog.c` stores them, byte for byte: a plain
//! string with a 16-byte header (`HYLL`, encoding, 3 unused bytes, the cached cardinality
//! little endian, bit 7 of its last byte marking it stale) followed by either the sparse
//! opcodes (ZERO `00xxxxxx`, XZERO `01xxxxxx yyyyyyyy`, VAL `1vvvvvxx`) or 16384 dense 6-bit
//! registers. The estimator is Ertl's improved one (`hllTau`/`hllSigma`).
//!
//! Values are edited as `Vec<u8>`. Redis's sds strings have a NUL past their end that its code
//! reads (an XZERO cut off at the end, the byte after the last dense register), so reads past
//! the end here return 0.

pub const HDR_SIZE: usize = 16;
const P: u32 = 14;
const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const P_MASK: u64 = REGISTERS as u64 - 1;
const BITS: usize = 6;
const REGISTER_MAX: u64 = (1 << BITS) - 1;
pub const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * BITS).div_ceil(8);
pub const DENSE: u8 = 0;
pub const SPARSE: u8 = 1;
const MAX_ENCODING: u8 = 1;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: i64 = 4;
const SPARSE_ZERO_MAX_LEN: i64 = 64;
const SPARSE_XZERO_MAX_LEN: i64 = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// A sparse representation whose opcodes do not cover exactly 16384 registers.
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Registers as one byte each: PFCOUNT of several keys and PFMERGE merge into this.
pub type Raw = [u8; REGISTERS];

/// Byte `i` of `s`, or `past_end` beyond it.
fn at(s: &[u8], i: usize, past_end: u8) -> u8 {
    s.get(i).copied().unwrap_or(past_end)
}

// ---- sparse opcodes ----

#[derive(Clone, Copy)]
enum Op {
    Zero(i64),
    XZero(i64),
    /// value, run length
    Val(u8, i64),
}

impl Op {
    fn span(self) -> i64 {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }
    fn size(self) -> usize {
        if matches!(self, Op::XZero(_)) {
            2
        } else {
            1
        }
    }
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> i64 {
    (b & 0x3) as i64 + 1
}

fn op_at(s: &[u8], p: usize, past_end: u8) -> Op {
    let b = s[p];
    if is_zero(b) {
        Op::Zero((b & 0x3f) as i64 + 1)
    } else if is_xzero(b) {
        Op::XZero((((b & 0x3f) as i64) << 8 | at(s, p + 1, past_end) as i64) + 1)
    } else {
        Op::Val(val_value(b), val_len(b))
    }
}

fn val_byte(val: u8, len: i64) -> u8 {
    (((val as i64 - 1) << 2 | (len - 1)) as u8) | 0x80
}

/// ZERO for runs up to 64 registers, XZERO above (`hllSparseSet`'s split).
fn push_zeros(seq: &mut Vec<u8>, len: i64) {
    if len > SPARSE_ZERO_MAX_LEN {
        let l = len - 1;
        seq.push(((l >> 8) as u8) | 0x40);
        seq.push((l & 0xff) as u8);
    } else {
        seq.push((len - 1) as u8);
    }
}

// ---- header ----

/// `createHLLObject`: sparse, every register zero (one XZERO of 16384).
pub fn new_sparse() -> Vec<u8> {
    let mut v = vec![0u8; HDR_SIZE];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = SPARSE;
    let mut left = REGISTERS as i64;
    while left > 0 {
        let n = left.min(SPARSE_XZERO_MAX_LEN);
        push_zeros(&mut v, n);
        left -= n;
    }
    v
}

/// `isHLLObjectOrReply`'s checks on a string value.
pub fn is_valid(s: &[u8]) -> bool {
    s.len() >= HDR_SIZE
        && &s[..4] == b"HYLL"
        && s[4] <= MAX_ENCODING
        && (s[4] != DENSE || s.len() == DENSE_SIZE)
}

pub fn encoding(s: &[u8]) -> u8 {
    s[4]
}

/// The cached cardinality, if it is not marked stale.
pub fn cached(s: &[u8]) -> Option<u64> {
    (s[15] & 0x80 == 0).then(|| u64::from_le_bytes(s[8..16].try_into().expect("8 bytes")))
}

pub fn set_cached(v: &mut [u8], card: u64) {
    v[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate(v: &mut [u8]) {
    v[15] |= 0x80;
}

// ---- dense registers ----

fn dense_get(r: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = r[byte] as u64;
    let b1 = at(r, byte + 1, 0) as u64;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX) as u8
}

fn dense_put(r: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let fb8 = 8 - fb;
    let v = val as u64;
    r[byte] &= !((REGISTER_MAX << fb) as u8);
    r[byte] |= (v << fb) as u8;
    // The last register's second byte is the NUL past the end in Redis; nothing lands there.
    if let Some(b) = r.get_mut(byte + 1) {
        *b &= !((REGISTER_MAX >> fb8) as u8);
        *b |= (v >> fb8) as u8;
    }
}

/// `hllDenseSet`: raises register `index` to `count`; true if it changed.
fn dense_set(r: &mut [u8], index: usize, count: u8) -> bool {
    if count > dense_get(r, index) {
        dense_put(r, index, count);
        true
    } else {
        false
    }
}

// ---- hashing ----

/// MurmurHash2, 64-bit version, as Redis modified it to be endian neutral.
pub fn murmurhash64a(key: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = (seed as u64) ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// `hllPatLen`: the register an element hashes to and the length of its `000..1` pattern.
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmurhash64a(ele, 0xadc8_3b19);
    let index = (hash & P_MASK) as usize;
    // The sentinel bit at Q makes the count at most Q+1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---- editing ----

/// A value being edited by one command. `past_end` is the byte after the last one: Redis's
/// sds strings keep a NUL there that its code reads (an XZERO cut off at the end takes its
/// second byte from it), and `hllSparseSet` can leave an opcode byte in it when it splits
/// such an XZERO. It starts as 0 for each command (a stored value has no such byte here).
pub struct Hll {
    pub bytes: Vec<u8>,
    past_end: u8,
}

impl Hll {
    pub fn new(bytes: Vec<u8>) -> Hll {
        Hll { bytes, past_end: 0 }
    }

    /// `hllSparseToDense`; a dense value is left alone. Opcodes must cover exactly 16384
    /// registers (with the CVE-2025-32023 fix the reference server carries, a run past the
    /// last register is an error even when the count would come out right).
    pub fn to_dense(&mut self) -> Result<(), Corrupt> {
        if self.bytes[4] == DENSE {
            return Ok(());
        }
        let mut dense = vec![0u8; DENSE_SIZE];
        // Magic, unused bytes and cached cardinality are copied as they are.
        dense[..HDR_SIZE].copy_from_slice(&self.bytes[..HDR_SIZE]);
        dense[4] = DENSE;
        let regs = &mut dense[HDR_SIZE..];
        walk_checked(&self.bytes, self.past_end, |first, run, val| {
            for i in first..first + run {
                dense_put(regs, i, val);
            }
        })?;
        self.bytes = dense;
        self.past_end = 0;
        Ok(())
    }

    /// `hllSparseSet`: raises register `index` to `count` in a sparse value, splitting the
    /// opcode that covers it, promoting to dense past `max_bytes` or above the VAL maximum.
    /// True if a register changed.
    fn sparse_set(&mut self, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
        if count > SPARSE_VAL_MAX_VALUE {
            return self.promote(index, count);
        }
        let v = &self.bytes;
        let op_at = |p| op_at(v, p, self.past_end);
        let index = index as i64;
        // Step 1: find the opcode covering the register.
        let (mut p, mut first, mut span, mut prev) = (HDR_SIZE, 0i64, 0i64, None);
        while p < v.len() {
            span = op_at(p).span();
            if index < first + span {
                break;
            }
            prev = Some(p);
            p += op_at(p).size();
            first += span;
        }
        if span == 0 || p >= v.len() {
            return Err(Corrupt);
        }
        let op = op_at(p);
        // Step 2: the trivial cases update the opcode in place.
        match op {
            Op::Val(old, _) if old >= count => return Ok(false),
            Op::Val(_, 1) | Op::Zero(1) => {
                self.bytes[p] = val_byte(count, 1);
                self.merge_adjacent(prev);
                return Ok(true);
            }
            _ => {}
        }
        // Otherwise split it into up to three opcodes.
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        match op {
            Op::Val(cur, _) => {
                if index != first {
                    seq.push(val_byte(cur, index - first));
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    seq.push(val_byte(cur, last - index));
                }
            }
            _ => {
                if index != first {
                    push_zeros(&mut seq, index - first);
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    push_zeros(&mut seq, last - index);
                }
            }
        }
        // Step 3: put the sequence in place of the opcode.
        let oldlen = op.size();
        let new_len = v.len() + seq.len() - oldlen;
        if seq.len() > oldlen && new_len > max_bytes {
            return self.promote(index as usize, count);
        }
        self.splice(p, oldlen, &seq, new_len);
        self.merge_adjacent(prev);
        Ok(true)
    }

    /// Step 3's memmove / sdsIncrLen / memcpy: the length becomes `new_len` and the sequence
    /// replaces the opcode. An XZERO cut off at the end counts as 2 bytes, so the sequence's
    /// last byte lands past the new end, where Redis leaves it.
    fn splice(&mut self, p: usize, oldlen: usize, seq: &[u8], new_len: usize) {
        let v = &mut self.bytes;
        let old_end = (p + oldlen).min(v.len());
        v.splice(p..old_end, seq.iter().copied());
        self.past_end = v.get(new_len).copied().unwrap_or(0);
        v.truncate(new_len);
    }

    /// Step 4 of `hllSparseSet`: merges adjacent VALs of equal value, scanning up to 5
    /// opcodes from the one before the change; then marks the cached cardinality stale.
    fn merge_adjacent(&mut self, prev: Option<usize>) {
        let v = &mut self.bytes;
        let mut p = prev.unwrap_or(HDR_SIZE);
        let mut scanlen = 5;
        while p < v.len() && scanlen > 0 {
            scanlen -= 1;
            let b = v[p];
            if is_xzero(b) {
                p += 2;
                continue;
            }
            if is_zero(b) {
                p += 1;
                continue;
            }
            if p + 1 < v.len() && is_val(v[p + 1]) {
                let (v1, v2) = (val_value(b), val_value(v[p + 1]));
                let len = val_len(b) + val_len(v[p + 1]);
                if v1 == v2 && len <= SPARSE_VAL_MAX_LEN {
                    v[p + 1] = val_byte(v1, len);
                    v.remove(p);
                    // sdsIncrLen(-1) writes a NUL at the new end.
                    self.past_end = 0;
                    // Try the merged opcode against its right neighbour too.
                    continue;
                }
            }
            p += 1;
        }
        invalidate(v);
    }

    /// The `promote:` path of `hllSparseSet`: to dense, then set the register there.
    fn promote(&mut self, index: usize, count: u8) -> Result<bool, Corrupt> {
        self.to_dense()?;
        dense_set(&mut self.bytes[HDR_SIZE..], index, count);
        Ok(true)
    }

    /// `hllAdd`: true if a register changed (the approximated cardinality may have).
    pub fn add(&mut self, ele: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
        let (index, count) = pat_len(ele);
        match self.bytes[4] {
            DENSE => Ok(dense_set(&mut self.bytes[HDR_SIZE..], index, count)),
            SPARSE => self.sparse_set(index, count, max_bytes),
            _ => Err(Corrupt),
        }
    }

    /// PFMERGE's write of one merged register, in either encoding; a corrupted sparse target
    /// is left as it is (PFMERGE ignores the failure, as Redis does).
    pub fn raise(&mut self, index: usize, count: u8, max_bytes: usize) {
        match self.bytes[4] {
            DENSE => {
                dense_set(&mut self.bytes[HDR_SIZE..], index, count);
            }
            SPARSE => {
                let _ = self.sparse_set(index, count, max_bytes);
            }
            _ => {}
        }
    }
}

// ---- counting ----

/// Walks the sparse opcodes of `s`: `f(first register, run, value)` for each; returns the
/// number of registers they cover.
fn walk_sparse(s: &[u8], past_end: u8, mut f: impl FnMut(i64, i64, u8)) -> i64 {
    let mut idx: i64 = 0;
    let mut p = HDR_SIZE;
    while p < s.len() {
        let op = op_at(s, p, past_end);
        let (val, run) = match op {
            Op::Zero(n) | Op::XZero(n) => (0, n),
            Op::Val(val, n) => (val, n),
        };
        f(idx, run, val);
        idx += run;
        p += op.size();
    }
    idx
}

/// Like `walk_sparse` for the non-zero runs, but the opcodes must cover exactly the 16384
/// registers: a run past the end stops the walk as corrupt.
fn walk_checked(
    s: &[u8],
    past_end: u8,
    mut f: impl FnMut(usize, usize, u8),
) -> Result<(), Corrupt> {
    let mut overflow = false;
    let idx = walk_sparse(s, past_end, |first, run, val| {
        overflow |= first + run > REGISTERS as i64;
        if !overflow && val > 0 {
            f(first as usize, run as usize, val);
        }
    });
    if overflow || idx != REGISTERS as i64 {
        return Err(Corrupt);
    }
    Ok(())
}

/// `hllMerge`: max[i] = MAX(max[i], register i of `s`).
pub fn merge(max: &mut Raw, s: &[u8]) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(&s[HDR_SIZE..], i));
        }
        return Ok(());
    }
    walk_checked(s, 0, |first, run, val| {
        for m in &mut max[first..first + run] {
            *m = (*m).max(val);
        }
    })
}

/// `hllCount` of a stored value; a sparse one that does not cover 16384 registers is corrupt.
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0i64; 64];
    if s[4] == DENSE {
        for i in 0..REGISTERS {
            histo[dense_get(&s[HDR_SIZE..], i) as usize] += 1;
        }
    } else {
        let idx = walk_sparse(s, 0, |_, run, val| histo[val as usize] += run);
        if idx != REGISTERS as i64 {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// `hllCount` of merged registers (Redis's internal HLL_RAW encoding).
pub fn count_raw(max: &Raw) -> u64 {
    let mut histo = [0i64; 64];
    for &r in max.iter() {
        histo[r as usize & 63] += 1;
    }
    estimate(&histo)
}

/// Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
/// sketches", arXiv:1702.01284), with Redis's order of floating-point operations.
fn estimate(histo: &[i64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - histo[q + 1] as f64) / m);
    for j in (1..=q).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prime = z;
        z += x * y;
        y += y;
        if z_prime == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prime = z;
        y *= 0.5;
        // pow(1 - x, 2) in C; compilers make it (1 - x) * (1 - x), which is exact-equivalent.
        z -= (1.0 - x) * (1.0 - x) * y;
        if z_prime == z {
            return z / 3.0;
        }
    }
}

// ---- PFDEBUG ----

/// The 16384 registers of a dense value.
pub fn dense_registers(s: &[u8]) -> Vec<u8> {
    (0..REGISTERS)
        .map(|i| dense_get(&s[HDR_SIZE..], i))
        .collect()
}

/// PFDEBUG DECODE: `z:len`, `Z:len`, `v:value,len`, space separated.
pub fn decode(s: &[u8]) -> String {
    let mut out = Vec::new();
    let mut p = HDR_SIZE;
    while p < s.len() {
        let op = op_at(s, p, 0);
        out.push(match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(val, n) => format!("v:{val},{n}"),
        });
        p += op.size();
    }
    out.join(" ")
}

// ---- PFSELFTEST ----

/// PFSELFTEST: the register accessors keep values without touching neighbours, and dense and
/// sparse counts agree within 6 standard errors at 1, 10, ..., 10^7 elements. The error
/// text follows Redis's.
pub fn selftest(max_bytes: usize, mut rand: impl FnMut() -> u32) -> Result<(), String> {
    let mut dense = vec![0u8; DENSE_SIZE];
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (rand() & REGISTER_MAX as u32) as u8;
            dense_put(&mut dense[HDR_SIZE..], i, *b);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let val = dense_get(&dense[HDR_SIZE..], i);
            if val != b {
                return Err(format!(
                    "TESTFAILED Register {i} should be {b} but is {val}"
                ));
            }
        }
    }
    dense[HDR_SIZE..].fill(0);
    let mut sparse = Hll::new(new_sparse());
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let seed = rand() as u64 | (rand() as u64) << 32;
    let mut checkpoint: u64 = 1;
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_ne_bytes();
        let (index, run) = pat_len(&ele);
        dense_set(&mut dense[HDR_SIZE..], index, run);
        let _ = sparse.add(&ele, max_bytes);
        if j != checkpoint {
            continue;
        }
        if j < (max_bytes / 2) as u64 && sparse.bytes[4] != SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let card = count(&dense).unwrap_or(0);
        if count(&sparse.bytes).ok() != Some(card) {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = (checkpoint as i64 - card as i64).unsigned_abs();
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
