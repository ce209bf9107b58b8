//! Outbound: Seam's messages as Send API requests, and Meta's answers as delivery results.
//! Pure functions; only [`deliver`]'s transport touches the network.

use crate::inbound::IDENTITY_KIND;
pub use seam_sdk::delivery::{SNIPPET_CHARS, Sent, retry_after_ms, snippet};
use seam_sdk::delivery::{redact_result, send_parts};
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Map, Value, json};

/// The Graph API base used when `api-base` is not set.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com/v21.0";

/// Longest text of one Messenger message, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Graph error codes meaning "too many requests for now": retried later.
/// 4: app rate limit; 613: calls to this API exceed the rate limit; 80006: Messenger
/// platform rate limit; 1200: temporary send failure.
pub const THROTTLING_CODES: &[i64] = &[4, 613, 80006, 1200];

/// Graph error codes of passing failures at Meta: retried later. 1: unknown error;
/// 2: service temporarily unavailable.
pub const TRANSIENT_CODES: &[i64] = &[1, 2];

/// The `messaging_type`s the Send API takes.
pub const MESSAGING_TYPES: &[&str] = &["RESPONSE", "UPDATE", "MESSAGE_TAG"];

/// Where and how `send` reaches the Send API.
#[derive(Clone, PartialEq, Eq)]
pub struct SendConfig {
    /// `api-base`, without a trailing `/`.
    pub api_base: String,
    /// The secret `page-access-token`, sent as a Bearer token.
    pub page_access_token: String,
}

impl std::fmt::Debug for SendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendConfig")
            .field("api_base", &self.api_base)
            .field("page_access_token", &"<redacted>")
            .finish()
    }
}

impl SendConfig {
    /// The settings from config values looked up with `get` (plain keys) and `secret`
    /// (secrets); values are trimmed. `api-base` defaults to [`DEFAULT_API_BASE`]; a missing
    /// `page-access-token` is an error naming the key.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let value = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let api_base = value(get("api-base")).unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let page_access_token = value(secret("page-access-token")).ok_or_else(|| {
            "secret `page-access-token` is not set: it is needed to call the Messenger Send API".to_owned()
        })?;
        Ok(SendConfig { api_base: api_base.trim_end_matches('/').to_owned(), page_access_token })
    }

    /// `{api-base}/me/messages` (the token goes in a header, never in the URL).
    pub fn messages_url(&self) -> String {
        format!("{}/me/messages", self.api_base)
    }
}

/// The `recipient.id` of a Send API call: the value of a `messenger` identity (a PSID);
/// other kinds, or an empty value, are errors.
pub fn recipient(to: &Identity) -> Result<String, String> {
    if to.kind != IDENTITY_KIND {
        return Err(format!(
            "cannot send to a `{}` identity: the Messenger channel addresses `messenger` identities (page-scoped ids)",
            to.kind
        ));
    }
    let id = to.value.trim();
    if id.is_empty() {
        return Err("the recipient's page-scoped id is empty".to_owned());
    }
    Ok(id.to_owned())
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

/// A non-empty, non-blank string, trimmed.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The `extras` of an attachment or message as a JSON object, if it is one.
fn extras_object(extras: Option<&str>) -> Option<Map<String, Value>> {
    serde_json::from_str::<Value>(extras?).ok()?.as_object().cloned()
}

/// The Send API `message` objects for attachment `index` (one, or two when it has a caption:
/// the caption follows as a text, since Messenger shows no caption under attachments):
/// - `image` (and `sticker`, sent as its picture), `audio` / `voice`, `video`, `document` /
///   `other` (`file`): `{attachment: {type, payload: {url, is_reusable: true}}}`, or
///   `{payload: {attachment_id}}` for a provider id (an id from the Attachment Upload API);
/// - `location`: Messenger cannot send places, so a text with the name, address and a map
///   link;
/// - `contact`: a text `<name>: <phone_number>` from the extras (Messenger has no cards).
pub fn attachment_messages(attachment: &Attachment, index: usize) -> Result<Vec<Value>, String> {
    let what = format!("attachment {index} ({})", kind_name(attachment.kind));
    let kind = match attachment.kind {
        AttachmentKind::Image | AttachmentKind::Sticker => "image",
        AttachmentKind::Audio | AttachmentKind::Voice => "audio",
        AttachmentKind::Video => "video",
        AttachmentKind::Document | AttachmentKind::Other => "file",
        AttachmentKind::Location => {
            let point = attachment.location.as_ref().ok_or_else(|| format!("{what} has no coordinates"))?;
            let extras = extras_object(attachment.extras.as_deref()).unwrap_or_default();
            let mut lines: Vec<String> = ["name", "address"]
                .iter()
                .filter_map(|key| extras.get(*key).and_then(Value::as_str))
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
                .collect();
            lines.push(format!(
                "https://www.google.com/maps/search/?api=1&query={},{}",
                point.latitude, point.longitude
            ));
            return Ok(vec![json!({ "text": lines.join("\n") })]);
        }
        AttachmentKind::Contact => {
            let card = extras_object(attachment.extras.as_deref()).unwrap_or_default();
            let field =
                |key: &str| card.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
            return match (field("name"), field("phone_number")) {
                (Some(name), Some(phone)) => Ok(vec![json!({ "text": format!("{name}: {phone}") })]),
                _ => Err(format!("{what} needs `name` and `phone_number` in its extras")),
            };
        }
    };
    let payload = if let Some(url) = given(attachment.url.as_deref()) {
        json!({ "url": url, "is_reusable": true })
    } else if let Some(id) = given(attachment.provider_id.as_deref()) {
        json!({ "attachment_id": id })
    } else {
        return Err(format!("{what} has neither a url nor a provider-id"));
    };
    let mut messages = vec![json!({ "attachment": { "type": kind, "payload": payload } })];
    if let Some(caption) = given(attachment.caption.as_deref()) {
        messages.push(json!({ "text": caption }));
    }
    Ok(messages)
}

/// Options a message's `extras` may carry.
#[derive(Debug, Default)]
struct Options {
    /// `messaging_type`: `RESPONSE` (the default), `UPDATE` or `MESSAGE_TAG`.
    messaging_type: Option<String>,
    /// `tag` (e.g. `HUMAN_AGENT`, `ACCOUNT_UPDATE`): implies `MESSAGE_TAG`.
    tag: Option<String>,
    /// `quick_replies`: Send API quick reply buttons, put on the last message.
    quick_replies: Option<Value>,
}

/// The [`Options`] in `extras`; extras that are not a JSON object, or a member of the wrong
/// type, are an error; unknown members are ignored.
fn options(extras: Option<&str>) -> Result<Options, String> {
    let mut options = Options::default();
    let Some(extras) = extras.filter(|e| !e.trim().is_empty()) else {
        return Ok(options);
    };
    let object =
        extras_object(Some(extras)).ok_or_else(|| "the message's extras are not a JSON object".to_owned())?;
    let string = |key: &str| -> Result<Option<String>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
            Some(other) => Err(format!("extras `{key}` must be a non-empty string, not {other}")),
        }
    };
    options.messaging_type = string("messaging_type")?.map(|t| t.to_ascii_uppercase());
    options.tag = string("tag")?;
    if let Some(kind) = &options.messaging_type
        && !MESSAGING_TYPES.contains(&kind.as_str())
    {
        return Err(format!(
            "extras `messaging_type` is `{kind}`, expected one of {}",
            MESSAGING_TYPES.join(", ")
        ));
    }
    match (options.messaging_type.as_deref(), &options.tag) {
        (Some("MESSAGE_TAG"), None) => {
            return Err("extras `messaging_type` MESSAGE_TAG needs a `tag`".to_owned());
        }
        (Some(other @ ("RESPONSE" | "UPDATE")), Some(_)) => {
            return Err(format!("extras `tag` goes with messaging_type MESSAGE_TAG, not {other}"));
        }
        _ => {}
    }
    if let Some(replies) = object.get("quick_replies").filter(|q| !q.is_null()) {
        if !replies.is_array() {
            return Err("extras `quick_replies` must be an array of Send API quick replies".to_owned());
        }
        options.quick_replies = Some(replies.clone());
    }
    Ok(options)
}

/// The JSON bodies `send` POSTs, in order (one Messenger message each): `{recipient: {id},
/// messaging_type, message: {...}}`.
///
/// - the text first (`{text}`), then each attachment (see [`attachment_messages`]):
///   Messenger sends a text and an attachment as separate messages;
/// - `messaging_type` is `RESPONSE` unless extras say `UPDATE` or `MESSAGE_TAG`; extras `tag`
///   (e.g. `HUMAN_AGENT`, to answer after the 24-hour window) implies `MESSAGE_TAG`;
/// - every message carries `metadata: <Seam message id>`, which Meta hands back in the echo
///   of the message, so echoes of Seam's own sends are recognisable;
/// - extras `quick_replies` ride on the last message.
///
/// Messenger's Send API has no quoted replies, so `reply-to` is not sent; templates (Meta's
/// structured templates) are not supported. Errors say what is wrong.
pub fn message_bodies(message: &OutboundMessage) -> Result<Vec<Value>, String> {
    let to = recipient(&message.to)?;
    if message.template.is_some() {
        return Err("the Messenger connector sends no templates: send text instead".to_owned());
    }
    let options = options(message.extras.as_deref())?;
    let mut parts = Vec::new();
    if let Some(text) = given(message.text.as_deref()) {
        let count = text.chars().count();
        if count > MAX_TEXT_CHARS {
            return Err(format!("the text has {count} characters; Messenger takes at most {MAX_TEXT_CHARS}"));
        }
        parts.push(json!({ "text": text }));
    }
    for (index, attachment) in message.attachments.iter().enumerate() {
        parts.extend(attachment_messages(attachment, index)?);
    }
    if parts.is_empty() {
        return Err("nothing to send: the message has no text or attachment".to_owned());
    }
    let messaging_type = match (&options.messaging_type, &options.tag) {
        (Some(kind), _) => kind.clone(),
        (None, Some(_)) => "MESSAGE_TAG".to_owned(),
        (None, None) => "RESPONSE".to_owned(),
    };
    let recipient = json!({ "id": to });
    let last = parts.len() - 1;
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(n, mut part)| {
            part["metadata"] = json!(message.id);
            if n == last
                && let Some(replies) = &options.quick_replies
            {
                part["quick_replies"] = replies.clone();
            }
            let mut body =
                json!({ "recipient": recipient, "messaging_type": messaging_type, "message": part });
            if let Some(tag) = &options.tag {
                body["tag"] = json!(tag);
            }
            body
        })
        .collect())
}

/// The requests `send` makes: a JSON POST of each of [`message_bodies`] to
/// [`SendConfig::messages_url`], with `authorization: Bearer <page-access-token>`.
pub fn build_requests(message: &OutboundMessage, config: &SendConfig) -> Result<Vec<Request>, String> {
    let url = config.messages_url();
    let authorization = format!("Bearer {}", config.page_access_token);
    Ok(message_bodies(message)?
        .iter()
        .map(|body| Request::post_json(&url, body).header("authorization", &authorization))
        .collect())
}

/// A Graph API error answer, `{"error": {"message", "type", "code", "error_subcode",
/// "fbtrace_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// `error.code`, if it is a number.
    pub code: Option<i64>,
    /// `error.error_subcode`, if it is a number.
    pub subcode: Option<i64>,
    /// `<code>: <message>`, with ` (subcode <n>)` when there is one and a word on what
    /// well-known codes mean.
    pub reason: String,
}

/// What well-known Send API errors mean, for reasons.
fn meaning(code: Option<i64>, subcode: Option<i64>) -> Option<&'static str> {
    Some(match (code, subcode) {
        (Some(10), Some(2018278)) => "outside the 24-hour window: send with a message tag",
        (Some(551), _) => "this person is not available right now",
        (Some(190), _) => "the page-access-token is invalid or expired",
        (Some(200), _) => "the page-access-token lacks the permission to message this person",
        _ => return None,
    })
}

/// The Graph error in an answer `body`, if it holds one.
pub fn graph_error(body: &[u8]) -> Option<GraphError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error").filter(|e| e.is_object())?;
    let code = error.get("code").and_then(Value::as_i64);
    let subcode = error.get("error_subcode").and_then(Value::as_i64);
    let message = json::text_at(error, "message").filter(|m| !m.trim().is_empty());
    let mut reason = match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => format!("{code}"),
        (None, Some(message)) => message,
        (None, None) => return None,
    };
    if let Some(subcode) = subcode {
        reason.push_str(&format!(" (subcode {subcode})"));
    }
    if let Some(meaning) = meaning(code, subcode) {
        reason.push_str(&format!(": {meaning}"));
    }
    Some(GraphError { code, subcode, reason })
}

/// What a Send API answer means:
/// - 2xx: accepted with `message_id` (Seam's id, if Meta gave none);
/// - HTTP 429 or a [`THROTTLING_CODES`] error, HTTP 5xx or a [`TRANSIENT_CODES`] error:
///   retried later, after `retry-after` seconds if given;
/// - anything else (551 person unavailable, 10/2018278 outside the 24-hour window, 100
///   invalid parameter, 190 bad token, other 4xx): rejected.
///
/// Reasons are `<code>: <message>` for Graph errors, else the status and a snippet of the
/// body.
pub fn classify_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    message_id: &str,
) -> DeliveryResult {
    if (200..300).contains(&status) {
        let id = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| json::text_at(&v, "message_id"))
            .filter(|id| !id.is_empty());
        return DeliveryResult::Accepted(id.unwrap_or_else(|| message_id.to_owned()));
    }
    let error = graph_error(body);
    let code = error.as_ref().and_then(|e| e.code);
    let reason = match error {
        Some(error) => error.reason,
        None => format!("Messenger API answered {status}: {}", snippet(body)),
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
    seam_sdk::delivery::api_base_error(error, api_base, "Messenger API")
}

/// Sends `message` with `config` through `transport` (the real one is
/// [`seam_sdk::http::send`]) and classifies the outcome.
///
/// A config error or a message that cannot be built is rejected without a request. The
/// messages of [`message_bodies`] are sent in order: if the first fails, that is the
/// result; once it is accepted, the result is accepted with its id, and a later failure
/// stops the send and becomes a warning. The page access token never appears in a reason.
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
        redact_result(result, &config.page_access_token, "<page-access-token>")
    })
}
