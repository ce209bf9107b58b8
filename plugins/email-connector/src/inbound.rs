//! Inbound: which provider posted a webhook, whether it is authentic, and the email it
//! carries as events. Pure functions; the clock and config come in as arguments.

use crate::form::{self, Form};
use crate::mail::{self, Bounce, Email, FileInfo};
use crate::text;
use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Map, Value, json};

/// The identity kind of email senders (and the channel kind).
pub const IDENTITY_KIND: &str = "email";

/// Config key choosing the inbound shape (`auto`, `sendgrid`, `mailgun`, `raw`).
pub const INBOUND_KEY: &str = "inbound";

/// Config key of the secret token SendGrid and raw webhooks carry.
pub const SECRET_KEY: &str = "secret";

/// Config key of Mailgun's HTTP webhook signing key.
pub const MAILGUN_KEY_KEY: &str = "mailgun-signing-key";

/// Config key of the oldest Mailgun `timestamp` accepted, in seconds (0: no check).
pub const MAX_AGE_KEY: &str = "max-age-secs";

/// `max-age-secs` when not configured.
pub const DEFAULT_MAX_AGE_SECS: u64 = 900;

/// Query parameter carrying the secret token.
pub const TOKEN_PARAM: &str = "token";

/// Header carrying the secret token (instead of the query parameter).
pub const TOKEN_HEADER: &str = "x-seam-token";

/// Most bytes of a message's text (and of the full text kept in extras); longer texts are
/// cut and marked `text_truncated` in extras, so an event stays within the output limit.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

/// Who posted an inbound webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// SendGrid Inbound Parse: form fields (`headers`, `from`, `text`, `charsets`...) or,
    /// with "send raw", the whole message in `email`.
    SendGrid,
    /// A Mailgun route's `forward()`: form fields (`message-headers`, `body-plain`...) or
    /// the whole message in `body-mime`, signed.
    Mailgun,
    /// The body is the RFC 5322 message itself.
    Raw,
}

impl Shape {
    /// The config value and extras name of the shape.
    pub fn name(self) -> &'static str {
        match self {
            Shape::SendGrid => "sendgrid",
            Shape::Mailgun => "mailgun",
            Shape::Raw => "raw",
        }
    }
}

/// Inbound settings, read from config.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundConfig {
    /// `inbound`: a fixed shape, or `None` to detect it from each request.
    pub shape: Option<Shape>,
    /// The secret `secret` (SendGrid and raw webhooks).
    pub secret: Option<String>,
    /// The secret `mailgun-signing-key`.
    pub mailgun_signing_key: Option<String>,
    /// `max-age-secs`: the oldest (or furthest in the future) Mailgun `timestamp` accepted;
    /// 0 turns the check off.
    pub max_age_secs: u64,
}

impl std::fmt::Debug for InboundConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("InboundConfig")
            .field("shape", &self.shape)
            .field("secret", &set(&self.secret))
            .field("mailgun_signing_key", &set(&self.mailgun_signing_key))
            .field("max_age_secs", &self.max_age_secs)
            .finish()
    }
}

impl InboundConfig {
    /// The settings from config values looked up with `get` (plain keys) and `secret`
    /// (secrets). Blank values count as unset. An unknown `inbound` or a `max-age-secs` that
    /// is not a number is `Misconfigured`, naming the key.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, WebhookError> {
        let value = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let shape = match value(get(INBOUND_KEY)).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => None,
            Some("sendgrid") => Some(Shape::SendGrid),
            Some("mailgun") => Some(Shape::Mailgun),
            Some("raw") => Some(Shape::Raw),
            Some(other) => {
                return Err(WebhookError::Misconfigured(format!(
                    "config key `{INBOUND_KEY}` is `{other}`: expected `auto`, `sendgrid`, `mailgun` or `raw`"
                )));
            }
        };
        let max_age_secs = match value(get(MAX_AGE_KEY)) {
            None => DEFAULT_MAX_AGE_SECS,
            Some(v) => v.parse::<u64>().map_err(|_| {
                WebhookError::Misconfigured(format!(
                    "config key `{MAX_AGE_KEY}` is `{v}`: expected a number of seconds (0 turns the check off)"
                ))
            })?,
        };
        Ok(InboundConfig {
            shape,
            secret: value(secret(SECRET_KEY)),
            mailgun_signing_key: value(secret(MAILGUN_KEY_KEY)),
            max_age_secs,
        })
    }
}

/// Checks the secret token of a SendGrid or raw webhook: the query parameter `token` or the
/// header `x-seam-token` must equal `secret` (constant-time). A missing secret is
/// `Misconfigured`; a missing or wrong token `Unauthorized`.
pub fn check_token(request: &HttpRequest, secret: Option<&str>) -> Result<(), WebhookError> {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Err(WebhookError::Misconfigured(format!(
            "secret `{SECRET_KEY}` is not set: it is needed to authenticate inbound email webhooks \
             (put `?{TOKEN_PARAM}=<secret>` in the webhook URL given to the provider)"
        )));
    };
    let given = request.query_param(TOKEN_PARAM).or_else(|| request.header(TOKEN_HEADER).map(str::to_owned));
    match given {
        None => Err(WebhookError::Unauthorized(format!(
            "missing `{TOKEN_PARAM}` query parameter or `{TOKEN_HEADER}` header"
        ))),
        Some(token) if signature::token_matches(&token, secret) => Ok(()),
        Some(_) => Err(WebhookError::Unauthorized(format!(
            "the `{TOKEN_PARAM}` query parameter (or `{TOKEN_HEADER}` header) does not match the secret `{SECRET_KEY}`"
        ))),
    }
}

/// Checks a Mailgun signature: `signature` must be the hex HMAC-SHA256 of `timestamp` +
/// `token` keyed with the signing key, and, when `max_age_secs` is not 0, `timestamp` must
/// be within `max_age_secs` of `now_secs` (a replayed or badly delayed webhook is refused).
/// A missing key is `Misconfigured`, as is a clock that reads zero while the age is
/// checked; anything else wrong is `Unauthorized`.
pub fn check_mailgun_signature(
    form: &Form,
    signing_key: Option<&str>,
    max_age_secs: u64,
    now_secs: u64,
) -> Result<(), WebhookError> {
    let Some(key) = signing_key.filter(|k| !k.is_empty()) else {
        return Err(WebhookError::Misconfigured(format!(
            "secret `{MAILGUN_KEY_KEY}` is not set: it is needed to check the signature of Mailgun's webhooks"
        )));
    };
    let field = |name: &str| {
        form.text(name).ok_or_else(|| {
            WebhookError::Unauthorized(format!(
                "missing `{name}` field: Mailgun signs every webhook with `timestamp`, `token` and `signature`"
            ))
        })
    };
    let (timestamp, token, given) = (field("timestamp")?, field("token")?, field("signature")?);
    let signed = format!("{timestamp}{token}");
    if !signature::verify_hmac_sha256_hex(key.as_bytes(), signed.as_bytes(), &given) {
        return Err(WebhookError::Unauthorized(format!(
            "`signature` does not match (expected the hex HMAC-SHA256 of timestamp + token keyed with the \
             secret `{MAILGUN_KEY_KEY}`)"
        )));
    }
    if max_age_secs == 0 {
        return Ok(());
    }
    if now_secs == 0 {
        return Err(WebhookError::Misconfigured(format!(
            "the clock reads zero, so the age of Mailgun's `timestamp` cannot be checked: grant \
             capabilities.clock in the manifest, or set `{MAX_AGE_KEY}` to 0"
        )));
    }
    let Ok(sent) = timestamp.parse::<u64>() else {
        return Err(WebhookError::Unauthorized(format!("`timestamp` is `{timestamp}`, not Unix seconds")));
    };
    let age = now_secs.abs_diff(sent);
    if age > max_age_secs {
        return Err(WebhookError::Unauthorized(format!(
            "`timestamp` {sent} is {age} s away from now ({now_secs}), more than `{MAX_AGE_KEY}` = \
             {max_age_secs}: a replayed or delayed webhook"
        )));
    }
    Ok(())
}

/// Field names only SendGrid's Inbound Parse posts.
const SENDGRID_FIELDS: &[&str] =
    &["envelope", "charsets", "headers", "email", "attachment-info", "SPF", "dkim"];

/// Field names only Mailgun's routes post.
const MAILGUN_FIELDS: &[&str] =
    &["signature", "message-headers", "body-plain", "body-mime", "stripped-text", "body-html", "recipient"];

/// Which provider posted `form`: Mailgun when any of its own fields is there (checked first:
/// its signature fields are unambiguous), else SendGrid when any of its own fields is there.
pub fn detect_form(form: &Form) -> Result<Shape, WebhookError> {
    if MAILGUN_FIELDS.iter().any(|f| form.has(f)) {
        Ok(Shape::Mailgun)
    } else if SENDGRID_FIELDS.iter().any(|f| form.has(f)) {
        Ok(Shape::SendGrid)
    } else {
        Err(WebhookError::Malformed(
            "the form has neither SendGrid Inbound Parse fields (`headers`, `envelope`, `email`...) nor \
             Mailgun route fields (`message-headers`, `body-plain`, `signature`...)"
                .to_owned(),
        ))
    }
}

/// Decodes `bytes` with the charset named `charset` (any name `mail-parser` knows: UTF-8,
/// ISO-8859-x, windows-125x, cp850, KOI8...), or as UTF-8 (invalid bytes replaced) when the
/// charset is unknown or not given.
pub fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.map(str::trim).filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("utf-8")) {
        Some(name) => match mail_parser::decoders::charsets::map::charset_decoder(name.as_bytes()) {
            Some(decode) => decode(bytes),
            None => String::from_utf8_lossy(bytes).into_owned(),
        },
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The attachments of a form: every uploaded file, with its file name, type (from the
/// part, else from `info`, SendGrid's `attachment-info`) and size.
fn form_files(form: &Form, info: Option<&Value>) -> Vec<FileInfo> {
    form.files()
        .map(|file| {
            let meta = info.and_then(|i| i.get(&file.name));
            let meta_text =
                |key: &str| meta.and_then(|m| m.get(key)).and_then(Value::as_str).map(str::to_owned);
            FileInfo {
                file_name: file.file_name.clone().filter(|n| !n.is_empty()).or_else(|| meta_text("filename")),
                mime_type: file.content_type.clone().or_else(|| meta_text("type")),
                size: file.value.len() as u64,
                content_id: meta_text("content-id").and_then(|c| mail::clean_id(&c)),
            }
        })
        .collect()
}

/// A bounce read from a form's uploaded report parts (`message/delivery-status`,
/// `message/rfc822`...) and the `X-Failed-Recipients` header, when `email` is a bounce.
fn form_bounce(email: &Email, form: &Form, failed_recipients: Option<&str>) -> Option<Bounce> {
    if !mail::is_bounce(email) {
        return None;
    }
    let parts: Vec<(String, &[u8])> = form
        .files()
        .filter_map(|f| {
            let media = form::media_type(f.content_type.as_deref()?);
            mail::BOUNCE_PART_TYPES.contains(&media.as_str()).then_some((media, f.value.as_slice()))
        })
        .collect();
    Some(mail::read_bounce(email, &parts, failed_recipients))
}

/// `X-Failed-Recipients` of a header block.
fn failed_recipients(headers: Option<&mail_parser::Message<'_>>) -> Option<String> {
    headers?.header_raw("X-Failed-Recipients").map(mail::collapse_spaces)
}

/// The email in a SendGrid Inbound Parse form.
///
/// With "send raw", the message in `email` is parsed whole. Otherwise the header fields come
/// from `headers` (a header block), `from` and `subject` from their fields; `text`, `html`,
/// `from` and `subject` are decoded with the charset `charsets` names for each (SendGrid
/// posts each field in the charset of the part it came from); attachments are the uploaded
/// files, typed by `attachment-info`. The envelope sender, spam score, SPF and DKIM results
/// are kept for extras.
pub fn sendgrid_email(form: &Form) -> Result<Email, String> {
    let mut extras = Map::new();
    let envelope = form.text("envelope").and_then(|e| serde_json::from_str::<Value>(&e).ok());
    if let Some(envelope) = &envelope {
        extras.insert("envelope".to_owned(), envelope.clone());
    }
    for (field, key) in [("spam_score", "spam_score"), ("SPF", "spf"), ("dkim", "dkim")] {
        if let Some(value) = form.text(field) {
            extras.insert(key.to_owned(), json!(value));
        }
    }
    let envelope_from = envelope
        .as_ref()
        .and_then(|e| e.get("from"))
        .and_then(Value::as_str)
        .and_then(mail::clean_id)
        .filter(|a| a.contains('@'));

    if let Some(raw) = form.bytes("email").filter(|r| !r.iter().all(u8::is_ascii_whitespace)) {
        let mut email = mail::from_mime(raw)
            .ok_or_else(|| "SendGrid's `email` field holds no RFC 5322 message".to_owned())?;
        email.envelope_from = envelope_from.or(email.envelope_from);
        email.provider_fields = extras;
        return Ok(email);
    }
    if !["headers", "from", "text", "html"].iter().any(|f| form.has(f)) {
        return Err(
            "none of SendGrid's Inbound Parse fields (`headers`, `from`, `text`, `html` or `email`) \
                    is in the form"
                .to_owned(),
        );
    }
    let charsets: Map<String, Value> = form
        .text("charsets")
        .and_then(|c| serde_json::from_str::<Value>(&c).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let decoded = |name: &str| {
        form.bytes(name).map(|bytes| decode_charset(bytes, charsets.get(name).and_then(Value::as_str)))
    };

    let mut email = Email::default();
    let header_bytes = form.bytes("headers").unwrap_or_default();
    let headers = mail::parse_header_block(header_bytes);
    if let Some(headers) = &headers {
        mail::read_headers(&mut email, headers);
    }
    if email.from.is_none() {
        email.from = decoded("from").and_then(|f| mail::parse_mailbox(&f));
    }
    email.looks_like_email |= email.from.is_some() || form.has("from");
    if let Some(subject) = decoded("subject").map(|s| mail::collapse_spaces(&s)).filter(|s| !s.is_empty()) {
        email.subject = Some(subject);
    }
    email.text = decoded("text").and_then(|t| text::normalize(&t));
    if email.text.is_none() {
        email.text = decoded("html").and_then(|h| text::normalize(&text::html_to_text(&h)));
        email.text_from_html = email.text.is_some();
    }
    let info = form.text("attachment-info").and_then(|i| serde_json::from_str::<Value>(&i).ok());
    email.attachments = form_files(form, info.as_ref());
    email.envelope_from = envelope_from.or(email.envelope_from);
    email.bounce = form_bounce(&email, form, failed_recipients(headers.as_ref()).as_deref());
    email.fingerprint = mail::fingerprint(&[
        header_bytes,
        form.bytes("from").unwrap_or_default(),
        form.bytes("to").unwrap_or_default(),
        form.bytes("subject").unwrap_or_default(),
        form.bytes("text").unwrap_or_default(),
        form.bytes("html").unwrap_or_default(),
    ]);
    email.provider_fields = extras;
    Ok(email)
}

/// Top-level Mailgun fields that are also headers, added to the header block when
/// `message-headers` lacks them: (field, header).
const MAILGUN_HEADER_FIELDS: &[(&str, &str)] = &[
    ("from", "From"),
    ("From", "From"),
    ("subject", "Subject"),
    ("Subject", "Subject"),
    ("Message-Id", "Message-Id"),
    ("In-Reply-To", "In-Reply-To"),
    ("References", "References"),
    ("Date", "Date"),
    ("To", "To"),
    ("Cc", "Cc"),
];

/// The header block of a Mailgun form: `message-headers` (a JSON list of `[name, value]`
/// pairs), plus the top-level header fields it lacks. Line breaks in values are unfolded.
pub fn mailgun_header_block(form: &Form) -> Result<String, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(list) = form.text("message-headers") {
        let value: Value = serde_json::from_str(&list)
            .map_err(|e| format!("`message-headers` is not JSON (a list of [name, value] pairs): {e}"))?;
        let Some(items) = value.as_array() else {
            return Err("`message-headers` is not a JSON list of [name, value] pairs".to_owned());
        };
        for item in items {
            if let (Some(name), Some(value)) =
                (item.get(0).and_then(Value::as_str), item.get(1).and_then(Value::as_str))
            {
                pairs.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    for (field, header) in MAILGUN_HEADER_FIELDS {
        if let Some(value) = form.text(field)
            && !pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(header))
        {
            pairs.push(((*header).to_owned(), value));
        }
    }
    let mut block = String::new();
    for (name, value) in pairs {
        let name: String = name.chars().filter(|c| c.is_ascii_graphic() && *c != ':').collect();
        if name.is_empty() {
            continue;
        }
        block.push_str(&format!("{name}: {}\r\n", value.replace(['\r', '\n'], " ")));
    }
    block.push_str("\r\n");
    Ok(block)
}

/// The email in a Mailgun route's form.
///
/// With `body-mime` (a `forward()` to a URL ending in `mime`), the message is parsed whole.
/// Otherwise headers come from `message-headers` (see [`mailgun_header_block`]), the text
/// from `body-plain` (`body-html` turned into text when there is none), Mailgun's own
/// quote-stripped `stripped-text` is used as the message text, attachments are the
/// uploaded `attachment-N` files, and `sender` is the envelope sender.
pub fn mailgun_email(form: &Form) -> Result<Email, String> {
    let mut extras = Map::new();
    for (field, key) in [("sender", "envelope_from"), ("recipient", "recipient")] {
        if let Some(value) = form.text(field) {
            extras.insert(key.to_owned(), json!(value));
        }
    }
    let envelope_from = form.text("sender").and_then(|s| mail::clean_id(&s)).filter(|s| s.contains('@'));
    if let Some(raw) = form.bytes("body-mime").filter(|r| !r.iter().all(u8::is_ascii_whitespace)) {
        let mut email = mail::from_mime(raw)
            .ok_or_else(|| "Mailgun's `body-mime` field holds no RFC 5322 message".to_owned())?;
        email.envelope_from = envelope_from.or(email.envelope_from);
        email.provider_fields = extras;
        return Ok(email);
    }
    if !["message-headers", "from", "body-plain", "body-html"].iter().any(|f| form.has(f)) {
        return Err(
            "none of Mailgun's route fields (`message-headers`, `from`, `body-plain`, `body-html` or \
                    `body-mime`) is in the form"
                .to_owned(),
        );
    }
    let block = mailgun_header_block(form)?;
    let mut email = Email::default();
    let headers = mail::parse_header_block(block.as_bytes());
    if let Some(headers) = &headers {
        mail::read_headers(&mut email, headers);
    }
    email.text = form.text("body-plain").and_then(|t| text::normalize(&t));
    if email.text.is_none() {
        email.text = form.text("body-html").and_then(|h| text::normalize(&text::html_to_text(&h)));
        email.text_from_html = email.text.is_some();
    }
    email.provider_stripped_text = form.text("stripped-text").and_then(|t| text::normalize(&t));
    email.attachments = form_files(form, None);
    email.envelope_from = envelope_from.or(email.envelope_from);
    email.bounce = form_bounce(&email, form, failed_recipients(headers.as_ref()).as_deref());
    email.fingerprint = mail::fingerprint(&[
        form.bytes("message-headers").unwrap_or_default(),
        form.bytes("from").unwrap_or_default(),
        form.bytes("recipient").unwrap_or_default(),
        form.bytes("subject").unwrap_or_default(),
        form.bytes("body-plain").unwrap_or_default(),
        form.bytes("body-html").unwrap_or_default(),
    ]);
    email.provider_fields = extras;
    Ok(email)
}

/// The events of one inbound email, and a note when it was accepted without any.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The events (none, or one).
    pub events: Vec<Event>,
    /// Why an email gave no event, worth a log line.
    pub note: Option<String>,
}

/// The attachment kind of a MIME type.
pub fn attachment_kind(mime: Option<&str>) -> AttachmentKind {
    match mime.map(|m| m.split('/').next().unwrap_or_default().to_ascii_lowercase()).as_deref() {
        Some("image") => AttachmentKind::Image,
        Some("audio") => AttachmentKind::Audio,
        Some("video") => AttachmentKind::Video,
        _ => AttachmentKind::Document,
    }
}

/// An email identity.
fn email_identity(address: &str) -> Identity {
    Identity { kind: IDENTITY_KIND.to_owned(), value: address.to_owned() }
}

/// The events of `email` (posted as `shape`):
/// - a bounce ([`Email::bounce`]) becomes a delivery update of the message that bounced
///   (see [`bounce_event`]);
/// - anything else with a sender address (`From`, else `Sender`, else the envelope sender)
///   becomes a message (see [`message_event`]);
/// - an email without any sender address gives no event, and a note saying so.
pub fn map_email(email: &Email, shape: Shape) -> Mapped {
    if let Some(bounce) = &email.bounce {
        return Mapped { events: vec![bounce_event(email, bounce)], note: None };
    }
    let sender = email
        .from
        .as_ref()
        .map(|f| f.address.clone())
        .or_else(|| email.sender.clone())
        .or_else(|| email.envelope_from.clone());
    let Some(sender) = sender else {
        return Mapped {
            events: Vec::new(),
            note: Some(format!(
                "email {} has no sender address (no From, Sender or envelope sender): accepted without an event",
                email.message_id.as_deref().unwrap_or(&email.fingerprint)
            )),
        };
    };
    Mapped { events: vec![Event::Message(message_event(email, shape, sender))], note: None }
}

/// The message event of `email` from `sender`:
/// - external id: the Message-ID, else [`Email::fingerprint`];
/// - sender `email:<address>`, sender name the `From` display name;
/// - text: the plain text (or the HTML's text) with quoted history stripped (Mailgun's
///   `stripped-text` when given, else [`text::strip_quoted`]); the full text is kept in
///   extras as `text_full` when something was stripped; both at most [`MAX_TEXT_BYTES`];
/// - reply-to: the first `In-Reply-To` id; thread: the first `References` id (the thread's
///   root), else the first `In-Reply-To` id, else the message's own Message-ID;
/// - sent-at: the `Date` header;
/// - attachments: file name, MIME type and size (content is not kept; extras hold the
///   `content_id` of inline pictures);
/// - extras: `provider`, `subject`, `message_id`, `to`, `cc`, `reply_to` (the Reply-To
///   address), `in_reply_to`, `references`, `text_full`, `text_from_html`,
///   `text_truncated`, `auto_submitted` (auto-replies, vacation notices), and the
///   provider's envelope and spam verdicts.
pub fn message_event(email: &Email, shape: Shape, sender: String) -> InboundMessage {
    let external_id = email.message_id.clone().unwrap_or_else(|| email.fingerprint.clone());
    let full = email.text.clone();
    let stripped = match &email.provider_stripped_text {
        Some(stripped) => Some(stripped.clone()).filter(|s| Some(s) != full.as_ref()),
        None => full.as_deref().and_then(text::strip_quoted),
    };
    let mut truncated = false;
    let mut cut = |t: String| {
        let (t, was_cut) = text::truncate(t, MAX_TEXT_BYTES);
        truncated |= was_cut;
        t
    };
    let (text, text_full) = match stripped {
        Some(stripped) => (Some(cut(stripped)), full.map(&mut cut)),
        None => (full.map(&mut cut), None),
    };

    let mut extras = Map::new();
    extras.insert("provider".to_owned(), json!(shape.name()));
    let mut put = |key: &str, value: Value| {
        let empty = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
        if !empty {
            extras.insert(key.to_owned(), value);
        }
    };
    put("subject", json!(email.subject));
    put("message_id", json!(email.message_id));
    put("to", json!(email.to));
    put("cc", json!(email.cc));
    put("reply_to", json!(email.reply_to));
    put("in_reply_to", json!(email.in_reply_to));
    put("references", json!(email.references));
    put("text_full", json!(text_full));
    put("auto_submitted", json!(email.auto_submitted));
    if email.text_from_html {
        put("text_from_html", json!(true));
    }
    if truncated {
        put("text_truncated", json!(true));
    }
    for (key, value) in &email.provider_fields {
        put(key, value.clone());
    }

    let attachments = email
        .attachments
        .iter()
        .map(|file| Attachment {
            kind: attachment_kind(file.mime_type.as_deref()),
            url: None,
            provider_id: None,
            mime_type: file.mime_type.clone(),
            file_name: file.file_name.clone(),
            size: Some(file.size),
            caption: None,
            location: None,
            extras: file.content_id.as_ref().map(|id| json!({ "content_id": id }).to_string()),
        })
        .collect();

    let reply_to = email.in_reply_to.first().cloned();
    let thread =
        email.references.first().cloned().or_else(|| reply_to.clone()).or_else(|| email.message_id.clone());
    InboundMessage {
        external_id,
        sender: email_identity(&sender),
        sender_name: email.from.as_ref().and_then(|f| f.name.clone()),
        text,
        attachments,
        reply_to,
        thread,
        sent_at: email.date_ms,
        extras: Some(Value::Object(extras).to_string()),
    }
}

/// The event of a bounce (a delivery status notification):
/// - when the returned headers hold the bounced message's Message-ID, a delivery update of
///   that provider id (Mailgun's `send` returns the Message-ID): `failed` with the
///   diagnostic as reason for `Action: failed` (and for a mailer-daemon notice without a
///   status part), `delivered` for `delivered`, `sent` for `relayed` / `expanded`;
/// - `Action: delayed` (not a failure yet), and any bounce whose message cannot be told (no
///   returned Message-ID): a channel event, `delivery-delayed` or `bounce`, with what the
///   notification says, about the recipient; its external id is `bounce:` and the
///   notification's own Message-ID (or fingerprint).
pub fn bounce_event(email: &Email, bounce: &Bounce) -> Event {
    let recipient = bounce.recipient.as_deref().map(email_identity);
    let reason = bounce.reason(email.subject.as_deref());
    let status = match bounce.action.as_str() {
        "delayed" => None,
        "delivered" => Some(DeliveryStatus::Delivered),
        "relayed" | "expanded" => Some(DeliveryStatus::Sent),
        _ => Some(DeliveryStatus::Failed),
    };
    if let (Some(status), Some(id)) = (status, &bounce.original_message_id) {
        return Event::Delivery(DeliveryUpdate {
            provider_id: id.clone(),
            recipient,
            status,
            reason: (status == DeliveryStatus::Failed).then_some(reason),
            at: email.date_ms,
        });
    }
    let payload = json!({
        "action": bounce.action,
        "status": bounce.status,
        "diagnostic": bounce.diagnostic,
        "reason": reason,
        "recipient": bounce.recipient,
        "original_message_id": bounce.original_message_id,
        "original_subject": bounce.original_subject,
        "subject": email.subject,
        "message_id": email.message_id,
    });
    Event::Channel(ChannelEvent {
        kind: if status.is_none() { "delivery-delayed" } else { "bounce" }.to_owned(),
        external_id: format!("bounce:{}", email.message_id.as_deref().unwrap_or(&email.fingerprint)),
        customer: recipient,
        payload: payload.to_string(),
        at: email.date_ms,
    })
}

/// What came of a webhook: the outcome for the host and, when an email gave no event, why.
#[derive(Debug, Clone)]
pub struct Handled {
    /// Events and response.
    pub outcome: WebhookOutcome,
    /// Why the webhook gave no event, worth a log line.
    pub note: Option<String>,
}

/// Handles one webhook request (see the crate docs): picks the shape (`config.shape`, or
/// detected: a form body is SendGrid's or Mailgun's by its fields, anything else a raw
/// message), authenticates it (token for SendGrid and raw, signature for Mailgun), reads
/// the email and maps it with [`map_email`]. `now_secs` is the current Unix time (for
/// Mailgun's timestamp check).
pub fn handle(request: &HttpRequest, config: &InboundConfig, now_secs: u64) -> Result<Handled, WebhookError> {
    if !request.method.eq_ignore_ascii_case("POST") {
        return Err(WebhookError::Malformed(format!(
            "inbound email webhooks are POST requests, got {}",
            request.method
        )));
    }
    let content_type = request.header("content-type").unwrap_or_default();
    let is_form = form::is_form(content_type);
    let mut parsed = None;
    let shape = match config.shape {
        Some(shape) => shape,
        None if is_form => {
            let form = form::parse_form(content_type, &request.body).map_err(WebhookError::Malformed)?;
            let shape = detect_form(&form)?;
            parsed = Some(form);
            shape
        }
        None => Shape::Raw,
    };
    let email = match shape {
        Shape::Raw => {
            check_token(request, config.secret.as_deref())?;
            if is_form {
                return Err(WebhookError::Malformed(format!(
                    "`{INBOUND_KEY}` is `raw` but the body is a form ({}): post the message itself \
                     (content-type message/rfc822)",
                    form::media_type(content_type)
                )));
            }
            mail::from_mime(&request.body).ok_or_else(|| {
                WebhookError::Malformed("the body is not an RFC 5322 message: it has no header".to_owned())
            })?
        }
        Shape::SendGrid | Shape::Mailgun => {
            if shape == Shape::SendGrid {
                check_token(request, config.secret.as_deref())?;
            }
            if !is_form {
                return Err(WebhookError::Malformed(format!(
                    "{} posts multipart/form-data or urlencoded forms, got content type `{}`",
                    if shape == Shape::SendGrid { "SendGrid Inbound Parse" } else { "Mailgun" },
                    form::media_type(content_type)
                )));
            }
            let form = match parsed {
                Some(form) => form,
                None => form::parse_form(content_type, &request.body).map_err(WebhookError::Malformed)?,
            };
            if shape == Shape::SendGrid {
                sendgrid_email(&form)
            } else {
                check_mailgun_signature(
                    &form,
                    config.mailgun_signing_key.as_deref(),
                    config.max_age_secs,
                    now_secs,
                )?;
                mailgun_email(&form)
            }
            .map_err(WebhookError::Malformed)?
        }
    };
    if !email.looks_like_email {
        return Err(WebhookError::Malformed(
            "the message has none of the headers an email has (From, To, Subject, Date, Message-ID...)"
                .to_owned(),
        ));
    }
    let mapped = map_email(&email, shape);
    Ok(Handled { outcome: WebhookOutcome::accept(mapped.events), note: mapped.note })
}
