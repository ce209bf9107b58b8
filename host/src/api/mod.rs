//! The HTTP surface: `/healthz`, `/metrics`, and the admin API for plugins
//! (`/v1/admin/plugins...`). Every `/v1` route needs an API key with a role ([`auth`]).

pub mod auth;
mod error;
mod plugins;

pub use error::AppError;

use crate::runtime::Runtime;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::path::PathBuf;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The plugin runtime.
    pub runtime: Runtime,
    /// API keys.
    pub keys: auth::ApiKeys,
    /// Directories the admin API may load plugins from by path (`None`: any).
    pub plugin_roots: Option<Vec<PathBuf>>,
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/v1/admin", plugins::router(state.clone()))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let plugins = state.runtime.slots();
    let disabled: Vec<&str> =
        plugins.iter().filter(|(_, s)| s.disabled().is_some()).map(|(n, _)| n.as_str()).collect();
    axum::Json(serde_json::json!({
        "status": "ok",
        "plugins": plugins.len(),
        "disabled": disabled,
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.runtime.metrics().encode(),
    )
}
