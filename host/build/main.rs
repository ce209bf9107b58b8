//! Builds the first-party plugins in `plugins/` for wasm32-wasip2 and embeds them (component
//! and manifest) into the `seam` binary, so `seam serve` runs with no files beside it.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        // A clear, single message instead of a panic backtrace.
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir.parent().ok_or("host/ has no parent")?.to_path_buf();
    for watched in [
        "plugins",
        "sdk/src",
        "sdk/Cargo.toml",
        "sdk/build-support/src",
        "wit",
        "Cargo.lock",
        // The plugin profile.
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let plugins = seam_plugin_build::discover(&workspace.join("plugins"))?;
    let built = seam_plugin_build::build(&workspace, &target.join("wasm"), &plugins)?;

    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut code = String::from(
        "/// The bundled plugins, in directory order.\npub const BUNDLED: &[BundledPlugin] = &[\n",
    );
    for (plugin, wasm) in &built {
        let name = plugin.dir.file_name().ok_or("plugin dir has no name")?.to_string_lossy().to_string();
        let wasm_out = out.join(format!("{name}.wasm"));
        let manifest_out = out.join(format!("{name}.seam.toml"));
        std::fs::copy(wasm, &wasm_out).map_err(|e| format!("{}: {e}", wasm.display()))?;
        std::fs::copy(&plugin.manifest, &manifest_out)?;
        writeln!(
            code,
            "    BundledPlugin {{ name: {name:?}, manifest: include_str!({:?}), wasm: include_bytes!({:?}) }},",
            manifest_out.display().to_string(),
            wasm_out.display().to_string()
        )?;
    }
    code.push_str("];\n");
    std::fs::write(out.join("bundled.rs"), code)?;
    Ok(())
}
