//! Email out over SMTP, end to end against a real SMTP server (aiosmtpd, started by the
//! test; `tests/run.sh` installs it): a raw email comes in, an agent replies, the reply goes
//! through the email connector and the host's `seam:plugin/smtp` to the relay (STARTTLS
//! with a certificate the host must verify, AUTH), and a bounce quoting its Message-ID marks
//! it failed. Refusals by the relay fail or retry the message as SMTP says.

use seam_tests::host::TestHost;
use seam_tests::providers::{history, post_webhook, send, wait_status};
use seam_tests::smtp::{PASSWORD, SmtpRelay, USER};
use serde_json::json;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/email");

/// The email channel's config, sending through the relay on `port` with `security`.
fn channel(port: u16, security: &str, extra: &str) -> String {
    format!(
        r#"
{extra}
[[channels]]
id = "email"
plugin = "email-connector"
config = {{ secret = "mail-secret", send-api = "smtp", smtp-host = "127.0.0.1", smtp-port = "{port}", smtp-security = "{security}", smtp-username = "{USER}", smtp-password = "{PASSWORD}", from = "Acme Support <support@acme.example>" }}
smtp = ["smtp://127.0.0.1:{port}"]
"#
    )
}

/// Posts a raw RFC 5322 message to the email channel.
async fn mail_in(host: &TestHost, raw: Vec<u8>) {
    let headers = [("content-type", "message/rfc822".to_owned()), ("x-seam-token", "mail-secret".to_owned())];
    post_webhook(host, "email", &headers, raw).await;
    host.settle().await;
}

/// A minimal email from `from`, making that address a customer.
fn simple_mail(from: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@acme.example\r\nSubject: Hello\r\nMessage-ID: <{id}>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHi, please write back.\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_goes_out_over_starttls_and_its_bounce_fails_it() {
    let dir = seam_tests::scratch("smtp-tls-cert");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert_file, key_file) = (dir.join("relay.pem"), dir.join("relay.key"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let relay = SmtpRelay::start("smtp-tls-relay", Some((&cert_file, &key_file)));
    let host = TestHost::start_with("smtp-tls", &channel(relay.port, "starttls", ""), vec![cert_file]).await;

    mail_in(&host, std::fs::read(format!("{FIXTURES}/mail_with_quote.eml")).unwrap()).await;
    let customer = host.customer("email:sony@chatwoot.com").await;
    let customer_id = customer["id"].as_str().unwrap();
    let timeline = host.get(&format!("/v1/customers/{customer_id}/timeline")).await;
    let inbound = &timeline["items"][0]["event"]["payload"];
    let conversation = customer["open_conversation"]["id"].as_str().expect("conversation");
    let reply = send(
        &host,
        &format!("/v1/conversations/{conversation}/messages"),
        json!({"text": "Спасибо! Forwarding works now.", "subject": "Re: Checking mail forwarding to cw inbox",
               "reply_to": inbound["external_id"]}),
    )
    .await;
    let id = reply["id"].as_str().unwrap().to_owned();

    let got = relay.wait_for(1).await;
    let mail = &got[0];
    assert!(mail.tls, "the session was upgraded with STARTTLS");
    assert_eq!(mail.user.as_deref(), Some(USER), "the connector logged in");
    assert_eq!(mail.mail_from, "support@acme.example", "bounces go to the sender");
    assert_eq!(mail.rcpt_tos, ["sony@chatwoot.com"]);
    assert!(mail.header("From").unwrap().contains("<support@acme.example>"), "{}", mail.text());
    assert_eq!(mail.header("To").as_deref(), Some("<sony@chatwoot.com>"));
    assert_eq!(mail.header("Subject").as_deref(), Some("Re: Checking mail forwarding to cw inbox"));
    let in_reply_to = mail.header("In-Reply-To").unwrap_or_default();
    assert!(in_reply_to.contains("CAFkiBVwJjO"), "threaded under the customer's mail: {in_reply_to}");
    assert_eq!(mail.header("X-Seam-Message-Id").as_deref(), Some(id.as_str()));
    let sent = wait_status(&host, &id, "sent").await;
    let provider_id = sent["provider_ids"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        mail.header("Message-ID"),
        Some(format!("<{provider_id}>")),
        "the provider id is the Message-ID"
    );

    // The recipient's server bounces it: a Gmail DSN (fixture) quoting our Message-ID.
    let bounce = std::fs::read_to_string(format!("{FIXTURES}/bounced_gmail.eml")).unwrap().replace(
        "<conversation/93775311-9416-4428-964b-862001f8a8b2/messages/27855337@gmail.com>",
        &format!("<{provider_id}>"),
    );
    mail_in(&host, bounce.into_bytes()).await;
    let failed = wait_status(&host, &id, "failed").await;
    assert!(
        failed["reason"].as_str().unwrap_or_default().contains("550"),
        "the bounce's diagnostic: {failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relays_refusals_fail_or_retry_the_message() {
    let relay = SmtpRelay::start("smtp-refusals-relay", None);
    let outbound = "[outbound]\nmax-attempts = 2\nretry-base-ms = 50\nretry-max-ms = 100\n";
    let host = TestHost::start("smtp-refusals", &channel(relay.port, "none", outbound)).await;
    mail_in(&host, simple_mail("reject-me@example.com", "a1@example.com")).await;
    mail_in(&host, simple_mail("later-please@example.com", "a2@example.com")).await;
    mail_in(&host, simple_mail("fine@example.com", "a3@example.com")).await;
    let send_to = |identity: &'static str| {
        let host = &host;
        async move {
            let customer = host.customer(identity).await;
            let queued = send(
                host,
                "/v1/messages",
                json!({"customer": customer["id"], "channel": "email", "text": "Hello"}),
            )
            .await;
            queued["id"].as_str().unwrap().to_owned()
        }
    };

    // 550 from the relay: rejected at once, with the relay's words, and dead-lettered.
    let rejected = send_to("email:reject-me@example.com").await;
    let failed = wait_status(&host, &rejected, "failed").await;
    assert_eq!(history(&failed), ["queued:email", "rejected:email", "dead-lettered:email"]);
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("550") && reason.contains("Recipient address rejected"), "{reason}");

    // 451: retried, then given up after max-attempts.
    let later = send_to("email:later-please@example.com").await;
    let failed = wait_status(&host, &later, "failed").await;
    let steps = history(&failed);
    assert_eq!(steps.iter().filter(|s| *s == "retry-later:email").count(), 2, "{steps:?}");
    assert!(failed["reason"].as_str().unwrap_or_default().contains("451"), "{failed}");

    // The relay took nothing of those two, and the next message goes through.
    let fine = send_to("email:fine@example.com").await;
    wait_status(&host, &fine, "sent").await;
    let got = relay.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_tos, ["fine@example.com"]);
    assert!(!got[0].tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_the_channel_does_not_grant_is_never_contacted() {
    let relay = SmtpRelay::start("smtp-denied-relay", None);
    // The grant names another port: the host refuses before connecting.
    let config = channel(relay.port, "none", "")
        .replace(&format!("smtp = [\"smtp://127.0.0.1:{}\"]", relay.port), "smtp = [\"smtp://127.0.0.1:1\"]");
    let host = TestHost::start("smtp-denied", &config).await;
    mail_in(&host, simple_mail("fine@example.com", "b1@example.com")).await;
    let customer = host.customer("email:fine@example.com").await;
    let queued =
        send(&host, "/v1/messages", json!({"customer": customer["id"], "channel": "email", "text": "Hello"}))
            .await;
    let failed = wait_status(&host, queued["id"].as_str().unwrap(), "failed").await;
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not in capabilities.smtp"), "{reason}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(relay.delivered().is_empty());
}
