//! Runtime benchmark: `cargo bench -p seam --bench runtime`.
//!
//! Reports, for the bundled plugins on this machine:
//! - `route()` latency (fresh store + instance from the pool + call + limits), sequential;
//! - `route()` throughput with concurrent callers;
//! - `handle-webhook` latency with a 2 KB JSON payload;
//! - cold compile and cached load per plugin;
//! - swap time (load a new version from the cache and make it current), and `install` alone.
//!
//! Prints a Markdown table; docs/benchmarks.md keeps the figures.

use seam::bundled::BundledPlugin;
use seam::metrics::Metrics;
use seam::runtime::bindings::channel::HttpRequest;
use seam::runtime::{PluginSource, Runtime, RuntimeOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn runtime(cache: Option<&Path>) -> Runtime {
    let db = sled::Config::new().temporary(true).open().expect("temporary sled");
    let options = RuntimeOptions { cache_dir: cache.map(Path::to_path_buf), ..RuntimeOptions::default() };
    Runtime::new(options, db, Metrics::default()).expect("runtime")
}

fn source(name: &str) -> PluginSource {
    BundledPlugin::find(name).expect("bundled plugin").source().expect("manifest")
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    Stats { p50: samples[n / 2], p99: samples[(n * 99) / 100], mean }
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn webhook_body() -> Vec<u8> {
    let text = "Здравствуйте! У меня проблема с оплатой заказа, деньги списались дважды. ".repeat(14);
    let body = serde_json::json!({
        "id": "msg-0001",
        "from": "+79161234567",
        "name": "Анна Петрова",
        "text": text,
        "timestamp": 1_700_000_000,
        "thread": "order-5512",
        "attachments": [{"kind": "image", "url": "https://cdn.example.com/receipt-5512.jpg", "mime_type": "image/jpeg"}],
    });
    body.to_string().into_bytes()
}

fn main() {
    let tokio =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    tokio.block_on(run());
}

async fn run() {
    let mut rows: Vec<(String, String)> = Vec::new();
    let rt = runtime(None);
    rt.load(source("keyword-router"), &BTreeMap::new()).await.expect("keyword router");
    rt.load(source("webhook-connector"), &BTreeMap::new()).await.expect("webhook connector");

    // route(): sequential latency, including getting an instance: as bundled (one instance
    // serves up to `calls-per-instance` calls) and with a fresh instance per call, as a
    // third-party plugin gets by default.
    let mut single = source("keyword-router");
    single.manifest.name = "single-use-router".into();
    single.manifest.limits.calls_per_instance = 1;
    rt.load(single, &BTreeMap::new()).await.expect("single-use router");
    let policies = [("keyword-router", "reused instances"), ("single-use-router", "single-use instances")];
    let ctx = seam::samples::message_context("Здравствуйте, у меня проблема с доступом к личному кабинету");
    for (name, how) in policies {
        for _ in 0..2_000 {
            rt.route(name, &ctx).await.expect("warm-up").expect("decision");
        }
        let mut samples = Vec::with_capacity(50_000);
        for _ in 0..50_000 {
            let t = Instant::now();
            let d = rt.route(name, &ctx).await.expect("route").expect("decision");
            samples.push(t.elapsed());
            assert_eq!(d.queue.as_deref(), Some("support"));
        }
        let s = stats(samples);
        rows.push((
            format!("route() keyword-router, {how}, sequential, p50 / p99 / mean"),
            format!("{} / {} / {}", us(s.p50), us(s.p99), us(s.mean)),
        ));
    }

    // route() with an empty rule set: the same host path with almost no guest work.
    let empty: BTreeMap<String, String> = [("rules".to_owned(), String::new())].into();
    let mut bare = source("keyword-router");
    bare.manifest.name = "bare-router".into();
    rt.load(bare, &empty).await.expect("bare router");
    let mut samples = Vec::with_capacity(50_000);
    for i in 0..52_000 {
        let t = Instant::now();
        rt.route("bare-router", &ctx).await.expect("route").expect("decision");
        if i >= 2_000 {
            samples.push(t.elapsed());
        }
    }
    let s = stats(samples);
    rows.push((
        "route() same router with no rules (host path + minimal guest work), p50 / p99 / mean".into(),
        format!("{} / {} / {}", us(s.p50), us(s.p99), us(s.mean)),
    ));

    // A routing decision as the pipeline makes it: a chain of routers, each seeing the one
    // before, with a team of 20 agents and 5 queues in the context.
    for name in ["assign-router", "priority-router", "hours-router"] {
        rt.load(source(name), &BTreeMap::new()).await.expect("bundled router");
    }
    let mut team = ctx.clone();
    for q in ["support", "billing", "sales", "general", "night"] {
        team.queues.push(seam::runtime::bindings::routing::Queue {
            id: q.into(),
            skills: vec![q.into()],
            priority: 0,
            open: q != "night",
            waiting: 3,
        });
    }
    for i in 0..20u32 {
        team.agents.push(seam::runtime::bindings::routing::Agent {
            id: format!("agent-{i}"),
            name: format!("Agent {i}"),
            skills: vec![["support", "billing", "sales", "general"][i as usize % 4].into(), "ru".into()],
            languages: vec!["ru".into(), "en".into()],
            status: seam::runtime::bindings::routing::AgentStatus::Online,
            load: i % 3,
            capacity: 3,
            last_assigned: Some(1_700_000_000_000 - i64::from(i) * 1000),
        });
    }
    let chains: [&[&str]; 2] = [
        &["keyword-router", "assign-router"],
        &["keyword-router", "priority-router", "hours-router", "assign-router"],
    ];
    for chain in chains {
        let chain: Vec<String> = chain.iter().map(|s| (*s).to_owned()).collect();
        let mut samples = Vec::with_capacity(20_000);
        for i in 0..22_000 {
            let mut context = team.clone();
            let t = Instant::now();
            let routed =
                seam::pipeline::route::run_chain(&rt, &chain, &mut context).await.expect("chain decides");
            if i >= 2_000 {
                samples.push(t.elapsed());
            }
            assert!(routed.decision.agent.is_some(), "{}", routed.decision.reason);
        }
        let s = stats(samples);
        rows.push((
            format!(
                "routing decision, chain of {} ({}), 20 agents, p50 / p99 / mean",
                chain.len(),
                chain.join(" -> ")
            ),
            format!("{} / {} / {}", us(s.p50), us(s.p99), us(s.mean)),
        ));
    }

    // route(): throughput with concurrent callers.
    for (name, how) in policies {
        let calls = 100_000;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (rt, ctx) = (rt.clone(), ctx.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..calls / 4 {
                    rt.route(name, &ctx).await.expect("route").expect("decision");
                    tokio::task::yield_now().await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let rate = calls as f64 / started.elapsed().as_secs_f64();
        rows.push((
            format!("route() keyword-router, {how}, 4 concurrent callers on 2 workers"),
            format!("{rate:.0} calls/s"),
        ));
    }

    // handle-webhook with a 2 KB payload.
    let body = webhook_body();
    let request = HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.clone(),
    };
    let mut samples = Vec::with_capacity(20_000);
    for i in 0..22_000 {
        let t = Instant::now();
        let out = rt.handle_webhook("webhook-connector", &request).await.expect("call").expect("accepted");
        if i >= 2_000 {
            samples.push(t.elapsed());
        }
        assert_eq!(out.events.len(), 1);
    }
    let s = stats(samples);
    rows.push((
        format!("handle-webhook webhook-connector, {} B JSON, p50 / p99 / mean", body.len()),
        format!("{} / {} / {}", us(s.p50), us(s.p99), us(s.mean)),
    ));

    // Cold compile and cached load, per plugin.
    let dir = std::env::temp_dir().join(format!("seam-bench-{}", std::process::id()));
    for name in ["keyword-router", "webhook-connector"] {
        let size = BundledPlugin::find(name).map_or(0, |p| p.wasm.len());
        let mut cold = Vec::new();
        let mut cached = Vec::new();
        for i in 0..10 {
            let cache = dir.join(format!("{name}-{i}"));
            let rt = runtime(Some(&cache));
            let t = Instant::now();
            rt.prepare(source(name), &BTreeMap::new()).await.expect("cold");
            cold.push(t.elapsed());
            let rt = runtime(Some(&cache));
            let t = Instant::now();
            let p = rt.prepare(source(name), &BTreeMap::new()).await.expect("cached");
            cached.push(t.elapsed());
            assert_eq!(p.stats.cache, seam::runtime::cache::CacheOutcome::Hit);
        }
        rows.push((
            format!("{name} ({} KiB): cold compile + link, median", size / 1024),
            ms(stats(cold).p50),
        ));
        rows.push((format!("{name}: cached load + link, median"), ms(stats(cached).p50)));
    }

    // Swap: a new version from the cache becomes current; and install() alone.
    let cache = dir.join("swap");
    let rt = runtime(Some(&cache));
    rt.load(source("keyword-router"), &BTreeMap::new()).await.expect("v1");
    let mut swaps = Vec::new();
    let mut installs = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let plugin = rt.prepare(source("keyword-router"), &BTreeMap::new()).await.expect("v2");
        let t2 = Instant::now();
        rt.install(plugin);
        installs.push(t2.elapsed());
        swaps.push(t.elapsed());
    }
    rows.push(("swap keyword-router (cached load + link + install), median".into(), ms(stats(swaps).p50)));
    rows.push(("install() alone (the atomic switch), median".into(), us(stats(installs).p50)));
    let _ = std::fs::remove_dir_all(&dir);

    println!("| measurement | result |");
    println!("|---|---|");
    for (what, value) in rows {
        println!("| {what} | {value} |");
    }
}
