//! The inbox, served at `/`: one page and one small script, no build step. The page holds no
//! data; the script signs in with an API key kept in the browser's session storage and reads
//! and changes everything through the `/v1` API (the key's role applies as for any client).
//! It lists conversations by queue and the agent's own, live from `/v1/events/stream` (read
//! with `fetch`, so the key goes in a header, not in the URL); shows a conversation's
//! timeline across channels with channel marks and the customer panel; and replies, assigns,
//! transfers and resolves.

use axum::http::header;
use axum::response::{Html, IntoResponse};

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("inbox.js");

/// `GET /`: the inbox page.
pub async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE))
}

/// `GET /inbox.js`: the inbox script.
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}
