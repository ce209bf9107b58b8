//! A router's `reply` reaches the customer: `hours-router` with `after-hours-reply` sends it
//! once, on the channel the customer wrote on (the Telegram stand-in), when a conversation
//! lands in a closed queue; later messages of the same conversation get no second reply.

use seam_tests::host::TestHost;
use seam_tests::providers::{telegram_channel, telegram_update};
use seam_tests::standin::{StandIn, telegram_ok};
use serde_json::{Value, json};

const TG_SECRET: &str = "tg-reply-secret";
const CLOSED: &str = "Мы сейчас закрыты, ответим утром";

fn config(tg: &StandIn) -> String {
    format!(
        r#"{telegram}
[router]
chain = ["keyword-router", "hours-router", "assign-router"]
config.hours-router = {{ after-hours = "support: night", after-hours-reply = "{CLOSED}" }}
"#,
        telegram = telegram_channel(TG_SECRET, &tg.base())
    )
}

async fn telegram(host: &TestHost, id: u64, text: &str) {
    let update = json!({"update_id": 70_000 + id, "message": {"message_id": id, "date": 1_763_900_000 + id,
        "text": text, "from": {"id": 4242, "first_name": "Ivan"}, "chat": {"id": 4242, "type": "private"}}});
    telegram_update(host, TG_SECRET, &update).await;
}

/// A weekday name that is not today's nor tomorrow's (UTC), so the queue is closed now.
fn another_day() -> &'static str {
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
    // 1970-01-01 was a Thursday.
    DAYS[((days + 4 + 3) % 7) as usize]
}

async fn ok(host: &TestHost, method: &str, path: &str, body: Value) -> Value {
    let (status, reply) = host.api(method, path, Some(&host.admin), Some(body)).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {reply}");
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_after_hours_reply_reaches_the_customer_once() {
    let tg = StandIn::start(telegram_ok).await;
    let host = TestHost::start("router-reply", &config(&tg)).await;
    let hours = json!({"days": [another_day()], "from": "09:00", "to": "18:00", "utc_offset": "+00:00"});
    ok(&host, "POST", "/v1/queues", json!({"id": "support", "hours": hours})).await;
    ok(&host, "POST", "/v1/queues", json!({"id": "night"})).await;

    telegram(&host, 1, "У меня проблема с заказом").await;
    host.settle().await;
    let sent = tg.wait_for(1).await;
    let body = sent[0].json();
    assert_eq!((body["chat_id"].clone(), body["text"].clone()), (json!(4242), json!(CLOSED)), "{body}");
    let customer = host.customer("telegram:4242").await;
    let conversation = host
        .get(&format!("/v1/conversations/{}", customer["open_conversation"]["id"].as_str().unwrap()))
        .await;
    assert_eq!(conversation["queue"], "night", "{conversation}");
    assert!(conversation["tags"].as_array().unwrap().contains(&json!("after-hours")), "{conversation}");

    // The reply is an outbound message of the router's, after the customer's message in
    // the conversation's timeline.
    let id = conversation["id"].as_str().unwrap();
    let messages = host.get(&format!("/v1/conversations/{id}/messages?limit=50")).await;
    let kinds: Vec<&str> =
        messages["items"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[..2], ["message.received", "message.send-requested"], "{messages}");
    let request = &messages["items"][1]["event"]["payload"];
    assert_eq!(request["content"]["text"], CLOSED, "{request}");
    assert!(request["by"].as_str().unwrap().starts_with("router:keyword-router@"), "{request}");
    let message = host.get(&format!("/v1/messages/{}", request["message"].as_str().unwrap())).await;
    assert_eq!(message["conversation"], id, "{message}");

    // A second message in the same conversation: still after hours, no second reply.
    telegram(&host, 2, "Алло?").await;
    host.settle().await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(tg.received().len(), 1, "one after-hours reply per conversation");
}
