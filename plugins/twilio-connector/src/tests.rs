//! Unit tests of the connector's pure functions.

use super::*;
use std::collections::BTreeMap;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/twilio");
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/signatures/twilio_request_validator_vectors.json"
);

const TOKEN: &str = "test-auth-token";
const URL: &str = "https://seam.example.com/v1/channels/sms/webhook";

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// `kind:value`, for comparing identities.
fn who(identity: &Identity) -> String {
    format!("{}:{}", identity.kind, identity.value)
}

/// The variant name of a WIT enum (`Image` for `AttachmentKind::Image`).
fn variant(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    text.rsplit("::").next().unwrap_or_default().to_owned()
}

fn params(items: &[(&str, &str)]) -> Params {
    Params(pairs(items))
}

/// A POST of `body` to the channel (path `/`, `query`), signed as Twilio signs it for [`URL`].
fn signed_post(body: &[u8], query: &str) -> HttpRequest {
    let url = signed_url(URL, "/", query).unwrap();
    let signature = compute_signature(TOKEN, &url, &Params::from_form(body).0);
    HttpRequest {
        method: "POST".to_owned(),
        path: "/".to_owned(),
        query: query.to_owned(),
        headers: vec![
            ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
            ("x-twilio-signature".to_owned(), signature),
        ],
        body: body.to_vec(),
    }
}

fn form(items: &[(&str, &str)]) -> Vec<u8> {
    codec::form_encode(&pairs(items)).into_bytes()
}

fn outcome(items: &[(&str, &str)]) -> WebhookOutcome {
    handle(&signed_post(&form(items), ""), Some(TOKEN), Some(URL)).unwrap()
}

fn mapped(items: &[(&str, &str)]) -> (PayloadKind, Vec<Event>) {
    map_webhook(&params(items)).unwrap()
}

fn malformed(items: &[(&str, &str)]) -> String {
    match handle(&signed_post(&form(items), ""), Some(TOKEN), Some(URL)) {
        Err(WebhookError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn unauthorized<T: std::fmt::Debug>(result: Result<T, WebhookError>) -> String {
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

fn only_message(events: &[Event]) -> &InboundMessage {
    let found: Vec<&InboundMessage> =
        events.iter().filter_map(|e| if let Event::Message(m) = e { Some(m) } else { None }).collect();
    assert_eq!(found.len(), 1, "{events:?}");
    found[0]
}

fn only_call(events: &[Event]) -> &CallEvent {
    match events {
        [Event::Call(call)] => call,
        other => panic!("expected one call event, got {other:?}"),
    }
}

fn only_delivery(events: &[Event]) -> &DeliveryUpdate {
    match events {
        [Event::Delivery(d)] => d,
        other => panic!("expected one delivery event, got {other:?}"),
    }
}

fn consents(events: &[Event]) -> Vec<&ConsentChange> {
    events.iter().filter_map(|e| if let Event::Consent(c) = e { Some(c) } else { None }).collect()
}

fn is_twiml(response: &HttpResponse) -> bool {
    response.status == 200
        && response.body == EMPTY_TWIML.as_bytes()
        && response.headers.iter().any(|(k, v)| k == "content-type" && v == "text/xml")
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Every fixture as (file name, form body): `.form` files as they are, `.json` maps encoded
/// as a form body.
fn fixture_bodies() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap_or_else(|e| panic!("reading {FIXTURES}: {e}"))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let body = match path.extension().and_then(|e| e.to_str()) {
                Some("form") => bytes,
                Some("json") => {
                    let map: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                    let members = map.as_object().unwrap_or_else(|| panic!("{name}: not a JSON object"));
                    let fields: Vec<(String, String)> = members
                        .iter()
                        .map(|(k, v)| {
                            (k.clone(), v.as_str().unwrap_or_else(|| panic!("{name}: {k}")).to_owned())
                        })
                        .collect();
                    codec::form_encode(&fields).into_bytes()
                }
                other => panic!("{name}: unknown fixture format {other:?}"),
            };
            (name, body)
        })
        .collect()
}

fn fixture_events() -> Vec<Event> {
    fixture_bodies()
        .into_iter()
        .flat_map(|(name, body)| {
            handle(&signed_post(&body, ""), Some(TOKEN), Some(URL))
                .unwrap_or_else(|e| panic!("{name}: {e:?}"))
                .events
        })
        .collect()
}

#[test]
fn every_fixture_is_accepted_and_normalized() {
    let files = fixture_bodies();
    assert!(files.len() >= 2, "no fixtures in {FIXTURES}");
    let mut by_stem: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, body) in &files {
        let outcome = handle(&signed_post(body, ""), Some(TOKEN), Some(URL))
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!((200..300).contains(&outcome.response.status), "{name}");
        let fields = Params::from_form(body);
        let events = &outcome.events;
        assert!(!events.is_empty(), "{name}: no events");
        for event in events {
            match event {
                Event::Message(m) => {
                    assert!(!m.external_id.is_empty(), "{name}");
                    assert!(!m.sender.value.is_empty(), "{name}");
                    assert!(matches!(m.sender.kind.as_str(), PHONE | WHATSAPP), "{name}: {:?}", m.sender);
                    assert!(!m.sender.value.contains(':'), "{name}: prefix left in {:?}", m.sender);
                    let extras: Value = serde_json::from_str(m.extras.as_deref().unwrap()).unwrap();
                    assert!(extras.get("MessageSid").is_none() && extras.get("From").is_none(), "{name}");
                    assert!(extras.get("AccountSid").is_some(), "{name}: other fields are kept");
                }
                Event::Delivery(d) => {
                    assert!(d.provider_id.starts_with("SM") || d.provider_id.starts_with("MM"), "{name}");
                    assert!(d.recipient.as_ref().is_some_and(|r| !r.value.is_empty()), "{name}");
                }
                Event::IdentityHint(h) => {
                    assert_eq!(h.known.kind, WHATSAPP, "{name}");
                    assert_eq!(who(&h.also), format!("phone:+{}", h.known.value), "{name}");
                    assert_eq!(h.reason, "whatsapp-id");
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
        // What each file must give, derived from its own parameters.
        let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
        let status = fields.get("MessageStatus").filter(|s| *s != "received");
        if let Some(status) = status {
            assert_eq!(count(|e| matches!(e, Event::Delivery(_))), 1, "{name}");
            assert_eq!(events.len(), 1, "{name}");
            let d = only_delivery(events);
            assert_eq!(d.provider_id, fields.get("MessageSid").unwrap(), "{name}");
            assert_eq!(variant(&d.status).to_lowercase(), status, "{name}");
            assert!(outcome.response.body.is_empty(), "{name}: status callbacks get an empty 200");
        } else {
            let m = only_message(events);
            assert_eq!(m.external_id, fields.get("MessageSid").unwrap(), "{name}");
            let whatsapp = fields.get("From").unwrap().starts_with("whatsapp:");
            assert_eq!(count(|e| matches!(e, Event::IdentityHint(_))), usize::from(whatsapp), "{name}");
            assert!(matches!(events.first(), Some(Event::IdentityHint(_)) | Some(Event::Message(_))));
            let media: usize = fields.get("NumMedia").unwrap_or("0").parse().unwrap();
            let location = usize::from(fields.get("Latitude").is_some());
            assert_eq!(m.attachments.len(), media + location, "{name}");
            assert_eq!(m.text.as_deref(), fields.get("Body").filter(|b| !b.is_empty()), "{name}");
            assert!(is_twiml(&outcome.response), "{name}: messages get empty TwiML");
        }
        let stem = name.rsplit_once('.').map_or(name.as_str(), |(stem, _)| stem).to_owned();
        by_stem.entry(stem).or_default().push(format!("{events:?}"));
    }
    // A payload given both as a form and as a JSON map means the same.
    for (stem, outcomes) in by_stem {
        assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{stem}: formats disagree: {outcomes:#?}");
    }
}

#[test]
fn fixture_contents_found_by_content() {
    let events = fixture_events();
    let messages: Vec<&InboundMessage> =
        events.iter().filter_map(|e| if let Event::Message(m) = e { Some(m) } else { None }).collect();

    let located = messages
        .iter()
        .find(|m| m.attachments.iter().any(|a| matches!(a.kind, AttachmentKind::Location)))
        .expect("a location message");
    let place = &located.attachments[0];
    let point = place.location.as_ref().unwrap();
    assert!((point.latitude - 52.303_897_857_666_016).abs() < 1e-9);
    assert!((point.longitude - 4.750_025_749_206_543).abs() < 1e-9);
    let extras: Value = serde_json::from_str(place.extras.as_deref().unwrap()).unwrap();
    assert_eq!(extras["address"], "Evert van de Beekstraat 354, Schiphol, North Holland 1118 CZ");
    assert_eq!(extras["label"], "Microsoft");
    assert_eq!(who(&located.sender), "whatsapp:31612345678");
    assert_eq!(located.text, None, "an empty Body is no text");

    let pictured = messages
        .iter()
        .find(|m| m.attachments.iter().any(|a| matches!(a.kind, AttachmentKind::Image)))
        .expect("an image message");
    let image = &pictured.attachments[0];
    assert_eq!(image.mime_type.as_deref(), Some("image/jpeg"));
    assert!(image.url.as_deref().unwrap().starts_with("https://api.twilio.com/2010-04-01/Accounts/"));
    assert_eq!(image.provider_id.as_deref(), Some("ME5f0afa2336bd0f73ca553fb5a2e3150bc"));
    assert_eq!(pictured.external_id, "MM21151abfaadc1fb79b782f8460862a52");

    let texted = messages.iter().find(|m| m.text.as_deref() == Some("test")).expect("a text message");
    assert_eq!(texted.external_id, "SM892512e202b34d4109b10a3893fa9640");
    let extras: Value = serde_json::from_str(texted.extras.as_deref().unwrap()).unwrap();
    assert_eq!(extras["To"], "whatsapp:+14123456789");
    assert_eq!(extras["NumSegments"], "1");
    assert!(extras.get("Body").is_none() && extras.get("NumMedia").is_none());

    let deliveries: Vec<&DeliveryUpdate> =
        events.iter().filter_map(|e| if let Event::Delivery(d) = e { Some(d) } else { None }).collect();
    let delivered = deliveries
        .iter()
        .find(|d| matches!(d.status, DeliveryStatus::Delivered))
        .expect("a delivered status");
    assert_eq!(delivered.provider_id, "SMdf55df64a2ff4920bb0748193cfbb640");
    assert_eq!(delivered.recipient.as_ref().map(who).as_deref(), Some("whatsapp:31612345678"));
    assert_eq!(delivered.reason, None);
    let sent = deliveries.iter().find(|d| matches!(d.status, DeliveryStatus::Sent)).expect("a sent status");
    assert_eq!(sent.provider_id, "SM0cec4ed334e74bcbb64eb8b6684e9654");
}

#[test]
fn a_retried_fixture_gives_the_same_external_ids() {
    for (name, body) in fixture_bodies() {
        let first = handle(&signed_post(&body, ""), Some(TOKEN), Some(URL)).unwrap();
        let again = handle(&signed_post(&body, ""), Some(TOKEN), Some(URL)).unwrap();
        assert_eq!(format!("{:?}", first.events), format!("{:?}", again.events), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Signature vectors
// ---------------------------------------------------------------------------------------------

/// The request a signature vector describes.
struct VectorRequest {
    /// The URL without its query: what `webhook-url` would be.
    base: String,
    /// The query as received.
    query: String,
    body: Vec<u8>,
    content_type: &'static str,
    /// The POST parameters Twilio signed (none for a JSON body).
    signed: Vec<(String, String)>,
}

fn vector_request(vector: &Value) -> VectorRequest {
    let request_url = vector["request_url"].as_str().unwrap();
    let (base, query) = request_url.split_once('?').unwrap_or((request_url, ""));
    if let Some(body) = vector.get("body").and_then(Value::as_str) {
        return VectorRequest {
            base: base.to_owned(),
            query: query.to_owned(),
            body: body.as_bytes().to_vec(),
            content_type: "application/json",
            signed: Vec::new(),
        };
    }
    let signed: Vec<(String, String)> =
        if let Some(list) = vector.get("params_list").and_then(Value::as_array) {
            list.iter()
                .map(|pair| (pair[0].as_str().unwrap().to_owned(), pair[1].as_str().unwrap().to_owned()))
                .collect()
        } else {
            let map = vector["params"].as_object().unwrap();
            map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect()
        };
    let body = match vector.get("form_body").and_then(Value::as_str) {
        Some(body) => body.as_bytes().to_vec(),
        None => codec::form_encode(&signed).into_bytes(),
    };
    VectorRequest {
        base: base.to_owned(),
        query: query.to_owned(),
        body,
        content_type: "application/x-www-form-urlencoded",
        signed,
    }
}

fn request(query: &str, content_type: &str, signature: Option<&str>, body: Vec<u8>) -> HttpRequest {
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    if let Some(signature) = signature {
        headers.push(("x-twilio-signature".to_owned(), signature.to_owned()));
    }
    HttpRequest { method: "POST".to_owned(), path: "/".to_owned(), query: query.to_owned(), headers, body }
}

#[test]
fn every_signature_vector() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    let token = file["auth_token"].as_str().unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty());
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let expected = vector["expected_signature"].as_str().unwrap();
        let valid = vector["valid"].as_bool().unwrap();
        let VectorRequest { base, query, body, content_type, signed } = vector_request(vector);

        // The annotated URL reproduces the signature exactly.
        if let Some(signed_url) = vector.get("signed_url").and_then(Value::as_str) {
            assert_eq!(compute_signature(token, signed_url, &signed) == expected, valid, "{name}");
        }

        let verified = verify(&request(&query, content_type, Some(expected), body.clone()), token, &base);
        if valid {
            let params = verified.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            if content_type.ends_with("urlencoded") {
                assert_eq!(params.0, Params::from_form(&body).0, "{name}");
            }
            let outcome = handle(
                &request(&query, content_type, Some(expected), body.clone()),
                Some(token),
                Some(&base),
            )
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(outcome.response.status, 200, "{name}");
        } else {
            unauthorized(verified);
            continue;
        }

        // Tampered forms of every valid vector are refused.
        unauthorized(verify(&request(&query, content_type, Some(expected), body.clone()), "54321", &base));
        unauthorized(verify(&request(&query, content_type, None, body.clone()), token, &base));
        let mut bad_signature = expected.to_owned();
        bad_signature.replace_range(0..1, if expected.starts_with('A') { "B" } else { "A" });
        unauthorized(verify(
            &request(&query, content_type, Some(&bad_signature), body.clone()),
            token,
            &base,
        ));
        let mut tampered = body.clone();
        if content_type.ends_with("json") {
            tampered.insert(1, b' ');
        } else {
            tampered.extend_from_slice(b"&Digits=9");
        }
        let message =
            unauthorized(verify(&request(&query, content_type, Some(expected), tampered), token, &base));
        assert!(!message.contains(token), "{name}: the token is never echoed");
        let other_query = format!("{query}&x=1");
        unauthorized(verify(
            &request(&other_query, content_type, Some(expected), body.clone()),
            token,
            &base,
        ));
        let other_path = verify(
            &HttpRequest { path: "/other".to_owned(), ..request(&query, content_type, Some(expected), body) },
            token,
            &base,
        );
        unauthorized(other_path);
    }
}

#[test]
fn json_body_needs_its_hash() {
    let body = br#"{"MessageSid":"SMjson1","From":"+15551234567","Body":"hi","NumMedia":0}"#;
    let query = format!("{BODY_HASH_PARAM}={}", codec::sha256_hex(body));
    let url = signed_url(URL, "/", &query).unwrap();
    let signature = compute_signature(TOKEN, &url, &[]);
    let outcome =
        handle(&request(&query, "application/json", Some(&signature), body.to_vec()), Some(TOKEN), Some(URL))
            .unwrap();
    let m = only_message(&outcome.events);
    assert_eq!((m.external_id.as_str(), m.text.as_deref()), ("SMjson1", Some("hi")));
    assert_eq!(who(&m.sender), "phone:+15551234567");

    // Same URL and signature, other body: the hash catches it.
    let message = unauthorized(verify(
        &request(&query, "application/json", Some(&signature), br#"{"MessageSid":"SMevil"}"#.to_vec()),
        TOKEN,
        URL,
    ));
    assert!(message.contains("bodySHA256"), "{message}");

    // A JSON body without the hash parameter cannot be verified.
    let plain = compute_signature(TOKEN, URL, &[]);
    let message =
        unauthorized(verify(&request("", "application/json", Some(&plain), body.to_vec()), TOKEN, URL));
    assert!(message.contains("bodySHA256"), "{message}");

    // Signed but not JSON: malformed.
    let junk = b"{not json";
    let query = format!("{BODY_HASH_PARAM}={}", codec::sha256_hex(junk));
    let signature = compute_signature(TOKEN, &signed_url(URL, "/", &query).unwrap(), &[]);
    match handle(
        &request(&query, "application/json", Some(&signature), junk.to_vec()),
        Some(TOKEN),
        Some(URL),
    ) {
        Err(WebhookError::Malformed(m)) => assert!(m.contains("not valid JSON"), "{m}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn get_webhooks_are_signed_over_the_query() {
    let query = "MessageSid=SMget1&From=%2B15551234567&Body=Hello+there";
    let url = signed_url(URL, "/", query).unwrap();
    let signature = compute_signature(TOKEN, &url, &[]);
    let get = HttpRequest {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        query: query.to_owned(),
        headers: vec![("x-twilio-signature".to_owned(), signature)],
        body: Vec::new(),
    };
    let outcome = handle(&get, Some(TOKEN), Some(URL)).unwrap();
    assert_eq!(only_message(&outcome.events).text.as_deref(), Some("Hello there"));
    let tampered = HttpRequest { query: query.replace("Hello", "Bye"), ..get };
    unauthorized(handle(&tampered, Some(TOKEN), Some(URL)));
}

#[test]
fn refusals_before_parsing() {
    let body = form(&[("MessageSid", "SM1"), ("From", "+15551234567"), ("Body", "hi")]);
    let good = signed_post(&body, "");
    assert!(handle(&good, Some(TOKEN), Some(URL)).is_ok());

    let message = misconfigured(handle(&good, None, Some(URL)));
    assert!(message.contains("`auth-token`"), "{message}");
    misconfigured(handle(&good, Some(""), Some(URL)));
    let message = misconfigured(handle(&good, Some(TOKEN), None));
    assert!(message.contains("`webhook-url`"), "{message}");
    misconfigured(handle(&good, Some(TOKEN), Some("  ")));
    let message = misconfigured(handle(&good, Some(TOKEN), Some("https://seam.example.com/hook?x=1")));
    assert!(message.contains("query"), "{message}");
    let message = misconfigured(handle(&good, Some(TOKEN), Some("seam.example.com/hook")));
    assert!(message.contains("absolute"), "{message}");
    misconfigured(handle(&good, Some(TOKEN), Some("https:///hook")));

    let mut unsigned = good.clone();
    unsigned.headers.retain(|(k, _)| k != "x-twilio-signature");
    assert_eq!(
        unauthorized(handle(&unsigned, Some(TOKEN), Some(URL))),
        "missing `X-Twilio-Signature` header"
    );

    let mut tampered = good.clone();
    tampered.body = form(&[("MessageSid", "SM1"), ("From", "+15551234567"), ("Body", "hi!")]);
    let message = unauthorized(handle(&tampered, Some(TOKEN), Some(URL)));
    assert!(message.contains(URL) && message.contains("webhook-url"), "{message}");

    unauthorized(handle(&good, Some("wrong-token"), Some(URL)));
    unauthorized(handle(&good, Some(TOKEN), Some("https://other.example.com/v1/channels/sms/webhook")));

    let put = HttpRequest { method: "PUT".to_owned(), ..good };
    match handle(&put, Some(TOKEN), Some(URL)) {
        Err(WebhookError::Malformed(m)) => assert_eq!(m, "Twilio webhooks are POST or GET, got PUT"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn the_signed_url_is_rebuilt_from_config_path_and_query() {
    assert_eq!(signed_url(URL, "/", "").unwrap(), URL);
    assert_eq!(signed_url(URL, "", "").unwrap(), URL);
    assert_eq!(signed_url(URL, "/", "a=1&b=%2B2").unwrap(), format!("{URL}?a=1&b=%2B2"), "query kept raw");
    assert_eq!(signed_url(URL, "/status", "").unwrap(), format!("{URL}/status"));
    assert_eq!(signed_url(&format!("{URL}/"), "/status", "").unwrap(), format!("{URL}/status"));
    assert_eq!(signed_url(&format!("{URL}/"), "/", "").unwrap(), format!("{URL}/"), "the URL is kept as set");
    // A host that passes the whole route: only what follows `/webhook` counts.
    assert_eq!(signed_url(URL, "/channels/sms/webhook", "x=1").unwrap(), format!("{URL}?x=1"));
    assert_eq!(signed_url(URL, "/v1/channels/sms/webhook", "").unwrap(), URL);
    assert_eq!(signed_url(URL, "/channels/sms/webhook/voice", "").unwrap(), format!("{URL}/voice"));
    // Behind a proxy the public path may be anything.
    assert_eq!(
        signed_url("https://x.example/twilio", "/channels/sms/webhook", "").unwrap(),
        "https://x.example/twilio"
    );
    assert_eq!(extra_path("/channels/sms/webhooks"), "/channels/sms/webhooks", "not the route");
    assert_eq!(extra_path("/v1x/channels/a/webhook"), "/v1x/channels/a/webhook");
    assert_eq!(extra_path("/channels/a/webhook/"), "");
}

#[test]
fn port_variants() {
    assert_eq!(
        url_variants("https://a.example/p?q=1"),
        vec!["https://a.example/p?q=1", "https://a.example:443/p?q=1"]
    );
    assert_eq!(url_variants("http://a.example"), vec!["http://a.example", "http://a.example:80"]);
    assert_eq!(
        url_variants("https://a.example:8443/p"),
        vec!["https://a.example:8443/p", "https://a.example/p"]
    );
    assert_eq!(
        url_variants("https://user:pw@[::1]:8443/p"),
        vec!["https://user:pw@[::1]:8443/p", "https://user:pw@[::1]/p"]
    );
    assert_eq!(url_variants("https://[::1]/p"), vec!["https://[::1]/p", "https://[::1]:443/p"]);
    assert_eq!(url_variants("no-scheme"), vec!["no-scheme"]);
    // A request arriving through a proxy that added the port still verifies.
    let body = form(&[("MessageSid", "SM1"), ("From", "+15551234567")]);
    let signature =
        compute_signature(TOKEN, "https://seam.example.com:443/hook", &Params::from_form(&body).0);
    let request = request("", "application/x-www-form-urlencoded", Some(&signature), body);
    assert!(verify(&request, TOKEN, "https://seam.example.com/hook").is_ok());
    assert!(verify(&request, TOKEN, "https://seam.example.com:443/hook").is_ok());
    unauthorized(verify(&request, TOKEN, "http://seam.example.com/hook"));
}

#[test]
fn parameters_are_signed_sorted_by_name_then_value() {
    let payload = signature_payload("U", &pairs(&[("b", "2"), ("a", "9"), ("b", "1"), ("B", "0")]));
    assert_eq!(payload, b"UB0a9b1b2");
}

// ---------------------------------------------------------------------------------------------
// Inbound messages
// ---------------------------------------------------------------------------------------------

#[test]
fn sms_with_media_from_a_phone() {
    let (kind, events) = mapped(&[
        ("MessageSid", "MM1"),
        ("AccountSid", "AC1"),
        ("From", "+15551234567"),
        ("To", "+15550001111"),
        ("Body", "  look  "),
        ("NumMedia", "3"),
        ("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"),
        ("MediaContentType0", "image/png"),
        ("MediaUrl1", "https://example.com/clip"),
        ("MediaContentType1", "video/mp4"),
        ("MediaUrl2", "https://example.com/card"),
        ("MediaContentType2", "text/x-vcard; charset=utf-8"),
        ("FromCity", "SAN FRANCISCO"),
    ]);
    assert_eq!(kind, PayloadKind::Message);
    assert_eq!(events.len(), 1, "a phone sender needs no hint: {events:?}");
    let m = only_message(&events);
    assert_eq!(who(&m.sender), "phone:+15551234567");
    assert_eq!(m.text.as_deref(), Some("  look  "), "text as sent");
    let kinds: Vec<String> = m.attachments.iter().map(|a| variant(&a.kind)).collect();
    assert_eq!(kinds, ["Image", "Video", "Contact"]);
    assert_eq!(m.attachments[0].provider_id.as_deref(), Some("ME1"));
    assert_eq!(m.attachments[1].provider_id, None);
    let extras: Value = serde_json::from_str(m.extras.as_deref().unwrap()).unwrap();
    assert_eq!(
        extras,
        json_object(&[("AccountSid", "AC1"), ("To", "+15550001111"), ("FromCity", "SAN FRANCISCO")])
    );
}

fn json_object(items: &[(&str, &str)]) -> Value {
    Value::Object(items.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect())
}

#[test]
fn whatsapp_sender_gets_a_hint_first() {
    let (_, events) = mapped(&[
        ("MessageSid", "SM1"),
        ("From", "whatsapp:+31612345678"),
        ("Body", "hoi"),
        ("ProfileName", "Anna"),
        ("OriginalRepliedMessageSid", "SM0"),
    ]);
    let [Event::IdentityHint(hint), Event::Message(m)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(who(&hint.known), "whatsapp:31612345678");
    assert_eq!(who(&hint.also), "phone:+31612345678");
    assert_eq!(hint.reason, WHATSAPP_HINT_REASON);
    assert_eq!(who(&m.sender), who(&hint.known));
    assert_eq!(m.sender_name.as_deref(), Some("Anna"));
    assert_eq!(m.reply_to.as_deref(), Some("SM0"));
    assert_eq!(m.extras, None, "nothing else was sent");
}

#[test]
fn addresses() {
    let id = |a: &str| {
        let i = address_identity(a);
        (i.kind, i.value)
    };
    assert_eq!(id(" +15551234567 "), ("phone".into(), "+15551234567".into()));
    assert_eq!(id("WhatsApp:+44 7700"), ("whatsapp".into(), "44 7700".into()));
    assert_eq!(id("tel:+15551234567"), ("phone".into(), "+15551234567".into()));
    assert_eq!(id("client:alice"), ("client".into(), "alice".into()));
    assert_eq!(id("sip:bob@example.com"), ("sip".into(), "bob@example.com".into()));
    assert_eq!(id("1 (555): x"), ("phone".into(), "1 (555): x".into()), "not a prefix");
    assert!(whatsapp_hint(&address_identity("whatsapp:+44 7700")).is_none(), "not only digits");
    assert!(whatsapp_hint(&address_identity("+15551234567")).is_none());
}

#[test]
fn opt_out_and_opt_in_keywords() {
    for body in ["STOP", " stop ", "StopAll", "unsubscribe", "CANCEL", "end", "Quit\n"] {
        let (_, events) = mapped(&[("MessageSid", "SM1"), ("From", "+15551234567"), ("Body", body)]);
        let found = consents(&events);
        assert_eq!(found.len(), 1, "{body:?}");
        assert!(!found[0].granted, "{body:?}");
        assert_eq!(found[0].reason, body.trim().to_uppercase());
        assert_eq!(found[0].at, None);
        assert_eq!(who(&found[0].customer), "phone:+15551234567");
        assert!(matches!(events.last(), Some(Event::Consent(_))), "after the message");
        assert_eq!(only_message(&events).text.as_deref(), Some(body), "the message is kept too");
    }
    for body in ["START", "yes", "Unstop"] {
        let (_, events) = mapped(&[("MessageSid", "SM1"), ("From", "whatsapp:+31612345678"), ("Body", body)]);
        let found = consents(&events);
        assert_eq!(found.len(), 1, "{body:?}");
        assert!(found[0].granted);
        assert_eq!(who(&found[0].customer), "whatsapp:31612345678");
        assert_eq!(events.len(), 3, "hint, message, consent");
    }
    for body in ["HELP", "stop please", "STOP!", "", "yes?"] {
        let (_, events) = mapped(&[("MessageSid", "SM1"), ("From", "+15551234567"), ("Body", body)]);
        assert!(consents(&events).is_empty(), "{body:?}");
    }
    // Twilio's Advanced Opt-Out decides when it says.
    let (_, events) =
        mapped(&[("MessageSid", "SM1"), ("From", "+1555"), ("Body", "Arrêt"), ("OptOutType", "STOP")]);
    assert_eq!((consents(&events)[0].granted, consents(&events)[0].reason.as_str()), (false, "ARRÊT"));
    let (_, events) =
        mapped(&[("MessageSid", "SM1"), ("From", "+1555"), ("Body", "go"), ("OptOutType", "START")]);
    assert!(consents(&events)[0].granted);
    let (_, events) =
        mapped(&[("MessageSid", "SM1"), ("From", "+1555"), ("Body", "STOP"), ("OptOutType", "HELP")]);
    assert!(consents(&events).is_empty());
    assert_eq!(consent_keyword(None, Some("stop")), Some((false, "STOP".to_owned())));
}

#[test]
fn inbound_problems_are_malformed() {
    assert_eq!(malformed(&[("MessageSid", "SM1"), ("Body", "hi")]), "message SM1 has no `From`");
    assert_eq!(
        malformed(&[
            ("MessageSid", "SM1"),
            ("From", "+1555"),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://x/a")
        ]),
        "message SM1: `NumMedia` is 2 but `MediaUrl1` is missing"
    );
    assert_eq!(
        malformed(&[("MessageSid", "SM1"), ("From", "+1555"), ("NumMedia", "many")]),
        "message SM1: `NumMedia` is not a number: `many`"
    );
    assert_eq!(
        malformed(&[("MessageSid", "SM1"), ("From", "+1555"), ("Latitude", "52.1")]),
        "message SM1: `Longitude` is missing"
    );
    assert_eq!(
        malformed(&[("MessageSid", "SM1"), ("From", "+1555"), ("Latitude", "91"), ("Longitude", "4")]),
        "message SM1: `Latitude` is not a coordinate: `91`"
    );
    assert_eq!(
        malformed(&[("MessageSid", "SM1"), ("From", "whatsapp:")]),
        "message SM1: `From` has no address: `whatsapp:`"
    );
}

#[test]
fn media_kinds() {
    let kind = |ct: Option<&str>| variant(&media_kind(ct));
    assert_eq!(kind(Some("IMAGE/JPEG")), "Image");
    assert_eq!(kind(Some("audio/ogg; codecs=opus")), "Audio");
    assert_eq!(kind(Some("video/3gpp")), "Video");
    assert_eq!(kind(Some("text/vcard")), "Contact");
    assert_eq!(kind(Some("application/pdf")), "Document");
    assert_eq!(kind(Some("text/plain")), "Document");
    assert_eq!(kind(None), "Other");
    // Media without a content type, and without NumMedia.
    let m = media_attachments(&params(&[("MediaUrl0", "https://x/a"), ("MediaUrl2", "https://x/skipped")]))
        .unwrap();
    assert_eq!(m.len(), 1, "stops at the first gap");
    assert!(matches!(m[0].kind, AttachmentKind::Other));
}

// ---------------------------------------------------------------------------------------------
// Status callbacks
// ---------------------------------------------------------------------------------------------

#[test]
fn message_statuses() {
    let status = |s: &str| {
        mapped(&[("MessageSid", "SM9"), ("MessageStatus", s), ("To", "+15551234567"), ("SmsStatus", s)])
    };
    for s in ["queued", "accepted", "sending", "scheduled", "receiving", "partially_delivered", "new-one"] {
        let (kind, events) = status(s);
        assert_eq!(kind, PayloadKind::MessageStatus, "{s}");
        assert!(events.is_empty(), "{s}: {events:?}");
    }
    for (s, expected) in
        [("sent", "Sent"), ("DELIVERED", "Delivered"), ("read", "Read"), ("undelivered", "Failed")]
    {
        let (_, events) = status(s);
        let d = only_delivery(&events);
        assert_eq!(variant(&d.status), expected);
        assert_eq!(d.provider_id, "SM9");
        assert_eq!(d.recipient.as_ref().map(who).as_deref(), Some("phone:+15551234567"));
        assert_eq!(d.at, None);
    }
    assert_eq!(only_delivery(&status("undelivered").1).reason.as_deref(), Some("undelivered"));
    assert_eq!(only_delivery(&status("sent").1).reason, None);

    let (_, events) = mapped(&[
        ("MessageSid", "SM9"),
        ("MessageStatus", "failed"),
        ("ErrorCode", "30008"),
        ("ErrorMessage", "Unknown error"),
        ("To", "whatsapp:+31612345678"),
    ]);
    let d = only_delivery(&events);
    assert_eq!(d.reason.as_deref(), Some("30008: Unknown error"));
    assert_eq!(d.recipient.as_ref().map(who).as_deref(), Some("whatsapp:31612345678"));
    let (_, events) =
        mapped(&[("MessageSid", "SM9"), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")]);
    let d = only_delivery(&events);
    assert_eq!(d.reason.as_deref(), Some("30003"));
    assert!(d.recipient.is_none());

    // Status callbacks are answered with an empty 200, also when they give no event.
    let response = outcome(&[("MessageSid", "SM9"), ("MessageStatus", "queued")]).response;
    assert_eq!((response.status, response.body.len()), (200, 0));
    // `received` is an inbound message.
    assert_eq!(
        mapped(&[("MessageSid", "SM9"), ("MessageStatus", "received"), ("From", "+1")]).0,
        PayloadKind::Message
    );
}

// ---------------------------------------------------------------------------------------------
// Voice
// ---------------------------------------------------------------------------------------------

#[test]
fn inbound_call_statuses() {
    let call = |status: &str| {
        mapped(&[
            ("CallSid", "CA1"),
            ("CallStatus", status),
            ("Direction", "inbound"),
            ("From", "+15551234567"),
            ("To", "+15550001111"),
        ])
    };
    for (status, expected) in [
        ("queued", "Ringing"),
        ("initiated", "Ringing"),
        ("ringing", "Ringing"),
        ("in-progress", "Answered"),
        ("completed", "Completed"),
        ("busy", "Busy"),
        ("no-answer", "NoAnswer"),
        ("failed", "Failed"),
        ("canceled", "Canceled"),
    ] {
        let (kind, events) = call(status);
        assert_eq!(kind, PayloadKind::Call);
        let c = only_call(&events);
        assert_eq!(variant(&c.status), expected, "{status}");
        assert_eq!(c.call_id, "CA1");
        assert_eq!(who(&c.customer), "phone:+15551234567");
        assert_eq!(c.line.as_deref(), Some("+15550001111"));
        assert!(matches!(c.direction, CallDirection::Inbound));
    }
    assert!(call("unheard-of").1.is_empty());
    let response = outcome(&[
        ("CallSid", "CA1"),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", "+15551234567"),
        ("To", "+15550001111"),
    ])
    .response;
    assert!(is_twiml(&response), "voice webhooks get TwiML");
}

#[test]
fn outbound_call_completed_with_duration_and_time() {
    for direction in ["outbound-api", "outbound-dial"] {
        let (_, events) = mapped(&[
            ("CallSid", "CA2"),
            ("CallStatus", "completed"),
            ("Direction", direction),
            ("From", "+15550001111"),
            ("To", "+15551234567"),
            ("CallDuration", "42"),
            ("RecordingUrl", "https://api.twilio.com/rec/RE1"),
            ("Timestamp", "Mon, 16 Aug 2010 03:45:01 +0000"),
        ]);
        let c = only_call(&events);
        assert!(matches!(c.direction, CallDirection::Outbound));
        assert_eq!(who(&c.customer), "phone:+15551234567");
        assert_eq!(c.line.as_deref(), Some("+15550001111"));
        assert_eq!(c.duration_seconds, Some(42));
        assert_eq!(c.recording_url.as_deref(), Some("https://api.twilio.com/rec/RE1"));
        assert_eq!(c.at, Some(1_281_930_301_000));
    }
    assert_eq!(
        malformed(&[("CallSid", "CA2"), ("CallStatus", "completed"), ("From", "+1"), ("To", "+2")]),
        "call CA2: the call has no `Direction`"
    );
    assert_eq!(
        malformed(&[
            ("CallSid", "CA2"),
            ("CallStatus", "completed"),
            ("Direction", "sideways"),
            ("From", "+1")
        ]),
        "call CA2: unknown call `Direction`: `sideways`"
    );
    assert_eq!(
        malformed(&[
            ("CallSid", "CA2"),
            ("CallStatus", "ringing"),
            ("Direction", "outbound-api"),
            ("From", "+1")
        ]),
        "call CA2: outbound-api call has no `To`"
    );
    assert_eq!(
        malformed(&[
            ("CallSid", "CA2"),
            ("CallStatus", "completed"),
            ("Direction", "inbound"),
            ("From", "+1"),
            ("CallDuration", "-3")
        ]),
        "call CA2: `CallDuration` is not a number of seconds: `-3`"
    );
    // A call webhook without a status (e.g. a <Gather> result without one) is nothing.
    let (kind, events) = mapped(&[("CallSid", "CA2"), ("Digits", "1")]);
    assert_eq!((kind, events.len()), (PayloadKind::Other, 0));
}

#[test]
fn recordings_have_their_own_call_id() {
    let with_numbers = [
        ("CallSid", "CA3"),
        ("RecordingSid", "RE3"),
        ("RecordingUrl", "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE3"),
        ("RecordingStatus", "completed"),
        ("CallStatus", "completed"),
        ("Direction", "inbound"),
        ("From", "+15551234567"),
        ("To", "+15550001111"),
    ];
    let (kind, events) = mapped(&with_numbers);
    assert_eq!(kind, PayloadKind::Recording);
    let c = only_call(&events);
    assert_eq!(c.call_id, "CA3/RE3", "not the call's own `CA3#completed`");
    assert!(matches!(c.status, CallStatus::Completed));
    assert_eq!(
        c.recording_url.as_deref(),
        Some("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE3")
    );
    assert_eq!(c.customer.value, "+15551234567");

    // Twilio's recording status callback has no numbers: a channel event keeps it.
    let (_, events) = mapped(&[
        ("AccountSid", "AC1"),
        ("CallSid", "CA3"),
        ("RecordingSid", "RE3"),
        ("RecordingUrl", "https://api.twilio.com/rec/RE3"),
        ("RecordingStatus", "completed"),
        ("RecordingDuration", "12"),
    ]);
    let [Event::Channel(ev)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((ev.kind.as_str(), ev.external_id.as_str()), ("call-recording", "RE3"));
    assert!(ev.customer.is_none());
    let payload: Value = serde_json::from_str(&ev.payload).unwrap();
    assert_eq!(payload["CallSid"], "CA3");
    assert_eq!(payload["RecordingUrl"], "https://api.twilio.com/rec/RE3");

    for status in ["in-progress", "absent", "failed"] {
        let (_, events) = mapped(&[("CallSid", "CA3"), ("RecordingSid", "RE3"), ("RecordingStatus", status)]);
        assert!(events.is_empty(), "{status}");
    }
    assert_eq!(
        malformed(&[("CallSid", "CA3"), ("RecordingSid", "RE3"), ("RecordingStatus", "completed")]),
        "recording RE3 of call CA3 has no `RecordingUrl`"
    );
    assert!(is_twiml(&outcome(&with_numbers).response));
}

#[test]
fn unknown_signed_payloads_are_accepted_quietly() {
    let out = outcome(&[("AccountSid", "AC1"), ("Level", "ERROR"), ("Payload", "{}")]);
    assert!(out.events.is_empty());
    assert!(is_twiml(&out.response));
    let out = outcome(&[]);
    assert!(out.events.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Describe and send
// ---------------------------------------------------------------------------------------------

#[test]
fn describe() {
    let info = channel_info();
    assert_eq!((info.kind.as_str(), info.identity_kind.as_str()), ("sms", "phone"));
    assert_eq!(
        info.features,
        ChannelFeatures::TEXT | ChannelFeatures::MEDIA | ChannelFeatures::DELIVERY_STATUS
    );
    assert_eq!(info.max_text_length, Some(1600));
}

const SECRET: &str = "SECRET-TOKEN-9f8e7d";

fn send_config(extra: &[(&str, &str)]) -> SendConfig {
    let values: BTreeMap<String, String> = [
        ("account-sid", "AC0123456789abcdef"),
        ("from", "+15550001111"),
        ("status-callback", "https://seam.example.com/v1/channels/sms/webhook"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    SendConfig::from_lookup(|k| values.get(k).cloned(), |k| (k == "auth-token").then(|| SECRET.to_owned()))
}

fn outbound() -> OutboundMessage {
    OutboundMessage {
        id: "out-1".to_owned(),
        to: Identity { kind: PHONE.to_owned(), value: "+15551234567".to_owned() },
        text: Some("Hello & welcome".to_owned()),
        attachments: Vec::new(),
        template: None,
        reply_to: None,
        subject: None,
        extras: None,
    }
}

fn attachment(url: Option<&str>) -> Attachment {
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

fn sent_fields(message: &OutboundMessage, config: &SendConfig) -> Vec<(String, String)> {
    json::form_pairs(&build_request(message, config).unwrap().body)
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
fn send_builds_a_form_post_with_basic_auth() {
    let mut message = outbound();
    message.attachments = vec![
        attachment(Some("https://cdn.example.com/a.png")),
        attachment(None),
        attachment(Some(" https://x/b ")),
    ];
    let request = build_request(&message, &send_config(&[])).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    let header = |name: &str| request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let expected_auth = format!("Basic {}", codec::base64(format!("AC0123456789abcdef:{SECRET}").as_bytes()));
    assert_eq!(header("authorization"), Some(expected_auth));
    assert_eq!(header("content-type").as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        json::form_pairs(&request.body),
        pairs(&[
            ("To", "+15551234567"),
            ("From", "+15550001111"),
            ("Body", "Hello & welcome"),
            ("MediaUrl", "https://cdn.example.com/a.png"),
            ("MediaUrl", "https://x/b"),
            ("StatusCallback", "https://seam.example.com/v1/channels/sms/webhook"),
        ])
    );
    assert!(!format!("{:?}", send_config(&[])).contains(SECRET), "Debug hides the token");
}

#[test]
fn send_addresses_whatsapp_and_messaging_services() {
    let whatsapp = send_config(&[("from", "whatsapp:+14155238886")]);
    let fields = sent_fields(&outbound(), &whatsapp);
    assert_eq!(
        fields[0],
        ("To".to_owned(), "whatsapp:+15551234567".to_owned()),
        "phone via a WhatsApp sender"
    );
    assert_eq!(fields[1], ("From".to_owned(), "whatsapp:+14155238886".to_owned()));
    let mut to_whatsapp = outbound();
    to_whatsapp.to = Identity { kind: WHATSAPP.to_owned(), value: "31612345678".to_owned() };
    assert_eq!(sent_fields(&to_whatsapp, &whatsapp)[0].1, "whatsapp:+31612345678");
    to_whatsapp.to.value = "whatsapp:+31612345678".to_owned();
    assert_eq!(sent_fields(&to_whatsapp, &whatsapp)[0].1, "whatsapp:+31612345678");

    let message = rejected(deliver(&to_whatsapp, &send_config(&[]), |_| unreachable!()));
    assert!(message.contains("`from`") && message.contains("whatsapp"), "{message}");

    let service =
        SendConfig { from: None, messaging_service_sid: Some("MG1".to_owned()), ..send_config(&[]) };
    let fields = sent_fields(&outbound(), &service);
    assert!(fields.contains(&("MessagingServiceSid".to_owned(), "MG1".to_owned())));
    assert!(fields.iter().all(|(k, _)| k != "From"));
    assert_eq!(sent_fields(&to_whatsapp, &service)[0].1, "whatsapp:+31612345678");

    let api = send_config(&[("api-base", "http://127.0.0.1:9000/ "), ("status-callback", "")]);
    let request = build_request(&outbound(), &api).unwrap();
    assert_eq!(request.url, "http://127.0.0.1:9000/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    assert!(json::form_pairs(&request.body).iter().all(|(k, _)| k != "StatusCallback"), "empty is unset");
}

#[test]
fn send_refuses_what_it_cannot_send() {
    let never = |_: &Request| -> Result<Response, HttpError> { panic!("no request expected") };
    let config = send_config(&[]);
    let no_sid = SendConfig { account_sid: None, ..config.clone() };
    assert_eq!(rejected(deliver(&outbound(), &no_sid, never)), "config key `account-sid` is not set");
    let bad_sid = SendConfig { account_sid: Some("AC1/../x".to_owned()), ..config.clone() };
    assert!(rejected(deliver(&outbound(), &bad_sid, never)).contains("`account-sid`"));
    let no_token = SendConfig { auth_token: None, ..config.clone() };
    assert_eq!(rejected(deliver(&outbound(), &no_token, never)), "secret `auth-token` is not set");
    let no_sender = SendConfig { from: None, ..config.clone() };
    assert!(rejected(deliver(&outbound(), &no_sender, never)).contains("`messaging-service-sid`"));

    let mut empty = outbound();
    empty.text = Some("  ".to_owned());
    empty.attachments = vec![attachment(None)];
    assert!(rejected(deliver(&empty, &config, never)).contains("nothing to send"));
    let mut templated = outbound();
    templated.template =
        Some(Template { name: "hello".to_owned(), language: "en".to_owned(), parameters: Vec::new() });
    assert!(rejected(deliver(&templated, &config, never)).contains("templates"));
    let mut telegram = outbound();
    telegram.to = Identity { kind: "telegram".to_owned(), value: "42".to_owned() };
    assert!(rejected(deliver(&telegram, &config, never)).contains("`telegram`"));
    let mut nonsense = outbound();
    nonsense.to = Identity { kind: WHATSAPP.to_owned(), value: "not-a-number".to_owned() };
    let whatsapp = send_config(&[("from", "whatsapp:+14155238886")]);
    assert!(rejected(deliver(&nonsense, &whatsapp, never)).contains("not a phone number"));
}

#[test]
fn twilio_answers_are_classified() {
    let created = br#"{"sid": "SM1234", "status": "queued", "to": "+15551234567"}"#;
    assert!(
        matches!(classify_response(201, None, created), DeliveryResult::Accepted(ref id) if id == "SM1234")
    );
    assert!(
        rejected(classify_response(200, None, b"<html>proxy</html>")).contains("without a message `sid`")
    );

    let hint = retry(classify_response(
        429,
        Some("7"),
        br#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#,
    ));
    assert_eq!(hint.after_ms, Some(7_000));
    assert_eq!(hint.reason, "Twilio is rate limiting (429): 20429: Too Many Requests");
    assert_eq!(retry(classify_response(429, None, b"")).after_ms, None);
    let hint = retry(classify_response(400, None, br#"{"code": 20429, "message": "Too Many Requests"}"#));
    assert!(hint.reason.contains("20429"), "the code alone means a rate limit");

    let hint = retry(classify_response(503, Some("30"), b"Service Unavailable"));
    assert_eq!(
        (hint.after_ms, hint.reason.as_str()),
        (Some(30_000), "Twilio answered 503: Service Unavailable")
    );
    assert!(matches!(
        classify_response(500, None, br#"{"code": 20500, "message": "Internal"}"#),
        DeliveryResult::RetryLater(_)
    ));

    let reason = rejected(classify_response(
        400,
        None,
        br#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}"#,
    ));
    assert!(reason.starts_with("the customer opted out"), "{reason}");
    assert!(reason.contains("21610"), "{reason}");
    assert_eq!(
        rejected(classify_response(
            400,
            None,
            br#"{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
        )),
        "21211: The 'To' number +1555 is not a valid phone number."
    );
    assert_eq!(rejected(classify_response(404, None, b"  Not Found \n")), "Twilio answered 404: Not Found");
    assert!(rejected(classify_response(302, None, b"")).contains("unexpected status 302"));
}

#[test]
fn transport_errors_and_the_token_never_leaks() {
    assert!(rejected(classify_error(&HttpError::Denied)).contains("capabilities.http"));
    assert!(rejected(classify_error(&HttpError::InvalidRequest("bad header".into()))).contains("bad header"));
    assert!(
        retry(classify_error(&HttpError::Transport("ConnectionRefused".into())))
            .reason
            .contains("ConnectionRefused")
    );

    let config = send_config(&[]);
    let answers: Vec<Result<Response, HttpError>> = vec![
        Ok(Response {
            status: 401,
            headers: Vec::new(),
            body: br#"{"code": 20003, "message": "Authenticate"}"#.to_vec(),
        }),
        Ok(Response { status: 500, headers: Vec::new(), body: Vec::new() }),
        Ok(Response { status: 200, headers: Vec::new(), body: b"{}".to_vec() }),
        Err(HttpError::Transport("timeout".into())),
        Err(HttpError::Denied),
    ];
    for answer in answers {
        let mut seen = None;
        let result = deliver(&outbound(), &config, |request| {
            seen = Some(request.clone());
            answer
        });
        assert!(seen.is_some(), "a request was made");
        assert!(!format!("{result:?}").contains(SECRET), "{result:?}");
    }
    let result = deliver(&outbound(), &config, |_| {
        Ok(Response {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"sid":"SMok"}"#.to_vec(),
        })
    });
    assert!(matches!(result, DeliveryResult::Accepted(ref id) if id == "SMok"));
}
