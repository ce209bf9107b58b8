//! Agents and queues: `/v1/agents` and `/v1/queues`. Changes are commands in the log (see
//! [`crate::pipeline::team`]); a refused one (a duplicate id, an unknown overflow queue, bad
//! business hours) is a 409 naming why. Reading needs any key; creating and changing agents
//! and queues needs the admin role; setting an agent's status needs the agent role.

use super::customers::submit;
use super::{AppError, AppState, auth::Caller};
use crate::api::auth::Role;
use crate::log::NewEvent;
use crate::pipeline::commands::{self, SaveAgent, SaveQueue, SetAgentStatus, double_option};
use crate::views::team::{AgentRecord, AgentStatus, BusinessHours, QueueRecord};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An agent to create, or the fields of one to change (absent fields stay as they are).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    /// Id (create only): 1-64 letters, digits, `_`, `-`, `.`.
    #[serde(default)]
    pub id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Skills, e.g. `["support", "billing"]`.
    #[serde(default)]
    pub skills: Option<Vec<String>>,
    /// Languages, e.g. `["ru", "en"]`.
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    /// Most conversations held at once per channel kind, `*` for the others, e.g.
    /// `{"email": 10, "*": 3}`.
    #[serde(default)]
    pub capacity: Option<BTreeMap<String, u32>>,
}

/// A queue to create, or the fields of one to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    /// Id (create only): 1-64 letters, digits, `_`, `-`, `.`.
    #[serde(default)]
    pub id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Skills an agent needs (all of them).
    #[serde(default)]
    pub skills: Option<Vec<String>>,
    /// Higher is served first.
    #[serde(default)]
    pub priority: Option<i32>,
    /// Business hours; `null` removes them (always open).
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<BusinessHours>)]
    pub hours: Option<Option<BusinessHours>>,
    /// Overflow queue; `null` removes it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub overflow: Option<Option<String>>,
    /// Seconds a conversation may wait before it moves to `overflow`; `null` removes it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub timeout_secs: Option<Option<u64>>,
}

/// An agent's new status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `online`, `away` or `offline`.
    pub status: AgentStatus,
}

/// A list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T> {
    /// The records, by id.
    pub items: Vec<T>,
}

fn agent_not_found(id: &str) -> AppError {
    AppError::not_found("agent-not-found", format!("no agent `{id}`"))
}

fn queue_not_found(id: &str) -> AppError {
    AppError::not_found("queue-not-found", format!("no queue `{id}`"))
}

fn command<T: Serialize>(kind: &str, value: &T) -> Result<NewEvent, AppError> {
    let payload = serde_json::value::to_raw_value(value)
        .map_err(|e| AppError::bad_request("invalid-body", e.to_string()))?;
    Ok(NewEvent::input(kind, payload))
}

/// Every agent.
#[utoipa::path(get, path = "/v1/agents", tag = "team", responses((status = 200, body = Items<AgentRecord>)),
    security(("bearer" = [])))]
pub async fn list_agents(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Items<AgentRecord>>, AppError> {
    Ok(Json(Items { items: state.views.agents()? }))
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "team", params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = AgentRecord), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_agent(
    _caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AgentRecord>, AppError> {
    state.views.agent(&id)?.map(Json).ok_or_else(|| agent_not_found(&id))
}

/// Creates an agent (offline until it sets its status).
#[utoipa::path(post, path = "/v1/agents", tag = "team", request_body = AgentBody,
    responses((status = 201, body = AgentRecord), (status = 400, body = super::error::ErrorBody),
        (status = 409, description = "The id is taken or invalid", body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_agent(
    caller: Caller,
    State(state): State<AppState>,
    body: Result<Json<AgentBody>, JsonRejection>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    let id = body.id.clone().ok_or_else(|| AppError::bad_request("invalid-body", "`id` is required"))?;
    save_agent(&state, &caller, id, body, true).await.map(|a| (StatusCode::CREATED, Json(a)).into_response())
}

/// Changes an agent's name, skills, languages or capacity.
#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "team", request_body = AgentBody,
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = AgentRecord), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_agent(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<AgentBody>, JsonRejection>,
) -> Result<Json<AgentRecord>, AppError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    if body.id.as_ref().is_some_and(|new| *new != id) {
        return Err(AppError::bad_request("invalid-body", "an agent's `id` cannot change"));
    }
    if state.views.agent(&id)?.is_none() {
        return Err(agent_not_found(&id));
    }
    save_agent(&state, &caller, id, body, false).await.map(Json)
}

async fn save_agent(
    state: &AppState,
    caller: &Caller,
    id: String,
    body: AgentBody,
    create: bool,
) -> Result<AgentRecord, AppError> {
    let save = SaveAgent {
        id: id.clone(),
        create,
        name: body.name,
        skills: body.skills,
        languages: body.languages,
        capacity: body.capacity,
        by: caller.author(),
    };
    submit(state, command(commands::AGENT_SAVE, &save)?, "agent-refused").await?;
    state.views.agent(&id)?.ok_or_else(|| agent_not_found(&id))
}

/// Sets an agent online, away or offline (an event in the log).
#[utoipa::path(put, path = "/v1/agents/{id}/status", tag = "team", request_body = StatusBody,
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = AgentRecord), (status = 400, body = super::error::ErrorBody),
        (status = 403, description = "The key is bound to another agent", body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_status(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> Result<Json<AgentRecord>, AppError> {
    caller.require(Role::Agent)?;
    caller.act_as(&id)?;
    let Json(body) = body?;
    if state.views.agent(&id)?.is_none() {
        return Err(agent_not_found(&id));
    }
    let set = SetAgentStatus { id: id.clone(), status: body.status, by: caller.author() };
    submit(&state, command(commands::AGENT_STATUS, &set)?, "agent-refused").await?;
    state.views.agent(&id)?.map(Json).ok_or_else(|| agent_not_found(&id))
}

/// Every queue.
#[utoipa::path(get, path = "/v1/queues", tag = "team", responses((status = 200, body = Items<QueueRecord>)),
    security(("bearer" = [])))]
pub async fn list_queues(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Items<QueueRecord>>, AppError> {
    Ok(Json(Items { items: state.views.queues()? }))
}

/// One queue.
#[utoipa::path(get, path = "/v1/queues/{id}", tag = "team", params(("id" = String, Path, description = "Queue id")),
    responses((status = 200, body = QueueRecord), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_queue(
    _caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<QueueRecord>, AppError> {
    state.views.queue(&id)?.map(Json).ok_or_else(|| queue_not_found(&id))
}

/// The conversations waiting in a queue, first in line first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingLine {
    /// The queue.
    pub queue: String,
    /// How many wait.
    pub waiting: usize,
    /// The longest wait so far, ms (0 when nobody waits).
    pub longest_wait_ms: i64,
    /// The first 100 in line, each with its `queue_position` and `wait_ms`.
    pub items: Vec<super::conversations::ConversationView>,
}

/// Who waits in a queue, in the order agents will get them. Works for any queue
/// conversations were routed to, registered or not.
#[utoipa::path(get, path = "/v1/queues/{id}/waiting", tag = "team", params(("id" = String, Path, description = "Queue id")),
    responses((status = 200, body = WaitingLine)), security(("bearer" = [])))]
pub async fn waiting(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WaitingLine>, AppError> {
    caller.require(Role::Integration)?;
    let line = state.views.waiting_in(&id)?;
    let now = crate::log::now_ms();
    let longest_wait_ms = line.iter().filter_map(|c| super::conversations::waited(c, now)).max().unwrap_or(0);
    let waiting = line.len();
    let items = line
        .into_iter()
        .take(100)
        .enumerate()
        .map(|(i, c)| super::conversations::ConversationView {
            wait_ms: super::conversations::waited(&c, now),
            conversation: c,
            queue_position: Some(i + 1),
        })
        .collect();
    Ok(Json(WaitingLine { queue: id, waiting, longest_wait_ms, items }))
}

/// Creates a queue.
#[utoipa::path(post, path = "/v1/queues", tag = "team", request_body = QueueBody,
    responses((status = 201, body = QueueRecord), (status = 400, body = super::error::ErrorBody),
        (status = 409, description = "The id is taken or invalid, bad hours, unknown overflow queue",
            body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_queue(
    caller: Caller,
    State(state): State<AppState>,
    body: Result<Json<QueueBody>, JsonRejection>,
) -> Result<Response, AppError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    let id = body.id.clone().ok_or_else(|| AppError::bad_request("invalid-body", "`id` is required"))?;
    save_queue(&state, &caller, id, body, true).await.map(|q| (StatusCode::CREATED, Json(q)).into_response())
}

/// Changes a queue.
#[utoipa::path(patch, path = "/v1/queues/{id}", tag = "team", request_body = QueueBody,
    params(("id" = String, Path, description = "Queue id")),
    responses((status = 200, body = QueueRecord), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_queue(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<QueueBody>, JsonRejection>,
) -> Result<Json<QueueRecord>, AppError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    if body.id.as_ref().is_some_and(|new| *new != id) {
        return Err(AppError::bad_request("invalid-body", "a queue's `id` cannot change"));
    }
    if state.views.queue(&id)?.is_none() {
        return Err(queue_not_found(&id));
    }
    save_queue(&state, &caller, id, body, false).await.map(Json)
}

async fn save_queue(
    state: &AppState,
    caller: &Caller,
    id: String,
    body: QueueBody,
    create: bool,
) -> Result<QueueRecord, AppError> {
    let save = SaveQueue {
        id: id.clone(),
        create,
        name: body.name,
        skills: body.skills,
        priority: body.priority,
        hours: body.hours,
        overflow: body.overflow,
        timeout_secs: body.timeout_secs,
        by: caller.author(),
    };
    submit(state, command(commands::QUEUE_SAVE, &save)?, "queue-refused").await?;
    state.views.queue(&id)?.ok_or_else(|| queue_not_found(&id))
}
