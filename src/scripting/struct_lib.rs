//! The `struct` library (Roberto Ierusalimschy's struct.c as bundled with Redis): pack, unpack
//! and size of binary records. Native order is little-endian, `long` and `size_t` are 8 bytes.

use mlua::{Lua, MultiValue, Table, Value};

use super::api::{check_number, lib_fn, Fail, LibResult};

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

struct Header {
    little: bool,
    align: usize,
}

struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn getnum(&mut self, df: usize) -> Result<usize, Fail> {
        if !self.s.get(self.i).is_some_and(|c| c.is_ascii_digit()) {
            return Ok(df);
        }
        let mut a: usize = 0;
        while let Some(c) = self.s.get(self.i).filter(|c| c.is_ascii_digit()) {
            a = a * 10 + (c - b'0') as usize;
            if a > i32::MAX as usize {
                return Err(Fail::Msg("integral size overflow".into()));
            }
            self.i += 1;
        }
        Ok(a)
    }

    fn optsize(&mut self, opt: u8) -> Result<usize, Fail> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.getnum(1)?,
            b'i' | b'I' => {
                let sz = self.getnum(4)?;
                if sz > MAXINTSIZE {
                    return Err(Fail::Msg(format!(
                        "integral size {sz} is larger than limit of {MAXINTSIZE}"
                    )));
                }
                sz
            }
            _ => 0,
        })
    }
}

fn toalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn control(fname: &str, opt: u8, f: &mut Fmt, h: &mut Header) -> Result<(), Fail> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' => h.little = true,
        b'!' => {
            let a = f.getnum(MAXALIGN)?;
            if a == 0 || a & (a - 1) != 0 {
                return Err(Fail::Msg(format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        other => {
            return Err(Fail::Msg(format!(
                "bad argument #1 to '{fname}' (invalid format option '{}')",
                other as char
            )))
        }
    }
    Ok(())
}

fn bytes_arg(v: Option<&Value>, arg: usize, fname: &str) -> Result<Vec<u8>, Fail> {
    match v {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(i)) => Ok(crate::protocol::numbers::fmt_g(*i as f64, 14).into_bytes()),
        Some(Value::Number(n)) => Ok(crate::protocol::numbers::fmt_g(*n, 14).into_bytes()),
        other => Err(Fail::Msg(format!(
            "bad argument #{arg} to '{fname}' (string expected, got {})",
            match other {
                None => "no value",
                Some(Value::Nil) => "nil",
                Some(v) => super::api::type_name(v),
            }
        ))),
    }
}

macro_rules! tryf {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(f) => return Ok(Err(f)),
        }
    };
}

fn pack(lua: &Lua, args: MultiValue) -> LibResult {
    let fmt = tryf!(bytes_arg(args.front(), 1, "pack"));
    let mut f = Fmt { s: &fmt, i: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut arg = 1;
    let mut out: Vec<u8> = Vec::new();
    while f.i < f.s.len() {
        let opt = f.s[f.i];
        f.i += 1;
        let mut size = tryf!(f.optsize(opt));
        let pad = toalign(out.len(), &h, opt, size);
        out.extend(std::iter::repeat_n(0u8, pad));
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = tryf!(check_number(
                    lua,
                    Some(args.get(arg).unwrap_or(&Value::Nil)),
                    arg + 1,
                    "pack"
                ));
                arg += 1;
                let mut value: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                let mut buf = vec![0u8; size];
                let idx: Vec<usize> = if h.little {
                    (0..size).collect()
                } else {
                    (0..size).rev().collect()
                };
                for i in idx {
                    buf[i] = (value & 0xff) as u8;
                    value = value.checked_shr(8).unwrap_or(0);
                }
                out.extend_from_slice(&buf);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = tryf!(check_number(
                    lua,
                    Some(args.get(arg).unwrap_or(&Value::Nil)),
                    arg + 1,
                    "pack"
                )) as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'd' => {
                let n = tryf!(check_number(
                    lua,
                    Some(args.get(arg).unwrap_or(&Value::Nil)),
                    arg + 1,
                    "pack"
                ));
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = tryf!(bytes_arg(
                    Some(args.get(arg).unwrap_or(&Value::Nil)),
                    arg + 1,
                    "pack"
                ));
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Ok(Err(Fail::Msg(format!(
                        "bad argument #{} to 'pack' (string too short)",
                        arg + 1
                    ))));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            other => tryf!(control("pack", other, &mut f, &mut h)),
        }
    }
    let mut m = MultiValue::new();
    m.push_back(Value::String(lua.create_string(&out)?));
    Ok(Ok(m))
}

fn unpack(lua: &Lua, args: MultiValue) -> LibResult {
    let fmt = tryf!(bytes_arg(args.front(), 1, "unpack"));
    let data = tryf!(bytes_arg(args.get(1), 2, "unpack"));
    let ld = data.len();
    let mut pos = match args.get(2) {
        None | Some(Value::Nil) => 1usize,
        v => tryf!(check_number(lua, v, 3, "unpack")) as i64 as usize,
    };
    if pos == 0 || pos > isize::MAX as usize {
        return Ok(Err(Fail::Msg(
            "bad argument #3 to 'unpack' (offset must be 1 or greater)".into(),
        )));
    }
    pos -= 1;
    let mut f = Fmt { s: &fmt, i: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut out: Vec<Value> = Vec::new();
    let short = || {
        Ok(Err(Fail::Msg(
            "bad argument #2 to 'unpack' (data string too short)".into(),
        )))
    };
    while f.i < f.s.len() {
        let opt = f.s[f.i];
        f.i += 1;
        let mut size = tryf!(f.optsize(opt));
        pos += toalign(pos, &h, opt, size);
        if !(size <= ld && pos <= ld - size) {
            return short();
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let b = &data[pos..pos + size];
                let mut l: u64 = 0;
                let order: Vec<u8> = if h.little {
                    b.iter().rev().copied().collect()
                } else {
                    b.to_vec()
                };
                for x in order {
                    l = (l << 8) | x as u64;
                }
                let v = if opt.is_ascii_lowercase() {
                    let bits = (size * 8).clamp(1, 64);
                    let mask = (!0u64) << (bits - 1);
                    if l & mask != 0 {
                        l |= mask;
                    }
                    l as i64 as f64
                } else {
                    l as f64
                };
                out.push(Value::Number(v));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().expect("4 bytes");
                let v = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(v as f64));
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().expect("8 bytes");
                let v = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    let prev = match out.last() {
                        Some(Value::Number(n)) => *n,
                        Some(Value::String(s)) => {
                            match lua.coerce_number(Value::String(s.clone()))? {
                                Some(n) => n,
                                None => {
                                    return Ok(Err(Fail::Msg(
                                        "format 'c0' needs a previous size".into(),
                                    )))
                                }
                            }
                        }
                        _ => return Ok(Err(Fail::Msg("format 'c0' needs a previous size".into()))),
                    };
                    out.pop();
                    size = prev as usize;
                    if !(size <= ld && pos <= ld - size) {
                        return short();
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(e) = data[pos..].iter().position(|&c| c == 0) else {
                    return Ok(Err(Fail::Msg("unfinished string in data".into())));
                };
                size = e + 1;
                out.push(Value::String(lua.create_string(&data[pos..pos + e])?));
            }
            other => tryf!(control("unpack", other, &mut f, &mut h)),
        }
        pos += size;
    }
    out.push(Value::Number((pos + 1) as f64));
    Ok(Ok(out.into_iter().collect()))
}

fn size(_lua: &Lua, args: MultiValue) -> LibResult {
    let fmt = tryf!(bytes_arg(args.front(), 1, "size"));
    let mut f = Fmt { s: &fmt, i: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut pos = 0usize;
    while f.i < f.s.len() {
        let opt = f.s[f.i];
        f.i += 1;
        let size = tryf!(f.optsize(opt));
        pos += toalign(pos, &h, opt, size);
        if opt == b's' {
            return Ok(Err(Fail::Msg(
                "bad argument #1 to 'size' (option 's' has no fixed size)".into(),
            )));
        } else if opt == b'c' && size == 0 {
            return Ok(Err(Fail::Msg(
                "bad argument #1 to 'size' (option 'c0' has no fixed size)".into(),
            )));
        }
        if !opt.is_ascii_alphanumeric() {
            tryf!(control("size", opt, &mut f, &mut h));
        }
        pos += size;
    }
    super::api::ok1(Value::Number(pos as f64))
}

pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lib_fn(lua, pack)?)?;
    t.raw_set("unpack", lib_fn(lua, unpack)?)?;
    t.raw_set("size", lib_fn(lua, size)?)?;
    Ok(t)
}
