//! Routing and the queue.
//!
//! - **Routing**: the active policy is a chain of router plugins. Each sees the route
//!   context plus what the routers before it decided (`proposed`), and returns the whole
//!   decision so far; the last one's decision is applied.
//! - **The queue**: a conversation placed in a queue with no agent waits there, first in
//!   line by priority and then by how long it has waited. When an agent comes online, is
//!   given more capacity or finishes a conversation, waiting conversations are offered to
//!   the policy again (trigger `reoffer`), first in line first. A queue with a timeout
//!   moves a conversation that waited too long to its overflow queue (trigger
//!   `escalation`); the queue clock ([`super::clock`]) appends the input that does it.
//!
//! Every outcome is an effect in the log, so a rebuild never calls a router.

use super::commands::{Content, EscalationDue, SendRequest, UpdateConversation};
use super::decide::{Context, Decider};
use super::effects::Effect;
use crate::runtime::Runtime;
use crate::runtime::bindings::{routing, types};
use crate::views::ViewError;
use crate::views::records::{Conversation, Status};
use crate::views::team::AgentStatus;
use std::collections::HashMap;

/// Most conversations offered to the policy again after one change (one agent freed up):
/// bounds the work one input can cause. The rest wait for the next change.
const REOFFER_MAX: usize = 32;

/// Longest reply a router may send, bytes (the API's limit for an agent's text).
const MAX_REPLY: usize = 64 * 1024;

/// What a policy decided, and which routers decided it.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The decision of the last router in the chain.
    pub decision: routing::Decision,
    /// `name@version` of each router, joined by ` -> `.
    pub routers: String,
}

/// A router in the chain failed; the conversation keeps its placement.
#[derive(Debug, Clone)]
pub struct Failed {
    /// `name@version` of the router that failed (or the name, if it is not loaded).
    pub router: String,
    /// What went wrong.
    pub error: String,
}

/// Runs the routers of `chain` (plugin names) in order on `context`, each one seeing the
/// decision of the ones before it in `context.proposed`.
pub async fn run_chain(
    runtime: &Runtime,
    chain: &[String],
    context: &mut routing::RouteContext,
) -> Result<Routed, Failed> {
    let mut ids = Vec::with_capacity(chain.len());
    context.proposed = None;
    for name in chain {
        let id = runtime.slot(name).map_or_else(|| name.clone(), |s| s.current().id());
        match runtime.route(name, context).await {
            Ok(Ok(decision)) => context.proposed = Some(decision),
            Ok(Err(error)) => return Err(Failed { router: id, error }),
            Err(e) => return Err(Failed { router: id, error: e.to_string() }),
        }
        ids.push(id);
    }
    match context.proposed.take() {
        Some(decision) => Ok(Routed { decision, routers: ids.join(" -> ") }),
        None => Err(Failed { router: String::new(), error: "the routing policy is empty".into() }),
    }
}

impl Decider<'_> {
    /// What a router sees for conversation `c`: `event` on `channel` (for a reoffer or an
    /// escalation, none and the customer's last channel).
    pub(super) fn route_context(
        &mut self,
        ctx: &Context,
        c: &Conversation,
        trigger: routing::Trigger,
        event: Option<types::Event>,
        channel: Option<&str>,
    ) -> Result<routing::RouteContext, ViewError> {
        let record = self.unit.owner(&c.customer)?.cloned().unwrap_or_default();
        let group = self.group(&record)?;
        let identities = group
            .iter()
            .flat_map(|c| &c.identities)
            .filter_map(|i| i.identity.split_once(':'))
            .map(|(k, v)| types::Identity { kind: k.into(), value: v.into() })
            .collect();
        let attributes = record
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect();
        let mut channels: Vec<String> = group.iter().flat_map(|c| c.channels.keys().cloned()).collect();
        channels.sort();
        channels.dedup();
        let channel = channel.or(c.last_channel.as_deref()).unwrap_or("").to_owned();
        let channel_kind = ctx.channels.get(&channel).map_or_else(|| channel.clone(), |ch| ch.kind);
        let (queues, agents) = self.team_context(ctx, &channel_kind)?;
        Ok(routing::RouteContext {
            trigger,
            event,
            channel_kind,
            channel,
            customer: routing::CustomerSummary {
                id: record.id.clone(),
                identities,
                attributes,
                channels,
                last_agent: record.last_agent.clone(),
                previous_conversations: group
                    .iter()
                    .map(|c| c.counters.conversations)
                    .sum::<u64>()
                    .saturating_sub(1) as u32,
            },
            conversation: routing::ConversationSummary {
                id: c.id.clone(),
                status: match c.status {
                    Status::Open => routing::ConversationStatus::Open,
                    Status::Pending => routing::ConversationStatus::Pending,
                    Status::Resolved => routing::ConversationStatus::Resolved,
                },
                channels: c.channels.clone(),
                queue: c.queue.clone(),
                assignee: c.assignee.clone(),
                tags: c.tags.clone(),
                message_count: c.message_count as u32,
                opened_at: c.opened_at,
                waiting_since: c.waiting_since,
            },
            queues,
            agents,
            now: self.at,
            proposed: None,
        })
    }

    /// The queues and agents a router sees for a conversation on a channel of kind `kind`:
    /// each queue with whether it is open now and how many conversations wait in it; each
    /// agent with its status, the conversations of that kind it holds (by their last
    /// channel) and its capacity for the kind.
    fn team_context(
        &mut self,
        ctx: &Context,
        kind: &str,
    ) -> Result<(Vec<routing::Queue>, Vec<routing::Agent>), ViewError> {
        let mut queues = Vec::new();
        for q in self.unit.all_queues()? {
            let waiting = self.unit.waiting_count(&q.id)? as u32;
            queues.push(routing::Queue {
                open: q.is_open(self.at),
                id: q.id,
                skills: q.skills,
                priority: q.priority,
                waiting,
            });
        }
        let mut agents = Vec::new();
        for a in self.unit.all_agents()? {
            let load = self.load(ctx, &a.id, kind)?;
            agents.push(routing::Agent {
                capacity: a.capacity_for(kind),
                status: match a.status {
                    AgentStatus::Online => routing::AgentStatus::Online,
                    AgentStatus::Away => routing::AgentStatus::Away,
                    AgentStatus::Offline => routing::AgentStatus::Offline,
                },
                id: a.id,
                name: a.name,
                skills: a.skills,
                languages: a.languages,
                load,
                last_assigned: a.last_assigned,
            });
        }
        Ok((queues, agents))
    }

    /// The unresolved conversations of channel kind `kind` (by their last channel) that
    /// agent `agent` holds.
    fn load(&mut self, ctx: &Context, agent: &str, kind: &str) -> Result<u32, ViewError> {
        let kind_of =
            |channel: &str| ctx.channels.get(channel).map_or_else(|| channel.to_owned(), |c| c.kind);
        Ok(self.unit.live_count(agent, |c| c.last_channel.as_deref().is_some_and(|ch| kind_of(ch) == kind))?
            as u32)
    }

    /// Asks the policy where conversation `id` goes, unless an agent already has it, and
    /// applies the decision. Returns whether an agent has it afterwards.
    pub(super) async fn route(
        &mut self,
        ctx: &Context,
        id: &str,
        trigger: routing::Trigger,
        event: Option<types::Event>,
        channel: Option<&str>,
    ) -> Result<bool, ViewError> {
        let Some(runtime) = &ctx.runtime else { return Ok(false) };
        let chain = self.chain(ctx)?;
        if chain.is_empty() {
            return Ok(false);
        }
        let Some(current) = self.unit.conversation(id)?.cloned() else { return Ok(false) };
        if current.assignee.is_some() {
            return Ok(true);
        }
        let mut context = self.route_context(ctx, &current, trigger, event, channel)?;
        let live = run_chain(runtime, &chain, &mut context).await;
        self.shadow_route(runtime, &mut context, &live).await?;
        let effect = match live {
            Ok(Routed { decision: mut d, routers }) => {
                if let Some(text) = d.reply.take()
                    && let Some(request) = self.reply_request(id, text, &routers)
                {
                    self.replies.push(request);
                }
                let new_tags = d.tags.iter().any(|t| !current.tags.contains(t));
                let changed = d.queue != current.queue
                    || d.agent != current.assignee
                    || d.priority != current.priority
                    || new_tags;
                if !changed {
                    return Ok(false);
                }
                Effect::ConversationRouted {
                    conversation: id.into(),
                    queue: d.queue,
                    agent: d.agent,
                    priority: d.priority,
                    tags: d.tags,
                    reason: d.reason,
                    router: routers,
                    at: self.at,
                }
            }
            Err(Failed { router, error }) => Effect::RouteFailed { conversation: id.into(), router, error },
        };
        self.emit(effect)?;
        Ok(self.unit.conversation(id)?.is_some_and(|c| c.assignee.is_some()))
    }

    /// The send request for the policy's `reply` to the customer of conversation `id`: a
    /// `message.send-requested` input by `router:<routers>`, on the channel the customer
    /// used last. It is appended to the log with this decision, all or nothing, and its
    /// idempotency key is this input's, so a decision made again after a crash cannot
    /// send it twice. An empty or oversized reply is logged and dropped.
    fn reply_request(&self, id: &str, text: String, routers: &str) -> Option<crate::log::NewEvent> {
        let text = text.trim().to_owned();
        if text.is_empty() || text.len() > MAX_REPLY {
            tracing::warn!(
                conversation = id,
                routers,
                bytes = text.len(),
                "router reply empty or too long: not sent"
            );
            return None;
        }
        let request = SendRequest {
            message: format!("msg_bot_{}_{id}", self.source),
            customer: None,
            identity: None,
            conversation: Some(id.to_owned()),
            channel: None,
            fallback: None,
            fallback_after_secs: None,
            content: Content { text: Some(text), ..Content::default() },
            by: format!("router:{routers}"),
        };
        let payload = serde_json::value::to_raw_value(&request).ok()?;
        let mut event = crate::log::NewEvent::input(super::commands::SEND, payload);
        event.idempotency_key = Some(format!("router-reply\u{0}{}\u{0}{id}", self.source));
        event.conversation = Some(id.to_owned());
        Some(event)
    }

    /// Offers waiting conversations to the policy again, first in line first, after a
    /// change that may let an agent take one: `agent` came online, got capacity or skills,
    /// or finished a conversation (none: any agent, e.g. a queue's skills changed).
    ///
    /// A conversation no online agent has the skills and room for is skipped without
    /// asking the policy; at most [`REOFFER_MAX`] are offered per change.
    pub(super) async fn reoffer(&mut self, ctx: &Context, agent: Option<&str>) -> Result<(), ViewError> {
        if ctx.runtime.is_none() || self.chain(ctx)?.is_empty() {
            return Ok(());
        }
        let agents: Vec<_> =
            self.unit.all_agents()?.into_iter().filter(|a| a.status == AgentStatus::Online).collect();
        if let Some(id) = agent
            && !agents.iter().any(|a| a.id == id)
        {
            return Ok(());
        }
        // The merged line: queue priority first, then each queue's own order (its keys').
        // Only ids are gathered; a conversation is read when its turn comes.
        let mut skills_of: Vec<Vec<String>> = Vec::new();
        let mut line: Vec<(std::cmp::Reverse<i32>, Vec<u8>, usize)> = Vec::new();
        for queue in self.unit.waiting_queues()? {
            let record = self.unit.queue(&queue)?.cloned();
            let skills = record.as_ref().map(|q| q.skills.clone()).unwrap_or_default();
            let priority = record.as_ref().map_or(0, |q| q.priority);
            if let Some(id) = agent
                && !agents.iter().any(|a| a.id == id && skills.iter().all(|s| a.skills.contains(s)))
            {
                continue;
            }
            let at = skills_of.len();
            skills_of.push(skills);
            for place in self.unit.waiting_places(&queue)? {
                line.push((std::cmp::Reverse(priority), place, at));
            }
        }
        line.sort_unstable();
        // Room per (agent, kind), counted once and kept up to date as agents take work.
        let mut room: HashMap<(String, String), bool> = HashMap::new();
        let mut offered = 0;
        for (_, place, at) in line {
            if offered == REOFFER_MAX {
                break;
            }
            let skills = &skills_of[at];
            let id = crate::views::waiting_id(&place);
            let Some(c) = self.unit.conversation(&id)? else { continue };
            let channel = c.last_channel.clone().unwrap_or_default();
            let kind = ctx.channels.get(&channel).map_or_else(|| channel.clone(), |ch| ch.kind);
            let mut fits = false;
            for a in agents.iter().filter(|a| skills.iter().all(|s| a.skills.contains(s))) {
                let slot = (a.id.clone(), kind.clone());
                let has_room = match room.get(&slot) {
                    Some(r) => *r,
                    None => {
                        let r = self.load(ctx, &a.id, &kind)? < a.capacity_for(&kind);
                        room.insert(slot, r);
                        r
                    }
                };
                if has_room {
                    fits = true;
                    break;
                }
            }
            if !fits {
                continue;
            }
            offered += 1;
            if self.route(ctx, &id, routing::Trigger::Reoffer, None, None).await? {
                // Someone took it: their room for this kind must be counted again.
                room.retain(|(_, k), _| *k != kind);
            }
        }
        Ok(())
    }

    /// Moves each conversation of `due` that still waits past its queue's timeout (at this
    /// input's time) to the queue's overflow target, and asks the policy again.
    pub(super) async fn escalate(&mut self, ctx: &Context, due: &EscalationDue) -> Result<(), ViewError> {
        for id in &due.conversations {
            let Some(c) = self.unit.conversation(id)?.cloned() else { continue };
            let (Some(queue), Some(since)) = (c.queue.clone(), c.queued_at) else { continue };
            if !c.is_waiting() {
                continue;
            }
            let Some(record) = self.unit.queue(&queue)?.cloned() else { continue };
            let (Some(timeout), Some(to)) = (record.timeout_secs, record.overflow) else { continue };
            if self.at < since.saturating_add((timeout as i64).saturating_mul(1000)) {
                continue;
            }
            let at = self.at;
            self.emit(Effect::ConversationEscalated { conversation: id.clone(), from: queue, to, at })?;
            self.route(ctx, id, routing::Trigger::Escalation, None, None).await?;
        }
        Ok(())
    }

    /// Assigns, transfers, unassigns, resolves, reopens or sets pending a conversation, then
    /// offers waiting conversations to the agent who let this one go.
    pub(super) async fn update_conversation(
        &mut self,
        ctx: &Context,
        command: &UpdateConversation,
    ) -> Result<Option<String>, ViewError> {
        let Some(c) = self.unit.conversation(&command.conversation)?.cloned() else {
            return self.reject(format!("conversation {} does not exist", command.conversation));
        };
        if let (Some(me), Some(other)) = (&command.as_agent, &c.assignee)
            && me != other
        {
            return self.reject(format!("conversation {} is assigned to agent `{other}`, not `{me}`", c.id));
        }
        if let Some(Some(agent)) = &command.assignee
            && self.unit.agent(agent)?.is_none()
        {
            return self.reject(format!("no agent `{agent}`"));
        }
        if let Some(Some(queue)) = &command.queue
            && !super::team::valid_id(queue)
        {
            return self.reject(format!("queue id `{queue}` must be 1-64 letters, digits, `_`, `-` or `.`"));
        }
        match command.status {
            Some(Status::Open) if c.status == Status::Resolved => {
                let open = self.unit.owner(&c.customer)?.and_then(|o| o.open_conversation.clone());
                if let Some(open) = open.filter(|o| *o != c.id) {
                    return self
                        .reject(format!("the customer's conversation {open} is open; reopen one at a time"));
                }
            }
            Some(Status::Pending) if c.status == Status::Resolved => {
                return self.reject("a resolved conversation can only be reopened (status `open`)");
            }
            _ => {}
        }
        let at = self.at;
        let by = command.by.clone();
        let queue = command.queue.clone().unwrap_or_else(|| c.queue.clone());
        let assignee = command.assignee.clone().unwrap_or_else(|| c.assignee.clone());
        if queue != c.queue || assignee != c.assignee {
            self.emit(Effect::ConversationAssigned {
                conversation: c.id.clone(),
                queue,
                agent: assignee,
                by: by.clone(),
                at,
            })?;
        }
        match command.status {
            Some(Status::Resolved) if c.status != Status::Resolved => {
                self.emit(Effect::ConversationResolved {
                    conversation: c.id.clone(),
                    at,
                    reason: format!("resolved by {by}"),
                })?;
            }
            Some(Status::Open) if c.status == Status::Resolved => {
                self.emit(Effect::ConversationReopened { conversation: c.id.clone(), at })?;
            }
            Some(status) if status != c.status => {
                self.emit(Effect::ConversationStatusSet { conversation: c.id.clone(), status, by, at })?;
            }
            _ => {}
        }
        let Some(now) = self.unit.conversation(&c.id)?.cloned() else { return Ok(None) };
        let freed = c.status != Status::Resolved
            && (now.status == Status::Resolved || now.assignee != c.assignee)
            && c.assignee.is_some();
        if freed {
            self.reoffer(ctx, c.assignee.as_deref()).await?;
        }
        if now.is_waiting() && !c.is_waiting() {
            self.reoffer(ctx, None).await?;
        }
        Ok(None)
    }
}
