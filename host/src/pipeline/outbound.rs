//! Deciding outbound messages: which channels a message goes through (its plan), and what
//! each attempt, delivery report and timeout means for it (retry with backoff, fall back to
//! the next channel, dead-letter). The delivery worker (`crate::delivery`) only acts on
//! what these decisions leave due and reports back with [`ATTEMPTED`] and [`TIMED_OUT`]
//! inputs, so every step is in the log and the views stay a pure function of it.

use super::commands::{Redrive, SendRequest};
use super::decide::{Context, Decider};
use super::effects::Effect;
use crate::log::Envelope;
use crate::runtime::bindings::types;
use crate::views::ViewError;
use crate::views::outbound::{HistoryEntry, OutboundRecord, OutboundStatus, PlanStep, ProviderRef};
use crate::views::records::{Consent, CustomerRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Event type of [`Attempted`].
pub const ATTEMPTED: &str = "message.attempted";
/// Event type of [`TimedOut`].
pub const TIMED_OUT: &str = "message.timed-out";

/// Identity kinds whose values are phone numbers: a channel addressing customers by one of
/// these can reach a customer known only by a `phone` identity (e.g. WhatsApp ids are
/// phone numbers without `+`).
pub const PHONE_ADDRESSED: &[&str] = &["phone", "whatsapp"];

/// The delivery worker tried a plan step once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempted {
    /// The message.
    pub message: String,
    /// The plan step tried.
    pub step: usize,
    /// Which attempt on that step (1 for the first).
    pub attempt: u32,
    /// The channel.
    pub channel: String,
    /// What came of it.
    pub result: AttemptResult,
}

/// What came of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum AttemptResult {
    /// The provider took it.
    Accepted {
        /// The provider's id for it.
        provider_id: String,
    },
    /// The provider refused it for good.
    Rejected {
        /// Why, in the provider's words.
        reason: String,
    },
    /// The provider refused it for now.
    RetryLater {
        /// Why.
        reason: String,
        /// The provider asked to wait at least this long.
        after_ms: Option<u64>,
    },
    /// The connector failed (trap, limit, not loaded): retried like a provider outage.
    Error {
        /// What went wrong.
        reason: String,
    },
}

/// A sent message was not reported delivered in time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimedOut {
    /// The message.
    pub message: String,
    /// The plan step that timed out.
    pub step: usize,
}

fn entry(
    at: i64,
    what: &str,
    step: usize,
    channel: &str,
    attempt: Option<u32>,
    detail: Option<String>,
) -> HistoryEntry {
    HistoryEntry { at, what: what.into(), step, channel: channel.into(), attempt, detail }
}

/// A random delay in [d/2, d]: spreads retries of many messages that failed together.
fn jittered(delay: u64) -> u64 {
    let mut bytes = [0u8; 8];
    let random = getrandom::fill(&mut bytes).map_or(0, |()| u64::from_le_bytes(bytes));
    let half = delay / 2;
    half + random % (delay - half + 1)
}

impl Decider<'_> {
    /// Decides a send request: finds the customer and the plan, or refuses.
    pub(super) fn send_requested(
        &mut self,
        ctx: &Context,
        command: &SendRequest,
        event: &Envelope,
    ) -> Result<Option<String>, ViewError> {
        if self.unit.message(&command.message)?.is_some() {
            return self.reject(format!("message {} exists already", command.message));
        }
        let mut conversation = None;
        let owner = if let Some(id) = &command.conversation {
            let Some(c) = self.unit.conversation(id)?.cloned() else {
                return self.reject(format!("conversation {id} does not exist"));
            };
            let owner = self.unit.owner(&c.customer)?.cloned();
            conversation = Some(c);
            owner
        } else if let Some(id) = &command.customer {
            self.unit.owner(id)?.cloned()
        } else if let Some(identity) = &command.identity {
            let key = match ctx.normalizer.parse(identity) {
                Ok(key) => key,
                Err(reason) => return self.reject(format!("identity {identity}: {reason}")),
            };
            let home = self.resolve_or_create(&key, "first contact: an outbound message")?;
            self.unit.owner(&home)?.cloned()
        } else {
            return self.reject("name the recipient: `customer`, `identity` or a conversation");
        };
        let Some(owner) = owner else {
            let id = command.customer.as_deref().unwrap_or("of the conversation");
            return self.reject(format!("customer {id} does not exist"));
        };
        if conversation.is_none()
            && let Some(open) = &owner.open_conversation
        {
            conversation = self.unit.conversation(open)?.cloned();
        }
        let last_channel = conversation.as_ref().and_then(|c| c.last_channel.clone());
        let plan = match self.plan(ctx, command, &owner, last_channel)? {
            Ok(plan) => plan,
            Err(reason) => return self.reject(reason),
        };
        let conversation = conversation.map(|c| c.id);
        let fallback_after_ms =
            command.fallback_after_secs.or(ctx.outbound.fallback_after_secs).map(|s| s.saturating_mul(1000));
        let first = plan[0].clone();
        self.emit(Effect::MessageQueued {
            message: command.message.clone(),
            customer: owner.id.clone(),
            conversation: conversation.clone(),
            plan,
            fallback_after_ms,
            max_attempts: ctx.outbound.max_attempts,
            by: command.by.clone(),
            at: self.at,
        })?;
        self.record_outbound(&owner.id, conversation, event, &first)?;
        Ok(None)
    }

    /// The channels a message goes through: the first one, then its fallbacks.
    fn plan(
        &mut self,
        ctx: &Context,
        command: &SendRequest,
        owner: &CustomerRecord,
        conversation_channel: Option<String>,
    ) -> Result<Result<Vec<PlanStep>, String>, ViewError> {
        let group = self.group(owner)?;
        let identities: Vec<&str> =
            group.iter().flat_map(|c| &c.identities).map(|i| i.identity.as_str()).collect();
        let mut consent: BTreeMap<&str, &Consent> = BTreeMap::new();
        for (channel, c) in group.iter().flat_map(|r| &r.consent) {
            if consent.get(channel.as_str()).is_none_or(|old| old.at < c.at) {
                consent.insert(channel, c);
            }
        }
        let usable = |channel: &str| -> Result<PlanStep, String> {
            let Some(ch) = ctx.channels.get(channel) else {
                return Err(format!("no channel `{channel}` is configured"));
            };
            if consent.get(channel).is_some_and(|c| !c.granted) {
                return Err(format!("customer {} opted out of messages on channel `{channel}`", owner.id));
            }
            let prefix = format!("{}:", ch.identity_kind);
            let address = identities.iter().find(|i| i.starts_with(&prefix)).or_else(|| {
                PHONE_ADDRESSED
                    .contains(&ch.identity_kind.as_str())
                    .then(|| identities.iter().find(|i| i.starts_with("phone:")))
                    .flatten()
            });
            match address {
                Some(to) => Ok(PlanStep { channel: channel.into(), to: (*to).to_owned() }),
                None => Err(format!(
                    "customer {} has no `{}` identity to reach on channel `{channel}`",
                    owner.id, ch.identity_kind
                )),
            }
        };
        let first = match &command.channel {
            Some(channel) => match usable(channel) {
                Ok(step) => step,
                Err(reason) => return Ok(Err(reason)),
            },
            None => {
                // The channel the customer is on now, their preference, the policy, then
                // any channel they used (most recent first).
                let mut used: Vec<(&String, i64)> =
                    group.iter().flat_map(|c| &c.channels).map(|(id, u)| (id, u.last_seen)).collect();
                used.sort_by_key(|(_, last)| std::cmp::Reverse(*last));
                let last = group
                    .iter()
                    .filter(|c| c.last_channel.is_some())
                    .max_by_key(|c| c.last_channel_at)
                    .and_then(|c| c.last_channel.clone());
                let preferred = owner.attributes.get("preferred-channel").and_then(|v| v.as_str());
                let candidates = conversation_channel
                    .into_iter()
                    .chain(last)
                    .chain(preferred.map(str::to_owned))
                    .chain(ctx.outbound.fallback.iter().cloned())
                    .chain(used.into_iter().map(|(id, _)| id.clone()));
                let mut reasons = Vec::new();
                let mut found = None;
                for channel in candidates {
                    match usable(&channel) {
                        Ok(step) => {
                            found = Some(step);
                            break;
                        }
                        Err(reason) if !reasons.contains(&reason) => reasons.push(reason),
                        Err(_) => {}
                    }
                }
                match found {
                    Some(step) => step,
                    None if reasons.is_empty() => {
                        return Ok(Err(format!(
                            "customer {} has used no channel and no fallback channel is configured; name one with `channel`",
                            owner.id
                        )));
                    }
                    None => {
                        return Ok(Err(format!(
                            "no channel can reach customer {}: {}",
                            owner.id,
                            reasons.join("; ")
                        )));
                    }
                }
            }
        };
        let mut plan = vec![first];
        match &command.fallback {
            // Fallbacks named in the request must all be usable.
            Some(channels) => {
                for channel in channels {
                    match usable(channel) {
                        Ok(step) if !plan.iter().any(|p| p.channel == step.channel) => plan.push(step),
                        Ok(_) => {}
                        Err(reason) => return Ok(Err(format!("fallback: {reason}"))),
                    }
                }
            }
            // The policy's fallbacks are used where they can reach the customer.
            None => {
                for channel in &ctx.outbound.fallback {
                    if let Ok(step) = usable(channel)
                        && !plan.iter().any(|p| p.channel == step.channel)
                    {
                        plan.push(step);
                    }
                }
            }
        }
        Ok(Ok(plan))
    }

    /// Decides a re-drive: a dead letter is queued again from its first channel.
    pub(super) fn redrive(
        &mut self,
        command: &Redrive,
        event: &Envelope,
    ) -> Result<Option<String>, ViewError> {
        let Some(record) = self.unit.message(&command.message)?.cloned() else {
            return self.reject(format!("message {} does not exist", command.message));
        };
        if record.status != OutboundStatus::Failed {
            return self.reject(format!(
                "message {} is {}; only failed messages (dead letters) can be re-driven",
                record.id,
                record.status.as_str()
            ));
        }
        let first = record.plan[0].clone();
        let detail = Some(format!("by {}", command.by));
        self.emit(Effect::MessageUpdated {
            message: record.id.clone(),
            status: OutboundStatus::Queued,
            step: 0,
            attempts: 0,
            next_at: Some(self.at),
            provider: None,
            reason: None,
            entry: entry(self.at, "redriven", 0, &first.channel, None, detail),
        })?;
        self.record_outbound(&record.customer, record.conversation.clone(), event, &first)?;
        Ok(None)
    }

    /// Decides what an attempt means: sent, retry later, fall back, or dead letter.
    pub(super) fn attempted(
        &mut self,
        ctx: &Context,
        a: &Attempted,
        event: &Envelope,
    ) -> Result<(), ViewError> {
        let Some(record) = self.unit.message(&a.message)?.cloned() else { return Ok(()) };
        let Some(step) = record.plan.get(a.step).cloned() else { return Ok(()) };
        self.record_outbound(&record.customer, record.conversation.clone(), event, &step)?;
        // A report for a step or attempt the message has moved past changes nothing.
        if record.status != OutboundStatus::Queued
            || record.step != a.step
            || record.attempts + 1 != a.attempt
        {
            return Ok(());
        }
        let at = self.at;
        match &a.result {
            AttemptResult::Accepted { provider_id } => {
                let has_next = a.step + 1 < record.plan.len();
                let next_at =
                    record.fallback_after_ms.filter(|_| has_next).map(|ms| at.saturating_add(ms as i64));
                self.emit(Effect::MessageUpdated {
                    message: record.id.clone(),
                    status: OutboundStatus::Sent,
                    step: a.step,
                    attempts: a.attempt,
                    next_at,
                    provider: Some(ProviderRef { channel: step.channel.clone(), id: provider_id.clone() }),
                    reason: None,
                    entry: entry(
                        at,
                        "accepted",
                        a.step,
                        &step.channel,
                        Some(a.attempt),
                        Some(provider_id.clone()),
                    ),
                })?;
                if let Some(held) = self.unit.held_status(&step.channel, provider_id)? {
                    self.delivery_status(&record.id, &step.channel, &held.status, held.reason, held.at)?;
                }
            }
            AttemptResult::Rejected { reason } => {
                self.step_failed(&record, a.attempt, "rejected", reason.clone())?;
            }
            AttemptResult::RetryLater { reason, .. } | AttemptResult::Error { reason } => {
                let what =
                    if matches!(a.result, AttemptResult::Error { .. }) { "error" } else { "retry-later" };
                if a.attempt >= record.max_attempts {
                    let why = format!("{reason} (gave up after {} attempts)", a.attempt);
                    return self.step_failed(&record, a.attempt, what, why);
                }
                let exp = ctx.outbound.retry_base_ms.saturating_mul(1u64 << (a.attempt - 1).min(30));
                let mut delay = jittered(exp.min(ctx.outbound.retry_max_ms));
                if let AttemptResult::RetryLater { after_ms: Some(after), .. } = a.result {
                    delay = delay.max(after);
                }
                let detail = format!("{reason} (next attempt in {} ms)", delay);
                self.emit(Effect::MessageUpdated {
                    message: record.id.clone(),
                    status: OutboundStatus::Queued,
                    step: a.step,
                    attempts: a.attempt,
                    next_at: Some(at.saturating_add(delay as i64)),
                    provider: None,
                    reason: Some(reason.clone()),
                    entry: entry(at, what, a.step, &step.channel, Some(a.attempt), Some(detail)),
                })?;
            }
        }
        Ok(())
    }

    /// The current step failed for good: fall back to the next channel, or dead-letter.
    fn step_failed(
        &mut self,
        record: &OutboundRecord,
        attempts: u32,
        what: &str,
        reason: String,
    ) -> Result<(), ViewError> {
        let at = self.at;
        let channel = record.current().map(|s| s.channel.clone()).unwrap_or_default();
        self.emit(Effect::MessageUpdated {
            message: record.id.clone(),
            status: OutboundStatus::Queued,
            step: record.step,
            attempts,
            next_at: None,
            provider: None,
            reason: Some(reason.clone()),
            entry: entry(
                at,
                what,
                record.step,
                &channel,
                Some(attempts).filter(|n| *n > 0),
                Some(reason.clone()),
            ),
        })?;
        let (status, step, next_at, what, detail) = match record.plan.get(record.step + 1) {
            Some(next) => (
                OutboundStatus::Queued,
                record.step + 1,
                Some(at),
                "fallback",
                format!("{} -> {} after: {reason}", channel, next.channel),
            ),
            None => (OutboundStatus::Failed, record.step, None, "dead-lettered", reason.clone()),
        };
        let step_channel = record.plan.get(step).map(|s| s.channel.clone()).unwrap_or_default();
        self.emit(Effect::MessageUpdated {
            message: record.id.clone(),
            status,
            step,
            attempts: if step == record.step { attempts } else { 0 },
            next_at,
            provider: None,
            reason: Some(reason),
            entry: entry(at, what, step, &step_channel, None, Some(detail)),
        })
    }

    /// Decides a delivery timeout: fall back if the message is still only sent.
    pub(super) fn timed_out(&mut self, t: &TimedOut, event: &Envelope) -> Result<(), ViewError> {
        let Some(record) = self.unit.message(&t.message)?.cloned() else { return Ok(()) };
        if record.status != OutboundStatus::Sent || record.step != t.step {
            return Ok(());
        }
        if let Some(step) = record.current().cloned() {
            self.record_outbound(&record.customer, record.conversation.clone(), event, &step)?;
        }
        let secs = record.fallback_after_ms.unwrap_or(0) / 1000;
        self.step_failed(&record, record.attempts, "timed-out", format!("not delivered within {secs} s"))
    }

    /// Applies a provider's delivery report to the message it refers to. Returns whether
    /// one was found; if none was, the status is held for a send recorded later.
    pub(super) fn delivery_updated(
        &mut self,
        update: &types::DeliveryUpdate,
        channel: Option<&str>,
    ) -> Result<bool, ViewError> {
        let Some(channel) = channel else { return Ok(false) };
        let status = match update.status {
            types::DeliveryStatus::Sent => "sent",
            types::DeliveryStatus::Delivered => "delivered",
            types::DeliveryStatus::Read => "read",
            types::DeliveryStatus::Failed => "failed",
        };
        let at = update.at.unwrap_or(self.at);
        match self.unit.message_by_provider(channel, &update.provider_id)? {
            Some(id) => {
                self.delivery_status(&id, channel, status, update.reason.clone(), at)?;
                if let Some(record) = self.unit.message(&id)?.cloned()
                    && let Some(step) = record.plan.iter().find(|s| s.channel == channel).cloned()
                {
                    let kind = "delivery.updated";
                    self.emit(Effect::Recorded {
                        customer: record.customer.clone(),
                        conversation: record.conversation.clone(),
                        kind: kind.into(),
                        channel: Some(channel.into()),
                        identity: Some(step.to),
                        inbound_message: false,
                        at: self.at,
                    })?;
                }
                Ok(true)
            }
            None => {
                if status != "sent" {
                    self.emit(Effect::DeliveryHeld {
                        channel: channel.into(),
                        provider_id: update.provider_id.clone(),
                        status: status.into(),
                        reason: update.reason.clone(),
                        at,
                    })?;
                }
                Ok(false)
            }
        }
    }

    /// A delivery report for message `id` on `channel`: delivered and read end the
    /// message's journey (whichever channel got there); a failure of the step being waited
    /// on falls back.
    fn delivery_status(
        &mut self,
        id: &str,
        channel: &str,
        status: &str,
        reason: Option<String>,
        at: i64,
    ) -> Result<(), ViewError> {
        let Some(record) = self.unit.message(id)?.cloned() else { return Ok(()) };
        let step = record.plan.iter().position(|s| s.channel == channel).unwrap_or(record.step);
        let new = match status {
            "delivered" => OutboundStatus::Delivered,
            "read" => OutboundStatus::Read,
            "failed" => {
                let current = record.current().is_some_and(|s| s.channel == channel);
                if current && record.status == OutboundStatus::Sent {
                    let why = format!("delivery failed: {}", reason.as_deref().unwrap_or("no reason given"));
                    return self.step_failed(&record, record.attempts, "delivery-failed", why);
                }
                OutboundStatus::Failed
            }
            _ => return Ok(()),
        };
        let advances = match new {
            OutboundStatus::Delivered => {
                record.status != OutboundStatus::Delivered && record.status != OutboundStatus::Read
            }
            OutboundStatus::Read => record.status != OutboundStatus::Read,
            _ => false,
        };
        let (status, next_at) = if advances { (new, None) } else { (record.status, record.next_at) };
        let what = status_word(new);
        self.emit(Effect::MessageUpdated {
            message: record.id.clone(),
            status,
            step: if advances { step } else { record.step },
            attempts: record.attempts,
            next_at,
            provider: None,
            reason: None,
            entry: entry(at.max(0), what, step, channel, None, reason),
        })
    }

    fn record_outbound(
        &mut self,
        customer: &str,
        conversation: Option<String>,
        event: &Envelope,
        step: &PlanStep,
    ) -> Result<(), ViewError> {
        self.emit(Effect::Recorded {
            customer: customer.into(),
            conversation,
            kind: event.kind.clone(),
            channel: Some(step.channel.clone()),
            identity: Some(step.to.clone()),
            inbound_message: false,
            at: self.at,
        })
    }
}

fn status_word(status: OutboundStatus) -> &'static str {
    match status {
        OutboundStatus::Failed => "delivery-failed",
        other => other.as_str(),
    }
}
