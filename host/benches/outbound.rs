//! Outbound benchmark: `cargo bench -p seam --bench outbound`.
//!
//! `server::start` with one channel on the bundled generic connector whose `send-url` is a
//! local stand-in (axum on the same runtime, answering at once).
//! `SEAM_BENCH_MESSAGES` (default 5,000) send requests to `SEAM_BENCH_RECIPIENTS` customers
//! (default 1,000, in turn) are appended to the log as commands in batches of 100 (what the
//! API appends, without the HTTP round trip per request), and the clock runs until the
//! stand-in has received every message and every message's `sent` is in the views. Per
//! message, delivery latency is the stand-in's receive time minus the request's append
//! time. Then a paced run (~500 msg/s) gives the latency when the worker is not saturated,
//! and a run of 200 messages to one customer the rate of one customer's messages (which are
//! sent one after another, in order).
//!
//! Every send goes through the connector plugin (a fresh wasm instance per call), its
//! outbound HTTP, the `message.attempted` report (a durable append) and the pipeline.

use seam::log::{EventLog, NewEvent};
use seam::pipeline::commands::{Content, SEND, SendRequest};
use seam::server::{self, ServeOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

type Seen = Arc<Mutex<Vec<(String, i64)>>>;

async fn stand_in() -> (u16, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let record = record.clone();
            async move {
                let id =
                    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                record.lock().unwrap().push((id.clone(), now_ms()));
                axum::Json(serde_json::json!({ "id": format!("p-{id}") }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0)
}

/// Appends `count` send requests (ids `msg_<run><n>`) to `recipients` customers in turn, `per_batch` per append, pausing `pause` between appends;
/// returns their ids and append times.
async fn enqueue(
    log: &Arc<dyn EventLog>,
    run: &str,
    count: usize,
    recipients: usize,
    per_batch: usize,
    pause: Duration,
) -> Vec<(String, i64)> {
    let mut queued = Vec::with_capacity(count);
    for chunk in 0..count.div_ceil(per_batch) {
        let mut batch = Vec::new();
        let at = now_ms();
        for i in 0..per_batch.min(count - chunk * per_batch) {
            let n = chunk * per_batch + i;
            let request = SendRequest {
                // In order (the worker sends one customer's messages in due time, then id order).
                message: format!("msg_{run}{n:08}"),
                customer: None,
                identity: Some(format!("webhook:bench-customer-{}", n % recipients.max(1))),
                conversation: None,
                channel: Some("chat".into()),
                fallback: None,
                fallback_after_secs: None,
                content: Content { text: Some(format!("Your order {i} has shipped")), ..Content::default() },
                by: "bench".into(),
            };
            queued.push((request.message.clone(), at));
            batch.push(NewEvent::input(SEND, serde_json::value::to_raw_value(&request).unwrap()));
        }
        log.append(batch).await.expect("append");
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    queued
}

/// Waits until the stand-in got every message in `queued` and each is `sent` in the views;
/// returns the latencies (ms), sorted.
async fn delivered(state: &seam::api::AppState, seen: &Seen, queued: &[(String, i64)]) -> Vec<i64> {
    loop {
        if seen.lock().unwrap().len() >= queued.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (id, _) in queued {
        loop {
            let record = state.views.message(id).expect("views").expect("message");
            if record.status == seam::views::outbound::OutboundStatus::Sent {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let received: std::collections::HashMap<String, i64> = seen.lock().unwrap().iter().cloned().collect();
    let mut latencies: Vec<i64> =
        queued.iter().map(|(id, at)| received.get(id).copied().unwrap_or(i64::MAX) - at).collect();
    latencies.sort_unstable();
    latencies
}

fn main() {
    // As the `seam` binary does first.
    seam::process::tune_allocator();
    let setting = |name: &str, default: usize| -> usize {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let count = setting("SEAM_BENCH_MESSAGES", 5_000);
    let recipients = setting("SEAM_BENCH_RECIPIENTS", 1_000);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-outbound");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (port, seen) = stand_in().await;
        let config = format!(
            "[[channels]]\nid = \"chat\"\nplugin = \"webhook-connector\"\nconfig = {{ secret = \"s\", send-url = \"http://127.0.0.1:{port}/\" }}\nhttp = [\"http://127.0.0.1:{port}\"]\n"
        );
        std::fs::write(dir.join("seam.config.toml"), config).unwrap();
        let options = ServeOptions {
            data_dir: dir.join("data"),
            config: Some(dir.join("seam.config.toml")),
            ..ServeOptions::default()
        };
        let host = server::start(&options).await.expect("seam starts");
        let state = host.state.clone();

        let started = Instant::now();
        let queued = enqueue(&state.log, "a", count, recipients, 100, Duration::ZERO).await;
        let full = delivered(&state, &seen, &queued).await;
        let elapsed = started.elapsed().as_secs_f64();

        seen.lock().unwrap().clear();
        let paced_count = (count / 5).max(500);
        let paced = enqueue(&state.log, "b", paced_count, recipients, 5, Duration::from_millis(10)).await;
        let paced = delivered(&state, &seen, &paced).await;

        seen.lock().unwrap().clear();
        let started = Instant::now();
        let one = enqueue(&state.log, "c", 200, 1, 100, Duration::ZERO).await;
        let one = delivered(&state, &seen, &one).await;
        let one_elapsed = started.elapsed().as_secs_f64();

        println!("## Outbound (generic connector -> loopback stand-in, 2 cores shared with the stand-in)\n");
        println!("| run | messages | throughput | delivery latency p50 / p90 / p99 / max |");
        println!("|---|---|---|---|");
        println!(
            "| all queued at once, {recipients} customers | {count} | {:.0} msg/s | {} / {} / {} / {} ms |",
            count as f64 / elapsed,
            percentile(&full, 0.5),
            percentile(&full, 0.9),
            percentile(&full, 0.99),
            full.last().unwrap_or(&0)
        );
        println!(
            "| paced ~500/s | {paced_count} | — | {} / {} / {} / {} ms |",
            percentile(&paced, 0.5),
            percentile(&paced, 0.9),
            percentile(&paced, 0.99),
            paced.last().unwrap_or(&0)
        );
        println!(
            "| one customer, queued at once (sent in order, one at a time) | 200 | {:.0} msg/s | {} / {} / {} / {} ms |",
            200.0 / one_elapsed,
            percentile(&one, 0.5),
            percentile(&one, 0.9),
            percentile(&one, 0.99),
            one.last().unwrap_or(&0)
        );
    });
}
