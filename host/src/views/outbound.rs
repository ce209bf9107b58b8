//! Outbound messages as the views keep them: one record per message (its plan of channels,
//! where it is in the plan, its status and its whole history), and the indexes the
//! delivery worker and the API read.
//!
//! Keys: `o id` the record · `d next-at id` messages the worker must act on at `next-at`
//! (send, retry, or check that a sent message was delivered in time) · `x id` dead letters
//! (failed for good) · `p channel provider-id` the message a provider id belongs to ·
//! `y channel provider-id` a delivery status that arrived before the send was recorded.

use super::{ViewError, Views, decode, key};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an outbound message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutboundStatus {
    /// Waiting for its next attempt.
    Queued,
    /// The provider accepted it.
    Sent,
    /// It reached the customer's device.
    Delivered,
    /// The customer read it.
    Read,
    /// Every channel of its plan failed: it is a dead letter until re-driven.
    Failed,
}

impl OutboundStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundStatus::Queued => "queued",
            OutboundStatus::Sent => "sent",
            OutboundStatus::Delivered => "delivered",
            OutboundStatus::Read => "read",
            OutboundStatus::Failed => "failed",
        }
    }
}

/// One channel of a message's plan and the address on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanStep {
    /// Channel id.
    pub channel: String,
    /// The recipient, `kind:value` (normalized).
    pub to: String,
}

/// Something that happened to an outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// When, ms.
    pub at: i64,
    /// What: `queued`, `accepted`, `rejected`, `retry-later`, `error`, `timed-out`,
    /// `delivered`, `read`, `delivery-failed`, `fallback`, `dead-lettered`, `redriven`.
    pub what: String,
    /// The plan step it concerns.
    pub step: usize,
    /// The channel of that step.
    pub channel: String,
    /// The attempt on that step (1 for the first), for attempts.
    #[serde(default)]
    pub attempt: Option<u32>,
    /// The provider's id or reason, in its words.
    #[serde(default)]
    pub detail: Option<String>,
}

/// A provider's id for a message on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProviderRef {
    /// Channel id.
    pub channel: String,
    /// The provider's id (what `send` returned; delivery updates refer to it).
    pub id: String,
}

/// An outbound message as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutboundRecord {
    /// Id (`msg_` + ULID); also the id connectors get, stable across retries.
    pub id: String,
    /// The customer it goes to.
    pub customer: String,
    /// The conversation it belongs to, if any.
    pub conversation: Option<String>,
    /// Log offset of the send request, which holds the content.
    pub request: u64,
    /// Channels to try, in order: the first, then the fallbacks.
    pub plan: Vec<PlanStep>,
    /// Index of the plan step being tried.
    pub step: usize,
    /// Attempts made on that step.
    pub attempts: u32,
    /// Where it is.
    pub status: OutboundStatus,
    /// When the delivery worker acts next (send, retry, or fall back if not delivered), ms.
    pub next_at: Option<i64>,
    /// Fall back when not delivered within this many ms after being sent.
    pub fallback_after_ms: Option<u64>,
    /// Attempts per step before falling back.
    pub max_attempts: u32,
    /// The provider ids it got, one per channel that accepted it.
    pub provider_ids: Vec<ProviderRef>,
    /// Why it failed last, if it did.
    pub reason: Option<String>,
    /// Every step of its life.
    pub history: Vec<HistoryEntry>,
    /// Who asked for it (API key name).
    pub by: String,
    /// Queued, ms.
    pub created_at: i64,
    /// Last change, ms.
    pub updated_at: i64,
}

impl OutboundRecord {
    /// The plan step being tried.
    pub fn current(&self) -> Option<&PlanStep> {
        self.plan.get(self.step)
    }

    /// Index keys of this record's state.
    pub(crate) fn index_keys(&self) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        if let Some(at) = self.next_at
            && matches!(self.status, OutboundStatus::Queued | OutboundStatus::Sent)
        {
            keys.push(due_key(at, &self.id));
        }
        if self.status == OutboundStatus::Failed {
            keys.push(key(b'x', &[self.id.as_bytes()]));
        }
        keys
    }
}

/// Key of the record of message `id`.
pub(crate) fn record_key(id: &str) -> Vec<u8> {
    key(b'o', &[id.as_bytes()])
}

/// Key of the due index: offset-like big-endian time so keys sort by time. Times before
/// the epoch are clamped to 0.
pub(crate) fn due_key(at: i64, id: &str) -> Vec<u8> {
    key(b'd', &[&(at.max(0) as u64).to_be_bytes(), id.as_bytes()])
}

/// Key of the provider-id index.
pub(crate) fn provider_key(channel: &str, provider_id: &str) -> Vec<u8> {
    key(b'p', &[channel.as_bytes(), provider_id.as_bytes()])
}

/// Key of a delivery status waiting for its send to be recorded.
pub(crate) fn orphan_key(channel: &str, provider_id: &str) -> Vec<u8> {
    key(b'y', &[channel.as_bytes(), provider_id.as_bytes()])
}

/// A delivery status that arrived before the send it refers to was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrphanStatus {
    /// `delivered`, `read` or `failed`.
    pub status: String,
    /// The provider's reason for a failure.
    pub reason: Option<String>,
    /// When it was reported, ms.
    pub at: i64,
}

impl Views {
    /// An outbound message by id.
    pub fn message(&self, id: &str) -> Result<Option<OutboundRecord>, ViewError> {
        let k = record_key(id);
        self.tree.get(&k)?.map(|v| decode(&k, &v)).transpose()
    }

    /// The message a provider id on `channel` belongs to.
    pub fn message_by_provider(&self, channel: &str, provider_id: &str) -> Result<Option<String>, ViewError> {
        Ok(self
            .tree
            .get(provider_key(channel, provider_id))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// A delivery status kept for a provider id whose send is not recorded yet.
    pub fn orphan_status(&self, channel: &str, provider_id: &str) -> Result<Option<OrphanStatus>, ViewError> {
        let k = orphan_key(channel, provider_id);
        self.tree.get(&k)?.map(|v| decode(&k, &v)).transpose()
    }

    /// Messages due at or before `now` (ms), earliest first, at most `limit`; and the time
    /// of the earliest one not yet due, if any.
    pub fn due_messages(&self, now: i64, limit: usize) -> Result<(Vec<String>, Option<i64>), ViewError> {
        let mut due = Vec::new();
        // `d`, 0, 8 bytes of time, 0, id.
        for item in self.tree.scan_prefix([b'd', 0]) {
            let (k, _) = item?;
            let (Some(at), Some(id)) = (k.get(2..10), k.get(11..)) else { continue };
            let at = u64::from_be_bytes(at.try_into().unwrap_or_default()) as i64;
            if at > now {
                return Ok((due, Some(at)));
            }
            if due.len() >= limit {
                return Ok((due, Some(at)));
            }
            due.push(String::from_utf8_lossy(id).into_owned());
        }
        Ok((due, None))
    }

    /// Dead letters (messages that failed on every channel), by id, after `after`.
    pub fn dead_letters(&self, after: Option<&str>, limit: usize) -> Result<Vec<OutboundRecord>, ViewError> {
        let prefix = [b'x', 0];
        let mut items = Vec::new();
        let mut start = prefix.to_vec();
        if let Some(after) = after {
            // The first key after `after`'s own.
            start.extend_from_slice(after.as_bytes());
            start.push(0);
        }
        for item in self.tree.range(start..) {
            let (k, _) = item?;
            if !k.starts_with(&prefix) || items.len() >= limit {
                break;
            }
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(record) = self.message(&id)? {
                items.push(record);
            }
        }
        Ok(items)
    }
}
