//! Inbound: the body of a Messenger Platform (Page) webhook into Seam events. Pure
//! functions over parsed JSON, tested natively.

use seam_sdk::prelude::*;
use seam_sdk::serde_json::{Map, Value, json};

/// The `object` of every Page webhook.
pub const PAGE_OBJECT: &str = "page";

/// The identity kind of Messenger users; the value is their page-scoped id (PSID).
pub const IDENTITY_KIND: &str = "messenger";

/// `messenger:<psid>`.
pub fn messenger_identity(psid: &str) -> Identity {
    Identity { kind: IDENTITY_KIND.to_owned(), value: psid.to_owned() }
}

/// "a string", "an object"... for error messages.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks that the item at `path` is a JSON object.
fn check_object(value: &Value, path: &str) -> Result<(), String> {
    if value.is_object() { Ok(()) } else { Err(format!("{path} is {}, not a JSON object", type_name(value))) }
}

/// The string member `key` of `object`: `None` when missing or `null`; an error naming
/// `path` when it is not a string.
fn optional_str<'a>(object: &'a Value, key: &str, path: &str) -> Result<Option<&'a str>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{path}: `{key}` must be a string, not {}", type_name(other))),
    }
}

/// Like [`optional_str`], but a missing or empty value is an error.
fn required_str<'a>(object: &'a Value, key: &str, path: &str) -> Result<&'a str, String> {
    match optional_str(object, key, path)? {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(format!("{path}: `{key}` is empty")),
        None => Err(format!("{path}: missing `{key}`")),
    }
}

/// The array member `key` of `object`: empty when missing or `null`; an error naming
/// `path` when it is not an array.
fn optional_array<'a>(object: &'a Value, key: &str, path: &str) -> Result<&'a [Value], String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("{path}: `{key}` must be an array, not {}", type_name(other))),
    }
}

/// An id (a PSID, a page id) as text: a string as it is, an integer printed exactly (Meta
/// sends strings; some tools and older samples send numbers). `None` when missing, `null`,
/// empty or anything else.
fn id_at(object: &Value, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// Milliseconds since the epoch at member `key` (Messenger's `timestamp`, `watermark`,
/// `time` are milliseconds already); `None` when missing or `null`, an error naming `path`
/// when it is not an integer.
fn optional_millis(object: &Value, key: &str, path: &str) -> Result<Option<i64>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{path}: `{key}` is not milliseconds since the epoch: {value}")),
    }
}

/// The non-empty text at `path` (strings as they are, numbers printed), for content fields
/// where anything else simply means "not given".
fn text(value: &Value, path: &str) -> Option<String> {
    json::text_at(value, path).filter(|s| !s.trim().is_empty())
}

/// A channel event.
fn channel_event(
    kind: &str,
    external_id: String,
    customer: Option<&str>,
    payload: Value,
    at: Option<i64>,
) -> Event {
    Event::Channel(ChannelEvent {
        kind: kind.to_owned(),
        external_id,
        customer: customer.map(messenger_identity),
        payload: payload.to_string(),
        at,
    })
}

/// Every event in a webhook body (see the crate docs for the table).
///
/// The body must be an object with a string `object`; another object than [`PAGE_OBJECT`]
/// (e.g. `instagram`) gives no events. `entry` must be an array of objects whose
/// `messaging` (if any) is an array of objects; `standby` and `changes` are not read. The
/// items Seam reads must name their user (`sender.id`) and, for messages, carry a
/// `message.mid`. Errors name the entry and the item.
pub fn map_webhook(body: &Value) -> Result<Vec<Event>, String> {
    check_object(body, "body")?;
    match optional_str(body, "object", "body")? {
        None => return Err("body has no `object`: not a Meta webhook".to_owned()),
        Some(PAGE_OBJECT) => {}
        Some(_) => return Ok(Vec::new()),
    }
    let entries = match body.get("entry") {
        None | Some(Value::Null) => return Err("body: missing `entry`".to_owned()),
        _ => optional_array(body, "entry", "body")?,
    };
    let mut events = Vec::new();
    for (e, entry) in entries.iter().enumerate() {
        let path = format!("entry {e}");
        check_object(entry, &path)?;
        for (m, item) in optional_array(entry, "messaging", &path)?.iter().enumerate() {
            let path = format!("{path}, messaging {m}");
            check_object(item, &path)?;
            map_item(item, &path, &mut events)?;
        }
    }
    Ok(events)
}

/// The events of one `messaging` item, by the member it carries.
fn map_item(item: &Value, path: &str, events: &mut Vec<Event>) -> Result<(), String> {
    let at = optional_millis(item, "timestamp", path)?;
    let sender = item.get("sender").and_then(|s| id_at(s, "id"));
    let user = || sender.as_deref().ok_or_else(|| format!("{path}: missing `sender.id`"));
    let stamp = at.map(|t| t.to_string()).unwrap_or_default();
    if let Some(message) = item.get("message") {
        let path = &format!("{path}: `message`");
        check_object(message, path)?;
        if message.get("is_echo") == Some(&Value::Bool(true)) {
            events.push(map_echo(item, message, path)?);
        } else {
            events.push(Event::Message(map_message(item, message, user()?, at, path)?));
        }
    } else if let Some(delivery) = item.get("delivery") {
        let path = &format!("{path}: `delivery`");
        check_object(delivery, path)?;
        let user = user()?;
        for (n, mid) in optional_array(delivery, "mids", path)?.iter().enumerate() {
            let mid = mid
                .as_str()
                .filter(|m| !m.is_empty())
                .ok_or_else(|| format!("{path}: mid {n} is not a string"))?;
            events.push(Event::Delivery(DeliveryUpdate {
                provider_id: mid.to_owned(),
                recipient: Some(messenger_identity(user)),
                status: DeliveryStatus::Delivered,
                reason: None,
                at: at.or(optional_millis(delivery, "watermark", path)?),
            }));
        }
    } else if let Some(read) = item.get("read") {
        let path = &format!("{path}: `read`");
        check_object(read, path)?;
        let user = user()?;
        let watermark = optional_millis(read, "watermark", path)?;
        let id = format!("read:{user}:{}", watermark.map(|w| w.to_string()).unwrap_or(stamp));
        let payload =
            json!({ "watermark": watermark, "seq": read.get("seq"), "recipient": item.get("recipient") });
        events.push(channel_event("read", id, Some(user), payload, at));
    } else if let Some(postback) = item.get("postback") {
        check_object(postback, &format!("{path}: `postback`"))?;
        let user = user()?;
        let id = text(postback, "mid").unwrap_or_else(|| format!("postback:{user}:{stamp}"));
        let payload = json!({
            "title": postback.get("title"),
            "payload": postback.get("payload"),
            "referral": postback.get("referral"),
            "recipient": item.get("recipient"),
        });
        events.push(channel_event("postback", id, Some(user), payload, at));
    } else if let Some(optin) = item.get("optin") {
        check_object(optin, &format!("{path}: `optin`"))?;
        map_optin(item, optin, sender.as_deref(), at, events);
    } else if let Some(linking) = item.get("account_linking") {
        check_object(linking, &format!("{path}: `account_linking`"))?;
        let user = user()?;
        let status = text(linking, "status");
        let id = format!("account-linking:{user}:{}:{stamp}", status.as_deref().unwrap_or_default());
        let payload = json!({
            "status": status,
            "authorization_code": linking.get("authorization_code"),
            "recipient": item.get("recipient"),
        });
        events.push(channel_event("account-linking", id, Some(user), payload, at));
    } else if let Some(reaction) = item.get("reaction") {
        check_object(reaction, &format!("{path}: `reaction`"))?;
        let user = user()?;
        let mid = text(reaction, "mid").unwrap_or_default();
        let action = text(reaction, "action").unwrap_or_else(|| "react".to_owned());
        let id = format!("reaction:{mid}:{user}:{action}:{stamp}");
        let payload = json!({
            "mid": mid,
            "action": action,
            "reaction": reaction.get("reaction"),
            "emoji": reaction.get("emoji"),
            "removed": action == "unreact",
        });
        events.push(channel_event("reaction", id, Some(user), payload, at));
    } else if let Some(referral) = item.get("referral") {
        check_object(referral, &format!("{path}: `referral`"))?;
        let user = user()?;
        let id = format!("referral:{user}:{stamp}");
        events.push(channel_event("referral", id, Some(user), referral.clone(), at));
    }
    Ok(())
}

/// The attachments of a message, read leniently (a missing field is simply absent), each
/// with its attachment object (`type`, `payload`, `title`...) as extras:
/// - `image` (or any attachment whose payload has a `sticker_id`: a sticker, with the id as
///   provider id), `audio`, `video`, `file`: image, audio, video, document with the
///   payload's `url`;
/// - `location`: a location at `payload.coordinates.lat` / `long`;
/// - `fallback` (a shared link), `template`, anything else: `other`, with the payload's
///   `url` if any.
pub fn attachments(message: &Value) -> Vec<Attachment> {
    let items = message.get("attachments").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    items
        .iter()
        .filter(|a| a.is_object())
        .map(|item| {
            let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
            let sticker = text(item, "payload/sticker_id");
            let kind = match kind {
                _ if sticker.is_some() => AttachmentKind::Sticker,
                "image" => AttachmentKind::Image,
                "audio" => AttachmentKind::Audio,
                "video" => AttachmentKind::Video,
                "file" => AttachmentKind::Document,
                "location" => AttachmentKind::Location,
                _ => AttachmentKind::Other,
            };
            let coordinate = |key: &str| {
                json::pointer(item, &format!("payload/coordinates/{key}")).and_then(Value::as_f64)
            };
            Attachment {
                kind,
                url: text(item, "payload/url"),
                provider_id: sticker,
                mime_type: None,
                file_name: None,
                size: None,
                caption: None,
                location: match (coordinate("lat"), coordinate("long")) {
                    (Some(latitude), Some(longitude)) => Some(GeoPoint { latitude, longitude }),
                    _ => None,
                },
                extras: Some(item.to_string()),
            }
        })
        .collect()
}

/// A customer's message:
/// - external id: `message.mid`; sender: `messenger:<sender.id>`; sent at: `timestamp`;
/// - text: `message.text`; attachments: see [`attachments`];
/// - reply-to: `message.reply_to.mid` (the message this one answers);
/// - extras: `message` (the message object as Meta sent it), `recipient` (the page),
///   `quick_reply` (the payload of the quick reply button pressed, if one was), `referral`
///   (when the message came from an ad or a link), `reply_to`.
fn map_message(
    item: &Value,
    message: &Value,
    sender: &str,
    at: Option<i64>,
    path: &str,
) -> Result<InboundMessage, String> {
    let mid = required_str(message, "mid", path)?;
    let mut extras = Map::new();
    extras.insert("message".to_owned(), message.clone());
    if let Some(recipient) = item.get("recipient") {
        extras.insert("recipient".to_owned(), recipient.clone());
    }
    if let Some(payload) = text(message, "quick_reply/payload") {
        extras.insert("quick_reply".to_owned(), json!(payload));
    }
    for key in ["referral", "reply_to"] {
        if let Some(value) = message.get(key).or_else(|| item.get(key)).filter(|v| !v.is_null()) {
            extras.insert(key.to_owned(), value.clone());
        }
    }
    Ok(InboundMessage {
        external_id: mid.to_owned(),
        sender: messenger_identity(sender),
        sender_name: None,
        text: message.get("text").and_then(Value::as_str).filter(|t| !t.trim().is_empty()).map(str::to_owned),
        attachments: attachments(message),
        reply_to: text(message, "reply_to/mid"),
        thread: None,
        sent_at: at,
        extras: Some(Value::Object(extras).to_string()),
    })
}

/// An echo (`is_echo: true`): a message the page sent, by Seam or by a person in the
/// Page Inbox / Business Suite, as a `message-echo` channel event about its recipient (the
/// customer), id `mid`. The payload carries `app_id` (which app sent it) and `metadata`
/// (what the sender attached; Seam puts its own message id there, see
/// [`crate::message_bodies`]), so the host can tell its own sends from a person's replies.
fn map_echo(item: &Value, message: &Value, path: &str) -> Result<Event, String> {
    let mid = required_str(message, "mid", path)?;
    let customer = item.get("recipient").and_then(|r| id_at(r, "id"));
    let payload = json!({
        "text": message.get("text"),
        "app_id": message.get("app_id"),
        "metadata": message.get("metadata"),
        "attachments": message.get("attachments"),
        "message": message,
    });
    let at = optional_millis(item, "timestamp", path)?;
    Ok(channel_event("message-echo", mid.to_owned(), customer.as_deref(), payload, at))
}

/// An `optin`: a channel event `optin` (`ref`, `user_ref`, `type`, `payload`, the
/// notification token...) about `sender` (absent for the checkbox plugin, which names the
/// user by `user_ref` only). When the opt-in is to recurring notification messages
/// (`type: notification_messages`) of a known user, a consent change follows: granted when
/// a `notification_messages_token` is given (unless the status says `STOP NOTIFICATIONS`),
/// withdrawn when the status is `STOP NOTIFICATIONS`. Reason: `notification_messages`.
fn map_optin(item: &Value, optin: &Value, sender: Option<&str>, at: Option<i64>, events: &mut Vec<Event>) {
    let who = sender.map(str::to_owned).or_else(|| text(optin, "user_ref")).unwrap_or_default();
    let stamp = at.map(|t| t.to_string()).unwrap_or_default();
    let kind = text(optin, "type");
    let status = text(optin, "notification_messages_status");
    let id = format!(
        "optin:{who}:{}:{}:{stamp}",
        kind.as_deref().unwrap_or_default(),
        status.as_deref().unwrap_or_default()
    );
    let mut payload = optin.as_object().cloned().unwrap_or_default();
    payload.insert("recipient".to_owned(), item.get("recipient").cloned().unwrap_or(Value::Null));
    events.push(channel_event("optin", id, sender, Value::Object(payload), at));
    if kind.as_deref() != Some("notification_messages") {
        return;
    }
    let stopped = status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("STOP NOTIFICATIONS"));
    let granted = match (stopped, text(optin, "notification_messages_token")) {
        (true, _) => false,
        (false, Some(_)) => true,
        (false, None) => return,
    };
    if let Some(user) = sender {
        events.push(Event::Consent(ConsentChange {
            customer: messenger_identity(user),
            granted,
            reason: "notification_messages".to_owned(),
            at,
        }));
    }
}
