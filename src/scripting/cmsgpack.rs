//! The `cmsgpack` library (lua-cmsgpack 0.4.0 as bundled with Redis), written on mlua.

use mlua::{ffi, Lua, MultiValue, Table, Value};

use super::api::{check_number, lib_fn, Fail};

const MAX_NESTING: usize = 16;

pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lib_fn(lua, |lua, args| {
            if args.is_empty() {
                return Ok(Err(Fail::Msg(
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)".into(),
                )));
            }
            let mut out = Vec::new();
            for a in args.iter() {
                encode(a, 0, &mut out)?;
            }
            let mut m = MultiValue::new();
            m.push_back(Value::String(lua.create_string(&out)?));
            Ok(Ok(m))
        })?,
    )?;
    t.raw_set(
        "unpack",
        lib_fn(lua, |lua, args| unpack_full(lua, &args, 0, 0))?,
    )?;
    t.raw_set(
        "unpack_one",
        lib_fn(lua, |lua, args| {
            let offset = match args.get(1) {
                None | Some(Value::Nil) => 0,
                v => match check_number(lua, v, 2, "unpack_one") {
                    Ok(n) => n as i64,
                    Err(f) => return Ok(Err(f)),
                },
            };
            unpack_full(lua, &args, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lib_fn(lua, |lua, args| {
            let limit = match check_number(lua, args.get(1), 2, "unpack_limit") {
                Ok(n) => n as i64,
                Err(f) => return Ok(Err(f)),
            };
            let offset = match args.get(2) {
                None | Some(Value::Nil) => 0,
                v => match check_number(lua, v, 3, "unpack_limit") {
                    Ok(n) => n as i64,
                    Err(f) => return Ok(Err(f)),
                },
            };
            unpack_full(lua, &args, limit, offset)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

fn int_equivalent(n: f64) -> bool {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    (-LIMIT..LIMIT).contains(&n) && n.trunc() == n
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    if int_equivalent(n) {
        encode_int(n as i64, out);
    } else {
        let f = n as f32;
        if (f as f64) == n {
            out.push(0xca);
            out.extend_from_slice(&f.to_be_bytes());
        } else {
            out.push(0xcb);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn encode_len(len: usize, small: u8, small_max: usize, codes: [u8; 2], out: &mut Vec<u8>) {
    if len <= small_max {
        out.push(small | len as u8);
    } else if len <= 0xffff {
        out.push(codes[0]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(codes[1]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn encode(v: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            let len = b.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.extend_from_slice(&[0xd9, len as u8]);
            } else if len <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(*i as f64, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(t) if level < MAX_NESTING => {
            // table_is_an_array: every key a positive integer and max == count.
            let (mut count, mut max, mut array) = (0i64, 0i64, true);
            for pair in t.pairs::<Value, Value>() {
                let (k, _) = pair?;
                let n = match k {
                    Value::Integer(i) => i as f64,
                    Value::Number(n) => n,
                    _ => {
                        array = false;
                        break;
                    }
                };
                if n <= 0.0 || !(n.is_finite() && (n as i32) as f64 == n) {
                    array = false;
                    break;
                }
                max = max.max(n as i64);
                count += 1;
            }
            if array && max == count {
                let len = t.raw_len();
                encode_len(len, 0x90, 15, [0xdc, 0xdd], out);
                for j in 1..=len {
                    let item: Value = t.get(j)?;
                    let item = super::cjson::exact_number(t, &Value::Integer(j as i64), item)?;
                    encode(&item, level + 1, out)?;
                }
            } else {
                let pairs: Vec<(Value, Value)> =
                    t.pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
                encode_len(pairs.len(), 0x80, 15, [0xde, 0xdf], out);
                for (k, v) in &pairs {
                    encode(k, level + 1, out)?;
                    encode(
                        &super::cjson::exact_number(t, k, v.clone())?,
                        level + 1,
                        out,
                    )?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

enum DErr {
    Eof,
    BadFmt,
    Lua(mlua::Error),
}

impl From<mlua::Error> for DErr {
    fn from(e: mlua::Error) -> Self {
        DErr::Lua(e)
    }
}

struct Cur<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cur<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DErr> {
        if self.data.len() - self.pos < n {
            return Err(DErr::Eof);
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn uint(&mut self, n: usize) -> Result<u64, DErr> {
        let b = self.take(n)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }
}

fn decode(lua: &Lua, c: &mut Cur, depth: usize) -> Result<Value, DErr> {
    if depth > 2000 {
        return Err(DErr::BadFmt);
    }
    let b = c.take(1)?[0];
    let num = |n: f64| Ok(Value::Number(n));
    match b {
        0xcc => num(c.uint(1)? as f64),
        0xcd => num(c.uint(2)? as f64),
        0xce => num(c.uint(4)? as f64),
        0xcf => num(c.uint(8)? as f64),
        0xd0 => num(c.uint(1)? as u8 as i8 as f64),
        0xd1 => num(c.uint(2)? as u16 as i16 as f64),
        0xd2 => num(c.uint(4)? as u32 as i32 as f64),
        0xd3 => num(c.uint(8)? as i64 as f64),
        0xc0 => Ok(Value::Nil),
        0xc3 => Ok(Value::Boolean(true)),
        0xc2 => Ok(Value::Boolean(false)),
        0xca => num(f32::from_bits(c.uint(4)? as u32) as f64),
        0xcb => num(f64::from_bits(c.uint(8)?)),
        0xd9 => str_of(lua, c, 1),
        0xda => str_of(lua, c, 2),
        0xdb => str_of(lua, c, 4),
        0xdc => {
            let n = c.uint(2)? as usize;
            array(lua, c, n, depth)
        }
        0xdd => {
            let n = c.uint(4)? as usize;
            array(lua, c, n, depth)
        }
        0xde => {
            let n = c.uint(2)? as usize;
            map(lua, c, n, depth)
        }
        0xdf => {
            let n = c.uint(4)? as usize;
            map(lua, c, n, depth)
        }
        0x00..=0x7f => num(b as f64),
        0xe0..=0xff => num(b as i8 as f64),
        0xa0..=0xbf => {
            let s = c.take((b & 0x1f) as usize)?;
            Ok(Value::String(lua.create_string(s)?))
        }
        0x90..=0x9f => array(lua, c, (b & 0xf) as usize, depth),
        0x80..=0x8f => map(lua, c, (b & 0xf) as usize, depth),
        _ => Err(DErr::BadFmt),
    }
}

fn str_of(lua: &Lua, c: &mut Cur, width: usize) -> Result<Value, DErr> {
    let n = c.uint(width)? as usize;
    let s = c.take(n)?;
    Ok(Value::String(lua.create_string(s)?))
}

fn array(lua: &Lua, c: &mut Cur, n: usize, depth: usize) -> Result<Value, DErr> {
    let t = lua.create_table()?;
    for i in 1..=n {
        let v = decode(lua, c, depth + 1)?;
        t.raw_set(i, v)?;
    }
    Ok(Value::Table(t))
}

fn map(lua: &Lua, c: &mut Cur, n: usize, depth: usize) -> Result<Value, DErr> {
    let t = lua.create_table()?;
    for _ in 0..n {
        let k = decode(lua, c, depth + 1)?;
        let v = decode(lua, c, depth + 1)?;
        if k.is_nil() {
            return Err(DErr::Lua(mlua::Error::RuntimeError(
                "table index is nil".into(),
            )));
        }
        t.raw_set(k, v)?;
    }
    Ok(Value::Table(t))
}

fn unpack_full(lua: &Lua, args: &MultiValue, limit: i64, offset: i64) -> super::api::LibResult {
    let data = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(Value::Integer(i)) => crate::protocol::numbers::fmt_g(*i as f64, 14).into_bytes(),
        Some(Value::Number(n)) => crate::protocol::numbers::fmt_g(*n, 14).into_bytes(),
        other => {
            let got = match other {
                None => "no value",
                Some(Value::Nil) => "nil",
                Some(v) => super::api::type_name(v),
            };
            return Ok(Err(Fail::Msg(format!(
                "bad argument #1 to 'unpack' (string expected, got {got})"
            ))));
        }
    };
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Ok(Err(Fail::Msg(format!(
            "Invalid request to unpack with offset of {offset} and limit of {}.",
            data.len()
        ))));
    }
    if offset as usize > data.len() {
        return Ok(Err(Fail::Msg(format!(
            "Start offset {offset} greater than input length {}.",
            data.len()
        ))));
    }
    let limit = if decode_all { i64::MAX } else { limit };
    let Some((mut out, end)) = fast_unpack(lua, &data, offset as usize, limit)? else {
        return slow_unpack(lua, &data, offset, limit, decode_all);
    };
    if !decode_all {
        // Where the next unpack_one/unpack_limit starts (-1: at the end).
        let next = if end == data.len() { -1 } else { end as i64 };
        out.push_front(Value::Number(next as f64));
    }
    Ok(Ok(out))
}

/// Decodes up to `limit` values from `offset` with raw Lua API calls in one protected call
/// (mlua would protect each string, table and slot on its own). None when the input has
/// anything the slow path reports as an error, so the errors stay the slow path's.
fn fast_unpack(
    lua: &Lua,
    data: &[u8],
    offset: usize,
    limit: i64,
) -> mlua::Result<Option<(MultiValue, usize)>> {
    let mut c = Cur { data, pos: offset };
    let mut n = 0usize;
    while c.pos < data.len() && (n as i64) < limit {
        if check(&mut c, 0).is_none() {
            return Ok(None);
        }
        n += 1;
    }
    let end = c.pos;
    // SAFETY: `push` reads the validated bytes and calls only the Lua API; it holds nothing
    // that needs dropping, so an out-of-memory error may unwind through it.
    let vals = unsafe {
        lua.exec_raw::<MultiValue>((), |l| {
            let mut c = Cur { data, pos: offset };
            for _ in 0..n {
                push(l, &mut c);
            }
        })?
    };
    Ok(Some((vals, end)))
}

/// What a checked value would be as a table key.
#[derive(PartialEq, Clone, Copy)]
enum Key {
    Nil,
    NaN,
    Other,
}

/// Deeper input goes the slow way (the fast path's stack use grows with the depth).
const FAST_DEPTH: usize = 64;

/// Walks one value as `decode` would, without Lua: None for what `decode` fails on (or, in a
/// map, a nil or NaN key), and for nesting past FAST_DEPTH.
fn check(c: &mut Cur, depth: usize) -> Option<Key> {
    if depth > FAST_DEPTH {
        return None;
    }
    let b = c.take(1).ok()?[0];
    let skip = |c: &mut Cur, n: usize| c.take(n).ok().map(|_| Key::Other);
    match b {
        0xcc | 0xd0 => skip(c, 1),
        0xcd | 0xd1 => skip(c, 2),
        0xce | 0xd2 => skip(c, 4),
        0xcf | 0xd3 => skip(c, 8),
        0xc0 => Some(Key::Nil),
        0xc2 | 0xc3 | 0x00..=0x7f | 0xe0..=0xff => Some(Key::Other),
        0xca => {
            let x = f32::from_bits(c.uint(4).ok()? as u32);
            Some(if x.is_nan() { Key::NaN } else { Key::Other })
        }
        0xcb => {
            let x = f64::from_bits(c.uint(8).ok()?);
            Some(if x.is_nan() { Key::NaN } else { Key::Other })
        }
        0xd9..=0xdb => {
            let n = c.uint(1 << (b - 0xd9)).ok()? as usize;
            skip(c, n)
        }
        0xa0..=0xbf => skip(c, (b & 0x1f) as usize),
        0xdc | 0xdd | 0x90..=0x9f => {
            let n = match b {
                0xdc => c.uint(2).ok()? as usize,
                0xdd => c.uint(4).ok()? as usize,
                _ => (b & 0xf) as usize,
            };
            for _ in 0..n {
                check(c, depth + 1)?;
            }
            Some(Key::Other)
        }
        0xde | 0xdf | 0x80..=0x8f => {
            let n = match b {
                0xde => c.uint(2).ok()? as usize,
                0xdf => c.uint(4).ok()? as usize,
                _ => (b & 0xf) as usize,
            };
            for _ in 0..n {
                let k = check(c, depth + 1)?;
                check(c, depth + 1)?;
                if k != Key::Other {
                    return None;
                }
            }
            Some(Key::Other)
        }
        _ => None,
    }
}

/// Pushes one checked value (as `decode` builds it: tables from `lua_newtable`, as
/// lua-cmsgpack does, so `#t` of arrays with holes stays the same).
unsafe fn push(l: *mut ffi::lua_State, c: &mut Cur) {
    let b = c.take(1).map_or(0xc0, |s| s[0]);
    let uint = |c: &mut Cur, n: usize| c.uint(n).unwrap_or(0);
    let num = |x: f64| ffi::lua_pushnumber(l, x);
    match b {
        0xcc => num(uint(c, 1) as f64),
        0xcd => num(uint(c, 2) as f64),
        0xce => num(uint(c, 4) as f64),
        0xcf => num(uint(c, 8) as f64),
        0xd0 => num(uint(c, 1) as u8 as i8 as f64),
        0xd1 => num(uint(c, 2) as u16 as i16 as f64),
        0xd2 => num(uint(c, 4) as u32 as i32 as f64),
        0xd3 => num(uint(c, 8) as i64 as f64),
        0xc3 => ffi::lua_pushboolean(l, 1),
        0xc2 => ffi::lua_pushboolean(l, 0),
        0xca => num(f32::from_bits(uint(c, 4) as u32) as f64),
        0xcb => num(f64::from_bits(uint(c, 8))),
        0x00..=0x7f => num(b as f64),
        0xe0..=0xff => num(b as i8 as f64),
        0xd9 | 0xda | 0xdb | 0xa0..=0xbf => {
            let n = if b >= 0xd9 {
                uint(c, 1 << (b - 0xd9)) as usize
            } else {
                (b & 0x1f) as usize
            };
            let s = c.take(n).unwrap_or_default();
            ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
        }
        0xdc | 0xdd | 0x90..=0x9f => {
            let n = match b {
                0xdc => uint(c, 2) as usize,
                0xdd => uint(c, 4) as usize,
                _ => (b & 0xf) as usize,
            };
            ffi::luaL_checkstack(l, 3, c"msgpack".as_ptr());
            ffi::lua_createtable(l, 0, 0);
            for i in 1..=n {
                push(l, c);
                ffi::lua_rawseti(l, -2, i as i64);
            }
        }
        0xde | 0xdf | 0x80..=0x8f => {
            let n = match b {
                0xde => uint(c, 2) as usize,
                0xdf => uint(c, 4) as usize,
                _ => (b & 0xf) as usize,
            };
            ffi::luaL_checkstack(l, 4, c"msgpack".as_ptr());
            ffi::lua_createtable(l, 0, 0);
            for _ in 0..n {
                push(l, c);
                push(l, c);
                ffi::lua_rawset(l, -3);
            }
        }
        _ => ffi::lua_pushnil(l),
    }
}

/// `decode` through mlua, value by value: the path for input with errors.
fn slow_unpack(
    lua: &Lua,
    data: &[u8],
    offset: i64,
    limit: i64,
    decode_all: bool,
) -> mlua::Result<Result<MultiValue, Fail>> {
    let mut c = Cur {
        data,
        pos: offset as usize,
    };
    let mut out = MultiValue::new();
    let mut cnt = 0;
    while c.pos < data.len() && cnt < limit {
        match decode(lua, &mut c, 0) {
            Ok(v) => out.push_back(v),
            Err(DErr::Eof) => return Ok(Err(Fail::Msg("Missing bytes in input.".into()))),
            Err(DErr::BadFmt) => return Ok(Err(Fail::Msg("Bad data format in input.".into()))),
            Err(DErr::Lua(e)) => return Err(e),
        }
        cnt += 1;
    }
    if !decode_all {
        let left = data.len() - c.pos;
        let next = if left == 0 { -1 } else { c.pos as i64 };
        out.push_front(Value::Number(next as f64));
    }
    Ok(Ok(out))
}
