//! Outbound over SMTP (`send-api = "smtp"`): Seam's message as an RFC 5322 message built
//! with `mail-builder`, handed to the operator's relay through the host's
//! `seam:plugin/smtp` (the relay must be in `capabilities.smtp`), and the relay's answer as a
//! delivery result. Pure functions but for the transport passed to [`send`].

use crate::outbound::{OutgoingFile, SendConfig, body_text, recipient, subject, thread_header};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use seam_sdk::prelude::*;
use seam_sdk::smtp::{Credentials, Envelope, Relay, Reply, Security, SmtpError};

/// Where the relay is and how to log in (config keys `smtp-*`).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `smtp-host`.
    pub host: String,
    /// `smtp-port`, else 587 (STARTTLS), 465 (TLS) or 25 (none).
    pub port: u16,
    /// `smtp-security`: `starttls` (the default), `tls` or `none`.
    pub security: Security,
    /// `smtp-username` and the secret `smtp-password`, for relays that need a login.
    pub login: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.login.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl SmtpSettings {
    /// The settings from trimmed config values (`get` for plain keys, `secret` for secrets;
    /// blank is unset). Errors name the key: no `smtp-host`, an unknown `smtp-security`, a
    /// bad `smtp-port`, a user name without a password or the other way round.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let value = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let host = value(get("smtp-host")).ok_or(
            "config key `smtp-host` is not set: the SMTP relay's host name, e.g. `smtp.example.com`",
        )?;
        let security = match value(get("smtp-security")).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("starttls") => Security::Starttls,
            Some("tls") => Security::Tls,
            Some("none") => Security::None,
            Some(other) => {
                return Err(format!(
                    "config key `smtp-security` is `{other}`: expected `starttls`, `tls` or `none`"
                ));
            }
        };
        let port = match value(get("smtp-port")) {
            None => match security {
                Security::Starttls => 587,
                Security::Tls => 465,
                Security::None => 25,
            },
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("config key `smtp-port` is `{p}`: not a port number"))?,
        };
        let login = match (value(get("smtp-username")), value(secret("smtp-password"))) {
            (Some(user), Some(password)) => Some((user, password)),
            (None, None) => None,
            (Some(user), None) => {
                return Err(format!("secret `smtp-password` is not set: it is needed to log in as `{user}`"));
            }
            (None, Some(_)) => {
                return Err("config key `smtp-username` is not set, but `smtp-password` is".to_owned());
            }
        };
        Ok(SmtpSettings { host, port, security, login })
    }

    /// The relay for the host call.
    pub fn relay(&self) -> Relay {
        Relay {
            host: self.host.clone(),
            port: self.port,
            security: self.security,
            credentials: self.login.as_ref().map(|(username, password)| Credentials {
                username: username.clone(),
                password: password.clone(),
            }),
        }
    }
}

/// The Message-ID (without `<>`) of Seam's message `id` sent from `from_address`:
/// `seam.<id>@<sender's domain>`, with characters a msg-id cannot hold replaced by `-`. It is
/// the provider id of the send, so a bounce that quotes it finds the message.
pub fn message_id(id: &str, from_address: &str) -> String {
    let local: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    let domain = from_address.rsplit_once('@').map_or("seam.invalid", |(_, d)| d);
    format!("seam.{local}@{domain}")
}

/// The message as sent: `From` (the `from` setting), `To`, `Subject`, `Date` (`now`,
/// seconds since the epoch), `Message-ID` ([`message_id`]), `In-Reply-To` and `References`
/// when it answers another, `X-Seam-Message-Id`, a text/plain body and the files as
/// attachments (multipart/mixed). Returns the bytes and the Message-ID.
pub fn build_message(
    message: &OutboundMessage,
    config: &SendConfig,
    files: &[OutgoingFile],
    now: u64,
) -> Result<(Vec<u8>, String), String> {
    let to = recipient(&message.to)?;
    let text = body_text(message, files)?;
    let id = message_id(&message.id, &config.from.address);
    let from = match &config.from.name {
        Some(name) => Address::new_address(Some(name.as_str()), config.from.address.as_str()),
        None => Address::new_address(None::<&str>, config.from.address.as_str()),
    };
    let mut builder = MessageBuilder::new()
        .from(from)
        .to(to.as_str())
        .subject(subject(message, config))
        .date(now as i64)
        .message_id(MessageId::new(id.clone()))
        .header("X-Seam-Message-Id", Text::new(message.id.clone()))
        .text_body(text);
    if let Some(thread) = thread_header(message.reply_to.as_deref()) {
        let inner = thread.trim_start_matches('<').trim_end_matches('>').to_owned();
        builder = builder.in_reply_to(MessageId::new(inner.clone())).references(MessageId::new(inner));
    }
    for file in files {
        builder = builder.attachment(file.mime_type.clone(), file.file_name.clone(), file.content.clone());
    }
    let bytes = builder.write_to_vec().map_err(|e| format!("cannot build the message: {e}"))?;
    Ok((bytes, id))
}

/// What the relay's answer means: taken is accepted (the provider id is the Message-ID), a
/// relay not granted, a bad envelope or a 5xx reply is rejected, anything else is retried.
pub fn classify(result: Result<Reply, SmtpError>, id: &str, relay: &str) -> DeliveryResult {
    match result {
        Ok(_) => DeliveryResult::Accepted(id.to_owned()),
        Err(SmtpError::Denied(m)) => {
            DeliveryResult::Rejected(format!("the SMTP relay {relay} is not allowed: {m}"))
        }
        Err(SmtpError::Invalid(m)) => DeliveryResult::Rejected(format!("cannot send over SMTP: {m}")),
        Err(SmtpError::Permanent(reply)) => {
            DeliveryResult::Rejected(format!("the SMTP relay refused ({}): {}", reply.code, reply.text))
        }
        Err(SmtpError::Transient(m)) => DeliveryResult::RetryLater(RetryHint {
            after_ms: None,
            reason: format!("the SMTP relay did not take the message: {m}"),
        }),
    }
}

/// Builds `message` and hands it to the relay of `settings` through `transport` (the real
/// one is [`seam_sdk::smtp::send`]); the envelope sender is the `from` address, where
/// bounces go.
pub fn send(
    message: &OutboundMessage,
    config: &SendConfig,
    settings: &SmtpSettings,
    files: &[OutgoingFile],
    now: u64,
    transport: impl FnOnce(&Relay, &Envelope, &[u8]) -> Result<Reply, SmtpError>,
) -> DeliveryResult {
    let (bytes, id) = match build_message(message, config, files, now) {
        Ok(built) => built,
        Err(reason) => return DeliveryResult::Rejected(reason),
    };
    let envelope = Envelope {
        sender: Some(config.from.address.clone()),
        recipients: vec![message.to.value.trim().to_owned()],
    };
    let relay = settings.relay();
    let result = transport(&relay, &envelope, &bytes);
    classify(result, &id, &format!("{}:{}", settings.host, settings.port))
}
