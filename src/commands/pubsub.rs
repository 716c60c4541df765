//! Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, and sharded
//! pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH) with standalone semantics: one shard holds
//! every shard channel.
//!
//! Subscriptions live in `World.pubsub` (name -> subscribers in subscription order) and in the
//! client (`channels` / `patterns`). Frames are pushes: RESP3 `>`, RESP2 plain arrays.

use std::collections::{HashMap, HashSet};

use bytes::{Bytes, BytesMut};

use super::server::subcommand_syntax_error;
use super::{Command, Ctx, Flags as F};
use crate::db::glob::glob_match;
use crate::protocol::Reply;
use crate::server::pubsub::PubSub;
use crate::server::ClientId;

const PUBSUB_FLAGS: u32 = F::PUBSUB | F::NOSCRIPT | F::LOADING | F::STALE;

pub const COMMANDS: &[Command] = &[
    Command::new("subscribe", -2, PUBSUB_FLAGS, subscribe).doc(
        "pubsub",
        "Listen for messages published to the given channels",
        "channel [channel ...]",
    ),
    Command::new("unsubscribe", -1, PUBSUB_FLAGS, unsubscribe).doc(
        "pubsub",
        "Stop listening for messages posted to the given channels",
        "[channel [channel ...]]",
    ),
    Command::new("psubscribe", -2, PUBSUB_FLAGS, psubscribe).doc(
        "pubsub",
        "Listen for messages published to channels matching the given patterns",
        "pattern [pattern ...]",
    ),
    Command::new("punsubscribe", -1, PUBSUB_FLAGS, punsubscribe).doc(
        "pubsub",
        "Stop listening for messages posted to channels matching the given patterns",
        "[pattern [pattern ...]]",
    ),
    Command::new(
        "publish",
        3,
        F::PUBSUB | F::LOADING | F::STALE | F::FAST | F::MAY_REPLICATE,
        publish,
    )
    .doc("pubsub", "Post a message to a channel", "channel message"),
    Command::new("ssubscribe", -2, PUBSUB_FLAGS, ssubscribe)
        .keys(1, -1, 1)
        .doc(
            "pubsub",
            "Listen for messages published to the given shard channels",
            "shardchannel [shardchannel ...]",
        ),
    Command::new("sunsubscribe", -1, PUBSUB_FLAGS, sunsubscribe)
        .keys(1, -1, 1)
        .doc(
            "pubsub",
            "Stop listening for messages posted to the given shard channels",
            "[shardchannel [shardchannel ...]]",
        ),
    Command::new(
        "spublish",
        3,
        F::PUBSUB | F::LOADING | F::STALE | F::FAST | F::MAY_REPLICATE,
        spublish,
    )
    .keys(1, 1, 1)
    .doc(
        "pubsub",
        "Post a message to a shard channel",
        "shardchannel message",
    ),
    Command::new("pubsub", -2, 0, super::server::container)
        .subs(PUBSUB_SUBS)
        .doc("pubsub", "A container for Pub/Sub commands", ""),
];

const PS: u32 = F::PUBSUB | F::LOADING | F::STALE;

const PUBSUB_SUBS: &[Command] = &[
    Command::new("pubsub|channels", -2, PS, pubsub_channels).doc(
        "pubsub",
        "List active channels",
        "[pattern]",
    ),
    Command::new("pubsub|numpat", 2, PS, pubsub_numpat).doc(
        "pubsub",
        "Get the count of unique patterns pattern subscriptions",
        "",
    ),
    Command::new("pubsub|numsub", -2, PS, pubsub_numsub).doc(
        "pubsub",
        "Get the count of subscribers for channels",
        "[channel [channel ...]]",
    ),
    Command::new("pubsub|shardchannels", -2, PS, pubsub_shardchannels).doc(
        "pubsub",
        "List active shard channels",
        "[pattern]",
    ),
    Command::new("pubsub|shardnumsub", -2, PS, pubsub_shardnumsub).doc(
        "pubsub",
        "Get the count of subscribers for shard channels",
        "[shardchannel [shardchannel ...]]",
    ),
    Command::new("pubsub|help", 2, F::LOADING | F::STALE, pubsub_help).doc(
        "pubsub",
        "Show helpful text about the different subcommands",
        "",
    ),
];

fn frame(kind: &str, name: Option<&Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk_str(kind),
        name.map(|n| Reply::Bulk(n.clone())).unwrap_or(Reply::Nil),
        Reply::Int(count as i64),
    ])
}

/// Encodes several frames as one pre-encoded reply (they are separate replies on the wire).
fn frames(ctx: &Ctx, items: Vec<Reply>) -> Reply {
    if items.len() == 1 {
        return items.into_iter().next().expect("one");
    }
    let mut out = BytesMut::new();
    for r in items {
        r.encode(&mut out, ctx.resp3);
    }
    Reply::Raw(out.freeze())
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }

    fn client_set(self, c: &mut crate::server::client::Client) -> &mut HashSet<Bytes> {
        match self {
            Kind::Channel => &mut c.channels,
            Kind::Pattern => &mut c.patterns,
            Kind::Shard => &mut c.shard_channels,
        }
    }

    fn server_map(self, p: &mut PubSub) -> &mut HashMap<Bytes, Vec<ClientId>> {
        match self {
            Kind::Channel => &mut p.channels,
            Kind::Pattern => &mut p.patterns,
            Kind::Shard => &mut p.shard_channels,
        }
    }

    /// What a frame counts: channels and patterns together, shard channels apart.
    fn count(self, c: &crate::server::client::Client) -> usize {
        match self {
            Kind::Shard => c.shard_channels.len(),
            _ => c.channel_subscriptions(),
        }
    }
}

fn subscribe_generic(ctx: &mut Ctx, argv: &[Bytes], kind: Kind) -> Reply {
    let id = ctx.client;
    let mut out = Vec::new();
    for name in &argv[1..] {
        let c = ctx.w.clients.get_mut(&id).expect("client");
        if kind.client_set(c).insert(name.clone()) {
            PubSub::subscribe(kind.server_map(&mut ctx.w.pubsub), name, id);
        }
        let count = kind.count(&ctx.w.clients[&id]);
        out.push(frame(kind.names().0, Some(name), count));
    }
    frames(ctx, out)
}

fn unsubscribe_generic(ctx: &mut Ctx, argv: &[Bytes], kind: Kind) -> Reply {
    let id = ctx.client;
    let names: Vec<Bytes> = if argv.len() > 1 {
        argv[1..].to_vec()
    } else {
        let c = ctx.w.clients.get_mut(&id).expect("client");
        kind.client_set(c).iter().cloned().collect()
    };
    let mut out = Vec::new();
    for name in &names {
        let c = ctx.w.clients.get_mut(&id).expect("client");
        if kind.client_set(c).remove(name) {
            PubSub::unsubscribe(kind.server_map(&mut ctx.w.pubsub), name, id);
        }
        let count = kind.count(&ctx.w.clients[&id]);
        out.push(frame(kind.names().1, Some(name), count));
    }
    if out.is_empty() {
        let count = kind.count(&ctx.w.clients[&id]);
        out.push(frame(kind.names().1, None, count));
    }
    frames(ctx, out)
}

fn subscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    subscribe_generic(ctx, argv, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    subscribe_generic(ctx, argv, Kind::Pattern)
}

fn unsubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    unsubscribe_generic(ctx, argv, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    unsubscribe_generic(ctx, argv, Kind::Pattern)
}

/// SSUBSCRIBE: refused inside MULTI (Redis's CLIENT_DENY_BLOCKING; SUBSCRIBE is let through
/// there for compatibility, SSUBSCRIBE is not).
fn ssubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if !ctx.may_block {
        return Reply::err("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
    }
    subscribe_generic(ctx, argv, Kind::Shard)
}

fn sunsubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    unsubscribe_generic(ctx, argv, Kind::Shard)
}

/// SPUBLISH: to the shard channel's subscribers only (patterns do not see shard messages).
fn spublish(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let (channel, message) = (&argv[1], &argv[2]);
    let subs = ctx
        .w
        .pubsub
        .shard_channels
        .get(channel)
        .cloned()
        .unwrap_or_default();
    let mut n = 0;
    for id in subs {
        if let Some(c) = ctx.w.clients.get_mut(&id) {
            Reply::Push(vec![
                Reply::bulk_str("smessage"),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.clone()),
            ])
            .encode(&mut c.out, c.resp3);
            ctx.w.mark_output(id);
            n += 1;
        }
    }
    Reply::Int(n)
}

/// Delivers a message to channel subscribers, then to matching pattern subscribers; returns
/// how many deliveries were made.
pub fn publish_message(ctx: &mut Ctx, channel: &Bytes, message: &Bytes) -> usize {
    let mut n = 0;
    let subs = ctx
        .w
        .pubsub
        .channels
        .get(channel)
        .cloned()
        .unwrap_or_default();
    for id in subs {
        if let Some(c) = ctx.w.clients.get_mut(&id) {
            Reply::Push(vec![
                Reply::bulk_str("message"),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.clone()),
            ])
            .encode(&mut c.out, c.resp3);
            ctx.w.mark_output(id);
            n += 1;
        }
    }
    if ctx.w.pubsub.patterns.is_empty() {
        return n;
    }
    let matching: Vec<(Bytes, Vec<u64>)> = ctx
        .w
        .pubsub
        .patterns
        .iter()
        .filter(|(p, _)| glob_match(p, channel, false))
        .map(|(p, ids)| (p.clone(), ids.clone()))
        .collect();
    for (pattern, ids) in matching {
        for id in ids {
            if let Some(c) = ctx.w.clients.get_mut(&id) {
                Reply::Push(vec![
                    Reply::bulk_str("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ])
                .encode(&mut c.out, c.resp3);
                ctx.w.mark_output(id);
                n += 1;
            }
        }
    }
    n
}

fn publish(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    Reply::Int(publish_message(ctx, &argv[1], &argv[2]) as i64)
}

fn pubsub_channels(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 3 {
        return subcommand_syntax_error(argv);
    }
    let pat = argv.get(2);
    Reply::bulks(
        ctx.w
            .pubsub
            .channels
            .keys()
            .filter(|ch| pat.is_none_or(|p| glob_match(p, ch, false)))
            .cloned(),
    )
}

fn pubsub_numpat(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Int(ctx.w.pubsub.patterns.len() as i64)
}

fn pubsub_numsub(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut out = Vec::new();
    for ch in &argv[2..] {
        let n = ctx.w.pubsub.channels.get(ch).map_or(0, |v| v.len());
        out.push(Reply::Bulk(ch.clone()));
        out.push(Reply::Int(n as i64));
    }
    Reply::Array(out)
}

fn pubsub_shardchannels(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    if argv.len() > 3 {
        return subcommand_syntax_error(argv);
    }
    let pat = argv.get(2);
    Reply::bulks(
        ctx.w
            .pubsub
            .shard_channels
            .keys()
            .filter(|ch| pat.is_none_or(|p| glob_match(p, ch, false)))
            .cloned(),
    )
}

fn pubsub_shardnumsub(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut out = Vec::new();
    for ch in &argv[2..] {
        let n = ctx.w.pubsub.shard_channels.get(ch).map_or(0, |v| v.len());
        out.push(Reply::Bulk(ch.clone()));
        out.push(Reply::Int(n as i64));
    }
    Reply::Array(out)
}

fn pubsub_help(_ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    super::server::help(
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    )
}

/// Drops every channel and pattern subscription of the client (RESET), without replies.
pub fn unsubscribe_all(ctx: &mut crate::commands::Ctx) {
    let id = ctx.client;
    let Some(c) = ctx.w.clients.get_mut(&id) else {
        return;
    };
    let channels: Vec<_> = c.channels.drain().collect();
    let patterns: Vec<_> = c.patterns.drain().collect();
    let shard: Vec<_> = c.shard_channels.drain().collect();
    for ch in &channels {
        PubSub::unsubscribe(&mut ctx.w.pubsub.channels, ch, id);
    }
    for ch in &shard {
        PubSub::unsubscribe(&mut ctx.w.pubsub.shard_channels, ch, id);
    }
    for p in &patterns {
        PubSub::unsubscribe(&mut ctx.w.pubsub.patterns, p, id);
    }
}
