//! How the Lua debugger shows things, as Redis 7.0.15's eval.c does: Lua values on the stack
//! (`ldbCatStackValueRec`), Redis replies in human form (`ldbRedisProtocolToHuman`).

use std::ffi::{c_char, c_int, CStr};

use mlua::ffi;

/// `LUA_MINSTACK/2`: nesting past this is shown as a marker.
const MAX_VALUES_DEPTH: usize = 10;

/// `sdscatrepr`: quoted, with C escapes.
pub fn cat_repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// C's `printf("%g", n)`.
pub fn fmt_g(n: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: snprintf writes at most 64 bytes, NUL included, into the buffer.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr().cast::<c_char>(),
            buf.len(),
            c"%g".as_ptr(),
            n,
        )
    };
    String::from_utf8_lossy(&buf[..(len.max(0) as usize).min(63)]).into_owned()
}

/// Appends the value at `idx` of the stack in the debugger's form (the stack is left as it was).
///
/// # Safety
/// `l` is a live Lua state and `idx` a valid index of its stack.
pub unsafe fn cat_value(out: &mut Vec<u8>, l: *mut ffi::lua_State, idx: c_int) {
    let abs = if idx < 0 {
        ffi::lua_gettop(l) + idx + 1
    } else {
        idx
    };
    cat_value_rec(out, l, abs, 0);
}

unsafe fn cat_value_rec(out: &mut Vec<u8>, l: *mut ffi::lua_State, idx: c_int, level: usize) {
    if level == MAX_VALUES_DEPTH {
        out.extend_from_slice(b"<max recursion level reached! Nested table?>");
        return;
    }
    let t = ffi::lua_type(l, idx);
    match t {
        ffi::LUA_TSTRING => {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, idx, &mut len);
            cat_repr(out, std::slice::from_raw_parts(p.cast::<u8>(), len));
        }
        ffi::LUA_TBOOLEAN => out.extend_from_slice(if ffi::lua_toboolean(l, idx) != 0 {
            b"true"
        } else {
            b"false"
        }),
        ffi::LUA_TNUMBER => out.extend_from_slice(fmt_g(ffi::lua_tonumber(l, idx)).as_bytes()),
        ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
        ffi::LUA_TTABLE => cat_table(out, l, idx, level + 1),
        ffi::LUA_TFUNCTION | ffi::LUA_TUSERDATA | ffi::LUA_TTHREAD | ffi::LUA_TLIGHTUSERDATA => {
            let name = match t {
                ffi::LUA_TFUNCTION => "function",
                ffi::LUA_TUSERDATA => "userdata",
                ffi::LUA_TTHREAD => "thread",
                _ => "light-userdata",
            };
            let p = ffi::lua_topointer(l, idx);
            out.extend_from_slice(format!("\"{name}@{p:p}\"").as_bytes());
        }
        _ => out.extend_from_slice(b"\"<unknown-lua-type>\""),
    }
}

/// A table as an array (`{1; 2}`) if its keys are 1..n in iteration order, else as
/// `{[k]=v; ...}`: both forms are built while iterating, as Redis does.
unsafe fn cat_table(out: &mut Vec<u8>, l: *mut ffi::lua_State, idx: c_int, level: usize) {
    let mut expected = 1.0;
    let mut is_array = true;
    let (mut arr, mut full) = (Vec::new(), Vec::new());
    if ffi::lua_checkstack(l, 3) == 0 {
        out.extend_from_slice(b"{}");
        return;
    }
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, idx) != 0 {
        let (key, val) = (ffi::lua_gettop(l) - 1, ffi::lua_gettop(l));
        if is_array
            && (ffi::lua_type(l, key) != ffi::LUA_TNUMBER || ffi::lua_tonumber(l, key) != expected)
        {
            is_array = false;
        }
        cat_value_rec(&mut arr, l, val, level);
        arr.extend_from_slice(b"; ");
        full.push(b'[');
        cat_value_rec(&mut full, l, key, level);
        full.extend_from_slice(b"]=");
        cat_value_rec(&mut full, l, val, level);
        full.extend_from_slice(b"; ");
        ffi::lua_settop(l, -2);
        expected += 1.0;
    }
    let chosen = if is_array { &mut arr } else { &mut full };
    let keep = chosen.len().saturating_sub(2);
    chosen.truncate(keep);
    out.push(b'{');
    out.extend_from_slice(chosen);
    out.push(b'}');
}

/// A C string from Lua (a variable name, a chunk name).
///
/// # Safety
/// `p` is null or a NUL-terminated string.
pub unsafe fn c_bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        b""
    } else {
        CStr::from_ptr(p).to_bytes()
    }
}

/// `ldbRedisProtocolToHuman`: a reply's RESP bytes in the form the debugger logs; returns the
/// bytes it consumed.
pub fn protocol_to_human(o: &mut Vec<u8>, r: &[u8]) -> usize {
    let Some(&kind) = r.first() else {
        return 0;
    };
    let eol = r.windows(2).position(|w| w == b"\r\n").unwrap_or(r.len());
    let head = &r[1..eol.max(1)];
    let after = (eol + 2).min(r.len());
    let num = || {
        std::str::from_utf8(head)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    match kind {
        b':' => {
            o.extend_from_slice(head);
            after
        }
        b'$' => {
            let len = num();
            if len == -1 {
                o.extend_from_slice(b"NULL");
                return after;
            }
            let end = (after + len.max(0) as usize).min(r.len());
            cat_repr(o, &r[after..end]);
            (end + 2).min(r.len())
        }
        b'+' | b'-' => {
            cat_repr(o, &r[..eol]);
            after
        }
        b'*' if num() == -1 => {
            o.extend_from_slice(b"NULL");
            after
        }
        b'*' => aggregate(o, r, after, num(), b"[", b"]", false),
        b'~' => aggregate(o, r, after, num(), b"~(", b")", false),
        b'%' => aggregate(o, r, after, num(), b"{", b"}", true),
        b'_' => {
            o.extend_from_slice(b"(null)");
            after
        }
        b'#' => {
            o.extend_from_slice(if r.get(1) == Some(&b't') {
                b"#true"
            } else {
                b"#false"
            });
            after
        }
        b',' => {
            o.extend_from_slice(b"(double) ");
            o.extend_from_slice(head);
            after
        }
        // Types Redis's function does not know print nothing.
        _ => after,
    }
}

fn aggregate(
    o: &mut Vec<u8>,
    r: &[u8],
    mut at: usize,
    n: i64,
    open: &[u8],
    close: &[u8],
    pairs: bool,
) -> usize {
    o.extend_from_slice(open);
    for j in 0..n {
        at += protocol_to_human(o, &r[at..]);
        if pairs {
            o.extend_from_slice(b" => ");
            at += protocol_to_human(o, &r[at..]);
        }
        if j != n - 1 {
            o.push(b',');
        }
    }
    o.extend_from_slice(close);
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn human(r: &[u8]) -> String {
        let mut o = Vec::new();
        protocol_to_human(&mut o, r);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn replies() {
        assert_eq!(human(b"+OK\r\n"), "\"+OK\"");
        assert_eq!(human(b"$-1\r\n"), "NULL");
        assert_eq!(human(b"*2\r\n$1\r\na\r\n:3\r\n"), "[\"a\",3]");
        assert_eq!(human(b"%1\r\n$1\r\na\r\n#t\r\n"), "{\"a\" => #true}");
        assert_eq!(human(b",1.5\r\n"), "(double) 1.5");
        assert_eq!(fmt_g(1.0), "1");
        assert_eq!(fmt_g(0.1), "0.1");
    }
}
