//! `GET /v1/channels/{channel}/webchat/history?visitor=`: the last messages between one
//! visitor and the company on a web chat channel, so the widget shows the conversation again
//! after a reload or on another page of the site.
//!
//! Only this channel's messages from and to `web:<visitor>` are returned, never what the
//! same customer wrote on other channels: the visitor id is all the caller proves.

use super::{AppError, AppState, StreamQuery, allow_origin, hub, valid_visitor, web_channel};
use crate::log::EventLog;
use crate::views::{Order, Views};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// Most messages returned.
const MAX_ITEMS: usize = 50;

/// Most timeline entries looked at (the visitor's customer may be busy on other channels).
const MAX_SCANNED: usize = 5_000;

/// One message of the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    /// The visitor's message id, or Seam's id of a reply.
    pub id: String,
    /// `visitor` or `agent`.
    pub from: &'static str,
    /// The text.
    pub text: String,
    /// When (ms since the epoch).
    pub at: i64,
}

/// The history, oldest first, and where a stream should resume to get what follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    /// Up to 50 messages, oldest first.
    pub items: Vec<HistoryItem>,
    /// The log offset the history was read at: open the stream with `after` = this.
    pub after: u64,
}

/// The last messages between a visitor and the company on this channel.
#[utoipa::path(get, path = "/v1/channels/{channel}/webchat/history", tag = "channels",
    params(("channel" = String, Path, description = "A web chat channel"), StreamQuery),
    responses((status = 200, body = History),
        (status = 400, body = super::super::error::ErrorBody), (status = 404, body = super::super::error::ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    web_channel(&state, &channel)?;
    let Query(query) = query?;
    valid_visitor(&query.visitor)?;
    let after = state.log.head();
    let (log, views, identity) = (state.log.clone(), state.views.clone(), format!("web:{}", query.visitor));
    let items = tokio::task::spawn_blocking(move || collect(&log, &views, &channel, &identity))
        .await
        .map_err(|e| {
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("web chat history: {e}"))
        })??;
    let mut response = Json(History { items, after }).into_response();
    allow_origin(&mut response, headers.get(header::ORIGIN));
    Ok(response)
}

/// The visitor's messages and the accepted replies to it on `channel`, newest
/// [`MAX_ITEMS`], oldest first.
fn collect(
    log: &Arc<dyn EventLog>,
    views: &Views,
    channel: &str,
    identity: &str,
) -> Result<Vec<HistoryItem>, AppError> {
    let Some(customer) = views.customer_by_identity(identity)? else { return Ok(Vec::new()) };
    let mut items = Vec::new();
    let mut cursor = None;
    let mut scanned = 0;
    while items.len() < MAX_ITEMS && scanned < MAX_SCANNED {
        let page = views.timeline(&customer.id, cursor, 200, Order::Desc)?.unwrap_or_default();
        let Some(last) = page.last() else { break };
        cursor = Some(last.offset);
        scanned += page.len();
        for entry in page.iter().filter(|e| e.channel.as_deref() == Some(channel)) {
            let Some(event) = log.get(entry.offset)? else { continue };
            if entry.kind == "message.received" && entry.identity.as_deref() == Some(identity) {
                let payload: serde_json::Value =
                    serde_json::from_str(event.payload.get()).unwrap_or_default();
                let text = payload["text"].as_str().unwrap_or_default().to_owned();
                let id = payload["external_id"].as_str().unwrap_or_default().to_owned();
                items.push(HistoryItem { id, from: "visitor", text, at: entry.at });
            } else if let Some(reply) = hub::reply_of(log.as_ref(), views, &event, |c| c == channel)
                && reply.to == identity
            {
                items.push(HistoryItem { id: reply.id, from: "agent", text: reply.text, at: entry.at });
            }
            if items.len() == MAX_ITEMS {
                break;
            }
        }
    }
    items.reverse();
    Ok(items)
}
