//! `seam replay --rebuild`: recompute every view from the decisions in the event log.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use seam::log::{EventLog, SledLog, SledLogOptions};
use seam::views::Views;
use std::path::Path;
use std::time::Instant;

pub fn rebuild(data_dir: &Path) -> Result<()> {
    let db_path = data_dir.join("db");
    anyhow::ensure!(db_path.exists(), "no database at {}: nothing to rebuild", db_path.display());
    let open = |path: &Path| {
        seam::server::open_db(path)
            .with_context(|| format!("cannot open {} (is `seam serve` still running?)", path.display()))
    };
    let db = open(&db_path)?;
    let views_db = open(&data_dir.join("views"))?;
    let log = SledLog::open(&db, SledLogOptions::default())?;
    let views = Views::open(&views_db, "views")?;
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
    let applied = seam::pipeline::rebuild(&log, &views, |done, _| bar.set_position(done))?;
    bar.finish();
    views_db.flush()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "rebuilt views from {head} events ({applied} decisions) in {secs:.2} s: {:.0} events/s",
        head as f64 / secs.max(1e-9)
    );
    Ok(())
}
