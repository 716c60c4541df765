//! SORT and SORT_RO, after Redis 7.0's `sort.c`: BY and GET patterns (with `->` hash fields and
//! `#`), LIMIT, ASC/DESC, ALPHA and STORE.
//!
//! Redis's rules kept here: a BY pattern without `*` means "do not sort" (lists and sorted sets
//! keep their order, DESC walks it backwards, LIMIT picks the range); a set is then sorted
//! ALPHA anyway when the result is stored or the command runs in a script, so it is the same on
//! every replica. Numeric sorting breaks ties by comparing the elements as binary strings;
//! ALPHA compares as C strings (`strcoll` in the C locale: up to the first NUL byte) unless the
//! result is stored (binary). A missing BY key weighs 0 (numeric) or sorts first (ALPHA). Every
//! weight must parse as a double (`strtod` over the whole string) or the command fails after
//! sorting with Redis's error. STORE writes a list (or deletes the destination when the result
//! is empty) and replies its length.

use std::cmp::Ordering;

use bytes::Bytes;

use super::args::{int, is, syntax, R};
use super::{Command, Ctx, Flags as F};
use crate::db::csort::pqsort;
use crate::db::{List, Value};
use crate::protocol::numbers::parse_f64;
use crate::protocol::Reply;

const SYNTAX_KEYS: &str =
    "key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA]";

pub const COMMANDS: &[Command] = &[
    Command::new("sort", -2, F::WRITE | F::DENYOOM, sort)
        .keys_fn(1, 1, 1, sort_keys)
        .doc(
            "generic",
            "Sort the elements in a list, set or sorted set",
            "key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA] [STORE destination]",
        ),
    Command::new("sort_ro", -2, F::READONLY, sort_ro)
        .keys_fn(1, 1, 1, sort_keys)
        .doc(
            "generic",
            "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
            SYNTAX_KEYS,
        ),
];

/// The keys a SORT reads and writes: the sorted key and the STORE destination. With a BY or
/// GET pattern it reads keys named by the data, so none are listed (the command is then
/// treated as reading everything, as KEYS is).
fn sort_keys(argv: &[Bytes]) -> Vec<usize> {
    let mut out = vec![1];
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        if is(&argv[j], "limit") && left >= 2 {
            j += 2;
        } else if (is(&argv[j], "by") || is(&argv[j], "get")) && left >= 1 {
            return Vec::new();
        } else if is(&argv[j], "store") && left >= 1 {
            out.push(j + 1);
            j += 1;
        }
        j += 1;
    }
    out
}

fn sort(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    sort_generic(ctx, argv, false).unwrap_or_else(|e| e)
}

fn sort_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    sort_generic(ctx, argv, true).unwrap_or_else(|e| e)
}

/// The bytes of `s` a C string function sees: up to the first NUL.
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&c| c == 0).map_or(s, |i| &s[..i])
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` of the
/// pattern is replaced by the element, and a `->field` after it (with something after the
/// arrow) reads that field of a hash. A pattern without `*`, a missing key, a key of another
/// type or a missing field give nothing.
fn lookup_by_pattern(ctx: &mut Ctx, pattern: &[u8], elem: &Bytes) -> Option<Bytes> {
    if pattern.first() == Some(&b'#') && pattern.get(1).is_none_or(|&c| c == 0) {
        return Some(elem.clone());
    }
    let star = c_str(pattern).iter().position(|&c| c == b'*')?;
    let after = c_str(&pattern[star + 1..]);
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| star + 1 + i)
        .filter(|&f| pattern.get(f + 2).is_some_and(|&c| c != 0));
    let key_end = arrow.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + elem.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let db = ctx.db();
    match arrow {
        Some(f) => match db.get(&key) {
            Some(Value::Hash(h)) => h.get(&pattern[f + 2..]).cloned(),
            _ => None,
        },
        None => match db.get(&key) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        },
    }
}

/// `strtod` as SORT checks it: the whole C string must convert, no overflow, no NaN. An empty
/// string is 0 (strtod converts nothing and stops at the end).
fn sort_weight(s: &[u8]) -> Option<f64> {
    let s = c_str(s);
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|c| !matches!(c, b' ' | b'\t'..=b'\r'))?;
    parse_f64(&s[start..])
}

struct Item {
    elem: Bytes,
    score: f64,
    /// The BY value for ALPHA sorting with a pattern (None: missing, sorts first).
    cmp: Option<Bytes>,
}

struct Options {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    by: Option<Bytes>,
    dontsort: bool,
    gets: Vec<Bytes>,
    store: Option<Bytes>,
}

fn parse(argv: &[Bytes], readonly: bool) -> R<Options> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
        store: None,
    };
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = &argv[j];
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            o.limit = Some((int(&argv[j + 1])?, int(&argv[j + 2])?));
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            o.store = Some(argv[j + 1].clone());
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let p = &argv[j + 1];
            // A constant BY pattern (no `*`) means: do not sort.
            o.dontsort = !c_str(p).contains(&b'*');
            o.by = Some(p.clone());
            j += 1;
        } else if is(a, "get") && left >= 1 {
            o.gets.push(argv[j + 1].clone());
            j += 1;
        } else {
            return syntax();
        }
        j += 1;
    }
    Ok(o)
}

/// The elements of the value at `key`, in its own order: list order, set order as SMEMBERS
/// lists it, sorted set by rank (reversed when `desc`, for the unsorted case).
enum Source {
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    ZSet(Vec<Bytes>),
}

fn load(ctx: &mut Ctx, key: &[u8]) -> R<Source> {
    let limit = ctx.w.config.get_i64("set-max-intset-entries").max(0) as usize;
    Ok(match ctx.db().get(key) {
        None => Source::List(Vec::new()),
        Some(Value::List(l)) => Source::List(l.iter().cloned().collect()),
        Some(Value::Set(s)) => Source::Set(
            super::sets::ordered(s.iter(), limit)
                .into_iter()
                .cloned()
                .collect(),
        ),
        Some(Value::ZSet(z)) => Source::ZSet(z.iter().map(|(m, _)| m.clone()).collect()),
        Some(_) => return Err(Reply::err(crate::db::WRONGTYPE)),
    })
}

fn sort_generic(ctx: &mut Ctx, argv: &[Bytes], readonly: bool) -> R<Reply> {
    let mut o = parse(argv, readonly)?;
    let source = load(ctx, &argv[1])?;
    let in_script = ctx.w.script_run.is_some();
    let is_set = matches!(source, Source::Set(_));
    if o.dontsort && is_set && (o.store.is_some() || in_script) {
        // Force ALPHA sorting so the result does not depend on the set's hash order.
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let ordered_source = !is_set;
    let elems = match source {
        Source::List(v) | Source::Set(v) | Source::ZSet(v) => v,
    };
    let len = elems.len() as i64;
    let (limit_start, limit_count) = o.limit.unwrap_or((0, -1));
    let mut start = limit_start.max(0).min(len);
    let limit_count = limit_count.max(-1).min(len);
    let mut end = if limit_count < 0 {
        len - 1
    } else {
        start + limit_count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    let mut items: Vec<Item> = elems
        .into_iter()
        .map(|elem| Item {
            elem,
            score: 0.0,
            cmp: None,
        })
        .collect();
    if o.dontsort && ordered_source && o.desc {
        // Lists and sorted sets keep their order; DESC walks it from the end.
        items.reverse();
    }
    let mut conversion_error = false;
    if !o.dontsort {
        for it in items.iter_mut() {
            let by = match &o.by {
                Some(p) => match lookup_by_pattern(ctx, p, &it.elem) {
                    Some(v) => v,
                    None => continue,
                },
                None => it.elem.clone(),
            };
            if o.alpha {
                if o.by.is_some() {
                    it.cmp = Some(by);
                }
            } else {
                match sort_weight(&by) {
                    Some(s) => it.score = s,
                    None => conversion_error = true,
                }
            }
        }
        let binary = o.store.is_some();
        let by_pattern = o.by.is_some();
        let compare = |a: &Item, b: &Item| -> Ordering {
            let c = if !o.alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.elem.cmp(&b.elem))
            } else if by_pattern {
                match (&a.cmp, &b.cmp) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) if binary => x.cmp(y),
                    (Some(x), Some(y)) => c_str(x).cmp(c_str(y)),
                }
            } else if binary {
                a.elem.cmp(&b.elem)
            } else {
                c_str(&a.elem).cmp(c_str(&b.elem))
            };
            if o.desc {
                c.reverse()
            } else {
                c
            }
        };
        if by_pattern && (start != 0 || end != len - 1) {
            // Redis sorts only the part LIMIT asks for (ties can then come out in another
            // order than a full sort gives them).
            pqsort(&mut items, &compare, start, end);
        } else {
            // glibc's qsort is a merge sort: stable.
            items.sort_by(compare);
        }
    }
    if conversion_error {
        return Err(Reply::err(
            "ERR One or more scores can't be converted into double",
        ));
    }
    let range: &[Item] = if end >= start && start >= 0 {
        &items[start as usize..=end as usize]
    } else {
        &[]
    };
    let mut out: Vec<Option<Bytes>> = Vec::new();
    for it in range {
        if o.gets.is_empty() {
            out.push(Some(it.elem.clone()));
        }
        for p in &o.gets {
            out.push(lookup_by_pattern(ctx, p, &it.elem));
        }
    }
    let Some(dst) = o.store else {
        return Ok(Reply::Array(
            out.into_iter()
                .map(|v| v.map_or(Reply::Nil, Reply::Bulk))
                .collect(),
        ));
    };
    let n = out.len();
    if n > 0 {
        let mut list = List::new();
        for v in out {
            list.push_back(v.unwrap_or_default());
        }
        let existed = ctx.db().exists(&dst);
        ctx.db().set(dst.clone(), Value::List(Box::new(list)));
        ctx.modified(&dst);
        if !existed {
            ctx.signal_ready(&dst);
        }
    } else if ctx.db().remove_live(&dst) {
        ctx.modified(&dst);
    }
    Ok(Reply::Int(n as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pqsort_orders_the_wanted_range() {
        for n in [0usize, 1, 5, 7, 8, 41, 100, 300] {
            let orig: Vec<u64> = (0..n as u64).map(|i| (i * 7919 + 13) % 101).collect();
            let mut full = orig.clone();
            full.sort();
            for (s, e) in [(0i64, 2i64), (3, 9), (n as i64 / 2, n as i64 / 2 + 4)] {
                let mut v = orig.clone();
                pqsort(&mut v, &|a: &u64, b: &u64| a.cmp(b), s, e);
                let e = (e as usize).min(n.saturating_sub(1));
                let s = s as usize;
                if s <= e && n > 0 {
                    assert_eq!(v[s..=e], full[s..=e], "n={n} range {s}..={e}");
                }
            }
        }
    }

    #[test]
    fn patterns() {
        assert_eq!(sort_weight(b""), Some(0.0));
        assert_eq!(sort_weight(b" 5"), Some(5.0));
        assert_eq!(sort_weight(b"5 "), None);
        assert_eq!(sort_weight(b" "), None);
        assert_eq!(sort_weight(b"nan"), None);
        assert_eq!(sort_weight(b"0x10"), Some(16.0));
        assert_eq!(sort_weight(b"1\0junk"), Some(1.0));
    }
}
