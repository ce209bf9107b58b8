//! Inbound: the body of a WhatsApp Business Account webhook into Seam events. Pure
//! functions over parsed JSON, tested natively.

use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Map, Value, json};
use std::collections::HashSet;

/// The `object` of every WhatsApp Business Account webhook.
pub const WABA_OBJECT: &str = "whatsapp_business_account";

/// The identity kind of WhatsApp users; the value is their `wa_id`.
pub const IDENTITY_KIND: &str = "whatsapp";

/// The `reason` of the hint linking `whatsapp:<wa_id>` to `phone:+<wa_id>`.
pub const HINT_REASON: &str = "whatsapp-id";

/// `whatsapp:<wa_id>`.
pub fn whatsapp_identity(wa_id: &str) -> Identity {
    Identity { kind: IDENTITY_KIND.to_owned(), value: wa_id.to_owned() }
}

/// Whether `wa_id` is a phone number the way WhatsApp writes it: 7 to 15 ASCII digits (the
/// country code first, no `+`, as E.164 allows). Placeholders and business-scoped user ids
/// (`US.1349...`) are not.
pub fn is_phone_wa_id(wa_id: &str) -> bool {
    (7..=15).contains(&wa_id.len()) && wa_id.bytes().all(|b| b.is_ascii_digit())
}

/// The hint that `whatsapp:<wa_id>` is the person with phone `+<wa_id>`.
pub fn identity_hint(wa_id: &str) -> IdentityHint {
    IdentityHint {
        known: whatsapp_identity(wa_id),
        also: Identity { kind: "phone".to_owned(), value: format!("+{wa_id}") },
        reason: HINT_REASON.to_owned(),
    }
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

/// Converts Unix seconds, a string of digits (`"1697043223"`, as in `timestamp`) or an
/// integer (as in `time`), to milliseconds. The error says what was found.
pub fn parse_seconds(value: &Value) -> Result<i64, String> {
    let seconds = match value {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    seconds.and_then(|s| s.checked_mul(1000)).ok_or_else(|| format!("is not Unix seconds: {value}"))
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

/// Like [`optional_array`], but a missing value is an error.
fn required_array<'a>(object: &'a Value, key: &str, path: &str) -> Result<&'a [Value], String> {
    match object.get(key) {
        None | Some(Value::Null) => Err(format!("{path}: missing `{key}`")),
        _ => optional_array(object, key, path),
    }
}

/// The time in Unix seconds at member `key` as milliseconds; `None` when missing or `null`.
fn optional_time(object: &Value, key: &str, path: &str) -> Result<Option<i64>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => parse_seconds(value).map(Some).map_err(|e| format!("{path}: `{key}` {e}")),
    }
}

/// The non-empty text at `path` (strings as they are, numbers printed), for content fields
/// where anything else simply means "not given".
fn text(value: &Value, path: &str) -> Option<String> {
    json::text_at(value, path).filter(|s| !s.is_empty())
}

/// `<code>: <text> (<details>)` for one of Meta's error objects, where `<text>` is the
/// first of the members `text_keys` that is set and `<details>` is `error_data.details`.
/// Parts the error lacks are left out; `None` when it has none of them.
pub fn error_summary(error: &Value, text_keys: &[&str]) -> Option<String> {
    let code = text(error, "code");
    let message = text_keys.iter().find_map(|key| text(error, key));
    let details = text(error, "error_data/details").filter(|d| Some(d) != message.as_ref());
    let mut summary = match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => return details,
    };
    if let Some(details) = details {
        summary.push_str(&format!(" ({details})"));
    }
    Some(summary)
}

/// Events collected from one webhook, and the senders already given their identity hint.
#[derive(Default)]
struct Collector {
    events: Vec<Event>,
    hinted: HashSet<String>,
}

impl Collector {
    /// Adds `event` concerning the user `sender` (a `wa_id`: who sent a message, or whom a
    /// channel event or consent change is about), preceded by that user's identity hint if
    /// this is their first event in the webhook.
    fn push_about(&mut self, sender: Option<&str>, event: Event) {
        if let Some(wa_id) = sender
            && is_phone_wa_id(wa_id)
            && self.hinted.insert(wa_id.to_owned())
        {
            self.events.push(Event::IdentityHint(identity_hint(wa_id)));
        }
        self.events.push(event);
    }
}

/// A channel event about the user `customer` (a `wa_id`), if any.
fn channel_event(
    kind: &str,
    external_id: &str,
    customer: Option<&str>,
    payload: Value,
    at: Option<i64>,
) -> Event {
    Event::Channel(ChannelEvent {
        kind: kind.to_owned(),
        external_id: external_id.to_owned(),
        customer: customer.map(whatsapp_identity),
        payload: payload.to_string(),
        at,
    })
}

/// Every event in a webhook body (see the crate docs for the table).
///
/// The body must be an object with a string `object`; another object than
/// [`WABA_OBJECT`] gives no events. `entry[].changes[]` must be arrays of objects with a
/// string `field`; the changes Seam reads must have an object `value`, and their messages,
/// statuses and echoes an `id` (and messages a `from`, except `system` ones). Errors name
/// the entry, the change and the item.
pub fn map_webhook(body: &Value) -> Result<Vec<Event>, String> {
    check_object(body, "body")?;
    match optional_str(body, "object", "body")? {
        None => return Err("body has no `object`: not a Meta webhook".to_owned()),
        Some(WABA_OBJECT) => {}
        Some(_) => return Ok(Vec::new()),
    }
    let mut out = Collector::default();
    for (e, entry) in required_array(body, "entry", "body")?.iter().enumerate() {
        let path = format!("entry {e}");
        check_object(entry, &path)?;
        for (c, change) in required_array(entry, "changes", &path)?.iter().enumerate() {
            let path = format!("entry {e}, change {c}");
            check_object(change, &path)?;
            let field = required_str(change, "field", &path)?;
            map_change(entry, field, change.get("value"), &format!("{path} (`{field}`)"), &mut out)?;
        }
    }
    Ok(out.events)
}

/// The events of one change with `field` and `value`, in `entry`.
fn map_change(
    entry: &Value,
    field: &str,
    value: Option<&Value>,
    path: &str,
    out: &mut Collector,
) -> Result<(), String> {
    let value = || match value {
        Some(value @ Value::Object(_)) => Ok(value),
        Some(other) => Err(format!("{path}: `value` must be an object, not {}", type_name(other))),
        None => Err(format!("{path}: missing `value`")),
    };
    match field {
        "messages" => map_messages(value()?, path, out),
        "message_template_status_update" => {
            out.events.push(template_status(entry, value()?, path)?);
            Ok(())
        }
        "user_preferences" => map_user_preferences(value()?, path, out),
        "smb_message_echoes" => map_echoes(value()?, path, out),
        _ => Ok(()),
    }
}

/// What the messages of one `messages` change share.
struct Change<'a> {
    /// `value.contacts`: the senders' profiles.
    contacts: &'a [Value],
    /// `value.errors`: errors about the whole change (e.g. a payload Meta could not build).
    errors: &'a [Value],
    /// `value.metadata`: the business number the messages were sent to.
    metadata: Option<&'a Value>,
}

impl Change<'_> {
    /// The contact whose `wa_id` is `wa_id`.
    fn contact(&self, wa_id: &str) -> Option<&Value> {
        self.contacts.iter().find(|c| c.get("wa_id").and_then(Value::as_str) == Some(wa_id))
    }

    /// The profile name of `wa_id`.
    fn name(&self, wa_id: &str) -> Option<String> {
        self.contact(wa_id).and_then(|c| text(c, "profile/name"))
    }
}

/// The events of a `messages` change: its messages, then its statuses.
fn map_messages(value: &Value, path: &str, out: &mut Collector) -> Result<(), String> {
    let change = Change {
        contacts: optional_array(value, "contacts", path)?,
        errors: optional_array(value, "errors", path)?,
        metadata: value.get("metadata").filter(|m| m.is_object()),
    };
    for (m, message) in optional_array(value, "messages", path)?.iter().enumerate() {
        map_message(message, &change, &format!("{path}, message {m}"), out)?;
    }
    for (s, status) in optional_array(value, "statuses", path)?.iter().enumerate() {
        if let Some(update) = map_status(status, &format!("{path}, status {s}"))? {
            out.events.push(Event::Delivery(update));
        }
    }
    Ok(())
}

/// The event of one message (after its sender's hint, if it is their first).
fn map_message(message: &Value, change: &Change, path: &str, out: &mut Collector) -> Result<(), String> {
    check_object(message, path)?;
    let id = required_str(message, "id", path)?;
    let path = &format!("{path} ({id})");
    let kind = optional_str(message, "type", path)?.unwrap_or("unknown");
    let sent_at = optional_time(message, "timestamp", path)?;
    let from = optional_str(message, "from", path)?.filter(|f| !f.is_empty());
    let name = from.and_then(|f| change.name(f));
    if kind == "system" {
        // A user id change comes without `from`: the event then concerns nobody known.
        let mut payload = message.get("system").and_then(Value::as_object).cloned().unwrap_or_default();
        if let Some(identity) = message.get("identity") {
            payload.insert("identity".to_owned(), identity.clone());
        }
        payload.insert("sender_name".to_owned(), json!(name));
        payload.insert("message".to_owned(), message.clone());
        out.push_about(from, channel_event("system", id, from, Value::Object(payload), sent_at));
        return Ok(());
    }
    let from = from.ok_or_else(|| format!("{path}: missing `from`"))?;
    let event = match kind {
        "reaction" => {
            let emoji = text(message, "reaction/emoji");
            let payload = json!({
                "message_id": text(message, "reaction/message_id"),
                "removed": emoji.is_none(),
                "emoji": emoji,
                "sender_name": name,
                "message": message,
            });
            channel_event("reaction", id, Some(from), payload, sent_at)
        }
        "revoke" => {
            let payload = json!({
                "original_message_id": text(message, "revoke/original_message_id"),
                "sender_name": name,
                "message": message,
            });
            channel_event("message-deleted", id, Some(from), payload, sent_at)
        }
        "request_welcome" => {
            let payload = json!({ "sender_name": name, "message": message });
            channel_event("chat-opened", id, Some(from), payload, sent_at)
        }
        "edit" => Event::MessageEdited(map_edit(message, id, from, sent_at, path)?),
        _ => Event::Message(map_inbound(message, kind, id, from, name, sent_at, change)),
    };
    out.push_about(Some(from), event);
    Ok(())
}

/// What a message (or the new version of an edited one) carries.
#[derive(Default)]
struct Content {
    text: Option<String>,
    attachments: Vec<Attachment>,
    /// Members added to the message's extras (`reply`, `order`).
    extras: Map<String, Value>,
}

/// The content of `message` of type `kind`. Content fields are read leniently: a missing
/// one is simply absent.
fn content(message: &Value, kind: &str) -> Content {
    let mut content = Content::default();
    match kind {
        "text" => content.text = text(message, "text/body"),
        "image" | "video" | "audio" | "document" | "sticker" => {
            if let Some(media) = message.get(kind).filter(|m| m.is_object()) {
                content.attachments.push(media_attachment(kind, media));
            }
        }
        "location" => {
            if let Some(place) = message.get("location").filter(|l| l.is_object()) {
                content.attachments.push(location_attachment(place));
            }
        }
        "contacts" => {
            let cards = message.get("contacts").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            content.attachments.extend(cards.iter().map(contact_attachment));
        }
        "interactive" => interactive(message, &mut content),
        "button" => {
            if let Some(button) = message.get("button").and_then(Value::as_object) {
                let mut reply = button.clone();
                reply.insert("type".to_owned(), json!("button"));
                content.text = text(message, "button/text");
                content.extras.insert("reply".to_owned(), Value::Object(reply));
            }
        }
        "order" => {
            if let Some(order) = message.get("order") {
                content.text = text(order, "text");
                content.extras.insert("order".to_owned(), order.clone());
            }
        }
        _ => {}
    }
    content
}

/// An interactive reply: the title of a button or list row, or the body of a flow
/// completion (`nfm_reply`) as text; the reply object (with its `type`, and a flow's
/// `response_json` parsed as `response`) as extras `reply`.
fn interactive(message: &Value, content: &mut Content) {
    let Some(sub_type) = message.get("interactive").and_then(|i| i.get("type")).and_then(Value::as_str)
    else {
        return;
    };
    let Some(reply) = message.get("interactive").and_then(|i| i.get(sub_type)).and_then(Value::as_object)
    else {
        return;
    };
    let mut reply = reply.clone();
    let key = if sub_type == "nfm_reply" { "body" } else { "title" };
    content.text = reply.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(Value::String(raw)) = reply.get("response_json")
        && let Ok(parsed) = serde_json::from_str::<Value>(raw)
    {
        reply.insert("response".to_owned(), parsed);
    }
    reply.insert("type".to_owned(), json!(sub_type));
    content.extras.insert("reply".to_owned(), Value::Object(reply));
}

/// A media attachment of message type `kind` from its media object: the media id as
/// `provider-id`, the whole object (sha256, `animated`, `voice`...) as extras.
fn media_attachment(kind: &str, media: &Value) -> Attachment {
    let kind = match kind {
        "image" => AttachmentKind::Image,
        "video" => AttachmentKind::Video,
        "audio" if media.get("voice") == Some(&Value::Bool(true)) => AttachmentKind::Voice,
        "audio" => AttachmentKind::Audio,
        "sticker" => AttachmentKind::Sticker,
        _ => AttachmentKind::Document,
    };
    Attachment {
        kind,
        url: text(media, "url"),
        provider_id: text(media, "id"),
        mime_type: text(media, "mime_type"),
        file_name: text(media, "filename"),
        size: media.get("file_size").and_then(Value::as_u64),
        caption: text(media, "caption"),
        location: None,
        extras: Some(media.to_string()),
    }
}

/// A location attachment; the place object (name, address, url) as extras.
fn location_attachment(place: &Value) -> Attachment {
    let coordinate = |key: &str| place.get(key).and_then(Value::as_f64);
    Attachment {
        kind: AttachmentKind::Location,
        url: None,
        provider_id: None,
        mime_type: None,
        file_name: None,
        size: None,
        caption: None,
        location: match (coordinate("latitude"), coordinate("longitude")) {
            (Some(latitude), Some(longitude)) => Some(GeoPoint { latitude, longitude }),
            _ => None,
        },
        extras: Some(place.to_string()),
    }
}

/// A contact card attachment; the card (name, phones, emails...) as extras.
fn contact_attachment(card: &Value) -> Attachment {
    Attachment {
        kind: AttachmentKind::Contact,
        url: None,
        provider_id: None,
        mime_type: None,
        file_name: None,
        size: None,
        caption: None,
        location: None,
        extras: Some(card.to_string()),
    }
}

/// An inbound message. Its extras are a JSON object: `message` (the message as Meta sent
/// it), `contact` (the sender's entry of `contacts`), `metadata` (the business number),
/// `forwarded` / `frequently_forwarded` (when true), `referral`, `errors` (of the message
/// and of the change), and per type `reply` or `order`.
fn map_inbound(
    message: &Value,
    kind: &str,
    id: &str,
    from: &str,
    name: Option<String>,
    sent_at: Option<i64>,
    change: &Change,
) -> InboundMessage {
    let content = content(message, kind);
    let mut extras = Map::new();
    extras.insert("message".to_owned(), message.clone());
    if let Some(contact) = change.contact(from) {
        extras.insert("contact".to_owned(), contact.clone());
    }
    if let Some(metadata) = change.metadata {
        extras.insert("metadata".to_owned(), metadata.clone());
    }
    for flag in ["forwarded", "frequently_forwarded"] {
        if message.get("context").and_then(|c| c.get(flag)) == Some(&Value::Bool(true)) {
            extras.insert(flag.to_owned(), Value::Bool(true));
        }
    }
    if let Some(referral) = message.get("referral") {
        extras.insert("referral".to_owned(), referral.clone());
    }
    let own_errors = message.get("errors").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let errors: Vec<Value> = own_errors.iter().chain(change.errors).cloned().collect();
    if !errors.is_empty() {
        extras.insert("errors".to_owned(), Value::Array(errors));
    }
    extras.extend(content.extras);
    InboundMessage {
        external_id: id.to_owned(),
        sender: whatsapp_identity(from),
        sender_name: name,
        text: content.text,
        attachments: content.attachments,
        reply_to: text(message, "context/id"),
        thread: None,
        sent_at,
        extras: Some(Value::Object(extras).to_string()),
    }
}

/// An edit of `edit.original_message_id`; the edit's own message `id` is the edit id (each
/// edit is a new message). The new text is the text, or the new caption of a media message.
fn map_edit(
    message: &Value,
    id: &str,
    from: &str,
    edited_at: Option<i64>,
    path: &str,
) -> Result<MessageEdit, String> {
    let edit = message.get("edit").unwrap_or(&Value::Null);
    check_object(edit, &format!("{path}: `edit`"))?;
    let original = required_str(edit, "original_message_id", &format!("{path}: `edit`"))?;
    let new = edit.get("message").unwrap_or(&Value::Null);
    let content = content(new, new.get("type").and_then(Value::as_str).unwrap_or("unknown"));
    Ok(MessageEdit {
        external_id: original.to_owned(),
        edit_id: id.to_owned(),
        sender: whatsapp_identity(from),
        text: content.text.or_else(|| content.attachments.iter().find_map(|a| a.caption.clone())),
        edited_at,
    })
}

/// The delivery update of one status object: `sent`, `delivered`, `read` or `failed` (with
/// the first error as the reason, see [`error_summary`]); `None` for any other status.
/// `id` and `status` are required.
pub fn map_status(status: &Value, path: &str) -> Result<Option<DeliveryUpdate>, String> {
    check_object(status, path)?;
    let id = required_str(status, "id", path)?;
    let state = match required_str(status, "status", path)? {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => return Ok(None),
    };
    let reason = match state {
        DeliveryStatus::Failed => optional_array(status, "errors", path)?
            .first()
            .and_then(|error| error_summary(error, &["title", "message"])),
        _ => None,
    };
    Ok(Some(DeliveryUpdate {
        provider_id: id.to_owned(),
        recipient: optional_str(status, "recipient_id", path)?
            .filter(|r| !r.is_empty())
            .map(whatsapp_identity),
        status: state,
        reason,
        at: optional_time(status, "timestamp", path)?,
    }))
}

/// A `template-status` channel event: the change's value as payload, the entry's `time`
/// as its time; the external id joins the template id, the status and the time.
fn template_status(entry: &Value, value: &Value, path: &str) -> Result<Event, String> {
    let at = optional_time(entry, "time", path)?;
    let external_id = format!(
        "{}:{}:{}",
        text(value, "message_template_id").unwrap_or_default(),
        text(value, "event").unwrap_or_default(),
        text(entry, "time").unwrap_or_default(),
    );
    Ok(channel_event("template-status", &external_id, None, value.clone(), at))
}

/// The events of a `user_preferences` change: a marketing opt-out (`marketing_messages`
/// `stop`) or opt-in (`resume`) of a known user is a consent change; any other preference
/// a `user-preferences` channel event with the preference as payload. An item without
/// `wa_id` belongs to the change's only contact, if it has exactly one.
fn map_user_preferences(value: &Value, path: &str, out: &mut Collector) -> Result<(), String> {
    let contacts = optional_array(value, "contacts", path)?;
    let only_contact = match contacts {
        [contact] => text(contact, "wa_id"),
        _ => None,
    };
    for (p, item) in optional_array(value, "user_preferences", path)?.iter().enumerate() {
        let path = format!("{path}, preference {p}");
        check_object(item, &path)?;
        let wa_id = text(item, "wa_id").or_else(|| only_contact.clone());
        let category = text(item, "category").unwrap_or_default();
        let choice = text(item, "value").unwrap_or_default();
        let at = optional_time(item, "timestamp", &path)?;
        let granted = match (category.as_str(), choice.as_str()) {
            ("marketing_messages", "stop") => Some(false),
            ("marketing_messages", "resume") => Some(true),
            _ => None,
        };
        match (granted, &wa_id) {
            (Some(granted), Some(wa_id)) => {
                let consent = ConsentChange {
                    customer: whatsapp_identity(wa_id),
                    granted,
                    reason: format!("{category}:{choice}"),
                    at,
                };
                out.push_about(Some(wa_id), Event::Consent(consent));
            }
            _ => {
                let external_id = format!(
                    "{}:{category}:{choice}:{}",
                    wa_id.as_deref().unwrap_or_default(),
                    text(item, "timestamp").unwrap_or_default()
                );
                let event =
                    channel_event("user-preferences", &external_id, wa_id.as_deref(), item.clone(), at);
                out.push_about(wa_id.as_deref(), event);
            }
        }
    }
    Ok(())
}

/// The events of an `smb_message_echoes` change: each message the business sent from the
/// WhatsApp Business app becomes a `message-echo` channel event about its recipient, with
/// its `type`, its text and the echo as Meta sent it.
fn map_echoes(value: &Value, path: &str, out: &mut Collector) -> Result<(), String> {
    for (n, echo) in optional_array(value, "message_echoes", path)?.iter().enumerate() {
        let path = format!("{path}, echo {n}");
        check_object(echo, &path)?;
        let id = required_str(echo, "id", &path)?;
        let to = optional_str(echo, "to", &path)?.filter(|t| !t.is_empty());
        let at = optional_time(echo, "timestamp", &path)?;
        let kind = optional_str(echo, "type", &path)?.unwrap_or("unknown");
        let payload = json!({ "type": kind, "text": content(echo, kind).text, "message": echo });
        out.push_about(to, channel_event("message-echo", id, to, payload, at));
    }
    Ok(())
}
