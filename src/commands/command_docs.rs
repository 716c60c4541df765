//! COMMAND DOCS arguments, parsed from a command's syntax string as the Redis docs write it:
//! `key [EX seconds|PX milliseconds] [NX|XX] member [member ...]`.

use crate::protocol::Reply;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Key,
    Str,
    Integer,
    Double,
    Pattern,
    UnixTime,
    PureToken,
    OneOf(Vec<Arg>),
    Block(Vec<Arg>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: String,
    pub kind: Kind,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
}

impl Arg {
    fn new(name: &str, kind: Kind) -> Arg {
        Arg {
            name: name.to_string(),
            kind,
            token: None,
            optional: false,
            multiple: false,
        }
    }

    pub fn reply(&self, key_index: &mut i64) -> Reply {
        let b = Reply::bulk_str;
        let type_name = match &self.kind {
            Kind::Key => "key",
            Kind::Str => "string",
            Kind::Integer => "integer",
            Kind::Double => "double",
            Kind::Pattern => "pattern",
            Kind::UnixTime => "unix-time",
            Kind::PureToken => "pure-token",
            Kind::OneOf(_) => "oneof",
            Kind::Block(_) => "block",
        };
        let mut pairs = vec![(b("name"), b(&self.name)), (b("type"), b(type_name))];
        if self.kind == Kind::Key {
            pairs.push((b("key_spec_index"), Reply::Int(*key_index)));
            *key_index += 1;
        }
        if let Some(t) = &self.token {
            pairs.push((b("token"), b(t)));
        }
        let mut flags = Vec::new();
        if self.optional {
            flags.push(Reply::Status("optional".into()));
        }
        if self.multiple {
            flags.push(Reply::Status("multiple".into()));
        }
        if !flags.is_empty() {
            pairs.push((b("flags"), Reply::Set(flags)));
        }
        if let Kind::OneOf(items) | Kind::Block(items) = &self.kind {
            let mut inner = *key_index;
            pairs.push((
                b("arguments"),
                Reply::Array(items.iter().map(|a| a.reply(&mut inner)).collect()),
            ));
            *key_index = inner;
        }
        Reply::Map(pairs)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Bar,
    Dots,
    Word(String),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            if word == "..." {
                out.push(Tok::Dots);
            } else {
                out.push(Tok::Word(std::mem::take(word)));
            }
            word.clear();
        }
    };
    for c in s.chars() {
        match c {
            '[' | ']' | '|' | ' ' => {
                flush(&mut word, &mut out);
                match c {
                    '[' => out.push(Tok::Open),
                    ']' => out.push(Tok::Close),
                    '|' => out.push(Tok::Bar),
                    _ => {}
                }
            }
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

fn is_token(w: &str) -> bool {
    w.chars().any(|c| c.is_ascii_uppercase()) && !w.chars().any(|c| c.is_ascii_lowercase())
}

fn value_kind(name: &str) -> Kind {
    match name {
        "key" | "destination" | "source" | "newkey" | "srckey" | "dstkey" => Kind::Key,
        n if n.ends_with("key") && !n.contains('-') => Kind::Key,
        "pattern" => Kind::Pattern,
        "unix-time-seconds" | "unix-time-milliseconds" | "timestamp" => Kind::UnixTime,
        "count" | "numkeys" | "offset" | "start" | "stop" | "end" | "index" | "db" | "seconds"
        | "milliseconds" | "port" | "numreplicas" | "cursor" | "rank" | "len" | "maxlen"
        | "client-id" | "numlocal" | "increment" | "pivot-index" => Kind::Integer,
        "timeout" | "score" | "min" | "max" | "longitude" | "latitude" | "radius" | "width"
        | "height" => Kind::Double,
        _ => Kind::Str,
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// alternatives := sequence ('|' sequence)*
    fn alternatives(&mut self) -> Vec<Vec<Arg>> {
        let mut alts = vec![self.sequence()];
        while self.peek() == Some(&Tok::Bar) {
            self.pos += 1;
            alts.push(self.sequence());
        }
        alts
    }

    fn sequence(&mut self) -> Vec<Arg> {
        let mut out: Vec<Arg> = Vec::new();
        while let Some(t) = self.peek().cloned() {
            match t {
                Tok::Close | Tok::Bar => break,
                Tok::Dots => {
                    self.pos += 1;
                    if let Some(last) = out.last_mut() {
                        last.multiple = true;
                    }
                }
                Tok::Open => {
                    self.pos += 1;
                    let alts = self.alternatives();
                    if self.peek() == Some(&Tok::Close) {
                        self.pos += 1;
                    }
                    // `x [x ...]`: a repetition of the previous argument.
                    if let (Some(last), [seq]) = (out.last_mut(), alts.as_slice()) {
                        if seq.len() == 1 && seq[0].multiple && seq[0].name == last.name {
                            last.multiple = true;
                            continue;
                        }
                    }
                    // `a b [a b ...]`: a repeated block of the previous arguments.
                    if let [seq] = alts.as_slice() {
                        let n = seq.len();
                        if n >= 2
                            && seq[n - 1].multiple
                            && out.len() >= n
                            && out[out.len() - n..]
                                .iter()
                                .zip(seq)
                                .all(|(a, b)| a.name == b.name)
                        {
                            let items = out.split_off(out.len() - n);
                            let name = block_name(&items);
                            let mut block = Arg::new(&name, Kind::Block(items));
                            block.multiple = true;
                            out.push(block);
                            continue;
                        }
                    }
                    let mut arg = group(alts);
                    arg.optional = true;
                    out.push(arg);
                }
                Tok::Word(w) => {
                    self.pos += 1;
                    if is_token(&w) {
                        // TOKEN value: an argument introduced by its keyword.
                        if let Some(Tok::Word(v)) = self.peek().cloned() {
                            if !is_token(&v) {
                                self.pos += 1;
                                let mut arg = Arg::new(&v, value_kind(&v));
                                arg.token = Some(w);
                                out.push(arg);
                                continue;
                            }
                        }
                        let mut arg = Arg::new(&w.to_ascii_lowercase(), Kind::PureToken);
                        arg.token = Some(w);
                        out.push(arg);
                    } else {
                        out.push(Arg::new(&w, value_kind(&w)));
                    }
                }
            }
        }
        out
    }
}

/// One argument from a bracketed group or a top-level alternation.
fn group(alts: Vec<Vec<Arg>>) -> Arg {
    if alts.len() == 1 {
        let mut seq = alts.into_iter().next().expect("one");
        if seq.len() == 1 {
            return seq.remove(0);
        }
        let name = block_name(&seq);
        return Arg::new(&name, Kind::Block(seq));
    }
    let items: Vec<Arg> = alts
        .into_iter()
        .map(|seq| {
            if seq.len() == 1 {
                seq.into_iter().next().expect("one")
            } else {
                let name = block_name(&seq);
                Arg::new(&name, Kind::Block(seq))
            }
        })
        .collect();
    let name = items
        .iter()
        .map(|a| a.name.clone())
        .collect::<Vec<_>>()
        .join("_");
    Arg::new(&name, Kind::OneOf(items))
}

fn block_name(seq: &[Arg]) -> String {
    seq.iter()
        .find(|a| a.token.is_some())
        .and_then(|a| a.token.clone())
        .map(|t| t.to_ascii_lowercase())
        .unwrap_or_else(|| seq[0].name.clone())
}

/// The argument list of a syntax string (empty for commands without arguments).
pub fn parse_syntax(syntax: &str) -> Vec<Arg> {
    let mut p = Parser {
        toks: tokenize(syntax),
        pos: 0,
    };
    let alts = p.alternatives();
    if alts.len() == 1 {
        alts.into_iter().next().expect("one")
    } else {
        vec![group(alts)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let a = parse_syntax("key [key ...]");
        assert_eq!(a.len(), 1);
        assert!(a[0].multiple && a[0].kind == Kind::Key);
        let a = parse_syntax("key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]");
        assert_eq!(a.len(), 5);
        assert!(matches!(&a[2].kind, Kind::OneOf(v) if v.len() == 2));
        assert!(a[2].optional);
        assert_eq!(a[3].kind, Kind::PureToken);
        match &a[4].kind {
            Kind::OneOf(v) => {
                assert_eq!(v[0].token.as_deref(), Some("EX"));
                assert_eq!(v[0].kind, Kind::Integer);
                assert_eq!(v[2].kind, Kind::PureToken);
            }
            k => panic!("{k:?}"),
        }
        let a = parse_syntax("[protover [AUTH username password] [SETNAME clientname]]");
        assert_eq!(a.len(), 1);
        assert!(matches!(&a[0].kind, Kind::Block(v) if v.len() == 3));
        assert!(parse_syntax("").is_empty());
        let a = parse_syntax("numkeys key [key ...] [WEIGHTS weight [weight ...]]");
        assert_eq!(a.len(), 3);
        assert!(a[2].multiple || matches!(&a[2].kind, Kind::Block(_)));
        let a = parse_syntax("parameter value [parameter value ...]");
        assert_eq!(a.len(), 1);
        assert!(a[0].multiple && matches!(&a[0].kind, Kind::Block(v) if v.len() == 2));
    }
}
