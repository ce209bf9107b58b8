//! Compiled components cached on disk.
//!
//! Key: BLAKE3 of the component bytes, the engine's compatibility hash (wasmtime version,
//! compiler settings, CPU features) and this host's version. Each entry is
//! `[32-byte BLAKE3 of the artifact][artifact]`; an entry whose checksum does not match,
//! or that wasmtime refuses, is recompiled and rewritten, never trusted. Entries are
//! written to a temporary file and renamed, so a crash leaves no half-written entry.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a valid cache entry.
    Hit,
    /// Compiled, and the entry written.
    Compiled,
    /// A cache entry was corrupt or stale; compiled again and rewritten.
    Repaired,
}

/// The artifact cache of one engine.
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: [u8; 32],
}

/// Feeds `Hash` output into BLAKE3.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let bytes = self.0.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    /// A cache in `dir`, or none (always compile) if `dir` is `None`.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
        }
        let mut h = Blake3Hasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        h.0.update(env!("CARGO_PKG_VERSION").as_bytes());
        Ok(ArtifactCache { dir, engine_key: *h.0.finalize().as_bytes() })
    }

    /// The cache file for `wasm`.
    pub fn entry_path(&self, wasm: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut h = blake3::Hasher::new();
        h.update(&self.engine_key);
        h.update(wasm);
        Some(dir.join(format!("{}.cwasm", h.finalize().to_hex())))
    }

    /// The compiled component for `wasm`, from the cache or compiled now.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(path) = self.entry_path(wasm) else {
            return Ok((Component::new(engine, wasm)?, CacheOutcome::Compiled));
        };
        let mut outcome = CacheOutcome::Compiled;
        match std::fs::read(&path) {
            Ok(entry) => match Self::verified(&entry) {
                // SAFETY: the artifact was produced by `Engine::precompile_component` of an
                // engine with the same compatibility hash (part of the key), and its
                // checksum matches what we wrote, so it is our own, unmodified output.
                Some(artifact) => match unsafe { Component::deserialize(engine, artifact) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cached artifact refused; recompiling");
                        outcome = CacheOutcome::Repaired;
                    }
                },
                None => {
                    tracing::warn!(path = %path.display(), "cached artifact is corrupt; recompiling");
                    outcome = CacheOutcome::Repaired;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot read cached artifact"),
        }
        let artifact = engine.precompile_component(wasm)?;
        if let Err(e) = Self::write(&path, &artifact) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write cached artifact");
        }
        // SAFETY: `artifact` was produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        Ok((component, outcome))
    }

    fn verified(entry: &[u8]) -> Option<&[u8]> {
        if entry.len() < 32 {
            return None;
        }
        let (sum, artifact) = entry.split_at(32);
        (blake3::hash(artifact).as_bytes() == sum).then_some(artifact)
    }

    fn write(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{seq}", std::process::id()));
        let mut entry = Vec::with_capacity(32 + artifact.len());
        entry.extend_from_slice(blake3::hash(artifact).as_bytes());
        entry.extend_from_slice(artifact);
        std::fs::write(&tmp, &entry)?;
        std::fs::rename(&tmp, path)
    }
}
