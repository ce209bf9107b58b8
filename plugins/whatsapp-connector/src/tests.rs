//! Unit tests of the connector's pure functions.

use super::*;
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::serde_json::{Value, json};

const SECRET: &str = "app-s3cret";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/whatsapp");

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

/// The events of `body` through the whole webhook path (signature, parsing, mapping).
fn events_of(body: &Value) -> Vec<Event> {
    let bytes = body.to_string().into_bytes();
    let outcome = handle(&signed(&bytes), Some(SECRET), None).unwrap();
    assert_eq!(outcome.response.status, 200);
    outcome.events
}

fn malformed(body: &Value) -> String {
    let bytes = body.to_string().into_bytes();
    match handle(&signed(&bytes), Some(SECRET), None) {
        Err(WebhookError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn unauthorized(result: Result<impl std::fmt::Debug, WebhookError>) -> String {
    match result {
        Err(WebhookError::Unauthorized(m)) => m,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

fn misconfigured(result: Result<impl std::fmt::Debug, WebhookError>) -> String {
    match result {
        Err(WebhookError::Misconfigured(m)) => m,
        other => panic!("expected Misconfigured, got {other:?}"),
    }
}

/// A `messages` change holding `messages` from `contacts`.
fn messages_body(contacts: Value, messages: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "123"},
            "contacts": contacts,
            "messages": messages,
        }}]}]
    })
}

fn text_message(id: &str, from: &str, text: &str) -> Value {
    json!({"from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": text}})
}

fn extras(message: &InboundMessage) -> Value {
    serde_json::from_str(message.extras.as_deref().expect("extras")).expect("extras are JSON")
}

fn payload(event: &ChannelEvent) -> Value {
    serde_json::from_str(&event.payload).expect("payload is JSON")
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

/// `kind:value` of an optional identity (`-` for none).
fn who(identity: &Option<Identity>) -> String {
    identity.as_ref().map_or_else(|| "-".to_owned(), |i| format!("{}:{}", i.kind, i.value))
}

/// The user an event concerns, if any.
fn concerned(event: &Event) -> Option<&Identity> {
    match event {
        Event::Message(m) => Some(&m.sender),
        Event::MessageEdited(e) => Some(&e.sender),
        Event::Channel(c) => c.customer.as_ref(),
        Event::Consent(c) => Some(&c.customer),
        _ => None,
    }
}

/// Every fixture body, read at test time.
fn fixtures() -> Vec<(String, Value)> {
    let mut all: Vec<(String, Value)> = std::fs::read_dir(FIXTURES)
        .expect("fixture folder")
        .map(|entry| {
            let path = entry.expect("fixture entry").path();
            let text = std::fs::read_to_string(&path).expect("fixture text");
            let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), body)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Every fixture is accepted and normalized; checks that hold for every event.
#[test]
fn every_fixture_is_accepted_and_normalized() {
    let all = fixtures();
    assert!(all.len() >= 40, "only {} fixtures found", all.len());
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (name, body) in &all {
        let events = events_of(body);
        assert!(events.iter().any(|e| !matches!(e, Event::IdentityHint(_))), "{name}: no events");
        let mut hinted = std::collections::HashSet::new();
        for event in &events {
            let kind = match event {
                Event::Message(m) => {
                    assert!(!m.external_id.is_empty(), "{name}: empty message id");
                    assert_eq!(m.sender.kind, "whatsapp", "{name}");
                    assert!(!m.sender.value.is_empty(), "{name}: empty sender");
                    assert!(
                        m.sent_at.is_some_and(|t| t > 1_600_000_000_000),
                        "{name}: sent-at {:?}",
                        m.sent_at
                    );
                    let extras = extras(m);
                    assert!(extras["message"].is_object(), "{name}: the raw message is kept");
                    assert_eq!(extras["message"]["id"], m.external_id.as_str(), "{name}");
                    "message".to_owned()
                }
                Event::MessageEdited(e) => {
                    assert!(!e.external_id.is_empty() && !e.edit_id.is_empty(), "{name}");
                    assert_ne!(e.external_id, e.edit_id, "{name}");
                    "edit".to_owned()
                }
                Event::Delivery(d) => {
                    assert!(d.provider_id.starts_with("wamid."), "{name}: {}", d.provider_id);
                    assert!(d.at.is_some(), "{name}");
                    assert_eq!(d.recipient.as_ref().map(|r| r.kind.as_str()), Some("whatsapp"), "{name}");
                    assert_eq!(d.reason.is_some(), d.status == DeliveryStatus::Failed, "{name}");
                    "delivery".to_owned()
                }
                Event::IdentityHint(h) => {
                    assert_eq!(h.reason, "whatsapp-id");
                    assert_eq!(h.also.value, format!("+{}", h.known.value), "{name}");
                    assert!(hinted.insert(h.known.value.clone()), "{name}: two hints for {}", h.known.value);
                    "hint".to_owned()
                }
                Event::Consent(c) => {
                    assert_eq!(c.customer.kind, "whatsapp", "{name}");
                    "consent".to_owned()
                }
                Event::Channel(c) => {
                    assert!(!c.external_id.is_empty(), "{name}: empty channel event id");
                    assert!(payload(c).is_object(), "{name}");
                    assert!(c.at.is_some(), "{name}");
                    format!("channel:{}", c.kind)
                }
                Event::Call(_) => panic!("{name}: WhatsApp webhooks hold no calls"),
            };
            // Every user with a phone-number wa_id has had their hint by their first event.
            if let Some(user) = concerned(event)
                && user.value.bytes().all(|b| b.is_ascii_digit())
            {
                assert!(hinted.contains(&user.value), "{name}: {kind} before the hint of {}", user.value);
            }
            *counts.entry(kind).or_default() += 1;
        }
        // The same body gives the same events: a retried webhook is recognisable.
        assert_eq!(format!("{events:?}"), format!("{:?}", events_of(body)), "{name}");
    }
    let expected = [
        ("channel:chat-opened", 1),
        ("channel:message-deleted", 1),
        ("channel:message-echo", 1),
        ("channel:reaction", 3),
        ("channel:system", 3),
        ("channel:template-status", 1),
        ("channel:user-preferences", 1),
        ("consent", 1),
        ("delivery", 5),
        ("edit", 2),
        ("hint", 34),
        ("message", 24),
    ];
    let expected: std::collections::BTreeMap<String, usize> =
        expected.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect();
    assert_eq!(counts, expected);
}

/// Everything the fixtures map to, in one list, to find payloads by content.
fn all_fixture_events() -> Vec<Event> {
    fixtures().iter().flat_map(|(_, body)| events_of(body)).collect()
}

#[test]
fn fixture_texts_media_and_replies() {
    let events = all_fixture_events();
    let all = messages(&events);
    let by_text = |text: &str| {
        *all.iter().find(|m| m.text.as_deref() == Some(text)).unwrap_or_else(|| panic!("no message `{text}`"))
    };

    let plain = by_text("Body Text");
    assert_eq!(plain.external_id, "wamid.xyzxyz");
    assert_eq!((plain.sender.kind.as_str(), plain.sender.value.as_str()), ("whatsapp", "972987654321"));
    assert_eq!(plain.sender_name.as_deref(), Some("Test Name"));
    assert_eq!(plain.sent_at, Some(1_697_043_223_000));
    assert_eq!(plain.reply_to, None);
    let extras_plain = extras(plain);
    assert_eq!(extras_plain["metadata"]["phone_number_id"], "1122334455667");
    assert_eq!(extras_plain["contact"]["wa_id"], "972987654321");
    assert!(extras_plain.get("forwarded").is_none());

    assert_eq!(by_text("replied text").reply_to.as_deref(), Some("wamid.xyzxyz=="));
    assert_eq!(extras(by_text("forwarded text"))["forwarded"], true);
    assert_eq!(extras(by_text("text forwarded many times"))["frequently_forwarded"], true);
    assert_eq!(extras(by_text("BODY"))["referral"]["ctwa_clid"], "CTWA_CLID");

    let with = |kind: AttachmentKind| {
        all.iter()
            .flat_map(|m| m.attachments.iter().map(move |a| (*m, a)))
            .filter(|(_, a)| a.kind == kind)
            .collect::<Vec<_>>()
    };
    let (voice_message, voice) = with(AttachmentKind::Voice)[0];
    assert_eq!(voice_message.text, None);
    assert_eq!(voice.provider_id.as_deref(), Some("1234567890987654321"));
    assert_eq!(voice.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));
    assert_eq!(with(AttachmentKind::Audio).len(), 1, "voice: false is plain audio");

    let (_, document) = with(AttachmentKind::Document)[0];
    assert_eq!(document.file_name.as_deref(), Some("filename.pdf"));
    assert_eq!(document.caption.as_deref(), Some("caption"));
    let document_extras: Value = serde_json::from_str(document.extras.as_deref().unwrap()).unwrap();
    assert_eq!(document_extras["sha256"], "grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=");

    let stickers = with(AttachmentKind::Sticker);
    assert_eq!(stickers.len(), 2);
    let animated: Vec<bool> = stickers
        .iter()
        .map(|(_, a)| {
            serde_json::from_str::<Value>(a.extras.as_deref().unwrap()).unwrap()["animated"] == json!(true)
        })
        .collect();
    assert_eq!(animated.iter().filter(|a| **a).count(), 1);

    let (_, image) = with(AttachmentKind::Image)[0];
    assert_eq!(
        (image.provider_id.as_deref(), image.mime_type.as_deref()),
        (Some("65463453"), Some("image/jpeg"))
    );
    let (_, video) = with(AttachmentKind::Video)[0];
    assert_eq!(video.caption.as_deref(), Some("caption"));

    let places = with(AttachmentKind::Location);
    assert_eq!(places.len(), 2);
    let chosen =
        places.iter().map(|(_, a)| a).find(|a| a.extras.as_deref().unwrap().contains("Facebook HQ")).unwrap();
    let point = chosen.location.as_ref().unwrap();
    assert_eq!((point.latitude, point.longitude), (37.4611978, -122.2164385));
    let place: Value = serde_json::from_str(chosen.extras.as_deref().unwrap()).unwrap();
    assert_eq!(place["address"], "1 Hacker Way, Menlo Park, CA 94025");

    let cards = with(AttachmentKind::Contact);
    assert_eq!(cards.len(), 3, "one attachment per card");
    assert!(cards.iter().all(|(m, _)| m.external_id == cards[0].0.external_id), "all in one message");
    let first: Value = serde_json::from_str(cards[0].1.extras.as_deref().unwrap()).unwrap();
    assert_eq!(first["name"]["formatted_name"], "Chandler Bing");
}

#[test]
fn fixture_buttons_flows_orders_and_errors() {
    let events = all_fixture_events();
    let all = messages(&events);
    let replies: Vec<(&InboundMessage, Value)> =
        all.iter().map(|m| (*m, extras(m))).filter(|(_, x)| x.get("reply").is_some()).collect();
    assert_eq!(replies.len(), 6, "2 buttons, 2 list rows, 2 flows");

    let quick = replies.iter().find(|(_, x)| x["reply"]["type"] == "button").unwrap();
    assert_eq!(quick.0.text.as_deref(), Some("title"));
    assert_eq!(quick.1["reply"]["payload"], "callback_data");
    assert_eq!(quick.0.reply_to.as_deref(), Some("wamid.xyzxyz=="));

    let list = replies.iter().find(|(_, x)| x["reply"]["description"] == "description").unwrap();
    assert_eq!((list.0.text.as_deref(), &list.1["reply"]["id"]), (Some("title"), &json!("callback_data")));
    assert_eq!(list.1["reply"]["type"], "list_reply");

    let flows: Vec<_> = replies.iter().filter(|(_, x)| x["reply"]["type"] == "nfm_reply").collect();
    assert_eq!(flows.len(), 2);
    assert!(flows.iter().all(|(m, _)| m.text.as_deref() == Some("Sent")));
    let tokens: Vec<&Value> = flows.iter().map(|(_, x)| &x["reply"]["response"]["flow_token"]).collect();
    assert!(tokens.contains(&&json!("AQAAAAACS5FpgQ_cAAAAAD0QI3s.")) && tokens.contains(&&Value::Null));
    assert!(flows.iter().all(|(_, x)| x["reply"]["response"]["delivery_rating"] == "4"));

    let order = all.iter().map(|m| extras(m)).find(|x| x.get("order").is_some()).unwrap();
    assert_eq!(order["order"]["product_items"].as_array().unwrap().len(), 3);

    let failed: Vec<(&InboundMessage, Value)> =
        all.iter().map(|m| (*m, extras(m))).filter(|(_, x)| x.get("errors").is_some()).collect();
    assert_eq!(failed.len(), 2, "unsupported type and the interactive message with a change error");
    assert!(failed.iter().all(|(m, _)| m.text.is_none() && m.attachments.is_empty()));
    let codes: Vec<&Value> = failed.iter().map(|(_, x)| &x["errors"][0]["code"]).collect();
    assert!(codes.contains(&&json!(131051)) && codes.contains(&&json!(131000)), "{codes:?}");
}

#[test]
fn fixture_events_edits_and_statuses() {
    let events = all_fixture_events();

    let reactions = channel_events(&events, "reaction");
    let emoji: Vec<Value> = reactions.iter().map(|r| payload(r)["emoji"].clone()).collect();
    assert!(emoji.contains(&json!("😮")));
    assert_eq!(
        reactions.iter().filter(|r| payload(r)["removed"] == true).count(),
        2,
        "empty and missing emoji"
    );
    assert!(reactions.iter().all(|r| payload(r)["message_id"] == "wamid.yzxyzx="));
    assert!(reactions.iter().all(|r| who(&r.customer) == "whatsapp:972987654321"));

    let deleted = channel_events(&events, "message-deleted");
    assert_eq!(payload(deleted[0])["original_message_id"], "<ORIGINAL_WHATSAPP_MESSAGE_ID>");
    let opened = channel_events(&events, "chat-opened");
    assert_eq!((opened[0].external_id.as_str(), opened[0].at), ("wamid.xyzxyz", Some(1_697_043_223_000)));

    let system = channel_events(&events, "system");
    let of_type = |t: &str| system.iter().find(|s| payload(s)["type"] == t).unwrap();
    let number = of_type("user_changed_number");
    assert_eq!(payload(number)["wa_id"], "972912345678");
    assert_eq!(who(&number.customer), "whatsapp:972987654321");
    let user_id = of_type("user_changed_user_id");
    assert!(user_id.customer.is_none(), "no `from`");
    assert_eq!(payload(user_id)["previous_user_id"], "CO.1234567890");
    let identity = of_type("customer_identity_changed");
    assert_eq!(payload(identity)["identity"]["acknowledged"], true);
    assert_eq!(payload(identity)["sender_name"], "User A");

    let edits: Vec<&MessageEdit> =
        events.iter().filter_map(|e| if let Event::MessageEdited(m) = e { Some(m) } else { None }).collect();
    let texts: Vec<Option<&str>> = edits.iter().map(|e| e.text.as_deref()).collect();
    assert!(texts.contains(&Some("Text was edited")) && texts.contains(&Some("caption")), "{texts:?}");
    assert!(edits.iter().all(|e| e.external_id == "wamid.zzzzzz" && e.edit_id == "wamid.yyyyyy"));
    assert_eq!(edits[0].edited_at, Some(1_697_044_968_000));

    let deliveries: Vec<&DeliveryUpdate> =
        events.iter().filter_map(|e| if let Event::Delivery(d) = e { Some(d) } else { None }).collect();
    let failed = deliveries.iter().find(|d| d.status == DeliveryStatus::Failed).unwrap();
    assert_eq!(
        failed.reason.as_deref(),
        Some(
            "130472: User's number is part of an experiment (Failed to send message because this user's \
             phone number is part of an experiment)"
        )
    );
    assert_eq!(failed.at, Some(1_689_380_458_000));
    assert_eq!(who(&failed.recipient), "whatsapp:972987654321");
    for status in [DeliveryStatus::Sent, DeliveryStatus::Delivered, DeliveryStatus::Read] {
        assert!(deliveries.iter().any(|d| d.status == status), "{status:?}");
    }

    let template = channel_events(&events, "template-status");
    assert_eq!(template[0].external_id, "12345678:APPROVED:1698268000");
    assert_eq!(template[0].at, Some(1_698_268_000_000));
    assert_eq!(payload(template[0])["message_template_name"], "my_message_template");

    let consent: Vec<&ConsentChange> =
        events.iter().filter_map(|e| if let Event::Consent(c) = e { Some(c) } else { None }).collect();
    assert_eq!(who(&Some(consent[0].customer.clone())), "whatsapp:16505551234");
    assert!(consent[0].granted);
    assert_eq!(consent[0].reason, "marketing_messages:resume");
    assert_eq!(consent[0].at, Some(1_731_705_721_000));
    let other = channel_events(&events, "user-preferences");
    assert_eq!(who(&other[0].customer), "whatsapp:16505551234", "the change's only contact");
    assert_eq!(payload(other[0])["category"], "unknown");

    let echo = channel_events(&events, "message-echo");
    assert_eq!(payload(echo[0])["text"], "Test message");
    assert_eq!(who(&echo[0].customer), "whatsapp:<WHATSAPP_USER_PHONE_NUMBER>");
}

#[test]
fn one_hint_per_sender_before_their_first_event() {
    let body = messages_body(
        json!([{"profile": {"name": "Anna"}, "wa_id": "79161234567"}, {"profile": {"name": "Bob"}, "wa_id": "15551234567"}]),
        json!([
            text_message("wamid.1", "79161234567", "one"),
            text_message("wamid.2", "15551234567", "two"),
            text_message("wamid.3", "79161234567", "three"),
        ]),
    );
    let events = events_of(&body);
    let shape: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::IdentityHint(h) => format!("hint {} {}", h.known.value, h.also.value),
            Event::Message(m) => {
                format!("message {} {}", m.external_id, m.sender_name.as_deref().unwrap_or("?"))
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        shape,
        [
            "hint 79161234567 +79161234567",
            "message wamid.1 Anna",
            "hint 15551234567 +15551234567",
            "message wamid.2 Bob",
            "message wamid.3 Anna",
        ]
    );
    let Event::IdentityHint(hint) = &events[0] else { unreachable!() };
    assert_eq!((hint.known.kind.as_str(), hint.also.kind.as_str()), ("whatsapp", "phone"));

    // A sender id that is not a phone number gets no hint; a missing contact, no name.
    let events = events_of(&messages_body(json!([]), json!([text_message("wamid.9", "US.123", "hi")])));
    assert_eq!(events.len(), 1);
    assert_eq!(messages(&events)[0].sender_name, None);
}

#[test]
fn only_phone_like_wa_ids_are_hinted() {
    assert!(is_phone_wa_id("972987654321") && is_phone_wa_id("1234567") && is_phone_wa_id("123456789012345"));
    assert!(!is_phone_wa_id("123456") && !is_phone_wa_id("1234567890123456"));
    assert!(!is_phone_wa_id("<WHATSAPP_USER_PHONE_NUMBER>") && !is_phone_wa_id("US.13491208655302741918"));
    assert!(!is_phone_wa_id("+79161234567") && !is_phone_wa_id(""));
    let hint = identity_hint("79161234567");
    assert_eq!((hint.known.kind.as_str(), hint.known.value.as_str()), ("whatsapp", "79161234567"));
    assert_eq!((hint.also.kind.as_str(), hint.also.value.as_str()), ("phone", "+79161234567"));
    assert_eq!(hint.reason, "whatsapp-id");
}

#[test]
fn reactions_and_edits_from_small_payloads() {
    let reaction = |emoji: Value| {
        json!({"from": "79161234567", "id": "wamid.r", "timestamp": "1700000001", "type": "reaction",
               "reaction": {"message_id": "wamid.out", "emoji": emoji}})
    };
    let events = events_of(&messages_body(json!([]), json!([reaction(json!("👍")), reaction(json!(""))])));
    let found = channel_events(&events, "reaction");
    assert_eq!(found.len(), 2);
    assert_eq!(payload(found[0])["emoji"], "👍");
    assert_eq!(payload(found[0])["removed"], false);
    assert_eq!(
        (payload(found[1])["emoji"].clone(), payload(found[1])["removed"].clone()),
        (Value::Null, json!(true))
    );
    assert_eq!(found[0].at, Some(1_700_000_001_000));

    let edit = |id: &str, text: &str| {
        json!({"from": "79161234567", "id": id, "timestamp": "1700000002", "type": "edit",
               "edit": {"original_message_id": "wamid.orig", "message": {"type": "text", "text": {"body": text}}}})
    };
    let events =
        events_of(&messages_body(json!([]), json!([edit("wamid.e1", "v2"), edit("wamid.e2", "v3")])));
    let edits: Vec<&MessageEdit> =
        events.iter().filter_map(|e| if let Event::MessageEdited(m) = e { Some(m) } else { None }).collect();
    assert_eq!(edits.len(), 2);
    assert_ne!(edits[0].edit_id, edits[1].edit_id, "each edit has its own id");
    assert_eq!((edits[1].external_id.as_str(), edits[1].text.as_deref()), ("wamid.orig", Some("v3")));

    let broken = json!({"from": "1", "id": "wamid.e3", "type": "edit", "edit": {"message": {}}});
    let msg = malformed(&messages_body(json!([]), json!([broken])));
    assert_eq!(
        msg,
        "entry 0, change 0 (`messages`), message 0 (wamid.e3): `edit`: missing `original_message_id`"
    );
}

#[test]
fn statuses_and_preferences_from_small_payloads() {
    let body = |statuses: Value| {
        json!({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
               "value": {"statuses": statuses}}]}]})
    };
    let events = events_of(&body(json!([
        {"id": "wamid.a", "status": "deleted", "timestamp": "1700000000", "recipient_id": "1"},
        {"id": "wamid.b", "status": "failed", "timestamp": "1700000000", "recipient_id": "1",
         "errors": [{"code": 131026, "title": "Message undeliverable"}]},
    ])));
    assert_eq!(events.len(), 1, "unknown statuses are ignored");
    let Event::Delivery(failed) = &events[0] else { panic!("{events:?}") };
    assert_eq!(failed.reason.as_deref(), Some("131026: Message undeliverable"));
    assert_eq!(
        malformed(&body(json!([{"id": "wamid.c", "timestamp": "1"}]))),
        "entry 0, change 0 (`messages`), status 0: missing `status`"
    );

    let preferences = |value: &str| {
        json!({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "user_preferences",
               "value": {"user_preferences": [{"wa_id": "16505551234", "category": "marketing_messages",
                         "value": value, "timestamp": 1731705721}]}}]}]})
    };
    let events = events_of(&preferences("stop"));
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(&events[0], Event::IdentityHint(h) if h.known.value == "16505551234"));
    let Event::Consent(stop) = &events[1] else { panic!("{events:?}") };
    assert!(!stop.granted);
    assert_eq!(stop.reason, "marketing_messages:stop");
    assert!(
        matches!(&events_of(&preferences("later"))[1], Event::Channel(c) if c.kind == "user-preferences")
    );
}

#[test]
fn other_objects_and_fields_are_accepted_without_events() {
    assert!(events_of(&json!({"object": "page", "entry": [{"messaging": []}]})).is_empty());
    let account = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}},
        {"field": "messages", "value": {"messaging_product": "whatsapp", "errors": [{"code": 1}]}}
    ]}]});
    assert!(events_of(&account).is_empty());
    assert!(events_of(&json!({"object": "whatsapp_business_account", "entry": []})).is_empty());
}

#[test]
fn malformed_bodies_name_what_is_wrong() {
    let bytes = b"{\"object\":";
    match handle(&signed(bytes), Some(SECRET), None) {
        Err(WebhookError::Malformed(m)) => assert!(m.starts_with("body is not valid JSON"), "{m}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(malformed(&json!([1])), "body is an array, not a JSON object");
    assert_eq!(malformed(&json!({"entry": []})), "body has no `object`: not a Meta webhook");
    assert_eq!(malformed(&json!({"object": 5})), "body: `object` must be a string, not a number");
    assert_eq!(malformed(&json!({"object": "whatsapp_business_account"})), "body: missing `entry`");
    assert_eq!(
        malformed(&json!({"object": "whatsapp_business_account", "entry": [{"id": "1"}]})),
        "entry 0: missing `changes`"
    );
    assert_eq!(
        malformed(&json!({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {}}]}]})),
        "entry 0, change 0: missing `field`"
    );
    assert_eq!(
        malformed(
            &json!({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]})
        ),
        "entry 0, change 0 (`messages`): missing `value`"
    );
    let message = |m: Value| malformed(&messages_body(json!([]), json!([m])));
    assert_eq!(
        message(json!({"from": "1", "type": "text"})),
        "entry 0, change 0 (`messages`), message 0: missing `id`"
    );
    assert_eq!(
        message(json!({"id": "wamid.x", "type": "text"})),
        "entry 0, change 0 (`messages`), message 0 (wamid.x): missing `from`"
    );
    assert_eq!(
        message(json!({"id": "wamid.x", "from": "1", "timestamp": "yesterday"})),
        "entry 0, change 0 (`messages`), message 0 (wamid.x): `timestamp` is not Unix seconds: \"yesterday\""
    );
    assert_eq!(
        malformed(&messages_body(json!([]), json!({}))),
        "entry 0, change 0 (`messages`): `messages` must be an array, not an object"
    );
}

#[test]
fn unknown_message_types_keep_the_message() {
    let odd = json!({"from": "1555", "id": "wamid.u", "timestamp": "1700000000", "type": "hologram",
                     "hologram": {"x": 1}});
    let events = events_of(&messages_body(json!([]), json!([odd])));
    let message = messages(&events)[0];
    assert_eq!((message.text.as_ref(), message.attachments.len()), (None, 0));
    assert_eq!(extras(message)["message"]["hologram"]["x"], 1);
}

#[test]
fn seconds_parse_from_strings_and_numbers() {
    assert_eq!(parse_seconds(&json!("1697043223")), Ok(1_697_043_223_000));
    assert_eq!(parse_seconds(&json!(1_731_705_721)), Ok(1_731_705_721_000));
    assert!(parse_seconds(&json!("1.5")).is_err());
    assert!(parse_seconds(&json!(true)).is_err());
    assert!(parse_seconds(&json!(i64::MAX)).is_err(), "overflow is an error, not a wrap");
}

#[test]
fn signatures_are_checked_before_the_body() {
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let good = sign(body, SECRET);
    assert!(
        handle(&request("POST", "", &[("x-hub-signature-256", &good)], body), Some(SECRET), None).is_ok()
    );
    // Header names are matched in any case.
    assert!(
        handle(&request("POST", "", &[("X-Hub-Signature-256", &good)], body), Some(SECRET), None).is_ok()
    );

    let tampered = br#"{"object":"whatsapp_business_account","entry":[{}]}"#;
    let msg = unauthorized(handle(
        &request("POST", "", &[("x-hub-signature-256", &good)], tampered),
        Some(SECRET),
        None,
    ));
    assert!(msg.starts_with("`x-hub-signature-256` does not match the body"), "{msg}");
    let wrong = sign(body, "other-secret");
    assert!(unauthorized(check_signature(Some(SECRET), Some(&wrong), body)).contains("does not match"));
    assert_eq!(
        unauthorized(check_signature(Some(SECRET), None, body)),
        "missing `x-hub-signature-256` header"
    );
    assert!(unauthorized(check_signature(Some(SECRET), Some("sha256=zz"), body)).contains("does not match"));
    // Not JSON, and unsigned: refused as unauthorized, not parsed.
    unauthorized(handle(&request("POST", "", &[], b"not json"), Some(SECRET), None));

    // Without the app secret every POST is refused, even a correctly signed one.
    let msg = misconfigured(check_signature(None, Some(&good), body));
    assert!(msg.contains("`app-secret`"), "{msg}");
    assert!(misconfigured(check_signature(Some(""), Some(&good), body)).contains("`app-secret`"));
}

#[test]
fn subscription_check() {
    let get = |query: &str| request("GET", query, &[], b"");
    let ok = handle(
        &get("hub.mode=subscribe&hub.verify_token=tok%21&hub.challenge=1158201444"),
        None,
        Some("tok!"),
    )
    .unwrap();
    assert_eq!(ok.response.status, 200);
    assert_eq!(ok.response.body, b"1158201444");
    assert!(ok.response.headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/plain")));
    assert!(ok.events.is_empty());

    let wrong = handle(&get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"), None, Some("tok!"));
    assert_eq!(unauthorized(wrong), "`hub.verify_token` does not match the secret `verify-token`");
    let missing = handle(&get("hub.mode=subscribe&hub.challenge=1"), None, Some("tok!"));
    assert_eq!(unauthorized(missing), "subscription check without `hub.verify_token`");
    let unset = handle(&get("hub.mode=subscribe&hub.verify_token=tok&hub.challenge=1"), Some(SECRET), None);
    assert!(misconfigured(unset).contains("`verify-token`"));
    match handle(&get("hub.mode=unsubscribe&hub.verify_token=tok!&hub.challenge=1"), None, Some("tok!")) {
        Err(WebhookError::Malformed(m)) => assert_eq!(m, "`hub.mode` is `unsubscribe`, expected `subscribe`"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    match handle(&get("hub.mode=subscribe&hub.verify_token=tok!"), None, Some("tok!")) {
        Err(WebhookError::Malformed(m)) => assert!(m.contains("hub.challenge"), "{m}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    match handle(&request("PUT", "", &[], b""), Some(SECRET), Some("tok")) {
        Err(WebhookError::Malformed(m)) => assert!(m.ends_with("got PUT"), "{m}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn describe_reports_whatsapp() {
    let info = channel_info();
    assert_eq!((info.kind.as_str(), info.identity_kind.as_str()), ("whatsapp", "whatsapp"));
    assert_eq!(info.max_text_length, Some(4096));
    let all = ChannelFeatures::TEXT
        | ChannelFeatures::MEDIA
        | ChannelFeatures::TEMPLATES
        | ChannelFeatures::RICH
        | ChannelFeatures::DELIVERY_STATUS
        | ChannelFeatures::READ_STATUS;
    assert_eq!(info.features, all);
    assert!(!info.features.contains(ChannelFeatures::POLL));
}

// ---- Outbound ----

fn config() -> SendConfig {
    SendConfig {
        api_base: "https://graph.facebook.com/v21.0".to_owned(),
        phone_number_id: "1122334455667".to_owned(),
        access_token: "EAAG-token".to_owned(),
    }
}

fn outbound(text: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        id: "out-1".to_owned(),
        to: Identity { kind: "whatsapp".to_owned(), value: "79161234567".to_owned() },
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
    message_bodies(message).unwrap()
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

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status,
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.as_bytes().to_vec(),
    }
}

const SUCCESS: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"79161234567","wa_id":"79161234567"}],"messages":[{"id":"wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI"}]}"#;

fn graph_error_body(code: i64, message: &str, details: &str) -> String {
    json!({"error": {"message": message, "type": "OAuthException", "code": code,
                     "error_data": {"messaging_product": "whatsapp", "details": details},
                     "fbtrace_id": "AbCdEf"}})
    .to_string()
}

#[test]
fn text_request() {
    let mut message = outbound(Some("Hello"));
    message.reply_to = Some("wamid.in".to_owned());
    let requests = build_requests(&message, &config()).unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://graph.facebook.com/v21.0/1122334455667/messages");
    let header = |name: &str| request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("authorization"), Some("Bearer EAAG-token"));
    assert_eq!(header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79161234567",
               "type": "text", "text": {"body": "Hello", "preview_url": false},
               "context": {"message_id": "wamid.in"}})
    );
}

#[test]
fn recipients() {
    let to =
        |kind: &str, value: &str| recipient(&Identity { kind: kind.to_owned(), value: value.to_owned() });
    assert_eq!(to("phone", "+7 (916) 123-45-67"), Ok("79161234567".to_owned()));
    assert_eq!(to("whatsapp", "972987654321"), Ok("972987654321".to_owned()));
    assert_eq!(
        to("telegram", "12345").unwrap_err(),
        "cannot send to a `telegram` identity: the WhatsApp channel addresses `whatsapp` or `phone` identities"
    );
    assert!(to("phone", "+").unwrap_err().contains("has no digits"));
    let mut message = outbound(Some("x"));
    message.to = Identity { kind: "email".to_owned(), value: "a@b.c".to_owned() };
    let sent = deliver(&message, Ok(config()), |_| panic!("no request for a bad recipient"));
    assert!(rejected(sent.result).contains("`email` identity"));
}

#[test]
fn template_requests() {
    let mut message = outbound(Some("ignored: the template replaces the text"));
    message.template = Some(Template {
        name: "order_update".to_owned(),
        language: "en_US".to_owned(),
        parameters: vec!["Anna".to_owned(), "#42".to_owned()],
    });
    let sent = bodies(&message);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "template");
    assert_eq!(sent[0].get("text"), None);
    assert_eq!(
        sent[0]["template"],
        json!({"name": "order_update", "language": {"code": "en_US"}, "components": [{"type": "body",
               "parameters": [{"type": "text", "text": "Anna"}, {"type": "text", "text": "#42"}]}]})
    );
    message.template =
        Some(Template { name: "hello_world".to_owned(), language: "en_US".to_owned(), parameters: vec![] });
    assert_eq!(
        bodies(&message)[0]["template"],
        json!({"name": "hello_world", "language": {"code": "en_US"}})
    );
    message.template = Some(Template { name: "x".to_owned(), language: " ".to_owned(), parameters: vec![] });
    assert_eq!(message_bodies(&message).unwrap_err(), "template `x` has no language code");
}

#[test]
fn text_becomes_the_caption_of_a_single_picture() {
    let mut message = outbound(Some("Your invoice"));
    message.attachments.push(Attachment {
        file_name: Some("invoice.pdf".to_owned()),
        ..media(AttachmentKind::Document, "https://files.example.com/invoice.pdf")
    });
    let sent = bodies(&message);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "document");
    assert_eq!(
        sent[0]["document"],
        json!({"link": "https://files.example.com/invoice.pdf", "caption": "Your invoice", "filename": "invoice.pdf"})
    );

    // Audio takes no caption: the text goes first, on its own.
    message.attachments =
        vec![Attachment { provider_id: Some("987".to_owned()), ..attachment(AttachmentKind::Voice) }];
    message.reply_to = Some("wamid.in".to_owned());
    let sent = bodies(&message);
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[0]["type"].as_str(), sent[1]["type"].as_str()), (Some("text"), Some("audio")));
    assert_eq!(sent[1]["audio"], json!({"id": "987"}));
    assert_eq!(sent[0]["context"]["message_id"], "wamid.in", "the first part answers");
    assert_eq!(sent[1].get("context"), None);

    // Two pictures: text, then each picture with its own caption.
    message.reply_to = None;
    message.attachments = vec![
        Attachment { caption: Some("front".to_owned()), ..media(AttachmentKind::Image, "https://x/1.jpg") },
        media(AttachmentKind::Image, "https://x/2.jpg"),
    ];
    let sent = bodies(&message);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[1]["image"], json!({"link": "https://x/1.jpg", "caption": "front"}));
    assert_eq!(sent[2]["image"], json!({"link": "https://x/2.jpg"}));

    // A text too long for a caption is sent on its own.
    let long = "a".repeat(MAX_CAPTION_CHARS + 1);
    let mut message = outbound(Some(&long));
    message.attachments.push(media(AttachmentKind::Video, "https://x/v.mp4"));
    let sent = bodies(&message);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["video"], json!({"link": "https://x/v.mp4"}));
}

#[test]
fn locations_contacts_stickers_and_bad_attachments() {
    let mut message = outbound(None);
    message.attachments = vec![
        Attachment {
            location: Some(GeoPoint { latitude: 55.75, longitude: 37.62 }),
            extras: Some(r#"{"name":"Office","address":"Tverskaya 1","url":"https://maps"}"#.to_owned()),
            ..attachment(AttachmentKind::Location)
        },
        Attachment {
            extras: Some(
                r#"{"name":{"formatted_name":"Anna","first_name":"Anna"},"phones":[{"phone":"+7916"}]}"#
                    .to_owned(),
            ),
            ..attachment(AttachmentKind::Contact)
        },
        Attachment {
            caption: Some("not shown".to_owned()),
            ..media(AttachmentKind::Sticker, "https://x/s.webp")
        },
    ];
    let sent = bodies(&message);
    assert_eq!(
        sent[0]["location"],
        json!({"latitude": 55.75, "longitude": 37.62, "name": "Office", "address": "Tverskaya 1"})
    );
    assert_eq!(sent[1]["type"], "contacts");
    assert_eq!(sent[1]["contacts"][0]["name"]["formatted_name"], "Anna");
    assert_eq!(sent[2]["sticker"], json!({"link": "https://x/s.webp"}), "stickers take no caption");

    let fails = |a: Attachment| {
        let mut m = outbound(None);
        m.attachments.push(a);
        message_bodies(&m).unwrap_err()
    };
    assert_eq!(
        fails(attachment(AttachmentKind::Image)),
        "attachment 0 (image) has neither a url nor a provider-id"
    );
    assert_eq!(fails(attachment(AttachmentKind::Location)), "attachment 0 (location) has no coordinates");
    assert!(fails(attachment(AttachmentKind::Contact)).contains("needs the contact card"));
    assert_eq!(
        message_bodies(&outbound(Some("  "))).unwrap_err(),
        "nothing to send: the message has no text, attachment or template"
    );
}

#[test]
fn send_config_from_lookup() {
    let lookup = |pairs: &'static [(&'static str, &'static str)]| {
        move |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned())
    };
    let settings = SendConfig::from_lookup(
        lookup(&[("phone-number-id", " 123 "), ("api-base", "http://127.0.0.1:9000/v21.0/")]),
        lookup(&[("access-token", "EAAG-secret-value")]),
    )
    .unwrap();
    assert_eq!(settings.messages_url(), "http://127.0.0.1:9000/v21.0/123/messages");
    assert!(!format!("{settings:?}").contains("EAAG-secret-value"), "Debug hides the token");
    assert_eq!(settings.access_token, "EAAG-secret-value");
    let defaults =
        SendConfig::from_lookup(lookup(&[("phone-number-id", "1")]), lookup(&[("access-token", "t")]))
            .unwrap();
    assert_eq!(defaults.api_base, DEFAULT_API_BASE);

    let no_id = SendConfig::from_lookup(lookup(&[]), lookup(&[("access-token", "t")])).unwrap_err();
    assert!(no_id.starts_with("config key `phone-number-id` is not set"), "{no_id}");
    let bad_id =
        SendConfig::from_lookup(lookup(&[("phone-number-id", "1/../x")]), lookup(&[("access-token", "t")]));
    assert!(bad_id.unwrap_err().contains("must be the number's id"));
    let no_token = SendConfig::from_lookup(lookup(&[("phone-number-id", "1")]), lookup(&[])).unwrap_err();
    assert!(no_token.starts_with("secret `access-token` is not set"), "{no_token}");
    let sent = deliver(&outbound(Some("x")), Err(no_token.clone()), |_| panic!("no request without config"));
    assert_eq!(rejected(sent.result), no_token);
}

#[test]
fn success_takes_the_message_id() {
    assert!(matches!(
        classify_response(200, None, SUCCESS.as_bytes(), "out-1"),
        DeliveryResult::Accepted(ref id) if id == "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI"
    ));
    assert!(
        matches!(classify_response(200, None, b"{}", "out-1"), DeliveryResult::Accepted(ref id) if id == "out-1")
    );
}

#[test]
fn throttling_and_outages_are_retried() {
    let hint = retry(classify_response(
        429,
        Some("30"),
        graph_error_body(130429, "Rate limit hit", "Cloud API message throughput has been reached.")
            .as_bytes(),
        "m",
    ));
    assert_eq!(hint.after_ms, Some(30_000));
    assert_eq!(hint.reason, "130429: Rate limit hit (Cloud API message throughput has been reached.)");
    for code in [4, 80007, 131048, 131056, 1, 2, 131000, 131016] {
        let hint = retry(classify_response(400, None, graph_error_body(code, "x", "y").as_bytes(), "m"));
        assert_eq!(hint.after_ms, None, "{code}");
        assert!(hint.reason.starts_with(&format!("{code}: x")), "{}", hint.reason);
    }
    let hint = retry(classify_response(503, Some("7"), b"<html>busy</html>", "m"));
    assert_eq!(
        (hint.after_ms, hint.reason.as_str()),
        (Some(7_000), "WhatsApp API answered 503: <html>busy</html>")
    );
}

#[test]
fn permanent_errors_are_rejected_with_meta_s_words() {
    let reason = rejected(classify_response(
        400,
        None,
        graph_error_body(
            131047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        )
        .as_bytes(),
        "m",
    ));
    assert_eq!(
        reason,
        "131047: Re-engagement message (Message failed to send because more than 24 hours have passed since \
         the customer last replied to this number.)"
    );
    for (status, code) in [(400, 131026), (400, 131051), (400, 132000), (400, 132001), (401, 190), (400, 100)]
    {
        let reason =
            rejected(classify_response(status, None, graph_error_body(code, "m", "d").as_bytes(), "m"));
        assert_eq!(reason, format!("{code}: m (d)"));
    }
    let bare =
        json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}});
    assert_eq!(
        rejected(classify_response(401, None, bare.to_string().as_bytes(), "m")),
        "190: Invalid OAuth access token."
    );
    assert_eq!(rejected(classify_response(404, None, b"", "m")), "WhatsApp API answered 404: (empty body)");
}

#[test]
fn transport_errors() {
    let base = "https://graph.facebook.com/v21.0";
    assert_eq!(
        rejected(classify_error(&HttpError::Denied, base)),
        "the host of api-base `https://graph.facebook.com/v21.0` is not in capabilities.http"
    );
    assert!(rejected(classify_error(&HttpError::InvalidRequest("bad".into()), base)).contains("bad"));
    let hint = retry(classify_error(&HttpError::Transport("ConnectionRefused".into()), base));
    assert!(hint.reason.contains("ConnectionRefused"), "{}", hint.reason);
    assert!(matches!(classify_error(&HttpError::ResponseTooLarge, base), DeliveryResult::RetryLater(_)));
}

#[test]
fn deliver_sends_parts_in_order() {
    let mut message = outbound(Some("Look"));
    message.attachments = vec![
        media(AttachmentKind::Audio, "https://x/a.ogg"),
        media(AttachmentKind::Sticker, "https://x/s.webp"),
    ];
    let mut seen: Vec<Request> = Vec::new();
    let mut n = 0;
    let sent = deliver(&message, Ok(config()), |request| {
        seen.push(request.clone());
        n += 1;
        Ok(response(200, &[], &format!(r#"{{"messages":[{{"id":"wamid.{n}"}}]}}"#)))
    });
    assert!(matches!(sent.result, DeliveryResult::Accepted(ref id) if id == "wamid.1"), "{:?}", sent.result);
    assert!(sent.warnings.is_empty());
    let types: Vec<Value> =
        seen.iter().map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["type"].clone()).collect();
    assert_eq!(types, [json!("text"), json!("audio"), json!("sticker")]);

    // The first part failing is the result: nothing was sent, a retry is safe.
    let mut calls = 0;
    let sent = deliver(&message, Ok(config()), |_| {
        calls += 1;
        Ok(response(429, &[("retry-after", "5")], ""))
    });
    assert_eq!((retry(sent.result).after_ms, calls), (Some(5_000), 1));

    // A later part failing: accepted (retrying would repeat the first), with a warning.
    let mut calls = 0;
    let sent = deliver(&message, Ok(config()), |_| {
        calls += 1;
        if calls == 1 {
            Ok(response(200, &[], SUCCESS))
        } else {
            Ok(response(400, &[], &graph_error_body(131053, "Media upload error", "Unsupported format")))
        }
    });
    assert!(matches!(sent.result, DeliveryResult::Accepted(ref id) if id.starts_with("wamid.HBg")));
    assert_eq!(calls, 2, "the send stops at the failed part");
    assert_eq!(
        sent.warnings,
        [
            "part 2 of 3 was not sent: rejected: 131053: Media upload error (Unsupported format); part 3 was not tried"
        ]
    );
}

#[test]
fn the_access_token_never_reaches_a_reason() {
    let echo = graph_error_body(190, "Malformed access token EAAG-token", "token EAAG-token");
    let sent = deliver(&outbound(Some("x")), Ok(config()), |_| Ok(response(401, &[], &echo)));
    let reason = rejected(sent.result);
    assert!(!reason.contains("EAAG-token"), "{reason}");
    assert_eq!(reason, "190: Malformed access token <access-token> (token <access-token>)");
    let sent =
        deliver(&outbound(Some("x")), Ok(config()), |_| Err(HttpError::Transport("EAAG-token".into())));
    assert!(!retry(sent.result).reason.contains("EAAG-token"));
}
