//! End to end for Viber and Facebook Messenger, with the providers' own payloads: the
//! payload comes in through the real connector, an agent replies, the stand-in receives
//! the Send API request, and the provider's delivery report marks the message delivered.

use seam_sdk::signature::hmac_sha256;
use seam_tests::fixture;
use seam_tests::host::TestHost;
use seam_tests::providers::{history, meta_webhook, post_webhook, send, wait_status};
use seam_tests::standin::{StandIn, messenger_ok, viber_ok};
use serde_json::json;

const VIBER_TOKEN: &str = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9";
const FB_SECRET: &str = "fb-app-secret";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn start(name: &str) -> (TestHost, StandIn, StandIn) {
    let viber = StandIn::start(viber_ok).await;
    let fb = StandIn::start(messenger_ok).await;
    let config = format!(
        r#"
[[channels]]
id = "viber"
plugin = "viber-connector"
config = {{ auth-token = "{VIBER_TOKEN}", api-base = "{v}" }}
http = ["{v}"]

[[channels]]
id = "messenger"
plugin = "messenger-connector"
config = {{ app-secret = "{FB_SECRET}", verify-token = "vt", page-access-token = "page-token", api-base = "{f}/v21.0" }}
http = ["{f}"]
"#,
        v = viber.base(),
        f = fb.base()
    );
    (TestHost::start(name, &config).await, viber, fb)
}

async fn viber_webhook(host: &TestHost, body: &serde_json::Value) {
    let body = body.to_string().into_bytes();
    let signature = hex(&hmac_sha256(VIBER_TOKEN.as_bytes(), &body));
    post_webhook(host, "viber", &[("x-viber-content-signature", signature)], body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viber_message_reply_and_delivery() {
    let (host, viber, _) = start("messengers-viber").await;
    viber_webhook(&host, &fixture("viber/message_text.json")).await;
    host.settle().await;
    let customer = host.customer("viber:01234567890A=").await;
    let conversation = customer["open_conversation"]["id"].as_str().expect("conversation").to_owned();

    let reply =
        send(&host, &format!("/v1/conversations/{conversation}/messages"), json!({"text": "Hello!"})).await;
    let got = viber.wait_for(1).await;
    assert_eq!(got[0].path, "/pa/send_message");
    assert_eq!(got[0].header("x-viber-auth-token"), Some(VIBER_TOKEN));
    assert_eq!(got[0].json()["receiver"], "01234567890A=");
    assert_eq!(got[0].json()["text"], "Hello!");
    let id = reply["id"].as_str().unwrap().to_owned();
    let sent = wait_status(&host, &id, "sent").await;
    let token = sent["provider_ids"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(token, "5098034272000000001", "the big message token is kept exactly");

    let mut delivered = fixture("viber/delivered.json");
    delivered["message_token"] = serde_json::Value::String(token.clone());
    viber_webhook(&host, &delivered).await;
    let mut seen = fixture("viber/seen.json");
    seen["message_token"] = serde_json::Value::String(token);
    viber_webhook(&host, &seen).await;
    let read = wait_status(&host, &id, "read").await;
    assert_eq!(history(&read), ["queued:viber", "accepted:viber", "delivered:viber", "read:viber"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messenger_message_reply_and_delivery() {
    let (host, _, fb) = start("messengers-fb").await;
    meta_webhook(&host, "messenger", FB_SECRET, fixture("messenger/message.json").to_string().into_bytes())
        .await;
    host.settle().await;
    let customer = host.customer("messenger:1234").await;
    let conversation = customer["open_conversation"]["id"].as_str().expect("conversation").to_owned();

    let reply =
        send(&host, &format!("/v1/conversations/{conversation}/messages"), json!({"text": "Hi there"})).await;
    let got = fb.wait_for(1).await;
    assert_eq!(got[0].path, "/v21.0/me/messages");
    assert_eq!(got[0].header("authorization"), Some("Bearer page-token"));
    assert_eq!(got[0].json()["recipient"]["id"].to_string().trim_matches('"'), "1234");
    assert_eq!(got[0].json()["message"]["text"], "Hi there");
    let id = reply["id"].as_str().unwrap().to_owned();
    wait_status(&host, &id, "sent").await;

    let mut delivery = fixture("messenger/delivery.json");
    delivery["entry"][0]["messaging"][0]["delivery"]["mids"] = json!(["m_standin1"]);
    meta_webhook(&host, "messenger", FB_SECRET, delivery.to_string().into_bytes()).await;
    let delivered = wait_status(&host, &id, "delivered").await;
    assert_eq!(history(&delivered), ["queued:messenger", "accepted:messenger", "delivered:messenger"]);
}
