//! `redis.call` and `redis.pcall` as plain Lua C functions, as Redis's luaRedisGenericCommand:
//! the arguments are read straight off the Lua stack into a reused argv, and the reply is
//! pushed straight back onto it, with no mlua conversion (each of which would allocate two
//! closures for its protected call) and no intermediate Lua value tree.
//!
//! A Lua API call may raise (out of memory: a longjmp), which would skip Rust destructors. So
//! the C function's own frame holds nothing that needs dropping: the argv, the reply and any
//! text being pushed live in [`Scratch`] (in `Shared`), and whatever a raise leaves there is
//! dropped by the next call.

use std::cell::UnsafeCell;
use std::os::raw::c_int;

use bytes::Bytes;
use mlua::{ffi, Function, Lua};

use super::api::error_text;
use super::Shared;
use crate::commands::table::{self, Resolved};
use crate::commands::Flags;
use crate::protocol::numbers::{fmt_double, fmt_g};
use crate::protocol::reply::human_double;
use crate::protocol::Reply;
use crate::server::dispatch::call_nested;

/// What a call keeps outside its frame (see the module comment).
#[derive(Default)]
pub struct Scratch {
    argv: Vec<Bytes>,
    reply: Option<Reply>,
    text: String,
    /// The reply as the Lua debugger logs it (SCRIPT DEBUG), when it logs.
    ldb_reply: Option<bytes::BytesMut>,
}

/// `Shared`'s slot for the scratch: only `redis.call` touches it, and calls never nest (a
/// command run from a script cannot run a script).
pub type ScratchCell = UnsafeCell<Scratch>;

/// `redis.call` (errors raise) and `redis.pcall` (errors are returned), closures over a light
/// pointer to `shared`, which the caller keeps alive as long as the Lua state.
pub fn create(lua: &Lua, shared: &std::rc::Rc<Shared>) -> mlua::Result<(Function, Function)> {
    let p = std::rc::Rc::as_ptr(shared) as *mut std::ffi::c_void;
    // SAFETY: pushes two C closures over a light userdata; nothing is left on the stack.
    unsafe {
        lua.exec_raw::<(Function, Function)>((), |l| {
            ffi::lua_pushlightuserdata(l, p);
            ffi::lua_pushcclosure(l, redis_call, 1);
            ffi::lua_pushlightuserdata(l, p);
            ffi::lua_pushcclosure(l, redis_pcall, 1);
        })
    }
}

unsafe extern "C-unwind" fn redis_call(l: *mut ffi::lua_State) -> c_int {
    generic(l, true)
}

unsafe extern "C-unwind" fn redis_pcall(l: *mut ffi::lua_State) -> c_int {
    generic(l, false)
}

unsafe fn generic(l: *mut ffi::lua_State, raise: bool) -> c_int {
    let shared = &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Shared);
    let scratch = &mut *shared.scratch.get();
    scratch.reply = None;
    let outcome = run(l, shared, scratch);
    scratch.argv.clear();
    ffi::lua_settop(l, 0);
    let resp3 = shared.resp3.get();
    if super::ldb::logging() {
        ldb_log(&outcome, scratch);
    }
    match outcome {
        Ok(()) => {
            if let Some(reply) = scratch.reply.as_ref() {
                push_reply(l, reply, resp3, &mut scratch.text);
            }
            scratch.reply = None;
            1
        }
        Err(text) => {
            scratch.text = error_text(text.unwrap_or_else(|| match &scratch.reply {
                Some(Reply::Error(e)) => e,
                _ => "",
            }));
            scratch.reply = None;
            push_err_table(l, &scratch.text);
            if raise {
                ffi::lua_error(l);
            }
            1
        }
    }
}

/// What the Lua debugger logs of a call (SCRIPT DEBUG): an error, then the reply. Its own
/// function, so nothing it allocates is in `generic`'s frame when that raises.
#[inline(never)]
fn ldb_log(outcome: &Result<(), Option<&'static str>>, scratch: &mut Scratch) {
    if let Err(text) = outcome {
        let msg = text.unwrap_or(match &scratch.reply {
            Some(Reply::Error(e)) => e,
            _ => "",
        });
        super::ldb::log(format!("<error> {msg}").into_bytes());
    }
    if let Some(resp) = scratch.ldb_reply.take() {
        super::ldb::log_reply(&resp);
    }
}

/// Reads the arguments, checks the command as Redis's scriptCall does and runs it. Calls no
/// Lua function that may raise. `Err(None)`: the reply in the scratch is the error.
unsafe fn run(
    l: *mut ffi::lua_State,
    shared: &Shared,
    scratch: &mut Scratch,
) -> Result<(), Option<&'static str>> {
    let Some(ctx) = shared.ctx() else {
        return Err(Some("redis.call is only available inside a script"));
    };
    let n = ffi::lua_gettop(l);
    if n == 0 {
        return Err(Some(
            "Please specify at least one argument for this redis lib call",
        ));
    }
    scratch.argv.clear();
    for i in 1..=n {
        let arg = match ffi::lua_type(l, i) {
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, i, &mut len);
                Bytes::copy_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), len))
            }
            // As Redis 7.0: numbers reach commands as `%.17g`.
            ffi::LUA_TNUMBER => Bytes::from(fmt_g(ffi::lua_tonumber(l, i), 17)),
            _ => {
                return Err(Some(
                    "Lua redis lib command arguments must be strings or integers",
                ))
            }
        };
        scratch.argv.push(arg);
    }
    let argv = &scratch.argv;
    if super::ldb::logging() {
        super::ldb::log_command(argv);
    }
    let cmd = match table::resolve(argv) {
        Resolved::Found(cmd) => cmd,
        _ => return Err(Some("Unknown Redis command called from script")),
    };
    if !cmd.arity_ok(argv.len()) {
        return Err(Some(
            "Wrong number of args calling Redis command from script",
        ));
    }
    if cmd.has(Flags::NOSCRIPT) {
        return Err(Some("This Redis command is not allowed from script"));
    }
    // As Redis's scriptVerifyWriteCommandAllow: a read-only script refuses writes and commands
    // that may replicate (PFCOUNT may store its cache) first; then no writes while the store
    // is failing.
    let read_only = ctx.w.script_run.as_ref().is_some_and(|r| r.read_only);
    if read_only && cmd.has(Flags::WRITE | Flags::MAY_REPLICATE) {
        return Err(Some(
            "Write commands are not allowed from read-only scripts.",
        ));
    }
    if cmd.has(Flags::WRITE) {
        if let Some(e) = ctx.w.persist_misconf() {
            scratch.reply = Some(Reply::Error(format!("-{e}")));
            return Err(None);
        }
    }
    // As Redis's scriptVerifyOOM: past maxmemory, a command that may grow memory is refused
    // unless the script has already written (it cannot stop halfway).
    let dirty = ctx.w.script_run.as_ref().is_some_and(|r| r.wrote);
    if cmd.has(Flags::DENYOOM) && !dirty && ctx.w.out_of_memory() {
        return Err(Some(crate::server::maxmemory::OOM_ERROR));
    }
    if cmd.has(Flags::WRITE) {
        if let Some(run) = ctx.w.script_run.as_mut() {
            run.wrote = true;
        }
    }
    ctx.resp3 = shared.resp3.get();
    let reply = call_nested(ctx, cmd, argv);
    if super::ldb::logging() {
        let mut resp = bytes::BytesMut::new();
        reply.encode(&mut resp, ctx.resp3);
        scratch.ldb_reply = Some(resp);
    }
    if let Reply::Error(e) = reply {
        scratch.reply = Some(Reply::Error(format!("-{e}")));
        return Err(None);
    }
    scratch.reply = Some(reply);
    Ok(())
}

unsafe fn push_bytes(l: *mut ffi::lua_State, b: &[u8]) {
    ffi::lua_pushlstring(l, b.as_ptr().cast(), b.len());
}

/// `{err = text}`.
unsafe fn push_err_table(l: *mut ffi::lua_State, text: &str) {
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushstring(l, c"err".as_ptr());
    push_bytes(l, text.as_bytes());
    ffi::lua_rawset(l, -3);
}

/// A table `{ [key] = <the value on top of the stack> }` in place of that value.
unsafe fn wrap(l: *mut ffi::lua_State, key: &std::ffi::CStr) {
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushstring(l, key.as_ptr());
    ffi::lua_pushvalue(l, -3);
    ffi::lua_rawset(l, -3);
    ffi::lua_replace(l, -2);
}

/// A Redis reply as Lua sees it (redisProtocolToLuaType), in RESP2 or, after setresp(3),
/// RESP3. Text formatted here goes through `text` (see the module comment).
unsafe fn push_reply(l: *mut ffi::lua_State, r: &Reply, resp3: bool, text: &mut String) {
    if ffi::lua_checkstack(l, 8) == 0 {
        ffi::lua_pushnil(l);
        return;
    }
    match r {
        Reply::Status(s) => {
            push_bytes(l, s.as_bytes());
            wrap(l, c"ok");
        }
        Reply::Error(e) => {
            *text = error_text(&format!("-{e}"));
            push_err_table(l, text);
        }
        Reply::Int(i) => ffi::lua_pushnumber(l, *i as f64),
        Reply::Bulk(b) => push_bytes(l, b),
        Reply::Verbatim(b) if resp3 => {
            ffi::lua_createtable(l, 0, 2);
            ffi::lua_pushstring(l, c"format".as_ptr());
            ffi::lua_pushstring(l, c"txt".as_ptr());
            ffi::lua_rawset(l, -3);
            ffi::lua_pushstring(l, c"string".as_ptr());
            push_bytes(l, b);
            ffi::lua_rawset(l, -3);
            wrap(l, c"verbatim_string");
        }
        Reply::Verbatim(b) => push_bytes(l, b),
        Reply::Nil | Reply::NilArray | Reply::None | Reply::Raw(_) if resp3 => ffi::lua_pushnil(l),
        Reply::Nil | Reply::NilArray | Reply::None | Reply::Raw(_) => ffi::lua_pushboolean(l, 0),
        Reply::Array(items) | Reply::Push(items) => push_array(l, items, resp3, text),
        Reply::Set(items) if resp3 => {
            ffi::lua_createtable(l, 0, items.len() as i32);
            for it in items {
                push_reply(l, it, resp3, text);
                if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                    ffi::lua_pop(l, 1);
                } else {
                    ffi::lua_pushboolean(l, 1);
                    ffi::lua_rawset(l, -3);
                }
            }
            wrap(l, c"set");
        }
        Reply::Set(items) => push_array(l, items, resp3, text),
        Reply::Map(pairs) if resp3 => {
            ffi::lua_createtable(l, 0, pairs.len() as i32);
            for (k, v) in pairs {
                push_reply(l, k, resp3, text);
                if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                    ffi::lua_pop(l, 1);
                } else {
                    push_reply(l, v, resp3, text);
                    ffi::lua_rawset(l, -3);
                }
            }
            wrap(l, c"map");
        }
        Reply::Map(pairs) => {
            ffi::lua_createtable(l, (pairs.len() * 2) as i32, 0);
            for (i, (k, v)) in pairs.iter().enumerate() {
                push_reply(l, k, resp3, text);
                ffi::lua_rawseti(l, -2, 2 * i as i64 + 1);
                push_reply(l, v, resp3, text);
                ffi::lua_rawseti(l, -2, 2 * i as i64 + 2);
            }
        }
        Reply::Double(d) if resp3 => {
            ffi::lua_pushnumber(l, *d);
            wrap(l, c"double");
        }
        Reply::Double(d) => {
            *text = fmt_double(*d);
            push_bytes(l, text.as_bytes());
        }
        // Lua reads the text Redis sent (strtod of the RESP3 double, or the RESP2 string).
        Reply::HumanDouble(d) if resp3 => {
            ffi::lua_pushnumber(l, human_double(*d).parse().unwrap_or(*d));
            wrap(l, c"double");
        }
        Reply::HumanDouble(d) => {
            *text = human_double(*d);
            push_bytes(l, text.as_bytes());
        }
        Reply::Bool(b) if resp3 => ffi::lua_pushboolean(l, *b as i32),
        Reply::Bool(b) => ffi::lua_pushnumber(l, *b as i64 as f64),
    }
}

unsafe fn push_array(l: *mut ffi::lua_State, items: &[Reply], resp3: bool, text: &mut String) {
    ffi::lua_createtable(l, items.len() as i32, 0);
    for (i, it) in items.iter().enumerate() {
        push_reply(l, it, resp3, text);
        ffi::lua_rawseti(l, -2, i as i64 + 1);
    }
}
