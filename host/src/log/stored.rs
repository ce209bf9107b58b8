//! How [`super::SledLog`] lays events out in its sled tree.
//!
//! - `e` + offset (big-endian, so keys sort by offset) -> an **entry**: a group of events at
//!   consecutive offsets starting there. A group is the byte [`GROUP`], then for each event
//!   its length (`u32`, big-endian) and its stored form. Logs written before groups hold one
//!   bare stored event per entry; both are read.
//! - `k` + dedup key -> the offset of the event that carries it.
//!
//! A **stored event** is one byte of [`Origin`] (so a reader can skip the other origin
//! without parsing), the JSON envelope, and, for an event with a dedup key, that key followed
//! by its length (`u32`, big-endian) and the byte [`KEYED`], so the dedup index can be
//! repaired from the events themselves.
//!
//! Why groups: sled's cost is mostly per key (a tree descent, a copy of the leaf, a log
//! record), not per byte, and the log wrote two keys per message besides its dedup key (the
//! input and its decision). Groups stay small ([`GROUP_BYTES`]) because sled splits a leaf
//! only past 16 keys and writes a page over 128 KiB as a blob file of its own.

use super::{Envelope, LogError, Offset, Origin};

const EVENT_PREFIX: u8 = b'e';
const KEY_PREFIX: u8 = b'k';
/// Last byte of a stored event that carries its dedup key (an envelope ends in `}`).
pub(super) const KEYED: u8 = 0xFF;
/// First byte of a group (a bare stored event starts with its origin, `i` or `d`).
pub(super) const GROUP: u8 = b'G';
/// A group is closed before it grows past this many bytes (an event larger than that is a
/// group of its own): 17 full groups, the most a leaf holds, stay under sled's 128 KiB.
pub(super) const GROUP_BYTES: usize = 6 * 1024;

/// The tree key of the entry starting at `offset`.
pub(super) fn event_key(offset: Offset) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = EVENT_PREFIX;
    key[1..].copy_from_slice(&offset.to_be_bytes());
    key
}

/// The first offset of the entry at tree key `key`.
pub(super) fn offset_of(key: &[u8]) -> Option<Offset> {
    let bytes: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    Some(Offset::from_be_bytes(bytes))
}

/// The tree key of a dedup key.
pub(super) fn dedup_key(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(KEY_PREFIX);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The first byte of an event of `origin`.
pub(super) fn origin_byte(origin: Origin) -> u8 {
    match origin {
        Origin::Input => b'i',
        Origin::Decision => b'd',
    }
}

/// A stored event's JSON envelope and the dedup key stored with it, if any.
pub(super) fn split(value: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let body = value.get(1..)?;
    let Some((&KEYED, rest)) = body.split_last() else { return Some((body, None)) };
    let at = rest.len().checked_sub(4)?;
    let len = u32::from_be_bytes(rest.get(at..)?.try_into().ok()?) as usize;
    let json_len = at.checked_sub(len)?;
    Some((rest.get(..json_len)?, Some(rest.get(json_len..at)?)))
}

/// Appends the stored form of an event to `out`.
pub(super) fn store(
    out: &mut Vec<u8>,
    origin: Origin,
    envelope: &Envelope,
    key: Option<&[u8]>,
) -> Result<(), LogError> {
    out.push(origin_byte(origin));
    serde_json::to_writer(&mut *out, envelope)
        .map_err(|e| LogError::Corrupt { offset: envelope.offset, reason: e.to_string() })?;
    if let Some(key) = key {
        out.extend_from_slice(key);
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.push(KEYED);
    }
    Ok(())
}

/// Decodes a stored event.
pub(super) fn decode(offset: Offset, value: &[u8]) -> Result<Envelope, LogError> {
    let corrupt = |reason: String| LogError::Corrupt { offset, reason };
    let (json, _) = split(value).ok_or_else(|| corrupt("empty or truncated entry".into()))?;
    let envelope: Envelope = serde_json::from_slice(json).map_err(|e| corrupt(e.to_string()))?;
    if envelope.v > super::ENVELOPE_VERSION {
        return Err(corrupt(format!("envelope version {} is newer than this seam", envelope.v)));
    }
    Ok(envelope)
}

/// The events of the entry starting at `first`, with their offsets: a group's, or a bare
/// event. A cut-off group yields an error naming the offset where it breaks, then stops.
pub(super) fn events(first: Offset, entry: &[u8]) -> Events<'_> {
    match entry.split_first() {
        Some((&GROUP, rest)) => Events { next: first, rest, bare: false },
        _ => Events { next: first, rest: entry, bare: true },
    }
}

/// Iterator of [`events`].
pub(super) struct Events<'a> {
    next: Offset,
    rest: &'a [u8],
    bare: bool,
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<(Offset, &'a [u8]), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let offset = self.next;
        self.next += 1;
        if self.bare {
            return Some(Ok((offset, std::mem::take(&mut self.rest))));
        }
        let event = self.rest.split_at_checked(4).and_then(|(len, rest)| {
            let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
            rest.split_at_checked(len)
        });
        match event {
            Some((event, rest)) => {
                self.rest = rest;
                Some(Ok((offset, event)))
            }
            None => {
                self.rest = &[];
                Some(Err(LogError::Corrupt { offset, reason: "group cut off".into() }))
            }
        }
    }
}

/// A group being filled: events at consecutive offsets.
pub(super) struct Group {
    /// Offset of its first event.
    pub first: Offset,
    /// How many events it holds.
    pub len: u64,
    bytes: Vec<u8>,
}

impl Group {
    /// An empty group starting at `first`.
    pub fn new(first: Offset) -> Self {
        let mut bytes = Vec::with_capacity(GROUP_BYTES + 1024);
        bytes.push(GROUP);
        Group { first, len: 0, bytes }
    }

    /// Whether `event` (a stored event) at `offset` belongs in this group: the next offset,
    /// and room for it (or the group is empty).
    pub fn fits(&self, offset: Offset, event: &[u8]) -> bool {
        offset == self.first + self.len
            && (self.len == 0 || self.bytes.len() + 4 + event.len() <= GROUP_BYTES)
    }

    /// Adds the stored event at the next offset.
    pub fn push(&mut self, event: &[u8]) {
        self.bytes.extend_from_slice(&(event.len() as u32).to_be_bytes());
        self.bytes.extend_from_slice(event);
        self.len += 1;
    }

    /// The entry's tree key and value.
    pub fn into_entry(self) -> ([u8; 9], Vec<u8>) {
        (event_key(self.first), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn envelope(offset: Offset) -> Envelope {
        Envelope {
            v: crate::log::ENVELOPE_VERSION,
            offset,
            id: "01J".into(),
            time: 1,
            kind: "message.received".into(),
            origin: Origin::Input,
            channel: Some("tg".into()),
            external_id: Some("42".into()),
            customer: None,
            conversation: None,
            payload: RawValue::from_string("{}".into()).unwrap(),
        }
    }

    fn stored(offset: Offset, key: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        store(&mut out, Origin::Input, &envelope(offset), key).unwrap();
        out
    }

    #[test]
    fn stored_events_carry_their_dedup_key_and_older_ones_still_decode() {
        let keyed = stored(7, Some(b"ktg\0x\x0042"));
        assert_eq!(split(&keyed).unwrap().1, Some(&b"ktg\0x\x0042"[..]));
        assert_eq!(decode(7, &keyed).unwrap().external_id.as_deref(), Some("42"));
        // Written before keys were stored with events: origin byte and envelope only.
        let plain = stored(7, None);
        assert_eq!(split(&plain).unwrap().1, None);
        assert_eq!(decode(7, &plain).unwrap().offset, 7);
        // A cut-off entry is an error naming the offset, not a panic.
        for broken in [&keyed[..keyed.len() - 3], &[b'i', KEYED][..], &[][..]] {
            let error = decode(7, broken).unwrap_err().to_string();
            assert!(error.contains('7'), "{error}");
        }
    }

    #[test]
    fn groups_hold_consecutive_events_up_to_their_size_and_bare_entries_still_read() {
        let mut group = Group::new(10);
        let event = stored(10, Some(b"kx"));
        let mut offset = 10;
        while group.fits(offset, &event) {
            group.push(&event);
            offset += 1;
        }
        assert!(group.len > 1, "{}", group.len);
        assert!(!group.fits(offset + 1, &[]), "a gap in offsets starts another group");
        let (key, value) = group.into_entry();
        assert!(value.len() <= GROUP_BYTES);
        let first = offset_of(&key).unwrap();
        let read: Vec<_> = events(first, &value).map(Result::unwrap).collect();
        assert_eq!(read.len() as u64, offset - 10);
        assert!(read.iter().enumerate().all(|(i, (o, e))| *o == 10 + i as u64 && *e == &event[..]));
        // An event larger than a group is a group of its own.
        let big = vec![b'i'; GROUP_BYTES * 2];
        assert!(Group::new(1).fits(1, &big));
        // A bare event (an older log) is an entry of one.
        let bare = stored(3, None);
        assert_eq!(events(3, &bare).map(Result::unwrap).collect::<Vec<_>>(), [(3, &bare[..])]);
        // A cut-off group names where it breaks, then ends.
        let cut: Vec<_> = events(first, &value[..value.len() - 5]).collect();
        assert!(cut[..cut.len() - 1].iter().all(Result::is_ok));
        let error = cut.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(error.contains(&(first + cut.len() as u64 - 1).to_string()), "{error}");
    }
}
