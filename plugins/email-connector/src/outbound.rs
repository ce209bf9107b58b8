//! Outbound: Seam's messages as SendGrid v3 or Mailgun API requests, and the providers'
//! answers as delivery results. Pure functions; only [`deliver`]'s transport touches the
//! network.

use crate::form::{self, FormField};
use crate::inbound::IDENTITY_KIND;
use crate::mail::{self, Mailbox};
use crate::smtp::SmtpSettings;
use base64::Engine as _;
pub use seam_sdk::delivery::{SNIPPET_CHARS, retry_after_ms, snippet};
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Map, Value, json};
use seam_sdk::smtp::{Envelope, Relay, Reply, SmtpError};

/// SendGrid's API base used when `api-base` is not set and `send-api` is `sendgrid`.
pub const DEFAULT_SENDGRID_BASE: &str = "https://api.sendgrid.com";

/// Mailgun's API base used when `api-base` is not set and `send-api` is `mailgun` (EU
/// domains use `https://api.eu.mailgun.net`).
pub const DEFAULT_MAILGUN_BASE: &str = "https://api.mailgun.net";

/// The subject of a message without one when `default-subject` is not set.
pub const DEFAULT_SUBJECT: &str = "Message from support";

/// Most bytes of all attachments of one message together (each is fetched from its URL).
pub const MAX_ATTACHMENT_BYTES: usize = 4 * 1024 * 1024;

/// Which HTTP mail API sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendApi {
    /// SendGrid v3 `mail/send`.
    SendGrid,
    /// Mailgun `messages`.
    Mailgun,
    /// An SMTP relay (`smtp-*` keys), through the host's `seam:plugin/smtp`.
    Smtp,
}

impl SendApi {
    /// The provider's name, for reasons.
    pub fn name(self) -> &'static str {
        match self {
            SendApi::SendGrid => "SendGrid",
            SendApi::Mailgun => "Mailgun",
            SendApi::Smtp => "SMTP",
        }
    }
}

/// Where and how `send` reaches the mail API.
#[derive(Clone, PartialEq, Eq)]
pub struct SendConfig {
    /// `send-api`.
    pub api: SendApi,
    /// `api-base`, without a trailing `/`.
    pub api_base: String,
    /// The secret `api-key`.
    pub api_key: String,
    /// `from`: the sender address and display name.
    pub from: Mailbox,
    /// `mailgun-domain` (Mailgun only).
    pub mailgun_domain: Option<String>,
    /// `default-subject`.
    pub default_subject: String,
    /// The relay, when `send-api` is `smtp`.
    pub smtp: Option<SmtpSettings>,
}

impl std::fmt::Debug for SendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendConfig")
            .field("api", &self.api)
            .field("api_base", &self.api_base)
            .field("api_key", &"<redacted>")
            .field("from", &self.from)
            .field("mailgun_domain", &self.mailgun_domain)
            .field("default_subject", &self.default_subject)
            .field("smtp", &self.smtp)
            .finish()
    }
}

impl SendConfig {
    /// The settings from config values looked up with `get` (plain keys) and `secret`
    /// (secrets); values are trimmed, blank ones count as unset. Errors name the key: a
    /// missing or unknown `send-api`, a missing `api-key` (HTTP APIs), a `from` without an
    /// address, a missing or malformed `mailgun-domain` for Mailgun, bad `smtp-*` settings
    /// for SMTP ([`SmtpSettings::from_lookup`]).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let value = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let api = match value(get("send-api")).map(|v| v.to_ascii_lowercase()).as_deref() {
            Some("sendgrid") => SendApi::SendGrid,
            Some("mailgun") => SendApi::Mailgun,
            Some("smtp") => SendApi::Smtp,
            Some(other) => {
                return Err(format!(
                    "config key `send-api` is `{other}`: expected `sendgrid`, `mailgun` or `smtp`"
                ));
            }
            None => {
                return Err("config key `send-api` is not set: `sendgrid`, `mailgun` or `smtp`, the way \
                            email is sent"
                    .to_owned());
            }
        };
        let smtp = match api {
            SendApi::Smtp => Some(SmtpSettings::from_lookup(&get, &secret)?),
            _ => None,
        };
        let api_key = match api {
            SendApi::Smtp => {
                smtp.as_ref().and_then(|s| s.login.as_ref()).map(|(_, p)| p.clone()).unwrap_or_default()
            }
            _ => value(secret("api-key")).ok_or_else(|| {
                format!("secret `api-key` is not set: it is needed to call the {} API", api.name())
            })?,
        };
        let from_value = value(get("from")).ok_or_else(|| {
            "config key `from` is not set: the address messages are sent from, e.g. `Support <support@example.com>`"
                .to_owned()
        })?;
        let from = mail::parse_mailbox(&from_value)
            .filter(|m| valid_address(&m.address))
            .ok_or_else(|| format!("config key `from` is `{from_value}`: it has no valid email address"))?;
        let mailgun_domain = value(get("mailgun-domain"));
        if api == SendApi::Mailgun {
            match &mailgun_domain {
                None => {
                    return Err("config key `mailgun-domain` is not set: the Mailgun sending domain, e.g. \
                                `mg.example.com`"
                        .to_owned());
                }
                Some(d) if !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') => {
                    return Err(format!("config key `mailgun-domain` is `{d}`: not a domain name"));
                }
                Some(_) => {}
            }
        }
        let default_base = match api {
            SendApi::SendGrid => DEFAULT_SENDGRID_BASE,
            SendApi::Mailgun => DEFAULT_MAILGUN_BASE,
            SendApi::Smtp => "",
        };
        let api_base = value(get("api-base")).unwrap_or_else(|| default_base.to_owned());
        let default_subject = value(get("default-subject")).unwrap_or_else(|| DEFAULT_SUBJECT.to_owned());
        Ok(SendConfig {
            api,
            api_base: api_base.trim_end_matches('/').to_owned(),
            api_key,
            from,
            mailgun_domain,
            default_subject: one_line(&default_subject),
            smtp,
        })
    }

    /// The URL messages are POSTed to: `{api-base}/v3/mail/send` (SendGrid) or
    /// `{api-base}/v3/{mailgun-domain}/messages` (Mailgun); empty for SMTP.
    pub fn send_url(&self) -> String {
        match self.api {
            SendApi::Smtp => String::new(),
            SendApi::SendGrid => format!("{}/v3/mail/send", self.api_base),
            SendApi::Mailgun => {
                format!(
                    "{}/v3/{}/messages",
                    self.api_base,
                    self.mailgun_domain.as_deref().unwrap_or_default()
                )
            }
        }
    }
}

/// Whether `address` looks like one email address: `local@domain`, without white space,
/// angle brackets, commas or quotes (nothing that could add a recipient or a header).
pub fn valid_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && !address.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c))
}

/// `value` on one line: line breaks and other control characters become spaces, runs of
/// spaces one, trimmed.
fn one_line(value: &str) -> String {
    let spaced: String = value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    mail::collapse_spaces(&spaced)
}

/// The recipient's address: `to` must be an `email` identity holding one valid address.
pub fn recipient(to: &Identity) -> Result<String, String> {
    if to.kind != IDENTITY_KIND {
        return Err(format!(
            "cannot send to a `{}` identity: the email channel addresses `email` identities",
            to.kind
        ));
    }
    let address = to.value.trim();
    if !valid_address(address) {
        return Err(format!("recipient `{}` is not an email address", to.value));
    }
    Ok(address.to_owned())
}

/// The subject: the message's (on one line), else `default-subject`.
pub fn subject(message: &OutboundMessage, config: &SendConfig) -> String {
    message
        .subject
        .as_deref()
        .map(one_line)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| config.default_subject.clone())
}

/// The `<id>` for `In-Reply-To` and `References` of a reply to `reply_to` (an inbound
/// message's external id, the Message-ID without `<>`). `None` for ids that are not
/// Message-IDs (a content hash, anything without `@` or with characters a msg-id cannot
/// hold).
pub fn thread_header(reply_to: Option<&str>) -> Option<String> {
    let id = mail::clean_id(reply_to?)?;
    let valid =
        id.contains('@') && !id.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    valid.then(|| format!("<{id}>"))
}

/// A mailbox as a header value: `"Name" <address>` (quotes and backslashes escaped), or the
/// bare address.
pub fn format_mailbox(mailbox: &Mailbox) -> String {
    match &mailbox.name {
        Some(name) => {
            let name = one_line(name).replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{name}\" <{}>", mailbox.address)
        }
        None => mailbox.address.clone(),
    }
}

/// A file fetched for an attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    /// The file name the recipient sees.
    pub file_name: String,
    /// The MIME type.
    pub mime_type: String,
    /// The content.
    pub content: Vec<u8>,
}

/// The body text: the message's text, or (for a message with attachments only) a line
/// naming the files. A template, or a message with neither text nor attachment, is an
/// error.
pub fn body_text(message: &OutboundMessage, files: &[OutgoingFile]) -> Result<String, String> {
    if let Some(template) = &message.template {
        return Err(format!(
            "the email channel does not send templates (template `{}`): send the text instead",
            template.name
        ));
    }
    match message.text.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(text) => Ok(text.to_owned()),
        None if !files.is_empty() => {
            let names: Vec<&str> = files.iter().map(|f| f.file_name.as_str()).collect();
            Ok(format!("Attached: {}", names.join(", ")))
        }
        None => Err("nothing to send: the message has no text and no attachment".to_owned()),
    }
}

/// The GET request fetching attachment `index` of `message`. Only files with a URL can be
/// sent (an email carries the content itself): a location or contact card, or a file
/// without a URL, is an error.
pub fn attachment_request(attachment: &Attachment, index: usize) -> Result<Request, String> {
    if matches!(attachment.kind, AttachmentKind::Location | AttachmentKind::Contact) {
        return Err(format!(
            "attachment {index} is a location or contact card: the email channel sends files only"
        ));
    }
    match attachment.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => Ok(Request::new("GET", url)),
        None => Err(format!(
            "attachment {index} has no url: the email channel fetches each file from its url to attach it"
        )),
    }
}

/// The last path segment of `url`, as a file name.
fn url_file_name(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let after_host = path.split_once("://").map_or(path, |(_, rest)| rest);
    let (_, path) = after_host.split_once('/')?;
    let name = path.rsplit('/').next()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The file of attachment `index` from the answer to its [`attachment_request`]: named by
/// the attachment's file name, else the URL's last segment, else `attachment-N`; typed by
/// the attachment's MIME type, else the answer's content type. A non-2xx answer is
/// rejected (4xx) or retried later (429, 5xx).
pub fn attachment_file(
    attachment: &Attachment,
    index: usize,
    response: &Response,
) -> Result<OutgoingFile, DeliveryResult> {
    let url = attachment.url.as_deref().unwrap_or_default();
    if !(200..300).contains(&response.status) {
        let reason = format!("fetching attachment {index} from `{url}` answered {}", response.status);
        return Err(if response.status == 429 || response.status >= 500 {
            DeliveryResult::RetryLater(RetryHint {
                after_ms: response.header("retry-after").and_then(retry_after_ms),
                reason,
            })
        } else {
            DeliveryResult::Rejected(reason)
        });
    }
    let file_name = attachment
        .file_name
        .as_deref()
        .map(one_line)
        .filter(|n| !n.is_empty())
        .or_else(|| url_file_name(url))
        .unwrap_or_else(|| format!("attachment-{}", index + 1));
    let mime_type = attachment
        .mime_type
        .as_deref()
        .or_else(|| response.header("content-type"))
        .map(form::media_type)
        .filter(|m| m.contains('/') && !m.contains(char::is_whitespace))
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    Ok(OutgoingFile { file_name, mime_type, content: response.body.clone() })
}

/// The SendGrid v3 `mail/send` body: `personalizations` with the one recipient, `from`
/// (email and name), `subject`, one `text/plain` content, `headers` `In-Reply-To` and
/// `References` when the message answers another, `custom_args.seam_message_id`, and the
/// files as base64 `attachments`.
pub fn sendgrid_body(
    message: &OutboundMessage,
    config: &SendConfig,
    files: &[OutgoingFile],
) -> Result<Value, String> {
    let to = recipient(&message.to)?;
    let text = body_text(message, files)?;
    let mut from = Map::new();
    from.insert("email".to_owned(), json!(config.from.address));
    if let Some(name) = &config.from.name {
        from.insert("name".to_owned(), json!(one_line(name)));
    }
    let mut body = json!({
        "personalizations": [{ "to": [{ "email": to }] }],
        "from": from,
        "subject": subject(message, config),
        "content": [{ "type": "text/plain", "value": text }],
        "custom_args": { "seam_message_id": message.id },
    });
    if let Some(id) = thread_header(message.reply_to.as_deref()) {
        body["headers"] = json!({ "In-Reply-To": id, "References": id });
    }
    if !files.is_empty() {
        let engine = base64::engine::general_purpose::STANDARD;
        body["attachments"] = files
            .iter()
            .map(|f| {
                json!({
                    "content": engine.encode(&f.content),
                    "filename": f.file_name,
                    "type": f.mime_type,
                    "disposition": "attachment",
                })
            })
            .collect();
    }
    Ok(body)
}

/// The Mailgun `messages` form fields: `from`, `to`, `subject`, `text`, `h:In-Reply-To` and
/// `h:References` when the message answers another, `v:seam_message_id`, and one
/// `attachment` file per attachment.
pub fn mailgun_fields(
    message: &OutboundMessage,
    config: &SendConfig,
    files: &[OutgoingFile],
) -> Result<Vec<FormField>, String> {
    let to = recipient(&message.to)?;
    let text = body_text(message, files)?;
    let field = |name: &str, value: String| FormField {
        name: name.to_owned(),
        value: value.into_bytes(),
        file_name: None,
        content_type: None,
    };
    let mut fields = vec![
        field("from", format_mailbox(&config.from)),
        field("to", to),
        field("subject", subject(message, config)),
        field("text", text),
    ];
    if let Some(id) = thread_header(message.reply_to.as_deref()) {
        fields.push(field("h:In-Reply-To", id.clone()));
        fields.push(field("h:References", id));
    }
    fields.push(field("v:seam_message_id", message.id.clone()));
    for file in files {
        fields.push(FormField {
            name: "attachment".to_owned(),
            value: file.content.clone(),
            file_name: Some(file.file_name.clone()),
            content_type: Some(file.mime_type.clone()),
        });
    }
    Ok(fields)
}

/// The request `send` makes with `files` attached:
/// - SendGrid: a JSON POST of [`sendgrid_body`] to `{api-base}/v3/mail/send` with
///   `authorization: Bearer <api-key>`;
/// - Mailgun: a POST of [`mailgun_fields`] to `{api-base}/v3/{domain}/messages` with Basic
///   auth `api:<api-key>`, urlencoded, or multipart/form-data when there are files.
pub fn build_request(
    message: &OutboundMessage,
    config: &SendConfig,
    files: &[OutgoingFile],
) -> Result<Request, String> {
    let url = config.send_url();
    match config.api {
        SendApi::Smtp => Err("SMTP sends no HTTP request".to_owned()),
        SendApi::SendGrid => Ok(Request::post_json(&url, &sendgrid_body(message, config, files)?)
            .header("authorization", &format!("Bearer {}", config.api_key))),
        SendApi::Mailgun => {
            let fields = mailgun_fields(message, config, files)?;
            let credentials =
                base64::engine::general_purpose::STANDARD.encode(format!("api:{}", config.api_key));
            let request = Request::new("POST", &url).header("authorization", &format!("Basic {credentials}"));
            if files.is_empty() {
                let mut encoder = form_urlencoded::Serializer::new(String::new());
                for f in &fields {
                    encoder.append_pair(&f.name, &String::from_utf8_lossy(&f.value));
                }
                Ok(request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(encoder.finish().into_bytes()))
            } else {
                let (boundary, body) = form::encode_multipart(&fields);
                Ok(request
                    .header("content-type", &format!("multipart/form-data; boundary={boundary}"))
                    .body(body))
            }
        }
    }
}

/// The provider's own words in an error answer: SendGrid's `errors[].message` (with
/// `field`), joined by `; `, or Mailgun's `message`.
pub fn error_description(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    if let Some(errors) = value.get("errors").and_then(Value::as_array) {
        let parts: Vec<String> = errors
            .iter()
            .filter_map(|e| {
                let message = e.get("message").and_then(Value::as_str).filter(|m| !m.is_empty())?;
                Some(match e.get("field").and_then(Value::as_str).filter(|f| !f.is_empty()) {
                    Some(field) => format!("{message} (field `{field}`)"),
                    None => message.to_owned(),
                })
            })
            .collect();
        if !parts.is_empty() {
            return Some(parts.join("; "));
        }
    }
    value.get("message").and_then(Value::as_str).filter(|m| !m.is_empty()).map(str::to_owned)
}

/// What the mail API's answer means:
/// - 2xx: accepted, with SendGrid's `X-Message-Id` header (`message_id_header`) or
///   Mailgun's `id` (without `<>`: the Message-ID, which bounces quote), else Seam's id;
/// - 429 and 5xx: retried later, after `retry-after` seconds if given;
/// - any other status: rejected with the provider's description ([`error_description`]),
///   else a snippet of the body.
pub fn classify_response(
    api: SendApi,
    status: u16,
    retry_after: Option<&str>,
    message_id_header: Option<&str>,
    body: &[u8],
    message_id: &str,
) -> DeliveryResult {
    if (200..300).contains(&status) {
        let id = match api {
            SendApi::SendGrid => message_id_header.map(|h| h.trim().to_owned()),
            SendApi::Mailgun => serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).and_then(mail::clean_id)),
            SendApi::Smtp => None,
        };
        return DeliveryResult::Accepted(
            id.filter(|i| !i.is_empty()).unwrap_or_else(|| message_id.to_owned()),
        );
    }
    let description = error_description(body).unwrap_or_else(|| snippet(body));
    let reason = format!("{} answered {status}: {description}", api.name());
    if status == 429 || status >= 500 {
        return DeliveryResult::RetryLater(RetryHint {
            after_ms: retry_after.and_then(retry_after_ms),
            reason,
        });
    }
    DeliveryResult::Rejected(reason)
}

/// What a failed request to `what` (a URL) means: a destination the manifest does not
/// allow, or a URL that cannot be used, is rejected; transport failures are retried later.
pub fn classify_error(error: &HttpError, what: &str) -> DeliveryResult {
    match error {
        HttpError::Denied => {
            DeliveryResult::Rejected(format!("the host of {what} is not in capabilities.http"))
        }
        HttpError::InvalidRequest(m) => DeliveryResult::Rejected(format!("{what} cannot be used: {m}")),
        other => DeliveryResult::RetryLater(RetryHint {
            after_ms: None,
            reason: format!("calling {what} failed: {other}"),
        }),
    }
}

/// `result` with every occurrence of `secret` (the API key or SMTP password) in its reason
/// replaced, so it never reaches a reason.
fn redacted(result: DeliveryResult, secret: &str) -> DeliveryResult {
    let clean = |text: String| {
        if secret.is_empty() || !text.contains(secret) { text } else { text.replace(secret, "<api-key>") }
    };
    match result {
        DeliveryResult::Accepted(id) => DeliveryResult::Accepted(id),
        DeliveryResult::Rejected(reason) => DeliveryResult::Rejected(clean(reason)),
        DeliveryResult::RetryLater(hint) => {
            DeliveryResult::RetryLater(RetryHint { after_ms: hint.after_ms, reason: clean(hint.reason) })
        }
    }
}

/// Sends `message` with `config` and classifies the outcome. HTTP goes through `transport`
/// (the real one is [`seam_sdk::http::send`]), SMTP through `smtp_transport` (the real one
/// is [`seam_sdk::smtp::send`]); `now` (seconds since the epoch) dates SMTP messages.
///
/// A config error or a message that cannot be built is rejected without a request. Each
/// attachment is first fetched from its URL (GET, through the HTTP transport; at most
/// [`MAX_ATTACHMENT_BYTES`] together), then the message is sent in one request
/// ([`build_request`]) and the answer classified ([`classify_response`]), or handed to the
/// SMTP relay ([`crate::smtp::send`]). The API key or SMTP password never appears in a reason.
pub fn deliver(
    message: &OutboundMessage,
    config: Result<SendConfig, String>,
    mut transport: impl FnMut(&Request) -> Result<Response, HttpError>,
    smtp_transport: impl FnOnce(&Relay, &Envelope, &[u8]) -> Result<Reply, SmtpError>,
    now: u64,
) -> DeliveryResult {
    let config = match config {
        Ok(config) => config,
        Err(reason) => return DeliveryResult::Rejected(reason),
    };
    // Check what needs no network first, so a bad message fetches nothing.
    if let Err(reason) = recipient(&message.to) {
        return DeliveryResult::Rejected(reason);
    }
    let mut requests = Vec::new();
    for (index, attachment) in message.attachments.iter().enumerate() {
        match attachment_request(attachment, index) {
            Ok(request) => requests.push(request),
            Err(reason) => return DeliveryResult::Rejected(reason),
        }
    }
    let mut files = Vec::new();
    let mut total = 0usize;
    for (index, (attachment, request)) in message.attachments.iter().zip(&requests).enumerate() {
        let response = match transport(request) {
            Ok(response) => response,
            Err(error) => {
                return classify_error(&error, &format!("attachment {index} url `{}`", request.url));
            }
        };
        match attachment_file(attachment, index, &response) {
            Ok(file) => {
                total += file.content.len();
                if total > MAX_ATTACHMENT_BYTES {
                    return DeliveryResult::Rejected(format!(
                        "the attachments are over {MAX_ATTACHMENT_BYTES} bytes together"
                    ));
                }
                files.push(file);
            }
            Err(result) => return result,
        }
    }
    if let (SendApi::Smtp, Some(settings)) = (config.api, &config.smtp) {
        let result = crate::smtp::send(message, &config, settings, &files, now, smtp_transport);
        return redacted(result, &config.api_key);
    }
    let request = match build_request(message, &config, &files) {
        Ok(request) => request,
        Err(reason) => return DeliveryResult::Rejected(reason),
    };
    let result = match transport(&request) {
        Ok(response) => classify_response(
            config.api,
            response.status,
            response.header("retry-after"),
            response.header("x-message-id"),
            &response.body,
            &message.id,
        ),
        Err(error) => classify_error(&error, &format!("api-base `{}`", config.api_base)),
    };
    redacted(result, &config.api_key)
}
