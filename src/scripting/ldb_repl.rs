//! The debugger's command loop (`ldbRepl` of Redis 7.0.15's eval.c): parses the commands the
//! client sends while the script is stopped and runs them, those that look at the Lua stack
//! (print, eval, redis, trace) here.

use std::ffi::c_int;

use mlua::ffi;

use super::ldb::{self, log, log_source_line};
use super::ldb_show::{c_bytes, cat_value};

/// Why the loop ended other than by a step or continue.
pub enum End {
    /// The client closed the connection (the script goes on without stops).
    Closed,
    /// An error to raise in the script (abort, protocol error).
    Raise(String),
}

pub enum Parsed {
    Command(Vec<Vec<u8>>),
    More,
    Error,
}

/// C's `atoi`.
pub fn atoi(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = s.get(i) == Some(&b'-');
    if matches!(s.get(i), Some(b'-') | Some(b'+')) {
        i += 1;
    }
    let mut n: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        n = n.wrapping_mul(10).wrapping_add((s[i] - b'0') as i64);
        i += 1;
    }
    let n = if neg { n.wrapping_neg() } else { n };
    n as i32 as i64
}

/// Redis's strict `string2l`.
pub fn string2l(s: &[u8]) -> Option<i64> {
    let t = std::str::from_utf8(s).ok()?;
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty()
        || !digits.bytes().all(|c| c.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || t == "-0"
    {
        return None;
    }
    t.parse().ok()
}

fn find(buf: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    buf.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| p + from)
}

/// `ldbReplParseCommand`: Redis's forgiving multi-bulk parser (NUL ends the buffer as in C).
pub fn parse(cbuf: &[u8]) -> Parsed {
    if cbuf.is_empty() {
        return Parsed::More;
    }
    let end = cbuf.iter().position(|&c| c == 0).unwrap_or(cbuf.len());
    let buf = &cbuf[..end];
    let Some(star) = buf.iter().position(|&c| c == b'*') else {
        return Parsed::Error;
    };
    let Some(eol) = find(buf, star, b"\r\n") else {
        return Parsed::More;
    };
    let argc = atoi(&buf[star + 1..eol]);
    if argc <= 0 || argc > 1024 {
        return Parsed::Error;
    }
    let mut p = eol + 2;
    let mut argv = Vec::with_capacity(argc as usize);
    while (argv.len() as i64) < argc {
        let Some(&c) = buf.get(p) else {
            return Parsed::More;
        };
        if c != b'$' {
            return Parsed::Error;
        }
        let Some(eol) = find(buf, p, b"\r\n") else {
            return Parsed::More;
        };
        let slen = atoi(&buf[p + 1..eol]);
        if slen <= 0 || slen > 1024 {
            return Parsed::Error;
        }
        p = eol + 2;
        let slen = slen as usize;
        if p + slen + 2 > cbuf.len() {
            return Parsed::More;
        }
        argv.push(cbuf[p..p + slen].to_vec());
        p += slen;
        if cbuf.get(p..p + 2) != Some(b"\r\n") {
            return Parsed::Error;
        }
        p += 2;
    }
    Parsed::Command(argv)
}

fn is(a: &[u8], names: &[&str]) -> bool {
    names.iter().any(|n| a.eq_ignore_ascii_case(n.as_bytes()))
}

/// Reads and runs debugger commands until one returns to the script (step, continue).
///
/// # Safety
/// Called from the line hook with the script's live state.
pub unsafe fn repl(l: *mut ffi::lua_State) -> Result<(), End> {
    loop {
        let argv = match ldb::read_command() {
            Ok(a) => a,
            Err(None) => return Err(End::Closed),
            Err(Some(msg)) => return Err(End::Raise(msg.into())),
        };
        let cmd = argv[0].as_slice();
        if is(cmd, &["h", "help"]) {
            help();
        } else if is(cmd, &["s", "step", "n", "next"]) {
            ldb::set_step(true);
            return Ok(());
        } else if is(cmd, &["c", "continue"]) {
            return Ok(());
        } else if is(cmd, &["t", "trace"]) {
            trace(l);
        } else if is(cmd, &["m", "maxlen"]) {
            ldb::maxlen(&argv);
        } else if is(cmd, &["b", "break"]) {
            ldb::breakpoints(&argv);
        } else if is(cmd, &["e", "eval"]) {
            eval(l, &argv);
        } else if is(cmd, &["a", "abort"]) {
            return Err(End::Raise("script aborted for user request".into()));
        } else if argv.len() > 1 && is(cmd, &["r", "redis"]) {
            redis(l, &argv);
        } else if is(cmd, &["p", "print"]) {
            if argv.len() == 2 {
                print(l, &argv[1]);
            } else {
                print_all(l);
            }
        } else if is(cmd, &["l", "list"]) {
            let mut around = ldb::current_line();
            let mut ctx = 5;
            if argv.len() > 1 {
                let num = atoi(&argv[1]) as i32;
                if num > 0 {
                    around = num;
                }
            }
            if argv.len() > 2 {
                ctx = atoi(&argv[2]) as i32;
            }
            ldb::list(around, ctx);
        } else if is(cmd, &["w", "whole"]) {
            ldb::list(1, 1_000_000);
        } else {
            log(
                b"<error> Unknown Redis Lua debugger command or wrong number of arguments."
                    .to_vec(),
            );
        }
        ldb::send();
    }
}

const HELP: &[&str] = &[
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
];

fn help() {
    for line in HELP {
        log(line.as_bytes().to_vec());
    }
}

/// `ldbLogStackValue`: the value on top of the stack, after `prefix`, cut to maxlen.
unsafe fn log_top(l: *mut ffi::lua_State, prefix: &[u8]) {
    let mut s = prefix.to_vec();
    cat_value(&mut s, l, -1);
    ldb::log_max(s);
}

fn new_debug() -> ffi::lua_Debug {
    // SAFETY: lua_Debug is plain C data; all-zero is its initial state.
    unsafe { std::mem::zeroed() }
}

/// `print <var>`: the first local of that name from the current frame outwards, else the
/// KEYS and ARGV globals.
unsafe fn print(l: *mut ffi::lua_State, name: &[u8]) {
    let mut ar = new_debug();
    let mut level = 0;
    while ffi::lua_getstack(l, level, &mut ar) != 0 {
        level += 1;
        let mut i = 1;
        loop {
            let n = ffi::lua_getlocal(l, &ar, i);
            if n.is_null() {
                break;
            }
            i += 1;
            let found = c_bytes(n) == name;
            if found {
                log_top(l, b"<value> ");
            }
            ffi::lua_settop(l, -2);
            if found {
                return;
            }
        }
    }
    if name == b"ARGV" || name == b"KEYS" {
        let cname = if name == b"ARGV" { c"ARGV" } else { c"KEYS" };
        ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, cname.as_ptr());
        log_top(l, b"<value> ");
        ffi::lua_settop(l, -2);
    } else {
        log(b"No such variable.".to_vec());
    }
}

/// `print`: the locals of the current frame.
unsafe fn print_all(l: *mut ffi::lua_State) {
    let mut ar = new_debug();
    let mut vars = 0;
    if ffi::lua_getstack(l, 0, &mut ar) != 0 {
        let mut i = 1;
        loop {
            let n = ffi::lua_getlocal(l, &ar, i);
            if n.is_null() {
                break;
            }
            i += 1;
            let name = c_bytes(n);
            if !name.windows(12).any(|w| w == b"(*temporary)") {
                let mut prefix = b"<value> ".to_vec();
                prefix.extend_from_slice(name);
                prefix.extend_from_slice(b" = ");
                log_top(l, &prefix);
                vars += 1;
            }
            ffi::lua_settop(l, -2);
        }
    }
    if vars == 0 {
        log(b"No local variables in the current context.".to_vec());
    }
}

/// `eval <code>`: runs code (as an expression first) in the script's environment.
unsafe fn eval(l: *mut ffi::lua_State, argv: &[Vec<u8>]) {
    let code = argv[1..].join(&b' ');
    let mut expr = b"return ".to_vec();
    expr.extend_from_slice(&code);
    let name = c"@ldb_eval".as_ptr();
    if ffi::luaL_loadbuffer(l, expr.as_ptr().cast(), expr.len(), name) != 0 {
        ffi::lua_settop(l, -2);
        if ffi::luaL_loadbuffer(l, code.as_ptr().cast(), code.len(), name) != 0 {
            log_error_top(l);
            return;
        }
    }
    set_script_env(l);
    if ffi::lua_pcall(l, 0, 1, 0) != 0 {
        log_error_top(l);
        return;
    }
    log_top(l, b"<retval> ");
    ffi::lua_settop(l, -2);
}

/// The chunk on top gets the environment of the running script (Redis's globals refuse
/// unknown names; here that is the script's environment table).
unsafe fn set_script_env(l: *mut ffi::lua_State) {
    let mut ar = new_debug();
    if ffi::lua_getstack(l, 0, &mut ar) == 0 {
        return;
    }
    ffi::lua_getinfo(l, c"f".as_ptr(), &mut ar);
    ffi::lua_getfenv(l, -1);
    ffi::lua_setfenv(l, -3);
    ffi::lua_settop(l, -2);
}

unsafe fn log_error_top(l: *mut ffi::lua_State) {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, -1, &mut len);
    let mut s = b"<error> ".to_vec();
    if !p.is_null() {
        s.extend_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), len));
    }
    log(s);
    ffi::lua_settop(l, -2);
}

/// `redis <cmd> ...`: redis.call with logging on, so the command and its reply are logged.
unsafe fn redis(l: *mut ffi::lua_State, argv: &[Vec<u8>]) {
    if ffi::lua_checkstack(l, argv.len() as c_int + 1) == 0 {
        ldb::log_reply(b"max lua stack reached");
        return;
    }
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"redis".as_ptr());
    ffi::lua_pushlstring(l, c"call".as_ptr(), 4);
    ffi::lua_gettable(l, -2);
    for a in &argv[1..] {
        ffi::lua_pushlstring(l, a.as_ptr().cast(), a.len());
    }
    ldb::set_step(true);
    ffi::lua_pcall(l, argv.len() as c_int - 1, 1, 0);
    ldb::set_step(false);
    ffi::lua_settop(l, -3);
}

/// `trace`: the script's frames from the current one outwards.
unsafe fn trace(l: *mut ffi::lua_State) {
    let mut ar = new_debug();
    let mut level = 0;
    while ffi::lua_getstack(l, level, &mut ar) != 0 {
        ffi::lua_getinfo(l, c"Snl".as_ptr(), &mut ar);
        let short = c_bytes(ar.short_src.as_ptr());
        if short.windows(11).any(|w| w == b"user_script") {
            let name = if ar.name.is_null() {
                b"top level".as_slice()
            } else {
                c_bytes(ar.name)
            };
            let mut s = if level == 0 {
                b"In ".to_vec()
            } else {
                b"From ".to_vec()
            };
            s.extend_from_slice(name);
            s.push(b':');
            log(s);
            log_source_line(ar.currentline);
        }
        level += 1;
    }
    if level == 0 {
        log(b"<error> Can't retrieve Lua stack.".to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_redis() {
        assert!(matches!(parse(b""), Parsed::More));
        assert!(
            matches!(parse(b"*1\r\n$1\r\ns\r\n"), Parsed::Command(a) if a == vec![b"s".to_vec()])
        );
        assert!(matches!(parse(b"*2\r\n$1\r\ns\r\n"), Parsed::More));
        assert!(matches!(parse(b"step\r\n"), Parsed::Error));
        assert!(matches!(parse(b"*0\r\n"), Parsed::Error));
        assert!(matches!(parse(b"*1\r\n$0\r\n\r\n"), Parsed::Error));
        assert_eq!(atoi(b" 12x"), 12);
        assert_eq!(string2l(b"-3"), Some(-3));
        assert_eq!(string2l(b"03"), None);
    }
}
