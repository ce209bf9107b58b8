//! Loading one plugin version, in phases: read -> check it is a component -> compile (or
//! take from the cache) -> check world and capabilities -> resolve config -> pre-link.
//! The result, [`Plugin`], is immutable and shared by every call made to that version.

use super::bindings::{channel, routing};
use super::cache::CacheOutcome;
use super::error::LoadError;
use super::instances::{self, ReadyPool};
use super::state::{HostState, PluginEnv, ResolvedConfig};
use super::{Runtime, caps};
use crate::manifest::{Manifest, PluginKind};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, InstancePre, types::ComponentItem};

/// A plugin to load: its manifest and component bytes.
#[derive(Clone)]
pub struct PluginSource {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The component bytes.
    pub wasm: Arc<[u8]>,
    /// Where it came from, for messages (`plugins/x/seam.toml`, `bundled`, `admin upload`).
    pub origin: String,
}

impl PluginSource {
    /// Reads `dir/seam.toml` and the component it names.
    pub fn from_dir(dir: &Path) -> Result<Self, LoadError> {
        let manifest_path = dir.join("seam.toml");
        let manifest = Manifest::from_file(&manifest_path)?;
        let file = dir.join(&manifest.component);
        let wasm =
            std::fs::read(&file).map_err(|source| LoadError::ReadComponent { file: file.clone(), source })?;
        Ok(PluginSource { manifest, wasm: wasm.into(), origin: file.display().to_string() })
    }

    /// Reads a manifest file and a component file given separately.
    pub fn from_files(manifest: &Path, component: &Path) -> Result<Self, LoadError> {
        let manifest = Manifest::from_file(manifest)?;
        let wasm = std::fs::read(component)
            .map_err(|source| LoadError::ReadComponent { file: component.to_owned(), source })?;
        Ok(PluginSource { manifest, wasm: wasm.into(), origin: component.display().to_string() })
    }
}

/// The export a plugin's kind calls, looked up once per version.
pub enum Exports {
    /// A connector's `channel` interface.
    Connector(channel::GuestIndices),
    /// A router's `routing` interface.
    Router(routing::GuestIndices),
}

/// Timings of a load, for logs and the benchmark.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LoadStats {
    /// Compile or cache load time.
    #[serde(with = "micros")]
    pub compile: Duration,
    /// Linking and export lookup.
    #[serde(with = "micros")]
    pub link: Duration,
    /// Whether the cache was used.
    #[serde(serialize_with = "outcome")]
    pub cache: CacheOutcome,
}

mod micros {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }
}

fn outcome<S: serde::Serializer>(o: &CacheOutcome, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match o {
        CacheOutcome::Hit => "hit",
        CacheOutcome::Compiled => "compiled",
        CacheOutcome::Repaired => "repaired",
    })
}

/// One loaded, immutable plugin version.
pub struct Plugin {
    /// The environment calls share (manifest, config, kv namespace, HTTP rules).
    pub env: Arc<PluginEnv>,
    /// The compiled component.
    pub component: Component,
    /// Pre-linked instance factory.
    pub pre: InstancePre<HostState>,
    /// The export to call.
    pub exports: Exports,
    /// BLAKE3 of the component bytes.
    pub hash: String,
    /// Where it came from.
    pub origin: String,
    /// How long loading took.
    pub stats: LoadStats,
    /// For connectors: what `describe` returned at load.
    pub channel: OnceLock<channel::ChannelInfo>,
    /// Fresh instances waiting for a call (see `instances.rs`).
    pub ready: ReadyPool,
    /// How many fresh instances to keep ready.
    pub ready_target: usize,
}

impl Plugin {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.env.manifest
    }

    /// For connectors: what `describe` returned when the plugin was loaded.
    pub fn channel(&self) -> Option<&channel::ChannelInfo> {
        self.channel.get()
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.env.manifest.name, self.env.manifest.version)
    }
}

/// Checks that `wasm` is a component (not a core module, not garbage).
pub fn check_component_bytes(wasm: &[u8], origin: &str) -> Result<(), LoadError> {
    use wasmtime::wasmparser::Parser;
    let not =
        |detail: &str| LoadError::NotAComponent { origin: origin.to_owned(), detail: detail.to_owned() };
    if Parser::is_component(wasm) {
        Ok(())
    } else if Parser::is_core_wasm(wasm) {
        Err(not(
            "it is a core WebAssembly module; build with `--target wasm32-wasip2` (or run `wasm-tools component new`)",
        ))
    } else if wasm.len() < 8 {
        Err(not("the file is too short to be WebAssembly"))
    } else {
        Err(not("the file does not start with the WebAssembly magic bytes"))
    }
}

/// Names of a component's imports and exports.
pub fn interface_names(component: &Component, engine: &wasmtime::Engine) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
    let exports = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    (imports, exports)
}

/// Functions a component's exported instance offers, for `seam plugin inspect`.
pub fn exported_functions(component: &Component, engine: &wasmtime::Engine) -> Vec<(String, Vec<String>)> {
    component
        .component_type()
        .exports(engine)
        .map(|(name, item)| {
            let funcs = match item.ty {
                ComponentItem::ComponentInstance(inst) => inst
                    .exports(engine)
                    .filter(|(_, i)| matches!(i.ty, ComponentItem::ComponentFunc(_)))
                    .map(|(n, _)| n.to_owned())
                    .collect(),
                _ => Vec::new(),
            };
            (name.to_owned(), funcs)
        })
        .collect()
}

fn resolve_config(
    manifest: &Manifest,
    given: &BTreeMap<String, String>,
) -> Result<ResolvedConfig, LoadError> {
    let err = |key: &str, message: String| LoadError::Config {
        plugin: manifest.name.clone(),
        key: key.to_owned(),
        message,
    };
    if let Some(unknown) = given.keys().find(|k| !manifest.config.contains_key(*k)) {
        return Err(err(unknown, "not declared in the plugin's manifest ([config.<key>])".into()));
    }
    let mut resolved = ResolvedConfig::default();
    for (key, decl) in &manifest.config {
        let value = given.get(key).cloned().or_else(|| decl.default.clone());
        match value {
            Some(v) if decl.secret => {
                resolved.secrets.insert(key.clone(), v);
            }
            Some(v) => {
                resolved.plain.insert(key.clone(), v);
            }
            None if decl.required => return Err(err(key, "required but not set and has no default".into())),
            None => {}
        }
    }
    Ok(resolved)
}

impl Runtime {
    /// Loads `source` with operator `config` values into a [`Plugin`], with its ready
    /// instances made, without installing it.
    pub async fn prepare(
        &self,
        source: PluginSource,
        config: &BTreeMap<String, String>,
    ) -> Result<Arc<Plugin>, LoadError> {
        let PluginSource { manifest, wasm, origin } = source;
        let name = manifest.name.clone();
        check_component_bytes(&wasm, &origin)?;
        let config = resolve_config(&manifest, config)?;

        let started = Instant::now();
        let (component, cache) = {
            let engine = self.engine.clone();
            let cache = self.cache.clone();
            let wasm = wasm.clone();
            tokio::task::spawn_blocking(move || cache.load(&engine, &wasm))
                .await
                .map_err(|e| LoadError::Compile { plugin: name.clone(), message: e.to_string() })?
                .map_err(|e| LoadError::Compile { plugin: name.clone(), message: format!("{e:#}") })?
        };
        let compile = started.elapsed();

        let linked = Instant::now();
        let (imports, exports) = interface_names(&component, &self.engine);
        let expected = manifest.kind.export_interface();
        if !exports.iter().any(|e| e == expected) {
            return Err(LoadError::WrongWorld {
                plugin: name,
                kind: manifest.kind.to_string(),
                expected: expected.to_owned(),
                found: if exports.is_empty() { "nothing".into() } else { exports.join(", ") },
            });
        }
        caps::check_imports(&manifest, imports.iter().map(String::as_str))
            .map_err(|message| LoadError::Capability { plugin: name.clone(), message })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link { plugin: name.clone(), message: format!("{e:#}") })?;
        let link_err =
            |e: wasmtime::Error| LoadError::Link { plugin: name.clone(), message: format!("{e:#}") };
        let exports = match manifest.kind {
            PluginKind::Connector => Exports::Connector(channel::GuestIndices::new(&pre).map_err(link_err)?),
            PluginKind::Router => Exports::Router(routing::GuestIndices::new(&pre).map_err(link_err)?),
        };
        let kv = match &manifest.capabilities.kv {
            Some(grant) => Some(
                self.kv
                    .namespace(&name, grant.quota_bytes)
                    .map_err(|e| LoadError::Storage { plugin: name.clone(), message: e.to_string() })?,
            ),
            None => None,
        };
        // Validated with the manifest; an error here would be a manifest built by hand.
        let http_rules = manifest
            .capabilities
            .http_rules()
            .map_err(|(i, m)| LoadError::Capability {
                plugin: name.clone(),
                message: format!("capabilities.http[{i}]: {m}"),
            })?
            .into();
        let smtp_rules = manifest
            .capabilities
            .smtp_rules()
            .map_err(|(i, m)| LoadError::Capability {
                plugin: name.clone(),
                message: format!("capabilities.smtp[{i}]: {m}"),
            })?
            .into();
        let env = Arc::new(PluginEnv {
            name: name.as_str().into(),
            manifest,
            config,
            kv,
            http_rules,
            smtp_rules,
            tls: self.tls.clone(),
            extra_roots: self.extra_roots.clone(),
        });
        let stats = LoadStats { compile, link: linked.elapsed(), cache };
        let plugin = Arc::new(Plugin {
            env,
            component,
            pre,
            exports,
            hash: blake3::hash(&wasm).to_hex().to_string(),
            origin,
            stats,
            channel: OnceLock::new(),
            ready: ReadyPool::default(),
            ready_target: self.options.ready_instances,
        });
        if matches!(plugin.exports, Exports::Connector(_)) {
            let info = self
                .call_describe(&plugin)
                .await
                .map_err(|e| LoadError::Describe { plugin: name.clone(), source: Box::new(e) })?;
            let _ = plugin.channel.set(info);
        }
        // Warm before install, so a swapped-in version's first calls are as fast as any.
        instances::fill(&self.engine, &plugin).await;
        Ok(plugin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_bytes_are_recognised() {
        let core = b"\0asm\x01\0\0\0";
        let err = check_component_bytes(core, "x.wasm").unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        let err = check_component_bytes(b"hello world", "y.wasm").unwrap_err().to_string();
        assert!(err.starts_with("y.wasm: not a WebAssembly component"), "{err}");
        assert!(check_component_bytes(b"\0asm\x0d\0\x01\0", "c.wasm").is_ok());
    }

    #[test]
    fn config_resolution_applies_defaults_and_refuses_unknown_and_missing() {
        let m = Manifest::parse(
            r#"name = "p"
version = "1.0.0"
kind = "router"
wit = "0.1.0"
component = "p.wasm"
[config.a]
default = "1"
[config.token]
secret = true
required = true
"#,
            Path::new("seam.toml"),
        )
        .unwrap();
        let given: BTreeMap<String, String> = [("token".to_owned(), "s3cret".to_owned())].into();
        let r = resolve_config(&m, &given).unwrap();
        assert_eq!(r.plain["a"], "1");
        assert_eq!(r.secrets["token"], "s3cret");
        assert!(!r.plain.contains_key("token"), "secrets are not plain values");
        let missing = resolve_config(&m, &BTreeMap::new()).unwrap_err().to_string();
        assert!(missing.contains("config `token`"), "{missing}");
        let unknown: BTreeMap<String, String> = [("b".to_owned(), "x".to_owned())].into();
        assert!(resolve_config(&m, &unknown).unwrap_err().to_string().contains("config `b`"));
    }
}
