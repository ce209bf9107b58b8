//! Unit tests of the connector's pure functions.

use super::*;
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::serde_json::{Value, json};

const SECRET: &str = "app-s3cret";
const VERIFY: &str = "verify-me";
const PAGE_TOKEN: &str = "EAAG-page-token-xyz";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/messenger");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sign(body: &[u8], secret: &str) -> String {
    format!("sha256={}", hex(&signature::hmac_sha256(secret.as_bytes(), body)))
}

fn request(method: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: method.to_owned(),
        path: "/".to_owned(),
        query: query.to_owned(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.to_vec(),
    }
}

/// A POST of `body` signed with [`SECRET`].
fn signed(body: &[u8]) -> HttpRequest {
    request("POST", "", &[("x-hub-signature-256", &sign(body, SECRET))], body)
}

/// The events of raw `body` through the whole webhook path (signature, parsing, mapping).
fn events_of_bytes(body: &[u8]) -> Vec<Event> {
    let outcome = handle(&signed(body), Some(SECRET), None).unwrap_or_else(|e| panic!("refused: {e:?}"));
    assert_eq!(outcome.response.status, 200);
    outcome.events
}

fn events_of(body: &Value) -> Vec<Event> {
    events_of_bytes(body.to_string().as_bytes())
}

fn malformed(body: &Value) -> String {
    match handle(&signed(body.to_string().as_bytes()), Some(SECRET), None) {
        Err(WebhookError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn unauthorized(result: Result<WebhookOutcome, WebhookError>) -> String {
    match result {
        Err(WebhookError::Unauthorized(m)) => m,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

fn misconfigured(result: Result<WebhookOutcome, WebhookError>) -> String {
    match result {
        Err(WebhookError::Misconfigured(m)) => m,
        other => panic!("expected Misconfigured, got {other:?}"),
    }
}

/// A page webhook with one entry holding `items`.
fn page(items: Value) -> Value {
    json!({"object": "page", "entry": [{"id": "PAGE", "time": 1_700_000_000_999_i64, "messaging": items}]})
}

/// A messaging item from user `U1` to the page, with `member`.
fn item(member: &str, value: Value) -> Value {
    let mut item =
        json!({"sender": {"id": "U1"}, "recipient": {"id": "PAGE"}, "timestamp": 1_700_000_000_000_i64});
    item[member] = value;
    item
}

fn messages(events: &[Event]) -> Vec<&InboundMessage> {
    events.iter().filter_map(|e| if let Event::Message(m) = e { Some(m) } else { None }).collect()
}

fn channel_events<'a>(events: &'a [Event], kind: &str) -> Vec<&'a ChannelEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Channel(c) if c.kind == kind => Some(c),
            _ => None,
        })
        .collect()
}

fn deliveries(events: &[Event]) -> Vec<&DeliveryUpdate> {
    events.iter().filter_map(|e| if let Event::Delivery(d) = e { Some(d) } else { None }).collect()
}

fn payload(event: &ChannelEvent) -> Value {
    serde_json::from_str(&event.payload).expect("payload is JSON")
}

fn extras(message: &InboundMessage) -> Value {
    serde_json::from_str(message.extras.as_deref().expect("extras")).expect("extras are JSON")
}

/// `kind:value` of an optional identity (`-` for none).
fn who(identity: &Option<Identity>) -> String {
    identity.as_ref().map_or_else(|| "-".to_owned(), |i| format!("{}:{}", i.kind, i.value))
}

/// Every fixture file, raw bytes, read at test time.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(FIXTURES)
        .expect("fixture folder")
        .map(|entry| {
            let path = entry.expect("fixture entry").path();
            (path.display().to_string(), std::fs::read(&path).expect("fixture bytes"))
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn all_fixture_events() -> Vec<Event> {
    fixtures().iter().flat_map(|(_, body)| events_of_bytes(body)).collect()
}

/// Every fixture is accepted and normalized; checks that hold for every event.
#[test]
fn every_fixture_is_accepted_and_normalized() {
    let all = fixtures();
    assert!(all.len() >= 6, "only {} fixtures found", all.len());
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (name, body) in &all {
        let parsed: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let items =
            parsed["entry"].as_array().unwrap().iter().map(|e| e["messaging"].as_array().unwrap().len());
        let events = events_of_bytes(body);
        assert_eq!(events.len(), items.sum::<usize>(), "{name}: one event per item here: {events:?}");
        for event in &events {
            let kind = match event {
                Event::Message(m) => {
                    assert!(m.external_id.starts_with("mid."), "{name}: {}", m.external_id);
                    assert_eq!(m.sender.kind, "messenger", "{name}");
                    assert!(!m.sender.value.is_empty(), "{name}: empty sender");
                    assert_eq!(m.sent_at, Some(1_457_764_197_627), "{name}");
                    assert_eq!(extras(m)["message"]["mid"], m.external_id.as_str(), "{name}");
                    "message".to_owned()
                }
                Event::Delivery(d) => {
                    assert!(d.provider_id.starts_with("mid."), "{name}: {}", d.provider_id);
                    assert_eq!(d.status, DeliveryStatus::Delivered, "{name}");
                    assert_eq!(who(&d.recipient), "messenger:1234", "{name}");
                    assert!(d.at.is_some(), "{name}");
                    "delivery".to_owned()
                }
                Event::Channel(c) => {
                    assert!(!c.external_id.is_empty(), "{name}: empty channel event id");
                    assert_eq!(who(&c.customer), "messenger:1234", "{name}");
                    assert!(payload(c).is_object(), "{name}");
                    assert_eq!(c.at, Some(1_457_764_197_627), "{name}");
                    format!("channel:{}", c.kind)
                }
                other => panic!("{name}: unexpected {other:?}"),
            };
            *counts.entry(kind).or_default() += 1;
        }
        // The same body gives the same events: a retried webhook is recognisable.
        assert_eq!(format!("{events:?}"), format!("{:?}", events_of_bytes(body)), "{name}");
    }
    let expected: std::collections::BTreeMap<String, usize> = [
        ("message", 1),
        ("delivery", 1),
        ("channel:read", 1),
        ("channel:postback", 1),
        ("channel:optin", 1),
        ("channel:account-linking", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts, expected);
}

#[test]
fn fixture_contents() {
    let events = all_fixture_events();
    let [message] = messages(&events)[..] else { panic!("one message") };
    assert_eq!(message.external_id, "mid.1457764197618:41d102a3e1ae206a38");
    assert_eq!(message.text.as_deref(), Some("hello, world!"));
    assert_eq!(message.sender.value, "1234", "a numeric PSID becomes its digits");
    assert_eq!(extras(message)["recipient"]["id"], 1234);
    assert!(message.attachments.is_empty() && message.reply_to.is_none());

    let [delivery] = deliveries(&events)[..] else { panic!("one delivery") };
    assert_eq!(delivery.provider_id, "mid.1458668856218:ed81099e15d3f4f233");
    assert_eq!(delivery.at, Some(1_457_764_197_627));

    let read = channel_events(&events, "read")[0];
    assert_eq!(payload(read)["watermark"], 1_458_668_856_253_i64);
    assert_eq!(read.external_id, "read:1234:1458668856253");

    let postback = channel_events(&events, "postback")[0];
    assert_eq!(payload(postback)["payload"], "USER_DEFINED_PAYLOAD");
    assert_eq!(postback.external_id, "postback:1234:1457764197627");

    let optin = channel_events(&events, "optin")[0];
    assert_eq!(payload(optin)["ref"], "PASS_THROUGH_PARAM");
    assert!(!events.iter().any(|e| matches!(e, Event::Consent(_))), "a plain optin is no consent");

    let linking = channel_events(&events, "account-linking")[0];
    assert_eq!(payload(linking)["status"], "linked");
    assert_eq!(payload(linking)["authorization_code"], "PASS_THROUGH_AUTHORIZATION_CODE");
    assert_eq!(linking.external_id, "account-linking:1234:linked:1457764197627");

    // Channel event ids are unique across the fixtures.
    let mut ids: Vec<&str> = events
        .iter()
        .filter_map(|e| if let Event::Channel(c) = e { Some(c.external_id.as_str()) } else { None })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[test]
fn messages_with_attachments_quick_replies_and_replies() {
    let body = page(json!([item(
        "message",
        json!({
            "mid": "m_1",
            "text": "Yes please",
            "quick_reply": {"payload": "ANSWER_YES"},
            "reply_to": {"mid": "m_0"},
            "attachments": [
                {"type": "image", "payload": {"url": "https://cdn/i.jpg"}},
                {"type": "image", "payload": {"url": "https://cdn/s.png", "sticker_id": 369_239_263_222_822_u64}},
                {"type": "audio", "payload": {"url": "https://cdn/a.mp4"}},
                {"type": "video", "payload": {"url": "https://cdn/v.mp4"}},
                {"type": "file", "payload": {"url": "https://cdn/f.pdf"}},
                {"type": "location", "payload": {"coordinates": {"lat": 52.52, "long": 13.405}}, "title": "Pin"},
                {"type": "fallback", "payload": {"url": "https://example.com/article"}, "title": "An article"},
                "not an object"
            ]
        })
    )]));
    let events = events_of(&body);
    let [message] = messages(&events)[..] else { panic!("{events:?}") };
    assert_eq!(message.external_id, "m_1");
    assert_eq!(message.sender.value, "U1");
    assert_eq!(message.text.as_deref(), Some("Yes please"));
    assert_eq!(message.reply_to.as_deref(), Some("m_0"));
    assert_eq!(message.sent_at, Some(1_700_000_000_000));
    let extras = extras(message);
    assert_eq!(extras["quick_reply"], "ANSWER_YES");
    assert_eq!(extras["reply_to"]["mid"], "m_0");
    let kinds: Vec<AttachmentKind> = message.attachments.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [
            AttachmentKind::Image,
            AttachmentKind::Sticker,
            AttachmentKind::Audio,
            AttachmentKind::Video,
            AttachmentKind::Document,
            AttachmentKind::Location,
            AttachmentKind::Other,
        ]
    );
    assert_eq!(message.attachments[0].url.as_deref(), Some("https://cdn/i.jpg"));
    assert_eq!(message.attachments[1].provider_id.as_deref(), Some("369239263222822"));
    let point = message.attachments[5].location.as_ref().expect("coordinates");
    assert_eq!((point.latitude, point.longitude), (52.52, 13.405));
    assert_eq!(message.attachments[6].url.as_deref(), Some("https://example.com/article"));
    let fallback: Value = serde_json::from_str(message.attachments[6].extras.as_deref().unwrap()).unwrap();
    assert_eq!(fallback["title"], "An article");
}

#[test]
fn echoes_are_channel_events_about_the_customer() {
    let echo = json!({
        "sender": {"id": "PAGE"}, "recipient": {"id": "U1"}, "timestamp": 5,
        "message": {"is_echo": true, "app_id": 1_517_776_481_860_111_u64, "metadata": "seam-msg-9", "mid": "m_echo", "text": "Hi from the page"}
    });
    let events = events_of(&page(json!([echo])));
    assert!(messages(&events).is_empty(), "an echo is not a customer message");
    let [event] = channel_events(&events, "message-echo")[..] else { panic!("{events:?}") };
    assert_eq!(event.external_id, "m_echo");
    assert_eq!(who(&event.customer), "messenger:U1");
    let payload = payload(event);
    assert_eq!(payload["metadata"], "seam-msg-9");
    assert_eq!(payload["app_id"], 1_517_776_481_860_111_u64);
    assert_eq!(payload["text"], "Hi from the page");
    assert_eq!(event.at, Some(5));
}

#[test]
fn deliveries_reads_and_watermarks() {
    let events = events_of(&page(json!([
        item("delivery", json!({"mids": ["m_a", "m_b"], "watermark": 1_700_000_000_500_i64})),
        item("delivery", json!({"watermark": 1_700_000_000_600_i64})),
        item("read", json!({"watermark": 1_700_000_000_700_i64})),
    ])));
    let updates = deliveries(&events);
    assert_eq!(updates.iter().map(|d| d.provider_id.as_str()).collect::<Vec<_>>(), ["m_a", "m_b"]);
    assert!(
        updates.iter().all(|d| d.status == DeliveryStatus::Delivered && who(&d.recipient) == "messenger:U1")
    );
    let [read] = channel_events(&events, "read")[..] else { panic!("{events:?}") };
    assert_eq!(payload(read)["watermark"], 1_700_000_000_700_i64);
    assert_eq!(events.len(), 3, "a delivery without mids gives nothing");
    // Without a timestamp the watermark dates the delivery.
    let events =
        events_of(&page(json!([{"sender": {"id": "U1"}, "delivery": {"mids": ["m_c"], "watermark": 77}}])));
    assert_eq!(deliveries(&events)[0].at, Some(77));
}

#[test]
fn optins_postbacks_reactions_and_referrals() {
    let notification = json!({
        "type": "notification_messages",
        "payload": "DEALS",
        "notification_messages_token": "TOKEN-1",
        "notification_messages_frequency": "DAILY",
        "token_expiry_timestamp": 1_800_000_000_000_i64,
        "notification_messages_status": "RESUME NOTIFICATIONS"
    });
    let stop = json!({"type": "notification_messages", "payload": "DEALS", "notification_messages_status": "STOP NOTIFICATIONS"});
    let checkbox = json!({"ref": "checkout", "user_ref": "UREF-9"});
    let events = events_of(&page(json!([
        item("optin", notification),
        item("optin", stop),
        {"recipient": {"id": "PAGE"}, "timestamp": 9, "optin": checkbox},
        item("postback", json!({"mid": "m_pb", "title": "Start", "payload": "GET_STARTED"})),
        item("reaction", json!({"mid": "m_1", "action": "react", "reaction": "love", "emoji": "❤"})),
        item("reaction", json!({"mid": "m_1", "action": "unreact"})),
        item("referral", json!({"ref": "ad-42", "source": "ADS", "type": "OPEN_THREAD"})),
    ])));
    let consents: Vec<&ConsentChange> =
        events.iter().filter_map(|e| if let Event::Consent(c) = e { Some(c) } else { None }).collect();
    assert_eq!(consents.iter().map(|c| c.granted).collect::<Vec<_>>(), [true, false]);
    assert!(consents.iter().all(|c| c.reason == "notification_messages" && c.customer.value == "U1"));
    let optins = channel_events(&events, "optin");
    assert_eq!(optins.len(), 3);
    assert_eq!(payload(optins[0])["notification_messages_token"], "TOKEN-1");
    assert_eq!(who(&optins[2].customer), "-", "the checkbox plugin names no PSID");
    assert_eq!(optins[2].external_id, "optin:UREF-9:::9");
    assert_ne!(optins[0].external_id, optins[1].external_id);

    let [postback] = channel_events(&events, "postback")[..] else { panic!() };
    assert_eq!(postback.external_id, "m_pb");
    assert_eq!(payload(postback)["title"], "Start");

    let reactions = channel_events(&events, "reaction");
    assert_eq!(reactions.len(), 2);
    assert_eq!(payload(reactions[0])["emoji"], "❤");
    assert_eq!(payload(reactions[1])["removed"], true);
    assert_ne!(reactions[0].external_id, reactions[1].external_id);

    let [referral] = channel_events(&events, "referral")[..] else { panic!() };
    assert_eq!(payload(referral)["ref"], "ad-42");
}

#[test]
fn other_objects_and_items_are_accepted_without_events() {
    for body in [
        json!({"object": "instagram", "entry": [{"messaging": [item("message", json!({"mid": "x", "text": "hi"}))]}]}),
        json!({"object": "page", "entry": []}),
        json!({"object": "page", "entry": [{"id": "P", "time": 1}]}),
        json!({"object": "page", "entry": [{"standby": [item("message", json!({"mid": "x", "text": "hi"}))]}]}),
        json!({"object": "page", "entry": [{"changes": [{"field": "feed", "value": {}}]}]}),
        page(json!([item("pass_thread_control", json!({"new_owner_app_id": "1"}))])),
        page(json!([item("policy-enforcement", json!({"action": "block"}))])),
    ] {
        assert!(events_of(&body).is_empty(), "{body}");
    }
}

#[test]
fn malformed_bodies_name_what_is_wrong() {
    let m = match handle(&signed(b"{oops"), Some(SECRET), None) {
        Err(WebhookError::Malformed(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.contains("not valid JSON"), "{m}");
    assert!(malformed(&json!([1])).contains("not a JSON object"));
    assert!(malformed(&json!({"entry": []})).contains("no `object`"));
    assert!(malformed(&json!({"object": "page"})).contains("missing `entry`"));
    assert!(malformed(&json!({"object": "page", "entry": {}})).contains("`entry` must be an array"));
    assert!(malformed(&json!({"object": "page", "entry": [1]})).contains("entry 0 is a number"));
    assert!(malformed(&page(json!({}))).contains("`messaging` must be an array"));
    assert!(malformed(&page(json!(["x"]))).contains("messaging 0 is a string"));
    let m = malformed(&page(json!([item("message", json!({"text": "no mid"}))])));
    assert!(m.contains("entry 0, messaging 0: `message`: missing `mid`"), "{m}");
    let m = malformed(&page(json!([{"recipient": {"id": "P"}, "message": {"mid": "m", "text": "x"}}])));
    assert!(m.contains("missing `sender.id`"), "{m}");
    let m = malformed(&page(json!([{"sender": {"id": "U"}, "timestamp": "later", "message": {"mid": "m"}}])));
    assert!(m.contains("`timestamp`"), "{m}");
    let m = malformed(&page(json!([item("delivery", json!({"mids": [5]}))])));
    assert!(m.contains("mid 0 is not a string"), "{m}");
    assert!(malformed(&page(json!([item("postback", json!("x"))]))).contains("`postback` is a string"));
}

#[test]
fn signatures_are_checked_before_the_body() {
    let body = br#"{"object":"page","entry":[]}"#;
    let good = sign(body, SECRET);
    assert!(
        handle(&request("POST", "", &[("x-hub-signature-256", &good)], body), Some(SECRET), None).is_ok()
    );
    // Tampered body.
    let m = unauthorized(handle(
        &request("POST", "", &[("x-hub-signature-256", &good)], br#"{"object":"page","entry":[1]}"#),
        Some(SECRET),
        None,
    ));
    assert!(m.contains("does not match"), "{m}");
    // Wrong secret.
    let other = sign(body, "other-secret");
    unauthorized(handle(&request("POST", "", &[("x-hub-signature-256", &other)], body), Some(SECRET), None));
    // Missing header.
    let m = unauthorized(handle(&request("POST", "", &[], body), Some(SECRET), None));
    assert!(m.contains("missing `x-hub-signature-256`"), "{m}");
    // Garbage with a bad signature is unauthorized, not malformed.
    unauthorized(handle(
        &request("POST", "", &[("x-hub-signature-256", "sha256=00")], b"garbage"),
        Some(SECRET),
        None,
    ));
    // No secret configured.
    for secret in [None, Some("")] {
        let m = misconfigured(handle(
            &request("POST", "", &[("x-hub-signature-256", &good)], body),
            secret,
            None,
        ));
        assert!(m.contains("`app-secret`"), "{m}");
    }
}

#[test]
fn subscription_check() {
    let check =
        |query: &str, token: Option<&str>| handle(&request("GET", query, &[], b""), Some(SECRET), token);
    let ok = check("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444", Some(VERIFY))
        .unwrap();
    assert_eq!(ok.response.status, 200);
    assert_eq!(ok.response.body, b"1158201444");
    assert!(ok.events.is_empty());
    let m = unauthorized(check("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", Some(VERIFY)));
    assert!(m.contains("`verify-token`"), "{m}");
    unauthorized(check("hub.mode=subscribe&hub.challenge=1", Some(VERIFY)));
    let m = misconfigured(check("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1", None));
    assert!(m.contains("`verify-token`"), "{m}");
    assert!(matches!(check("", Some(VERIFY)), Err(WebhookError::Malformed(_))));
    assert!(matches!(check("hub.mode=unsubscribe", Some(VERIFY)), Err(WebhookError::Malformed(_))));
    assert!(matches!(
        check("hub.mode=subscribe&hub.verify_token=verify-me", Some(VERIFY)),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        handle(&request("PUT", "", &[], b""), Some(SECRET), Some(VERIFY)),
        Err(WebhookError::Malformed(_))
    ));
}

#[test]
fn describe_reports_messenger() {
    let info = channel_info();
    assert_eq!((info.kind.as_str(), info.identity_kind.as_str()), ("messenger", "messenger"));
    assert_eq!(
        info.features,
        ChannelFeatures::TEXT
            | ChannelFeatures::MEDIA
            | ChannelFeatures::RICH
            | ChannelFeatures::DELIVERY_STATUS
            | ChannelFeatures::READ_STATUS
    );
    assert_eq!(info.max_text_length, Some(2000));
}

// ----- outbound -----

fn config() -> SendConfig {
    SendConfig {
        api_base: "https://graph.facebook.com/v21.0".to_owned(),
        page_access_token: PAGE_TOKEN.to_owned(),
    }
}

fn outbound(text: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        id: "msg-1".to_owned(),
        to: messenger_identity("6789"),
        text: text.map(str::to_owned),
        attachments: Vec::new(),
        template: None,
        reply_to: None,
        subject: None,
        extras: None,
    }
}

fn attachment(kind: AttachmentKind) -> Attachment {
    Attachment {
        kind,
        url: None,
        provider_id: None,
        mime_type: None,
        file_name: None,
        size: None,
        caption: None,
        location: None,
        extras: None,
    }
}

fn media(kind: AttachmentKind, url: &str) -> Attachment {
    Attachment { url: Some(url.to_owned()), ..attachment(kind) }
}

fn bodies(message: &OutboundMessage) -> Vec<Value> {
    message_bodies(message).unwrap_or_else(|e| panic!("{e}"))
}

fn build_error(message: &OutboundMessage) -> String {
    message_bodies(message).unwrap_err()
}

fn accepted(result: DeliveryResult) -> String {
    match result {
        DeliveryResult::Accepted(id) => id,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

fn rejected(result: DeliveryResult) -> String {
    match result {
        DeliveryResult::Rejected(reason) => reason,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

fn retry(result: DeliveryResult) -> RetryHint {
    match result {
        DeliveryResult::RetryLater(hint) => hint,
        other => panic!("expected RetryLater, got {other:?}"),
    }
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status,
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn graph_error_body(code: i64, subcode: Option<i64>, message: &str) -> String {
    let mut error = json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"});
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    json!({ "error": error }).to_string()
}

#[test]
fn text_request() {
    let requests = build_requests(&outbound(Some("Hello ✓")), &config()).unwrap();
    let [request] = requests.as_slice() else { panic!("{requests:?}") };
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://graph.facebook.com/v21.0/me/messages");
    assert!(!request.url.contains(PAGE_TOKEN), "the token is never in the URL");
    let header = |name: &str| {
        request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    assert_eq!(header("authorization"), Some(format!("Bearer {PAGE_TOKEN}").as_str()));
    assert_eq!(header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "recipient": {"id": "6789"},
            "messaging_type": "RESPONSE",
            "message": {"text": "Hello ✓", "metadata": "msg-1"}
        })
    );
}

#[test]
fn recipients_templates_and_limits() {
    let mut message = outbound(Some("hi"));
    message.to = Identity { kind: "phone".to_owned(), value: "+1555".to_owned() };
    assert!(build_error(&message).contains("`phone` identity"));
    message.to = messenger_identity(" ");
    assert!(build_error(&message).contains("empty"));
    let mut message = outbound(Some("hi"));
    message.template =
        Some(Template { name: "t".to_owned(), language: "en".to_owned(), parameters: Vec::new() });
    assert!(build_error(&message).contains("no templates"));
    assert!(build_error(&outbound(None)).contains("nothing to send"));
    assert!(build_error(&outbound(Some(&"x".repeat(2001)))).contains("2001 characters"));
    assert_eq!(bodies(&outbound(Some(&"x".repeat(2000)))).len(), 1);
}

#[test]
fn attachments_go_one_message_each() {
    let mut message = outbound(Some("Here you go"));
    message.attachments = vec![
        Attachment {
            caption: Some("the menu".to_owned()),
            ..media(AttachmentKind::Image, "https://cdn/menu.jpg")
        },
        Attachment { provider_id: Some("1857777774821032".to_owned()), ..attachment(AttachmentKind::Video) },
        media(AttachmentKind::Voice, "https://cdn/v.mp3"),
        media(AttachmentKind::Document, "https://cdn/f.pdf"),
        media(AttachmentKind::Sticker, "https://cdn/s.png"),
        Attachment {
            location: Some(GeoPoint { latitude: 52.52, longitude: 13.405 }),
            extras: Some(json!({"name": "Office", "address": "Main St 1"}).to_string()),
            ..attachment(AttachmentKind::Location)
        },
        Attachment {
            extras: Some(json!({"name": "Bob", "phone_number": "+49301234567"}).to_string()),
            ..attachment(AttachmentKind::Contact)
        },
    ];
    let all = bodies(&message);
    let parts: Vec<&Value> = all.iter().map(|b| &b["message"]).collect();
    assert_eq!(parts[0]["text"], "Here you go");
    assert_eq!(
        parts[1]["attachment"],
        json!({"type": "image", "payload": {"url": "https://cdn/menu.jpg", "is_reusable": true}})
    );
    assert_eq!(parts[2]["text"], "the menu", "a caption follows its attachment");
    assert_eq!(
        parts[3]["attachment"],
        json!({"type": "video", "payload": {"attachment_id": "1857777774821032"}})
    );
    assert_eq!(parts[4]["attachment"]["type"], "audio");
    assert_eq!(parts[5]["attachment"]["type"], "file");
    assert_eq!(parts[6]["attachment"]["type"], "image");
    assert_eq!(
        parts[7]["text"],
        "Office\nMain St 1\nhttps://www.google.com/maps/search/?api=1&query=52.52,13.405"
    );
    assert_eq!(parts[8]["text"], "Bob: +49301234567");
    assert_eq!(all.len(), 9);
    assert!(all.iter().all(|b| b["recipient"]["id"] == "6789" && b["message"]["metadata"] == "msg-1"));

    let failing = |a: Attachment| {
        let mut message = outbound(None);
        message.attachments = vec![a];
        build_error(&message)
    };
    assert!(failing(attachment(AttachmentKind::Image)).contains("neither a url nor a provider-id"));
    assert!(failing(attachment(AttachmentKind::Location)).contains("no coordinates"));
    assert!(failing(attachment(AttachmentKind::Contact)).contains("`name` and `phone_number`"));
}

#[test]
fn extras_choose_the_messaging_type_tag_and_quick_replies() {
    let mut message = outbound(Some("We are back"));
    message.extras = Some(json!({"tag": "HUMAN_AGENT"}).to_string());
    let body = &bodies(&message)[0];
    assert_eq!(
        (body["messaging_type"].as_str(), body["tag"].as_str()),
        (Some("MESSAGE_TAG"), Some("HUMAN_AGENT"))
    );

    message.extras = Some(json!({"messaging_type": "update"}).to_string());
    let body = &bodies(&message)[0];
    assert_eq!(body["messaging_type"], "UPDATE");
    assert!(body.get("tag").is_none());

    let replies = json!([{"content_type": "text", "title": "Yes", "payload": "YES"}]);
    message.attachments = vec![media(AttachmentKind::Image, "https://cdn/a.jpg")];
    message.extras = Some(json!({"quick_replies": replies}).to_string());
    let all = bodies(&message);
    assert!(all[0]["message"].get("quick_replies").is_none());
    assert_eq!(all[1]["message"]["quick_replies"], replies);

    for (extras, error) in [
        (json!({"messaging_type": "MESSAGE_TAG"}), "needs a `tag`"),
        (json!({"messaging_type": "RESPONSE", "tag": "HUMAN_AGENT"}), "goes with messaging_type MESSAGE_TAG"),
        (json!({"messaging_type": "SPAM"}), "expected one of"),
        (json!({"tag": 5}), "`tag` must be a non-empty string"),
        (json!({"quick_replies": "yes"}), "`quick_replies` must be an array"),
    ] {
        message.extras = Some(extras.to_string());
        let e = build_error(&message);
        assert!(e.contains(error), "{extras}: {e}");
    }
    message.extras = Some("not json".to_owned());
    assert!(build_error(&message).contains("not a JSON object"));
}

#[test]
fn send_config_from_lookup() {
    let none = |_: &str| None;
    let err = SendConfig::from_lookup(none, none).unwrap_err();
    assert!(err.contains("`page-access-token`"), "{err}");
    let config = SendConfig::from_lookup(none, |k: &str| {
        (k == "page-access-token").then(|| format!(" {PAGE_TOKEN}\n"))
    })
    .unwrap();
    assert_eq!(config.api_base, DEFAULT_API_BASE);
    assert_eq!(config.page_access_token, PAGE_TOKEN);
    assert!(!format!("{config:?}").contains(PAGE_TOKEN));
    let config = SendConfig::from_lookup(
        |k: &str| (k == "api-base").then(|| "http://127.0.0.1:9/v1/".to_owned()),
        |_: &str| Some("t".to_owned()),
    )
    .unwrap();
    assert_eq!(config.messages_url(), "http://127.0.0.1:9/v1/me/messages");
}

#[test]
fn success_takes_the_message_id() {
    let ok = r#"{"recipient_id":"1254477777772919","message_id":"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"}"#;
    assert!(accepted(classify_response(200, None, ok.as_bytes(), "msg-1")).starts_with("m_AG5Hz2Uq7tuw"));
    assert_eq!(accepted(classify_response(200, None, b"{}", "msg-1")), "msg-1");
}

#[test]
fn throttling_and_outages_are_retried() {
    let hint = retry(classify_response(429, Some("12"), b"", "m"));
    assert_eq!(hint.after_ms, Some(12_000));
    for code in [4, 613, 80006, 1200, 1, 2] {
        let body = graph_error_body(code, None, "Calls to this api have exceeded the rate limit.");
        let hint = retry(classify_response(400, Some("3"), body.as_bytes(), "m"));
        assert!(hint.reason.starts_with(&format!("{code}: Calls")), "{}", hint.reason);
        assert_eq!(hint.after_ms, Some(3000));
    }
    let hint = retry(classify_response(500, None, graph_error_body(100, None, "oops").as_bytes(), "m"));
    assert_eq!(hint.reason, "100: oops");
    let hint = retry(classify_response(502, None, b"<html>bad gateway</html>", "m"));
    assert!(hint.reason.contains("502") && hint.reason.contains("bad gateway"), "{}", hint.reason);
}

#[test]
fn permanent_errors_are_rejected_with_meta_s_words() {
    let reason = |code: i64, subcode: Option<i64>, message: &str| {
        rejected(classify_response(400, None, graph_error_body(code, subcode, message).as_bytes(), "m"))
    };
    assert_eq!(
        reason(551, Some(1_545_041), "This person isn't available right now."),
        "551: This person isn't available right now. (subcode 1545041): this person is not available right now"
    );
    let window = reason(10, Some(2_018_278), "This message is sent outside of allowed window.");
    assert!(
        window.starts_with("10: This message is sent outside of allowed window. (subcode 2018278)"),
        "{window}"
    );
    assert!(window.contains("24-hour window"), "{window}");
    assert_eq!(
        reason(100, Some(2_018_001), "No matching user found"),
        "100: No matching user found (subcode 2018001)"
    );
    let token = reason(190, Some(463), "Error validating access token: Session has expired");
    assert!(token.contains("page-access-token is invalid or expired"), "{token}");
    assert!(reason(200, None, "Requires pages_messaging permission").contains("permission"));
    // A body that is not a Graph error.
    let other = rejected(classify_response(404, None, b"Not Found", "m"));
    assert_eq!(other, "Messenger API answered 404: Not Found");
    let empty = rejected(classify_response(403, None, b"", "m"));
    assert!(empty.contains("(empty body)"), "{empty}");
}

#[test]
fn transport_errors() {
    assert!(rejected(classify_error(&HttpError::Denied, "https://x")).contains("capabilities.http"));
    assert!(
        rejected(classify_error(&HttpError::InvalidRequest("bad".to_owned()), "x"))
            .contains("cannot be used")
    );
    let hint = retry(classify_error(&HttpError::Transport("Timeout".to_owned()), "x"));
    assert!(hint.reason.contains("Timeout") && hint.after_ms.is_none());
}

#[test]
fn deliver_sends_parts_in_order() {
    let mut message = outbound(Some("first"));
    message.attachments = vec![
        media(AttachmentKind::Image, "https://cdn/a.jpg"),
        media(AttachmentKind::Image, "https://cdn/b.jpg"),
    ];
    let mut seen: Vec<Value> = Vec::new();
    let sent = deliver(&message, Ok(config()), |request: &Request| {
        seen.push(serde_json::from_slice(&request.body).unwrap());
        Ok(response(200, &[], &format!(r#"{{"recipient_id":"6789","message_id":"m_{}"}}"#, seen.len())))
    });
    assert_eq!(accepted(sent.result), "m_1");
    assert!(sent.warnings.is_empty());
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0]["message"]["text"], "first");
    assert_eq!(seen[2]["message"]["attachment"]["payload"]["url"], "https://cdn/b.jpg");

    let mut calls = 0;
    let sent = deliver(&message, Ok(config()), |_: &Request| {
        calls += 1;
        Ok(response(400, &[], &graph_error_body(551, None, "This person isn't available right now.")))
    });
    assert!(rejected(sent.result).starts_with("551:"));
    assert_eq!(calls, 1);

    let mut calls = 0;
    let sent = deliver(&message, Ok(config()), |_: &Request| {
        calls += 1;
        match calls {
            1 => Ok(response(200, &[], r#"{"message_id":"m_first"}"#)),
            _ => Ok(response(503, &[], "down")),
        }
    });
    assert_eq!(accepted(sent.result), "m_first");
    assert_eq!(calls, 2);
    assert!(sent.warnings[0].contains("part 2 of 3") && sent.warnings[0].contains("part 3 was not tried"));

    let sent =
        deliver(&message, Err("secret `page-access-token` is not set".to_owned()), |_: &Request| panic!());
    assert!(rejected(sent.result).contains("page-access-token"));
}

#[test]
fn the_page_token_never_reaches_a_reason() {
    let message = outbound(Some("x"));
    let echo = graph_error_body(
        190,
        None,
        &format!("Invalid OAuth access token - Cannot parse access token {PAGE_TOKEN}"),
    );
    let reason =
        rejected(deliver(&message, Ok(config()), |_: &Request| Ok(response(400, &[], &echo))).result);
    assert!(!reason.contains(PAGE_TOKEN) && reason.contains("<page-access-token>"), "{reason}");
    let hint = retry(
        deliver(&message, Ok(config()), |_: &Request| Err(HttpError::Transport(PAGE_TOKEN.to_owned())))
            .result,
    );
    assert!(!hint.reason.contains(PAGE_TOKEN));
}
