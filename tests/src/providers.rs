//! Talking to a test host the way providers do: webhooks signed like WhatsApp and Twilio
//! sign them, and waiting on an outbound message's status.

use crate::host::TestHost;
use seam_sdk::signature::{hmac_sha1, hmac_sha256};
use serde_json::Value;
use std::time::Duration;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Posts `body` to `channel`'s webhook with extra `headers`; asserts a 2xx.
pub async fn post_webhook(host: &TestHost, channel: &str, headers: &[(&str, String)], body: Vec<u8>) {
    let mut request = host.http.post(host.url(&format!("/v1/channels/{channel}/webhook"))).body(body);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.expect("webhook request");
    let status = response.status().as_u16();
    assert!(
        (200..300).contains(&status),
        "{channel} webhook: {status} {}",
        response.text().await.unwrap_or_default()
    );
}

/// The config of a `telegram` channel (the Telegram connector) whose webhooks carry
/// `secret` and whose Bot API is the stand-in at `api`.
pub fn telegram_channel(secret: &str, api: &str) -> String {
    format!(
        r#"
[[channels]]
id = "telegram"
plugin = "telegram-connector"
config = {{ secret = "{secret}", bot-token = "123:ABC", api-base = "{api}" }}
http = ["{api}"]
"#
    )
}

/// Posts a Telegram `update` to the `telegram` channel with its secret token; asserts a 2xx.
pub async fn telegram_update(host: &TestHost, secret: &str, update: &Value) {
    let headers = [
        ("x-telegram-bot-api-secret-token", secret.to_owned()),
        ("content-type", "application/json".to_owned()),
    ];
    post_webhook(host, "telegram", &headers, update.to_string().into_bytes()).await;
}

/// A Meta (WhatsApp, Messenger) webhook signed with `app_secret` (`X-Hub-Signature-256`).
pub async fn meta_webhook(host: &TestHost, channel: &str, app_secret: &str, body: Vec<u8>) {
    let signature = format!("sha256={}", hex(&hmac_sha256(app_secret.as_bytes(), &body)));
    let headers = [("x-hub-signature-256", signature), ("content-type", "application/json".to_owned())];
    post_webhook(host, channel, &headers, body).await;
}

/// A Twilio form webhook of `fields`, signed for `url` with `auth_token` (`X-Twilio-Signature`).
pub async fn twilio_webhook(
    host: &TestHost,
    channel: &str,
    auth_token: &str,
    url: &str,
    fields: &[(String, String)],
) {
    use base64::Engine;
    let mut sorted = fields.to_vec();
    sorted.sort();
    let mut signed = url.to_owned();
    for (k, v) in &sorted {
        signed.push_str(k);
        signed.push_str(v);
    }
    let signature =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha1(auth_token.as_bytes(), signed.as_bytes()));
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let headers =
        [("x-twilio-signature", signature), ("content-type", "application/x-www-form-urlencoded".to_owned())];
    post_webhook(host, channel, &headers, body.into_bytes()).await;
}

/// Form fields from string pairs.
pub fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Waits (up to 20 s) until outbound message `id` has `status`; returns it.
pub async fn wait_status(host: &TestHost, id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        last = host.get(&format!("/v1/messages/{id}")).await;
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("message {id} did not become {status}: {last:#}");
}

/// A message's history as `what:channel` words.
pub fn history(message: &Value) -> Vec<String> {
    message["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| format!("{}:{}", h["what"].as_str().unwrap_or(""), h["channel"].as_str().unwrap_or("")))
        .collect()
}

/// Posts a send request with the admin key; asserts 202 and returns the message.
pub async fn send(host: &TestHost, path: &str, body: Value) -> Value {
    let (status, reply) = host.api("POST", path, Some(&host.admin), Some(body)).await;
    assert_eq!(status, 202, "POST {path}: {reply}");
    reply
}

/// The event types of a customer's timeline, oldest first.
pub async fn timeline_types(host: &TestHost, customer: &str) -> Vec<String> {
    let timeline = host.get(&format!("/v1/customers/{customer}/timeline?limit=500")).await;
    timeline["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("").to_owned())
        .collect()
}
