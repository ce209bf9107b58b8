//! Web chat over real HTTP: the widget script is served; the widget's posts (checked by the
//! web chat connector: site key, page origin) make a customer, a left email links an
//! identity; an agent's reply reaches the visitor's server-sent event stream (and nobody
//! else's) and is then reported delivered.

use futures_util::StreamExt;
use seam_tests::host::TestHost;
use seam_tests::providers::{send, wait_status};
use serde_json::{Value, json};
use std::time::Duration;

const ORIGIN: &str = "https://shop.example";
const VISITOR: &str = "v_0123456789abcdef0123456789abcdef";

const CONFIG: &str = r#"
[[channels]]
id = "web"
plugin = "webchat-connector"
config = { site-key = "site-1", allowed-origins = "https://shop.example" }
"#;

async fn post(host: &TestHost, origin: &str, body: Value) -> reqwest::Response {
    host.http
        .post(host.url("/v1/channels/web/webhook"))
        .header("origin", origin)
        .header("x-seam-site-key", "site-1")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Reads server-sent events from `url` until one carries `needle` or `wait` passes.
async fn read_stream(host: &TestHost, url: String, needle: &str, wait: Duration) -> Option<String> {
    let response = host.http.get(url).header("origin", ORIGIN).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains(needle) {
                    return Some(seen);
                }
            }
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_and_gets_the_agents_reply_live() {
    let host = TestHost::start("webchat-e2e", CONFIG).await;
    let script = host.http.get(host.url("/webchat.js")).send().await.unwrap();
    assert!(script.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert!(script.text().await.unwrap().contains("EventSource"));

    let preflight = host
        .http
        .request(reqwest::Method::OPTIONS, host.url("/v1/channels/web/webhook"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], ORIGIN);

    let ok = post(&host, ORIGIN, json!({"visitor": VISITOR, "id": "c_1", "text": "Где мой заказ?"})).await;
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers()["access-control-allow-origin"], ORIGIN);
    let refused =
        post(&host, "https://evil.example", json!({"visitor": VISITOR, "id": "c_2", "text": "x"})).await;
    assert_eq!(refused.status().as_u16(), 401, "a page on another origin is refused");
    let contact =
        post(&host, ORIGIN, json!({"visitor": VISITOR, "id": "c_3", "email": "Anna@Example.com"})).await;
    assert_eq!(contact.status().as_u16(), 200);
    host.settle().await;
    let customer = host.customer(&format!("web:{VISITOR}")).await;
    assert!(customer["identities"].to_string().contains("email:anna@example.com"), "{customer}");
    let conversation = customer["open_conversation"]["id"].as_str().expect("conversation").to_owned();

    let mine = format!("{}?visitor={VISITOR}", host.url("/v1/channels/web/webchat/stream"));
    let other =
        format!("{}?visitor=v_ffffffffffffffffffffffffffffffff", host.url("/v1/channels/web/webchat/stream"));
    let (h1, h2) = (&host, &host);
    let reader = read_stream(h1, mine, "Сейчас проверю", Duration::from_secs(20));
    let bystander = read_stream(h2, other, "Сейчас проверю", Duration::from_secs(3));
    let replier = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&host, &format!("/v1/conversations/{conversation}/messages"), json!({"text": "Сейчас проверю"}))
            .await
    };
    let (seen, not_seen, reply) = tokio::join!(reader, bystander, replier);
    let seen = seen.expect("the visitor's stream got the reply");
    assert!(seen.contains("event: message"), "{seen}");
    assert!(not_seen.is_none(), "another visitor's stream got the reply");
    let delivered = wait_status(&host, reply["id"].as_str().unwrap(), "delivered").await;
    assert_eq!(delivered["plan"][0]["to"], format!("web:{VISITOR}"));

    let (status, _) = host.api("GET", "/v1/channels/web/webchat/stream?visitor=short", None, None).await;
    assert_eq!(status, 400);
}

/// The id (log offset) of the first event in an SSE text.
fn first_event_id(sse: &str) -> u64 {
    sse.lines().find_map(|l| l.strip_prefix("id:")).and_then(|v| v.trim().parse().ok()).expect("an event id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_visitor_gets_the_history_and_what_it_missed() {
    let host = TestHost::start("webchat-history", CONFIG).await;
    assert_eq!(
        post(&host, ORIGIN, json!({"visitor": VISITOR, "id": "c_1", "text": "Здравствуйте"})).await.status(),
        200
    );
    host.settle().await;
    let customer = host.customer(&format!("web:{VISITOR}")).await;
    let conversation = customer["open_conversation"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/conversations/{conversation}/messages");

    // The visitor is connected for the first reply, then leaves; two replies come while away.
    let stream = format!("{}?visitor={VISITOR}", host.url("/v1/channels/web/webchat/stream"));
    let reader = read_stream(&host, stream.clone(), "first reply", Duration::from_secs(20));
    let replier = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&host, &path, json!({"text": "first reply"})).await
    };
    let (seen, _) = tokio::join!(reader, replier);
    let last_seen = first_event_id(&seen.expect("the first reply streamed"));
    // Back to back: the delivery worker sends one visitor's replies one at a time, in order.
    let second = send(&host, &path, json!({"text": "second reply"})).await;
    let third = send(&host, &path, json!({"text": "third reply"})).await;
    for reply in [&second, &third] {
        wait_status(&host, reply["id"].as_str().unwrap(), "sent").await;
    }

    // Back with Last-Event-ID: the two missed replies, in order, and then they are delivered.
    let response = host
        .http
        .get(&stream)
        .header("origin", ORIGIN)
        .header("last-event-id", last_seen.to_string())
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while !text.contains("third reply") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), body.next())
            .await
            .expect("missed replies")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(!text.contains("first reply"), "nothing twice: {text}");
    let (second_at, third_at) =
        (text.find("second reply").expect("second"), text.find("third reply").unwrap());
    assert!(second_at < third_at, "in order: {text}");
    wait_status(&host, third["id"].as_str().unwrap(), "delivered").await;

    // A reloaded page asks for the history: this channel's messages, oldest first.
    let (status, history) =
        host.api("GET", &format!("/v1/channels/web/webchat/history?visitor={VISITOR}"), None, None).await;
    assert_eq!(status, 200, "{history}");
    let items: Vec<(String, String)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["from"].as_str().unwrap().to_owned(), i["text"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ("visitor", "Здравствуйте"),
        ("agent", "first reply"),
        ("agent", "second reply"),
        ("agent", "third reply"),
    ];
    assert_eq!(items, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert!(history["after"].as_u64().unwrap() >= last_seen);
    let (_, nobody) = host
        .api("GET", "/v1/channels/web/webchat/history?visitor=v_ffffffffffffffffffffffffffffffff", None, None)
        .await;
    assert_eq!(nobody["items"], json!([]));
    let (status, _) = host.api("GET", "/v1/channels/web/webchat/history?visitor=short", None, None).await;
    assert_eq!(status, 400);
}
