//! `seam serve`: open the data directory, start the runtime, load the bundled plugins, any
//! in the plugin directory and the configured channels, open the event log and views,
//! start the pipeline, make sure an admin key exists, and serve HTTP.

use crate::api::{self, AppState, auth::ApiKeys, auth::Role};
use crate::bundled::{BUNDLED, BundledPlugin};
use crate::channels::{Channel, Channels};
use crate::config::{ChannelConfig, SeamConfig};
use crate::delivery::{Delivery, DeliveryOptions};
use crate::log::{EventLog, SledLog, SledLogOptions};
use crate::metrics::Metrics;
use crate::pipeline::decide::Context;
use crate::pipeline::identity::Normalizer;
use crate::pipeline::{Processor, Progress};
use crate::routers::RouterStore;
use crate::runtime::{PluginSource, Runtime, RuntimeOptions};
use crate::views::Views;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Settings of `seam serve`; every field has a zero-config default.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where the database and the artifact cache live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Extra plugin directories to load at start (each subdirectory with a `seam.toml`).
    pub plugin_dir: Option<PathBuf>,
    /// Skip the bundled plugins.
    pub no_bundled: bool,
    /// PEM files of extra certificate authorities trusted for plugins' outbound https.
    pub extra_ca: Vec<PathBuf>,
    /// The config file (channels, identity rules...); `None`: zero-config defaults.
    pub config: Option<PathBuf>,
    /// Page cache of the views database, in MiB ([`DEFAULT_CACHE_MB`]). Raise it for large
    /// views: reads that miss it go to the operating system's file cache.
    pub cache_mb: u64,
    /// Page cache of the log database (log, keys, settings, plugins' key-value stores),
    /// in MiB ([`DEFAULT_LOG_CACHE_MB`]).
    pub log_cache_mb: u64,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            data_dir: PathBuf::from("seam-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            plugin_dir: None,
            no_bundled: false,
            extra_ca: Vec::new(),
            config: None,
            cache_mb: DEFAULT_CACHE_MB,
            log_cache_mb: DEFAULT_LOG_CACHE_MB,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory or database could not be opened.
    #[error("data directory {0}: {1}")]
    Data(PathBuf, String),
    /// The runtime could not start.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::StartError),
    /// The API keys could not be set up.
    #[error(transparent)]
    Keys(#[from] crate::api::auth::KeyError),
    /// An `--extra-ca` file could not be read.
    #[error("extra CA {0}: {1}")]
    ExtraCa(PathBuf, String),
    /// The config file is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The event log could not be opened.
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    /// The views could not be opened.
    #[error(transparent)]
    Views(#[from] crate::views::ViewError),
    /// The views could not be brought to the current layout.
    #[error("preparing the views: {0}")]
    Pipeline(#[from] crate::pipeline::PipelineError),
    /// The listener could not bind.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// A thread could not be started.
    #[error("cannot start thread {0}: {1}")]
    Thread(String, std::io::Error),
}

/// A started host: runtime, keys, router; not yet listening.
pub struct Host {
    /// The app state handlers share.
    pub state: AppState,
    /// The admin key created on this start, to be shown once.
    pub new_admin_key: Option<String>,
    /// The secret of the zero-config `webhook` channel, when it was created on this start.
    pub new_webhook_secret: Option<String>,
    /// The outbound delivery worker (stop it with [`Delivery::shutdown`] so that sends
    /// under way are finished and recorded).
    pub delivery: Option<Delivery>,
}

/// Opens everything `seam serve` needs and loads plugins. Plugins that fail to load are
/// logged and skipped: one bad plugin never keeps the host from starting.
pub async fn start(options: &ServeOptions) -> Result<Host, ServeError> {
    let data = &options.data_dir;
    std::fs::create_dir_all(data).map_err(|e| ServeError::Data(data.clone(), e.to_string()))?;
    let open = |name: &str, cache_mb| {
        open_db(&data.join(name), cache_mb).map_err(|e| ServeError::Data(data.clone(), e.to_string()))
    };
    let db = open("db", options.log_cache_mb)?;
    let views_db = open("views", options.cache_mb)?;
    let config = match &options.config {
        Some(file) => SeamConfig::from_file(file)?,
        None => SeamConfig::default(),
    };
    let Loaded { runtime, routers, roots, channels, new_webhook_secret } =
        load_plugins(options, &db, &config).await?;
    let keys = ApiKeys::open(&db)?;
    let mut new_admin_key = None;
    if let Ok(key) = std::env::var("SEAM_ADMIN_KEY") {
        if keys.verify(&key).is_none() {
            keys.insert(&key, "SEAM_ADMIN_KEY", Role::Admin)?;
        }
    } else if !keys.has_admin()? {
        let (key, _) = keys.create("first admin", Role::Admin, None)?;
        new_admin_key = Some(key);
    }

    let log: Arc<dyn EventLog> = Arc::new(SledLog::open(&db, SledLogOptions::default())?);
    let views = Views::open(&views_db, "views")?;
    let normalizer = Normalizer::new(&config.identity);
    let progress = start_pipeline(&config, &runtime, &channels, log.clone(), views.clone())?;
    let delivery = Delivery::start(
        runtime.clone(),
        log.clone(),
        views.clone(),
        progress.clone(),
        channels.clone(),
        DeliveryOptions::default(),
    );
    let state = AppState::new(api::Shared {
        runtime,
        keys,
        plugin_roots: Some(roots),
        log,
        views,
        progress,
        channels,
        normalizer,
        webchat: Default::default(),
        routers,
    });
    Ok(Host { state, new_admin_key, new_webhook_secret, delivery: Some(delivery) })
}

/// What [`load_plugins`] loaded.
pub struct Loaded {
    /// The runtime, with every plugin loaded.
    pub runtime: Runtime,
    /// Router versions pinned by routing policies (loaded).
    pub routers: RouterStore,
    /// Directories the admin API may load plugins from by path.
    pub roots: Vec<PathBuf>,
    /// The configured channels (or the zero-config `webhook` channel).
    pub channels: Channels,
    /// The secret of the zero-config `webhook` channel, when it was created now.
    pub new_webhook_secret: Option<String>,
}

/// Loads the plugins `seam serve` runs: the bundled ones, the stored router versions, the
/// plugin directory, `[router.config]` and the channels' connectors. Plugins that fail to
/// load are logged and skipped.
pub async fn load_plugins(
    options: &ServeOptions,
    db: &sled::Db,
    config: &SeamConfig,
) -> Result<Loaded, ServeError> {
    let data = &options.data_dir;
    let mut extra_tls_roots = Vec::new();
    for file in &options.extra_ca {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let certs = CertificateDer::pem_file_iter(file)
            .map_err(|e| ServeError::ExtraCa(file.clone(), e.to_string()))?;
        for cert in certs {
            extra_tls_roots.push(cert.map_err(|e| ServeError::ExtraCa(file.clone(), e.to_string()))?);
        }
    }
    let runtime_options =
        RuntimeOptions { cache_dir: Some(data.join("cache")), extra_tls_roots, ..RuntimeOptions::default() };
    let runtime = Runtime::new(runtime_options, db.clone(), Metrics::default())?;

    if !options.no_bundled {
        for bundled in BUNDLED {
            match bundled.source() {
                Ok(source) => load_logged(&runtime, source, &BTreeMap::new()).await,
                Err(e) => {
                    tracing::error!(plugin = bundled.name, error = %e, "bundled plugin manifest is invalid")
                }
            }
        }
    }
    let routers = RouterStore::new(Some(data.join("routers")));
    routers.load_all(&runtime).await;
    let mut roots = Vec::new();
    if let Some(dir) = &options.plugin_dir {
        load_dir(&runtime, dir).await;
        if let Ok(canonical) = dir.canonicalize() {
            roots.push(canonical);
        }
    }

    for (name, table) in &config.router.config {
        let Some(bundled) = BundledPlugin::find(name) else {
            tracing::error!(
                plugin = name,
                "[router.config] takes config for bundled routers only; put a config.toml beside a plugin directory"
            );
            continue;
        };
        match (bundled.source(), resolve_config(table)) {
            (Ok(source), Ok(values)) => load_logged(&runtime, source, &values).await,
            (Err(e), _) => tracing::error!(plugin = name, error = %e, "bundled plugin manifest is invalid"),
            (_, Err(e)) => tracing::error!(plugin = name, error = %e, "router config is invalid"),
        }
    }
    let settings = db.open_tree("settings").map_err(|e| ServeError::Data(data.clone(), e.to_string()))?;
    let (channel_configs, new_webhook_secret) = if config.channels.is_empty() {
        default_channel(&settings).map_err(|e| ServeError::Data(data.clone(), e))?
    } else {
        (config.channels.clone(), None)
    };
    let channels = Channels::default();
    for channel in &channel_configs {
        match load_channel(&runtime, channel).await {
            Ok(loaded) => channels.insert(loaded),
            Err(e) => tracing::error!(channel = channel.id, error = %e, "channel not loaded"),
        }
    }

    Ok(Loaded { runtime, routers, roots, channels, new_webhook_secret })
}

/// Default of [`ServeOptions::cache_mb`]: the page cache of the views database, in MiB
/// (sled's own default is 1 GiB). View reads at 100,000 customers stay well under 1 ms at
/// p99 with it (48 MiB measured ~25% faster at p99, docs/benchmarks.md, "Memory").
pub const DEFAULT_CACHE_MB: u64 = 16;

/// Default of [`ServeOptions::log_cache_mb`], in MiB. The log is written at its end and
/// read there by the pipeline, so a small cache holds what is hot; 4 MiB instead of 16 took
/// ~15 MiB off `seam serve`'s peak RSS under the inbound benchmark (docs/benchmarks.md,
/// "The memory peak").
pub const DEFAULT_LOG_CACHE_MB: u64 = 4;

/// Opens a sled database with seam's settings.
///
/// Two databases live in the data directory: `db` (the event log, keys, settings, plugin
/// key-value stores), flushed to disk before every acknowledgement, and `views`, which is
/// never fsynced on the hot path: the views are derived from the log and carry the cursor
/// of the last input they applied in the same atomic batch, so after a crash they resume
/// from a consistent point and re-apply the durable decisions after it.
/// Each gets its own page cache of `cache_mb` MiB.
pub fn open_db(path: &Path, cache_mb: u64) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache_mb.saturating_mul(1 << 20))
        .mode(sled::Mode::HighThroughput)
        .open()
}

/// Starts the processor on its own task.
pub fn start_pipeline(
    config: &SeamConfig,
    runtime: &Runtime,
    channels: &Channels,
    log: Arc<dyn EventLog>,
    views: Views,
) -> Result<Progress, ServeError> {
    crate::pipeline::prepare_views(log.as_ref(), &views)?;
    let chain = config.router.chain();
    for name in &chain {
        match runtime.slot(name).map(|s| s.current().manifest().kind) {
            Some(crate::manifest::PluginKind::Router) => {}
            Some(kind) => {
                tracing::error!(plugin = name, %kind, "router chain names a plugin that is not a router")
            }
            None => tracing::error!(plugin = name, "router chain names a plugin that is not loaded"),
        }
    }
    let context = Context::new(config, Some(runtime.clone()), &chain, channels.clone());
    let (processor, progress) = Processor::new(log.clone(), views.clone(), context)?;
    run_on_own_thread("seam-pipeline", processor.run())?;
    tokio::spawn(crate::pipeline::clock::run(
        log,
        views,
        progress.clone(),
        std::time::Duration::from_millis(500),
    ));
    Ok(progress)
}

/// Runs `task` on a thread of its own, with a single-threaded runtime, until it ends or the
/// calling runtime shuts down.
///
/// Why: the processor writes views and reads the log synchronously (sled), in stretches of
/// milliseconds. On a runtime worker those stretches hold up the webhooks queued behind them
/// on that worker; on a thread of its own, the OS shares the cores between it and the
/// workers instead.
fn run_on_own_thread(
    name: &str,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // A task on the calling runtime holds `alive`; when that runtime shuts down the task is
    // dropped, and so is `alive`, which ends the thread's task too.
    let (alive, gone) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _alive = alive;
        std::future::pending::<()>().await
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Thread(name.into(), e))?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    () = task => {}
                    _ = gone => {}
                }
            })
        })
        .map_err(|e| ServeError::Thread(name.into(), e))?;
    Ok(())
}

/// The zero-config channel: `webhook`, the bundled generic connector, with a secret made on
/// first start and kept in the database.
fn default_channel(settings: &sled::Tree) -> Result<(Vec<ChannelConfig>, Option<String>), String> {
    let (secret, created) = match settings.get("webhook-secret").map_err(|e| e.to_string())? {
        Some(s) => (String::from_utf8_lossy(&s).into_owned(), false),
        None => {
            let mut bytes = [0u8; 24];
            getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
            let secret = hex::encode(bytes);
            settings.insert("webhook-secret", secret.as_bytes()).map_err(|e| e.to_string())?;
            settings.flush().map_err(|e| e.to_string())?;
            (secret, true)
        }
    };
    let mut config = toml::Table::new();
    config.insert("secret".into(), toml::Value::String(secret.clone()));
    let channel = ChannelConfig {
        id: "webhook".into(),
        plugin: "webhook-connector".into(),
        config,
        http: None,
        smtp: None,
        rate_limit: None,
    };
    Ok((vec![channel], created.then_some(secret)))
}

/// Loads a channel's connector under the channel's id.
pub async fn load_channel(runtime: &Runtime, channel: &ChannelConfig) -> Result<Channel, String> {
    let mut source = match BundledPlugin::find(&channel.plugin) {
        Some(bundled) => bundled.source().map_err(|e| e.to_string())?,
        None => PluginSource::from_dir(Path::new(&channel.plugin)).map_err(|e| {
            format!("plugin `{}` is neither a bundled plugin nor a plugin directory: {e}", channel.plugin)
        })?,
    };
    let plugin = source.manifest.name.clone();
    if source.manifest.kind != crate::manifest::PluginKind::Connector {
        return Err(format!("plugin `{plugin}` is a {}, not a connector", source.manifest.kind));
    }
    source.manifest.name = channel.id.clone();
    if let Some(http) = &channel.http {
        // The operator's list replaces the manifest's: checked like a manifest's at load.
        source.manifest.capabilities.http = Some(http.clone());
        source.manifest.capabilities.http_rules().map_err(|(i, m)| format!("http[{i}]: {m}"))?;
    }
    if let Some(smtp) = &channel.smtp {
        source.manifest.capabilities.smtp = Some(smtp.clone());
        source.manifest.capabilities.smtp_rules().map_err(|(i, m)| format!("smtp[{i}]: {m}"))?;
    }
    let values = resolve_config(&channel.config).map_err(|e| format!("config: {e}"))?;
    let (loaded, _) = runtime.load(source, &values).await.map_err(|e| e.to_string())?;
    let (kind, identity_kind) = loaded.channel().map_or_else(
        || (plugin.clone(), plugin.clone()),
        |info| (info.kind.clone(), info.identity_kind.clone()),
    );
    Ok(Channel { id: channel.id.clone(), plugin, kind, identity_kind, rate_limit: channel.rate_limit })
}

async fn load_logged(runtime: &Runtime, source: PluginSource, config: &BTreeMap<String, String>) {
    let origin = source.origin.clone();
    if let Err(e) = runtime.load(source, config).await {
        tracing::error!(origin, error = %e, "plugin not loaded");
    }
}

/// Loads every plugin directory under `dir`, with optional `config.toml` values beside each
/// manifest (`key = "value"`, or `key = { env = "VAR" }` / `{ file = "path" }` for secrets).
pub async fn load_dir(runtime: &Runtime, dir: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot read plugin directory");
            return;
        }
    };
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.join("seam.toml").is_file()).collect();
    dirs.sort();
    for plugin_dir in dirs {
        let config = match read_plugin_config(&plugin_dir.join("config.toml")) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(dir = %plugin_dir.display(), error = %e, "plugin not loaded");
                continue;
            }
        };
        match PluginSource::from_dir(&plugin_dir) {
            Ok(source) => load_logged(runtime, source, &config).await,
            Err(e) => tracing::error!(dir = %plugin_dir.display(), error = %e, "plugin not loaded"),
        }
    }
}

/// Reads operator config values for one plugin; a missing file means no values.
pub fn read_plugin_config(file: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    resolve_config(&table).map_err(|e| format!("{}: {e}", file.display()))
}

/// Resolves config values: strings as given, `{ env = "VAR" }` from the environment,
/// `{ file = "path" }` from a file (trailing newline removed), other scalars as text.
pub fn resolve_config(table: &toml::Table) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let at = |m: String| format!("key `{key}`: {m}");
        let resolved = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Table(t) => {
                match (t.get("env").and_then(|v| v.as_str()), t.get("file").and_then(|v| v.as_str())) {
                    (Some(var), None) => std::env::var(var)
                        .map_err(|_| at(format!("environment variable {var} is not set")))?,
                    (None, Some(path)) => std::fs::read_to_string(path)
                        .map(|s| s.trim_end().to_owned())
                        .map_err(|e| at(format!("cannot read {path}: {e}")))?,
                    _ => {
                        return Err(at(
                            "expected a string, or a table with exactly one of `env` or `file`".into()
                        ));
                    }
                }
            }
            other => other.to_string(),
        };
        values.insert(key.clone(), resolved);
    }
    Ok(values)
}

/// Serves `host` on `listener` (see [`bind`]) until Ctrl-C or SIGTERM; then finishes the
/// requests and the sends under way (their outcomes recorded in the log) before returning.
pub async fn serve(host: Host, listener: tokio::net::TcpListener) -> Result<(), ServeError> {
    // Only for the error message, should serving fail.
    let listen = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let app = api::router(host.state);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            shutdown_signal().await;
            tracing::info!("shutting down");
        })
        .await
        .map_err(|e| ServeError::Listen(listen, e));
    if let Some(delivery) = host.delivery {
        delivery.shutdown().await;
    }
    served
}

/// Binds `listen`: done before announcing the host, so "running" means connections are
/// accepted, and a port in use is reported before anything else.
pub async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(listen).await.map_err(|e| ServeError::Listen(listen, e))
}

/// Resolves on Ctrl-C, or on SIGTERM (how service managers and containers stop a process).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
