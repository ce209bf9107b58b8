//! Channel connectors: implement [`Connector`] and export it with [`export_connector!`].
//!
//! ```ignore
//! use seam_sdk::prelude::*;
//!
//! struct MyChannel;
//!
//! impl Connector for MyChannel {
//!     fn describe() -> ChannelInfo { /* ... */ }
//!     fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> { /* ... */ }
//!     fn send(message: OutboundMessage) -> DeliveryResult { /* ... */ }
//! }
//!
//! seam_sdk::export_connector!(MyChannel);
//! ```

use std::marker::PhantomData;

/// Export bindings for the `connector` world.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod world {
    crate::world_exports!(
        "seam:plugin/connector",
        "__export_connector_world",
        "::seam_sdk::connector::world",
        "seam:plugin/smtp@0.1.0" => crate::bindings::seam::plugin::smtp
    );
}

pub use wit::{
    ChannelFeatures, ChannelInfo, DeliveryResult, HttpRequest, HttpResponse, OutboundMessage, PollOutcome,
    RetryHint, Template, WebhookError, WebhookOutcome,
};
use world::exports::seam::plugin::channel as wit;

/// A channel connector. Each method is one export of the `channel` interface; see the WIT
/// docs for the contract.
pub trait Connector {
    /// Describe the channel.
    fn describe() -> ChannelInfo;

    /// Verify and normalize one webhook request.
    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError>;

    /// Send one message through the provider.
    fn send(message: OutboundMessage) -> DeliveryResult;

    /// Pull new events (only for connectors with the `poll` feature). The default finds
    /// nothing and keeps the cursor.
    fn poll(cursor: Option<String>) -> Result<PollOutcome, String> {
        Ok(PollOutcome { events: Vec::new(), cursor })
    }
}

/// Adapts a [`Connector`] to the generated export trait; used by [`export_connector!`].
#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Connector> wit::Guest for Adapter<T> {
    fn describe() -> ChannelInfo {
        T::describe()
    }
    fn handle_webhook(request: HttpRequest) -> Result<WebhookOutcome, WebhookError> {
        T::handle_webhook(request)
    }
    fn send(message: OutboundMessage) -> DeliveryResult {
        T::send(message)
    }
    fn poll(cursor: Option<String>) -> Result<PollOutcome, String> {
        T::poll(cursor)
    }
}

/// Exports a type implementing [`Connector`] as this component's `channel` interface.
#[macro_export]
macro_rules! export_connector {
    ($ty:ty) => {
        type __SeamConnectorExport = $crate::connector::Adapter<$ty>;
        $crate::connector::world::__export_connector_world!(
            __SeamConnectorExport with_types_in $crate::connector::world
        );
    };
}

impl HttpRequest {
    /// The first header named `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first query parameter named `name`, percent-decoded, if any.
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::json::form_pairs(self.query.as_bytes()).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl HttpResponse {
    /// A response with `status`, a JSON content type and `body`.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A response with `status`, a plain-text content type and `body`.
    pub fn text(status: u16, body: &str) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// `200 OK` with an empty body.
    pub fn ok() -> Self {
        HttpResponse { status: 200, headers: Vec::new(), body: Vec::new() }
    }
}

impl WebhookOutcome {
    /// Accept `events` and answer `200 OK`.
    pub fn accept(events: Vec<crate::types::Event>) -> Self {
        WebhookOutcome { events, response: HttpResponse::ok() }
    }
}
