//! The web chat widget's host side: `GET /webchat.js` (the widget), CORS for the widget's
//! posts to a web chat channel's webhook, and `GET /v1/channels/{channel}/webchat/stream`,
//! which streams the company's replies to one visitor as server-sent events.
//!
//! The widget's messages go through the channel's connector plugin like any webhook (it
//! checks the site key and the page's origin). Replies go through the normal outbound path;
//! the connector accepts them, and this stream carries every accepted message addressed to
//! `web:<visitor>` to the browser, then reports it `delivered`. The visitor id is a random
//! 128-bit value the widget keeps in localStorage: knowing it is what lets a browser read
//! that visitor's replies.

use super::{AppError, AppState};
use crate::channels::input_event;
use crate::log::{Envelope, EventLog};
use crate::pipeline::commands::SendRequest;
use crate::pipeline::outbound::{ATTEMPTED, AttemptResult, Attempted};
use crate::runtime::bindings::types;
use crate::views::Views;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use utoipa::IntoParams;

/// The channel kind web chat connectors describe.
pub const WEB_KIND: &str = "web";

const WIDGET: &str = include_str!("assets/webchat.js");

/// The widget script.
pub async fn widget() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET,
    )
}

fn web_channel(state: &AppState, channel: &str) -> Result<(), AppError> {
    match state.channels.get(channel) {
        Some(c) if c.kind == WEB_KIND => Ok(()),
        _ => Err(AppError::not_found("channel-not-found", format!("no web chat channel `{channel}`"))),
    }
}

/// Adds the CORS headers a widget on another origin needs, for web chat channels. Which
/// origins may post is the connector's decision (`allowed-origins`); the host echoes the
/// origin so the browser lets the widget read the answer.
pub fn allow_origin(response: &mut Response, origin: Option<&HeaderValue>) {
    if let Some(origin) = origin {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("origin"));
    }
}

/// The CORS preflight for a web chat channel's webhook.
pub async fn preflight(
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    web_channel(&state, params.get("channel").map_or("", String::as_str))?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    allow_origin(&mut response, headers.get(header::ORIGIN));
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, GET"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, x-seam-site-key"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    Ok(response)
}

/// Whose replies to stream.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamQuery {
    /// The visitor id the widget made (16-64 characters of letters, digits, `_`, `-`).
    pub visitor: String,
    /// Resume after this log offset (EventSource sends `Last-Event-ID` by itself).
    pub after: Option<u64>,
}

/// The company's replies to one visitor, as server-sent events (`message`: `{id, text, at}`,
/// the log offset as the event id); each one sent is reported delivered.
#[utoipa::path(get, path = "/v1/channels/{channel}/webchat/stream", tag = "channels",
    params(("channel" = String, Path, description = "A web chat channel"), StreamQuery),
    responses((status = 200, content_type = "text/event-stream", description = "Replies as server-sent events"),
        (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    web_channel(&state, &channel)?;
    let Query(query) = query?;
    let valid = (16..=64).contains(&query.visitor.len())
        && query.visitor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(AppError::bad_request(
            "invalid-visitor",
            "visitor must be 16-64 characters of letters, digits, `_` and `-`",
        ));
    }
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let after = resume.or(query.after).unwrap_or_else(|| state.log.head());
    let replies = Replies {
        log: state.log.clone(),
        views: state.views.clone(),
        channel,
        to: format!("web:{}", query.visitor),
    };
    let sse = Sse::new(replies.tail(after)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    let mut response = sse.into_response();
    allow_origin(&mut response, headers.get(header::ORIGIN));
    Ok(response)
}

struct Replies {
    log: Arc<dyn EventLog>,
    views: Views,
    channel: String,
    to: String,
}

impl Replies {
    /// The reply text, if `event` is an accepted send to this visitor on this channel.
    fn reply(&self, event: &Envelope) -> Option<(String, String)> {
        if event.kind != ATTEMPTED || event.channel.as_deref() != Some(self.channel.as_str()) {
            return None;
        }
        let attempted: Attempted = serde_json::from_str(event.payload.get()).ok()?;
        if !matches!(attempted.result, AttemptResult::Accepted { .. }) {
            return None;
        }
        let record = self.views.message(&attempted.message).ok()??;
        if record.plan.get(attempted.step)?.to != self.to {
            return None;
        }
        let request = self.log.get(record.request).ok()??;
        let request: SendRequest = serde_json::from_str(request.payload.get()).ok()?;
        Some((record.id, request.content.text.unwrap_or_default()))
    }

    /// Reports a reply shown to the visitor as delivered.
    async fn delivered(&self, message: &str) {
        let (kind, value) = self.to.split_once(':').unwrap_or(("web", ""));
        let update = types::Event::Delivery(types::DeliveryUpdate {
            provider_id: message.to_owned(),
            recipient: Some(types::Identity { kind: kind.into(), value: value.into() }),
            status: types::DeliveryStatus::Delivered,
            reason: None,
            at: None,
        });
        if let Err(e) = self.log.append(vec![input_event(&self.channel, &update)]).await {
            tracing::warn!(message, error = %e, "cannot record a web chat delivery");
        }
    }

    fn tail(self, after: u64) -> impl Stream<Item = Result<Event, Infallible>> {
        let head = self.log.subscribe();
        stream::unfold(
            (self, head, after, Vec::<Envelope>::new()),
            |(this, mut head, mut after, mut buffer)| async move {
                loop {
                    while let Some(envelope) = buffer.pop() {
                        after = envelope.offset;
                        if let Some((id, text)) = this.reply(&envelope) {
                            this.delivered(&id).await;
                            let data = serde_json::json!({ "id": id, "text": text, "at": envelope.time });
                            let event = Event::default()
                                .id(envelope.offset.to_string())
                                .event("message")
                                .data(data.to_string());
                            return Some((Ok(event), (this, head, after, buffer)));
                        }
                    }
                    match this.log.read(after, 256) {
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
                            tracing::error!(error = %e, "web chat stream stopped");
                            return None;
                        }
                    }
                }
            },
        )
    }
}
