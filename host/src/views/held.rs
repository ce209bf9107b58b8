//! Customer and conversation records a rebuild holds back from the views.
//!
//! A rebuild rewrites a customer's record and its conversation on every message, and its
//! unit of work cannot keep every record decoded (memory), so it wrote them all with every
//! batch and read them back from sled on the customer's next message: on the views
//! benchmark's log, sled inserts and gets were over half of a rebuild's CPU. Held records
//! stay in memory, encoded (several times smaller than decoded), and are written once each,
//! in key order, at the end. When they outgrow the rebuild's budget they are written then,
//! and the rest of the rebuild writes as before: records held past the budget would have
//! to be written again, and before this, each release cost as much as the writes it saved.

use super::unit::HashMap;

/// Encoded records by views key (`c id`, `v id`).
pub type HeldRecords = HashMap<Vec<u8>, Vec<u8>>;

/// Memory one held record costs besides its key and value: the table's slot and the
/// allocator's rounding, roughly.
const OVERHEAD: usize = 64;

/// The records a rebuild's unit holds back.
#[derive(Default)]
pub(crate) struct Held {
    records: HeldRecords,
    /// Memory `records` takes, roughly.
    bytes: usize,
}

impl Held {
    /// The latest encoded record under `key`, if held.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.records.get(key).map(Vec::as_slice)
    }

    /// Holds `value` as the record under `key`.
    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        let (key_len, value_len) = (key.len(), value.len());
        match self.records.insert(key, value) {
            // `bytes` counts the old value, so this cannot go below zero.
            Some(old) => self.bytes = self.bytes + value_len - old.len(),
            None => self.bytes += key_len + value_len + OVERHEAD,
        }
    }

    /// Memory the held records take, roughly, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The held records.
    pub(crate) fn into_records(self) -> HeldRecords {
        self.records
    }
}
