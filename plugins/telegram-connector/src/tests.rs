//! Unit tests of the connector's pure functions.

use super::*;
use std::cell::RefCell;

const SECRET: &str = "s3cret-Token_1";
const TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";

fn post(body: &[u8], headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: "POST".to_owned(),
        path: "/".to_owned(),
        query: String::new(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.to_vec(),
    }
}

/// A webhook of `update` with the right secret token, handled.
fn webhook(update: &Value) -> Result<WebhookOutcome, WebhookError> {
    handle(&post(update.to_string().as_bytes(), &[(SECRET_HEADER, SECRET)]), Some(SECRET))
}

/// The events of `update`, which must be accepted.
fn events(update: Value) -> Vec<Event> {
    let outcome = webhook(&update).unwrap_or_else(|e| panic!("refused {update}: {e:?}"));
    assert_eq!(outcome.response.status, 200);
    outcome.events
}

/// The one event of `update`.
fn single(update: Value) -> Event {
    let mut all = events(update);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn message_of(event: Event) -> InboundMessage {
    match event {
        Event::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn channel_of(event: Event) -> ChannelEvent {
    match event {
        Event::Channel(c) => c,
        other => panic!("expected a channel event, got {other:?}"),
    }
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn malformed(result: Result<WebhookOutcome, WebhookError>) -> String {
    match result {
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

fn accepted(result: DeliveryResult) -> String {
    match result {
        DeliveryResult::Accepted(id) => id,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

/// A private-chat message from user 42 (Anna Smith), id 7, with `extra` members merged in.
fn message(extra: Value) -> Value {
    let mut m = json!({
        "message_id": 7,
        "from": {"id": 42, "is_bot": false, "first_name": "Anna", "last_name": "Smith", "username": "anna"},
        "chat": {"id": 42, "first_name": "Anna", "type": "private"},
        "date": 1_700_000_000
    });
    if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), extra) {
        m.extend(extra);
    }
    m
}

fn update(field: &str, object: Value) -> Value {
    json!({"update_id": 900, field: object})
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/telegram");

/// Every fixture file: name and parsed update.
fn fixtures() -> Vec<(String, Value)> {
    let mut all: Vec<(String, Value)> = std::fs::read_dir(FIXTURES)
        .expect("fixtures folder")
        .map(|entry| {
            let path = entry.expect("fixture entry").path();
            let text = std::fs::read_to_string(&path).expect("fixture text");
            let value: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            (path.display().to_string(), value)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(all.len() >= 20, "expected the Telegram fixtures, found {}", all.len());
    all
}

/// The events of the one fixture for which `pick` holds.
fn fixture_events(what: &str, pick: impl Fn(&Value) -> bool) -> Vec<Event> {
    let found: Vec<_> = fixtures().into_iter().filter(|(_, v)| pick(v)).collect();
    assert_eq!(found.len(), 1, "expected one fixture with {what}, found {}", found.len());
    events(found[0].1.clone())
}

fn has(path: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v| json::pointer(v, path).is_some()
}

fn is_key(id: &str) -> bool {
    let Some((chat, message)) = id.split_once(':') else { return false };
    chat.strip_prefix('-').unwrap_or(chat).parse::<u64>().is_ok() && message.parse::<u64>().is_ok()
}

#[test]
fn every_fixture_is_accepted_and_normalized() {
    let mut totals = std::collections::BTreeMap::<&str, usize>::new();
    let all = fixtures();
    for (name, update) in &all {
        let body = serde_json::to_vec(update).unwrap();
        let outcome = handle(&post(&body, &[(SECRET_HEADER, SECRET)]), Some(SECRET))
            .unwrap_or_else(|e| panic!("{name} refused: {e:?}"));
        assert_eq!(outcome.response.status, 200, "{name}");
        assert!(!outcome.events.is_empty(), "{name}: every fixture is an update the connector maps");
        assert!(outcome.events.len() <= 2, "{name}: {:?}", outcome.events);

        // A retried webhook gives the same events, ids included.
        let again = handle(&post(&body, &[(SECRET_HEADER, SECRET)]), Some(SECRET)).unwrap();
        assert_eq!(format!("{:?}", again.events), format!("{:?}", outcome.events), "{name}");

        let update_id = update["update_id"].as_i64().unwrap();
        for (i, event) in outcome.events.iter().enumerate() {
            match event {
                Event::Message(m) => {
                    *totals.entry("message").or_default() += 1;
                    assert!(is_key(&m.external_id), "{name}: external id {}", m.external_id);
                    assert_eq!(m.sender.kind, "telegram", "{name}");
                    assert!(m.sender.value.parse::<i64>().is_ok(), "{name}: sender {}", m.sender.value);
                    assert!(m.sender_name.as_deref().is_some_and(|n| !n.is_empty()), "{name}");
                    assert!(m.sent_at.is_some_and(|t| t > 1_000_000_000_000), "{name}: {:?}", m.sent_at);
                    assert!(
                        m.text.is_some() || !m.attachments.is_empty(),
                        "{name}: a message has text or attachments"
                    );
                    let extras = json_of(m.extras.as_deref().unwrap());
                    assert_eq!(extras["update_id"], update_id, "{name}");
                    assert!(extras["chat"]["id"].is_i64(), "{name}: the chat is in the extras");
                    let inner = update.get("message").or_else(|| update.get("business_message")).unwrap();
                    assert_eq!(
                        m.external_id,
                        format!("{}:{}", inner["chat"]["id"], inner["message_id"]),
                        "{name}"
                    );
                    assert_eq!(
                        m.text.as_deref(),
                        inner["text"].as_str().or(inner["caption"].as_str()),
                        "{name}"
                    );
                    for a in &m.attachments {
                        let extras = json_of(a.extras.as_deref().unwrap_or("{}"));
                        assert!(extras["type"].is_string(), "{name}: attachment extras name the type");
                        if !matches!(a.kind, AttachmentKind::Location | AttachmentKind::Contact) {
                            assert!(a.provider_id.as_deref().is_some_and(|p| !p.is_empty()), "{name}");
                        }
                    }
                }
                Event::IdentityHint(_) => {
                    *totals.entry("hint").or_default() += 1;
                    assert!(
                        matches!(outcome.events.get(i + 1), Some(Event::Message(_))),
                        "{name}: a hint comes before its message"
                    );
                }
                Event::MessageEdited(e) => {
                    *totals.entry("edit").or_default() += 1;
                    assert!(is_key(&e.external_id), "{name}: {}", e.external_id);
                    assert!(e.edit_id.starts_with(&format!("{}@", e.external_id)), "{name}: {}", e.edit_id);
                    assert_eq!(e.sender.kind, "telegram");
                    assert!(!e.sender.value.is_empty(), "{name}");
                }
                Event::Channel(c) => {
                    *totals.entry("channel").or_default() += 1;
                    assert!(is_identity_kind_like(&c.kind), "{name}: kind {}", c.kind);
                    assert!(!c.external_id.is_empty(), "{name}");
                    let payload = json_of(&c.payload);
                    assert_eq!(payload["update_id"], update_id, "{name}");
                    if let Some(customer) = &c.customer {
                        assert_eq!(customer.kind, "telegram", "{name}");
                        assert!(customer.value.parse::<i64>().is_ok(), "{name}");
                    }
                }
                other => panic!("{name}: Telegram reports no {other:?}"),
            }
        }
    }
    // Every fixture is one update: one event each, plus a hint per own-contact share.
    let events: usize = totals.values().sum();
    assert_eq!(events, all.len() + totals.get("hint").copied().unwrap_or(0), "{totals:?}");
    assert!(totals["message"] >= 10, "{totals:?}");
    assert!(totals["channel"] >= 7, "{totals:?}");
    assert!(totals["edit"] >= 1, "{totals:?}");
}

fn is_identity_kind_like(kind: &str) -> bool {
    !kind.is_empty()
        && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !kind.starts_with('-')
}

#[test]
fn fixture_text_message() {
    let all = fixture_events("a bot command", |v| {
        v.pointer("/message/entities/0/type").and_then(Value::as_str) == Some("bot_command")
    });
    let m = message_of(all.into_iter().next().unwrap());
    assert_eq!(m.text.as_deref(), Some("/test"), "commands stay in the text");
    assert_eq!(m.external_id, "10081232:428640");
    assert_eq!((m.sender.kind.as_str(), m.sender.value.as_str()), ("telegram", "10081232"));
    assert_eq!(m.sender_name.as_deref(), Some("Luca Patera"));
    assert_eq!(m.sent_at, Some(1_632_176_928_000));
    assert_eq!(m.thread, None, "a private chat has no thread");
    let extras = json_of(m.extras.as_deref().unwrap());
    assert_eq!(extras["entities"][0]["type"], "bot_command");
    assert_eq!(extras["update_id"], 144_064_961);
    assert_eq!(extras["from"]["username"], "Lukasss93");
}

#[test]
fn fixture_animation_is_one_video() {
    let m = message_of(fixture_events("an animation", has("message/animation")).remove(0));
    assert_eq!(m.attachments.len(), 1, "the compatibility document is skipped: {:?}", m.attachments);
    let a = &m.attachments[0];
    assert!(matches!(a.kind, AttachmentKind::Video));
    assert_eq!(a.provider_id.as_deref(), Some("sdaafsghhjhgkkygrssgdfghgfdgh"));
    assert_eq!((a.mime_type.as_deref(), a.file_name.as_deref()), (Some("video/mp4"), Some("lol.mp4")));
    assert_eq!(a.size, Some(276_942));
    assert_eq!(json_of(a.extras.as_deref().unwrap())["type"], "animation");
}

#[test]
fn fixture_media_kinds() {
    let first = |path: &str| message_of(fixture_events(path, has(path)).remove(0)).attachments;
    let document = |v: &Value| has("message/document")(v) && !has("message/animation")(v);
    let a = message_of(fixture_events("a document", document).remove(0)).attachments;
    assert_eq!(a.len(), 1);
    assert!(matches!(a[0].kind, AttachmentKind::Document));
    assert_eq!((a[0].mime_type.as_deref(), a[0].size), (Some("application/pdf"), Some(123_456)));

    let a = first("message/audio");
    assert!(matches!(a[0].kind, AttachmentKind::Audio));
    assert_eq!(json_of(a[0].extras.as_deref().unwrap())["title"], "Worst Day");

    let a = first("message/video");
    assert!(matches!(a[0].kind, AttachmentKind::Video));
    assert_eq!(a[0].provider_id.as_deref(), Some("sdfsdfsdfsfsdfdsfdsfs"), "the video, not its thumbnail");

    let a = first("message/sticker");
    assert!(matches!(a[0].kind, AttachmentKind::Sticker));
    assert_eq!(a[0].mime_type.as_deref(), Some("image/webp"));
    let extras = json_of(a[0].extras.as_deref().unwrap());
    assert_eq!(
        (extras["type"].as_str(), extras["sticker_type"].as_str()),
        (Some("sticker"), Some("regular"))
    );
    assert_eq!(extras["emoji"], "🤣");

    let a = first("message/location");
    assert!(matches!(a[0].kind, AttachmentKind::Location));
    let at = a[0].location.as_ref().unwrap();
    assert_eq!((at.latitude, at.longitude), (41.899977, 12.501028));

    let all = fixture_events("a contact", has("message/contact"));
    assert_eq!(all.len(), 1, "someone else's card (no user_id) gives no hint");
    let a = message_of(all.into_iter().next().unwrap()).attachments;
    assert!(matches!(a[0].kind, AttachmentKind::Contact));
    let card = json_of(a[0].extras.as_deref().unwrap());
    assert_eq!((card["phone_number"].as_str(), card["first_name"].as_str()), (Some("911"), Some("911")));
    assert!(card["vcard"].as_str().unwrap().starts_with("BEGIN:VCARD"));
}

#[test]
fn fixture_service_messages() {
    let c = channel_of(fixture_events("members joining", has("message/new_chat_members")).remove(0));
    assert_eq!(c.kind, "chat-members-joined");
    assert_eq!(c.external_id, "12345:123456");
    assert_eq!(c.customer.as_ref().map(|i| i.value.as_str()), Some("12345"));
    assert_eq!(c.at, Some(1_668_633_998_000));
    assert_eq!(json_of(&c.payload)["new_chat_members"][0]["id"], 12345);

    let c = channel_of(fixture_events("a pin", has("message/pinned_message")).remove(0));
    assert_eq!(c.kind, "message-pinned");
    assert_eq!(json_of(&c.payload)["pinned_message"]["text"], "a");
}

#[test]
fn fixture_other_updates() {
    let m = message_of(fixture_events("a business message", has("business_message")).remove(0));
    assert_eq!((m.external_id.as_str(), m.sender.value.as_str()), ("456:123", "456"));
    assert_eq!(m.sender_name.as_deref(), Some("Mario"));
    assert_eq!(json_of(m.extras.as_deref().unwrap())["update_type"], "business_message");

    let e = match fixture_events("a business edit", has("edited_business_message")).remove(0) {
        Event::MessageEdited(e) => e,
        other => panic!("expected an edit, got {other:?}"),
    };
    assert_eq!(e.external_id, "456:123");
    assert_eq!(e.edit_id, "456:123@u1", "no edit_date: the update id tells edits apart");
    assert_eq!((e.text.as_deref(), e.edited_at), (Some("Ciao"), None));

    let c = channel_of(fixture_events("a callback query", has("callback_query")).remove(0));
    assert_eq!((c.kind.as_str(), c.external_id.as_str()), ("callback-query", "666728699048485871"));
    assert_eq!(c.customer.as_ref().map(|i| i.value.as_str()), Some("222222222"));
    let p = json_of(&c.payload);
    assert_eq!(p["data"], "thedata");
    assert_eq!(p["message"]["external_id"], "222222222:69587");
    assert_eq!(p["message"]["accessible"], false, "date 0 marks an inaccessible message");

    let c = channel_of(fixture_events("a channel post", has("channel_post")).remove(0));
    assert_eq!((c.kind.as_str(), c.external_id.as_str()), ("channel-post", "456:123"));
    assert!(c.customer.is_none());
    assert_eq!(json_of(&c.payload)["text"], "Ciao");

    let c = channel_of(fixture_events("a join request", has("chat_join_request")).remove(0));
    assert_eq!(c.kind, "chat-join-request");
    assert_eq!(c.external_id, "987654321:123456789@123456789");
    assert_eq!(c.customer.as_ref().map(|i| i.value.as_str()), Some("123456789"));

    let c = channel_of(fixture_events("a reaction", has("message_reaction")).remove(0));
    assert_eq!(c.kind, "reaction");
    assert_eq!(c.external_id, "456:123:456@1684984664");
    assert_eq!(c.customer.as_ref().map(|i| i.value.as_str()), Some("456"));
    assert_eq!(json_of(&c.payload)["new_reaction"][1]["emoji"], "🤡");

    let c = channel_of(fixture_events("a poll", has("poll")).remove(0));
    assert_eq!((c.kind.as_str(), c.external_id.as_str()), ("poll", "123456789#123456789"));
    assert!(c.customer.is_none());
    assert_eq!(json_of(&c.payload)["total_voter_count"], 3);
}

// ---------------------------------------------------------------------------------------
// Inbound behaviours
// ---------------------------------------------------------------------------------------

#[test]
fn photo_takes_the_largest_size_and_the_caption_is_the_text() {
    let m = message_of(single(update(
        "message",
        message(json!({
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 67, "file_size": 1000},
                {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 960, "file_size": 90000},
                {"file_id": "mid", "file_unique_id": "m", "width": 320, "height": 240, "file_size": 9000}
            ],
            "caption": "look at this",
            "caption_entities": [{"offset": 0, "length": 4, "type": "bold"}],
            "media_group_id": "album-1"
        })),
    )));
    assert_eq!(m.text.as_deref(), Some("look at this"));
    assert_eq!(m.attachments.len(), 1);
    let a = &m.attachments[0];
    assert!(matches!(a.kind, AttachmentKind::Image));
    assert_eq!((a.provider_id.as_deref(), a.size), (Some("big"), Some(90_000)));
    let extras = json_of(a.extras.as_deref().unwrap());
    assert_eq!((extras["width"].as_u64(), extras["file_unique_id"].as_str()), (Some(1280), Some("b")));
    let extras = json_of(m.extras.as_deref().unwrap());
    assert_eq!(extras["media_group_id"], "album-1");
    assert_eq!(extras["caption_entities"][0]["type"], "bold");
}

#[test]
fn group_messages_have_a_thread_and_replies_point_at_their_message() {
    let m = message_of(single(update(
        "message",
        message(json!({
            "chat": {"id": -1_001_234_567_890_i64, "title": "Support", "type": "supergroup"},
            "text": "me too",
            "reply_to_message": {"message_id": 5, "chat": {"id": -1_001_234_567_890_i64}, "date": 1},
            "message_thread_id": 3,
            "forward_origin": {"type": "user", "date": 1, "sender_user": {"id": 9, "first_name": "Bo"}}
        })),
    )));
    assert_eq!(m.external_id, "-1001234567890:7");
    assert_eq!(m.thread.as_deref(), Some("-1001234567890"));
    assert_eq!(m.reply_to.as_deref(), Some("-1001234567890:5"));
    assert_eq!(m.sender.value, "42", "the person, not the group");
    assert_eq!(m.sender_name.as_deref(), Some("Anna Smith"));
    let extras = json_of(m.extras.as_deref().unwrap());
    assert_eq!(extras["forward_origin"]["sender_user"]["id"], 9);
    assert_eq!(extras["message_thread_id"], 3);
    assert_eq!(extras["chat"]["title"], "Support");
}

#[test]
fn senders_without_a_user() {
    // An anonymous group admin: the group it speaks for is the sender, not the shared bot user.
    let m = message_of(single(update(
        "message",
        message(json!({
            "from": {"id": 1_087_968_824, "is_bot": true, "first_name": "Group", "username": "GroupAnonymousBot"},
            "sender_chat": {"id": -100_555, "title": "Shop", "type": "supergroup"},
            "chat": {"id": -100_555, "title": "Shop", "type": "supergroup"},
            "text": "hello"
        })),
    )));
    assert_eq!((m.sender.value.as_str(), m.sender_name.as_deref()), ("-100555", Some("Shop")));
    // No `from` at all: the chat.
    let mut body = message(json!({"text": "hi"}));
    body.as_object_mut().unwrap().remove("from");
    let m = message_of(single(update("message", body)));
    assert_eq!((m.sender.value.as_str(), m.sender_name.as_deref()), ("42", Some("Anna")));
    // A user with only a username.
    let m = message_of(single(update(
        "message",
        message(json!({"from": {"id": 43, "first_name": "", "username": "zed"}, "text": "x"})),
    )));
    assert_eq!(m.sender_name.as_deref(), Some("zed"));
}

#[test]
fn sharing_ones_own_contact_links_the_phone() {
    let all = events(update(
        "message",
        message(json!({"contact": {"phone_number": "79161234567", "first_name": "Anna", "user_id": 42}})),
    ));
    assert_eq!(all.len(), 2, "{all:?}");
    let Event::IdentityHint(hint) = &all[0] else { panic!("the hint comes first: {all:?}") };
    assert_eq!((hint.known.kind.as_str(), hint.known.value.as_str()), ("telegram", "42"));
    assert_eq!((hint.also.kind.as_str(), hint.also.value.as_str()), ("phone", "+79161234567"));
    assert_eq!(hint.reason, "contact-share");
    let m = message_of(all[1].clone());
    assert!(matches!(m.attachments[0].kind, AttachmentKind::Contact));

    let all = events(update(
        "message",
        message(json!({"contact": {"phone_number": "+44 20 7946 0000", "first_name": "A", "user_id": 42}})),
    ));
    let Event::IdentityHint(hint) = &all[0] else { panic!("{all:?}") };
    assert_eq!(hint.also.value, "+44 20 7946 0000", "a + is not doubled");

    let all = events(update(
        "message",
        message(json!({"contact": {"phone_number": "123", "first_name": "Friend", "user_id": 77}})),
    ));
    assert_eq!(all.len(), 1, "someone else's number is not the sender's");
}

#[test]
fn venue_is_one_location_with_its_details() {
    let point = json!({"latitude": 55.75, "longitude": 37.62});
    let m = message_of(single(update(
        "message",
        message(json!({
            "location": point,
            "venue": {"location": point, "title": "Office", "address": "Tverskaya 1"}
        })),
    )));
    assert_eq!(m.attachments.len(), 1, "{:?}", m.attachments);
    let a = &m.attachments[0];
    assert!(matches!(a.kind, AttachmentKind::Location));
    assert_eq!(a.location.as_ref().map(|p| (p.latitude, p.longitude)), Some((55.75, 37.62)));
    let extras = json_of(a.extras.as_deref().unwrap());
    assert_eq!((extras["type"].as_str(), extras["title"].as_str()), (Some("venue"), Some("Office")));
    assert_eq!(m.text, None);
}

#[test]
fn voice_video_note_and_dice() {
    let m = message_of(single(update(
        "message",
        message(json!({
            "voice": {"file_id": "v1", "file_unique_id": "u", "duration": 3, "mime_type": "audio/ogg", "file_size": 5000},
            "video_note": {"file_id": "n1", "file_unique_id": "w", "length": 240, "duration": 5}
        })),
    )));
    assert_eq!(m.attachments.len(), 2);
    assert!(matches!(m.attachments[0].kind, AttachmentKind::Voice));
    assert_eq!(m.attachments[0].mime_type.as_deref(), Some("audio/ogg"));
    assert!(matches!(m.attachments[1].kind, AttachmentKind::Video));
    assert_eq!(json_of(m.attachments[1].extras.as_deref().unwrap())["type"], "video_note");

    let m = message_of(single(update("message", message(json!({"dice": {"emoji": "🎲", "value": 4}})))));
    assert!(matches!(m.attachments[0].kind, AttachmentKind::Other));
    assert_eq!(json_of(m.attachments[0].extras.as_deref().unwrap())["dice"]["value"], 4);
}

#[test]
fn service_message_kinds() {
    let kind = |extra: Value| channel_of(single(update("message", message(extra)))).kind;
    assert_eq!(kind(json!({"new_chat_title": "New"})), "chat-title-changed");
    assert_eq!(kind(json!({"left_chat_member": {"id": 1, "first_name": "x"}})), "chat-member-left");
    assert_eq!(kind(json!({"group_chat_created": true})), "group-created");
    assert_eq!(
        kind(json!({"successful_payment": {"currency": "EUR", "total_amount": 100}})),
        "payment-succeeded"
    );
    assert_eq!(kind(json!({"some_future_thing": {"x": 1}})), "some-future-thing", "unknown fields name it");
    assert_eq!(kind(json!({})), "service-message");
    let c = channel_of(single(update("message", message(json!({"new_chat_title": "New"})))));
    assert_eq!(c.external_id, "42:7");
    assert_eq!(c.customer.as_ref().map(|i| i.value.as_str()), Some("42"));
    assert_eq!(json_of(&c.payload)["new_chat_title"], "New");
}

#[test]
fn edits_are_keyed_by_their_time() {
    let edit = |date: i64, text: &str| match single(update(
        "edited_message",
        message(json!({"edit_date": date, "text": text})),
    )) {
        Event::MessageEdited(e) => e,
        other => panic!("expected an edit, got {other:?}"),
    };
    let first = edit(1_700_000_100, "fixed");
    assert_eq!(first.external_id, "42:7");
    assert_eq!(first.edit_id, "42:7@1700000100");
    assert_eq!(first.sender.value, "42");
    assert_eq!(first.text.as_deref(), Some("fixed"));
    assert_eq!(first.edited_at, Some(1_700_000_100_000));
    assert_ne!(edit(1_700_000_200, "again").edit_id, first.edit_id, "a later edit is a new edit");

    let captioned = single(update(
        "edited_message",
        message(json!({"edit_date": 1, "caption": "new caption", "photo": []})),
    ));
    assert!(matches!(captioned, Event::MessageEdited(ref e) if e.text.as_deref() == Some("new caption")));

    let post = channel_of(single(update(
        "edited_channel_post",
        message(json!({"edit_date": 1_700_000_100, "chat": {"id": -1_009, "type": "channel"}, "text": "x"})),
    )));
    assert_eq!((post.kind.as_str(), post.external_id.as_str()), ("channel-post", "-1009:7@1700000100"));
    assert_eq!(post.at, Some(1_700_000_100_000));
}

#[test]
fn business_messages() {
    let m = message_of(single(update(
        "business_message",
        message(json!({"business_connection_id": "bc-1", "text": "Is it in stock?"})),
    )));
    let extras = json_of(m.extras.as_deref().unwrap());
    assert_eq!(extras["business_connection_id"], "bc-1", "needed to answer");
    assert_eq!(extras["update_type"], "business_message");

    // The business account writing to its customer (chat 42) is not the customer speaking.
    let own = message(json!({
        "business_connection_id": "bc-1",
        "from": {"id": 1000, "first_name": "Shop owner"},
        "text": "Yes!"
    }));
    let c = channel_of(single(update("business_message", own.clone())));
    assert_eq!((c.kind.as_str(), c.external_id.as_str()), ("business-message-sent", "42:7"));
    assert_eq!(c.customer.as_ref().map(|i| i.value.as_str()), Some("42"));
    let mut edited = own;
    edited["edit_date"] = json!(1_700_000_001);
    let c = channel_of(single(update("edited_business_message", edited)));
    assert_eq!((c.kind.as_str(), c.external_id.as_str()), ("business-message-edited", "42:7@1700000001"));
}

#[test]
fn callbacks_and_members() {
    let c = channel_of(single(update(
        "callback_query",
        json!({
            "id": "q-1", "from": {"id": 42, "first_name": "Anna"}, "chat_instance": "ci", "data": "buy:7",
            "message": message(json!({"text": "Pick one", "business_connection_id": "bc-2"}))
        }),
    )));
    assert_eq!((c.kind.as_str(), c.external_id.as_str()), ("callback-query", "q-1"));
    let p = json_of(&c.payload);
    assert_eq!(p["data"], "buy:7");
    assert_eq!(
        p["message"],
        json!({"chat_id": "42", "message_id": "7", "external_id": "42:7",
        "accessible": true, "business_connection_id": "bc-2"})
    );
    assert_eq!(c.at, None);

    let inline = channel_of(single(update(
        "callback_query",
        json!({"id": "q-2", "from": {"id": 42}, "inline_message_id": "im-1", "data": "x"}),
    )));
    assert_eq!(json_of(&inline.payload)["inline_message_id"], "im-1");

    let member = |field: &str| {
        channel_of(single(update(
            field,
            json!({
                "chat": {"id": 42, "type": "private"}, "from": {"id": 42}, "date": 1_700_000_000,
                "old_chat_member": {"status": "member", "user": {"id": 555, "is_bot": true}},
                "new_chat_member": {"status": "kicked", "user": {"id": 555, "is_bot": true}}
            }),
        )))
    };
    let mine = member("my_chat_member");
    assert_eq!((mine.kind.as_str(), mine.external_id.as_str()), ("chat-member", "42:555@1700000000"));
    assert_eq!(mine.customer.as_ref().map(|i| i.value.as_str()), Some("42"), "the user who blocked the bot");
    assert_eq!(json_of(&mine.payload)["update_type"], "my_chat_member");
    let theirs = member("chat_member");
    assert_eq!(theirs.customer.as_ref().map(|i| i.value.as_str()), Some("555"), "the member concerned");

    let answer = channel_of(single(update(
        "poll_answer",
        json!({"poll_id": "p-1", "user": {"id": 42, "first_name": "Anna"}, "option_ids": [1]}),
    )));
    assert_eq!((answer.kind.as_str(), answer.external_id.as_str()), ("poll-answer", "p-1:42#900"));
    assert_eq!(answer.customer.as_ref().map(|i| i.value.as_str()), Some("42"));
    let anonymous = channel_of(single(update(
        "poll_answer",
        json!({"poll_id": "p-1", "voter_chat": {"id": -1_001, "type": "channel"}, "option_ids": [0]}),
    )));
    assert!(anonymous.customer.is_none());
    assert_eq!(anonymous.external_id, "p-1:-1001#900");
}

#[test]
fn other_updates_are_accepted_without_events() {
    for field in ["inline_query", "pre_checkout_query", "chat_boost", "business_connection", "something_new"]
    {
        let outcome = webhook(&json!({"update_id": 5, field: {"id": "x"}})).unwrap();
        assert!(outcome.events.is_empty(), "{field}");
        assert_eq!(outcome.response.status, 200);
    }
    assert!(webhook(&json!({"update_id": 5})).unwrap().events.is_empty());
}

#[test]
fn malformed_updates() {
    let raw = |body: &[u8]| malformed(handle(&post(body, &[(SECRET_HEADER, SECRET)]), Some(SECRET)));
    let m = raw(b"{\"update_id\":");
    assert!(m.starts_with("body is not valid JSON") && m.contains("line 1"), "{m}");
    assert_eq!(raw(b"[1]"), "the update is an array, not a JSON object");
    assert_eq!(malformed(webhook(&json!({"message": message(json!({}))}))), "the update has no `update_id`");
    assert_eq!(malformed(webhook(&json!({"update_id": "7"}))), "`update_id` must be an integer, not \"7\"");
    assert_eq!(
        malformed(webhook(&json!({"update_id": 1, "message": "hi"}))),
        "`message` is a string, not an object"
    );
    let mut no_chat = message(json!({"text": "x"}));
    no_chat.as_object_mut().unwrap().remove("chat");
    assert_eq!(malformed(webhook(&update("message", no_chat))), "`message` has no `chat.id`");
    assert_eq!(
        malformed(webhook(&update("edited_message", message(json!({"message_id": 1.5}))))),
        "`edited_message.message_id` must be an integer, not a number"
    );
    assert_eq!(
        malformed(webhook(&update("callback_query", json!({"from": {"id": 1}})))),
        "`callback_query` has no `id`"
    );
    assert_eq!(
        malformed(webhook(&update("chat_join_request", json!({"chat": {"id": 1}})))),
        "`chat_join_request` has no `from.id`"
    );
    let mut get = post(b"", &[(SECRET_HEADER, SECRET)]);
    get.method = "GET".to_owned();
    assert_eq!(malformed(handle(&get, Some(SECRET))), "Telegram webhooks are POSTs, got GET");
}

// ---------------------------------------------------------------------------------------
// Webhook secret
// ---------------------------------------------------------------------------------------

#[test]
fn secret_token_is_required_and_checked() {
    let body = update("message", message(json!({"text": "hi"}))).to_string();
    let send =
        |headers: &[(&str, &str)], secret: Option<&str>| handle(&post(body.as_bytes(), headers), secret);

    assert_eq!(send(&[(SECRET_HEADER, SECRET)], Some(SECRET)).unwrap().events.len(), 1);
    assert!(
        send(&[(SECRET_HEADER, SECRET)], Some(&format!(" {SECRET}\n"))).is_ok(),
        "a file's newline is trimmed"
    );

    assert_eq!(unauthorized(send(&[], Some(SECRET))), "missing `X-Telegram-Bot-Api-Secret-Token` header");
    let wrong = unauthorized(send(&[(SECRET_HEADER, "s3cret-Token_2")], Some(SECRET)));
    assert_eq!(wrong, "`X-Telegram-Bot-Api-Secret-Token` does not match the secret `secret`");
    assert!(send(&[(SECRET_HEADER, "")], Some(SECRET)).is_err());
    assert!(send(&[(SECRET_HEADER, SECRET)], Some("another")).is_err(), "the wrong secret");
    assert!(!wrong.contains(SECRET), "the secret is never echoed");

    for secret in [None, Some(""), Some("  ")] {
        match send(&[(SECRET_HEADER, SECRET)], secret) {
            Err(WebhookError::Misconfigured(m)) => assert!(m.contains("`secret`"), "{m}"),
            other => panic!("expected Misconfigured, got {other:?}"),
        }
    }
    // Authentication comes before the body is even parsed.
    assert!(unauthorized(handle(&post(b"not json", &[]), Some(SECRET))).contains("missing"));
}

#[test]
fn describe_reports_telegram() {
    let info = channel_info();
    assert_eq!((info.kind.as_str(), info.display_name.as_str()), ("telegram", "Telegram"));
    assert_eq!(info.identity_kind, "telegram");
    assert_eq!(info.features, ChannelFeatures::TEXT | ChannelFeatures::MEDIA | ChannelFeatures::RICH);
    assert_eq!(info.max_text_length, Some(4096));
}

// ---------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------

fn outbound(text: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        id: "out-1".to_owned(),
        to: Identity { kind: "telegram".to_owned(), value: "42".to_owned() },
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

fn file(kind: AttachmentKind, url: &str) -> Attachment {
    Attachment { url: Some(url.to_owned()), ..attachment(kind) }
}

fn ok_response(message_id: i64) -> Response {
    Response {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"ok": true, "result": {"message_id": message_id, "chat": {"id": 42}, "date": 1}})
            .to_string()
            .into_bytes(),
    }
}

fn error_response(status: u16, body: Value) -> Response {
    Response { status, headers: Vec::new(), body: body.to_string().into_bytes() }
}

/// Delivers `message` against a fake Bot API answering with `answers` in turn; returns the
/// outcome and the requests made.
fn deliver_with(message: &OutboundMessage, answers: Vec<Response>) -> (Delivery, Vec<Request>) {
    let seen = RefCell::new(Vec::new());
    let answers = RefCell::new(answers.into_iter());
    let delivery = deliver(message, Some("https://tg.example.com/"), Some(TOKEN), |r| {
        seen.borrow_mut().push(r.clone());
        Ok(answers.borrow_mut().next().expect("no more answers scripted"))
    });
    (delivery, seen.into_inner())
}

fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn methods(calls: &[ApiCall]) -> Vec<&str> {
    calls.iter().map(|c| c.method).collect()
}

#[test]
fn text_goes_by_send_message() {
    let (delivery, requests) = deliver_with(&outbound(Some("Hello")), vec![ok_response(99)]);
    assert_eq!(accepted(delivery.result), "42:99");
    assert!(delivery.warnings.is_empty());
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.url, format!("https://tg.example.com/bot{TOKEN}/sendMessage"));
    assert!(r.headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"));
    assert_eq!(body_of(r), json!({"chat_id": 42, "text": "Hello"}));
}

#[test]
fn replies_in_the_same_chat_quote_their_message() {
    let mut m = outbound(Some("Sure"));
    m.reply_to = Some("42:17".to_owned());
    assert_eq!(plan_send(&m).unwrap()[0].params["reply_parameters"], json!({"message_id": 17}));
    m.reply_to = Some("43:17".to_owned());
    assert!(!plan_send(&m).unwrap()[0].params.contains_key("reply_parameters"), "another chat");
    m.reply_to = Some("an-email-id".to_owned());
    assert!(!plan_send(&m).unwrap()[0].params.contains_key("reply_parameters"));

    let mut group = outbound(Some("hi"));
    group.to.value = "-1001234567890".to_owned();
    group.reply_to = Some("-1001234567890:5".to_owned());
    let call = &plan_send(&group).unwrap()[0];
    assert_eq!(call.params["chat_id"], json!(-1_001_234_567_890_i64));
    assert_eq!(call.params["reply_parameters"], json!({"message_id": 5}));
    group.to.value = "@mychannel".to_owned();
    assert_eq!(plan_send(&group).unwrap()[0].params["chat_id"], "@mychannel");
    group.to.value = "+79161234567".to_owned();
    assert_eq!(plan_send(&group).unwrap()[0].params["chat_id"], "+79161234567", "not read as a user id");
}

#[test]
fn one_captionable_attachment_carries_the_text() {
    let mut m = outbound(Some("Your invoice"));
    m.attachments.push(Attachment {
        provider_id: Some("file-abc".to_owned()),
        ..file(AttachmentKind::Document, "https://x/f.pdf")
    });
    m.reply_to = Some("42:3".to_owned());
    let (delivery, requests) = deliver_with(&m, vec![ok_response(100)]);
    assert_eq!(accepted(delivery.result), "42:100");
    assert_eq!(requests.len(), 1);
    assert!(requests[0].url.ends_with("/sendDocument"));
    assert_eq!(
        body_of(&requests[0]),
        json!({"chat_id": 42, "document": "file-abc", "caption": "Your invoice",
               "reply_parameters": {"message_id": 3}}),
        "the provider id is preferred to the url"
    );
}

#[test]
fn text_first_then_each_attachment() {
    // Two attachments: the text goes alone, first.
    let mut m = outbound(Some("Photos"));
    m.attachments =
        vec![file(AttachmentKind::Image, "https://x/1.jpg"), file(AttachmentKind::Image, "https://x/2.jpg")];
    m.reply_to = Some("42:3".to_owned());
    m.extras = Some(
        json!({"business_connection_id": "bc-1", "parse_mode": "HTML", "disable_notification": true,
               "message_thread_id": 8, "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]},
               "unrelated": 1})
        .to_string(),
    );
    let (delivery, requests) = deliver_with(&m, vec![ok_response(1), ok_response(2), ok_response(3)]);
    assert_eq!(accepted(delivery.result), "42:1", "the first message's id");
    let bodies: Vec<Value> = requests.iter().map(body_of).collect();
    let urls: Vec<&str> = requests.iter().map(|r| r.url.rsplit('/').next().unwrap()).collect();
    assert_eq!(urls, ["sendMessage", "sendPhoto", "sendPhoto"]);
    assert_eq!(bodies[0]["text"], "Photos");
    assert_eq!(bodies[0]["reply_parameters"], json!({"message_id": 3}), "the first message replies");
    assert!(bodies[1].get("reply_parameters").is_none());
    assert_eq!(bodies[2]["photo"], "https://x/2.jpg");
    for b in &bodies {
        assert_eq!(
            (b["business_connection_id"].as_str(), b["message_thread_id"].as_i64()),
            (Some("bc-1"), Some(8))
        );
        assert_eq!(b["disable_notification"], true);
        assert!(b.get("unrelated").is_none());
    }
    assert_eq!(bodies[0]["parse_mode"], "HTML");
    assert!(bodies[1].get("parse_mode").is_none(), "no caption, no parse mode");
    assert!(bodies[0].get("reply_markup").is_none() && bodies[1].get("reply_markup").is_none());
    assert_eq!(bodies[2]["reply_markup"]["inline_keyboard"][0][0]["text"], "OK", "the keyboard goes last");

    // An attachment with its own caption keeps it; the text goes first.
    let mut m = outbound(Some("Here"));
    m.attachments =
        vec![Attachment { caption: Some("the photo".to_owned()), ..file(AttachmentKind::Image, "u") }];
    let calls = plan_send(&m).unwrap();
    assert_eq!(methods(&calls), ["sendMessage", "sendPhoto"]);
    assert_eq!(calls[1].params["caption"], "the photo");

    // A sticker takes no caption; text too long for a caption goes alone.
    let mut m = outbound(Some("Hi"));
    m.attachments =
        vec![Attachment { provider_id: Some("stk".to_owned()), ..attachment(AttachmentKind::Sticker) }];
    let calls = plan_send(&m).unwrap();
    assert_eq!(methods(&calls), ["sendMessage", "sendSticker"]);
    assert!(!calls[1].params.contains_key("caption"));
    let long = "x".repeat(MAX_CAPTION_LENGTH + 1);
    let mut m = outbound(Some(&long));
    m.attachments = vec![file(AttachmentKind::Video, "https://x/v.mp4")];
    assert_eq!(methods(&plan_send(&m).unwrap()), ["sendMessage", "sendVideo"]);
    let fits = "я".repeat(MAX_CAPTION_LENGTH);
    m.text = Some(fits.clone());
    let calls = plan_send(&m).unwrap();
    assert_eq!(methods(&calls), ["sendVideo"], "characters, not bytes");
    assert_eq!(calls[0].params["caption"], fits.as_str());
}

#[test]
fn every_attachment_kind_has_its_method() {
    let cases = [
        (file(AttachmentKind::Image, "u"), "sendPhoto", "photo"),
        (file(AttachmentKind::Document, "u"), "sendDocument", "document"),
        (file(AttachmentKind::Audio, "u"), "sendAudio", "audio"),
        (file(AttachmentKind::Voice, "u"), "sendVoice", "voice"),
        (file(AttachmentKind::Video, "u"), "sendVideo", "video"),
        (
            Attachment {
                extras: Some(r#"{"type":"animation"}"#.to_owned()),
                ..file(AttachmentKind::Video, "u")
            },
            "sendAnimation",
            "animation",
        ),
        (
            Attachment { mime_type: Some("image/GIF".to_owned()), ..file(AttachmentKind::Image, "u") },
            "sendAnimation",
            "animation",
        ),
        (
            Attachment {
                extras: Some(r#"{"type":"video_note"}"#.to_owned()),
                ..file(AttachmentKind::Video, "u")
            },
            "sendVideoNote",
            "video_note",
        ),
        (file(AttachmentKind::Sticker, "u"), "sendSticker", "sticker"),
    ];
    for (a, method, field) in cases {
        let (call, _) = attachment_call(&a, 1).unwrap();
        assert_eq!((call.method, call.params[field].as_str()), (method, Some("u")), "{a:?}");
    }

    let at = GeoPoint { latitude: 55.75, longitude: 37.62 };
    let place = Attachment { location: Some(at), ..attachment(AttachmentKind::Location) };
    let (call, caption) = attachment_call(&place, 1).unwrap();
    assert_eq!((call.method, caption), ("sendLocation", false));
    assert_eq!(Value::Object(call.params), json!({"latitude": 55.75, "longitude": 37.62}));
    let venue = Attachment {
        extras: Some(r#"{"type":"venue","title":"Office","address":"Tverskaya 1"}"#.to_owned()),
        ..place
    };
    let (call, _) = attachment_call(&venue, 1).unwrap();
    assert_eq!((call.method, call.params["title"].as_str()), ("sendVenue", Some("Office")));

    let card = Attachment {
        extras: Some(r#"{"phone_number":"+7916","first_name":"Anna","vcard":"BEGIN:VCARD"}"#.to_owned()),
        ..attachment(AttachmentKind::Contact)
    };
    let (call, _) = attachment_call(&card, 1).unwrap();
    assert_eq!(
        Value::Object(call.params),
        json!({"phone_number": "+7916", "first_name": "Anna", "vcard": "BEGIN:VCARD"})
    );
    assert_eq!(call.method, "sendContact");

    // A location alone: no text, one call, accepted.
    let mut m = outbound(None);
    m.attachments.push(Attachment { location: Some(at), ..attachment(AttachmentKind::Location) });
    let (delivery, requests) = deliver_with(&m, vec![ok_response(5)]);
    assert_eq!(accepted(delivery.result), "42:5");
    assert!(requests[0].url.ends_with("/sendLocation"));
    assert_eq!(body_of(&requests[0])["chat_id"], 42);
}

#[test]
fn messages_telegram_cannot_take_are_rejected_without_a_request() {
    let refuse = |m: &OutboundMessage| {
        let (delivery, requests) = deliver_with(m, Vec::new());
        assert!(requests.is_empty(), "no request for {m:?}");
        rejected(delivery.result)
    };
    let mut m = outbound(Some("hi"));
    m.to.kind = "phone".to_owned();
    assert_eq!(refuse(&m), "cannot send to a `phone` identity: the Telegram channel sends to `telegram` ids");

    let mut m = outbound(Some("hi"));
    m.template = Some(Template { name: "t".to_owned(), language: "en".to_owned(), parameters: Vec::new() });
    assert!(refuse(&m).starts_with("Telegram has no templates"));

    assert_eq!(refuse(&outbound(None)), "nothing to send: the message has no text and no attachments");
    assert_eq!(refuse(&outbound(Some("  "))), "nothing to send: the message has no text and no attachments");

    let mut m = outbound(Some("hi"));
    m.to.value = " ".to_owned();
    assert_eq!(refuse(&m), "the recipient's telegram id is empty");

    let mut m = outbound(Some("hi"));
    m.attachments = vec![file(AttachmentKind::Image, "u"), attachment(AttachmentKind::Document)];
    assert_eq!(refuse(&m), "attachment 2 (document) has neither a provider-id nor a url");
    m.attachments = vec![attachment(AttachmentKind::Other)];
    assert_eq!(refuse(&m), "attachment 1 has kind `other`, which Telegram cannot send");
    m.attachments = vec![attachment(AttachmentKind::Location)];
    assert_eq!(refuse(&m), "attachment 1 (location) has no location");
    m.attachments = vec![attachment(AttachmentKind::Contact)];
    assert!(refuse(&m).contains("needs `phone_number` and `first_name`"));

    let mut m = outbound(Some("hi"));
    m.extras = Some("{not json".to_owned());
    assert!(refuse(&m).starts_with("extras are not valid JSON"));
    m.extras = Some("[1]".to_owned());
    assert_eq!(refuse(&m), "extras must be a JSON object, not an array");

    for token in [None, Some(""), Some("  ")] {
        let called = std::cell::Cell::new(false);
        let d = deliver(&outbound(Some("hi")), None, token, |_| {
            called.set(true);
            Err(HttpError::Denied)
        });
        assert_eq!(rejected(d.result), "bot-token is not set");
        assert!(!called.get());
    }
}

#[test]
fn api_base_defaults_to_telegram() {
    assert_eq!(api_base(None), "https://api.telegram.org");
    assert_eq!(api_base(Some("  ")), "https://api.telegram.org");
    assert_eq!(api_base(Some(" http://127.0.0.1:8081/ ")), "http://127.0.0.1:8081");
    let call = ApiCall { method: "sendMessage", params: Map::new() };
    assert_eq!(build_request(&api_base(None), "T", &call).url, "https://api.telegram.org/botT/sendMessage");
}

#[test]
fn successful_answers_give_the_message_key() {
    let body = |v: Value| v.to_string().into_bytes();
    let ok = body(json!({"ok": true, "result": {"message_id": 77, "chat": {"id": -1_005}, "date": 1}}));
    assert_eq!(accepted(classify_response(200, &ok, "@channel", "out-1")), "-1005:77", "the numeric chat id");
    let no_chat = body(json!({"ok": true, "result": {"message_id": 77}}));
    assert_eq!(accepted(classify_response(200, &no_chat, "42", "out-1")), "42:77");
    let no_id = body(json!({"ok": true, "result": true}));
    assert_eq!(accepted(classify_response(200, &no_id, "42", "out-1")), "out-1");
}

#[test]
fn bot_api_errors_are_classified() {
    let answer = |status: u16, v: Value| classify_response(status, v.to_string().as_bytes(), "42", "m");

    let hint = retry(answer(
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 5",
               "parameters": {"retry_after": 5}}),
    ));
    assert_eq!(hint.after_ms, Some(5_000));
    assert!(hint.reason.contains("Too Many Requests: retry after 5"), "{}", hint.reason);
    assert_eq!(retry(answer(429, json!({"ok": false}))).after_ms, None);

    let hint =
        retry(answer(500, json!({"ok": false, "error_code": 500, "description": "Internal Server Error"})));
    assert_eq!(hint.after_ms, None);
    assert_eq!(hint.reason, "Telegram answered 500: Internal Server Error");
    let hint = retry(classify_response(502, b"<html>Bad Gateway</html>", "42", "m"));
    assert_eq!(hint.reason, "Telegram answered 502: <html>Bad Gateway</html>");

    let blocked = rejected(answer(
        403,
        json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
    ));
    assert_eq!(blocked, "Telegram refused the message (403): Forbidden: bot was blocked by the user");
    let missing = rejected(answer(
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
    ));
    assert_eq!(missing, "Telegram refused the message (400): Bad Request: chat not found");
    let migrated = rejected(answer(
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat",
               "parameters": {"migrate_to_chat_id": -1_001_234_i64}}),
    ));
    assert!(migrated.ends_with("(the group is now the supergroup -1001234)"), "{migrated}");

    for code in [401, 404] {
        let reason =
            rejected(answer(code, json!({"ok": false, "error_code": code, "description": "Unauthorized"})));
        assert!(reason.starts_with(&format!("Telegram refused the bot token ({code}")), "{reason}");
        assert!(reason.contains("`bot-token`"), "{reason}");
    }
    assert!(rejected(classify_response(404, b"", "42", "m")).contains("(empty body)"));

    let not_ok = rejected(answer(200, json!({"ok": false, "description": "odd"})));
    assert!(not_ok.starts_with("Telegram answered 200 without \"ok\": true"), "{not_ok}");
    assert!(rejected(classify_response(200, b"hello", "42", "m")).contains("hello"));
    assert!(rejected(classify_response(302, b"", "42", "m")).contains("302"));
}

#[test]
fn transport_failures() {
    assert_eq!(rejected(classify_error(&HttpError::Denied)), "the api-base host is not in capabilities.http");
    let hint = retry(classify_error(&HttpError::Transport("ConnectionRefused".into())));
    assert!(hint.reason.contains("ConnectionRefused"), "{}", hint.reason);
    assert!(matches!(classify_error(&HttpError::ResponseTooLarge), DeliveryResult::RetryLater(_)));

    let d =
        deliver(&outbound(Some("hi")), None, Some(TOKEN), |_| Err(HttpError::Transport("Timeout".into())));
    assert!(retry(d.result).reason.contains("Timeout"));
}

#[test]
fn the_token_never_leaks() {
    // An error quoting the URL, and a body echoing the path (plain or percent-encoded).
    let d = deliver(&outbound(Some("hi")), Some("ftp://bad"), Some(TOKEN), |r| {
        Err(HttpError::InvalidRequest(format!("`{}` is not usable", r.url)))
    });
    let reason = rejected(d.result);
    assert!(!reason.contains(TOKEN) && reason.contains(TOKEN_PLACEHOLDER), "{reason}");
    assert!(!reason.contains("ABC-DEF"), "{reason}");

    let echo = format!("<h1>Not found: /bot{TOKEN}/sendMessage and /bot{}</h1>", TOKEN.replace(':', "%3A"));
    let d = deliver(&outbound(Some("hi")), None, Some(TOKEN), |_| {
        Ok(Response { status: 404, headers: Vec::new(), body: echo.clone().into_bytes() })
    });
    let reason = rejected(d.result);
    assert!(!reason.contains("ABC-DEF"), "{reason}");

    let d = deliver(&outbound(Some("hi")), None, Some(TOKEN), |_| {
        Ok(Response { status: 503, headers: Vec::new(), body: echo.clone().into_bytes() })
    });
    assert!(!retry(d.result).reason.contains("ABC-DEF"));
    assert_eq!(redact("no token here", ""), "no token here");
}

#[test]
fn a_failure_after_the_first_part_keeps_it_accepted() {
    let mut m = outbound(Some("text"));
    m.attachments = vec![file(AttachmentKind::Image, "1"), file(AttachmentKind::Image, "2")];
    let too_big = error_response(
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: wrong file"}),
    );
    let (delivery, requests) = deliver_with(&m, vec![ok_response(10), too_big]);
    assert_eq!(accepted(delivery.result), "42:10", "a retry would send the text twice");
    assert_eq!(requests.len(), 2, "the rest is not sent");
    assert_eq!(delivery.warnings.len(), 1);
    let w = &delivery.warnings[0];
    assert!(w.contains("part 2 of 3 (sendPhoto)") && w.contains("Bad Request: wrong file"), "{w}");
    assert!(w.contains("42:10"), "{w}");

    // The first part failing decides the result, and nothing else is tried.
    let limited = error_response(
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3",
               "parameters": {"retry_after": 3}}),
    );
    let (delivery, requests) = deliver_with(&m, vec![limited]);
    assert_eq!(retry(delivery.result).after_ms, Some(3_000));
    assert_eq!(requests.len(), 1);
    assert!(delivery.warnings.is_empty());
}

#[test]
fn send_options_parse() {
    assert_eq!(send_options(None).unwrap(), SendOptions::default());
    assert_eq!(send_options(Some(" ")).unwrap(), SendOptions::default());
    let o = send_options(Some(r#"{"parse_mode":"MarkdownV2","disable_notification":null}"#)).unwrap();
    assert_eq!(o.parse_mode, Some(json!("MarkdownV2")));
    assert_eq!(o.disable_notification, None, "null is absent");
    assert_eq!(reply_message_id(Some(" 42:9 "), "42"), Some(9));
    assert_eq!(reply_message_id(Some("42:x"), "42"), None);
    assert_eq!(reply_message_id(None, "42"), None);
}
