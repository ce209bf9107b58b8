//! The HTTP surface: the inbox web UI at `/`, channel webhooks, the `/v1` API (customers, conversations, events,
//! admin), `/healthz`, `/metrics` and `/openapi.json`. Every `/v1` route except webhooks
//! needs an API key with a role ([`auth`]); webhooks are authenticated by their connector.

pub mod auth;
mod conversations;
mod customers;
mod error;
mod events;
mod inbox;
mod keys;
mod messages;
pub mod openapi;
mod plugins;
mod replay;
mod routing;
mod shadow;
mod team;
pub mod webchat;
mod webhooks;

pub use error::AppError;

use crate::channels::Channels;
use crate::log::EventLog;
use crate::pipeline::Progress;
use crate::pipeline::identity::Normalizer;
use crate::runtime::Runtime;
use crate::views::Views;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use std::path::PathBuf;
use std::sync::Arc;
use utoipa::OpenApi;

/// What handlers share: a handle to [`Shared`]. axum clones the state for every request,
/// so it is one reference count, not one per field (the field-by-field clone and drop were
/// ~2% of a webhook's CPU, with allocations for the paths it holds).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state handlers share.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of the host that handlers use.
pub struct Shared {
    /// The plugin runtime.
    pub runtime: Runtime,
    /// API keys.
    pub keys: auth::ApiKeys,
    /// Directories the admin API may load plugins from by path (`None`: any).
    pub plugin_roots: Option<Vec<PathBuf>>,
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// The views.
    pub views: Views,
    /// How far the pipeline got.
    pub progress: Progress,
    /// Configured channels.
    pub channels: Channels,
    /// Identity normalization, for lookups.
    pub normalizer: Normalizer,
    /// The shared log tail of the web chat streams.
    pub webchat: webchat::Hub,
    /// Router versions pinned by routing policies.
    pub routers: crate::routers::RouterStore,
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route(
            "/channels/{channel}/webhook",
            post(webhooks::webhook).get(webhooks::webhook).options(webchat::preflight),
        )
        .route("/channels/{channel}/webchat/stream", get(webchat::stream))
        .route("/channels/{channel}/webchat/history", get(webchat::history))
        .route("/channels/{channel}/webhook/{*rest}", post(webhooks::webhook).get(webhooks::webhook))
        .route("/customers", get(customers::find_customers))
        .route("/customers/{id}", get(customers::get_customer).patch(customers::patch_customer))
        .route("/customers/{id}/timeline", get(customers::timeline))
        .route("/customers/{id}/merge", post(customers::merge))
        .route("/customers/{id}/unmerge", post(customers::unmerge))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{id}", get(conversations::get_conversation).patch(conversations::update))
        .route("/conversations/{id}/messages", get(conversations::messages).post(messages::reply))
        .route("/messages", post(messages::send_message))
        .route("/messages/{id}", get(messages::get_message))
        .route("/messages/{id}/redrive", post(messages::redrive))
        .route("/dead-letters", get(messages::dead_letters))
        .route("/agents", get(team::list_agents).post(team::create_agent))
        .route("/agents/{id}", get(team::get_agent).patch(team::patch_agent))
        .route("/agents/{id}/status", put(team::set_status))
        .route("/queues", get(team::list_queues).post(team::create_queue))
        .route("/queues/{id}", get(team::get_queue).patch(team::patch_queue))
        .route("/queues/{id}/waiting", get(team::waiting))
        .route("/routing/policy", get(routing::get_policy).put(routing::put_policy))
        .route("/routing/policy/rollback", post(routing::rollback))
        .route("/routing/replay", post(replay::replay))
        .route("/routing/shadow", get(shadow::get_shadow).put(shadow::put_shadow).delete(shadow::stop_shadow))
        .route("/me", get(keys::me))
        .route("/events", get(events::list))
        .route("/events/stream", get(events::stream))
        .nest(
            "/admin",
            Router::new()
                .route("/keys", get(keys::list).post(keys::create))
                .route("/keys/{id}", axum::routing::delete(keys::revoke))
                .merge(plugins::router(state.clone())),
        );
    Router::new()
        .route("/", get(inbox::page))
        .route("/inbox.js", get(inbox::script))
        .route("/healthz", get(healthz))
        .route("/webchat.js", get(webchat::widget))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .nest("/v1", v1)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::not_found("route-not-found", format!("no route {}", uri.path()))
}

async fn openapi_json() -> impl IntoResponse {
    axum::Json(openapi::ApiDoc::openapi())
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let plugins = state.runtime.slots();
    let disabled: Vec<&str> =
        plugins.iter().filter(|(_, s)| s.disabled().is_some()).map(|(n, _)| n.as_str()).collect();
    let head = state.log.head();
    let applied = state.progress.applied();
    // Whether an input waits past the pipeline's cursor (decisions after it do not count).
    let caught_up = state
        .log
        .read_origin(applied, 1, crate::log::Origin::Input)
        .map(|(inputs, _)| inputs.is_empty())
        .unwrap_or(false);
    axum::Json(serde_json::json!({
        "status": "ok",
        "plugins": plugins.len(),
        "disabled": disabled,
        "log": { "head": head, "applied": applied, "caught_up": caught_up },
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.runtime.metrics().encode(),
    )
}
