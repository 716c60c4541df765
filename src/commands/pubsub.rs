//! pubsub commands.

use crate::commands::Command;

pub const COMMANDS: &[Command] = &[];

/// Drops every channel and pattern subscription of the client (RESET), without replies.
pub fn unsubscribe_all(ctx: &mut crate::commands::Ctx) {
    use crate::server::pubsub::PubSub;
    let id = ctx.client;
    let Some(c) = ctx.w.clients.get_mut(&id) else {
        return;
    };
    let channels: Vec<_> = c.channels.drain().collect();
    let patterns: Vec<_> = c.patterns.drain().collect();
    for ch in &channels {
        PubSub::unsubscribe(&mut ctx.w.pubsub.channels, ch, id);
    }
    for p in &patterns {
        PubSub::unsubscribe(&mut ctx.w.pubsub.patterns, p, id);
    }
}
