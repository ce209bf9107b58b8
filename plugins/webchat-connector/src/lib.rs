//! Web chat connector: the plugin side of Seam's web chat widget (`/webchat.js`).
//!
//! A company puts the widget on its site. The host serves the widget, answers the browser's
//! CORS preflight and streams replies to the browser; this plugin only checks and normalizes
//! what the widget posts, and accepts the replies the company sends.
//!
//! # Inbound
//! The widget POSTs one JSON object per visitor action to the channel's webhook
//! (`POST /v1/channels/<id>/webhook`, `content-type: application/json`):
//!
//! ```json
//! {"visitor": "v_8f3a...", "id": "c_1700000000000_1", "text": "Hello", "name": "Anna",
//!  "email": "anna@example.com", "phone": "+79161234567", "page": "https://shop.example/cart",
//!  "sent_at": 1700000000000}
//! ```
//!
//! - `visitor` (required): the random id the widget keeps in localStorage, 16-64 characters
//!   of `A-Z a-z 0-9 _ -`;
//! - `id` (required): the widget's id of this post, 1-64 characters of the same alphabet;
//! - `text` (optional, at most 4,000 characters): a chat message; without it, `email` or
//!   `phone` must be given (a "leave your contact" form post);
//! - `name`, `email`, `phone`, `page` (optional strings), `sent_at` (optional, milliseconds
//!   since the epoch by the browser's clock);
//! - `read` (optional, at most 50): ids of replies the visitor has seen, as the stream and the
//!   history give them.
//!
//! A post must carry `text`, `email`, `phone` or `read`.
//!
//! Checks, in order (see [`handle`]): the config `site-key` must be set, or every post is
//! refused (503); the `x-seam-site-key` header must equal it (401). The site key is **not a
//! secret**: it is written in the page that embeds the widget, so it only keeps other sites'
//! copies of the widget (and careless scripts) out. When `allowed-origins` is set, the
//! browser's `origin` header must be one of those origins (401), which a browser cannot
//! forge. Then the body must be at most 16 KiB of JSON in the shape above (400).
//!
//! Events, in this order (see [`widget_events`]):
//!
//! | field present | event |
//! |---|---|
//! | `email` | identity hint `web:<visitor>` is also `email:<email>`, reason `left-contact` |
//! | `phone` | identity hint `web:<visitor>` is also `phone:<phone>`, reason `left-contact` |
//! | `read` | a `read` delivery update of each reply id, recipient `web:<visitor>` |
//! | `text` | message `<visitor>:<id>` from `web:<visitor>` (name, text, `sent_at`, extras `{"page"}`) |
//!
//! The hints come before the message, so the message lands on a customer already linked to
//! the contact. The answer is `200 {"accepted": <number of events>}`. A retried post (same
//! visitor and id) gives the same external id, so the host recognises it.
//!
//! # Outbound
//! This plugin makes no outbound calls (the manifest grants no `http`). `send` only checks
//! that the message can go to a web chat visitor (see [`check_outbound`]): the recipient must
//! be a `web` identity holding a visitor id, and the message must be text only (no
//! attachments, no template) of at most 4,000 characters. It then answers
//! `Accepted(<the outbound message id>)`; the **host** streams accepted messages addressed to
//! `web:<visitor>` to that visitor's browser over server-sent events and reports their
//! delivery itself. Nothing is queued for a visitor whose browser is closed beyond what the
//! host's stream replays.

#![warn(missing_docs)]

use seam_sdk::prelude::*;
use seam_sdk::serde_json::{Map, Value, json};

/// Header the widget carries the site key in.
pub const SITE_KEY_HEADER: &str = "x-seam-site-key";

/// Config key of the site key the widget must present (not secret: it is in the page).
pub const SITE_KEY_KEY: &str = "site-key";

/// Config key of the space-separated origins allowed to post (empty: any).
pub const ALLOWED_ORIGINS_KEY: &str = "allowed-origins";

/// The identity kind of web chat visitors.
pub const IDENTITY_KIND: &str = "web";

/// Largest body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Longest text one message may have, in Unicode scalar values (both directions).
pub const MAX_TEXT_CHARS: usize = 4000;

/// Fewest characters of a visitor id. The id is all a visitor's reply stream is opened with,
/// so it must be hard to guess; the host's stream refuses shorter ones too.
pub const MIN_VISITOR_CHARS: usize = 16;

/// Most characters of a visitor id or a message id.
pub const MAX_ID_CHARS: usize = 64;

/// Most characters of an email address.
pub const MAX_EMAIL_CHARS: usize = 254;

/// Most characters of a phone number as typed.
pub const MAX_PHONE_CHARS: usize = 32;

/// Most reply ids one post may report read.
pub const MAX_READ: usize = 50;

/// Reason given on identity hints from a contact the visitor left.
pub const LEFT_CONTACT: &str = "left-contact";

/// The reason a message that is not plain text is rejected.
pub const TEXT_ONLY: &str = "web chat carries text only";

/// What the channel is.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        kind: "web".to_owned(),
        display_name: "Web chat".to_owned(),
        features: ChannelFeatures::TEXT | ChannelFeatures::DELIVERY_STATUS | ChannelFeatures::READ_STATUS,
        max_text_length: Some(MAX_TEXT_CHARS as u32),
        identity_kind: IDENTITY_KIND.to_owned(),
    }
}

/// One post of the widget, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetPost {
    /// The visitor's id.
    pub visitor: String,
    /// The widget's id of this post.
    pub id: String,
    /// The chat message, if any (never blank).
    pub text: Option<String>,
    /// The name the visitor gave, trimmed, if any.
    pub name: Option<String>,
    /// The email the visitor left, trimmed, if any.
    pub email: Option<String>,
    /// The phone the visitor left, trimmed, if any.
    pub phone: Option<String>,
    /// The page the widget was on, if given.
    pub page: Option<String>,
    /// When the browser sent it, milliseconds since the epoch.
    pub sent_at: Option<i64>,
    /// Ids of replies the visitor has now seen (the widget shows them in a visible tab).
    pub read: Vec<String>,
}

/// Whether `value` has `min..=max` characters, all of `A-Z a-z 0-9 _ -`.
pub fn is_valid_id(value: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `value` is a well-formed visitor id (16-64 characters of `A-Z a-z 0-9 _ -`).
pub fn is_valid_visitor(value: &str) -> bool {
    is_valid_id(value, MIN_VISITOR_CHARS, MAX_ID_CHARS)
}

/// Checks the site key and the origin of a post. `site_key` and `allowed_origins` are the
/// config values; `given_key` and `origin` the request's `x-seam-site-key` and `origin`
/// headers. An unset (or blank) site key is `Misconfigured`; a missing or wrong key, or an
/// origin not in a non-empty `allowed_origins`, is `Unauthorized`.
pub fn check_access(
    site_key: Option<&str>,
    allowed_origins: Option<&str>,
    given_key: Option<&str>,
    origin: Option<&str>,
) -> Result<(), WebhookError> {
    let Some(expected) = site_key.map(str::trim).filter(|k| !k.is_empty()) else {
        return Err(WebhookError::Misconfigured(format!(
            "config key `{SITE_KEY_KEY}` is not set: it is the key the web chat widget must present"
        )));
    };
    let Some(given) = given_key.map(str::trim).filter(|k| !k.is_empty()) else {
        return Err(WebhookError::Unauthorized(format!("missing `{SITE_KEY_HEADER}` header")));
    };
    if !signature::token_matches(given, expected) {
        return Err(WebhookError::Unauthorized(format!(
            "`{SITE_KEY_HEADER}` does not match the config key `{SITE_KEY_KEY}`"
        )));
    }
    let allowed = allowed_origin_list(allowed_origins.unwrap_or(""));
    if allowed.is_empty() {
        return Ok(());
    }
    let Some(origin) = origin.map(str::trim).filter(|o| !o.is_empty()) else {
        return Err(WebhookError::Unauthorized(format!(
            "missing `origin` header (config key `{ALLOWED_ORIGINS_KEY}` restricts which sites may post)"
        )));
    };
    let normalized = origin.trim_end_matches('/');
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(normalized)) {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized(format!(
            "origin `{origin}` is not in the config key `{ALLOWED_ORIGINS_KEY}`"
        )))
    }
}

/// The origins of an `allowed-origins` value: separated by spaces (commas are tolerated),
/// a trailing `/` dropped.
pub fn allowed_origin_list(value: &str) -> Vec<&str> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|o| o.trim_end_matches('/'))
        .filter(|o| !o.is_empty())
        .collect()
}

/// An optional string field of `body`: absent or `null` is `None`, anything but a string is
/// an error naming the field; surrounding whitespace is removed and a blank string is `None`.
fn optional_string(body: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
        }
        Some(other) => Err(format!("`{field}` must be a string, got {}", type_name(other))),
    }
}

/// A required id field of `body`, `min..=max` characters of `A-Z a-z 0-9 _ -`.
fn required_id(body: &Map<String, Value>, field: &str, min: usize) -> Result<String, String> {
    let rule = format!("{min}-{MAX_ID_CHARS} characters of letters, digits, `_` and `-`");
    match body.get(field) {
        None | Some(Value::Null) => Err(format!("missing `{field}` ({rule})")),
        Some(Value::String(s)) if is_valid_id(s, min, MAX_ID_CHARS) => Ok(s.clone()),
        Some(Value::String(s)) => {
            let shown: String = s.chars().take(MAX_ID_CHARS + 1).collect();
            Err(format!("`{field}` must be {rule}, got {shown:?}"))
        }
        Some(other) => Err(format!("`{field}` must be a string, got {}", type_name(other))),
    }
}

/// The JSON type of `value`, for error messages.
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

/// Whether `email` looks like an address: one `@` with something on both sides, no spaces.
fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
                && email.chars().count() <= MAX_EMAIL_CHARS
        }
        None => false,
    }
}

/// Whether `phone` looks like a phone number as people type it: digits (at least 5), an
/// optional leading `+`, spaces, `(`, `)`, `-` and `.`.
fn is_plausible_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let body = phone.strip_prefix('+').unwrap_or(phone);
    digits >= 5
        && phone.chars().count() <= MAX_PHONE_CHARS
        && body.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '(' | ')' | '-' | '.'))
}

/// Parses and checks a widget post (the raw body). Errors name the field that was wrong and
/// are meant for `WebhookError::Malformed`.
pub fn parse_post(body: &[u8]) -> Result<WidgetPost, String> {
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "body is {} bytes, more than the {MAX_BODY_BYTES} a web chat post may have",
            body.len()
        ));
    }
    let value: Value = json::parse(body)?;
    let Value::Object(object) = value else {
        return Err(format!("body must be a JSON object, got {}", type_name(&value)));
    };
    let visitor = required_id(&object, "visitor", MIN_VISITOR_CHARS)?;
    let id = required_id(&object, "id", 1)?;
    // The text keeps its inner whitespace; only a blank text counts as none.
    let text = match object.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("`text` must be a string, got {}", type_name(other))),
    };
    if let Some(text) = &text {
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(format!("`text` has {chars} characters, more than the {MAX_TEXT_CHARS} allowed"));
        }
    }
    let name = optional_string(&object, "name")?;
    let email = optional_string(&object, "email")?;
    if let Some(email) = email.as_deref().filter(|e| !is_plausible_email(e)) {
        return Err(format!("`email` is not an email address: {email:?}"));
    }
    let phone = optional_string(&object, "phone")?;
    if let Some(phone) = phone.as_deref().filter(|p| !is_plausible_phone(p)) {
        return Err(format!("`phone` is not a phone number: {phone:?}"));
    }
    let page = optional_string(&object, "page")?;
    let sent_at = match object.get("sent_at") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ms) if ms >= 0 => Some(ms),
            _ => match n.as_f64() {
                // A fractional millisecond count (performance clocks) is cut to whole ms.
                Some(f) if f.is_finite() && f >= 0.0 && f < i64::MAX as f64 => Some(f as i64),
                _ => return Err(format!("`sent_at` must be milliseconds since the epoch, got {n}")),
            },
        },
        Some(other) => {
            return Err(format!(
                "`sent_at` must be milliseconds since the epoch (a number), got {}",
                type_name(other)
            ));
        }
    };
    let read = match object.get("read") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) if ids.len() <= MAX_READ => ids
            .iter()
            .map(|id| match id.as_str() {
                Some(id) if is_valid_id(id, 1, MAX_ID_CHARS) => Ok(id.to_owned()),
                _ => Err(format!("`read` holds {id}, which is not a message id")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(ids)) => {
            return Err(format!("`read` lists {} ids, more than the {MAX_READ} one post may", ids.len()));
        }
        Some(other) => return Err(format!("`read` must be a list of message ids, got {}", type_name(other))),
    };
    if text.is_none() && email.is_none() && phone.is_none() && read.is_empty() {
        return Err("a post without `text` must give `email`, `phone` or `read`".to_owned());
    }
    Ok(WidgetPost { visitor, id, text, name, email, phone, page, sent_at, read })
}

/// The events of a checked post: an identity hint per contact left (email, then phone), then
/// the message if there is text.
pub fn widget_events(post: &WidgetPost) -> Vec<Event> {
    let visitor = Identity { kind: IDENTITY_KIND.to_owned(), value: post.visitor.clone() };
    let mut events = Vec::new();
    let contacts = [("email", &post.email), ("phone", &post.phone)];
    for (kind, value) in contacts {
        if let Some(value) = value {
            events.push(Event::IdentityHint(IdentityHint {
                known: visitor.clone(),
                also: Identity { kind: kind.to_owned(), value: value.clone() },
                reason: LEFT_CONTACT.to_owned(),
            }));
        }
    }
    for id in &post.read {
        events.push(Event::Delivery(DeliveryUpdate {
            provider_id: id.clone(),
            recipient: Some(visitor.clone()),
            status: DeliveryStatus::Read,
            reason: None,
            at: post.sent_at,
        }));
    }
    if let Some(text) = &post.text {
        events.push(Event::Message(InboundMessage {
            external_id: format!("{}:{}", post.visitor, post.id),
            sender: visitor,
            sender_name: post.name.clone(),
            text: Some(text.clone()),
            attachments: Vec::new(),
            reply_to: None,
            thread: None,
            sent_at: post.sent_at,
            extras: post.page.as_ref().map(|page| json!({ "page": page }).to_string()),
        }));
    }
    events
}

/// Handles one request to the webhook URL: only `POST`; access checked with
/// [`check_access`], the body with [`parse_post`], mapped with [`widget_events`], and
/// answered `200 {"accepted": <number of events>}`.
pub fn handle(
    request: &HttpRequest,
    site_key: Option<&str>,
    allowed_origins: Option<&str>,
) -> Result<WebhookOutcome, WebhookError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(WebhookError::Malformed(format!("the web chat widget POSTs, got {}", request.method)));
    }
    check_access(site_key, allowed_origins, request.header(SITE_KEY_HEADER), request.header("origin"))?;
    let post = parse_post(&request.body).map_err(WebhookError::Malformed)?;
    let events = widget_events(&post);
    let response = HttpResponse::json(200, &json!({ "accepted": events.len() }));
    Ok(WebhookOutcome { events, response })
}

/// Checks that `message` can go to a web chat visitor: `Ok(())` if so, else the reason to
/// reject it. The recipient must be `web:<visitor id>`; the message must have text of at
/// most [`MAX_TEXT_CHARS`] characters and nothing else (no attachments, no template).
pub fn check_outbound(message: &OutboundMessage) -> Result<(), String> {
    if message.to.kind != IDENTITY_KIND {
        return Err(format!(
            "web chat sends to `{IDENTITY_KIND}` identities, not `{}` ({})",
            message.to.kind, message.to.value
        ));
    }
    if !is_valid_visitor(&message.to.value) {
        return Err(format!("`{}` is not a web chat visitor id", message.to.value));
    }
    let Some(text) = message.text.as_deref().filter(|t| !t.trim().is_empty()) else {
        return Err(TEXT_ONLY.to_owned());
    };
    if !message.attachments.is_empty() || message.template.is_some() {
        return Err(format!("{TEXT_ONLY}: attachments and templates cannot be sent"));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(format!("text has {chars} characters, more than the {MAX_TEXT_CHARS} web chat allows"));
    }
    Ok(())
}

/// What `send` answers: `Accepted(<message id>)` if [`check_outbound`] passes (the host
/// streams it to the browser and reports delivery), else `Rejected` with the reason.
pub fn deliver(message: &OutboundMessage) -> DeliveryResult {
    match check_outbound(message) {
        Ok(()) => DeliveryResult::Accepted(message.id.clone()),
        Err(reason) => DeliveryResult::Rejected(reason),
    }
}

/// The web chat connector.
pub struct WebChatConnector;

impl Connector for WebChatConnector {
    fn describe() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> {
        let site_key = config::get(SITE_KEY_KEY);
        let allowed = config::get(ALLOWED_ORIGINS_KEY);
        let result = handle(&request, site_key.as_deref(), allowed.as_deref());
        if let Err(WebhookError::Unauthorized(reason) | WebhookError::Misconfigured(reason)) = &result {
            log::warn(&format!("web chat post refused: {reason}"));
        }
        result
    }

    fn send(message: OutboundMessage) -> DeliveryResult {
        let result = deliver(&message);
        if let DeliveryResult::Rejected(reason) = &result {
            log::warn(&format!("message {} rejected: {reason}", message.id));
        }
        result
    }
}

seam_sdk::export_connector!(WebChatConnector);

#[cfg(test)]
mod tests;
