//! A small blocking HTTP client over standard `wasi:http`, for connectors that call a
//! provider's API. Only hosts listed in the manifest's `capabilities.http` are reachable;
//! anything else fails with [`HttpError::Denied`].

use crate::bindings::wasi::http::{outgoing_handler, types as wasi};
use crate::bindings::wasi::io::streams::StreamError;

/// Largest response body [`send`] reads; more is an error rather than a memory blow-up.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// An HTTP request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`...
    pub method: String,
    /// Absolute URL, `http://` or `https://`.
    pub url: String,
    /// Headers to send.
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for none).
    pub body: Vec<u8>,
    /// Connect, first-byte and between-bytes timeout ([`DEFAULT_TIMEOUT`] unless set).
    pub timeout: std::time::Duration,
}

/// Timeout of a request unless [`Request::timeout`] sets another. Keep it below the
/// manifest's `limits.timeout-ms`, so a slow provider gives an error the plugin can handle
/// rather than a killed call.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The response to a [`Request`].
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// The host refused: the destination is not in the manifest's allowed hosts, or it
    /// resolves to a private address the manifest does not name.
    Denied,
    /// The URL or a header could not be used; the message says which.
    InvalidRequest(String),
    /// Connecting, sending or receiving failed; the message is the wasi:http error code.
    Transport(String),
    /// The response body was larger than [`MAX_RESPONSE_BYTES`].
    ResponseTooLarge,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Denied => write!(f, "request denied by the host (destination not allowed)"),
            HttpError::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            HttpError::Transport(m) => write!(f, "transport error: {m}"),
            HttpError::ResponseTooLarge => write!(f, "response body over {MAX_RESPONSE_BYTES} bytes"),
        }
    }
}

impl std::error::Error for HttpError {}

impl Request {
    /// A request with `method` to `url`, no headers and no body.
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A `POST` of `body` as JSON to `url`.
    pub fn post_json(url: &str, body: &serde_json::Value) -> Self {
        Request::new("POST", url)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the connect, first-byte and between-bytes timeout.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Sends the request and waits for the whole response.
    pub fn send(&self) -> Result<Response, HttpError> {
        send(self)
    }
}

impl Response {
    /// The first header named `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("response is not JSON: {e}"))
    }
}

/// Splits `scheme://authority/path?query` into its parts.
fn split_url(url: &str) -> Result<(wasi::Scheme, &str, &str), HttpError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| HttpError::InvalidRequest(format!("`{url}` is not an absolute URL")))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => wasi::Scheme::Http,
        "https" => wasi::Scheme::Https,
        other => return Err(HttpError::InvalidRequest(format!("unsupported scheme `{other}`"))),
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(HttpError::InvalidRequest(format!("`{url}` has no host")));
    }
    Ok((scheme, authority, if path.is_empty() { "/" } else { path }))
}

fn method(m: &str) -> wasi::Method {
    match m.to_ascii_uppercase().as_str() {
        "GET" => wasi::Method::Get,
        "POST" => wasi::Method::Post,
        "PUT" => wasi::Method::Put,
        "DELETE" => wasi::Method::Delete,
        "PATCH" => wasi::Method::Patch,
        "HEAD" => wasi::Method::Head,
        "OPTIONS" => wasi::Method::Options,
        other => wasi::Method::Other(other.to_owned()),
    }
}

fn transport(e: wasi::ErrorCode) -> HttpError {
    match e {
        wasi::ErrorCode::HttpRequestDenied => HttpError::Denied,
        other => HttpError::Transport(format!("{other:?}")),
    }
}

fn write_body(body: &wasi::OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let stream =
        body.write().map_err(|()| HttpError::InvalidRequest("body stream rejected by wasi:http".into()))?;
    for chunk in bytes.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| HttpError::Transport(format!("writing body: {e:?}")))?;
    }
    Ok(())
}

/// Sends `request` and waits for the whole response.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    let (scheme, authority, path) = split_url(&request.url)?;
    let entries: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
    let fields = wasi::Fields::from_list(&entries)
        .map_err(|e| HttpError::InvalidRequest(format!("header rejected: {e:?}")))?;
    let outgoing = wasi::OutgoingRequest::new(fields);
    let invalid = |what: &str| HttpError::InvalidRequest(format!("{what} rejected by wasi:http"));
    outgoing.set_method(&method(&request.method)).map_err(|()| invalid("method"))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
    outgoing.set_authority(Some(authority)).map_err(|()| invalid("authority"))?;
    outgoing.set_path_with_query(Some(path)).map_err(|()| invalid("path"))?;
    let body = outgoing.body().map_err(|()| invalid("body"))?;
    let options = wasi::RequestOptions::new();
    let nanos = u64::try_from(request.timeout.as_nanos()).unwrap_or(u64::MAX);
    // The host may refuse to set a timeout; the call's own limit still applies then.
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));
    let pending = outgoing_handler::handle(outgoing, Some(options)).map_err(transport)?;
    // Write the body, but report a failure only after the response: when the host denies
    // the request it closes the body stream, and the denial is the error worth reporting.
    let written = write_body(&body, &request.body);
    let finished = wasi::OutgoingBody::finish(body, None).map_err(transport);
    let response = loop {
        match pending.get() {
            Some(result) => break result,
            None => pending.subscribe().block(),
        }
    };
    let response =
        response.map_err(|()| HttpError::Transport("response already taken".into()))?.map_err(transport)?;
    written?;
    finished?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|()| invalid("response body"))?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| invalid("response stream"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(HttpError::ResponseTooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Transport(e.to_debug_string()));
                }
            }
        }
    }
    Ok(Response { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let (s, a, p) = split_url("http://127.0.0.1:9000/hook?x=1").unwrap();
        assert!(matches!(s, wasi::Scheme::Http));
        assert_eq!((a, p), ("127.0.0.1:9000", "/hook?x=1"));
        let (_, a, p) = split_url("https://api.example.com").unwrap();
        assert_eq!((a, p), ("api.example.com", "/"));
        assert!(split_url("ftp://x/").is_err());
        assert!(split_url("no-scheme").is_err());
    }
}
