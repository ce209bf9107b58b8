//! Helpers for a connector's `send`: turning a provider's answer into words for a
//! [`DeliveryResult`], keeping secrets out of those words, and sending a message that takes
//! several provider requests (text, then each attachment).

use crate::connector::{DeliveryResult, RetryHint};
use crate::http::{HttpError, Request};

/// Most characters of a response body quoted in a delivery result.
pub const SNIPPET_CHARS: usize = 200;

/// At most [`SNIPPET_CHARS`] characters of `body` for a delivery reason (lossy UTF-8,
/// trimmed, `…` marking a cut).
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    if text.chars().count() <= SNIPPET_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(SNIPPET_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A `retry-after` header in whole seconds, as milliseconds (HTTP dates are not understood).
pub fn retry_after_ms(value: &str) -> Option<u64> {
    value.trim().parse::<u64>().ok().map(|s| s.saturating_mul(1000))
}

/// What a failed request to a provider API at `api_base` (config key `api-base`) means: a
/// destination the manifest does not allow, or a URL that cannot be used, is rejected;
/// transport failures are retried later. `api` names the API in the reason.
pub fn api_base_error(error: &HttpError, api_base: &str, api: &str) -> DeliveryResult {
    match error {
        HttpError::Denied => {
            DeliveryResult::Rejected(format!("the host of api-base `{api_base}` is not in capabilities.http"))
        }
        HttpError::InvalidRequest(m) => {
            DeliveryResult::Rejected(format!("api-base `{api_base}` cannot be used: {m}"))
        }
        other => DeliveryResult::RetryLater(RetryHint {
            after_ms: None,
            reason: format!("calling the {api} failed: {other}"),
        }),
    }
}

/// `text` with every occurrence of `secret` replaced by `placeholder`, so a token a provider
/// echoes back never reaches a reason or a log line.
pub fn redact(text: String, secret: &str, placeholder: &str) -> String {
    if secret.is_empty() || !text.contains(secret) { text } else { text.replace(secret, placeholder) }
}

/// `result` with `secret` redacted from its reason.
pub fn redact_result(result: DeliveryResult, secret: &str, placeholder: &str) -> DeliveryResult {
    match result {
        DeliveryResult::Accepted(id) => DeliveryResult::Accepted(id),
        DeliveryResult::Rejected(reason) => DeliveryResult::Rejected(redact(reason, secret, placeholder)),
        DeliveryResult::RetryLater(hint) => DeliveryResult::RetryLater(RetryHint {
            after_ms: hint.after_ms,
            reason: redact(hint.reason, secret, placeholder),
        }),
    }
}

/// What came of a send.
#[derive(Debug)]
pub struct Sent {
    /// The result for the host.
    pub result: DeliveryResult,
    /// Parts of a several-request send that failed after the first was accepted (the host
    /// is told "accepted", since retrying would send the first parts again): worth logging.
    pub warnings: Vec<String>,
}

impl Sent {
    /// Refused before any request was made.
    pub fn rejected(reason: String) -> Self {
        Sent { result: DeliveryResult::Rejected(reason), warnings: Vec::new() }
    }
}

fn failure_text(result: &DeliveryResult) -> String {
    match result {
        DeliveryResult::Accepted(id) => format!("accepted as {id}"),
        DeliveryResult::Rejected(reason) => format!("rejected: {reason}"),
        DeliveryResult::RetryLater(hint) => format!("refused for now: {}", hint.reason),
    }
}

/// Sends the `requests` of one message in order, `attempt` making each and classifying its
/// answer. If the first fails, that is the result; once it is accepted, the result is
/// accepted with its id (or `message_id` if there were no requests), and a later failure
/// stops the send and becomes a warning.
pub fn send_parts(
    requests: &[Request],
    message_id: &str,
    mut attempt: impl FnMut(&Request) -> DeliveryResult,
) -> Sent {
    let total = requests.len();
    let mut first_id = None;
    let mut warnings = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        match (attempt(request), first_id.is_some()) {
            (DeliveryResult::Accepted(id), false) => first_id = Some(id),
            (DeliveryResult::Accepted(_), true) => {}
            (failure, false) => return Sent { result: failure, warnings },
            (failure, true) => {
                let skipped = match total - (n + 1) {
                    0 => String::new(),
                    1 => format!("; part {total} was not tried"),
                    _ => format!("; parts {} to {total} were not tried", n + 2),
                };
                warnings.push(format!(
                    "part {} of {total} was not sent: {}{skipped}",
                    n + 1,
                    failure_text(&failure)
                ));
                break;
            }
        }
    }
    Sent { result: DeliveryResult::Accepted(first_id.unwrap_or_else(|| message_id.to_owned())), warnings }
}
