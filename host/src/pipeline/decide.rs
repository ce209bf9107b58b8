//! Deciding one input: identity resolution -> conversation threading -> router plugin.
//! Every decision is emitted as an [`Effect`] and applied to the unit of work at once, so
//! the next step (and the next input in the batch) sees it.

use super::commands::{self, Merge, Redrive, SendRequest, Unmerge, UpdateAttributes};
use super::effects::Effect;
use super::identity::{Key, Normalizer, Rules};
use super::outbound::{self, Attempted, TimedOut};
use crate::channels::Channels;
use crate::config::OutboundRules;
use crate::log::Envelope;
use crate::runtime::Runtime;
use crate::runtime::bindings::{routing, types};
use crate::views::ViewError;
use crate::views::records::{CustomerRecord, Status};
use crate::views::unit::Unit;
use std::collections::HashMap;

/// What deciding needs besides the unit of work.
pub struct Context {
    /// Identity normalization.
    pub normalizer: Normalizer,
    /// Merge rules.
    pub rules: Rules,
    /// Reopen window, ms.
    pub reopen_window_ms: i64,
    /// The runtime, for the router plugins.
    pub runtime: Option<Runtime>,
    /// The routing policy: router plugin names, called in order (empty: no routing).
    pub chain: Vec<String>,
    /// The configured channels: kinds for the router, address kinds for outbound plans.
    pub channels: Channels,
    /// Retries and fallback of outbound messages.
    pub outbound: OutboundRules,
}

impl Context {
    /// The context for `config`: its identity and conversation rules, and the routing
    /// policy `chain` (router plugin names, none: no routing) called through `runtime`.
    pub fn new(
        config: &crate::config::SeamConfig,
        runtime: Option<Runtime>,
        chain: &[String],
        channels: Channels,
    ) -> Self {
        let normalizer = Normalizer::new(&config.identity);
        Context {
            rules: Rules::new(&config.identity, &normalizer),
            normalizer,
            reopen_window_ms: (config.conversations.reopen_window_secs as i64).saturating_mul(1000),
            runtime,
            chain: chain.to_vec(),
            channels,
            outbound: config.outbound.clone(),
        }
    }
}

/// Effects being emitted for one input, applied as they are emitted.
pub struct Decider<'a> {
    pub(super) unit: &'a mut Unit,
    pub(super) source: u64,
    pub(super) at: i64,
    effects: Vec<Effect>,
    /// Send requests for the replies the live policy asked for, appended to the log with
    /// this decision (all or nothing) and decided as inputs after it.
    pub(super) replies: Vec<crate::log::NewEvent>,
}

pub(super) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new())
}

impl<'a> Decider<'a> {
    /// A decider for the input at `source`, appended at `at` (ms).
    pub fn new(unit: &'a mut Unit, source: u64, at: i64) -> Self {
        Decider { unit, source, at, effects: Vec::new(), replies: Vec::new() }
    }

    /// The inputs this decision asks to append with it: send requests for the policy's
    /// replies.
    pub fn take_replies(&mut self) -> Vec<crate::log::NewEvent> {
        std::mem::take(&mut self.replies)
    }

    /// The effects emitted.
    pub fn finish(self) -> Vec<Effect> {
        self.effects
    }

    pub(super) fn emit(&mut self, effect: Effect) -> Result<(), ViewError> {
        self.unit.apply(self.source, &effect)?;
        self.effects.push(effect);
        Ok(())
    }

    pub(super) fn reject(&mut self, reason: impl Into<String>) -> Result<Option<String>, ViewError> {
        let reason = reason.into();
        self.emit(Effect::Rejected { reason: reason.clone() })?;
        Ok(Some(reason))
    }

    /// Decides `event`. Returns the refusal reason for commands that were refused.
    pub async fn decide(&mut self, ctx: &Context, event: &Envelope) -> Result<Option<String>, ViewError> {
        let payload = event.payload.get();
        macro_rules! parse {
            ($t:ty) => {
                match serde_json::from_str::<$t>(payload) {
                    Ok(v) => v,
                    Err(e) => return self.reject(format!("{} payload is invalid: {e}", event.kind)),
                }
            };
        }
        let channel = event.channel.clone();
        match event.kind.as_str() {
            "message.received" => {
                let message = parse!(types::InboundMessage);
                let Some(key) = self.identity(ctx, &message.sender)? else { return Ok(None) };
                let how = format!("first contact on {}", channel.as_deref().unwrap_or("the API"));
                let home = self.resolve_or_create(&key, &how)?;
                let owner = self.owner_id(&home)?;
                let conversation = self.thread(ctx, &owner)?;
                let message = Some(types::Event::Message(message));
                self.route(ctx, &conversation, routing::Trigger::Event, message, channel.as_deref()).await?;
                self.record(&home, Some(conversation), event, Some(key), true)?;
            }
            "message.edited" => {
                let edit = parse!(types::MessageEdit);
                let Some(key) = self.identity(ctx, &edit.sender)? else { return Ok(None) };
                let home = self.resolve_or_create(&key, "edited a message")?;
                let open = self.open_conversation(&home)?;
                self.record(&home, open, event, Some(key), false)?;
            }
            "call.updated" => {
                let call = parse!(types::CallEvent);
                let Some(key) = self.identity(ctx, &call.customer)? else { return Ok(None) };
                let how = format!("first call on {}", channel.as_deref().unwrap_or("a line"));
                let home = self.resolve_or_create(&key, &how)?;
                // A missed call from the customer opens (or reopens) the conversation and is
                // routed like a message, so that an agent calls back.
                let missed = call.direction == types::CallDirection::Inbound
                    && matches!(
                        call.status,
                        types::CallStatus::NoAnswer | types::CallStatus::Busy | types::CallStatus::Canceled
                    );
                let conversation = if missed {
                    let owner = self.owner_id(&home)?;
                    let conversation = self.thread(ctx, &owner)?;
                    let call = Some(types::Event::Call(call));
                    self.route(ctx, &conversation, routing::Trigger::Event, call, channel.as_deref()).await?;
                    Some(conversation)
                } else {
                    self.open_conversation(&home)?
                };
                self.record(&home, conversation, event, Some(key), false)?;
            }
            "delivery.updated" => {
                let update = parse!(types::DeliveryUpdate);
                if self.delivery_updated(&update, channel.as_deref())? {
                    return Ok(None);
                }
                let Some(recipient) = update.recipient else { return Ok(None) };
                let Some(key) = self.identity(ctx, &recipient)? else { return Ok(None) };
                if let Some(home) = self.unit.identity_home(&key.0)? {
                    let open = self.open_conversation(&home)?;
                    self.record(&home, open, event, Some(key), false)?;
                }
            }
            "consent.changed" => {
                let consent = parse!(types::ConsentChange);
                let Some(key) = self.identity(ctx, &consent.customer)? else { return Ok(None) };
                let home = self.resolve_or_create(&key, "consent change")?;
                if let Some(ch) = &channel {
                    self.emit(Effect::ConsentSet {
                        customer: home.clone(),
                        channel: ch.clone(),
                        granted: consent.granted,
                        at: self.at,
                    })?;
                }
                self.record(&home, None, event, Some(key), false)?;
            }
            "identity.hinted" => {
                let hint = parse!(types::IdentityHint);
                self.hint(ctx, &hint, event)?;
            }
            "channel.event" => {
                let ev = parse!(types::ChannelEvent);
                if let Some(identity) = &ev.customer {
                    let Some(key) = self.identity(ctx, identity)? else { return Ok(None) };
                    if let Some(home) = self.unit.identity_home(&key.0)? {
                        let open = self.open_conversation(&home)?;
                        self.record(&home, open, event, Some(key), false)?;
                    }
                }
            }
            commands::UPDATE => {
                let command = parse!(UpdateAttributes);
                let Some(owner) = self.unit.owner_id(&command.customer)? else {
                    return self.reject(format!("customer {} does not exist", command.customer));
                };
                self.emit(Effect::AttributesSet {
                    customer: owner,
                    set: command.set,
                    removed: command.remove,
                })?;
            }
            commands::MERGE => {
                let command = parse!(Merge);
                return self.merge_command(ctx, &command);
            }
            commands::UNMERGE => {
                let command = parse!(Unmerge);
                return self.unmerge_command(&command);
            }
            commands::SEND => {
                let command = parse!(SendRequest);
                return self.send_requested(ctx, &command, event);
            }
            commands::REDRIVE => {
                let command = parse!(Redrive);
                return self.redrive(&command, event);
            }
            commands::AGENT_SAVE => {
                let command = parse!(commands::SaveAgent);
                let refused = self.save_agent(&command)?;
                if refused.is_none() {
                    self.reoffer(ctx, Some(&command.id)).await?;
                }
                return Ok(refused);
            }
            commands::AGENT_STATUS => {
                let command = parse!(commands::SetAgentStatus);
                let refused = self.set_agent_status(&command)?;
                if refused.is_none() {
                    self.reoffer(ctx, Some(&command.id)).await?;
                }
                return Ok(refused);
            }
            commands::QUEUE_SAVE => {
                let refused = self.save_queue(&parse!(commands::SaveQueue))?;
                if refused.is_none() {
                    self.reoffer(ctx, None).await?;
                }
                return Ok(refused);
            }
            commands::CONVERSATION_UPDATE => {
                return self.update_conversation(ctx, &parse!(commands::UpdateConversation)).await;
            }
            commands::POLICY_SET => return self.set_policy(ctx, &parse!(commands::SetPolicy), event.offset),
            commands::POLICY_ROLLBACK => {
                return self.rollback_policy(ctx, &parse!(commands::RollbackPolicy), event.offset);
            }
            commands::SHADOW_SET => return self.set_shadow(ctx, &parse!(commands::SetShadow), event.offset),
            commands::ESCALATION_DUE => self.escalate(ctx, &parse!(commands::EscalationDue)).await?,
            outbound::ATTEMPTED => {
                let attempted = parse!(Attempted);
                self.attempted(ctx, &attempted, event)?;
            }
            outbound::TIMED_OUT => {
                let timed_out = parse!(TimedOut);
                self.timed_out(&timed_out, event)?;
            }
            other => {
                tracing::debug!(kind = other, offset = event.offset, "input type has no pipeline step");
            }
        }
        Ok(None)
    }

    /// Normalizes a connector's identity; an invalid one rejects the input.
    pub(super) fn identity(
        &mut self,
        ctx: &Context,
        identity: &types::Identity,
    ) -> Result<Option<Key>, ViewError> {
        match ctx.normalizer.normalize(&identity.kind, &identity.value) {
            Ok(key) => Ok(Some(key)),
            Err(reason) => {
                self.reject(format!("identity {}:{}: {reason}", identity.kind, identity.value))?;
                Ok(None)
            }
        }
    }

    pub(super) fn resolve_or_create(&mut self, key: &Key, how: &str) -> Result<String, ViewError> {
        if let Some(home) = self.unit.identity_home(&key.0)? {
            return Ok(home);
        }
        let customer = new_id("cus");
        self.emit(Effect::CustomerCreated { customer: customer.clone(), at: self.at })?;
        self.emit(Effect::IdentityLinked {
            customer: customer.clone(),
            identity: key.0.clone(),
            reason: how.into(),
        })?;
        Ok(customer)
    }

    fn owner_id(&mut self, id: &str) -> Result<String, ViewError> {
        Ok(self.unit.owner_id(id)?.unwrap_or_else(|| id.to_owned()))
    }

    pub(super) fn open_conversation(&mut self, home: &str) -> Result<Option<String>, ViewError> {
        Ok(self.unit.owner(home)?.and_then(|o| o.open_conversation.clone()))
    }

    /// The conversation a customer message belongs to: the open one, a recently resolved
    /// one reopened, or a new one.
    fn thread(&mut self, ctx: &Context, owner: &str) -> Result<String, ViewError> {
        let (open, last) = self
            .unit
            .owner(owner)?
            .map(|o| (o.open_conversation.clone(), o.last_conversation.clone()))
            .unwrap_or_default();
        if let Some(open) = open
            && self.unit.conversation(&open)?.is_some_and(|c| c.status != Status::Resolved)
        {
            return Ok(open);
        }
        if let Some(last) = &last {
            let window = ctx.reopen_window_ms;
            if let Some(c) = self.unit.conversation(last)?
                && c.status == Status::Resolved
                && c.resolved_at.is_some_and(|r| self.at - r <= window)
            {
                let id = c.id.clone();
                self.emit(Effect::ConversationReopened { conversation: id.clone(), at: self.at })?;
                return Ok(id);
            }
        }
        let id = new_id("cnv");
        self.emit(Effect::ConversationOpened {
            conversation: id.clone(),
            customer: owner.into(),
            at: self.at,
        })?;
        Ok(id)
    }

    fn record(
        &mut self,
        home: &str,
        conversation: Option<String>,
        event: &Envelope,
        identity: Option<Key>,
        inbound_message: bool,
    ) -> Result<(), ViewError> {
        self.emit(Effect::Recorded {
            customer: home.into(),
            conversation,
            kind: event.kind.clone(),
            channel: event.channel.clone(),
            identity: identity.map(|k| k.0),
            inbound_message,
            at: self.at,
        })
    }

    /// Every identity in the group of the surviving customer `owner`.
    pub(super) fn group(&mut self, owner: &CustomerRecord) -> Result<Vec<CustomerRecord>, ViewError> {
        let mut group = vec![owner.clone()];
        for member in &owner.absorbed {
            if let Some(record) = self.unit.customer(member)? {
                group.push(record.clone());
            }
        }
        Ok(group)
    }

    fn count_kind(group: &[CustomerRecord], kind: &str) -> usize {
        group
            .iter()
            .flat_map(|c| &c.identities)
            .filter(|i| i.identity.split(':').next() == Some(kind))
            .count()
    }

    fn hint(&mut self, ctx: &Context, hint: &types::IdentityHint, event: &Envelope) -> Result<(), ViewError> {
        let Some(known) = self.identity(ctx, &hint.known)? else { return Ok(()) };
        let Some(also) = self.identity(ctx, &hint.also)? else { return Ok(()) };
        let reason = format!("{} on {}", hint.reason, event.channel.as_deref().unwrap_or("the API"));
        let known_home = self.unit.identity_home(&known.0)?;
        let also_home = self.unit.identity_home(&also.0)?;
        let refusal = if ctx.rules.blocked(&also) || ctx.rules.blocked(&known) {
            let which = if ctx.rules.blocked(&also) { &also } else { &known };
            Some(format!("{which} is blocked from linking customers"))
        } else if !ctx.rules.auto_links(&also) {
            Some(format!("identities of kind `{}` do not link customers automatically", also.kind()))
        } else {
            None
        };
        let home = match (known_home, also_home) {
            _ if refusal.is_some() => {
                let home = self.resolve_or_create(&known, &reason)?;
                let why = refusal.unwrap_or_default();
                self.emit(Effect::LinkRefused {
                    identity: also.0.clone(),
                    customer: home.clone(),
                    reason: why,
                })?;
                home
            }
            (None, None) => {
                let home = self.resolve_or_create(&known, &reason)?;
                self.link(ctx, &home, &also, &reason)?;
                home
            }
            (Some(home), None) => {
                self.link(ctx, &home, &also, &reason)?;
                home
            }
            (None, Some(home)) => {
                self.link(ctx, &home, &known, &reason)?;
                home
            }
            (Some(a), Some(b)) => {
                let owner_a = self.unit.owner(&a)?.cloned().unwrap_or_default();
                let owner_b = self.unit.owner(&b)?.cloned().unwrap_or_default();
                if owner_a.id != owner_b.id {
                    let (into, from) = self.survivor(ctx, owner_a, owner_b)?;
                    match self.check_merge(ctx, &into, &from)? {
                        Err(why) => self.emit(Effect::LinkRefused {
                            identity: also.0.clone(),
                            customer: a.clone(),
                            reason: why,
                        })?,
                        Ok(()) => self.merge(&into, &from, reason.clone())?,
                    }
                }
                a
            }
        };
        let open = self.open_conversation(&home)?;
        self.record(&home, open, event, Some(known), false)
    }

    /// Links `identity` to customer `home`, unless the customer's group already holds the
    /// kind's limit.
    fn link(&mut self, ctx: &Context, home: &str, identity: &Key, reason: &str) -> Result<(), ViewError> {
        let owner = self.unit.owner(home)?.cloned().unwrap_or_default();
        let group = self.group(&owner)?;
        if let Some(limit) = ctx.rules.limit(identity.kind())
            && Self::count_kind(&group, identity.kind()) >= limit
        {
            return self.emit(Effect::LinkRefused {
                identity: identity.0.clone(),
                customer: home.into(),
                reason: format!(
                    "customer {} already has {limit} identities of kind `{}`",
                    owner.id,
                    identity.kind()
                ),
            });
        }
        self.emit(Effect::IdentityLinked {
            customer: home.into(),
            identity: identity.0.clone(),
            reason: reason.into(),
        })
    }

    /// Which of two customers survives a merge: the one holding the highest-priority kind,
    /// then the older one.
    fn survivor(
        &mut self,
        ctx: &Context,
        a: CustomerRecord,
        b: CustomerRecord,
    ) -> Result<(CustomerRecord, CustomerRecord), ViewError> {
        let rank = |this: &mut Self, c: &CustomerRecord| -> Result<usize, ViewError> {
            let group = this.group(c)?;
            Ok(group
                .iter()
                .flat_map(|c| &c.identities)
                .map(|i| ctx.rules.rank(i.identity.split(':').next().unwrap_or("")))
                .min()
                .unwrap_or(usize::MAX))
        };
        let (ra, rb) = (rank(self, &a)?, rank(self, &b)?);
        let a_first = (ra, a.created_at, &a.id) <= (rb, b.created_at, &b.id);
        Ok(if a_first { (a, b) } else { (b, a) })
    }

    /// Whether `from` may merge into `into` under the per-kind limits.
    fn check_merge(
        &mut self,
        ctx: &Context,
        into: &CustomerRecord,
        from: &CustomerRecord,
    ) -> Result<Result<(), String>, ViewError> {
        let mut group = self.group(into)?;
        group.extend(self.group(from)?);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for identity in group.iter().flat_map(|c| &c.identities) {
            *counts.entry(identity.identity.split(':').next().unwrap_or("")).or_default() += 1;
        }
        for (kind, count) in counts {
            if let Some(limit) = ctx.rules.limit(kind)
                && count > limit
            {
                return Ok(Err(format!(
                    "merging {} into {} would give {count} identities of kind `{kind}` (limit {limit})",
                    from.id, into.id
                )));
            }
        }
        Ok(Ok(()))
    }

    fn merge(
        &mut self,
        into: &CustomerRecord,
        from: &CustomerRecord,
        reason: String,
    ) -> Result<(), ViewError> {
        // Two open conversations become one: the absorbed customer's is resolved.
        if let (Some(_), Some(theirs)) = (&into.open_conversation, &from.open_conversation) {
            self.emit(Effect::ConversationResolved {
                conversation: theirs.clone(),
                at: self.at,
                reason: format!("customer {} merged into {}", from.id, into.id),
            })?;
        }
        let mut members = vec![from.id.clone()];
        members.extend(from.absorbed.iter().cloned());
        self.emit(Effect::CustomersMerged { from: from.id.clone(), into: into.id.clone(), members, reason })
    }

    fn merge_command(&mut self, ctx: &Context, command: &Merge) -> Result<Option<String>, ViewError> {
        let Some(into) = self.unit.owner(&command.customer)?.cloned() else {
            return self.reject(format!("customer {} does not exist", command.customer));
        };
        let Some(from) = self.unit.owner(&command.other)?.cloned() else {
            return self.reject(format!("customer {} does not exist", command.other));
        };
        if into.id == from.id {
            return self
                .reject(format!("customers {} and {} are already one", command.customer, command.other));
        }
        if let Err(why) = self.check_merge(ctx, &into, &from)? {
            return self.reject(why);
        }
        self.merge(&into, &from, format!("requested by {}", command.by))?;
        Ok(None)
    }

    fn unmerge_command(&mut self, command: &Unmerge) -> Result<Option<String>, ViewError> {
        let Some(owner) = self.unit.owner(&command.customer)?.cloned() else {
            return self.reject(format!("customer {} does not exist", command.customer));
        };
        let target = match (&command.restore, &command.identity) {
            (Some(id), _) => id.clone(),
            (None, Some(identity)) => match self.unit.identity_home(identity)? {
                Some(home) => home,
                None => return self.reject(format!("no customer holds identity {identity}")),
            },
            (None, None) => {
                return self.reject("name the merged customer (`customer`) or one of its identities");
            }
        };
        if !owner.absorbed.contains(&target) {
            return self.reject(format!("customer {target} is not merged into {}", owner.id));
        }
        let mut members = vec![target.clone()];
        if let Some(record) = self.unit.customer(&target)? {
            members.extend(record.absorbed.iter().filter(|m| owner.absorbed.contains(m)).cloned());
        }
        self.emit(Effect::CustomerRestored { customer: target, from: owner.id, members })?;
        Ok(None)
    }
}
