//! The `seam` command line.

mod cli;

/// mimalloc: the hot path allocates many small, short-lived buffers (JSON, sled values);
/// it measured ~10-25% faster than glibc malloc in the inbound benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use seam::server::{self, ServeOptions};
use std::net::SocketAddr;
use std::path::PathBuf;

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
        /// Trust the certificate authorities in this PEM file for plugins' outbound https,
        /// besides the Mozilla roots (repeatable).
        #[arg(long, value_name = "PEM")]
        extra_ca: Vec<PathBuf>,
        /// Config file: channels, identity rules, conversations, router (TOML).
        #[arg(long, env = "SEAM_CONFIG")]
        config: Option<PathBuf>,
        /// Page cache of the views database, in MiB. Raise it for large views; memory use
        /// grows by about twice this.
        #[arg(long, default_value_t = server::DEFAULT_CACHE_MB, env = "SEAM_CACHE_MB", value_parser = clap::value_parser!(u64).range(1..=65_536))]
        cache_mb: u64,
        /// Page cache of the log database (log, API keys, plugins' key-value stores), in MiB.
        #[arg(long, default_value_t = server::DEFAULT_LOG_CACHE_MB, env = "SEAM_LOG_CACHE_MB", value_parser = clap::value_parser!(u64).range(1..=65_536))]
        log_cache_mb: u64,
    },
    /// Rebuild the views from the event log (`--rebuild`), or replay a candidate routing
    /// policy over a past window of the log and report where it decides differently
    /// (`--router`). Stop `seam serve` first (or use `POST /v1/routing/replay`).
    Replay {
        /// Delete every view and recompute it from the log.
        #[arg(long, conflicts_with = "routers")]
        rebuild: bool,
        /// A router of the candidate policy: a bundled router's name, a stored version
        /// (`name@version#hash`) or a plugin directory; repeat for a chain, in order.
        #[arg(long = "router", value_name = "ROUTER")]
        routers: Vec<String>,
        /// Config for a candidate router, `ROUTER.KEY=VALUE` (ROUTER as given to --router).
        #[arg(long = "set", value_name = "ROUTER.KEY=VALUE")]
        set: Vec<String>,
        /// First input offset of the window.
        #[arg(long)]
        from_offset: Option<u64>,
        /// Last input offset of the window.
        #[arg(long)]
        to_offset: Option<u64>,
        /// Start of the window: an RFC 3339 time or a duration ago (`2h`, `30min`).
        #[arg(long)]
        since: Option<String>,
        /// End of the window: an RFC 3339 time or a duration ago.
        #[arg(long)]
        until: Option<String>,
        /// The config file `seam serve` runs with (channels, for their kinds).
        #[arg(long, env = "SEAM_CONFIG")]
        config: Option<PathBuf>,
        /// Print the whole result as JSON.
        #[arg(long)]
        json: bool,
        /// Data directory.
        #[arg(long, default_value = "seam-data", env = "SEAM_DATA_DIR")]
        data_dir: PathBuf,
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
    /// Load a plugin into a running seam, or swap it for a new version.
    Push {
        /// A plugin directory: `seam.toml` and the component it names.
        dir: PathBuf,
        /// The running seam.
        #[arg(long, default_value = "http://127.0.0.1:8080", env = "SEAM_URL")]
        url: String,
        /// An admin API key.
        #[arg(long, env = "SEAM_API_KEY", hide_env_values = true)]
        key: String,
        /// Config values, `key=value` (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
    },
}

fn main() -> Result<()> {
    seam::process::tune_allocator();
    // Logs go to stderr: stdout carries what a command prints (the banner, `--json` output).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,cranelift=warn,wasmtime=warn".into()),
        )
        .init();
    if let Err(e) = seam::process::disable_transparent_huge_pages() {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off; memory use will be higher");
    }
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            plugins,
            no_bundled,
            extra_ca,
            config,
            cache_mb,
            log_cache_mb,
        } => {
            let options = ServeOptions {
                data_dir,
                listen,
                plugin_dir: plugins,
                no_bundled,
                extra_ca,
                config,
                cache_mb,
                log_cache_mb,
            };
            rt.block_on(serve(options))
        }
        Command::Replay { rebuild: true, data_dir, .. } => cli::replay::rebuild(&data_dir),
        Command::Replay {
            rebuild: false,
            routers,
            set,
            from_offset,
            to_offset,
            since,
            until,
            config,
            json,
            data_dir,
        } => {
            anyhow::ensure!(!routers.is_empty(), "give `--rebuild`, or the candidate policy with `--router`");
            let args =
                cli::replay::WhatIf { routers, set, from_offset, to_offset, since, until, config, json };
            rt.block_on(cli::replay::what_if(&data_dir, args))
        }
        Command::Plugin { command: PluginCommand::Inspect { file, manifest } } => {
            cli::inspect::inspect(&file, manifest.as_deref())
        }
        Command::Plugin { command: PluginCommand::Push { dir, url, key, config } } => {
            rt.block_on(cli::push::push(&dir, &url, &key, &config))
        }
    }
}

async fn serve(options: ServeOptions) -> Result<()> {
    let host = server::start(&options).await.context("seam could not start")?;
    let listener = server::bind(options.listen).await.context("seam could not start")?;
    println!();
    println!("  Seam is running at http://{}", options.listen);
    println!("  health:   http://{}/healthz", options.listen);
    println!("  metrics:  http://{}/metrics", options.listen);
    println!(
        "  plugins:  curl -H 'Authorization: Bearer <admin key>' http://{}/v1/admin/plugins",
        options.listen
    );
    println!("  data dir: {}", options.data_dir.display());
    for channel in host.state.channels.all() {
        println!(
            "  channel:  {} ({}) webhook http://{}/v1/channels/{}/webhook",
            channel.id, channel.kind, options.listen, channel.id
        );
    }
    if let Some(secret) = &host.new_webhook_secret {
        println!();
        println!("  Webhook secret of the `webhook` channel (send it as `x-seam-token`,");
        println!("  or sign bodies with it as `x-seam-signature: sha256=<hmac>`; shown once):");
        println!("    {secret}");
    }
    if let Some(key) = &host.new_admin_key {
        println!();
        println!("  Admin API key (shown only once, store it now):");
        println!("    {key}");
    }
    println!();
    println!("  Press Ctrl-C to stop.");
    server::serve(host, listener).await?;
    Ok(())
}
