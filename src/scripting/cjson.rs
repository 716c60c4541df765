//! The `cjson` library (lua-cjson 2.1.0 as bundled with Redis), written on mlua: the same
//! number formatting (`%.14g`), escapes, sparse-array rule, tokenizer and error messages.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Table, Value};

use super::api::{lib_fn, ok1, type_name, Fail};
use super::strtod::strtod;
use crate::protocol::numbers::fmt_g;

struct Config {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    precision: i64,
    keep_buffer: bool,
    /// 0 = error, 1 = allowed, 2 = encode as null.
    encode_invalid: u8,
    decode_invalid: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            keep_buffer: true,
            encode_invalid: 0,
            decode_invalid: true,
        }
    }
}

type Cfg = Rc<RefCell<Config>>;

pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let cfg: Cfg = Rc::new(RefCell::new(Config::default()));
    let c = cfg.clone();
    t.raw_set(
        "encode",
        lib_fn(lua, move |lua, args| {
            if args.len() != 1 {
                return Ok(Err(Fail::Msg(
                    "bad argument #1 to 'encode' (expected 1 argument)".into(),
                )));
            }
            let mut out = Vec::new();
            if let Err(e) = encode(&c.borrow(), &args[0], 0, &mut out) {
                return Ok(Err(Fail::Msg(e)));
            }
            ok1(Value::String(lua.create_string(&out)?))
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode",
        lib_fn(lua, move |lua, args| {
            if args.len() != 1 {
                return Ok(Err(Fail::Msg(
                    "bad argument #1 to 'decode' (expected 1 argument)".into(),
                )));
            }
            let data = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(i) => fmt_g(*i as f64, 14).into_bytes(),
                Value::Number(n) => fmt_g(*n, 14).into_bytes(),
                other => {
                    return Ok(Err(Fail::Msg(format!(
                        "bad argument #1 to 'decode' (string expected, got {})",
                        if other.is_nil() {
                            "nil"
                        } else {
                            type_name(other)
                        }
                    ))))
                }
            };
            if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
                return Ok(Err(Fail::Msg(
                    "JSON parser does not support UTF-16 or UTF-32".into(),
                )));
            }
            let max_depth = c.borrow().decode_max_depth;
            let mut p = Parser {
                lua,
                data: &data,
                pos: 0,
                depth: 0,
                max_depth,
            };
            match p.document() {
                Ok(v) => ok1(v),
                Err(PErr::Msg(m)) => Ok(Err(Fail::Msg(m))),
                Err(PErr::Lua(e)) => Err(e),
            }
        })?,
    )?;
    t.raw_set("null", Value::NULL)?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    config_fns(lua, &t, &cfg)?;
    Ok(t)
}

fn config_fns(lua: &Lua, t: &Table, cfg: &Cfg) -> mlua::Result<()> {
    fn num(v: Option<&Value>) -> Option<i64> {
        match v? {
            Value::Integer(i) => Some(*i),
            Value::Number(n) => Some(*n as i64),
            _ => None,
        }
    }
    fn boolish(v: Option<&Value>) -> Option<bool> {
        match v? {
            Value::Boolean(b) => Some(*b),
            Value::Integer(i) => Some(*i != 0),
            Value::Number(n) => Some(*n != 0.0),
            Value::String(s) => {
                Some(s.as_bytes().as_ref() == b"on" || s.as_bytes().as_ref() == b"true")
            }
            _ => None,
        }
    }
    let c = cfg.clone();
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(move |_, args: MultiValue| {
            let mut c = c.borrow_mut();
            if let Some(b) = boolish(args.front()) {
                c.sparse_convert = b;
            }
            if let Some(n) = num(args.get(1)) {
                c.sparse_ratio = n;
            }
            if let Some(n) = num(args.get(2)) {
                c.sparse_safe = n;
            }
            Ok((c.sparse_convert, c.sparse_ratio, c.sparse_safe))
        })?,
    )?;
    type Field = fn(&mut Config) -> &mut i64;
    let ints: [(&str, Field); 3] = [
        ("encode_max_depth", |c| &mut c.encode_max_depth),
        ("decode_max_depth", |c| &mut c.decode_max_depth),
        ("encode_number_precision", |c| &mut c.precision),
    ];
    for (name, field) in ints {
        let c = cfg.clone();
        t.raw_set(
            name,
            lua.create_function(move |_, args: MultiValue| {
                let mut c = c.borrow_mut();
                if let Some(n) = num(args.front()) {
                    *field(&mut c) = n;
                }
                Ok(*field(&mut c))
            })?,
        )?;
    }
    let c = cfg.clone();
    t.raw_set(
        "encode_keep_buffer",
        lua.create_function(move |_, args: MultiValue| {
            let mut c = c.borrow_mut();
            if let Some(b) = boolish(args.front()) {
                c.keep_buffer = b;
            }
            Ok(c.keep_buffer)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode_invalid_numbers",
        lua.create_function(move |_, args: MultiValue| {
            let mut c = c.borrow_mut();
            if let Some(b) = boolish(args.front()) {
                c.decode_invalid = b;
            }
            Ok(c.decode_invalid)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, args: MultiValue| {
            let mut c = c.borrow_mut();
            match args.front() {
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"null" => c.encode_invalid = 2,
                v => {
                    if let Some(b) = boolish(v) {
                        c.encode_invalid = b as u8;
                    }
                }
            }
            Ok(match c.encode_invalid {
                2 => Value::String(lua.create_string("null")?),
                n => Value::Boolean(n == 1),
            })
        })?,
    )?;
    Ok(())
}

fn escape(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            8 => out.extend_from_slice(b"\\b"),
            9 => out.extend_from_slice(b"\\t"),
            10 => out.extend_from_slice(b"\\n"),
            12 => out.extend_from_slice(b"\\f"),
            13 => out.extend_from_slice(b"\\r"),
            c if c < 32 || c == 127 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn number(cfg: &Config, n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    if n.is_nan() || n.is_infinite() {
        match cfg.encode_invalid {
            0 => return Err("Cannot serialise number: must not be NaN or Inf".into()),
            1 if n.is_nan() => {
                out.extend_from_slice(b"nan");
                return Ok(());
            }
            2 => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
    }
    out.extend_from_slice(fmt_g(n, cfg.precision.clamp(1, 14) as usize).as_bytes());
    Ok(())
}

/// mlua (Lua 5.1) turns any number within f64::EPSILON of an integer into `Value::Integer`, so
/// -0.0 and tiny numbers such as 1e-300 arrive as `Integer(0)`. For a value read from a table,
/// read it again as a raw f64 (exact, straight from the Lua stack).
pub(crate) fn exact_number(t: &Table, k: &Value, v: Value) -> mlua::Result<Value> {
    match v {
        Value::Integer(0) => Ok(Value::Number(t.raw_get::<f64>(k.clone())?)),
        v => Ok(v),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// lua_array_length: Some(max) for an array (all keys positive integers), None for an object.
fn array_length(cfg: &Config, t: &Table) -> Result<Option<usize>, String> {
    let (mut max, mut items) = (0f64, 0i64);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        match as_f64(&k) {
            Some(k) if k.floor() == k && k >= 1.0 => {
                if k > max {
                    max = k;
                }
                items += 1;
            }
            _ => return Ok(None),
        }
    }
    if cfg.sparse_ratio > 0
        && max > (items * cfg.sparse_ratio) as f64
        && max > cfg.sparse_safe as f64
    {
        if !cfg.sparse_convert {
            return Err("Cannot serialise table: excessively sparse array".into());
        }
        return Ok(None);
    }
    Ok(Some(max as usize))
}

fn encode(cfg: &Config, v: &Value, depth: i64, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::String(s) => escape(&s.as_bytes(), out),
        Value::Integer(_) | Value::Number(_) => number(cfg, as_f64(v).unwrap_or(0.0), out)?,
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(u) if u.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_length(cfg, t)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                        let item = exact_number(t, &Value::Integer(i as i64), item)
                            .map_err(|e| e.to_string())?;
                        encode(cfg, &item, depth, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut comma = false;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, val) = pair.map_err(|e| e.to_string())?;
                        if comma {
                            out.push(b',');
                        }
                        comma = true;
                        match &k {
                            Value::Integer(_) | Value::Number(_) => {
                                out.push(b'"');
                                number(cfg, as_f64(&k).unwrap_or(0.0), out)?;
                                out.extend_from_slice(b"\":");
                            }
                            Value::String(s) => {
                                escape(&s.as_bytes(), out);
                                out.push(b':');
                            }
                            other => {
                                return Err(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    type_name(other)
                                ))
                            }
                        }
                        let val = exact_number(t, &k, val).map_err(|e| e.to_string())?;
                        encode(cfg, &val, depth, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                type_name(other)
            ))
        }
    }
    Ok(())
}

enum PErr {
    Msg(String),
    Lua(mlua::Error),
}

impl From<mlua::Error> for PErr {
    fn from(e: mlua::Error) -> Self {
        PErr::Lua(e)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool,
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num => "T_NUMBER",
            Tok::Bool => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(s) => s,
        }
    }
}

struct Token {
    kind: Tok,
    index: usize,
    num: f64,
    boolean: bool,
    text: Vec<u8>,
}

struct Parser<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    depth: i64,
    max_depth: i64,
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn next(&mut self) -> Token {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r')
            && self.pos < self.data.len()
        {
            self.pos += 1;
        }
        let mut tok = Token {
            kind: Tok::End,
            index: self.pos,
            num: 0.0,
            boolean: false,
            text: Vec::new(),
        };
        let ch = self.at(self.pos);
        let simple = match ch {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            0 => {
                tok.kind = Tok::End;
                return tok;
            }
            _ => None,
        };
        if let Some(k) = simple {
            self.pos += 1;
            tok.kind = k;
            return tok;
        }
        let rest = &self.data[self.pos..];
        if ch == b'"' {
            self.string(&mut tok);
        } else if ch == b'-' || ch.is_ascii_digit() {
            self.number(&mut tok);
        } else if rest.starts_with(b"true") {
            tok.kind = Tok::Bool;
            tok.boolean = true;
            self.pos += 4;
        } else if rest.starts_with(b"false") {
            tok.kind = Tok::Bool;
            self.pos += 5;
        } else if rest.starts_with(b"null") {
            tok.kind = Tok::Null;
            self.pos += 4;
        } else if self.invalid_number() {
            self.number(&mut tok);
        } else {
            tok.kind = Tok::Error("invalid token");
        }
        tok
    }

    fn invalid_number(&self) -> bool {
        let mut p = self.pos;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        if self.at(p) == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        }
        if self.at(p) <= b'9' {
            return false;
        }
        let word: Vec<u8> = self.data[p..]
            .iter()
            .take(3)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        word == b"inf" || word == b"nan"
    }

    fn number(&mut self, tok: &mut Token) {
        match strtod(&self.data[self.pos..]) {
            Some((n, used)) => {
                tok.kind = Tok::Num;
                tok.num = n;
                self.pos += used;
            }
            None => tok.kind = Tok::Error("invalid number"),
        }
    }

    fn string(&mut self, tok: &mut Token) {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let ch = self.at(self.pos);
            if ch == b'"' {
                break;
            }
            if ch == 0 {
                tok.index = self.pos;
                tok.kind = Tok::Error("unexpected end of string");
                return;
            }
            if ch == b'\\' {
                let e = self.at(self.pos + 1);
                let c = match e {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => 9,
                    b'n' => 10,
                    b'f' => 12,
                    b'r' => 13,
                    b'u' => match self.unicode() {
                        Some((cp, len)) => {
                            let mut buf = [0u8; 4];
                            let s = char::from_u32(cp)
                                .unwrap_or('\u{fffd}')
                                .encode_utf8(&mut buf);
                            out.extend_from_slice(s.as_bytes());
                            self.pos += len;
                            continue;
                        }
                        None => {
                            tok.index = self.pos;
                            tok.kind = Tok::Error("invalid unicode escape code");
                            return;
                        }
                    },
                    _ => {
                        tok.index = self.pos;
                        tok.kind = Tok::Error("invalid escape code");
                        return;
                    }
                };
                self.pos += 1;
                out.push(c);
                self.pos += 1;
                continue;
            }
            out.push(ch);
            self.pos += 1;
        }
        self.pos += 1;
        tok.kind = Tok::Str;
        tok.text = out;
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let s = self.data.get(at..at + 4)?;
        let s = std::str::from_utf8(s).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    }

    /// A `\uXXXX` escape (with a following low surrogate when needed): (code point, length).
    fn unicode(&self) -> Option<(u32, usize)> {
        let hi = self.hex4(self.pos + 2)?;
        if (0xDC00..=0xDFFF).contains(&hi) {
            return None;
        }
        if (0xD800..=0xDBFF).contains(&hi) {
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return None;
            }
            let lo = self.hex4(self.pos + 8)?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return None;
            }
            return Some((((hi & 0x3FF) << 10 | (lo & 0x3FF)) + 0x10000, 12));
        }
        Some((hi, 6))
    }

    fn fail(&self, expected: &str, tok: &Token) -> PErr {
        PErr::Msg(format!(
            "Expected {expected} but found {} at character {}",
            tok.kind.name(),
            tok.index + 1
        ))
    }

    fn document(&mut self) -> Result<Value, PErr> {
        let tok = self.next();
        let v = self.value(&tok)?;
        let tok = self.next();
        if tok.kind != Tok::End {
            return Err(self.fail("the end", &tok));
        }
        Ok(v)
    }

    fn descend(&mut self) -> Result<(), PErr> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(PErr::Msg(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.pos
            )));
        }
        Ok(())
    }

    fn value(&mut self, tok: &Token) -> Result<Value, PErr> {
        Ok(match tok.kind {
            Tok::Str => Value::String(self.lua.create_string(&tok.text)?),
            Tok::Num => Value::Number(tok.num),
            Tok::Bool => Value::Boolean(tok.boolean),
            Tok::Null => Value::NULL,
            Tok::ObjBegin => {
                self.descend()?;
                let t = self.lua.create_table()?;
                let mut tok = self.next();
                if tok.kind != Tok::ObjEnd {
                    loop {
                        if tok.kind != Tok::Str {
                            return Err(self.fail("object key string", &tok));
                        }
                        let key = self.lua.create_string(&tok.text)?;
                        let colon = self.next();
                        if colon.kind != Tok::Colon {
                            return Err(self.fail("colon", &colon));
                        }
                        let vt = self.next();
                        let v = self.value(&vt)?;
                        t.raw_set(key, v)?;
                        tok = self.next();
                        if tok.kind == Tok::ObjEnd {
                            break;
                        }
                        if tok.kind != Tok::Comma {
                            return Err(self.fail("comma or object end", &tok));
                        }
                        tok = self.next();
                    }
                }
                self.depth -= 1;
                Value::Table(t)
            }
            Tok::ArrBegin => {
                self.descend()?;
                let t = self.lua.create_table()?;
                let mut tok = self.next();
                if tok.kind != Tok::ArrEnd {
                    let mut i = 1;
                    loop {
                        let v = self.value(&tok)?;
                        t.raw_set(i, v)?;
                        i += 1;
                        tok = self.next();
                        if tok.kind == Tok::ArrEnd {
                            break;
                        }
                        if tok.kind != Tok::Comma {
                            return Err(self.fail("comma or array end", &tok));
                        }
                        tok = self.next();
                    }
                }
                self.depth -= 1;
                Value::Table(t)
            }
            _ => return Err(self.fail("value", tok)),
        })
    }
}
