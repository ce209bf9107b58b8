//! `/v1/admin/plugins`: list, inspect, load or swap, enable, unload. Admin role only.

use super::auth::{Caller, Role};
use super::{AppError, AppState};
use crate::manifest::Manifest;
use crate::runtime::{Plugin, PluginSource, Slot};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub(super) fn router(_state: AppState) -> Router<AppState> {
    Router::new()
        .route("/plugins", get(list))
        .route("/plugins/{name}", get(show).put(put).delete(remove))
        .route("/plugins/{name}/enable", post(enable))
}

fn describe(name: &str, slot: &Slot) -> Value {
    let plugin = slot.current();
    json!({
        "name": name,
        "version": plugin.manifest().version,
        "kind": plugin.manifest().kind,
        "description": plugin.manifest().description,
        "hash": plugin.hash,
        "origin": plugin.origin,
        "capabilities": plugin.manifest().capabilities,
        "limits": plugin.manifest().limits,
        "channel": plugin.channel(),
        "load": plugin.stats,
        "disabled": slot.disabled(),
        "consecutive_failures": slot.consecutive_failures(),
    })
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    caller.require(Role::Admin)?;
    let plugins: Vec<Value> = state.runtime.slots().iter().map(|(n, s)| describe(n, s)).collect();
    Ok(Json(json!({ "plugins": plugins })))
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AppError> {
    caller.require(Role::Admin)?;
    let slot = state.runtime.slot(&name).ok_or_else(|| {
        AppError::not_found("plugin-not-found", format!("no plugin named `{name}` is loaded"))
    })?;
    Ok(Json(describe(&name, &slot)))
}

/// Body of `PUT /v1/admin/plugins/{name}`: either a directory on the server (holding
/// `seam.toml` and the component) or the manifest text and the component in base64.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutPlugin {
    /// A plugin directory on the server.
    path: Option<PathBuf>,
    /// Manifest text (with `component`).
    manifest: Option<String>,
    /// Component bytes, base64 (with `manifest`).
    component: Option<String>,
    /// Config values by key.
    #[serde(default)]
    config: BTreeMap<String, String>,
}

async fn put(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<PutPlugin>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    caller.require(Role::Admin)?;
    let Json(body) = body?;
    let source = match (&body.path, &body.manifest, &body.component) {
        (Some(path), None, None) => {
            let canonical = path
                .canonicalize()
                .map_err(|e| AppError::bad_request("invalid-path", format!("{}: {e}", path.display())))?;
            if let Some(roots) = &state.plugin_roots
                && !roots.iter().any(|r| canonical.starts_with(r))
            {
                return Err(AppError::new(
                    StatusCode::FORBIDDEN,
                    "path-not-allowed",
                    format!("{} is outside the plugin directories this server loads from", path.display()),
                ));
            }
            // Load what was checked, not the path again (a symlink could change between).
            PluginSource::from_dir(&canonical)?
        }
        (None, Some(manifest), Some(component)) => {
            let origin = format!("admin-upload:{name}");
            let manifest = Manifest::parse(manifest, std::path::Path::new(&origin))
                .map_err(crate::runtime::LoadError::from)?;
            let wasm = base64::engine::general_purpose::STANDARD.decode(component.trim()).map_err(|e| {
                AppError::bad_request("invalid-component", format!("field `component` is not base64: {e}"))
            })?;
            PluginSource { manifest, wasm: wasm.into(), origin }
        }
        _ => {
            return Err(AppError::bad_request(
                "invalid-body",
                "give either `path`, or both `manifest` and `component` (base64)",
            ));
        }
    };
    if source.manifest.name != name {
        return Err(AppError::bad_request(
            "name-mismatch",
            format!("URL names `{name}` but the manifest's name is `{}`", source.manifest.name),
        ));
    }
    let started = Instant::now();
    let (plugin, previous): (Arc<Plugin>, Option<Arc<Plugin>>) =
        state.runtime.load(source, &body.config).await?;
    let swap_us = started.elapsed().as_micros() as u64;
    let status = if previous.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        status,
        Json(json!({
            "name": name,
            "version": plugin.manifest().version,
            "hash": plugin.hash,
            "replaced": previous.map(|p| json!({ "version": p.manifest().version, "hash": p.hash })),
            "load": plugin.stats,
            "swap_us": swap_us,
        })),
    ))
}

async fn enable(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, AppError> {
    caller.require(Role::Admin)?;
    if !state.runtime.enable(&name) {
        return Err(AppError::not_found("plugin-not-found", format!("no plugin named `{name}` is loaded")));
    }
    Ok(Json(json!({ "name": name, "enabled": true })))
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require(Role::Admin)?;
    if !state.runtime.unload(&name) {
        return Err(AppError::not_found("plugin-not-found", format!("no plugin named `{name}` is loaded")));
    }
    Ok(StatusCode::NO_CONTENT)
}
