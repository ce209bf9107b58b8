//! Viber connector: a Viber bot's REST API callbacks in, `/pa/send_message` out.
//!
//! # Inbound
//! Viber POSTs one JSON callback per event to the URL set with `set_webhook`, signed with
//! `X-Viber-Content-Signature: <hex HMAC-SHA256 of the raw body keyed with the bot's auth
//! token>`. The signature is checked against the secret `auth-token` before anything else:
//! without that secret every callback is refused (503), a missing or wrong signature is 401,
//! a body that is not a Viber callback (not JSON, no `event`, a message without
//! `message_token` or sender) is 400. Anything valid is answered `200` with an empty body,
//! even when it holds nothing Seam keeps. Each callback becomes at most one event (see
//! [`map_callback`]):
//!
//! | `event` | event |
//! |---|---|
//! | `message`, type `text` | message with the text |
//! | `message`, type `picture` / `video` / `file` | message with an image / video / document attachment (`media` URL, file name, size); a picture's description is the text |
//! | `message`, type `sticker` | message with a sticker attachment (`sticker_id` as provider id) |
//! | `message`, type `location` | message with a location attachment |
//! | `message`, type `contact` | message with a contact attachment (name, phone number in its extras) |
//! | `message`, type `url` | message with an `other` attachment whose URL is the link |
//! | `message`, any other type (`rich_media`...) | message with its text, if any |
//! | `delivered` / `seen` / `failed` | delivery update `delivered` / `read` / `failed` (reason: `desc`) of `message_token` |
//! | `subscribed` | consent change, granted, reason `subscribed` |
//! | `unsubscribed` | consent change, not granted, reason `unsubscribed` |
//! | `conversation_started` | channel event `conversation-started` (`type`, `context`, `subscribed`, `user`) |
//! | `webhook` (the `set_webhook` check), `client_status`, anything else | nothing |
//!
//! Users are `viber:<user id>`. A message's external id is its `message_token`, kept as
//! exact decimal text (Viber's tokens are 64-bit integers: they are never read through a
//! float), so a retried callback has the same id. Times are Viber's `timestamp`
//! (milliseconds already).
//!
//! # Outbound
//! `send` POSTs one or more messages to `{api-base}/pa/send_message` with the auth token in
//! `X-Viber-Auth-Token` (see [`message_bodies`] and [`build_requests`]), and maps Viber's
//! answer with [`classify_response`]: the `message_token` on success (which the `delivered`,
//! `seen` and `failed` callbacks refer to), Viber's status codes to retry-later or rejected.

#![warn(missing_docs)]

mod inbound;
mod outbound;

pub use inbound::*;
pub use outbound::*;

use seam_sdk::prelude::*;
use seam_sdk::serde_json;

/// Header carrying the hex HMAC-SHA256 of the raw body keyed with the auth token.
pub const SIGNATURE_HEADER: &str = "x-viber-content-signature";

/// Config key of the bot's auth token (verifies callbacks, authenticates sends).
pub const AUTH_TOKEN_KEY: &str = "auth-token";

/// What the channel is.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        kind: "viber".to_owned(),
        display_name: "Viber".to_owned(),
        features: ChannelFeatures::TEXT
            | ChannelFeatures::MEDIA
            | ChannelFeatures::RICH
            | ChannelFeatures::DELIVERY_STATUS
            | ChannelFeatures::READ_STATUS,
        max_text_length: Some(MAX_TEXT_CHARS as u32),
        identity_kind: IDENTITY_KIND.to_owned(),
    }
}

/// Checks `X-Viber-Content-Signature` (`signature`, the header's value) against `body` with
/// the bot's `auth_token`. A missing token is `Misconfigured`; a missing or wrong signature
/// is `Unauthorized`.
pub fn check_signature(
    auth_token: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), WebhookError> {
    let Some(token) = auth_token.filter(|t| !t.trim().is_empty()) else {
        return Err(WebhookError::Misconfigured(format!(
            "secret `{AUTH_TOKEN_KEY}` is not set: it is needed to check the signature of Viber's callbacks"
        )));
    };
    let Some(given) = signature.filter(|s| !s.trim().is_empty()) else {
        return Err(WebhookError::Unauthorized(format!("missing `{SIGNATURE_HEADER}` header")));
    };
    if signature::verify_hmac_sha256_hex(token.trim().as_bytes(), body, given) {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized(format!(
            "`{SIGNATURE_HEADER}` does not match the body (expected the hex HMAC-SHA256 of the raw body keyed \
             with the secret `{AUTH_TOKEN_KEY}`)"
        )))
    }
}

/// Handles one request to the webhook URL: only `POST` (Viber sends nothing else); checked
/// with [`check_signature`], parsed and mapped with [`map_callback`], and answered `200`
/// with an empty body.
pub fn handle(request: &HttpRequest, auth_token: Option<&str>) -> Result<WebhookOutcome, WebhookError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(WebhookError::Malformed(format!("Viber callbacks are POST, got {}", request.method)));
    }
    check_signature(auth_token, request.header(SIGNATURE_HEADER), &request.body)?;
    let body: serde_json::Value = json::parse(&request.body).map_err(WebhookError::Malformed)?;
    let events = map_callback(&body).map_err(WebhookError::Malformed)?;
    Ok(WebhookOutcome::accept(events))
}

/// The Viber bot connector.
pub struct ViberConnector;

impl Connector for ViberConnector {
    fn describe() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> {
        handle(&request, config::secret(AUTH_TOKEN_KEY).as_deref())
    }

    fn send(message: OutboundMessage) -> DeliveryResult {
        let settings = SendConfig::from_lookup(config::get, config::secret);
        let sent = deliver(&message, settings, seam_sdk::http::send);
        for warning in &sent.warnings {
            log::warn(&format!("message {}: {warning}", message.id));
        }
        match &sent.result {
            DeliveryResult::Accepted(_) => {}
            DeliveryResult::Rejected(reason) => {
                log::warn(&format!("message {} rejected: {reason}", message.id));
            }
            DeliveryResult::RetryLater(hint) => {
                log::info(&format!("message {} to retry: {}", message.id, hint.reason));
            }
        }
        sent.result
    }
}

seam_sdk::export_connector!(ViberConnector);

#[cfg(test)]
mod tests;
