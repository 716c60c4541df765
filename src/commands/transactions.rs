//! transactions commands.

use crate::commands::Command;

pub const COMMANDS: &[Command] = &[];

/// Leaves MULTI and forgets WATCHed keys (DISCARD, RESET).
pub fn discard_state(ctx: &mut crate::commands::Ctx) {
    let id = ctx.client;
    let Some(c) = ctx.w.clients.get_mut(&id) else {
        return;
    };
    c.multi = None;
    c.multi_failed = false;
    c.watch_dirty = false;
    let watched = std::mem::take(&mut c.watched);
    for k in &watched {
        ctx.w.unwatch_key(id, k);
    }
}
