//! End to end per channel, with the providers' own payloads (tests/fixtures): the payload
//! comes in through the real connector, the customer and conversation are in the view, an
//! agent replies, the provider stand-in receives the right request, and (where the
//! provider reports delivery) the status callback marks it delivered. Also: the reply
//! follows the customer to the channel they wrote on last, and a missed call opens a
//! conversation.

use seam_tests::fixture;
use seam_tests::host::TestHost;
use seam_tests::providers::{
    self, fields, history, send, telegram_channel, timeline_types, twilio_webhook, wait_status,
};
use seam_tests::standin::{StandIn, telegram_ok, twilio_ok};
use serde_json::{Value, json};

const TG_SECRET: &str = "tg-webhook-secret";
const TW_TOKEN: &str = "tw-auth-token";
const TW_URL: &str = "https://seam.example.com/v1/channels/sms/webhook";

fn config(tg: &StandIn, tw: &StandIn, twilio_from: &str) -> String {
    format!(
        r#"{telegram}
[[channels]]
id = "sms"
plugin = "twilio-connector"
config = {{ auth-token = "{TW_TOKEN}", webhook-url = "{TW_URL}", account-sid = "AC0123", from = "{twilio_from}", api-base = "{tw}" }}
http = ["{tw}"]
"#,
        tw = tw.base(),
        telegram = telegram_channel(TG_SECRET, &tg.base()),
    )
}

async fn telegram_update(host: &TestHost, update: &Value) {
    providers::telegram_update(host, TG_SECRET, update).await;
}

/// The fields of a `.form` fixture.
fn form_fixture(name: &str) -> Vec<(String, String)> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/twilio").join(name);
    let body = std::fs::read(&file).expect("fixture");
    form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_message_reply_and_the_reply_follows_the_customer_to_sms() {
    let tg = StandIn::start(telegram_ok).await;
    let tw = StandIn::start(twilio_ok).await;
    let host = TestHost::start("channels-telegram", &config(&tg, &tw, "+15550001111")).await;

    // A text message, then the same person shares their own phone number.
    let text = fixture("telegram/text.json");
    telegram_update(&host, &text).await;
    let mut share = text.clone();
    share["update_id"] = json!(123456790);
    share["message"]["message_id"] = json!(123457);
    share["message"].as_object_mut().unwrap().remove("text");
    share["message"]["contact"] = json!({"phone_number": "79161234567", "first_name": "Mario", "user_id": text["message"]["from"]["id"]});
    telegram_update(&host, &share).await;
    host.settle().await;
    let customer = host.customer("telegram:12345678").await;
    assert!(customer["identities"].to_string().contains("phone:+79161234567"), "{customer}");
    let conversation = customer["open_conversation"]["id"].as_str().expect("conversation").to_owned();
    let customer_id = customer["id"].as_str().unwrap().to_owned();

    let reply =
        send(&host, &format!("/v1/conversations/{conversation}/messages"), json!({"text": "Ciao Mario!"}))
            .await;
    assert_eq!(reply["plan"][0]["channel"], "telegram");
    let got = tg.wait_for(1).await;
    assert_eq!(got[0].path, "/bot123:ABC/sendMessage");
    assert_eq!(got[0].json()["chat_id"].to_string().trim_matches('"'), "12345678");
    assert_eq!(got[0].json()["text"], "Ciao Mario!");
    let sent = wait_status(&host, reply["id"].as_str().unwrap(), "sent").await;
    assert_eq!(sent["provider_ids"][0]["id"], "12345678:1001");
    // Telegram reports no delivery: `sent` is as far as it goes.

    // The customer now texts from the shared number: one customer, and the next reply
    // goes out by SMS.
    twilio_webhook(
        &host,
        "sms",
        TW_TOKEN,
        TW_URL,
        &fields(&[
            ("MessageSid", "SMin1"),
            ("From", "+79161234567"),
            ("To", "+15550001111"),
            ("Body", "Are you there?"),
            ("AccountSid", "AC0123"),
        ]),
    )
    .await;
    host.settle().await;
    assert_eq!(host.customer("phone:+79161234567").await["id"], customer_id.as_str());
    let reply =
        send(&host, &format!("/v1/conversations/{conversation}/messages"), json!({"text": "Yes!"})).await;
    assert_eq!(reply["plan"][0]["channel"], "sms", "the reply follows the customer: {reply}");
    let sms = tw.wait_for(1).await;
    assert_eq!(sms[0].field("To").as_deref(), Some("+79161234567"));
    assert_eq!(sms[0].field("From").as_deref(), Some("+15550001111"));
    assert_eq!(sms[0].field("Body").as_deref(), Some("Yes!"));
    assert!(sms[0].header("authorization").is_some_and(|a| a.starts_with("Basic ")));
    wait_status(&host, reply["id"].as_str().unwrap(), "sent").await;

    let types = timeline_types(&host, &customer_id).await;
    let messages: Vec<&str> =
        types.iter().map(String::as_str).filter(|t| t.starts_with("message.")).collect();
    assert_eq!(
        messages,
        [
            "message.received",
            "message.received",
            "message.send-requested",
            "message.attempted",
            "message.received",
            "message.send-requested",
            "message.attempted"
        ],
        "{types:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_payload_reply_and_status_callback() {
    let tg = StandIn::start(telegram_ok).await;
    let tw = StandIn::start(twilio_ok).await;
    let host = TestHost::start("channels-twilio", &config(&tg, &tw, "whatsapp:+14123456789")).await;

    twilio_webhook(&host, "sms", TW_TOKEN, TW_URL, &form_fixture("whatsapp_inbound_text.form")).await;
    host.settle().await;
    let customer = host.customer("whatsapp:31612345678").await;
    assert!(customer["identities"].to_string().contains("phone:+31612345678"), "{customer}");
    let conversation = customer["open_conversation"]["id"].as_str().expect("conversation").to_owned();

    let reply = send(
        &host,
        &format!("/v1/conversations/{conversation}/messages"),
        json!({"text": "Hello from support"}),
    )
    .await;
    let got = tw.wait_for(1).await;
    assert_eq!(got[0].path, "/2010-04-01/Accounts/AC0123/Messages.json");
    assert_eq!(got[0].field("To").as_deref(), Some("whatsapp:+31612345678"));
    assert_eq!(got[0].field("From").as_deref(), Some("whatsapp:+14123456789"));
    let id = reply["id"].as_str().unwrap().to_owned();
    let sent = wait_status(&host, &id, "sent").await;
    let sid = sent["provider_ids"][0]["id"].as_str().unwrap().to_owned();

    // The fixture's status callback, for our message's sid.
    let mut callback = form_fixture("whatsapp_status_delivered.form");
    for (k, v) in &mut callback {
        if k == "MessageSid" || k == "SmsSid" {
            *v = sid.clone();
        }
    }
    twilio_webhook(&host, "sms", TW_TOKEN, TW_URL, &callback).await;
    let delivered = wait_status(&host, &id, "delivered").await;
    assert_eq!(history(&delivered), ["queued:sms", "accepted:sms", "delivered:sms"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_call_opens_a_conversation_for_a_call_back() {
    let tg = StandIn::start(telegram_ok).await;
    let tw = StandIn::start(twilio_ok).await;
    let host = TestHost::start("channels-missed-call", &config(&tg, &tw, "+15550001111")).await;
    let call = |status: &str| {
        fields(&[
            ("CallSid", "CA0001"),
            ("CallStatus", status),
            ("Direction", "inbound"),
            ("From", "+79161234567"),
            ("To", "+15550001111"),
            ("AccountSid", "AC0123"),
        ])
    };
    twilio_webhook(&host, "sms", TW_TOKEN, TW_URL, &call("ringing")).await;
    host.settle().await;
    let customer = host.customer("phone:+79161234567").await;
    assert!(customer["open_conversation"].is_null(), "a ringing call alone opens nothing: {customer}");
    twilio_webhook(&host, "sms", TW_TOKEN, TW_URL, &call("no-answer")).await;
    host.settle().await;
    let customer = host.customer("phone:+79161234567").await;
    let conversation =
        customer["open_conversation"]["id"].as_str().expect("a missed call opens a conversation");
    let messages = host.get(&format!("/v1/conversations/{conversation}/messages")).await;
    let types: Vec<&str> =
        messages["items"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["call.updated"]);
    assert_eq!(messages["items"][0]["event"]["payload"]["status"], "NoAnswer");
}
