//! Bitmap commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.

use bytes::Bytes;

use super::args::{int, is, syntax, R, SYNTAX};
use super::strings::{read_str, with_grown, wrongtype};
use super::{Command, Ctx, Flags as F};
use crate::db::Value;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[
    Command::new("setbit", 4, F::WRITE | F::DENYOOM, setbit)
        .keys(1, 1, 1)
        .doc(
            "bitmap",
            "Sets or clears the bit at offset in the string value stored at key",
            "key offset value",
        ),
    Command::new("getbit", 3, F::READONLY | F::FAST, getbit)
        .keys(1, 1, 1)
        .doc(
            "bitmap",
            "Returns the bit value at offset in the string value stored at key",
            "key offset",
        ),
    Command::new("bitcount", -2, F::READONLY, bitcount)
        .keys(1, 1, 1)
        .doc(
            "bitmap",
            "Count set bits in a string",
            "key [start end [BYTE|BIT]]",
        ),
    Command::new("bitpos", -3, F::READONLY, bitpos).keys(1, 1, 1).doc(
        "bitmap",
        "Find first bit set or clear in a string",
        "key bit [start [end [BYTE|BIT]]]",
    ),
    Command::new("bitop", -4, F::WRITE | F::DENYOOM, bitop)
        .keys(2, -1, 1)
        .doc(
            "bitmap",
            "Perform bitwise operations between strings",
            "operation destkey key [key ...]",
        ),
    Command::new("bitfield", -2, F::WRITE | F::DENYOOM, bitfield)
        .keys(1, 1, 1)
        .doc(
            "bitmap",
            "Perform arbitrary bitfield integer operations on strings",
            "key [GET encoding offset|[OVERFLOW WRAP|SAT|FAIL] SET encoding offset value|INCRBY encoding offset increment [GET encoding offset|[OVERFLOW WRAP|SAT|FAIL] SET encoding offset value|INCRBY encoding offset increment ...]]",
        ),
    Command::new("bitfield_ro", -2, F::READONLY | F::FAST, bitfield_ro)
        .keys(1, 1, 1)
        .doc(
            "bitmap",
            "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
            "key [GET encoding offset [GET encoding offset ...]]",
        ),
];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// `getBitOffsetFromArgument`; with `hash_bits` > 0, `#n` means n * bits.
fn bit_offset(ctx: &Ctx, arg: &[u8], hash_bits: u32) -> R<u64> {
    let (usehash, digits) = match arg.first() {
        Some(b'#') if hash_bits > 0 => (true, &arg[1..]),
        _ => (false, arg),
    };
    let mut v = parse_i64(digits).ok_or_else(|| Reply::err(BAD_OFFSET))?;
    if usehash {
        v = v.wrapping_mul(hash_bits as i64);
    }
    let max = ctx.w.config.get_i64("proto-max-bulk-len");
    if v < 0 || (v >> 3) >= max {
        return Err(Reply::err(BAD_OFFSET));
    }
    Ok(v as u64)
}

fn setbit(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    setbit_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn setbit_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let off = bit_offset(ctx, &argv[2], 0)?;
    let on = match parse_i64(&argv[3]) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return Err(Reply::err("ERR bit is not an integer or out of range")),
    };
    let byte = (off >> 3) as usize;
    let bit = 7 - (off & 7) as u8;
    let old = with_grown(ctx, &argv[1], byte + 1, |v| {
        let old = (v[byte] >> bit) & 1;
        v[byte] = (v[byte] & !(1 << bit)) | (on << bit);
        old
    })?;
    ctx.modified(&argv[1]);
    Ok(Reply::Int(old as i64))
}

fn getbit(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let off = match bit_offset(ctx, &argv[2], 0) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match read_str(ctx, &argv[1]) {
        Err(e) => e,
        Ok(None) => Reply::Int(0),
        Ok(Some(s)) => {
            let byte = (off >> 3) as usize;
            let bit = s.get(byte).map_or(0, |b| (b >> (7 - (off & 7))) & 1);
            Reply::Int(bit as i64)
        }
    }
}

fn bit_at(s: &[u8], pos: usize) -> u8 {
    (s[pos >> 3] >> (7 - (pos & 7))) & 1
}

/// Parses the optional `BYTE|BIT` unit word.
fn unit_is_bit(arg: Option<&Bytes>) -> R<bool> {
    match arg {
        None => Ok(false),
        Some(a) if is(a, "bit") => Ok(true),
        Some(a) if is(a, "byte") => Ok(false),
        Some(_) => syntax(),
    }
}

/// Start/end normalised as BITCOUNT and BITPOS do, in the given unit, over `total` units.
fn norm(mut start: i64, mut end: i64, total: i64) -> (i64, i64) {
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start, end)
}

fn bitcount(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    bitcount_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn bitcount_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    // Redis 7.0 looks the key up before parsing the range.
    let Some(s) = read_str(ctx, &argv[1])? else {
        return Ok(Reply::Int(0));
    };
    let (start, end, isbit) = match argv.len() {
        2 => (0, s.len() as i64 - 1, false),
        4 | 5 => {
            let (start, end) = (int(&argv[2])?, int(&argv[3])?);
            let isbit = unit_is_bit(argv.get(4))?;
            if start < 0 && end < 0 && start > end {
                return Ok(Reply::Int(0));
            }
            let total = s.len() as i64 * if isbit { 8 } else { 1 };
            let (a, b) = norm(start, end, total);
            (a, b, isbit)
        }
        _ => return syntax(),
    };
    if start > end {
        return Ok(Reply::Int(0));
    }
    let n = if isbit {
        (start as usize..=end as usize)
            .map(|p| bit_at(&s, p) as i64)
            .sum()
    } else {
        s[start as usize..=end as usize]
            .iter()
            .map(|b| b.count_ones() as i64)
            .sum()
    };
    Ok(Reply::Int(n))
}

fn bitpos(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    bitpos_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn bitpos_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let bit = int(&argv[2])?;
    if bit != 0 && bit != 1 {
        return Err(Reply::err("ERR The bit argument must be 1 or 0."));
    }
    let bit = bit as u8;
    let Some(s) = read_str(ctx, &argv[1])? else {
        return Ok(Reply::Int(if bit == 1 { -1 } else { 0 }));
    };
    let len = s.len() as i64;
    let (first, last, end_given) = match argv.len() {
        3 => (0, len * 8 - 1, false),
        4..=6 => {
            let start = int(&argv[3])?;
            let isbit = unit_is_bit(argv.get(5))?;
            let end_given = argv.len() >= 5;
            let end = if end_given {
                int(&argv[4])?
            } else if isbit {
                len * 8 + 7
            } else {
                len - 1
            };
            let (a, b) = norm(start, end, if isbit { len * 8 } else { len });
            if a > b {
                return Ok(Reply::Int(-1));
            }
            if isbit {
                (a, b, end_given)
            } else {
                (a * 8, b * 8 + 7, end_given)
            }
        }
        _ => return syntax(),
    };
    if first > last {
        return Ok(Reply::Int(-1));
    }
    let found = (first as usize..=last as usize).find(|&p| bit_at(&s, p) == bit);
    Ok(Reply::Int(match found {
        Some(p) => p as i64,
        None if bit == 1 || end_given => -1,
        // Looking for a clear bit with no explicit end: the string is zero-padded to the right.
        None => len * 8,
    }))
}

fn bitop(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    bitop_inner(ctx, argv).unwrap_or_else(|e| e)
}

fn bitop_inner(ctx: &mut Ctx, argv: &[Bytes]) -> R<Reply> {
    let op = argv[1].to_ascii_lowercase();
    if !matches!(&op[..], b"and" | b"or" | b"xor" | b"not") {
        return syntax();
    }
    if &op[..] == b"not" && argv.len() != 4 {
        return Err(Reply::err(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    let mut srcs = Vec::new();
    for k in &argv[3..] {
        match ctx.db().get(k) {
            None => srcs.push(Bytes::new()),
            Some(Value::Str(s)) => srcs.push(s.clone()),
            Some(_) => return Err(wrongtype()),
        }
    }
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let byte = |s: &Bytes, j: usize| s.get(j).copied().unwrap_or(0);
    let res: Vec<u8> = (0..maxlen)
        .map(|j| {
            let mut out = byte(&srcs[0], j);
            if &op[..] == b"not" {
                return !out;
            }
            for s in &srcs[1..] {
                let b = byte(s, j);
                match &op[..] {
                    b"and" => out &= b,
                    b"or" => out |= b,
                    _ => out ^= b,
                }
            }
            out
        })
        .collect();
    let dest = &argv[2];
    if maxlen > 0 {
        ctx.db().set(dest.clone(), Value::Str(Bytes::from(res)));
        ctx.modified(dest);
    } else if ctx.db().remove_live(dest) {
        ctx.modified(dest);
    }
    Ok(Reply::Int(maxlen as i64))
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Get,
    Set,
    Incr,
}

struct FieldOp {
    op: Op,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

fn field_type(arg: &[u8]) -> R<(bool, u32)> {
    let err = || {
        Reply::err("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
    };
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    match parse_i64(&arg[1..]) {
        Some(b) if b >= 1 && ((signed && b <= 64) || (!signed && b <= 63)) => {
            Ok((signed, b as u32))
        }
        _ => Err(err()),
    }
}

fn get_unsigned(p: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..bits as u64 {
        let pos = offset + j;
        let byte = (pos >> 3) as usize;
        let bit = p.get(byte).map_or(0, |b| (b >> (7 - (pos & 7))) & 1);
        v = (v << 1) | bit as u64;
    }
    v
}

fn get_signed(p: &[u8], offset: u64, bits: u32) -> i64 {
    let mut v = get_unsigned(p, offset, bits);
    if bits < 64 && v & (1u64 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

fn set_field(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let on = (value >> (bits as u64 - 1 - j)) & 1;
        let pos = offset + j;
        let byte = (pos >> 3) as usize;
        let bit = 7 - (pos & 7);
        p[byte] = (p[byte] & !(1 << bit)) | ((on as u8) << bit);
    }
}

/// `checkUnsignedBitfieldOverflow`: Some(limit or wrapped value) on overflow.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = (1u64 << bits) - 1;
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX << bits);
    if value > max || (incr > 0 && incr > maxincr) {
        Some(if ow == Overflow::Sat { max } else { wrap() })
    } else if incr < 0 && incr < minincr {
        Some(if ow == Overflow::Sat { 0 } else { wrap() })
    } else {
        None
    }
}

/// `checkSignedBitfieldOverflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        Some(if ow == Overflow::Sat { max } else { wrap() })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        Some(if ow == Overflow::Sat { min } else { wrap() })
    } else {
        None
    }
}

fn bitfield(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    bitfield_inner(ctx, argv, false).unwrap_or_else(|e| e)
}

fn bitfield_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    bitfield_inner(ctx, argv, true).unwrap_or_else(|e| e)
}

fn bitfield_inner(ctx: &mut Ctx, argv: &[Bytes], ro: bool) -> R<Reply> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut highest: u64 = 0;
    let mut readonly = true;
    let mut j = 2;
    while j < argv.len() {
        let rem = argv.len() - j - 1;
        let a = &argv[j];
        let op = if is(a, "get") && rem >= 2 {
            Op::Get
        } else if is(a, "set") && rem >= 3 {
            Op::Set
        } else if is(a, "incrby") && rem >= 3 {
            Op::Incr
        } else if is(a, "overflow") && rem >= 1 {
            let t = &argv[j + 1];
            overflow = if is(t, "wrap") {
                Overflow::Wrap
            } else if is(t, "sat") {
                Overflow::Sat
            } else if is(t, "fail") {
                Overflow::Fail
            } else {
                return Err(Reply::err("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(Reply::err(SYNTAX));
        };
        let (signed, bits) = field_type(&argv[j + 1])?;
        let offset = bit_offset(ctx, &argv[j + 2], bits)?;
        let mut value = 0;
        if op != Op::Get {
            readonly = false;
            highest = highest.max(offset + bits as u64 - 1);
            value = int(&argv[j + 3])?;
        }
        ops.push(FieldOp {
            op,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if op == Op::Get { 3 } else { 4 };
    }
    let key = &argv[1];
    if readonly {
        let s = read_str(ctx, key)?.unwrap_or_default();
        return Ok(Reply::Array(
            ops.iter()
                .map(|o| {
                    if o.signed {
                        Reply::Int(get_signed(&s, o.offset, o.bits))
                    } else {
                        Reply::Int(get_unsigned(&s, o.offset, o.bits) as i64)
                    }
                })
                .collect(),
        ));
    }
    if ro {
        return Err(Reply::err(
            "ERR BITFIELD_RO only supports the GET subcommand",
        ));
    }
    let replies = with_grown(ctx, key, (highest >> 3) as usize + 1, |p| {
        ops.iter().map(|o| run_op(p, o)).collect::<Vec<_>>()
    })?;
    ctx.modified(key);
    Ok(Reply::Array(replies))
}

fn run_op(p: &mut [u8], o: &FieldOp) -> Reply {
    if o.op == Op::Get {
        return if o.signed {
            Reply::Int(get_signed(p, o.offset, o.bits))
        } else {
            Reply::Int(get_unsigned(p, o.offset, o.bits) as i64)
        };
    }
    let (ret, new, over) = if o.signed {
        let old = get_signed(p, o.offset, o.bits);
        if o.op == Op::Incr {
            let ov = signed_overflow(old, o.value, o.bits, o.overflow);
            let new = ov.unwrap_or_else(|| old.wrapping_add(o.value));
            (new, new as u64, ov.is_some())
        } else {
            let ov = signed_overflow(o.value, 0, o.bits, o.overflow);
            (old, ov.unwrap_or(o.value) as u64, ov.is_some())
        }
    } else {
        let old = get_unsigned(p, o.offset, o.bits);
        if o.op == Op::Incr {
            let ov = unsigned_overflow(old, o.value, o.bits, o.overflow);
            let new = ov.unwrap_or_else(|| old.wrapping_add(o.value as u64));
            (new as i64, new, ov.is_some())
        } else {
            let ov = unsigned_overflow(o.value as u64, 0, o.bits, o.overflow);
            (old as i64, ov.unwrap_or(o.value as u64), ov.is_some())
        }
    };
    if over && o.overflow == Overflow::Fail {
        return Reply::Nil;
    }
    set_field(p, o.offset, o.bits, new);
    Reply::Int(ret)
}
