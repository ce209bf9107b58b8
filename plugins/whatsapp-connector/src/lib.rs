//! WhatsApp Cloud API connector: Meta's WhatsApp Business webhooks in, Graph API
//! `/{phone-number-id}/messages` out.
//!
//! # Inbound
//! Meta calls the webhook URL in two ways:
//!
//! - `GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...` once, when the URL is
//!   registered. The connector answers `200 text/plain` with the challenge if the token
//!   matches the secret `verify-token` (compared in constant time), 401 otherwise, and 503
//!   while `verify-token` is not set.
//! - `POST` with a JSON body for every update, signed with `X-Hub-Signature-256:
//!   sha256=<hex HMAC-SHA256 of the raw body keyed with the app secret>`. The signature is
//!   checked against the secret `app-secret` before anything else; without that secret every
//!   POST is refused (503), a missing or wrong signature is 401, a body that is not a Meta
//!   webhook is 400. Anything valid is answered `200`, even when it holds nothing Seam keeps.
//!
//! A body is `{"object": "whatsapp_business_account", "entry": [{"changes": [{"field",
//! "value"}]}]}` (another `object`, e.g. a Page webhook sent to the same URL, is accepted
//! with no events). Each change becomes events (see [`map_webhook`]):
//!
//! | change / payload | event |
//! |---|---|
//! | `messages`: `text` | message with the text |
//! | `image`, `video`, `audio` (`voice: true`: a voice note), `document`, `sticker` | message with one attachment: media id as `provider-id`, mime type, caption, file name; the media object (sha256, `animated`...) as the attachment's extras |
//! | `location` (current or chosen) | message with a `location` attachment; name, address, url in its extras |
//! | `contacts` | message with one `contact` attachment per card (the card as extras) |
//! | `interactive` (`button_reply`, `list_reply`, `nfm_reply`), `button` | message whose text is the title / button text / flow body; ids, payload and the parsed flow response under `reply` in extras |
//! | `order` | message with the order's text; `order` in extras |
//! | any message with `referral`, `context.forwarded`... | the same message, with `referral`, `forwarded`, `frequently_forwarded` in extras |
//! | `unsupported`, `unknown`, unrecognised types, messages with `errors` | message without text; the errors (of the message and of the change) under `errors` in extras |
//! | `reaction` | channel event `reaction` (`removed: true` when the emoji is empty or missing) |
//! | `edit` | message edit of `original_message_id` (edit id: the edit's own message id) |
//! | `revoke` | channel event `message-deleted` |
//! | `request_welcome` | channel event `chat-opened` |
//! | `system` (identity, number or user id change) | channel event `system` with the details |
//! | `messages`: `statuses` `sent` / `delivered` / `read` / `failed` | delivery update (other statuses are ignored) |
//! | `message_template_status_update` | channel event `template-status` |
//! | `user_preferences`: `marketing_messages` `stop` / `resume` | consent change (others: channel event `user-preferences`) |
//! | `smb_message_echoes` (a message the business sent from the WhatsApp Business app) | channel event `message-echo` |
//! | any other field | nothing |
//!
//! Users are `whatsapp:<wa_id>`. Before the first event about each user in a webhook (a
//! message, edit, channel event or consent change; not a delivery update) whose `wa_id` is a
//! phone number (digits only), an identity hint links `whatsapp:<wa_id>` to `phone:+<wa_id>`.
//!
//! # Outbound
//! `send` POSTs one or more messages to `{api-base}/{phone-number-id}/messages` with the
//! secret `access-token` as a Bearer token (see [`message_bodies`] and [`build_requests`]),
//! and maps Meta's answer with [`classify_response`]: the message id on success, Graph
//! error codes to retry-later or rejected.

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
        kind: "whatsapp".to_owned(),
        display_name: "WhatsApp".to_owned(),
        features: ChannelFeatures::TEXT
            | ChannelFeatures::MEDIA
            | ChannelFeatures::TEMPLATES
            | ChannelFeatures::RICH
            | ChannelFeatures::DELIVERY_STATUS
            | ChannelFeatures::READ_STATUS,
        max_text_length: Some(4096),
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
            "WhatsApp webhooks are GET (subscription check) or POST, got {}",
            request.method
        )));
    }
    check_signature(app_secret, request.header(SIGNATURE_HEADER), &request.body)?;
    let body: serde_json::Value = json::parse(&request.body).map_err(WebhookError::Malformed)?;
    let events = map_webhook(&body).map_err(WebhookError::Malformed)?;
    Ok(WebhookOutcome::accept(events))
}

/// The WhatsApp Cloud API connector.
pub struct WhatsAppConnector;

impl Connector for WhatsAppConnector {
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

seam_sdk::export_connector!(WhatsAppConnector);

#[cfg(test)]
mod tests;
