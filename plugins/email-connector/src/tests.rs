//! Unit tests of the connector's pure functions.

use super::*;
use crate::form::{Form, FormField};
use crate::mail::Mailbox;
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::serde_json::{self, Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/email");
const SECRET: &str = "inbound-s3cret";
/// The key the Mailgun fixtures were signed with (tests/fixtures/SOURCES.md).
const MAILGUN_KEY: &str = "TEST_WEBHOOK_SIGNING_KEY";
const BOUNDARY: &str = "test-boundary-7Q9";

fn request(method: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: method.to_owned(),
        path: "/".to_owned(),
        query: query.to_owned(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.to_vec(),
    }
}

/// Config accepting everything the fixtures need: auto-detection, both secrets, no age
/// check (the fixtures' timestamps are years old).
fn config() -> InboundConfig {
    InboundConfig {
        shape: None,
        secret: Some(SECRET.to_owned()),
        mailgun_signing_key: Some(MAILGUN_KEY.to_owned()),
        max_age_secs: 0,
    }
}

/// One field of a test form: name, value, and file name and type for files.
type Part<'a> = (&'a str, &'a [u8], Option<(&'a str, &'a str)>);

/// A multipart/form-data body of `fields`, written independently of the connector's own
/// encoder.
fn multipart(fields: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value, file) in fields {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file {
            Some((file_name, content_type)) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                     Content-Type: {content_type}\r\n"
                )
                .as_bytes(),
            ),
            None => body
                .extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes()),
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

fn urlencoded(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

/// A POST with the secret token in the query.
fn post(content_type: &str, body: &[u8]) -> HttpRequest {
    request("POST", &format!("token={SECRET}"), &[("content-type", content_type)], body)
}

fn raw_post(message: &str) -> HttpRequest {
    post("message/rfc822", message.as_bytes())
}

/// The events of `request` handled with [`config`].
fn events_of(request: &HttpRequest) -> Vec<Event> {
    let handled = handle(request, &config(), 0).unwrap_or_else(|e| panic!("refused: {e:?}"));
    assert_eq!(handled.outcome.response.status, 200);
    handled.outcome.events
}

/// The one message `request` gives.
fn message_of(request: &HttpRequest) -> InboundMessage {
    match events_of(request).as_slice() {
        [Event::Message(m)] => m.clone(),
        other => panic!("expected one message, got {other:?}"),
    }
}

fn extras(message: &InboundMessage) -> Value {
    serde_json::from_str(message.extras.as_deref().expect("extras")).expect("extras are JSON")
}

fn malformed(result: Result<Handled, WebhookError>) -> String {
    match result {
        Err(WebhookError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn unauthorized(result: Result<Handled, WebhookError>) -> String {
    match result {
        Err(WebhookError::Unauthorized(m)) => m,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

fn misconfigured<T: std::fmt::Debug>(result: Result<T, WebhookError>) -> String {
    match result {
        Err(WebhookError::Misconfigured(m)) => m,
        other => panic!("expected Misconfigured, got {other:?}"),
    }
}

/// The string fields of a fixture's JSON field map.
fn field_map(value: &Value) -> Vec<(String, String)> {
    value
        .as_object()
        .expect("a field map is a JSON object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("field values are strings").to_owned()))
        .collect()
}

/// The requests a provider would send for one fixture file, by its format (extension) and
/// content: a `.json` field map is posted as a multipart form and, when it is signed
/// (Mailgun), also urlencoded; `.multipart` bodies as they are; `.eml` as a raw message.
fn fixture_requests(path: &std::path::Path) -> Vec<HttpRequest> {
    let bytes = std::fs::read(path).expect("fixture");
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            let value: Value = serde_json::from_slice(&bytes).expect("fixture JSON");
            let fields = field_map(&value);
            let parts: Vec<Part<'_>> = fields.iter().map(|(k, v)| (k.as_str(), v.as_bytes(), None)).collect();
            let mut requests = vec![post(&multipart_type(), &multipart(&parts))];
            if fields.iter().any(|(k, _)| k == "signature") {
                let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                requests.push(request(
                    "POST",
                    "",
                    &[("content-type", "application/x-www-form-urlencoded")],
                    &urlencoded(&pairs),
                ));
            }
            requests
        }
        Some("multipart") => vec![post("multipart/form-data; boundary=xYzZY", &bytes)],
        Some("eml") => vec![post("message/rfc822", &bytes)],
        other => panic!("{}: unknown fixture format {other:?}", path.display()),
    }
}

fn fixture_paths() -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> =
        std::fs::read_dir(FIXTURES).expect("fixture folder").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    paths
}

/// Every fixture's events, with the fixture's path.
fn all_fixture_events() -> Vec<(String, Event)> {
    let mut all = Vec::new();
    for path in fixture_paths() {
        let name = path.display().to_string();
        let requests = fixture_requests(&path);
        let first = events_of(&requests[0]);
        assert_eq!(first.len(), 1, "{name}: one event per email, got {first:?}");
        // Another encoding of the same fields, and a retry, give the same events.
        for other in &requests {
            assert_eq!(format!("{:?}", events_of(other)), format!("{first:?}"), "{name}");
        }
        all.extend(first.into_iter().map(|e| (name.clone(), e)));
    }
    all
}

/// Every fixture is accepted and normalized; checks that hold for every event.
#[test]
fn every_fixture_is_accepted_and_normalized() {
    let all = all_fixture_events();
    assert!(all.len() >= 13, "only {} fixtures", all.len());
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (name, event) in &all {
        let kind = match event {
            Event::Message(m) => {
                assert!(!m.external_id.is_empty(), "{name}: empty external id");
                assert!(!m.external_id.starts_with('<') && !m.external_id.ends_with('>'), "{name}");
                assert_eq!(m.sender.kind, "email", "{name}");
                assert!(m.sender.value.contains('@'), "{name}: sender {}", m.sender.value);
                assert!(m.text.as_deref().is_some_and(|t| !t.trim().is_empty()), "{name}: no text");
                assert!(m.sent_at.is_some_and(|t| t > 1_500_000_000_000), "{name}: sent-at {:?}", m.sent_at);
                let extras = extras(m);
                assert!(
                    ["sendgrid", "mailgun", "raw"].contains(&extras["provider"].as_str().unwrap_or("")),
                    "{name}"
                );
                assert!(extras["subject"].as_str().is_some_and(|s| !s.is_empty()), "{name}: no subject");
                if let Some(reply_to) = &m.reply_to {
                    assert!(m.thread.is_some(), "{name}: a reply has a thread");
                    assert!(!reply_to.contains('<'), "{name}");
                }
                "message".to_owned()
            }
            Event::Delivery(d) => {
                assert!(d.provider_id.contains('@'), "{name}: {}", d.provider_id);
                assert_eq!(d.status, DeliveryStatus::Failed, "{name}");
                assert!(d.reason.as_deref().is_some_and(|r| !r.is_empty()), "{name}");
                assert_eq!(d.recipient.as_ref().map(|r| r.kind.as_str()), Some("email"), "{name}");
                "delivery".to_owned()
            }
            Event::Channel(c) => {
                assert!(c.external_id.starts_with("bounce:"), "{name}");
                let payload: Value = serde_json::from_str(&c.payload).expect("payload JSON");
                assert!(payload["reason"].as_str().is_some_and(|r| !r.is_empty()), "{name}");
                format!("channel:{}", c.kind)
            }
            other => panic!("{name}: unexpected event {other:?}"),
        };
        *counts.entry(kind).or_default() += 1;
    }
    let expected: std::collections::BTreeMap<String, usize> =
        [("message", 11), ("delivery", 1), ("channel:bounce", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    assert_eq!(counts, expected);
}

fn fixture_messages() -> Vec<InboundMessage> {
    all_fixture_events()
        .into_iter()
        .filter_map(|(_, e)| if let Event::Message(m) = e { Some(m) } else { None })
        .collect()
}

#[test]
fn fixture_charsets_decode_to_unicode() {
    let messages = fixture_messages();
    // SendGrid's mixed charsets: the subject is cp850, the text windows-1252, the html
    // iso-8859-1, the From an RFC 2047 word.
    let m = messages.iter().find(|m| m.sender.value == "sender@example.com").expect("the charset sample");
    assert_eq!(m.sender_name.as_deref(), Some("Opérateur de test"));
    assert_eq!(m.text.as_deref(), Some("Test the ESP’s inbound charset handling…"));
    assert_eq!(extras(m)["subject"], "Como usted pidió");
    assert!(m.external_id.starts_with("sha256-"), "no Message-ID: a content hash, got {}", m.external_id);
    assert_eq!(m.thread, None);
    // Base64 UTF-8 body and encoded-word headers in Arabic.
    let m = messages.iter().find(|m| m.sender.value == "example@gmail.com").expect("the Arabic sample");
    assert_eq!(m.sender_name.as_deref(), Some("متجر سوق نت"));
    assert_eq!(extras(m)["subject"], "أهلين عميلنا الكريم");
    assert!(m.text.as_deref().unwrap().starts_with("أنظروا، أنا أحتاجها"), "{:?}", m.text);
    assert_eq!(extras(m)["auto_submitted"], "auto-replied");
    // Quoted-printable UTF-8 (SendGrid raw and Mailgun MIME carry the same mail).
    let mime: Vec<_> = messages.iter().filter(|m| m.external_id == "CAEPk3RKEx@mail.example.org").collect();
    assert_eq!(mime.len(), 2);
    for m in mime {
        assert_eq!(m.text.as_deref(), Some("It's a body…"));
        assert_eq!(m.sender_name.as_deref(), Some("A tester"));
        assert_eq!(m.sender.value, "test@example.org");
    }
}

#[test]
fn fixture_quotes_threads_and_html() {
    let messages = fixture_messages();
    let quoted = messages
        .iter()
        .find(|m| m.external_id == "CAFkiBVwJjO_k_e-LpiKi7MAQAKbHX5nkEPcf0y1R=bjcEHogMg@mail.gmail.com")
        .expect("the quoted reply");
    assert_eq!(quoted.text.as_deref(), Some("Yes, I am providing you step how to reproduce this issue"));
    let full = extras(quoted)["text_full"].as_str().expect("text_full").to_owned();
    assert!(full.contains("> Any update on this?") && full.contains("wrote:"), "{full}");
    assert_eq!(
        quoted.reply_to.as_deref(),
        Some("0100017b5d8efc70-c7f18809-aa55-48f6-91fd-b626092ed8b3-000000@email.amazonses.com")
    );
    assert_eq!(
        quoted.thread.as_deref(),
        Some("CAFkiBVxGoURoqdkY-O_25F-8b41kb-GWBc6hh4Djd5ynwOikXA@mail.gmail.com")
    );

    // Two ids in In-Reply-To: the first is the reply-to; References gives the thread.
    let multi = messages
        .iter()
        .find(|m| m.external_id == "0CB459E0-0336-41DA-BC88-E6E28C697DDB@chatwoot.com")
        .expect("the multiple In-Reply-To sample");
    assert_eq!(multi.reply_to.as_deref(), Some("4e6e35f5a38b4_479f13bb90078171@small-app-01.mail"));
    assert_eq!(multi.thread.as_deref(), Some("4e6e35f5a38b4_479f13bb90078178@small-app-01.mail"));
    assert_eq!(multi.sender.value, "Sony@chatwoot.com", "identity values are passed as given");
    assert_eq!(extras(multi)["in_reply_to"].as_array().map(Vec::len), Some(2));

    let html = messages.iter().find(|m| m.sender.value == "tejaswini@ex.com").expect("the HTML-only sample");
    assert_eq!(html.text.as_deref(), Some("This is html only mail"));
    assert_eq!(extras(html)["text_from_html"], true);
    assert_eq!(html.reply_to, None, "an empty In-Reply-To is no reply");
    assert_eq!(html.thread.as_deref(), Some(html.external_id.as_str()), "a new mail starts its own thread");

    // Mailgun's stripped-text is the text; body-plain is kept whole.
    let mailgun = messages
        .iter()
        .find(|m| m.external_id == "CAEPk3R+4Zr@mail.example.org" && extras(m)["provider"] == "mailgun")
        .expect("the Mailgun basics sample");
    assert_eq!(mailgun.text.as_deref(), Some("stripped plaintext body"));
    assert_eq!(extras(mailgun)["text_full"], "Test body plain");
    assert_eq!(mailgun.sender_name.as_deref(), Some("Displayed From"));
    assert_eq!(mailgun.sender.value, "from+test@example.org");
    assert_eq!(extras(mailgun)["cc"], json!(["cc@example.com"]));
    assert_eq!(extras(mailgun)["envelope_from"], "envelope-from@example.org");

    let sendgrid = messages
        .iter()
        .find(|m| m.external_id == "CAEPk3R+4Zr@mail.example.org" && extras(m)["provider"] == "sendgrid")
        .expect("the SendGrid basics sample");
    assert_eq!(sendgrid.text.as_deref(), Some("Test body plain"));
    assert_eq!(sendgrid.sender_name.as_deref(), Some("Displayed From"));
    assert_eq!(extras(sendgrid)["to"], json!(["test@inbound.example.com", "other@example.com"]));
    assert_eq!(extras(sendgrid)["envelope"]["from"], "envelope-from@example.org");
    assert_eq!(extras(sendgrid)["spam_score"], "1.7");
    // Wed, 11 Oct 2017 18:31:04 -0700
    assert_eq!(sendgrid.sent_at, Some(1_507_771_864_000));
}

#[test]
fn fixture_bounces() {
    let all = all_fixture_events();
    let delivery = all
        .iter()
        .find_map(|(_, e)| if let Event::Delivery(d) = e { Some(d) } else { None })
        .expect("the Gmail bounce");
    assert_eq!(
        delivery.provider_id,
        "conversation/93775311-9416-4428-964b-862001f8a8b2/messages/27855337@gmail.com"
    );
    assert_eq!(delivery.recipient.as_ref().map(|r| r.value.as_str()), Some("alex.jones@fictionalcorp.com"));
    let reason = delivery.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("550 5.1.1 The email account that you tried to reach does not exist"),
        "{reason}"
    );
    assert!(reason.ends_with("gsmtp"), "the whole SMTP reply: {reason}");
    assert_eq!(delivery.at, Some(1_751_582_665_000));

    let bounce = all
        .iter()
        .find_map(|(_, e)| if let Event::Channel(c) = e { Some(c) } else { None })
        .expect("the bounce without From");
    assert_eq!(bounce.kind, "bounce");
    assert_eq!(bounce.external_id, "bounce:20240101082712.8D329A008A@smtp5.relay.example.com");
    assert_eq!(bounce.customer.as_ref().map(|c| c.value.as_str()), Some("noreply@example-service.com"));
    let payload: Value = serde_json::from_str(&bounce.payload).unwrap();
    assert_eq!(payload["status"], "5.7.1");
    assert_eq!(payload["action"], "failed");
    assert!(
        payload["diagnostic"].as_str().unwrap().contains("Recipient address rejected: user"),
        "{payload}"
    );
    assert_eq!(payload["original_message_id"], Value::Null);
}

/// Truncated and garbled bodies never panic: every cut of every fixture, as a raw message
/// and as a form, is either accepted or refused with an error.
#[test]
fn broken_bodies_never_panic() {
    let forms =
        ["multipart/form-data; boundary=xYzZY", "application/x-www-form-urlencoded", "message/rfc822"];
    for path in fixture_paths() {
        let bytes = std::fs::read(&path).unwrap();
        let step = (bytes.len() / 150).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            for content_type in forms {
                let _ = handle(&post(content_type, &bytes[..cut]), &config(), 0);
            }
            if let Ok(text) = std::str::from_utf8(&bytes[..cut]) {
                let _ = text::html_to_text(text);
                let _ = text::strip_quoted(text);
            }
        }
    }
    for html in
        ["<", "<a", "<!--", "<p title=\"x>", "&", "&#", "&#x110000;", "</blockquote></blockquote>x", "<pre>"]
    {
        let _ = text::html_to_text(html);
    }
}

// ---- Authentication -------------------------------------------------------------------

const SIMPLE_MAIL: &str = "From: Anna <anna@example.com>\r\nTo: support@example.com\r\nSubject: Hi\r\n\
                           Message-ID: <m1@example.com>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nHello!\r\n";

#[test]
fn raw_and_sendgrid_need_the_secret_token() {
    let body = SIMPLE_MAIL.as_bytes();
    let by_header =
        request("POST", "", &[("content-type", "message/rfc822"), ("x-seam-token", SECRET)], body);
    assert_eq!(message_of(&by_header).external_id, "m1@example.com");
    assert_eq!(message_of(&raw_post(SIMPLE_MAIL)).text.as_deref(), Some("Hello!"));

    let wrong = request("POST", "token=nope", &[("content-type", "message/rfc822")], body);
    assert!(unauthorized(handle(&wrong, &config(), 0)).contains("does not match"));
    let missing = request("POST", "", &[("content-type", "message/rfc822")], body);
    assert!(unauthorized(handle(&missing, &config(), 0)).contains("missing `token`"));

    let unset = InboundConfig { secret: None, ..config() };
    assert!(misconfigured(handle(&raw_post(SIMPLE_MAIL), &unset, 0)).contains("`secret`"));
    let form = multipart(&[("headers", SIMPLE_MAIL.as_bytes(), None), ("text", b"Hello!", None)]);
    assert!(misconfigured(handle(&post(&multipart_type(), &form), &unset, 0)).contains("`secret`"));
    let wrong_form = request("POST", "token=x", &[("content-type", &multipart_type())], &form);
    assert!(unauthorized(handle(&wrong_form, &config(), 0)).contains("does not match"));
    // A secret for SendGrid does not let Mailgun-shaped requests through, and vice versa.
    let mailgun_only = InboundConfig { secret: None, ..config() };
    let signed = mailgun_form(&[("body-plain", "Hi"), ("from", "a@b.c")], "1700000000", "tok", MAILGUN_KEY);
    assert!(handle(&signed, &mailgun_only, 0).is_ok());
}

/// A urlencoded Mailgun form of `fields`, signed with `key`.
fn mailgun_form(fields: &[(&str, &str)], timestamp: &str, token: &str, key: &str) -> HttpRequest {
    let signature =
        hex::encode(signature::hmac_sha256(key.as_bytes(), format!("{timestamp}{token}").as_bytes()));
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.extend([("timestamp", timestamp), ("token", token), ("signature", signature.as_str())]);
    request("POST", "", &[("content-type", "application/x-www-form-urlencoded")], &urlencoded(&all))
}

#[test]
fn mailgun_signatures_are_checked() {
    let fields = [("from", "Anna <anna@example.com>"), ("subject", "Hi"), ("body-plain", "Hello")];
    let ok = mailgun_form(&fields, "1700000000", "abc", MAILGUN_KEY);
    assert_eq!(message_of(&ok).sender.value, "anna@example.com");

    let wrong_key = mailgun_form(&fields, "1700000000", "abc", "another-key");
    assert!(unauthorized(handle(&wrong_key, &config(), 0)).contains("`signature` does not match"));

    // Tampered: the signed timestamp changed after signing.
    let mut tampered = ok.clone();
    let body = String::from_utf8(tampered.body.clone()).unwrap().replace("1700000000", "1700000001");
    tampered.body = body.into_bytes();
    assert!(unauthorized(handle(&tampered, &config(), 0)).contains("does not match"));

    let unsigned = request(
        "POST",
        "",
        &[("content-type", "application/x-www-form-urlencoded")],
        &urlencoded(&[("body-plain", "Hello"), ("from", "a@b.c")]),
    );
    assert!(unauthorized(handle(&unsigned, &config(), 0)).contains("missing `timestamp`"));

    let no_key = InboundConfig { mailgun_signing_key: None, ..config() };
    assert!(misconfigured(handle(&ok, &no_key, 0)).contains("`mailgun-signing-key`"));
    // The token secret is not a way around the signature.
    let with_token = request(
        "POST",
        &format!("token={SECRET}"),
        &[("content-type", "application/x-www-form-urlencoded")],
        &unsigned.body,
    );
    assert!(unauthorized(handle(&with_token, &config(), 0)).contains("missing"));
}

#[test]
fn mailgun_timestamps_must_be_recent() {
    let fields = [("from", "a@example.com"), ("body-plain", "Hello")];
    let request = mailgun_form(&fields, "1700000000", "abc", MAILGUN_KEY);
    let checked = InboundConfig { max_age_secs: 900, ..config() };
    assert!(handle(&request, &checked, 1_700_000_500).is_ok());
    assert!(handle(&request, &checked, 1_699_999_500).is_ok(), "a little clock skew is fine");
    let stale = unauthorized(handle(&request, &checked, 1_700_001_000));
    assert!(stale.contains("1000 s away") && stale.contains("max-age-secs"), "{stale}");
    assert!(unauthorized(handle(&request, &checked, 1_699_990_000)).contains("away from now"));
    assert!(misconfigured(handle(&request, &checked, 0)).contains("capabilities.clock"));
    let bad = mailgun_form(&fields, "yesterday", "abc", MAILGUN_KEY);
    assert!(unauthorized(handle(&bad, &checked, 1_700_000_000)).contains("not Unix seconds"));
    assert!(handle(&bad, &config(), 0).is_ok(), "max-age-secs = 0 turns the check off");
}

#[test]
fn config_is_read_and_checked() {
    let lookup = |pairs: &'static [(&'static str, &'static str)]| {
        move |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned())
    };
    let c = InboundConfig::from_lookup(lookup(&[]), lookup(&[("secret", " s ")])).unwrap();
    assert_eq!((c.shape, c.secret.as_deref(), c.max_age_secs), (None, Some("s"), DEFAULT_MAX_AGE_SECS));
    let c = InboundConfig::from_lookup(lookup(&[("inbound", "Mailgun"), ("max-age-secs", "0")]), lookup(&[]))
        .unwrap();
    assert_eq!((c.shape, c.max_age_secs), (Some(Shape::Mailgun), 0));
    assert!(
        misconfigured(InboundConfig::from_lookup(lookup(&[("inbound", "smtp")]), lookup(&[])))
            .contains("`inbound`")
    );
    assert!(
        misconfigured(InboundConfig::from_lookup(lookup(&[("max-age-secs", "15m")]), lookup(&[])))
            .contains("`max-age-secs`")
    );
    let debug =
        format!("{:?}", InboundConfig::from_lookup(lookup(&[]), lookup(&[("secret", "hunter2")])).unwrap());
    assert!(!debug.contains("hunter2"), "{debug}");
}

// ---- Shapes and malformed bodies ------------------------------------------------------

#[test]
fn shapes_are_detected_or_enforced() {
    let sendgrid = multipart(&[("headers", SIMPLE_MAIL.as_bytes(), None), ("text", b"Hello!", None)]);
    let m = message_of(&post(&multipart_type(), &sendgrid));
    assert_eq!(extras(&m)["provider"], "sendgrid");

    let raw_only = InboundConfig { shape: Some(Shape::Raw), ..config() };
    assert!(malformed(handle(&post(&multipart_type(), &sendgrid), &raw_only, 0)).contains("is a form"));
    let sendgrid_only = InboundConfig { shape: Some(Shape::SendGrid), ..config() };
    assert!(malformed(handle(&raw_post(SIMPLE_MAIL), &sendgrid_only, 0)).contains("multipart/form-data"));
    assert!(handle(&post(&multipart_type(), &sendgrid), &sendgrid_only, 0).is_ok());
    // A SendGrid form sent where Mailgun is configured is checked as Mailgun's: unsigned.
    let mailgun_only = InboundConfig { shape: Some(Shape::Mailgun), ..config() };
    assert!(unauthorized(handle(&post(&multipart_type(), &sendgrid), &mailgun_only, 0)).contains("missing"));

    let unknown = multipart(&[("name", b"x", None)]);
    assert!(malformed(handle(&post(&multipart_type(), &unknown), &config(), 0)).contains("neither SendGrid"));
    let get = request("GET", &format!("token={SECRET}"), &[], b"");
    assert!(malformed(handle(&get, &config(), 0)).contains("POST"));
    assert!(malformed(handle(&raw_post(""), &config(), 0)).contains("no header"));
    assert!(malformed(handle(&raw_post("just some words\r\n"), &config(), 0)).contains("not an RFC 5322"));
    assert!(
        malformed(handle(&raw_post("X-Thing: 1\r\n\r\nbody"), &config(), 0)).contains("none of the headers")
    );
    let no_boundary = post("multipart/form-data", &sendgrid);
    assert!(malformed(handle(&no_boundary, &config(), 0)).contains("multipart"));
    let mut bad_headers = mailgun_form(&[("message-headers", "not json")], "1", "t", MAILGUN_KEY);
    assert!(malformed(handle(&bad_headers, &config(), 0)).contains("`message-headers` is not JSON"));
    bad_headers = mailgun_form(&[("message-headers", "{\"From\": \"a@b.c\"}")], "1", "t", MAILGUN_KEY);
    assert!(malformed(handle(&bad_headers, &config(), 0)).contains("list"));
    let empty_sendgrid = multipart(&[("envelope", b"{}", None)]);
    assert!(
        malformed(handle(&post(&multipart_type(), &empty_sendgrid), &config(), 0))
            .contains("none of SendGrid")
    );
}

#[test]
fn emails_without_a_sender_are_accepted_without_events() {
    let mail = "To: support@example.com\r\nSubject: who am I\r\nMessage-ID: <x1@example.com>\r\n\r\nhi\r\n";
    let handled = handle(&raw_post(mail), &config(), 0).unwrap();
    assert_eq!(handled.outcome.response.status, 200);
    assert!(handled.outcome.events.is_empty());
    assert!(handled.note.unwrap().contains("x1@example.com"));

    // A From without an address falls back to Sender, then to the envelope sender.
    let mail = "From: \"Nobody\"\r\nReturn-Path: <bounce@example.org>\r\nTo: s@example.com\r\n\r\nhi\r\n";
    assert_eq!(message_of(&raw_post(mail)).sender.value, "bounce@example.org");
    let mail =
        "From: \"Nobody\"\r\nSender: Desk <desk@example.org>\r\nReturn-Path: <b@example.org>\r\n\r\nhi\r\n";
    assert_eq!(message_of(&raw_post(mail)).sender.value, "desk@example.org");
    let mail = "From: \"Nobody\"\r\nReturn-Path: <>\r\nSubject: x\r\n\r\nhi\r\n";
    assert!(events_of(&raw_post(mail)).is_empty());
}

#[test]
fn messages_without_message_id_get_a_content_hash() {
    let a = "From: a@example.com\r\nSubject: one\r\n\r\nfirst\r\n";
    let b = "From: a@example.com\r\nSubject: one\r\n\r\nsecond\r\n";
    let (ma, mb) = (message_of(&raw_post(a)), message_of(&raw_post(b)));
    assert!(ma.external_id.starts_with("sha256-") && ma.external_id.len() == 39, "{}", ma.external_id);
    assert_eq!(ma.external_id, message_of(&raw_post(a)).external_id, "a retry gets the same id");
    assert_ne!(ma.external_id, mb.external_id);
    assert_eq!((ma.thread, ma.reply_to, ma.sent_at), (None, None, None));

    // SendGrid fields: the hash does not depend on the multipart boundary.
    let fields = [
        ("from", &b"a@example.com"[..], None),
        ("text", &b"hello"[..], None),
        ("envelope", &br#"{"to":["s@example.com"],"from":"a@example.com"}"#[..], None),
    ];
    let body = multipart(&fields);
    let other = String::from_utf8(body.clone()).unwrap().replace(BOUNDARY, "another-boundary");
    let first = message_of(&post(&multipart_type(), &body)).external_id;
    let second =
        message_of(&post("multipart/form-data; boundary=another-boundary", other.as_bytes())).external_id;
    assert_eq!(first, second);
}

// ---- Text: charsets, HTML, quotes -----------------------------------------------------

#[test]
fn sendgrid_fields_are_decoded_with_their_charsets() {
    let koi8 = [0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4]; // "Привет" in KOI8-R
    let latin1 = b"Caf\xe9";
    let fields = [
        ("from", &b"Ivan <ivan@example.ru>"[..], None),
        ("subject", &latin1[..], None),
        ("text", &koi8[..], None),
        ("charsets", &br#"{"text":"KOI8-R","subject":"iso-8859-1","from":"UTF-8"}"#[..], None),
    ];
    let m = message_of(&post(&multipart_type(), &multipart(&fields)));
    assert_eq!(m.text.as_deref(), Some("Привет"));
    assert_eq!(extras(&m)["subject"], "Café");
    assert_eq!(m.sender_name.as_deref(), Some("Ivan"));
    // An unknown charset falls back to UTF-8.
    assert_eq!(decode_charset("ok ✓".as_bytes(), Some("x-unknown")), "ok ✓");
    assert_eq!(decode_charset(b"\x9b", Some("cp850")), "ø");
}

#[test]
fn html_becomes_text() {
    let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
                <div>Hello&nbsp;<b>Anna</b>,</div><div>line&nbsp;two &amp; more &#8212; &lt;ok&gt;</div>\
                <p>Para</p><ul><li>one</li><li>two</li></ul><script>alert(1)</script>\
                a<br>b<br><br>c<!-- hidden --></body></html>";
    assert_eq!(
        text::html_to_text(html),
        "Hello Anna,\nline two & more — <ok>\n\nPara\n\n- one\n- two\na\nb\n\nc"
    );
    let quoted =
        "<div>Top</div><blockquote><p>quoted</p><blockquote>deeper</blockquote></blockquote><div>after</div>";
    assert_eq!(text::html_to_text(quoted), "Top\n\n> quoted\n>\n> > deeper\n\nafter");
    assert_eq!(text::html_to_text("<pre>a  b\n  c</pre>x"), "a  b\n  c\n\nx");
    assert_eq!(text::html_to_text("a &unknown; b & c <"), "a &unknown; b & c <");
    assert_eq!(text::html_to_text("<p title=\"a>b\">x</p>"), "x");
}

#[test]
fn html_only_mail_has_its_quote_stripped() {
    let mail = "From: a@example.com\r\nMessage-ID: <h1@example.com>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
                <div>Thanks, that works.</div><div class=\"gmail_quote\">On Mon, 1 Jan 2024, Support \
                &lt;support@example.com&gt; wrote:<br></div><blockquote>Did it work?</blockquote>";
    let m = message_of(&raw_post(mail));
    assert_eq!(m.text.as_deref(), Some("Thanks, that works."));
    assert!(extras(&m)["text_full"].as_str().unwrap().contains("> Did it work?"));
}

#[test]
fn quoted_history_is_stripped() {
    let cases: &[(&str, Option<&str>)] = &[
        // Gmail, attribution wrapped over two lines, signature after the quote.
        (
            "Sure.\n\nOn Thu, Aug 19, 2021 at 2:07 PM Anna <\nanna@example.com> wrote:\n\n> Any update?\n>\n\n--\nBob\n",
            Some("Sure."),
        ),
        // Outlook.
        ("Fine by me.\n\n-----Original Message-----\nFrom: A\nSent: today\n\nold text", Some("Fine by me.")),
        ("Ok\n\n________________________________\nFrom: Anna\nSent: Monday\nTo: B\n\nold", Some("Ok")),
        ("Ок\n\nОт: Анна\nОтправлено: понедельник\nold", Some("Ок")),
        // Russian and German attributions, a localized Gmail one.
        ("Спасибо!\n\n12.03.2024, 10:00, Иван написал(а):\n> Вопрос", Some("Спасибо!")),
        ("Danke\n\nAm 12.03.2024 schrieb Max:\n> Frage", Some("Danke")),
        ("Merci\n\nпт, 19 авг. 2021 г. в 14:07, Anna <anna@example.com>:\n> old", Some("Merci")),
        // Trailing quote without an attribution.
        ("Answer\n> old\n> older\n", Some("Answer")),
        // Interleaved answers are kept whole.
        ("On Mon, Anna wrote:\n> question one\nanswer one\n> question two\nanswer two", None),
        // A message that is all quote is kept whole.
        ("On Mon, Anna wrote:\n> only quote", None),
        // Nothing to strip; a forward is content.
        ("Just text\nwith lines", None),
        ("FYI\n\n---------- Forwarded message ---------\nFrom: X\nDate: Y\n\nbody", None),
        ("a > b is true\nso is c", None),
    ];
    for (input, expected) in cases {
        assert_eq!(text::strip_quoted(input).as_deref(), *expected, "{input:?}");
    }
}

#[test]
fn long_texts_are_cut() {
    let long = "x".repeat(MAX_TEXT_BYTES + 10);
    let mail = format!("From: a@example.com\r\nMessage-ID: <l@x>\r\n\r\nй{long}\r\n");
    let m = message_of(&raw_post(&mail));
    let text = m.text.clone().unwrap();
    assert!(text.len() <= MAX_TEXT_BYTES && text.starts_with('й'));
    assert_eq!(extras(&m)["text_truncated"], true);
    assert_eq!(text::truncate("ййй".to_owned(), 3), ("й".to_owned(), true));
}

// ---- Attachments ------------------------------------------------------------------------

#[test]
fn mime_attachments_are_listed_without_content() {
    let mail = "From: a@example.com\r\nMessage-ID: <att@example.com>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
        --b1\r\nContent-Type: multipart/related; boundary=\"b2\"\r\n\r\n\
        --b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See <img src=\"cid:logo@x\"></p>\r\n\
        --b2\r\nContent-Type: image/png; name=\"logo.png\"\r\nContent-ID: <logo@x>\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b2--\r\n\
        --b1\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; \
        filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";
    let m = message_of(&raw_post(mail));
    assert_eq!(m.text.as_deref(), Some("See"));
    let summary: Vec<_> = m
        .attachments
        .iter()
        .map(|a| (a.kind, a.file_name.as_deref(), a.mime_type.as_deref(), a.size, a.extras.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                AttachmentKind::Image,
                Some("logo.png"),
                Some("image/png"),
                Some(8),
                Some(r#"{"content_id":"logo@x"}"#.to_owned())
            ),
            (AttachmentKind::Document, Some("report.pdf"), Some("application/pdf"), Some(9), None),
        ]
    );
    assert!(m.attachments.iter().all(|a| a.url.is_none() && a.provider_id.is_none()));
}

#[test]
fn form_attachments_are_listed() {
    let png = [0x89u8, b'P', b'N', b'G', 0, 1, 2, 3];
    let fields = [
        ("from", &b"a@example.com"[..], None),
        ("text", &b"see attached"[..], None),
        ("attachments", &b"1"[..], None),
        (
            "attachment-info",
            &br#"{"attachment1":{"filename":"pic.png","type":"image/png","content-id":"ii_1"}}"#[..],
            None,
        ),
        ("attachment1", &png[..], Some(("pic.png", "image/png"))),
    ];
    let m = message_of(&post(&multipart_type(), &multipart(&fields)));
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert_eq!((a.kind, a.file_name.as_deref(), a.size), (AttachmentKind::Image, Some("pic.png"), Some(8)));
    assert_eq!(a.extras.as_deref(), Some(r#"{"content_id":"ii_1"}"#));

    // Mailgun posts attachment-N files in a multipart form.
    let signature = hex::encode(signature::hmac_sha256(MAILGUN_KEY.as_bytes(), b"1t"));
    let fields = [
        ("from", &b"a@example.com"[..], None),
        ("body-plain", &b"see attached"[..], None),
        ("attachment-count", &b"1"[..], None),
        ("attachment-1", &b"%PDF-1.4 xx"[..], Some(("doc.pdf", "application/pdf"))),
        ("timestamp", &b"1"[..], None),
        ("token", &b"t"[..], None),
        ("signature", signature.as_bytes(), None),
    ];
    let req = request("POST", "", &[("content-type", &multipart_type())], &multipart(&fields));
    let m = message_of(&req);
    let a = &m.attachments[0];
    assert_eq!(
        (a.kind, a.file_name.as_deref(), a.mime_type.as_deref(), a.size),
        (AttachmentKind::Document, Some("doc.pdf"), Some("application/pdf"), Some(11))
    );
}

// ---- Bounces ----------------------------------------------------------------------------

fn dsn(action: &str, original_headers: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\nTo: support@example.com\r\nSubject: Undelivered Mail\r\n\
         Message-ID: <dsn1@mx.example.net>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; gone@example.org\r\nAction: {action}\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 user unknown\r\n\r\n\
         --r\r\nContent-Type: text/rfc822-headers\r\n\r\n{original_headers}\r\n--r--\r\n"
    )
}

#[test]
fn bounces_become_delivery_updates() {
    let original = "From: support@example.com\r\nTo: gone@example.org\r\nMessage-ID: <sent-1@mg.example.com>\r\nSubject: Hello";
    match events_of(&raw_post(&dsn("failed", original))).as_slice() {
        [Event::Delivery(d)] => {
            assert_eq!(d.provider_id, "sent-1@mg.example.com");
            assert_eq!(d.status, DeliveryStatus::Failed);
            assert_eq!(d.reason.as_deref(), Some("550 user unknown (status 5.1.1)"));
            assert_eq!(d.recipient.as_ref().map(|r| r.value.as_str()), Some("gone@example.org"));
            assert_eq!(d.at, Some(1_704_103_200_000));
        }
        other => panic!("{other:?}"),
    }
    match events_of(&raw_post(&dsn("delivered", original))).as_slice() {
        [Event::Delivery(d)] => assert_eq!((d.status, d.reason.clone()), (DeliveryStatus::Delivered, None)),
        other => panic!("{other:?}"),
    }
    match events_of(&raw_post(&dsn("delayed", original))).as_slice() {
        [Event::Channel(c)] => {
            assert_eq!(
                (c.kind.as_str(), c.external_id.as_str()),
                ("delivery-delayed", "bounce:dsn1@mx.example.net")
            );
            let payload: Value = serde_json::from_str(&c.payload).unwrap();
            assert_eq!(payload["original_message_id"], "sent-1@mg.example.com");
        }
        other => panic!("{other:?}"),
    }
    // No returned Message-ID: a channel event about the recipient.
    match events_of(&raw_post(&dsn("failed", "From: support@example.com\r\nSubject: Hello"))).as_slice() {
        [Event::Channel(c)] => {
            assert_eq!(c.kind, "bounce");
            assert_eq!(c.customer.as_ref().map(|i| i.value.as_str()), Some("gone@example.org"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mailer_daemon_notices_are_bounces_too() {
    // No report part: the reason comes from the SMTP reply in the text, the id from the
    // returned message.
    let mail = "From: Mail Delivery Subsystem <MAILER-DAEMON@example.net>\r\nSubject: failure notice\r\n\
        Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nX-Failed-Recipients: lost@example.org\r\n\
        Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\n\
        Sorry.\r\n\r\nlost@example.org: host said: 550-5.1.1 No such\r\n   user here\r\n\r\nBye\r\n\
        --m\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <orig@example.com>\r\nTo: lost@example.org\r\n\r\nHi\r\n--m--\r\n";
    match events_of(&raw_post(mail)).as_slice() {
        [Event::Delivery(d)] => {
            assert_eq!(d.provider_id, "orig@example.com");
            assert_eq!(d.reason.as_deref(), Some("550-5.1.1 No such user here"));
            assert_eq!(d.recipient.as_ref().map(|r| r.value.as_str()), Some("lost@example.org"));
        }
        other => panic!("{other:?}"),
    }
    // Through SendGrid's parsed fields, the report parts arrive as attachments.
    let original = b"Message-ID: <sg-orig@example.com>\r\nTo: x@example.org\r\n";
    let status = b"Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.0.0\r\n";
    let fields = [
        ("headers", &b"From: postmaster@example.net\r\nSubject: Returned mail\r\n"[..], None),
        ("text", &b"Returned"[..], None),
        ("attachment1", &status[..], Some(("details.txt", "message/delivery-status"))),
        ("attachment2", &original[..], Some(("headers.txt", "text/rfc822-headers"))),
    ];
    match events_of(&post(&multipart_type(), &multipart(&fields))).as_slice() {
        [Event::Delivery(d)] => {
            assert_eq!(d.provider_id, "sg-orig@example.com");
            assert_eq!(d.reason.as_deref(), Some("status 5.0.0"));
        }
        other => panic!("{other:?}"),
    }
}

// ---- Forms --------------------------------------------------------------------------------

#[test]
fn multipart_round_trips() {
    let fields = vec![
        FormField { name: "a".into(), value: b"one\r\ntwo".to_vec(), file_name: None, content_type: None },
        FormField {
            name: "file".into(),
            value: vec![0, 255, 13, 10, 45, 45],
            file_name: Some("x \"y\".bin".into()),
            content_type: Some("application/octet-stream".into()),
        },
    ];
    let (boundary, body) = form::encode_multipart(&fields);
    let parsed = form::parse_form(&format!("multipart/form-data; boundary={boundary}"), &body).unwrap();
    assert_eq!(parsed.fields[0], fields[0]);
    assert_eq!(parsed.fields[1].value, fields[1].value);
    assert_eq!(parsed.fields[1].file_name.as_deref(), Some("x %22y%22.bin"));
    assert_eq!(form::encode_multipart(&fields), (boundary, body), "deterministic");
    let f = Form { fields };
    assert_eq!(f.text("a").as_deref(), Some("one\r\ntwo"));
    assert_eq!(f.files().count(), 1);
}

// ---- Outbound -----------------------------------------------------------------------------

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// [`deliver`] for the HTTP APIs: any SMTP call fails the test.
fn http_deliver(
    message: &OutboundMessage,
    config: Result<SendConfig, String>,
    transport: impl FnMut(&Request) -> Result<Response, HttpError>,
) -> DeliveryResult {
    let no_smtp = |_: &seam_sdk::smtp::Relay, _: &seam_sdk::smtp::Envelope, _: &[u8]| -> Result<_, _> {
        panic!("no SMTP call expected")
    };
    deliver(message, config, transport, no_smtp, 0)
}

fn sendgrid_config() -> SendConfig {
    SendConfig::from_lookup(
        lookup(&[
            ("send-api", "sendgrid"),
            ("from", "Acme Support <support@acme.example>"),
            ("api-base", "http://127.0.0.1:9/"),
        ]),
        lookup(&[("api-key", "SG.key-123")]),
    )
    .unwrap()
}

fn mailgun_config() -> SendConfig {
    SendConfig::from_lookup(
        lookup(&[
            ("send-api", "mailgun"),
            ("from", "support@acme.example"),
            ("mailgun-domain", "mg.acme.example"),
        ]),
        lookup(&[("api-key", "key-mg-456")]),
    )
    .unwrap()
}

fn outbound(text: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        id: "msg-1".to_owned(),
        to: Identity { kind: "email".to_owned(), value: "anna@example.com".to_owned() },
        text: text.map(str::to_owned),
        attachments: Vec::new(),
        template: None,
        reply_to: None,
        subject: Some("Your order".to_owned()),
        extras: None,
    }
}

fn file_attachment(url: &str) -> Attachment {
    Attachment {
        kind: AttachmentKind::Document,
        url: Some(url.to_owned()),
        provider_id: None,
        mime_type: None,
        file_name: None,
        size: None,
        caption: None,
        location: None,
        extras: None,
    }
}

/// Asserts two delivery results are the same (the WIT type has no `PartialEq`).
#[track_caller]
fn same(actual: DeliveryResult, expected: DeliveryResult) {
    assert_eq!(format!("{actual:?}"), format!("{expected:?}"));
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status,
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn send_config_is_read_and_checked() {
    let c = sendgrid_config();
    assert_eq!(c.api_base, "http://127.0.0.1:9");
    assert_eq!(c.from, Mailbox { name: Some("Acme Support".into()), address: "support@acme.example".into() });
    assert_eq!(c.default_subject, DEFAULT_SUBJECT);
    assert_eq!(c.send_url(), "http://127.0.0.1:9/v3/mail/send");
    let m = mailgun_config();
    assert_eq!(m.send_url(), "https://api.mailgun.net/v3/mg.acme.example/messages");
    assert!(!format!("{m:?}").contains("key-mg-456"));
    let g = SendConfig::from_lookup(
        lookup(&[("send-api", "sendgrid"), ("from", "a@b.c")]),
        lookup(&[("api-key", "k")]),
    );
    assert_eq!(g.unwrap().api_base, DEFAULT_SENDGRID_BASE);

    let err = |get: &[(&str, &str)], secret: &[(&str, &str)]| {
        SendConfig::from_lookup(lookup(get), lookup(secret)).unwrap_err()
    };
    assert!(err(&[], &[("api-key", "k")]).contains("`send-api` is not set"));
    assert!(err(&[("send-api", "fax")], &[("api-key", "k")]).contains("`send-api` is `fax`"));
    assert!(err(&[("send-api", "smtp"), ("from", "a@b.c")], &[]).contains("`smtp-host` is not set"));
    assert!(err(&[("send-api", "sendgrid"), ("from", "a@b.c")], &[]).contains("secret `api-key`"));
    assert!(err(&[("send-api", "sendgrid")], &[("api-key", "k")]).contains("`from` is not set"));
    assert!(
        err(&[("send-api", "sendgrid"), ("from", "Support")], &[("api-key", "k")])
            .contains("no valid email address")
    );
    assert!(
        err(&[("send-api", "mailgun"), ("from", "a@b.c")], &[("api-key", "k")])
            .contains("`mailgun-domain` is not set")
    );
    assert!(
        err(&[("send-api", "mailgun"), ("from", "a@b.c"), ("mailgun-domain", "a/b")], &[("api-key", "k")])
            .contains("not a domain")
    );
}

#[test]
fn sendgrid_request_is_built() {
    let mut message = outbound(Some("Hello Anna"));
    message.reply_to = Some("CAF123@mail.gmail.com".to_owned());
    let request = build_request(&message, &sendgrid_config(), &[]).unwrap();
    assert_eq!((request.method.as_str(), request.url.as_str()), ("POST", "http://127.0.0.1:9/v3/mail/send"));
    assert_eq!(header(&request, "authorization"), Some("Bearer SG.key-123"));
    assert_eq!(header(&request, "content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "personalizations": [{"to": [{"email": "anna@example.com"}]}],
            "from": {"email": "support@acme.example", "name": "Acme Support"},
            "subject": "Your order",
            "content": [{"type": "text/plain", "value": "Hello Anna"}],
            "headers": {"In-Reply-To": "<CAF123@mail.gmail.com>", "References": "<CAF123@mail.gmail.com>"},
            "custom_args": {"seam_message_id": "msg-1"},
        })
    );
    // Attachments are base64 content; without a text the files are named.
    let files =
        [OutgoingFile { file_name: "a.txt".into(), mime_type: "text/plain".into(), content: b"hi".to_vec() }];
    let body = sendgrid_body(&outbound(None), &sendgrid_config(), &files).unwrap();
    assert_eq!(
        body["attachments"],
        json!([{"content": "aGk=", "filename": "a.txt", "type": "text/plain", "disposition": "attachment"}])
    );
    assert_eq!(body["content"][0]["value"], "Attached: a.txt");
    assert!(body.get("headers").is_none());
}

#[test]
fn mailgun_request_is_built() {
    let mut message = outbound(Some("Hello"));
    message.reply_to = Some("<orig@example.com>".to_owned());
    message.subject = None;
    let request = build_request(&message, &mailgun_config(), &[]).unwrap();
    assert_eq!(request.url, "https://api.mailgun.net/v3/mg.acme.example/messages");
    assert_eq!(header(&request, "authorization"), Some("Basic YXBpOmtleS1tZy00NTY=")); // api:key-mg-456
    assert_eq!(header(&request, "content-type"), Some("application/x-www-form-urlencoded"));
    let fields: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    let expected: Vec<(String, String)> = [
        ("from", "support@acme.example"),
        ("to", "anna@example.com"),
        ("subject", DEFAULT_SUBJECT),
        ("text", "Hello"),
        ("h:In-Reply-To", "<orig@example.com>"),
        ("h:References", "<orig@example.com>"),
        ("v:seam_message_id", "msg-1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(fields, expected);

    // With files: multipart/form-data with `attachment` parts.
    let files =
        [OutgoingFile { file_name: "p.png".into(), mime_type: "image/png".into(), content: vec![1, 2, 3] }];
    let request = build_request(&outbound(Some("pic")), &mailgun_config(), &files).unwrap();
    let content_type = header(&request, "content-type").unwrap().to_owned();
    assert!(content_type.starts_with("multipart/form-data; boundary="));
    let form = form::parse_form(&content_type, &request.body).unwrap();
    assert_eq!(form.text("text").as_deref(), Some("pic"));
    let file = form.field("attachment").unwrap();
    assert_eq!(
        (file.file_name.as_deref(), file.content_type.as_deref(), file.value.as_slice()),
        (Some("p.png"), Some("image/png"), &[1u8, 2, 3][..])
    );
    // A display name is quoted.
    let named = Mailbox { name: Some("Acme \"Help\"".into()), address: "h@acme.example".into() };
    assert_eq!(format_mailbox(&named), "\"Acme \\\"Help\\\"\" <h@acme.example>");
}

#[test]
fn unsendable_messages_are_rejected_before_any_request() {
    let never = |_: &Request| -> Result<Response, HttpError> { panic!("no request expected") };
    let reject = |message: &OutboundMessage| match http_deliver(message, Ok(sendgrid_config()), never) {
        DeliveryResult::Rejected(reason) => reason,
        other => panic!("expected Rejected, got {other:?}"),
    };
    let mut m = outbound(Some("hi"));
    m.to = Identity { kind: "phone".into(), value: "+15550001111".into() };
    assert!(reject(&m).contains("`phone` identity"));
    m.to = Identity { kind: "email".into(), value: "a@b.c, evil@x.y".into() };
    assert!(reject(&m).contains("not an email address"));
    assert!(reject(&outbound(None)).contains("nothing to send"));
    let mut m = outbound(Some("hi"));
    m.template = Some(Template { name: "welcome".into(), language: "en".into(), parameters: vec![] });
    assert!(reject(&m).contains("does not send templates"));
    let mut m = outbound(Some("hi"));
    m.attachments = vec![Attachment { url: None, provider_id: Some("file-1".into()), ..file_attachment("") }];
    assert!(reject(&m).contains("has no url"));
    m.attachments = vec![Attachment { kind: AttachmentKind::Location, ..file_attachment("https://x/y") }];
    assert!(reject(&m).contains("location or contact"));
    same(
        http_deliver(&outbound(Some("hi")), Err("config key `from` is not set".into()), never),
        DeliveryResult::Rejected("config key `from` is not set".into()),
    );
}

#[test]
fn subjects_and_thread_headers_are_sanitized() {
    let mut m = outbound(Some("hi"));
    m.subject = Some("Hello\r\nBcc: evil@x.y".into());
    assert_eq!(subject(&m, &sendgrid_config()), "Hello Bcc: evil@x.y");
    m.subject = Some("  ".into());
    assert_eq!(subject(&m, &sendgrid_config()), DEFAULT_SUBJECT);
    assert_eq!(thread_header(Some("sha256-0123456789abcdef")), None, "a content hash is no Message-ID");
    assert_eq!(thread_header(Some("a b@c")), None);
    assert_eq!(thread_header(Some(" <x@y> ")).as_deref(), Some("<x@y>"));
    assert_eq!(thread_header(None), None);
}

#[test]
fn sendgrid_responses_are_classified() {
    let c = |status, retry_after, id, body: &str| {
        classify_response(SendApi::SendGrid, status, retry_after, id, body.as_bytes(), "msg-1")
    };
    same(
        c(202, None, Some("Wd2OWvshTXuvJLbXv5e0FQ"), ""),
        DeliveryResult::Accepted("Wd2OWvshTXuvJLbXv5e0FQ".into()),
    );
    same(c(202, None, None, ""), DeliveryResult::Accepted("msg-1".into()));
    same(
        c(429, Some("7"), None, r#"{"errors":[{"message":"too many requests"}]}"#),
        DeliveryResult::RetryLater(RetryHint {
            after_ms: Some(7000),
            reason: "SendGrid answered 429: too many requests".into(),
        }),
    );
    match c(503, None, None, "upstream down") {
        DeliveryResult::RetryLater(h) => {
            assert_eq!((h.after_ms, h.reason.as_str()), (None, "SendGrid answered 503: upstream down"))
        }
        other => panic!("{other:?}"),
    }
    let body = r#"{"errors":[{"message":"The from address does not match a verified Sender Identity.","field":"from","help":null},{"message":"Invalid type.","field":null}]}"#;
    same(
        c(403, None, None, body),
        DeliveryResult::Rejected(
            "SendGrid answered 403: The from address does not match a verified Sender Identity. (field `from`); Invalid type.".into()
        )
    );
    same(c(400, None, None, ""), DeliveryResult::Rejected("SendGrid answered 400: (empty body)".into()));
}

#[test]
fn mailgun_responses_are_classified() {
    let c = |status, retry_after, body: &str| {
        classify_response(SendApi::Mailgun, status, retry_after, None, body.as_bytes(), "msg-1")
    };
    same(
        c(
            200,
            None,
            r#"{"id":"<20111114174239.25659.5817@samples.mailgun.org>","message":"Queued. Thank you."}"#,
        ),
        DeliveryResult::Accepted("20111114174239.25659.5817@samples.mailgun.org".into()),
    );
    same(c(200, None, "not json"), DeliveryResult::Accepted("msg-1".into()));
    same(
        c(400, None, r#"{"message":"'to' parameter is not a valid address. please check documentation"}"#),
        DeliveryResult::Rejected(
            "Mailgun answered 400: 'to' parameter is not a valid address. please check documentation".into(),
        ),
    );
    same(c(401, None, "Forbidden"), DeliveryResult::Rejected("Mailgun answered 401: Forbidden".into()));
    assert!(matches!(
        c(429, Some("30"), "{}"),
        DeliveryResult::RetryLater(RetryHint { after_ms: Some(30000), .. })
    ));
    assert!(matches!(c(502, None, ""), DeliveryResult::RetryLater(RetryHint { after_ms: None, .. })));
}

#[test]
fn deliver_fetches_attachments_then_sends() {
    let mut message = outbound(Some("Invoice attached"));
    message.attachments = vec![
        Attachment {
            file_name: Some("invoice.pdf".into()),
            ..file_attachment("https://files.acme.example/i/42?sig=x")
        },
        file_attachment("https://files.acme.example/img/photo.jpg"),
    ];
    let mut seen = Vec::new();
    let result = http_deliver(&message, Ok(sendgrid_config()), |request: &Request| {
        seen.push((request.method.clone(), request.url.clone()));
        Ok(if request.method == "GET" {
            if request.url.contains("photo") {
                response(200, &[("content-type", "image/jpeg; charset=binary")], "JPEG")
            } else {
                response(200, &[], "PDF")
            }
        } else {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(
                body["attachments"],
                json!([
                    {"content": "UERG", "filename": "invoice.pdf", "type": "application/octet-stream", "disposition": "attachment"},
                    {"content": "SlBFRw==", "filename": "photo.jpg", "type": "image/jpeg", "disposition": "attachment"},
                ])
            );
            response(202, &[("x-message-id", "abc123")], "")
        })
    });
    same(result, DeliveryResult::Accepted("abc123".into()));
    assert_eq!(
        seen,
        vec![
            ("GET".into(), "https://files.acme.example/i/42?sig=x".into()),
            ("GET".into(), "https://files.acme.example/img/photo.jpg".into()),
            ("POST".into(), "http://127.0.0.1:9/v3/mail/send".into()),
        ]
    );
}

#[test]
fn deliver_classifies_failures() {
    let mut message = outbound(Some("x"));
    message.attachments = vec![file_attachment("https://files.example/a.pdf")];
    let fetch = |status: u16| {
        http_deliver(&message, Ok(sendgrid_config()), |r: &Request| {
            assert_eq!(r.method, "GET", "the send is not tried when a file is missing");
            Ok(response(status, &[("retry-after", "3")], ""))
        })
    };
    same(
        fetch(404),
        DeliveryResult::Rejected(
            "fetching attachment 0 from `https://files.example/a.pdf` answered 404".into(),
        ),
    );
    assert!(matches!(fetch(503), DeliveryResult::RetryLater(RetryHint { after_ms: Some(3000), .. })));
    let denied = http_deliver(&message, Ok(sendgrid_config()), |_: &Request| Err(HttpError::Denied));
    same(
        denied,
        DeliveryResult::Rejected(
            "the host of attachment 0 url `https://files.example/a.pdf` is not in capabilities.http".into(),
        ),
    );
    let big = http_deliver(&message, Ok(sendgrid_config()), |_: &Request| {
        Ok(Response { status: 200, headers: vec![], body: vec![0; MAX_ATTACHMENT_BYTES + 1] })
    });
    assert!(matches!(big, DeliveryResult::Rejected(r) if r.contains("over")));

    let plain = outbound(Some("x"));
    let down = http_deliver(&plain, Ok(sendgrid_config()), |_: &Request| {
        Err(HttpError::Transport("connection refused".into()))
    });
    assert!(
        matches!(down, DeliveryResult::RetryLater(RetryHint { reason, .. }) if reason.contains("connection refused"))
    );
    let denied = http_deliver(&plain, Ok(mailgun_config()), |_: &Request| Err(HttpError::Denied));
    same(
        denied,
        DeliveryResult::Rejected(
            "the host of api-base `https://api.mailgun.net` is not in capabilities.http".into(),
        ),
    );
    // The API key never reaches a reason, even when the provider echoes it.
    let echoed = http_deliver(&plain, Ok(sendgrid_config()), |_: &Request| {
        Ok(response(401, &[], r#"{"errors":[{"message":"bad key SG.key-123"}]}"#))
    });
    same(echoed, DeliveryResult::Rejected("SendGrid answered 401: bad key <api-key>".into()));
}

#[test]
fn describes_the_channel() {
    let info = channel_info();
    assert_eq!((info.kind.as_str(), info.identity_kind.as_str()), ("email", "email"));
    assert_eq!(
        info.features,
        ChannelFeatures::TEXT | ChannelFeatures::MEDIA | ChannelFeatures::DELIVERY_STATUS
    );
}

mod smtp;
