//! `/v1/conversations`: one conversation (with its place in line while it waits), its
//! messages, lists by status, queue and assignee, and the agent's actions on it: assign,
//! transfer, unassign, resolve, reopen, set pending.

use super::auth::{Caller, Role};
use super::customers::{Page, TimelinePage, page, submit};
use super::{AppError, AppState};
use crate::log::NewEvent;
use crate::pipeline::commands::{self, UpdateConversation, double_option};
use crate::views::ConversationFilter;
use crate::views::records::{Conversation, Status};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

fn not_found(id: &str) -> AppError {
    AppError::not_found("conversation-not-found", format!("no conversation `{id}`"))
}

/// A conversation, and where it stands in line if it waits for an agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    /// The conversation.
    #[serde(flatten)]
    pub conversation: Conversation,
    /// 1 for the first in line of its queue; absent unless it waits.
    pub queue_position: Option<usize>,
    /// How long it has waited for an agent so far, ms; absent unless it waits.
    pub wait_ms: Option<i64>,
}

/// `conversation` with its place in line, at `now` (Unix ms).
pub fn view(state: &AppState, conversation: Conversation, now: i64) -> Result<ConversationView, AppError> {
    let (mut queue_position, mut wait_ms) = (None, None);
    if conversation.is_waiting() {
        queue_position = state.views.queue_position(&conversation)?;
        wait_ms = waited(&conversation, now);
    }
    Ok(ConversationView { conversation, queue_position, wait_ms })
}

/// How long `c` has waited for an agent at `now`, ms, if it waits.
pub fn waited(c: &Conversation, now: i64) -> Option<i64> {
    c.waiting_since.map(|since| now.saturating_sub(since).max(0))
}

/// One conversation.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = ConversationView), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_conversation(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, AppError> {
    caller.require(Role::Integration)?;
    let conversation = state.views.conversation(&id)?.ok_or_else(|| not_found(&id))?;
    Ok(Json(view(&state, conversation, crate::log::now_ms())?))
}

/// What to change: absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// Assign (or transfer) to this agent; `null` unassigns: it waits in its queue.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub assignee: Option<Option<String>>,
    /// Move to this queue; `null` takes it out of every queue.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub queue: Option<Option<String>>,
    /// `resolved`, `open` (reopens a resolved one) or `pending` (waiting for the customer).
    #[serde(default)]
    pub status: Option<Status>,
}

/// Assigns, transfers, unassigns, resolves, reopens or sets pending a conversation. An
/// agent who lets a conversation go (resolves, transfers) is offered the next one waiting.
/// A key bound to an agent may only act on conversations that wait or are that agent's.
#[utoipa::path(patch, path = "/v1/conversations/{id}", tag = "conversations", request_body = UpdateBody,
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, body = ConversationView), (status = 404, body = super::error::ErrorBody),
        (status = 403, description = "The key is bound to an agent and the conversation is another agent's",
            body = super::error::ErrorBody),
        (status = 409, description = "Unknown agent, bad queue id, or a status change that is not allowed",
            body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Json<ConversationView>, AppError> {
    caller.require(Role::Agent)?;
    let Json(body) = body?;
    let current = state.views.conversation_record(&id)?.ok_or_else(|| not_found(&id))?;
    caller.may_handle(&current)?;
    let command = UpdateConversation {
        conversation: id.clone(),
        assignee: body.assignee,
        queue: body.queue,
        status: body.status,
        by: caller.author(),
        as_agent: caller.agent().map(str::to_owned),
    };
    let payload = serde_json::value::to_raw_value(&command)
        .map_err(|e| AppError::bad_request("invalid-body", e.to_string()))?;
    submit(&state, NewEvent::input(commands::CONVERSATION_UPDATE, payload), "conversation-refused").await?;
    let conversation = state.views.conversation(&id)?.ok_or_else(|| not_found(&id))?;
    Ok(Json(view(&state, conversation, crate::log::now_ms())?))
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
