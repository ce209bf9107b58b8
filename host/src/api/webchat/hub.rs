//! One tail of the log for every connected web chat visitor.
//!
//! A visitor's stream must see the replies addressed to it. Reading the log once per
//! connected visitor would cost visitors x traffic; instead one task reads each event once,
//! picks the accepted sends to web chat identities, and broadcasts them. A stream keeps the
//! ones for its visitor. What a stream cannot get from the broadcast (events before it
//! subscribed, when it resumes with `Last-Event-ID`, or events it missed by falling behind)
//! it reads from the log itself, bounded by [`CATCH_UP_EVENTS`].

use crate::log::{Envelope, EventLog};
use crate::pipeline::commands::SendRequest;
use crate::pipeline::outbound::{ATTEMPTED, AttemptResult, Attempted};
use crate::views::Views;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;

/// Replies kept for streams that fall behind before they must read the log.
const BROADCAST_BUFFER: usize = 4096;

/// Most log events one stream reads to catch up; a visitor away for longer gets the rest
/// from the history call.
pub const CATCH_UP_EVENTS: u64 = 100_000;

/// A reply to a web chat visitor, as the stream sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Log offset of the accepted attempt (the SSE event id).
    pub offset: u64,
    /// The web chat channel.
    pub channel: String,
    /// The recipient, `web:<visitor>`.
    pub to: String,
    /// Seam's message id.
    pub id: String,
    /// The text.
    pub text: String,
    /// When the attempt was recorded (ms since the epoch).
    pub at: i64,
}

/// The reply that `event` records, if it is an accepted send to a `web:` identity on one of
/// `is_web`'s channels.
pub fn reply_of(
    log: &dyn EventLog,
    views: &Views,
    event: &Envelope,
    is_web: impl Fn(&str) -> bool,
) -> Option<Reply> {
    if event.kind != ATTEMPTED {
        return None;
    }
    let channel = event.channel.as_deref().filter(|c| is_web(c))?;
    let attempted: Attempted = serde_json::from_str(event.payload.get()).ok()?;
    if !matches!(attempted.result, AttemptResult::Accepted { .. }) {
        return None;
    }
    let record = views.message(&attempted.message).ok()??;
    let to = record.plan.get(attempted.step)?.to.clone();
    if !to.starts_with("web:") {
        return None;
    }
    let request = log.get(record.request).ok()??;
    let request: SendRequest = serde_json::from_str(request.payload.get()).ok()?;
    Some(Reply {
        offset: event.offset,
        channel: channel.to_owned(),
        to,
        id: record.id,
        text: request.content.text.unwrap_or_default(),
        at: event.time,
    })
}

/// The shared tail, started on first use.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<OnceLock<Arc<Inner>>>,
}

struct Inner {
    tx: broadcast::Sender<Arc<Reply>>,
    /// Every event up to here has been broadcast (or was not a reply).
    position: AtomicU64,
}

/// A stream's subscription: replies broadcast from `from` on.
pub struct Subscription {
    /// The broadcast replies.
    pub rx: broadcast::Receiver<Arc<Reply>>,
    /// Events after this offset reach `rx`; those up to it must be read from the log.
    pub from: u64,
}

impl Hub {
    /// Subscribes to the replies, starting the tail (from the log's head) on first use.
    /// `is_web` tells web chat channels.
    pub fn subscribe(
        &self,
        log: &Arc<dyn EventLog>,
        views: &Views,
        is_web: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Subscription {
        let inner = self.inner.get_or_init(|| {
            let (tx, _) = broadcast::channel(BROADCAST_BUFFER);
            let inner = Arc::new(Inner { tx, position: AtomicU64::new(log.head()) });
            tokio::spawn(tail(inner.clone(), log.clone(), views.clone(), is_web));
            inner
        });
        // Subscribe first, then read the position: the tail raises the position before it
        // broadcasts, so a reply is either at or before `from` (read from the log) or
        // received here, possibly both (the stream skips offsets it has sent).
        let rx = inner.tx.subscribe();
        Subscription { rx, from: inner.position.load(Ordering::Acquire) }
    }

    /// How far the tail has got (for a stream that fell behind).
    pub fn position(&self) -> u64 {
        self.inner.get().map_or(0, |i| i.position.load(Ordering::Acquire))
    }
}

async fn tail(inner: Arc<Inner>, log: Arc<dyn EventLog>, views: Views, is_web: impl Fn(&str) -> bool) {
    let mut head = log.subscribe();
    let mut after = inner.position.load(Ordering::Acquire);
    loop {
        match log.read(after, 512) {
            Ok(events) if !events.is_empty() => {
                for event in events {
                    let reply = reply_of(log.as_ref(), &views, &event, &is_web);
                    after = event.offset;
                    inner.position.store(after, Ordering::Release);
                    if let Some(reply) = reply {
                        // No receivers is fine: nobody is connected.
                        let _ = inner.tx.send(Arc::new(reply));
                    }
                }
            }
            Ok(_) => {
                if head.changed().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "web chat tail: cannot read the log; retrying in 1 s");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
