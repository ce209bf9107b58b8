//! The first-party plugins from `plugins/`, compiled for wasm32-wasip2 by the build script
//! (`host/build/main.rs`) and embedded in the binary with their manifests.

use crate::manifest::Manifest;
use crate::runtime::{LoadError, PluginSource};
use std::path::Path;

/// One embedded plugin.
#[derive(Debug, Clone, Copy)]
pub struct BundledPlugin {
    /// Its directory name under `plugins/`.
    pub name: &'static str,
    /// Its `seam.toml`.
    pub manifest: &'static str,
    /// Its component.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

impl BundledPlugin {
    /// The plugin as a source to load.
    pub fn source(&self) -> Result<PluginSource, LoadError> {
        let origin = format!("bundled:{}", self.name);
        let manifest = Manifest::parse(self.manifest, Path::new(&origin))?;
        Ok(PluginSource { manifest, wasm: self.wasm.into(), origin })
    }

    /// The bundled plugin named `name` (its manifest name or directory name).
    pub fn find(name: &str) -> Option<&'static BundledPlugin> {
        BUNDLED.iter().find(|p| p.name == name)
    }
}
