//! Unit tests of the connector's pure functions.

use super::*;
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::serde_json::{Value, json};

const ACCESS_TOKEN: &str = "ya29.c.b0Aaekm1-secret";
const DEVICE: &str = "bk3RNwTe3H0:CI2k_HHwgIpoDKCIZvvDMExUdFQ3P1";

fn config() -> SendConfig {
    SendConfig {
        api_base: "https://fcm.googleapis.com".to_owned(),
        project_id: "myproject-b5ae1".to_owned(),
        access_token: ACCESS_TOKEN.to_owned(),
        title: "New message".to_owned(),
    }
}

fn outbound(text: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        id: "msg-1".to_owned(),
        to: Identity { kind: "push".to_owned(), value: DEVICE.to_owned() },
        text: text.map(str::to_owned),
        attachments: Vec::new(),
        template: None,
        reply_to: None,
        subject: None,
        extras: None,
    }
}

fn image(url: Option<&str>) -> Attachment {
    Attachment {
        kind: AttachmentKind::Image,
        url: url.map(str::to_owned),
        provider_id: None,
        mime_type: None,
        file_name: None,
        size: None,
        caption: None,
        location: None,
        extras: None,
    }
}

fn body(message: &OutboundMessage) -> Value {
    message_body(message, "New message").unwrap_or_else(|e| panic!("{e}"))
}

fn build_error(message: &OutboundMessage) -> String {
    message_body(message, "New message").unwrap_err()
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

/// An FCM v1 error body with an `FcmError` detail when `error_code` is given.
fn fcm_error_body(code: u16, status: &str, message: &str, error_code: Option<&str>) -> String {
    let mut details = Vec::new();
    if let Some(error_code) = error_code {
        details.push(
            json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}),
        );
    }
    json!({"error": {"code": code, "message": message, "status": status, "details": details}}).to_string()
}

#[test]
fn describe_reports_push() {
    let info = channel_info();
    assert_eq!((info.kind.as_str(), info.identity_kind.as_str()), ("push", "push"));
    assert_eq!(info.features, ChannelFeatures::TEXT);
}

#[test]
fn every_webhook_is_refused() {
    for method in ["POST", "GET", "PUT"] {
        let request = HttpRequest {
            method: method.to_owned(),
            path: "/register".to_owned(),
            query: "token=x".to_owned(),
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: br#"{"token":"abc"}"#.to_vec(),
        };
        match handle(&request) {
            Err(WebhookError::Malformed(m)) => {
                assert!(m.contains("the push channel has no webhook"), "{m}");
                assert!(m.contains(method), "{m}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
}

#[test]
fn text_request() {
    let request = build_request(&outbound(Some("Your order shipped ✓")), &config()).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://fcm.googleapis.com/v1/projects/myproject-b5ae1/messages:send");
    let header = |name: &str| {
        request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    assert_eq!(header("authorization"), Some(format!("Bearer {ACCESS_TOKEN}").as_str()));
    assert_eq!(header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"message": {
            "token": DEVICE,
            "notification": {"title": "New message", "body": "Your order shipped ✓"},
            "data": {"seam_message_id": "msg-1"}
        }})
    );
}

#[test]
fn subject_image_and_extras() {
    let mut message = outbound(Some("50% off today"));
    message.subject = Some("Deals".to_owned());
    message.attachments = vec![image(Some("https://cdn/deal.png"))];
    message.extras = Some(
        json!({
            "order_id": "A-17",
            "count": 3,
            "flags": {"vip": true},
            "skip": null,
            "android": {"priority": "high", "ttl": "3600s"},
            "apns": {"headers": {"apns-priority": "10"}},
            "seam_message_id": "spoofed"
        })
        .to_string(),
    );
    let body = body(&message);
    let fcm = &body["message"];
    assert_eq!(
        fcm["notification"],
        json!({"title": "Deals", "body": "50% off today", "image": "https://cdn/deal.png"})
    );
    assert_eq!(
        fcm["data"],
        json!({"seam_message_id": "msg-1", "order_id": "A-17", "count": "3", "flags": "{\"vip\":true}"})
    );
    assert_eq!(fcm["android"], json!({"priority": "high", "ttl": "3600s"}));
    assert_eq!(fcm["apns"]["headers"]["apns-priority"], "10");
    assert!(fcm["data"].as_object().unwrap().values().all(Value::is_string), "FCM data values are strings");

    // An image alone is a notification with the default title.
    let mut message = outbound(None);
    message.attachments = vec![image(Some("https://cdn/p.png"))];
    let fcm = &body_of(&message)["message"];
    assert_eq!(fcm["notification"], json!({"title": "New message", "image": "https://cdn/p.png"}));
    // A blank subject falls back to the configured title.
    let mut message = outbound(Some("hi"));
    message.subject = Some("  ".to_owned());
    assert_eq!(message_body(&message, "Shop").unwrap()["message"]["notification"]["title"], "Shop");
}

fn body_of(message: &OutboundMessage) -> Value {
    body(message)
}

#[test]
fn unusable_messages_are_errors() {
    let mut message = outbound(Some("hi"));
    message.to = Identity { kind: "email".to_owned(), value: "a@b.c".to_owned() };
    assert!(build_error(&message).contains("`email` identity"));
    message.to = Identity { kind: "push".to_owned(), value: " ".to_owned() };
    assert!(build_error(&message).contains("token is empty"));
    assert!(build_error(&outbound(None)).contains("nothing to send"));
    assert!(build_error(&outbound(Some("  "))).contains("nothing to send"));
    let mut message = outbound(Some("hi"));
    message.template =
        Some(Template { name: "t".to_owned(), language: "en".to_owned(), parameters: Vec::new() });
    assert!(build_error(&message).contains("no templates"));
    let mut message = outbound(Some("hi"));
    message.attachments = vec![image(None)];
    assert!(build_error(&message).contains("has no url"));
    message.attachments = vec![image(Some("https://a")), image(Some("https://b"))];
    assert!(build_error(&message).contains("2 attachment(s)"));
    message.attachments = vec![Attachment { kind: AttachmentKind::Document, ..image(Some("https://a")) }];
    assert!(build_error(&message).contains("at most one image"));
    let mut message = outbound(Some("hi"));
    for (extras, error) in [
        ("[1]".to_owned(), "not a JSON object"),
        (json!({"from": "x"}).to_string(), "`from` cannot be a data key"),
        (json!({"google.c.a.e": "1"}).to_string(), "FCM reserves it"),
        (json!({"gcm_x": "1"}).to_string(), "FCM reserves it"),
        (json!({"android": "high"}).to_string(), "`android` must be an object"),
    ] {
        message.extras = Some(extras.clone());
        let e = build_error(&message);
        assert!(e.contains(error), "{extras}: {e}");
    }
}

#[test]
fn send_config_from_lookup() {
    let none = |_: &str| None;
    let project = |k: &str| (k == "project-id").then(|| " myproject-b5ae1 ".to_owned());
    let token = |k: &str| (k == "access-token").then(|| ACCESS_TOKEN.to_owned());
    assert!(SendConfig::from_lookup(none, token).unwrap_err().contains("`project-id`"));
    assert!(SendConfig::from_lookup(project, none).unwrap_err().contains("`access-token`"));
    let config = SendConfig::from_lookup(project, token).unwrap();
    assert_eq!(config.project_id, "myproject-b5ae1");
    assert_eq!(config.api_base, DEFAULT_API_BASE);
    assert_eq!(config.title, DEFAULT_TITLE);
    assert!(!format!("{config:?}").contains(ACCESS_TOKEN));
    let bad = |k: &str| (k == "project-id").then(|| "my/project?x".to_owned());
    assert!(SendConfig::from_lookup(bad, token).unwrap_err().contains("must be a Firebase project id"));
    let custom = |k: &str| match k {
        "project-id" => Some("p".to_owned()),
        "api-base" => Some("http://127.0.0.1:9/".to_owned()),
        "title" => Some("Acme".to_owned()),
        _ => None,
    };
    let config = SendConfig::from_lookup(custom, token).unwrap();
    assert_eq!(config.send_url(), "http://127.0.0.1:9/v1/projects/p/messages:send");
    assert_eq!(config.title, "Acme");
}

#[test]
fn success_takes_the_message_name() {
    let ok = r#"{"name": "projects/p/messages/0:1500415314455276%31bd1c9631bd1c96"}"#;
    assert_eq!(
        accepted(classify_response(200, None, ok.as_bytes(), "msg-1")),
        "projects/p/messages/0:1500415314455276%31bd1c9631bd1c96"
    );
    assert_eq!(accepted(classify_response(200, None, b"{}", "msg-1")), "msg-1");
}

#[test]
fn permanent_errors_are_rejected_with_fcm_s_words() {
    let unregistered =
        fcm_error_body(404, "NOT_FOUND", "Requested entity was not found.", Some("UNREGISTERED"));
    let reason = rejected(classify_response(404, None, unregistered.as_bytes(), "m"));
    assert!(reason.starts_with("UNREGISTERED: Requested entity was not found."), "{reason}");
    assert!(reason.contains("no longer valid"), "{reason}");

    let invalid = fcm_error_body(
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        Some("INVALID_ARGUMENT"),
    );
    assert_eq!(
        rejected(classify_response(400, None, invalid.as_bytes(), "m")),
        "INVALID_ARGUMENT: The registration token is not a valid FCM registration token"
    );
    let mismatch = fcm_error_body(403, "PERMISSION_DENIED", "SenderId mismatch", Some("SENDER_ID_MISMATCH"));
    assert!(
        rejected(classify_response(403, None, mismatch.as_bytes(), "m")).contains("another Firebase project")
    );

    let auth = fcm_error_body(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials.",
        Some("THIRD_PARTY_AUTH_ERROR"),
    );
    let reason = rejected(classify_response(401, None, auth.as_bytes(), "m"));
    assert!(reason.starts_with("THIRD_PARTY_AUTH_ERROR:") && reason.contains("access-token"), "{reason}");
    // Without an FcmError detail, the status names the error.
    let plain =
        fcm_error_body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", None);
    assert!(rejected(classify_response(401, None, plain.as_bytes(), "m")).starts_with("UNAUTHENTICATED:"));
    // Not an FCM answer at all.
    assert_eq!(rejected(classify_response(404, None, b"Not Found", "m")), "FCM answered 404: Not Found");
}

#[test]
fn quota_and_outages_are_retried() {
    let quota = fcm_error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded", Some("QUOTA_EXCEEDED"));
    let hint = retry(classify_response(429, Some("60"), quota.as_bytes(), "m"));
    assert_eq!(hint.after_ms, Some(60_000));
    assert_eq!(hint.reason, "QUOTA_EXCEEDED: Quota exceeded");
    let unavailable =
        fcm_error_body(503, "UNAVAILABLE", "The service is currently unavailable.", Some("UNAVAILABLE"));
    let hint = retry(classify_response(503, None, unavailable.as_bytes(), "m"));
    assert_eq!(hint.after_ms, None);
    assert!(hint.reason.starts_with("UNAVAILABLE:"));
    let internal = fcm_error_body(500, "INTERNAL", "Internal error encountered.", Some("INTERNAL"));
    retry(classify_response(500, None, internal.as_bytes(), "m"));
    // A RetryInfo detail gives the delay when there is no header.
    let with_delay =
        json!({"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED", "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "QUOTA_EXCEEDED"},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
        ]}})
        .to_string();
    assert_eq!(retry(classify_response(429, None, with_delay.as_bytes(), "m")).after_ms, Some(1500));
    assert_eq!(retry(classify_response(429, Some("2"), with_delay.as_bytes(), "m")).after_ms, Some(2000));
    // A bare 502 or 429 from something in between.
    let hint = retry(classify_response(502, None, b"<html>Bad Gateway</html>", "m"));
    assert!(hint.reason.contains("502") && hint.reason.contains("Bad Gateway"), "{}", hint.reason);
    retry(classify_response(429, None, b"", "m"));
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
fn deliver_wires_request_and_answer() {
    let mut sent = None;
    let result = deliver(&outbound(Some("hi")), Ok(config()), |request: &Request| {
        sent = Some(serde_json::from_slice::<Value>(&request.body).unwrap());
        Ok(response(200, &[], r#"{"name":"projects/myproject-b5ae1/messages/0:1"}"#))
    });
    assert_eq!(accepted(result), "projects/myproject-b5ae1/messages/0:1");
    assert_eq!(sent.unwrap()["message"]["token"], DEVICE);

    let quota = fcm_error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded", Some("QUOTA_EXCEEDED"));
    let hint = retry(deliver(&outbound(Some("hi")), Ok(config()), |_: &Request| {
        Ok(response(429, &[("Retry-After", "9")], &quota))
    }));
    assert_eq!(hint.after_ms, Some(9000));

    let result = deliver(
        &outbound(Some("hi")),
        Err("config key `project-id` is not set".to_owned()),
        |_: &Request| panic!("no request"),
    );
    assert!(rejected(result).contains("project-id"));
    let result = deliver(&outbound(None), Ok(config()), |_: &Request| panic!("no request"));
    assert!(rejected(result).contains("nothing to send"));
}

#[test]
fn the_access_token_never_reaches_a_reason() {
    let echo = fcm_error_body(401, "UNAUTHENTICATED", &format!("bad token {ACCESS_TOKEN}"), None);
    let reason =
        rejected(deliver(&outbound(Some("x")), Ok(config()), |_: &Request| Ok(response(401, &[], &echo))));
    assert!(!reason.contains(ACCESS_TOKEN) && reason.contains("<access-token>"), "{reason}");
    let hint = retry(deliver(&outbound(Some("x")), Ok(config()), |_: &Request| {
        Err(HttpError::Transport(ACCESS_TOKEN.to_owned()))
    }));
    assert!(!hint.reason.contains(ACCESS_TOKEN));
}

#[test]
fn reserved_data_keys() {
    for key in ["from", "FROM", "notification", "message_type", "google.sent_time", "gcm.n.e", "GCM"] {
        assert!(is_reserved_data_key(key), "{key}");
    }
    for key in ["order_id", "fromage", "data", "title"] {
        assert!(!is_reserved_data_key(key), "{key}");
    }
}
