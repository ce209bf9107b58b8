//! Telegram Bot API connector: a bot's webhook updates in, Bot API calls out.
//!
//! # Inbound
//! Telegram POSTs one [Update](https://core.telegram.org/bots/api#update) per webhook, carrying
//! the `secret_token` given to `setWebhook` in the `X-Telegram-Bot-Api-Secret-Token` header.
//! Until the secret `secret` is set every webhook is refused (misconfigured); a missing or
//! wrong header is unauthorized; a body that is not a JSON object with an integer
//! `update_id` (or whose message lacks `chat.id` / `message_id`) is malformed. Everything
//! else is answered `200` with these events (see [`map_update`]):
//!
//! | update | events |
//! |---|---|
//! | `message`, `business_message` with content | [`Event::Message`] (preceded by an [`Event::IdentityHint`] when the sender shares their own contact) |
//! | `message`, `business_message` without content (members joined, a pin, a new title...) | [`Event::Channel`] named by [`service_kind`] |
//! | `business_message` the business account itself sent | [`Event::Channel`] `business-message-sent` |
//! | `edited_message`, `edited_business_message` | [`Event::MessageEdited`] (`business-message-edited` for the account's own) |
//! | `channel_post`, `edited_channel_post` | [`Event::Channel`] `channel-post` |
//! | `callback_query` | [`Event::Channel`] `callback-query` |
//! | `message_reaction` | [`Event::Channel`] `reaction` |
//! | `chat_join_request` | [`Event::Channel`] `chat-join-request` |
//! | `poll`, `poll_answer` | [`Event::Channel`] `poll`, `poll-answer` |
//! | `my_chat_member`, `chat_member` | [`Event::Channel`] `chat-member` |
//! | anything else | none |
//!
//! Senders are `telegram:<user id>`; message external ids are `<chat id>:<message id>`, the
//! same shape `send` returns, so replies and edits point at the messages they concern.
//!
//! # Outbound
//! `send` turns an outbound message into Bot API calls ([`plan_send`]): `sendMessage` for the
//! text, `sendPhoto`, `sendDocument`, `sendAudio`, `sendVoice`, `sendVideo`, `sendAnimation`,
//! `sendVideoNote`, `sendSticker`, `sendLocation`, `sendVenue` or `sendContact` for each
//! attachment (the text rides as the caption of a lone attachment that takes one). Each call
//! is a JSON POST to `{api-base}/bot{bot-token}/{method}` ([`build_request`]); answers are
//! mapped by [`classify_response`]. The result is the id `<chat id>:<message id>` of the first
//! message sent. Telegram does not report delivery, so the connector sends no delivery
//! events. The bot token is in every URL: no error text or log line ever contains it
//! ([`redact`]).

#![warn(missing_docs)]

pub use seam_sdk::delivery::{SNIPPET_CHARS, snippet};
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Map, Value, json};

/// Header in which Telegram sends the webhook's `secret_token`.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The Bot API base URL used when `api-base` is not set.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// The identity kind of Telegram users (and the channel kind).
pub const IDENTITY_KIND: &str = "telegram";

/// Longest text of one message, in characters.
pub const MAX_TEXT_LENGTH: u32 = 4096;

/// Longest caption of a photo, video, document..., in characters. Longer text is sent as a
/// message of its own before the attachment.
pub const MAX_CAPTION_LENGTH: usize = 1024;

/// What replaces the bot token in any text that could contain it.
pub const TOKEN_PLACEHOLDER: &str = "<bot-token>";

/// The update fields [`map_update`] understands, in the order they are looked for.
pub const UPDATE_TYPES: &[&str] = &[
    "message",
    "business_message",
    "edited_message",
    "edited_business_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "message_reaction",
    "chat_join_request",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
];

/// Message fields that make a message a customer message rather than a service message:
/// text, media, places, cards, dice, polls, games...
pub const CONTENT_FIELDS: &[&str] = &[
    "text",
    "caption",
    "photo",
    "document",
    "audio",
    "voice",
    "video",
    "video_note",
    "animation",
    "sticker",
    "location",
    "venue",
    "contact",
    "dice",
    "poll",
    "game",
    "story",
    "invoice",
    "giveaway",
    "giveaway_winners",
    "paid_media",
    "checklist",
];

/// Service message fields and the channel event kind each becomes (see [`service_kind`]).
pub const SERVICE_KINDS: &[(&str, &str)] = &[
    ("new_chat_members", "chat-members-joined"),
    ("left_chat_member", "chat-member-left"),
    ("pinned_message", "message-pinned"),
    ("new_chat_title", "chat-title-changed"),
    ("new_chat_photo", "chat-photo-changed"),
    ("delete_chat_photo", "chat-photo-deleted"),
    ("group_chat_created", "group-created"),
    ("supergroup_chat_created", "supergroup-created"),
    ("channel_chat_created", "channel-created"),
    ("message_auto_delete_timer_changed", "auto-delete-timer-changed"),
    ("migrate_to_chat_id", "chat-migrated"),
    ("migrate_from_chat_id", "chat-migrated-from"),
    ("successful_payment", "payment-succeeded"),
    ("refunded_payment", "payment-refunded"),
    ("users_shared", "users-shared"),
    ("chat_shared", "chat-shared"),
    ("connected_website", "website-connected"),
    ("write_access_allowed", "write-access-allowed"),
    ("web_app_data", "web-app-data"),
    ("proximity_alert_triggered", "proximity-alert"),
    ("boost_added", "boost-added"),
    ("forum_topic_created", "forum-topic-created"),
    ("forum_topic_edited", "forum-topic-edited"),
    ("forum_topic_closed", "forum-topic-closed"),
    ("forum_topic_reopened", "forum-topic-reopened"),
    ("video_chat_scheduled", "video-chat-scheduled"),
    ("video_chat_started", "video-chat-started"),
    ("video_chat_ended", "video-chat-ended"),
    ("video_chat_participants_invited", "video-chat-participants-invited"),
];

/// Fields any message may have besides its content; a service message's kind is never
/// taken from one of these (see [`service_kind`]).
const COMMON_FIELDS: &[&str] = &[
    "message_id",
    "message_thread_id",
    "from",
    "sender_chat",
    "sender_boost_count",
    "sender_business_bot",
    "date",
    "business_connection_id",
    "chat",
    "forward_origin",
    "forward_from",
    "forward_from_chat",
    "forward_from_message_id",
    "forward_signature",
    "forward_sender_name",
    "forward_date",
    "is_topic_message",
    "is_automatic_forward",
    "reply_to_message",
    "external_reply",
    "quote",
    "reply_to_story",
    "via_bot",
    "edit_date",
    "has_protected_content",
    "is_from_offline",
    "media_group_id",
    "author_signature",
    "entities",
    "caption_entities",
    "link_preview_options",
    "effect_id",
    "show_caption_above_media",
    "has_media_spoiler",
    "reply_markup",
];

/// Message fields copied into an inbound message's `extras` when present.
const MESSAGE_EXTRAS: &[&str] = &[
    "chat",
    "from",
    "sender_chat",
    "entities",
    "caption_entities",
    "business_connection_id",
    "sender_business_bot",
    "media_group_id",
    "message_thread_id",
    "is_topic_message",
    "forward_origin",
    "forward_from",
    "forward_from_chat",
    "forward_from_message_id",
    "forward_sender_name",
    "forward_signature",
    "forward_date",
    "is_automatic_forward",
    "via_bot",
    "quote",
    "external_reply",
    "author_signature",
    "has_media_spoiler",
];

/// What the channel is.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        kind: IDENTITY_KIND.to_owned(),
        display_name: "Telegram".to_owned(),
        features: ChannelFeatures::TEXT | ChannelFeatures::MEDIA | ChannelFeatures::RICH,
        max_text_length: Some(MAX_TEXT_LENGTH),
        identity_kind: IDENTITY_KIND.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------------------

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

/// An id at `path` in `value` as text: an integer, or a non-empty string. Anything else
/// (missing, `null`, a fraction, an object) is `None`.
pub fn id_at(value: &Value, path: &str) -> Option<String> {
    match json::pointer(value, path)? {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Like [`id_at`], but a missing id is an error naming `what` (e.g. `message`) and the path.
fn require_id(value: &Value, path: &str, what: &str) -> Result<String, String> {
    id_at(value, path).ok_or_else(|| match json::pointer(value, path) {
        None | Some(Value::Null) => format!("`{what}` has no `{}`", path.replace('/', ".")),
        Some(other) => {
            format!("`{what}.{}` must be an integer, not {}", path.replace('/', "."), type_name(other))
        }
    })
}

/// The non-empty string at `key` of `object`.
fn str_at(object: &Value, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Unix seconds at `key` of `object` as milliseconds; missing, zero (Telegram's mark of an
/// inaccessible message) or out of range is `None`.
pub fn time_at(object: &Value, key: &str) -> Option<i64> {
    object.get(key).and_then(Value::as_i64).filter(|s| *s > 0).and_then(|s| s.checked_mul(1000))
}

/// `telegram:<id>` for a user or chat object with an `id`.
pub fn telegram_identity(object: &Value) -> Option<Identity> {
    id_at(object, "id").map(|value| Identity { kind: IDENTITY_KIND.to_owned(), value })
}

/// A person's display name: first and last name, else the username.
pub fn user_name(user: &Value) -> Option<String> {
    let full = [str_at(user, "first_name"), str_at(user, "last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned();
    if full.is_empty() { str_at(user, "username") } else { Some(full) }
}

/// A chat's display name: its title, else the name of the person it is with.
fn chat_name(chat: &Value) -> Option<String> {
    str_at(chat, "title").or_else(|| user_name(chat))
}

/// Who sent a message, and their display name: the chat a message was sent on behalf of
/// (`sender_chat`: anonymous group admins, channels), else the user `from`, else the chat
/// itself (channel posts have no `from`).
pub fn message_sender(message: &Value) -> Option<(Identity, Option<String>)> {
    if let Some(chat) = message.get("sender_chat")
        && let Some(identity) = telegram_identity(chat)
    {
        return Some((identity, chat_name(chat)));
    }
    if let Some(user) = message.get("from")
        && let Some(identity) = telegram_identity(user)
    {
        return Some((identity, user_name(user)));
    }
    let chat = message.get("chat")?;
    Some((telegram_identity(chat)?, chat_name(chat)))
}

/// `<chat id>:<message id>` of a message (the shape of every message external id); the
/// error names the update field the message came in (`what`).
pub fn message_key(message: &Value, what: &str) -> Result<String, String> {
    if !message.is_object() {
        return Err(format!("`{what}` is {}, not a message object", type_name(message)));
    }
    let chat = require_id(message, "chat/id", what)?;
    let id = require_id(message, "message_id", what)?;
    Ok(format!("{chat}:{id}"))
}

/// Whether `message` has content a customer sent (see [`CONTENT_FIELDS`]).
pub fn has_content(message: &Value) -> bool {
    CONTENT_FIELDS.iter().any(|f| message.get(*f).is_some_and(|v| !v.is_null()))
}

/// The channel event kind of a service message: from [`SERVICE_KINDS`], else its first
/// field that is neither common nor content, with `_` turned into `-`, else `service-message`.
pub fn service_kind(message: &Value) -> String {
    if let Some((_, kind)) = SERVICE_KINDS.iter().find(|(field, _)| message.get(*field).is_some()) {
        return (*kind).to_owned();
    }
    let Some(fields) = message.as_object() else { return "service-message".to_owned() };
    fields
        .keys()
        .find(|k| !COMMON_FIELDS.contains(&k.as_str()))
        .map(|k| {
            k.chars()
                .filter_map(|c| match c {
                    'a'..='z' | '0'..='9' => Some(c),
                    'A'..='Z' => Some(c.to_ascii_lowercase()),
                    '_' | '-' => Some('-'),
                    _ => None,
                })
                .collect::<String>()
        })
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "service-message".to_owned())
}

/// The attachment extras: `type` (the Telegram field the attachment came from) and the
/// listed `keys` of `object` that are present (the object's own `type`, e.g. a sticker's,
/// as `<telegram type>_type`).
fn attachment_extras(telegram_type: &str, object: &Value, keys: &[&str]) -> String {
    let mut extras = Map::new();
    extras.insert("type".to_owned(), Value::String(telegram_type.to_owned()));
    for key in keys {
        if let Some(v) = object.get(*key).filter(|v| !v.is_null()) {
            let name = if *key == "type" { format!("{telegram_type}_type") } else { (*key).to_owned() };
            extras.insert(name, v.clone());
        }
    }
    Value::Object(extras).to_string()
}

/// An attachment with no fields set.
fn empty_attachment(kind: AttachmentKind) -> Attachment {
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

/// A file attachment (photo size, document, audio...): `file_id` as the provider id,
/// `mime_type`, `file_name`, `file_size`, and extras with the `type` and `keys`.
fn file_attachment(kind: AttachmentKind, telegram_type: &str, file: &Value, keys: &[&str]) -> Attachment {
    let mut keys_with_unique = vec!["file_unique_id"];
    keys_with_unique.extend_from_slice(keys);
    Attachment {
        provider_id: str_at(file, "file_id"),
        mime_type: str_at(file, "mime_type"),
        file_name: str_at(file, "file_name"),
        size: file.get("file_size").and_then(Value::as_u64),
        extras: Some(attachment_extras(telegram_type, file, &keys_with_unique)),
        ..empty_attachment(kind)
    }
}

/// The largest of the sizes Telegram sends a photo in (by pixels, then bytes).
pub fn largest_photo(sizes: &[Value]) -> Option<&Value> {
    let dim = |p: &Value, k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
    sizes.iter().max_by_key(|p| (dim(p, "width").saturating_mul(dim(p, "height")), dim(p, "file_size")))
}

/// The MIME type of a sticker: animated (`.tgs`), video (`.webm`) or static (`.webp`).
fn sticker_mime(sticker: &Value) -> &'static str {
    if sticker.get("is_animated").and_then(Value::as_bool) == Some(true) {
        "application/x-tgsticker"
    } else if sticker.get("is_video").and_then(Value::as_bool) == Some(true) {
        "video/webm"
    } else {
        "image/webp"
    }
}

/// A `location` or `venue` attachment at `point` (an object with `latitude`/`longitude`).
fn location_attachment(point: &Value, extras: String) -> Attachment {
    let coordinate = |k: &str| point.get(k).and_then(Value::as_f64);
    let location = match (coordinate("latitude"), coordinate("longitude")) {
        (Some(latitude), Some(longitude)) => Some(GeoPoint { latitude, longitude }),
        _ => None,
    };
    Attachment { location, extras: Some(extras), ..empty_attachment(AttachmentKind::Location) }
}

/// The attachments of a message: the largest photo size (image); document; audio; voice;
/// video; video note and animation (video); sticker; venue or location (location, with a
/// geo-point; a venue's title and address in extras); contact (contact, the card in
/// extras); dice, poll, game, story, invoice, giveaway, paid media and checklist (other,
/// the object in extras). The `document` Telegram adds beside an `animation` for older
/// clients is skipped. File ids are the provider ids.
pub fn map_attachments(message: &Value) -> Vec<Attachment> {
    let mut out = Vec::new();
    if let Some(sizes) = message.get("photo").and_then(Value::as_array)
        && let Some(photo) = largest_photo(sizes)
    {
        out.push(file_attachment(AttachmentKind::Image, "photo", photo, &["width", "height"]));
    }
    let animation = message.get("animation").filter(|v| v.is_object());
    if let Some(document) = message.get("document").filter(|v| v.is_object())
        && animation.is_none()
    {
        out.push(file_attachment(AttachmentKind::Document, "document", document, &[]));
    }
    if let Some(audio) = message.get("audio").filter(|v| v.is_object()) {
        out.push(file_attachment(AttachmentKind::Audio, "audio", audio, &["duration", "performer", "title"]));
    }
    if let Some(voice) = message.get("voice").filter(|v| v.is_object()) {
        out.push(file_attachment(AttachmentKind::Voice, "voice", voice, &["duration"]));
    }
    if let Some(video) = message.get("video").filter(|v| v.is_object()) {
        out.push(file_attachment(AttachmentKind::Video, "video", video, &["duration", "width", "height"]));
    }
    if let Some(note) = message.get("video_note").filter(|v| v.is_object()) {
        out.push(file_attachment(AttachmentKind::Video, "video_note", note, &["duration", "length"]));
    }
    if let Some(animation) = animation {
        out.push(file_attachment(
            AttachmentKind::Video,
            "animation",
            animation,
            &["duration", "width", "height"],
        ));
    }
    if let Some(sticker) = message.get("sticker").filter(|v| v.is_object()) {
        let keys = ["emoji", "set_name", "type", "is_animated", "is_video", "width", "height"];
        let mut attachment = file_attachment(AttachmentKind::Sticker, "sticker", sticker, &keys);
        attachment.mime_type = attachment.mime_type.or_else(|| Some(sticker_mime(sticker).to_owned()));
        out.push(attachment);
    }
    if let Some(venue) = message.get("venue").filter(|v| v.is_object()) {
        let point = venue.get("location").unwrap_or(&Value::Null);
        let keys =
            ["title", "address", "foursquare_id", "foursquare_type", "google_place_id", "google_place_type"];
        out.push(location_attachment(point, attachment_extras("venue", venue, &keys)));
    } else if let Some(location) = message.get("location").filter(|v| v.is_object()) {
        let keys = ["horizontal_accuracy", "live_period", "heading", "proximity_alert_radius"];
        out.push(location_attachment(location, attachment_extras("location", location, &keys)));
    }
    if let Some(contact) = message.get("contact").filter(|v| v.is_object()) {
        let keys = ["phone_number", "first_name", "last_name", "user_id", "vcard"];
        out.push(Attachment {
            extras: Some(attachment_extras("contact", contact, &keys)),
            ..empty_attachment(AttachmentKind::Contact)
        });
    }
    for field in [
        "dice",
        "poll",
        "game",
        "story",
        "invoice",
        "giveaway",
        "giveaway_winners",
        "paid_media",
        "checklist",
    ] {
        if let Some(object) = message.get(field).filter(|v| !v.is_null()) {
            let mut extras = Map::new();
            extras.insert("type".to_owned(), Value::String(field.to_owned()));
            extras.insert(field.to_owned(), object.clone());
            out.push(Attachment {
                extras: Some(Value::Object(extras).to_string()),
                ..empty_attachment(AttachmentKind::Other)
            });
        }
    }
    out
}

/// A phone number as Telegram gives it, with the `+` it omits added.
pub fn with_plus(phone: &str) -> String {
    let phone = phone.trim();
    if phone.starts_with('+') { phone.to_owned() } else { format!("+{phone}") }
}

/// The identity hint of a contact share of the sender's own number (`contact.user_id` is
/// the sender): `telegram:<from.id>` is also `phone:+<number>`, reason `contact-share`.
/// Someone else's card gives no hint.
pub fn contact_hint(message: &Value) -> Option<IdentityHint> {
    let contact = message.get("contact")?;
    let owner = id_at(contact, "user_id")?;
    let sender = id_at(message, "from/id")?;
    let phone = str_at(contact, "phone_number").filter(|p| !p.trim().is_empty())?;
    (owner == sender).then(|| IdentityHint {
        known: Identity { kind: IDENTITY_KIND.to_owned(), value: sender },
        also: Identity { kind: "phone".to_owned(), value: with_plus(&phone) },
        reason: "contact-share".to_owned(),
    })
}

/// The text of a message: its `text`, else its `caption`.
fn message_text(message: &Value) -> Option<String> {
    str_at(message, "text").or_else(|| str_at(message, "caption"))
}

/// The `extras` of an inbound message: `update_id`, `update_type` and the message fields in
/// [`MESSAGE_EXTRAS`] that are present (chat, sender, entities, business connection,
/// media group, forward info...).
fn message_extras(message: &Value, update_id: i64, update_type: &str) -> String {
    let mut extras = Map::new();
    extras.insert("update_id".to_owned(), json!(update_id));
    extras.insert("update_type".to_owned(), json!(update_type));
    for key in MESSAGE_EXTRAS {
        if let Some(v) = message.get(*key).filter(|v| !v.is_null()) {
            extras.insert((*key).to_owned(), v.clone());
        }
    }
    Value::Object(extras).to_string()
}

/// A channel event payload: `object` (an update's member) with `update_id` and
/// `update_type` added.
fn payload(object: &Value, update_id: i64, update_type: &str) -> String {
    let mut map = object.as_object().cloned().unwrap_or_default();
    map.insert("update_id".to_owned(), json!(update_id));
    map.insert("update_type".to_owned(), json!(update_type));
    Value::Object(map).to_string()
}

/// Whether a business message was written by the business account rather than the
/// customer: in a private business chat the chat is the customer, so a different `from`
/// is the account (or a bot acting for it).
pub fn is_business_account_message(message: &Value) -> bool {
    let private = message.pointer("/chat/type").and_then(Value::as_str) == Some("private");
    match (id_at(message, "from/id"), id_at(message, "chat/id")) {
        (Some(from), Some(chat)) => private && from != chat,
        _ => false,
    }
}

/// The events of a `message` or `business_message` (`update_type`): a customer message
/// (after its contact-share hint, if any), a service message as a channel event, or a
/// business account's own message as a `business-message-sent` channel event.
pub fn map_message(message: &Value, update_id: i64, update_type: &str) -> Result<Vec<Event>, String> {
    let key = message_key(message, update_type)?;
    let sender = message_sender(message);
    let business = update_type == "business_message";
    if (business && is_business_account_message(message)) || !has_content(message) {
        let kind = if business && is_business_account_message(message) {
            "business-message-sent".to_owned()
        } else {
            service_kind(message)
        };
        let customer =
            if business { message.get("chat").and_then(telegram_identity) } else { sender.map(|(id, _)| id) };
        return Ok(vec![Event::Channel(ChannelEvent {
            kind,
            external_id: key,
            customer,
            payload: payload(message, update_id, update_type),
            at: time_at(message, "date"),
        })]);
    }
    let Some((sender, sender_name)) = sender else {
        return Err(format!("`{update_type}` has no `from.id`"));
    };
    let chat = require_id(message, "chat/id", update_type)?;
    let private = message.pointer("/chat/type").and_then(Value::as_str) == Some("private");
    let reply_to = id_at(message, "reply_to_message/message_id").map(|id| format!("{chat}:{id}"));
    let mut events = Vec::new();
    if let Some(hint) = contact_hint(message) {
        events.push(Event::IdentityHint(hint));
    }
    events.push(Event::Message(InboundMessage {
        external_id: key,
        sender,
        sender_name,
        text: message_text(message),
        attachments: map_attachments(message),
        reply_to,
        thread: (!private).then_some(chat),
        sent_at: time_at(message, "date"),
        extras: Some(message_extras(message, update_id, update_type)),
    }));
    Ok(events)
}

/// The edit id of an edited message: `<chat id>:<message id>@<edit_date>`, or
/// `@u<update_id>` when Telegram gave no `edit_date`.
fn edit_key(key: &str, message: &Value, update_id: i64) -> String {
    match message.get("edit_date").and_then(Value::as_i64) {
        Some(date) => format!("{key}@{date}"),
        None => format!("{key}@u{update_id}"),
    }
}

/// The event of an `edited_message` or `edited_business_message` (`update_type`): the
/// edit of `<chat id>:<message id>`, or a `business-message-edited` channel event when the
/// business account edited its own message.
pub fn map_edit(message: &Value, update_id: i64, update_type: &str) -> Result<Event, String> {
    let key = message_key(message, update_type)?;
    let edit_id = edit_key(&key, message, update_id);
    if update_type == "edited_business_message" && is_business_account_message(message) {
        return Ok(Event::Channel(ChannelEvent {
            kind: "business-message-edited".to_owned(),
            external_id: edit_id,
            customer: message.get("chat").and_then(telegram_identity),
            payload: payload(message, update_id, update_type),
            at: time_at(message, "edit_date"),
        }));
    }
    let Some((sender, _)) = message_sender(message) else {
        return Err(format!("`{update_type}` has no `from.id`"));
    };
    Ok(Event::MessageEdited(MessageEdit {
        external_id: key,
        edit_id,
        sender,
        text: message_text(message),
        edited_at: time_at(message, "edit_date"),
    }))
}

/// The event of a `channel_post` or `edited_channel_post`: a `channel-post` channel event
/// with no customer, keyed `<chat id>:<message id>` (plus `@<edit_date>` for an edit).
pub fn map_channel_post(post: &Value, update_id: i64, update_type: &str) -> Result<Event, String> {
    let key = message_key(post, update_type)?;
    let edited = update_type == "edited_channel_post";
    Ok(Event::Channel(ChannelEvent {
        kind: "channel-post".to_owned(),
        external_id: if edited { edit_key(&key, post, update_id) } else { key },
        customer: None,
        payload: payload(post, update_id, update_type),
        at: if edited { time_at(post, "edit_date") } else { time_at(post, "date") },
    }))
}

/// The event of a `callback_query` (a press on an inline button): a `callback-query`
/// channel event for `from`, keyed by the query id, whose payload has the `data`, the
/// `chat_instance`, the `from` user and a reference to the message the button was on
/// (`message.external_id` = `<chat id>:<message id>`, `accessible` false when Telegram no
/// longer gives its content) or the `inline_message_id`.
pub fn map_callback_query(query: &Value, update_id: i64) -> Result<Event, String> {
    let id = require_id(query, "id", "callback_query")?;
    let customer = query.get("from").and_then(telegram_identity);
    if customer.is_none() {
        return Err("`callback_query` has no `from.id`".to_owned());
    }
    let message = query.get("message").filter(|m| m.is_object()).map(|m| {
        let chat = id_at(m, "chat/id");
        let message_id = id_at(m, "message_id");
        json!({
            "chat_id": chat,
            "message_id": message_id,
            "external_id": chat.as_ref().zip(message_id.as_ref()).map(|(c, i)| format!("{c}:{i}")),
            "accessible": m.get("date").and_then(Value::as_i64).is_some_and(|d| d != 0),
            "business_connection_id": m.get("business_connection_id"),
        })
    });
    let mut body = Map::new();
    body.insert("update_id".to_owned(), json!(update_id));
    body.insert("update_type".to_owned(), json!("callback_query"));
    body.insert("id".to_owned(), json!(id));
    for key in ["from", "data", "chat_instance", "inline_message_id", "game_short_name"] {
        if let Some(v) = query.get(key).filter(|v| !v.is_null()) {
            body.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(message) = message {
        body.insert("message".to_owned(), message);
    }
    Ok(Event::Channel(ChannelEvent {
        kind: "callback-query".to_owned(),
        external_id: id,
        customer,
        payload: Value::Object(body).to_string(),
        at: None,
    }))
}

/// The event of a `message_reaction`: a `reaction` channel event for `user` (none for an
/// anonymous `actor_chat`), keyed `<chat id>:<message id>:<user or actor chat id>@<date>`.
pub fn map_reaction(reaction: &Value, update_id: i64) -> Result<Event, String> {
    let key = message_key(reaction, "message_reaction")?;
    let customer = reaction.get("user").and_then(telegram_identity);
    let actor = id_at(reaction, "user/id").or_else(|| id_at(reaction, "actor_chat/id")).unwrap_or_default();
    let date = reaction.get("date").and_then(Value::as_i64).unwrap_or(0);
    Ok(Event::Channel(ChannelEvent {
        kind: "reaction".to_owned(),
        external_id: format!("{key}:{actor}@{date}"),
        customer,
        payload: payload(reaction, update_id, "message_reaction"),
        at: time_at(reaction, "date"),
    }))
}

/// The event of a `chat_join_request`: a `chat-join-request` channel event for `from`,
/// keyed `<chat id>:<user id>@<date>`.
pub fn map_join_request(request: &Value, update_id: i64) -> Result<Event, String> {
    let chat = require_id(request, "chat/id", "chat_join_request")?;
    let user = require_id(request, "from/id", "chat_join_request")?;
    let date = request.get("date").and_then(Value::as_i64).unwrap_or(0);
    Ok(Event::Channel(ChannelEvent {
        kind: "chat-join-request".to_owned(),
        external_id: format!("{chat}:{user}@{date}"),
        customer: Some(Identity { kind: IDENTITY_KIND.to_owned(), value: user }),
        payload: payload(request, update_id, "chat_join_request"),
        at: time_at(request, "date"),
    }))
}

/// The event of a `poll` (a new state of a poll the bot sent or stopped): a `poll` channel
/// event with no customer, keyed `<poll id>#<update_id>` (a poll has no time of its own).
pub fn map_poll(poll: &Value, update_id: i64) -> Result<Event, String> {
    let id = require_id(poll, "id", "poll")?;
    Ok(Event::Channel(ChannelEvent {
        kind: "poll".to_owned(),
        external_id: format!("{id}#{update_id}"),
        customer: None,
        payload: payload(poll, update_id, "poll"),
        at: None,
    }))
}

/// The event of a `poll_answer`: a `poll-answer` channel event for `user` (none when an
/// anonymous `voter_chat` voted), keyed `<poll id>:<voter id>#<update_id>`.
pub fn map_poll_answer(answer: &Value, update_id: i64) -> Result<Event, String> {
    let poll = require_id(answer, "poll_id", "poll_answer")?;
    let customer = answer.get("user").and_then(telegram_identity);
    let voter = id_at(answer, "user/id").or_else(|| id_at(answer, "voter_chat/id")).unwrap_or_default();
    Ok(Event::Channel(ChannelEvent {
        kind: "poll-answer".to_owned(),
        external_id: format!("{poll}:{voter}#{update_id}"),
        customer,
        payload: payload(answer, update_id, "poll_answer"),
        at: None,
    }))
}

/// The event of a `my_chat_member` (the bot's own membership changed, e.g. a user blocked
/// it: the customer is `from`) or a `chat_member` (someone's membership changed: the
/// customer is that member): a `chat-member` channel event keyed
/// `<chat id>:<member id>@<date>`.
pub fn map_chat_member(update: &Value, update_id: i64, update_type: &str) -> Result<Event, String> {
    let chat = require_id(update, "chat/id", update_type)?;
    let member = require_id(update, "new_chat_member/user/id", update_type)?;
    let date = update.get("date").and_then(Value::as_i64).unwrap_or(0);
    let customer = if update_type == "my_chat_member" {
        update.get("from").and_then(telegram_identity)
    } else {
        Some(Identity { kind: IDENTITY_KIND.to_owned(), value: member.clone() })
    };
    Ok(Event::Channel(ChannelEvent {
        kind: "chat-member".to_owned(),
        external_id: format!("{chat}:{member}@{date}"),
        customer,
        payload: payload(update, update_id, update_type),
        at: time_at(update, "date"),
    }))
}

/// The `update_id` of an update; the error says what is wrong.
pub fn update_id(update: &Value) -> Result<i64, String> {
    if !update.is_object() {
        return Err(format!("the update is {}, not a JSON object", type_name(update)));
    }
    match update.get("update_id") {
        None | Some(Value::Null) => Err("the update has no `update_id`".to_owned()),
        Some(v) => v.as_i64().ok_or_else(|| format!("`update_id` must be an integer, not {v}")),
    }
}

/// The events of one Telegram update (see the module docs for the table). An update of a
/// type not in [`UPDATE_TYPES`] gives no events; an update without an integer
/// `update_id`, or a message without `chat.id` / `message_id`, is an error.
pub fn map_update(update: &Value) -> Result<Vec<Event>, String> {
    let id = update_id(update)?;
    let Some((update_type, object)) =
        UPDATE_TYPES.iter().find_map(|t| update.get(*t).filter(|v| !v.is_null()).map(|v| (*t, v)))
    else {
        return Ok(Vec::new());
    };
    if !object.is_object() {
        return Err(format!("`{update_type}` is {}, not an object", type_name(object)));
    }
    match update_type {
        "message" | "business_message" => map_message(object, id, update_type),
        "edited_message" | "edited_business_message" => map_edit(object, id, update_type).map(|e| vec![e]),
        "channel_post" | "edited_channel_post" => map_channel_post(object, id, update_type).map(|e| vec![e]),
        "callback_query" => map_callback_query(object, id).map(|e| vec![e]),
        "message_reaction" => map_reaction(object, id).map(|e| vec![e]),
        "chat_join_request" => map_join_request(object, id).map(|e| vec![e]),
        "poll" => map_poll(object, id).map(|e| vec![e]),
        "poll_answer" => map_poll_answer(object, id).map(|e| vec![e]),
        _ => map_chat_member(object, id, update_type).map(|e| vec![e]),
    }
}

/// Checks the webhook's secret token (the `X-Telegram-Bot-Api-Secret-Token` header) against
/// the configured `secret`, in constant time. No secret (or an empty one) refuses every
/// webhook as misconfigured.
pub fn check_secret(secret: Option<&str>, header: Option<&str>) -> Result<(), WebhookError> {
    let Some(secret) = secret.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(WebhookError::Misconfigured(
            "secret `secret` is not set: set it to the secret_token given to setWebhook; until then \
             every webhook is refused"
                .to_owned(),
        ));
    };
    match header {
        None => {
            Err(WebhookError::Unauthorized("missing `X-Telegram-Bot-Api-Secret-Token` header".to_owned()))
        }
        Some(given) if signature::token_matches(given.trim(), secret) => Ok(()),
        Some(_) => Err(WebhookError::Unauthorized(
            "`X-Telegram-Bot-Api-Secret-Token` does not match the secret `secret`".to_owned(),
        )),
    }
}

/// Handles one webhook: a `POST` with the right secret token and one update as JSON,
/// mapped by [`map_update`] and answered `200` with an empty body.
pub fn handle(request: &HttpRequest, secret: Option<&str>) -> Result<WebhookOutcome, WebhookError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(WebhookError::Malformed(format!("Telegram webhooks are POSTs, got {}", request.method)));
    }
    check_secret(secret, request.header(SECRET_HEADER))?;
    let update: Value = json::parse(&request.body).map_err(WebhookError::Malformed)?;
    let events = map_update(&update).map_err(WebhookError::Malformed)?;
    Ok(WebhookOutcome::accept(events))
}

// ---------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------

/// One Bot API call: the method (`sendMessage`...) and its JSON parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// The Bot API method.
    pub method: &'static str,
    /// Its parameters, sent as the JSON body.
    pub params: Map<String, Value>,
}

/// Options an outbound message's `extras` may carry; each is passed to Telegram as is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendOptions {
    /// The business connection to send through (needed to answer a business message).
    pub business_connection_id: Option<Value>,
    /// `MarkdownV2`, `HTML` or `Markdown`, for the text and captions.
    pub parse_mode: Option<Value>,
    /// A keyboard; put on the last message sent.
    pub reply_markup: Option<Value>,
    /// Send silently.
    pub disable_notification: Option<Value>,
    /// The forum topic to send to.
    pub message_thread_id: Option<Value>,
}

/// The [`SendOptions`] in an outbound message's `extras` (a JSON object; other members are
/// ignored). `null` members count as absent; extras that are not a JSON object are an error.
pub fn send_options(extras: Option<&str>) -> Result<SendOptions, String> {
    let Some(text) = extras.filter(|t| !t.trim().is_empty()) else { return Ok(SendOptions::default()) };
    let value: Value = serde_json::from_str(text).map_err(|e| format!("extras are not valid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err(format!("extras must be a JSON object, not {}", type_name(&value)));
    };
    let take = |key: &str| map.get(key).filter(|v| !v.is_null()).cloned();
    Ok(SendOptions {
        business_connection_id: take("business_connection_id"),
        parse_mode: take("parse_mode"),
        reply_markup: take("reply_markup"),
        disable_notification: take("disable_notification"),
        message_thread_id: take("message_thread_id"),
    })
}

/// A chat id for the Bot API: a number when it is one (digits, maybe after a `-`), else
/// the text (`@channelname`).
fn chat_id_json(chat: &str) -> Value {
    let digits = chat.strip_prefix('-').unwrap_or(chat);
    match chat.parse::<i64>() {
        Ok(n) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => json!(n),
        _ => Value::String(chat.to_owned()),
    }
}

/// The message id a `reply-to` of the form `<chat id>:<message id>` points at, if that
/// chat is `chat`.
pub fn reply_message_id(reply_to: Option<&str>, chat: &str) -> Option<i64> {
    let (reply_chat, id) = reply_to?.trim().rsplit_once(':')?;
    (reply_chat == chat).then(|| id.parse::<i64>().ok()).flatten()
}

/// The JSON member of an attachment's `extras`, if the extras are a JSON object with it.
fn extra(attachment: &Attachment, key: &str) -> Option<Value> {
    let extras: Value = serde_json::from_str(attachment.extras.as_deref()?).ok()?;
    extras.get(key).filter(|v| !v.is_null()).cloned()
}

/// The Telegram `type` an attachment came from (its extras' `type`), e.g. `animation`.
fn telegram_type(attachment: &Attachment) -> Option<String> {
    extra(attachment, "type").and_then(|v| v.as_str().map(str::to_owned))
}

/// The name of an attachment kind, for error messages.
fn kind_name(kind: AttachmentKind) -> &'static str {
    match kind {
        AttachmentKind::Image => "image",
        AttachmentKind::Audio => "audio",
        AttachmentKind::Voice => "voice",
        AttachmentKind::Video => "video",
        AttachmentKind::Document => "document",
        AttachmentKind::Sticker => "sticker",
        AttachmentKind::Location => "location",
        AttachmentKind::Contact => "contact",
        AttachmentKind::Other => "other",
    }
}

/// The Bot API call that sends attachment number `index` (from 1), and whether the method
/// takes a caption. Files go by provider id (a `file_id`) if set, else by URL. Images and
/// videos that are GIFs (or came as a Telegram `animation`) use `sendAnimation`; a video
/// that came as a `video_note` uses `sendVideoNote`. A location with a venue's `title` and
/// `address` in its extras uses `sendVenue`; a contact needs `phone_number` and
/// `first_name` in its extras. The attachment's own caption is kept.
pub fn attachment_call(attachment: &Attachment, index: usize) -> Result<(ApiCall, bool), String> {
    let kind = kind_name(attachment.kind);
    let mut params = Map::new();
    let (method, takes_caption) = match attachment.kind {
        AttachmentKind::Location => {
            let Some(point) = &attachment.location else {
                return Err(format!("attachment {index} (location) has no location"));
            };
            params.insert("latitude".to_owned(), json!(point.latitude));
            params.insert("longitude".to_owned(), json!(point.longitude));
            match (extra(attachment, "title"), extra(attachment, "address")) {
                (Some(title), Some(address)) => {
                    params.insert("title".to_owned(), title);
                    params.insert("address".to_owned(), address);
                    ("sendVenue", false)
                }
                _ => ("sendLocation", false),
            }
        }
        AttachmentKind::Contact => {
            let (Some(phone), Some(first)) =
                (extra(attachment, "phone_number"), extra(attachment, "first_name"))
            else {
                return Err(format!(
                    "attachment {index} (contact) needs `phone_number` and `first_name` in its extras"
                ));
            };
            params.insert("phone_number".to_owned(), phone);
            params.insert("first_name".to_owned(), first);
            for key in ["last_name", "vcard"] {
                if let Some(v) = extra(attachment, key) {
                    params.insert(key.to_owned(), v);
                }
            }
            ("sendContact", false)
        }
        AttachmentKind::Other => {
            return Err(format!("attachment {index} has kind `other`, which Telegram cannot send"));
        }
        file_kind => {
            let Some(file) = attachment
                .provider_id
                .as_deref()
                .or(attachment.url.as_deref())
                .map(str::trim)
                .filter(|f| !f.is_empty())
            else {
                return Err(format!("attachment {index} ({kind}) has neither a provider-id nor a url"));
            };
            let ttype = telegram_type(attachment);
            let gif = attachment.mime_type.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("image/gif"));
            let (method, field, caption) = match file_kind {
                AttachmentKind::Image if gif => ("sendAnimation", "animation", true),
                AttachmentKind::Image => ("sendPhoto", "photo", true),
                AttachmentKind::Document => ("sendDocument", "document", true),
                AttachmentKind::Audio => ("sendAudio", "audio", true),
                AttachmentKind::Voice => ("sendVoice", "voice", true),
                AttachmentKind::Video if gif || ttype.as_deref() == Some("animation") => {
                    ("sendAnimation", "animation", true)
                }
                AttachmentKind::Video if ttype.as_deref() == Some("video_note") => {
                    ("sendVideoNote", "video_note", false)
                }
                AttachmentKind::Video => ("sendVideo", "video", true),
                _ => ("sendSticker", "sticker", false),
            };
            params.insert(field.to_owned(), Value::String(file.to_owned()));
            if caption && let Some(text) = attachment.caption.as_deref().filter(|c| !c.trim().is_empty()) {
                params.insert("caption".to_owned(), Value::String(text.to_owned()));
            }
            (method, caption)
        }
    };
    Ok((ApiCall { method, params }, takes_caption))
}

/// The Bot API calls that send `message`, in order (pure: no token, no URL).
///
/// The recipient must be a `telegram` identity (its value is the chat id); templates are
/// refused. The text goes by `sendMessage`, each attachment by [`attachment_call`]; when
/// there is exactly one attachment, it takes a caption, has none of its own and the text
/// fits in [`MAX_CAPTION_LENGTH`], the text becomes its caption instead. Every call gets
/// `chat_id` and the `business_connection_id`, `message_thread_id` and
/// `disable_notification` of the extras; the first gets `reply_parameters` when `reply-to`
/// is a message of the same chat; calls with text get the `parse_mode`; the last gets the
/// `reply_markup`. The error is the reason to reject the message.
pub fn plan_send(message: &OutboundMessage) -> Result<Vec<ApiCall>, String> {
    if message.to.kind != IDENTITY_KIND {
        return Err(format!(
            "cannot send to a `{}` identity: the Telegram channel sends to `telegram` ids",
            message.to.kind
        ));
    }
    if message.template.is_some() {
        return Err("Telegram has no templates: send text instead".to_owned());
    }
    let chat = message.to.value.trim();
    if chat.is_empty() {
        return Err("the recipient's telegram id is empty".to_owned());
    }
    let options = send_options(message.extras.as_deref())?;
    let text = message.text.as_deref().filter(|t| !t.trim().is_empty());
    let mut attachments = message
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| attachment_call(a, i + 1))
        .collect::<Result<Vec<_>, _>>()?;

    let mut calls = Vec::new();
    if let Some(text) = text {
        let as_caption = match attachments.as_mut_slice() {
            [(call, true)]
                if !call.params.contains_key("caption") && text.chars().count() <= MAX_CAPTION_LENGTH =>
            {
                call.params.insert("caption".to_owned(), Value::String(text.to_owned()));
                true
            }
            _ => false,
        };
        if !as_caption {
            let mut params = Map::new();
            params.insert("text".to_owned(), Value::String(text.to_owned()));
            calls.push(ApiCall { method: "sendMessage", params });
        }
    }
    calls.extend(attachments.into_iter().map(|(call, _)| call));
    if calls.is_empty() {
        return Err("nothing to send: the message has no text and no attachments".to_owned());
    }

    let reply = reply_message_id(message.reply_to.as_deref(), chat);
    let last = calls.len() - 1;
    for (i, call) in calls.iter_mut().enumerate() {
        let mut params = Map::new();
        params.insert("chat_id".to_owned(), chat_id_json(chat));
        params.append(&mut call.params);
        put(&mut params, "business_connection_id", &options.business_connection_id);
        put(&mut params, "message_thread_id", &options.message_thread_id);
        put(&mut params, "disable_notification", &options.disable_notification);
        if params.contains_key("text") || params.contains_key("caption") {
            put(&mut params, "parse_mode", &options.parse_mode);
        }
        if i == last {
            put(&mut params, "reply_markup", &options.reply_markup);
        }
        if i == 0
            && let Some(id) = reply
        {
            params.insert("reply_parameters".to_owned(), json!({ "message_id": id }));
        }
        call.params = params;
    }
    Ok(calls)
}

/// Sets `key` to `value` in `params` when there is a value.
fn put(params: &mut Map<String, Value>, key: &str, value: &Option<Value>) {
    if let Some(v) = value {
        params.insert(key.to_owned(), v.clone());
    }
}

/// `api-base` as configured, trimmed and without a trailing `/`; unset or empty is
/// [`DEFAULT_API_BASE`].
pub fn api_base(configured: Option<&str>) -> String {
    match configured.map(str::trim).map(|b| b.trim_end_matches('/')).filter(|b| !b.is_empty()) {
        Some(base) => base.to_owned(),
        None => DEFAULT_API_BASE.to_owned(),
    }
}

/// The HTTP request of one call: a JSON POST of its parameters to
/// `{api_base}/bot{token}/{method}`. The URL holds the token: never log it.
pub fn build_request(api_base: &str, token: &str, call: &ApiCall) -> Request {
    let url = format!("{}/bot{token}/{}", api_base.trim_end_matches('/'), call.method);
    Request::post_json(&url, &Value::Object(call.params.clone()))
}

/// `text` with every occurrence of `token` (also percent-encoded) replaced by
/// [`TOKEN_PLACEHOLDER`].
pub fn redact(text: &str, token: &str) -> String {
    let token = token.trim();
    if token.is_empty() {
        return text.to_owned();
    }
    text.replace(token, TOKEN_PLACEHOLDER)
        .replace(&token.replace(':', "%3A"), TOKEN_PLACEHOLDER)
        .replace(&token.replace(':', "%3a"), TOKEN_PLACEHOLDER)
}

/// A delivery result with the token removed from its reason.
fn redact_result(result: DeliveryResult, token: &str) -> DeliveryResult {
    match result {
        DeliveryResult::Rejected(reason) => DeliveryResult::Rejected(redact(&reason, token)),
        DeliveryResult::RetryLater(hint) => DeliveryResult::RetryLater(RetryHint {
            after_ms: hint.after_ms,
            reason: redact(&hint.reason, token),
        }),
        accepted => accepted,
    }
}

/// What a Bot API answer to a send method means.
///
/// - `ok: true` (with a 2xx status): accepted as `<chat id>:<result.message_id>`, the chat
///   id from `result.chat.id` or else `chat_id` (`fallback_id` if there is no message id);
/// - a 2xx without `ok: true`: rejected, naming it;
/// - `error_code` (or status) 429: retried after `parameters.retry_after` seconds;
/// - 5xx: retried later;
/// - 401 or 404: rejected, saying the bot token was refused;
/// - any other error (400 "Bad Request: chat not found", 403 "Forbidden: bot was blocked
///   by the user"...): rejected with Telegram's `description`.
pub fn classify_response(status: u16, body: &[u8], chat_id: &str, fallback_id: &str) -> DeliveryResult {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |path: &str| parsed.as_ref().and_then(|v| json::pointer(v, path));
    let ok = field("ok").and_then(Value::as_bool) == Some(true);
    if (200..300).contains(&status) {
        if !ok {
            return DeliveryResult::Rejected(format!(
                "Telegram answered {status} without \"ok\": true: {}",
                snippet(body)
            ));
        }
        let chat = field("result/chat").and_then(|c| id_at(c, "id")).unwrap_or_else(|| chat_id.to_owned());
        return DeliveryResult::Accepted(match field("result").and_then(|r| id_at(r, "message_id")) {
            Some(id) => format!("{chat}:{id}"),
            None => fallback_id.to_owned(),
        });
    }
    let code =
        field("error_code").and_then(Value::as_u64).map_or(status, |c| u16::try_from(c).unwrap_or(status));
    let description = field("description")
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty())
        .map_or_else(|| snippet(body), str::to_owned);
    if code == 429 || status == 429 {
        let after_ms =
            field("parameters/retry_after").and_then(Value::as_u64).map(|s| s.saturating_mul(1000));
        return DeliveryResult::RetryLater(RetryHint {
            after_ms,
            reason: format!("Telegram is rate limiting the bot (429): {description}"),
        });
    }
    if code >= 500 || status >= 500 {
        return DeliveryResult::RetryLater(RetryHint {
            after_ms: None,
            reason: format!("Telegram answered {code}: {description}"),
        });
    }
    if code == 401 || code == 404 {
        return DeliveryResult::Rejected(format!(
            "Telegram refused the bot token ({code}: {description}): check the secret `bot-token`"
        ));
    }
    let migrated = parsed
        .as_ref()
        .and_then(|v| id_at(v, "parameters/migrate_to_chat_id"))
        .map_or_else(String::new, |id| format!(" (the group is now the supergroup {id})"));
    DeliveryResult::Rejected(format!("Telegram refused the message ({code}): {description}{migrated}"))
}

/// What a failed request means: a destination the manifest does not allow, or a URL that
/// cannot be used, is rejected; transport failures are retried later. (Reasons may quote the
/// URL: [`deliver`] redacts them.)
pub fn classify_error(error: &HttpError) -> DeliveryResult {
    match error {
        HttpError::Denied => {
            DeliveryResult::Rejected("the api-base host is not in capabilities.http".to_owned())
        }
        HttpError::InvalidRequest(m) => DeliveryResult::Rejected(format!("api-base cannot be used: {m}")),
        other => DeliveryResult::RetryLater(RetryHint {
            after_ms: None,
            reason: format!("calling the Telegram Bot API failed: {other}"),
        }),
    }
}

/// The outcome of [`deliver`]: the delivery result, and warnings for the log.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// What became of the message.
    pub result: DeliveryResult,
    /// Problems worth logging that did not change the result: a later part of a
    /// multi-part message that failed after the first part was sent.
    pub warnings: Vec<String>,
}

/// Sends `message` through `transport` (the real one is [`seam_sdk::http::send`]) with the
/// bot `token` and the configured `api_base` (see [`api_base`]), and classifies the
/// outcome.
///
/// The calls of [`plan_send`] are made in order. If the first fails, its result is the
/// result. Once one part has been sent the message is accepted with that part's id, since
/// a retry would send it again: a later failure stops the remaining parts and is reported
/// in [`Delivery::warnings`]. No reason or warning contains the token.
pub fn deliver(
    message: &OutboundMessage,
    api_base_config: Option<&str>,
    token: Option<&str>,
    mut transport: impl FnMut(&Request) -> Result<Response, HttpError>,
) -> Delivery {
    let done = |result| Delivery { result, warnings: Vec::new() };
    let calls = match plan_send(message) {
        Ok(calls) => calls,
        Err(reason) => return done(DeliveryResult::Rejected(reason)),
    };
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return done(DeliveryResult::Rejected("bot-token is not set".to_owned()));
    };
    let base = api_base(api_base_config);
    let chat = message.to.value.trim();
    let mut sent: Option<String> = None;
    let mut warnings = Vec::new();
    let total = calls.len();
    for (i, call) in calls.iter().enumerate() {
        let result = match transport(&build_request(&base, token, call)) {
            Ok(response) => classify_response(response.status, &response.body, chat, &message.id),
            Err(error) => classify_error(&error),
        };
        let result = redact_result(result, token);
        match (result, &sent) {
            (DeliveryResult::Accepted(id), None) => sent = Some(id),
            (DeliveryResult::Accepted(_), Some(_)) => {}
            (failed, None) => return done(failed),
            (failed, Some(first)) => {
                let reason = match failed {
                    DeliveryResult::Rejected(r) => r,
                    DeliveryResult::RetryLater(hint) => hint.reason,
                    DeliveryResult::Accepted(_) => String::new(),
                };
                warnings.push(format!(
                    "part {} of {total} ({}) failed after {first} was sent, the rest is not sent: {reason}",
                    i + 1,
                    call.method
                ));
                break;
            }
        }
    }
    let result = match sent {
        Some(id) => DeliveryResult::Accepted(id),
        None => DeliveryResult::Rejected("nothing was sent".to_owned()),
    };
    Delivery { result, warnings }
}

/// The Telegram connector.
pub struct TelegramConnector;

impl Connector for TelegramConnector {
    fn describe() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> {
        handle(&request, config::secret("secret").as_deref())
    }

    fn send(message: OutboundMessage) -> DeliveryResult {
        let delivery = deliver(
            &message,
            config::get("api-base").as_deref(),
            config::secret("bot-token").as_deref(),
            seam_sdk::http::send,
        );
        for warning in &delivery.warnings {
            log::warn(&format!("message {}: {warning}", message.id));
        }
        match &delivery.result {
            DeliveryResult::Accepted(_) => {}
            DeliveryResult::Rejected(reason) => {
                log::warn(&format!("message {} rejected: {reason}", message.id));
            }
            DeliveryResult::RetryLater(hint) => {
                log::info(&format!("message {} to retry: {}", message.id, hint.reason));
            }
        }
        delivery.result
    }
}

seam_sdk::export_connector!(TelegramConnector);

#[cfg(test)]
mod tests;
