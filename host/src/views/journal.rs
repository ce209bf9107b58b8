//! A redo journal that makes a batch of view changes all-or-nothing across a crash without
//! `sled::Tree::apply_batch`.
//!
//! sled 0.34 guards every batch with one lock for the whole process
//! (`concurrency_control`): while the processor wrote a views batch of a few thousand keys,
//! no other tree of any database could be read or written, so webhooks waited on the log
//! writer, which waited on the batch; and once a batch has been applied, every later sled
//! operation takes that lock's read side. Writing key by key avoids both, but a crash
//! between two keys would leave views that are neither the log up to the old cursor nor up
//! to the new one.
//!
//! So a batch is first written, encoded, to the journal tree ([`Journal::commit`]): in
//! chunks of [`CHUNK_BYTES`] (small values stay inline in sled's pages; a single value of
//! a megabyte would go to a blob file with an fsync of its own), then one header key that
//! names the chunk count. Then the views' keys are written one by one, and the header is
//! removed ([`Journal::done`]). sled recovers a prefix of its log after a crash (it stops at
//! the first torn write), so at start ([`Journal::recover`]) either there is no header, and
//! no key of the unfinished batch was written, or there is one, and every chunk before it
//! is there to write the batch again. Writing a key twice is harmless: the batch says what
//! each key's value is, not how to change it.

use super::ViewError;

/// Bytes per journal chunk.
const CHUNK_BYTES: usize = 6 * 1024;
/// The header key: the chunk count and byte length of the committed batch.
const HEADER: &[u8] = b"h";
/// Chunk keys are this tag and the chunk's number, big-endian.
const CHUNK_TAG: u8 = b'c';

/// One change: a key and its new value, or `None` to remove it.
pub(super) type Change = (Vec<u8>, Option<Vec<u8>>);

/// The journal of one views tree.
#[derive(Clone)]
pub(super) struct Journal {
    tree: sled::Tree,
}

fn chunk_key(n: u32) -> [u8; 5] {
    let b = n.to_be_bytes();
    [CHUNK_TAG, b[0], b[1], b[2], b[3]]
}

/// Encodes changes as: key length (u32 BE), key, then 0 for a removal or 1, value length
/// (u32 BE) and value.
fn encode(changes: &[Change]) -> Vec<u8> {
    let size: usize = changes.iter().map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, Vec::len)).sum();
    let mut out = Vec::with_capacity(size);
    for (key, value) in changes {
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        match value {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                out.extend_from_slice(&(value.len() as u32).to_be_bytes());
                out.extend_from_slice(value);
            }
        }
    }
    out
}

fn corrupt(reason: impl Into<String>) -> ViewError {
    ViewError::Corrupt { key: "journal".into(), reason: reason.into() }
}

/// Decodes what [`encode`] wrote.
fn decode(mut bytes: &[u8]) -> Result<Vec<Change>, ViewError> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], ViewError> {
        if bytes.len() < n {
            return Err(corrupt(format!("truncated: {n} bytes wanted, {} left", bytes.len())));
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn length(bytes: &mut &[u8]) -> Result<usize, ViewError> {
        let b = take(bytes, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    let mut changes = Vec::new();
    while !bytes.is_empty() {
        let n = length(&mut bytes)?;
        let key = take(&mut bytes, n)?.to_vec();
        let value = match take(&mut bytes, 1)?[0] {
            0 => None,
            1 => {
                let n = length(&mut bytes)?;
                Some(take(&mut bytes, n)?.to_vec())
            }
            tag => return Err(corrupt(format!("unknown change tag {tag}"))),
        };
        changes.push((key, value));
    }
    Ok(changes)
}

/// Writes `changes` to `tree` one key at a time, in order.
pub(super) fn write_keys(tree: &sled::Tree, changes: Vec<Change>) -> Result<(), ViewError> {
    for (key, value) in changes {
        match value {
            Some(value) => tree.insert(key, value)?,
            None => tree.remove(key)?,
        };
    }
    Ok(())
}

impl Journal {
    /// The journal of views tree `name` in `db`.
    pub(super) fn open(db: &sled::Db, name: &str) -> Result<Self, ViewError> {
        Ok(Journal { tree: db.open_tree(format!("{name}-journal"))? })
    }

    /// Records `changes` as the batch being written: once this returns, a crash before
    /// [`Journal::done`] makes [`Journal::recover`] write them again.
    pub(super) fn commit(&self, changes: &[Change]) -> Result<(), ViewError> {
        let bytes = encode(changes);
        let mut count = 0u32;
        for chunk in bytes.chunks(CHUNK_BYTES) {
            self.tree.insert(chunk_key(count), chunk)?;
            count += 1;
        }
        let mut header = [0u8; 12];
        header[..4].copy_from_slice(&count.to_be_bytes());
        header[4..].copy_from_slice(&(bytes.len() as u64).to_be_bytes());
        // Chunks left over from a longer batch stay: the header says how many to read.
        self.tree.insert(HEADER, &header)?;
        Ok(())
    }

    /// The batch is written: nothing to redo.
    pub(super) fn done(&self) -> Result<(), ViewError> {
        self.tree.remove(HEADER)?;
        Ok(())
    }

    /// Writes the committed batch to `views` again, if one was being written when the
    /// process stopped. Returns how many changes were written again.
    pub(super) fn recover(&self, views: &sled::Tree) -> Result<usize, ViewError> {
        let Some(header) = self.tree.get(HEADER)? else { return Ok(0) };
        let header = <[u8; 12]>::try_from(header.as_ref())
            .map_err(|_| corrupt(format!("header of {} bytes, not 12", header.len())))?;
        let count = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let mut length = [0u8; 8];
        length.copy_from_slice(&header[4..]);
        let length = u64::from_be_bytes(length);
        let mut bytes = Vec::new();
        for n in 0..count {
            let chunk = self
                .tree
                .get(chunk_key(n))?
                .ok_or_else(|| corrupt(format!("chunk {n} of {count} is missing")))?;
            bytes.extend_from_slice(&chunk);
        }
        if bytes.len() as u64 != length {
            return Err(corrupt(format!("{} bytes in the chunks, the header says {length}", bytes.len())));
        }
        let changes = decode(&bytes)?;
        let n = changes.len();
        write_keys(views, changes)?;
        self.done()?;
        Ok(n)
    }

    /// Forgets every batch (the views are emptied or rebuilt).
    pub(super) fn clear(&self) -> Result<(), ViewError> {
        self.tree.clear()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(n: usize) -> Vec<Change> {
        (0..n)
            .map(|i| {
                let key = format!("k{i:05}").into_bytes();
                let value = (i % 3 != 0).then(|| vec![b'x'; i % 700]);
                (key, value)
            })
            .collect()
    }

    #[test]
    fn a_committed_batch_is_written_again_and_a_finished_one_is_not() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let views = db.open_tree("views").unwrap();
        let journal = Journal::open(&db, "views").unwrap();
        views.insert("k00000", "stale").unwrap();
        let batch = changes(400);
        journal.commit(&batch).unwrap();
        // Spans many chunks.
        assert!(journal.tree.len() > 10, "{} journal keys", journal.tree.len());
        // The process stopped before the keys were written.
        assert_eq!(journal.recover(&views).unwrap(), 400);
        for (key, value) in &batch {
            assert_eq!(views.get(key).unwrap().map(|v| v.to_vec()), *value, "{key:?}");
        }
        // Recovered once: the header is gone.
        views.insert("k00001", "later").unwrap();
        assert_eq!(journal.recover(&views).unwrap(), 0);
        assert_eq!(views.get("k00001").unwrap().unwrap(), "later");
        // A shorter batch after a longer one reads only its own chunks.
        let short = changes(3);
        journal.commit(&short).unwrap();
        assert_eq!(journal.recover(&views).unwrap(), 3);
        journal.commit(&short).unwrap();
        journal.done().unwrap();
        assert_eq!(journal.recover(&views).unwrap(), 0);
    }

    #[test]
    fn a_damaged_journal_is_an_error_naming_what_is_wrong() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let views = db.open_tree("views").unwrap();
        let journal = Journal::open(&db, "views").unwrap();
        journal.commit(&changes(300)).unwrap();
        journal.tree.remove(chunk_key(1)).unwrap();
        let e = journal.recover(&views).unwrap_err().to_string();
        assert!(e.contains("chunk 1 of"), "{e}");
        journal.commit(&changes(300)).unwrap();
        journal.tree.insert(chunk_key(0), &[0, 0, 0, 9, b'k'][..]).unwrap();
        let e = journal.recover(&views).unwrap_err().to_string();
        assert!(e.contains("bytes in the chunks") || e.contains("truncated"), "{e}");
        journal.clear().unwrap();
        assert_eq!(journal.recover(&views).unwrap(), 0);
    }
}
