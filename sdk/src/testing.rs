//! A test harness that loads a compiled plugin into the real Seam runtime, in-process, so
//! a plugin author tests without a server. Native builds only.
//!
//! ```ignore
//! use seam_sdk::testing::{Harness, message_context};
//!
//! #[test]
//! fn routes_problems_to_support() {
//!     // Builds this crate for wasm32-wasip2 and loads it with its seam.toml.
//!     let plugin = Harness::build(env!("CARGO_MANIFEST_DIR"), &[]).unwrap();
//!     let decision = plugin.route(&message_context("У меня проблема")).unwrap().unwrap();
//!     assert_eq!(decision.queue.as_deref(), Some("support"));
//! }
//! ```
//!
//! The types here are the host's view of the WIT types ([`channel`], [`routing`],
//! [`types`]), the same the runtime passes to the plugin.

use seam::metrics::Metrics;
use seam::runtime::{CallError, PluginSource, Runtime, RuntimeOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use seam::runtime::bindings::{channel, routing, types};
pub use seam::samples::message_context;

/// One plugin loaded into a private runtime.
pub struct Harness {
    tokio: tokio::runtime::Runtime,
    runtime: Runtime,
    name: String,
}

/// Why the harness could not load the plugin.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

fn err(e: impl std::fmt::Display) -> HarnessError {
    HarnessError(e.to_string())
}

/// The directory nested wasm builds use: `$CARGO_TARGET_DIR/wasm`, or `target/wasm` of the
/// workspace containing `crate_dir` (the nearest ancestor with a `Cargo.lock`).
pub fn wasm_target_dir(crate_dir: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("wasm");
    }
    let root = crate_dir.ancestors().find(|d| d.join("Cargo.lock").is_file()).unwrap_or(crate_dir);
    root.join("target").join("wasm")
}

/// Builds the plugin crate in `crate_dir` for wasm32-wasip2; returns its manifest and
/// component paths.
pub fn build_plugin(crate_dir: impl AsRef<Path>) -> Result<(PathBuf, PathBuf), HarnessError> {
    let dir = crate_dir.as_ref();
    let krate = seam_plugin_build::read_crate(dir).map_err(err)?;
    let built =
        seam_plugin_build::build(dir, &wasm_target_dir(dir), std::slice::from_ref(&krate)).map_err(err)?;
    let (krate, wasm) = built.into_iter().next().ok_or_else(|| err("nothing was built"))?;
    Ok((krate.manifest, wasm))
}

impl Harness {
    /// Builds the plugin crate in `crate_dir` and loads it with `config` values.
    pub fn build(crate_dir: impl AsRef<Path>, config: &[(&str, &str)]) -> Result<Self, HarnessError> {
        let (manifest, wasm) = build_plugin(crate_dir)?;
        Self::load(&manifest, &wasm, config)
    }

    /// Loads an already built component with its manifest and `config` values.
    pub fn load(manifest: &Path, wasm: &Path, config: &[(&str, &str)]) -> Result<Self, HarnessError> {
        let source = PluginSource::from_files(manifest, wasm).map_err(err)?;
        Self::load_source(source, config)
    }

    /// Loads a plugin source with `config` values.
    pub fn load_source(source: PluginSource, config: &[(&str, &str)]) -> Result<Self, HarnessError> {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(err)?;
        let db = sled::Config::new().temporary(true).open().map_err(err)?;
        let runtime = Runtime::new(RuntimeOptions::default(), db, Metrics::default()).map_err(err)?;
        let name = source.manifest.name.clone();
        let config: BTreeMap<String, String> =
            config.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        tokio.block_on(runtime.load(source, &config)).map_err(err)?;
        Ok(Harness { tokio, runtime, name })
    }

    /// The runtime, for anything the helpers below do not cover.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Runs a future on the harness's async runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.tokio.block_on(f)
    }

    /// What a connector's `describe` returned when it loaded.
    pub fn describe(&self) -> Option<channel::ChannelInfo> {
        self.runtime.slot(&self.name).and_then(|s| s.current().channel().cloned())
    }

    /// Calls a router's `route`.
    pub fn route(
        &self,
        context: &routing::RouteContext,
    ) -> Result<Result<routing::Decision, String>, CallError> {
        self.block_on(self.runtime.route(&self.name, context))
    }

    /// Calls a connector's `handle-webhook`.
    pub fn handle_webhook(
        &self,
        request: &channel::HttpRequest,
    ) -> Result<Result<channel::WebhookOutcome, channel::WebhookError>, CallError> {
        self.block_on(self.runtime.handle_webhook(&self.name, request))
    }

    /// Calls a connector's `send`.
    pub fn send(&self, message: &channel::OutboundMessage) -> Result<channel::DeliveryResult, CallError> {
        self.block_on(self.runtime.send(&self.name, message))
    }

    /// Calls a connector's `poll`.
    pub fn poll(&self, cursor: Option<&str>) -> Result<Result<channel::PollOutcome, String>, CallError> {
        self.block_on(self.runtime.poll(&self.name, cursor))
    }
}

/// A webhook request with `method`, `headers` and `body`.
pub fn webhook(method: &str, headers: &[(&str, &str)], body: &[u8]) -> channel::HttpRequest {
    channel::HttpRequest {
        method: method.into(),
        path: "/".into(),
        query: String::new(),
        headers: headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())).collect(),
        body: body.to_vec(),
    }
}
