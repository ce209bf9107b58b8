//! `seam plugin inspect`: a component's world, imports, exports and manifest.

use anyhow::{Context, Result};
use seam::manifest::Manifest;
use seam::metrics::Metrics;
use seam::runtime::plugin::{check_component_bytes, exported_functions, interface_names};
use seam::runtime::{Runtime, RuntimeOptions};
use std::path::Path;

/// Prints what `file` (a component or a plugin directory) is and whether its manifest grants
/// what it imports.
pub fn inspect(file: &Path, manifest: Option<&Path>) -> Result<()> {
    let (wasm_path, manifest_path) = if file.is_dir() {
        let manifest_path = manifest.map_or_else(|| file.join("seam.toml"), Path::to_path_buf);
        let m = Manifest::from_file(&manifest_path)?;
        (file.join(&m.component), Some(manifest_path))
    } else {
        let beside = file.parent().map(|d| d.join("seam.toml")).filter(|p| p.is_file());
        (file.to_path_buf(), manifest.map(Path::to_path_buf).or(beside))
    };
    let wasm = std::fs::read(&wasm_path).with_context(|| format!("cannot read {}", wasm_path.display()))?;
    check_component_bytes(&wasm, &wasm_path.display().to_string())?;
    let runtime = Runtime::new(
        RuntimeOptions::default(),
        sled::Config::new().temporary(true).open()?,
        Metrics::default(),
    )?;
    let component = wasmtime::component::Component::new(runtime.engine(), &wasm)
        .map_err(|e| anyhow::anyhow!("{}: cannot compile: {e:#}", wasm_path.display()))?;
    let (imports, _) = interface_names(&component, runtime.engine());
    let exports = exported_functions(&component, runtime.engine());
    let world = if exports.iter().any(|(n, _)| n.starts_with("seam:plugin/channel@")) {
        "seam:plugin/connector"
    } else if exports.iter().any(|(n, _)| n.starts_with("seam:plugin/routing@")) {
        "seam:plugin/router"
    } else {
        "(not a Seam plugin: exports neither seam:plugin/channel nor seam:plugin/routing)"
    };
    println!(
        "component: {} ({} bytes, blake3 {})",
        wasm_path.display(),
        wasm.len(),
        blake3::hash(&wasm).to_hex()
    );
    println!("world:     {world}");
    println!("imports:");
    for name in &imports {
        println!("  {name}");
    }
    println!("exports:");
    for (name, funcs) in &exports {
        println!("  {name}");
        for f in funcs {
            println!("    {f}");
        }
    }
    match manifest_path {
        Some(path) => {
            let m = Manifest::from_file(&path)?;
            println!("manifest:  {}", path.display());
            print!("{}", toml::to_string_pretty(&m).context("cannot print manifest")?);
            if let Err(e) = seam::runtime::caps::check_imports(&m, imports.iter().map(String::as_str)) {
                println!("WARNING: {e}");
            }
        }
        None => println!("manifest:  (none found; pass --manifest)"),
    }
    Ok(())
}
