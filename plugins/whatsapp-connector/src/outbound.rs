//! Outbound: Seam's messages as Graph API requests, and Meta's answers as delivery results.
//! Pure functions; only [`deliver`]'s transport touches the network.

use crate::inbound::{IDENTITY_KIND, error_summary};
pub use seam_sdk::delivery::{SNIPPET_CHARS, Sent, retry_after_ms, snippet};
use seam_sdk::delivery::{redact_result, send_parts};
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Map, Value, json};

/// The Graph API base used when `api-base` is not set.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com/v21.0";

/// Longest caption WhatsApp takes under a picture, video or document; a longer text is
/// sent as a message of its own.
pub const MAX_CAPTION_CHARS: usize = 1024;

/// Graph error codes meaning "too many requests for now": retried later.
/// 4: app rate limit; 80007: WABA rate limit; 130429: throughput reached; 131048: spam
/// rate limit; 131056: too many messages to the same user.
pub const THROTTLING_CODES: &[i64] = &[4, 80007, 130429, 131048, 131056];

/// Graph error codes of passing failures at Meta: retried later.
/// 1: unknown error; 2: service unavailable; 131000: something went wrong; 131016: service
/// overloaded.
pub const TRANSIENT_CODES: &[i64] = &[1, 2, 131000, 131016];

/// Where and how `send` reaches the Graph API.
#[derive(Clone, PartialEq, Eq)]
pub struct SendConfig {
    /// `api-base`, without a trailing `/`.
    pub api_base: String,
    /// `phone-number-id`: the business number messages are sent from.
    pub phone_number_id: String,
    /// The secret `access-token`, sent as a Bearer token.
    pub access_token: String,
}

impl std::fmt::Debug for SendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendConfig")
            .field("api_base", &self.api_base)
            .field("phone_number_id", &self.phone_number_id)
            .field("access_token", &"<redacted>")
            .finish()
    }
}

impl SendConfig {
    /// The settings from config values looked up with `get` (plain keys) and `secret`
    /// (secrets); values are trimmed. `api-base` defaults to [`DEFAULT_API_BASE`]; a missing
    /// `phone-number-id` or `access-token`, or a phone number id that is not digits, is an
    /// error naming the key.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let value = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let api_base = value(get("api-base")).unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let phone_number_id = value(get("phone-number-id")).ok_or_else(|| {
            "config key `phone-number-id` is not set: the id of the business phone number to send from"
                .to_owned()
        })?;
        if !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "config key `phone-number-id` must be the number's id (digits, from WhatsApp Manager), \
                 not `{phone_number_id}`"
            ));
        }
        let access_token = value(secret("access-token")).ok_or_else(|| {
            "secret `access-token` is not set: it is needed to call the WhatsApp Cloud API".to_owned()
        })?;
        Ok(SendConfig { api_base: api_base.trim_end_matches('/').to_owned(), phone_number_id, access_token })
    }

    /// `{api-base}/{phone-number-id}/messages`.
    pub fn messages_url(&self) -> String {
        format!("{}/{}/messages", self.api_base, self.phone_number_id)
    }
}

/// The `to` of a Graph message: the recipient's digits. `whatsapp` and `phone` identities
/// are accepted (a leading `+`, spaces and punctuation are dropped); other kinds, or a value
/// without digits, are errors.
pub fn recipient(to: &Identity) -> Result<String, String> {
    if to.kind != IDENTITY_KIND && to.kind != "phone" {
        return Err(format!(
            "cannot send to a `{}` identity: the WhatsApp channel addresses `whatsapp` or `phone` identities",
            to.kind
        ));
    }
    let digits: String = to.value.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err(format!("recipient `{}` has no digits: not a WhatsApp id or phone number", to.value));
    }
    Ok(digits)
}

/// The name of an attachment kind, for messages.
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

/// The Graph message type an attachment of `kind` is sent as.
fn message_type(kind: AttachmentKind) -> &'static str {
    match kind {
        AttachmentKind::Image => "image",
        AttachmentKind::Audio | AttachmentKind::Voice => "audio",
        AttachmentKind::Video => "video",
        AttachmentKind::Sticker => "sticker",
        AttachmentKind::Location => "location",
        AttachmentKind::Contact => "contacts",
        AttachmentKind::Document | AttachmentKind::Other => "document",
    }
}

/// Whether WhatsApp shows a caption under attachments of `kind`.
fn takes_caption(kind: AttachmentKind) -> bool {
    matches!(message_type(kind), "image" | "video" | "document")
}

/// A non-empty, non-blank string.
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// The `extras` of attachment `index` as a JSON object, if it is one.
fn extras_object(attachment: &Attachment) -> Option<Map<String, Value>> {
    serde_json::from_str::<Value>(attachment.extras.as_deref()?).ok()?.as_object().cloned()
}

/// The Graph message type and object for attachment `index`, with `caption` (the message's
/// text) when its own caption is not set:
/// - pictures, videos, audio and voice, stickers, documents (and `other`): `{link: url}`
///   when the attachment has a URL, else `{id: provider-id}` (a WhatsApp media id); a
///   caption for pictures, videos and documents, the file name for documents;
/// - `location`: its coordinates, with `name` and `address` from its extras;
/// - `contact`: the card in its extras (Meta's contact object), as a one-card `contacts`.
pub fn attachment_part(
    attachment: &Attachment,
    index: usize,
    caption: Option<&str>,
) -> Result<(&'static str, Value), String> {
    let kind = message_type(attachment.kind);
    let what = format!("attachment {index} ({})", kind_name(attachment.kind));
    match attachment.kind {
        AttachmentKind::Location => {
            let Some(point) = &attachment.location else {
                return Err(format!("{what} has no coordinates"));
            };
            let mut place = Map::new();
            place.insert("latitude".to_owned(), json!(point.latitude));
            place.insert("longitude".to_owned(), json!(point.longitude));
            let extras = extras_object(attachment).unwrap_or_default();
            for key in ["name", "address"] {
                if let Some(value) = extras.get(key).filter(|v| v.is_string()) {
                    place.insert(key.to_owned(), value.clone());
                }
            }
            Ok((kind, Value::Object(place)))
        }
        AttachmentKind::Contact => match extras_object(attachment) {
            Some(card) => Ok((kind, json!([card]))),
            None => {
                Err(format!("{what} needs the contact card (Meta's contact object) as JSON in its extras"))
            }
        },
        _ => {
            let mut media = Map::new();
            if let Some(url) = given(attachment.url.as_deref()) {
                media.insert("link".to_owned(), json!(url.trim()));
            } else if let Some(id) = given(attachment.provider_id.as_deref()) {
                media.insert("id".to_owned(), json!(id.trim()));
            } else {
                return Err(format!("{what} has neither a url nor a provider-id"));
            }
            if takes_caption(attachment.kind)
                && let Some(caption) = given(attachment.caption.as_deref()).or(caption)
            {
                media.insert("caption".to_owned(), json!(caption));
            }
            if kind == "document"
                && let Some(name) = given(attachment.file_name.as_deref())
            {
                media.insert("filename".to_owned(), json!(name));
            }
            Ok((kind, Value::Object(media)))
        }
    }
}

/// The Graph `template` object: name, `language.code` and, when there are parameters, one
/// `body` component with a text parameter each.
pub fn template_object(template: &Template) -> Result<Value, String> {
    if template.name.trim().is_empty() {
        return Err("the template has no name".to_owned());
    }
    if template.language.trim().is_empty() {
        return Err(format!("template `{}` has no language code", template.name));
    }
    let mut object = json!({ "name": template.name, "language": { "code": template.language } });
    if !template.parameters.is_empty() {
        let parameters: Vec<Value> =
            template.parameters.iter().map(|p| json!({ "type": "text", "text": p })).collect();
        object["components"] = json!([{ "type": "body", "parameters": parameters }]);
    }
    Ok(object)
}

/// The JSON bodies `send` POSTs, in order (one Graph message each): `{messaging_product:
/// "whatsapp", recipient_type: "individual", to, type, <type>: {...}}`, the first with
/// `context: {message_id}` when the message answers another.
///
/// - a template is sent as `type: "template"` (see [`template_object`]), instead of the text;
/// - otherwise the text is `type: "text"` with `preview_url: false`, except that a text of
///   at most [`MAX_CAPTION_CHARS`] with a single picture, video or document that has no
///   caption of its own becomes that attachment's caption (one message);
/// - each attachment follows as a message of its own (see [`attachment_part`]).
///
/// Errors (nothing to send, an unusable recipient, template or attachment) say what.
pub fn message_bodies(message: &OutboundMessage) -> Result<Vec<Value>, String> {
    let to = recipient(&message.to)?;
    let text = given(message.text.as_deref());
    let caption = match (text, message.attachments.as_slice()) {
        (Some(text), [only])
            if message.template.is_none()
                && takes_caption(only.kind)
                && given(only.caption.as_deref()).is_none()
                && text.chars().count() <= MAX_CAPTION_CHARS =>
        {
            Some(text)
        }
        _ => None,
    };
    let mut parts: Vec<(&str, Value)> = Vec::new();
    if let Some(template) = &message.template {
        parts.push(("template", template_object(template)?));
    } else if let Some(text) = text.filter(|_| caption.is_none()) {
        parts.push(("text", json!({ "body": text, "preview_url": false })));
    }
    for (index, attachment) in message.attachments.iter().enumerate() {
        parts.push(attachment_part(attachment, index, caption)?);
    }
    if parts.is_empty() {
        return Err("nothing to send: the message has no text, attachment or template".to_owned());
    }
    let reply_to = given(message.reply_to.as_deref());
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(n, (kind, object))| {
            let mut body = json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": kind,
            });
            body[kind] = object;
            if n == 0
                && let Some(id) = reply_to
            {
                body["context"] = json!({ "message_id": id });
            }
            body
        })
        .collect())
}

/// The requests `send` makes: a JSON POST of each of [`message_bodies`] to
/// [`SendConfig::messages_url`], with `authorization: Bearer <access-token>`.
pub fn build_requests(message: &OutboundMessage, config: &SendConfig) -> Result<Vec<Request>, String> {
    let url = config.messages_url();
    let authorization = format!("Bearer {}", config.access_token);
    Ok(message_bodies(message)?
        .iter()
        .map(|body| Request::post_json(&url, body).header("authorization", &authorization))
        .collect())
}

/// A Graph API error answer, `{"error": {"message", "type", "code", "error_subcode",
/// "error_data": {"details"}, "fbtrace_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// `error.code`, if it is a number.
    pub code: Option<i64>,
    /// `<code>: <message> (<details>)`.
    pub reason: String,
}

/// The Graph error in an answer `body`, if it holds one.
pub fn graph_error(body: &[u8]) -> Option<GraphError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error").filter(|e| e.is_object())?;
    let reason = error_summary(error, &["message", "error_user_msg", "title"])?;
    Some(GraphError { code: error.get("code").and_then(Value::as_i64), reason })
}

/// What a Graph API answer means:
/// - 2xx: accepted with `messages[0].id` (`message_id`, Seam's id, if Meta gave none);
/// - HTTP 429 or a [`THROTTLING_CODES`] error, HTTP 5xx or a [`TRANSIENT_CODES`] error:
///   retried later, after `retry_after` seconds if given;
/// - anything else (131026 undeliverable, 131047 re-engagement window closed, 131051,
///   132000/132001 template errors, 190 bad token, other 4xx): rejected.
///
/// Reasons are `<code>: <message> (<details>)` for Graph errors, else the status and a
/// snippet of the body.
pub fn classify_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    message_id: &str,
) -> DeliveryResult {
    if (200..300).contains(&status) {
        let id = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| json::text_at(&v, "messages/0/id"))
            .filter(|id| !id.is_empty());
        return DeliveryResult::Accepted(id.unwrap_or_else(|| message_id.to_owned()));
    }
    let error = graph_error(body);
    let code = error.as_ref().and_then(|e| e.code);
    let reason = match error {
        Some(error) => error.reason,
        None => format!("WhatsApp API answered {status}: {}", snippet(body)),
    };
    let listed = |codes: &[i64]| code.is_some_and(|c| codes.contains(&c));
    if status == 429 || status >= 500 || listed(THROTTLING_CODES) || listed(TRANSIENT_CODES) {
        return DeliveryResult::RetryLater(RetryHint {
            after_ms: retry_after.and_then(retry_after_ms),
            reason,
        });
    }
    DeliveryResult::Rejected(reason)
}

/// What a failed request means: a destination the manifest does not allow, or a URL that
/// cannot be used, is rejected; transport failures are retried later.
pub fn classify_error(error: &HttpError, api_base: &str) -> DeliveryResult {
    seam_sdk::delivery::api_base_error(error, api_base, "WhatsApp API")
}

/// Sends `message` with `config` through `transport` (the real one is
/// [`seam_sdk::http::send`]) and classifies the outcome.
///
/// A config error or a message that cannot be built is rejected without a request. The
/// messages of [`message_bodies`] are sent in order: if the first fails, that is the
/// result; once it is accepted, the result is accepted with its id, and a later failure
/// stops the send and becomes a warning. The access token never appears in a reason.
pub fn deliver(
    message: &OutboundMessage,
    config: Result<SendConfig, String>,
    mut transport: impl FnMut(&Request) -> Result<Response, HttpError>,
) -> Sent {
    let config = match config {
        Ok(config) => config,
        Err(reason) => return Sent::rejected(reason),
    };
    let requests = match build_requests(message, &config) {
        Ok(requests) => requests,
        Err(reason) => return Sent::rejected(reason),
    };
    send_parts(&requests, &message.id, |request| {
        let result = match transport(request) {
            Ok(response) => classify_response(
                response.status,
                response.header("retry-after"),
                &response.body,
                &message.id,
            ),
            Err(error) => classify_error(&error, &config.api_base),
        };
        redact_result(result, &config.access_token, "<access-token>")
    })
}
