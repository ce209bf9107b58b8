//! The processor: consumes the log in order and decides each input (identity resolution ->
//! conversation threading -> router plugin -> assignment), then projects the decision into
//! the views.
//!
//! Exactly-once views without distributed transactions:
//! 1. a batch of inputs is decided against a unit of work over the views;
//! 2. the decisions are appended to the log (durable);
//! 3. the views and the cursor (last input decided) are written as one batch, all or nothing
//!    across a crash (journalled, then key by key: [`crate::views::Views::apply`]).
//!
//! A crash after 2 leaves durable decisions past the cursor. On start the processor reads
//! them and, when it reaches their inputs again, applies those decisions instead of deciding
//! anew, so the router is not asked twice and nothing is counted twice. Inputs are decided
//! one at a time in log order, which keeps every customer's events in order.

pub mod clock;
pub mod commands;
pub mod decide;
pub mod effects;
pub mod identity;
pub mod logged;
pub mod outbound;
pub mod policy;
pub mod route;
pub mod shadow;
pub mod team;
pub mod whatif;

use crate::log::{EventLog, LogError, NewEvent, Offset, Origin};
use crate::views::unit::Unit;
use crate::views::{ViewError, Views};
use decide::{Context, Decider};
use effects::Decision;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Inputs decided per batch (one log append and one views write per batch).
const BATCH: usize = 512;

/// Batches whose decisions may be on their way to disk at once.
const MAX_IN_FLIGHT: usize = 4;

/// Records the processor's unit of work may hold before it is started afresh. Its memory
/// is most of what a backlog costs: 5,000 measured ~25 MiB less peak RSS than 20,000 under
/// the inbound benchmark, at the same pipeline speed (docs/benchmarks.md, "Memory").
const MAX_CACHED: usize = 5_000;

/// The same bound for a rebuild or a replay what-if, which read the whole log at once: a
/// customer seen again within it is served from memory instead of read back from the views.
const REBUILD_MAX_CACHED: usize = 20_000;

/// Memory the customer and conversation records a rebuild holds back from the views may take
/// ([`crate::views::held`]): ~1 KiB per customer who wrote in the views benchmark, so this
/// holds ~250,000 customers'.
const REBUILD_HELD_BYTES: usize = 256 << 20;

type AppendResult = Result<Vec<crate::log::Appended>, LogError>;

/// A batch whose decisions are being appended; its views wait for them.
struct InFlight {
    append: oneshot::Receiver<AppendResult>,
    /// The append's result, once seen.
    done: Option<AppendResult>,
    batch: crate::views::Changes,
    cursor: Offset,
}

impl InFlight {
    fn is_finished(&mut self) -> bool {
        if self.done.is_none() {
            use futures_util::FutureExt;
            match (&mut self.append).now_or_never() {
                Some(Ok(result)) => self.done = Some(result),
                Some(Err(_)) => self.done = Some(Err(LogError::Closed)),
                None => {}
            }
        }
        self.done.is_some()
    }
}

/// Why processing stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The views failed.
    #[error(transparent)]
    Views(#[from] ViewError),
}

/// A running processor's handle: how far it got.
#[derive(Clone)]
pub struct Progress {
    applied: watch::Receiver<Offset>,
}

impl Progress {
    /// The last input decided and visible in the views.
    pub fn applied(&self) -> Offset {
        *self.applied.borrow()
    }

    /// A receiver that changes whenever more inputs are applied.
    pub fn watch(&self) -> watch::Receiver<Offset> {
        self.applied.clone()
    }

    /// Waits until the input at `offset` is decided and visible, or `timeout` passes.
    pub async fn wait_for(&self, offset: Offset, timeout: Duration) -> bool {
        let mut rx = self.applied.clone();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= offset))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// The processor.
pub struct Processor {
    log: Arc<dyn EventLog>,
    views: Views,
    context: Context,
    applied: watch::Sender<Offset>,
}

impl Processor {
    /// A processor over `log` and `views`.
    pub fn new(
        log: Arc<dyn EventLog>,
        views: Views,
        context: Context,
    ) -> Result<(Self, Progress), ViewError> {
        let (applied, rx) = watch::channel(views.cursor()?);
        Ok((Processor { log, views, context, applied }, Progress { applied: rx }))
    }

    /// Runs until the log closes. A storage error is logged and processing resumes from the
    /// last committed cursor after a pause: nothing decided is lost, nothing is applied twice.
    pub async fn run(self) {
        loop {
            match self.run_once().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, "pipeline stopped; resuming from the last committed input");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn run_once(&self) -> Result<(), PipelineError> {
        let mut cursor = self.views.cursor()?;
        let mut pending = self.durable_decisions(cursor)?;
        if !pending.is_empty() {
            tracing::info!(count = pending.len(), "applying decisions made before a restart");
        }
        let mut read_pos = cursor;
        let mut head = self.log.subscribe();
        // One unit of work spans batches, so the next batch is decided while the decisions
        // of the previous ones are being made durable; each batch's views are written only
        // after its decisions are (in order). The unit starts afresh once it holds many
        // records and the batches in flight are finished.
        let mut unit = Unit::new(&self.views);
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        // Decisions go to the log through one task, in order: the log's order of decisions
        // is the order they were made in, which is what a rebuild replays.
        let (appender, mut batches) =
            mpsc::channel::<(Vec<NewEvent>, oneshot::Sender<AppendResult>)>(MAX_IN_FLIGHT);
        let log = self.log.clone();
        tokio::spawn(async move {
            while let Some((decisions, reply)) = batches.recv().await {
                let _ = reply.send(log.append(decisions).await);
            }
        });
        loop {
            while in_flight.front_mut().is_some_and(InFlight::is_finished) || in_flight.len() >= MAX_IN_FLIGHT
            {
                if let Some(done) = in_flight.pop_front() {
                    self.finish(&unit, done).await?;
                }
            }
            if unit.cached() > MAX_CACHED {
                // The unit may start afresh only once what it changed is in the views. Waiting
                // for that, rather than for a moment when nothing is in flight (which a
                // backlog never leaves), keeps its memory bounded.
                while let Some(done) = in_flight.pop_front() {
                    self.finish(&unit, done).await?;
                }
                unit.start_afresh();
            }
            // Only inputs: the decisions in between are this processor's own (or, past the
            // cursor at start, already in `pending`), and skipping them costs no decoding.
            let (events, last) = self.log.read_origin(read_pos, BATCH, Origin::Input)?;
            if events.is_empty() {
                if last > read_pos {
                    read_pos = last;
                    continue;
                }
                if let Some(done) = in_flight.pop_front() {
                    self.finish(&unit, done).await?;
                    continue;
                }
                if head.changed().await.is_err() {
                    return Ok(());
                }
                continue;
            }
            let mut decisions = logged::Grouper::default();
            let mut commands = Vec::new();
            let mut decided_any = false;
            for event in &events {
                read_pos = event.offset;
                if event.offset <= cursor {
                    continue;
                }
                decided_any = true;
                let command = commands::is_command(&event.kind);
                let refused = if let Some(decision) = pending.remove(&event.offset) {
                    for effect in &decision.effects {
                        unit.apply(event.offset, effect)?;
                    }
                    decision.refusal().map(str::to_owned)
                } else {
                    let mut decider = Decider::new(&mut unit, event.offset, event.time);
                    let refused = decider.decide(&self.context, event).await?;
                    let replies = decider.take_replies();
                    let effects = decider.finish();
                    decisions.push(event, effects, command);
                    for reply in replies {
                        decisions.push_input(reply);
                    }
                    refused
                };
                if command {
                    commands.push((event.offset, refused));
                }
                cursor = event.offset;
            }
            if !decided_any {
                continue;
            }
            for (offset, refused) in commands {
                unit.command_outcome(offset, refused.as_deref());
            }
            let batch = unit.take_batch(cursor);
            let (reply, append) = oneshot::channel();
            appender.send((decisions.finish(), reply)).await.map_err(|_| LogError::Closed)?;
            in_flight.push_back(InFlight { append, done: None, batch, cursor });
        }
    }

    /// Waits for a batch's decisions to be durable, then writes its views.
    async fn finish(&self, unit: &Unit, done: InFlight) -> Result<(), PipelineError> {
        let result = match done.done {
            Some(result) => result,
            None => done.append.await.unwrap_or(Err(LogError::Closed)),
        };
        result?;
        unit.write(done.batch)?;
        self.applied.send_replace(done.cursor);
        Ok(())
    }

    /// Decisions in the log for inputs past `cursor`: made, made durable, but not yet in the
    /// views when the host stopped.
    fn durable_decisions(&self, cursor: Offset) -> Result<HashMap<Offset, Decision>, PipelineError> {
        let mut found = HashMap::new();
        let mut after = cursor;
        loop {
            let (events, last) = self.log.read_origin(after, 1024, Origin::Decision)?;
            for event in &events {
                match logged::decisions_of(event) {
                    Ok(decisions) => found
                        .extend(decisions.into_iter().filter(|d| d.source > cursor).map(|d| (d.source, d))),
                    Err(e) => {
                        tracing::error!(offset = event.offset, error = %e, "unreadable decision skipped")
                    }
                }
            }
            if last == after || last >= self.log.head() {
                return Ok(found);
            }
            after = last;
        }
    }
}

/// Decisions per batch of a rebuild. Small against [`REBUILD_MAX_CACHED`]: the applying thread
/// waits for the writer only when its unit starts afresh, so the more batches between
/// resets, the more of the writing overlaps the applying (16,384: 51k events/s on the 100k
/// bench log; 2,048: 73k, and less memory).
const REBUILD_BATCH: usize = 2_048;

/// Decisions per batch of a replay what-if (which writes each batch before the next).
const REPLAY_BATCH: usize = 16_384;

/// Brings stored views to the current layout before the processor starts: empty views are
/// marked current, views of an older layout are rebuilt from the log (views are derived
/// data: a new layout is rebuilt, not migrated). Returns the decisions applied by a rebuild,
/// if one ran.
pub fn prepare_views(log: &dyn EventLog, views: &Views) -> Result<Option<u64>, PipelineError> {
    match views.format()? {
        0 => views.set_format(crate::views::FORMAT)?,
        crate::views::FORMAT => {}
        old => {
            tracing::warn!(
                old,
                new = crate::views::FORMAT,
                "views are in an older layout; rebuilding them from the log"
            );
            let applied = rebuild(log, views, |_, _| {})?;
            tracing::info!(applied, "views rebuilt");
            return Ok(Some(applied));
        }
    }
    Ok(None)
}

/// Applies a decision read from the log to `unit` as the processor applied it: its effects,
/// and a command's outcome.
pub(crate) fn apply_logged(unit: &mut Unit, decision: &Decision) -> Result<(), ViewError> {
    for effect in &decision.effects {
        unit.apply(decision.source, effect)?;
    }
    if decision.command {
        unit.command_outcome(decision.source, decision.refusal());
    }
    Ok(())
}

/// Rebuilds every view from the decisions in the log; `progress(done, head)` is called as
/// it goes. Returns the number of decisions applied.
///
/// Three threads share the work: a reader reads and decodes the decisions, this one applies
/// them to a unit of work, and a writer puts each batch's changes into the views meanwhile
/// (reading was a quarter of a rebuild's time, writing half). The writer inserts key by key
/// rather than in atomic batches, and without the processor's journal: nothing needs the
/// batches to be all or nothing: the layout version is recorded last, so views left by an
/// interrupted rebuild are rebuilt again at the next start ([`prepare_views`]), as views of
/// an older layout are. Customer and conversation records, rewritten on every message, are
/// held back in memory and written once each at the end, up to 256 MiB of them
/// ([`crate::views::held`]).
pub fn rebuild(
    log: &dyn EventLog,
    views: &Views,
    progress: impl FnMut(Offset, Offset),
) -> Result<u64, PipelineError> {
    let bounds = RebuildBounds { cached: REBUILD_MAX_CACHED, held_bytes: REBUILD_HELD_BYTES };
    rebuild_within(log, views, bounds, progress)
}

/// How much a rebuild keeps in memory.
#[derive(Debug, Clone, Copy)]
struct RebuildBounds {
    /// Records its unit holds decoded before starting afresh.
    cached: usize,
    /// Memory the records it holds back may take ([`crate::views::held`]).
    held_bytes: usize,
}

/// [`rebuild`] within `bounds`.
fn rebuild_within(
    log: &dyn EventLog,
    views: &Views,
    bounds: RebuildBounds,
    mut progress: impl FnMut(Offset, Offset),
) -> Result<u64, PipelineError> {
    views.clear()?;
    // An older layout's number until the rebuild is complete (see above).
    views.set_format(1)?;
    let head = log.head();
    let applied = std::thread::scope(|scope| {
        // One batch written while the next is prepared; each is acknowledged once written.
        let (queue, batches) = std::sync::mpsc::sync_channel::<crate::views::Changes>(1);
        let (written, acks) = std::sync::mpsc::channel::<Result<(), ViewError>>();
        let writer = scope.spawn(move || {
            for changes in batches {
                let result = views.write_each(changes);
                let failed = result.is_err();
                if written.send(result).is_err() || failed {
                    return;
                }
            }
        });
        // And one batch of decisions read and decoded while this one is applied.
        let (decoded, decisions) = std::sync::mpsc::sync_channel::<Result<ReadAhead, PipelineError>>(1);
        scope.spawn(move || read_decisions(log, head, &decoded));
        let mut writer_queue = WriterQueue { queue, acks, outstanding: 0 };
        let result = apply_all(views, head, bounds, &mut progress, decisions, &mut writer_queue);
        // The writer stops when its queue is closed (or at its first failure); the reader
        // when it has read up to `head` or finds `decisions` dropped with `apply_all`.
        let WriterQueue { queue, acks, .. } = writer_queue;
        drop(queue);
        let _ = writer.join();
        let written: Result<(), ViewError> = acks.try_iter().collect();
        let applied = result?;
        written?;
        Ok::<u64, PipelineError>(applied)
    })?;
    views.set_format(crate::views::FORMAT)?;
    Ok(applied)
}

/// A batch of decisions a rebuild's reader decoded, and the offset its read reached.
type ReadAhead = (Vec<Decision>, Offset);

/// The queue of a rebuild's writer thread, which writes the batches it is sent in order and
/// acknowledges each.
struct WriterQueue {
    queue: std::sync::mpsc::SyncSender<crate::views::Changes>,
    acks: std::sync::mpsc::Receiver<Result<(), ViewError>>,
    /// Sent and not acknowledged yet.
    outstanding: usize,
}

impl WriterQueue {
    /// The error the writer stopped with, when it stopped early.
    fn gone(&self) -> PipelineError {
        match self.acks.try_iter().find_map(Result::err) {
            Some(e) => PipelineError::Views(e),
            None => PipelineError::Log(LogError::Storage("the views writer stopped".into())),
        }
    }

    /// Queues `changes`; waits while the queue is full.
    fn send(&mut self, changes: crate::views::Changes) -> Result<(), PipelineError> {
        self.queue.send(changes).map_err(|_| self.gone())?;
        self.outstanding += 1;
        Ok(())
    }

    /// Takes the acknowledgements already in, without waiting.
    fn collect(&mut self) -> Result<(), PipelineError> {
        while let Ok(ack) = self.acks.try_recv() {
            self.outstanding -= 1;
            ack?;
        }
        Ok(())
    }

    /// Waits until everything sent is written.
    fn drain(&mut self) -> Result<(), PipelineError> {
        while self.outstanding > 0 {
            self.acks.recv().map_err(|_| self.gone())??;
            self.outstanding -= 1;
        }
        Ok(())
    }
}

/// The reading side of [`rebuild`]: reads and decodes the decisions up to `head`, batch by
/// batch, until it has sent them all, sent an error, or `out` is closed.
fn read_decisions(
    log: &dyn EventLog,
    head: Offset,
    out: &std::sync::mpsc::SyncSender<Result<ReadAhead, PipelineError>>,
) {
    let mut after = 0;
    loop {
        let read = logged::read(log, after, head, REBUILD_BATCH)
            .map(|(decisions, last)| (decisions.into_iter().map(|l| l.decision).collect(), last));
        let next = read.as_ref().ok().map(|(_, last)| *last).filter(|last| *last != after && *last < head);
        if out.send(read.map_err(PipelineError::from)).is_err() {
            return;
        }
        match next {
            Some(last) => after = last,
            None => return,
        }
    }
}

/// The applying side of [`rebuild`]: applies the decisions the reader sends and hands each
/// batch's changes to the writer. Customer and conversation records are held back
/// ([`crate::views::held`]) and written at the end, or when they outgrow their bound.
fn apply_all(
    views: &Views,
    head: Offset,
    bounds: RebuildBounds,
    progress: &mut impl FnMut(Offset, Offset),
    decisions: std::sync::mpsc::Receiver<Result<ReadAhead, PipelineError>>,
    writer: &mut WriterQueue,
) -> Result<u64, PipelineError> {
    let mut cursor = 0;
    let mut applied = 0u64;
    // One unit across batches: a customer seen again is served from memory, and its
    // timeline entries collect in its record until a chunk is full.
    let mut unit = Unit::new(views);
    unit.hold_records();
    // Writes the held records; the unit reads them from the views from then on.
    let release = |unit: &mut Unit, writer: &mut WriterQueue| {
        if let Some(records) = unit.release_held() {
            writer.drain()?;
            views.write_held(records)?;
        }
        Ok::<(), PipelineError>(())
    };
    for read in decisions {
        let (decisions, last) = read?;
        for decision in &decisions {
            apply_logged(&mut unit, decision)?;
            cursor = cursor.max(decision.source);
            applied += 1;
        }
        writer.send(unit.take_batch(cursor))?;
        writer.collect()?;
        if unit.held_bytes() > bounds.held_bytes {
            release(&mut unit, writer)?;
        }
        if unit.cached() > bounds.cached {
            // The unit may start afresh only once what it changed is in the views or held.
            writer.drain()?;
            unit.start_afresh();
        }
        progress(last, head);
    }
    release(&mut unit, writer)?;
    writer.drain()?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{SledLog, SledLogOptions};

    /// A temporary store whose log holds `messages` Telegram messages from `senders` senders
    /// and whose views the processor made from them (no router); and those views.
    async fn processed(
        messages: usize,
        senders: u64,
    ) -> (Arc<dyn EventLog>, Views, Vec<crate::views::KeyValue>) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log: Arc<dyn EventLog> = Arc::new(SledLog::open(&db, SledLogOptions::default()).unwrap());
        let views = Views::open(&db, "views").unwrap();
        let inputs = (0..messages)
            .map(|i| crate::samples::telegram_input(&i.to_string(), i as u64 % senders, "hello"))
            .collect();
        let last = log.append(inputs).await.unwrap().last().unwrap().offset;
        assert_eq!(prepare_views(log.as_ref(), &views).unwrap(), None, "new views are not rebuilt");
        let config = crate::config::SeamConfig::default();
        let context = Context::new(&config, None, &[], Default::default());
        let (processor, progress) = Processor::new(log.clone(), views.clone(), context).unwrap();
        let task = tokio::spawn(processor.run());
        assert!(progress.wait_for(last, Duration::from_secs(30)).await);
        task.abort();
        let _ = task.await;
        let live = views.dump().unwrap();
        (log, views, live)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_rebuild_is_done_again_at_the_next_start() {
        let (log, views, live) = processed(50, 7).await;

        // Stopped after its first batch was handed to the writer: the views must not look
        // complete.
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rebuild(log.as_ref(), &views, |_, _| panic!("interrupted"))
        }));
        assert!(stopped.is_err());
        assert_ne!(views.format().unwrap(), crate::views::FORMAT);

        // The next start rebuilds them, to what the processor had made.
        assert!(prepare_views(log.as_ref(), &views).unwrap().is_some());
        assert_eq!(views.format().unwrap(), crate::views::FORMAT);
        assert!(views.dump().unwrap() == live, "a rebuild makes the views the processor made");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rebuild_whose_held_records_outgrow_its_budget_makes_the_same_views() {
        // More decisions than a rebuild reads at once, so batches follow the release.
        let (log, views, live) = processed(REBUILD_BATCH * 2 + 100, 500).await;

        // A unit of 200 records starts afresh several times per batch and reads back what it
        // held or wrote. Holding everything (written at the end), and holding ~100
        // customers' records: the first batch outgrows that, the rest reads the released
        // records from the views.
        for held_bytes in [usize::MAX, 100 << 10] {
            let bounds = RebuildBounds { cached: 200, held_bytes };
            let applied = rebuild_within(log.as_ref(), &views, bounds, |_, _| {}).unwrap();
            assert_eq!(applied, (REBUILD_BATCH * 2 + 100) as u64);
            assert!(views.dump().unwrap() == live, "{bounds:?}: the views the processor made");
        }
    }
}
