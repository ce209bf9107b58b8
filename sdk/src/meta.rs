//! Webhooks of Meta's platforms (WhatsApp Cloud API, Messenger, Instagram): the `GET`
//! subscription check with `hub.verify_token`, and `X-Hub-Signature-256` on every `POST`.
//! The connector's config keys are [`APP_SECRET_KEY`] and [`VERIFY_TOKEN_KEY`].

use crate::connector::{HttpRequest, HttpResponse, WebhookError, WebhookOutcome};
use crate::signature;

/// Header carrying `sha256=<hex HMAC-SHA256 of the raw body>` keyed with the app secret.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Config key of the Meta app secret that signs webhooks.
pub const APP_SECRET_KEY: &str = "app-secret";

/// Config key of the token Meta echoes in the subscription check.
pub const VERIFY_TOKEN_KEY: &str = "verify-token";

/// The configured value of secret `key`, or `Misconfigured` naming it when it is not set
/// or empty.
fn required_secret<'a>(value: Option<&'a str>, key: &str, purpose: &str) -> Result<&'a str, WebhookError> {
    value.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| {
        WebhookError::Misconfigured(format!("secret `{key}` is not set: it is needed to {purpose}"))
    })
}

/// Answers Meta's subscription check (`GET ?hub.mode=subscribe&hub.verify_token=...&
/// hub.challenge=...`): `200 text/plain` with the challenge when the token matches
/// `verify_token` (constant-time). A missing `verify_token` is `Misconfigured`, a missing or
/// wrong token `Unauthorized`, a request without the `hub.*` parameters `Malformed`.
pub fn verify_subscription(
    request: &HttpRequest,
    verify_token: Option<&str>,
) -> Result<WebhookOutcome, WebhookError> {
    let expected = required_secret(verify_token, VERIFY_TOKEN_KEY, "answer Meta's subscription check")?;
    let mode = request.query_param("hub.mode");
    if mode.as_deref() != Some("subscribe") {
        return Err(WebhookError::Malformed(match mode {
            None => "GET without `hub.mode`: only Meta's subscription check (hub.mode=subscribe) is a GET"
                .to_owned(),
            Some(other) => format!("`hub.mode` is `{other}`, expected `subscribe`"),
        }));
    }
    let Some(challenge) = request.query_param("hub.challenge") else {
        return Err(WebhookError::Malformed("subscription check without `hub.challenge`".to_owned()));
    };
    match request.query_param("hub.verify_token") {
        None => Err(WebhookError::Unauthorized("subscription check without `hub.verify_token`".to_owned())),
        Some(token) if signature::token_matches(&token, expected) => {
            Ok(WebhookOutcome { events: Vec::new(), response: HttpResponse::text(200, &challenge) })
        }
        Some(_) => Err(WebhookError::Unauthorized(format!(
            "`hub.verify_token` does not match the secret `{VERIFY_TOKEN_KEY}`"
        ))),
    }
}

/// Checks `X-Hub-Signature-256` (`signature`, the header's value) against `body` with
/// `app_secret`. A missing secret is `Misconfigured`; a missing or wrong signature is
/// `Unauthorized`.
pub fn check_signature(
    app_secret: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), WebhookError> {
    let secret = required_secret(app_secret, APP_SECRET_KEY, "check the signature of Meta's webhooks")?;
    let Some(given) = signature.filter(|s| !s.trim().is_empty()) else {
        return Err(WebhookError::Unauthorized(format!("missing `{SIGNATURE_HEADER}` header")));
    };
    if signature::verify_hmac_sha256_hex(secret.as_bytes(), body, given) {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized(format!(
            "`{SIGNATURE_HEADER}` does not match the body (expected sha256=<hex HMAC-SHA256 of the raw \
             body keyed with the secret `{APP_SECRET_KEY}`>)"
        )))
    }
}
