//! `/v1/conversations`: one conversation, its messages, and lists by status, queue and
//! assignee.

use super::auth::{Caller, Role};
use super::customers::{Page, TimelinePage, page};
use super::{AppError, AppState};
use crate::views::ConversationFilter;
use crate::views::records::{Conversation, Status};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

fn not_found(id: &str) -> AppError {
    AppError::not_found("conversation-not-found", format!("no conversation `{id}`"))
}

/// One conversation.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_conversation(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, AppError> {
    caller.require(Role::Integration)?;
    state.views.conversation(&id)?.map(Json).ok_or_else(|| not_found(&id))
}

/// The conversation's messages and events, every channel interleaved.
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id"), Page),
    responses((status = 200, body = TimelinePage), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn messages(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<Page>, QueryRejection>,
) -> Result<Json<TimelinePage>, AppError> {
    caller.require(Role::Integration)?;
    let Query(query) = query?;
    let (limit, order) = query.parse()?;
    if state.views.conversation_record(&id)?.is_none() {
        return Err(not_found(&id));
    }
    let entries = state.views.messages(&id, query.cursor, limit, order)?;
    Ok(Json(page(state.log.as_ref(), entries, limit)?))
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// `open`, `pending` or `resolved`.
    pub status: Option<String>,
    /// Queue name.
    pub queue: Option<String>,
    /// Agent id.
    pub assignee: Option<String>,
    /// Continue after this conversation id (the `next_cursor` of a page).
    pub cursor: Option<String>,
    /// Conversations per page, 1-500 (default 50).
    pub limit: Option<usize>,
}

/// A page of conversations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    /// Conversations, oldest first.
    pub items: Vec<Conversation>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Conversations by status, queue and assignee.
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations", params(ListQuery),
    responses((status = 200, body = ConversationPage), (status = 400, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ConversationPage>, AppError> {
    caller.require(Role::Integration)?;
    let Query(query) = query?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            AppError::bad_request(
                "invalid-status",
                format!("status must be open, pending or resolved, not `{s}`"),
            )
        })?),
    };
    let limit = super::error::page_limit(query.limit, 50, 500)?;
    let filter = ConversationFilter {
        status,
        queue: query.queue,
        assignee: query.assignee,
        after: query.cursor,
        limit,
    };
    let items = state.views.conversations(&filter)?;
    let next_cursor = (items.len() >= limit).then(|| items.last().map(|c| c.id.clone())).flatten();
    Ok(Json(ConversationPage { items, next_cursor }))
}
