//! Channels: configured connector instances. A channel's plugin is loaded under the
//! channel's id, so two channels of the same connector have separate config and separate
//! key-value namespaces. This module also turns what a connector returns into log inputs.

use crate::log::NewEvent;
use crate::runtime::bindings::types;
use serde_json::value::{RawValue, to_raw_value};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// A configured channel.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Channel {
    /// Id: in the webhook URL and on every event.
    pub id: String,
    /// The connector plugin it runs (manifest name).
    pub plugin: String,
    /// The connector's channel kind (`telegram`, `sms`...), from `describe`.
    pub kind: String,
    /// The identity kind the channel addresses customers by (`telegram`, `phone`...), from
    /// `describe`.
    pub identity_kind: String,
    /// Most sends per second, if limited.
    pub rate_limit: Option<f64>,
}

/// The channels, by id.
#[derive(Clone, Default)]
pub struct Channels {
    inner: Arc<RwLock<BTreeMap<String, Channel>>>,
}

impl Channels {
    /// Adds or replaces a channel.
    pub fn insert(&self, channel: Channel) {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).insert(channel.id.clone(), channel);
    }

    /// A channel by id.
    pub fn get(&self, id: &str) -> Option<Channel> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Every channel.
    pub fn all(&self) -> Vec<Channel> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

fn raw<T: serde::Serialize>(value: &T) -> Box<RawValue> {
    // WIT records are plain data; their JSON encoding cannot fail.
    to_raw_value(value).unwrap_or_else(|_| RawValue::from_string("null".into()).unwrap_or_default())
}

fn identity_text(identity: &types::Identity) -> String {
    format!("{}:{}", identity.kind, identity.value)
}

/// The log input for one connector event: its type, and the provider id that makes a
/// retried webhook recognisable.
pub fn input_event(channel: &str, event: &types::Event) -> NewEvent {
    use types::Event as E;
    let (kind, external_id, payload) = match event {
        E::Message(m) => ("message.received", m.external_id.clone(), raw(m)),
        E::MessageEdited(e) => ("message.edited", format!("{}#{}", e.external_id, e.edit_id), raw(e)),
        E::Delivery(d) => ("delivery.updated", format!("{}#{:?}", d.provider_id, d.status), raw(d)),
        E::Call(c) => ("call.updated", format!("{}#{:?}", c.call_id, c.status), raw(c)),
        E::IdentityHint(h) => {
            ("identity.hinted", format!("{}={}", identity_text(&h.known), identity_text(&h.also)), raw(h))
        }
        // Without a time, two opt-outs cannot be told from a retry: no dedup key then.
        E::Consent(c) => (
            "consent.changed",
            c.at.map_or(String::new(), |at| format!("{}#{}#{at}", identity_text(&c.customer), c.granted)),
            raw(c),
        ),
        E::Channel(c) => ("channel.event", format!("{}#{}", c.kind, c.external_id), raw(c)),
    };
    let mut event = NewEvent::input(kind, payload);
    event.channel = Some(channel.to_owned());
    event.external_id = (!external_id.is_empty()).then_some(external_id);
    event
}
