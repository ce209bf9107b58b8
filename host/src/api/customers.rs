//! `/v1/customers`: the unified customer view, lookup by identity, the cross-channel
//! timeline, attributes, merge and unmerge. Changes are appended to the log as commands and
//! answered once the pipeline has decided them, so they are ordered with every message.

use super::auth::{Caller, Role};
use super::{AppError, AppState};
use crate::log::{Envelope, EventLog, NewEvent};
use crate::pipeline::commands::{self, Merge, Unmerge, UpdateAttributes};
use crate::views::Order;
use crate::views::records::CustomerView;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// How long a command waits for the pipeline before answering 504.
const COMMAND_WAIT: Duration = Duration::from_secs(10);

fn not_found(id: &str) -> AppError {
    AppError::not_found("customer-not-found", format!("no customer `{id}`"))
}

/// One customer.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id (a merged customer's id shows the surviving customer)")),
    responses((status = 200, body = CustomerView), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_customer(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CustomerView>, AppError> {
    caller.require(Role::Integration)?;
    state.views.customer(&id)?.map(Json).ok_or_else(|| not_found(&id))
}

/// Lookup parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Lookup {
    /// `kind:value`, e.g. `phone:+79161234567`, `telegram:123`, `email:a@b.c`; normalized
    /// like identities from channels.
    pub identity: Option<String>,
}

/// A list of customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    /// The customers found.
    pub items: Vec<CustomerView>,
}

/// Finds the customer holding an identity.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(Lookup),
    responses((status = 200, body = CustomerList), (status = 400, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn find_customers(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<Query<Lookup>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CustomerList>, AppError> {
    caller.require(Role::Integration)?;
    let Query(query) = query?;
    let identity = query.identity.ok_or_else(|| {
        AppError::bad_request(
            "identity-required",
            "give `identity=kind:value`, e.g. identity=phone:+79161234567",
        )
    })?;
    let key = state.normalizer.parse(&identity).map_err(|m| AppError::bad_request("invalid-identity", m))?;
    let items = state.views.customer_by_identity(&key.0)?.into_iter().collect();
    Ok(Json(CustomerList { items }))
}

/// Timeline parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Page {
    /// Continue after (asc) or before (desc) this offset: the `next_cursor` of a page.
    pub cursor: Option<u64>,
    /// Entries per page, 1-500 (default 50).
    pub limit: Option<usize>,
    /// `asc` (oldest first, default) or `desc`.
    pub order: Option<String>,
}

impl Page {
    pub(super) fn parse(&self) -> Result<(usize, Order), AppError> {
        let limit = super::error::page_limit(self.limit, 50, 500)?;
        let order = match self.order.as_deref() {
            None | Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some(other) => {
                return Err(AppError::bad_request(
                    "invalid-order",
                    format!("order must be asc or desc, not `{other}`"),
                ));
            }
        };
        Ok((limit, order))
    }
}

/// One timeline entry: where it happened, and the event itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineItem {
    /// Log offset (also the cursor).
    pub offset: u64,
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Channel.
    pub channel: Option<String>,
    /// Conversation.
    pub conversation: Option<String>,
    /// Identity it came from.
    pub identity: Option<String>,
    /// When, ms.
    pub at: i64,
    /// The event from the log.
    pub event: Option<Envelope>,
}

/// A page of entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelinePage {
    /// Entries, in the order asked for.
    pub items: Vec<TimelineItem>,
    /// Cursor of the next page; absent on the last page.
    pub next_cursor: Option<u64>,
}

pub(super) fn page(
    log: &dyn EventLog,
    entries: Vec<crate::views::records::Entry>,
    limit: usize,
) -> Result<TimelinePage, AppError> {
    let next_cursor = (entries.len() >= limit).then(|| entries.last().map(|e| e.offset)).flatten();
    let mut items = Vec::with_capacity(entries.len());
    for e in entries {
        let event = log.get(e.offset)?;
        items.push(TimelineItem {
            offset: e.offset,
            kind: e.kind,
            channel: e.channel,
            conversation: e.conversation,
            identity: e.identity,
            at: e.at,
            event,
        });
    }
    Ok(TimelinePage { items, next_cursor })
}

/// The customer's timeline: every channel interleaved, with the customers merged into it.
#[utoipa::path(get, path = "/v1/customers/{id}/timeline", tag = "customers",
    params(("id" = String, Path, description = "Customer id"), Page),
    responses((status = 200, body = TimelinePage), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn timeline(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TimelinePage>, AppError> {
    caller.require(Role::Integration)?;
    let Query(query) = query?;
    let (limit, order) = query.parse()?;
    let entries = state.views.timeline(&id, query.cursor, limit, order)?.ok_or_else(|| not_found(&id))?;
    Ok(Json(page(state.log.as_ref(), entries, limit)?))
}

/// Attribute changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    /// Attributes to set; `null` removes one.
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Appends a command and waits for the pipeline's verdict.
async fn command<T: Serialize>(state: &AppState, kind: &str, body: &T) -> Result<(), AppError> {
    let payload = serde_json::value::to_raw_value(body)
        .map_err(|e| AppError::bad_request("invalid-body", e.to_string()))?;
    submit(state, NewEvent::input(kind, payload), "refused").await.map(|_| ())
}

/// Appends the command `event` and waits for the pipeline's verdict; a refusal is a 409
/// with `refused_code`. Returns where the command is (for a repeated idempotency key: where
/// the first copy is).
pub(super) async fn submit(
    state: &AppState,
    event: NewEvent,
    refused_code: &'static str,
) -> Result<crate::log::Appended, AppError> {
    let appended = state.log.append(vec![event]).await?;
    let Some(first) = appended.first().copied() else {
        return Err(AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "not-appended",
            "the log appended nothing",
        ));
    };
    let offset = first.offset;
    if !state.progress.wait_for(offset, COMMAND_WAIT).await {
        return Err(AppError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "pipeline-timeout",
            format!("the change is in the log at offset {offset} but not applied yet; it will be"),
        ));
    }
    match state.views.command_outcome(offset)? {
        Some(Ok(())) | None => Ok(first),
        Some(Err(reason)) => Err(AppError::new(StatusCode::CONFLICT, refused_code, reason)),
    }
}

fn check_attribute_name(name: &str) -> Result<(), AppError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "invalid-attribute",
            format!("attribute name `{name}` must be 1-64 characters of letters, digits, `_`, `-`, `.`"),
        ))
    }
}

/// Sets or removes attributes.
#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id")), request_body = Patch,
    responses((status = 200, body = CustomerView), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_customer(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<Patch>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CustomerView>, AppError> {
    caller.require(Role::Integration)?;
    let Json(patch) = body?;
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for (name, value) in patch.attributes {
        check_attribute_name(&name)?;
        if value.is_null() {
            remove.push(name);
        } else {
            set.insert(name, value);
        }
    }
    let owner = state.views.owner(&id)?.ok_or_else(|| not_found(&id))?;
    let body = UpdateAttributes { customer: owner.id.clone(), set, remove, by: caller.author() };
    command(&state, commands::UPDATE, &body).await?;
    state.views.customer(&owner.id)?.map(Json).ok_or_else(|| not_found(&id))
}

/// Which customer to merge in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The customer merged into the one in the path.
    pub customer: String,
}

/// Merges another customer into this one (this one survives).
#[utoipa::path(post, path = "/v1/customers/{id}/merge", tag = "customers",
    params(("id" = String, Path, description = "The surviving customer")), request_body = MergeBody,
    responses((status = 200, body = CustomerView), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "Refused by the identity rules (e.g. a per-kind limit)", body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn merge(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<MergeBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CustomerView>, AppError> {
    caller.require(Role::Agent)?;
    let Json(body) = body?;
    let owner = state.views.owner(&id)?.ok_or_else(|| not_found(&id))?;
    if state.views.owner(&body.customer)?.is_none() {
        return Err(not_found(&body.customer));
    }
    let merge = Merge { customer: owner.id.clone(), other: body.customer, by: caller.author() };
    command(&state, commands::MERGE, &merge).await?;
    state.views.customer(&owner.id)?.map(Json).ok_or_else(|| not_found(&id))
}

/// Which merged customer to split off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmergeBody {
    /// The merged customer's id.
    pub customer: Option<String>,
    /// Or one of its identities, `kind:value`.
    pub identity: Option<String>,
}

/// Both customers after an unmerge.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnmergeResult {
    /// The customer that had absorbed the other.
    pub customer: CustomerView,
    /// The customer restored.
    pub restored: CustomerView,
}

/// Undoes a merge: the merged customer (and its identities and history) stands alone again.
#[utoipa::path(post, path = "/v1/customers/{id}/unmerge", tag = "customers",
    params(("id" = String, Path, description = "The customer the other was merged into")), request_body = UnmergeBody,
    responses((status = 200, body = UnmergeResult), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn unmerge(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<UnmergeBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<UnmergeResult>, AppError> {
    caller.require(Role::Agent)?;
    let Json(body) = body?;
    let owner = state.views.owner(&id)?.ok_or_else(|| not_found(&id))?;
    let identity = match &body.identity {
        Some(text) => {
            Some(state.normalizer.parse(text).map_err(|m| AppError::bad_request("invalid-identity", m))?.0)
        }
        None => None,
    };
    if body.customer.is_none() && identity.is_none() {
        return Err(AppError::bad_request("unmerge-target-required", "give `customer` or `identity`"));
    }
    let restore_hint = match (&body.customer, &identity) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(i)) => state.views.identity_home(i)?,
        _ => None,
    };
    let unmerge =
        Unmerge { customer: owner.id.clone(), restore: body.customer, identity, by: caller.author() };
    command(&state, commands::UNMERGE, &unmerge).await?;
    let customer = state.views.customer(&owner.id)?.ok_or_else(|| not_found(&id))?;
    let restored_id = restore_hint.unwrap_or_default();
    let restored = state.views.customer(&restored_id)?.ok_or_else(|| not_found(&restored_id))?;
    Ok(Json(UnmergeResult { customer, restored }))
}
