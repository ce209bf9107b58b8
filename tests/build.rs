//! Builds the test plugins (`tests/plugins/*`) and the example (`examples/*`) for
//! wasm32-wasip2, and tells the tests where the components are.

use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let tests = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let workspace = tests.parent().ok_or("tests/ has no parent")?.to_path_buf();
    for watched in ["tests/plugins", "examples", "sdk/src", "wit"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    let mut crates = seam_plugin_build::discover(&tests.join("plugins"))?;
    crates.extend(seam_plugin_build::discover(&workspace.join("examples"))?);
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    for (krate, wasm) in seam_plugin_build::build(&workspace, &target.join("wasm"), &crates)? {
        let var = krate.package.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=SEAM_TEST_WASM_{var}={}", wasm.display());
        println!("cargo:rustc-env=SEAM_TEST_MANIFEST_{var}={}", krate.manifest.display());
    }
    Ok(())
}
