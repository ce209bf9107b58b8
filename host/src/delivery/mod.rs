//! The delivery worker: sends the outbound messages the pipeline left due, through their
//! channel's connector, and reports each outcome back to the log.
//!
//! The worker decides nothing. The pipeline (`pipeline::outbound`) keeps each message's
//! plan, attempt count and next due time in the views; the worker reads the due index,
//! makes one attempt per due message (or, for a sent message past its fallback deadline,
//! reports the timeout), and appends a `message.attempted` / `message.timed-out` input.
//! The pipeline decides what that means (sent, retry at a backed-off time, next channel,
//! dead letter), which makes the message due again or not.
//!
//! Exactly-once, as far as a provider allows:
//! - a message is in the worker's in-flight set from the moment it is picked until the
//!   views have applied its report, so it is never picked twice for one due time;
//! - a customer with a message in that set gets no other send meanwhile, so messages queued
//!   back to back for one person are attempted in the order they became due (sends to
//!   different customers still run concurrently). A message waiting for a retry does not hold
//!   back the ones after it.
//! - a report's dedup key is the message's state (`id@history-length`), so a report made
//!   twice for one state is appended once;
//! - on shutdown the worker takes no new work and waits for sends under way to finish and
//!   their reports to be durable, so a restart does not send them again;
//! - if the host is killed during a send, the attempt is made again after the restart
//!   (at-least-once); connectors get the same message id on every attempt, so providers
//!   with idempotency keys drop the second copy.

pub mod ratelimit;

use crate::channels::Channels;
use crate::log::{EventLog, LogError, NewEvent, Offset, Origin, now_ms};
use crate::pipeline::Progress;
use crate::pipeline::commands::SendRequest;
use crate::pipeline::outbound::{ATTEMPTED, AttemptResult, Attempted, TIMED_OUT, TimedOut};
use crate::runtime::Runtime;
use crate::runtime::bindings::{channel, types};
use crate::views::Views;
use crate::views::outbound::{OutboundRecord, OutboundStatus};
use ratelimit::RateLimiter;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a message whose pick made no report is left alone.
const COOL_DOWN: Duration = Duration::from_secs(1);

/// Settings of the worker.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Sends under way at once, over all channels.
    pub concurrency: usize,
    /// Longest sleep between looks at the due index.
    pub idle: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions { concurrency: 64, idle: Duration::from_secs(1) }
    }
}

/// A running worker.
pub struct Delivery {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Delivery {
    /// Starts the worker on its own task.
    pub fn start(
        runtime: Runtime,
        log: Arc<dyn EventLog>,
        views: Views,
        progress: Progress,
        channels: Channels,
        options: DeliveryOptions,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let worker = Arc::new(Worker {
            runtime,
            log,
            views,
            channels,
            limiters: Mutex::default(),
            stopping: stopped.clone(),
        });
        let task = tokio::spawn(run(worker, progress, options, stopped));
        Delivery { stop, task }
    }

    /// Stops taking new work and waits until every send under way has finished and its
    /// report is durable in the log.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "delivery worker ended abnormally");
        }
    }
}

struct Worker {
    runtime: Runtime,
    log: Arc<dyn EventLog>,
    views: Views,
    channels: Channels,
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
    /// Becomes true on shutdown: sends still waiting for their turn are given up (they
    /// stay due and are made after the restart).
    stopping: watch::Receiver<bool>,
}

async fn run(
    worker: Arc<Worker>,
    progress: Progress,
    options: DeliveryOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut applied = progress.watch();
    // Reports appended just before a stop may not be in the views yet: acting on the views
    // before the pipeline has applied them would send those messages a second time.
    match last_input(worker.log.as_ref(), progress.applied()) {
        Ok(Some(last)) => {
            tokio::select! {
                _ = applied.wait_for(|a| *a >= last) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "delivery worker cannot read the log tail; starting anyway"),
    }
    // Message id -> its customer, and the offset of its report once appended (None: being
    // worked on).
    let mut in_flight: HashMap<String, (String, Option<Offset>)> = HashMap::new();
    let mut tasks: JoinSet<Option<Offset>> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
    // Messages whose last pick made no report (unreadable record, log error...): left
    // alone for a moment, so one bad record cannot keep the worker spinning.
    let mut cooling: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let done = progress.applied();
        in_flight.retain(|_, (_, report)| report.is_none_or(|offset| offset > done));
        let instant = tokio::time::Instant::now();
        cooling.retain(|_, until| *until > instant);
        let now = now_ms();
        let mut wait = options.idle;
        match worker.views.due_messages(now, options.concurrency * 2) {
            Ok((due, next)) => {
                // Customers with a send under way (or its report not yet applied).
                let mut busy: HashSet<String> = in_flight.values().map(|(c, _)| c.clone()).collect();
                for id in due {
                    if tasks.len() >= options.concurrency {
                        break;
                    }
                    if in_flight.contains_key(&id) || cooling.contains_key(&id) {
                        continue;
                    }
                    let record = match worker.views.message(&id) {
                        Ok(Some(record)) => record,
                        Ok(None) => {
                            cooling.insert(id, tokio::time::Instant::now() + COOL_DOWN);
                            continue;
                        }
                        Err(e) => {
                            tracing::error!(message = id, error = %e, "cannot read outbound message");
                            cooling.insert(id, tokio::time::Instant::now() + COOL_DOWN);
                            continue;
                        }
                    };
                    if !busy.insert(record.customer.clone()) {
                        continue;
                    }
                    in_flight.insert(id.clone(), (record.customer.clone(), None));
                    let handle = tasks.spawn(worker.clone().act(record));
                    running.insert(handle.id(), id);
                }
                if let Some(next) = next {
                    wait = wait.min(Duration::from_millis((next - now).clamp(1, 1000) as u64));
                }
            }
            Err(e) => tracing::error!(error = %e, "delivery worker cannot read the due messages"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            Some(result) = tasks.join_next_with_id() => {
                let (id, report) = match result {
                    Ok((task, report)) => (running.remove(&task), report),
                    Err(e) => {
                        tracing::error!(error = %e, "a send task failed");
                        (running.remove(&e.id()), None)
                    }
                };
                if let Some(id) = id {
                    match report {
                        Some(offset) => {
                            if let Some(flight) = in_flight.get_mut(&id) {
                                flight.1 = Some(offset);
                            }
                        }
                        None => {
                            in_flight.remove(&id);
                            cooling.insert(id, tokio::time::Instant::now() + COOL_DOWN);
                        }
                    }
                }
            }
            _ = applied.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    let waiting = tasks.len();
    if waiting > 0 {
        tracing::info!(waiting, "delivery worker stopping: waiting for sends under way");
    }
    while tasks.join_next().await.is_some() {}
}

/// The offset of the last input in the log after `from`, if any.
fn last_input(log: &dyn EventLog, from: Offset) -> Result<Option<Offset>, LogError> {
    let head = log.head();
    let (mut after, mut last) = (from, None);
    while after < head {
        let (events, examined) = log.read_origin(after, 1024, Origin::Input)?;
        if let Some(event) = events.last() {
            last = Some(event.offset);
        }
        if examined <= after {
            break;
        }
        after = examined;
    }
    Ok(last)
}

impl Worker {
    /// Acts on one due message, as read when it was picked; returns the offset of the
    /// report appended, if any.
    async fn act(self: Arc<Self>, record: OutboundRecord) -> Option<Offset> {
        if record.next_at.is_none_or(|at| at > now_ms()) {
            return None;
        }
        let step = record.current()?.clone();
        // The state the report is about: a report made twice for it is appended once.
        let dedup = format!("{}@{}", record.id, record.history.len());
        let (kind, payload) = match record.status {
            OutboundStatus::Sent => {
                let timed_out = TimedOut { message: record.id.clone(), step: record.step };
                (TIMED_OUT, serde_json::value::to_raw_value(&timed_out))
            }
            OutboundStatus::Queued => {
                let result = self.attempt(&record, &step.channel, &step.to).await?;
                let outcome = match &result {
                    AttemptResult::Accepted { .. } => "accepted",
                    AttemptResult::Rejected { .. } => "rejected",
                    AttemptResult::RetryLater { .. } => "retry-later",
                    AttemptResult::Error { .. } => "error",
                };
                self.runtime.metrics().send_attempt(&step.channel, outcome);
                tracing::debug!(message = record.id, channel = step.channel, outcome, "send attempted");
                let attempted = Attempted {
                    message: record.id.clone(),
                    step: record.step,
                    attempt: record.attempts + 1,
                    channel: step.channel.clone(),
                    result,
                };
                (ATTEMPTED, serde_json::value::to_raw_value(&attempted))
            }
            _ => return None,
        };
        let payload = payload.ok()?;
        let mut event = NewEvent::input(kind, payload);
        event.channel = Some(step.channel.clone());
        event.external_id = Some(dedup);
        event.customer = Some(record.customer.clone());
        event.conversation = record.conversation.clone();
        match self.log.append(vec![event]).await {
            Ok(appended) => appended.first().map(|a| a.offset),
            Err(e) => {
                tracing::error!(message = record.id, error = %e, "cannot record a send attempt; it will be made again");
                None
            }
        }
    }

    /// Makes one attempt to send `record` on `channel_id` to `to` (`kind:value`); none if
    /// the host began to stop before the send was made. A stop cuts in only while the send
    /// waits for the rate limit: a provider call under way runs to its end.
    async fn attempt(&self, record: &OutboundRecord, channel_id: &str, to: &str) -> Option<AttemptResult> {
        let (message, wait) = match self.prepare(record, channel_id, to) {
            Ok(prepared) => prepared,
            Err(result) => return Some(result),
        };
        if let Some(wait) = wait {
            let mut stopping = self.stopping.clone();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopping.wait_for(|s| *s) => return None,
            }
        }
        let result = match self.runtime.send(channel_id, &message).await {
            Ok(channel::DeliveryResult::Accepted(provider_id)) => AttemptResult::Accepted { provider_id },
            Ok(channel::DeliveryResult::Rejected(reason)) => AttemptResult::Rejected { reason },
            Ok(channel::DeliveryResult::RetryLater(hint)) => {
                AttemptResult::RetryLater { reason: hint.reason, after_ms: hint.after_ms }
            }
            Err(e) => AttemptResult::Error { reason: e.to_string() },
        };
        Some(result)
    }

    /// Reads the content, checks consent and reserves a rate-limit slot: the message to
    /// send and how long to wait first, or the attempt's result if it cannot be sent.
    fn prepare(
        &self,
        record: &OutboundRecord,
        channel_id: &str,
        to: &str,
    ) -> Result<(channel::OutboundMessage, Option<Duration>), AttemptResult> {
        let content = match self.log.get(record.request) {
            Ok(Some(event)) => match serde_json::from_str::<SendRequest>(event.payload.get()) {
                Ok(request) => request.content,
                Err(e) => {
                    return Err(AttemptResult::Rejected {
                        reason: format!("the send request is unreadable: {e}"),
                    });
                }
            },
            Ok(None) => {
                return Err(AttemptResult::Rejected {
                    reason: format!("the send request at offset {} is not in the log", record.request),
                });
            }
            Err(e) => return Err(AttemptResult::Error { reason: format!("reading the send request: {e}") }),
        };
        let mut delay = None;
        let Some(channel) = self.channels.get(channel_id) else {
            return Err(AttemptResult::Error { reason: format!("channel `{channel_id}` is not configured") });
        };
        // Consent may have changed since the message was queued.
        if let Ok(Some(customer)) = self.views.customer(&record.customer)
            && customer.consent.get(channel_id).is_some_and(|c| !c.granted)
        {
            return Err(AttemptResult::Rejected {
                reason: format!("customer {} opted out of messages on channel `{channel_id}`", customer.id),
            });
        }
        if let Some(rate) = channel.rate_limit {
            let limiter = {
                let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
                limiters.entry(channel.id.clone()).or_insert_with(|| Arc::new(RateLimiter::new(rate))).clone()
            };
            let wait = limiter.reserve();
            if !wait.is_zero() {
                delay = Some(wait);
            }
        }
        let (kind, value) = to.split_once(':').unwrap_or(("", to));
        let message = channel::OutboundMessage {
            id: record.id.clone(),
            to: types::Identity { kind: kind.into(), value: value.into() },
            text: content.text,
            attachments: content.attachments,
            template: content.template,
            reply_to: content.reply_to,
            subject: content.subject,
            extras: content.extras.map(|e| e.to_string()),
        };
        Ok((message, delay))
    }
}
