//! Redis's glob matcher (`stringmatchlen` in util.c): `*`, `?`, `[...]` with ranges and `^`, `\`.

/// A lone `*` matches everything, even the empty key: Redis's callers (KEYS, SCAN) short-cut it.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut give_up = false;
    pattern == b"*" || match_from(pattern, string, nocase, 0, &mut give_up)
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// `give_up` is Redis's `skipLongerMatches`: once the rest of the pattern after a `*` matches
/// nowhere in the rest of the string, no earlier `*` can help by matching more, so every level
/// stops at once. Without it `a*a*...*b` against a run of `a`s is exponential (CVE-2022-36021).
fn match_from(mut p: &[u8], mut s: &[u8], nocase: bool, depth: usize, give_up: &mut bool) -> bool {
    // Bounds the stack for patterns with thousands of `*` (Redis 7.2's nesting limit).
    if depth > 1000 {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_from(&p[1..], s, nocase, depth + 1, give_up) {
                        return true;
                    }
                    if *give_up {
                        return false;
                    }
                    s = &s[1..];
                }
                *give_up = true;
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        break;
                    }
                    if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if p[0] == s[0] {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut start, mut end) = (p[0], p[2]);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        let c = if nocase {
                            s[0].to_ascii_lowercase()
                        } else {
                            s[0]
                        };
                        let (start, end) = if nocase {
                            (start.to_ascii_lowercase(), end.to_ascii_lowercase())
                        } else {
                            (start, end)
                        };
                        p = &p[2..];
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if eq(p[0], s[0], nocase) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                if p.is_empty() {
                    // Unterminated class: Redis treats the end of pattern as the ']'.
                    p = b"]";
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if !eq(p[0], s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if !eq(c, s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while !p.is_empty() && p[0] == b'*' {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn patterns() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"*x*", b"abxcd", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(!glob_match(b"a*", b"", false));
        assert!(glob_match(b"*", b"", false));
        assert!(glob_match(b"queue:*", b"queue:default", false));
        assert!(glob_match(b"*a*b", b"xxaxxb", false));
        assert!(!glob_match(b"*a*b", b"xxaxxc", false));
        assert!(glob_match(b"a*b*c", b"abbbc", false));
    }

    /// The pattern from CVE-2022-36021: exponential without the early stop.
    #[test]
    fn hostile_pattern_is_linear() {
        let key = vec![b'a'; 40];
        let pattern = format!("{}b", "a*".repeat(20));
        let started = std::time::Instant::now();
        assert!(!glob_match(pattern.as_bytes(), &key, false));
        let long_key = vec![b'a'; 100_000];
        let long_pattern = format!("{}b", "a*".repeat(5000));
        assert!(!glob_match(long_pattern.as_bytes(), &long_key, false));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
