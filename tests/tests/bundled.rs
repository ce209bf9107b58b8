//! Every export of every bundled plugin, called through the real host, and the host
//! imports they use (config, secrets, log, outbound HTTP).

use seam::bundled::{BUNDLED, BundledPlugin};
use seam::runtime::bindings::channel::{DeliveryResult, HttpRequest, OutboundMessage, WebhookError};
use seam::runtime::bindings::types::{Event, Identity};
use seam_tests::{message_context, runtime, stand_in, webhook};
use std::collections::BTreeMap;

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bundled_plugin_loads_with_zero_config() {
    let rt = runtime(None, 5);
    assert!(BUNDLED.len() >= 2, "keyword router and webhook connector are bundled");
    for plugin in BUNDLED {
        rt.load(plugin.source().unwrap(), &BTreeMap::new())
            .await
            .unwrap_or_else(|e| panic!("bundled {} does not load: {e}", plugin.name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyword_router_routes_russian_and_english() {
    let rt = runtime(None, 5);
    let source = BundledPlugin::find("keyword-router").unwrap().source().unwrap();
    rt.load(source, &BTreeMap::new()).await.unwrap();
    let cases = [
        ("Здравствуйте, у меня проблема с доступом", "support"),
        ("Приложение не работает!", "support"),
        ("Где мой счёт за октябрь?", "billing"),
        ("Хочу купить годовой тариф", "sales"),
        ("My payment failed twice", "billing"),
        ("The app is broken", "support"),
        ("Can I get a quote for 50 seats?", "sales"),
        ("Добрый день", "general"),
    ];
    for (text, queue) in cases {
        let d = rt.route("keyword-router", &message_context(text)).await.unwrap().unwrap();
        assert_eq!(d.queue.as_deref(), Some(queue), "{text}: {}", d.reason);
    }
    // Config from the operator replaces the defaults (the config import).
    let source = BundledPlugin::find("keyword-router").unwrap().source().unwrap();
    rt.load(source, &config(&[("rules", "vip: срочно, urgent"), ("default-queue", "inbox")])).await.unwrap();
    let d = rt.route("keyword-router", &message_context("СРОЧНО перезвоните")).await.unwrap().unwrap();
    assert_eq!((d.queue.as_deref(), d.tags.as_slice()), (Some("vip"), &["keyword:срочно".to_string()][..]));
    let d = rt.route("keyword-router", &message_context("у меня проблема")).await.unwrap().unwrap();
    assert_eq!(d.queue.as_deref(), Some("inbox"));
    // A broken rule is the plugin's typed error, not a trap.
    rt.load(
        BundledPlugin::find("keyword-router").unwrap().source().unwrap(),
        &config(&[("rules", "no colon here")]),
    )
    .await
    .unwrap();
    let err = rt.route("keyword-router", &message_context("x")).await.unwrap().unwrap_err();
    assert_eq!(err, "rules line 1: expected `queue: keyword, ...`");
}

fn signed(body: &[u8], secret: &str) -> HttpRequest {
    let sig = seam_sdk::signature::hmac_sha256(secret.as_bytes(), body);
    webhook("POST", &[("x-seam-signature", &format!("sha256={}", hex(&sig)))], body)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_connector_every_export() {
    let (port, seen) = stand_in().await;
    let rt = runtime(None, 5);
    let mut source = BundledPlugin::find("webhook-connector").unwrap().source().unwrap();
    // The operator grants the stand-in's literal address.
    source.manifest.capabilities.http = Some(vec![format!("http://127.0.0.1:{port}")]);
    let cfg = config(&[
        ("secret", "s3cret"),
        ("send-url", &format!("http://127.0.0.1:{port}/")),
        ("field-sender-kind", "phone"),
    ]);
    let (plugin, _) = rt.load(source, &cfg).await.unwrap();

    // describe (called at load)
    let info = plugin.channel().expect("describe ran at load");
    assert_eq!((info.kind.as_str(), info.identity_kind.as_str()), ("webhook", "phone"));

    // handle-webhook: signed, two messages in one body
    let body = br#"[{"id":"a1","from":"+79161234567","name":"Anna","text":"hi","timestamp":1700000000},{"id":"a2","from":"+79161234567","text":"again"}]"#;
    let mut cfg_events = cfg.clone();
    cfg_events.insert("field-events".into(), "/".into());
    let mut source = BundledPlugin::find("webhook-connector").unwrap().source().unwrap();
    source.manifest.capabilities.http = Some(vec![format!("http://127.0.0.1:{port}")]);
    rt.load(source, &cfg_events).await.unwrap();
    let outcome = rt.handle_webhook("webhook-connector", &signed(body, "s3cret")).await.unwrap().unwrap();
    assert_eq!(outcome.response.status, 200);
    assert_eq!(outcome.events.len(), 2);
    match &outcome.events[0] {
        Event::Message(m) => {
            assert_eq!(m.external_id, "a1");
            assert_eq!((m.sender.kind.as_str(), m.sender.value.as_str()), ("phone", "+79161234567"));
            assert_eq!(m.sender_name.as_deref(), Some("Anna"));
            assert_eq!(m.sent_at, Some(1_700_000_000_000));
        }
        other => panic!("expected a message, got {other:?}"),
    }

    // handle-webhook: bad signature and malformed body are typed errors, not traps
    let tampered = signed(body, "wrong");
    let err = rt.handle_webhook("webhook-connector", &tampered).await.unwrap().unwrap_err();
    assert!(matches!(err, WebhookError::Unauthorized(_)), "{err:?}");
    let err =
        rt.handle_webhook("webhook-connector", &signed(b"{not json", "s3cret")).await.unwrap().unwrap_err();
    assert!(matches!(&err, WebhookError::Malformed(m) if m.contains("JSON")), "{err:?}");

    // send: POSTs to the stand-in through the outbound HTTP capability
    let message = OutboundMessage {
        id: "out-1".into(),
        to: Identity { kind: "phone".into(), value: "+79161234567".into() },
        text: Some("Здравствуйте! Чем помочь?".into()),
        attachments: Vec::new(),
        template: None,
        reply_to: Some("a1".into()),
        subject: None,
        extras: None,
    };
    let result = rt.send("webhook-connector", &message).await.unwrap();
    assert!(matches!(&result, DeliveryResult::Accepted(id) if id == "provider-out-1"), "{result:?}");
    let posted = seen.lock().unwrap().clone();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["text"], "Здравствуйте! Чем помочь?");
    assert_eq!(posted[0]["to"]["value"], "+79161234567");

    // send to a URL outside the grant is refused by the host and reported as rejected
    let mut source = BundledPlugin::find("webhook-connector").unwrap().source().unwrap();
    source.manifest.capabilities.http = Some(vec![]);
    rt.load(source, &cfg).await.unwrap();
    let result = rt.send("webhook-connector", &message).await.unwrap();
    assert!(matches!(&result, DeliveryResult::Rejected(r) if r.contains("capabilities.http")), "{result:?}");

    // poll: a webhook connector has nothing to pull and keeps the cursor
    let polled = rt.poll("webhook-connector", Some("c-1")).await.unwrap().unwrap();
    assert!(polled.events.is_empty());
    assert_eq!(polled.cursor.as_deref(), Some("c-1"));

    // per-plugin metrics recorded every export
    let metrics = rt.metrics().encode();
    for export in ["handle-webhook", "send", "poll"] {
        assert!(
            metrics.contains(&format!("plugin=\"webhook-connector\",export=\"{export}\",outcome=\"ok\"")),
            "{export} missing from metrics"
        );
    }
}
