//! Email connector: inbound parse webhooks (SendGrid, Mailgun) or raw RFC 5322 messages in,
//! an HTTP mail API (SendGrid v3 or Mailgun) out.
//!
//! # Inbound
//! Every webhook is a `POST` in one of three shapes ([`Shape`]), fixed by the config key
//! `inbound` (`sendgrid`, `mailgun`, `raw`) or, with `auto` (the default), detected per
//! request: a `multipart/form-data` or urlencoded body is Mailgun's when it has any of
//! Mailgun's own fields (`signature`, `message-headers`, `body-plain`, `body-mime`,
//! `stripped-text`, `body-html`, `recipient`), else SendGrid's when it has any of SendGrid's
//! (`envelope`, `charsets`, `headers`, `email`, `attachment-info`, `SPF`, `dkim`); any other
//! body is a raw message. Detection never weakens authentication: each shape has its own
//! check, and without its secret every webhook of that shape is refused.
//!
//! | shape | authentication | what is read |
//! |---|---|---|
//! | SendGrid Inbound Parse | secret `secret` = query `token` (put `?token=...` in the parse URL) or header `x-seam-token` | `headers` (header block), `from`, `subject`, `text`, `html` decoded with the charset `charsets` names for each; `attachmentN` files typed by `attachment-info`; `envelope`, `spam_score`, `SPF`, `dkim`. With "send raw": the message in `email` |
//! | Mailgun route (`forward()`) | `signature` = hex HMAC-SHA256 of `timestamp` + `token` keyed with the secret `mailgun-signing-key`; `timestamp` within `max-age-secs` of now | `message-headers` (JSON `[name, value]` pairs) and the top-level header fields, `body-plain` (`body-html`), `stripped-text`, `attachment-N` files, `sender`, `recipient`. With a `mime` URL: the message in `body-mime` |
//! | raw (`content-type: message/rfc822`) | like SendGrid | the body, an RFC 5322 message |
//!
//! A missing secret is `Misconfigured` (503); a missing or wrong token or signature, or a
//! stale Mailgun timestamp, `Unauthorized` (401); a body that is not what the provider sends
//! (not a form, a form with none of the provider's fields, `message-headers` that is not
//! JSON, a message with none of the headers an email has) `Malformed` (400). Everything else
//! is answered `200` with these events (see [`map_email`]):
//!
//! | email | event |
//! |---|---|
//! | a message with a sender address | [`Event::Message`]: sender `email:<From address>` (else `Sender`, else the envelope sender), sender name the display name, external id the Message-ID (without `<>`; a content hash `sha256-...` when there is none), text with quoted history stripped, attachments (name, type, size), reply-to = first `In-Reply-To`, thread = first `References` (the root) or `In-Reply-To` or its own Message-ID, sent-at = `Date`; subject and the rest in extras (see [`message_event`]) |
//! | a bounce (`multipart/report; report-type=delivery-status`, or from `MAILER-DAEMON` / `postmaster`) whose returned headers hold the bounced Message-ID | [`Event::Delivery`] of that id: `failed` with the `Diagnostic-Code` / `Status` (or the SMTP reply quoted in the text) as reason; `delivered` / `sent` for `Action: delivered` / `relayed` |
//! | a bounce without the bounced Message-ID (truncated returned headers) | [`Event::Channel`] `bounce` with recipient, status and diagnostic |
//! | a delay notice (`Action: delayed`) | [`Event::Channel`] `delivery-delayed` |
//! | an email without any sender address (no `From`, `Sender` or envelope sender) | none (200: the provider has accepted the mail, and a retry would not give it a sender; the connector logs it) |
//!
//! Charsets, encoded words and transfer encodings are decoded by `mail-parser`; a message
//! with only HTML gets its text from [`text::html_to_text`]. Quoted history is stripped by
//! [`text::strip_quoted`] (Mailgun's own `stripped-text` is used when given); the full text
//! is kept in extras as `text_full`. Attachment content is not kept in events: only the
//! file name, type and size (Seam has no store for it yet). The host refuses webhook bodies
//! over 1 MiB, so very large mails are not accepted.
//!
//! External ids: the Message-ID is the same in every retry of a webhook and the same for
//! the same mail posted twice (e.g. to two addresses of the channel). A mail without one
//! gets `sha256-` and a hash of its content (the raw message, or SendGrid's / Mailgun's
//! header and body fields, never the multipart boundary), so a retry is recognised too.
//!
//! # Outbound
//! `send-api` chooses how `send` sends:
//! - `smtp`: the message is built as RFC 5322 (see [`smtp::build_message`]) and handed to the
//!   operator's relay (`smtp-host`, `smtp-port`, `smtp-security`, `smtp-username`,
//!   `smtp-password`) through the host's `seam:plugin/smtp`; the relay must be listed in
//!   `capabilities.smtp`. Its Message-ID is `seam.<id>@<from domain>`, the provider id that
//!   bounces quote. A 5xx reply rejects the message, anything else is retried later.
//! - `sendgrid` or `mailgun` (see [`build_request`]): SendGrid v3
//!   `POST {api-base}/v3/mail/send` (Bearer `api-key`, JSON) or Mailgun
//!   `POST {api-base}/v3/{mailgun-domain}/messages` (Basic `api:<api-key>`, form).
//!
//! Either way the message goes from `from` to the `email` identity with its subject (else
//! `default-subject`), its text as `text/plain`, `In-Reply-To` / `References` when it
//! answers a message, Seam's id (`X-Seam-Message-Id`, `custom_args.seam_message_id`,
//! `v:seam_message_id`), and its attachments fetched from their URLs and attached. HTTP
//! answers are mapped by [`classify_response`]: accepted with SendGrid's `X-Message-Id` or
//! Mailgun's id (the Message-ID, which bounces of that message quote), 429 and 5xx retried
//! later, other errors rejected with the provider's description.

#![warn(missing_docs)]

pub mod form;
mod inbound;
pub mod mail;
mod outbound;
pub mod smtp;
pub mod text;

pub use inbound::*;
pub use outbound::*;

use seam_sdk::prelude::*;

/// What the channel is.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        kind: IDENTITY_KIND.to_owned(),
        display_name: "Email".to_owned(),
        features: ChannelFeatures::TEXT | ChannelFeatures::MEDIA | ChannelFeatures::DELIVERY_STATUS,
        max_text_length: None,
        identity_kind: IDENTITY_KIND.to_owned(),
    }
}

/// The current Unix time in seconds (zero when the manifest does not grant the clock).
fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The email connector.
pub struct EmailConnector;

impl Connector for EmailConnector {
    fn describe() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> {
        let config = InboundConfig::from_lookup(config::get, config::secret)?;
        let handled = handle(&request, &config, now_secs())?;
        if let Some(note) = &handled.note {
            log::warn(note);
        }
        Ok(handled.outcome)
    }

    fn send(message: OutboundMessage) -> DeliveryResult {
        let settings = SendConfig::from_lookup(config::get, config::secret);
        let result = deliver(&message, settings, seam_sdk::http::send, seam_sdk::smtp::send, now_secs());
        match &result {
            DeliveryResult::Accepted(_) => {}
            DeliveryResult::Rejected(reason) => {
                log::warn(&format!("message {} rejected: {reason}", message.id))
            }
            DeliveryResult::RetryLater(hint) => {
                log::info(&format!("message {} to retry: {}", message.id, hint.reason));
            }
        }
        result
    }
}

seam_sdk::export_connector!(EmailConnector);

#[cfg(test)]
mod tests;
