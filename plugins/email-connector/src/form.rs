//! Form bodies: `multipart/form-data` (parsed with `mail-parser`, the body being a MIME
//! multipart once a `Content-Type` header is put in front of it) and
//! `application/x-www-form-urlencoded`.

use mail_parser::{Encoding, MessageParser, MimeHeaders, PartType};

/// One field of a form: a plain value or an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    /// The field's name.
    pub name: String,
    /// The raw bytes of the value, exactly as posted (no charset decoding).
    pub value: Vec<u8>,
    /// The file name, for file uploads.
    pub file_name: Option<String>,
    /// The part's `Content-Type`, for file uploads that give one.
    pub content_type: Option<String>,
}

/// The fields of a form body, in the order they were posted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    /// Every field, files included.
    pub fields: Vec<FormField>,
}

impl Form {
    /// The first field named `name`, if any.
    pub fn field(&self, name: &str) -> Option<&FormField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The raw bytes of the first field named `name`.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.field(name).map(|f| f.value.as_slice())
    }

    /// The first field named `name` as text (UTF-8, invalid bytes replaced), trimmed; `None`
    /// when missing or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        let value = String::from_utf8_lossy(self.bytes(name)?).trim().to_owned();
        (!value.is_empty()).then_some(value)
    }

    /// Whether a field named `name` was posted.
    pub fn has(&self, name: &str) -> bool {
        self.field(name).is_some()
    }

    /// The uploaded files (fields with a file name), in order.
    pub fn files(&self) -> impl Iterator<Item = &FormField> {
        self.fields.iter().filter(|f| f.file_name.is_some())
    }
}

/// Whether `content_type` (a `Content-Type` header value) is a form body.
pub fn is_form(content_type: &str) -> bool {
    let media = media_type(content_type);
    media == "multipart/form-data" || media == "application/x-www-form-urlencoded"
}

/// The media type of a `Content-Type` value, lower-case, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Parses a form `body` posted with `content_type`. Errors say why the body is not a form.
pub fn parse_form(content_type: &str, body: &[u8]) -> Result<Form, String> {
    match media_type(content_type).as_str() {
        "application/x-www-form-urlencoded" => Ok(Form {
            fields: form_urlencoded::parse(body)
                .map(|(name, value)| FormField {
                    name: name.into_owned(),
                    value: value.into_owned().into_bytes(),
                    file_name: None,
                    content_type: None,
                })
                .collect(),
        }),
        "multipart/form-data" => parse_multipart(content_type, body),
        other => Err(format!("content type `{other}` is not a form")),
    }
}

/// Parses a `multipart/form-data` body. Each part's value is its raw bytes (a part with a
/// `Content-Transfer-Encoding`, which RFC 7578 deprecates but some senders still use, is
/// decoded).
fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Form, String> {
    if content_type.contains(['\r', '\n']) {
        return Err("the content-type header contains a line break".to_owned());
    }
    let mut raw = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
    raw.extend_from_slice(body);
    let message = MessageParser::default()
        .parse(&raw)
        .ok_or_else(|| "the multipart/form-data body could not be parsed".to_owned())?;
    let root = message.parts.first().ok_or_else(|| "the multipart/form-data body is empty".to_owned())?;
    let Some(children) = root.sub_parts() else {
        return Err("the multipart/form-data body has no parts (is the boundary in the content type right?)"
            .to_owned());
    };
    let mut fields = Vec::new();
    for &id in children {
        let Some(part) = message.parts.get(id as usize) else { continue };
        let Some(disposition) = part.content_disposition() else { continue };
        let Some(name) = disposition.attribute("name") else { continue };
        let file_name = disposition.attribute("filename").map(str::to_owned);
        let content_type = part.content_type().map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        });
        let value = match (&part.encoding, &part.body) {
            (Encoding::None, _) | (_, PartType::Message(_) | PartType::Multipart(_)) => {
                let start = part.raw_body_offset() as usize;
                let end = (part.raw_end_offset() as usize).min(raw.len());
                raw.get(start..end).unwrap_or_default().to_vec()
            }
            _ => part.contents().to_vec(),
        };
        fields.push(FormField { name: name.to_owned(), value, file_name, content_type });
    }
    if fields.is_empty() {
        return Err("the multipart/form-data body has no named fields".to_owned());
    }
    Ok(Form { fields })
}

/// A `multipart/form-data` body of `fields`, and its boundary. The boundary is derived from
/// a hash of the content, so it never occurs in it and the same fields always give the same
/// body.
pub fn encode_multipart(fields: &[FormField]) -> (String, Vec<u8>) {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for field in fields {
        hasher.update(field.name.as_bytes());
        hasher.update(&field.value);
    }
    let boundary = format!("seam-{}", &hex::encode(hasher.finalize())[..32]);
    let mut body = Vec::new();
    for field in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let name = quote_param(&field.name);
        match &field.file_name {
            Some(file) => {
                let file = quote_param(file);
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n")
                        .as_bytes(),
                );
                let content_type = field.content_type.as_deref().unwrap_or("application/octet-stream");
                body.extend_from_slice(
                    format!("Content-Type: {}\r\n", strip_breaks(content_type)).as_bytes(),
                );
            }
            None => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
                );
            }
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&field.value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// `value` without line breaks (replaced by spaces), for a header.
fn strip_breaks(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

/// `value` fit for a quoted `name="..."` parameter: line breaks become spaces, quotes and
/// backslashes are escaped as HTML forms do (`%22`, `%5C`).
fn quote_param(value: &str) -> String {
    strip_breaks(value).replace('\\', "%5C").replace('"', "%22")
}
