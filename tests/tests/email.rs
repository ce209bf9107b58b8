//! Email end to end: a raw RFC 5322 message (fixture) comes in through the email connector,
//! quoted history stripped and threaded; an agent replies; the SendGrid stand-in gets the
//! mail with the threading headers.

use seam_tests::host::TestHost;
use seam_tests::providers::{post_webhook, send, wait_status};
use seam_tests::standin::{StandIn, sendgrid_ok};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_email_in_and_a_reply_out_through_sendgrid() {
    let sendgrid = StandIn::start(sendgrid_ok).await;
    let config = format!(
        r#"
[[channels]]
id = "email"
plugin = "email-connector"
config = {{ secret = "mail-secret", send-api = "sendgrid", api-key = "SG.key", from = "Support <support@example.com>", api-base = "{s}" }}
http = ["{s}"]
"#,
        s = sendgrid.base()
    );
    let host = TestHost::start("email-e2e", &config).await;
    let raw =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/email/mail_with_quote.eml")).unwrap();
    let headers = [("content-type", "message/rfc822".to_owned()), ("x-seam-token", "mail-secret".to_owned())];
    post_webhook(&host, "email", &headers, raw).await;
    host.settle().await;
    let customer = host.customer("email:sony@chatwoot.com").await;
    let customer_id = customer["id"].as_str().unwrap();
    let timeline = host.get(&format!("/v1/customers/{customer_id}/timeline")).await;
    let message = &timeline["items"][0]["event"]["payload"];
    let text = message["text"].as_str().unwrap_or_default();
    assert!(!text.is_empty() && !text.contains("wrote:"), "quoted history is stripped: {text:?}");
    let conversation = customer["open_conversation"]["id"].as_str().expect("conversation").to_owned();

    let reply = send(
        &host,
        &format!("/v1/conversations/{conversation}/messages"),
        json!({"text": "Thanks, forwarding works.", "subject": "Re: Checking mail forwarding to cw inbox",
               "reply_to": message["external_id"]}),
    )
    .await;
    assert_eq!(reply["plan"][0]["to"], "email:sony@chatwoot.com");
    let got = sendgrid.wait_for(1).await;
    assert_eq!(got[0].path, "/v3/mail/send");
    assert_eq!(got[0].header("authorization"), Some("Bearer SG.key"));
    let mail = got[0].json();
    assert_eq!(mail["personalizations"][0]["to"][0]["email"], "sony@chatwoot.com");
    assert_eq!(mail["from"]["email"], "support@example.com");
    assert!(mail["headers"]["In-Reply-To"].as_str().unwrap_or_default().contains("CAFkiBVwJjO"), "{mail}");
    let sent = wait_status(&host, reply["id"].as_str().unwrap(), "sent").await;
    assert_eq!(sent["provider_ids"][0]["id"], "sg-standin-1");
}
