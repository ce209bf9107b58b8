//! Restart during delivery: `seam serve` is stopped with SIGTERM while outbound messages
//! are being sent (some waiting on the channel's rate limit, some waiting for the provider's
//! answer), then started again and the same requests are repeated with the same
//! Idempotency-Keys. Every message reaches the provider stand-in exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

use support::{data_dir, free_port, get, post, serve};

const MESSAGES: usize = 30;

/// The provider: records each request's idempotency key, answers after 300 ms.
fn stand_in(rt: &tokio::runtime::Runtime) -> (u16, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let record = record.clone();
            async move {
                let key =
                    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                record.lock().unwrap().push(key.clone());
                tokio::time::sleep(Duration::from_millis(300)).await;
                axum::Json(serde_json::json!({ "id": format!("p-{key}") }))
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

fn send_all(port: u16, key: &str) -> Vec<(String, bool)> {
    (0..MESSAGES)
        .map(|i| {
            let body = format!(r#"{{"identity": "webhook:u1", "text": "message {i}"}}"#);
            let auth = format!("Bearer {key}");
            let idem = format!("k-{i}");
            let (status, reply) =
                post(port, "/v1/messages", &[("Authorization", &auth), ("Idempotency-Key", &idem)], &body);
            assert_eq!(status, 202, "{reply}");
            let value: serde_json::Value = serde_json::from_str(&reply).unwrap();
            (value["id"].as_str().unwrap().to_owned(), value["status"] != "queued")
        })
        .collect()
}

#[test]
fn sigterm_during_delivery_loses_nothing_and_sends_nothing_twice() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (provider, seen) = stand_in(&rt);
    let data = data_dir("delivery-restart");
    std::fs::create_dir_all(&data).unwrap();
    let config = data.join("seam.config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[channels]]
id = "chat"
plugin = "webhook-connector"
config = {{ secret = "s", send-url = "http://127.0.0.1:{provider}/" }}
http = ["http://127.0.0.1:{provider}"]
rate-limit = 10
"#
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let port = free_port();
    let mut server = serve(&data, port, &["--config", &config]);
    let key =
        server.banner.split_whitespace().find(|w| w.starts_with("seam_")).expect("admin key").to_owned();
    let (status, body) = post(
        port,
        "/v1/channels/chat/webhook",
        &[("x-seam-token", "s")],
        r#"{"id": "in-1", "from": "u1", "text": "hi"}"#,
    );
    assert_eq!(status, 200, "{body}");

    let first = send_all(port, &key);
    // Stop while sends are under way: the first ones are at the provider, the rest wait
    // for the rate limit.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "seam did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "seam exits cleanly on SIGTERM: {exit:?}");
    let sent_before_restart = seen.lock().unwrap().len();
    drop(server);

    let server = serve(&data, port, &["--config", &config]);
    // The same requests again: the same messages, nothing new.
    let again = send_all(port, &key);
    let ids: Vec<&String> = first.iter().map(|(id, _)| id).collect();
    assert_eq!(ids, again.iter().map(|(id, _)| id).collect::<Vec<_>>(), "the keys give the first messages");
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &ids {
        loop {
            let (status, body) = get(port, &format!("/v1/messages/{id}"), Some(&key));
            assert_eq!(status, 200, "{body}");
            if body.contains(r#""status":"sent""#) {
                break;
            }
            assert!(Instant::now() < deadline, "message {id} was not sent: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for key in seen.lock().unwrap().iter() {
        *counts.entry(key.clone()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(counts.get(*id), Some(&1), "message {id} reached the provider once: {counts:?}");
    }
    assert_eq!(counts.len(), MESSAGES);
    assert!(
        sent_before_restart > 0 && sent_before_restart < MESSAGES,
        "the stop came during delivery ({sent_before_restart} of {MESSAGES} sent before it)"
    );
    drop(server);
}
