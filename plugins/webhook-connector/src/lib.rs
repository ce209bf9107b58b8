//! Generic JSON webhook connector: any system that can POST JSON becomes a Seam channel.
//!
//! # Inbound
//! A webhook is a `POST` whose body is one message object, or (with `field-events` set) holds
//! an array of message objects at that path. Each message's fields are found by the
//! `/`-separated JSON paths in the `field-*` config keys; with the defaults a message is:
//!
//! ```json
//! {"id": "m-1", "from": "u-42", "name": "Anna", "text": "Hi", "timestamp": 1700000000,
//!  "reply_to": "m-0", "thread": "t-7",
//!  "attachments": [{"kind": "image", "url": "https://...", "mime_type": "image/png",
//!                   "file_name": "a.png", "caption": "look"}]}
//! ```
//!
//! `id` and `from` are required; everything else is optional. The whole object is kept as
//! the message's `extras`. The connector answers `200 {"accepted": N}`.
//!
//! If the secret `secret` is set, a webhook must carry `x-seam-signature: sha256=<hex
//! HMAC-SHA256 of the raw body keyed with the secret>` or `x-seam-token: <secret>`. If it is
//! not set, webhooks are accepted **without authentication**.
//!
//! # Outbound
//! `send` POSTs the message as JSON (see [`outbound_body`]) to `send-url`, with the optional
//! `authorization` header from the secret `send-auth-header` and an `idempotency-key` header
//! holding Seam's message id, and maps the answer with [`classify_response`].

#![warn(missing_docs)]

pub use seam_sdk::delivery::{SNIPPET_CHARS, retry_after_ms, snippet};
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Value, json};

/// Header carrying `sha256=<hex HMAC-SHA256 of the raw body>` keyed with the `secret`.
pub const SIGNATURE_HEADER: &str = "x-seam-signature";

/// Header carrying the `secret` itself, for senders that cannot compute an HMAC.
pub const TOKEN_HEADER: &str = "x-seam-token";

/// The identity kind given to senders when `field-sender-kind` is not set.
pub const DEFAULT_SENDER_KIND: &str = "webhook";

/// Unix times whose magnitude is below this are seconds; the rest are milliseconds.
pub const SECONDS_LIMIT: i64 = 100_000_000_000;

/// Where the fields of an inbound message are found in a webhook body: one `/`-separated
/// JSON path (as in [`seam_sdk::json::pointer`]) per field. An empty path for an optional
/// field means the field is not mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    /// Path of the message's unique id (`field-id`); required in every message.
    pub id: String,
    /// Path of the sender's identifier (`field-sender`); required in every message.
    pub sender: String,
    /// Not a path: the fixed identity kind of every sender (`field-sender-kind`).
    pub sender_kind: String,
    /// Path of the sender's display name (`field-name`).
    pub name: String,
    /// Path of the message text (`field-text`).
    pub text: String,
    /// Path of the time the message was sent (`field-time`), see [`parse_time`].
    pub time: String,
    /// Path of the id of the message this one answers (`field-reply-to`).
    pub reply_to: String,
    /// Path of the thread key (`field-thread`).
    pub thread: String,
    /// Path of the array of message objects in the body (`field-events`); empty: the body
    /// itself is one message object.
    pub events: String,
    /// Path of a phone number the sender gave (`field-phone`), e.g. a shared contact; when
    /// present it becomes an identity hint linking the sender to `phone:<number>`.
    pub phone: String,
    /// Path of an email address the sender gave (`field-email`): an identity hint likewise.
    pub email: String,
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap {
            id: "id".to_owned(),
            sender: "from".to_owned(),
            sender_kind: DEFAULT_SENDER_KIND.to_owned(),
            name: "name".to_owned(),
            text: "text".to_owned(),
            time: "timestamp".to_owned(),
            reply_to: "reply_to".to_owned(),
            thread: "thread".to_owned(),
            events: String::new(),
            phone: String::new(),
            email: String::new(),
        }
    }
}

impl FieldMap {
    /// The map built from config values looked up with `get`: a key that is not set keeps
    /// its default; values are trimmed.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let pick = |key: &str, default: String| get(key).map_or(default, |v| v.trim().to_owned());
        let d = FieldMap::default();
        FieldMap {
            id: pick("field-id", d.id),
            sender: pick("field-sender", d.sender),
            sender_kind: pick("field-sender-kind", d.sender_kind),
            name: pick("field-name", d.name),
            text: pick("field-text", d.text),
            time: pick("field-time", d.time),
            reply_to: pick("field-reply-to", d.reply_to),
            thread: pick("field-thread", d.thread),
            events: pick("field-events", d.events),
            phone: pick("field-phone", d.phone),
            email: pick("field-email", d.email),
        }
    }

    /// The map from this plugin's config.
    pub fn from_config() -> Self {
        Self::from_lookup(config::get)
    }

    /// Checks that the map can produce messages: the id and sender paths are not empty and
    /// the sender kind is a valid identity kind. The error names the config key.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("config key `field-id` is empty: every message needs an id".to_owned());
        }
        if self.sender.is_empty() {
            return Err("config key `field-sender` is empty: every message needs a sender".to_owned());
        }
        if !is_identity_kind(&self.sender_kind) {
            return Err(format!(
                "config key `field-sender-kind` is `{}`: use lower-case ASCII letters, digits \
                 and `-`",
                self.sender_kind
            ));
        }
        Ok(())
    }
}

/// Whether `kind` is a usable identity kind: not empty, only lower-case ASCII letters,
/// digits and `-`.
pub fn is_identity_kind(kind: &str) -> bool {
    !kind.is_empty() && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// What the channel is, given the configured sender identity kind.
pub fn channel_info(identity_kind: &str) -> ChannelInfo {
    ChannelInfo {
        kind: "webhook".to_owned(),
        display_name: "Generic webhook".to_owned(),
        features: ChannelFeatures::TEXT | ChannelFeatures::MEDIA,
        max_text_length: None,
        identity_kind: identity_kind.to_owned(),
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

/// Checks a webhook's authentication against the configured `secret`.
///
/// With no secret every webhook is accepted. Otherwise either `signature` (the
/// `x-seam-signature` header: `sha256=<hex HMAC-SHA256 of body>`) or `token` (the
/// `x-seam-token` header: the secret itself) must be valid; both are compared in constant
/// time. An empty secret is a configuration error rather than "no authentication".
pub fn check_auth(
    secret: Option<&str>,
    signature: Option<&str>,
    token: Option<&str>,
    body: &[u8],
) -> Result<(), WebhookError> {
    let Some(secret) = secret else {
        return Ok(());
    };
    if secret.is_empty() {
        return Err(WebhookError::Misconfigured(
            "secret `secret` is set but empty: set a real value, or remove it to accept \
             unauthenticated webhooks"
                .to_owned(),
        ));
    }
    if let Some(sig) = signature
        && signature::verify_hmac_sha256_hex(secret.as_bytes(), body, sig)
    {
        return Ok(());
    }
    if let Some(tok) = token
        && signature::token_matches(tok, secret)
    {
        return Ok(());
    }
    Err(WebhookError::Unauthorized(match (signature, token) {
        (None, None) => format!("missing `{SIGNATURE_HEADER}` or `{TOKEN_HEADER}` header"),
        (Some(_), None) => format!(
            "`{SIGNATURE_HEADER}` does not match the body (expected sha256=<hex HMAC-SHA256 of \
             the raw body keyed with the secret>)"
        ),
        (None, Some(_)) => format!("`{TOKEN_HEADER}` does not match the secret"),
        (Some(_), Some(_)) => format!("neither `{SIGNATURE_HEADER}` nor `{TOKEN_HEADER}` is valid"),
    }))
}

/// The message objects of a webhook body: the body itself if `events_path` is empty,
/// otherwise the elements of the array at `events_path` (`/` means the body is the array).
pub fn message_objects<'a>(body: &'a Value, events_path: &str) -> Result<Vec<&'a Value>, String> {
    if events_path.is_empty() {
        return Ok(vec![body]);
    }
    match json::pointer(body, events_path) {
        Some(Value::Array(items)) => Ok(items.iter().collect()),
        Some(other) => Err(format!("`{events_path}` (field-events) is {}, not an array", type_name(other))),
        None => Err(format!("body has no `{events_path}` (field-events)")),
    }
}

/// The text at `path` in message `index`: strings as they are, numbers and booleans printed.
/// An empty path, a missing value, `null` and `""` are `None`; an object or array is an
/// error naming the path and its config `key`.
fn text_field(message: &Value, path: &str, key: &str, index: usize) -> Result<Option<String>, String> {
    if path.is_empty() {
        return Ok(None);
    }
    match json::pointer(message, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(format!(
            "message {index}: `{path}` ({key}) must be a string or a number, not {}",
            type_name(other)
        )),
    }
}

/// Like [`text_field`], but a missing value is an error naming the path and index.
fn required_field(message: &Value, path: &str, key: &str, index: usize) -> Result<String, String> {
    text_field(message, path, key, index)?.ok_or_else(|| format!("message {index}: missing `{path}` ({key})"))
}

/// Converts a Unix time to milliseconds: integers (or strings of digits) whose magnitude is
/// below [`SECONDS_LIMIT`] are seconds, larger ones milliseconds; fractional seconds such as
/// `1700000000.25` are accepted too. The error says what was found.
pub fn parse_time(value: &Value) -> Result<i64, String> {
    let bad = || format!("is not Unix seconds or milliseconds: {value}");
    let scaled = match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(integer_millis(i)),
            None => n.as_f64().and_then(float_millis),
        },
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<i64>() {
                Ok(i) => Some(integer_millis(i)),
                Err(_) if s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') => {
                    s.parse::<f64>().ok().and_then(float_millis)
                }
                Err(_) => None,
            }
        }
        _ => None,
    };
    scaled.ok_or_else(bad)
}

fn integer_millis(i: i64) -> i64 {
    if i.unsigned_abs() < SECONDS_LIMIT.unsigned_abs() { i * 1000 } else { i }
}

fn float_millis(f: f64) -> Option<i64> {
    if !f.is_finite() {
        return None;
    }
    let ms = if f.abs() < SECONDS_LIMIT as f64 { f * 1000.0 } else { f }.round();
    // i64::MAX as f64 rounds up to 2^63, so `<` keeps the cast in range.
    (ms.abs() < i64::MAX as f64).then_some(ms as i64)
}

/// The attachment kind named `name` (`image`, `audio`, `voice`, `video`, `document`,
/// `sticker`, `location`, `contact`); anything else is [`AttachmentKind::Other`].
pub fn attachment_kind(name: &str) -> AttachmentKind {
    match name.trim().to_ascii_lowercase().as_str() {
        "image" => AttachmentKind::Image,
        "audio" => AttachmentKind::Audio,
        "voice" => AttachmentKind::Voice,
        "video" => AttachmentKind::Video,
        "document" => AttachmentKind::Document,
        "sticker" => AttachmentKind::Sticker,
        "location" => AttachmentKind::Location,
        "contact" => AttachmentKind::Contact,
        _ => AttachmentKind::Other,
    }
}

/// The name of `kind` as used in webhook and send bodies; the inverse of [`attachment_kind`].
pub fn attachment_kind_name(kind: AttachmentKind) -> &'static str {
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

/// The string member `key` of `object`: missing, `null` and `""` are `None`.
fn string_member(object: &Value, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
        Some(other) => Err(format!("`{key}` must be a string, not {}", type_name(other))),
    }
}

/// One attachment object: `kind`, `url`, `mime_type`, `file_name`, `caption` and
/// `provider_id` (strings), `size` (bytes), and for `location` attachments `latitude` and
/// `longitude` (numbers), all optional. A missing or unknown `kind` is
/// [`AttachmentKind::Other`], whose `extras` keep the whole object.
pub fn map_attachment(item: &Value) -> Result<Attachment, String> {
    if !item.is_object() {
        return Err(format!("is {}, not a JSON object", type_name(item)));
    }
    let kind = string_member(item, "kind")?.map_or(AttachmentKind::Other, |k| attachment_kind(&k));
    let size = match item.get("size") {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(v.as_u64().ok_or_else(|| format!("`size` must be a whole number of bytes, not {v}"))?)
        }
    };
    let coordinate = |key: &str| item.get(key).and_then(Value::as_f64);
    let location = match (coordinate("latitude"), coordinate("longitude")) {
        (Some(latitude), Some(longitude)) => Some(GeoPoint { latitude, longitude }),
        _ => None,
    };
    let other = matches!(kind, AttachmentKind::Other);
    Ok(Attachment {
        kind,
        url: string_member(item, "url")?,
        provider_id: string_member(item, "provider_id")?,
        mime_type: string_member(item, "mime_type")?,
        file_name: string_member(item, "file_name")?,
        size,
        caption: string_member(item, "caption")?,
        location,
        extras: other.then(|| item.to_string()),
    })
}

/// The `attachments` array of message `index`, mapped with [`map_attachment`]; missing or
/// `null` is none. Errors name the message and the attachment.
pub fn map_attachments(message: &Value, index: usize) -> Result<Vec<Attachment>, String> {
    let items = match message.get("attachments") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(format!("message {index}: `attachments` must be an array, not {}", type_name(other)));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(n, item)| map_attachment(item).map_err(|e| format!("message {index}: attachment {n}: {e}")))
        .collect()
}

/// Maps message object number `index` (counted from 0 within the webhook) to an inbound
/// message using `fields`; the whole object becomes the message's `extras`. Errors name the
/// message index and the JSON path.
pub fn map_message(message: &Value, index: usize, fields: &FieldMap) -> Result<InboundMessage, String> {
    if !message.is_object() {
        return Err(format!("message {index} is {}, not a JSON object", type_name(message)));
    }
    let external_id = required_field(message, &fields.id, "field-id", index)?;
    let sender = required_field(message, &fields.sender, "field-sender", index)?;
    let sent_at = match (!fields.time.is_empty()).then(|| json::pointer(message, &fields.time)) {
        None | Some(None) | Some(Some(Value::Null)) => None,
        Some(Some(value)) => Some(
            parse_time(value).map_err(|e| format!("message {index}: `{}` (field-time) {e}", fields.time))?,
        ),
    };
    Ok(InboundMessage {
        external_id,
        sender: Identity { kind: fields.sender_kind.clone(), value: sender },
        sender_name: text_field(message, &fields.name, "field-name", index)?,
        text: text_field(message, &fields.text, "field-text", index)?,
        attachments: map_attachments(message, index)?,
        reply_to: text_field(message, &fields.reply_to, "field-reply-to", index)?,
        thread: text_field(message, &fields.thread, "field-thread", index)?,
        sent_at,
        extras: Some(message.to_string()),
    })
}

/// Every message in a webhook body (see [`message_objects`] and [`map_message`]).
pub fn map_body(body: &Value, fields: &FieldMap) -> Result<Vec<InboundMessage>, String> {
    message_objects(body, &fields.events)?
        .into_iter()
        .enumerate()
        .map(|(index, message)| map_message(message, index, fields))
        .collect()
}

/// Identity hints in message object `index`: the sender gave a phone (`field-phone`) or an
/// email (`field-email`), so the sender and that identity are one person.
pub fn map_hints(
    message: &Value,
    index: usize,
    fields: &FieldMap,
    sender: &Identity,
) -> Result<Vec<IdentityHint>, String> {
    let mut hints = Vec::new();
    for (path, key, kind) in
        [(&fields.phone, "field-phone", "phone"), (&fields.email, "field-email", "email")]
    {
        if let Some(value) = text_field(message, path, key, index)? {
            hints.push(IdentityHint {
                known: sender.clone(),
                also: Identity { kind: kind.to_owned(), value },
                reason: format!("{kind} given by the sender"),
            });
        }
    }
    Ok(hints)
}

/// Every event in a webhook body: each message, preceded by its identity hints (so the
/// host links the sender to the person before it threads the message).
pub fn map_events(body: &Value, fields: &FieldMap) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    for (index, object) in message_objects(body, &fields.events)?.into_iter().enumerate() {
        let message = map_message(object, index, fields)?;
        let hints = map_hints(object, index, fields, &message.sender)?;
        events.extend(hints.into_iter().map(Event::IdentityHint));
        events.push(Event::Message(message));
    }
    Ok(events)
}

/// Handles one webhook with the given field map and `secret`: checks the method, the config
/// and the authentication, then maps the body into message events and answers
/// `200 {"accepted": N}`.
pub fn handle(
    request: &HttpRequest,
    fields: &FieldMap,
    secret: Option<&str>,
) -> Result<WebhookOutcome, WebhookError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(WebhookError::Malformed(format!(
            "the generic webhook expects POST, got {}",
            request.method
        )));
    }
    fields.validate().map_err(WebhookError::Misconfigured)?;
    check_auth(secret, request.header(SIGNATURE_HEADER), request.header(TOKEN_HEADER), &request.body)?;
    let body: Value = json::parse(&request.body).map_err(WebhookError::Malformed)?;
    let events = map_events(&body, fields).map_err(WebhookError::Malformed)?;
    let messages = events.iter().filter(|e| matches!(e, Event::Message(_))).count();
    let response = HttpResponse::json(200, &json!({ "accepted": messages }));
    Ok(WebhookOutcome { events, response })
}

/// An attachment as JSON, with the same member names a webhook uses.
fn attachment_json(a: &Attachment) -> Value {
    json!({
        "kind": attachment_kind_name(a.kind),
        "url": a.url,
        "provider_id": a.provider_id,
        "mime_type": a.mime_type,
        "file_name": a.file_name,
        "size": a.size,
        "caption": a.caption,
        "latitude": a.location.as_ref().map(|l| l.latitude),
        "longitude": a.location.as_ref().map(|l| l.longitude),
        "extras": a.extras.as_deref().map(extras_json),
    })
}

/// Extras text as JSON if it parses, else as a JSON string.
fn extras_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The JSON body `send` POSTs: `id`, `to` (`kind`, `value`), `text`, `subject`, `reply_to`,
/// `attachments` (objects like a webhook's), `template` (`name`, `language`, `parameters`)
/// and `extras` (parsed if it is JSON). Absent values are `null`.
pub fn outbound_body(message: &OutboundMessage) -> Value {
    json!({
        "id": message.id,
        "to": { "kind": message.to.kind, "value": message.to.value },
        "text": message.text,
        "subject": message.subject,
        "reply_to": message.reply_to,
        "attachments": message.attachments.iter().map(attachment_json).collect::<Vec<_>>(),
        "template": message.template.as_ref().map(|t| json!({
            "name": t.name,
            "language": t.language,
            "parameters": t.parameters,
        })),
        "extras": message.extras.as_deref().map(extras_json),
    })
}

/// The request `send` makes: a JSON POST of [`outbound_body`] to `url`, with an
/// `idempotency-key` header (Seam's message id) and, if given and not empty, an
/// `authorization` header.
pub fn build_request(message: &OutboundMessage, url: &str, authorization: Option<&str>) -> Request {
    let mut request = Request::post_json(url, &outbound_body(message)).header("idempotency-key", &message.id);
    if let Some(auth) = authorization.filter(|a| !a.is_empty()) {
        request = request.header("authorization", auth);
    }
    request
}

/// The `id` member of a JSON response body as text, if any.
pub fn provider_id(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    json::text_at(&value, "id").filter(|id| !id.is_empty())
}

/// What a `send-url` answer means: 2xx is accepted (provider id from the body's `id`, else
/// `message_id`); 429 and 5xx are retried later (honouring `retry-after` seconds); anything
/// else is rejected. Reasons carry the status and a body snippet.
pub fn classify_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    message_id: &str,
) -> DeliveryResult {
    match status {
        200..=299 => DeliveryResult::Accepted(provider_id(body).unwrap_or_else(|| message_id.to_owned())),
        429 | 500..=599 => DeliveryResult::RetryLater(RetryHint {
            after_ms: retry_after.and_then(retry_after_ms),
            reason: format!("send-url answered {status}: {}", snippet(body)),
        }),
        400..=499 => DeliveryResult::Rejected(format!("send-url answered {status}: {}", snippet(body))),
        _ => DeliveryResult::Rejected(format!(
            "send-url answered unexpected status {status}: {}",
            snippet(body)
        )),
    }
}

/// What a failed request means: a destination the manifest does not allow, or a URL that
/// cannot be used, is rejected; transport failures are retried later.
pub fn classify_error(error: &HttpError) -> DeliveryResult {
    match error {
        HttpError::Denied => DeliveryResult::Rejected("send-url host is not in capabilities.http".to_owned()),
        HttpError::InvalidRequest(m) => DeliveryResult::Rejected(format!("send-url cannot be used: {m}")),
        other => DeliveryResult::RetryLater(RetryHint {
            after_ms: None,
            reason: format!("sending to send-url failed: {other}"),
        }),
    }
}

/// Sends `message` to `send_url` through `transport` (the real one is
/// [`seam_sdk::http::send`]) and classifies the outcome. A missing or empty `send_url` is
/// rejected without a request.
pub fn deliver(
    message: &OutboundMessage,
    send_url: Option<&str>,
    authorization: Option<&str>,
    transport: impl FnOnce(&Request) -> Result<Response, HttpError>,
) -> DeliveryResult {
    let Some(url) = send_url.map(str::trim).filter(|u| !u.is_empty()) else {
        return DeliveryResult::Rejected("config key `send-url` is not set".to_owned());
    };
    match transport(&build_request(message, url, authorization)) {
        Ok(response) => {
            classify_response(response.status, response.header("retry-after"), &response.body, &message.id)
        }
        Err(error) => classify_error(&error),
    }
}

/// The generic webhook connector.
pub struct WebhookConnector;

impl Connector for WebhookConnector {
    fn describe() -> ChannelInfo {
        let kind = FieldMap::from_config().sender_kind;
        if is_identity_kind(&kind) {
            channel_info(&kind)
        } else {
            log::warn(&format!(
                "field-sender-kind `{kind}` is not a valid identity kind; describing the channel \
                 with `{DEFAULT_SENDER_KIND}`, and webhooks will be refused until it is fixed"
            ));
            channel_info(DEFAULT_SENDER_KIND)
        }
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> {
        // Config is fixed for an instance's life and the manifest lets an instance serve many
        // calls, so the eleven lookups are made by its first call only.
        static FIELDS: std::sync::OnceLock<FieldMap> = std::sync::OnceLock::new();
        let fields = FIELDS.get_or_init(FieldMap::from_config);
        handle(&request, fields, config::secret("secret").as_deref())
    }

    fn send(message: OutboundMessage) -> DeliveryResult {
        let result = deliver(
            &message,
            config::get("send-url").as_deref(),
            config::secret("send-auth-header").as_deref(),
            seam_sdk::http::send,
        );
        match &result {
            DeliveryResult::Accepted(_) => {}
            DeliveryResult::Rejected(reason) => {
                log::warn(&format!("message {} rejected: {reason}", message.id));
            }
            DeliveryResult::RetryLater(hint) => {
                log::info(&format!("message {} to retry: {}", message.id, hint.reason));
            }
        }
        result
    }
}

seam_sdk::export_connector!(WebhookConnector);

#[cfg(test)]
mod tests;
