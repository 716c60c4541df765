//! The `bit` library (LuaBitOp 1.0.2 as bundled with Redis): 32-bit operations on Lua numbers.

use mlua::{Lua, MultiValue, Table, Value};

use super::api::{check_number, lib_fn, ok1, LibResult};

/// LuaBitOp's `barg`: add 2^52+2^51 and keep the low 32 bits (rounds, wraps modulo 2^32).
fn barg(lua: &Lua, args: &MultiValue, i: usize, name: &str) -> Result<u32, super::api::Fail> {
    let n = check_number(lua, args.get(i), i + 1, name)?;
    Ok((n + 6755399441055744.0).to_bits() as u32)
}

fn bret(b: u32) -> LibResult {
    ok1(Value::Number(b as i32 as f64))
}

macro_rules! tryf {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(f) => return Ok(Err(f)),
        }
    };
}

pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    type Op = fn(u32, u32) -> u32;
    type Unary = fn(u32) -> u32;
    let unary: [(&'static str, Unary); 3] = [
        ("tobit", |b| b),
        ("bnot", |b| !b),
        ("bswap", |b: u32| b.swap_bytes()),
    ];
    for (name, f) in unary {
        t.raw_set(
            name,
            lib_fn(lua, move |lua, args| {
                bret(f(tryf!(barg(lua, &args, 0, name))))
            })?,
        )?;
    }
    let folds: [(&'static str, Op); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, f) in folds {
        t.raw_set(
            name,
            lib_fn(lua, move |lua, args| {
                let mut b = tryf!(barg(lua, &args, 0, name));
                for i in (1..args.len()).rev() {
                    b = f(b, tryf!(barg(lua, &args, i, name)));
                }
                bret(b)
            })?,
        )?;
    }
    let shifts: [(&'static str, Op); 5] = [
        ("lshift", |b, n| b << n),
        ("rshift", |b, n| b >> n),
        ("arshift", |b, n| ((b as i32) >> n) as u32),
        ("rol", |b, n| b.rotate_left(n)),
        ("ror", |b, n| b.rotate_right(n)),
    ];
    for (name, f) in shifts {
        t.raw_set(
            name,
            lib_fn(lua, move |lua, args| {
                let b = tryf!(barg(lua, &args, 0, name));
                let n = tryf!(barg(lua, &args, 1, name)) & 31;
                bret(f(b, n))
            })?,
        )?;
    }
    t.raw_set(
        "tohex",
        lib_fn(lua, |lua, args| {
            let mut b = tryf!(barg(lua, &args, 0, "tohex"));
            let mut n: i32 = if args.len() < 2 {
                8
            } else {
                tryf!(barg(lua, &args, 1, "tohex")) as i32
            };
            let mut digits = b"0123456789abcdef";
            if n < 0 {
                n = n.wrapping_neg();
                digits = b"0123456789ABCDEF";
            }
            let n = n.clamp(0, 8) as usize;
            let mut buf = vec![0u8; n];
            for i in (0..n).rev() {
                buf[i] = digits[(b & 15) as usize];
                b >>= 4;
            }
            ok1(Value::String(lua.create_string(&buf)?))
        })?,
    )?;
    Ok(t)
}
