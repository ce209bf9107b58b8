//! Seam: an omnichannel integration platform whose channel connectors and routing
//! policies are sandboxed WebAssembly components.
//!
//! # Layout
//! Data flows top to bottom:
//! - [`api`]: the HTTP surface (axum): channel webhooks, customers, conversations, events,
//!   admin; `/healthz`, `/metrics`, `/openapi.json`;
//! - [`runtime`]: loads plugins ([`manifest`] + component), limits and calls them, swaps
//!   versions atomically; host capabilities live in [`runtime::caps`], one module each;
//!   [`channels`] are connector plugins loaded under a channel id; [`routers`] are the
//!   router versions routing policies pin;
//! - [`log`]: the event log, source of truth ([`log::EventLog`], sled by default): webhooks
//!   append inputs, durably, before the provider gets its answer;
//! - [`pipeline`]: consumes the log in order: identity resolution, conversation threading,
//!   the routing policy's router plugins and the queue; appends its decisions to the log;
//! - [`views`]: customers, identities, conversations, timelines, outbound messages, derived
//!   from the decisions and rebuildable from the log;
//! - [`delivery`]: the outbound worker: sends what the pipeline left due through the
//!   channel's connector and reports each attempt back to the log;
//! - [`config`]: the operator's file (channels, identity rules); [`server`]: `seam serve`;
//!   [`process`]: process-wide memory settings the binary applies first;
//! - [`metrics`], [`bundled`] plugins, [`samples`] for tests and benchmarks.

#![warn(missing_docs)]

pub mod api;
pub mod bundled;
pub mod channels;
pub mod config;
pub mod delivery;
pub mod log;
pub mod manifest;
pub mod metrics;
pub mod pipeline;
pub mod process;
pub mod routers;
pub mod runtime;
pub mod samples;
pub mod server;
pub mod views;
