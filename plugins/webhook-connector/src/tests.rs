//! Unit tests of the connector's pure functions.

use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn post(body: &str, headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: "POST".to_owned(),
        path: "/".to_owned(),
        query: String::new(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn outbound() -> OutboundMessage {
    OutboundMessage {
        id: "out-1".to_owned(),
        to: Identity { kind: "webhook".to_owned(), value: "u-42".to_owned() },
        text: Some("Hello".to_owned()),
        attachments: Vec::new(),
        template: None,
        reply_to: None,
        subject: None,
        extras: None,
    }
}

fn malformed(result: Result<WebhookOutcome, WebhookError>) -> String {
    match result {
        Err(WebhookError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn unauthorized(result: Result<(), WebhookError>) -> String {
    match result {
        Err(WebhookError::Unauthorized(m)) => m,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

fn rejected(result: DeliveryResult) -> String {
    match result {
        DeliveryResult::Rejected(m) => m,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

fn retry(result: DeliveryResult) -> RetryHint {
    match result {
        DeliveryResult::RetryLater(hint) => hint,
        other => panic!("expected RetryLater, got {other:?}"),
    }
}

#[test]
fn default_paths_map_a_full_message() {
    let body = json!({
        "id": "m-1", "from": "u-42", "name": "Anna", "text": "Hi there",
        "timestamp": 1_700_000_000, "reply_to": "m-0", "thread": "t-7",
        "attachments": [{"kind": "image", "url": "https://x/a.png", "mime_type": "image/png",
                         "file_name": "a.png", "caption": "look", "size": 10}],
        "custom": {"plan": "pro"}
    });
    let m = map_message(&body, 0, &FieldMap::default()).unwrap();
    assert_eq!(m.external_id, "m-1");
    assert_eq!((m.sender.kind.as_str(), m.sender.value.as_str()), ("webhook", "u-42"));
    assert_eq!(m.sender_name.as_deref(), Some("Anna"));
    assert_eq!(m.text.as_deref(), Some("Hi there"));
    assert_eq!(m.reply_to.as_deref(), Some("m-0"));
    assert_eq!(m.thread.as_deref(), Some("t-7"));
    assert_eq!(m.sent_at, Some(1_700_000_000_000));
    let extras: Value = serde_json::from_str(m.extras.as_deref().unwrap()).unwrap();
    assert_eq!(extras, body, "the whole object is kept");
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert!(matches!(a.kind, AttachmentKind::Image));
    assert_eq!(a.url.as_deref(), Some("https://x/a.png"));
    assert_eq!(a.mime_type.as_deref(), Some("image/png"));
    assert_eq!(a.file_name.as_deref(), Some("a.png"));
    assert_eq!(a.caption.as_deref(), Some("look"));
    assert_eq!(a.size, Some(10));
    assert_eq!(a.extras, None);
}

#[test]
fn optional_fields_may_be_absent_and_ids_may_be_numbers() {
    let m = map_message(&json!({"id": 17, "from": 79_161_234_567_u64, "text": ""}), 0, &FieldMap::default())
        .unwrap();
    assert_eq!(m.external_id, "17");
    assert_eq!(m.sender.value, "79161234567");
    assert_eq!(m.text, None, "empty text is no text");
    assert_eq!((m.sender_name, m.reply_to, m.thread, m.sent_at), (None, None, None, None));
    assert!(m.attachments.is_empty());
}

#[test]
fn missing_required_fields_name_path_and_index() {
    let fields = FieldMap { events: "messages".to_owned(), ..FieldMap::default() };
    let body = json!({"messages": [{"id": "a", "from": "x"}, {"id": "b"}]});
    assert_eq!(map_body(&body, &fields).unwrap_err(), "message 1: missing `from` (field-sender)");
    let body = json!({"messages": [{"from": "x"}]});
    assert_eq!(map_body(&body, &fields).unwrap_err(), "message 0: missing `id` (field-id)");
    let body = json!({"id": "", "from": "x"});
    assert_eq!(
        map_body(&body, &FieldMap::default()).unwrap_err(),
        "message 0: missing `id` (field-id)",
        "an empty id counts as missing"
    );
    assert_eq!(
        map_message(&json!({"id": "a", "from": {"n": 1}}), 3, &FieldMap::default()).unwrap_err(),
        "message 3: `from` (field-sender) must be a string or a number, not an object"
    );
}

#[test]
fn custom_nested_paths_and_event_arrays() {
    let fields = FieldMap::from_lookup(|key| {
        let value = match key {
            "field-events" => "data/items",
            "field-id" => "meta/uid",
            "field-sender" => "user/phone",
            "field-sender-kind" => " phone ",
            "field-text" => "content/0/body",
            "field-name" => "",
            _ => return None,
        };
        Some(value.to_owned())
    });
    assert_eq!(fields.sender_kind, "phone", "values are trimmed");
    assert_eq!(fields.time, "timestamp", "unset keys keep defaults");
    let body = json!({"data": {"items": [
        {"meta": {"uid": "1"}, "user": {"phone": "+7916"}, "content": [{"body": "one"}],
         "name": "ignored"},
        {"meta": {"uid": "2"}, "user": {"phone": "+7917"}}
    ]}});
    let messages = map_body(&body, &fields).unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].external_id, "1");
    assert_eq!(messages[0].sender.kind, "phone");
    assert_eq!(messages[0].sender.value, "+7916");
    assert_eq!(messages[0].text.as_deref(), Some("one"));
    assert_eq!(messages[0].sender_name, None, "an empty path is not mapped");
    assert_eq!(messages[1].text, None);
}

#[test]
fn event_array_errors() {
    let fields = FieldMap { events: "data/items".to_owned(), ..FieldMap::default() };
    assert_eq!(
        message_objects(&json!({"data": {}}), &fields.events).unwrap_err(),
        "body has no `data/items` (field-events)"
    );
    assert_eq!(
        message_objects(&json!({"data": {"items": {}}}), &fields.events).unwrap_err(),
        "`data/items` (field-events) is an object, not an array"
    );
    assert_eq!(map_body(&json!({"data": {"items": []}}), &fields).unwrap().len(), 0);
    // `/` takes the body itself as the array.
    assert_eq!(message_objects(&json!([1, 2]), "/").unwrap().len(), 2);
    assert_eq!(
        map_body(&json!(["x"]), &FieldMap { events: "/".to_owned(), ..FieldMap::default() }).unwrap_err(),
        "message 0 is a string, not a JSON object"
    );
}

#[test]
fn time_is_seconds_or_milliseconds() {
    assert_eq!(parse_time(&json!(1_700_000_000)), Ok(1_700_000_000_000));
    assert_eq!(parse_time(&json!(1_700_000_000_123_u64)), Ok(1_700_000_000_123));
    assert_eq!(parse_time(&json!(99_999_999_999_i64)), Ok(99_999_999_999_000), "just below 10^11");
    assert_eq!(parse_time(&json!(100_000_000_000_i64)), Ok(100_000_000_000), "10^11 is ms");
    assert_eq!(parse_time(&json!(1_700_000_000.25)), Ok(1_700_000_000_250));
    assert_eq!(parse_time(&json!("1700000000")), Ok(1_700_000_000_000));
    assert_eq!(parse_time(&json!(" 1700000000123 ")), Ok(1_700_000_000_123));
    assert_eq!(parse_time(&json!(0)), Ok(0));
    assert_eq!(
        parse_time(&json!("2024-01-01T00:00:00Z")).unwrap_err(),
        "is not Unix seconds or milliseconds: \"2024-01-01T00:00:00Z\""
    );
    assert!(parse_time(&json!(true)).is_err());
    assert!(parse_time(&json!("NaN")).is_err());
    assert!(parse_time(&json!(1e300)).is_err());
    assert!(parse_time(&json!(u64::MAX)).is_err());
}

#[test]
fn bad_time_names_the_path() {
    let err =
        map_message(&json!({"id": "a", "from": "b", "timestamp": "yesterday"}), 2, &FieldMap::default())
            .unwrap_err();
    assert_eq!(err, "message 2: `timestamp` (field-time) is not Unix seconds or milliseconds: \"yesterday\"");
    let m =
        map_message(&json!({"id": "a", "from": "b", "timestamp": null}), 0, &FieldMap::default()).unwrap();
    assert_eq!(m.sent_at, None);
}

#[test]
fn attachment_kinds_and_errors() {
    let body = json!({"id": "a", "from": "b", "attachments": [
        {"kind": "VOICE", "url": "u"},
        {"kind": "hologram", "url": "h"},
        {"url": "no-kind"},
        {"kind": "location", "latitude": 55.75, "longitude": 37.62}
    ]});
    let m = map_message(&body, 0, &FieldMap::default()).unwrap();
    assert!(matches!(m.attachments[0].kind, AttachmentKind::Voice));
    assert!(matches!(m.attachments[1].kind, AttachmentKind::Other));
    assert_eq!(
        m.attachments[1].extras.as_deref(),
        Some(r#"{"kind":"hologram","url":"h"}"#),
        "unknown kinds keep their object"
    );
    assert!(matches!(m.attachments[2].kind, AttachmentKind::Other));
    assert!(matches!(m.attachments[3].kind, AttachmentKind::Location));
    let at = m.attachments[3].location.as_ref().unwrap();
    assert_eq!((at.latitude, at.longitude), (55.75, 37.62));

    let err = |attachments: Value| {
        map_message(&json!({"id": "a", "from": "b", "attachments": attachments}), 4, &FieldMap::default())
            .unwrap_err()
    };
    assert_eq!(err(json!({})), "message 4: `attachments` must be an array, not an object");
    assert_eq!(err(json!([{}, 5])), "message 4: attachment 1: is a number, not a JSON object");
    assert_eq!(err(json!([{"url": 5}])), "message 4: attachment 0: `url` must be a string, not a number");
    assert_eq!(
        err(json!([{"size": -1}])),
        "message 4: attachment 0: `size` must be a whole number of bytes, not -1"
    );
}

#[test]
fn attachment_kind_names_round_trip() {
    for kind in [
        AttachmentKind::Image,
        AttachmentKind::Audio,
        AttachmentKind::Voice,
        AttachmentKind::Video,
        AttachmentKind::Document,
        AttachmentKind::Sticker,
        AttachmentKind::Location,
        AttachmentKind::Contact,
        AttachmentKind::Other,
    ] {
        let name = attachment_kind_name(kind);
        assert_eq!(attachment_kind_name(attachment_kind(name)), name);
    }
}

#[test]
fn auth_without_secret_accepts_anything() {
    assert!(check_auth(None, None, None, b"{}").is_ok());
    assert!(check_auth(None, Some("sha256=00"), Some("x"), b"{}").is_ok());
    assert!(matches!(check_auth(Some(""), None, None, b"{}"), Err(WebhookError::Misconfigured(_))));
}

#[test]
fn auth_by_signature_or_token() {
    let body = br#"{"id":"1","from":"a"}"#;
    let sig = format!("sha256={}", hex(&signature::hmac_sha256(b"s3cret", body)));
    assert!(check_auth(Some("s3cret"), Some(&sig), None, body).is_ok());
    assert!(check_auth(Some("s3cret"), None, Some("s3cret"), body).is_ok());
    assert!(check_auth(Some("s3cret"), Some("sha256=00"), Some("s3cret"), body).is_ok(), "either suffices");

    assert_eq!(
        unauthorized(check_auth(Some("s3cret"), None, None, body)),
        "missing `x-seam-signature` or `x-seam-token` header"
    );
    let msg = unauthorized(check_auth(Some("s3cret"), Some(&sig), None, b"tampered"));
    assert!(msg.starts_with("`x-seam-signature` does not match the body"), "{msg}");
    let other_key = format!("sha256={}", hex(&signature::hmac_sha256(b"other", body)));
    assert!(check_auth(Some("s3cret"), Some(&other_key), None, body).is_err());
    assert_eq!(
        unauthorized(check_auth(Some("s3cret"), None, Some("s3cre"), body)),
        "`x-seam-token` does not match the secret"
    );
    assert_eq!(
        unauthorized(check_auth(Some("s3cret"), Some("sha256=00"), Some("nope"), body)),
        "neither `x-seam-signature` nor `x-seam-token` is valid"
    );
}

#[test]
fn handle_accepts_a_batch() {
    let fields = FieldMap { events: "events".to_owned(), ..FieldMap::default() };
    let body = r#"{"events":[{"id":"1","from":"a","text":"x"},{"id":"2","from":"b"}]}"#;
    let outcome = handle(&post(body, &[("x-seam-token", "t")]), &fields, Some("t")).unwrap();
    assert_eq!(outcome.events.len(), 2);
    match &outcome.events[1] {
        Event::Message(m) => assert_eq!((m.external_id.as_str(), m.sender.value.as_str()), ("2", "b")),
        other => panic!("expected a message, got {other:?}"),
    }
    assert_eq!(outcome.response.status, 200);
    assert_eq!(outcome.response.body, br#"{"accepted":2}"#);
    assert!(outcome.response.headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"));
}

#[test]
fn handle_refusals() {
    let fields = FieldMap::default();
    let mut get = post("", &[]);
    get.method = "GET".to_owned();
    assert_eq!(malformed(handle(&get, &fields, None)), "the generic webhook expects POST, got GET");

    let msg = malformed(handle(&post("{\"id\":", &[]), &fields, None));
    assert!(msg.starts_with("body is not valid JSON") && msg.contains("line 1"), "{msg}");

    assert_eq!(
        malformed(handle(&post(r#"{"id":"1"}"#, &[]), &fields, None)),
        "message 0: missing `from` (field-sender)"
    );

    // Authentication is checked before the body is even parsed.
    match handle(&post("not json", &[]), &fields, Some("s")) {
        Err(WebhookError::Unauthorized(m)) => assert!(m.contains("x-seam-signature"), "{m}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    let broken = FieldMap { sender_kind: "Web Hook".to_owned(), ..FieldMap::default() };
    match handle(&post(r#"{"id":"1","from":"a"}"#, &[]), &broken, None) {
        Err(WebhookError::Misconfigured(m)) => assert!(m.contains("field-sender-kind"), "{m}"),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
}

#[test]
fn field_map_validation() {
    assert_eq!(FieldMap::from_lookup(|_| None), FieldMap::default());
    assert!(FieldMap::default().validate().is_ok());
    let no_id = FieldMap { id: String::new(), ..FieldMap::default() };
    assert!(no_id.validate().unwrap_err().contains("`field-id` is empty"));
    let no_sender = FieldMap { sender: String::new(), ..FieldMap::default() };
    assert!(no_sender.validate().unwrap_err().contains("`field-sender` is empty"));
    assert!(is_identity_kind("phone") && is_identity_kind("my-crm-2"));
    assert!(!is_identity_kind("") && !is_identity_kind("Phone") && !is_identity_kind("a b"));
}

#[test]
fn describe_reports_text_and_media() {
    let info = channel_info("phone");
    assert_eq!((info.kind.as_str(), info.display_name.as_str()), ("webhook", "Generic webhook"));
    assert_eq!(info.features, ChannelFeatures::TEXT | ChannelFeatures::MEDIA);
    assert_eq!(info.max_text_length, None);
    assert_eq!(info.identity_kind, "phone");
}

#[test]
fn success_takes_the_provider_id() {
    let accepted = |r: DeliveryResult| match r {
        DeliveryResult::Accepted(id) => id,
        other => panic!("expected Accepted, got {other:?}"),
    };
    assert_eq!(accepted(classify_response(200, None, br#"{"id":"p-9"}"#, "out-1")), "p-9");
    assert_eq!(accepted(classify_response(201, None, br#"{"id":42}"#, "out-1")), "42");
    assert_eq!(accepted(classify_response(202, None, b"ok", "out-1")), "out-1");
    assert_eq!(accepted(classify_response(204, None, b"", "out-1")), "out-1");
}

#[test]
fn throttling_and_outages_are_retried() {
    let hint = retry(classify_response(429, Some(" 30 "), b"slow down", "m"));
    assert_eq!(hint.after_ms, Some(30_000));
    assert_eq!(hint.reason, "send-url answered 429: slow down");
    let hint = retry(classify_response(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"), b"", "m"));
    assert_eq!(hint.after_ms, None, "HTTP dates are not understood");
    assert_eq!(hint.reason, "send-url answered 503: (empty body)");
    assert_eq!(retry(classify_response(500, None, b"x", "m")).after_ms, None);
}

#[test]
fn client_errors_are_rejected_with_a_short_snippet() {
    assert_eq!(
        rejected(classify_response(404, None, b"  no such user\n", "m")),
        "send-url answered 404: no such user"
    );
    let long = "я".repeat(500);
    let reason = rejected(classify_response(400, None, long.as_bytes(), "m"));
    let quoted = reason.strip_prefix("send-url answered 400: ").unwrap();
    assert_eq!(quoted.chars().count(), SNIPPET_CHARS);
    assert!(quoted.ends_with('…'));
    assert_eq!(snippet(&long.as_bytes()[..400]).chars().count(), SNIPPET_CHARS);
    assert!(rejected(classify_response(302, None, b"", "m")).contains("unexpected status 302"));
}

#[test]
fn transport_errors() {
    assert_eq!(rejected(classify_error(&HttpError::Denied)), "send-url host is not in capabilities.http");
    assert!(rejected(classify_error(&HttpError::InvalidRequest("bad".into()))).contains("bad"));
    let hint = retry(classify_error(&HttpError::Transport("ConnectionRefused".into())));
    assert!(hint.reason.contains("ConnectionRefused"), "{}", hint.reason);
    assert!(matches!(classify_error(&HttpError::ResponseTooLarge), DeliveryResult::RetryLater(_)));
}

#[test]
fn deliver_posts_json_with_headers() {
    let mut message = outbound();
    message.reply_to = Some("in-7".to_owned());
    message.template = Some(Template {
        name: "greeting".to_owned(),
        language: "en_US".to_owned(),
        parameters: vec!["Anna".to_owned()],
    });
    message.attachments.push(Attachment {
        kind: AttachmentKind::Document,
        url: Some("https://x/f.pdf".to_owned()),
        provider_id: None,
        mime_type: Some("application/pdf".to_owned()),
        file_name: Some("f.pdf".to_owned()),
        size: None,
        caption: None,
        location: None,
        extras: None,
    });
    message.extras = Some(r#"{"priority":"high"}"#.to_owned());
    let mut seen = None;
    let result = deliver(&message, Some(" https://hooks.example.com/out "), Some("Bearer k"), |r| {
        seen = Some(r.clone());
        Ok(Response { status: 200, headers: Vec::new(), body: br#"{"id":"p-1"}"#.to_vec() })
    });
    assert!(matches!(result, DeliveryResult::Accepted(ref id) if id == "p-1"), "{result:?}");
    let request = seen.unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://hooks.example.com/out");
    let header = |name: &str| request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(header("authorization"), Some("Bearer k"));
    assert_eq!(header("idempotency-key"), Some("out-1"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["id"], "out-1");
    assert_eq!(body["to"], json!({"kind": "webhook", "value": "u-42"}));
    assert_eq!(body["text"], "Hello");
    assert_eq!(body["subject"], Value::Null);
    assert_eq!(body["reply_to"], "in-7");
    assert_eq!(body["template"], json!({"name": "greeting", "language": "en_US", "parameters": ["Anna"]}));
    assert_eq!(body["attachments"][0]["kind"], "document");
    assert_eq!(body["attachments"][0]["file_name"], "f.pdf");
    assert_eq!(body["extras"], json!({"priority": "high"}));
}

#[test]
fn deliver_without_url_or_auth() {
    let called = std::cell::Cell::new(false);
    let transport = |_: &Request| -> Result<Response, HttpError> {
        called.set(true);
        Err(HttpError::Denied)
    };
    assert_eq!(rejected(deliver(&outbound(), None, None, transport)), "config key `send-url` is not set");
    assert_eq!(
        rejected(deliver(&outbound(), Some("  "), None, transport)),
        "config key `send-url` is not set"
    );
    assert!(!called.get(), "no request without a URL");

    let request = build_request(&outbound(), "https://h/", Some(""));
    assert!(request.headers.iter().all(|(k, _)| k != "authorization"), "empty auth is not sent");
    let hint = retry(deliver(&outbound(), Some("https://h/"), None, |_| {
        Ok(Response { status: 502, headers: vec![("retry-after".into(), "5".into())], body: Vec::new() })
    }));
    assert_eq!(hint.after_ms, Some(5_000));
}

/// A Telegram contact share (the fixture), mapped with Telegram paths: the message and a
/// hint linking the Telegram user to the phone they shared.
#[test]
fn shared_phone_becomes_an_identity_hint() {
    let fixture = include_str!("../../../tests/fixtures/telegram/contact.json");
    let body: Value = serde_json::from_str(fixture).unwrap();
    let fields = FieldMap {
        id: "update_id".into(),
        sender: "message/from/id".into(),
        sender_kind: "telegram".into(),
        text: "message/text".into(),
        time: "message/date".into(),
        phone: "message/contact/phone_number".into(),
        ..FieldMap::default()
    };
    let events = map_events(&body, &fields).unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let Event::IdentityHint(hint) = &events[0] else { panic!("first event is {:?}", events[0]) };
    assert!(matches!(events[1], Event::Message(_)), "the message follows its hint");
    assert_eq!((hint.known.kind.as_str(), hint.known.value.as_str()), ("telegram", "12345"));
    assert_eq!((hint.also.kind.as_str(), hint.also.value.as_str()), ("phone", "911"));
    // Without the mapping, the same body is one message and no hint.
    let plain = FieldMap { phone: String::new(), ..fields };
    assert_eq!(map_events(&body, &plain).unwrap().len(), 1);
}
