//! The waiting lines and live assignments a unit of work keeps in memory.
//!
//! Every routing decision shows the policy each queue's waiting count and each agent's load.
//! Read from the `w` and `l` indexes on each decision, that cost grew with the backlog: with
//! a few thousand conversations waiting, a decision read and copied all of them, and the
//! pipeline slowed from ~10,000 to ~200 messages per second. [`Lines`] reads an index once
//! per unit of work and then keeps it up to date from the conversations the unit changes,
//! so a decision's cost no longer depends on how many conversations wait.

use super::records::{Conversation, Status};
use super::{ViewError, Views};
use std::collections::{HashMap, HashSet};

/// The `w` index: conversations waiting in a queue.
pub(crate) const WAITING: u8 = b'w';
/// The `l` index: the unresolved conversations assigned to an agent.
pub(crate) const LIVE: u8 = b'l';

/// Whether conversation `c` belongs under `owner` in index `tag`: the rule
/// [`super::unit::Unit::take_batch`] writes the index keys by.
pub(crate) fn member(tag: u8, owner: &str, c: &Conversation) -> bool {
    match tag {
        WAITING => c.is_waiting() && c.queue.as_deref() == Some(owner),
        LIVE => c.status != Status::Resolved && c.assignee.as_deref() == Some(owner),
        _ => false,
    }
}

/// Index sets read so far, kept in step with the unit's conversations.
#[derive(Default)]
pub(crate) struct Lines {
    /// (index, owner) -> conversation ids.
    sets: HashMap<(u8, String), HashSet<String>>,
    /// Conversations changed since the sets were last brought up to date.
    stale: HashSet<String>,
}

impl Lines {
    /// Notes that conversation `id` may have moved in or out of a line.
    pub(crate) fn touched(&mut self, id: &str) {
        if !self.sets.is_empty() && !self.stale.contains(id) {
            self.stale.insert(id.to_owned());
        }
    }

    /// The ids under `owner` in index `tag`: the stored index corrected by the unit's own
    /// `conversations` (stored version, current version), which may be ahead of the store.
    pub(crate) fn set(
        &mut self,
        tag: u8,
        owner: &str,
        views: &Views,
        conversations: &HashMap<String, (Option<Conversation>, Conversation)>,
    ) -> Result<&HashSet<String>, ViewError> {
        for id in self.stale.drain() {
            let Some((_, c)) = conversations.get(&id) else { continue };
            for ((t, o), ids) in &mut self.sets {
                if member(*t, o, c) {
                    ids.insert(id.clone());
                } else {
                    ids.remove(&id);
                }
            }
        }
        let slot = (tag, owner.to_owned());
        if !self.sets.contains_key(&slot) {
            // Once per unit and line: the store, then every change the unit holds.
            let mut ids: HashSet<String> = views.index_ids(tag, owner)?.into_iter().collect();
            for (id, (_, c)) in conversations {
                if member(tag, owner, c) {
                    ids.insert(id.clone());
                } else {
                    ids.remove(id);
                }
            }
            self.sets.insert(slot.clone(), ids);
        }
        Ok(&self.sets[&slot])
    }
}
