//! View reads and rebuild at scale: `cargo bench -p seam --bench views`.
//!
//! Fills a fresh data directory through the real pipeline (identity resolution,
//! threading, the default chain of bundled routers: keyword -> assign) with `SEAM_BENCH_CUSTOMERS` customers (default
//! 100,000) writing `SEAM_BENCH_MESSAGES` messages each (default 5): the log then holds
//! twice as many events (each input and its decision). Then measures, on disk:
//! - `GET /v1/customers/{id}` (the unified view) and the first timeline page (50 entries,
//!   newest first, with the events read from the log), for random customers, through the
//!   real router with `tower::ServiceExt::oneshot` (no socket);
//! - `seam replay --rebuild` (`pipeline::rebuild`) over the whole log, on emptied views;
//! - replay what-if (`pipeline::whatif::replay`, as `seam replay --router`) of a candidate
//!   policy over the whole log;
//! - RSS.
//!
//! `SEAM_BENCH_AGENTS` (default 20) agents, online with room for 5 conversations each, and 5
//! queues are created first, so a backlog builds up in the queues as the fill goes on.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use seam::api::auth::{ApiKeys, Role};
use seam::log::{EventLog, SledLog, SledLogOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * q) as usize]
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    // As the `seam` binary does (see `seam::process`): without it, fresh memory faults in
    // 2 MiB huge pages that the kernel zeroes, and reads stalled for ~5 ms at a time.
    seam::process::tune_allocator();
    seam::process::disable_transparent_huge_pages().expect("prctl");
    let customers = env("SEAM_BENCH_CUSTOMERS", 100_000);
    let messages = env("SEAM_BENCH_MESSAGES", 5);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-views");
    let _ = std::fs::remove_dir_all(&dir);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    rt.block_on(async {
        let db = seam::server::open_db(&dir.join("db"), seam::server::DEFAULT_LOG_CACHE_MB).expect("db");
        let views_db = seam::server::open_db(&dir.join("views"), seam::server::DEFAULT_CACHE_MB).expect("views db");
        let log: Arc<dyn EventLog> = Arc::new(SledLog::open(&db, SledLogOptions::default()).expect("log"));
        let views = seam::views::Views::open(&views_db, "views").expect("views");
        let runtime = seam::runtime::Runtime::new(
            seam::runtime::RuntimeOptions::default(),
            db.clone(),
            seam::metrics::Metrics::default(),
        )
        .expect("runtime");
        // The default chain: keyword-router -> assign-router.
        for name in ["keyword-router", "assign-router"] {
            let router = seam::bundled::BundledPlugin::find(name).expect("bundled").source().expect("manifest");
            runtime.load(router, &Default::default()).await.expect("router loads");
        }
        let channels = seam::channels::Channels::default();
        let config = seam::config::SeamConfig::default();
        let progress = seam::server::start_pipeline(&config, &runtime, &channels, log.clone(), views.clone())
            .expect("pipeline");

        let keys = ApiKeys::open(&db).expect("keys");
        let (key, _) = keys.create("bench", Role::Admin, None).expect("key");
        let state = seam::api::AppState::new(seam::api::Shared {
            runtime: runtime.clone(),
            keys,
            plugin_roots: None,
            log: log.clone(),
            views: views.clone(),
            progress: progress.clone(),
            channels: channels.clone(),
            normalizer: seam::pipeline::identity::Normalizer::new(&config.identity),
            webchat: Default::default(),
        routers: Default::default(),
        });
        let app = seam::api::router(state);
        let send = |method: &'static str, uri: String, body: serde_json::Value| {
            let app = app.clone();
            let key = key.clone();
            async move {
                let request = Request::builder()
                    .method(method)
                    .uri(&uri)
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap();
                let response = app.oneshot(request).await.unwrap();
                assert!(response.status().is_success(), "{method} {uri}: {}", response.status());
            }
        };
        // A team, as a company has one: queues for the keyword router's topics and agents
        // online with room for a few conversations each. Everything past their capacity
        // waits in a queue, so the backlog grows as the fill goes on: what each routing
        // decision sees (every queue's waiting count, every agent's load) is read from it.
        let agents = env("SEAM_BENCH_AGENTS", 20);
        if agents > 0 {
            for queue in ["support", "billing", "sales", "general", "vip"] {
                send("POST", "/v1/queues".into(), serde_json::json!({"id": queue, "skills": [queue]})).await;
            }
            for i in 0..agents {
                let skills = [["support", "general"], ["billing", "sales"], ["support", "vip"]][i as usize % 3];
                let id = format!("agent-{i}");
                let agent = serde_json::json!({"id": id, "skills": skills, "capacity": {"*": 5}});
                send("POST", "/v1/agents".into(), agent).await;
                send("PUT", format!("/v1/agents/{id}/status"), serde_json::json!({"status": "online"})).await;
            }
        }
        let total = customers * messages;
        let fill = Instant::now();
        let mut appended = 0;
        let mut last_input = 0;
        for round in 0..messages {
            for chunk in 0..customers.div_ceil(1000) {
                let events: Vec<_> = (chunk * 1000..((chunk + 1) * 1000).min(customers))
                    .map(|c| {
                        let text = format!("Здравствуйте! Вопрос по оплате заказа {round}");
                        seam::samples::telegram_input(&format!("{round}-{c}"), c, &text)
                    })
                    .collect();
                appended += events.len() as u64;
                let result = log.append(events).await.expect("append");
                // Keep the pipeline within reach so memory stays flat.
                let last = result.last().map_or(0, |a| a.offset);
                last_input = last;
                if appended % 50_000 == 0 {
                    progress.wait_for(last.saturating_sub(20_000), Duration::from_secs(600)).await;
                }
            }
        }
        progress.wait_for(last_input, Duration::from_secs(3600)).await;
        let fill_secs = fill.elapsed().as_secs_f64();
        let events = log.head();
        println!(
            "filled: {customers} customers, {total} messages, {events} events in the log, in {fill_secs:.1} s ({:.0} inputs/s through the pipeline)",
            total as f64 / fill_secs
        );
        // Let the last decisions land.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let mut ids = Vec::new();
        let mut conversation_ids = Vec::new();
        for i in 0..2000u64 {
            let sender = (i * 7919) % customers;
            let view = views.customer_by_identity(&format!("telegram:{sender}")).expect("views").expect("customer");
            if let Some(c) = &view.open_conversation {
                conversation_ids.push(c.id.clone());
            }
            ids.push(view.id);
        }
        let get = |uri: String| {
            let app = app.clone();
            let key = key.clone();
            async move {
                let request = Request::get(uri).header("authorization", format!("Bearer {key}")).body(Body::empty()).unwrap();
                let started = Instant::now();
                let response = app.oneshot(request).await.unwrap();
                assert!(response.status().is_success());
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert!(!body.is_empty());
                started.elapsed()
            }
        };
        let mut customer_times = Vec::new();
        let mut timeline_times = Vec::new();
        let mut conversation_times = Vec::new();
        for id in &conversation_ids {
            conversation_times.push(get(format!("/v1/conversations/{id}")).await);
        }
        for id in &ids {
            customer_times.push(get(format!("/v1/customers/{id}")).await);
            timeline_times.push(get(format!("/v1/customers/{id}/timeline?order=desc&limit=50")).await);
        }
        let rss_before_rebuild = rss_mib();
        // `seam replay --rebuild` empties the views by dropping their tree, which this
        // process cannot (its pipeline holds them too): they are cleared key by key first,
        // and that is reported apart.
        let clearing = Instant::now();
        views.clear().expect("clear");
        let clear_secs = clearing.elapsed().as_secs_f64();
        let rebuild = Instant::now();
        let decisions = seam::pipeline::rebuild(log.as_ref(), &views, |_, _| {}).expect("rebuild");
        let rebuild_secs = rebuild.elapsed().as_secs_f64();
        let rss_after_rebuild = rss_mib();
        // Replay what-if: the keyword router with another default queue, over the whole log.
        let triage = [("default-queue".to_owned(), "triage".to_owned())].into_iter().collect();
        let candidate = seam::routers::RouterStore::new(None)
            .resolve(&runtime, "keyword-router", &triage)
            .await
            .expect("candidate loads");
        let ctx = seam::pipeline::decide::Context::new(&config, Some(runtime.clone()), &[], channels.clone());
        let replayed = seam::pipeline::whatif::replay(log.as_ref(), &ctx, &[candidate.slot], Default::default(), |_, _| {})
            .await
            .expect("replay");
        println!("\n| measure | p50 | p99 |\n|---|---|---|");
        println!(
            "| GET /v1/customers/{{id}} (2,000 random customers) | {:.0} µs | {:.0} µs |",
            percentile(&mut customer_times, 0.5).as_secs_f64() * 1e6,
            percentile(&mut customer_times, 0.99).as_secs_f64() * 1e6
        );
        if !conversation_times.is_empty() {
            println!(
                "| GET /v1/conversations/{{id}} ({} open conversations, with the place in line of those waiting) | {:.0} µs | {:.0} µs |",
                conversation_times.len(),
                percentile(&mut conversation_times, 0.5).as_secs_f64() * 1e6,
                percentile(&mut conversation_times, 0.99).as_secs_f64() * 1e6
            );
        }
        println!(
            "| first timeline page, 50 newest, events from the log | {:.0} µs | {:.0} µs |",
            percentile(&mut timeline_times, 0.5).as_secs_f64() * 1e6,
            percentile(&mut timeline_times, 0.99).as_secs_f64() * 1e6
        );
        if let Some(slowest) = conversation_times.iter().max() {
            // The first question about a queue reads its whole line from the store.
            println!(
                "\n- slowest GET /v1/conversations/{{id}}: {:.1} ms (the first one about a queue reads its line)",
                slowest.as_secs_f64() * 1e3
            );
        }
        println!(
            "\n- rebuild: {events} events ({decisions} decisions) in {rebuild_secs:.1} s = {:.0} events/s, {:.0} decisions/s",
            events as f64 / rebuild_secs,
            decisions as f64 / rebuild_secs
        );
        println!("- clearing the views key by key before it (not counted): {clear_secs:.1} s");
        println!("- RSS before / right after the rebuild: {rss_before_rebuild:.0} / {rss_after_rebuild:.0} MiB");
        println!(
            "- replay what-if (keyword-router, default queue `triage`) over the whole log: {} events, {} inputs, {} decisions compared ({} different) in {:.1} s = {} events/s",
            replayed.events_read,
            replayed.inputs,
            replayed.diff.decisions,
            replayed.diff.different,
            replayed.elapsed_ms as f64 / 1000.0,
            replayed.events_per_sec
        );
        println!("- RSS after the run: {:.0} MiB", rss_mib());
        let size = |p: &std::path::Path| -> u64 {
            std::fs::read_dir(p).map(|d| d.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
        };
        println!("- on disk: log db {} MiB, views db {} MiB", size(&dir.join("db")) >> 20, size(&dir.join("views")) >> 20);
    });
}
