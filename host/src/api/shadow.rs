//! `/v1/routing/shadow`: run a candidate policy beside the live one on live traffic (`PUT`,
//! admin), stop it (`DELETE`, admin), and read how its decisions differ (`GET`). The
//! candidate's routers are pinned like a policy's; its decisions are recorded in the log and
//! never applied.

use super::auth::{Caller, Role};
use super::customers::submit;
use super::routing::{PolicyBody, pin_chain};
use super::{AppError, AppState};
use crate::log::NewEvent;
use crate::pipeline::commands::{self, SetShadow};
use crate::views::whatif::ShadowRecord;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Which shadow run to read.
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
pub struct ShadowQuery {
    /// The run's version; absent: the newest run.
    pub version: Option<u32>,
}

/// A shadow run and its diff: the newest one, or the one asked for.
#[utoipa::path(get, path = "/v1/routing/shadow", tag = "routing", params(ShadowQuery),
    responses((status = 200, body = ShadowRecord), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_shadow(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<ShadowQuery>,
) -> Result<Json<ShadowRecord>, AppError> {
    caller.require(Role::Agent)?;
    let run = match query.version {
        Some(v) => state.views.shadow(v)?,
        None => state.views.latest_shadow()?,
    };
    run.map(Json).ok_or_else(|| match query.version {
        Some(v) => AppError::not_found("shadow-not-found", format!("no shadow run {v}")),
        None => AppError::not_found("shadow-not-found", "no shadow run was ever started"),
    })
}

/// Starts a shadow run of a candidate policy (replacing a running one).
#[utoipa::path(put, path = "/v1/routing/shadow", tag = "routing", request_body = PolicyBody,
    responses((status = 200, body = ShadowRecord), (status = 400, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_shadow(
    caller: Caller,
    State(state): State<AppState>,
    body: Result<Json<PolicyBody>, JsonRejection>,
) -> Result<Json<ShadowRecord>, AppError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    if body.chain.is_empty() {
        return Err(AppError::bad_request(
            "invalid-body",
            "`chain` is empty: name the candidate's routers (DELETE stops a shadow run)",
        ));
    }
    let stages = pin_chain(&state, body.chain).await?;
    set(&state, SetShadow { stages, note: body.note, by: caller.author() }).await
}

/// Stops the running shadow run; its diff stays readable.
#[utoipa::path(delete, path = "/v1/routing/shadow", tag = "routing",
    responses((status = 200, body = ShadowRecord), (status = 409, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn stop_shadow(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ShadowRecord>, AppError> {
    caller.require(Role::Admin)?;
    set(&state, SetShadow { stages: Vec::new(), note: String::new(), by: caller.author() }).await
}

async fn set(state: &AppState, command: SetShadow) -> Result<Json<ShadowRecord>, AppError> {
    let payload = serde_json::value::to_raw_value(&command)
        .map_err(|e| AppError::bad_request("invalid-body", e.to_string()))?;
    submit(state, NewEvent::input(commands::SHADOW_SET, payload), "shadow-refused").await?;
    state.views.latest_shadow()?.map(Json).ok_or_else(|| {
        AppError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "shadow-missing",
            "the shadow run was recorded but is not in the views",
        )
    })
}
