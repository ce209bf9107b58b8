//! Outbound: Seam's messages as Viber `send_message` requests, and Viber's answers as
//! delivery results. Pure functions; only [`deliver`]'s transport touches the network.

use crate::inbound::{IDENTITY_KIND, id_text};
pub use seam_sdk::delivery::{SNIPPET_CHARS, Sent, retry_after_ms, snippet};
use seam_sdk::delivery::{redact_result, send_parts};
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Map, Value, json};

/// The Viber REST API base used when `api-base` is not set.
pub const DEFAULT_API_BASE: &str = "https://chatapi.viber.com";

/// The sender name used when `sender-name` is not set.
pub const DEFAULT_SENDER_NAME: &str = "Seam";

/// Longest sender name Viber takes; a longer `sender-name` is cut.
pub const MAX_SENDER_NAME_CHARS: usize = 28;

/// Longest text of one Viber message, in characters.
pub const MAX_TEXT_CHARS: usize = 7000;

/// Longest description Viber shows under a picture; a longer text is sent as a message of
/// its own.
pub const MAX_CAPTION_CHARS: usize = 768;

/// The header carrying the bot's auth token on every API call.
pub const AUTH_HEADER: &str = "X-Viber-Auth-Token";

/// Viber `status` codes meaning "not now": retried later. 12: tooManyRequests.
pub const RETRY_STATUSES: &[i64] = &[12];

/// What Viber's `status` codes mean (from the REST bot API's error code table), for
/// delivery reasons.
pub fn status_meaning(status: i64) -> Option<&'static str> {
    Some(match status {
        1 => "the webhook URL is not valid",
        2 => "the auth token is not valid",
        3 => "the request was not understood (bad data)",
        4 => "a required field is missing",
        5 => "the receiver is not registered to Viber",
        6 => "the receiver is not subscribed to the bot",
        7 => "the bot is blocked",
        8 => "the bot (public account) was not found",
        9 => "the bot is suspended",
        10 => "no webhook is set for the bot",
        11 => "the receiver's Viber version cannot show this message",
        12 => "too many requests",
        13 => "the account may not use this API version",
        14 => "the message needs a newer Viber version than min_api_version",
        15 => "the bot is not authorized",
        16 => "in-chat replies are not allowed",
        17 => "the bot is not inline",
        18 => "there is no public chat",
        19 => "cannot send a broadcast message",
        20 => "broadcast is not allowed",
        21 => "the message is sent to an unsupported country",
        22 => "the bot does not support payments",
        23 => "the free message quota is used up",
        24 => "the account has no balance",
        _ => return None,
    })
}

/// Where and how `send` reaches the Viber API.
#[derive(Clone, PartialEq, Eq)]
pub struct SendConfig {
    /// `api-base`, without a trailing `/`.
    pub api_base: String,
    /// The secret `auth-token`, sent as [`AUTH_HEADER`].
    pub auth_token: String,
    /// `sender-name`: the bot name shown with each message (at most
    /// [`MAX_SENDER_NAME_CHARS`] characters).
    pub sender_name: String,
}

impl std::fmt::Debug for SendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendConfig")
            .field("api_base", &self.api_base)
            .field("auth_token", &"<redacted>")
            .field("sender_name", &self.sender_name)
            .finish()
    }
}

impl SendConfig {
    /// The settings from config values looked up with `get` (plain keys) and `secret`
    /// (secrets); values are trimmed. `api-base` defaults to [`DEFAULT_API_BASE`],
    /// `sender-name` to [`DEFAULT_SENDER_NAME`] (cut to [`MAX_SENDER_NAME_CHARS`]); a missing
    /// `auth-token` is an error naming the key.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let value = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let api_base = value(get("api-base")).unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let sender_name = value(get("sender-name")).unwrap_or_else(|| DEFAULT_SENDER_NAME.to_owned());
        let auth_token = value(secret("auth-token"))
            .ok_or_else(|| "secret `auth-token` is not set: it is needed to call the Viber API".to_owned())?;
        Ok(SendConfig {
            api_base: api_base.trim_end_matches('/').to_owned(),
            auth_token,
            sender_name: sender_name.chars().take(MAX_SENDER_NAME_CHARS).collect(),
        })
    }

    /// `{api-base}/pa/send_message`.
    pub fn send_url(&self) -> String {
        format!("{}/pa/send_message", self.api_base)
    }
}

/// The `receiver` of a Viber message: the value of a `viber` identity (a Viber user id);
/// other kinds, or an empty value, are errors.
pub fn receiver(to: &Identity) -> Result<String, String> {
    if to.kind != IDENTITY_KIND {
        return Err(format!(
            "cannot send to a `{}` identity: the Viber channel addresses `viber` identities (Viber user ids)",
            to.kind
        ));
    }
    let id = to.value.trim();
    if id.is_empty() {
        return Err("the recipient's Viber user id is empty".to_owned());
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

/// The `extras` of an attachment as a JSON object, if it is one.
fn extras_object(extras: Option<&str>) -> Option<Map<String, Value>> {
    serde_json::from_str::<Value>(extras?).ok()?.as_object().cloned()
}

/// The last path segment of `url` (without query or fragment), for a file name.
fn url_file_name(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.split_once("://").map_or(path, |(_, rest)| rest);
    let (_, path) = after_host.split_once('/')?;
    path.rsplit('/').next().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The Viber message type and fields (without receiver, sender...) for attachment `index`,
/// with `caption` (the message's text) when its own caption is not set:
/// - `image`: `picture` with `media` (the URL) and `text` (the caption, possibly empty);
/// - `video`: `video` with `media` and `size` (required by Viber);
/// - `document`, `audio`, `voice`, `other`: `file` with `media`, `size` (required) and
///   `file_name` (the attachment's, else the URL's last segment);
/// - `sticker`: `sticker` with `sticker_id` (the provider id, a number);
/// - `location`: `location` with `lat` / `lon`;
/// - `contact`: `contact` with `name` and `phone_number` from the extras.
///
/// Media go by URL only: Viber's API takes no uploaded ids.
pub fn attachment_part(
    attachment: &Attachment,
    index: usize,
    caption: Option<&str>,
) -> Result<Value, String> {
    let what = format!("attachment {index} ({})", kind_name(attachment.kind));
    let url = || {
        given(attachment.url.as_deref())
            .ok_or_else(|| format!("{what} has no url (Viber sends media by URL)"))
    };
    let size = || {
        attachment
            .size
            .ok_or_else(|| format!("{what} has no size: Viber requires the size of videos and files"))
    };
    match attachment.kind {
        AttachmentKind::Image => {
            let text = given(attachment.caption.as_deref()).or(caption).unwrap_or("");
            Ok(json!({ "type": "picture", "media": url()?, "text": text }))
        }
        AttachmentKind::Video => Ok(json!({ "type": "video", "media": url()?, "size": size()? })),
        AttachmentKind::Document | AttachmentKind::Audio | AttachmentKind::Voice | AttachmentKind::Other => {
            let media = url()?;
            let file_name = given(attachment.file_name.as_deref())
                .map(str::to_owned)
                .or_else(|| url_file_name(media))
                .ok_or_else(|| format!("{what} has no file name (Viber requires one for files)"))?;
            Ok(json!({ "type": "file", "media": media, "size": size()?, "file_name": file_name }))
        }
        AttachmentKind::Sticker => {
            let id = given(attachment.provider_id.as_deref())
                .ok_or_else(|| format!("{what} has no provider-id (the Viber sticker id)"))?;
            let id: u64 = id.parse().map_err(|_| format!("{what}: the sticker id `{id}` is not a number"))?;
            Ok(json!({ "type": "sticker", "sticker_id": id }))
        }
        AttachmentKind::Location => {
            let point = attachment.location.as_ref().ok_or_else(|| format!("{what} has no coordinates"))?;
            Ok(json!({ "type": "location", "location": { "lat": point.latitude, "lon": point.longitude } }))
        }
        AttachmentKind::Contact => {
            let card = extras_object(attachment.extras.as_deref()).unwrap_or_default();
            let field =
                |key: &str| card.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
            match (field("name"), field("phone_number")) {
                (Some(name), Some(phone)) => {
                    Ok(json!({ "type": "contact", "contact": { "name": name, "phone_number": phone } }))
                }
                _ => Err(format!("{what} needs `name` and `phone_number` in its extras")),
            }
        }
    }
}

/// Options a message's `extras` may carry: `keyboard` (a Viber keyboard object, sent with
/// the last part) and `min_api_version` (an integer, instead of 1).
struct Options {
    keyboard: Option<Value>,
    min_api_version: u64,
}

/// The [`Options`] in `extras`; extras that are not a JSON object are an error, unknown
/// members are ignored.
fn options(extras: Option<&str>) -> Result<Options, String> {
    let mut options = Options { keyboard: None, min_api_version: 1 };
    let Some(extras) = extras.filter(|e| !e.trim().is_empty()) else {
        return Ok(options);
    };
    let Some(object) = extras_object(Some(extras)) else {
        return Err("the message's extras are not a JSON object".to_owned());
    };
    if let Some(keyboard) = object.get("keyboard").filter(|k| !k.is_null()) {
        if !keyboard.is_object() {
            return Err("extras `keyboard` must be a Viber keyboard object".to_owned());
        }
        options.keyboard = Some(keyboard.clone());
    }
    if let Some(version) = object.get("min_api_version").filter(|v| !v.is_null()) {
        options.min_api_version = version
            .as_u64()
            .ok_or_else(|| format!("extras `min_api_version` must be an integer, not {version}"))?;
    }
    Ok(options)
}

/// The JSON bodies `send` POSTs, in order (one Viber message each): `{receiver,
/// min_api_version: 1, sender: {name}, tracking_data: <Seam message id>, type, ...}`.
///
/// - the text is `type: "text"`, except that a text of at most [`MAX_CAPTION_CHARS`] with a
///   single picture that has no caption of its own becomes the picture's description (one
///   message);
/// - each attachment follows as a message of its own (see [`attachment_part`]);
/// - extras `keyboard` rides on the last message, extras `min_api_version` replaces 1.
///
/// Viber has no quoted replies, so `reply-to` is not sent; templates are not supported.
/// Errors (nothing to send, an unusable recipient or attachment) say what.
pub fn message_bodies(message: &OutboundMessage, sender_name: &str) -> Result<Vec<Value>, String> {
    let to = receiver(&message.to)?;
    if message.template.is_some() {
        return Err("Viber has no template messages: send text instead".to_owned());
    }
    let options = options(message.extras.as_deref())?;
    let text = message.text.as_deref().filter(|t| !t.trim().is_empty());
    if let Some(text) = text
        && text.chars().count() > MAX_TEXT_CHARS
    {
        return Err(format!(
            "the text has {} characters; Viber takes at most {MAX_TEXT_CHARS}",
            text.chars().count()
        ));
    }
    let caption = match (text, message.attachments.as_slice()) {
        (Some(text), [only])
            if only.kind == AttachmentKind::Image
                && given(only.caption.as_deref()).is_none()
                && text.chars().count() <= MAX_CAPTION_CHARS =>
        {
            Some(text)
        }
        _ => None,
    };
    let mut parts = Vec::new();
    if let Some(text) = text.filter(|_| caption.is_none()) {
        parts.push(json!({ "type": "text", "text": text }));
    }
    for (index, attachment) in message.attachments.iter().enumerate() {
        parts.push(attachment_part(attachment, index, caption)?);
    }
    if parts.is_empty() {
        return Err("nothing to send: the message has no text or attachment".to_owned());
    }
    let last = parts.len() - 1;
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(n, part)| {
            let mut body = json!({
                "receiver": to,
                "min_api_version": options.min_api_version,
                "sender": { "name": sender_name },
                "tracking_data": message.id,
            });
            if let (Some(body), Some(part)) = (body.as_object_mut(), part.as_object()) {
                body.extend(part.clone());
            }
            if n == last
                && let Some(keyboard) = &options.keyboard
            {
                body["keyboard"] = keyboard.clone();
            }
            body
        })
        .collect())
}

/// The requests `send` makes: a JSON POST of each of [`message_bodies`] to
/// [`SendConfig::send_url`], with [`AUTH_HEADER`] set to the auth token.
pub fn build_requests(message: &OutboundMessage, config: &SendConfig) -> Result<Vec<Request>, String> {
    let url = config.send_url();
    Ok(message_bodies(message, &config.sender_name)?
        .iter()
        .map(|body| Request::post_json(&url, body).header(AUTH_HEADER, &config.auth_token))
        .collect())
}

/// What a Viber API answer means. Viber answers `200` with `{"status", "status_message",
/// "message_token"}`:
/// - `status` 0: accepted with `message_token` as exact text (Seam's id if Viber gave none);
/// - `status` in [`RETRY_STATUSES`] (12, too many requests): retried later;
/// - `status` 1 to 24 otherwise (invalid token, receiver not registered or not subscribed,
///   bot blocked or suspended...): rejected as `<status>: <status_message> (<meaning>)`;
/// - any other non-zero `status` (Viber's "general error"): retried later;
/// - HTTP 429 and 5xx: retried later; after `retry-after` seconds if given;
/// - any other answer (another 4xx, a body that is not Viber's): rejected with the status
///   and a snippet of the body.
pub fn classify_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    message_id: &str,
) -> DeliveryResult {
    let retry = |reason: String| {
        DeliveryResult::RetryLater(RetryHint { after_ms: retry_after.and_then(retry_after_ms), reason })
    };
    let answer = serde_json::from_slice::<Value>(body).ok().filter(Value::is_object);
    let code = answer.as_ref().and_then(|a| a.get("status")).and_then(Value::as_i64);
    if status == 429 || status >= 500 {
        return retry(format!("Viber API answered {status}: {}", snippet(body)));
    }
    let (Some(answer), Some(code), true) = (&answer, code, (200..300).contains(&status)) else {
        return DeliveryResult::Rejected(format!("Viber API answered {status}: {}", snippet(body)));
    };
    if code == 0 {
        let token = answer.get("message_token").and_then(|t| id_text(t).ok());
        return DeliveryResult::Accepted(token.unwrap_or_else(|| message_id.to_owned()));
    }
    let message = json::text_at(answer, "status_message").filter(|m| !m.is_empty());
    let mut reason = match message {
        Some(message) => format!("{code}: {message}"),
        None => format!("{code}"),
    };
    match status_meaning(code) {
        Some(meaning) => reason.push_str(&format!(" ({meaning})")),
        None => reason.push_str(" (general error)"),
    }
    if RETRY_STATUSES.contains(&code) || status_meaning(code).is_none() {
        return retry(reason);
    }
    DeliveryResult::Rejected(reason)
}

/// What a failed request means: a destination the manifest does not allow, or a URL that
/// cannot be used, is rejected; transport failures are retried later.
pub fn classify_error(error: &HttpError, api_base: &str) -> DeliveryResult {
    seam_sdk::delivery::api_base_error(error, api_base, "Viber API")
}

/// Sends `message` with `config` through `transport` (the real one is
/// [`seam_sdk::http::send`]) and classifies the outcome.
///
/// A config error or a message that cannot be built is rejected without a request. The
/// messages of [`message_bodies`] are sent in order: if the first fails, that is the
/// result; once it is accepted, the result is accepted with its token, and a later failure
/// stops the send and becomes a warning. The auth token never appears in a reason.
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
        redact_result(result, &config.auth_token, "<auth-token>")
    })
}
