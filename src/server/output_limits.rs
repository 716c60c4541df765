//! `client-output-buffer-limit`: a client whose unsent output passes its class's hard limit,
//! or stays past the soft limit for longer than the soft seconds, is closed and its output
//! dropped, as Redis's checkClientOutputBufferLimits does (a subscriber that stops reading must
//! not make the server hold everything published to it).

use super::client::Client;
use super::core::World;
use super::ClientId;
use crate::config::Limit;

/// Whether `c`, holding `used` bytes of unsent output at unix second `now`, is past its limit;
/// keeps the time it first passed the soft limit as Redis does.
fn exceeded(c: &mut Client, limit: Limit, used: u64, now: i64) -> bool {
    let hard = limit.hard > 0 && used >= limit.hard;
    let mut soft = limit.soft > 0 && used >= limit.soft;
    if soft {
        match c.obuf_soft_since {
            None => {
                c.obuf_soft_since = Some(now);
                soft = false;
            }
            Some(since) => soft = now - since > limit.soft_seconds,
        }
    } else {
        c.obuf_soft_since = None;
    }
    hard || soft
}

impl World {
    /// After a turn's output is queued: closes the given clients that are past their limit.
    pub fn enforce_output_limits(&mut self, ids: &[ClientId]) {
        let limits = *self.config.output_limits();
        let now = super::now_ms() / 1000;
        for id in ids {
            let Some(c) = self.clients.get_mut(id) else {
                continue;
            };
            let limit = if c.subscriptions() > 0 {
                limits.pubsub
            } else {
                limits.normal
            };
            if c.closing || (limit.hard == 0 && limit.soft == 0) {
                continue;
            }
            let used = c.sender.pending_bytes() as u64;
            if exceeded(c, limit, used, now) {
                tracing::warn!(
                    "Client id={} addr={} scheduled to be closed ASAP for overcoming of output \
                     buffer limits.",
                    c.id,
                    c.addr
                );
                c.closing = true;
                c.sender.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputLimits;

    #[test]
    fn parses_config_get_form() {
        let l = OutputLimits::parse(
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        );
        assert_eq!(l.normal, Limit::default());
        assert_eq!(
            l.pubsub,
            Limit {
                hard: 33554432,
                soft: 8388608,
                soft_seconds: 60
            }
        );
    }
}
