//! What a candidate routing policy would have decided, beside what happened: the diff that
//! shadow mode keeps for live traffic and replay computes over a past window of the log.
//!
//! Shadow runs are stored under key `e version` (big-endian, so the last key is the newest
//! run); each holds its running [`Diff`], updated by every `shadow-decided` effect.

use super::policy::Stage;
use super::{ViewError, Views, key};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Differing decisions kept as examples in a diff, newest last.
pub const EXAMPLES: usize = 20;

/// The queue name a diff uses for "no queue".
pub const NO_QUEUE: &str = "(none)";

/// Where one policy put a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Placement {
    /// Queue.
    pub queue: Option<String>,
    /// Agent.
    pub agent: Option<String>,
    /// Priority.
    pub priority: i32,
    /// The routers' reason, or why the policy failed.
    pub reason: String,
    /// Whether the policy failed (the conversation kept its placement).
    #[serde(default)]
    pub failed: bool,
}

impl Placement {
    /// Whether two placements put the conversation in the same place.
    pub fn same_as(&self, other: &Placement) -> bool {
        self.failed == other.failed
            && self.queue == other.queue
            && self.agent == other.agent
            && self.priority == other.priority
    }
}

/// One decision of the live policy and the candidate's decision at the same point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Compared {
    /// The conversation.
    pub conversation: String,
    /// Log offset of the input that led to the decision.
    pub offset: u64,
    /// When, ms.
    pub at: i64,
    /// Why the policy was asked: `event`, `reoffer` or `escalation`.
    pub trigger: String,
    /// The first 120 characters of the message that was routed, if any.
    pub text: Option<String>,
    /// What the live policy decided (what happened).
    pub live: Placement,
    /// What the candidate decided.
    pub candidate: Placement,
}

/// Counts for the decisions of one live queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueDiff {
    /// Decisions that put a conversation in this queue (live).
    pub decisions: u64,
    /// Of those, how many the candidate decided differently.
    pub different: u64,
    /// Where the candidate put the differing ones, by queue, with counts.
    pub candidate_queues: BTreeMap<String, u64>,
}

/// Decisions of a live policy and a candidate, compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Diff {
    /// Decisions compared.
    pub decisions: u64,
    /// Those where both put the conversation in the same queue, with the same agent and
    /// priority.
    pub same: u64,
    /// Those where they did not.
    pub different: u64,
    /// Of the different ones, how many the candidate failed on.
    pub candidate_failed: u64,
    /// By the live decision's queue (`(none)` for no queue).
    pub by_queue: BTreeMap<String, QueueDiff>,
    /// The newest differing decisions, at most [`EXAMPLES`], oldest first.
    pub examples: Vec<Compared>,
}

impl Diff {
    /// Counts one compared decision, keeping it as an example if it differs.
    pub fn observe(&mut self, compared: &Compared) {
        self.decisions += 1;
        let queue = compared.live.queue.clone().unwrap_or_else(|| NO_QUEUE.into());
        let by_queue = self.by_queue.entry(queue).or_default();
        by_queue.decisions += 1;
        if compared.live.same_as(&compared.candidate) {
            self.same += 1;
            return;
        }
        self.different += 1;
        by_queue.different += 1;
        let to = compared.candidate.queue.clone().unwrap_or_else(|| NO_QUEUE.into());
        *by_queue.candidate_queues.entry(to).or_default() += 1;
        if compared.candidate.failed {
            self.candidate_failed += 1;
        }
        if self.examples.len() == EXAMPLES {
            self.examples.remove(0);
        }
        self.examples.push(compared.clone());
    }
}

/// A shadow run: a candidate policy called beside the live one on live traffic, its
/// decisions recorded and never applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShadowRecord {
    /// 1, 2, ...: the highest is the newest run.
    pub version: u32,
    /// The candidate's routers, called in order.
    pub stages: Vec<Stage>,
    /// Who started it (API key name).
    pub by: String,
    /// Why, in the operator's words.
    pub note: String,
    /// When it started, ms.
    pub started_at: i64,
    /// Log offset of the input that started it: decisions for inputs after it are compared.
    pub offset: u64,
    /// When it was stopped (or replaced by a newer run), ms; absent while it runs.
    pub stopped_at: Option<i64>,
    /// Its decisions so far, compared with the live policy's.
    pub diff: Diff,
}

/// Key of shadow run `version`.
pub fn shadow_key(version: u32) -> Vec<u8> {
    key(b'e', &[&version.to_be_bytes()])
}

impl Views {
    /// The newest shadow run (running or stopped), if any was ever started.
    pub fn latest_shadow(&self) -> Result<Option<ShadowRecord>, ViewError> {
        Ok(self.newest(b'e', 1)?.pop())
    }

    /// Shadow run `version`.
    pub fn shadow(&self, version: u32) -> Result<Option<ShadowRecord>, ViewError> {
        self.get(&shadow_key(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(queue: &str, agent: Option<&str>) -> Placement {
        Placement { queue: Some(queue.into()), agent: agent.map(Into::into), ..Default::default() }
    }

    fn compared(n: u64, live: Placement, candidate: Placement) -> Compared {
        Compared {
            conversation: format!("cnv_{n}"),
            offset: n,
            at: 0,
            trigger: "event".into(),
            text: None,
            live,
            candidate,
        }
    }

    #[test]
    fn counts_by_live_queue_and_keeps_the_newest_examples() {
        let mut diff = Diff::default();
        diff.observe(&compared(1, placement("support", None), placement("support", None)));
        diff.observe(&compared(2, placement("support", None), placement("general", None)));
        diff.observe(&compared(3, placement("support", Some("anna")), placement("support", None)));
        let failed = Placement { failed: true, ..Default::default() };
        diff.observe(&compared(4, placement("general", None), failed));
        assert_eq!((diff.decisions, diff.same, diff.different, diff.candidate_failed), (4, 1, 3, 1));
        let support = &diff.by_queue["support"];
        assert_eq!((support.decisions, support.different), (3, 2));
        assert_eq!(support.candidate_queues["general"], 1);
        assert_eq!(support.candidate_queues["support"], 1);
        assert_eq!(diff.by_queue["general"].candidate_queues[NO_QUEUE], 1);
        for n in 10..40 {
            diff.observe(&compared(n, placement("a", None), placement("b", None)));
        }
        assert_eq!(diff.examples.len(), EXAMPLES);
        assert_eq!(diff.examples.last().map(|e| e.offset), Some(39));
        assert_eq!(diff.examples.first().map(|e| e.offset), Some(20));
    }
}
