//! The `seam` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use seam::manifest::Manifest;
use seam::metrics::Metrics;
use seam::runtime::plugin::{check_component_bytes, exported_functions, interface_names};
use seam::runtime::{Runtime, RuntimeOptions};
use seam::server::{self, ServeOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Seam: one customer, one history, across every channel.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Seam: zero configuration, embedded storage, bundled plugins.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "SEAM_LISTEN")]
        listen: SocketAddr,
        /// Data directory (database and compiled plugin cache); created if missing.
        #[arg(long, default_value = "seam-data", env = "SEAM_DATA_DIR")]
        data_dir: PathBuf,
        /// Also load every plugin directory under this one.
        #[arg(long, env = "SEAM_PLUGIN_DIR")]
        plugins: Option<PathBuf>,
        /// Do not load the bundled plugins.
        #[arg(long)]
        no_bundled: bool,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Print a component's world, imports, exports and manifest.
    Inspect {
        /// A `.wasm` component, or a plugin directory with `seam.toml`.
        file: PathBuf,
        /// The manifest (default: `seam.toml` next to the component).
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,cranelift=warn,wasmtime=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve { listen, data_dir, plugins, no_bundled } => {
            let options = ServeOptions { data_dir, listen, plugin_dir: plugins, no_bundled };
            rt.block_on(serve(options))
        }
        Command::Plugin { command: PluginCommand::Inspect { file, manifest } } => {
            inspect(&file, manifest.as_deref())
        }
    }
}

async fn serve(options: ServeOptions) -> Result<()> {
    let host = server::start(&options).await.context("seam could not start")?;
    println!();
    println!("  Seam is running at http://{}", options.listen);
    println!("  health:   http://{}/healthz", options.listen);
    println!("  metrics:  http://{}/metrics", options.listen);
    println!(
        "  plugins:  curl -H 'Authorization: Bearer <admin key>' http://{}/v1/admin/plugins",
        options.listen
    );
    println!("  data dir: {}", options.data_dir.display());
    if let Some(key) = &host.new_admin_key {
        println!();
        println!("  Admin API key (shown only once, store it now):");
        println!("    {key}");
    }
    println!();
    server::serve(host, options.listen).await?;
    Ok(())
}

fn inspect(file: &Path, manifest: Option<&Path>) -> Result<()> {
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
