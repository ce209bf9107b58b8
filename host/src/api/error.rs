//! API errors: JSON `{"error": {"code", "message"}}` with a stable code and a message that
//! names what was wrong.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to an API client.
#[derive(Debug)]
pub struct AppError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `plugin-not-found`.
    pub code: &'static str,
    /// Human-readable message naming what was wrong.
    pub message: String,
}

impl AppError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError { status, code, message: message.into() }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 with `code`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
}

/// A page size from a query: `default` when absent, else 1..=`max`.
pub fn page_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, AppError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::bad_request("invalid-limit", format!("limit must be 1-{max}, not {limit}")))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<crate::runtime::LoadError> for AppError {
    fn from(e: crate::runtime::LoadError) -> Self {
        use crate::runtime::LoadError as L;
        let code = match &e {
            L::Manifest(_) => "invalid-manifest",
            L::ReadComponent { .. } => "component-unreadable",
            L::NotAComponent { .. } => "not-a-component",
            L::Compile { .. } => "compile-failed",
            L::WrongWorld { .. } => "wrong-world",
            L::Capability { .. } => "capability-not-granted",
            L::Link { .. } => "link-failed",
            L::Config { .. } => "invalid-config",
            L::Storage { .. } => "storage-failed",
            L::Describe { .. } => "describe-failed",
        };
        let status = if matches!(e, L::Storage { .. }) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        AppError::new(status, code, e.to_string())
    }
}

impl From<crate::runtime::CallError> for AppError {
    fn from(e: crate::runtime::CallError) -> Self {
        use crate::runtime::CallError as C;
        let status = match &e {
            C::NotFound { .. } => StatusCode::NOT_FOUND,
            C::Disabled { .. } | C::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            C::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        };
        AppError::new(status, e.kind(), e.to_string())
    }
}

/// JSON bodies that fail to parse become `invalid-json` errors naming the problem.
impl From<axum::extract::rejection::JsonRejection> for AppError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        AppError::new(e.status(), "invalid-json", e.body_text())
    }
}

impl From<crate::views::ViewError> for AppError {
    fn from(e: crate::views::ViewError) -> Self {
        tracing::error!(error = %e, "views failed");
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "views-unavailable", e.to_string())
    }
}

impl From<crate::log::LogError> for AppError {
    fn from(e: crate::log::LogError) -> Self {
        tracing::error!(error = %e, "event log failed");
        AppError::new(StatusCode::SERVICE_UNAVAILABLE, "log-unavailable", e.to_string())
    }
}

impl From<super::auth::KeyError> for AppError {
    fn from(e: super::auth::KeyError) -> Self {
        AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "key-store-failed", e.to_string())
    }
}

/// Query strings that fail to parse become `invalid-query` errors.
impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        AppError::new(StatusCode::BAD_REQUEST, "invalid-query", e.body_text())
    }
}

/// The JSON shape of every error, for the OpenAPI document.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `customer-not-found`.
    pub code: String,
    /// What was wrong.
    pub message: String,
}
