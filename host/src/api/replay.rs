//! `POST /v1/routing/replay` (admin): what a candidate policy would have decided over a past
//! window of the log, beside what happened. Nothing is applied or sent: the views are
//! rebuilt into a scratch database that is deleted afterwards.

use super::auth::{Caller, Role};
use super::routing::{StageBody, pin_chain};
use super::{AppError, AppState};
use crate::config::SeamConfig;
use crate::pipeline::decide::Context;
use crate::pipeline::whatif::{self, Replayed, Window};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

/// A candidate and the window to run it over.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// The candidate's routers, in order (as for `PUT /v1/routing/policy`).
    pub chain: Vec<StageBody>,
    /// First input offset (inclusive).
    #[serde(default)]
    pub from_offset: Option<u64>,
    /// Last input offset (inclusive).
    #[serde(default)]
    pub to_offset: Option<u64>,
    /// Inputs appended at or after this time, ms since the Unix epoch.
    #[serde(default)]
    pub since: Option<i64>,
    /// Inputs appended at or before this time, ms since the Unix epoch.
    #[serde(default)]
    pub until: Option<i64>,
}

/// Replays a candidate policy over a window of the log.
#[utoipa::path(post, path = "/v1/routing/replay", tag = "routing", request_body = ReplayBody,
    responses((status = 200, body = Replayed), (status = 400, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay(
    caller: Caller,
    State(state): State<AppState>,
    body: Result<Json<ReplayBody>, JsonRejection>,
) -> Result<Json<Replayed>, AppError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    if body.chain.is_empty() {
        return Err(AppError::bad_request("invalid-body", "`chain` is empty: name the candidate's routers"));
    }
    let window = Window {
        from_offset: body.from_offset,
        to_offset: body.to_offset,
        since: body.since,
        until: body.until,
    };
    window.check().map_err(|e| AppError::bad_request("invalid-window", e))?;
    let slots: Vec<String> = pin_chain(&state, body.chain).await?.into_iter().map(|s| s.slot).collect();
    let ctx = Context::new(&SeamConfig::default(), Some(state.runtime.clone()), &[], state.channels.clone());
    let log = state.log.clone();
    // The scratch rebuild reads and writes sled synchronously: keep it off the API's workers.
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        handle.block_on(whatif::replay(log.as_ref(), &ctx, &slots, window, |_, _| {}))
    })
    .await
    .map_err(|e| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "replay-panicked", e.to_string()))?;
    outcome
        .map(Json)
        .map_err(|e| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "replay-failed", e.to_string()))
}
