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
//! store. And applying a change to a line is idempotent (a set, the last change of a key
//! winning). A line is read from the store without the lock held, so that neither the
//! writer nor questions about other queues wait for it (reading a line of 100,000 took
//! ~70-110 ms): while it is read, the changes written meanwhile are kept aside, and applied
//! in order to what was read before the line is used. A change the read already saw is
//! applied again, harmlessly; one it missed was written to the store after the read began,
//! so it was reported after the read was registered and is among those kept aside.

use super::lines::{WAITING, split_key};
use indexset::BTreeSet;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A queue's line: key suffixes (place, then id; see [`super::lines::suffix`]) in key order.
type Line = BTreeSet<Vec<u8>>;

/// Changes to one line, in the order written: key suffix, and whether it is set.
type LineChanges = Vec<(Vec<u8>, bool)>;

/// A queue's line, or the changes to it written while it is read from the store.
enum Entry {
    /// Read by the reader holding `ticket`; `meanwhile` are the changes written since.
    Reading { ticket: u64, meanwhile: LineChanges },
    /// Read, and kept up to date.
    Ready(Line),
}

/// The lines read (or being read) so far, by queue.
#[derive(Default)]
pub(crate) struct Places {
    lines: Mutex<Lines>,
    /// Numbers the reads, so that a read begun before [`Places::clear`] does not take the
    /// entry of one begun after it.
    tickets: std::sync::atomic::AtomicU64,
    /// Signalled when a line's read ends, for those asking about the same queue meanwhile.
    read_done: Condvar,
}

/// A change to a `w` key, taken from a batch before it is written: key, and whether it is
/// set (or removed).
pub(crate) type WaitingChange = (Vec<u8>, bool);

/// Whether `key` is a `w` key, whose changes [`Places::written`] needs.
pub(crate) fn is_waiting_key(key: &[u8]) -> bool {
    key.first() == Some(&WAITING)
}

type Lines = HashMap<Vec<u8>, Entry>;

/// A panic while a line was changed may have left it half done: forget every line (each is
/// read again when next asked about) rather than answer from it.
fn forget_if_poisoned<'a>(
    places: &Places,
    locked: std::sync::LockResult<MutexGuard<'a, Lines>>,
) -> MutexGuard<'a, Lines> {
    locked.unwrap_or_else(|poisoned| {
        places.lines.clear_poison();
        let mut lines = poisoned.into_inner();
        lines.clear();
        places.read_done.notify_all();
        lines
    })
}

impl Places {
    fn lock(&self) -> MutexGuard<'_, Lines> {
        forget_if_poisoned(self, self.lines.lock())
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
            match lines.get_mut(queue) {
                Some(Entry::Ready(line)) => change(line, suffix, *set),
                Some(Entry::Reading { meanwhile, .. }) => meanwhile.push((suffix.to_vec(), *set)),
                None => {}
            }
        }
    }

    /// Forgets every line (after the views were cleared). A read under way is not used.
    pub(crate) fn clear(&self) {
        self.lock().clear();
        self.read_done.notify_all();
    }

    /// The place (1 for the first) of the entry with key suffix `suffix` in `queue`'s line,
    /// `None` if it is not in it. `read` gives the stored line, the first time a queue is
    /// asked about; it runs without the lock held, and others asking about the same queue
    /// meanwhile wait for it.
    pub(crate) fn position<E>(
        &self,
        queue: &str,
        suffix: &[u8],
        read: impl FnOnce() -> Result<Vec<Vec<u8>>, E>,
    ) -> Result<Option<usize>, E> {
        let place = |line: &Line| line.contains(suffix).then(|| line.rank(suffix) + 1);
        let mut lines = self.lock();
        loop {
            match lines.get(queue.as_bytes()) {
                Some(Entry::Ready(line)) => return Ok(place(line)),
                Some(Entry::Reading { .. }) => lines = forget_if_poisoned(self, self.read_done.wait(lines)),
                None => break,
            }
        }
        let ticket = self.tickets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lines.insert(queue.as_bytes().to_vec(), Entry::Reading { ticket, meanwhile: Vec::new() });
        drop(lines);

        // Ends the read whatever happens to it, `read` panicking included, so that nobody
        // waits for it forever; returns the changes written meanwhile if the entry is still
        // this read's (it is not after a `clear`).
        let mut reading = Reading { places: self, queue: queue.as_bytes(), ticket, done: false };
        // The set is built before the lock is taken again too: on a long line that takes time.
        let stored = read().map(|keys| keys.into_iter().collect::<Line>());
        let (mut lines, meanwhile) = reading.end();
        let mut line = stored?;
        let Some(meanwhile) = meanwhile else {
            // The lines were cleared (or forgotten) during the read: answer from it, but do
            // not keep it.
            return Ok(place(&line));
        };
        for (suffix, set) in meanwhile {
            change(&mut line, &suffix, set);
        }
        let answer = place(&line);
        lines.insert(queue.as_bytes().to_vec(), Entry::Ready(line));
        Ok(answer)
    }
}

/// A line's read under way, registered in [`Places`] as [`Entry::Reading`].
struct Reading<'a> {
    places: &'a Places,
    queue: &'a [u8],
    ticket: u64,
    done: bool,
}

impl<'a> Reading<'a> {
    /// Removes the read's entry (if it is still this read's) and wakes those waiting for
    /// it; returns the lock, and the changes written during the read.
    fn end(&mut self) -> (MutexGuard<'a, Lines>, Option<LineChanges>) {
        self.done = true;
        let mut lines = self.places.lock();
        let ours =
            matches!(lines.get(self.queue), Some(Entry::Reading { ticket, .. }) if *ticket == self.ticket);
        let meanwhile = match ours.then(|| lines.remove(self.queue)).flatten() {
            Some(Entry::Reading { meanwhile, .. }) => Some(meanwhile),
            _ => None,
        };
        self.places.read_done.notify_all();
        (lines, meanwhile)
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if !self.done {
            drop(self.end());
        }
    }
}

fn change(line: &mut Line, suffix: &[u8], set: bool) {
    if set {
        line.insert(suffix.to_vec());
    } else {
        line.remove(suffix);
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

    #[test]
    fn changes_written_during_a_read_are_applied_to_it() {
        let places = Places::default();
        let read = || {
            // The writer is not held up by the read (the lock is free), and what it writes
            // meanwhile reaches the line: "b" removed (the read saw it), "c" added (it did not).
            places.written(&[(waiting_key("support", "b"), false), (waiting_key("support", "c"), true)]);
            stored(&["a", "b"])
        };
        assert_eq!(places.position("support", b"c", read), Ok(Some(2)));
        let read_again = || -> Result<Vec<Vec<u8>>, ()> { panic!("the line is read once") };
        assert_eq!(places.position("support", b"b", read_again), Ok(None));
        assert_eq!(places.position("support", b"a", read_again), Ok(Some(1)));
    }

    #[test]
    fn a_read_begun_before_a_clear_is_not_kept() {
        let places = Places::default();
        let read = || {
            places.clear();
            stored(&["a", "b"])
        };
        assert_eq!(places.position("support", b"b", read), Ok(Some(2)), "answered from the read");
        assert_eq!(places.position("support", b"b", || stored(&["b"])), Ok(Some(1)), "read again");
    }

    #[test]
    fn a_read_that_panics_leaves_nobody_waiting() {
        let places = Places::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            places.position("support", b"a", || -> Result<Vec<Vec<u8>>, ()> { panic!("read failed") })
        }));
        assert!(panicked.is_err());
        assert_eq!(places.position("support", b"a", || stored(&["a"])), Ok(Some(1)));
    }

    #[test]
    fn others_asking_during_a_read_wait_for_it_or_go_on() {
        let places = Places::default();
        let (started, read_started) = std::sync::mpsc::channel();
        let (finish, read_may_finish) = std::sync::mpsc::channel::<()>();
        let places = &places;
        std::thread::scope(|scope| {
            let first = scope.spawn(move || {
                places.position("support", b"b", || {
                    started.send(()).unwrap();
                    read_may_finish.recv().unwrap();
                    stored(&["a", "b"])
                })
            });
            read_started.recv().unwrap();
            // Another queue is answered while the first read is under way.
            assert_eq!(places.position("billing", b"x", || stored(&["x"])), Ok(Some(1)));
            // The same queue waits for the read under way instead of reading again.
            let second = scope.spawn(|| {
                places.position("support", b"a", || -> Result<Vec<Vec<u8>>, ()> { panic!("read twice") })
            });
            // Most likely the second question is waiting by now; if not, it finds the line
            // read, and the test still holds.
            std::thread::sleep(std::time::Duration::from_millis(50));
            finish.send(()).unwrap();
            assert_eq!(first.join().unwrap(), Ok(Some(2)));
            assert_eq!(second.join().unwrap(), Ok(Some(1)));
        });
    }
}
