//! Projections: customers, the identity index, conversations, per-customer timelines and
//! per-conversation messages, in one sled tree. They are a pure function of the decision
//! events in the log ([`crate::pipeline::effects`]); [`unit::Unit`] applies decisions and
//! writes them, with the pipeline's cursor, as one batch that is all or nothing across a
//! crash ([`journal`]), so after a crash the views are exactly "the log up to the cursor".
//! `seam replay --rebuild` recomputes them.
//!
//! Keys (components separated by a zero byte, offsets big-endian so they sort):
//! `c id` customer · `i kind:value` home customer of an identity · `v id` conversation ·
//! `t customer offset` a timeline chunk: [`CHUNK_ENTRIES`] entries starting at that offset ·
//! `s status queue conversation` (queue empty when none), `a agent conversation`
//! conversation indexes · `l agent conversation` an agent's live (unresolved) assignments,
//! `w queue place conversation` conversations waiting in a queue, in line order ([`lines`]) ·
//! `r offset` outcome of an API command ·
//! `o`, `d`, `x`, `p`, `y` outbound messages and their indexes ([`outbound`]) ·
//! `g id` agent, `h id` queue ([`team`]) · `z version` routing policy ([`policy`]) ·
//! `_cursor` the last input decided · `_format` the layout version ([`FORMAT`]).
//!
//! Timelines are chunked because a key per event was the views' largest cost: sled splits
//! its leaves every 16 keys, so random per-customer keys meant node splits and copies on
//! nearly every message, and millions of pages held in memory. A customer's newest entries
//! ride in its record ([`records::CustomerRecord::recent`]), which is rewritten on each of
//! its messages anyway; every [`CHUNK_ENTRIES`] they move to one chunk key. A conversation's
//! messages are its entries in the timelines it lists, between its first and last offsets.

pub mod held;
mod journal;
mod lines;
pub mod outbound;
mod places;
pub mod policy;
pub mod records;
pub mod team;
pub mod unit;
pub mod whatif;

use records::{Conversation, CustomerRecord, CustomerView, Entry, Status};

/// Why a view could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The storage engine failed.
    #[error("views storage: {0}")]
    Storage(#[from] sled::Error),
    /// A stored record could not be decoded.
    #[error("views record {key} is corrupt: {reason}")]
    Corrupt {
        /// Which key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl ViewError {
    /// The recent timeline entries in customer `customer`'s record could not be decoded.
    pub(crate) fn corrupt_recent(customer: &str, e: rmp_serde::decode::Error) -> Self {
        ViewError::Corrupt { key: format!("c/{customer}"), reason: format!("recent entries: {e}") }
    }
}

pub(crate) fn key(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(tag);
    for part in parts {
        k.push(0);
        k.extend_from_slice(part);
    }
    k
}

const CURSOR: &[u8] = b"_cursor";
const FORMAT_KEY: &[u8] = b"_format";

/// Version of the views' layout. Views are derived data: views of another version are
/// rebuilt from the log at start, not migrated.
pub const FORMAT: u32 = 9;

/// Timeline entries per chunk.
pub const CHUNK_ENTRIES: usize = 16;

pub(crate) fn chunk_key(customer: &str, first: u64) -> Vec<u8> {
    key(b't', &[customer.as_bytes(), &first.to_be_bytes()])
}

/// The key that lists conversation `c` by status and queue. One key for both: each new
/// key costs sled a leaf split every ~8 keys. Before views layout 9 a conversation had a
/// status key and a `q queue conversation` key; one key for both measured ~6% less pipeline
/// CPU per input (docs/benchmarks.md, "One listing key per conversation").
pub(crate) fn listing_key(c: &Conversation) -> Vec<u8> {
    let queue = c.queue.as_deref().unwrap_or_default();
    key(b's', &[c.status.as_str().as_bytes(), queue.as_bytes(), c.id.as_bytes()])
}

/// A raw key and value of the views tree.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Changes to the views, in the order they were made (a key's last change wins), from
/// [`unit::Unit::take_batch`]: written all or nothing by the processor ([`Views::apply`]), or
/// key by key by a rebuild ([`Views::write_each`]).
#[derive(Debug, Default)]
pub struct Changes(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl Changes {
    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.push((key.into(), Some(value.into())));
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.0.push((key.into(), None));
    }

    /// The changes to write: one per key (its last), in an order meant for readers who
    /// look while they are written key by key (see [`Views::apply`]): timeline chunks
    /// first, then conversations, then customers (which point at both), then the indexes
    /// and everything else, and the cursor last, so that whoever waits for the cursor sees
    /// the whole batch.
    fn in_write_order(self) -> Vec<journal::Change> {
        fn rank(key: &[u8]) -> u8 {
            match key.first() {
                _ if key == CURSOR => 4,
                Some(b't') => 0,
                Some(b'v') => 1,
                Some(b'c') => 2,
                _ => 3,
            }
        }
        let mut changes = self.0;
        // Stable: a key's changes stay in the order made; each run keeps its last.
        changes.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
        changes.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        changes
    }

    /// Its changes to waiting lines, for [`places::Places::written`].
    fn waiting(&self) -> Vec<places::WaitingChange> {
        let waiting = self.0.iter().filter(|(k, _)| places::is_waiting_key(k));
        waiting.map(|(k, v)| (k.clone(), v.is_some())).collect()
    }
}

/// The views store. Clones share the store and the waiting lines read from it: open one per
/// process and clone it (see [`places`]).
#[derive(Clone)]
pub struct Views {
    db: sled::Db,
    tree: sled::Tree,
    journal: journal::Journal,
    places: std::sync::Arc<places::Places>,
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, ViewError> {
    records::decode(bytes).map_err(|e| ViewError::Corrupt {
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        reason: e.to_string(),
    })
}

/// Which conversations to list.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this assignee.
    pub assignee: Option<String>,
    /// Continue after this conversation id.
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// Sort order of a timeline page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

impl Views {
    /// Opens tree `name` of `db`, and finishes writing the batch a crash interrupted, if
    /// any. A damaged journal marks the views for a rebuild ([`Views::format`] is then 1).
    pub fn open(db: &sled::Db, name: &str) -> Result<Self, ViewError> {
        let tree = db.open_tree(name)?;
        let journal = journal::Journal::open(db, name)?;
        match journal.recover(&tree) {
            Ok(0) => {}
            Ok(n) => tracing::info!(tree = name, changes = n, "views: wrote the batch a stop interrupted"),
            Err(e) => {
                tracing::warn!(tree = name, error = %e, "views: the journal is damaged; they will be rebuilt");
                journal.clear()?;
                tree.insert(FORMAT_KEY, &1u32.to_be_bytes())?;
            }
        }
        Ok(Views { db: db.clone(), tree, journal, places: Default::default() })
    }

    /// This store, emptied (before a rebuild). If this is its only handle, the tree is
    /// dropped and created anew, which frees its pages in one go: removing key by key, as
    /// [`Views::clear`] does and as this falls back to while clones exist, costs ~1 µs per
    /// key, over a second for the views of 100,000 customers.
    pub fn emptied(self) -> Result<Views, ViewError> {
        // Every clone of the store (a unit of work holds one too) shares `places`.
        if std::sync::Arc::strong_count(&self.places) > 1 {
            self.clear()?;
            return Ok(self);
        }
        let Views { db, tree, journal, places } = self;
        let name = tree.name();
        // sled invalidates the handles of a dropped tree: this was the last one.
        drop(tree);
        db.drop_tree(&name)?;
        journal.clear()?;
        places.clear();
        Ok(Views { tree: db.open_tree(&name)?, db, journal, places })
    }

    /// The underlying tree (for the unit of work and rebuilds).
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Writes `changes` all or nothing across a crash: journalled first ([`journal`]), then
    /// key by key, the cursor last. Readers may see part of a batch while it is written (in
    /// an order that keeps what a record points at written before the record), but not
    /// after a restart. Not one `sled::Batch`: sled holds every other reader and writer in
    /// the process while it writes one.
    pub fn apply(&self, changes: Changes) -> Result<(), ViewError> {
        let waiting = changes.waiting();
        let changes = changes.in_write_order();
        self.journal.commit(&changes)?;
        let written = journal::write_keys(&self.tree, changes);
        if let Err(e) = written {
            // Some of the changes are stored, some not: read the lines again when asked.
            // The journal still holds the batch, for the next start.
            self.places.clear();
            return Err(e);
        }
        self.journal.done()?;
        self.places.written(&waiting);
        Ok(())
    }

    /// Writes records a rebuild held back ([`unit::Unit::release_held`]), one key at a time
    /// as [`Views::write_each`] does, in key order, the two halves on two threads: nothing
    /// else runs while a rebuild writes them at its end.
    pub fn write_held(&self, records: held::HeldRecords) -> Result<(), ViewError> {
        let mut sorted: Vec<(Vec<u8>, Vec<u8>)> = records.into_iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let second = sorted.split_off(sorted.len() / 2);
        let write = |half: Vec<(Vec<u8>, Vec<u8>)>| {
            half.into_iter().try_for_each(|(key, value)| self.tree.insert(key, value).map(drop))
        };
        let (first, second) = std::thread::scope(|scope| {
            let other = scope.spawn(|| write(second));
            let first = write(sorted);
            // A panic in the other thread is a bug in sled; report it as a failed write.
            (
                first,
                other
                    .join()
                    .unwrap_or_else(|_| Err(sled::Error::ReportableBug("views writer panicked".into()))),
            )
        });
        first.and(second)?;
        Ok(())
    }

    /// Writes `changes` one key at a time, not atomically, without holding readers back:
    /// for a rebuild, which records the layout version only once it is complete.
    pub fn write_each(&self, changes: Changes) -> Result<(), ViewError> {
        let waiting = changes.waiting();
        let written = journal::write_keys(&self.tree, changes.0);
        if written.is_err() {
            // Some of the changes are stored, some not: read the lines again when asked.
            self.places.clear();
        } else {
            self.places.written(&waiting);
        }
        written
    }

    /// Every key and value (to compare views, e.g. live against rebuilt).
    pub fn dump(&self) -> Result<Vec<KeyValue>, ViewError> {
        let mut all = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            all.push((k.to_vec(), v.to_vec()));
        }
        Ok(all)
    }

    /// Deletes every view (before a rebuild).
    pub fn clear(&self) -> Result<(), ViewError> {
        self.tree.clear()?;
        self.journal.clear()?;
        self.places.clear();
        Ok(())
    }

    /// The layout version of the stored views: [`FORMAT`], 0 when empty, 1 for views
    /// written before the version was recorded.
    pub fn format(&self) -> Result<u32, ViewError> {
        if let Some(v) = self.tree.get(FORMAT_KEY)? {
            return Ok(<[u8; 4]>::try_from(v.as_ref()).map(u32::from_be_bytes).unwrap_or(1));
        }
        Ok(if self.tree.get(CURSOR)?.is_some() { 1 } else { 0 })
    }

    /// Records the layout version of the stored views (normally [`FORMAT`]).
    pub fn set_format(&self, format: u32) -> Result<(), ViewError> {
        self.tree.insert(FORMAT_KEY, &format.to_be_bytes())?;
        Ok(())
    }

    /// The offset of the last input decided and applied.
    pub fn cursor(&self) -> Result<u64, ViewError> {
        Ok(self
            .tree
            .get(CURSOR)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// The last `limit` records of a versioned kind (keys `tag 0 <big-endian version>`),
    /// newest first.
    pub(crate) fn newest<T: serde::de::DeserializeOwned>(
        &self,
        tag: u8,
        limit: usize,
    ) -> Result<Vec<T>, ViewError> {
        self.tree
            .scan_prefix([tag, 0])
            .rev()
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                decode(&k, &v)
            })
            .collect()
    }

    pub(crate) fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ViewError> {
        match self.tree.get(key)? {
            Some(bytes) => Ok(Some(decode(key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// A customer's own record (not following merges).
    pub fn customer_record(&self, id: &str) -> Result<Option<CustomerRecord>, ViewError> {
        self.get(&key(b'c', &[id.as_bytes()]))
    }

    /// The home customer of a normalized identity.
    pub fn identity_home(&self, identity: &str) -> Result<Option<String>, ViewError> {
        Ok(self
            .tree
            .get(key(b'i', &[identity.as_bytes()]))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The customer `id` is shown as: itself, or the customer it was merged into.
    pub fn owner(&self, id: &str) -> Result<Option<CustomerRecord>, ViewError> {
        let Some(record) = self.customer_record(id)? else { return Ok(None) };
        match &record.merged_into {
            Some(into) => self.customer_record(into),
            None => Ok(Some(record)),
        }
    }

    /// A conversation as stored.
    pub fn conversation_record(&self, id: &str) -> Result<Option<Conversation>, ViewError> {
        self.get(&key(b'v', &[id.as_bytes()]))
    }

    /// A conversation as served: its customer is the surviving one.
    pub fn conversation(&self, id: &str) -> Result<Option<Conversation>, ViewError> {
        let Some(mut conversation) = self.conversation_record(id)? else { return Ok(None) };
        if let Some(owner) = self.owner(&conversation.customer)? {
            conversation.customer = owner.id;
        }
        Ok(Some(conversation))
    }

    /// The unified view of customer `id` (following a merge to the surviving customer).
    pub fn customer(&self, id: &str) -> Result<Option<CustomerView>, ViewError> {
        let Some(owner) = self.owner(id)? else { return Ok(None) };
        let mut members = Vec::with_capacity(owner.absorbed.len());
        for member in &owner.absorbed {
            if let Some(record) = self.customer_record(member)? {
                members.push(record);
            }
        }
        let open = match &owner.open_conversation {
            Some(c) => self.conversation(c)?,
            None => None,
        };
        Ok(Some(CustomerView::build(&owner, &members, open)))
    }

    /// The unified view of the customer holding a normalized identity.
    pub fn customer_by_identity(&self, identity: &str) -> Result<Option<CustomerView>, ViewError> {
        match self.identity_home(identity)? {
            Some(home) => self.customer(&home),
            None => Ok(None),
        }
    }

    /// A page of the timeline of customer `id` (and of the customers merged into it): at
    /// most `limit` entries after (or, newest first, before) offset `cursor`.
    pub fn timeline(
        &self,
        id: &str,
        cursor: Option<u64>,
        limit: usize,
        order: Order,
    ) -> Result<Option<Vec<Entry>>, ViewError> {
        let Some(owner) = self.owner(id)? else { return Ok(None) };
        let Some((lo, hi)) = bounds(cursor, order) else { return Ok(Some(Vec::new())) };
        let mut all = self.entries(&owner, lo, hi, limit, order, &|_| true)?;
        for member in &owner.absorbed {
            if let Some(record) = self.customer_record(member)? {
                all.extend(self.entries(&record, lo, hi, limit, order, &|_| true)?);
            }
        }
        sort_page(&mut all, limit, order);
        Ok(Some(all))
    }

    /// A page of the messages (and other events) of a conversation.
    pub fn messages(
        &self,
        conversation: &str,
        cursor: Option<u64>,
        limit: usize,
        order: Order,
    ) -> Result<Vec<Entry>, ViewError> {
        let Some(c) = self.conversation_record(conversation)? else { return Ok(Vec::new()) };
        let (Some(first), Some(last)) = (c.first_offset, c.last_offset) else { return Ok(Vec::new()) };
        let Some((lo, hi)) = bounds(cursor, order) else { return Ok(Vec::new()) };
        let (lo, hi) = (lo.max(first), hi.min(last));
        if lo > hi {
            return Ok(Vec::new());
        }
        let ours = |e: &Entry| e.conversation.as_deref() == Some(conversation);
        let mut all = Vec::new();
        for id in &c.timelines {
            if let Some(record) = self.customer_record(id)? {
                all.extend(self.entries(&record, lo, hi, limit, order, &ours)?);
            }
        }
        sort_page(&mut all, limit, order);
        Ok(all)
    }

    /// At most `limit` entries of one customer's own timeline with offsets in `lo..=hi`
    /// that `keep` accepts, in `order`: its recent entries and then its chunks, newest
    /// first, or the other way round.
    fn entries(
        &self,
        record: &CustomerRecord,
        lo: u64,
        hi: u64,
        limit: usize,
        order: Order,
        keep: &dyn Fn(&Entry) -> bool,
    ) -> Result<Vec<Entry>, ViewError> {
        let mut out = Vec::with_capacity(limit.min(256));
        let wanted = |e: &Entry| e.offset >= lo && e.offset <= hi && keep(e);
        let recent = record.recent.entries().map_err(|e| ViewError::corrupt_recent(&record.id, e))?;
        let first_chunk = chunk_key(&record.id, 0);
        let last_chunk = chunk_key(&record.id, hi);
        match order {
            Order::Desc => {
                for e in recent.into_iter().rev().filter(|e| wanted(e)) {
                    out.push(e);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
                for item in self.tree.range(first_chunk..=last_chunk).rev() {
                    let (k, v) = item?;
                    let chunk: Vec<Entry> = decode(&k, &v)?;
                    for e in chunk.into_iter().rev() {
                        if e.offset < lo {
                            return Ok(out);
                        }
                        if wanted(&e) {
                            out.push(e);
                            if out.len() >= limit {
                                return Ok(out);
                            }
                        }
                    }
                }
            }
            Order::Asc => {
                // The chunk holding `lo` is the last one starting at or before it.
                let start = self
                    .tree
                    .range(first_chunk.clone()..=chunk_key(&record.id, lo))
                    .next_back()
                    .transpose()?
                    .map_or(first_chunk, |(k, _)| k.to_vec());
                let chunks = self.tree.range(start..=last_chunk);
                let mut stored = Vec::new();
                for item in chunks {
                    let (k, v) = item?;
                    let chunk: Vec<Entry> = decode(&k, &v)?;
                    stored.extend(chunk.into_iter().filter(|e| wanted(e)));
                    if stored.len() >= limit {
                        break;
                    }
                }
                let recent = recent.into_iter().filter(|e| wanted(e));
                out.extend(stored.into_iter().chain(recent).take(limit));
            }
        }
        Ok(out)
    }

    /// The key suffixes (see [`lines::suffix`]) under `owner` in index `tag` (`l` or `w`),
    /// in key order: a waiting line first in line first.
    pub(crate) fn index_suffixes(&self, tag: u8, owner: &str) -> Result<Vec<Vec<u8>>, ViewError> {
        let prefix = key(tag, &[owner.as_bytes(), b""]);
        self.tree
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, _) = item?;
                Ok(k[prefix.len()..].to_vec())
            })
            .collect()
    }

    /// The distinct owners (first key part) in index `tag`, e.g. every queue something
    /// waits in: one seek per owner, not a scan of the whole index.
    pub(crate) fn index_owners(&self, tag: u8) -> Result<Vec<String>, ViewError> {
        let mut owners = Vec::new();
        let mut from = vec![tag, 0];
        while let Some(item) = self.tree.range(from.clone()..).next() {
            let (k, _) = item?;
            let Some((owner, _)) = lines::split_key(tag, &k) else { break };
            owners.push(String::from_utf8_lossy(owner).into_owned());
            // Past every key of this owner: `owner` then a byte above the 0 separator.
            from = key(tag, &[owner]);
            from.push(1);
        }
        Ok(owners)
    }

    /// The conversations waiting in `queue`, first in line first.
    pub fn waiting_in(&self, queue: &str) -> Result<Vec<Conversation>, ViewError> {
        let mut out = Vec::new();
        for suffix in self.index_suffixes(lines::WAITING, queue)? {
            if let Some(c) = self.conversation_record(&lines::id_of(lines::WAITING, &suffix))? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Conversation `c`'s place in its queue's line (1 for the first), if it waits: counted
    /// in the line kept in memory ([`places`]), read from the store once per queue.
    pub fn queue_position(&self, c: &Conversation) -> Result<Option<usize>, ViewError> {
        let Some(queue) = c.queue.as_deref().filter(|_| c.is_waiting()) else { return Ok(None) };
        let own = lines::suffix(lines::WAITING, c);
        self.places.position(queue, &own, || self.index_suffixes(lines::WAITING, queue))
    }

    /// Conversations matching `filter`, by id (which sorts by opening time).
    pub fn conversations(&self, filter: &ConversationFilter) -> Result<Vec<Conversation>, ViewError> {
        if filter.assignee.is_none() && (filter.status.is_some() || filter.queue.is_some()) {
            return self.listed(filter);
        }
        // Scan the most selective index given; check the other conditions on the record.
        let (tag, value): (u8, Option<&str>) = match &filter.assignee {
            Some(a) => (b'a', Some(a)),
            None => (b'v', None),
        };
        let prefix = match value {
            Some(v) => key(tag, &[v.as_bytes(), b""]),
            None => key(tag, &[b""]),
        };
        let start = match &filter.after {
            Some(after) => {
                let mut s = prefix.clone();
                s.extend_from_slice(after.as_bytes());
                s.push(0);
                s
            }
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for item in self.tree.range(start..) {
            let (k, _) = item?;
            let Some(id) = k.strip_prefix(prefix.as_slice()) else { break };
            let id = String::from_utf8_lossy(id).into_owned();
            let Some(c) = self.conversation(&id)? else { continue };
            let matches = filter.status.is_none_or(|s| c.status == s)
                && filter.queue.as_ref().is_none_or(|q| c.queue.as_ref() == Some(q))
                && filter.assignee.as_ref().is_none_or(|a| c.assignee.as_ref() == Some(a));
            if matches {
                out.push(c);
                if out.len() >= filter.limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// [`Views::conversations`] by status and / or queue, from the listing keys
    /// ([`listing_key`]). Each `status queue` pair is one run of keys in id order: the first
    /// `limit` ids after the cursor of every run that matches, merged, are the page.
    fn listed(&self, filter: &ConversationFilter) -> Result<Vec<Conversation>, ViewError> {
        let statuses = match filter.status {
            Some(s) => vec![s],
            None => Status::ALL.to_vec(),
        };
        let mut runs = Vec::new();
        for status in statuses {
            match &filter.queue {
                Some(q) => runs.push(key(b's', &[status.as_str().as_bytes(), q.as_bytes(), b""])),
                None => runs.extend(self.listing_runs(status)?),
            }
        }
        let mut ids = Vec::new();
        for run in runs {
            let mut start = run.clone();
            if let Some(after) = &filter.after {
                start.extend_from_slice(after.as_bytes());
                start.push(0);
            }
            for item in self.tree.range(start..).take(filter.limit) {
                let (k, _) = item?;
                let Some(id) = k.strip_prefix(run.as_slice()) else { break };
                ids.push(String::from_utf8_lossy(id).into_owned());
            }
        }
        ids.sort_unstable();
        ids.truncate(filter.limit);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // A key written before its record (a batch is written key by key) is skipped.
            let Some(c) = self.conversation(&id)? else { continue };
            let matches = filter.status.is_none_or(|s| c.status == s)
                && filter.queue.as_ref().is_none_or(|q| c.queue.as_ref() == Some(q));
            if matches {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The prefix of every `status queue` run of listing keys with `status`: one seek per
    /// queue, not a scan of the conversations.
    fn listing_runs(&self, status: Status) -> Result<Vec<Vec<u8>>, ViewError> {
        let base = key(b's', &[status.as_str().as_bytes(), b""]);
        let mut runs = Vec::new();
        let mut from = base.clone();
        while let Some(item) = self.tree.range(from.clone()..).next() {
            let (k, _) = item?;
            let Some(rest) = k.strip_prefix(base.as_slice()) else { break };
            let queue = rest.split(|b| *b == 0).next().unwrap_or_default();
            let mut run = base.clone();
            run.extend_from_slice(queue);
            run.push(0);
            // Past every key of this queue: its name then a byte above the 0 separator.
            from = run.clone();
            from.pop();
            from.push(1);
            runs.push(run);
        }
        Ok(runs)
    }

    /// The outcome of the API command at `offset`: `Some(Ok(()))` applied,
    /// `Some(Err(reason))` refused, `None` not decided yet.
    pub fn command_outcome(&self, offset: u64) -> Result<Option<Result<(), String>>, ViewError> {
        let k = key(b'r', &[&offset.to_be_bytes()]);
        let outcome: Option<Option<String>> = self.get(&k)?;
        Ok(outcome.map(|o| match o {
            None => Ok(()),
            Some(reason) => Err(reason),
        }))
    }
}

/// The conversation id in a waiting place from [`unit::Unit::waiting_places`].
pub fn waiting_id(place: &[u8]) -> String {
    lines::id_of(lines::WAITING, place)
}

/// The offsets a page after (ascending) or before (descending) `cursor` may hold, or
/// `None` if there are none.
fn bounds(cursor: Option<u64>, order: Order) -> Option<(u64, u64)> {
    match (order, cursor) {
        (Order::Asc, Some(c)) => Some((c.checked_add(1)?, u64::MAX)),
        (Order::Desc, Some(c)) => Some((0, c.checked_sub(1)?)),
        (_, None) => Some((0, u64::MAX)),
    }
}

fn sort_page(entries: &mut Vec<Entry>, limit: usize, order: Order) {
    match order {
        Order::Asc => entries.sort_by_key(|e| e.offset),
        Order::Desc => entries.sort_by_key(|e| std::cmp::Reverse(e.offset)),
    }
    entries.dedup_by_key(|e| e.offset);
    entries.truncate(limit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(views: &Views) {
        let mut changes = Changes::default();
        changes.insert(b"c\0cus_1".to_vec(), b"record".to_vec());
        views.apply(changes).unwrap();
        views.set_format(FORMAT).unwrap();
    }

    #[test]
    fn emptied_drops_a_tree_no_one_else_holds_and_clears_a_shared_one() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let views = Views::open(&db, "views").unwrap();
        written(&views);
        let shared = views.clone();
        let views = views.emptied().unwrap();
        assert!(shared.dump().unwrap().is_empty(), "a clone sees the store emptied");
        drop(shared);
        written(&views);
        let views = views.emptied().unwrap();
        assert!(views.dump().unwrap().is_empty());
        assert_eq!(views.format().unwrap(), 0);
        // The new tree is the one the database has under that name.
        written(&views);
        assert_eq!(Views::open(&db, "views").unwrap().dump().unwrap().len(), 2);
    }
}

#[cfg(test)]
mod apply_tests {
    use super::*;

    fn batch() -> Changes {
        let mut changes = Changes::default();
        changes.insert(CURSOR.to_vec(), 7u64.to_be_bytes().to_vec());
        changes.insert(b"c\0cus_1".to_vec(), b"old".to_vec());
        changes.insert(b"s\0open\0cnv_1".to_vec(), Vec::new());
        changes.insert(b"v\0cnv_1".to_vec(), b"conversation".to_vec());
        changes.insert(b"t\0cus_1\0chunk".to_vec(), b"entries".to_vec());
        changes.remove(b"s\0open\0cnv_1".to_vec());
        changes.insert(b"c\0cus_1".to_vec(), b"new".to_vec());
        changes
    }

    #[test]
    fn a_batch_is_written_once_per_key_its_last_change_and_the_cursor_last() {
        let order: Vec<_> = batch().in_write_order().into_iter().collect();
        let keys: Vec<&[u8]> = order.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [&b"t\0cus_1\0chunk"[..], b"v\0cnv_1", b"c\0cus_1", b"s\0open\0cnv_1", CURSOR]);
        assert_eq!(order[2].1.as_deref(), Some(&b"new"[..]));
        assert_eq!(order[3].1, None);
    }

    #[test]
    fn a_batch_cut_off_by_a_stop_is_finished_when_the_views_open_again() {
        let dir = std::env::temp_dir().join(format!("seam-views-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let db = sled::open(&dir).unwrap();
            let views = Views::open(&db, "views").unwrap();
            views.tree.insert(b"s\0open\0cnv_1", b"").unwrap();
            // The process stops after the journal and the first key of the batch.
            let changes = batch().in_write_order();
            views.journal.commit(&changes).unwrap();
            views.tree.insert(&changes[0].0, changes[0].1.clone().unwrap()).unwrap();
            db.flush().unwrap();
        }
        let db = sled::open(&dir).unwrap();
        let views = Views::open(&db, "views").unwrap();
        assert_eq!(views.cursor().unwrap(), 7);
        let dump = views.dump().unwrap();
        let keys: Vec<&[u8]> = dump.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [CURSOR, b"c\0cus_1", b"t\0cus_1\0chunk", b"v\0cnv_1"]);
        // Finished once: opening again writes nothing.
        views.tree.insert(CURSOR, &9u64.to_be_bytes()).unwrap();
        drop(views);
        assert_eq!(Views::open(&db, "views").unwrap().cursor().unwrap(), 9);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_journal_marks_the_views_for_a_rebuild() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let views = Views::open(&db, "views").unwrap();
        views.set_format(FORMAT).unwrap();
        views.journal.commit(&batch().in_write_order()).unwrap();
        db.open_tree("views-journal").unwrap().insert(b"h", &b"short"[..]).unwrap();
        drop(views);
        let views = Views::open(&db, "views").unwrap();
        assert_eq!(views.format().unwrap(), 1);
        assert_eq!(views.cursor().unwrap(), 0, "nothing of the damaged batch is written");
    }
}
