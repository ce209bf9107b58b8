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
    RouteContext, Trigger,
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

    /// Adds `reason` to the explanation (after what earlier routers in a chain said).
    pub fn because(&mut self, reason: &str) {
        if self.reason.is_empty() {
            self.reason = reason.to_owned();
        } else {
            self.reason = format!("{}; {reason}", self.reason);
        }
    }

    /// Adds `tag` unless it is there already.
    pub fn tag(&mut self, tag: &str) {
        if !self.tags.iter().any(|t| t == tag) {
            self.tags.push(tag.to_owned());
        }
    }
}

impl RouteContext {
    /// The text of the triggering event, if it is a message (or an edit) with text.
    pub fn text(&self) -> Option<&str> {
        use crate::types::Event;
        match &self.event {
            Some(Event::Message(m)) => m.text.as_deref(),
            Some(Event::MessageEdited(e)) => e.text.as_deref(),
            _ => None,
        }
    }

    /// Where to start: what earlier routers in the chain decided, or else the
    /// conversation's current placement (its queue and agent, no new tags).
    pub fn start(&self) -> Decision {
        self.proposed.clone().unwrap_or_else(|| Decision {
            queue: self.conversation.queue.clone(),
            agent: self.conversation.assignee.clone(),
            priority: 0,
            tags: Vec::new(),
            reply: None,
            reason: String::new(),
        })
    }

    /// The queue named `id`, if the host listed it.
    pub fn queue(&self, id: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.id == id)
    }

    /// The agent named `id`, if the host listed it.
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// The value of customer attribute `name`, if set.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.customer.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Agent {
    /// Online, with room for one more conversation of the channel kind being routed.
    pub fn available(&self) -> bool {
        self.status == AgentStatus::Online && self.load < self.capacity
    }

    /// Whether the agent has every skill in `skills`.
    pub fn has_skills(&self, skills: &[String]) -> bool {
        skills.iter().all(|s| self.skills.contains(s))
    }
}

/// Building blocks for a router's unit tests: a context as the host would pass it, with
/// no queues and no agents, to which a test adds what it needs.
pub mod sample {
    use super::{Agent, AgentStatus, ConversationStatus, ConversationSummary, CustomerSummary, Queue};
    use super::{RouteContext, Trigger};
    use crate::types::{Event, Identity, InboundMessage};

    /// A text message from Telegram user 1001 (customer `c1`) in open conversation `v1`,
    /// at 2023-11-14 22:13:20 UTC.
    pub fn context(text: &str) -> RouteContext {
        let sender = Identity { kind: "telegram".into(), value: "1001".into() };
        RouteContext {
            trigger: Trigger::Event,
            event: Some(Event::Message(InboundMessage {
                external_id: "m1".into(),
                sender: sender.clone(),
                sender_name: None,
                text: Some(text.into()),
                attachments: Vec::new(),
                reply_to: None,
                thread: None,
                sent_at: None,
                extras: None,
            })),
            channel: "telegram".into(),
            channel_kind: "telegram".into(),
            customer: CustomerSummary {
                id: "c1".into(),
                identities: vec![sender],
                attributes: Vec::new(),
                channels: vec!["telegram".into()],
                last_agent: None,
                previous_conversations: 0,
            },
            conversation: ConversationSummary {
                id: "v1".into(),
                status: ConversationStatus::Open,
                channels: vec!["telegram".into()],
                queue: None,
                assignee: None,
                tags: Vec::new(),
                message_count: 1,
                opened_at: 1_700_000_000_000,
                waiting_since: None,
            },
            queues: Vec::new(),
            agents: Vec::new(),
            now: 1_700_000_000_000,
            proposed: None,
        }
    }

    /// An open queue `id` needing `skills`, with nobody waiting.
    pub fn queue(id: &str, skills: &[&str]) -> Queue {
        Queue {
            id: id.into(),
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            priority: 0,
            open: true,
            waiting: 0,
        }
    }

    /// An online agent `id` with `skills`, holding `load` of `capacity` conversations,
    /// never assigned before.
    pub fn agent(id: &str, skills: &[&str], load: u32, capacity: u32) -> Agent {
        Agent {
            id: id.into(),
            name: id.into(),
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            languages: Vec::new(),
            status: AgentStatus::Online,
            load,
            capacity,
            last_assigned: None,
        }
    }
}
