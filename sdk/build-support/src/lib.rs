//! Builds Seam plugin crates for `wasm32-wasip2` from a build script or a test.
//!
//! A plugin crate is any directory with a `Cargo.toml` and a `seam.toml` manifest. Each
//! plugin is built by its own `cargo rustc --crate-type cdylib`: the crate itself declares
//! only an `rlib` (so native `cargo test` works; a native cdylib would not link, as the
//! component export names contain `:`), and one package per invocation also keeps cargo
//! from unifying `seam-sdk`'s `connector` and `router` features across plugins.
//!
//! The nested cargo uses its own target directory (`<target>/wasm`): the outer cargo holds
//! the lock on its own directory while build scripts run, so sharing it would deadlock.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust target plugins are compiled for.
pub const WASM_TARGET: &str = "wasm32-wasip2";
/// The cargo profile plugins are compiled with (defined in the workspace `Cargo.toml`).
pub const PLUGIN_PROFILE: &str = "plugin";

/// A plugin crate found on disk.
#[derive(Debug, Clone)]
pub struct PluginCrate {
    /// The crate's directory.
    pub dir: PathBuf,
    /// The cargo package name.
    pub package: String,
    /// `connector` or `router`, from `seam.toml`.
    pub kind: String,
    /// The manifest file.
    pub manifest: PathBuf,
}

impl PluginCrate {
    /// File name of the component cargo produces for this crate.
    pub fn wasm_file_name(&self) -> String {
        format!("{}.wasm", self.package.replace('-', "_"))
    }
}

/// Why building plugins failed.
#[derive(Debug)]
pub enum BuildError {
    /// A directory or file could not be read.
    Io(PathBuf, std::io::Error),
    /// A `Cargo.toml` or `seam.toml` lacks a field this crate needs.
    Manifest(PathBuf, String),
    /// `cargo build` failed; its output was printed to stderr.
    Cargo(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            BuildError::Manifest(p, m) => write!(f, "{}: {m}", p.display()),
            BuildError::Cargo(m) => write!(
                f,
                "building plugins for {WASM_TARGET} failed: {m} (compiler output above; if the target is missing, run `rustup target add {WASM_TARGET}`)"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Finds plugin crates directly under `dir` (each subdirectory with `Cargo.toml` and
/// `seam.toml`), sorted by directory name.
pub fn discover(dir: &Path) -> Result<Vec<PluginCrate>, BuildError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| BuildError::Io(dir.to_owned(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BuildError::Io(dir.to_owned(), e))?;
        let path = entry.path();
        if path.join("Cargo.toml").is_file() && path.join("seam.toml").is_file() {
            found.push(read_crate(&path)?);
        }
    }
    found.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(found)
}

/// Reads one plugin crate's package name and kind.
pub fn read_crate(dir: &Path) -> Result<PluginCrate, BuildError> {
    let cargo = dir.join("Cargo.toml");
    let manifest = dir.join("seam.toml");
    let package = top_level_string(&cargo, "name")?;
    let kind = top_level_string(&manifest, "kind")?;
    Ok(PluginCrate { dir: dir.to_owned(), package, kind, manifest })
}

/// Reads `key = "value"` from a TOML file without a TOML parser (this crate has no
/// dependencies so it builds before anything else). Only the first occurrence counts,
/// which is the `[package]` name in `Cargo.toml` and the top-level key in `seam.toml`.
fn top_level_string(file: &Path, key: &str) -> Result<String, BuildError> {
    let text = std::fs::read_to_string(file).map_err(|e| BuildError::Io(file.to_owned(), e))?;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        if k.trim() == key {
            let v = v.trim();
            if let Some(v) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                return Ok(v.to_owned());
            }
        }
    }
    Err(BuildError::Manifest(file.to_owned(), format!("no `{key} = \"...\"` line")))
}

/// Builds `plugins` for [`WASM_TARGET`] with the [`PLUGIN_PROFILE`] profile into
/// `target_dir`, one cargo invocation per plugin, and returns each plugin with the path of
/// its `.wasm` component.
pub fn build(
    workspace: &Path,
    target_dir: &Path,
    plugins: &[PluginCrate],
) -> Result<Vec<(PluginCrate, PathBuf)>, BuildError> {
    for p in plugins {
        let mut cmd = cargo_command(workspace, target_dir);
        cmd.arg("-p").arg(&p.package).args(["--lib", "--crate-type", "cdylib"]);
        let status = cmd.status().map_err(|e| BuildError::Cargo(format!("cannot run cargo: {e}")))?;
        if !status.success() {
            return Err(BuildError::Cargo(format!("cargo exited with {status} for {}", p.package)));
        }
    }
    let out = target_dir.join(WASM_TARGET).join(PLUGIN_PROFILE);
    Ok(plugins.iter().map(|p| (p.clone(), out.join(p.wasm_file_name()))).collect())
}

/// A `cargo rustc` for the wasm target, with the environment an outer cargo gives build
/// scripts removed so the host's flags, wrappers (clippy) and target do not leak in.
fn cargo_command(workspace: &Path, target_dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["rustc", "--target", WASM_TARGET, "--profile", PLUGIN_PROFILE])
        .env("CARGO_TARGET_DIR", target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
        "RUSTDOCFLAGS",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}
