//! Facebook Messenger connector: Messenger Platform (Page) webhooks in, Send API
//! `/me/messages` out.
//!
//! # Inbound
//! Meta calls the webhook URL in two ways:
//!
//! - `GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...` once, when the URL is
//!   registered. The connector answers `200 text/plain` with the challenge if the token
//!   matches the secret `verify-token` (compared in constant time), 401 otherwise, and 503
//!   while `verify-token` is not set.
//! - `POST` with a JSON body for every batch of updates, signed with `X-Hub-Signature-256:
//!   sha256=<hex HMAC-SHA256 of the raw body keyed with the app secret>`. The signature is
//!   checked against the secret `app-secret` before anything else; without that secret every
//!   POST is refused (503), a missing or wrong signature is 401, a body that is not a Meta
//!   webhook is 400. Anything valid is answered `200`, even when it holds nothing Seam keeps.
//!
//! A body is `{"object": "page", "entry": [{"id", "time", "messaging": [...]}]}` (another
//! `object`, e.g. `instagram`, is accepted with no events; `standby` items, which belong to
//! another app holding the thread, are not read). Each `messaging` item becomes events (see
//! [`map_webhook`]):
//!
//! | item | events |
//! |---|---|
//! | `message` | message: `mid` as external id, text, attachments (image, audio, video, file, sticker, location, fallback link...), `reply_to.mid` as reply-to, `quick_reply.payload` in extras |
//! | `message` with `is_echo: true` (the page's own message, sent by Seam or by a person in the Page Inbox) | channel event `message-echo` about the recipient, with `app_id` and `metadata` (Seam's message id for its own sends) so the host can tell them apart |
//! | `delivery` | a delivery update `delivered` for each of `mids`; none when there are no `mids` (Meta then gives only a watermark: every message before it was delivered, which the host cannot map to messages) |
//! | `read` | channel event `read` with the `watermark` (every message sent before it was read; Meta names no messages, so no delivery update can be given) |
//! | `postback` (a button press) | channel event `postback` (`title`, `payload`, `referral`) |
//! | `optin` | channel event `optin` (`ref`, `user_ref`, notification fields); for a recurring notification opt-in (`type: notification_messages`) also a consent change: granted with a token, withdrawn on `STOP NOTIFICATIONS` |
//! | `account_linking` | channel event `account-linking` (`status` linked / unlinked, `authorization_code`) |
//! | `reaction` | channel event `reaction` (`mid`, `reaction`, `emoji`, `removed` for `unreact`) |
//! | `referral` (an m.me link or ad opened in an existing thread) | channel event `referral` |
//! | anything else (handover, policy enforcement, game plays...) | nothing |
//!
//! Users are `messenger:<psid>` (the page-scoped id in `sender.id`). Messenger gives no
//! names in webhooks. Times are Meta's `timestamp` (milliseconds already). Channel events
//! without an id of their own are keyed `<kind>:<psid>:...:<timestamp>`, so a retried
//! webhook gives the same ids.
//!
//! # Outbound
//! `send` POSTs one or more messages to `{api-base}/me/messages` with the secret
//! `page-access-token` as a Bearer token (never in the URL; see [`message_bodies`] and
//! [`build_requests`]), and maps Meta's answer with [`classify_response`]: the
//! `message_id` on success, Graph error codes to retry-later or rejected.

#![warn(missing_docs)]

mod inbound;
mod outbound;

pub use inbound::*;
pub use outbound::*;

pub use seam_sdk::meta::{
    APP_SECRET_KEY, SIGNATURE_HEADER, VERIFY_TOKEN_KEY, check_signature, verify_subscription,
};
use seam_sdk::prelude::*;
use seam_sdk::serde_json;

/// What the channel is.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        kind: "messenger".to_owned(),
        display_name: "Facebook Messenger".to_owned(),
        features: ChannelFeatures::TEXT
            | ChannelFeatures::MEDIA
            | ChannelFeatures::RICH
            | ChannelFeatures::DELIVERY_STATUS
            | ChannelFeatures::READ_STATUS,
        max_text_length: Some(MAX_TEXT_CHARS as u32),
        identity_kind: IDENTITY_KIND.to_owned(),
    }
}

/// Handles one request to the webhook URL: `GET` is the subscription check
/// ([`verify_subscription`]); `POST` is checked with [`check_signature`], parsed and mapped
/// with [`map_webhook`], and answered `200` with an empty body.
pub fn handle(
    request: &HttpRequest,
    app_secret: Option<&str>,
    verify_token: Option<&str>,
) -> Result<WebhookOutcome, WebhookError> {
    if request.method.eq_ignore_ascii_case("GET") {
        return verify_subscription(request, verify_token);
    }
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(WebhookError::Malformed(format!(
            "Messenger webhooks are GET (subscription check) or POST, got {}",
            request.method
        )));
    }
    check_signature(app_secret, request.header(SIGNATURE_HEADER), &request.body)?;
    let body: serde_json::Value = json::parse(&request.body).map_err(WebhookError::Malformed)?;
    let events = map_webhook(&body).map_err(WebhookError::Malformed)?;
    Ok(WebhookOutcome::accept(events))
}

/// The Facebook Messenger connector.
pub struct MessengerConnector;

impl Connector for MessengerConnector {
    fn describe() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> {
        handle(
            &request,
            config::secret(APP_SECRET_KEY).as_deref(),
            config::secret(VERIFY_TOKEN_KEY).as_deref(),
        )
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

seam_sdk::export_connector!(MessengerConnector);

#[cfg(test)]
mod tests;
