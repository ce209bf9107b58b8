//! `/v1/events`: the log itself, from an offset, and as a live stream (server-sent events,
//! resumable with `Last-Event-ID`).

use super::auth::{Caller, Role};
use super::{AppError, AppState};
use crate::log::{Envelope, EventLog};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// Where to start.
#[derive(Debug, Deserialize, IntoParams)]
pub struct After {
    /// Events after this offset (default 0: from the start).
    pub after: Option<u64>,
    /// Events per page, 1-1000 (default 100).
    pub limit: Option<usize>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// Events in log order.
    pub items: Vec<Envelope>,
    /// Offset to pass as `after` for the next page.
    pub next_after: u64,
    /// The log's last offset.
    pub head: u64,
}

/// Events after an offset.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(After),
    responses((status = 200, body = EventPage), (status = 400, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<Query<After>, QueryRejection>,
) -> Result<Json<EventPage>, AppError> {
    caller.require(Role::Integration)?;
    let Query(query) = query?;
    let limit = super::error::page_limit(query.limit, 100, 1000)?;
    let after = query.after.unwrap_or(0);
    let items = state.log.read(after, limit)?;
    let next_after = items.last().map_or(after, |e| e.offset);
    Ok(Json(EventPage { items, next_after, head: state.log.head() }))
}

/// Live stream of events as they become durable: SSE, one `event` per envelope with the
/// offset as its id. Reconnect with `Last-Event-ID` (or `after`) to resume without a gap.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events", params(After),
    responses((status = 200, content_type = "text/event-stream", description = "Envelopes as server-sent events")),
    security(("bearer" = [])))]
pub async fn stream(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<After>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    caller.require(Role::Integration)?;
    let Query(query) = query?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let after = resume.or(query.after).unwrap_or_else(|| state.log.head());
    Ok(Sse::new(tail(state.log.clone(), after))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Events after `after`, forever: pages from the log, then waits on its live tail.
fn tail(log: Arc<dyn EventLog>, after: u64) -> impl Stream<Item = Result<Event, Infallible>> {
    let head = log.subscribe();
    stream::unfold(
        (log, head, after, Vec::<Envelope>::new()),
        |(log, mut head, mut after, mut buffer)| async move {
            loop {
                if let Some(envelope) = buffer.pop() {
                    after = envelope.offset;
                    let event = Event::default()
                        .id(envelope.offset.to_string())
                        .event(envelope.kind.clone())
                        .json_data(&envelope)
                        .unwrap_or_else(|_| Event::default().comment("unencodable event"));
                    return Some((Ok(event), (log, head, after, buffer)));
                }
                match log.read(after, 256) {
                    Ok(mut events) if !events.is_empty() => {
                        events.reverse();
                        buffer = events;
                    }
                    Ok(_) => {
                        if head.changed().await.is_err() {
                            return None;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "event stream stopped");
                        return None;
                    }
                }
            }
        },
    )
}
