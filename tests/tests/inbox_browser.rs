//! The inbox web UI in a real browser (headless Chromium over WebDriver): an agent signs in
//! with an API key, sees the customer's conversation with Telegram and SMS in one timeline,
//! sees a new message arrive live, replies (the reply reaches the Telegram stand-in),
//! transfers and resolves. Screenshots are kept in `target/test-artifacts/`.

use fantoccini::Locator;
use seam::api::auth::Role;
use seam_tests::browser::Browser;
use seam_tests::host::TestHost;
use seam_tests::providers::{telegram_channel, telegram_update};
use seam_tests::standin::{StandIn, telegram_ok};
use serde_json::{Value, json};

const TG_SECRET: &str = "tg-inbox-secret";

fn config(tg: &StandIn) -> String {
    format!(
        r#"{telegram}
[[channels]]
id = "sms"
plugin = "webhook-connector"
config = {{ secret = "test-secret", field-id = "MessageSid", field-sender = "From", field-sender-kind = "phone", field-text = "Body", field-time = "" }}
"#,
        telegram = telegram_channel(TG_SECRET, &tg.base())
    )
}

async fn telegram(host: &TestHost, id: u64, message: Value) {
    let mut message = message;
    message["message_id"] = json!(id);
    message["date"] = json!(1_763_900_000 + id);
    message["from"] = json!({"id": 4242, "first_name": "Ivan"});
    message["chat"] = json!({"id": 4242, "type": "private"});
    let update = json!({"update_id": 90_000 + id, "message": message});
    telegram_update(host, TG_SECRET, &update).await;
}

async fn ok(host: &TestHost, method: &str, path: &str, body: Value) {
    let (status, reply) = host.api(method, path, Some(&host.admin), Some(body)).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {reply}");
}

/// Clicks `css`, finding it again if a live refresh replaced it in between.
async fn click(browser: &Browser, css: &str) {
    for _ in 0..20 {
        if let Ok(element) = browser.client.find(Locator::Css(css)).await
            && element.click().await.is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("could not click {css}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_works_a_cross_channel_conversation_in_the_browser() {
    let tg = StandIn::start(telegram_ok).await;
    let host = TestHost::start("inbox-browser", &config(&tg)).await;
    ok(&host, "POST", "/v1/queues", json!({"id": "support", "skills": ["support"]})).await;
    ok(&host, "POST", "/v1/agents", json!({"id": "anna", "skills": ["support"], "capacity": {"*": 5}})).await;
    ok(&host, "PUT", "/v1/agents/anna/status", json!({"status": "online"})).await;
    let (anna_key, _) = host.state.keys.create("anna", Role::Agent, Some("anna")).unwrap();

    // Ivan writes on Telegram, shares his phone number, then texts from that number.
    telegram(&host, 1, json!({"text": "Здравствуйте, где мой заказ?"})).await;
    telegram(
        &host,
        2,
        json!({"contact": {"phone_number": "+79161234567", "first_name": "Ivan", "user_id": 4242}}),
    )
    .await;
    let (status, body) = host
        .webhook("sms", &json!({"MessageSid": "SM1", "From": "+79161234567", "Body": "Это я, пишу по SMS"}))
        .await;
    assert_eq!(status, 200, "{body}");
    host.settle().await;
    let customer = host.customer("telegram:4242").await;
    let conversation =
        customer["open_conversation"]["id"].as_str().expect("one open conversation").to_owned();
    assert_eq!(host.customer("phone:+79161234567").await["id"], customer["id"], "one customer");

    // Anna signs in with her key; a wrong key is refused with the API's message.
    let browser = Browser::start("inbox-browser-profile").await;
    let client = &browser.client;
    client.goto(&host.url("/")).await.unwrap();
    client.find(Locator::Css("#key")).await.unwrap().send_keys("seam_nope_nope").await.unwrap();
    click(&browser, "#signin button").await;
    browser.wait_text("#signin-error", "Sign-in failed").await;
    client.find(Locator::Css("#key")).await.unwrap().clear().await.unwrap();
    client.find(Locator::Css("#key")).await.unwrap().send_keys(&anna_key).await.unwrap();
    click(&browser, "#signin button").await;
    browser.wait_text("#who", "anna").await;
    browser.wait_text("#live", "live").await;

    // "Mine" lists the conversation the router gave her; it opens with both channels.
    let item = format!("#list li[data-id='{conversation}']");
    browser.wait_text(&item, "sms").await;
    browser.screenshot("inbox-signed-in").await;
    click(&browser, &item).await;
    browser.wait_text("#timeline", "Это я, пишу по SMS").await;
    let marks = client
        .execute(
            "return [...document.querySelectorAll('#timeline .entry.in .mark')].map(m => m.textContent)",
            vec![],
        )
        .await
        .unwrap();
    // The text, the contact share (a message too) and the SMS.
    assert_eq!(marks, json!(["telegram", "telegram", "sms"]), "channel marks, in order");
    browser.wait_text("#timeline", "Здравствуйте, где мой заказ?").await;
    browser.wait_text("#identities", "phone:+79161234567").await;
    browser.wait_text("#identities", "telegram:4242").await;

    // A new message arrives live, without a reload.
    telegram(&host, 3, json!({"text": "Проблема: курьер не приехал"})).await;
    browser.wait_text("#timeline", "Проблема: курьер не приехал").await;
    browser.screenshot("inbox-conversation").await;

    // She replies on the customer's last channel (Telegram): it reaches the stand-in.
    let reply = "Сейчас свяжусь с курьером";
    client.find(Locator::Css("#reply-text")).await.unwrap().send_keys(reply).await.unwrap();
    click(&browser, "#reply-send").await;
    let sent = tg.wait_for(1).await;
    let body = sent[0].json();
    assert_eq!((body["chat_id"].clone(), body["text"].clone()), (json!(4242), json!(reply)), "{body}");
    browser.wait_text("#timeline .entry.out", reply).await;

    // Transfer to `support`, then resolve.
    click(&browser, "#transfer-queue option[value='support']").await;
    click(&browser, "#transfer").await;
    browser.wait_text("#conversation-place", "support").await;
    click(&browser, "#resolve").await;
    browser.wait_text("#conversation-status", "resolved").await;
    browser.screenshot("inbox-resolved").await;
    let c = host.get(&format!("/v1/conversations/{conversation}")).await;
    assert_eq!((c["status"].clone(), c["queue"].clone()), (json!("resolved"), json!("support")), "{c}");
    browser.close().await;
}
