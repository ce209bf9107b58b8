//! Places in the waiting lines, for readers.
//!
//! `GET /v1/conversations/{id}` shows a waiting conversation's place in its queue. Counting
//! the `w` keys ahead of it in sled costs ~140 ns a key, so with 100,000 conversations
//! waiting a read took 14 ms at p50 and 29 ms at p99. [`Places`] reads a queue's line from
//! the store once, at the first question about that queue, into an order-statistic set
//! (which counts the entries before a value without visiting them), then keeps it in step
//! with every batch of changes the views write.
//!
//! Consistency rests on two facts. The views have a single writer of `w` keys (the
//! processor, or a rebuild in its place), which updates the lines after each write to the
//! store. And applying a change to a line is idempotent (a set), while a line is read from
//! the store under the same lock the updates take: a line read before a write gets that
//! write's changes afterwards; one read after it already has them and gets them again,
//! harmlessly.

use super::lines::{WAITING, split_key};
use indexset::BTreeSet;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// A queue's line: key suffixes (place, then id; see [`super::lines::suffix`]) in key order.
type Line = BTreeSet<Vec<u8>>;

/// The lines read so far, by queue.
#[derive(Default)]
pub(crate) struct Places {
    lines: Mutex<HashMap<Vec<u8>, Line>>,
}

/// A change to a `w` key, taken from a batch before it is written: key, and whether it is
/// set (or removed).
pub(crate) type WaitingChange = (Vec<u8>, bool);

/// Whether `key` is a `w` key, whose changes [`Places::written`] needs.
pub(crate) fn is_waiting_key(key: &[u8]) -> bool {
    key.first() == Some(&WAITING)
}

impl Places {
    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Line>> {
        // A panic while a line was changed may have left it half done: forget every line
        // (each is read again when next asked about) rather than answer from it.
        self.lines.lock().unwrap_or_else(|poisoned| {
            self.lines.clear_poison();
            let mut lines = poisoned.into_inner();
            lines.clear();
            lines
        })
    }

    /// Brings the lines read so far up to date with `changes` (in batch order), which have
    /// just been written to the store.
    pub(crate) fn written(&self, changes: &[WaitingChange]) {
        if changes.is_empty() {
            return;
        }
        let mut lines = self.lock();
        if lines.is_empty() {
            return;
        }
        for (key, set) in changes {
            let Some((queue, suffix)) = split_key(WAITING, key) else { continue };
            let Some(line) = lines.get_mut(queue) else { continue };
            if *set {
                line.insert(suffix.to_vec());
            } else {
                line.remove(suffix);
            }
        }
    }

    /// Forgets every line (after the views were cleared).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// The place (1 for the first) of the entry with key suffix `suffix` in `queue`'s line,
    /// `None` if it is not in it. `read` gives the stored line, the first time a queue is
    /// asked about.
    pub(crate) fn position<E>(
        &self,
        queue: &str,
        suffix: &[u8],
        read: impl FnOnce() -> Result<Vec<Vec<u8>>, E>,
    ) -> Result<Option<usize>, E> {
        let mut lines = self.lock();
        let line = match lines.get(queue.as_bytes()) {
            Some(line) => line,
            None => {
                let line = read()?.into_iter().collect();
                lines.entry(queue.as_bytes().to_vec()).or_insert(line)
            }
        };
        Ok(line.contains(suffix).then(|| line.rank(suffix) + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::key;

    fn waiting_key(queue: &str, suffix: &str) -> Vec<u8> {
        key(WAITING, &[queue.as_bytes(), suffix.as_bytes()])
    }

    fn stored(line: &[&str]) -> Result<Vec<Vec<u8>>, ()> {
        Ok(line.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    #[test]
    fn a_line_is_read_once_then_follows_the_writes() {
        let places = Places::default();
        // Writes before anyone asked about a queue change nothing (nothing is read yet).
        places.written(&[(waiting_key("support", "b"), true)]);
        assert_eq!(places.position("support", b"b", || stored(&["a", "b", "d"])), Ok(Some(2)));
        assert_eq!(places.position("support", b"c", || stored(&[])), Ok(None), "not in line");
        places.written(&[
            (waiting_key("support", "c"), true),
            (waiting_key("support", "a"), false),
            (waiting_key("billing", "a"), true),
            (b"q\0support\0c".to_vec(), true),
        ]);
        let read_again = || -> Result<Vec<Vec<u8>>, ()> { panic!("the line is read once") };
        assert_eq!(places.position("support", b"b", read_again), Ok(Some(1)));
        assert_eq!(places.position("support", b"d", read_again), Ok(Some(3)));
        // A write seen twice (read after it reached the store, then updated) is harmless.
        places.written(&[(waiting_key("support", "c"), true)]);
        assert_eq!(places.position("support", b"d", read_again), Ok(Some(3)));
        // The last change of a key in a batch wins.
        places.written(&[(waiting_key("support", "e"), true), (waiting_key("support", "e"), false)]);
        assert_eq!(places.position("support", b"e", read_again), Ok(None));
        places.clear();
        assert_eq!(places.position("support", b"d", || stored(&["d"])), Ok(Some(1)), "read again");
    }

    #[test]
    fn a_failed_read_is_reported_and_tried_again() {
        let places = Places::default();
        assert_eq!(places.position("support", b"a", || Err::<Vec<Vec<u8>>, _>("disk")), Err("disk"));
        assert_eq!(places.position("support", b"a", || stored(&["a"])), Ok(Some(1)));
    }
}
