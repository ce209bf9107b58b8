//! The waiting lines and live assignments a unit of work keeps in memory.
//!
//! Every routing decision shows the policy each queue's waiting count and each agent's load.
//! Read from the `w` and `l` indexes on each decision, that cost grew with the backlog: with
//! a few thousand conversations waiting, a decision read and copied all of them, and the
//! pipeline slowed from ~10,000 to ~200 messages per second. [`Lines`] reads an index once
//! per unit of work and then keeps it up to date from the conversations the unit changes,
//! so a decision's cost no longer depends on how many conversations wait.

use super::records::{Conversation, Status};
use super::unit::{HashMap, HashSet};
use super::{ViewError, Views, key};
use std::collections::BTreeSet;

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

/// Bytes of a waiting line's key before the conversation id: its place in line.
const RANK_BYTES: usize = 12;

/// What follows the owner in conversation `c`'s key of index `tag`. In a waiting line that
/// is its place ([`Conversation::queue_rank`]: higher priority first, then who has waited
/// longest, then id) as bytes that sort the same way, so the keys are the line in order;
/// elsewhere the id.
pub(crate) fn suffix(tag: u8, c: &Conversation) -> Vec<u8> {
    if tag != WAITING {
        return c.id.as_bytes().to_vec();
    }
    let mut s = Vec::with_capacity(RANK_BYTES + 1 + c.id.len());
    // Flipping the sign bit makes two's complement sort as unsigned; inverting puts the
    // highest priority first.
    s.extend_from_slice(&(!((c.priority as u32) ^ (1 << 31))).to_be_bytes());
    s.extend_from_slice(&((c.waiting_since.unwrap_or(i64::MAX) as u64) ^ (1 << 63)).to_be_bytes());
    s.push(0);
    s.extend_from_slice(c.id.as_bytes());
    s
}

/// The conversation id in a key suffix of index `tag`.
pub(crate) fn id_of(tag: u8, suffix: &[u8]) -> String {
    let id = if tag == WAITING { suffix.get(RANK_BYTES + 1..).unwrap_or_default() } else { suffix };
    String::from_utf8_lossy(id).into_owned()
}

/// The key of conversation `c` under `owner` in index `tag`.
pub(crate) fn index_key(tag: u8, owner: &str, c: &Conversation) -> Vec<u8> {
    let mut k = key(tag, &[owner.as_bytes(), b""]);
    k.extend_from_slice(&suffix(tag, c));
    k
}

/// The owner and key suffix of a key of index `tag` (the reverse of [`index_key`]), or
/// `None` for any other key.
pub(crate) fn split_key(tag: u8, key: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = key.strip_prefix(&[tag, 0])?;
    let end = rest.iter().position(|b| *b == 0)?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// One line (or live set), in key order.
#[derive(Default)]
pub(crate) struct Line {
    order: BTreeSet<Vec<u8>>,
    by_id: HashMap<String, Vec<u8>>,
}

impl Line {
    fn put(&mut self, id: &str, suffix: Vec<u8>) {
        if let Some(old) = self.by_id.get(id) {
            if *old == suffix {
                return;
            }
            self.order.remove(old);
        }
        self.order.insert(suffix.clone());
        self.by_id.insert(id.to_owned(), suffix);
    }

    fn take(&mut self, id: &str) {
        if let Some(old) = self.by_id.remove(id) {
            self.order.remove(&old);
        }
    }

    /// How many conversations it holds.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Its conversation ids, first in line first.
    pub(crate) fn ids(&self, tag: u8) -> Vec<String> {
        self.order.iter().map(|s| id_of(tag, s)).collect()
    }

    /// Its key suffixes (place and id), first in line first.
    pub(crate) fn suffixes(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.order.iter()
    }
}

/// Index sets read so far, kept in step with the unit's conversations.
#[derive(Default)]
pub(crate) struct Lines {
    /// (index, owner) -> its conversations.
    sets: HashMap<(u8, String), Line>,
    /// Conversations changed since the sets were last brought up to date.
    stale: HashSet<String>,
}

impl Lines {
    /// Notes that conversation `id` may have moved in, out of or within a line.
    pub(crate) fn touched(&mut self, id: &str) {
        if !self.sets.is_empty() && !self.stale.contains(id) {
            self.stale.insert(id.to_owned());
        }
    }

    /// The conversations under `owner` in index `tag`: the stored index corrected by the
    /// unit's own `conversations`, which may be ahead of the store.
    pub(crate) fn set(
        &mut self,
        tag: u8,
        owner: &str,
        views: &Views,
        conversations: &super::unit::Conversations,
    ) -> Result<&Line, ViewError> {
        for id in self.stale.drain() {
            let Some((_, c)) = conversations.get(&id) else { continue };
            for ((t, o), line) in &mut self.sets {
                if member(*t, o, c) {
                    line.put(&id, suffix(*t, c));
                } else {
                    line.take(&id);
                }
            }
        }
        let slot = (tag, owner.to_owned());
        if !self.sets.contains_key(&slot) {
            // Once per unit and line: the store, then every change the unit holds.
            let mut line = Line::default();
            for s in views.index_suffixes(tag, owner)? {
                line.put(&id_of(tag, &s), s);
            }
            for (id, (_, c)) in conversations {
                if member(tag, owner, c) {
                    line.put(id, suffix(tag, c));
                } else {
                    line.take(id);
                }
            }
            self.sets.insert(slot.clone(), line);
        }
        Ok(&self.sets[&slot])
    }
}
