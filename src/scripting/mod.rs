//! Lua scripting: one Lua 5.1 state (mlua, vendored) living on the keyspace thread, the script
//! cache keyed by SHA1, and script runs (EVAL / EVALSHA) with Redis 7.0's semantics.
//!
//! A running script reaches the keyspace through a raw pointer to the EVAL command's `Ctx`,
//! stored in [`Shared`] for the duration of the run; the `redis.call` callback and the
//! instruction-count hook are the only users of that pointer, and never at the same time.

pub mod api;
pub mod bit;
pub mod call;
pub mod cjson;
pub mod cmsgpack;
pub mod functions;
pub mod ldb;
mod ldb_repl;
mod ldb_show;
pub mod sandbox;
pub mod strtod;
pub mod struct_lib;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use crate::commands::Ctx;
use crate::protocol::Reply;
use crate::server::ClientId;

/// Shebang flags (`#!lua flags=...`).
pub const FLAG_NO_WRITES: u32 = 1;
pub const FLAG_ALLOW_OOM: u32 = 2;
pub const FLAG_ALLOW_STALE: u32 = 4;
pub const FLAG_NO_CLUSTER: u32 = 8;
pub const FLAG_ALLOW_CROSS_SLOT: u32 = 16;
/// No shebang: the script runs in EVAL compatibility mode.
pub const FLAG_COMPAT: u32 = 1 << 30;

/// Lua memory cap (bytes): allocations past it fail with "not enough memory".
pub const MEMORY_LIMIT: usize = 1 << 30;

/// State of the script being run, kept in `World` so other clients (BUSY, SCRIPT KILL) see it.
pub struct ScriptRun {
    pub client: ClientId,
    pub sha: String,
    pub started: Instant,
    /// Unix ms at the script's start: the clock its commands see.
    pub now_ms: i64,
    /// A write command was called: SCRIPT KILL answers UNKILLABLE.
    pub wrote: bool,
    /// SCRIPT KILL asked the script to stop.
    pub kill: bool,
    /// Past busy-reply-threshold: other clients get BUSY.
    pub busy: bool,
    /// EVAL_RO or a `no-writes` script: write commands are refused.
    pub read_only: bool,
    /// An FCALL (`sha` is then the function's name): FUNCTION KILL stops it, and BUSY names it.
    pub function: bool,
    /// The FCALL's arguments, for FUNCTION STATS (empty for EVAL).
    pub command: Vec<Bytes>,
    /// The script's declared keys, kept only for a client that tracks keys (CLIENT TRACKING):
    /// each read command of the script makes it remember them, as Redis does.
    pub keys: Vec<Bytes>,
}

impl ScriptRun {
    /// `-BUSY` while this script runs past busy-reply-threshold (slowevalerr / slowscripterr).
    pub fn busy_error(&self) -> Reply {
        Reply::err(if self.function {
            "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
        } else {
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
        })
    }
}

/// A script's declared keys when its client tracks keys (CLIENT TRACKING): each read command
/// the script runs makes the client remember them, as Redis's `call` does for the caller.
pub(crate) fn tracked_keys(ctx: &Ctx, keys: &[Bytes]) -> Vec<Bytes> {
    let tracks = ctx
        .w
        .clients
        .get(&ctx.client)
        .is_some_and(|c| c.tracking.is_some());
    if tracks {
        keys.to_vec()
    } else {
        Vec::new()
    }
}

/// What the Rust callbacks share with the engine.
pub struct Shared {
    /// `*mut Ctx` of the running EVAL, null when no script runs.
    pub ctx: Cell<*mut ()>,
    /// `redis.setresp(3)` was called in this run.
    pub resp3: Cell<bool>,
    /// FUNCTION LOAD is running a library's code since then (its 500 ms timeout).
    pub load_started: Cell<Option<Instant>>,
    /// redis.call's argv, reply and text, reused from call to call.
    pub scratch: call::ScratchCell,
}

impl Shared {
    /// The running script's context.
    ///
    /// SAFETY: the pointer is set by `Engine::run` from a `&mut Ctx` that outlives the Lua
    /// call, and cleared before that borrow is used again; callbacks never nest.
    #[allow(clippy::mut_from_ref)]
    pub fn ctx(&self) -> Option<&mut Ctx<'static>> {
        let p = self.ctx.get();
        if p.is_null() {
            None
        } else {
            Some(unsafe { &mut *(p as *mut Ctx<'static>) })
        }
    }
}

pub struct Script {
    pub func: Function,
    pub flags: u32,
    pub body: Bytes,
}

pub struct Engine {
    pub lua: Lua,
    pub scripts: HashMap<String, Script>,
    pub(crate) shared: Rc<Shared>,
    env: Table,
    /// `run(f)`: `xpcall(f, handler)` (see `sandbox::PRELUDE`).
    pub(crate) runner: Function,
    /// `protect(t)`: makes `setmetatable`/`rawset` refuse to touch table `t`.
    pub(crate) protect: Function,
    pub(crate) globals: Table,
    runs_since_gc: u32,
    /// The next run is a SCRIPT DEBUG session: the debugger's line hook replaces the busy hook.
    pub debugging: bool,
}

/// Lowercase hex SHA1 of a script body.
pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    pub fn new() -> Engine {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the debug library is only handed to the prelude (the error handler) and then
        // removed from the globals scripts can reach.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::default()) };
        let shared = Rc::new(Shared {
            ctx: Cell::new(std::ptr::null_mut()),
            resp3: Cell::new(false),
            load_started: Cell::new(None),
            scratch: Default::default(),
        });
        let (env, runner, protect) = Self::build(&lua, &shared).expect("lua environment");
        let _ = lua.set_memory_limit(MEMORY_LIMIT);
        install_busy_hook(&lua, &shared);
        let globals = lua.globals();
        Engine {
            lua,
            scripts: HashMap::new(),
            shared,
            env,
            runner,
            protect,
            globals,
            runs_since_gc: 0,
            debugging: false,
        }
    }

    /// The Lua state's main thread, where scripts run (the debugger's hook is set on it).
    fn main_state(&self) -> *mut mlua::ffi::lua_State {
        let mut state = std::ptr::null_mut();
        // SAFETY: the closure only copies the pointer of the state exec_raw runs on.
        let _ = unsafe { self.lua.exec_raw::<()>((), |l| state = l) };
        state
    }

    fn build(lua: &Lua, shared: &Rc<Shared>) -> mlua::Result<(Table, Function, Function)> {
        let g = lua.globals();
        let dbg: Table = g.get("debug")?;
        api::install_math(lua, &g)?;
        let errmsg = lua.create_function(api::errmsg)?;
        let names = lua.create_sequence_from(sandbox::LIBRARIES.iter().copied())?;
        let fill_shared = shared.clone();
        let fill = lua.create_function(move |lua, ()| {
            let g = lua.globals();
            g.raw_set("redis", api::create(lua, &fill_shared)?)?;
            g.raw_set("cjson", cjson::create(lua)?)?;
            g.raw_set("cmsgpack", cmsgpack::create(lua)?)?;
            g.raw_set("bit", bit::create(lua)?)?;
            g.raw_set("struct", struct_lib::create(lua)?)?;
            Ok(())
        })?;
        let prelude = lua
            .load(sandbox::PRELUDE)
            .set_name("=berth")
            .into_function()?;
        let (env, runner, protect): (Table, Function, Function) =
            prelude.call((g.clone(), dbg, errmsg, names, fill))?;
        for name in sandbox::REMOVED {
            g.raw_set(*name, Value::Nil)?;
        }
        Ok((env, runner, protect))
    }

    /// Compiles and caches a script body; returns its sha.
    pub fn load(&mut self, body: &Bytes) -> Result<String, Reply> {
        let sha = sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, skip) = shebang(body).map_err(|e| Reply::err(format!("ERR {e}")))?;
        let func = self
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .set_mode(mlua::ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                Reply::err(format!("ERR Error compiling script (new function): {msg}"))
            })?;
        self.scripts.insert(
            sha.clone(),
            Script {
                func,
                flags,
                body: body.clone(),
            },
        );
        Ok(sha)
    }

    /// Runs a cached script for the client of `ctx`.
    pub fn run(
        &mut self,
        ctx: &mut Ctx,
        sha: &str,
        keys: &[Bytes],
        args: &[Bytes],
        ro_command: bool,
    ) -> Reply {
        let Some(script) = self.scripts.get(sha) else {
            return Reply::err("NOSCRIPT No matching script. Please use EVAL.");
        };
        let flags = script.flags;
        if ro_command && flags & FLAG_COMPAT == 0 && flags & FLAG_NO_WRITES == 0 {
            return Reply::err("ERR Can not execute a script with write flag using *_ro command.");
        }
        let func = script.func.clone();
        if let Err(e) = self.set_key_arrays(keys, args) {
            return Reply::err(format!("ERR Error running script {sha}, {e}"));
        }
        let run = ScriptRun {
            client: ctx.client,
            sha: sha.to_string(),
            started: Instant::now(),
            now_ms: ctx.now,
            wrote: false,
            kill: false,
            busy: false,
            read_only: ro_command || flags & FLAG_NO_WRITES != 0,
            function: false,
            command: Vec::new(),
            keys: tracked_keys(ctx, keys),
        };
        let reply = self.invoke(ctx, run, |e| e.runner.call(func));
        let _ = self.globals.raw_set("KEYS", Value::Nil);
        let _ = self.globals.raw_set("ARGV", Value::Nil);
        reply
    }

    /// Runs `call` (a script or function) as the script `run` of the client of `ctx`, and
    /// turns its outcome into the reply (`sha` of `run` names it in errors).
    pub(crate) fn invoke(
        &mut self,
        ctx: &mut Ctx,
        run: ScriptRun,
        call: impl FnOnce(&Engine) -> mlua::Result<(bool, Value)>,
    ) -> Reply {
        let name = run.sha.clone();
        self.shared.resp3.set(false);
        let (saved_db, saved_resp3) = (ctx.db, ctx.resp3);
        ctx.w.script_run = Some(run);
        self.shared.ctx.set(ctx as *mut Ctx as *mut ());
        if self.debugging {
            // SAFETY: the hook is a C hook on the state scripts run on; it is replaced below.
            unsafe {
                mlua::ffi::lua_sethook(
                    self.main_state(),
                    Some(ldb::hook),
                    mlua::ffi::LUA_MASKLINE | mlua::ffi::LUA_MASKCOUNT,
                    100_000,
                );
            }
        }
        let result = call(self);
        if self.debugging {
            install_busy_hook(&self.lua, &self.shared);
        }
        self.shared.ctx.set(std::ptr::null_mut());
        ctx.db = saved_db;
        ctx.resp3 = saved_resp3;
        ctx.w.script_run = None;
        if ctx.w.shutdown {
            // SHUTDOWN NOSAVE ended the script: the server exits without answering it.
            return Reply::None;
        }
        if matches!(&result, Err(mlua::Error::MemoryError(_))) {
            let _ = self.lua.gc_collect();
        }
        let reply = match result {
            Ok((true, v)) => api::lua_to_reply(&v, self.shared.resp3.get(), ctx.resp3),
            Ok((false, v)) => api::error_reply(&v, &name),
            Err(e) => Reply::err(format!(
                "ERR Error running script {name}, {:.100}",
                api::plain_error(&e)
            )),
        };
        // As Redis: a GC step every 50 scripts keeps Lua's memory in check without a full
        // cycle's latency.
        self.runs_since_gc += 1;
        if self.runs_since_gc >= 50 {
            self.runs_since_gc = 0;
            let _ = self.lua.gc_step_kbytes(50);
        }
        reply
    }

    /// Sets the KEYS and ARGV globals in one protected call (mlua would protect each string
    /// and each table slot on its own, which costs more than the script itself).
    fn set_key_arrays(&self, keys: &[Bytes], args: &[Bytes]) -> mlua::Result<()> {
        // SAFETY: only Lua API calls on the stack exec_raw gives us; an out-of-memory error
        // unwinds through no Rust value that needs dropping.
        unsafe {
            self.lua.exec_raw::<()>(self.globals.clone(), |state| {
                for (name, items) in [(c"KEYS", keys), (c"ARGV", args)] {
                    mlua::ffi::lua_pushstring(state, name.as_ptr());
                    mlua::ffi::lua_createtable(state, items.len() as i32, 0);
                    for (i, item) in items.iter().enumerate() {
                        mlua::ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
                        mlua::ffi::lua_rawseti(state, -2, i as i64 + 1);
                    }
                    mlua::ffi::lua_rawset(state, 1);
                }
            })
        }
    }

    /// Memory used by the Lua state (INFO used_memory_lua).
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }
}

/// The hook every 100k instructions: FUNCTION LOAD's timeout, or a busy script's serving of
/// other clients.
fn install_busy_hook(lua: &Lua, shared: &Rc<Shared>) {
    let hook_shared = shared.clone();
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(100_000),
        move |_lua, debug| {
            // Never raise inside the prelude (the error handler): that would turn a kill
            // into "error in error handling".
            let ours = debug.source().source.is_some_and(|s| s == "=berth");
            if let Some(started) = hook_shared.load_started.get() {
                return load_hook(started, ours);
            }
            busy_hook(&hook_shared, ours)
        },
    );
}

/// The hook while FUNCTION LOAD runs a library's code: past 500 ms it is stopped.
fn load_hook(started: Instant, in_prelude: bool) -> mlua::Result<VmState> {
    if in_prelude || started.elapsed() <= functions::LOAD_TIMEOUT {
        return Ok(VmState::Continue);
    }
    Err(mlua::Error::RuntimeError(api::LOAD_TIMEOUT.into()))
}

/// The hook run every 100k VM instructions: past busy-reply-threshold it serves other clients
/// (BUSY, or commands flagged allow-busy such as SCRIPT KILL), and stops a killed script.
fn busy_hook(shared: &Shared, in_prelude: bool) -> mlua::Result<VmState> {
    let Some(ctx) = shared.ctx() else {
        return Ok(VmState::Continue);
    };
    let w = &mut *ctx.w;
    let Some(run) = w.script_run.as_mut() else {
        return Ok(VmState::Continue);
    };
    if !run.busy {
        let limit = w.config.get_i64("busy-reply-threshold").max(0) as u128;
        if run.started.elapsed().as_millis() < limit {
            return Ok(VmState::Continue);
        }
        run.busy = true;
        tracing::warn!(
            "Slow script detected: still in execution after {} milliseconds. You can try \
             killing the script using the {} command. Script name is: {}.",
            run.started.elapsed().as_millis(),
            if run.function {
                "FUNCTION KILL"
            } else {
                "SCRIPT KILL"
            },
            run.sha
        );
    }
    w.serve_during_script();
    if in_prelude {
        return Ok(VmState::Continue);
    }
    let run = w.script_run.as_ref();
    if run.is_some_and(|r| r.kill) {
        return Err(mlua::Error::RuntimeError(api::KILLED.into()));
    }
    if w.shutdown {
        return Err(mlua::Error::RuntimeError(api::KILLED.into()));
    }
    Ok(VmState::Continue)
}

/// Whether a script command writes, judged from the flags its script declares (Redis's
/// evalGetCommandFlags): `None` when it declares none (no shebang) or the script is not
/// cached, where the command's own flags count.
pub fn script_writes(name: &str, argv: &[Bytes], engine: Option<&Engine>) -> Option<bool> {
    let flags = match (name, argv.get(1)) {
        ("eval" | "eval_ro", Some(body)) => shebang(body).ok()?.0,
        ("evalsha" | "evalsha_ro", Some(sha)) => {
            let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
            engine?.scripts.get(&sha)?.flags
        }
        _ => return None,
    };
    (flags & FLAG_COMPAT == 0).then_some(flags & FLAG_NO_WRITES == 0)
}

/// Parses a `#!lua flags=...` first line: (flags, bytes to skip before loading, which keeps
/// the line feed so line numbers stay right).
pub fn shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((FLAG_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let parts: Vec<&str> = line.split_ascii_whitespace().collect();
    if parts.is_empty() {
        return Err("Invalid engine in script shebang".into());
    }
    if parts[0] != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {}", parts[0]));
    }
    let mut flags = 0;
    for p in &parts[1..] {
        let Some(list) = p.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {p}"));
        };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            flags |= match f {
                "no-writes" => FLAG_NO_WRITES,
                "allow-oom" => FLAG_ALLOW_OOM,
                "allow-stale" => FLAG_ALLOW_STALE,
                "no-cluster" => FLAG_NO_CLUSTER,
                "allow-cross-slot-keys" => FLAG_ALLOW_CROSS_SLOT,
                other => return Err(format!("Unexpected flag in script shebang: {other}")),
            };
        }
    }
    Ok((flags, end))
}

/// Converts an mlua multi-value into its first value (or nil).
pub fn first(v: MultiValue) -> Value {
    v.into_iter().next().unwrap_or(Value::Nil)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert_eq!(shebang(b"return 1"), Ok((FLAG_COMPAT, 0)));
        assert_eq!(shebang(b"#!lua\nreturn 1"), Ok((0, 5)));
        assert_eq!(
            shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1"),
            Ok((FLAG_NO_WRITES | FLAG_ALLOW_OOM, 31))
        );
        assert!(shebang(b"#!lua flags=bogus\n").is_err());
        assert!(shebang(b"#!lua").is_err());
        assert!(shebang(b"#!python\n").is_err());
    }

    #[test]
    fn sha() {
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
