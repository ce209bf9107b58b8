//! Replay what-if: what a candidate routing policy would have decided over a past window of
//! the log, beside what happened, with no side effects.
//!
//! The views are rebuilt into a scratch database (a temporary sled, deleted afterwards) from
//! the decisions in the log. Inside the window, before each effect is applied, every point
//! where the live policy was asked is found again:
//! - a customer message to a conversation no agent had (trigger `event`);
//! - a conversation moved to its overflow queue (trigger `escalation`);
//! - any other routing outcome in the log, i.e. a re-offer (trigger `reoffer`).
//!
//! At each point the candidate sees the route context the live policy saw (built from the
//! scratch views as they were at that moment) and its decision is compared with the one in
//! the log. Each point is judged on history as it happened: the candidate's decisions are
//! never applied, so one differing decision does not change what later points see.
//! A re-offer the live policy declined leaves nothing in the log, so it is not compared.

use super::decide::{Context, Decider};
use super::effects::{Decision, Effect};
use super::logged::Logged;
use super::route::run_chain;
use super::shadow::{compared, placement};
use super::{PipelineError, REPLAY_BATCH};
use crate::log::{Envelope, EventLog, LogError, Offset};
use crate::runtime::Runtime;
use crate::runtime::bindings::{routing, types};
use crate::views::records::Conversation;
use crate::views::unit::Unit;
use crate::views::whatif::{Diff, Placement};
use crate::views::{ViewError, Views};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Instant;
use utoipa::ToSchema;

/// The inputs to replay: by log offset and/or by time (ms); every bound is inclusive and
/// optional.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
pub struct Window {
    /// First input offset.
    pub from_offset: Option<Offset>,
    /// Last input offset.
    pub to_offset: Option<Offset>,
    /// Inputs appended at or after this time, ms.
    pub since: Option<i64>,
    /// Inputs appended at or before this time, ms.
    pub until: Option<i64>,
}

impl Window {
    /// Why the window is empty by construction, if it is: a start after its end.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(from), Some(to)) = (self.from_offset, self.to_offset)
            && from > to
        {
            return Err(format!("from_offset {from} is after to_offset {to}"));
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since > until
        {
            return Err(format!("since {since} is after until {until}"));
        }
        Ok(())
    }

    /// Whether the input at `offset` appended at `time` is past the window's end.
    fn ended(&self, offset: Offset, time: i64) -> bool {
        self.to_offset.is_some_and(|to| offset > to) || self.until.is_some_and(|u| time > u)
    }

    /// Whether it is inside (assuming it is not past the end).
    fn contains(&self, offset: Offset, time: i64) -> bool {
        self.from_offset.is_none_or(|f| offset >= f) && self.since.is_none_or(|s| time >= s)
    }
}

/// What a replay found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Replayed {
    /// The window asked for.
    pub window: Window,
    /// The candidate's routers (runtime slots), in order.
    pub candidate: Vec<String>,
    /// Inputs inside the window whose decisions were replayed.
    pub inputs: u64,
    /// Log events read (inputs and decisions), from the start of the log.
    pub events_read: u64,
    /// The comparison.
    pub diff: Diff,
    /// Wall time, ms.
    pub elapsed_ms: u64,
    /// Log events read per second.
    pub events_per_sec: u64,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The log or the scratch views failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// There is no plugin runtime to call the candidate with.
    #[error("replay needs the plugin runtime to call the candidate's routers")]
    NoRuntime,
    /// The scratch database could not be made.
    #[error("cannot create the scratch database: {0}")]
    Scratch(String),
}

impl From<ViewError> for ReplayError {
    fn from(e: ViewError) -> Self {
        ReplayError::Pipeline(e.into())
    }
}

impl From<LogError> for ReplayError {
    fn from(e: LogError) -> Self {
        ReplayError::Pipeline(e.into())
    }
}

/// Runs `candidate` (runtime slots, in order) over `window` of `log`. `ctx` gives the
/// runtime and the channels (for channel kinds); `progress(offset, head)` is called after
/// each batch of the log.
pub async fn replay(
    log: &dyn EventLog,
    ctx: &Context,
    candidate: &[String],
    window: Window,
    mut progress: impl FnMut(Offset, Offset),
) -> Result<Replayed, ReplayError> {
    let started = Instant::now();
    let runtime = ctx.runtime.as_ref().ok_or(ReplayError::NoRuntime)?;
    let scratch =
        sled::Config::new().temporary(true).open().map_err(|e| ReplayError::Scratch(e.to_string()))?;
    let views = Views::open(&scratch, "whatif")?;
    let mut unit = Unit::new(&views);
    let mut diff = Diff::default();
    let (mut inputs, mut events_read, mut after, mut cursor) = (0u64, 0u64, 0, 0);
    let head = log.head();
    'log: loop {
        let (decisions, last) = super::logged::read(log, after, head, REPLAY_BATCH)?;
        for Logged { time, decision } in decisions {
            events_read += 1;
            cursor = cursor.max(decision.source);
            // A decision is appended after its input: one older than `since` has an older input.
            let maybe_inside = window.from_offset.is_none_or(|f| decision.source >= f)
                && window.since.is_none_or(|s| time >= s);
            let input = if maybe_inside { log.get(decision.source)? } else { None };
            match input {
                Some(input) if window.ended(input.offset, input.time) => break 'log,
                Some(input) if window.contains(input.offset, input.time) => {
                    events_read += 1;
                    inputs += 1;
                    compare(&mut unit, runtime, ctx, candidate, &input, &decision, &mut diff).await?;
                }
                _ => {
                    if window.to_offset.is_some_and(|to| decision.source > to) {
                        break 'log;
                    }
                    super::apply_logged(&mut unit, &decision)?;
                }
            }
        }
        // Key by key: nobody else reads the scratch views, and an atomic sled batch costs
        // more (it holds the log's buffers until it is complete).
        views.write_each(unit.take_batch(cursor))?;
        if unit.cached() > super::REBUILD_MAX_CACHED {
            unit.start_afresh();
        }
        progress(last, head);
        if last == after || last >= head {
            break;
        }
        after = last;
    }
    progress(head, head);
    let elapsed = started.elapsed();
    Ok(Replayed {
        window,
        candidate: candidate.to_vec(),
        inputs,
        events_read,
        diff,
        elapsed_ms: elapsed.as_millis() as u64,
        events_per_sec: (events_read as f64 / elapsed.as_secs_f64().max(1e-9)) as u64,
    })
}

/// Where the live policy was asked while `input` was decided, found before `effects[i]`.
fn routing_point(
    input: &Envelope,
    effects: &[Effect],
    i: usize,
    done: &HashSet<String>,
) -> Option<(String, routing::Trigger)> {
    let (conversation, trigger) = match &effects[i] {
        Effect::ConversationRouted { conversation, .. } | Effect::RouteFailed { conversation, .. } => {
            let escalated = effects[..i].iter().any(
                |e| matches!(e, Effect::ConversationEscalated { conversation: c, .. } if c == conversation),
            );
            let trigger = match () {
                _ if escalated => routing::Trigger::Escalation,
                _ if matches!(input.kind.as_str(), "message.received" | "call.updated") => {
                    routing::Trigger::Event
                }
                _ => routing::Trigger::Reoffer,
            };
            (conversation, trigger)
        }
        // A message the live policy left where it was: no routing effect before it.
        Effect::Recorded { conversation: Some(c), inbound_message: true, .. } => (c, routing::Trigger::Event),
        _ => return None,
    };
    (!done.contains(conversation)).then(|| (conversation.clone(), trigger))
}

/// What the live policy decided for `conversation` at `effects[i..]`: the routing outcome in
/// the log, or (none) the placement it kept.
fn live_placement(effects: &[Effect], conversation: &str, before: &Conversation) -> Placement {
    for effect in effects {
        match effect {
            Effect::ConversationRouted { conversation: c, queue, agent, priority, reason, .. }
                if c == conversation =>
            {
                return Placement {
                    queue: queue.clone(),
                    agent: agent.clone(),
                    priority: *priority,
                    reason: reason.clone(),
                    failed: false,
                };
            }
            Effect::RouteFailed { conversation: c, router, error } if c == conversation => {
                return Placement {
                    reason: format!("{router}: {error}"),
                    failed: true,
                    ..Default::default()
                };
            }
            Effect::Recorded { .. } => break,
            _ => {}
        }
    }
    Placement {
        queue: before.queue.clone(),
        agent: before.assignee.clone(),
        priority: before.priority,
        reason: "kept its placement".into(),
        failed: false,
    }
}

/// Replays `decision` (of `input`) into `unit`, comparing the candidate at each routing point.
async fn compare(
    unit: &mut Unit,
    runtime: &Runtime,
    ctx: &Context,
    candidate: &[String],
    input: &Envelope,
    decision: &Decision,
    diff: &mut Diff,
) -> Result<(), ReplayError> {
    let effects = &decision.effects;
    let mut done = HashSet::new();
    let event = match input.kind.as_str() {
        "message.received" => {
            serde_json::from_str::<types::InboundMessage>(input.payload.get()).ok().map(types::Event::Message)
        }
        "call.updated" => {
            serde_json::from_str::<types::CallEvent>(input.payload.get()).ok().map(types::Event::Call)
        }
        _ => None,
    };
    for (i, effect) in effects.iter().enumerate() {
        // An escalation asks the policy once the conversation is in its overflow queue.
        let point = if let Effect::ConversationEscalated { conversation, .. } = effect {
            unit.apply(decision.source, effect)?;
            (!done.contains(conversation)).then(|| (conversation.clone(), routing::Trigger::Escalation))
        } else {
            routing_point(input, effects, i, &done)
        };
        if let Some((id, trigger)) = point
            && let Some(c) = unit.conversation(&id)?.cloned()
            && c.assignee.is_none()
        {
            done.insert(id.clone());
            let (event, channel) = match trigger {
                routing::Trigger::Event => (event.clone(), input.channel.as_deref()),
                _ => (None, None),
            };
            let live = live_placement(&effects[i..], &id, &c);
            let mut decider = Decider::new(unit, decision.source, input.time);
            let mut context = decider.route_context(ctx, &c, trigger, event, channel)?;
            let outcome = run_chain(runtime, candidate, &mut context).await;
            diff.observe(&compared(&context, decision.source, live, placement(&outcome)));
        }
        if !matches!(effect, Effect::ConversationEscalated { .. }) {
            unit.apply(decision.source, effect)?;
        }
    }
    Ok(())
}
