//! The web chat widget's host side: `GET /webchat.js` (the widget), CORS for the widget's
//! posts to a web chat channel's webhook, `GET /v1/channels/{channel}/webchat/stream`,
//! which streams the company's replies to one visitor as server-sent events (one shared
//! tail of the log feeds every stream, see [`hub`]), and `.../webchat/history`, the
//! visitor's last messages for a reloaded page.
//!
//! The widget's messages go through the channel's connector plugin like any webhook (it
//! checks the site key and the page's origin). Replies go through the normal outbound path;
//! the connector accepts them, and this stream carries every accepted message addressed to
//! `web:<visitor>` to the browser, then reports it `delivered`. The visitor id is a random
//! 128-bit value the widget keeps in localStorage: knowing it is what lets a browser read
//! that visitor's replies.

use super::{AppError, AppState};
use crate::channels::input_event;
use crate::log::EventLog;
use crate::runtime::bindings::types;
use crate::views::Views;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use utoipa::IntoParams;

pub mod history;
pub mod hub;

pub use history::history;
pub use hub::Hub;
use hub::{Reply, Subscription};

/// The channel kind web chat connectors describe.
pub const WEB_KIND: &str = "web";

const WIDGET: &str = include_str!("widget.js");

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

/// Refuses a visitor id that is not 16-64 characters of letters, digits, `_` and `-`: the id
/// is all a caller needs to read a visitor's replies, so it must be hard to guess.
fn valid_visitor(visitor: &str) -> Result<(), AppError> {
    let valid = (16..=64).contains(&visitor.len())
        && visitor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "invalid-visitor",
            "visitor must be 16-64 characters of letters, digits, `_` and `-`",
        ))
    }
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
    valid_visitor(&query.visitor)?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let channels = state.channels.clone();
    let is_web = move |c: &str| channels.get(c).is_some_and(|c| c.kind == WEB_KIND);
    let subscription = state.webchat.subscribe(&state.log, &state.views, is_web);
    let replies = Replies {
        log: state.log.clone(),
        views: state.views.clone(),
        hub: state.webchat.clone(),
        channel,
        to: format!("web:{}", query.visitor),
    };
    let sse = Sse::new(replies.stream(subscription, resume.or(query.after)))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    let mut response = sse.into_response();
    allow_origin(&mut response, headers.get(header::ORIGIN));
    Ok(response)
}

/// One visitor's stream.
#[derive(Clone)]
struct Replies {
    log: Arc<dyn EventLog>,
    views: Views,
    hub: Hub,
    channel: String,
    to: String,
}

impl Replies {
    /// Whether `reply` is for this stream's visitor on its channel.
    fn ours(&self, reply: &Reply) -> bool {
        reply.channel == self.channel && reply.to == self.to
    }

    /// This visitor's replies in the log after `after` up to `upto` (at most the last
    /// [`hub::CATCH_UP_EVENTS`] events of that range), read off the async threads.
    async fn catch_up(&self, after: u64, upto: u64) -> VecDeque<Reply> {
        let this = self.clone();
        let read = move || {
            let mut found = VecDeque::new();
            let mut at = after.max(upto.saturating_sub(hub::CATCH_UP_EVENTS));
            while at < upto {
                let Ok(events) = this.log.read(at, 512) else { break };
                let Some(last) = events.last().map(|e| e.offset) else { break };
                for event in events.iter().filter(|e| e.offset <= upto) {
                    let reply = hub::reply_of(this.log.as_ref(), &this.views, event, |c| c == this.channel);
                    found.extend(reply.filter(|r| this.ours(r)));
                }
                at = last;
            }
            found
        };
        tokio::task::spawn_blocking(read).await.unwrap_or_default()
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

    /// The replies after `resume` (read from the log up to where the subscription starts),
    /// then the live ones; each sent is reported delivered. A stream that falls behind the
    /// broadcast reads what it missed from the log.
    fn stream(
        self,
        subscription: Subscription,
        resume: Option<u64>,
    ) -> impl Stream<Item = Result<Event, Infallible>> {
        let Subscription { rx, from } = subscription;
        let state =
            (self, rx, resume.unwrap_or(from), resume.filter(|r| *r < from).map(|_| from), VecDeque::new());
        stream::unfold(state, |(this, mut rx, mut sent, mut catch_up_to, mut pending)| async move {
            loop {
                if let Some(upto) = catch_up_to.take() {
                    pending = this.catch_up(sent, upto).await;
                }
                let reply = match pending.pop_front() {
                    Some(reply) => reply,
                    None => match rx.recv().await {
                        Ok(reply) if this.ours(&reply) => (*reply).clone(),
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            catch_up_to = Some(this.hub.position());
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                };
                // Catch-up and broadcast may both carry a reply: send each once, in order.
                if reply.offset <= sent {
                    continue;
                }
                sent = reply.offset;
                this.delivered(&reply.id).await;
                let data = serde_json::json!({ "id": reply.id, "text": reply.text, "at": reply.at });
                let event =
                    Event::default().id(reply.offset.to_string()).event("message").data(data.to_string());
                return Some((Ok(event), (this, rx, sent, catch_up_to, pending)));
            }
        })
    }
}
