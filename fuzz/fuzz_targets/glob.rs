//! Redis's glob matcher must answer fast and never panic on any pattern and string (KEYS, SCAN
//! MATCH, PSUBSCRIBE and CONFIG GET take the pattern from the client). The first byte splits
//! the input; libFuzzer's -timeout catches exponential paths.
#![no_main]

use berth::db::glob::glob_match;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let at = (split as usize).min(rest.len());
    let (pattern, string) = rest.split_at(at);
    let nocase = split & 1 == 1;
    glob_match(pattern, string, nocase);
    // A pattern always matches itself once its special bytes are escaped.
    let mut escaped = Vec::with_capacity(string.len() * 2);
    for &b in string {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            escaped.push(b'\\');
        }
        escaped.push(b);
    }
    assert!(glob_match(&escaped, string, nocase));
});
