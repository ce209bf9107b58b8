//! Outbound messages: `POST /v1/messages` (application to person: to a customer or an
//! identity), `POST /v1/conversations/{id}/messages` (an agent's reply), the message's
//! state and history, the dead-letter list and re-drive.
//!
//! A send is a command in the log: the API answers once the pipeline has chosen the
//! channels (or refused: no consent, no address, no such channel), and the delivery worker
//! sends it afterwards. An `Idempotency-Key` header makes a retried request return the
//! first request's message instead of sending another.

use super::auth::{Caller, Role};
use super::customers::submit;
use super::{AppError, AppState};
use crate::log::NewEvent;
use crate::pipeline::commands::{self, Content, Redrive, SendRequest};
use crate::runtime::bindings::{channel, types};
use crate::views::outbound::OutboundRecord;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Longest text accepted, in bytes (connectors split or refuse by their own limits).
const MAX_TEXT: usize = 64 * 1024;

fn not_found(id: &str) -> AppError {
    AppError::not_found("message-not-found", format!("no message `{id}`"))
}

/// A file, picture or place to send.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentBody {
    /// `image`, `audio`, `voice`, `video`, `document`, `sticker`, `location`, `contact` or `other`.
    pub kind: String,
    /// Where the provider can fetch it.
    pub url: Option<String>,
    /// Or the provider's id of content uploaded before.
    pub provider_id: Option<String>,
    /// MIME type.
    pub mime_type: Option<String>,
    /// File name.
    pub file_name: Option<String>,
    /// Caption.
    pub caption: Option<String>,
    /// For `location`: degrees north.
    pub latitude: Option<f64>,
    /// For `location`: degrees east.
    pub longitude: Option<f64>,
}

/// A pre-approved template (e.g. WhatsApp).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// Its name at the provider.
    pub name: String,
    /// Language code, e.g. `en_US`.
    pub language: String,
    /// Placeholder values, in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// What to send, and where.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// The customer, by id (`POST /v1/messages` only).
    pub customer: Option<String>,
    /// Or an identity, `kind:value` (`POST /v1/messages` only); a customer is created if
    /// nobody holds it.
    pub identity: Option<String>,
    /// The channel; absent: the channel the customer used last, else their
    /// `preferred-channel` attribute, else the first usable channel of the fallback policy.
    pub channel: Option<String>,
    /// Channels to fall back to, in order, if the first fails (or does not deliver within
    /// `fallback_after_secs`); absent: the `[outbound] fallback` policy.
    pub fallback: Option<Vec<String>>,
    /// Fall back when not delivered within this many seconds.
    pub fallback_after_secs: Option<u64>,
    /// The text.
    pub text: Option<String>,
    /// Files, pictures, places.
    #[serde(default)]
    pub attachments: Vec<AttachmentBody>,
    /// A template instead of free text.
    pub template: Option<TemplateBody>,
    /// Subject line (email).
    pub subject: Option<String>,
    /// The provider id of the customer's message this answers.
    pub reply_to: Option<String>,
    /// Channel-specific options, passed to the connector.
    #[schema(value_type = Object)]
    pub extras: Option<serde_json::Value>,
}

fn attachment(body: AttachmentBody) -> Result<types::Attachment, AppError> {
    use types::AttachmentKind as K;
    let kind = match body.kind.as_str() {
        "image" => K::Image,
        "audio" => K::Audio,
        "voice" => K::Voice,
        "video" => K::Video,
        "document" => K::Document,
        "sticker" => K::Sticker,
        "location" => K::Location,
        "contact" => K::Contact,
        "other" => K::Other,
        other => {
            return Err(AppError::bad_request(
                "invalid-attachment",
                format!(
                    "attachment kind `{other}` is not one of image, audio, voice, video, document, sticker, location, contact, other"
                ),
            ));
        }
    };
    let location = match (kind, body.latitude, body.longitude) {
        (K::Location, Some(latitude), Some(longitude)) => Some(types::GeoPoint { latitude, longitude }),
        (K::Location, _, _) => {
            return Err(AppError::bad_request(
                "invalid-attachment",
                "a location needs latitude and longitude",
            ));
        }
        _ => None,
    };
    if location.is_none() && body.url.is_none() && body.provider_id.is_none() {
        return Err(AppError::bad_request(
            "invalid-attachment",
            format!("a {} attachment needs `url` or `provider_id`", body.kind),
        ));
    }
    Ok(types::Attachment {
        kind,
        url: body.url,
        provider_id: body.provider_id,
        mime_type: body.mime_type,
        file_name: body.file_name,
        size: None,
        caption: body.caption,
        location,
        extras: None,
    })
}

fn content(body: &mut SendBody) -> Result<Content, AppError> {
    let text = body.text.take().filter(|t| !t.trim().is_empty());
    if text.as_ref().is_some_and(|t| t.len() > MAX_TEXT) {
        return Err(AppError::bad_request("text-too-long", format!("text is over {MAX_TEXT} bytes")));
    }
    let attachments =
        std::mem::take(&mut body.attachments).into_iter().map(attachment).collect::<Result<Vec<_>, _>>()?;
    let template = body.template.take().map(|t| channel::Template {
        name: t.name,
        language: t.language,
        parameters: t.parameters,
    });
    if text.is_none() && attachments.is_empty() && template.is_none() {
        return Err(AppError::bad_request("empty-message", "give `text`, `attachments` or a `template`"));
    }
    Ok(Content {
        text,
        attachments,
        template,
        subject: body.subject.take(),
        reply_to: body.reply_to.take(),
        extras: body.extras.take(),
    })
}

fn idempotency_key(headers: &HeaderMap, caller: &Caller) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 255).ok_or_else(|| {
        AppError::bad_request(
            "invalid-idempotency-key",
            "Idempotency-Key must be 1-255 visible ASCII characters",
        )
    })?;
    // Scoped to the API key: two integrations cannot collide on the same value.
    Ok(Some(format!("send\u{0}{}\u{0}{key}", caller.key.id)))
}

async fn send(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    mut body: SendBody,
    conversation: Option<String>,
) -> Result<Response, AppError> {
    let content = content(&mut body)?;
    let identity = match &body.identity {
        Some(text) => {
            Some(state.normalizer.parse(text).map_err(|m| AppError::bad_request("invalid-identity", m))?.0)
        }
        None => None,
    };
    if conversation.is_none() && body.customer.is_none() && identity.is_none() {
        return Err(AppError::bad_request("recipient-required", "give `customer` or `identity`"));
    }
    let request = SendRequest {
        message: message_id(),
        customer: body.customer,
        identity,
        conversation,
        channel: body.channel,
        fallback: body.fallback,
        fallback_after_secs: body.fallback_after_secs,
        content,
        by: caller.author(),
    };
    let payload = serde_json::value::to_raw_value(&request)
        .map_err(|e| AppError::bad_request("invalid-body", e.to_string()))?;
    let mut event = NewEvent::input(commands::SEND, payload);
    event.idempotency_key = idempotency_key(&headers, &caller)?;
    let appended = submit(&state, event, "send-refused").await?;
    // For a repeated key, the message is the one the first request made.
    let id = if appended.duplicate {
        let first = state.log.get(appended.offset)?.ok_or_else(|| not_found("of the first request"))?;
        serde_json::from_str::<SendRequest>(first.payload.get())
            .map_err(|e| {
                AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "unreadable-request", e.to_string())
            })?
            .message
    } else {
        request.message
    };
    let record = state.views.message(&id)?.ok_or_else(|| not_found(&id))?;
    let mut response = (StatusCode::ACCEPTED, Json(record)).into_response();
    if appended.duplicate {
        response.headers_mut().insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Sends a message to a customer (by id or identity) on a channel chosen for them.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", request_body = SendBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat a request safely: the same key returns the first request's message")),
    responses((status = 202, description = "Queued: the plan of channels is chosen; delivery follows", body = OutboundRecord),
        (status = 400, body = super::error::ErrorBody),
        (status = 409, description = "Refused: opted out, no address on the channel, no such customer or channel", body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn send_message(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SendBody>, JsonRejection>,
) -> Result<Response, AppError> {
    caller.require(Role::Agent)?;
    let Json(body) = body?;
    send(state, caller, headers, body, None).await
}

/// Replies in a conversation: by default on the channel the customer used last in it.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "messages", request_body = SendBody,
    params(("id" = String, Path, description = "Conversation id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat a request safely")),
    responses((status = 202, body = OutboundRecord), (status = 400, body = super::error::ErrorBody),
        (status = 403, description = "The key is bound to an agent and the conversation is another agent's",
            body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn reply(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<SendBody>, JsonRejection>,
) -> Result<Response, AppError> {
    caller.require(Role::Agent)?;
    let Json(body) = body?;
    if body.customer.is_some() || body.identity.is_some() {
        return Err(AppError::bad_request(
            "recipient-not-allowed",
            "a reply goes to the conversation's customer: drop `customer` and `identity`",
        ));
    }
    let conversation = state
        .views
        .conversation_record(&id)?
        .ok_or_else(|| AppError::not_found("conversation-not-found", format!("no conversation `{id}`")))?;
    caller.may_handle(&conversation)?;
    send(state, caller, headers, body, Some(id)).await
}

/// An outbound message: its plan, status, provider ids and whole history.
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, body = OutboundRecord), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_message(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<OutboundRecord>, AppError> {
    caller.require(Role::Integration)?;
    state.views.message(&id)?.map(Json).ok_or_else(|| not_found(&id))
}

/// Dead-letter page parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeadQuery {
    /// Continue after this message id (the `next_cursor` of a page).
    pub cursor: Option<String>,
    /// Items per page, 1-500 (default 50).
    pub limit: Option<usize>,
}

/// A page of dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    /// Messages that failed on every channel of their plan, oldest first.
    pub items: Vec<OutboundRecord>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Messages that failed on every channel of their plan.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "messages", params(DeadQuery),
    responses((status = 200, body = DeadLetters)), security(("bearer" = [])))]
pub async fn dead_letters(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<Query<DeadQuery>, QueryRejection>,
) -> Result<Json<DeadLetters>, AppError> {
    caller.require(Role::Agent)?;
    let Query(query) = query?;
    let limit = super::error::page_limit(query.limit, 50, 500)?;
    let items = state.views.dead_letters(query.cursor.as_deref(), limit)?;
    let next_cursor = (items.len() >= limit).then(|| items.last().map(|m| m.id.clone())).flatten();
    Ok(Json(DeadLetters { items, next_cursor }))
}

/// Sends a dead letter again, from the first channel of its plan.
#[utoipa::path(post, path = "/v1/messages/{id}/redrive", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 202, body = OutboundRecord), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "The message is not a dead letter", body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn redrive(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    caller.require(Role::Agent)?;
    if state.views.message(&id)?.is_none() {
        return Err(not_found(&id));
    }
    let command = Redrive { message: id.clone(), by: caller.author() };
    let payload = serde_json::value::to_raw_value(&command)
        .map_err(|e| AppError::bad_request("invalid-body", e.to_string()))?;
    submit(&state, NewEvent::input(commands::REDRIVE, payload), "redrive-refused").await?;
    let record = state.views.message(&id)?.ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::ACCEPTED, Json(record)).into_response())
}

/// A new message id. Ids increase in the order this process makes them: the delivery worker
/// sends a customer's messages in order of due time, then id, and two random ULIDs made in
/// the same millisecond would be in random order.
fn message_id() -> String {
    static IDS: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let id = match IDS.lock().map(|mut ids| ids.generate()) {
        Ok(Ok(id)) => id,
        // Overflow within one millisecond (2^80 ids) or a poisoned lock: a random id will do.
        _ => ulid::Ulid::new(),
    };
    format!("msg_{id}")
}
