//! CLIENT PAUSE / UNPAUSE: which commands a pause holds back, and the end of a pause.

use bytes::Bytes;

use super::core::World;
use crate::commands::table;

impl World {
    /// CLIENT PAUSE: holds back every command (or only writes) until `until`; a longer or
    /// stricter pause already in place is kept, as in Redis.
    pub fn pause_clients(&mut self, until: i64, all: bool) {
        self.pause = Some(match self.pause {
            Some((t, a)) => (t.max(until), a || all),
            None => (until, all),
        });
    }

    /// Ends a pause and runs the commands it held back, oldest paused client first.
    pub fn unpause_clients(&mut self) {
        self.pause = None;
        for id in std::mem::take(&mut self.paused_clients) {
            self.run_client(id);
        }
        self.serve_ready();
    }
}

/// Whether a CLIENT PAUSE WRITE holds this command back, as Redis's processCommand decides:
/// writes and commands that may replicate (PUBLISH, scripts unless they declare `no-writes`),
/// inside MULTI too (the pause comes before queueing), and EXEC of a transaction holding
/// one. A command Redis refuses first (arity) is not held.
pub fn pause_holds(
    argv: &[Bytes],
    multi: Option<&[Vec<Bytes>]>,
    scripting: Option<&crate::scripting::Engine>,
    functions: &crate::scripting::functions::Functions,
) -> bool {
    use crate::commands::Flags;
    let writes = |argv: &[Bytes]| match table::resolve(argv) {
        table::Resolved::Found(cmd) if cmd.arity_ok(argv.len()) => {
            if matches!(cmd.name, "fcall" | "fcall_ro") {
                return crate::commands::functions::may_replicate(cmd.name, argv, functions);
            }
            crate::scripting::script_writes(cmd.name, argv, scripting)
                .unwrap_or_else(|| cmd.has(Flags::WRITE | Flags::MAY_REPLICATE))
        }
        _ => false,
    };
    match multi {
        Some(queued) if argv[0].eq_ignore_ascii_case(b"exec") => queued.iter().any(|q| writes(q)),
        _ => writes(argv),
    }
}
