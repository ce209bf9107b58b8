//! Shared helpers of the end-to-end tests: fresh runtimes, plugin sources with manifest
//! variants, route contexts.

use seam::manifest::Manifest;
use seam::metrics::Metrics;
use seam::runtime::{BreakerConfig, PluginSource, Runtime, RuntimeOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use seam_sdk::testing::{message_context, routing, types, webhook};

/// The hostile test plugin's component.
pub const HOSTILE_WASM: &str = env!("SEAM_TEST_WASM_HOSTILE");
/// The example plugin's component and manifest.
pub const VIP_WASM: &str = env!("SEAM_TEST_WASM_VIP_ROUTER");
/// The example plugin's manifest.
pub const VIP_MANIFEST: &str = env!("SEAM_TEST_MANIFEST_VIP_ROUTER");

/// A runtime with a temporary kv store, an artifact cache in `cache` (if any) and a
/// breaker threshold of `threshold` with a long cooldown.
pub fn runtime(cache: Option<&Path>, threshold: u32) -> Runtime {
    let db = sled::Config::new().temporary(true).open().expect("temporary sled");
    let options = RuntimeOptions {
        cache_dir: cache.map(Path::to_path_buf),
        breaker: BreakerConfig { threshold, cooldown: Duration::from_secs(3600) },
        ..RuntimeOptions::default()
    };
    Runtime::new(options, db, Metrics::default()).expect("runtime starts")
}

/// The hostile plugin under `name` with the manifest body `extra` (capabilities, limits)
/// appended to the identity lines.
pub fn hostile(name: &str, extra: &str) -> PluginSource {
    let text = format!(
        "name = \"{name}\"\nversion = \"0.1.0\"\nkind = \"router\"\nwit = \"0.1.0\"\ncomponent = \"hostile.wasm\"\n{extra}\n[config.tag]\ndefault = \"{name}\"\n"
    );
    let manifest = Manifest::parse(&text, Path::new(&format!("test:{name}"))).expect("test manifest parses");
    let wasm = std::fs::read(HOSTILE_WASM).expect("hostile component is built");
    PluginSource { manifest, wasm: wasm.into(), origin: format!("test:{name}") }
}

/// A scratch directory under the target dir, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The reason of a decision, or the error text.
pub fn reason(result: &Result<Result<routing::Decision, String>, seam::runtime::CallError>) -> String {
    match result {
        Ok(Ok(d)) => d.reason.clone(),
        Ok(Err(e)) => format!("plugin error: {e}"),
        Err(e) => format!("call error: {e}"),
    }
}

/// A local HTTP server on 127.0.0.1 answering `GET /` with `hello from stand-in`,
/// `GET /slow` with `slow` after 500 ms, and recording JSON bodies sent to `POST /` (answered
/// with `{"id": "provider-<id>"}`); returns its port and the recorded bodies.
pub async fn stand_in() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    use axum::routing::get;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let record = seen.clone();
    let app = axum::Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                "slow"
            }),
        )
        .route(
            "/",
            get(|| async { "hello from stand-in" }).post(move |body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    let value: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    let id = value["id"].as_str().unwrap_or_default().to_owned();
                    record.lock().unwrap().push(value);
                    axum::Json(serde_json::json!({ "id": format!("provider-{id}") }))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind stand-in");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

pub mod browser;
pub mod host;
pub mod providers;
pub mod smtp;
pub mod standin;

/// A provider fixture from `tests/fixtures/<path>`, parsed as JSON.
pub fn fixture(path: &str) -> serde_json::Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("fixture {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", file.display()))
}

/// API state over `db` with `runtime` and `keys`: a sled event log, views and a running
/// pipeline with the default config (no channels).
pub fn app_state(runtime: Runtime, keys: seam::api::auth::ApiKeys, db: &sled::Db) -> seam::api::AppState {
    use seam::log::{EventLog, SledLog, SledLogOptions};
    let config = seam::config::SeamConfig::default();
    let log: std::sync::Arc<dyn EventLog> =
        std::sync::Arc::new(SledLog::open(db, SledLogOptions::default()).expect("log opens"));
    let views = seam::views::Views::open(db, "views").expect("views open");
    let channels = seam::channels::Channels::default();
    let progress = seam::server::start_pipeline(&config, &runtime, &channels, log.clone(), views.clone())
        .expect("pipeline starts");
    seam::api::AppState::new(seam::api::Shared {
        runtime,
        keys,
        plugin_roots: None,
        log,
        views,
        progress,
        channels,
        normalizer: seam::pipeline::identity::Normalizer::new(&config.identity),
        webchat: Default::default(),
        routers: Default::default(),
    })
}
