//! `/v1/routing/policy`: the active routing policy and its history; swap it (`PUT`, admin)
//! and roll it back (`POST .../rollback`, admin). A swap stores and loads the routers first,
//! then appends one command: the pipeline activates it between two inputs, so every
//! conversation is routed once, by the old policy or by the new one.

use super::auth::{Caller, Role};
use super::customers::submit;
use super::{AppError, AppState};
use crate::log::NewEvent;
use crate::manifest::Manifest;
use crate::pipeline::commands::{self, RollbackPolicy, SetPolicy};
use crate::routers::PinError;
use crate::runtime::PluginSource;
use crate::views::policy::{PolicyRecord, PolicySource, Stage};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;
use utoipa::ToSchema;

/// The active policy and the ones before it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyState {
    /// The active version; absent before any was activated (the config's chain applies).
    pub active: Option<PolicyRecord>,
    /// The newest 20 versions, newest first (the active one included).
    pub history: Vec<PolicyRecord>,
}

/// One router of a new policy: `plugin` (a bundled router, with optional `config`, or a
/// loaded one), `stored` (a version pinned before, `name@version#hash`), or an upload
/// (`manifest` text and `component` base64, with optional `config`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    /// A router by name.
    #[serde(default)]
    pub plugin: Option<String>,
    /// A pinned version by slot.
    #[serde(default)]
    pub stored: Option<String>,
    /// Manifest text (TOML), for an upload.
    #[serde(default)]
    pub manifest: Option<String>,
    /// Component bytes, base64, for an upload.
    #[serde(default)]
    pub component: Option<String>,
    /// Config values.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// A new policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// The routers, in order; `[]` stops routing.
    pub chain: Vec<StageBody>,
    /// Why, for the history.
    #[serde(default)]
    pub note: String,
}

/// A rollback.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// Why, for the history.
    #[serde(default)]
    pub note: String,
}

/// The outcome of a swap or rollback.
#[derive(Debug, Serialize, ToSchema)]
pub struct Swapped {
    /// The policy now active.
    pub active: PolicyRecord,
    /// From the request to the policy being active, µs (loading included).
    pub swap_us: u64,
}

fn pin_error(index: usize, e: PinError) -> AppError {
    let code = match e {
        PinError::Unknown(_) => "router-not-found",
        PinError::Store(..) => {
            return AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "router-not-stored", e.to_string());
        }
        _ => "invalid-router",
    };
    AppError::bad_request(code, format!("chain[{index}]: {e}"))
}

/// The active routing policy and its history.
#[utoipa::path(get, path = "/v1/routing/policy", tag = "routing",
    responses((status = 200, body = PolicyState)), security(("bearer" = [])))]
pub async fn get_policy(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<PolicyState>, AppError> {
    caller.require(Role::Agent)?;
    Ok(Json(PolicyState { active: state.views.active_policy()?, history: state.views.policies(20)? }))
}

/// Swaps the routing policy.
#[utoipa::path(put, path = "/v1/routing/policy", tag = "routing", request_body = PolicyBody,
    responses((status = 200, body = Swapped), (status = 400, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_policy(
    caller: Caller,
    State(state): State<AppState>,
    body: Result<Json<PolicyBody>, JsonRejection>,
) -> Result<Json<Swapped>, AppError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    let started = Instant::now();
    let stages = pin_chain(&state, body.chain).await?;
    let command = SetPolicy { stages, source: PolicySource::Api, note: body.note, by: caller.author() };
    swapped(&state, commands::POLICY_SET, &command, started).await
}

/// Stores and loads the routers of `chain` (each pinned to its version and config).
pub(super) async fn pin_chain(state: &AppState, chain: Vec<StageBody>) -> Result<Vec<Stage>, AppError> {
    let mut stages: Vec<Stage> = Vec::with_capacity(chain.len());
    for (i, stage) in chain.into_iter().enumerate() {
        let pinned = match (stage.plugin, stage.stored, stage.manifest, stage.component) {
            (Some(name), None, None, None) => {
                state.routers.resolve(&state.runtime, &name, &stage.config).await
            }
            (None, Some(slot), None, None) if stage.config.is_empty() => {
                state.routers.resolve(&state.runtime, &slot, &stage.config).await
            }
            (None, None, Some(manifest), Some(component)) => {
                let origin = format!("routing-policy upload chain[{i}]");
                let manifest = Manifest::parse(&manifest, std::path::Path::new(&origin))
                    .map_err(|e| AppError::bad_request("invalid-manifest", format!("chain[{i}]: {e}")))?;
                let wasm =
                    base64::engine::general_purpose::STANDARD.decode(component.trim()).map_err(|e| {
                        AppError::bad_request(
                            "invalid-component",
                            format!("chain[{i}].component is not base64: {e}"),
                        )
                    })?;
                let source = PluginSource { manifest, wasm: wasm.into(), origin };
                state.routers.pin(&state.runtime, source, &stage.config).await
            }
            _ => {
                return Err(AppError::bad_request(
                    "invalid-body",
                    format!(
                        "chain[{i}]: give `plugin` (with optional `config`), `stored`, or `manifest` and `component`"
                    ),
                ));
            }
        };
        stages.push(pinned.map_err(|e| pin_error(i, e))?);
    }
    Ok(stages)
}

/// Rolls the routing policy back to the version before the active one (as a new version).
#[utoipa::path(post, path = "/v1/routing/policy/rollback", tag = "routing", request_body = RollbackBody,
    responses((status = 200, body = Swapped), (status = 409, description = "Nothing to roll back to",
        body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn rollback(
    caller: Caller,
    State(state): State<AppState>,
    body: Option<Json<RollbackBody>>,
) -> Result<Json<Swapped>, AppError> {
    caller.require(Role::Admin)?;
    let started = Instant::now();
    let note = body.map(|Json(b)| b.note).unwrap_or_default();
    let command = RollbackPolicy { note, by: caller.author() };
    swapped(&state, commands::POLICY_ROLLBACK, &command, started).await
}

async fn swapped<T: Serialize>(
    state: &AppState,
    kind: &str,
    command: &T,
    started: Instant,
) -> Result<Json<Swapped>, AppError> {
    let payload = serde_json::value::to_raw_value(command)
        .map_err(|e| AppError::bad_request("invalid-body", e.to_string()))?;
    submit(state, NewEvent::input(kind, payload), "policy-refused").await?;
    let active = state.views.active_policy()?.ok_or_else(|| {
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "policy-missing",
            "the policy was activated but is not in the views",
        )
    })?;
    Ok(Json(Swapped { active, swap_us: started.elapsed().as_micros() as u64 }))
}
