//! Channel and pattern subscriptions, in subscription order.

use std::collections::HashMap;

use bytes::Bytes;

use super::ClientId;

#[derive(Default)]
pub struct PubSub {
    pub channels: HashMap<Bytes, Vec<ClientId>>,
    pub patterns: HashMap<Bytes, Vec<ClientId>>,
    /// Shard channels (SSUBSCRIBE); standalone, so every one is served here.
    pub shard_channels: HashMap<Bytes, Vec<ClientId>>,
}

impl PubSub {
    pub fn subscribe(map: &mut HashMap<Bytes, Vec<ClientId>>, name: &Bytes, id: ClientId) {
        let subs = map.entry(name.clone()).or_default();
        if !subs.contains(&id) {
            subs.push(id);
        }
    }

    pub fn unsubscribe(map: &mut HashMap<Bytes, Vec<ClientId>>, name: &Bytes, id: ClientId) {
        if let Some(subs) = map.get_mut(name) {
            subs.retain(|c| *c != id);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }
}
