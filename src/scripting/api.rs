//! The `redis` table (call, pcall, error_reply, ...), math.random, and the conversions between
//! Redis replies and Lua values, following Redis 7.0's script_lua.c.

use std::rc::Rc;

use bytes::Bytes;
use mlua::{ffi, Function, Lua, MultiValue, Table, Value};

use super::Shared;
use crate::commands::table::{self, Resolved};
use crate::protocol::numbers::fmt_g;
use crate::protocol::Reply;

pub const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";
/// What FUNCTION LOAD raises when a library's code runs past 500 ms.
pub const LOAD_TIMEOUT: &str = "ERR FUNCTION LOAD timeout";

/// How a library function written in Rust fails.
pub enum Fail {
    /// `luaL_error`: a string raised with the caller's position in front.
    Msg(String),
    /// `luaPushError` + `luaError`: an `{err=...}` table (code added as Redis does).
    Redis(String),
}

pub type LibResult = mlua::Result<Result<MultiValue, Fail>>;

/// Wraps a Rust library function so its failures are raised like Redis's C functions raise.
pub fn lib_fn<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> LibResult + 'static,
{
    let raw = lua.create_function(move |lua, mut args: MultiValue| {
        EXACT_ARGS.with(|e| {
            for (i, x) in e.borrow_mut().drain(..) {
                if let Some(v @ Value::Integer(0)) = args.get_mut(i - 1) {
                    *v = Value::Number(x);
                }
            }
        });
        let mut out = match f(lua, args)? {
            Ok(v) => v,
            Err(Fail::Msg(m)) => {
                let mut v = MultiValue::new();
                v.push_back(Value::String(lua.create_string(m)?));
                v.push_front(Value::Boolean(false));
                return Ok(v);
            }
            Err(Fail::Redis(m)) => {
                if super::ldb::logging() {
                    super::ldb::log(format!("<error> {m}").into_bytes());
                }
                let mut v = MultiValue::new();
                v.push_back(Value::Table(err_table(lua, &error_text(&m))?));
                v.push_front(Value::Boolean(false));
                return Ok(v);
            }
        };
        out.push_front(Value::Boolean(true));
        Ok(out)
    })?;
    trampoline(lua, raw, RAISE)
}

thread_local! {
    /// Number arguments mlua would read as the integer 0 (see `lossy_number`), recorded by the
    /// trampoline straight from the Lua stack: (1-based position, exact value).
    static EXACT_ARGS: std::cell::RefCell<Vec<(usize, f64)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// mlua (Lua 5.1) converts a number within f64::EPSILON of an integer to `Value::Integer`:
/// -0.0 and nonzero numbers closer to 0 than that (1e-300, denormals) would become 0.
fn lossy_number(x: f64) -> bool {
    x.abs() < f64::EPSILON && (x != 0.0 || x.is_sign_negative())
}

const RAISE: i32 = 1;

/// A C closure around a Rust function returning `true, results...` or `false, error`: it
/// raises the error (a string gets the caller's position, as luaL_error adds it; a table is
/// raised as is), or returns the error value (without RAISE in `mode`). Being a C function,
/// it keeps the caller's frame on tail calls, so error positions stay right.
fn trampoline(lua: &Lua, f: Function, mode: i32) -> mlua::Result<Function> {
    unsafe extern "C-unwind" fn tramp(l: *mut ffi::lua_State) -> std::os::raw::c_int {
        let n = ffi::lua_gettop(l);
        let mode = ffi::lua_tointeger(l, ffi::lua_upvalueindex(2)) as i32;
        // Library functions (lib_fn) get the exact values back from EXACT_ARGS.
        EXACT_ARGS.with(|e| {
            let mut e = e.borrow_mut();
            e.clear();
            for i in 1..=n {
                if ffi::lua_type(l, i) == ffi::LUA_TNUMBER {
                    let x = ffi::lua_tonumber(l, i);
                    if lossy_number(x) {
                        e.push((i as usize, x));
                    }
                }
            }
        });
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, n, ffi::LUA_MULTRET);
        let k = ffi::lua_gettop(l);
        let failed =
            k >= 1 && ffi::lua_type(l, 1) == ffi::LUA_TBOOLEAN && ffi::lua_toboolean(l, 1) == 0;
        if failed && mode & RAISE != 0 {
            ffi::lua_settop(l, 2);
            if ffi::lua_type(l, 2) == ffi::LUA_TSTRING {
                ffi::luaL_where(l, 1);
                ffi::lua_insert(l, 2);
                ffi::lua_concat(l, 2);
            }
            ffi::lua_error(l)
        }
        ffi::lua_remove(l, 1);
        k - 1
    }
    // SAFETY: pushes a C closure over two upvalues that exec_raw placed on the stack.
    unsafe {
        lua.exec_raw::<Function>((f, mode), |l| {
            ffi::lua_pushcclosure(l, tramp, 2);
        })
    }
}

pub fn ok1(v: Value) -> LibResult {
    let mut m = MultiValue::new();
    m.push_back(v);
    Ok(Ok(m))
}

/// `luaPushErrorBuff`: "-CODE msg" keeps its code, anything else gets "ERR"; trailing CR/LF go.
pub fn error_text(raw: &str) -> String {
    let (code, msg) = match raw.strip_prefix('-') {
        Some(r) => match r.split_once(' ') {
            Some((c, m)) => (c, m),
            None => ("ERR", r),
        },
        None => ("ERR", raw),
    };
    let msg = msg.trim_matches(|c| c == '\r' || c == '\n');
    format!("{code} {msg}")
}

pub fn err_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(t)
}

/// Number arguments reach commands as `%.17g` (Redis 7.0), strings as they are.
fn lua_arg(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(i) => Some(Bytes::from(fmt_g(*i as f64, 17))),
        Value::Number(n) => Some(Bytes::from(fmt_g(*n, 17))),
        _ => None,
    }
}

/// C's `(long long)` cast of a double as x86-64 performs it.
pub fn trunc_i64(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// A script's return value as the reply the caller gets (luaReplyToRedisReply).
pub fn lua_to_reply(v: &Value, script_resp3: bool, client_resp3: bool) -> Reply {
    to_reply(v, script_resp3, client_resp3, 0)
}

fn lua_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn to_reply(v: &Value, s3: bool, c3: bool, depth: usize) -> Reply {
    if depth > 1000 {
        return Reply::err("ERR reached lua stack limit");
    }
    match v {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) => {
            if s3 {
                Reply::Bool(*b)
            } else if *b {
                Reply::Int(1)
            } else {
                Reply::Nil
            }
        }
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(trunc_i64(*n)),
        Value::Table(t) => {
            let get = |k: &str| t.raw_get::<Value>(k).unwrap_or(Value::Nil);
            if let Some(e) = lua_bytes(&get("err")) {
                return Reply::Error(String::from_utf8_lossy(&e).into_owned());
            }
            if let Some(s) = lua_bytes(&get("ok")) {
                let s = String::from_utf8_lossy(&s).replace(['\r', '\n'], " ");
                return Reply::Status(s);
            }
            match get("double") {
                Value::Number(n) => return Reply::Double(n),
                // raw_get::<f64> keeps -0.0 and tiny values that Value reads as Integer(0).
                Value::Integer(_) => {
                    return Reply::Double(t.raw_get::<f64>("double").unwrap_or(0.0))
                }
                _ => {}
            }
            if let Some(b) = lua_bytes(&get("big_number")) {
                let s = String::from_utf8_lossy(&b).replace(['\r', '\n'], " ");
                let raw = if c3 {
                    format!("({s}\r\n")
                } else {
                    format!("${}\r\n{s}\r\n", s.len())
                };
                return Reply::Raw(Bytes::from(raw));
            }
            if let Value::Table(vt) = get("verbatim_string") {
                let f = lua_bytes(&vt.raw_get("format").unwrap_or(Value::Nil));
                let s = lua_bytes(&vt.raw_get("string").unwrap_or(Value::Nil));
                if let (Some(f), Some(s)) = (f, s) {
                    if f == b"txt" || !c3 {
                        return Reply::Verbatim(Bytes::from(s));
                    }
                    let mut raw = format!("={}\r\n", s.len() + 4).into_bytes();
                    raw.extend_from_slice(&f[..f.len().min(3)]);
                    raw.push(b':');
                    raw.extend_from_slice(&s);
                    raw.extend_from_slice(b"\r\n");
                    return Reply::Raw(Bytes::from(raw));
                }
            }
            if let Value::Table(m) = get("map") {
                let mut pairs = Vec::new();
                for (k, v) in m.pairs::<Value, Value>().flatten() {
                    pairs.push((
                        to_reply(&k, s3, c3, depth + 1),
                        to_reply(&v, s3, c3, depth + 1),
                    ));
                }
                return Reply::Map(pairs);
            }
            if let Value::Table(m) = get("set") {
                let mut items = Vec::new();
                for (k, _) in m.pairs::<Value, Value>().flatten() {
                    items.push(to_reply(&k, s3, c3, depth + 1));
                }
                return Reply::Set(items);
            }
            let mut items = Vec::new();
            let mut j = 1;
            loop {
                let v: Value = t.raw_get(j).unwrap_or(Value::Nil);
                if v.is_nil() {
                    break;
                }
                items.push(to_reply(&v, s3, c3, depth + 1));
                j += 1;
            }
            Reply::Array(items)
        }
        _ => Reply::Nil,
    }
}

/// The reply for a script that raised: `{err=..., source=..., line=...}` as Redis prints it.
pub fn error_reply(v: &Value, sha: &str) -> Reply {
    match v {
        Value::Table(t) => {
            let text = |k: &str| -> Option<String> {
                match t.raw_get::<Value>(k).ok()? {
                    Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
                    Value::Integer(i) => Some(i.to_string()),
                    Value::Number(n) => Some(fmt_g(n, 14)),
                    _ => None,
                }
            };
            let mut msg = text("err").unwrap_or_else(|| "(null)".into());
            if let (Some(src), Some(line)) = (text("source"), text("line")) {
                msg.push_str(&format!(" script: {sha}, on {src}:{line}."));
            }
            Reply::Error(msg)
        }
        Value::String(s) => Reply::err(format!(
            "ERR Error running script {sha}, {:.100}",
            String::from_utf8_lossy(&s.as_bytes())
        )),
        _ => Reply::err(format!("ERR Error running script {sha}, execution failure")),
    }
}

/// The innermost message of an mlua error.
pub fn plain_error(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => plain_error(cause),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::MemoryError(_) => "not enough memory".into(),
        other => other.to_string(),
    }
}

/// The error handler's helper: an error raised from Rust becomes a string with the caller's
/// position (like luaL_error), or the kill error table.
pub fn errmsg(
    lua: &Lua,
    (v, src, line): (Value, Option<String>, Option<i64>),
) -> mlua::Result<Value> {
    let msg = match &v {
        Value::Error(e) => plain_error(e),
        _ => return Ok(v),
    };
    if msg == KILLED || msg == LOAD_TIMEOUT {
        return Ok(Value::Table(err_table(lua, &msg)?));
    }
    let text = match (src, line) {
        (Some(s), Some(l)) if l > 0 => format!("{s}:{l}: {msg}"),
        _ => msg,
    };
    Ok(Value::String(lua.create_string(text)?))
}

/// `luaL_checknumber`-like: numbers and numeric strings.
pub fn check_number(lua: &Lua, v: Option<&Value>, arg: usize, fname: &str) -> Result<f64, Fail> {
    let name = match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(v) => type_name(v),
    };
    let v = v.cloned().unwrap_or(Value::Nil);
    match lua.coerce_number(v) {
        Ok(Some(n)) => Ok(n),
        _ => Err(Fail::Msg(format!(
            "bad argument #{arg} to '{fname}' (number expected, got {name})"
        ))),
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "no value",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// math.random / math.randomseed on Redis's lrand48, reseeded before each script.
pub fn install_math(lua: &Lua, g: &Table) -> mlua::Result<()> {
    let math: Table = g.get("math")?;
    let random = lua.create_function(move |lua, args: MultiValue| {
        let r = (super::sandbox::rand_next() % i32::MAX) as f64 / i32::MAX as f64;
        let int = |i: usize| -> mlua::Result<i32> {
            match check_number(lua, args.get(i), i + 1, "random") {
                Ok(n) => Ok(n as i32),
                Err(Fail::Msg(m)) | Err(Fail::Redis(m)) => Err(mlua::Error::RuntimeError(m)),
            }
        };
        let empty = |n: usize| {
            Err(mlua::Error::RuntimeError(format!(
                "bad argument #{n} to 'random' (interval is empty)"
            )))
        };
        match args.len() {
            0 => Ok(r),
            1 => {
                let u = int(0)?;
                if u < 1 {
                    return empty(1);
                }
                Ok((r * u as f64).floor() + 1.0)
            }
            2 => {
                let (l, u) = (int(0)?, int(1)?);
                if l > u {
                    return empty(2);
                }
                Ok((r * (u as f64 - l as f64 + 1.0)).floor() + l as f64)
            }
            _ => Err(mlua::Error::RuntimeError(
                "wrong number of arguments".into(),
            )),
        }
    })?;
    let seed = lua.create_function(move |lua, args: MultiValue| {
        match check_number(lua, args.front(), 1, "randomseed") {
            Ok(n) => {
                super::sandbox::rand_seed(n as i32);
                Ok(())
            }
            Err(Fail::Msg(m)) | Err(Fail::Redis(m)) => Err(mlua::Error::RuntimeError(m)),
        }
    })?;
    math.raw_set("random", random)?;
    math.raw_set("randomseed", seed)?;
    Ok(())
}

fn lua_string_arg(v: Option<&Value>) -> Option<Vec<u8>> {
    match v? {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(fmt_g(*i as f64, 14).into_bytes()),
        Value::Number(n) => Some(fmt_g(*n, 14).into_bytes()),
        _ => None,
    }
}

/// The `redis` table.
pub fn create(lua: &Lua, shared: &Rc<Shared>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let (call, pcall) = super::call::create(lua, shared)?;
    t.raw_set("call", call)?;
    t.raw_set("pcall", pcall)?;
    let reply_table = |field: &'static str| {
        lua.create_function(move |lua, args: MultiValue| {
            let s = match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => s.as_bytes().to_vec(),
                _ => {
                    return Ok(Value::Table(err_table(
                        lua,
                        "ERR wrong number or type of arguments",
                    )?))
                }
            };
            let out = lua.create_table()?;
            if field == "err" {
                let s = String::from_utf8_lossy(&s).into_owned();
                let s = if s.starts_with('-') {
                    s
                } else {
                    format!("-{s}")
                };
                out.raw_set("err", error_text(&s))?;
            } else {
                out.raw_set("ok", lua.create_string(&s)?)?;
            }
            Ok(Value::Table(out))
        })
    };
    t.raw_set("error_reply", reply_table("err")?)?;
    t.raw_set("status_reply", reply_table("ok")?)?;
    t.raw_set(
        "sha1hex",
        lib_fn(lua, |lua, args| {
            if args.len() != 1 {
                return Ok(Err(Fail::Redis("wrong number of arguments".into())));
            }
            let body = lua_string_arg(args.front()).unwrap_or_default();
            ok1(Value::String(lua.create_string(super::sha1hex(&body))?))
        })?,
    )?;
    t.raw_set(
        "log",
        lib_fn(lua, |lua, args| {
            if args.len() < 2 {
                return Ok(Err(Fail::Redis(
                    "redis.log() requires two arguments or more.".into(),
                )));
            }
            let level = match &args[0] {
                Value::Integer(i) => *i as f64,
                Value::Number(n) => *n,
                _ => {
                    return Ok(Err(Fail::Redis(
                        "First argument must be a number (log level).".into(),
                    )))
                }
            };
            if !(0.0..=3.0).contains(&level) {
                return Ok(Err(Fail::Redis("Invalid debug level.".into())));
            }
            let parts: Vec<String> = args
                .iter()
                .skip(1)
                .filter_map(|a| lua_string_arg(Some(a)))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect();
            let _ = lua;
            let line = parts.join(" ");
            match level as i32 {
                0 => tracing::debug!("{line}"),
                1 | 2 => tracing::info!("{line}"),
                _ => tracing::warn!("{line}"),
            }
            Ok(Ok(MultiValue::new()))
        })?,
    )?;
    let s = shared.clone();
    t.raw_set(
        "setresp",
        lib_fn(lua, move |lua, args| {
            if args.len() != 1 {
                return Ok(Err(Fail::Redis(
                    "redis.setresp() requires one argument.".into(),
                )));
            }
            let n = lua.coerce_number(args[0].clone())?.unwrap_or(0.0) as i64;
            if n != 2 && n != 3 {
                return Ok(Err(Fail::Redis("RESP version must be 2 or 3.".into())));
            }
            s.resp3.set(n == 3);
            Ok(Ok(MultiValue::new()))
        })?,
    )?;
    t.raw_set(
        "set_repl",
        lib_fn(lua, |lua, args| {
            if args.len() != 1 {
                return Ok(Err(Fail::Redis(
                    "redis.set_repl() requires two arguments.".into(),
                )));
            }
            let n = lua.coerce_number(args[0].clone())?.unwrap_or(0.0) as i64;
            if n & !3 != 0 {
                return Ok(Err(Fail::Redis(
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."
                        .into(),
                )));
            }
            Ok(Ok(MultiValue::new()))
        })?,
    )?;
    t.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    // SAFETY: plain Lua C functions (they raise no errors).
    unsafe {
        t.raw_set(
            "breakpoint",
            lua.create_c_function(super::ldb::lua_breakpoint)?,
        )?;
        t.raw_set("debug", lua.create_c_function(super::ldb::lua_debug)?)?;
    }
    t.raw_set(
        "acl_check_cmd",
        lib_fn(lua, |_lua, args| {
            if args.is_empty() {
                return Ok(Err(Fail::Redis(
                    "Please specify at least one argument for this redis lib call".into(),
                )));
            }
            let argv: Vec<Bytes> = args.iter().filter_map(lua_arg).collect();
            if argv.len() != args.len() || !matches!(table::resolve(&argv), Resolved::Found(_)) {
                return Ok(Err(Fail::Redis(
                    "Invalid command passed to redis.acl_check_cmd()".into(),
                )));
            }
            ok1(Value::Boolean(true))
        })?,
    )?;
    for (k, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
        ("REDIS_VERSION_NUM", 0x07000f),
    ] {
        t.raw_set(k, v)?;
    }
    t.raw_set("REDIS_VERSION", "7.0.15")?;
    Ok(t)
}
