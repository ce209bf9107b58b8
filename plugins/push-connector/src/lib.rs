//! Push connector: Seam's messages as mobile / web push notifications through Firebase Cloud
//! Messaging (the FCM HTTP v1 API). Send-only.
//!
//! # Inbound
//! None. Push is one-way: devices do not answer through FCM, and FCM calls no webhook. Every
//! request to the channel's webhook URL is refused as malformed ("the push channel has no
//! webhook"), so nothing can inject events through it. Device registration tokens are
//! identities of kind `push`; the app's backend adds them to customers through Seam's API
//! (the connector keeps no registry of devices).
//!
//! # Outbound
//! `send` POSTs one FCM message per Seam message to
//! `{api-base}/v1/projects/{project-id}/messages:send` with the secret `access-token` as a
//! Bearer token ([`message_body`], [`build_request`]):
//!
//! ```json
//! {"message": {
//!   "token": "<the push identity's value: the device registration token>",
//!   "notification": {"title": "<subject, else config title>", "body": "<text>", "image": "<url of an image attachment>"},
//!   "data": {"seam_message_id": "<Seam's message id>", "<extras member>": "<its value as text>"},
//!   "android": {...}, "apns": {...}, "webpush": {...}, "fcm_options": {...}
//! }}
//! ```
//!
//! FCM's answer is mapped by [`classify_response`]: the message `name`
//! (`projects/<p>/messages/<id>`) on success; the FCM error code (`details[].errorCode`,
//! else the error `status`) to rejected (unregistered token, invalid argument, sender id
//! mismatch, authentication errors) or retry-later (quota exceeded, unavailable, internal),
//! honouring `Retry-After`. FCM reports no delivery, so the channel gives no delivery
//! updates.
//!
//! The access token is an OAuth 2.0 token with the `firebase.messaging` scope. Minting it
//! from a service account key (a signed JWT exchanged at Google's token endpoint) is out of
//! scope: the operator provides a current token (such tokens expire after an hour, so in
//! practice something outside Seam refreshes the config value).

#![warn(missing_docs)]

pub use seam_sdk::delivery::{SNIPPET_CHARS, retry_after_ms, snippet};
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Map, Value, json};

/// The identity kind of push recipients (and the channel kind); the value is an FCM
/// registration token.
pub const IDENTITY_KIND: &str = "push";

/// The FCM API base used when `api-base` is not set.
pub const DEFAULT_API_BASE: &str = "https://fcm.googleapis.com";

/// The notification title used when neither the message's subject nor `title` is set.
pub const DEFAULT_TITLE: &str = "New message";

/// The `data` key carrying Seam's message id.
pub const MESSAGE_ID_KEY: &str = "seam_message_id";

/// Members of a message's `extras` that are FCM message options (platform overrides), sent
/// as they are beside `notification`; every other member becomes a `data` entry.
pub const OPTION_KEYS: &[&str] = &["android", "apns", "webpush", "fcm_options"];

/// FCM error codes meaning "not now": retried later.
pub const RETRY_CODES: &[&str] = &["QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"];

/// FCM error codes meaning the access token is not accepted.
pub const AUTH_CODES: &[&str] = &["THIRD_PARTY_AUTH_ERROR", "UNAUTHENTICATED", "PERMISSION_DENIED"];

/// What the channel is.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        kind: "push".to_owned(),
        display_name: "Push notifications (FCM)".to_owned(),
        features: ChannelFeatures::TEXT,
        max_text_length: None,
        identity_kind: IDENTITY_KIND.to_owned(),
    }
}

/// Refuses a webhook request: the push channel receives nothing.
pub fn handle(request: &HttpRequest) -> Result<WebhookOutcome, WebhookError> {
    Err(WebhookError::Malformed(format!(
        "the push channel has no webhook ({} {} refused): push is send-only; device tokens are added \
         as `push` identities through Seam's API",
        request.method, request.path
    )))
}

/// Where and how `send` reaches FCM.
#[derive(Clone, PartialEq, Eq)]
pub struct SendConfig {
    /// `api-base`, without a trailing `/`.
    pub api_base: String,
    /// `project-id`: the Firebase project messages are sent through.
    pub project_id: String,
    /// The secret `access-token`, sent as a Bearer token.
    pub access_token: String,
    /// `title`: the notification title when the message has no subject.
    pub title: String,
}

impl std::fmt::Debug for SendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendConfig")
            .field("api_base", &self.api_base)
            .field("project_id", &self.project_id)
            .field("access_token", &"<redacted>")
            .field("title", &self.title)
            .finish()
    }
}

impl SendConfig {
    /// The settings from config values looked up with `get` (plain keys) and `secret`
    /// (secrets); values are trimmed. `api-base` defaults to [`DEFAULT_API_BASE`], `title`
    /// to [`DEFAULT_TITLE`]; a missing `project-id` or `access-token`, or a project id with
    /// characters that cannot be in one (`/`, `?`, spaces...), is an error naming the key.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let value = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let api_base = value(get("api-base")).unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let title = value(get("title")).unwrap_or_else(|| DEFAULT_TITLE.to_owned());
        let project_id = value(get("project-id")).ok_or_else(|| {
            "config key `project-id` is not set: the Firebase project id to send through".to_owned()
        })?;
        if !project_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')) {
            return Err(format!(
                "config key `project-id` must be a Firebase project id (letters, digits, `-`), not `{project_id}`"
            ));
        }
        let access_token = value(secret("access-token")).ok_or_else(|| {
            "secret `access-token` is not set: an OAuth 2.0 token for the FCM API is needed to send"
                .to_owned()
        })?;
        Ok(SendConfig {
            api_base: api_base.trim_end_matches('/').to_owned(),
            project_id,
            access_token,
            title,
        })
    }

    /// `{api-base}/v1/projects/{project-id}/messages:send`.
    pub fn send_url(&self) -> String {
        format!("{}/v1/projects/{}/messages:send", self.api_base, self.project_id)
    }
}

/// The registration token of a `push` identity; other kinds, or an empty value, are errors.
pub fn device_token(to: &Identity) -> Result<String, String> {
    if to.kind != IDENTITY_KIND {
        return Err(format!(
            "cannot send to a `{}` identity: the push channel addresses `push` identities (FCM registration tokens)",
            to.kind
        ));
    }
    let token = to.value.trim();
    if token.is_empty() {
        return Err("the recipient's registration token is empty".to_owned());
    }
    Ok(token.to_owned())
}

/// A non-empty, non-blank string, trimmed.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Whether FCM refuses `key` in `data`: `from`, `notification`, `message_type`, and keys
/// starting with `google` or `gcm`.
pub fn is_reserved_data_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    matches!(lower.as_str(), "from" | "notification" | "message_type")
        || lower.starts_with("google")
        || lower.starts_with("gcm")
}

/// The FCM `message` of an outbound message, wrapped as `{"message": {...}}` (see the crate
/// docs for its shape):
/// - `token`: the `push` identity's value;
/// - `notification`: `title` (the subject, else `default_title`), `body` (the text) and
///   `image` (the URL of an image attachment, if there is one);
/// - `data`: `seam_message_id` and each member of `extras` except [`OPTION_KEYS`] (FCM data
///   values are strings: strings go as they are, other values as JSON text);
/// - extras `android`, `apns`, `webpush`, `fcm_options`: copied into the message.
///
/// Errors: another identity kind, nothing to show (no text and no image), an attachment
/// that is not an image with a URL (a notification carries one picture at most), extras
/// that are not a JSON object, a reserved data key, a template.
pub fn message_body(message: &OutboundMessage, default_title: &str) -> Result<Value, String> {
    let token = device_token(&message.to)?;
    if message.template.is_some() {
        return Err("push notifications have no templates: send text instead".to_owned());
    }
    let image = match message.attachments.as_slice() {
        [] => None,
        [only] if only.kind == AttachmentKind::Image => {
            Some(given(only.url.as_deref()).ok_or_else(|| {
                "attachment 0 (image) has no url: a notification image goes by URL".to_owned()
            })?)
        }
        _ => {
            return Err(format!(
                "a push notification carries at most one image (with a URL); this message has {} attachment(s)",
                message.attachments.len()
            ));
        }
    };
    let text = given(message.text.as_deref());
    if text.is_none() && image.is_none() {
        return Err("nothing to send: the message has no text".to_owned());
    }
    let mut notification = Map::new();
    notification
        .insert("title".to_owned(), json!(given(message.subject.as_deref()).unwrap_or(default_title)));
    if let Some(text) = text {
        notification.insert("body".to_owned(), json!(text));
    }
    if let Some(image) = image {
        notification.insert("image".to_owned(), json!(image));
    }
    let mut data = Map::new();
    data.insert(MESSAGE_ID_KEY.to_owned(), json!(message.id));
    let mut fcm = Map::new();
    fcm.insert("token".to_owned(), json!(token));
    fcm.insert("notification".to_owned(), Value::Object(notification));
    if let Some(extras) = message.extras.as_deref().filter(|e| !e.trim().is_empty()) {
        let Ok(Value::Object(extras)) = serde_json::from_str::<Value>(extras) else {
            return Err("the message's extras are not a JSON object".to_owned());
        };
        for (key, value) in extras {
            if OPTION_KEYS.contains(&key.as_str()) {
                if !value.is_object() {
                    return Err(format!("extras `{key}` must be an object (FCM's {key} options)"));
                }
                fcm.insert(key, value);
            } else if is_reserved_data_key(&key) {
                return Err(format!("extras `{key}` cannot be a data key: FCM reserves it"));
            } else if key != MESSAGE_ID_KEY && !value.is_null() {
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                data.insert(key, json!(text));
            }
        }
    }
    fcm.insert("data".to_owned(), Value::Object(data));
    Ok(json!({ "message": fcm }))
}

/// The request `send` makes: a JSON POST of [`message_body`] to [`SendConfig::send_url`],
/// with `authorization: Bearer <access-token>`.
pub fn build_request(message: &OutboundMessage, config: &SendConfig) -> Result<Request, String> {
    let body = message_body(message, &config.title)?;
    Ok(Request::post_json(&config.send_url(), &body)
        .header("authorization", &format!("Bearer {}", config.access_token)))
}

/// An FCM v1 error answer: `{"error": {"code": 404, "message", "status": "NOT_FOUND",
/// "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode":
/// "UNREGISTERED"}, ...]}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcmError {
    /// The FCM error code (`details[].errorCode`), else the error's `status`, if any.
    pub code: Option<String>,
    /// `error.message`, if any.
    pub message: Option<String>,
    /// A `google.rpc.RetryInfo` detail's `retryDelay` (e.g. `"30s"`), as milliseconds.
    pub retry_delay_ms: Option<u64>,
}

/// A protobuf duration in JSON (`"30s"`, `"1.5s"`) as milliseconds.
fn duration_ms(value: &str) -> Option<u64> {
    let seconds: f64 = value.trim().strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

/// The FCM error in an answer `body`, if it holds one.
pub fn fcm_error(body: &[u8]) -> Option<FcmError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error").filter(|e| e.is_object())?;
    let details = error.get("details").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let detail_code = details.iter().find_map(|d| json::text_at(d, "errorCode")).filter(|c| !c.is_empty());
    let retry_delay_ms =
        details.iter().find_map(|d| d.get("retryDelay").and_then(Value::as_str).and_then(duration_ms));
    Some(FcmError {
        code: detail_code.or_else(|| json::text_at(error, "status").filter(|s| !s.is_empty())),
        message: json::text_at(error, "message").filter(|m| !m.trim().is_empty()),
        retry_delay_ms,
    })
}

/// What an FCM answer means:
/// - 2xx: accepted with the message `name` (`projects/<p>/messages/<id>`; Seam's id if FCM
///   gave none);
/// - error code [`RETRY_CODES`] (`QUOTA_EXCEEDED`, `UNAVAILABLE`, `INTERNAL`), or HTTP 429
///   or 5xx: retried later, after `Retry-After` seconds (else a `RetryInfo` delay) if given;
/// - `UNREGISTERED` (the app was uninstalled or the token expired), `INVALID_ARGUMENT`,
///   `SENDER_ID_MISMATCH`, [`AUTH_CODES`] and any other 4xx: rejected as `<code>:
///   <message>`, with a word on what the well-known codes mean.
pub fn classify_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    message_id: &str,
) -> DeliveryResult {
    if (200..300).contains(&status) {
        let name = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| json::text_at(&v, "name"))
            .filter(|n| !n.is_empty());
        return DeliveryResult::Accepted(name.unwrap_or_else(|| message_id.to_owned()));
    }
    let error = fcm_error(body);
    let code = error.as_ref().and_then(|e| e.code.clone());
    let mut reason = match (&code, error.as_ref().and_then(|e| e.message.as_deref())) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => format!("{code} (FCM answered {status})"),
        (None, Some(message)) => format!("FCM answered {status}: {message}"),
        (None, None) => format!("FCM answered {status}: {}", snippet(body)),
    };
    let code = code.as_deref().unwrap_or("");
    let meaning = match code {
        "UNREGISTERED" => {
            Some("the registration token is no longer valid: the app was uninstalled or the token expired")
        }
        "SENDER_ID_MISMATCH" => Some("the token belongs to another Firebase project"),
        _ if AUTH_CODES.contains(&code) => {
            Some("the access-token is not accepted (expired, or lacks the firebase.messaging scope)")
        }
        _ => None,
    };
    if let Some(meaning) = meaning {
        reason.push_str(&format!(" ({meaning})"));
    }
    let known_permanent = matches!(code, "UNREGISTERED" | "INVALID_ARGUMENT" | "SENDER_ID_MISMATCH")
        || AUTH_CODES.contains(&code);
    if RETRY_CODES.contains(&code) || (!known_permanent && (status == 429 || status >= 500)) {
        let after_ms = retry_after.and_then(retry_after_ms).or(error.and_then(|e| e.retry_delay_ms));
        return DeliveryResult::RetryLater(RetryHint { after_ms, reason });
    }
    DeliveryResult::Rejected(reason)
}

/// What a failed request means: a destination the manifest does not allow, or a URL that
/// cannot be used, is rejected; transport failures are retried later.
pub fn classify_error(error: &HttpError, api_base: &str) -> DeliveryResult {
    seam_sdk::delivery::api_base_error(error, api_base, "FCM API")
}

/// `text` with every occurrence of `secret` replaced, so a token never reaches a reason.
fn redact(text: String, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) { text } else { text.replace(secret, "<access-token>") }
}

/// Sends `message` with `config` through `transport` (the real one is
/// [`seam_sdk::http::send`]) and classifies the outcome. A config error or a message that
/// cannot be built is rejected without a request; the access token never appears in a
/// reason.
pub fn deliver(
    message: &OutboundMessage,
    config: Result<SendConfig, String>,
    transport: impl FnOnce(&Request) -> Result<Response, HttpError>,
) -> DeliveryResult {
    let config = match config {
        Ok(config) => config,
        Err(reason) => return DeliveryResult::Rejected(reason),
    };
    let request = match build_request(message, &config) {
        Ok(request) => request,
        Err(reason) => return DeliveryResult::Rejected(reason),
    };
    let result = match transport(&request) {
        Ok(response) => {
            classify_response(response.status, response.header("retry-after"), &response.body, &message.id)
        }
        Err(error) => classify_error(&error, &config.api_base),
    };
    match result {
        DeliveryResult::Accepted(id) => DeliveryResult::Accepted(id),
        DeliveryResult::Rejected(reason) => DeliveryResult::Rejected(redact(reason, &config.access_token)),
        DeliveryResult::RetryLater(hint) => DeliveryResult::RetryLater(RetryHint {
            after_ms: hint.after_ms,
            reason: redact(hint.reason, &config.access_token),
        }),
    }
}

/// The FCM push connector.
pub struct PushConnector;

impl Connector for PushConnector {
    fn describe() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> {
        handle(&request)
    }

    fn send(message: OutboundMessage) -> DeliveryResult {
        let settings = SendConfig::from_lookup(config::get, config::secret);
        let result = deliver(&message, settings, seam_sdk::http::send);
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

seam_sdk::export_connector!(PushConnector);

#[cfg(test)]
mod tests;
