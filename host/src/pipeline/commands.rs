//! Input events that API calls append: the pipeline decides them in log order with every
//! other input, so a merge never races a message from the same customer.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Event type of [`UpdateAttributes`].
pub const UPDATE: &str = "customer.update-requested";
/// Event type of [`Merge`].
pub const MERGE: &str = "customer.merge-requested";
/// Event type of [`Unmerge`].
pub const UNMERGE: &str = "customer.unmerge-requested";

/// Event type of [`SendRequest`].
pub const SEND: &str = "message.send-requested";
/// Event type of [`Redrive`].
pub const REDRIVE: &str = "message.redrive-requested";

/// Event type of [`SaveAgent`].
pub const AGENT_SAVE: &str = "agent.save-requested";
/// Event type of [`SetAgentStatus`].
pub const AGENT_STATUS: &str = "agent.status-requested";
/// Event type of [`SaveQueue`].
pub const QUEUE_SAVE: &str = "queue.save-requested";

/// Event type of [`UpdateConversation`].
pub const CONVERSATION_UPDATE: &str = "conversation.update-requested";

/// Event type of [`SetPolicy`].
pub const POLICY_SET: &str = "routing.policy-requested";

/// Event type of [`RollbackPolicy`].
pub const POLICY_ROLLBACK: &str = "routing.rollback-requested";

/// Event type of [`SetShadow`].
pub const SHADOW_SET: &str = "routing.shadow-requested";

/// Event type of [`EscalationDue`] (appended by the queue clock, not by the API).
pub const ESCALATION_DUE: &str = "queue.escalation-due";

/// Whether an input of type `kind` is an API command (whose outcome the API waits for).
pub fn is_command(kind: &str) -> bool {
    matches!(
        kind,
        UPDATE
            | MERGE
            | UNMERGE
            | SEND
            | REDRIVE
            | AGENT_SAVE
            | AGENT_STATUS
            | QUEUE_SAVE
            | CONVERSATION_UPDATE
            | POLICY_SET
            | POLICY_ROLLBACK
            | SHADOW_SET
    )
}

/// Assign, transfer, unassign, resolve, reopen or set pending a conversation: the fields
/// given change, the others stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateConversation {
    /// The conversation.
    pub conversation: String,
    /// The agent: absent keeps it, `null` unassigns (it waits in its queue).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub assignee: Option<Option<String>>,
    /// The queue: absent keeps it, `null` takes it out of every queue.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub queue: Option<Option<String>>,
    /// The new status.
    #[serde(default)]
    pub status: Option<crate::views::records::Status>,
    /// Who asked.
    pub by: String,
    /// The agent the caller's key is bound to: the change is refused if, by the time it is
    /// decided, the conversation is assigned to another agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_agent: Option<String>,
}

/// Activate a routing policy: these routers, in order, from the next input on. Each slot
/// must be loaded when the pipeline decides it (the API stores and loads them first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetPolicy {
    /// The routers.
    pub stages: Vec<crate::views::policy::Stage>,
    /// Where it comes from.
    pub source: crate::views::policy::PolicySource,
    /// Why.
    #[serde(default)]
    pub note: String,
    /// Who asked.
    pub by: String,
}

/// Start a shadow run of these routers beside the live policy from the next input on
/// (replacing a running one), or stop the running one (no routers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetShadow {
    /// The candidate's routers; empty stops shadowing.
    pub stages: Vec<crate::views::policy::Stage>,
    /// Why.
    #[serde(default)]
    pub note: String,
    /// Who asked.
    pub by: String,
}

/// Go back to the policy active before the current one (as a new version).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackPolicy {
    /// Why.
    #[serde(default)]
    pub note: String,
    /// Who asked.
    pub by: String,
}

/// Conversations the queue clock found waiting past their queue's timeout. The pipeline
/// checks each again at the input's time, so a conversation taken meanwhile stays put.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EscalationDue {
    /// Conversation ids.
    pub conversations: Vec<String>,
}

/// Create an agent, or change the fields given (the others stay as they are).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SaveAgent {
    /// The agent's id.
    pub id: String,
    /// Create it (refused if it exists), or change it (refused if it does not).
    pub create: bool,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Skills (replacing the old list).
    #[serde(default)]
    pub skills: Option<Vec<String>>,
    /// Languages (replacing the old list).
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    /// Capacity per channel kind (replacing the old map).
    #[serde(default)]
    pub capacity: Option<BTreeMap<String, u32>>,
    /// Who asked.
    pub by: String,
}

/// Set an agent's status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetAgentStatus {
    /// The agent.
    pub id: String,
    /// The new status.
    pub status: crate::views::team::AgentStatus,
    /// Who asked.
    pub by: String,
}

/// Create a queue, or change the fields given.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SaveQueue {
    /// The queue's id.
    pub id: String,
    /// Create it (refused if it exists), or change it (refused if it does not).
    pub create: bool,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Required skills (replacing the old list).
    #[serde(default)]
    pub skills: Option<Vec<String>>,
    /// Priority.
    #[serde(default)]
    pub priority: Option<i32>,
    /// Business hours: absent keeps them, `null` removes them (always open).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub hours: Option<Option<crate::views::team::BusinessHours>>,
    /// Overflow queue: absent keeps it, `null` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub overflow: Option<Option<String>>,
    /// Escalation timeout in seconds: absent keeps it, `null` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub timeout_secs: Option<Option<u64>>,
    /// Who asked.
    pub by: String,
}

/// `Option<Option<T>>` in JSON: a missing field is `None`, `null` is `Some(None)`.
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the inner option (`null` for `Some(None)`).
    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    /// Reads a present field, `null` included, as `Some`.
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Send a message to a customer: the pipeline picks the channels (or checks the ones
/// named), and the delivery worker sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendRequest {
    /// The new message's id (`msg_` + ULID), chosen by the API.
    pub message: String,
    /// The customer, by id.
    #[serde(default)]
    pub customer: Option<String>,
    /// Or the customer holding this identity (normalized `kind:value`); a customer is
    /// created if nobody holds it.
    #[serde(default)]
    pub identity: Option<String>,
    /// The conversation it answers (its customer is the recipient).
    #[serde(default)]
    pub conversation: Option<String>,
    /// The channel to send on; none: the customer's last channel, else their
    /// `preferred-channel` attribute, else the fallback policy's first usable channel.
    #[serde(default)]
    pub channel: Option<String>,
    /// Channels to fall back to, in order; none: the `[outbound] fallback` policy.
    #[serde(default)]
    pub fallback: Option<Vec<String>>,
    /// Fall back when not delivered within this many seconds; none: the policy's.
    #[serde(default)]
    pub fallback_after_secs: Option<u64>,
    /// What to send.
    pub content: Content,
    /// Who asked (API key name).
    pub by: String,
}

/// The content of an outbound message, as connectors get it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Content {
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
    /// Attachments.
    #[serde(default)]
    pub attachments: Vec<crate::runtime::bindings::types::Attachment>,
    /// A template instead of free text.
    #[serde(default)]
    pub template: Option<crate::runtime::bindings::channel::Template>,
    /// Subject (email).
    #[serde(default)]
    pub subject: Option<String>,
    /// The provider id of the message this answers.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Channel-specific options, JSON.
    #[serde(default)]
    pub extras: Option<serde_json::Value>,
}

/// Send a dead-lettered message again, from the first channel of its plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Redrive {
    /// The message.
    pub message: String,
    /// Who asked.
    pub by: String,
}

/// Set or remove attributes of a customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateAttributes {
    /// The customer.
    pub customer: String,
    /// Values to set.
    #[serde(default)]
    pub set: BTreeMap<String, serde_json::Value>,
    /// Names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Who asked (API key name).
    pub by: String,
}

/// Merge customer `other` into `customer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merge {
    /// The customer that survives.
    pub customer: String,
    /// The customer merged into it.
    pub other: String,
    /// Who asked.
    pub by: String,
}

/// Split a merged customer off `customer` again: the one named by `restore`, or the one
/// whose identities include `identity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unmerge {
    /// The surviving customer.
    pub customer: String,
    /// The merged customer to restore.
    pub restore: Option<String>,
    /// Or: an identity (normalized) of the merged customer to restore.
    pub identity: Option<String>,
    /// Who asked.
    pub by: String,
}
