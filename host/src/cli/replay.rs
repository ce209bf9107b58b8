//! `seam replay`: `--rebuild` recomputes every view from the decisions in the event log;
//! `--router` replays a candidate routing policy over a past window (what-if).

use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use seam::config::SeamConfig;
use seam::log::{EventLog, SledLog, SledLogOptions};
use seam::pipeline::decide::Context;
use seam::pipeline::whatif::{self, Replayed, Window};
use seam::routers::RouterStore;
use seam::runtime::PluginSource;
use seam::server::ServeOptions;
use seam::views::Views;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub fn rebuild(data_dir: &Path) -> Result<()> {
    let db_path = data_dir.join("db");
    anyhow::ensure!(db_path.exists(), "no database at {}: nothing to rebuild", db_path.display());
    let open = |path: &Path| {
        seam::server::open_db(path, seam::server::DEFAULT_CACHE_MB)
            .with_context(|| format!("cannot open {} (is `seam serve` still running?)", path.display()))
    };
    let db = open(&db_path)?;
    let views_db = open(&data_dir.join("views"))?;
    let log = SledLog::open(&db, SledLogOptions::default())?;
    let head = log.head();
    let bar = ProgressBar::new(head);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} rebuilding views [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let views = Views::open(&views_db, "views")?.emptied()?;
    let applied = seam::pipeline::rebuild(&log, &views, |done, _| bar.set_position(done))?;
    bar.finish();
    views_db.flush()?;
    let secs = started.elapsed().as_secs_f64();
    // Decisions per second is the rate that compares across logs: an event may carry the
    // decisions of many inputs (`pipeline.decisions`).
    let secs_or_tiny = secs.max(1e-9);
    println!(
        "rebuilt views from {head} events ({applied} decisions) in {secs:.2} s: {:.0} events/s, {:.0} decisions/s",
        head as f64 / secs_or_tiny,
        applied as f64 / secs_or_tiny
    );
    Ok(())
}

/// `seam replay --router ...`: what the candidate policy would have decided.
pub struct WhatIf {
    pub routers: Vec<String>,
    pub set: Vec<String>,
    pub from_offset: Option<u64>,
    pub to_offset: Option<u64>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub config: Option<PathBuf>,
    pub json: bool,
}

/// A time bound: ms since the epoch, an RFC 3339 time, or a duration ago (`2h`).
fn parse_time(flag: &str, text: &str) -> Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(t) => t,
        Err(_) => {
            let ago = humantime::parse_duration(text).with_context(|| {
                format!("--{flag} `{text}`: give an RFC 3339 time (2026-11-24T10:00:00Z), a duration ago (2h) or ms")
            })?;
            SystemTime::now()
                .checked_sub(ago)
                .with_context(|| format!("--{flag} `{text}` is too far back"))?
        }
    };
    Ok(at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
}

/// The config of each `--router`, from `--set ROUTER.KEY=VALUE`.
fn router_configs(routers: &[String], set: &[String]) -> Result<Vec<BTreeMap<String, String>>> {
    let mut configs = vec![BTreeMap::new(); routers.len()];
    for item in set {
        let (target, value) =
            item.split_once('=').with_context(|| format!("--set `{item}`: expected ROUTER.KEY=VALUE"))?;
        let (router, key) =
            target.rsplit_once('.').with_context(|| format!("--set `{item}`: expected ROUTER.KEY=VALUE"))?;
        let i = routers
            .iter()
            .position(|r| r == router)
            .with_context(|| format!("--set `{item}`: no --router `{router}`"))?;
        configs[i].insert(key.to_owned(), value.to_owned());
    }
    Ok(configs)
}

pub async fn what_if(data_dir: &Path, args: WhatIf) -> Result<()> {
    let window = Window {
        from_offset: args.from_offset,
        to_offset: args.to_offset,
        since: args.since.as_deref().map(|t| parse_time("since", t)).transpose()?,
        until: args.until.as_deref().map(|t| parse_time("until", t)).transpose()?,
    };
    window.check().map_err(anyhow::Error::msg)?;
    let configs = router_configs(&args.routers, &args.set)?;
    let db_path = data_dir.join("db");
    anyhow::ensure!(db_path.exists(), "no database at {}: nothing to replay", db_path.display());
    let db = seam::server::open_db(&db_path, seam::server::DEFAULT_CACHE_MB)
        .with_context(|| format!("cannot open {} (is `seam serve` still running?)", db_path.display()))?;
    let config = match &args.config {
        Some(file) => SeamConfig::from_file(file)?,
        None => SeamConfig::default(),
    };
    let options =
        ServeOptions { data_dir: data_dir.to_owned(), config: args.config.clone(), ..Default::default() };
    let loaded = seam::server::load_plugins(&options, &db, &config).await?;
    // Candidates are loaded for this run only: nothing is stored in the data directory.
    let store = RouterStore::new(None);
    let mut slots = Vec::new();
    for (router, config) in args.routers.iter().zip(&configs) {
        let dir = Path::new(router);
        let stage = if dir.join("seam.toml").exists() {
            let source = PluginSource::from_dir(dir)?;
            store.pin(&loaded.runtime, source, config).await
        } else {
            store.resolve(&loaded.runtime, router, config).await
        };
        slots.push(stage.with_context(|| format!("--router {router}"))?.slot);
    }
    let log = SledLog::open(&db, SledLogOptions::default())?;
    let ctx = Context::new(&config, Some(loaded.runtime.clone()), &[], loaded.channels.clone());
    let bar = ProgressBar::new(log.head());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} replaying [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let replayed = whatif::replay(&log, &ctx, &slots, window, |done, _| bar.set_position(done)).await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&replayed)?);
    } else {
        print!("{}", report(&replayed));
    }
    Ok(())
}

/// The human-readable report of a replay.
fn report(r: &Replayed) -> String {
    use std::fmt::Write;
    let d = &r.diff;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replayed {} inputs ({} log events in {:.2} s: {} events/s)\ncandidate: {}",
        r.inputs,
        r.events_read,
        r.elapsed_ms as f64 / 1000.0,
        r.events_per_sec,
        r.candidate.join(" -> ")
    );
    let _ = writeln!(
        out,
        "{} decisions compared: {} the same, {} different (the candidate failed on {})",
        d.decisions, d.same, d.different, d.candidate_failed
    );
    for (queue, q) in &d.by_queue {
        let to: Vec<String> = q.candidate_queues.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            out,
            "  {queue}: {} decisions, {} different -> {}",
            q.decisions,
            q.different,
            to.join(", ")
        );
    }
    let place = |p: &seam::views::whatif::Placement| {
        if p.failed {
            return format!("failed ({})", p.reason);
        }
        let queue = p.queue.as_deref().unwrap_or("-");
        match &p.agent {
            Some(a) => format!("{queue}/{a}"),
            None => queue.to_owned(),
        }
    };
    for e in &d.examples {
        let _ = writeln!(
            out,
            "  @{} {} {} {:?}: live {} | candidate {}",
            e.offset,
            e.conversation,
            e.trigger,
            e.text.as_deref().unwrap_or(""),
            place(&e.live),
            place(&e.candidate)
        );
    }
    out
}
