//! Routing policies: implement [`Router`] and export it with [`export_router!`].
//!
//! ```ignore
//! use seam_sdk::prelude::*;
//!
//! struct Everyone;
//!
//! impl Router for Everyone {
//!     fn route(context: RouteContext) -> Result<Decision, String> {
//!         Ok(Decision::to_queue("general", "default policy"))
//!     }
//! }
//!
//! seam_sdk::export_router!(Everyone);
//! ```

use std::marker::PhantomData;

/// Export bindings for the `router` world.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod world {
    crate::world_exports!("seam:plugin/router", "__export_router_world", "::seam_sdk::router::world");
}

pub use wit::{
    Agent, AgentStatus, ConversationStatus, ConversationSummary, CustomerSummary, Decision, Queue,
    RouteContext,
};
use world::exports::seam::plugin::routing as wit;

/// A routing policy: one export, `route`.
pub trait Router {
    /// Decide where the conversation goes.
    fn route(context: RouteContext) -> Result<Decision, String>;
}

/// Adapts a [`Router`] to the generated export trait; used by [`export_router!`].
#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Router> wit::Guest for Adapter<T> {
    fn route(context: RouteContext) -> Result<Decision, String> {
        T::route(context)
    }
}

/// Exports a type implementing [`Router`] as this component's `routing` interface.
#[macro_export]
macro_rules! export_router {
    ($ty:ty) => {
        type __SeamRouterExport = $crate::router::Adapter<$ty>;
        $crate::router::world::__export_router_world!(
            __SeamRouterExport with_types_in $crate::router::world
        );
    };
}

impl Decision {
    /// Put the conversation in `queue`, with normal priority, for `reason`.
    pub fn to_queue(queue: &str, reason: &str) -> Self {
        Decision {
            queue: Some(queue.to_owned()),
            agent: None,
            priority: 0,
            tags: Vec::new(),
            reply: None,
            reason: reason.to_owned(),
        }
    }
}

impl RouteContext {
    /// The text of the triggering event, if it is a message (or an edit) with text.
    pub fn text(&self) -> Option<&str> {
        use crate::types::Event;
        match &self.event {
            Event::Message(m) => m.text.as_deref(),
            Event::MessageEdited(e) => e.text.as_deref(),
            _ => None,
        }
    }
}
