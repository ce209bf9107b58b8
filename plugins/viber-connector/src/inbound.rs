//! Inbound: the body of a Viber callback into Seam events. Pure functions over parsed JSON,
//! tested natively.

use seam_sdk::prelude::*;
use seam_sdk::serde_json::{Map, Value, json};

/// The identity kind of Viber users; the value is their Viber user id (`sender.id`,
/// `user.id`, `user_id`), e.g. `01234567890A=`.
pub const IDENTITY_KIND: &str = "viber";

/// The `reason` of the consent change a `subscribed` callback gives.
pub const SUBSCRIBED_REASON: &str = "subscribed";

/// The `reason` of the consent change an `unsubscribed` callback gives.
pub const UNSUBSCRIBED_REASON: &str = "unsubscribed";

/// The kind of the channel event a `conversation_started` callback gives.
pub const CONVERSATION_STARTED_KIND: &str = "conversation-started";

/// The callback `event`s that give events; any other (`webhook`, `client_status`, future
/// ones) is accepted with none, whatever else it holds.
pub const HANDLED_EVENTS: &[&str] =
    &["message", "delivered", "seen", "failed", "subscribed", "unsubscribed", "conversation_started"];

/// `viber:<user id>`.
pub fn viber_identity(user_id: &str) -> Identity {
    Identity { kind: IDENTITY_KIND.to_owned(), value: user_id.to_owned() }
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

/// The member `key` of `object` as a JSON object; an error naming `path` when it is
/// missing or something else.
fn required_object<'a>(object: &'a Value, key: &str, path: &str) -> Result<&'a Value, String> {
    match object.get(key) {
        Some(value @ Value::Object(_)) => Ok(value),
        None | Some(Value::Null) => Err(format!("{path}: missing `{key}`")),
        Some(other) => Err(format!("{path}: `{key}` must be an object, not {}", type_name(other))),
    }
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

/// An integer id (a `message_token`, a `chat_id`) as exact decimal text: a JSON integer
/// printed digit for digit (serde_json keeps 64-bit integers exact), or a non-empty string
/// as it is. A fractional or exponent number is an error: Viber's ids are 64-bit integers,
/// and a float would have lost their last digits.
pub fn id_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Value::Number(n) => Err(format!("is {n}, not an integer (a 64-bit token must not be a float)")),
        Value::String(_) => Err("is empty".to_owned()),
        other => Err(format!("must be an integer or a string, not {}", type_name(other))),
    }
}

/// The id at member `key` of `object` as text ([`id_text`]); `None` when missing or `null`.
fn optional_id(object: &Value, key: &str, path: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => id_text(value).map(Some).map_err(|e| format!("{path}: `{key}` {e}")),
    }
}

/// Like [`optional_id`], but a missing value is an error.
fn required_id(object: &Value, key: &str, path: &str) -> Result<String, String> {
    optional_id(object, key, path)?.ok_or_else(|| format!("{path}: missing `{key}`"))
}

/// The callback's `timestamp` (Viber gives milliseconds since the epoch); `None` when
/// missing or `null`, an error when it is not an integer of milliseconds.
pub fn timestamp(body: &Value) -> Result<Option<i64>, String> {
    let value = match body.get("timestamp") {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    let millis = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    millis.map(Some).ok_or_else(|| format!("`timestamp` is not milliseconds since the epoch: {value}"))
}

/// The non-empty text at `path` (strings as they are, numbers printed), for content fields
/// where anything else simply means "not given".
fn text(value: &Value, path: &str) -> Option<String> {
    json::text_at(value, path).filter(|s| !s.trim().is_empty())
}

/// An attachment of `kind` with nothing set but `extras`.
fn bare(kind: AttachmentKind, extras: &Value) -> Attachment {
    Attachment {
        kind,
        url: None,
        provider_id: None,
        mime_type: None,
        file_name: None,
        size: None,
        caption: None,
        location: None,
        extras: Some(extras.to_string()),
    }
}

/// The attachments of a Viber message object of type `kind` (read leniently: a missing
/// field is simply absent), the message object as each one's extras:
/// - `picture`, `video`, `file`: an image, video or document with `media` as the URL (Viber's
///   media URLs expire after about an hour), `file_name` and `file_size` (or `size`);
/// - `sticker`: a sticker whose provider id is `sticker_id`, `media` as the URL;
/// - `location`: a location at `location.lat` / `location.lon`;
/// - `contact`: a contact card (`contact.name`, `contact.phone_number` in the extras);
/// - `url`: an `other` attachment with `media` (the link) as the URL;
/// - anything else (`text`, `rich_media`, unknown types): none.
pub fn attachments(message: &Value, kind: &str) -> Vec<Attachment> {
    let media = |kind: AttachmentKind| Attachment {
        url: text(message, "media"),
        file_name: text(message, "file_name"),
        size: message.get("file_size").or_else(|| message.get("size")).and_then(Value::as_u64),
        ..bare(kind, message)
    };
    let attachment = match kind {
        "picture" => media(AttachmentKind::Image),
        "video" => media(AttachmentKind::Video),
        "file" => media(AttachmentKind::Document),
        "sticker" => Attachment {
            url: text(message, "media"),
            provider_id: text(message, "sticker_id"),
            ..bare(AttachmentKind::Sticker, message)
        },
        "location" => {
            let coordinate =
                |key: &str| message.get("location").and_then(|l| l.get(key)).and_then(Value::as_f64);
            Attachment {
                location: match (coordinate("lat"), coordinate("lon")) {
                    (Some(latitude), Some(longitude)) => Some(GeoPoint { latitude, longitude }),
                    _ => None,
                },
                ..bare(AttachmentKind::Location, message)
            }
        }
        "contact" => bare(AttachmentKind::Contact, message),
        "url" => Attachment { url: text(message, "media"), ..bare(AttachmentKind::Other, message) },
        _ => return Vec::new(),
    };
    vec![attachment]
}

/// Every event in a Viber callback body (see the crate docs for the table).
///
/// The body must be a JSON object with a string `event`. Callbacks Seam reads must carry
/// the user they concern (`sender.id`, `user.id` or `user_id`) and, for messages and
/// delivery updates, a `message_token` (an integer or a string; kept as exact text). Any
/// other `event` (`webhook`, `client_status`, future ones) gives no events. Errors name the
/// callback and the field.
pub fn map_callback(body: &Value) -> Result<Vec<Event>, String> {
    if !body.is_object() {
        return Err(format!("body is {}, not a JSON object", type_name(body)));
    }
    let event = optional_str(body, "event", "body")?
        .ok_or_else(|| "body has no `event`: not a Viber callback".to_owned())?;
    if !HANDLED_EVENTS.contains(&event) {
        return Ok(Vec::new());
    }
    let path = format!("`{event}` callback");
    let path = path.as_str();
    let at = timestamp(body).map_err(|e| format!("{path}: {e}"))?;
    let event = match event {
        "message" => Event::Message(map_message(body, at, path)?),
        "delivered" | "seen" | "failed" => Event::Delivery(map_delivery(body, event, at, path)?),
        "subscribed" => {
            let user = required_object(body, "user", path)?;
            let id = required_str(user, "id", &format!("{path}: `user`"))?;
            Event::Consent(ConsentChange {
                customer: viber_identity(id),
                granted: true,
                reason: SUBSCRIBED_REASON.to_owned(),
                at,
            })
        }
        "unsubscribed" => Event::Consent(ConsentChange {
            customer: viber_identity(required_str(body, "user_id", path)?),
            granted: false,
            reason: UNSUBSCRIBED_REASON.to_owned(),
            at,
        }),
        // `conversation_started`, the last of HANDLED_EVENTS.
        _ => Event::Channel(map_conversation_started(body, at, path)?),
    };
    Ok(vec![event])
}

/// A `message` callback as an inbound message:
/// - external id: `message_token` as exact text;
/// - sender: `viber:<sender.id>`, named `sender.name`;
/// - text: `message.text` (for a picture, the description the user typed under it);
/// - attachments: see [`attachments`];
/// - thread: `chat_id` as text, when the message came through a chat extension;
/// - sent at: `timestamp`;
/// - extras: `message` (the message object: `type`, `tracking_data`, `media`...), `sender`
///   (id, name, avatar, language, country, api_version...) and every other member of the
///   callback (`silent`, `reply_type`, `chat_id`, `chat_hostname`...).
fn map_message(body: &Value, at: Option<i64>, path: &str) -> Result<InboundMessage, String> {
    let token = required_id(body, "message_token", path)?;
    let path = &format!("{path} ({token})");
    let sender = required_object(body, "sender", path)?;
    let sender_id = required_str(sender, "id", &format!("{path}: `sender`"))?;
    let message = required_object(body, "message", path)?;
    let kind = optional_str(message, "type", &format!("{path}: `message`"))?.unwrap_or("unknown");
    let mut extras = Map::new();
    if let Some(members) = body.as_object() {
        for (key, value) in members {
            if !matches!(key.as_str(), "event" | "timestamp" | "message_token") {
                extras.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(InboundMessage {
        external_id: token,
        sender: viber_identity(sender_id),
        sender_name: text(sender, "name"),
        text: message.get("text").and_then(Value::as_str).filter(|t| !t.trim().is_empty()).map(str::to_owned),
        attachments: attachments(message, kind),
        reply_to: None,
        thread: optional_id(body, "chat_id", path)?,
        sent_at: at,
        extras: Some(Value::Object(extras).to_string()),
    })
}

/// A `delivered`, `seen` (read) or `failed` callback as a delivery update of
/// `message_token` (the token `send` returned), for `viber:<user_id>`; a failure's reason is
/// `desc`.
fn map_delivery(body: &Value, event: &str, at: Option<i64>, path: &str) -> Result<DeliveryUpdate, String> {
    let status = match event {
        "delivered" => DeliveryStatus::Delivered,
        "seen" => DeliveryStatus::Read,
        _ => DeliveryStatus::Failed,
    };
    let reason = match status {
        DeliveryStatus::Failed => Some(
            text(body, "desc").unwrap_or_else(|| "Viber reported a failure without a description".to_owned()),
        ),
        _ => None,
    };
    Ok(DeliveryUpdate {
        provider_id: required_id(body, "message_token", path)?,
        recipient: optional_str(body, "user_id", path)?.filter(|u| !u.is_empty()).map(viber_identity),
        status,
        reason,
        at,
    })
}

/// A `conversation_started` callback (the user opened the bot's chat, e.g. from a deep link;
/// they are not subscribed yet) as a `conversation-started` channel event about
/// `viber:<user.id>`. The external id is the callback's `message_token` (or, without one,
/// `conversation-started:<user id>:<timestamp>`); the payload is `type`, `context` (the deep
/// link's parameter), `subscribed` and `user` (name, avatar, language, country...).
fn map_conversation_started(body: &Value, at: Option<i64>, path: &str) -> Result<ChannelEvent, String> {
    let user = required_object(body, "user", path)?;
    let id = required_str(user, "id", &format!("{path}: `user`"))?;
    let external_id = match optional_id(body, "message_token", path)? {
        Some(token) => token,
        None => format!("{CONVERSATION_STARTED_KIND}:{id}:{}", at.map(|t| t.to_string()).unwrap_or_default()),
    };
    let payload = json!({
        "type": body.get("type"),
        "context": body.get("context"),
        "subscribed": body.get("subscribed"),
        "user": user,
    });
    Ok(ChannelEvent {
        kind: CONVERSATION_STARTED_KIND.to_owned(),
        external_id,
        customer: Some(viber_identity(id)),
        payload: payload.to_string(),
        at,
    })
}
