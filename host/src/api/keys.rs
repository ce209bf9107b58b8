//! `/v1/admin/keys`: create, list and revoke API keys (admin role only), and `/v1/me`, the
//! caller's own key. A new key is shown once, in the response that creates it; only its hash
//! is stored.

use super::auth::{Caller, KeyRecord, Role};
use super::{AppError, AppState};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A label for humans.
    pub name: String,
    /// `integration`, `agent` or `admin`.
    pub role: Role,
    /// For an agent key: the agent it acts as (it must exist). The inbox signs such a key in
    /// as this agent; the key may only set this agent's status and act on conversations that
    /// wait or are this agent's.
    #[serde(default)]
    pub agent: Option<String>,
}

/// A created key.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key: shown only here, only once.
    pub key: String,
    /// Its record.
    pub record: KeyRecord,
}

/// The keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Key records (never the keys).
    pub items: Vec<KeyRecord>,
}

/// Creates a key.
#[utoipa::path(post, path = "/v1/admin/keys", tag = "admin", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    body: Result<Json<NewKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), AppError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    if body.name.trim().is_empty() || body.name.len() > 128 {
        return Err(AppError::bad_request("invalid-name", "name must be 1-128 characters"));
    }
    if let Some(agent) = &body.agent {
        if body.role != Role::Agent {
            return Err(AppError::bad_request(
                "agent-needs-agent-role",
                format!("only an `agent` key can be bound to an agent, not an `{:?}` key", body.role),
            ));
        }
        if state.views.agent(agent)?.is_none() {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "agent-not-found",
                format!("no agent `{agent}`: create it first (POST /v1/agents)"),
            ));
        }
    }
    let (key, record) = state.keys.create(body.name.trim(), body.role, body.agent.as_deref())?;
    tracing::info!(id = record.id, role = ?record.role, by = caller.key.id, "api key created");
    Ok((StatusCode::CREATED, Json(CreatedKey { key, record })))
}

/// Who a key is: the caller's own key record, without its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The key's id.
    pub id: String,
    /// Its label.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The agent it is bound to, if any.
    pub agent: Option<String>,
}

/// The caller's own key: its role and the agent it acts as (the inbox signs in with it).
#[utoipa::path(get, path = "/v1/me", tag = "admin",
    responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> Json<Me> {
    let key = caller.key;
    Json(Me { id: key.id, name: key.name, role: key.role, agent: key.agent })
}

/// Lists keys.
#[utoipa::path(get, path = "/v1/admin/keys", tag = "admin",
    responses((status = 200, body = KeyList), (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<KeyList>, AppError> {
    caller.require(Role::Admin)?;
    Ok(Json(KeyList { items: state.keys.list()? }))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/v1/admin/keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "Key id (the part after `seam_`)")),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require(Role::Admin)?;
    if id == caller.key.id {
        return Err(AppError::bad_request("cannot-revoke-self", "a key cannot revoke itself"));
    }
    if state.keys.revoke(&id)? {
        tracing::info!(id, by = caller.key.id, "api key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("key-not-found", format!("no key `{id}`")))
    }
}
