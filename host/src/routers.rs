//! Router versions pinned by routing policies. A policy set through the API names exact
//! versions (`name@version#hash`, the hash covering the component and its config), so a
//! rollback gets back exactly what ran before. Each pinned version is kept under
//! `data/routers/` and loaded again at start, so the active policy survives restarts and
//! upgrades of the bundled plugins.

use crate::bundled::BundledPlugin;
use crate::manifest::PluginKind;
use crate::runtime::{LoadError, PluginSource, Runtime};
use crate::views::policy::Stage;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a router version could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// It is not a router.
    #[error("plugin `{0}` is a {1}, not a router")]
    NotRouter(String, PluginKind),
    /// It did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// It could not be stored.
    #[error("cannot store router {0}: {1}")]
    Store(String, std::io::Error),
    /// No such router.
    #[error("no router `{0}`: name a bundled router, a stored version, or upload one")]
    Unknown(String),
}

/// Where pinned router versions are kept (none: in memory only, for tests and benches).
#[derive(Debug, Clone, Default)]
pub struct RouterStore {
    dir: Option<PathBuf>,
}

/// The slot of `source` with `config`: `name@version#` + 12 hex digits of BLAKE3 over the
/// component and the config.
pub fn slot_key(source: &PluginSource, config: &BTreeMap<String, String>) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&source.wasm);
    for (k, v) in config {
        hasher.update(&(k.len() as u64).to_le_bytes()).update(k.as_bytes());
        hasher.update(&(v.len() as u64).to_le_bytes()).update(v.as_bytes());
    }
    let hash = hasher.finalize().to_hex();
    format!("{}@{}#{}", source.manifest.name, source.manifest.version, &hash[..12])
}

impl RouterStore {
    /// A store under `dir` (created on first use).
    pub fn new(dir: Option<PathBuf>) -> Self {
        RouterStore { dir }
    }

    /// Loads `source` with `config` under its pinned slot (stored first, unless it is
    /// there already) and returns the stage naming it.
    pub async fn pin(
        &self,
        runtime: &Runtime,
        source: PluginSource,
        config: &BTreeMap<String, String>,
    ) -> Result<Stage, PinError> {
        let manifest = source.manifest.clone();
        if manifest.kind != PluginKind::Router {
            return Err(PinError::NotRouter(manifest.name, manifest.kind));
        }
        let slot = slot_key(&source, config);
        let stage = |hash: String| Stage {
            slot: slot.clone(),
            plugin: manifest.name.clone(),
            version: manifest.version.clone(),
            hash,
        };
        if let Some(existing) = runtime.slot(&slot) {
            return Ok(stage(existing.current().hash.clone()));
        }
        let wasm = source.wasm.clone();
        let plugin = runtime.prepare(source, config).await?;
        if let Some(dir) = &self.dir {
            save(&dir.join(dir_name(&slot)), &slot, &manifest, &wasm, config)
                .map_err(|e| PinError::Store(slot.clone(), e))?;
        }
        let hash = plugin.hash.clone();
        runtime.install_as(&slot, plugin);
        Ok(stage(hash))
    }

    /// The stage for `name`: a stored (pinned) slot, a bundled router pinned with `config`,
    /// or (with no config) a loaded router followed by name.
    pub async fn resolve(
        &self,
        runtime: &Runtime,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Stage, PinError> {
        if name.contains('#') {
            let slot = runtime.slot(name).ok_or_else(|| PinError::Unknown(name.to_owned()))?;
            let plugin = slot.current();
            return Ok(Stage {
                slot: name.to_owned(),
                plugin: plugin.manifest().name.clone(),
                version: plugin.manifest().version.clone(),
                hash: plugin.hash.clone(),
            });
        }
        if let Some(bundled) = BundledPlugin::find(name) {
            return self.pin(runtime, bundled.source()?, config).await;
        }
        match runtime.slot(name) {
            Some(slot) if config.is_empty() => {
                let plugin = slot.current();
                if plugin.manifest().kind != PluginKind::Router {
                    return Err(PinError::NotRouter(name.to_owned(), plugin.manifest().kind));
                }
                Ok(Stage {
                    slot: name.to_owned(),
                    plugin: name.to_owned(),
                    version: plugin.manifest().version.clone(),
                    hash: plugin.hash.clone(),
                })
            }
            _ => Err(PinError::Unknown(name.to_owned())),
        }
    }

    /// Loads every stored version under its slot; one that fails is logged and skipped.
    pub async fn load_all(&self, runtime: &Runtime) {
        let Some(dir) = &self.dir else { return };
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if let Err(e) = load_one(runtime, &path).await {
                tracing::error!(dir = %path.display(), error = %e, "stored router version not loaded");
            }
        }
    }
}

fn dir_name(slot: &str) -> String {
    slot.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

fn save(
    dir: &Path,
    slot: &str,
    manifest: &crate::manifest::Manifest,
    wasm: &[u8],
    config: &BTreeMap<String, String>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let text = toml::to_string(manifest).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(&manifest.component), wasm)?;
    std::fs::write(dir.join("config.json"), serde_json::to_vec(config)?)?;
    std::fs::write(dir.join("seam.toml"), text)?;
    // Written last: a directory without it is an interrupted save and is skipped.
    std::fs::write(dir.join("slot"), slot)
}

async fn load_one(runtime: &Runtime, dir: &Path) -> Result<(), String> {
    let slot = std::fs::read_to_string(dir.join("slot")).map_err(|e| format!("slot: {e}"))?;
    let config: BTreeMap<String, String> = serde_json::from_slice(
        &std::fs::read(dir.join("config.json")).map_err(|e| format!("config.json: {e}"))?,
    )
    .map_err(|e| format!("config.json: {e}"))?;
    let source = PluginSource::from_dir(dir).map_err(|e| e.to_string())?;
    let plugin = runtime.prepare(source, &config).await.map_err(|e| e.to_string())?;
    runtime.install_as(slot.trim(), plugin);
    Ok(())
}
