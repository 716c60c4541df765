//! Redis 7.0 functions: libraries of Lua functions loaded with FUNCTION LOAD and run with
//! FCALL, as `functions.c` and `function_lua.c` define them.
//!
//! Functions live in a Lua state of their own (SCRIPT FLUSH does not touch them). A library's
//! code runs once, at load, in a sandbox where the only global is a `redis` table holding
//! `register_function`, `log` and the version and log-level constants; every function it
//! registers shares the library's environment, which from then on reads the full globals
//! (`redis.call`, the libraries, ...) as EVAL scripts see them. Keys and arguments are the
//! function's two parameters, not globals.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function as LuaFunction, MultiValue, Table, Value};

use super::api::{self, Fail};
use super::FLAG_NO_WRITES;
use super::{Engine, ScriptRun};
use super::{FLAG_ALLOW_CROSS_SLOT, FLAG_ALLOW_OOM, FLAG_ALLOW_STALE, FLAG_NO_CLUSTER};
use crate::commands::Ctx;
use crate::protocol::Reply;

/// How long FUNCTION LOAD lets a library's code run (LOAD_TIMEOUT_MS).
pub const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// The script flags by their names, in Redis's order (`scripts_flags_def`).
pub const FLAG_NAMES: &[(u32, &str)] = &[
    (FLAG_NO_WRITES, "no-writes"),
    (FLAG_ALLOW_OOM, "allow-oom"),
    (FLAG_ALLOW_STALE, "allow-stale"),
    (FLAG_NO_CLUSTER, "no-cluster"),
    (FLAG_ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
];

const NAME_ERROR: &str = "Library names can only contain letters, numbers, or underscores(_) \
                          and must be at least one character long";

#[derive(Clone)]
pub struct Function {
    pub name: String,
    pub desc: Option<Bytes>,
    pub flags: u32,
    func: LuaFunction,
}

pub struct Library {
    pub name: String,
    /// The code as loaded, shebang included (FUNCTION LIST WITHCODE, DUMP, persistence).
    pub code: Bytes,
    /// In registration order.
    pub functions: Vec<Function>,
}

/// A set of libraries and the index of their functions (Redis's `functionsLibCtx`). Library
/// names are case-sensitive, function names are not (FCALL MYFUNC finds `myfunc`).
#[derive(Default)]
pub struct Libraries {
    pub libs: BTreeMap<String, Library>,
    /// Lowercased function name -> its library.
    index: HashMap<String, String>,
}

impl Libraries {
    pub fn function(&self, name: &[u8]) -> Option<&Function> {
        let key = String::from_utf8_lossy(name).to_ascii_lowercase();
        let lib = self.libs.get(self.index.get(&key)?)?;
        lib.functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(&key))
    }

    pub fn function_count(&self) -> usize {
        self.index.len()
    }

    fn has_function(&self, name: &str) -> bool {
        self.index.contains_key(&name.to_ascii_lowercase())
    }

    fn link(&mut self, lib: Library) {
        for f in &lib.functions {
            self.index
                .entry(f.name.to_ascii_lowercase())
                .or_insert_with(|| lib.name.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
    }

    pub fn unlink(&mut self, name: &str) -> Option<Library> {
        let lib = self.libs.remove(name)?;
        self.index.retain(|_, l| l != name);
        Some(lib)
    }

    /// `libraryJoin`: moves every library of `src` in; on a name collision replaces the old
    /// library if `replace`, else fails; a function name collision fails. Nothing changes on
    /// failure.
    pub fn join(&mut self, src: Libraries, replace: bool) -> Result<(), String> {
        let mut old = Vec::new();
        let mut result = Ok(());
        for name in src.libs.keys() {
            if self.libs.contains_key(name) {
                if !replace {
                    result = Err(format!("Library {name} already exists"));
                    break;
                }
                old.extend(self.unlink(name));
            }
        }
        if result.is_ok() {
            let clash = src
                .libs
                .values()
                .flat_map(|l| l.functions.iter())
                .find(|f| self.has_function(&f.name));
            if let Some(f) = clash {
                result = Err(format!("Function {} already exists", f.name));
            }
        }
        if result.is_err() {
            for lib in old {
                self.link(lib);
            }
            return result;
        }
        for (_, lib) in src.libs {
            self.link(lib);
        }
        Ok(())
    }
}

/// The functions engine: its Lua state and the loaded libraries.
pub struct Functions {
    /// Taken out while a function runs (the run reaches the World through its context).
    engine: Option<Box<Engine>>,
    pub libs: Libraries,
    /// The environment every library's code and functions run in.
    env: Table,
    /// `set_loading(bool)`: switches `env` between the load-time API and the full globals.
    set_loading: LuaFunction,
    /// `call(f, keys, args)`: runs `f(keys, args)` under the error handler.
    caller: LuaFunction,
    /// The functions registered by the library being loaded (None outside FUNCTION LOAD).
    pending: Rc<RefCell<Option<Vec<Function>>>>,
}

impl Default for Functions {
    fn default() -> Self {
        Functions::new()
    }
}

/// Switches a library's environment between load time and run time (see the module doc).
const FN_PRELUDE: &str = r#"
local G, register, protect = ...
local error, tostring, rawget, setmetatable = error, tostring, rawget, setmetatable
local loading = false
local R = rawget(G, 'redis')
local api = {register_function = register}
for _, k in ipairs({'log', 'LOG_DEBUG', 'LOG_VERBOSE', 'LOG_NOTICE', 'LOG_WARNING',
                    'REDIS_VERSION', 'REDIS_VERSION_NUM'}) do
  api[k] = R[k]
end
local function readonly() error("Attempt to modify a readonly table", 2) end
local function missing(n)
  return "Script attempted to access nonexistent global variable '" .. tostring(n) .. "'"
end
local load_redis = setmetatable({}, {
  __index = function(_, n)
    local v = api[n]
    if v == nil then error(missing(n), 2) end
    return v
  end,
  __newindex = readonly,
})
protect(load_redis)
local E
E = setmetatable({}, {
  __index = function(_, n)
    if loading then
      if n == 'redis' then return load_redis end
    else
      if n == '_G' then return E end
      local v = rawget(G, n)
      if v ~= nil then return v end
    end
    error(missing(n), 2)
  end,
  __newindex = readonly,
})
protect(E)
return E, function(b) loading = b end
"#;

/// `call(f, keys, args)` under the runner's error handler (the closure's frames are skipped
/// by the handler: this chunk is named like the prelude).
const FN_CALLER: &str = r#"
local run = ...
return function(f, k, a) return run(function() return f(k, a) end) end
"#;

impl Functions {
    pub fn new() -> Functions {
        let engine = Box::new(Engine::new());
        let pending: Rc<RefCell<Option<Vec<Function>>>> = Rc::default();
        let lua = &engine.lua;
        let register = register_fn(lua, pending.clone()).expect("register_function");
        let prelude = lua
            .load(FN_PRELUDE)
            .set_name("=berth")
            .into_function()
            .expect("functions prelude");
        let (env, set_loading): (Table, LuaFunction) = prelude
            .call((engine.globals.clone(), register, engine.protect.clone()))
            .expect("functions environment");
        let caller: LuaFunction = lua
            .load(FN_CALLER)
            .set_name("=berth")
            .call(engine.runner.clone())
            .expect("functions caller");
        Functions {
            engine: Some(engine),
            libs: Libraries::default(),
            env,
            set_loading,
            caller,
            pending,
        }
    }

    /// FUNCTION LOAD: compiles `code` and runs it to register its functions, into `into`
    /// (the current libraries, or a set being built by FUNCTION RESTORE). Returns the library
    /// name, or the error text (`functionsCreateWithLibraryCtx`).
    pub fn create(
        &self,
        into: &mut Libraries,
        code: &Bytes,
        replace: bool,
        timeout: bool,
    ) -> Result<String, String> {
        let (name, body) = metadata(code)?;
        let old = match into.libs.contains_key(&name) {
            true if !replace => return Err(format!("Library '{name}' already exists")),
            true => into.unlink(&name),
            false => None,
        };
        let result = self.compile(&name, code, body, timeout).and_then(|lib| {
            match lib.functions.iter().find(|f| into.has_function(&f.name)) {
                Some(f) => Err(format!("Function {} already exists", f.name)),
                None => Ok(lib),
            }
        });
        match result {
            Ok(lib) => {
                into.link(lib);
                Ok(name)
            }
            Err(e) => {
                if let Some(old) = old {
                    into.link(old);
                }
                Err(e)
            }
        }
    }

    /// Compiles and runs a library's code (`luaEngineCreate`), collecting what it registers.
    fn compile(
        &self,
        name: &str,
        code: &Bytes,
        body: &[u8],
        timeout: bool,
    ) -> Result<Library, String> {
        let engine = self
            .engine
            .as_ref()
            .ok_or("a function is running (FUNCTION LOAD from a script)")?;
        let chunk = engine
            .lua
            .load(body)
            .set_name("@user_function")
            .set_mode(mlua::ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                format!("Error compiling function: {msg}")
            })?;
        *self.pending.borrow_mut() = Some(Vec::new());
        let _ = self.set_loading.call::<()>(true);
        if timeout {
            engine.shared.load_started.set(Some(Instant::now()));
        }
        let ran: mlua::Result<(bool, Value)> = engine.runner.call(chunk);
        engine.shared.load_started.set(None);
        let _ = self.set_loading.call::<()>(false);
        let functions = self.pending.borrow_mut().take().unwrap_or_default();
        let failure = match ran {
            Ok((true, _)) => None,
            Ok((false, v)) => Some(error_text(&v)),
            Err(e) => Some(format!("ERR {}", api::plain_error(&e))),
        };
        if let Some(e) = failure {
            return Err(format!("Error registering functions: {e}"));
        }
        if functions.is_empty() {
            return Err("No functions registered".into());
        }
        Ok(Library {
            name: name.to_string(),
            code: code.clone(),
            functions,
        })
    }

    /// FCALL / FCALL_RO after the argument checks: runs `f(keys, args)` for the client of
    /// `ctx` (the engine is taken out of the World meanwhile; the libraries stay for FUNCTION
    /// STATS).
    pub fn call(ctx: &mut Ctx, f: &Function, argv: &[Bytes], numkeys: usize, ro: bool) -> Reply {
        let fs = &mut ctx.w.functions;
        let Some(mut engine) = fs.engine.take() else {
            return Reply::err("ERR a function is already running");
        };
        let caller = fs.caller.clone();
        let (keys, args) = (&argv[3..3 + numkeys], &argv[3 + numkeys..]);
        let run = ScriptRun {
            client: ctx.client,
            sha: f.name.clone(),
            started: Instant::now(),
            now_ms: ctx.now,
            wrote: false,
            kill: false,
            busy: false,
            read_only: ro || f.flags & FLAG_NO_WRITES != 0,
            function: true,
            command: argv.to_vec(),
            keys: super::tracked_keys(ctx, keys),
        };
        let func = f.func.clone();
        let reply = engine.invoke(ctx, run, |e| {
            let (k, a) = arrays(&e.lua, keys, args)?;
            caller.call((func, k, a))
        });
        ctx.w.functions.engine = Some(engine);
        reply
    }

    /// Memory used by the functions' Lua state.
    pub fn used_memory(&self) -> usize {
        self.engine.as_ref().map_or(0, |e| e.used_memory())
    }
}

/// The keys and args tables a function gets.
fn arrays(lua: &mlua::Lua, keys: &[Bytes], args: &[Bytes]) -> mlua::Result<(Table, Table)> {
    let seq = |items: &[Bytes]| -> mlua::Result<Table> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            t.raw_set(i + 1, lua.create_string(item)?)?;
        }
        Ok(t)
    };
    Ok((seq(keys)?, seq(args)?))
}

/// The `err` text of a raised error table (or the string raised).
fn error_text(v: &Value) -> String {
    let field = match v {
        Value::Table(t) => t.raw_get::<Value>("err").unwrap_or(Value::Nil),
        other => other.clone(),
    };
    match field {
        Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        _ => "ERR unknown error".into(),
    }
}

/// `functionExtractLibMetaData`: the library name from the `#!<engine> name=<name>` line, and
/// the code after it (from its line feed, so line numbers stay right).
fn metadata(code: &[u8]) -> Result<(String, &[u8]), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    // strchr: a NUL before the line feed ends the search.
    let end = match code.iter().position(|&c| c == b'\n' || c == 0) {
        Some(i) if code[i] == b'\n' => i,
        _ => return Err("Invalid library metadata".into()),
    };
    let parts = match crate::protocol::request::split_args(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid library metadata".into()),
    };
    let engine = String::from_utf8_lossy(parts[0].get(2..).unwrap_or_default()).into_owned();
    let mut name: Option<String> = None;
    for part in &parts[1..] {
        let text = String::from_utf8_lossy(part);
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(text[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {text}"));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    if !valid_name(name.as_bytes()) {
        return Err(NAME_ERROR.into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok((name, &code[end..]))
}

/// `functionsVerifyName`: letters, digits and underscores, at least one.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `redis.register_function`, available while a library loads.
fn register_fn(
    lua: &mlua::Lua,
    pending: Rc<RefCell<Option<Vec<Function>>>>,
) -> mlua::Result<LuaFunction> {
    api::lib_fn(lua, move |_lua, args| {
        if pending.borrow().is_none() {
            return Ok(Err(Fail::Redis(
                "redis.register_function can only be called on FUNCTION LOAD command".into(),
            )));
        }
        // Reading the arguments may run Lua (metamethods): no borrow is held meanwhile.
        let f = match args.len() {
            1 => named_args(&args[0]),
            2 => positional_args(&args),
            _ => Err("wrong number of arguments to redis.register_function".into()),
        };
        let f = match f {
            Ok(f) => f,
            Err(e) => return Ok(Err(Fail::Redis(e))),
        };
        if !valid_name(f.name.as_bytes()) {
            return Ok(Err(Fail::Redis(NAME_ERROR.into())));
        }
        let mut pending = pending.borrow_mut();
        let Some(registered) = pending.as_mut() else {
            return Ok(Err(Fail::Redis("FUNCTION LOAD ended".into())));
        };
        if registered.iter().any(|r| r.name == f.name) {
            return Ok(Err(Fail::Redis(
                "Function already exists in the library".into(),
            )));
        }
        registered.push(f);
        Ok(Ok(MultiValue::new()))
    })
}

/// `lua_isstring` + `lua_tostring`: strings, and numbers as Lua prints them.
fn lua_text(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(i) => Some(Bytes::from(crate::protocol::numbers::fmt_g(*i as f64, 14))),
        Value::Number(n) => Some(Bytes::from(crate::protocol::numbers::fmt_g(*n, 14))),
        _ => None,
    }
}

fn positional_args(args: &MultiValue) -> Result<Function, String> {
    let Some(name) = lua_text(&args[0]) else {
        return Err("first argument to redis.register_function must be a string".into());
    };
    let Value::Function(func) = &args[1] else {
        return Err("second argument to redis.register_function must be a function".into());
    };
    Ok(Function {
        name: String::from_utf8_lossy(&name).into_owned(),
        desc: None,
        flags: 0,
        func: func.clone(),
    })
}

fn named_args(arg: &Value) -> Result<Function, String> {
    let Value::Table(t) = arg else {
        return Err(
            "calling redis.register_function with a single argument is only applicable \
                    to Lua table (representing named arguments)."
                .into(),
        );
    };
    let (mut name, mut desc, mut func, mut flags) = (None, None, None, 0);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let Some(key) = lua_text(&k) else {
            return Err(
                "named argument key given to redis.register_function is not a string".into(),
            );
        };
        let key = String::from_utf8_lossy(&key).to_ascii_lowercase();
        match key.as_str() {
            "function_name" => match lua_text(&v) {
                Some(n) => name = Some(String::from_utf8_lossy(&n).into_owned()),
                None => {
                    return Err(
                        "function_name argument given to redis.register_function must \
                                be a string"
                            .into(),
                    )
                }
            },
            "description" => match lua_text(&v) {
                Some(d) => desc = Some(d),
                None => {
                    return Err(
                        "description argument given to redis.register_function must be \
                                a string"
                            .into(),
                    )
                }
            },
            "callback" => match v {
                Value::Function(f) => func = Some(f),
                _ => {
                    return Err(
                        "callback argument given to redis.register_function must be a \
                                function"
                            .into(),
                    )
                }
            },
            "flags" => {
                let Value::Table(list) = v else {
                    return Err("flags argument to redis.register_function must be a table \
                                representing function flags"
                        .into());
                };
                flags = read_flags(&list).ok_or("unknown flag given")?;
            }
            _ => return Err("unknown argument given to redis.register_function".into()),
        }
    }
    let Some(name) = name else {
        return Err("redis.register_function must get a function name argument".into());
    };
    let Some(func) = func else {
        return Err("redis.register_function must get a callback argument".into());
    };
    Ok(Function {
        name,
        desc,
        flags,
        func,
    })
}

/// `luaRegisterFunctionReadFlags`: the array part up to the first nil, each a flag name
/// (case-insensitive).
fn read_flags(list: &Table) -> Option<u32> {
    let mut flags = 0;
    for i in 1.. {
        let v: Value = list.get(i).ok()?;
        if v.is_nil() {
            break;
        }
        let name = lua_text(&v)?;
        let (flag, _) = FLAG_NAMES
            .iter()
            .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(&name))?;
        flags |= flag;
    }
    Some(flags)
}

/// The flags a function declared, by name (FUNCTION LIST).
pub fn flag_names(flags: u32) -> impl Iterator<Item = &'static str> {
    FLAG_NAMES
        .iter()
        .filter(move |(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_errors() {
        assert_eq!(
            metadata(b"return 1").unwrap_err(),
            "Missing library metadata"
        );
        assert_eq!(
            metadata(b"#!lua name=a").unwrap_err(),
            "Invalid library metadata"
        );
        assert_eq!(
            metadata(b"#!lua\n").unwrap_err(),
            "Library name was not given"
        );
        assert_eq!(
            metadata(b"#!lua name=a foo\n").unwrap_err(),
            "Invalid metadata value given: foo"
        );
        assert_eq!(
            metadata(b"#!js name=a\n").unwrap_err(),
            "Engine 'js' not found"
        );
        let (name, body) = metadata(b"#!LUA NAME=lib\nreturn").unwrap();
        assert_eq!((name.as_str(), body), ("lib", &b"\nreturn"[..]));
    }

    #[test]
    fn load_and_list() {
        let f = Functions::new();
        let mut libs = Libraries::default();
        let code = Bytes::from_static(
            b"#!lua name=lib\nredis.register_function('f', function(k, a) return 1 end)\n\
              redis.register_function{function_name='g', callback=function() end, \
              flags={'no-writes'}, description='d'}",
        );
        assert_eq!(f.create(&mut libs, &code, false, true).unwrap(), "lib");
        assert_eq!(libs.function_count(), 2);
        assert_eq!(libs.function(b"G").unwrap().flags, FLAG_NO_WRITES);
        assert_eq!(
            f.create(&mut libs, &code, false, true).unwrap_err(),
            "Library 'lib' already exists"
        );
        let other = Bytes::from_static(b"#!lua name=other\nredis.register_function('f', print)");
        assert!(f.create(&mut libs, &other, false, true).is_err());
    }
}
