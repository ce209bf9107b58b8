//! Durability: `kill -9` of `seam serve` while a load generator posts webhooks. After a
//! restart, every webhook that got a 2xx is in the log exactly once and in the views exactly
//! once, and the views equal a full rebuild from the log.

mod support;

use seam::log::{EventLog, Origin, SledLog, SledLogOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{data_dir, free_port, get};

const KEY: &str = "seam_crashtest_0123456789abcdef";
const SENDERS: u64 = 50;

const CONFIG: &str = r#"
[[channels]]
id = "telegram"
plugin = "webhook-connector"
config = { secret = "crash-secret", field-id = "update_id", field-sender = "message/from/id", field-sender-kind = "telegram", field-text = "message/text", field-time = "message/date" }
"#;

/// Posts one Telegram-shaped update; `Some(status)` if the server answered.
fn post_update(port: u16, update_id: u64) -> Option<u16> {
    let body = format!(
        r#"{{"update_id":{update_id},"message":{{"message_id":{update_id},"from":{{"id":{},"is_bot":false,"first_name":"Load"}},"chat":{{"id":1,"type":"private"}},"date":1700000000,"text":"message {update_id}"}}}}"#,
        7000 + update_id % SENDERS
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!(
        "POST /v1/channels/telegram/webhook HTTP/1.1\r\nHost: localhost\r\nx-seam-token: crash-secret\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split(' ').nth(1)?.parse().ok()
}

fn wait_caught_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(port, "/healthz", None);
        if status == 200 && body.contains("\"caught_up\":true") {
            return;
        }
        assert!(Instant::now() < deadline, "pipeline never caught up: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json(port: u16, path: &str) -> Value {
    let (status, body) = get(port, path, Some(KEY));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_webhook() {
    let data = data_dir("crash");
    std::fs::create_dir_all(&data).unwrap();
    let config = data.join("seam.config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let port = free_port();
    let mut server = serve_with_key(&data, port, &config);

    // Four senders post until the server dies; each remembers what got a 2xx.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let next = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (acked, next, stop) = (acked.clone(), next.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    match post_update(port, id) {
                        Some(200) => {
                            acked.lock().unwrap().insert(id);
                        }
                        Some(other) => panic!("update {id} answered {other}"),
                        None => {} // refused or cut off by the kill: not acknowledged
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while acked.lock().unwrap().len() < 300 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "the load generator got only {} acknowledgements", acked.len());
    drop(server);

    // Restart on the same data; the pipeline catches up.
    let server = serve_with_key(&data, port, &config);
    wait_caught_up(port);

    // The log: every acknowledged update exactly once.
    let mut in_log: BTreeMap<u64, u32> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = json(port, &format!("/v1/events?after={after}&limit=1000"));
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        for e in items {
            if e["type"] == "message.received" {
                let id: u64 = e["external_id"].as_str().unwrap().parse().unwrap();
                *in_log.entry(id).or_default() += 1;
            }
        }
        after = page["next_after"].as_u64().unwrap();
    }
    for id in &acked {
        assert_eq!(in_log.get(id), Some(&1), "acknowledged update {id} in the log");
    }
    assert!(in_log.values().all(|n| *n == 1), "no update twice in the log");

    // The views: every message in the log is in its sender's timeline exactly once, and the
    // counters agree.
    let mut in_views: BTreeMap<u64, u32> = BTreeMap::new();
    for sender in 0..SENDERS {
        let (status, body) =
            get(port, &format!("/v1/customers?identity=telegram:{}", 7000 + sender), Some(KEY));
        assert_eq!(status, 200);
        let found: Value = serde_json::from_str(&body).unwrap();
        let Some(customer) = found["items"].get(0) else { continue };
        let id = customer["id"].as_str().unwrap();
        let mut cursor = 0;
        let mut count = 0;
        loop {
            let page = json(port, &format!("/v1/customers/{id}/timeline?limit=500&cursor={cursor}"));
            for item in page["items"].as_array().unwrap() {
                let update: u64 = item["event"]["external_id"].as_str().unwrap().parse().unwrap();
                *in_views.entry(update).or_default() += 1;
                count += 1;
            }
            match page["next_cursor"].as_u64() {
                Some(c) => cursor = c,
                None => break,
            }
        }
        assert_eq!(customer["counters"]["messages_in"].as_u64(), Some(count), "{customer}");
    }
    assert_eq!(in_views, in_log, "views hold exactly the messages of the log");
    drop(server); // SIGKILL again: the views may be behind on disk; recovery must fix that.

    // Views equal a full rebuild: recover (apply durable decisions), dump, rebuild, dump.
    let db = seam::server::open_db(&data.join("data/db"), seam::server::DEFAULT_CACHE_MB).unwrap();
    let views_db = seam::server::open_db(&data.join("data/views"), seam::server::DEFAULT_CACHE_MB).unwrap();
    let log: Arc<dyn EventLog> = Arc::new(SledLog::open(&db, SledLogOptions::default()).unwrap());
    let views = seam::views::Views::open(&views_db, "views").unwrap();
    let last_input =
        log.read(0, usize::MAX).unwrap().iter().filter(|e| e.origin == Origin::Input).map(|e| e.offset).max();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = seam::config::SeamConfig::default();
        let context = seam::pipeline::decide::Context::new(&config, None, &[], Default::default());
        let head_before = log.head();
        let (processor, progress) =
            seam::pipeline::Processor::new(log.clone(), views.clone(), context).unwrap();
        tokio::spawn(processor.run());
        assert!(progress.wait_for(last_input.unwrap_or(0), Duration::from_secs(30)).await);
        assert_eq!(log.head(), head_before, "recovery re-applies decisions; it decides nothing anew");
    });
    let live = views.dump().unwrap();
    seam::pipeline::rebuild(log.as_ref(), &views, |_, _| {}).unwrap();
    let rebuilt = views.dump().unwrap();
    assert_eq!(live.len(), rebuilt.len());
    assert!(live == rebuilt, "views differ from a full rebuild");
}

fn serve_with_key(data: &std::path::Path, port: u16, config: &str) -> support::Server {
    // SEAM_ADMIN_KEY is read by the child only.
    support::serve_env(data.join("data").as_path(), port, &["--config", config], &[("SEAM_ADMIN_KEY", KEY)])
}
