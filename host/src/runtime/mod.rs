//! The plugin runtime: one engine, a registry of plugins by name, and the calls into them.
//!
//! Phases of a plugin's life:
//! 1. **load** ([`Runtime::prepare`], `plugin.rs`): manifest -> component check -> compile or
//!    cached artifact -> world and capability checks -> config -> `InstancePre`;
//! 2. **install** ([`Runtime::install`]): the version becomes current atomically; calls in
//!    flight keep the version they started with (an `Arc`), which is dropped after them;
//! 3. **call** (`call.rs`): a fresh store and instance per call from the pooling allocator,
//!    so no state survives from one call to the next, unless the manifest's
//!    `limits.calls-per-instance` lets a successful call's instance serve again; limits on
//!    memory, CPU, wall time and output; failures feed the plugin's breaker.

// Generated from the WIT, which carries the documentation.
#[allow(missing_docs)]
pub mod bindings;
pub mod breaker;
pub mod cache;
mod call;
pub mod caps;
pub mod engine;
pub mod error;
pub mod instances;
pub mod plugin;
pub mod state;

pub use breaker::{BreakerConfig, Tripped};
pub use engine::{EngineOptions, MAX_MEMORY_MB};
pub use error::{CallError, LoadError};
pub use plugin::{Plugin, PluginSource};

use crate::manifest::PluginKind;
use crate::metrics::{Metrics, PluginMetrics};
use arc_swap::ArcSwap;
use breaker::Breaker;
use cache::ArtifactCache;
use caps::kv::KvStore;
use state::HostState;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

/// How to build a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled artifacts are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Instance pool size.
    pub engine: EngineOptions,
    /// Breaker settings for every plugin.
    pub breaker: BreakerConfig,
    /// Fresh instances kept ready per plugin version (0: instantiate on every call).
    pub ready_instances: usize,
    /// Certificate authorities trusted for plugins' outbound https, besides the Mozilla
    /// roots (e.g. an internal CA).
    pub extra_tls_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: None,
            engine: EngineOptions::default(),
            breaker: BreakerConfig::default(),
            ready_instances: 2,
            extra_tls_roots: Vec::new(),
        }
    }
}

/// A plugin name and its current version, breaker and metrics.
pub struct Slot {
    current: ArcSwap<Plugin>,
    breaker: Breaker,
    metrics: PluginMetrics,
}

impl Slot {
    /// The version new calls get.
    pub fn current(&self) -> Arc<Plugin> {
        self.current.load_full()
    }

    /// Why the plugin is disabled, if it is.
    pub fn disabled(&self) -> Option<Tripped> {
        self.breaker.state()
    }

    /// Consecutive failed calls.
    pub fn consecutive_failures(&self) -> u32 {
        self.breaker.consecutive_failures()
    }
}

/// The runtime shared by the whole host (cheap to clone).
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: Arc<ArtifactCache>,
    kv: KvStore,
    metrics: Metrics,
    options: RuntimeOptions,
    slots: Arc<RwLock<HashMap<String, Arc<Slot>>>>,
    recycler: instances::Recycler,
    tls: Arc<rustls::ClientConfig>,
    extra_roots: Arc<[Vec<u8>]>,
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The engine or linker could not be built.
    #[error("cannot build the wasm engine: {0}")]
    Engine(String),
    /// The cache directory could not be created.
    #[error("cannot create the artifact cache: {0}")]
    Cache(#[from] std::io::Error),
    /// The TLS settings for outbound https are unusable (a bad extra root certificate).
    #[error("outbound TLS: {0}")]
    Tls(#[from] rustls::Error),
}

impl Runtime {
    /// Builds the engine, the linker with every host import, and the cache. `kv_db` holds
    /// the plugins' key-value namespaces.
    pub fn new(options: RuntimeOptions, kv_db: sled::Db, metrics: Metrics) -> Result<Self, StartError> {
        let engine = engine::build(&options.engine).map_err(|e| StartError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::<HostState>::new(&engine);
        let link = |r: wasmtime::Result<()>| r.map_err(|e| StartError::Engine(format!("{e:#}")));
        // WASI with an empty context: Rust guests import wasi:cli and wasi:io even unused.
        link(wasmtime_wasi::p2::add_to_linker_async(&mut linker))?;
        link(wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))?;
        link(bindings::Host_::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s))?;
        let cache = ArtifactCache::new(&engine, options.cache_dir.clone())?;
        let recycler = instances::Recycler::start(engine.clone())?;
        let tls = caps::outbound::tls_config(&options.extra_tls_roots)?;
        let extra_roots = options.extra_tls_roots.iter().map(|c| c.to_vec()).collect();
        Ok(Runtime {
            recycler,
            tls,
            extra_roots,
            engine,
            linker: Arc::new(linker),
            cache: Arc::new(cache),
            kv: KvStore::new(kv_db),
            metrics,
            options,
            slots: Arc::default(),
        })
    }

    /// The engine (for `seam plugin inspect` and benchmarks).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Loads `source` and makes it the current version of its name: atomically, with calls
    /// in flight finishing on the version they started with. Returns the replaced version.
    pub async fn load(
        &self,
        source: PluginSource,
        config: &BTreeMap<String, String>,
    ) -> Result<(Arc<Plugin>, Option<Arc<Plugin>>), LoadError> {
        let plugin = self.prepare(source, config).await?;
        let previous = self.install(plugin.clone());
        Ok((plugin, previous))
    }

    /// Makes `plugin` the current version of its name; returns the one it replaced.
    pub fn install(&self, plugin: Arc<Plugin>) -> Option<Arc<Plugin>> {
        let name = plugin.manifest().name.clone();
        self.install_as(&name, plugin)
    }

    /// Makes `plugin` the current version of slot `name`, which may differ from the
    /// manifest's name: a routing policy pins router versions under their own slots
    /// (`name@version#hash`), beside the one that follows the name.
    pub fn install_as(&self, name: &str, plugin: Arc<Plugin>) -> Option<Arc<Plugin>> {
        let name = name.to_owned();
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let previous = match slots.get(&name) {
            Some(slot) => {
                let old = slot.current.swap(plugin.clone());
                slot.breaker.reset();
                slot.metrics.disabled.set(0);
                Some(old)
            }
            None => {
                let metrics = self.metrics.plugin(&name);
                slots.insert(
                    name.clone(),
                    Arc::new(Slot {
                        current: ArcSwap::new(plugin.clone()),
                        breaker: Breaker::new(self.options.breaker),
                        metrics,
                    }),
                );
                None
            }
        };
        if let Some(slot) = slots.get(&name) {
            slot.metrics.loads.inc();
        }
        tracing::info!(
            plugin = %plugin.id(),
            replaced = previous.as_ref().map(|p| p.id()),
            cache = ?plugin.stats.cache,
            compile_us = plugin.stats.compile.as_micros() as u64,
            "plugin installed"
        );
        previous
    }

    /// Removes a plugin; calls in flight finish. Returns whether it was loaded.
    pub fn unload(&self, name: &str) -> bool {
        let removed = self.slots.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        if removed.is_some() {
            tracing::info!(plugin = name, "plugin unloaded");
        }
        removed.is_some()
    }

    /// The slot of `name`.
    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Every loaded plugin, by name.
    pub fn slots(&self) -> Vec<(String, Arc<Slot>)> {
        let mut all: Vec<_> = self
            .slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Closes a plugin's breaker (admin action). Returns whether the plugin exists.
    pub fn enable(&self, name: &str) -> bool {
        match self.slot(name) {
            Some(slot) => {
                slot.breaker.reset();
                slot.metrics.disabled.set(0);
                tracing::info!(plugin = name, "plugin re-enabled by admin");
                true
            }
            None => false,
        }
    }

    fn slot_of_kind(&self, name: &str, kind: PluginKind) -> Result<(Arc<Slot>, Arc<Plugin>), CallError> {
        let not_found = || CallError::NotFound { plugin: name.to_owned(), kind: kind.to_string() };
        let slot = self.slot(name).ok_or_else(not_found)?;
        let plugin = slot.current();
        if plugin.manifest().kind != kind {
            return Err(not_found());
        }
        Ok((slot, plugin))
    }
}
