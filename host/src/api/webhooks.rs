//! `POST|GET /v1/channels/{channel}/webhook`: a provider's request -> the channel's
//! connector plugin -> inputs appended to the log -> the response the plugin chose, sent
//! only once the append is durable. Authenticated by the connector (provider signature or
//! secret token), not by API keys. A provider retrying the same webhook appends nothing new
//! and gets the same answer.

use super::{AppError, AppState};
use crate::channels::input_event;
use crate::runtime::bindings::channel::{HttpRequest, WebhookError};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Largest webhook body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// Response headers a plugin may set (others are dropped: a plugin must not set cookies,
/// CORS or caching policy for the host's origin).
const ALLOWED_HEADERS: &[&str] = &["content-type", "retry-after"];

/// Handles one webhook.
#[utoipa::path(
    post,
    path = "/v1/channels/{channel}/webhook",
    tag = "channels",
    params(("channel" = String, Path, description = "Channel id")),
    request_body(content = String, description = "The provider's payload, as the provider sends it"),
    responses(
        (status = 200, description = "The connector's response, sent after the events are durable"),
        (status = 400, description = "The connector found the payload malformed", body = super::error::ErrorBody),
        (status = 401, description = "The signature or secret token is wrong", body = super::error::ErrorBody),
        (status = 404, description = "No such channel", body = super::error::ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = super::error::ErrorBody),
        (status = 502, description = "The connector plugin failed", body = super::error::ErrorBody),
        (status = 503, description = "The log or the plugin is unavailable; retry", body = super::error::ErrorBody),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    request: Request,
) -> Result<Response, AppError> {
    let channel = params.get("channel").cloned().unwrap_or_default();
    let Some(ch) = state.channels.get(&channel) else {
        return Err(AppError::not_found(
            "channel-not-found",
            format!("no channel `{channel}` is configured"),
        ));
    };
    let (parts, body) = request.into_parts();
    let origin = parts.headers.get(axum::http::header::ORIGIN).cloned();
    let too_large = || {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "webhook-too-large",
            format!("webhook body is over {MAX_BODY} bytes"),
        )
    };
    let declared = parts.headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    if declared.and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let body: Bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| too_large())?;
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    // The WIT contract: the path after `/v1/channels/{channel}/webhook`, `/` if none.
    let path = format!("/{}", params.get("rest").map_or("", String::as_str));
    let http = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers,
        body: body.to_vec(),
    };
    let metrics = state.runtime.metrics();
    let outcome = match state.runtime.handle_webhook(&ch.id, &http).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => {
            let (status, code, message) = match error {
                WebhookError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "webhook-unauthorized", m),
                WebhookError::Malformed(m) => (StatusCode::BAD_REQUEST, "webhook-malformed", m),
                WebhookError::Misconfigured(m) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "channel-misconfigured", m)
                }
            };
            metrics.webhook(&ch.id, code);
            tracing::info!(channel = ch.id, code, message, "webhook refused by its connector");
            return Err(AppError::new(status, code, format!("channel `{}`: {message}", ch.id)));
        }
        Err(e) => {
            metrics.webhook(&ch.id, "plugin-failed");
            return Err(e.into());
        }
    };
    let inputs: Vec<_> = outcome.events.iter().map(|e| input_event(&ch.id, e)).collect();
    let count = inputs.len();
    let appended = state.log.append(inputs).await?;
    let duplicates = appended.iter().filter(|a| a.duplicate).count();
    metrics.webhook(&ch.id, if count > 0 && duplicates == count { "duplicate" } else { "accepted" });
    tracing::debug!(channel = ch.id, events = count, duplicates, "webhook accepted");
    let mut response = plugin_response(outcome.response);
    if ch.kind == super::webchat::WEB_KIND {
        super::webchat::allow_origin(&mut response, origin.as_ref());
    }
    Ok(response)
}

fn plugin_response(r: crate::runtime::bindings::channel::HttpResponse) -> Response {
    let status = StatusCode::from_u16(r.status).ok().filter(|s| s.is_success()).unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(r.body));
    *response.status_mut() = status;
    for (name, value) in r.headers {
        let lower = name.to_ascii_lowercase();
        if !ALLOWED_HEADERS.contains(&lower.as_str()) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(lower), HeaderValue::try_from(value)) {
            response.headers_mut().insert(n, v);
        }
    }
    response.into_response()
}
