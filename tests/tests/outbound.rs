//! Outbound end to end: a provider payload comes in through a real connector, an agent
//! replies through the API, the delivery worker sends through the connector to a local
//! stand-in of the provider's send API, the provider's status callback comes back, and the
//! message's state and the customer's timeline show every step. Also: fallback to another
//! channel, retry-after, opt-out, idempotency keys, dead letters and re-drive.

use seam_tests::host::TestHost;
use seam_tests::providers::{fields, history, meta_webhook, send, twilio_webhook, wait_status};
use seam_tests::standin::{Received, StandIn, twilio_ok, whatsapp_error, whatsapp_ok};
use serde_json::{Value, json};
use std::time::Duration;

const WA_SECRET: &str = "wa-app-secret";
const TW_TOKEN: &str = "tw-auth-token";
const TW_URL: &str = "https://seam.example.com/v1/channels/sms/webhook";
/// A valid mobile number (so WhatsApp's id links to a `phone` identity SMS can reach).
const WA_ID: &str = "79161234567";

fn config(wa: &StandIn, tw: &StandIn, extra: &str) -> String {
    format!(
        r#"
[outbound]
retry-base-ms = 200
retry-max-ms = 2000
{extra}

[[channels]]
id = "whatsapp"
plugin = "whatsapp-connector"
config = {{ app-secret = "{WA_SECRET}", verify-token = "v", access-token = "wa-token", phone-number-id = "1122334455667", api-base = "{wa}/v21.0" }}
http = ["{wa}"]

[[channels]]
id = "sms"
plugin = "twilio-connector"
config = {{ auth-token = "{TW_TOKEN}", webhook-url = "{TW_URL}", account-sid = "AC0123", from = "+15550001111", api-base = "{tw}" }}
http = ["{tw}"]
"#,
        wa = wa.base(),
        tw = tw.base()
    )
}

async fn hosts(name: &str, extra: &str) -> (TestHost, StandIn, StandIn) {
    let wa = StandIn::start(whatsapp_ok).await;
    let tw = StandIn::start(twilio_ok).await;
    let host = TestHost::start(name, &config(&wa, &tw, extra)).await;
    (host, wa, tw)
}

/// A WhatsApp fixture with the fixture's user id replaced by [`WA_ID`] and `edit` applied.
fn whatsapp_payload(file: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value = seam_tests::fixture(&format!("whatsapp/{file}"));
    let text = value.to_string().replace("972987654321", WA_ID);
    value = serde_json::from_str(&text).expect("json");
    edit(&mut value);
    value.to_string().into_bytes()
}

/// The customer writes on WhatsApp; the customer, their conversation and the identity
/// hint are there.
async fn customer_writes_on_whatsapp(host: &TestHost) -> Value {
    customer_writes_on_whatsapp_as(host, WA_ID).await
}

/// The same for the WhatsApp user `wa_id`.
async fn customer_writes_on_whatsapp_as(host: &TestHost, wa_id: &str) -> Value {
    let payload = whatsapp_payload("message__text.json", |v| {
        let text = v.to_string().replace(WA_ID, wa_id);
        *v = serde_json::from_str(&text).expect("json");
    });
    meta_webhook(host, "whatsapp", WA_SECRET, payload).await;
    host.settle().await;
    host.customer(&format!("whatsapp:{wa_id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_reply_is_sent_and_its_delivery_lands_in_the_timeline() {
    let (host, wa, _) = hosts("outbound-whatsapp", "").await;
    let customer = customer_writes_on_whatsapp(&host).await;
    assert!(
        customer["identities"].to_string().contains("phone:+79161234567"),
        "the WhatsApp id linked a phone: {customer}"
    );
    let conversation = customer["open_conversation"]["id"].as_str().expect("open conversation").to_owned();

    let queued = send(
        &host,
        &format!("/v1/conversations/{conversation}/messages"),
        json!({"text": "Здравствуйте! Чем помочь?"}),
    )
    .await;
    assert_eq!(queued["plan"][0]["channel"], "whatsapp", "the reply goes where the customer wrote: {queued}");
    let id = queued["id"].as_str().expect("id").to_owned();

    let got = wa.wait_for(1).await;
    assert_eq!(got[0].path, "/v21.0/1122334455667/messages");
    assert_eq!(got[0].header("authorization"), Some("Bearer wa-token"));
    let body = got[0].json();
    assert_eq!(body["to"], WA_ID);
    assert_eq!(body["type"], "text");
    assert_eq!(body["text"]["body"], "Здравствуйте! Чем помочь?");

    let sent = wait_status(&host, &id, "sent").await;
    assert_eq!(sent["provider_ids"][0]["id"], "wamid.standin1");

    // The provider reports delivery of that message id.
    meta_webhook(
        &host,
        "whatsapp",
        WA_SECRET,
        whatsapp_payload("message_status__delivered.json", |v| {
            v["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = json!("wamid.standin1");
        }),
    )
    .await;
    let delivered = wait_status(&host, &id, "delivered").await;
    assert_eq!(history(&delivered), ["queued:whatsapp", "accepted:whatsapp", "delivered:whatsapp"]);

    let customer_id = customer["id"].as_str().expect("id");
    let timeline = host.get(&format!("/v1/customers/{customer_id}/timeline")).await;
    let kinds: Vec<&str> =
        timeline["items"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    let tail: Vec<&str> =
        kinds.iter().copied().filter(|k| k.starts_with("message.") || k.starts_with("delivery.")).collect();
    assert_eq!(
        tail,
        ["message.received", "message.send-requested", "message.attempted", "delivery.updated"],
        "timeline: {kinds:?}"
    );
    let conv = host.get(&format!("/v1/conversations/{conversation}/messages")).await;
    assert_eq!(conv["items"].as_array().unwrap().len(), 4, "the reply is in the conversation: {conv:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_channel_falls_back_to_sms_and_the_timeline_shows_both_attempts() {
    let (host, wa, tw) = hosts("outbound-fallback", "").await;
    let customer = customer_writes_on_whatsapp(&host).await;
    let customer_id = customer["id"].as_str().unwrap();
    wa.then(400, &[], whatsapp_error(131026, "Message undeliverable"));

    let queued = send(
        &host,
        "/v1/messages",
        json!({"customer": customer_id, "channel": "whatsapp", "fallback": ["sms"], "text": "Your order shipped"}),
    )
    .await;
    let plan: Vec<&str> =
        queued["plan"].as_array().unwrap().iter().map(|p| p["channel"].as_str().unwrap()).collect();
    assert_eq!(plan, ["whatsapp", "sms"]);
    assert_eq!(queued["plan"][1]["to"], "phone:+79161234567");
    let id = queued["id"].as_str().unwrap().to_owned();

    let sms = tw.wait_for(1).await;
    assert_eq!(sms[0].path, "/2010-04-01/Accounts/AC0123/Messages.json");
    assert_eq!(sms[0].field("To").as_deref(), Some("+79161234567"));
    assert_eq!(sms[0].field("Body").as_deref(), Some("Your order shipped"));
    let sent = wait_status(&host, &id, "sent").await;
    assert_eq!(
        history(&sent),
        ["queued:whatsapp", "rejected:whatsapp", "fallback:sms", "accepted:sms"],
        "{sent:#}"
    );
    assert!(sent["reason"].as_str().unwrap().contains("131026"), "the provider's reason is kept: {sent}");

    // Twilio's status callback for the SMS.
    let sid = sent["provider_ids"][0]["id"].as_str().unwrap().to_owned();
    twilio_webhook(
        &host,
        "sms",
        TW_TOKEN,
        TW_URL,
        &fields(&[
            ("MessageSid", &sid),
            ("MessageStatus", "delivered"),
            ("To", "+79161234567"),
            ("From", "+15550001111"),
            ("AccountSid", "AC0123"),
        ]),
    )
    .await;
    wait_status(&host, &id, "delivered").await;
    let timeline = host.get(&format!("/v1/customers/{customer_id}/timeline")).await;
    let attempts: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message.attempted")
        .map(|i| i["channel"].as_str().unwrap())
        .collect();
    assert_eq!(attempts, ["whatsapp", "sms"], "every attempt is in the timeline");

    // The outbound records and their indexes are a pure function of the log too.
    host.settle().await;
    let before = seam_tests::host::dump(&host.state.views);
    assert!(before.iter().any(|(k, _)| k.first() == Some(&b'p')), "no provider index was written");
    seam::pipeline::rebuild(host.state.log.as_ref(), &host.state.views, |_, _| {}).unwrap();
    assert!(
        seam_tests::host::dump(&host.state.views) == before,
        "views after a rebuild differ from the live ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_not_delivered_in_time_falls_back() {
    let (host, wa, tw) = hosts("outbound-timeout", "").await;
    let customer = customer_writes_on_whatsapp(&host).await;
    let queued = send(
        &host,
        "/v1/messages",
        json!({"customer": customer["id"], "channel": "whatsapp", "fallback": ["sms"], "fallback_after_secs": 1, "text": "Code 1234"}),
    )
    .await;
    let id = queued["id"].as_str().unwrap().to_owned();
    wa.wait_for(1).await;
    tw.wait_for(1).await;
    let sent = wait_status(&host, &id, "sent").await;
    assert_eq!(
        history(&sent),
        ["queued:whatsapp", "accepted:whatsapp", "timed-out:whatsapp", "fallback:sms", "accepted:sms"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_one_customer_go_out_one_at_a_time_in_order_while_customers_overlap() {
    let (host, wa, _) = hosts("outbound-order", "").await;
    let people = [
        customer_writes_on_whatsapp(&host).await,
        customer_writes_on_whatsapp_as(&host, "79161234568").await,
    ];
    // A provider slow to answer: sends made at the same time overlap at the stand-in.
    wa.slow(300);
    let mut ids = Vec::new();
    for i in 0..3 {
        for (p, person) in people.iter().enumerate() {
            let text = format!("to {p}, part {i}");
            let queued = send(&host, "/v1/messages", json!({"customer": person["id"], "text": text})).await;
            ids.push(queued["id"].as_str().expect("id").to_owned());
        }
    }
    let got = wa.wait_for(6).await;
    for (p, to) in [WA_ID, "79161234568"].into_iter().enumerate() {
        let texts: Vec<String> = got
            .iter()
            .map(Received::json)
            .filter(|body| body["to"] == to)
            .map(|body| body["text"]["body"].as_str().unwrap_or_default().to_owned())
            .collect();
        let queued: Vec<String> = (0..3).map(|i| format!("to {p}, part {i}")).collect();
        assert_eq!(texts, queued, "{to} got its messages in the order they were queued");
    }
    assert_eq!(
        wa.max_concurrent(),
        2,
        "one send at a time per customer, and the two customers' sends at the same time"
    );
    for id in &ids {
        wait_status(&host, id, "sent").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honored() {
    let (host, wa, _) = hosts("outbound-retry", "").await;
    let customer = customer_writes_on_whatsapp(&host).await;
    wa.then(429, &[("retry-after", "1")], whatsapp_error(130429, "Rate limit hit"));
    let queued = send(&host, "/v1/messages", json!({"customer": customer["id"], "text": "hi"})).await;
    let id = queued["id"].as_str().unwrap().to_owned();
    let sent = wait_status(&host, &id, "sent").await;
    assert_eq!(history(&sent), ["queued:whatsapp", "retry-later:whatsapp", "accepted:whatsapp"]);
    let at = |i: usize| sent["history"][i]["at"].as_i64().unwrap();
    assert!(at(2) - at(1) >= 1000, "the retry waited for retry-after: {sent:#}");
    assert_eq!(wa.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_out_channels_are_refused_with_a_clear_error() {
    let (host, _, tw) = hosts("outbound-consent", "").await;
    twilio_webhook(
        &host,
        "sms",
        TW_TOKEN,
        TW_URL,
        &fields(&[
            ("MessageSid", "SM1"),
            ("From", "+79031234567"),
            ("To", "+15550001111"),
            ("Body", "STOP"),
            ("AccountSid", "AC0123"),
        ]),
    )
    .await;
    host.settle().await;
    let customer = host.customer("phone:+79031234567").await;
    let (status, body) = host
        .api(
            "POST",
            "/v1/messages",
            Some(&host.admin),
            Some(json!({"customer": customer["id"], "channel": "sms", "text": "Sale!"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "send-refused");
    assert!(body["error"]["message"].as_str().unwrap().contains("opted out"), "{body}");
    // Automatic choice finds no other channel and says why.
    let (status, body) = host
        .api(
            "POST",
            "/v1/messages",
            Some(&host.admin),
            Some(json!({"customer": customer["id"], "text": "Sale!"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no channel can reach"), "{body}");
    // START opts back in.
    twilio_webhook(
        &host,
        "sms",
        TW_TOKEN,
        TW_URL,
        &fields(&[
            ("MessageSid", "SM2"),
            ("From", "+79031234567"),
            ("To", "+15550001111"),
            ("Body", "START"),
            ("AccountSid", "AC0123"),
        ]),
    )
    .await;
    host.settle().await;
    let queued =
        send(&host, "/v1/messages", json!({"customer": customer["id"], "text": "Welcome back"})).await;
    assert_eq!(queued["plan"][0]["channel"], "sms");
    tw.wait_for(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_sends_once() {
    let (host, wa, _) = hosts("outbound-idempotent", "").await;
    customer_writes_on_whatsapp(&host).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = host
            .http
            .post(host.url("/v1/messages"))
            .bearer_auth(&host.admin)
            .header("idempotency-key", "order-42-shipped")
            .json(&json!({"identity": format!("whatsapp:{WA_ID}"), "text": "Shipped"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        let replayed = response.headers().get("idempotent-replayed").is_some();
        let body: Value = response.json().await.unwrap();
        ids.push((body["id"].as_str().unwrap().to_owned(), replayed));
    }
    assert_eq!(ids[0].0, ids[1].0, "the same key gives the same message");
    assert_eq!((ids[0].1, ids[1].1), (false, true));
    wait_status(&host, &ids[0].0, "sent").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(wa.received().len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_can_be_redriven() {
    let (host, wa, _) = hosts("outbound-dead", "").await;
    let customer = customer_writes_on_whatsapp(&host).await;
    wa.then(400, &[], whatsapp_error(131026, "Message undeliverable"));
    let queued =
        send(&host, "/v1/messages", json!({"customer": customer["id"], "channel": "whatsapp", "text": "x"}))
            .await;
    let id = queued["id"].as_str().unwrap().to_owned();
    let failed = wait_status(&host, &id, "failed").await;
    assert_eq!(history(&failed), ["queued:whatsapp", "rejected:whatsapp", "dead-lettered:whatsapp"]);
    let dead = host.get("/v1/dead-letters").await;
    assert_eq!(dead["items"][0]["id"], id.as_str());

    // Re-driving something that is not dead is refused.
    let (status, _) = host.api("POST", "/v1/messages/msg_nope/redrive", Some(&host.admin), None).await;
    assert_eq!(status, 404);
    let (status, body) =
        host.api("POST", &format!("/v1/messages/{id}/redrive"), Some(&host.admin), None).await;
    assert_eq!(status, 202, "{body}");
    wait_status(&host, &id, "sent").await;
    let dead = host.get("/v1/dead-letters").await;
    assert_eq!(dead["items"].as_array().unwrap().len(), 0);
    let (status, body) =
        host.api("POST", &format!("/v1/messages/{id}/redrive"), Some(&host.admin), None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(wa.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_send_requests_get_clear_errors() {
    let (host, _, _) = hosts("outbound-errors", "").await;
    let customer = customer_writes_on_whatsapp(&host).await;
    let cases = [
        (json!({"customer": customer["id"]}), 400, "empty-message"),
        (json!({"text": "x"}), 400, "recipient-required"),
        (json!({"customer": "cus_nope", "text": "x"}), 409, "send-refused"),
        (json!({"customer": customer["id"], "channel": "fax", "text": "x"}), 409, "send-refused"),
        (
            json!({"customer": customer["id"], "text": "x", "attachments": [{"kind": "hologram", "url": "https://x"}]}),
            400,
            "invalid-attachment",
        ),
        (json!({"identity": "nonsense", "text": "x"}), 400, "invalid-identity"),
    ];
    for (body, status, code) in cases {
        let (got, reply) = host.api("POST", "/v1/messages", Some(&host.admin), Some(body.clone())).await;
        assert_eq!((got, reply["error"]["code"].as_str()), (status, Some(code)), "{body} -> {reply}");
    }
    let (got, _) = host.api("POST", "/v1/messages", None, Some(json!({"text": "x"}))).await;
    assert_eq!(got, 401);
}
