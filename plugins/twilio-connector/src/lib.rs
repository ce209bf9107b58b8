//! Twilio connector: SMS, MMS and WhatsApp through Twilio Programmable Messaging, and Twilio
//! Voice call status callbacks, on one channel.
//!
//! # Inbound
//! Twilio calls the channel's webhook with `application/x-www-form-urlencoded` parameters
//! (`POST`; `GET` with the parameters in the query when the number is configured so; a JSON
//! body with a `bodySHA256` query parameter for the few webhooks that send JSON).
//!
//! ## Signature
//! Every webhook must carry `X-Twilio-Signature`: base64 of the HMAC-SHA1, keyed with the
//! secret `auth-token`, of the URL Twilio called followed by every `POST` parameter sorted by
//! name (then value), each as name and value concatenated ([`signature_payload`]). Without
//! `auth-token` every webhook is refused (`Misconfigured`): there is no unauthenticated mode.
//!
//! The host only knows the path, so the URL Twilio called is rebuilt ([`signed_url`]) as:
//!
//! 1. the config key `webhook-url`, the public URL Twilio calls for this channel, exactly as
//!    entered at Twilio (scheme, host, optional port, path; no query, no fragment), e.g.
//!    `https://seam.example.com/v1/channels/sms/webhook`;
//! 2. then the request's `path`, the part after `/v1/channels/{channel}/webhook`, unless it is
//!    empty or `/`. A host that passes the whole route instead (`/channels/{channel}/webhook`,
//!    with or without `/v1`) is recognised and only what follows `/webhook` is used;
//! 3. then `?` and the request's raw `query`, as received (not decoded or re-encoded), if
//!    it is not empty.
//!
//! The signature is accepted if it matches that URL as built, with the scheme's default port
//! added when it has none, or with its port removed ([`url_variants`]; Twilio's own validators
//! do the same, since proxies add or drop ports). For a JSON body the URL alone is signed (no
//! parameters) and the body must hash to the URL's `bodySHA256` (lower-case hex SHA-256). For
//! `GET` the URL, query included, is signed and there are no `POST` parameters.
//!
//! ## Events
//! | payload | events | answer |
//! |---|---|---|
//! | message (`MessageSid`, no `MessageStatus` or `received`) | [`Event::IdentityHint`] `whatsapp:<digits>` → `phone:+<digits>` for WhatsApp senders, then [`Event::Message`], then [`Event::Consent`] for STOP/START keywords | empty TwiML |
//! | message status (`MessageStatus` `sent`, `delivered`, `read`, `undelivered`, `failed`, `canceled`) | [`Event::Delivery`] | empty 200 |
//! | message status `queued`, `accepted`, `sending`, `scheduled`, `receiving` or unknown | none | empty 200 |
//! | call (`CallSid` + `CallStatus`) | [`Event::Call`] (unknown statuses: none) | empty TwiML |
//! | recording (`CallSid` + `RecordingSid`, `RecordingStatus` `completed` or absent) | [`Event::Call`] `completed` with the recording URL and call id `<CallSid>/<RecordingSid>`; without `From`/`To`/`Direction` (Twilio's recording status callbacks carry none) an [`Event::Channel`] `call-recording` | empty TwiML |
//! | anything else Twilio signed | none | empty TwiML |
//!
//! Messages: sender from `From` ([`address_identity`]: a plain number is `phone`,
//! `whatsapp:+N` is `whatsapp:N`, other `<kind>:<id>` addresses such as `client:` or `sip:`
//! keep their kind), external id `MessageSid`, text `Body`, attachments from
//! `MediaUrl{n}`/`MediaContentType{n}` and `Latitude`/`Longitude` (`Address`, `Label` in the
//! attachment's extras), sender name `ProfileName`, reply-to `OriginalRepliedMessageSid`,
//! extras every other parameter. Opt-out keywords ([`OPT_OUT_KEYWORDS`]) or `OptOutType=STOP`
//! add a consent change `granted: false`; opt-in keywords ([`OPT_IN_KEYWORDS`]) or
//! `OptOutType=START` one with `granted: true`; Twilio sends no time, so `at` is none.
//!
//! # Outbound
//! `send` POSTs `To`, `From` and/or `MessagingServiceSid`, `Body`, one `MediaUrl` per
//! attachment with a URL and `StatusCallback` ([`form_fields`]) to
//! `{api-base}/2010-04-01/Accounts/{account-sid}/Messages.json` with HTTP Basic auth
//! `account-sid:auth-token` ([`build_request`]), and maps Twilio's answer with
//! [`classify_response`]. When `from` is a `whatsapp:` sender every recipient is addressed as
//! `whatsapp:+<digits>`. The auth token is never logged nor put in a delivery result.

#![warn(missing_docs)]

pub mod codec;

pub use seam_sdk::delivery::{SNIPPET_CHARS, retry_after_ms, snippet};
use seam_sdk::http::{HttpError, Request, Response};
use seam_sdk::prelude::*;
use seam_sdk::serde_json::{self, Map, Value};

/// Header carrying Twilio's request signature.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Query parameter holding the hex SHA-256 of a JSON body.
pub const BODY_HASH_PARAM: &str = "bodySHA256";

/// The identity kind of phone numbers.
pub const PHONE: &str = "phone";

/// The identity kind of WhatsApp users (the value is the number's digits, without `+`).
pub const WHATSAPP: &str = "whatsapp";

/// Reason of the identity hint linking a WhatsApp user to their phone number.
pub const WHATSAPP_HINT_REASON: &str = "whatsapp-id";

/// Twilio's default opt-out keywords: the whole message, trimmed, in any case.
pub const OPT_OUT_KEYWORDS: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];

/// Twilio's default opt-in keywords: the whole message, trimmed, in any case.
pub const OPT_IN_KEYWORDS: [&str; 3] = ["START", "YES", "UNSTOP"];

/// The body of every TwiML answer: do nothing (no reply message; for a call, hang up).
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// Twilio's REST API when `api-base` is not set.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// Longest text one message may have (Twilio splits it into up to 10 segments).
pub const MAX_TEXT_LENGTH: u32 = 1600;

/// Twilio error code: too many requests.
pub const ERROR_RATE_LIMITED: u32 = 20429;

/// Twilio error code: the recipient replied STOP to this sender.
pub const ERROR_UNSUBSCRIBED: u32 = 21610;

/// What the channel is.
pub fn channel_info() -> ChannelInfo {
    ChannelInfo {
        kind: "sms".to_owned(),
        display_name: "Twilio (SMS, MMS, WhatsApp, voice)".to_owned(),
        features: ChannelFeatures::TEXT | ChannelFeatures::MEDIA | ChannelFeatures::DELIVERY_STATUS,
        max_text_length: Some(MAX_TEXT_LENGTH),
        identity_kind: PHONE.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook parameters
// ---------------------------------------------------------------------------------------------

/// The parameters of one webhook, in the order received (decoded form pairs, or the members of
/// a JSON object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The pairs of an `application/x-www-form-urlencoded` body or a query string.
    pub fn from_form(bytes: &[u8]) -> Self {
        Params(json::form_pairs(bytes))
    }

    /// The members of a JSON object body: strings as they are, numbers and booleans printed,
    /// arrays and objects as JSON text, `null` left out. A JSON value that is not an object
    /// has no parameters. The error says why the body is not JSON.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        let value: Value = json::parse(body)?;
        let Value::Object(members) = value else { return Ok(Params::default()) };
        let pairs = members
            .into_iter()
            .filter_map(|(key, value)| {
                let text = match value {
                    Value::Null => return None,
                    Value::String(s) => s,
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    other => other.to_string(),
                };
                Some((key, text))
            })
            .collect();
        Ok(Params(pairs))
    }

    /// The first value of `name`, as received (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name` if it is not empty or blank, as received.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// The parameters not named in `mapped` and not matched by `also_mapped`, as a JSON object
    /// of strings (the first value of each name); `None` if there are none.
    pub fn extras(&self, mapped: &[&str], also_mapped: impl Fn(&str) -> bool) -> Option<String> {
        let mut members = Map::new();
        for (key, value) in &self.0 {
            if mapped.contains(&key.as_str()) || also_mapped(key) || members.contains_key(key) {
                continue;
            }
            members.insert(key.clone(), Value::String(value.clone()));
        }
        (!members.is_empty()).then(|| Value::Object(members).to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------------------------

/// Where the path Seam received starts being the provider's own: after
/// `[/v1]/channels/{channel}/webhook` when a host passes the whole route, otherwise the whole
/// `path`. `/` and empty mean nothing follows.
pub fn extra_path(path: &str) -> &str {
    let route = path.strip_prefix("/v1").filter(|rest| rest.starts_with('/')).unwrap_or(path);
    let rest = route
        .strip_prefix("/channels/")
        .and_then(|after| after.find('/').map(|slash| &after[slash..]))
        .and_then(|after_id| after_id.strip_prefix("/webhook"))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .unwrap_or(path);
    if rest == "/" { "" } else { rest }
}

/// The URL Twilio signed for a request with `path` and `query` to the channel whose public
/// URL is `webhook_url` (see the module docs). The error, fit for `Misconfigured`, says what
/// is wrong with `webhook_url`.
pub fn signed_url(webhook_url: &str, path: &str, query: &str) -> Result<String, String> {
    let base = webhook_url.trim();
    let lower = base.to_ascii_lowercase();
    let Some(after_scheme) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
        return Err(format!(
            "config key `webhook-url` must be an absolute http(s) URL such as \
             https://seam.example.com/v1/channels/sms/webhook, got `{base}`"
        ));
    };
    if after_scheme.is_empty() || after_scheme.starts_with('/') {
        return Err(format!("config key `webhook-url` has no host: `{base}`"));
    }
    if base.contains(['?', '#']) {
        return Err(format!(
            "config key `webhook-url` must not have a query or fragment (the query comes from each \
             request as Twilio sent it): `{base}`"
        ));
    }
    let mut url = base.to_owned();
    let extra = extra_path(path);
    if !extra.is_empty() {
        url.truncate(url.trim_end_matches('/').len());
        if !extra.starts_with('/') {
            url.push('/');
        }
        url.push_str(extra);
    }
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

/// The forms of `url` a valid signature may have been computed over: as given, with the
/// scheme's default port (443 or 80) added if it has no port, and with its port removed.
/// Duplicates are left out; a URL that cannot be split has only itself.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some(scheme_end) = url.find("://") else { return variants };
    let scheme = url[..scheme_end].to_ascii_lowercase();
    let authority_start = scheme_end + 3;
    let authority_end =
        url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_port = &authority[host_start..];
    // The port's `:` is after the last `]` (IPv6 literals hold colons too).
    let host_end = host_port.rfind(']').map_or(0, |b| b + 1);
    let port_colon = host_port[host_end..].rfind(':').map(|c| authority_start + host_start + host_end + c);
    let rebuilt = |port: Option<&str>| {
        let host_end = port_colon.unwrap_or(authority_end);
        let mut out = url[..host_end].to_owned();
        if let Some(port) = port {
            out.push(':');
            out.push_str(port);
        }
        out.push_str(&url[authority_end..]);
        out
    };
    match port_colon {
        Some(_) => variants.push(rebuilt(None)),
        None => match scheme.as_str() {
            "https" => variants.push(rebuilt(Some("443"))),
            "http" => variants.push(rebuilt(Some("80"))),
            _ => {}
        },
    }
    variants.dedup();
    variants
}

/// What Twilio signs: `url`, then every parameter sorted by name and then by value, each as
/// name followed by value.
pub fn signature_payload(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut payload = url.as_bytes().to_vec();
    for (key, value) in sorted {
        payload.extend_from_slice(key.as_bytes());
        payload.extend_from_slice(value.as_bytes());
    }
    payload
}

/// The `X-Twilio-Signature` of a request to `url` with `params`, signed with `auth_token`.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    codec::base64(&signature::hmac_sha1(auth_token.as_bytes(), &signature_payload(url, params)))
}

/// Whether `signature` is valid for `url` (in any of its [`url_variants`]) and `params`,
/// compared in constant time.
pub fn signature_matches(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    url_variants(url).iter().any(|variant| {
        signature::verify_hmac_sha1_base64(
            auth_token.as_bytes(),
            &signature_payload(variant, params),
            signature,
        )
    })
}

/// Where a webhook's parameters are.
enum Carrier {
    /// `GET`: in the query string.
    Query,
    /// A JSON body (the URL carries `bodySHA256`).
    Json,
    /// A form body.
    Form(Params),
}

/// Checks `request`'s `X-Twilio-Signature` against `auth_token` and the URL rebuilt from
/// `webhook_url` (see the module docs), then returns its parameters. A wrong `webhook_url`
/// is `Misconfigured`; a missing or wrong signature, or a JSON body that does not match its
/// `bodySHA256`, is `Unauthorized`; a JSON body that does not parse is `Malformed`.
pub fn verify(request: &HttpRequest, auth_token: &str, webhook_url: &str) -> Result<Params, WebhookError> {
    let url = signed_url(webhook_url, &request.path, &request.query).map_err(WebhookError::Misconfigured)?;
    let Some(given) = request.header(SIGNATURE_HEADER) else {
        return Err(WebhookError::Unauthorized("missing `X-Twilio-Signature` header".to_owned()));
    };
    let body_hash =
        if request.method.eq_ignore_ascii_case("GET") { None } else { request.query_param(BODY_HASH_PARAM) };
    let carrier = if request.method.eq_ignore_ascii_case("GET") {
        Carrier::Query
    } else if body_hash.is_some() {
        Carrier::Json
    } else {
        Carrier::Form(Params::from_form(&request.body))
    };
    let signed: &[(String, String)] = match &carrier {
        Carrier::Form(params) => &params.0,
        Carrier::Query | Carrier::Json => &[],
    };
    if !signature_matches(auth_token, &url, signed, given) {
        let json_hint = request
            .header("content-type")
            .filter(|ct| {
                ct.trim().to_ascii_lowercase().starts_with("application/json") && body_hash.is_none()
            })
            .map_or("", |_| " (a JSON body must come with a `bodySHA256` query parameter)");
        return Err(WebhookError::Unauthorized(format!(
            "`X-Twilio-Signature` does not match a request to `{url}` (with or without the default \
             port){json_hint}; check that `webhook-url` is exactly the URL configured at Twilio and \
             that `auth-token` is the account's auth token"
        )));
    }
    match carrier {
        Carrier::Query => Ok(Params::from_form(request.query.as_bytes())),
        Carrier::Form(params) => Ok(params),
        Carrier::Json => {
            let expected = codec::sha256_hex(&request.body);
            if !body_hash.is_some_and(|given| given.trim().eq_ignore_ascii_case(&expected)) {
                return Err(WebhookError::Unauthorized(format!(
                    "the body does not match the `{BODY_HASH_PARAM}` query parameter (its SHA-256 is {expected})"
                )));
            }
            Params::from_json(&request.body).map_err(WebhookError::Malformed)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------------------------

/// Whether `prefix` can be a channel prefix of a Twilio address (`whatsapp`, `client`,
/// `sip`, `messenger`...): a lower-case letter, then lower-case letters, digits or `-`.
fn is_address_prefix(prefix: &str) -> bool {
    prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The identity behind a Twilio address (`From`, `To`): `whatsapp:+31612345678` is
/// `whatsapp:31612345678` (digits only), `tel:+1...` and a plain number are `phone` as given,
/// and any other `<kind>:<id>` (`client:alice`, `sip:bob@example.com`) keeps its kind.
pub fn address_identity(address: &str) -> Identity {
    let address = address.trim();
    if let Some((prefix, rest)) = address.split_once(':') {
        let kind = prefix.to_ascii_lowercase();
        if kind == "tel" {
            return Identity { kind: PHONE.to_owned(), value: rest.trim().to_owned() };
        }
        if is_address_prefix(&kind) {
            let rest = rest.trim();
            let value = if kind == WHATSAPP { rest.trim_start_matches('+') } else { rest };
            return Identity { kind, value: value.to_owned() };
        }
    }
    Identity { kind: PHONE.to_owned(), value: address.to_owned() }
}

/// For a WhatsApp identity whose value is a number's digits: the hint that it is the phone
/// `+<digits>` too.
pub fn whatsapp_hint(identity: &Identity) -> Option<IdentityHint> {
    let digits = &identity.value;
    (identity.kind == WHATSAPP && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(
        || IdentityHint {
            known: identity.clone(),
            also: Identity { kind: PHONE.to_owned(), value: format!("+{digits}") },
            reason: WHATSAPP_HINT_REASON.to_owned(),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Inbound messages
// ---------------------------------------------------------------------------------------------

/// The message's id: `MessageSid`, or the older `SmsMessageSid`/`SmsSid`.
pub fn message_sid(params: &Params) -> Option<&str> {
    ["MessageSid", "SmsMessageSid", "SmsSid"].into_iter().find_map(|name| params.non_empty(name))
}

/// The attachment kind of a media content type: `image/*`, `audio/*`, `video/*`, vCards as
/// contacts, other types as documents, and no type at all as other.
pub fn media_kind(content_type: Option<&str>) -> AttachmentKind {
    let Some(content_type) = content_type else { return AttachmentKind::Other };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("image", _)) => AttachmentKind::Image,
        Some(("audio", _)) => AttachmentKind::Audio,
        Some(("video", _)) => AttachmentKind::Video,
        Some(("text", "vcard" | "x-vcard" | "directory")) => AttachmentKind::Contact,
        _ => AttachmentKind::Document,
    }
}

/// Whether `name` is `<prefix><digits>`.
fn is_indexed(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The media of a message: `MediaUrl0`, `MediaUrl1`... with `MediaContentType{n}`, up to the
/// first missing index. The media id (`ME...`, the URL's last segment) is the provider id.
/// `NumMedia`, if present, must be a number and no more than the URLs present.
pub fn media_attachments(params: &Params) -> Result<Vec<Attachment>, String> {
    let declared = match params.non_empty("NumMedia") {
        None => None,
        Some(n) => Some(n.trim().parse::<usize>().map_err(|_| format!("`NumMedia` is not a number: `{n}`"))?),
    };
    let mut attachments = Vec::new();
    while let Some(url) = params.non_empty(&format!("MediaUrl{}", attachments.len())) {
        let mime_type = params.non_empty(&format!("MediaContentType{}", attachments.len()));
        let media_id = url.trim_end_matches('/').rsplit('/').next().filter(|id| id.starts_with("ME"));
        attachments.push(Attachment {
            kind: media_kind(mime_type),
            url: Some(url.to_owned()),
            provider_id: media_id.map(str::to_owned),
            mime_type: mime_type.map(str::to_owned),
            file_name: None,
            size: None,
            caption: None,
            location: None,
            extras: None,
        });
    }
    if let Some(n) = declared
        && n > attachments.len()
    {
        return Err(format!("`NumMedia` is {n} but `MediaUrl{}` is missing", attachments.len()));
    }
    Ok(attachments)
}

/// One coordinate: a finite number within `-limit..=limit`.
fn coordinate(params: &Params, name: &str, limit: f64) -> Result<f64, String> {
    let text = params.non_empty(name).ok_or_else(|| format!("`{name}` is missing"))?;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && v.abs() <= limit)
        .ok_or_else(|| format!("`{name}` is not a coordinate: `{text}`"))
}

/// The location a WhatsApp user shared (`Latitude`, `Longitude`; `Address` and `Label` in the
/// attachment's extras as `address` and `label`), if any. One coordinate without the other,
/// or one that is not a number, is an error.
pub fn location_attachment(params: &Params) -> Result<Option<Attachment>, String> {
    if params.non_empty("Latitude").is_none() && params.non_empty("Longitude").is_none() {
        return Ok(None);
    }
    let latitude = coordinate(params, "Latitude", 90.0)?;
    let longitude = coordinate(params, "Longitude", 180.0)?;
    let mut extras = Map::new();
    for (param, key) in [("Address", "address"), ("Label", "label")] {
        if let Some(value) = params.non_empty(param) {
            extras.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }
    Ok(Some(Attachment {
        kind: AttachmentKind::Location,
        url: None,
        provider_id: None,
        mime_type: None,
        file_name: None,
        size: None,
        caption: None,
        location: Some(GeoPoint { latitude, longitude }),
        extras: (!extras.is_empty()).then(|| Value::Object(extras).to_string()),
    }))
}

/// Whether a message changes the sender's consent, and the keyword that did: `OptOutType`
/// (`STOP`, `START`; `HELP` changes nothing) decides when Twilio sends it (Advanced Opt-Out
/// may have custom keywords), otherwise the whole trimmed `body` in any case is compared with
/// [`OPT_OUT_KEYWORDS`] and [`OPT_IN_KEYWORDS`]. `Some((granted, keyword))`.
pub fn consent_keyword(body: Option<&str>, opt_out_type: Option<&str>) -> Option<(bool, String)> {
    let word = body.map(|b| b.trim().to_uppercase()).filter(|w| !w.is_empty());
    match opt_out_type.map(|t| t.trim().to_ascii_uppercase()).as_deref() {
        Some("STOP") => return Some((false, word.unwrap_or_else(|| "STOP".to_owned()))),
        Some("START") => return Some((true, word.unwrap_or_else(|| "START".to_owned()))),
        Some("HELP") => return None,
        _ => {}
    }
    let word = word?;
    if OPT_OUT_KEYWORDS.contains(&word.as_str()) {
        Some((false, word))
    } else if OPT_IN_KEYWORDS.contains(&word.as_str()) {
        Some((true, word))
    } else {
        None
    }
}

/// Parameters an inbound message maps to typed fields (the rest go to its extras).
const MESSAGE_FIELDS: &[&str] = &[
    "MessageSid",
    "From",
    "Body",
    "ProfileName",
    "NumMedia",
    "Latitude",
    "Longitude",
    "Address",
    "Label",
    "OriginalRepliedMessageSid",
];

/// The events of an inbound message (see the module docs): an identity hint for a WhatsApp
/// sender, the message, and a consent change for an opt-out or opt-in keyword. The error names
/// what is missing or wrong.
pub fn map_inbound(params: &Params) -> Result<Vec<Event>, String> {
    let sid = message_sid(params).ok_or("the message has no `MessageSid`")?;
    let from = params.non_empty("From").ok_or_else(|| format!("message {sid} has no `From`"))?;
    let sender = address_identity(from);
    if sender.value.is_empty() {
        return Err(format!("message {sid}: `From` has no address: `{from}`"));
    }
    let mut attachments = media_attachments(params).map_err(|e| format!("message {sid}: {e}"))?;
    attachments.extend(location_attachment(params).map_err(|e| format!("message {sid}: {e}"))?);
    let text = params.non_empty("Body");
    let message = InboundMessage {
        external_id: sid.to_owned(),
        sender: sender.clone(),
        sender_name: params.non_empty("ProfileName").map(str::to_owned),
        text: text.map(str::to_owned),
        attachments,
        reply_to: params.non_empty("OriginalRepliedMessageSid").map(str::to_owned),
        thread: None,
        sent_at: None,
        extras: params
            .extras(MESSAGE_FIELDS, |k| is_indexed(k, "MediaUrl") || is_indexed(k, "MediaContentType")),
    };
    let mut events = Vec::new();
    events.extend(whatsapp_hint(&sender).map(Event::IdentityHint));
    events.push(Event::Message(message));
    if let Some((granted, reason)) = consent_keyword(text, params.non_empty("OptOutType")) {
        events.push(Event::Consent(ConsentChange { customer: sender, granted, reason, at: None }));
    }
    Ok(events)
}

// ---------------------------------------------------------------------------------------------
// Message status callbacks
// ---------------------------------------------------------------------------------------------

/// The delivery status of a `MessageStatus`; `None` for statuses that are not news
/// (`queued`, `accepted`, `sending`, `scheduled`, `receiving`) and unknown ones.
pub fn delivery_status(message_status: &str) -> Option<DeliveryStatus> {
    match message_status.trim().to_ascii_lowercase().as_str() {
        "sent" => Some(DeliveryStatus::Sent),
        "delivered" => Some(DeliveryStatus::Delivered),
        "read" => Some(DeliveryStatus::Read),
        "undelivered" | "failed" | "canceled" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

/// Why a message failed: `<ErrorCode>: <ErrorMessage>`, either alone, or the status itself
/// when Twilio gives neither.
pub fn failure_reason(params: &Params, status: &str) -> String {
    match (params.non_empty("ErrorCode"), params.non_empty("ErrorMessage")) {
        (Some(code), Some(message)) => format!("{}: {}", code.trim(), message.trim()),
        (Some(code), None) => code.trim().to_owned(),
        (None, Some(message)) => message.trim().to_owned(),
        (None, None) => status.trim().to_ascii_lowercase(),
    }
}

/// The delivery update of a message status callback (none for statuses that are not news):
/// provider id `MessageSid`, recipient from `To`, a reason for failures.
pub fn map_status(params: &Params) -> Result<Vec<Event>, String> {
    let sid = message_sid(params).ok_or("the status callback has no `MessageSid`")?;
    let raw =
        params.non_empty("MessageStatus").ok_or_else(|| format!("message {sid}: no `MessageStatus`"))?;
    let Some(status) = delivery_status(raw) else { return Ok(Vec::new()) };
    let reason = matches!(status, DeliveryStatus::Failed).then(|| failure_reason(params, raw));
    Ok(vec![Event::Delivery(DeliveryUpdate {
        provider_id: sid.to_owned(),
        recipient: params.non_empty("To").map(address_identity),
        status,
        reason,
        at: None,
    })])
}

// ---------------------------------------------------------------------------------------------
// Voice
// ---------------------------------------------------------------------------------------------

/// The call status of a `CallStatus`: `queued`, `initiated` and `ringing` are ringing,
/// `in-progress` is answered; `None` for unknown values.
pub fn call_status(value: &str) -> Option<CallStatus> {
    match value.trim().to_ascii_lowercase().as_str() {
        "queued" | "initiated" | "ringing" => Some(CallStatus::Ringing),
        "in-progress" | "answered" => Some(CallStatus::Answered),
        "completed" => Some(CallStatus::Completed),
        "busy" => Some(CallStatus::Busy),
        "no-answer" => Some(CallStatus::NoAnswer),
        "failed" => Some(CallStatus::Failed),
        "canceled" => Some(CallStatus::Canceled),
        _ => None,
    }
}

/// The customer, the company's line and the direction of a call: `inbound` (and
/// `trunking-terminating`) calls are from the customer (`From`) to the line (`To`);
/// `outbound-api`, `outbound-dial` (and `trunking-originating`) the other way round.
pub fn call_parties(params: &Params) -> Result<(Identity, Option<String>, CallDirection), String> {
    let direction = params.non_empty("Direction").ok_or("the call has no `Direction`")?;
    let direction_name = direction.trim().to_ascii_lowercase();
    let (direction, customer_param, line_param) = match direction_name.as_str() {
        "inbound" | "trunking-terminating" => (CallDirection::Inbound, "From", "To"),
        d if d.starts_with("outbound") || d == "trunking-originating" => {
            (CallDirection::Outbound, "To", "From")
        }
        _ => return Err(format!("unknown call `Direction`: `{direction}`")),
    };
    let customer = params
        .non_empty(customer_param)
        .map(address_identity)
        .filter(|id| !id.value.is_empty())
        .ok_or_else(|| format!("{direction_name} call has no `{customer_param}`"))?;
    let line = params.non_empty(line_param).map(|l| l.trim().to_owned());
    Ok((customer, line, direction))
}

/// `CallDuration` in seconds, if present; an error if it is not a whole number.
fn call_duration(params: &Params) -> Result<Option<u32>, String> {
    params
        .non_empty("CallDuration")
        .map(|d| {
            d.trim().parse::<u32>().map_err(|_| format!("`CallDuration` is not a number of seconds: `{d}`"))
        })
        .transpose()
}

/// The call event of a voice webhook or call status callback (`CallSid` + `CallStatus`); none
/// for an unknown status. Time from `Timestamp` (RFC 2822) when Twilio sends it.
pub fn map_call(params: &Params) -> Result<Vec<Event>, String> {
    let sid = params.non_empty("CallSid").ok_or("the call has no `CallSid`")?;
    let raw = params.non_empty("CallStatus").ok_or_else(|| format!("call {sid} has no `CallStatus`"))?;
    let Some(status) = call_status(raw) else { return Ok(Vec::new()) };
    let (customer, line, direction) = call_parties(params).map_err(|e| format!("call {sid}: {e}"))?;
    Ok(vec![Event::Call(CallEvent {
        call_id: sid.to_owned(),
        customer,
        line,
        direction,
        status,
        duration_seconds: call_duration(params).map_err(|e| format!("call {sid}: {e}"))?,
        recording_url: params.non_empty("RecordingUrl").map(str::to_owned),
        at: params.non_empty("Timestamp").and_then(codec::parse_rfc2822),
    })])
}

/// The event of a finished recording (`CallSid` + `RecordingSid`; `RecordingStatus`
/// `completed`, or absent as in `<Record>` action callbacks): a `completed` call event with
/// the recording URL and call id `<CallSid>/<RecordingSid>` (so the host does not take it for
/// the call's own `completed`). Twilio's recording status callbacks carry no numbers; then
/// the event is a channel event `call-recording` (external id `RecordingSid`, no customer,
/// every parameter in the payload). Other recording statuses (`in-progress`, `absent`,
/// `failed`) give none.
pub fn map_recording(params: &Params) -> Result<Vec<Event>, String> {
    let call_sid = params.non_empty("CallSid").ok_or("the recording has no `CallSid`")?;
    let recording_sid = params
        .non_empty("RecordingSid")
        .ok_or_else(|| format!("call {call_sid}: the recording has no `RecordingSid`"))?;
    if params.non_empty("RecordingStatus").is_some_and(|s| !s.trim().eq_ignore_ascii_case("completed")) {
        return Ok(Vec::new());
    }
    let url = params
        .non_empty("RecordingUrl")
        .ok_or_else(|| format!("recording {recording_sid} of call {call_sid} has no `RecordingUrl`"))?;
    let at = params.non_empty("Timestamp").and_then(codec::parse_rfc2822);
    let Ok((customer, line, direction)) = call_parties(params) else {
        let payload: Map<String, Value> =
            params.0.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        return Ok(vec![Event::Channel(ChannelEvent {
            kind: "call-recording".to_owned(),
            external_id: recording_sid.to_owned(),
            customer: None,
            payload: Value::Object(payload).to_string(),
            at,
        })]);
    };
    Ok(vec![Event::Call(CallEvent {
        call_id: format!("{call_sid}/{recording_sid}"),
        customer,
        line,
        direction,
        status: CallStatus::Completed,
        duration_seconds: call_duration(params).map_err(|e| format!("call {call_sid}: {e}"))?,
        recording_url: Some(url.to_owned()),
        at,
    })])
}

// ---------------------------------------------------------------------------------------------
// Webhook
// ---------------------------------------------------------------------------------------------

/// What a webhook was about, which decides the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// A message from a customer.
    Message,
    /// A status callback about a message the company sent.
    MessageStatus,
    /// A voice webhook or call status callback.
    Call,
    /// A recording callback.
    Recording,
    /// Anything else Twilio signed.
    Other,
}

impl PayloadKind {
    /// The answer to Twilio: an empty 200 for message status callbacks, empty TwiML
    /// (`text/xml`) for everything else, since messaging and voice webhooks expect TwiML.
    pub fn response(self) -> HttpResponse {
        match self {
            PayloadKind::MessageStatus => HttpResponse::ok(),
            _ => twiml_response(),
        }
    }
}

/// `200` with [`EMPTY_TWIML`] as `text/xml`.
pub fn twiml_response() -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), "text/xml".to_owned())],
        body: EMPTY_TWIML.as_bytes().to_vec(),
    }
}

/// What a webhook is about, from which of its parameters are present.
pub fn classify(params: &Params) -> PayloadKind {
    if params.non_empty("CallSid").is_some() {
        if params.non_empty("RecordingSid").is_some() {
            PayloadKind::Recording
        } else if params.non_empty("CallStatus").is_some() {
            PayloadKind::Call
        } else {
            PayloadKind::Other
        }
    } else if message_sid(params).is_some() {
        match params.non_empty("MessageStatus") {
            Some(status) if !status.trim().eq_ignore_ascii_case("received") => PayloadKind::MessageStatus,
            _ => PayloadKind::Message,
        }
    } else {
        PayloadKind::Other
    }
}

/// The kind of a webhook and its events. The error, fit for `Malformed`, names what is
/// missing or wrong.
pub fn map_webhook(params: &Params) -> Result<(PayloadKind, Vec<Event>), String> {
    let kind = classify(params);
    let events = match kind {
        PayloadKind::Message => map_inbound(params)?,
        PayloadKind::MessageStatus => map_status(params)?,
        PayloadKind::Call => map_call(params)?,
        PayloadKind::Recording => map_recording(params)?,
        PayloadKind::Other => Vec::new(),
    };
    Ok((kind, events))
}

/// Handles one webhook: checks the method and the config, verifies the signature
/// ([`verify`]), maps the parameters ([`map_webhook`]) and chooses the answer
/// ([`PayloadKind::response`]).
pub fn handle(
    request: &HttpRequest,
    auth_token: Option<&str>,
    webhook_url: Option<&str>,
) -> Result<WebhookOutcome, WebhookError> {
    if !request.method.eq_ignore_ascii_case("POST") && !request.method.eq_ignore_ascii_case("GET") {
        return Err(WebhookError::Malformed(format!(
            "Twilio webhooks are POST or GET, got {}",
            request.method
        )));
    }
    let Some(auth_token) = auth_token.filter(|t| !t.is_empty()) else {
        return Err(WebhookError::Misconfigured(
            "secret `auth-token` is not set: Twilio webhooks cannot be verified, so they are refused"
                .to_owned(),
        ));
    };
    let Some(webhook_url) = webhook_url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Err(WebhookError::Misconfigured(
            "config key `webhook-url` is not set: set it to the public URL Twilio calls for this channel \
             (e.g. https://seam.example.com/v1/channels/sms/webhook), which Twilio signs"
                .to_owned(),
        ));
    };
    let params = verify(request, auth_token, webhook_url)?;
    let (kind, events) = map_webhook(&params).map_err(WebhookError::Malformed)?;
    Ok(WebhookOutcome { events, response: kind.response() })
}

// ---------------------------------------------------------------------------------------------
// Send
// ---------------------------------------------------------------------------------------------

/// What `send` needs from the config. Its `Debug` hides the auth token.
#[derive(Clone, PartialEq, Eq)]
pub struct SendConfig {
    /// `account-sid`: the account (`AC...`) messages are sent from.
    pub account_sid: Option<String>,
    /// Secret `auth-token`: the account's auth token (or an API key secret).
    pub auth_token: Option<String>,
    /// `from`: the sending number, or `whatsapp:+<number>` for WhatsApp.
    pub from: Option<String>,
    /// `messaging-service-sid`: a Messaging Service (`MG...`) that picks the sender.
    pub messaging_service_sid: Option<String>,
    /// `status-callback`: the URL Twilio reports delivery to.
    pub status_callback: Option<String>,
    /// `api-base`: Twilio's REST API, without a trailing `/`.
    pub api_base: String,
}

impl std::fmt::Debug for SendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<hidden>"))
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("status_callback", &self.status_callback)
            .field("api_base", &self.api_base)
            .finish()
    }
}

impl SendConfig {
    /// The config from values looked up with `get` (plain keys) and `secret` (`auth-token`):
    /// values are trimmed, and empty ones count as unset; `api-base` defaults to
    /// [`DEFAULT_API_BASE`].
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let clean = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        SendConfig {
            account_sid: clean(get("account-sid")),
            auth_token: clean(secret("auth-token")),
            from: clean(get("from")),
            messaging_service_sid: clean(get("messaging-service-sid")),
            status_callback: clean(get("status-callback")),
            api_base: clean(get("api-base"))
                .unwrap_or_else(|| DEFAULT_API_BASE.to_owned())
                .trim_end_matches('/')
                .to_owned(),
        }
    }

    /// The config of this plugin.
    pub fn from_config() -> Self {
        Self::from_lookup(config::get, config::secret)
    }

    /// Whether `from` is a WhatsApp sender (`whatsapp:+...`).
    pub fn whatsapp_sender(&self) -> bool {
        self.from.as_deref().is_some_and(|f| f.trim().to_ascii_lowercase().starts_with("whatsapp:"))
    }
}

/// The digits of a number given as `+31...`, `31...` or `whatsapp:+31...` (spaces, `-`,
/// `(` and `)` dropped); an error unless digits remain.
fn number_digits(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    let bare =
        trimmed.get(..9).filter(|p| p.eq_ignore_ascii_case("whatsapp:")).map_or(trimmed, |_| &trimmed[9..]);
    let digits: String =
        bare.trim().trim_start_matches('+').chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{value}` is not a phone number"));
    }
    Ok(digits)
}

/// The `To` of a message to `to`: a `phone` as given, or `whatsapp:+<digits>` when the
/// sender is a WhatsApp sender; a `whatsapp` identity as `whatsapp:+<digits>`, which needs a
/// `whatsapp:` sender (or a Messaging Service, which may hold one). Other kinds are errors.
pub fn recipient_address(to: &Identity, config: &SendConfig) -> Result<String, String> {
    match to.kind.as_str() {
        PHONE if config.whatsapp_sender() => Ok(format!("whatsapp:+{}", number_digits(&to.value)?)),
        PHONE if to.value.trim().is_empty() => Err("the recipient's phone number is empty".to_owned()),
        PHONE => Ok(to.value.trim().to_owned()),
        WHATSAPP
            if config.whatsapp_sender()
                || (config.from.is_none() && config.messaging_service_sid.is_some()) =>
        {
            Ok(format!("whatsapp:+{}", number_digits(&to.value)?))
        }
        WHATSAPP => {
            Err("cannot send to a WhatsApp user: config key `from` is not a `whatsapp:+<number>` sender"
                .to_owned())
        }
        other => {
            Err(format!("cannot send to a `{other}` identity: this channel sends to `phone` or `whatsapp`"))
        }
    }
}

/// The form fields of the Messages request: `To`, `From` and/or `MessagingServiceSid`,
/// `Body` (if the text is not empty), one `MediaUrl` per attachment with a URL (others are
/// left out: Twilio sends media by URL only) and `StatusCallback`. An error if there is no
/// sender, nothing to send, or a template (not supported here).
pub fn form_fields(message: &OutboundMessage, config: &SendConfig) -> Result<Vec<(String, String)>, String> {
    if message.template.is_some() {
        return Err("templates are not supported by the Twilio connector; send text or media".to_owned());
    }
    if config.from.is_none() && config.messaging_service_sid.is_none() {
        return Err("neither config key `from` nor `messaging-service-sid` is set: no sender".to_owned());
    }
    let mut fields = vec![("To".to_owned(), recipient_address(&message.to, config)?)];
    if let Some(from) = &config.from {
        fields.push(("From".to_owned(), from.clone()));
    }
    if let Some(service) = &config.messaging_service_sid {
        fields.push(("MessagingServiceSid".to_owned(), service.clone()));
    }
    let text = message.text.as_deref().filter(|t| !t.trim().is_empty());
    if let Some(text) = text {
        fields.push(("Body".to_owned(), text.to_owned()));
    }
    let media: Vec<&str> = message
        .attachments
        .iter()
        .filter_map(|a| a.url.as_deref().map(str::trim).filter(|u| !u.is_empty()))
        .collect();
    if text.is_none() && media.is_empty() {
        return Err("the message has no text and no attachment with a URL: nothing to send".to_owned());
    }
    fields.extend(media.into_iter().map(|url| ("MediaUrl".to_owned(), url.to_owned())));
    if let Some(callback) = &config.status_callback {
        fields.push(("StatusCallback".to_owned(), callback.clone()));
    }
    Ok(fields)
}

/// `{api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`.
pub fn messages_url(api_base: &str, account_sid: &str) -> String {
    format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", api_base.trim_end_matches('/'))
}

/// The request `send` makes: a form POST of [`form_fields`] to [`messages_url`] with HTTP
/// Basic auth `account-sid:auth-token`. The error names the missing or wrong config key, or
/// why the message cannot be sent; it never holds the token.
pub fn build_request(message: &OutboundMessage, config: &SendConfig) -> Result<Request, String> {
    let account_sid = config.account_sid.as_deref().ok_or("config key `account-sid` is not set")?;
    if !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "config key `account-sid` must be letters and digits (AC...), got `{account_sid}`"
        ));
    }
    let auth_token = config.auth_token.as_deref().ok_or("secret `auth-token` is not set")?;
    let fields = form_fields(message, config)?;
    let credentials = codec::base64(format!("{account_sid}:{auth_token}").as_bytes());
    Ok(Request::new("POST", &messages_url(&config.api_base, account_sid))
        .header("authorization", &format!("Basic {credentials}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(codec::form_encode(&fields).into_bytes()))
}

/// Twilio's error body (`{"code": 21211, "message": "...", "more_info": "...", "status": 400}`):
/// the code, if a number, and the message.
pub fn twilio_error(body: &[u8]) -> Option<(Option<u32>, Option<String>)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = json::text_at(&value, "code").and_then(|c| c.trim().parse::<u32>().ok());
    let message = json::text_at(&value, "message").map(|m| m.trim().to_owned()).filter(|m| !m.is_empty());
    (code.is_some() || message.is_some()).then_some((code, message))
}

/// What Twilio's answer to a Messages request means: 2xx with a `sid` is accepted; 429 or
/// error 20429 and 5xx are retried later (after `Retry-After` seconds if given); error 21610
/// (the customer replied STOP) is rejected as an opt-out; other 4xx are rejected with
/// `<code>: <message>`.
pub fn classify_response(status: u16, retry_after: Option<&str>, body: &[u8]) -> DeliveryResult {
    let error = twilio_error(body);
    let code = error.as_ref().and_then(|(code, _)| *code);
    let described = || match &error {
        Some((Some(code), Some(message))) => format!("{code}: {message}"),
        Some((Some(code), None)) => format!("{code}: (no message)"),
        Some((None, Some(message))) => message.clone(),
        _ => snippet(body),
    };
    let retry = |reason: String| {
        DeliveryResult::RetryLater(RetryHint { after_ms: retry_after.and_then(retry_after_ms), reason })
    };
    match status {
        200..=299 => {
            let sid = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| json::text_at(&v, "sid"))
                .filter(|sid| !sid.trim().is_empty());
            match sid {
                Some(sid) => DeliveryResult::Accepted(sid),
                None => DeliveryResult::Rejected(format!(
                    "Twilio answered {status} without a message `sid` (is `api-base` Twilio's API?): {}",
                    snippet(body)
                )),
            }
        }
        _ if status == 429 || code == Some(ERROR_RATE_LIMITED) => {
            retry(format!("Twilio is rate limiting ({status}): {}", described()))
        }
        500..=599 => retry(format!("Twilio answered {status}: {}", described())),
        _ if code == Some(ERROR_UNSUBSCRIBED) => DeliveryResult::Rejected(format!(
            "the customer opted out of messages from this sender (replied STOP); they must reply START \
             before they can be messaged again ({})",
            described()
        )),
        400..=499 => DeliveryResult::Rejected(match &error {
            Some(_) => described(),
            None => format!("Twilio answered {status}: {}", snippet(body)),
        }),
        _ => DeliveryResult::Rejected(format!("Twilio answered unexpected status {status}: {}", described())),
    }
}

/// What a failed request means: a destination the manifest does not allow, or a request that
/// cannot be built, is rejected; transport failures are retried later.
pub fn classify_error(error: &HttpError) -> DeliveryResult {
    match error {
        HttpError::Denied => DeliveryResult::Rejected(
            "the host of `api-base` is not in the manifest's capabilities.http".to_owned(),
        ),
        HttpError::InvalidRequest(m) => {
            DeliveryResult::Rejected(format!("the request to Twilio cannot be made: {m}"))
        }
        other => DeliveryResult::RetryLater(RetryHint {
            after_ms: None,
            reason: format!("sending to Twilio failed: {other}"),
        }),
    }
}

/// Sends `message` through `transport` (the real one is [`seam_sdk::http::send`]) and
/// classifies the outcome; a message that cannot be sent with `config` is rejected without a
/// request.
pub fn deliver(
    message: &OutboundMessage,
    config: &SendConfig,
    transport: impl FnOnce(&Request) -> Result<Response, HttpError>,
) -> DeliveryResult {
    let request = match build_request(message, config) {
        Ok(request) => request,
        Err(reason) => return DeliveryResult::Rejected(reason),
    };
    match transport(&request) {
        Ok(response) => classify_response(response.status, response.header("retry-after"), &response.body),
        Err(error) => classify_error(&error),
    }
}

/// The Twilio connector.
pub struct TwilioConnector;

impl Connector for TwilioConnector {
    fn describe() -> ChannelInfo {
        channel_info()
    }

    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> {
        handle(&request, config::secret("auth-token").as_deref(), config::get("webhook-url").as_deref())
    }

    fn send(message: OutboundMessage) -> DeliveryResult {
        let result = deliver(&message, &SendConfig::from_config(), seam_sdk::http::send);
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

seam_sdk::export_connector!(TwilioConnector);

#[cfg(test)]
mod tests;
