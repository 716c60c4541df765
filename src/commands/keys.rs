//! Generic key commands: DEL, EXISTS, TYPE, ...

use bytes::Bytes;

use super::{Command, Ctx, Flags as F};
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[
    Command::new("del", -2, F::WRITE, del).keys(1, -1, 1).doc(
        "generic",
        "Delete a key",
        "key [key ...]",
    ),
    Command::new("exists", -2, F::READONLY | F::FAST, exists)
        .keys(1, -1, 1)
        .doc("generic", "Determine if a key exists", "key [key ...]"),
    Command::new("type", 2, F::READONLY | F::FAST, type_cmd)
        .keys(1, 1, 1)
        .doc("generic", "Determine the type stored at key", "key"),
];

fn del(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut n = 0;
    for key in &argv[1..] {
        if ctx.db().remove_live(key) {
            ctx.modified(key);
            n += 1;
        }
    }
    Reply::Int(n)
}

fn exists(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let n = argv[1..].iter().filter(|k| ctx.db().exists(k)).count();
    Reply::Int(n as i64)
}

fn type_cmd(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let t = ctx
        .db()
        .get(&argv[1])
        .map(|v| v.type_name())
        .unwrap_or("none");
    Reply::status(t)
}
