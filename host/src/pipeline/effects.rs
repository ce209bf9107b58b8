//! Effects: what the pipeline decided about one input event. A decision event in the log
//! carries the list; views are a pure function of the decisions in log order, which is
//! why a rebuild needs no plugin and gives the same views as the live pipeline.

use crate::views::outbound::{HistoryEntry, OutboundStatus, PlanStep, ProviderRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Payload of a `pipeline.decided` event.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// Offset of the input event this decides.
    pub source: u64,
    /// What it changes, applied in order.
    pub effects: Vec<Effect>,
    /// Whether the input was an API command (whose outcome the API reports).
    #[serde(default)]
    pub command: bool,
}

impl Decision {
    /// The decision a `pipeline.decided` event of the log carries.
    pub fn from_event(event: &crate::log::Envelope) -> Result<Decision, crate::log::LogError> {
        serde_json::from_str(event.payload.get())
            .map_err(|e| crate::log::LogError::Corrupt { offset: event.offset, reason: e.to_string() })
    }

    /// Why the input (a command) was refused, if it was.
    pub fn refusal(&self) -> Option<&str> {
        self.effects.iter().find_map(|e| match e {
            Effect::Rejected { reason } => Some(reason.as_str()),
            _ => None,
        })
    }
}

/// One change to the views.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Effect {
    /// A new customer.
    CustomerCreated {
        /// Its id.
        customer: String,
        /// When, ms.
        at: i64,
    },
    /// An identity now belongs to a customer.
    IdentityLinked {
        /// The customer that holds it (its home).
        customer: String,
        /// `kind:value`, normalized.
        identity: String,
        /// Why (e.g. `first contact on telegram`, `contact shared on telegram`).
        reason: String,
    },
    /// A link or merge was refused by the identity rules; nothing changed.
    LinkRefused {
        /// The identity that was not linked.
        identity: String,
        /// The customer it would have joined.
        customer: String,
        /// Which rule refused it.
        reason: String,
    },
    /// Customer `from` (with the customers it had absorbed, `members`) was merged into `into`.
    CustomersMerged {
        /// The customer that disappears from view.
        from: String,
        /// The customer that survives.
        into: String,
        /// `from` and every customer it had absorbed.
        members: Vec<String>,
        /// Why.
        reason: String,
    },
    /// A merged customer was split off again (unmerge): `customer` and `members` are
    /// their own customers again.
    CustomerRestored {
        /// The customer restored.
        customer: String,
        /// The customer it had been merged into.
        from: String,
        /// `customer` and the customers it had absorbed before its merge.
        members: Vec<String>,
    },
    /// Attributes were set or removed.
    AttributesSet {
        /// The customer.
        customer: String,
        /// New values.
        #[schema(value_type = Object)]
        set: BTreeMap<String, serde_json::Value>,
        /// Removed names.
        removed: Vec<String>,
    },
    /// Consent on a channel changed.
    ConsentSet {
        /// The customer (home of the identity).
        customer: String,
        /// The channel.
        channel: String,
        /// Opted in or out.
        granted: bool,
        /// When, ms.
        at: i64,
    },
    /// A conversation started.
    ConversationOpened {
        /// Its id.
        conversation: String,
        /// The customer (as seen at the time).
        customer: String,
        /// When, ms.
        at: i64,
    },
    /// A resolved conversation was reopened by the customer writing again.
    ConversationReopened {
        /// Its id.
        conversation: String,
        /// When, ms.
        at: i64,
    },
    /// A conversation was resolved.
    ConversationResolved {
        /// Its id.
        conversation: String,
        /// When, ms.
        at: i64,
        /// Why (e.g. `merged into cnv_...`).
        reason: String,
    },
    /// The router placed a conversation.
    ConversationRouted {
        /// The conversation.
        conversation: String,
        /// Target queue.
        queue: Option<String>,
        /// Target agent.
        agent: Option<String>,
        /// Priority.
        priority: i32,
        /// Tags to add.
        tags: Vec<String>,
        /// The router's explanation.
        reason: String,
        /// The routers that decided (`name@version`, several joined by ` -> ` for a chain).
        router: String,
        /// When, ms (0 in decisions written before it was recorded).
        #[serde(default)]
        at: i64,
    },
    /// Someone placed a conversation by hand: assigned it, transferred it to another agent
    /// or queue, or unassigned it.
    ConversationAssigned {
        /// The conversation.
        conversation: String,
        /// Its queue now.
        queue: Option<String>,
        /// Its agent now; none: it waits in its queue.
        agent: Option<String>,
        /// Who did it (the API key's name).
        by: String,
        /// When, ms.
        at: i64,
    },
    /// A conversation waited in `from` longer than the queue's timeout and moved to its
    /// overflow queue `to`.
    ConversationEscalated {
        /// The conversation.
        conversation: String,
        /// The queue it waited in.
        from: String,
        /// The overflow queue.
        to: String,
        /// When, ms.
        at: i64,
    },
    /// An agent set a conversation open (waiting for the company) or pending (waiting for
    /// the customer); resolving is [`Effect::ConversationResolved`].
    ConversationStatusSet {
        /// The conversation.
        conversation: String,
        /// `open` or `pending`.
        status: crate::views::records::Status,
        /// Who did it.
        by: String,
        /// When, ms.
        at: i64,
    },
    /// The router could not decide (it failed or is not loaded); the conversation keeps
    /// its previous placement.
    RouteFailed {
        /// The conversation.
        conversation: String,
        /// The router plugin.
        router: String,
        /// What went wrong.
        error: String,
    },
    /// The input was recorded in the customer's timeline (and the conversation's messages).
    Recorded {
        /// The customer whose timeline holds it (the identity's home customer).
        customer: String,
        /// The conversation, if it belongs to one.
        conversation: Option<String>,
        /// Input event type.
        kind: String,
        /// Channel.
        channel: Option<String>,
        /// The identity it came from or went to.
        identity: Option<String>,
        /// Whether it counts as a message from the customer.
        inbound_message: bool,
        /// When, ms.
        at: i64,
    },
    /// An outbound message was accepted for delivery.
    MessageQueued {
        /// Its id.
        message: String,
        /// The customer it goes to (the surviving customer).
        customer: String,
        /// The conversation it belongs to.
        conversation: Option<String>,
        /// Channels to try, in order.
        plan: Vec<PlanStep>,
        /// Fall back when not delivered within this many ms of being sent.
        fallback_after_ms: Option<u64>,
        /// Attempts per channel.
        max_attempts: u32,
        /// Who asked.
        by: String,
        /// When, ms.
        at: i64,
    },
    /// An outbound message moved on: its new state, and what happened.
    MessageUpdated {
        /// Its id.
        message: String,
        /// New status.
        status: OutboundStatus,
        /// Plan step now being tried.
        step: usize,
        /// Attempts made on that step.
        attempts: u32,
        /// When the delivery worker acts next.
        next_at: Option<i64>,
        /// A provider id it got.
        provider: Option<ProviderRef>,
        /// Why it failed, if it did.
        reason: Option<String>,
        /// What happened, for its history.
        entry: HistoryEntry,
    },
    /// A delivery status arrived for a provider id no recorded send has (yet): kept, so
    /// the send recorded later picks it up.
    DeliveryHeld {
        /// Channel.
        channel: String,
        /// The provider's id.
        provider_id: String,
        /// `delivered`, `read` or `failed`.
        status: String,
        /// The provider's reason.
        reason: Option<String>,
        /// When, ms.
        at: i64,
    },
    /// An agent was created or changed: its whole record as it is now.
    AgentSaved {
        /// The record.
        agent: crate::views::team::AgentRecord,
    },
    /// An agent went online, away or offline.
    AgentStatusChanged {
        /// The agent.
        agent: String,
        /// The new status.
        status: crate::views::team::AgentStatus,
        /// The status before.
        previous: crate::views::team::AgentStatus,
        /// When, ms.
        at: i64,
    },
    /// A queue was created or changed: its whole record as it is now.
    QueueSaved {
        /// The record.
        queue: crate::views::team::QueueRecord,
    },
    /// A routing policy version became active (a swap, a rollback, or the config's chain).
    PolicyActivated {
        /// The whole version.
        policy: crate::views::policy::PolicyRecord,
    },
    /// A shadow run started (a newer run replaces the running one, which stops).
    ShadowStarted {
        /// The run, with an empty diff.
        shadow: crate::views::whatif::ShadowRecord,
    },
    /// The running shadow run was stopped; its diff stays readable.
    ShadowStopped {
        /// The run.
        version: u32,
        /// When, ms.
        at: i64,
    },
    /// The shadow run's candidate decided beside the live policy; nothing of it was applied.
    ShadowDecided {
        /// The run.
        version: u32,
        /// Both decisions.
        compared: crate::views::whatif::Compared,
    },
    /// The input could not be applied; it stays in the log, visible to `/v1/events`.
    Rejected {
        /// Why.
        reason: String,
    },
}
