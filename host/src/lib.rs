//! Seam: an omnichannel integration platform whose channel connectors and routing
//! policies are sandboxed WebAssembly components.
//!
//! # Layout
//! Data flows top to bottom:
//! - [`api`]: the HTTP surface (axum): health, metrics, admin plugin management;
//! - [`runtime`]: loads plugins ([`manifest`] + component), limits and calls them, swaps
//!   versions atomically; host capabilities live in [`runtime::caps`], one module each;
//! - [`metrics`]: Prometheus metrics shared by all of the above;
//! - [`bundled`]: the first-party plugins compiled into the binary;
//! - [`server`]: `seam serve`: data directory, plugin directory, listener;
//! - [`samples`]: sample WIT values for tests and benchmarks.
//!
//! The event log, pipeline and views (issues #3-#5) will sit between `runtime` and `api`.

#![warn(missing_docs)]

pub mod api;
pub mod bundled;
pub mod manifest;
pub mod metrics;
pub mod runtime;
pub mod samples;
pub mod server;
