//! Checking a parameter's new value and printing it as CONFIG GET does: Redis 7.0.15's
//! `*ConfigSet` / `*ConfigGet` functions (config.c) and the C number parsers they use.

use super::{
    Kind, Param, Special, StrCheck, MEM, MULTI_ARG, OCT, PCT, SHUTDOWN_NOSAVE, SHUTDOWN_SAVE,
};

/// Checks a parameter's new value (the words of a multi-word value, or one word) and returns
/// it as CONFIG GET prints it. `previous` is the stored value (`save` lines in a config file
/// add up); the error text is what CONFIG SET reports after its prefix.
pub fn parse(p: &Param, args: &[&str], previous: Option<&str>) -> Result<String, String> {
    match p.kind {
        Kind::Bool => match args[0].to_ascii_lowercase().as_str() {
            // Redis refuses it when built without its Jemalloc; Berth has no defragmenter.
            "yes" if p.name == "activedefrag" => {
                Err("Active defragmentation cannot be enabled: it \
                 requires a Redis server compiled with a modified Jemalloc like the one shipped \
                 by default with the Redis source distribution"
                    .into())
            }
            v @ ("yes" | "no") => Ok(v.to_string()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Enum(values) => parse_enum(p, values, args),
        Kind::Str(check) => {
            check_string(check, args[0])?;
            Ok(args[0].to_string())
        }
        Kind::Num {
            min,
            max,
            unsigned,
            fmt,
        } => parse_number(p.name, args[0], min, max, unsigned, fmt),
        Kind::Special(s) => parse_special(s, args, previous),
    }
}

fn parse_enum(p: &Param, values: &[(&str, i32)], args: &[&str]) -> Result<String, String> {
    let bitflags = p.flags & MULTI_ARG != 0;
    let mut value = Some(0);
    if args.is_empty() || (!bitflags && args.len() != 1) {
        value = None;
    }
    for arg in args {
        let mut matched = false;
        for (name, v) in values {
            if name.eq_ignore_ascii_case(arg) {
                value = value.map(|x| x | v);
                matched = true;
            }
        }
        if !matched {
            value = None;
        }
    }
    let Some(value) = value else {
        let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
        let mut err = format!(
            "argument(s) must be one of the following: {}",
            names.join(", ")
        );
        err.truncate(255);
        return Err(err);
    };
    if bitflags && value & SHUTDOWN_SAVE != 0 && value & SHUTDOWN_NOSAVE != 0 {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    Ok(enum_name(values, value, bitflags))
}

/// Redis's configEnumGetName: the first exact match, or (bit flags) the names of the bits.
fn enum_name(values: &[(&str, i32)], value: i32, bitflags: bool) -> String {
    let mut names: Vec<&str> = Vec::new();
    let mut unmatched = value;
    for (name, v) in values {
        if value == *v {
            return name.to_string();
        }
        if bitflags && *v != 0 && *v == unmatched & v {
            names.push(name);
            unmatched &= !v;
        }
    }
    if names.is_empty() || unmatched != 0 {
        return "unknown".into();
    }
    names.join(" ")
}

fn check_string(check: StrCheck, v: &str) -> Result<(), String> {
    let base_name = !v.contains('/') && !v.contains('\\');
    let err = match check {
        StrCheck::None => return Ok(()),
        StrCheck::DbFilename if !base_name => "dbfilename can't be a path, just a filename",
        StrCheck::AofFilename if v.is_empty() => "appendfilename can't be empty",
        StrCheck::AofFilename if !base_name => "appendfilename can't be a path, just a filename",
        StrCheck::AofDirname if v.is_empty() => "appenddirname can't be empty",
        StrCheck::AofDirname if !base_name => "appenddirname can't be a path, just a dirname",
        // Redis checks up to the first NUL (C strings).
        StrCheck::Hostname => {
            let v = v.split('\0').next().unwrap_or("");
            if v.len() >= 256 {
                "Hostnames must be less than 256 characters"
            } else if !v
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
            {
                "Hostnames may only contain alphanumeric characters, hyphens or dots"
            } else {
                return Ok(());
            }
        }
        StrCheck::ProcTitle if !valid_proc_title(v) => {
            "template format is invalid or contains unknown variables"
        }
        _ => return Ok(()),
    };
    Err(err.into())
}

/// Redis's validateProcTitleTemplate: every `{variable}` known, and something left once
/// expanded with an empty title and trimmed of spaces.
fn valid_proc_title(template: &str) -> bool {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if after.is_empty() {
            return false;
        }
        if let Some(quoted) = after.strip_prefix('{') {
            out.push('{');
            rest = quoted;
            continue;
        }
        let Some(end) = after.find('}') else {
            return false;
        };
        match &after[..end] {
            "title" | "server-mode" | "unixsocket" => {}
            "listen-addr" | "config-file" | "port" | "tls-port" => out.push('x'),
            _ => return false,
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    !out.trim_matches(' ').is_empty()
}

fn parse_number(
    name: &str,
    v: &str,
    min: i64,
    max: i64,
    unsigned: bool,
    fmt: u8,
) -> Result<String, String> {
    let parsed = if fmt & MEM != 0 {
        memtoull(v).map(|n| n as i64)
    } else {
        None
    };
    let parsed = parsed.or_else(|| {
        let digits = v
            .strip_suffix('%')
            .filter(|_| fmt & PCT != 0 && v.len() > 1)?;
        crate::protocol::request::parse_i64(digits.as_bytes())
            .filter(|n| *n >= 0)
            .map(|n| -n)
    });
    let parsed = parsed.or_else(|| {
        if fmt & OCT != 0 {
            strtoll_radix(v, 8)
        } else if fmt == 0 {
            crate::protocol::request::parse_i64(v.as_bytes())
        } else {
            None
        }
    });
    let Some(n) = parsed else {
        return Err(if fmt & MEM != 0 && fmt & PCT != 0 {
            "argument must be a memory or percent value"
        } else if fmt & MEM != 0 {
            "argument must be a memory value"
        } else if fmt & OCT != 0 {
            "argument couldn't be parsed as an octal number"
        } else {
            "argument couldn't be parsed into an integer"
        }
        .into());
    };
    if unsigned {
        let (u, lo, hi) = (n as u64, min as u64, max as u64);
        if u > hi || u < lo {
            return Err(if fmt & OCT != 0 {
                format!("argument must be between {lo:o} and {hi:o} inclusive")
            } else {
                format!("argument must be between {lo} and {hi} inclusive")
            });
        }
    } else if fmt & PCT != 0 && n < 0 {
        if n < min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -min
            ));
        }
    } else if n > max || n < min {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    // hz is a hint: Redis keeps it within 1..500.
    let n = if name == "hz" { n.clamp(1, 500) } else { n };
    Ok(if fmt & PCT != 0 && n < 0 {
        format!("{}%", -n)
    } else if fmt & OCT != 0 {
        format!("{:o}", n as u64)
    } else if fmt & MEM != 0 || unsigned {
        (n as u64).to_string()
    } else {
        n.to_string()
    })
}

fn parse_special(s: Special, args: &[&str], previous: Option<&str>) -> Result<String, String> {
    const WRONG: &str = "wrong number of arguments";
    match s {
        Special::Dir => {
            if args.len() != 1 {
                return Err(WRONG.into());
            }
            Ok(args[0].to_string())
        }
        Special::Save => {
            let args = if args.len() == 1 && args[0].is_empty() {
                &[][..]
            } else {
                args
            };
            const BAD: &str = "Invalid save parameters";
            if !args.len().is_multiple_of(2) {
                return Err(BAD.into());
            }
            let mut pairs = Vec::new();
            for pair in args.chunks(2) {
                let seconds = strtoll_radix(pair[0], 10).filter(|s| *s >= 1);
                let changes = strtoll_radix(pair[1], 10).filter(|c| *c >= 0);
                let (Some(seconds), Some(changes)) = (seconds, changes) else {
                    return Err(BAD.into());
                };
                pairs.push(format!("{seconds} {}", changes as i32));
            }
            // In a config file (previous is given) save lines add up; `save ""` clears.
            match previous {
                Some(prev) if !prev.is_empty() && !args.is_empty() => {
                    Ok(format!("{prev} {}", pairs.join(" ")))
                }
                _ => Ok(pairs.join(" ")),
            }
        }
        Special::OutputBufferLimit => {
            let current = previous_or_default(previous, "client-output-buffer-limit");
            parse_output_buffer_limit(args, &current)
        }
        Special::OomScoreAdjValues => {
            if args.len() != 3 {
                return Err(WRONG.into());
            }
            let mut out = Vec::new();
            for a in args {
                match strtoll_radix(a, 10) {
                    Some(v) if (-2000..=2000).contains(&v) => out.push(v.to_string()),
                    _ => {
                        return Err("Invalid oom-score-adj-values, elements must be between \
                                    -2000 and 2000."
                            .into())
                    }
                }
            }
            Ok(out.join(" "))
        }
        Special::KeyspaceEvents => {
            if args.len() != 1 {
                return Err(WRONG.into());
            }
            normalize_events(args[0])
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
        }
        Special::Bind => {
            if args.len() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            Ok(args.join(" "))
        }
        Special::ReplicaOf => {
            if args.len() != 2 {
                return Err(WRONG.into());
            }
            if args[0].eq_ignore_ascii_case("no") && args[1].eq_ignore_ascii_case("one") {
                return Ok(String::new());
            }
            match strtoll_radix(args[1], 10) {
                Some(port) if (0..=65535).contains(&port) => Ok(format!("{} {port}", args[0])),
                _ => Err("Invalid master port".into()),
            }
        }
        Special::Percentiles => {
            let args = if args.len() == 1 && args[0].is_empty() {
                &[][..]
            } else {
                args
            };
            let mut out = Vec::new();
            for a in args {
                let v =
                    string2d(a).ok_or("Invalid latency-tracking-info-percentiles parameters")?;
                if !(0.0..=100.0).contains(&v) {
                    return Err("latency-tracking-info-percentiles parameters should sit \
                                between [0.0,100.0]"
                        .into());
                }
                out.push(trim_double(format!("{v:.6}")));
            }
            Ok(out.join(" "))
        }
    }
}

fn previous_or_default(previous: Option<&str>, name: &str) -> String {
    previous
        .map(str::to_string)
        .or_else(|| super::lookup(name).map(|(_, p)| p.default.to_string()))
        .unwrap_or_default()
}

/// Redis's updateClientOutputBufferLimit: `<class> <hard> <soft> <seconds>` groups; classes
/// not named keep their limits.
fn parse_output_buffer_limit(args: &[&str], current: &str) -> Result<String, String> {
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut classes: Vec<Vec<String>> = current
        .split(' ')
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c[1..].iter().map(|s| s.to_string()).collect())
        .collect();
    classes.resize(3, vec!["0".into(), "0".into(), "0".into()]);
    for group in args.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let hard = memtoull(group[1]);
        let soft = memtoull(group[2]);
        let seconds = strtoll_radix(group[3], 10).map(|s| s as i32);
        match (hard, soft, seconds) {
            (Some(h), Some(s), Some(sec)) if sec >= 0 => {
                classes[class] = vec![h.to_string(), s.to_string(), sec.to_string()];
            }
            _ => {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit \
                            configuration."
                        .into(),
                )
            }
        }
    }
    Ok(["normal", "slave", "pubsub"]
        .iter()
        .zip(classes)
        .map(|(name, v)| format!("{name} {}", v.join(" ")))
        .collect::<Vec<_>>()
        .join(" "))
}

/// Redis's memtoull: digits with an optional unit (b, k, kb, m, mb, g, gb; any case). None
/// where Redis reports an error; overflow wraps as in C.
pub fn memtoull(s: &str) -> Option<u64> {
    if s.starts_with('-') {
        return None;
    }
    let digits_end = s
        .bytes()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() >= 128 {
        return None;
    }
    // strtoull saturates at ULLONG_MAX; an empty string is 0.
    let val = digits.bytes().fold(0u64, |acc, c| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as u64))
            .unwrap_or(u64::MAX)
    });
    Some(val.wrapping_mul(mul))
}

/// C's strtoll over the whole string: leading white space, a sign, digits (saturating); None
/// when something is left over. Like C, an empty string reads as 0.
pub fn strtoll_radix(s: &str, radix: u32) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i] == b' ' || (9..=13).contains(&b[i])) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: i128 = 0;
    while i < b.len() && (b[i] as char).is_digit(radix) {
        v = (v * radix as i128 + (b[i] as char).to_digit(radix).unwrap() as i128)
            .min(i64::MAX as i128 + 1);
        i += 1;
    }
    if i == start {
        // No digits: the end pointer stays at the start of the string.
        return if s.is_empty() { Some(0) } else { None };
    }
    if i != b.len() {
        return None;
    }
    let v = if neg { -v } else { v };
    Some(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// Redis's string2d: the whole string is a C double, no leading space, not NaN.
fn string2d(s: &str) -> Option<f64> {
    if s.is_empty() || s.as_bytes()[0].is_ascii_whitespace() {
        return None;
    }
    let (v, used) = crate::scripting::strtod::strtod(s.as_bytes())?;
    (used == s.len() && !v.is_nan()).then_some(v)
}

/// Redis's trimDoubleString: drops trailing zeros after the point, and the point.
fn trim_double(s: String) -> String {
    if !s.contains('.') {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub const EVENT_CLASSES: &str = "Ag$lshzxeKEtmdn";

/// Redis's keyspaceEventsStringToFlags + FlagsToString: validates and normalizes `KEA` style
/// event classes (`A` stands for `g$lshzxetd`).
pub fn normalize_events(value: &str) -> Option<String> {
    const ALL: &str = "g$lshzxetd";
    let mut set = std::collections::HashSet::new();
    for c in value.chars() {
        if !EVENT_CLASSES.contains(c) {
            return None;
        }
        if c == 'A' {
            set.extend(ALL.chars());
        } else {
            set.insert(c);
        }
    }
    let mut out = String::new();
    if ALL.chars().all(|c| set.contains(&c)) {
        out.push('A');
    } else {
        out.extend(ALL.chars().filter(|c| set.contains(c)));
    }
    // Redis 7.0 accepts `n` (new-key events) but does not print it back.
    out.extend("KEm".chars().filter(|c| set.contains(c)));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::PARAMS;
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = PARAMS
            .iter()
            .flat_map(|p| std::iter::once(p.name).chain(p.alias))
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn defaults_parse_to_themselves() {
        // `replicaof ""` is no setting at all: no master.
        for p in PARAMS.iter().filter(|p| p.name != "replicaof") {
            let args: Vec<&str> = if p.flags & MULTI_ARG != 0 {
                p.default.split(' ').collect()
            } else {
                vec![p.default]
            };
            assert_eq!(
                parse(p, &args, None).as_deref(),
                Ok(p.default),
                "{}",
                p.name
            );
        }
    }

    #[test]
    fn c_number_parsers() {
        assert_eq!(memtoull("1gb"), Some(1 << 30));
        assert_eq!(memtoull("1B"), Some(1));
        assert_eq!(memtoull(""), Some(0));
        assert_eq!(memtoull("-1"), None);
        assert_eq!(memtoull("1x"), None);
        assert_eq!(strtoll_radix(" 12", 10), Some(12));
        assert_eq!(strtoll_radix("12 ", 10), None);
        assert_eq!(strtoll_radix("", 10), Some(0));
        assert_eq!(strtoll_radix("+", 10), None);
        assert_eq!(strtoll_radix("777", 8), Some(511));
        assert!(valid_proc_title("{title} {listen-addr} {server-mode}"));
        assert!(!valid_proc_title("{title}"));
        assert!(!valid_proc_title("{nosuch}"));
    }
}
