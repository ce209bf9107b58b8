//! What the views store, and what the API serves.
//!
//! Records are stored as MessagePack with fields by position ([`encode`]): no field names,
//! numbers in binary, strings without escapes; a customer record is less than half its JSON
//! size, and sled's writes, caches and disk shrink with it. Fields are read back by
//! position, so a stored type never skips a field when serializing (`skip_serializing_if`
//! would shift the fields after it); a new field changes [`super::FORMAT`], and the views
//! are rebuilt from the log.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Encodes a record for the views.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    thread_local! {
        // Encoding into a growing Vec reallocated it ~7 times per customer record.
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        // Records are plain data (strings, numbers, maps with string keys): encoding cannot
        // fail, but if it did the record would be stored empty and read back as corrupt.
        match value.serialize(&mut rmp_serde::Serializer::new(&mut *scratch)) {
            Ok(()) => scratch.clone(),
            Err(_) => Vec::new(),
        }
    })
}

/// Decodes a record [`encode`] made.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

/// One identity a customer holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IdentityEntry {
    /// `kind:value`, normalized (phones in E.164, emails lower-cased).
    pub identity: String,
    /// Why it was linked.
    pub reason: String,
}

/// Use of one channel by a customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelUse {
    /// First event on it, ms.
    pub first_seen: i64,
    /// Last event on it, ms.
    pub last_seen: i64,
    /// Messages from the customer on it.
    pub messages: u64,
    /// Events of any kind on it.
    pub events: u64,
}

/// Consent on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Consent {
    /// Opted in (true) or out.
    pub granted: bool,
    /// Since, ms.
    pub at: i64,
}

/// Counters of a customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Counters {
    /// Messages from the customer.
    pub messages_in: u64,
    /// Timeline events of any kind.
    pub events: u64,
    /// Conversations opened.
    pub conversations: u64,
}

impl Counters {
    fn add(&mut self, other: &Counters) {
        self.messages_in += other.messages_in;
        self.events += other.events;
        self.conversations += other.conversations;
    }
}

/// A customer as stored: the person as one channel history built it. Merged customers
/// keep their own record (so an unmerge can restore them) and point at the survivor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    /// Id (`cus_` + ULID).
    pub id: String,
    /// Created, ms.
    pub created_at: i64,
    /// First event, ms.
    pub first_seen: Option<i64>,
    /// Last event, ms.
    pub last_seen: Option<i64>,
    /// Identities whose home this record is.
    pub identities: Vec<IdentityEntry>,
    /// Attributes set through the API.
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Channels used.
    pub channels: BTreeMap<String, ChannelUse>,
    /// Channel of the last inbound message.
    pub last_channel: Option<String>,
    /// When the last channel was used, ms.
    pub last_channel_at: Option<i64>,
    /// Consent per channel.
    pub consent: BTreeMap<String, Consent>,
    /// Counters.
    pub counters: Counters,
    /// The customer this one was merged into.
    pub merged_into: Option<String>,
    /// Customers merged into this one (directly or through them).
    pub absorbed: Vec<String>,
    /// The agent a conversation of this customer was last assigned to (for sticky routing).
    #[serde(default)]
    pub last_agent: Option<String>,
    /// The conversation not yet resolved, if any (kept on the surviving customer).
    pub open_conversation: Option<String>,
    /// The latest conversation, for reopening.
    pub last_conversation: Option<String>,
    /// The newest timeline entries of this customer, not yet moved to a timeline chunk
    /// (see [`crate::views::unit`]): one record write per message carries them, instead
    /// of one more key per message.
    pub recent: Recent,
}

/// A customer's newest timeline entries, kept encoded: the record is decoded and encoded
/// again on every message of the customer, and decoding up to 15 entries of four strings
/// each was most of that, for entries only the timeline reads show. Each is encoded once,
/// when it is added; a full set becomes a timeline chunk without decoding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    /// How many entries `encoded` holds.
    len: u32,
    /// The entries, each as [`encode`] makes it, one after another.
    #[serde(with = "serde_bytes")]
    encoded: Vec<u8>,
}

impl Recent {
    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `entry` after the others.
    pub fn push(&mut self, entry: &Entry) {
        let before = self.encoded.len();
        // An entry is plain data: encoding cannot fail, but if it did nothing is added.
        match entry.serialize(&mut rmp_serde::Serializer::new(&mut self.encoded)) {
            Ok(()) => self.len += 1,
            Err(_) => self.encoded.truncate(before),
        }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> Result<Vec<Entry>, rmp_serde::decode::Error> {
        let mut decoder = rmp_serde::Deserializer::new(self.encoded.as_slice());
        (0..self.len).map(|_| Entry::deserialize(&mut decoder)).collect()
    }

    /// Takes every entry, as a timeline chunk would store them (the encoding of a
    /// `Vec<Entry>`), with the offset of the first; `None` when it holds none.
    pub fn take_chunk(&mut self) -> Result<Option<(u64, Vec<u8>)>, rmp_serde::decode::Error> {
        if self.is_empty() {
            return Ok(None);
        }
        let first = Entry::deserialize(&mut rmp_serde::Deserializer::new(self.encoded.as_slice()))?.offset;
        let mut chunk = Vec::with_capacity(5 + self.encoded.len());
        // Writing to a Vec cannot fail.
        let _ = rmp::encode::write_array_len(&mut chunk, self.len);
        chunk.append(&mut self.encoded);
        self.len = 0;
        Ok(Some((first, chunk)))
    }
}

impl FromIterator<Entry> for Recent {
    fn from_iter<I: IntoIterator<Item = Entry>>(entries: I) -> Self {
        let mut recent = Recent::default();
        for entry in entries {
            recent.push(&entry);
        }
        recent
    }
}

/// Status of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for the company.
    Open,
    /// Waiting for the customer.
    Pending,
    /// Done.
    Resolved,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 3] = [Status::Open, Status::Pending, Status::Resolved];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Resolved => "resolved",
        }
    }

    /// Parses a lower-case name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Status::Open),
            "pending" => Some(Status::Pending),
            "resolved" => Some(Status::Resolved),
            _ => None,
        }
    }
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    /// Id (`cnv_` + ULID).
    pub id: String,
    /// The customer (the surviving customer, when served).
    pub customer: String,
    /// Status.
    pub status: Status,
    /// Opened, ms.
    pub opened_at: i64,
    /// Last change, ms.
    pub updated_at: i64,
    /// Resolved, ms.
    pub resolved_at: Option<i64>,
    /// Channels used in it, in order of first use.
    pub channels: Vec<String>,
    /// The channel the customer used last: the default reply channel.
    pub last_channel: Option<String>,
    /// Queue it is routed to.
    pub queue: Option<String>,
    /// Agent it is assigned to.
    pub assignee: Option<String>,
    /// Priority from the router.
    pub priority: i32,
    /// Tags from the router.
    pub tags: Vec<String>,
    /// The router's last explanation.
    pub route_reason: Option<String>,
    /// The router (`name@version`) that placed it.
    pub router: Option<String>,
    /// Messages from the customer.
    pub message_count: u64,
    /// Last message, ms.
    pub last_message_at: Option<i64>,
    /// Times it was reopened.
    pub reopened: u32,
    /// Log offset of its first event.
    #[serde(default)]
    pub first_offset: Option<u64>,
    /// Log offset of its latest event.
    #[serde(default)]
    pub last_offset: Option<u64>,
    /// Since when it has waited for an agent (in a queue, unassigned, not resolved); kept
    /// when it moves between queues while waiting, cleared once an agent has it.
    #[serde(default)]
    pub waiting_since: Option<i64>,
    /// When it entered the queue it waits in: the queue's escalation timeout counts from it.
    #[serde(default)]
    pub queued_at: Option<i64>,
    /// Customers whose timelines hold its events: its customer, and the customers merged
    /// into it at the time (their events keep their own timelines, so an unmerge can give
    /// them back).
    #[serde(default)]
    pub timelines: Vec<String>,
}

impl Conversation {
    /// Whether it waits for an agent: in a queue, unassigned, not resolved.
    pub fn is_waiting(&self) -> bool {
        self.status != Status::Resolved && self.assignee.is_none() && self.queue.is_some()
    }

    /// Its place in line: higher priority first, then who has waited longest.
    pub fn queue_rank(&self) -> (std::cmp::Reverse<i32>, i64, String) {
        (std::cmp::Reverse(self.priority), self.waiting_since.unwrap_or(i64::MAX), self.id.clone())
    }

    /// Keeps `waiting_since` and `queued_at` in step with whether it waits now, after a
    /// change at `at` that moved it from `previous_queue`.
    pub fn settle_wait(&mut self, previous_queue: Option<&str>, at: i64) {
        if self.is_waiting() {
            self.waiting_since.get_or_insert(at);
            if self.queued_at.is_none() || previous_queue != self.queue.as_deref() {
                self.queued_at = Some(at);
            }
        } else {
            self.waiting_since = None;
            self.queued_at = None;
        }
    }
}

/// An entry of a timeline or of a conversation's messages: a pointer into the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Offset of the event in the log.
    pub offset: u64,
    /// Event type.
    pub kind: String,
    /// Channel.
    pub channel: Option<String>,
    /// Conversation.
    pub conversation: Option<String>,
    /// Identity it came from.
    pub identity: Option<String>,
    /// When, ms.
    pub at: i64,
}

/// The unified view of a customer: every identity, channel and counter of the surviving
/// customer and of the customers merged into it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerView {
    /// Id.
    pub id: String,
    /// Identities, normalized.
    pub identities: Vec<IdentityEntry>,
    /// Attributes.
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Channels used, by channel id.
    pub channels: BTreeMap<String, ChannelUse>,
    /// The channel the customer used last: the default reply channel.
    pub last_channel: Option<String>,
    /// Consent per channel.
    pub consent: BTreeMap<String, Consent>,
    /// The conversation not yet resolved.
    pub open_conversation: Option<Conversation>,
    /// Counters.
    pub counters: Counters,
    /// First event, ms.
    pub first_seen: Option<i64>,
    /// Last event, ms.
    pub last_seen: Option<i64>,
    /// Created, ms.
    pub created_at: i64,
    /// Customers merged into this one (each can be split off again with unmerge).
    pub merged: Vec<String>,
}

impl CustomerView {
    /// Builds the view of `owner` from its record and those of the customers it absorbed.
    pub fn build(owner: &CustomerRecord, members: &[CustomerRecord], open: Option<Conversation>) -> Self {
        let mut view = CustomerView {
            id: owner.id.clone(),
            identities: owner.identities.clone(),
            attributes: BTreeMap::new(),
            channels: owner.channels.clone(),
            last_channel: owner.last_channel.clone(),
            consent: owner.consent.clone(),
            open_conversation: open,
            counters: owner.counters.clone(),
            first_seen: owner.first_seen,
            last_seen: owner.last_seen,
            created_at: owner.created_at,
            merged: owner.absorbed.clone(),
        };
        let mut last_at = owner.last_channel_at;
        for member in members {
            view.identities.extend(member.identities.iter().cloned());
            for (channel, used) in &member.channels {
                let entry = view
                    .channels
                    .entry(channel.clone())
                    .or_insert_with(|| ChannelUse { first_seen: used.first_seen, ..ChannelUse::default() });
                entry.first_seen = entry.first_seen.min(used.first_seen);
                entry.last_seen = entry.last_seen.max(used.last_seen);
                entry.messages += used.messages;
                entry.events += used.events;
            }
            for (channel, consent) in &member.consent {
                let newer = view.consent.get(channel).is_none_or(|c| c.at < consent.at);
                if newer {
                    view.consent.insert(channel.clone(), consent.clone());
                }
            }
            if member.last_channel_at > last_at {
                last_at = member.last_channel_at;
                view.last_channel = member.last_channel.clone();
            }
            view.counters.add(&member.counters);
            view.first_seen = min_opt(view.first_seen, member.first_seen);
            view.last_seen = view.last_seen.max(member.last_seen);
            view.created_at = view.created_at.min(member.created_at);
            // The surviving customer's attributes win over absorbed ones.
            for (k, v) in &member.attributes {
                view.attributes.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        for (k, v) in &owner.attributes {
            view.attributes.insert(k.clone(), v.clone());
        }
        view
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::outbound::HistoryEntry;
    use serde_json::json;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
        let bytes = encode(value);
        let back: T = decode(&bytes).unwrap_or_else(|e| panic!("{value:?} does not decode: {e}"));
        assert_eq!(&back, value);
    }

    #[test]
    fn records_survive_the_codec_with_absent_fields_and_json_attributes() {
        let entry = |channel: Option<&str>, identity: Option<&str>| Entry {
            offset: 7,
            kind: "message.received".into(),
            channel: channel.map(Into::into),
            conversation: None,
            identity: identity.map(Into::into),
            at: -1,
        };
        let mut record = CustomerRecord {
            id: "cus_1".into(),
            attributes: [
                ("plan".to_string(), json!({"tier": "gold", "seats": [1, 2.5, -3], "trial": null})),
                ("vip".to_string(), json!(true)),
                ("big".to_string(), json!(u64::MAX)),
            ]
            .into(),
            // An absent field between present ones must not shift the fields after it.
            recent: [entry(None, Some("telegram:1")), entry(Some("sms"), None)].into_iter().collect(),
            last_agent: Some("agent-1".into()),
            ..CustomerRecord::default()
        };
        round_trip(&record);
        record.recent = Recent::default();
        round_trip(&record);
        round_trip(&HistoryEntry {
            at: 1,
            what: "error".into(),
            step: 0,
            channel: "sms".into(),
            attempt: None,
            detail: Some("timeout".into()),
        });
    }

    #[test]
    fn recent_entries_read_back_and_become_a_chunk_as_a_list_of_entries_is_stored() {
        let entries: Vec<Entry> = (0..3)
            .map(|i| Entry {
                offset: 10 + i,
                kind: "message.received".into(),
                channel: Some("telegram".into()),
                conversation: (i != 1).then(|| "cnv_1".to_string()),
                identity: Some(format!("telegram:{i}")),
                at: 1_000 + i as i64,
            })
            .collect();
        let recent: Recent = entries.iter().cloned().collect();
        assert_eq!(recent.len(), 3);
        assert_eq!(recent.entries().unwrap(), entries);
        let stored: CustomerRecord =
            decode(&encode(&CustomerRecord { recent, ..Default::default() })).unwrap();
        let mut recent = stored.recent;
        assert_eq!(recent.entries().unwrap(), entries);
        let (first, chunk) = recent.take_chunk().unwrap().unwrap();
        assert_eq!(first, 10);
        assert_eq!(chunk, encode(&entries));
        assert!(recent.is_empty() && recent.entries().unwrap().is_empty());
        assert_eq!(recent.take_chunk().unwrap(), None);
    }

    #[test]
    fn a_record_of_another_shape_is_an_error_not_a_panic() {
        let bytes = encode(&Entry {
            offset: 1,
            kind: "k".into(),
            channel: None,
            conversation: None,
            identity: None,
            at: 2,
        });
        assert!(decode::<CustomerRecord>(&bytes).is_err());
        assert!(decode::<CustomerRecord>(b"{\"id\": \"json\"}").is_err());
        assert!(decode::<Entry>(&[]).is_err());
    }
}
