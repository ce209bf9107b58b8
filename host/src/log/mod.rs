//! The event log: the source of truth. Every inbound event, API command and pipeline
//! decision is appended here; every view is derived from it and can be rebuilt from it.
//!
//! The [`EventLog`] trait is deliberately narrow (append a batch, read from an offset,
//! named consumer offsets, a live tail) so that a NATS JetStream stream can implement it
//! later: offsets map to stream sequences, idempotency keys to `Nats-Msg-Id`, consumers to
//! durable consumers. [`SledLog`] is the embedded default.

mod sled_log;

pub use sled_log::{SledLog, SledLogOptions};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::watch;

/// Position of an event in the log: 1 for the first event, 0 for "before the start".
pub type Offset = u64;

/// Version of the [`Envelope`] layout; readers reject envelopes newer than they know.
pub const ENVELOPE_VERSION: u16 = 1;

/// Whether an event came from outside (a provider or an API call) or was decided by the
/// pipeline. Rebuilding views replays only decisions; inputs are decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// From a connector or an API command: the pipeline has yet to decide what it means.
    Input,
    /// A decision of the pipeline about an input (its customer, conversation, route...).
    Decision,
}

/// An event as stored and served: the versioned envelope around a JSON payload.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Envelope {
    /// Envelope layout version ([`ENVELOPE_VERSION`]).
    pub v: u16,
    /// Position in the log.
    pub offset: Offset,
    /// Globally unique id (ULID).
    pub id: String,
    /// When it was appended, ms since the Unix epoch.
    pub time: i64,
    /// Event type, e.g. `message.received`, `customer.merge-requested`, `pipeline.decided`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Input or decision.
    #[schema(value_type = String)]
    pub origin: Origin,
    /// The channel it came through, when it came through one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The provider's id for it (part of the idempotency key), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The customer, when known at append time (on a decision of one input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The conversation, when known at append time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// The type-specific body.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
}

/// An event to append; the log assigns offset, id and time.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Event type.
    pub kind: String,
    /// Input or decision.
    pub origin: Origin,
    /// Channel it came through.
    pub channel: Option<String>,
    /// Provider id; with `idempotency_key` unset, `channel` + `kind` + this is the key.
    pub external_id: Option<String>,
    /// Explicit idempotency key (e.g. an API `Idempotency-Key`), overriding the default.
    pub idempotency_key: Option<String>,
    /// Customer, when known.
    pub customer: Option<String>,
    /// Conversation, when known.
    pub conversation: Option<String>,
    /// JSON body.
    pub payload: Box<RawValue>,
}

impl NewEvent {
    /// An input event of `kind` with `payload`.
    pub fn input(kind: impl Into<String>, payload: Box<RawValue>) -> Self {
        NewEvent {
            kind: kind.into(),
            origin: Origin::Input,
            channel: None,
            external_id: None,
            idempotency_key: None,
            customer: None,
            conversation: None,
            payload,
        }
    }

    /// The key under which a retry of this event is recognised, if it has one.
    pub fn dedup_key(&self) -> Option<String> {
        if let Some(key) = &self.idempotency_key {
            return Some(format!("key\u{0}{key}"));
        }
        let external = self.external_id.as_ref()?;
        Some(format!("{}\u{0}{}\u{0}{external}", self.channel.as_deref().unwrap_or(""), self.kind))
    }
}

/// What an append did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Appended {
    /// Where the event is (for a duplicate: where the first copy is).
    pub offset: Offset,
    /// Whether it was a retry of an event already in the log (nothing was appended).
    pub duplicate: bool,
}

/// Why the log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The storage engine failed (disk full, I/O error...).
    #[error("event log storage: {0}")]
    Storage(String),
    /// A stored envelope could not be decoded.
    #[error("event log entry {offset} is corrupt: {reason}")]
    Corrupt {
        /// Where.
        offset: Offset,
        /// Why.
        reason: String,
    },
    /// The log's writer has stopped (the host is shutting down).
    #[error("event log is closed")]
    Closed,
}

impl From<sled::Error> for LogError {
    fn from(e: sled::Error) -> Self {
        LogError::Storage(e.to_string())
    }
}

/// A boxed future, so that [`EventLog`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The event log. Implementations must make an append durable before acknowledging it,
/// keep offsets dense and increasing, and treat a repeated dedup key as a no-op that
/// answers the first copy's offset.
pub trait EventLog: Send + Sync + 'static {
    /// Appends `events` in order; resolves once they are durable. All or nothing.
    fn append(&self, events: Vec<NewEvent>) -> BoxFuture<'_, Result<Vec<Appended>, LogError>>;

    /// Up to `limit` events after `after`, in order.
    fn read(&self, after: Offset, limit: usize) -> Result<Vec<Envelope>, LogError>;

    /// Up to `limit` events of one origin after `after`, in order (rebuilds replay only
    /// decisions). Returns the events and the last offset examined, so a caller can resume
    /// past a long run of the other origin.
    fn read_origin(
        &self,
        after: Offset,
        limit: usize,
        origin: Origin,
    ) -> Result<(Vec<Envelope>, Offset), LogError>;

    /// The event at `offset`, if any.
    fn get(&self, offset: Offset) -> Result<Option<Envelope>, LogError>;

    /// The offset of the last durable event (0 when empty).
    fn head(&self) -> Offset;

    /// A live tail: changes whenever new events become durable; holds the head offset.
    fn subscribe(&self) -> watch::Receiver<Offset>;

    /// The offset consumer `name` committed (0 if it never did).
    fn committed(&self, name: &str) -> Result<Offset, LogError>;

    /// Records that consumer `name` has handled everything up to `offset`.
    fn commit(&self, name: &str, offset: Offset) -> Result<(), LogError>;
}

/// Now, Unix ms: the clock the log stamps events with, and the one everything comparing
/// against those stamps reads.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
