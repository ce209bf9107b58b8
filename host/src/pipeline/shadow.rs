//! Shadow mode: a candidate policy is asked beside the live one, on the same route context,
//! every time the live policy is; both decisions go to the log as a `shadow-decided` effect
//! and only the live one is applied. Because the candidate's decisions are effects, a
//! rebuild restores the diff without calling a router, like every other view.

use super::commands::SetShadow;
use super::decide::{Context, Decider};
use super::effects::Effect;
use super::policy::check_stages;
use super::route::{Failed, Routed, run_chain};
use crate::runtime::Runtime;
use crate::runtime::bindings::{routing, types};
use crate::views::ViewError;
use crate::views::whatif::{Compared, Diff, Placement, ShadowRecord};

/// Characters of a routed message kept in a compared decision.
const TEXT_CHARS: usize = 120;

/// Where a policy's outcome put the conversation.
pub fn placement(outcome: &Result<Routed, Failed>) -> Placement {
    match outcome {
        Ok(Routed { decision: d, .. }) => Placement {
            queue: d.queue.clone(),
            agent: d.agent.clone(),
            priority: d.priority,
            reason: d.reason.clone(),
            failed: false,
        },
        Err(Failed { router, error }) => {
            Placement { reason: format!("{router}: {error}"), failed: true, ..Default::default() }
        }
    }
}

/// The live and the candidate decision on `context`, for the input at `offset`.
pub fn compared(
    context: &routing::RouteContext,
    offset: u64,
    live: Placement,
    candidate: Placement,
) -> Compared {
    let text = match &context.event {
        Some(types::Event::Message(m)) => m.text.as_ref().map(|t| t.chars().take(TEXT_CHARS).collect()),
        _ => None,
    };
    Compared {
        conversation: context.conversation.id.clone(),
        offset,
        at: context.now,
        trigger: match context.trigger {
            routing::Trigger::Event => "event",
            routing::Trigger::Reoffer => "reoffer",
            routing::Trigger::Escalation => "escalation",
        }
        .into(),
        text,
        live,
        candidate,
    }
}

impl Decider<'_> {
    /// Starts a shadow run of `command`'s routers (replacing a running one), or stops the
    /// running one when it names none.
    pub(super) fn set_shadow(
        &mut self,
        ctx: &Context,
        command: &SetShadow,
        offset: u64,
    ) -> Result<Option<String>, ViewError> {
        let latest = self.unit.shadow()?.cloned();
        let at = self.at;
        if command.stages.is_empty() {
            return match latest.filter(|s| s.stopped_at.is_none()) {
                Some(running) => {
                    self.emit(Effect::ShadowStopped { version: running.version, at })?;
                    Ok(None)
                }
                None => self.reject("no shadow run is running"),
            };
        }
        if let Some(refusal) = check_stages(ctx, &command.stages) {
            return self.reject(refusal);
        }
        let shadow = ShadowRecord {
            version: latest.map_or(1, |s| s.version + 1),
            stages: command.stages.clone(),
            by: command.by.clone(),
            note: command.note.clone(),
            started_at: at,
            offset,
            stopped_at: None,
            diff: Diff::default(),
        };
        self.emit(Effect::ShadowStarted { shadow })?;
        Ok(None)
    }

    /// Asks the running shadow run's routers on `context` (the one the live policy saw,
    /// which decided `live`) and records both decisions.
    pub(super) async fn shadow_route(
        &mut self,
        runtime: &Runtime,
        context: &mut routing::RouteContext,
        live: &Result<Routed, Failed>,
    ) -> Result<(), ViewError> {
        let Some(run) = self.unit.shadow()?.filter(|s| s.stopped_at.is_none()) else { return Ok(()) };
        let (version, slots) = (run.version, crate::views::policy::slots(&run.stages));
        let candidate = run_chain(runtime, &slots, context).await;
        let compared = compared(context, self.source, placement(live), placement(&candidate));
        self.emit(Effect::ShadowDecided { version, compared })
    }
}
