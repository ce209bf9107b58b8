//! [`SledLog`]: the event log in an embedded sled tree, with group commit.
//!
//! One tree holds both the events (`e` + offset, big-endian, so keys sort by offset) and
//! the dedup keys (`k` + key -> offset). Each stored event is one byte of [`Origin`] (so a
//! rebuild can skip inputs without parsing), the JSON envelope, and, for an event with a
//! dedup key, that key followed by its length (`u32`, big-endian) and the byte
//! [`KEYED`], so the dedup index can be repaired from the events themselves.
//!
//! Appends go to a single writer thread. It takes every request waiting in its queue (up to
//! a bound), writes them, fsyncs once, and only then answers each caller: many webhooks
//! share one fsync, so durability does not cost throughput. Being the only writer also
//! makes the dedup check race-free.
//!
//! The writer inserts key by key, not in one atomic `sled::Batch`: sled guards every batch
//! with one lock for the whole process, so while a batch is written no other tree of any
//! database can be read or written, and the batch waits for every fsync in progress. While
//! the log wrote, the processor could not read: under load it used half a core and fell
//! behind (docs/benchmarks.md, session 17).
//! Atomicity is not lost where it matters: sled recovers a prefix of its log after a crash
//! (it stops at the first torn write), and each event is inserted before its dedup key, so
//! a crash mid-batch leaves at most the last event without its key. [`SledLog::open`]
//! restores such keys from the tail of the log (`Writer::repair`) before appending. No
//! event of an unfinished batch was acknowledged; a retry of one is recognised as before.

use super::now_ms;
use super::{Appended, BoxFuture, Envelope, EventLog, LogError, NewEvent, Offset, Origin};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

const EVENT_PREFIX: u8 = b'e';
const KEY_PREFIX: u8 = b'k';
/// Last byte of a stored event that carries its dedup key (an envelope ends in `}`).
const KEYED: u8 = 0xFF;

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct SledLogOptions {
    /// Most events written per batch (one fsync each).
    pub max_batch_events: usize,
    /// Whether to fsync each batch. Off only in benchmarks that measure the difference.
    pub fsync: bool,
}

impl Default for SledLogOptions {
    fn default() -> Self {
        SledLogOptions { max_batch_events: 4096, fsync: true }
    }
}

struct Request {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<Appended>, LogError>>,
}

/// The sled-backed [`EventLog`].
#[derive(Clone)]
pub struct SledLog {
    inner: Arc<Inner>,
}

struct Inner {
    tree: sled::Tree,
    consumers: sled::Tree,
    head: watch::Receiver<Offset>,
    queue: Option<mpsc::Sender<Request>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    /// Closes the queue and waits for the writer to finish what it took, so that the
    /// database is released when the last handle goes.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn event_key(offset: Offset) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = EVENT_PREFIX;
    key[1..].copy_from_slice(&offset.to_be_bytes());
    key
}

fn dedup_key(key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(KEY_PREFIX);
    k.extend_from_slice(key.as_bytes());
    k
}

fn origin_byte(origin: Origin) -> u8 {
    match origin {
        Origin::Input => b'i',
        Origin::Decision => b'd',
    }
}

/// A stored event's JSON envelope and the dedup key stored with it, if any.
fn split(value: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let body = value.get(1..)?;
    let Some((&KEYED, rest)) = body.split_last() else { return Some((body, None)) };
    let at = rest.len().checked_sub(4)?;
    let len = u32::from_be_bytes(rest.get(at..)?.try_into().ok()?) as usize;
    let json_len = at.checked_sub(len)?;
    Some((rest.get(..json_len)?, Some(rest.get(json_len..at)?)))
}

/// The stored form of an event: origin byte, envelope, and its dedup key (see the module
/// docs).
fn stored(origin: Origin, envelope: &Envelope, key: Option<&[u8]>) -> Result<Vec<u8>, LogError> {
    let mut value = vec![origin_byte(origin)];
    serde_json::to_writer(&mut value, envelope)
        .map_err(|e| LogError::Corrupt { offset: envelope.offset, reason: e.to_string() })?;
    if let Some(key) = key {
        value.extend_from_slice(key);
        value.extend_from_slice(&(key.len() as u32).to_be_bytes());
        value.push(KEYED);
    }
    Ok(value)
}

fn decode(offset: Offset, value: &[u8]) -> Result<Envelope, LogError> {
    let corrupt = |reason: String| LogError::Corrupt { offset, reason };
    let (json, _) = split(value).ok_or_else(|| corrupt("empty or truncated entry".into()))?;
    let envelope: Envelope = serde_json::from_slice(json).map_err(|e| corrupt(e.to_string()))?;
    if envelope.v > super::ENVELOPE_VERSION {
        return Err(corrupt(format!("envelope version {} is newer than this seam", envelope.v)));
    }
    Ok(envelope)
}

fn offset_of(key: &[u8]) -> Option<Offset> {
    let bytes: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    Some(Offset::from_be_bytes(bytes))
}

/// The offset of the last event in `tree`, 0 if it has none.
fn last_offset(tree: &sled::Tree) -> Result<Offset, LogError> {
    let last = tree.range(event_key(0)..=event_key(Offset::MAX)).next_back().transpose()?;
    Ok(last.and_then(|(k, _)| offset_of(&k)).unwrap_or(0))
}

impl SledLog {
    /// Opens (or creates) the log in `db`, trees `log` and `log-consumers`, and starts the
    /// writer thread.
    pub fn open(db: &sled::Db, options: SledLogOptions) -> Result<Self, LogError> {
        let tree = db.open_tree("log")?;
        let consumers = db.open_tree("log-consumers")?;
        let last = last_offset(&tree)?;
        let (head_tx, head) = watch::channel(last);
        let (queue, rx) = mpsc::channel(1024);
        let writer = Writer { db: db.clone(), tree: tree.clone(), next: last + 1, head: head_tx, options };
        writer.repair()?;
        let writer = std::thread::Builder::new()
            .name("seam-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::Storage(format!("cannot start the log writer: {e}")))?;
        let inner = Inner { tree, consumers, head, queue: Some(queue), writer: Some(writer) };
        Ok(SledLog { inner: Arc::new(inner) })
    }

    fn scan(
        &self,
        after: Offset,
        limit: usize,
        origin: Option<Origin>,
    ) -> Result<(Vec<Envelope>, Offset), LogError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut last = after;
        let start = event_key(after.saturating_add(1));
        let wanted = origin.map(origin_byte);
        // Examine at most this many entries of the other origin before returning, so a
        // caller never waits on a scan of the whole log.
        let mut budget = limit.saturating_mul(64).max(4096);
        for item in self.inner.tree.range(start..=event_key(Offset::MAX)) {
            let (key, value) = item?;
            let offset = offset_of(&key).unwrap_or(last);
            last = offset;
            if wanted.is_some_and(|w| value.first() != Some(&w)) {
                budget -= 1;
                if budget == 0 {
                    break;
                }
                continue;
            }
            out.push(decode(offset, &value)?);
            if out.len() >= limit {
                break;
            }
        }
        Ok((out, last))
    }
}

impl EventLog for SledLog {
    fn append(&self, events: Vec<NewEvent>) -> BoxFuture<'_, Result<Vec<Appended>, LogError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let (reply, answer) = oneshot::channel();
            let queue = self.inner.queue.as_ref().ok_or(LogError::Closed)?;
            queue.send(Request { events, reply }).await.map_err(|_| LogError::Closed)?;
            answer.await.map_err(|_| LogError::Closed)?
        })
    }

    fn read(&self, after: Offset, limit: usize) -> Result<Vec<Envelope>, LogError> {
        Ok(self.scan(after, limit, None)?.0)
    }

    fn read_origin(
        &self,
        after: Offset,
        limit: usize,
        origin: Origin,
    ) -> Result<(Vec<Envelope>, Offset), LogError> {
        self.scan(after, limit, Some(origin))
    }

    fn get(&self, offset: Offset) -> Result<Option<Envelope>, LogError> {
        match self.inner.tree.get(event_key(offset))? {
            Some(value) => Ok(Some(decode(offset, &value)?)),
            None => Ok(None),
        }
    }

    fn head(&self) -> Offset {
        *self.inner.head.borrow()
    }

    fn subscribe(&self) -> watch::Receiver<Offset> {
        self.inner.head.clone()
    }

    fn committed(&self, name: &str) -> Result<Offset, LogError> {
        Ok(self
            .inner
            .consumers
            .get(name.as_bytes())?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(Offset::from_be_bytes)
            .unwrap_or(0))
    }

    fn commit(&self, name: &str, offset: Offset) -> Result<(), LogError> {
        self.inner.consumers.insert(name.as_bytes(), &offset.to_be_bytes())?;
        Ok(())
    }
}

/// The single writer: batches requests, dedups, writes, fsyncs, answers.
struct Writer {
    db: sled::Db,
    tree: sled::Tree,
    next: Offset,
    head: watch::Sender<Offset>,
    options: SledLogOptions,
}

/// One event being written: its key and encoded value.
struct Pending {
    offset: Offset,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.blocking_recv() {
            let mut requests = vec![first];
            let mut events = requests[0].events.len();
            while events < self.options.max_batch_events {
                match rx.try_recv() {
                    Ok(request) => {
                        events += request.events.len();
                        requests.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.write(requests);
        }
        tracing::debug!("event log writer stopped");
    }

    fn write(&mut self, requests: Vec<Request>) {
        let start = self.next;
        let mut answers: Vec<Result<Vec<Appended>, LogError>> = Vec::with_capacity(requests.len());
        // Keys written in this batch, which the tree does not show yet.
        let mut fresh: HashMap<Vec<u8>, Offset> = HashMap::new();
        let mut pending = Vec::new();
        for request in &requests {
            match self.encode(&request.events, &mut fresh) {
                Ok((events, appended)) => {
                    pending.extend(events);
                    answers.push(Ok(appended));
                }
                Err(e) => answers.push(Err(e)),
            }
        }
        // Each event before its dedup key (see the module docs).
        let result = pending
            .into_iter()
            .try_for_each(|p| {
                self.tree.insert(event_key(p.offset), p.value)?;
                if let Some(key) = p.key {
                    self.tree.insert(key, &p.offset.to_be_bytes())?;
                }
                Ok(())
            })
            .and_then(|()| {
                if self.options.fsync && self.next > start { self.db.flush().map(|_| ()) } else { Ok(()) }
            });
        match result {
            Ok(()) => {
                if self.next > start {
                    self.head.send_replace(self.next - 1);
                }
                for (request, answer) in requests.into_iter().zip(answers) {
                    let _ = request.reply.send(answer);
                }
            }
            Err(e) => {
                // Nothing of this batch is acknowledged, but part of it may be stored: go on
                // after the last stored event (offsets stay dense) and restore the dedup keys
                // of the stored events that lack them.
                tracing::error!(error = %e, "event log write failed");
                match last_offset(&self.tree) {
                    Ok(last) => self.next = last + 1,
                    // Unknown: go on after the whole batch rather than risk reusing an offset.
                    Err(e) => tracing::error!(error = %e, "cannot read the end of the event log"),
                }
                if let Err(e) = self.repair() {
                    tracing::error!(error = %e, "cannot repair the dedup keys after a failed write");
                }
                for request in requests {
                    let _ = request.reply.send(Err(LogError::Storage(e.to_string())));
                }
            }
        }
    }

    /// Restores the dedup keys of the last events, which a crash (or a failed write) may
    /// have stored without them: the tail of one batch at most, since a batch is durable
    /// before the next begins.
    fn repair(&self) -> Result<(), LogError> {
        let tail = self.tree.range(event_key(0)..=event_key(Offset::MAX)).rev();
        for item in tail.take(self.options.max_batch_events.max(1)) {
            let (key, value) = item?;
            let Some(dedup) = split(&value).and_then(|(_, key)| key) else { continue };
            let offset = offset_of(&key).unwrap_or(0);
            if self.tree.get(dedup)?.is_none() {
                tracing::warn!(offset, "restoring the dedup key of an event written before a crash");
                self.tree.insert(dedup, &offset.to_be_bytes())?;
            }
        }
        Ok(())
    }

    /// Assigns offsets to one request's events, skipping retries. A request is all or
    /// nothing: if one event cannot be encoded, none of it is written.
    fn encode(
        &mut self,
        events: &[NewEvent],
        fresh: &mut HashMap<Vec<u8>, Offset>,
    ) -> Result<(Vec<Pending>, Vec<Appended>), LogError> {
        let mut pending = Vec::with_capacity(events.len());
        let mut appended = Vec::with_capacity(events.len());
        let mut next = self.next;
        let mut local: HashMap<Vec<u8>, Offset> = HashMap::new();
        for event in events {
            let key = event.dedup_key().map(|k| dedup_key(&k));
            if let Some(k) = &key {
                let known = match local.get(k).or_else(|| fresh.get(k)) {
                    Some(o) => Some(*o),
                    None => self
                        .tree
                        .get(k)?
                        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                        .map(Offset::from_be_bytes),
                };
                if let Some(offset) = known {
                    appended.push(Appended { offset, duplicate: true });
                    continue;
                }
            }
            let offset = next;
            next += 1;
            let envelope = Envelope {
                v: super::ENVELOPE_VERSION,
                offset,
                id: ulid::Ulid::new().to_string(),
                time: now_ms(),
                kind: event.kind.clone(),
                origin: event.origin,
                channel: event.channel.clone(),
                external_id: event.external_id.clone(),
                customer: event.customer.clone(),
                conversation: event.conversation.clone(),
                payload: event.payload.clone(),
            };
            let value = stored(event.origin, &envelope, key.as_deref())?;
            if let Some(k) = &key {
                local.insert(k.clone(), offset);
            }
            pending.push(Pending { offset, key, value });
            appended.push(Appended { offset, duplicate: false });
        }
        self.next = next;
        fresh.extend(local);
        Ok((pending, appended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn event(channel: &str, external: Option<&str>, text: &str) -> NewEvent {
        let mut e = NewEvent::input(
            "message.received",
            RawValue::from_string(format!("{{\"text\":\"{text}\"}}")).unwrap(),
        );
        e.channel = Some(channel.into());
        e.external_id = external.map(str::to_owned);
        e
    }

    /// Opens the database at `dir` again. The log's writer holds it until it sees the log
    /// dropped: wait for sled's file lock rather than race it.
    async fn reopen(dir: &std::path::Path) -> sled::Db {
        for _ in 0..100 {
            match sled::Config::new().path(dir).open() {
                Ok(db) => return db,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        sled::Config::new().path(dir).open().expect("cannot reopen the log")
    }

    fn temp() -> (sled::Db, SledLog) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = SledLog::open(&db, SledLogOptions::default()).unwrap();
        (db, log)
    }

    #[tokio::test]
    async fn appends_are_dense_and_retries_append_nothing() {
        let (_db, log) = temp();
        let first = log.append(vec![event("tg", Some("1"), "a"), event("tg", Some("2"), "b")]).await.unwrap();
        assert_eq!(
            first,
            [Appended { offset: 1, duplicate: false }, Appended { offset: 2, duplicate: false }]
        );
        // The same ids again (and twice within one request), another channel with the same id,
        // and an event without an id.
        let again = log
            .append(vec![
                event("tg", Some("2"), "b"),
                event("wa", Some("2"), "c"),
                event("wa", Some("2"), "c"),
                event("tg", None, "d"),
            ])
            .await
            .unwrap();
        assert_eq!(
            again,
            [
                Appended { offset: 2, duplicate: true },
                Appended { offset: 3, duplicate: false },
                Appended { offset: 3, duplicate: true },
                Appended { offset: 4, duplicate: false },
            ]
        );
        assert_eq!(log.head(), 4);
        let all = log.read(0, 100).unwrap();
        assert_eq!(all.iter().map(|e| e.offset).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(all[2].channel.as_deref(), Some("wa"));
        assert_eq!(log.read(2, 1).unwrap()[0].offset, 3);
        assert_eq!(log.get(4).unwrap().unwrap().payload.get(), r#"{"text":"d"}"#);
        assert!(log.get(5).unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_batches_and_survive_a_reopen() {
        let dir = std::env::temp_dir().join(format!("seam-log-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let db = sled::Config::new().path(&dir).open().unwrap();
            let log = SledLog::open(&db, SledLogOptions::default()).unwrap();
            let tasks: Vec<_> = (0..200)
                .map(|i| {
                    let log = log.clone();
                    tokio::spawn(
                        async move { log.append(vec![event("tg", Some(&i.to_string()), "x")]).await },
                    )
                })
                .collect();
            let mut offsets = Vec::new();
            for t in tasks {
                offsets.push(t.await.unwrap().unwrap()[0].offset);
            }
            offsets.sort();
            assert_eq!(offsets, (1..=200).collect::<Vec<_>>(), "dense, no offset twice");
            log.commit("reader", 150).unwrap();
        }
        let db = reopen(&dir).await;
        let log = SledLog::open(&db, SledLogOptions::default()).unwrap();
        assert_eq!(log.head(), 200);
        assert_eq!(log.committed("reader").unwrap(), 150);
        assert_eq!(log.committed("other").unwrap(), 0);
        // Dedup keys survive too; new appends continue after the head.
        let again =
            log.append(vec![event("tg", Some("7"), "x"), event("tg", Some("new"), "y")]).await.unwrap();
        let seven =
            log.read(0, 1000).unwrap().iter().find(|e| e.external_id.as_deref() == Some("7")).unwrap().offset;
        assert_eq!(again[0], Appended { offset: seven, duplicate: true });
        assert_eq!(again[1], Appended { offset: 201, duplicate: false });
        drop(log);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stored_events_carry_their_dedup_key_and_older_ones_still_decode() {
        let envelope = Envelope {
            v: crate::log::ENVELOPE_VERSION,
            offset: 7,
            id: "01J".into(),
            time: 1,
            kind: "message.received".into(),
            origin: Origin::Input,
            channel: Some("tg".into()),
            external_id: Some("42".into()),
            customer: None,
            conversation: None,
            payload: RawValue::from_string("{}".into()).unwrap(),
        };
        let keyed = stored(Origin::Input, &envelope, Some(b"ktg\0x\x0042")).unwrap();
        assert_eq!(split(&keyed).unwrap().1, Some(&b"ktg\0x\x0042"[..]));
        assert_eq!(decode(7, &keyed).unwrap().external_id.as_deref(), Some("42"));
        // Written before keys were stored with events: origin byte and envelope only.
        let plain = stored(Origin::Input, &envelope, None).unwrap();
        assert_eq!(split(&plain).unwrap().1, None);
        assert_eq!(decode(7, &plain).unwrap().offset, 7);
        // A cut-off entry is an error naming the offset, not a panic.
        for broken in [&keyed[..keyed.len() - 3], &[b'i', KEYED][..], &[][..]] {
            let error = decode(7, broken).unwrap_err().to_string();
            assert!(error.contains('7'), "{error}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_stored_without_its_dedup_key_gets_it_back_at_open() {
        let dir = std::env::temp_dir().join(format!("seam-log-repair-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = {
            let db = sled::Config::new().path(&dir).open().unwrap();
            let log = SledLog::open(&db, SledLogOptions::default()).unwrap();
            let mut keyed = event("api", None, "b");
            keyed.idempotency_key = Some("caller\0k1".into());
            let appended = log.append(vec![event("tg", Some("1"), "a"), keyed]).await.unwrap();
            // What a crash between the last event and its key leaves: the keys are gone.
            for key in ["tg\0message.received\x001", "key\0caller\0k1"] {
                assert!(log.inner.tree.remove(dedup_key(key)).unwrap().is_some(), "{key}");
            }
            db.flush().unwrap();
            appended
        };
        let db = reopen(&dir).await;
        let log = SledLog::open(&db, SledLogOptions::default()).unwrap();
        let mut keyed = event("api", None, "b");
        keyed.idempotency_key = Some("caller\0k1".into());
        let retried = log.append(vec![event("tg", Some("1"), "a"), keyed]).await.unwrap();
        assert_eq!(
            retried,
            [
                Appended { offset: first[0].offset, duplicate: true },
                Appended { offset: first[1].offset, duplicate: true }
            ]
        );
        assert_eq!(log.head(), 2, "nothing appended twice");
        drop(log);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_tail_wakes_on_new_events_and_origins_filter() {
        let (_db, log) = temp();
        let mut tail = log.subscribe();
        let writer = log.clone();
        tokio::spawn(async move {
            let mut decision = event("tg", None, "decided");
            decision.origin = Origin::Decision;
            writer.append(vec![event("tg", Some("1"), "a"), decision]).await.unwrap();
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), tail.wait_for(|h| *h == 2))
            .await
            .unwrap()
            .unwrap();
        let (decisions, last) = log.read_origin(0, 10, Origin::Decision).unwrap();
        assert_eq!((decisions.len(), decisions[0].offset, last), (1, 2, 2));
        let (inputs, _) = log.read_origin(0, 10, Origin::Input).unwrap();
        assert_eq!(inputs.iter().map(|e| e.offset).collect::<Vec<_>>(), [1]);
    }
}
