//! Unit tests of the connector's pure functions.

use super::*;
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::serde_json::{Value, json};

const TOKEN: &str = "44dafb7e0f40021e-61a47a1e6778d187-f2c5a676a07050b3";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/viber");
const VECTORS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/signatures/viber_signature_vectors.json");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sign(body: &[u8], token: &str) -> String {
    hex(&signature::hmac_sha256(token.as_bytes(), body))
}

fn request(method: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: method.to_owned(),
        path: "/".to_owned(),
        query: String::new(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.to_vec(),
    }
}

/// A POST of `body` signed with [`TOKEN`].
fn signed(body: &[u8]) -> HttpRequest {
    request("POST", &[("x-viber-content-signature", &sign(body, TOKEN))], body)
}

/// The events of raw `body` through the whole webhook path (signature, parsing, mapping).
fn events_of_bytes(body: &[u8]) -> Vec<Event> {
    let outcome = handle(&signed(body), Some(TOKEN)).unwrap_or_else(|e| panic!("refused: {e:?}"));
    assert_eq!(outcome.response.status, 200);
    assert!(outcome.response.body.is_empty());
    outcome.events
}

fn events_of(body: &Value) -> Vec<Event> {
    events_of_bytes(body.to_string().as_bytes())
}

/// The only event of `body`.
fn only_event(body: &Value) -> Event {
    let mut events = events_of(body);
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

fn only_message(body: &Value) -> InboundMessage {
    match only_event(body) {
        Event::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn malformed_bytes(body: &[u8]) -> String {
    match handle(&signed(body), Some(TOKEN)) {
        Err(WebhookError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn malformed(body: &Value) -> String {
    malformed_bytes(body.to_string().as_bytes())
}

/// `kind:value` of an optional identity (`-` for none).
fn who(identity: &Option<Identity>) -> String {
    identity.as_ref().map_or_else(|| "-".to_owned(), |i| format!("{}:{}", i.kind, i.value))
}

fn extras(message: &InboundMessage) -> Value {
    serde_json::from_str(message.extras.as_deref().expect("extras")).expect("extras are JSON")
}

fn attachment_extras(attachment: &Attachment) -> Value {
    serde_json::from_str(attachment.extras.as_deref().expect("extras")).expect("extras are JSON")
}

/// A `message` callback carrying `message`.
fn message_callback(token: Value, message: Value) -> Value {
    json!({
        "event": "message",
        "timestamp": 1_700_000_000_123_i64,
        "chat_hostname": "SN-CHAT-05_",
        "message_token": token,
        "sender": {"id": "u1==", "name": "Anna", "avatar": "https://a/1.jpg", "language": "de", "country": "DE", "api_version": 10},
        "message": message,
        "silent": false
    })
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

/// Every fixture is accepted (signed as Viber signs it) and normalized; checks that hold
/// for every event.
#[test]
fn every_fixture_is_accepted_and_normalized() {
    let all = fixtures();
    assert!(all.len() >= 12, "only {} fixtures found", all.len());
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for (name, body) in &all {
        let parsed: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let events = events_of_bytes(body);
        assert!(events.len() <= 1, "{name}: one callback is at most one event, got {events:?}");
        if events.is_empty() {
            // Only callbacks that concern no user give nothing.
            assert!(parsed.get("sender").is_none() && parsed.get("user").is_none(), "{name}: dropped");
            assert!(parsed.get("user_id").is_none(), "{name}: dropped");
            *counts.entry("none").or_default() += 1;
        }
        for event in &events {
            let kind = match event {
                Event::Message(m) => {
                    assert!(!m.external_id.is_empty(), "{name}: empty message id");
                    assert!(m.external_id.bytes().all(|b| b.is_ascii_digit()), "{name}: {}", m.external_id);
                    assert_eq!(m.external_id, json::text_at(&parsed, "message_token").unwrap(), "{name}");
                    assert_eq!(m.sender.kind, "viber", "{name}");
                    assert!(!m.sender.value.is_empty(), "{name}: empty sender");
                    assert!(m.sender_name.as_deref().is_some_and(|n| !n.is_empty()), "{name}");
                    assert_eq!(m.sent_at, Some(1_457_764_197_627), "{name}");
                    assert!(
                        m.text.as_deref().is_some_and(|t| !t.is_empty()),
                        "{name}: fixture messages are texts"
                    );
                    assert_eq!(extras(m)["sender"]["id"], m.sender.value.as_str(), "{name}");
                    "message"
                }
                Event::Delivery(d) => {
                    assert_eq!(d.provider_id, "912661846655238145", "{name}");
                    assert_eq!(d.recipient.as_ref().map(|r| r.kind.as_str()), Some("viber"), "{name}");
                    assert_eq!(d.reason.is_some(), d.status == DeliveryStatus::Failed, "{name}");
                    assert_eq!(d.at, Some(1_457_764_197_627), "{name}");
                    "delivery"
                }
                Event::Consent(c) => {
                    assert_eq!(
                        (c.customer.kind.as_str(), c.customer.value.as_str()),
                        ("viber", "01234567890A=")
                    );
                    assert_eq!(c.reason, if c.granted { "subscribed" } else { "unsubscribed" }, "{name}");
                    "consent"
                }
                Event::Channel(c) => {
                    assert_eq!(c.kind, "conversation-started", "{name}");
                    assert!(!c.external_id.is_empty(), "{name}");
                    assert!(c.customer.is_some(), "{name}");
                    assert!(serde_json::from_str::<Value>(&c.payload).unwrap().is_object(), "{name}");
                    "channel"
                }
                other => panic!("{name}: Viber gives no {other:?}"),
            };
            *counts.entry(kind).or_default() += 1;
        }
        // The same body gives the same events: a retried callback is recognisable.
        assert_eq!(format!("{events:?}"), format!("{:?}", events_of_bytes(body)), "{name}");
    }
    let expected: std::collections::BTreeMap<&str, usize> =
        [("message", 4), ("delivery", 3), ("consent", 2), ("channel", 2), ("none", 1)].into_iter().collect();
    assert_eq!(counts, expected);
}

#[test]
fn fixture_messages_keep_big_tokens_and_unicode() {
    let events = all_fixture_events();
    let messages: Vec<&InboundMessage> =
        events.iter().filter_map(|e| if let Event::Message(m) = e { Some(m) } else { None }).collect();
    // unicode_request.json: the token is a bare 19-digit number, beyond f64's exact range.
    let unicode =
        messages.iter().find(|m| m.external_id == "4912661846655238145").expect("the big-token message");
    assert!(unicode.text.as_deref().unwrap().starts_with("批封廟根縄華勢田郎報株聞。"));
    assert!(unicode.sender_name.as_deref().unwrap().starts_with("ふで都急"));
    let extras = extras(unicode);
    assert_eq!(extras["message"]["tracking_data"], "אל תעקוב אחרי!");
    assert_eq!(extras["sender"]["api_version"], 2);
    assert_eq!(extras["silent"], false);
    // The chat extension message: `chat_id` (a bare 64-bit number) is the thread, exactly.
    let chat = messages.iter().find(|m| m.thread.is_some()).expect("a chat-extension message");
    assert_eq!(chat.thread.as_deref(), Some("5048086924903818307"));
    assert_eq!(extras_of(chat)["reply_type"], "message");
    assert!(extras_of(chat).to_string().contains("5048086924903818307"), "chat_id kept exactly in extras");
    // One message has an avatar, another none.
    assert!(messages.iter().any(|m| extras_of(m)["sender"]["avatar"] == "http://avatar_url"));
    assert!(messages.iter().any(|m| extras_of(m)["sender"].get("avatar").is_none()));
    assert!(messages.iter().all(|m| m.attachments.is_empty()));
}

fn extras_of(message: &InboundMessage) -> Value {
    extras(message)
}

#[test]
fn fixture_deliveries_consents_and_conversations() {
    let events = all_fixture_events();
    let deliveries: Vec<&DeliveryUpdate> =
        events.iter().filter_map(|e| if let Event::Delivery(d) = e { Some(d) } else { None }).collect();
    let statuses: Vec<DeliveryStatus> = deliveries.iter().map(|d| d.status).collect();
    for status in [DeliveryStatus::Delivered, DeliveryStatus::Read, DeliveryStatus::Failed] {
        assert_eq!(statuses.iter().filter(|s| **s == status).count(), 1, "{status:?}");
    }
    let failed = deliveries.iter().find(|d| d.status == DeliveryStatus::Failed).unwrap();
    assert_eq!(failed.reason.as_deref(), Some("failure desc"));
    assert_eq!(who(&failed.recipient), "viber:01234567890A=");

    let consents: Vec<&ConsentChange> =
        events.iter().filter_map(|e| if let Event::Consent(c) = e { Some(c) } else { None }).collect();
    assert_eq!(consents.iter().filter(|c| c.granted).count(), 1);
    assert_eq!(consents.iter().filter(|c| !c.granted).count(), 1);
    assert!(consents.iter().all(|c| c.at == Some(1_457_764_197_627)));

    let started: Vec<&ChannelEvent> =
        events.iter().filter_map(|e| if let Event::Channel(c) = e { Some(c) } else { None }).collect();
    assert_eq!(started.len(), 2);
    for event in &started {
        assert_eq!(event.external_id, "912661846655238145");
        assert_eq!(who(&event.customer), "viber:01234567890A=");
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(payload["context"], "context info");
        assert_eq!(payload["type"], "open");
        assert_eq!(payload["user"]["name"], "viberUser");
    }
    assert!(started.iter().any(|e| e.payload.contains("\"subscribed\":true")));
    assert!(started.iter().any(|e| e.payload.contains("\"subscribed\":null")));
}

/// Every vector of the signature file holds: valid ones pass, invalid ones fail.
#[test]
fn every_signature_vector_holds() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(VECTORS).expect("vector file")).unwrap();
    let vectors = file["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 2);
    let (mut valid, mut invalid) = (0, 0);
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let token = vector["auth_token"].as_str().unwrap();
        let body = vector["body"].as_str().unwrap().as_bytes();
        let signature = vector["signature"].as_str().unwrap();
        let expected = vector["valid"].as_bool().unwrap();
        let result = check_signature(Some(token), Some(signature), body);
        assert_eq!(result.is_ok(), expected, "{name}: {result:?}");
        if expected {
            valid += 1;
            // Through the whole path as Viber would call it.
            let request = request("POST", &[("x-viber-content-signature", signature)], body);
            assert!(handle(&request, Some(token)).is_ok(), "{name}");
        } else {
            invalid += 1;
            assert!(matches!(result, Err(WebhookError::Unauthorized(_))), "{name}");
        }
        if let Some(file) = vector["body_file"].as_str() {
            let fixture = std::fs::read(format!("{FIXTURES}/{file}")).expect("body_file");
            assert_eq!(fixture, body, "{name}: the fixture is the signed body");
        }
    }
    assert!(valid >= 1 && invalid >= 1);
}

#[test]
fn signatures_are_checked_before_the_body() {
    let body = br#"{"event":"webhook","timestamp":1}"#;
    let good = sign(body, TOKEN);
    assert!(handle(&request("POST", &[("x-viber-content-signature", &good)], body), Some(TOKEN)).is_ok());
    // Upper-case hex is the same signature.
    let upper = good.to_uppercase();
    assert!(handle(&request("POST", &[("X-Viber-Content-Signature", &upper)], body), Some(TOKEN)).is_ok());

    let unauthorized = |result: Result<WebhookOutcome, WebhookError>| match result {
        Err(WebhookError::Unauthorized(m)) => m,
        other => panic!("expected Unauthorized, got {other:?}"),
    };
    // Tampered body.
    let tampered = br#"{"event":"webhook","timestamp":2}"#;
    let m = unauthorized(handle(
        &request("POST", &[("x-viber-content-signature", &good)], tampered),
        Some(TOKEN),
    ));
    assert!(m.contains("does not match"), "{m}");
    // Wrong secret.
    let other = sign(body, "another-token");
    unauthorized(handle(&request("POST", &[("x-viber-content-signature", &other)], body), Some(TOKEN)));
    // Missing header.
    let m = unauthorized(handle(&request("POST", &[], body), Some(TOKEN)));
    assert!(m.contains("missing `x-viber-content-signature`"), "{m}");
    // A garbage body with a bad signature is unauthorized, not malformed.
    unauthorized(handle(&request("POST", &[("x-viber-content-signature", "00")], b"not json"), Some(TOKEN)));
    // No token configured: refused whatever the request.
    for token in [None, Some(""), Some("  ")] {
        match handle(&request("POST", &[("x-viber-content-signature", &good)], body), token) {
            Err(WebhookError::Misconfigured(m)) => assert!(m.contains("`auth-token`"), "{m}"),
            other => panic!("expected Misconfigured, got {other:?}"),
        }
    }
}

#[test]
fn only_post_is_a_callback() {
    match handle(&request("GET", &[], b""), Some(TOKEN)) {
        Err(WebhookError::Malformed(m)) => assert!(m.contains("POST"), "{m}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn media_messages_become_attachments() {
    let picture = only_message(&message_callback(
        json!(5_098_034_274_u64),
        json!({"type": "picture", "text": "look", "media": "https://dl/p.jpg", "thumbnail": "https://dl/t.jpg", "file_name": "p.jpg", "file_size": 2048}),
    ));
    assert_eq!(picture.external_id, "5098034274");
    assert_eq!(picture.text.as_deref(), Some("look"));
    assert_eq!(picture.sent_at, Some(1_700_000_000_123));
    let [image] = picture.attachments.as_slice() else { panic!("{:?}", picture.attachments) };
    assert_eq!(image.kind, AttachmentKind::Image);
    assert_eq!(image.url.as_deref(), Some("https://dl/p.jpg"));
    assert_eq!((image.file_name.as_deref(), image.size), (Some("p.jpg"), Some(2048)));
    assert_eq!(attachment_extras(image)["thumbnail"], "https://dl/t.jpg");
    let extras = extras(&picture);
    assert_eq!(extras["sender"]["language"], "de");
    assert_eq!(extras["chat_hostname"], "SN-CHAT-05_");
    assert!(extras.get("event").is_none() && extras.get("message_token").is_none());

    let video = only_message(&message_callback(
        json!("77"),
        json!({"type": "video", "media": "https://dl/v.mp4", "size": 10_000, "duration": 12}),
    ));
    assert_eq!(video.text, None);
    assert_eq!(video.attachments[0].kind, AttachmentKind::Video);
    assert_eq!(video.attachments[0].size, Some(10_000));
    assert_eq!(attachment_extras(&video.attachments[0])["duration"], 12);

    let file = only_message(&message_callback(
        json!(78),
        json!({"type": "file", "media": "https://dl/f.pdf", "file_name": "f.pdf", "file_size": 9}),
    ));
    assert_eq!(file.attachments[0].kind, AttachmentKind::Document);
    assert_eq!(file.attachments[0].file_name.as_deref(), Some("f.pdf"));

    let sticker = only_message(&message_callback(
        json!(79),
        json!({"type": "sticker", "sticker_id": 46105, "media": "https://s/1.png"}),
    ));
    assert_eq!(sticker.attachments[0].kind, AttachmentKind::Sticker);
    assert_eq!(sticker.attachments[0].provider_id.as_deref(), Some("46105"));

    let place = only_message(&message_callback(
        json!(80),
        json!({"type": "location", "location": {"lat": 52.52, "lon": 13.405, "address": "Berlin"}}),
    ));
    let location = place.attachments[0].location.as_ref().expect("coordinates");
    assert_eq!((location.latitude, location.longitude), (52.52, 13.405));
    assert_eq!(attachment_extras(&place.attachments[0])["location"]["address"], "Berlin");

    let contact = only_message(&message_callback(
        json!(81),
        json!({"type": "contact", "contact": {"name": "Bob", "phone_number": "+49301234567"}}),
    ));
    assert_eq!(contact.attachments[0].kind, AttachmentKind::Contact);
    assert_eq!(attachment_extras(&contact.attachments[0])["contact"]["phone_number"], "+49301234567");

    let link =
        only_message(&message_callback(json!(82), json!({"type": "url", "media": "https://example.com/x"})));
    assert_eq!(link.attachments[0].kind, AttachmentKind::Other);
    assert_eq!(link.attachments[0].url.as_deref(), Some("https://example.com/x"));

    let rich = only_message(&message_callback(
        json!(83),
        json!({"type": "rich_media", "rich_media": {"Buttons": []}}),
    ));
    assert!(rich.attachments.is_empty() && rich.text.is_none());
    assert_eq!(extras_of(&rich)["message"]["type"], "rich_media");
}

#[test]
fn tokens_are_exact_text_and_never_floats() {
    // The largest 64-bit token survives digit for digit, as a number or as a string.
    let big = only_message(&message_callback(json!(u64::MAX), json!({"type": "text", "text": "x"})));
    assert_eq!(big.external_id, "18446744073709551615");
    let raw = br#"{"event":"message","message_token":9007199254740993,"sender":{"id":"a"},"message":{"type":"text","text":"x"}}"#;
    let Event::Message(m) = &events_of_bytes(raw)[0] else { panic!() };
    assert_eq!(m.external_id, "9007199254740993", "2^53+1 must not round to ...992");
    let string = only_message(&message_callback(json!(" 12345 "), json!({"type": "text", "text": "x"})));
    assert_eq!(string.external_id, "12345");
    // A float token, or none, is malformed.
    let m =
        malformed_bytes(br#"{"event":"message","message_token":4.9e18,"sender":{"id":"a"},"message":{}}"#);
    assert!(m.contains("`message_token`") && m.contains("not an integer"), "{m}");
    let m = malformed(&json!({"event": "message", "sender": {"id": "a"}, "message": {"type": "text"}}));
    assert!(m.contains("missing `message_token`"), "{m}");
    let m = malformed(&json!({"event": "delivered", "message_token": "", "user_id": "a"}));
    assert!(m.contains("`message_token` is empty"), "{m}");
}

#[test]
fn malformed_bodies_name_what_is_wrong() {
    let m = malformed_bytes(b"{not json");
    assert!(m.contains("not valid JSON"), "{m}");
    assert!(malformed(&json!([1, 2])).contains("not a JSON object"));
    assert!(malformed(&json!({"timestamp": 1})).contains("no `event`"));
    assert!(malformed(&json!({"event": 5})).contains("`event` must be a string"));
    let m = malformed(&json!({"event": "message", "message_token": 1, "message": {"type": "text"}}));
    assert!(m.contains("missing `sender`"), "{m}");
    let m =
        malformed(&json!({"event": "message", "message_token": 1, "sender": {"name": "x"}, "message": {}}));
    assert!(m.contains("`sender`: missing `id`"), "{m}");
    let m =
        malformed(&json!({"event": "message", "message_token": 1, "sender": {"id": "x"}, "message": "hi"}));
    assert!(m.contains("`message` must be an object"), "{m}");
    let m = malformed(&json!({"event": "seen", "message_token": 1, "timestamp": "soon"}));
    assert!(m.contains("`timestamp`"), "{m}");
    assert!(malformed(&json!({"event": "subscribed", "user": {}})).contains("`user`: missing `id`"));
    assert!(malformed(&json!({"event": "unsubscribed"})).contains("missing `user_id`"));
    assert!(malformed(&json!({"event": "conversation_started"})).contains("missing `user`"));
}

#[test]
fn callbacks_without_interest_are_accepted_without_events() {
    for body in [
        json!({"event": "webhook", "timestamp": 4_977_069_964_384_421_269_i64, "message_token": 1_478_683_725_125_u64}),
        json!({"event": "client_status", "timestamp": 1}),
        json!({"event": "action", "whatever": [1, 2]}),
        // Nothing of an unread callback is checked, not even its timestamp.
        json!({"event": "webhook", "timestamp": 18_446_744_073_709_551_615_u64}),
    ] {
        assert!(events_of(&body).is_empty(), "{body}");
    }
}

#[test]
fn deliveries_and_consents_from_small_payloads() {
    let Event::Delivery(seen) = only_event(
        &json!({"event": "seen", "timestamp": 5, "message_token": 5_741_311_803_571_721_087_u64, "user_id": "u=="}),
    ) else {
        panic!()
    };
    assert_eq!(seen.provider_id, "5741311803571721087");
    assert_eq!((seen.status, seen.at, seen.reason), (DeliveryStatus::Read, Some(5), None));
    assert_eq!(who(&seen.recipient), "viber:u==");

    let Event::Delivery(failed) = only_event(&json!({"event": "failed", "message_token": 9})) else {
        panic!()
    };
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(who(&failed.recipient), "-");
    assert!(failed.reason.as_deref().unwrap().contains("without a description"));

    let Event::Consent(sub) =
        only_event(&json!({"event": "subscribed", "timestamp": 7, "user": {"id": "u=="}}))
    else {
        panic!()
    };
    assert_eq!((sub.granted, sub.reason.as_str(), sub.at), (true, "subscribed", Some(7)));
    let Event::Consent(unsub) = only_event(&json!({"event": "unsubscribed", "user_id": "u=="})) else {
        panic!()
    };
    assert_eq!((unsub.granted, unsub.reason.as_str(), unsub.at), (false, "unsubscribed", None));

    // A conversation start without a token still gets a stable id.
    let body =
        json!({"event": "conversation_started", "timestamp": 11, "user": {"id": "u=="}, "type": "open"});
    let Event::Channel(started) = only_event(&body) else { panic!() };
    assert_eq!(started.external_id, "conversation-started:u==:11");
    assert_eq!(format!("{:?}", only_event(&body)), format!("{:?}", Event::Channel(started)));
}

#[test]
fn describe_reports_viber() {
    let info = channel_info();
    assert_eq!((info.kind.as_str(), info.identity_kind.as_str()), ("viber", "viber"));
    assert_eq!(
        info.features,
        ChannelFeatures::TEXT
            | ChannelFeatures::MEDIA
            | ChannelFeatures::RICH
            | ChannelFeatures::DELIVERY_STATUS
            | ChannelFeatures::READ_STATUS
    );
    assert_eq!(info.max_text_length, Some(7000));
}

// ----- outbound -----

fn config() -> SendConfig {
    SendConfig {
        api_base: "https://chatapi.viber.com".to_owned(),
        auth_token: TOKEN.to_owned(),
        sender_name: "Seam".to_owned(),
    }
}

fn outbound(text: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        id: "msg-1".to_owned(),
        to: viber_identity("01234567890A="),
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

fn media(kind: AttachmentKind, url: &str, size: Option<u64>) -> Attachment {
    Attachment { url: Some(url.to_owned()), size, ..attachment(kind) }
}

fn bodies(message: &OutboundMessage) -> Vec<Value> {
    message_bodies(message, "Seam").unwrap_or_else(|e| panic!("{e}"))
}

fn build_error(message: &OutboundMessage) -> String {
    message_bodies(message, "Seam").unwrap_err()
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

#[test]
fn text_request() {
    let requests = build_requests(&outbound(Some("Hello ✓")), &config()).unwrap();
    let [request] = requests.as_slice() else { panic!("{requests:?}") };
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://chatapi.viber.com/pa/send_message");
    let header = |name: &str| {
        request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-viber-auth-token"), Some(TOKEN));
    assert_eq!(header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "receiver": "01234567890A=",
            "min_api_version": 1,
            "sender": {"name": "Seam"},
            "tracking_data": "msg-1",
            "type": "text",
            "text": "Hello ✓"
        })
    );
}

#[test]
fn recipients_templates_and_empty_messages() {
    let mut message = outbound(Some("hi"));
    message.to = Identity { kind: "phone".to_owned(), value: "+4930".to_owned() };
    assert!(build_error(&message).contains("`phone` identity"));
    message.to = viber_identity("  ");
    assert!(build_error(&message).contains("empty"));
    let mut message = outbound(Some("hi"));
    message.template =
        Some(Template { name: "t".to_owned(), language: "en".to_owned(), parameters: Vec::new() });
    assert!(build_error(&message).contains("no template"));
    assert!(build_error(&outbound(Some("   "))).contains("nothing to send"));
    let long = "x".repeat(7001);
    assert!(build_error(&outbound(Some(&long))).contains("7001 characters"));
    assert_eq!(bodies(&outbound(Some(&"x".repeat(7000)))).len(), 1);
}

#[test]
fn text_becomes_the_description_of_a_single_picture() {
    let mut message = outbound(Some("our menu"));
    message.attachments = vec![media(AttachmentKind::Image, "https://cdn/menu.jpg", None)];
    let all = bodies(&message);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["type"], "picture");
    assert_eq!(all[0]["media"], "https://cdn/menu.jpg");
    assert_eq!(all[0]["text"], "our menu");
    assert_eq!(all[0]["tracking_data"], "msg-1");

    // The picture's own caption wins: the text goes first on its own.
    message.attachments[0].caption = Some("the menu".to_owned());
    let all = bodies(&message);
    assert_eq!((all[0]["type"].as_str(), all[1]["text"].as_str()), (Some("text"), Some("the menu")));

    // A text too long for a description goes on its own; the picture has an empty one.
    let mut message = outbound(Some(&"y".repeat(769)));
    message.attachments = vec![media(AttachmentKind::Image, "https://cdn/menu.jpg", None)];
    let all = bodies(&message);
    assert_eq!(all.len(), 2);
    assert_eq!((all[0]["type"].as_str(), all[1]["text"].as_str()), (Some("text"), Some("")));

    // Two attachments: the text goes first, each attachment follows.
    let mut message = outbound(Some("two"));
    message.attachments = vec![
        media(AttachmentKind::Image, "https://cdn/a.jpg", None),
        media(AttachmentKind::Image, "https://cdn/b.jpg", None),
    ];
    let kinds: Vec<String> =
        bodies(&message).iter().map(|b| b["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["text", "picture", "picture"]);
}

#[test]
fn files_videos_stickers_locations_and_contacts() {
    let mut message = outbound(None);
    message.attachments = vec![
        media(AttachmentKind::Document, "https://cdn/files/report.pdf?sig=1", Some(1234)),
        Attachment {
            file_name: Some("talk.ogg".to_owned()),
            ..media(AttachmentKind::Voice, "https://cdn/v", Some(99))
        },
        media(AttachmentKind::Video, "https://cdn/clip.mp4", Some(5_000_000)),
        Attachment { provider_id: Some("46105".to_owned()), ..attachment(AttachmentKind::Sticker) },
        Attachment {
            location: Some(GeoPoint { latitude: 52.5, longitude: 13.4 }),
            ..attachment(AttachmentKind::Location)
        },
        Attachment {
            extras: Some(json!({"name": "Bob", "phone_number": "+49301234567"}).to_string()),
            ..attachment(AttachmentKind::Contact)
        },
    ];
    let all = bodies(&message);
    assert_eq!(all[0]["type"], "file");
    assert_eq!((all[0]["file_name"].as_str(), all[0]["size"].as_u64()), (Some("report.pdf"), Some(1234)));
    assert_eq!(all[1]["type"], "file");
    assert_eq!(all[1]["file_name"], "talk.ogg");
    assert_eq!(
        all[2],
        json!({"receiver": "01234567890A=", "min_api_version": 1, "sender": {"name": "Seam"}, "tracking_data": "msg-1", "type": "video", "media": "https://cdn/clip.mp4", "size": 5_000_000})
    );
    assert_eq!(all[3]["sticker_id"], 46105);
    assert_eq!(all[4]["location"], json!({"lat": 52.5, "lon": 13.4}));
    assert_eq!(all[5]["contact"], json!({"name": "Bob", "phone_number": "+49301234567"}));
    assert!(all.iter().all(|b| b["receiver"] == "01234567890A=" && b["tracking_data"] == "msg-1"));

    let failing = |a: Attachment| {
        let mut message = outbound(None);
        message.attachments = vec![a];
        build_error(&message)
    };
    assert!(failing(media(AttachmentKind::Video, "https://cdn/v.mp4", None)).contains("has no size"));
    assert!(failing(media(AttachmentKind::Document, "https://cdn/", Some(1))).contains("no file name"));
    assert!(
        failing(Attachment { provider_id: Some("x1".to_owned()), ..attachment(AttachmentKind::Image) })
            .contains("no url")
    );
    assert!(
        failing(Attachment { provider_id: Some("abc".to_owned()), ..attachment(AttachmentKind::Sticker) })
            .contains("not a number")
    );
    assert!(failing(attachment(AttachmentKind::Location)).contains("no coordinates"));
    assert!(failing(attachment(AttachmentKind::Contact)).contains("`name` and `phone_number`"));
}

#[test]
fn extras_add_a_keyboard_and_the_api_version() {
    let mut message = outbound(Some("pick"));
    message.attachments = vec![
        media(AttachmentKind::Image, "https://cdn/a.jpg", None),
        media(AttachmentKind::Image, "https://cdn/b.jpg", None),
    ];
    let keyboard =
        json!({"Type": "keyboard", "Buttons": [{"ActionType": "reply", "ActionBody": "yes", "Text": "Yes"}]});
    message.extras = Some(json!({"keyboard": keyboard, "min_api_version": 3, "other": 1}).to_string());
    let all = bodies(&message);
    assert!(all.iter().all(|b| b["min_api_version"] == 3));
    assert_eq!(all[2]["keyboard"], keyboard);
    assert!(all[0].get("keyboard").is_none() && all[1].get("keyboard").is_none());

    message.extras = Some("[1]".to_owned());
    assert!(build_error(&message).contains("not a JSON object"));
    message.extras = Some(json!({"keyboard": "yes"}).to_string());
    assert!(build_error(&message).contains("keyboard"));
    message.extras = Some(json!({"min_api_version": "3"}).to_string());
    assert!(build_error(&message).contains("min_api_version"));
}

#[test]
fn send_config_from_lookup() {
    let none = |_: &str| None;
    let err = SendConfig::from_lookup(none, none).unwrap_err();
    assert!(err.contains("`auth-token`"), "{err}");
    let config =
        SendConfig::from_lookup(none, |k: &str| (k == "auth-token").then(|| format!(" {TOKEN} "))).unwrap();
    assert_eq!(config.api_base, "https://chatapi.viber.com");
    assert_eq!(config.sender_name, "Seam");
    assert_eq!(config.auth_token, TOKEN);
    assert!(!format!("{config:?}").contains(TOKEN));
    let get = |k: &str| match k {
        "api-base" => Some("http://127.0.0.1:9/".to_owned()),
        "sender-name" => Some("A very long shop name that goes on and on".to_owned()),
        _ => None,
    };
    let config = SendConfig::from_lookup(get, |_: &str| Some("t".to_owned())).unwrap();
    assert_eq!(config.send_url(), "http://127.0.0.1:9/pa/send_message");
    assert_eq!(config.sender_name.chars().count(), 28);
    assert!(config.sender_name.starts_with("A very long shop"));
}

#[test]
fn success_takes_the_message_token_exactly() {
    let ok = r#"{"status":0,"status_message":"ok","message_token":5098034274,"chat_hostname":"SN-CHAT-05_","billing_status":1}"#;
    assert_eq!(accepted(classify_response(200, None, ok.as_bytes(), "msg-1")), "5098034274");
    let big = r#"{"status":0,"status_message":"ok","message_token":5741311803571721087}"#;
    assert_eq!(accepted(classify_response(200, None, big.as_bytes(), "msg-1")), "5741311803571721087");
    let none = r#"{"status":0,"status_message":"ok"}"#;
    assert_eq!(accepted(classify_response(200, None, none.as_bytes(), "msg-1")), "msg-1");
}

#[test]
fn rate_limits_and_outages_are_retried() {
    let hint =
        retry(classify_response(200, Some("7"), br#"{"status":12,"status_message":"tooManyRequests"}"#, "m"));
    assert_eq!(hint.after_ms, Some(7000));
    assert!(hint.reason.starts_with("12: tooManyRequests"), "{}", hint.reason);
    let hint = retry(classify_response(429, Some("30"), b"slow down", "m"));
    assert_eq!(hint.after_ms, Some(30_000));
    assert!(hint.reason.contains("429") && hint.reason.contains("slow down"), "{}", hint.reason);
    let hint = retry(classify_response(503, None, b"<html>unavailable</html>", "m"));
    assert_eq!(hint.after_ms, None);
    assert!(hint.reason.contains("503"), "{}", hint.reason);
    retry(classify_response(500, None, b"", "m"));
    // A status code outside Viber's table is its "general error": retried.
    let hint = retry(classify_response(200, None, br#"{"status":99,"status_message":"generalError"}"#, "m"));
    assert!(hint.reason.contains("general error"), "{}", hint.reason);
}

#[test]
fn permanent_errors_are_rejected_with_viber_s_words() {
    let reason = |code: i64, message: &str| {
        let body = json!({"status": code, "status_message": message, "chat_hostname": "SN"}).to_string();
        rejected(classify_response(200, None, body.as_bytes(), "m"))
    };
    assert_eq!(
        reason(5, "receiverNotRegistered"),
        "5: receiverNotRegistered (the receiver is not registered to Viber)"
    );
    assert!(reason(2, "invalidAuthToken").starts_with("2: invalidAuthToken"));
    assert!(reason(6, "notSubscribed").contains("not subscribed"));
    for code in [1, 3, 4, 7, 8, 9, 10, 11, 13, 14, 23, 24] {
        assert!(reason(code, "x").starts_with(&format!("{code}: x (")));
    }
    let no_message = rejected(classify_response(200, None, br#"{"status":7}"#, "m"));
    assert_eq!(no_message, "7 (the bot is blocked)");
    // Something that is not Viber's answer.
    let other = rejected(classify_response(200, None, b"<html>hello</html>", "m"));
    assert!(other.contains("200") && other.contains("<html>"), "{other}");
    let not_found = rejected(classify_response(404, None, b"no such path", "m"));
    assert!(not_found.contains("404"), "{not_found}");
    let long = rejected(classify_response(400, None, "z".repeat(500).as_bytes(), "m"));
    assert!(long.chars().count() < 260 && long.ends_with('…'), "{long}");
}

#[test]
fn transport_errors() {
    assert!(rejected(classify_error(&HttpError::Denied, "https://x")).contains("capabilities.http"));
    assert!(
        rejected(classify_error(&HttpError::InvalidRequest("bad".to_owned()), "x"))
            .contains("cannot be used")
    );
    let hint = retry(classify_error(&HttpError::Transport("ConnectionRefused".to_owned()), "x"));
    assert!(hint.reason.contains("ConnectionRefused"));
}

#[test]
fn deliver_sends_parts_in_order() {
    let mut message = outbound(Some("first"));
    message.attachments = vec![
        media(AttachmentKind::Image, "https://cdn/a.jpg", None),
        media(AttachmentKind::Image, "https://cdn/b.jpg", None),
    ];
    let mut seen: Vec<Value> = Vec::new();
    let mut tokens = [101_u64, 102, 103].into_iter();
    let sent = deliver(&message, Ok(config()), |request: &Request| {
        seen.push(serde_json::from_slice(&request.body).unwrap());
        let token = tokens.next().unwrap();
        Ok(response(200, &[], &format!(r#"{{"status":0,"status_message":"ok","message_token":{token}}}"#)))
    });
    assert_eq!(accepted(sent.result), "101");
    assert!(sent.warnings.is_empty());
    assert_eq!(
        seen.iter().map(|b| b["type"].as_str().unwrap()).collect::<Vec<_>>(),
        ["text", "picture", "picture"]
    );

    // The first part failing is the result; nothing else is tried.
    let mut calls = 0;
    let sent = deliver(&message, Ok(config()), |_: &Request| {
        calls += 1;
        Ok(response(200, &[], r#"{"status":6,"status_message":"receiverNotSubscribed"}"#))
    });
    assert!(rejected(sent.result).starts_with("6: receiverNotSubscribed"));
    assert_eq!(calls, 1);

    // A later part failing is a warning; the message counts as sent.
    let mut calls = 0;
    let sent = deliver(&message, Ok(config()), |_: &Request| {
        calls += 1;
        if calls == 1 {
            Ok(response(200, &[], r#"{"status":0,"message_token":7}"#))
        } else {
            Err(HttpError::Transport("reset".to_owned()))
        }
    });
    assert_eq!(accepted(sent.result), "7");
    assert_eq!(calls, 2);
    assert_eq!(sent.warnings.len(), 1);
    assert!(
        sent.warnings[0].contains("part 2 of 3") && sent.warnings[0].contains("part 3 was not tried"),
        "{:?}",
        sent.warnings
    );

    // Config and build errors are rejected without a request.
    let sent = deliver(&message, Err("secret `auth-token` is not set".to_owned()), |_: &Request| {
        panic!("no request")
    });
    assert!(rejected(sent.result).contains("auth-token"));
    let sent = deliver(&outbound(None), Ok(config()), |_: &Request| panic!("no request"));
    assert!(rejected(sent.result).contains("nothing to send"));
}

#[test]
fn the_auth_token_never_reaches_a_reason() {
    let message = outbound(Some("x"));
    let echo = format!("bad token {TOKEN}");
    let sent = deliver(&message, Ok(config()), |_: &Request| Ok(response(401, &[], &echo)));
    let reason = rejected(sent.result);
    assert!(!reason.contains(TOKEN) && reason.contains("<auth-token>"), "{reason}");
    let sent = deliver(&message, Ok(config()), |_: &Request| Err(HttpError::Transport(TOKEN.to_owned())));
    assert!(!retry(sent.result).reason.contains(TOKEN));
}
