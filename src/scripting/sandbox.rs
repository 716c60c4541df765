//! The Lua environment scripts see, as Redis 7.0.15 builds it: the libraries it loads, the
//! globals it removes, read-only globals and library tables, the error handler that turns
//! errors into `{err=..., source=..., line=...}` tables, and Redis's deterministic PRNG.

/// Globals Redis does not offer to scripts.
pub const REMOVED: &[&str] = &[
    "print", "dofile", "loadfile", "getfenv", "setfenv", "newproxy", "module", "require",
    "package", "debug", "io", "os",
];

/// Library tables that become read-only (writing a field raises like Redis's readonly tables).
pub const LIBRARIES: &[&str] = &[
    "redis",
    "string",
    "math",
    "table",
    "coroutine",
    "cjson",
    "cmsgpack",
    "bit",
    "struct",
];

/// Runs once per Lua state with arguments (globals G, debug library, errmsg function, library
/// names, fill function); calls `fill()` to build the libraries, then makes the globals and
/// libraries read-only and returns (script environment P, runner function, protect function:
/// `protect(t)` makes the `setmetatable` and `rawset` scripts see refuse table `t`).
///
/// The runner is `run(f)`: `xpcall(f, handler)` keeping only the first result, as Redis does.
pub const PRELUDE: &str = r#"
local G, dbg, errmsg, lib_names, fill = ...
local error, type, tostring, rawget, rawset, select, unpack, setmetatable, setfenv =
  error, type, tostring, rawget, rawset, select, unpack, setmetatable, setfenv
local xpcall, loadstring, load = xpcall, loadstring, load
local protected = setmetatable({}, {__mode = 'k'})

local function handler(err)
  local lvl = 2
  local i = dbg.getinfo(lvl, 'nSl')
  while i and (i.what == 'C' or i.source == '=berth') do
    lvl = lvl + 1
    i = dbg.getinfo(lvl, 'nSl')
  end
  if type(err) == 'userdata' then
    err = errmsg(err, i and i.short_src, i and i.currentline)
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
rawset(G, '__redis__err__handler', handler)

-- Redis's pcall: an error table caught is replaced by its err string.
local pcall_ = pcall
local function fix(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == 'userdata' then
    e = errmsg(e)
  end
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end
rawset(G, 'pcall', function(...) return fix(pcall_(...)) end)

local function run(f)
  local ok, v = xpcall(f, handler)
  return ok, v
end

fill()

local function readonly(t)
  local p = setmetatable({}, {
    __index = t,
    __newindex = function() error("Attempt to modify a readonly table", 2) end,
  })
  protected[p] = true
  return p
end

local P
P = setmetatable({}, {
  __index = function(_, n)
    if n == '_G' then return P end
    local v = rawget(G, n)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(n) .. "'", 2)
    end
    return v
  end,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
})
protected[P] = true

for _, name in ipairs(lib_names) do
  rawset(G, name, readonly(rawget(G, name)))
end

-- Strings index the (read-only) string library scripts see.
getmetatable('').__index = rawget(G, 'string')
rawset(G, 'setmetatable', function(t, mt)
  if protected[t] then error("Attempt to modify a readonly table", 2) end
  return setmetatable(t, mt)
end)
rawset(G, 'rawset', function(t, k, v)
  if protected[t] then error("Attempt to modify a readonly table", 0) end
  return rawset(t, k, v)
end)
rawset(G, 'loadstring', function(s, name)
  local f, e = loadstring(s, name)
  if f then setfenv(f, P) end
  return f, e
end)
rawset(G, 'load', function(fn, name)
  local f, e = load(fn, name)
  if f then setfenv(f, P) end
  return f, e
end)

return P, run, function(t) protected[t] = true end
"#;

/// Redis's `redisLrand48` (rand.c): lrand48's 48-bit linear congruential generator. Its state
/// is process-wide and Redis 7.0 never reseeds it (only `math.randomseed` does), not even on
/// SCRIPT FLUSH.
static RAND_STATE: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0x1234_ABCD_330E);

pub fn rand_seed(seed: i32) {
    RAND_STATE.store(
        (((seed as u32) as u64) << 16) | 0x330E,
        std::sync::atomic::Ordering::Relaxed,
    );
}

pub fn rand_next() -> i32 {
    use std::sync::atomic::Ordering::Relaxed;
    let x = RAND_STATE.load(Relaxed);
    let x = (x.wrapping_mul(0x5DEECE66D).wrapping_add(0xB)) & ((1u64 << 48) - 1);
    RAND_STATE.store(x, Relaxed);
    (x >> 17) as i32
}
