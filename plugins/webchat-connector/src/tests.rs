//! Unit tests of the connector's pure functions.

use super::*;
use seam_sdk::serde_json::{self, Value, json};

const KEY: &str = "pk_live_4f9a2c";
const VISITOR: &str = "v_8f3a0c1d2e3f40516273849a5b6c7d8e";

fn request(method: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: method.to_owned(),
        path: "/".to_owned(),
        query: String::new(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.to_vec(),
    }
}

/// A POST of `body` from `https://shop.example` with the right site key.
fn post(body: &Value) -> HttpRequest {
    request(
        "POST",
        &[("content-type", "application/json"), ("x-seam-site-key", KEY), ("origin", "https://shop.example")],
        body.to_string().as_bytes(),
    )
}

/// The full widget post of the spec.
fn full_post() -> Value {
    json!({
        "visitor": VISITOR, "id": "c_1700000000000_1", "text": "Hello", "name": "Anna",
        "email": "anna@example.com", "phone": "+79161234567", "page": "https://shop.example/cart",
        "sent_at": 1_700_000_000_000_i64
    })
}

fn accepted(request: &HttpRequest) -> Vec<Event> {
    let outcome = handle(request, Some(KEY), None).unwrap_or_else(|e| panic!("refused: {e:?}"));
    assert_eq!(outcome.response.status, 200);
    let body: Value = serde_json::from_slice(&outcome.response.body).expect("JSON response");
    assert_eq!(body, json!({"accepted": outcome.events.len()}));
    assert!(outcome.response.headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"));
    outcome.events
}

fn malformed(body: &Value) -> String {
    malformed_bytes(body.to_string().as_bytes())
}

fn malformed_bytes(body: &[u8]) -> String {
    let req = request("POST", &[("x-seam-site-key", KEY)], body);
    match handle(&req, Some(KEY), None) {
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

fn hint(event: &Event) -> &IdentityHint {
    match event {
        Event::IdentityHint(h) => h,
        other => panic!("expected an identity hint, got {other:?}"),
    }
}

fn message(event: &Event) -> &InboundMessage {
    match event {
        Event::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

fn without(mut body: Value, fields: &[&str]) -> Value {
    for field in fields {
        body.as_object_mut().expect("object").remove(*field);
    }
    body
}

#[test]
fn describes_the_channel() {
    let info = channel_info();
    assert_eq!(info.kind, "web");
    assert_eq!(info.identity_kind, "web");
    assert_eq!(info.display_name, "Web chat");
    assert_eq!(
        info.features,
        ChannelFeatures::TEXT | ChannelFeatures::DELIVERY_STATUS | ChannelFeatures::READ_STATUS
    );
    assert_eq!(info.max_text_length, Some(4000));
}

#[test]
fn valid_message_becomes_hints_then_message() {
    let events = accepted(&post(&full_post()));
    assert_eq!(events.len(), 3, "{events:?}");

    let email = hint(&events[0]);
    assert_eq!((email.known.kind.as_str(), email.known.value.as_str()), ("web", VISITOR));
    assert_eq!((email.also.kind.as_str(), email.also.value.as_str()), ("email", "anna@example.com"));
    assert_eq!(email.reason, "left-contact");

    let phone = hint(&events[1]);
    assert_eq!((phone.known.kind.as_str(), phone.known.value.as_str()), ("web", VISITOR));
    assert_eq!((phone.also.kind.as_str(), phone.also.value.as_str()), ("phone", "+79161234567"));
    assert_eq!(phone.reason, "left-contact");

    let m = message(&events[2]);
    assert_eq!(m.external_id, format!("{VISITOR}:c_1700000000000_1"));
    assert_eq!((m.sender.kind.as_str(), m.sender.value.as_str()), ("web", VISITOR));
    assert_eq!(m.sender_name.as_deref(), Some("Anna"));
    assert_eq!(m.text.as_deref(), Some("Hello"));
    assert_eq!(m.sent_at, Some(1_700_000_000_000));
    assert!(m.attachments.is_empty() && m.reply_to.is_none() && m.thread.is_none());
    let extras: Value = serde_json::from_str(m.extras.as_deref().expect("extras")).expect("extras JSON");
    assert_eq!(extras, json!({"page": "https://shop.example/cart"}));
}

#[test]
fn plain_message_from_the_widget() {
    // Exactly what webchat.js posts for a chat line.
    let body = json!({"text": "Do you ship to Berlin?", "visitor": VISITOR, "id": "c_1700000000001_2",
                      "page": "https://shop.example/", "sent_at": 1_700_000_000_001_i64});
    let events = accepted(&post(&body));
    assert_eq!(events.len(), 1);
    let m = message(&events[0]);
    assert_eq!(m.text.as_deref(), Some("Do you ship to Berlin?"));
    assert_eq!(m.sender_name, None);
    assert_eq!(m.external_id, format!("{VISITOR}:c_1700000000001_2"));
}

#[test]
fn minimal_message_has_no_extras_or_time() {
    let events = accepted(&post(&json!({"visitor": "abcdefgh12345678", "id": "1", "text": "hi"})));
    assert_eq!(events.len(), 1);
    let m = message(&events[0]);
    assert_eq!(m.external_id, "abcdefgh12345678:1");
    assert_eq!(m.sent_at, None);
    assert_eq!(m.extras, None);
}

#[test]
fn same_post_gives_same_external_id_and_posts_differ() {
    let a = accepted(&post(&full_post()));
    let b = accepted(&post(&full_post()));
    assert_eq!(message(&a[2]).external_id, message(&b[2]).external_id);
    let c = accepted(&post(&with(full_post(), "id", json!("c_1700000000000_2"))));
    assert_ne!(message(&a[2]).external_id, message(&c[2]).external_id);
    let d = accepted(&post(&with(full_post(), "visitor", json!("v_other_visitor_0001"))));
    assert_ne!(message(&a[2]).external_id, message(&d[2]).external_id);
}

#[test]
fn contact_only_post_gives_only_hints() {
    // What webchat.js posts from its contact form (the email untrimmed).
    let body = json!({"email": " anna@example.com ", "visitor": VISITOR, "id": "c_1700000000002_3",
                      "page": "https://shop.example/", "sent_at": 1_700_000_000_002_i64});
    let events = accepted(&post(&body));
    assert_eq!(events.len(), 1, "{events:?}");
    let h = hint(&events[0]);
    assert_eq!(h.also.kind, "email");
    assert_eq!(h.also.value, "anna@example.com");

    let phone_only = without(full_post(), &["text", "email"]);
    let events = accepted(&post(&phone_only));
    assert_eq!(events.len(), 1);
    assert_eq!(hint(&events[0]).also.kind, "phone");

    let both = without(full_post(), &["text"]);
    let events = accepted(&post(&both));
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| matches!(e, Event::IdentityHint(_))));
}

#[test]
fn hints_come_before_the_message() {
    for body in [full_post(), without(full_post(), &["phone"]), without(full_post(), &["email"])] {
        let events = accepted(&post(&body));
        let last = events.len() - 1;
        assert!(matches!(events[last], Event::Message(_)), "{events:?}");
        assert!(events[..last].iter().all(|e| matches!(e, Event::IdentityHint(_))), "{events:?}");
        assert_eq!(last, body.get("email").is_some() as usize + body.get("phone").is_some() as usize);
    }
}

#[test]
fn blank_and_null_optional_fields_are_absent() {
    let body = json!({"visitor": VISITOR, "id": "x", "text": "hi", "name": "  ", "email": "", "phone": null,
                      "page": null, "sent_at": null});
    let events = accepted(&post(&body));
    assert_eq!(events.len(), 1);
    let m = message(&events[0]);
    assert_eq!((m.sender_name.as_ref(), m.extras.as_ref(), m.sent_at), (None, None, None));
}

#[test]
fn text_keeps_its_whitespace_and_blank_text_needs_a_contact() {
    let events = accepted(&post(&json!({"visitor": VISITOR, "id": "x", "text": "line 1\n  line 2"})));
    assert_eq!(message(&events[0]).text.as_deref(), Some("line 1\n  line 2"));
    let err = malformed(&json!({"visitor": VISITOR, "id": "x", "text": "   "}));
    assert!(err.contains("`email`, `phone` or `read`"), "{err}");
    let events =
        accepted(&post(&json!({"visitor": VISITOR, "id": "x", "text": " ", "phone": "+1 (555) 123-4567"})));
    assert_eq!(events.len(), 1);
    assert_eq!(hint(&events[0]).also.value, "+1 (555) 123-4567");
}

#[test]
fn fractional_sent_at_is_cut_to_milliseconds() {
    let events = accepted(&post(&with(full_post(), "sent_at", json!(1_700_000_000_000.75))));
    assert_eq!(message(&events[2]).sent_at, Some(1_700_000_000_000));
}

#[test]
fn bad_visitor_ids_are_malformed() {
    for bad in [
        json!("short"),
        json!("v_0123456789a"),
        json!("has space in it"),
        json!("v_ünïcode_id"),
        json!("x".repeat(65)),
        json!(12345678),
    ] {
        let err = malformed(&with(full_post(), "visitor", bad.clone()));
        assert!(err.contains("`visitor`"), "{bad}: {err}");
    }
    assert!(is_valid_visitor("abcdefgh12345678") && is_valid_visitor(&"A-_9".repeat(16)));
    assert!(!is_valid_visitor("abcdefg") && !is_valid_visitor(&"a".repeat(65)));
    let err = malformed(&without(full_post(), &["visitor"]));
    assert!(err.contains("missing `visitor`"), "{err}");
}

#[test]
fn missing_or_bad_message_id_is_malformed() {
    let err = malformed(&without(full_post(), &["id"]));
    assert!(err.contains("missing `id`"), "{err}");
    for bad in [json!(""), json!("a/b"), json!("y".repeat(65)), json!(7), json!(null)] {
        let err = malformed(&with(full_post(), "id", bad.clone()));
        assert!(err.contains("`id`"), "{bad}: {err}");
    }
}

#[test]
fn wrong_types_are_malformed_naming_the_field() {
    for (field, value) in [
        ("text", json!(5)),
        ("name", json!(["Anna"])),
        ("email", json!({"a": 1})),
        ("phone", json!(79_161_234_567_i64)),
        ("page", json!(true)),
        ("sent_at", json!("yesterday")),
        ("sent_at", json!(-5)),
    ] {
        let err = malformed(&with(full_post(), field, value.clone()));
        assert!(err.contains(&format!("`{field}`")), "{field}={value}: {err}");
    }
}

#[test]
fn implausible_contacts_are_malformed() {
    for email in ["anna", "anna@", "@example.com", "an na@example.com", "a@b@c"] {
        let err = malformed(&with(full_post(), "email", json!(email)));
        assert!(err.contains("`email`"), "{email}: {err}");
    }
    for phone in ["call me", "123", "+7 916 abc", "1".repeat(33).as_str()] {
        let err = malformed(&with(full_post(), "phone", json!(phone)));
        assert!(err.contains("`phone`"), "{phone}: {err}");
    }
}

#[test]
fn post_without_text_or_contact_is_malformed() {
    let err = malformed(&json!({"visitor": VISITOR, "id": "c_1", "name": "Anna"}));
    assert!(err.contains("without `text`"), "{err}");
}

#[test]
fn oversized_text_and_body_are_malformed() {
    let ok = "ж".repeat(4000);
    let events = accepted(&post(&with(full_post(), "text", json!(ok))));
    assert_eq!(message(&events[2]).text.as_deref().map(|t| t.chars().count()), Some(4000));

    let err = malformed(&with(full_post(), "text", json!("a".repeat(4001))));
    assert!(err.contains("4001") && err.contains("4000"), "{err}");

    let err = malformed(&with(full_post(), "page", json!("p".repeat(17 * 1024))));
    assert!(err.contains("16384"), "{err}");
}

#[test]
fn malformed_json_is_malformed() {
    let err = malformed_bytes(b"{\"visitor\": ");
    assert!(err.contains("JSON"), "{err}");
    let err = malformed_bytes(b"visitor=abc&id=1");
    assert!(err.contains("JSON"), "{err}");
    let err = malformed(&json!([full_post()]));
    assert!(err.contains("JSON object"), "{err}");
    let err = malformed_bytes(b"");
    assert!(err.contains("JSON"), "{err}");
}

#[test]
fn only_post_is_accepted() {
    let mut req = post(&full_post());
    req.method = "GET".to_owned();
    match handle(&req, Some(KEY), None) {
        Err(WebhookError::Malformed(m)) => assert!(m.contains("GET"), "{m}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn site_key_is_required_in_config() {
    for unset in [None, Some(""), Some("  ")] {
        match handle(&post(&full_post()), unset, None) {
            Err(WebhookError::Misconfigured(m)) => assert!(m.contains("`site-key`"), "{m}"),
            other => panic!("expected Misconfigured, got {other:?}"),
        }
    }
}

#[test]
fn wrong_or_missing_site_key_is_unauthorized() {
    let body = full_post().to_string();
    let missing = request("POST", &[("content-type", "application/json")], body.as_bytes());
    let err = unauthorized(handle(&missing, Some(KEY), None));
    assert!(err.contains("missing `x-seam-site-key`"), "{err}");

    let wrong = request("POST", &[("x-seam-site-key", "pk_live_other")], body.as_bytes());
    let err = unauthorized(handle(&wrong, Some(KEY), None));
    assert!(err.contains("does not match"), "{err}");

    let prefix = request("POST", &[("x-seam-site-key", "pk_live")], body.as_bytes());
    unauthorized(handle(&prefix, Some(KEY), None));

    // Header names are matched in any case.
    let upper = request("POST", &[("X-Seam-Site-Key", KEY)], body.as_bytes());
    assert_eq!(handle(&upper, Some(KEY), None).expect("accepted").events.len(), 3);
}

#[test]
fn auth_is_checked_before_the_body() {
    let garbage = request("POST", &[("x-seam-site-key", "nope")], b"not json");
    unauthorized(handle(&garbage, Some(KEY), None));
}

#[test]
fn allowed_origin_is_accepted() {
    let allowed = "https://shop.example https://www.shop.example";
    let outcome = handle(&post(&full_post()), Some(KEY), Some(allowed)).expect("accepted");
    assert_eq!(outcome.events.len(), 3);
    // Config entries may end in `/`, be comma-separated, differ in case.
    for allowed in ["https://www.shop.example,https://SHOP.example/", "\n https://shop.example/ \t"] {
        assert!(handle(&post(&full_post()), Some(KEY), Some(allowed)).is_ok(), "{allowed}");
    }
}

#[test]
fn other_origin_is_refused_naming_it() {
    let allowed = Some("https://shop.example https://www.shop.example");
    let body = full_post().to_string();
    let evil =
        request("POST", &[("x-seam-site-key", KEY), ("origin", "https://evil.example")], body.as_bytes());
    let err = unauthorized(handle(&evil, Some(KEY), allowed));
    assert!(err.contains("https://evil.example") && err.contains("`allowed-origins`"), "{err}");

    let lookalike = request(
        "POST",
        &[("x-seam-site-key", KEY), ("origin", "https://shop.example.evil.example")],
        body.as_bytes(),
    );
    unauthorized(handle(&lookalike, Some(KEY), allowed));

    let http =
        request("POST", &[("x-seam-site-key", KEY), ("origin", "http://shop.example")], body.as_bytes());
    unauthorized(handle(&http, Some(KEY), allowed));

    let no_origin = request("POST", &[("x-seam-site-key", KEY)], body.as_bytes());
    let err = unauthorized(handle(&no_origin, Some(KEY), allowed));
    assert!(err.contains("missing `origin`"), "{err}");
}

#[test]
fn empty_allowed_origins_accepts_any_origin() {
    let body = full_post().to_string();
    for allowed in [None, Some(""), Some("   ")] {
        let any = request(
            "POST",
            &[("x-seam-site-key", KEY), ("origin", "https://anywhere.example")],
            body.as_bytes(),
        );
        assert!(handle(&any, Some(KEY), allowed).is_ok(), "{allowed:?}");
        let none = request("POST", &[("x-seam-site-key", KEY)], body.as_bytes());
        assert!(handle(&none, Some(KEY), allowed).is_ok(), "{allowed:?}");
    }
}

fn outbound(to_kind: &str, to_value: &str, text: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        id: "msg_01HZX".to_owned(),
        to: Identity { kind: to_kind.to_owned(), value: to_value.to_owned() },
        text: text.map(str::to_owned),
        attachments: Vec::new(),
        template: None,
        reply_to: Some(format!("{VISITOR}:c_1")),
        subject: None,
        extras: None,
    }
}

fn rejected(message: &OutboundMessage) -> String {
    match deliver(message) {
        DeliveryResult::Rejected(reason) => reason,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[test]
fn send_text_to_a_visitor_is_accepted_with_the_message_id() {
    match deliver(&outbound("web", VISITOR, Some("Yes, we ship to Berlin."))) {
        DeliveryResult::Accepted(id) => assert_eq!(id, "msg_01HZX"),
        other => panic!("expected Accepted, got {other:?}"),
    }
    let longest = "z".repeat(4000);
    assert!(matches!(deliver(&outbound("web", VISITOR, Some(&longest))), DeliveryResult::Accepted(_)));
}

#[test]
fn send_to_another_identity_kind_is_rejected() {
    let reason = rejected(&outbound("email", "anna@example.com", Some("Hi")));
    assert!(reason.contains("`email`") && reason.contains("`web`"), "{reason}");
    let reason = rejected(&outbound("web", "bad visitor!", Some("Hi")));
    assert!(reason.contains("visitor id"), "{reason}");
}

#[test]
fn send_without_text_is_rejected() {
    assert_eq!(rejected(&outbound("web", VISITOR, None)), "web chat carries text only");
    assert_eq!(rejected(&outbound("web", VISITOR, Some("  \n"))), "web chat carries text only");
}

#[test]
fn send_with_attachments_template_or_long_text_is_rejected() {
    let mut m = outbound("web", VISITOR, Some("see picture"));
    m.attachments.push(Attachment {
        kind: AttachmentKind::Image,
        url: Some("https://cdn.example/a.png".to_owned()),
        provider_id: None,
        mime_type: None,
        file_name: None,
        size: None,
        caption: None,
        location: None,
        extras: None,
    });
    assert!(rejected(&m).starts_with("web chat carries text only"));

    let mut m = outbound("web", VISITOR, Some("hi"));
    m.template =
        Some(Template { name: "welcome".to_owned(), language: "en".to_owned(), parameters: Vec::new() });
    assert!(rejected(&m).starts_with("web chat carries text only"));

    let reason = rejected(&outbound("web", VISITOR, Some(&"z".repeat(4001))));
    assert!(reason.contains("4001"), "{reason}");
}

#[test]
fn read_reports_become_read_delivery_updates() {
    let body = json!({"visitor": VISITOR, "id": "r_1", "read": ["msg_01JD", "msg_02JD"], "sent_at": 1_700_000_000_500_i64});
    let events = accepted(&post(&body));
    assert_eq!(events.len(), 2);
    for (event, id) in events.iter().zip(["msg_01JD", "msg_02JD"]) {
        match event {
            Event::Delivery(d) => {
                assert_eq!((d.provider_id.as_str(), d.status), (id, DeliveryStatus::Read));
                assert_eq!(d.recipient.as_ref().map(|r| r.value.as_str()), Some(VISITOR));
                assert_eq!(d.at, Some(1_700_000_000_500));
            }
            other => panic!("expected a delivery update, got {other:?}"),
        }
    }
    let err = malformed(&json!({"visitor": VISITOR, "id": "r_2", "read": ["ok", "not an id"]}));
    assert!(err.contains("`read`"), "{err}");
    let err = malformed(&json!({"visitor": VISITOR, "id": "r_3", "read": vec!["m"; MAX_READ + 1]}));
    assert!(err.contains("more than"), "{err}");
    let err = malformed(&json!({"visitor": VISITOR, "id": "r_4", "read": []}));
    assert!(err.contains("`read`"), "an empty post is refused: {err}");
}
