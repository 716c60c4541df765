//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO (client-side caching), with the checks
//! and error texts of Redis 7.0's clientCommand; the table and messages are in
//! `server/tracking.rs`.

use bytes::{BufMut, Bytes, BytesMut};

use super::args::{int, is, SYNTAX};
use super::Ctx;
use crate::protocol::Reply;
use crate::server::tracking::{check_prefixes, ClientTracking, TrackingOptions};
use crate::server::ClientId;

fn my_tracking<'a>(ctx: &'a mut Ctx) -> Option<&'a mut ClientTracking> {
    ctx.w
        .clients
        .get_mut(&ctx.client)
        .and_then(|c| c.tracking.as_deref_mut())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub fn tracking(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let mut redirect: i64 = 0;
    let mut opts = TrackingOptions::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        let a = &argv[j];
        if is(a, "redirect") && more {
            j += 1;
            if redirect != 0 {
                return Reply::err("ERR A client can only redirect to a single other client");
            }
            redirect = match int(&argv[j]) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let exists =
                ClientId::try_from(redirect).is_ok_and(|id| ctx.w.clients.contains_key(&id));
            if !exists {
                return Reply::err("ERR The client ID you want redirect to does not exist");
            }
        } else if is(a, "bcast") {
            opts.bcast = true;
        } else if is(a, "optin") {
            opts.optin = true;
        } else if is(a, "optout") {
            opts.optout = true;
        } else if is(a, "noloop") {
            opts.noloop = true;
        } else if is(a, "prefix") && more {
            j += 1;
            prefixes.push(argv[j].clone());
        } else {
            return Reply::err(SYNTAX);
        }
        j += 1;
    }
    if is(&argv[2], "off") {
        ctx.w.tracking_disable(ctx.client);
        return Reply::ok();
    }
    if !is(&argv[2], "on") {
        return Reply::err(SYNTAX);
    }
    let current = my_tracking(ctx).map(|t| (*t).clone());
    let quirk = match check_on(current.as_ref(), opts, &prefixes) {
        Ok(q) => q,
        Err(e) => return Reply::err(e),
    };
    ctx.w
        .tracking_enable(ctx.client, redirect as ClientId, opts, &prefixes);
    match quirk {
        // Redis reports an overlap among the later new prefixes, then enables and says OK.
        Some(e) => {
            let mut out = BytesMut::new();
            Reply::err(e).encode(&mut out, false);
            out.put_slice(b"+OK\r\n");
            Reply::Raw(out.freeze())
        }
        None => Reply::ok(),
    }
}

/// The checks of CLIENT TRACKING ON against the options and the client's current mode.
fn check_on(
    current: Option<&ClientTracking>,
    opts: TrackingOptions,
    prefixes: &[Bytes],
) -> Result<Option<String>, String> {
    if !opts.bcast && !prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    if current.is_some_and(|t| t.bcast != opts.bcast) {
        return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if opts.bcast && (opts.optin || opts.optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if opts.optin && opts.optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if current.is_some_and(|t| (opts.optin && t.optout) || (opts.optout && t.optin)) {
        return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if opts.bcast {
        let empty = Default::default();
        let existing = current.map_or(&empty, |t| &t.prefixes);
        return check_prefixes(existing, prefixes);
    }
    Ok(None)
}

/// CLIENT CACHING YES|NO: whether the next command's keys are tracked (OPTIN / OPTOUT).
pub fn caching(ctx: &mut Ctx, argv: &[Bytes]) -> Reply {
    let Some(t) = my_tracking(ctx) else {
        return Reply::err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    if is(&argv[2], "yes") {
        if !t.optin {
            return Reply::err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if is(&argv[2], "no") {
        if !t.optout {
            return Reply::err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return Reply::err(SYNTAX);
    }
    t.caching = true;
    Reply::ok()
}

pub fn getredir(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    Reply::Int(my_tracking(ctx).map_or(-1, |t| t.redirect as i64))
}

pub fn trackinginfo(ctx: &mut Ctx, _argv: &[Bytes]) -> Reply {
    let s = Reply::bulk_str;
    let t = my_tracking(ctx).map(|t| (*t).clone());
    let mut flags = vec![s(if t.is_some() { "on" } else { "off" })];
    let mut redirect = -1;
    let mut prefixes = Vec::new();
    if let Some(t) = t {
        let caching = t.caching;
        for (on, name) in [
            (t.bcast, "bcast"),
            (t.optin, "optin"),
            (t.optin && caching, "caching-yes"),
            (t.optout, "optout"),
            (t.optout && caching, "caching-no"),
            (t.noloop, "noloop"),
            (t.broken_redir, "broken_redirect"),
        ] {
            if on {
                flags.push(s(name));
            }
        }
        redirect = t.redirect as i64;
        prefixes = t.prefixes.into_iter().map(Reply::Bulk).collect();
    }
    Reply::Map(vec![
        (s("flags"), Reply::Set(flags)),
        (s("redirect"), Reply::Int(redirect)),
        (s("prefixes"), Reply::Array(prefixes)),
    ])
}

/// CLIENT LIST's tracking flags (`t`, `R`, `B`, after `b` as Redis orders them) and `redir=`.
pub fn list_flags(t: Option<&ClientTracking>, out: &mut String) {
    if let Some(t) = t {
        out.push('t');
        if t.broken_redir {
            out.push('R');
        }
        if t.bcast {
            out.push('B');
        }
    }
}

pub fn redir(t: Option<&ClientTracking>) -> i64 {
    t.map_or(-1, |t| t.redirect as i64)
}
