//! One inbound email, whichever way it arrived (a raw RFC 5322 message, or a provider's
//! parsed form fields), and what a delivery status notification says. MIME, encoded words,
//! transfer encodings and charsets are all `mail-parser`'s work.

use crate::text;
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use seam_sdk::serde_json;

/// A mailbox: an address and its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, if any (decoded, trimmed, not empty).
    pub name: Option<String>,
    /// The address, as written.
    pub address: String,
}

/// One attachment of an inbound email. Its content is not kept: events carry the file's
/// name, type and size only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The file name, if the sender gave one.
    pub file_name: Option<String>,
    /// The MIME type, lower-case (`image/png`), if known.
    pub mime_type: Option<String>,
    /// The size of the (decoded) content in bytes.
    pub size: u64,
    /// The `Content-ID` without `<>`, for pictures the HTML body shows inline.
    pub content_id: Option<String>,
}

/// What a delivery status notification (a bounce) says about a message the company sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounce {
    /// The Message-ID (without `<>`) of the message that bounced, from its returned
    /// headers.
    pub original_message_id: Option<String>,
    /// The subject of the message that bounced.
    pub original_subject: Option<String>,
    /// The address that could not be reached.
    pub recipient: Option<String>,
    /// The DSN `Action`, lower-case: `failed`, `delayed`, `delivered`, `relayed`,
    /// `expanded`.
    pub action: String,
    /// The DSN `Status` (an enhanced status code such as `5.1.1`).
    pub status: Option<String>,
    /// The DSN `Diagnostic-Code` (without its type), or the SMTP reply quoted in the
    /// notification's text.
    pub diagnostic: Option<String>,
}

impl Bounce {
    /// The failure in words: the diagnostic (with the status when the diagnostic does not
    /// quote it), else the status, else `fallback`.
    pub fn reason(&self, fallback: Option<&str>) -> String {
        match (&self.diagnostic, &self.status) {
            (Some(d), Some(s)) if !d.contains(s.as_str()) => format!("{d} (status {s})"),
            (Some(d), _) => d.clone(),
            (None, Some(s)) => format!("status {s}"),
            (None, None) => fallback.unwrap_or("the message could not be delivered").to_owned(),
        }
    }
}

/// An inbound email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Email {
    /// The first `From` mailbox (its address may be missing in broken mails: then `None`).
    pub from: Option<Mailbox>,
    /// The `Sender` header's address.
    pub sender: Option<String>,
    /// The envelope sender (SMTP `MAIL FROM`, `Return-Path`), when not empty.
    pub envelope_from: Option<String>,
    /// The `Reply-To` address, where the sender wants answers to go.
    pub reply_to: Option<String>,
    /// `To` addresses.
    pub to: Vec<String>,
    /// `Cc` addresses.
    pub cc: Vec<String>,
    /// The subject, decoded.
    pub subject: Option<String>,
    /// The Message-ID, without `<>`.
    pub message_id: Option<String>,
    /// `In-Reply-To` ids, without `<>`.
    pub in_reply_to: Vec<String>,
    /// `References` ids, oldest (the thread root) first, without `<>`.
    pub references: Vec<String>,
    /// The `Date` header, in milliseconds since the epoch.
    pub date_ms: Option<i64>,
    /// The plain text body (the HTML body turned into text when there is no plain one),
    /// line ends normalized.
    pub text: Option<String>,
    /// Whether [`Email::text`] was made from HTML.
    pub text_from_html: bool,
    /// The text with quoted history already removed by the provider (Mailgun's
    /// `stripped-text`), if given.
    pub provider_stripped_text: Option<String>,
    /// The attachments.
    pub attachments: Vec<FileInfo>,
    /// The `Auto-Submitted` header (other than `no`), or `auto-replied` for an
    /// `X-Autoreply` mail: an automatic answer, not written by a person.
    pub auto_submitted: Option<String>,
    /// Whether the message is a `multipart/report; report-type=delivery-status`.
    pub is_delivery_report: bool,
    /// What the delivery status notification says, when the message is one.
    pub bounce: Option<Bounce>,
    /// Whether the message had any of the headers every email has (`From`, `Date`,
    /// `Message-ID`, `To`, `Subject`...): a body without them is not an email.
    pub looks_like_email: bool,
    /// A hash of the message's content, the external id of a message without a Message-ID
    /// (see [`fingerprint`]).
    pub fingerprint: String,
    /// Provider-specific fields kept in the event's extras (SendGrid's envelope and spam
    /// verdicts, Mailgun's envelope sender and recipient).
    pub provider_fields: serde_json::Map<String, serde_json::Value>,
}

/// The external id of a message without a Message-ID: `sha256-` and the first 32 hex
/// digits of the SHA-256 of `parts` (each length-prefixed, so moving bytes from one part to
/// the next changes the hash). The same content always gives the same id, so a retried
/// webhook is recognised, and it contains no `@`, so it never equals a real Message-ID.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    format!("sha256-{}", &hex::encode(hasher.finalize())[..32])
}

/// Headers whose presence makes a body look like an email.
const EMAIL_HEADERS: &[&str] = &[
    "From",
    "Sender",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Return-Path",
    "Received",
    "MIME-Version",
];

/// Message ids in a header value (`Message-ID`, `In-Reply-To`, `References`), without `<>`,
/// blanks and repeats, in order.
pub fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(t) => vec![t.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.as_ref()).collect(),
        _ => Vec::new(),
    };
    let mut ids: Vec<String> = Vec::new();
    for id in raw.into_iter().filter_map(clean_id) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// A message id without surrounding `<>` and white space; `None` when empty.
pub fn clean_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// The mailboxes of an address header (groups flattened), those without an address left
/// out.
fn mailboxes(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(address) = address else { return Vec::new() };
    address
        .iter()
        .filter_map(|addr| {
            let email = addr.address()?.trim();
            if email.is_empty() {
                return None;
            }
            let name = addr.name().map(str::trim).filter(|n| !n.is_empty() && *n != email).map(str::to_owned);
            Some(Mailbox { name, address: email.to_owned() })
        })
        .collect()
}

/// The text of header `name` in `message`: text values as they are, lists joined by `, `,
/// anything else as its raw value, trimmed; `None` when missing or blank.
fn header_text(message: &Message<'_>, name: &str) -> Option<String> {
    let value = match message.header(name)? {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(list) => list.join(", "),
        _ => message.header_raw(name)?.to_owned(),
    };
    let value = collapse_spaces(&value);
    (!value.is_empty()).then_some(value)
}

/// `value` with every run of white space (line folds included) turned into one space,
/// trimmed.
pub fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses a mailbox written as in a header (`Anna <anna@example.com>`, `"Doe, J" <j@d.e>`,
/// `anna@example.com`, with RFC 2047 encoded words or UTF-8). `None` when there is no
/// address.
pub fn parse_mailbox(value: &str) -> Option<Mailbox> {
    let header = format!("From: {}\r\n\r\n", value.replace(['\r', '\n'], " "));
    let message = MessageParser::default().parse_headers(header.as_bytes())?;
    mailboxes(message.from()).into_iter().next()
}

/// Parses a header block (`Name: value` lines; a blank line and anything after it are
/// ignored).
pub fn parse_header_block(block: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse_headers(block)
}

/// Fills the header fields of `email` from `message`'s top-level headers.
pub fn read_headers(email: &mut Email, message: &Message<'_>) {
    email.looks_like_email = EMAIL_HEADERS.iter().any(|h| message.header(*h).is_some());
    let from = mailboxes(message.from());
    email.from = from.into_iter().next().or_else(|| email.from.take());
    if let Some(sender) = mailboxes(message.sender()).into_iter().next() {
        email.sender = Some(sender.address);
    }
    if let Some(reply_to) = mailboxes(message.reply_to()).into_iter().next() {
        email.reply_to = Some(reply_to.address);
    }
    email.to = mailboxes(message.to()).into_iter().map(|m| m.address).collect();
    email.cc = mailboxes(message.cc()).into_iter().map(|m| m.address).collect();
    if let Some(subject) = message.subject().map(collapse_spaces).filter(|s| !s.is_empty()) {
        email.subject = Some(subject);
    }
    email.message_id = message.message_id().and_then(clean_id);
    email.in_reply_to = ids(message.in_reply_to());
    email.references = ids(message.references());
    email.date_ms = message.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp().saturating_mul(1000));
    if email.envelope_from.is_none() {
        email.envelope_from = ids(message.return_path()).into_iter().find(|a| a.contains('@'));
    }
    email.auto_submitted = header_text(message, "Auto-Submitted")
        .filter(|v| !v.eq_ignore_ascii_case("no"))
        .or_else(|| header_text(message, "X-Autoreply").map(|_| "auto-replied".to_owned()));
    email.is_delivery_report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct.attribute("report-type").is_some_and(|r| r.eq_ignore_ascii_case("delivery-status"))
    });
}

/// The lower-case `type/subtype` of a part.
fn part_type<'a>(part: &impl MimeHeaders<'a>) -> Option<String> {
    let ct = part.content_type()?;
    Some(match ct.subtype() {
        Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
        None => ct.ctype().to_ascii_lowercase(),
    })
}

/// Media types of the parts a bounce is read from.
pub const BOUNCE_PART_TYPES: &[&str] = &[
    "message/delivery-status",
    "message/global-delivery-status",
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/global-headers",
];

/// Parses a raw RFC 5322 message. `None` when `raw` has no header at all.
pub fn from_mime(raw: &[u8]) -> Option<Email> {
    let message = MessageParser::default().parse(raw)?;
    let mut email = Email::default();
    read_headers(&mut email, &message);
    email.fingerprint = fingerprint(&[raw]);

    let mut texts = Vec::new();
    for part in message.text_bodies() {
        match &part.body {
            PartType::Text(t) => texts.push(t.to_string()),
            PartType::Html(h) => {
                email.text_from_html = true;
                texts.push(text::html_to_text(h));
            }
            _ => {}
        }
    }
    email.text = text::normalize(&texts.join("\n"));
    if email.text.is_none()
        && let Some(html) = message.html_bodies().find_map(|p| match &p.body {
            PartType::Html(h) => Some(h.to_string()),
            _ => None,
        })
    {
        email.text = text::normalize(&text::html_to_text(&html));
        email.text_from_html = email.text.is_some();
    }

    let mut report_parts: Vec<(String, &[u8])> = Vec::new();
    for part in message.parts.iter().skip(1) {
        let Some(media) = part_type(part) else { continue };
        if BOUNCE_PART_TYPES.contains(&media.as_str()) {
            let start = part.raw_body_offset() as usize;
            let end = (part.raw_end_offset() as usize).min(raw.len());
            report_parts.push((media, raw.get(start..end).unwrap_or_default()));
        }
    }
    for part in message.attachments() {
        let media = part_type(part);
        let size = match &part.body {
            PartType::Message(_) => u64::from(part.raw_end_offset().saturating_sub(part.raw_body_offset())),
            _ => part.len() as u64,
        };
        email.attachments.push(FileInfo {
            file_name: part.attachment_name().map(str::to_owned),
            mime_type: media,
            size,
            content_id: part.content_id().and_then(clean_id),
        });
    }
    if is_bounce(&email) {
        let failed = header_text(&message, "X-Failed-Recipients");
        email.bounce = Some(read_bounce(&email, &report_parts, failed.as_deref()));
    }
    Some(email)
}

/// Whether `email` is a bounce: a delivery report, or a mail from `MAILER-DAEMON` or
/// `postmaster`.
pub fn is_bounce(email: &Email) -> bool {
    if email.is_delivery_report {
        return true;
    }
    email.from.as_ref().is_some_and(|from| {
        let local = from.address.split('@').next().unwrap_or_default().to_ascii_lowercase();
        local == "mailer-daemon" || local == "postmaster"
    })
}

/// The value of a DSN field after its type (`rfc822; a@b.c` -> `a@b.c`, `smtp; 550 ...` ->
/// `550 ...`), folds collapsed.
fn typed_value(value: &str) -> Option<String> {
    let value = collapse_spaces(value);
    let value = match value.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') => rest.trim().to_owned(),
        _ => value,
    };
    (!value.is_empty()).then_some(value)
}

/// The field blocks of a `message/delivery-status` body: the per-message block first, then
/// one per recipient. Each block is parsed as a header block by `mail-parser`.
fn status_blocks(body: &[u8]) -> Vec<Message<'_>> {
    let mut blocks = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i <= body.len() {
        // A block ends at an empty line (`\n\n` or `\n\r\n`) or at the end.
        let at_break = i == body.len()
            || (body[i] == b'\n'
                && (body.get(i + 1) == Some(&b'\n')
                    || (body.get(i + 1) == Some(&b'\r') && body.get(i + 2) == Some(&b'\n'))));
        if at_break {
            let mut block = &body[start..i.min(body.len())];
            while let [b'\r' | b'\n', rest @ ..] = block {
                block = rest;
            }
            if !block.iter().all(u8::is_ascii_whitespace)
                && let Some(parsed) = parse_header_block(block)
            {
                blocks.push(parsed);
            }
            start = (i + 1).min(body.len());
        }
        i += 1;
    }
    blocks
}

/// Finds an SMTP reply with an enhanced status code (`550 5.1.1 ...`) in a notification's
/// text, with the rest of its paragraph.
pub fn smtp_reply_in(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        let Some(at) = smtp_code_at(line) else { continue };
        let mut reply = line[at..].trim().to_owned();
        for next in &lines[n + 1..] {
            if next.trim().is_empty() {
                break;
            }
            reply.push(' ');
            reply.push_str(next.trim());
        }
        let (reply, _) = text::truncate(collapse_spaces(&reply), 500);
        return Some(reply);
    }
    None
}

/// Where `line` has `4xx` / `5xx`, a space or dash, and an enhanced status code `x.y.z`.
fn smtp_code_at(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    (0..b.len()).find(|&i| {
        let starts_word = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let code =
            b.get(i..i + 3).is_some_and(|c| matches!(c[0], b'4' | b'5') && c.iter().all(u8::is_ascii_digit));
        let sep = matches!(b.get(i + 3), Some(b' ' | b'-'));
        let enhanced = b.get(i + 4..i + 9).is_some_and(|e| {
            matches!(e[0], b'4' | b'5')
                && e[1] == b'.'
                && e[2].is_ascii_digit()
                && (e[3] == b'.' || e[3].is_ascii_digit())
        });
        starts_word && code && sep && enhanced
    })
}

/// Reads a bounce from the report parts (`(media type, raw body)` of
/// [`BOUNCE_PART_TYPES`] parts), the `X-Failed-Recipients` header and the notification's
/// text and subject in `email`.
pub fn read_bounce(email: &Email, parts: &[(String, &[u8])], failed_recipients: Option<&str>) -> Bounce {
    let mut bounce = Bounce::default();
    let mut original_to = None;
    for (media, body) in parts {
        if media.ends_with("delivery-status") {
            let blocks = status_blocks(body);
            // The first recipient block that failed, else the first recipient block.
            let recipients: Vec<&Message<'_>> = blocks.iter().skip(1).collect();
            let chosen = recipients
                .iter()
                .find(|b| b.header_raw("Action").is_some_and(|a| a.trim().eq_ignore_ascii_case("failed")))
                .or(recipients.first())
                .copied();
            if let Some(block) = chosen {
                let field = |name: &str| block.header_raw(name).and_then(typed_value);
                bounce.recipient = field("Final-Recipient").or_else(|| field("Original-Recipient"));
                bounce.action = field("Action").map(|a| a.to_ascii_lowercase()).unwrap_or_default();
                bounce.status = field("Status");
                bounce.diagnostic = field("Diagnostic-Code");
            }
        } else if bounce.original_message_id.is_none()
            && let Some(original) = parse_header_block(body)
        {
            bounce.original_message_id = original.message_id().and_then(clean_id);
            bounce.original_subject = original.subject().map(collapse_spaces);
            original_to = mailboxes(original.to()).into_iter().next().map(|m| m.address);
        }
    }
    let failed = failed_recipients
        .and_then(|f| f.split(',').map(str::trim).find(|f| f.contains('@')))
        .map(str::to_owned);
    bounce.recipient = bounce.recipient.take().or(failed).or(original_to);
    if bounce.diagnostic.is_none() {
        bounce.diagnostic = email.text.as_deref().and_then(smtp_reply_in);
    }
    if bounce.action.is_empty() {
        let delayed = email.subject.as_deref().is_some_and(|s| s.to_ascii_lowercase().contains("delay"));
        bounce.action = if delayed { "delayed" } else { "failed" }.to_owned();
    }
    bounce
}
