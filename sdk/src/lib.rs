//! `seam-sdk`: everything a Seam plugin author depends on.
//!
//! A Seam plugin is a WebAssembly component that implements one of the worlds of the WIT
//! package `seam:plugin@0.1.0` (see `wit/` in the repository):
//!
//! - a **connector** (feature `connector`) turns a provider's webhooks into events and sends
//!   messages through the provider: implement [`connector::Connector`] and call
//!   [`export_connector!`];
//! - a **router** (feature `router`) decides where a conversation goes: implement
//!   [`router::Router`] and call [`export_router!`].
//!
//! # Layout
//! - [`types`], [`connector`], [`router`]: the WIT types and the traits to implement;
//! - [`log`], [`kv`], [`config`], [`http`], [`smtp`]: the host imports, each usable only if the
//!   plugin's manifest (`seam.toml`) grants it;
//! - [`json`], [`signature`]: helpers every connector needs (parsing bodies into clear
//!   errors, constant-time HMAC checks); `delivery` (feature `connector`): helpers for
//!   `send` (reasons from answers, secrets redacted, several requests per message); `meta`:
//!   Meta's webhook subscription check and signature;
//! - `testing` (feature `testing`, native builds only): a harness that loads the compiled plugin into the real
//!   Seam runtime in-process, so plugins are tested without a server.
//!
//! Exactly one of the features `connector` and `router` may be enabled when building for
//! wasm: each adds its world's type information to the component, and a component that
//! claims both worlds would have to export both.

#![warn(missing_docs)]

#[cfg(all(target_arch = "wasm32", feature = "connector", feature = "router"))]
compile_error!("enable only one of the `connector` and `router` features: a plugin is one kind");

extern crate self as seam_sdk;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Re-exported so plugins build JSON without their own dependency.
pub use serde_json;

/// Bindings for everything the host can grant, generated from the WIT world `imports`.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "seam:plugin/imports",
        runtime_path: "::seam_sdk::__wit_bindgen::rt",
        generate_all,
    });
}

/// Generates the export side of one world, reusing the import bindings above for every
/// interface the worlds share (so connector and router code use the same types).
#[allow(unused_macros)]
macro_rules! world_exports {
    ($world:literal, $export_macro:literal, $module:literal $(, $name:literal => $path:path)*) => {
        wit_bindgen::generate!({
            path: "../wit",
            world: $world,
            runtime_path: "::seam_sdk::__wit_bindgen::rt",
            pub_export_macro: true,
            export_macro_name: $export_macro,
            default_bindings_module: $module,
            with: {
                "seam:plugin/types@0.1.0": crate::bindings::seam::plugin::types,
                "seam:plugin/log@0.1.0": crate::bindings::seam::plugin::log,
                "seam:plugin/kv@0.1.0": crate::bindings::seam::plugin::kv,
                "seam:plugin/config@0.1.0": crate::bindings::seam::plugin::config,
                "wasi:http/outgoing-handler@0.2.12": crate::bindings::wasi::http::outgoing_handler,
                "wasi:http/types@0.2.12": crate::bindings::wasi::http::types,
                "wasi:io/error@0.2.12": crate::bindings::wasi::io::error,
                "wasi:io/poll@0.2.12": crate::bindings::wasi::io::poll,
                "wasi:io/streams@0.2.12": crate::bindings::wasi::io::streams,
                "wasi:clocks/monotonic-clock@0.2.12": crate::bindings::wasi::clocks::monotonic_clock,
                $($name: $path,)*
            },
        });
    };
}
#[allow(unused_imports)]
pub(crate) use world_exports;

/// The shared WIT types: identities, messages, events.
pub mod types {
    pub use crate::bindings::seam::plugin::types::*;
}

pub mod config;
#[cfg(feature = "connector")]
pub mod connector;
#[cfg(feature = "connector")]
pub mod delivery;
pub mod http;
pub mod json;
pub mod kv;
pub mod log;
#[cfg(feature = "connector")]
pub mod meta;
#[cfg(feature = "router")]
pub mod router;
pub mod signature;
pub mod smtp;
#[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
pub mod testing;

/// Everything a plugin usually needs, for `use seam_sdk::prelude::*`.
pub mod prelude {
    #[cfg(feature = "connector")]
    pub use crate::connector::{
        ChannelFeatures, ChannelInfo, Connector, DeliveryResult, HttpRequest, HttpResponse, OutboundMessage,
        PollOutcome, RetryHint, Template, WebhookError, WebhookOutcome,
    };
    #[cfg(feature = "router")]
    pub use crate::router::{AgentStatus, Decision, RouteContext, Router, Trigger};
    pub use crate::types::*;
    pub use crate::{config, http, json, kv, log, signature};
}
