//! A unit of work over the views: reads see the unit's own writes, effects are applied in
//! memory, and [`Unit::take_batch`] collects everything with the new cursor into one set of
//! [`Changes`], which [`Unit::write`] applies all or nothing across a crash.

use super::held::{Held, HeldRecords};
use super::lines::{self, LIVE, Lines, WAITING};
use super::outbound::{self, OrphanStatus, OutboundRecord, OutboundStatus};
use super::policy::{PolicyRecord, policy_key};
use super::records::{
    ChannelUse, Consent, Conversation, CustomerRecord, Entry, IdentityEntry, Status, encode,
};
use super::team::{self, AgentRecord, QueueRecord};
use super::whatif::{ShadowRecord, shadow_key};
use super::{CHUNK_ENTRIES, CURSOR, Changes, ViewError, Views, chunk_key, decode, key};
use crate::pipeline::effects::Effect;

// The unit's maps live for one unit of work and are keyed by ids and identities: a fast
// seeded hash instead of SipHash (which was 4% of a rebuild's applying thread).
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// A unit's conversations by id: the index keys stored for each, and the conversation as
/// the unit changed it. The keys are taken when the unit first changes a conversation it
/// read (none yet: unchanged; empty: a new one). Before, the unit kept a copy of each
/// stored conversation instead, made on every read and write: ~4% of a rebuild's applying.
pub(crate) type Conversations = HashMap<String, (Option<Vec<Vec<u8>>>, Conversation)>;

/// The index keys of conversation `c` (see [`super`]'s key list).
fn index_keys(c: &Conversation) -> Vec<Vec<u8>> {
    let mut keys = vec![super::listing_key(c)];
    if let Some(a) = &c.assignee {
        keys.push(key(b'a', &[a.as_bytes(), c.id.as_bytes()]));
    }
    // What routing counts: an agent's live conversations, a queue's waiting ones.
    match (c.status, &c.assignee, &c.queue) {
        (Status::Resolved, _, _) => {}
        (_, Some(a), _) => keys.push(lines::index_key(LIVE, a, c)),
        (_, None, Some(q)) => keys.push(lines::index_key(WAITING, q, c)),
        (_, None, None) => {}
    }
    keys
}

/// Puts a customer or conversation record in `held` when the unit holds records back (a
/// rebuild's), else in `batch`.
fn put_record(held: &mut Option<Held>, batch: &mut Changes, key: Vec<u8>, value: Vec<u8>) {
    match held {
        Some(held) => held.put(key, value),
        None => batch.insert(key, value),
    }
}

/// Pending changes to the views.
pub struct Unit {
    views: Views,
    customers: HashMap<String, CustomerRecord>,
    dirty_customers: HashSet<String>,
    /// Conversations read or changed, with the index keys stored for them to diff against.
    conversations: Conversations,
    dirty_conversations: HashSet<String>,
    /// Waiting lines and live assignments read so far, kept up to date.
    lines: Lines,
    identities: HashMap<String, String>,
    dirty_identities: Vec<String>,
    /// Outbound messages read or changed, with the stored version to diff indexes against.
    messages: HashMap<String, (Option<OutboundRecord>, OutboundRecord)>,
    dirty_messages: HashSet<String>,
    /// Provider ids recorded by this unit: (channel, provider id) -> message.
    providers: HashMap<(String, String), String>,
    /// Delivery statuses held or released by this unit.
    orphans: HashMap<(String, String), Option<OrphanStatus>>,
    agents: HashMap<String, AgentRecord>,
    dirty_agents: HashSet<String>,
    queues: HashMap<String, QueueRecord>,
    dirty_queues: HashSet<String>,
    /// Whether every stored agent and queue is in `agents` and `queues`.
    team_loaded: bool,
    /// The active routing policy: not read yet, or read (and maybe changed) by this unit.
    policy: Option<Option<PolicyRecord>>,
    /// The newest shadow run: not read yet, or read (and maybe changed) by this unit.
    shadow: Option<Option<ShadowRecord>>,
    dirty_shadow: bool,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    removes: Vec<Vec<u8>>,
    /// Customer and conversation records held back from the batches (a rebuild's).
    held: Option<Held>,
}

impl Unit {
    /// An empty unit over `views`.
    pub fn new(views: &Views) -> Self {
        Unit {
            views: views.clone(),
            customers: HashMap::default(),
            dirty_customers: HashSet::default(),
            conversations: HashMap::default(),
            dirty_conversations: HashSet::default(),
            lines: Lines::default(),
            identities: HashMap::default(),
            dirty_identities: Vec::new(),
            messages: HashMap::default(),
            dirty_messages: HashSet::default(),
            providers: HashMap::default(),
            orphans: HashMap::default(),
            agents: HashMap::default(),
            dirty_agents: HashSet::default(),
            queues: HashMap::default(),
            dirty_queues: HashSet::default(),
            team_loaded: false,
            policy: None,
            shadow: None,
            dirty_shadow: false,
            puts: Vec::new(),
            removes: Vec::new(),
            held: None,
        }
    }

    /// From now on, [`Unit::take_batch`] leaves customer and conversation records out of
    /// its batches and holds them, encoded, until [`Unit::release_held`] (a rebuild: see
    /// [`super::held`]). The processor never holds records: its batches carry them with
    /// the cursor, all or nothing.
    pub fn hold_records(&mut self) {
        self.held.get_or_insert_with(Held::default);
    }

    /// Memory the held records take, roughly, in bytes.
    pub fn held_bytes(&self) -> usize {
        self.held.as_ref().map_or(0, Held::bytes)
    }

    /// Stops holding records and returns those held, to write with [`Views::write_held`]
    /// before the unit reads the views again: from now on it reads them there.
    pub fn release_held(&mut self) -> Option<HeldRecords> {
        self.held.take().map(Held::into_records)
    }

    /// The record under views key `key`: held, or stored.
    fn read_record<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ViewError> {
        match self.held.as_ref().and_then(|h| h.get(key)) {
            Some(bytes) => decode(key, bytes).map(Some),
            None => self.views.get(key),
        }
    }

    /// Forgets every record it holds, as [`Unit::new`] would, but keeps the memory of its
    /// largest tables. Why: growing them again from empty on every restart meant fresh pages
    /// for each doubling, each zeroed by a page fault (perf: ~5% of the pipeline's CPU when
    /// every message brings a new customer).
    pub fn start_afresh(&mut self) {
        let fresh = Unit::new(&self.views);
        let mut old = std::mem::replace(self, fresh);
        old.customers.clear();
        old.dirty_customers.clear();
        old.conversations.clear();
        old.dirty_conversations.clear();
        old.identities.clear();
        old.messages.clear();
        old.dirty_messages.clear();
        self.customers = old.customers;
        self.dirty_customers = old.dirty_customers;
        self.conversations = old.conversations;
        self.dirty_conversations = old.dirty_conversations;
        self.identities = old.identities;
        self.messages = old.messages;
        self.dirty_messages = old.dirty_messages;
        self.held = old.held;
    }

    /// Records held in memory (read or written), to decide when to start afresh.
    pub fn cached(&self) -> usize {
        self.customers.len() + self.conversations.len() + self.identities.len() + self.messages.len()
    }

    /// An outbound message as changed by this unit.
    pub fn message(&mut self, id: &str) -> Result<Option<&OutboundRecord>, ViewError> {
        if !self.messages.contains_key(id) {
            match self.views.message(id)? {
                Some(m) => {
                    self.messages.insert(id.to_owned(), (Some(m.clone()), m));
                }
                None => return Ok(None),
            }
        }
        Ok(self.messages.get(id).map(|(_, m)| m))
    }

    /// The message a provider id on `channel` belongs to.
    pub fn message_by_provider(
        &mut self,
        channel: &str,
        provider_id: &str,
    ) -> Result<Option<String>, ViewError> {
        if let Some(id) = self.providers.get(&(channel.to_owned(), provider_id.to_owned())) {
            return Ok(Some(id.clone()));
        }
        self.views.message_by_provider(channel, provider_id)
    }

    /// A delivery status held for a provider id whose send was not recorded when it came.
    pub fn held_status(
        &mut self,
        channel: &str,
        provider_id: &str,
    ) -> Result<Option<OrphanStatus>, ViewError> {
        if let Some(held) = self.orphans.get(&(channel.to_owned(), provider_id.to_owned())) {
            return Ok(held.clone());
        }
        self.views.orphan_status(channel, provider_id)
    }

    /// A customer's own record, as changed by this unit.
    pub fn customer(&mut self, id: &str) -> Result<Option<&CustomerRecord>, ViewError> {
        if !self.customers.contains_key(id) {
            match self.read_record(&key(b'c', &[id.as_bytes()]))? {
                Some(record) => {
                    self.customers.insert(id.to_owned(), record);
                }
                None => return Ok(None),
            }
        }
        Ok(self.customers.get(id))
    }

    fn customer_mut(&mut self, id: &str) -> Result<Option<&mut CustomerRecord>, ViewError> {
        if self.customer(id)?.is_none() {
            return Ok(None);
        }
        self.dirty_customers.insert(id.to_owned());
        Ok(self.customers.get_mut(id))
    }

    /// The surviving customer that `id` is shown as. Borrowed: deciding asks for it
    /// several times per message, and cloning the whole record each time cost ~2% of the
    /// pipeline's CPU.
    pub fn owner(&mut self, id: &str) -> Result<Option<&CustomerRecord>, ViewError> {
        let Some(record) = self.customer(id)? else { return Ok(None) };
        match record.merged_into.clone() {
            Some(into) => self.customer(&into),
            None => self.customer(id),
        }
    }

    /// The id of the surviving customer that `id` is shown as.
    pub fn owner_id(&mut self, id: &str) -> Result<Option<String>, ViewError> {
        Ok(self.owner(id)?.map(|o| o.id.clone()))
    }

    /// The home customer of a normalized identity.
    pub fn identity_home(&mut self, identity: &str) -> Result<Option<String>, ViewError> {
        if let Some(home) = self.identities.get(identity) {
            return Ok(Some(home.clone()));
        }
        self.views.identity_home(identity)
    }

    /// Agent `id`, as this unit has it.
    pub fn agent(&mut self, id: &str) -> Result<Option<&AgentRecord>, ViewError> {
        if !self.agents.contains_key(id) {
            match self.views.agent(id)? {
                Some(a) => self.agents.insert(id.to_owned(), a),
                None => return Ok(None),
            };
        }
        Ok(self.agents.get(id))
    }

    /// Queue `id`, as this unit has it.
    pub fn queue(&mut self, id: &str) -> Result<Option<&QueueRecord>, ViewError> {
        if !self.queues.contains_key(id) {
            match self.views.queue(id)? {
                Some(q) => self.queues.insert(id.to_owned(), q),
                None => return Ok(None),
            };
        }
        Ok(self.queues.get(id))
    }

    /// Reads every stored agent and queue once; later reads are served from memory.
    fn load_team(&mut self) -> Result<(), ViewError> {
        if !self.team_loaded {
            for a in self.views.agents()? {
                self.agents.entry(a.id.clone()).or_insert(a);
            }
            for q in self.views.queues()? {
                self.queues.entry(q.id.clone()).or_insert(q);
            }
            self.team_loaded = true;
        }
        Ok(())
    }

    /// Every agent, with this unit's changes, by id.
    pub fn all_agents(&mut self) -> Result<Vec<AgentRecord>, ViewError> {
        self.load_team()?;
        let mut all: Vec<AgentRecord> = self.agents.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// Every queue, with this unit's changes, by id.
    pub fn all_queues(&mut self) -> Result<Vec<QueueRecord>, ViewError> {
        self.load_team()?;
        let mut all: Vec<QueueRecord> = self.queues.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// The conversations under `owner` in index `tag`, with this unit's changes.
    fn indexed(&mut self, tag: u8, owner: &str) -> Result<Vec<Conversation>, ViewError> {
        let ids = self.lines.set(tag, owner, &self.views, &self.conversations)?.ids(tag);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = self.conversation(&id)? {
                out.push(c.clone());
            }
        }
        Ok(out)
    }

    /// The conversations agent `agent` holds now: assigned and not resolved.
    pub fn live_assignments(&mut self, agent: &str) -> Result<Vec<Conversation>, ViewError> {
        self.indexed(LIVE, agent)
    }

    /// How many of the conversations agent `agent` holds now `counts` accepts (without
    /// copying them).
    pub fn live_count(
        &mut self,
        agent: &str,
        counts: impl Fn(&Conversation) -> bool,
    ) -> Result<usize, ViewError> {
        let ids = self.lines.set(LIVE, agent, &self.views, &self.conversations)?.ids(LIVE);
        let mut n = 0;
        for id in ids {
            if self.conversation(&id)?.is_some_and(&counts) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// How many conversations wait in `queue`: a set's size, whatever the backlog.
    pub fn waiting_count(&mut self, queue: &str) -> Result<usize, ViewError> {
        Ok(self.lines.set(WAITING, queue, &self.views, &self.conversations)?.len())
    }

    /// The places (key suffixes, see [`crate::views::waiting_id`]) of the conversations
    /// waiting in `queue`, first in line first: the line without reading a record.
    pub fn waiting_places(&mut self, queue: &str) -> Result<Vec<Vec<u8>>, ViewError> {
        Ok(self.lines.set(WAITING, queue, &self.views, &self.conversations)?.suffixes().cloned().collect())
    }

    /// The conversations waiting in `queue` (in it, not resolved, nobody assigned), first
    /// in line first.
    pub fn waiting(&mut self, queue: &str) -> Result<Vec<Conversation>, ViewError> {
        self.indexed(WAITING, queue)
    }

    /// Every queue something waits in, stored or changed by this unit.
    pub fn waiting_queues(&mut self) -> Result<Vec<String>, ViewError> {
        let mut queues: HashSet<String> = self.views.index_owners(b'w')?.into_iter().collect();
        queues.extend(
            self.conversations.values().filter(|(_, c)| c.is_waiting()).filter_map(|(_, c)| c.queue.clone()),
        );
        let mut queues: Vec<String> = queues.into_iter().collect();
        queues.sort();
        Ok(queues)
    }

    /// A conversation as changed by this unit.
    pub fn conversation(&mut self, id: &str) -> Result<Option<&Conversation>, ViewError> {
        if !self.conversations.contains_key(id) {
            match self.read_record::<Conversation>(&key(b'v', &[id.as_bytes()]))? {
                Some(c) => {
                    self.conversations.insert(id.to_owned(), (None, c));
                }
                None => return Ok(None),
            }
        }
        Ok(self.conversations.get(id).map(|(_, c)| c))
    }

    fn conversation_mut(&mut self, id: &str) -> Result<Option<&mut Conversation>, ViewError> {
        if self.conversation(id)?.is_none() {
            return Ok(None);
        }
        self.dirty_conversations.insert(id.to_owned());
        self.lines.touched(id);
        Ok(self.conversations.get_mut(id).map(|(stored, c)| {
            stored.get_or_insert_with(|| index_keys(c));
            c
        }))
    }

    /// Puts conversation `id` in `queue` with `agent` (none: it waits there) at `at`: keeps
    /// its waiting times, the agent's last assignment and the customer's last agent.
    fn place(
        &mut self,
        id: &str,
        queue: Option<String>,
        agent: Option<String>,
        at: i64,
    ) -> Result<(), ViewError> {
        let Some(c) = self.conversation_mut(id)? else { return Ok(()) };
        let previous_queue = std::mem::replace(&mut c.queue, queue);
        let previous_agent = std::mem::replace(&mut c.assignee, agent.clone());
        c.updated_at = c.updated_at.max(at);
        c.settle_wait(previous_queue.as_deref(), at);
        let customer = c.customer.clone();
        let Some(agent) = agent.filter(|a| previous_agent.as_ref() != Some(a)) else { return Ok(()) };
        if self.agent(&agent)?.is_some()
            && let Some(record) = self.agents.get_mut(&agent)
        {
            record.last_assigned = Some(at);
            self.dirty_agents.insert(agent.clone());
        }
        let owner = self.owner_id(&customer)?.unwrap_or(customer);
        if let Some(record) = self.customer_mut(&owner)? {
            record.last_agent = Some(agent);
        }
        Ok(())
    }

    /// Policy version `version` as stored (versions never change once written; the unit
    /// holds only the active one).
    pub fn views_policy(&mut self, version: u32) -> Result<Option<PolicyRecord>, ViewError> {
        match self.policy.as_ref().and_then(Option::as_ref) {
            Some(active) if active.version == version => Ok(Some(active.clone())),
            _ => self.views.policy(version),
        }
    }

    /// The active routing policy, if one was ever activated.
    pub fn policy(&mut self) -> Result<Option<&PolicyRecord>, ViewError> {
        if self.policy.is_none() {
            self.policy = Some(self.views.active_policy()?);
        }
        Ok(self.policy.as_ref().and_then(Option::as_ref))
    }

    /// The newest shadow run (running or stopped), if one was ever started.
    pub fn shadow(&mut self) -> Result<Option<&ShadowRecord>, ViewError> {
        if self.shadow.is_none() {
            self.shadow = Some(self.views.latest_shadow()?);
        }
        Ok(self.shadow.as_ref().and_then(Option::as_ref))
    }

    /// The newest shadow run, to change, if it is `version`.
    fn shadow_mut(&mut self, version: u32) -> Result<Option<&mut ShadowRecord>, ViewError> {
        self.shadow()?;
        let run = self.shadow.as_mut().and_then(Option::as_mut).filter(|s| s.version == version);
        if run.is_some() {
            self.dirty_shadow = true;
        }
        Ok(run)
    }

    /// Records the outcome of the API command at `source`.
    pub fn command_outcome(&mut self, source: u64, refused: Option<&str>) {
        self.puts.push((key(b'r', &[&source.to_be_bytes()]), encode(&refused)));
    }

    /// Applies one effect of the decision about the input at `source`.
    pub fn apply(&mut self, source: u64, effect: &Effect) -> Result<(), ViewError> {
        match effect {
            Effect::CustomerCreated { customer, at } => {
                let record = CustomerRecord { id: customer.clone(), created_at: *at, ..Default::default() };
                self.customers.insert(customer.clone(), record);
                self.dirty_customers.insert(customer.clone());
            }
            Effect::IdentityLinked { customer, identity, reason } => {
                self.identities.insert(identity.clone(), customer.clone());
                self.dirty_identities.push(identity.clone());
                if let Some(record) = self.customer_mut(customer)?
                    && !record.identities.iter().any(|i| &i.identity == identity)
                {
                    record
                        .identities
                        .push(IdentityEntry { identity: identity.clone(), reason: reason.clone() });
                }
            }
            Effect::LinkRefused { .. } | Effect::RouteFailed { .. } | Effect::Rejected { .. } => {}
            Effect::AgentSaved { agent } => {
                self.agents.insert(agent.id.clone(), agent.clone());
                self.dirty_agents.insert(agent.id.clone());
            }
            Effect::AgentStatusChanged { agent, status, at, .. } => {
                if self.agent(agent)?.is_some()
                    && let Some(record) = self.agents.get_mut(agent)
                {
                    record.status = *status;
                    record.status_since = *at;
                    record.updated_at = *at;
                    self.dirty_agents.insert(agent.clone());
                }
            }
            Effect::PolicyActivated { policy } => {
                self.puts.push((policy_key(policy.version), encode(policy)));
                self.policy = Some(Some(policy.clone()));
            }
            Effect::ShadowStarted { shadow } => {
                // The run it replaces stops; it is written now, as it will not change again.
                if let Some(running) = self.shadow()?.filter(|s| s.stopped_at.is_none()).cloned() {
                    let stopped = ShadowRecord { stopped_at: Some(shadow.started_at), ..running };
                    self.puts.push((shadow_key(stopped.version), encode(&stopped)));
                }
                self.shadow = Some(Some(shadow.clone()));
                self.dirty_shadow = true;
            }
            Effect::ShadowStopped { version, at } => {
                if let Some(run) = self.shadow_mut(*version)? {
                    run.stopped_at = Some(*at);
                }
            }
            Effect::ShadowDecided { version, compared } => {
                if let Some(run) = self.shadow_mut(*version)? {
                    run.diff.observe(compared);
                }
            }
            Effect::QueueSaved { queue } => {
                self.queues.insert(queue.id.clone(), queue.clone());
                self.dirty_queues.insert(queue.id.clone());
            }
            Effect::MessageQueued {
                message,
                customer,
                conversation,
                plan,
                fallback_after_ms,
                max_attempts,
                by,
                at,
            } => {
                let record = OutboundRecord {
                    id: message.clone(),
                    customer: customer.clone(),
                    conversation: conversation.clone(),
                    request: source,
                    plan: plan.clone(),
                    step: 0,
                    attempts: 0,
                    status: OutboundStatus::Queued,
                    next_at: Some(*at),
                    fallback_after_ms: *fallback_after_ms,
                    max_attempts: *max_attempts,
                    provider_ids: Vec::new(),
                    reason: None,
                    history: vec![outbound::HistoryEntry {
                        at: *at,
                        what: "queued".into(),
                        step: 0,
                        channel: plan.first().map(|p| p.channel.clone()).unwrap_or_default(),
                        attempt: None,
                        detail: None,
                    }],
                    by: by.clone(),
                    created_at: *at,
                    updated_at: *at,
                };
                self.messages.insert(message.clone(), (None, record));
                self.dirty_messages.insert(message.clone());
            }
            Effect::MessageUpdated { message, status, step, attempts, next_at, provider, reason, entry } => {
                if self.message(message)?.is_none() {
                    return Ok(());
                }
                self.dirty_messages.insert(message.clone());
                let Some((_, record)) = self.messages.get_mut(message) else { return Ok(()) };
                record.status = *status;
                record.step = *step;
                record.attempts = *attempts;
                record.next_at = *next_at;
                if reason.is_some() {
                    record.reason = reason.clone();
                }
                record.updated_at = record.updated_at.max(entry.at);
                record.history.push(entry.clone());
                if let Some(p) = provider {
                    record.provider_ids.push(p.clone());
                    self.providers.insert((p.channel.clone(), p.id.clone()), message.clone());
                    self.puts.push((outbound::provider_key(&p.channel, &p.id), message.as_bytes().to_vec()));
                    self.orphans.insert((p.channel.clone(), p.id.clone()), None);
                    self.removes.push(outbound::orphan_key(&p.channel, &p.id));
                }
            }
            Effect::DeliveryHeld { channel, provider_id, status, reason, at } => {
                let held = OrphanStatus { status: status.clone(), reason: reason.clone(), at: *at };
                self.puts.push((outbound::orphan_key(channel, provider_id), encode(&held)));
                self.orphans.insert((channel.clone(), provider_id.clone()), Some(held));
            }
            Effect::CustomersMerged { into, members, .. } => {
                let mut open = None;
                let mut last = None;
                for member in members {
                    if let Some(record) = self.customer_mut(member)? {
                        record.merged_into = Some(into.clone());
                        open = open.or(record.open_conversation.take());
                        last = last.max(record.last_conversation.clone());
                    }
                }
                if let Some(record) = self.customer_mut(into)? {
                    for member in members {
                        if !record.absorbed.contains(member) {
                            record.absorbed.push(member.clone());
                        }
                    }
                    if record.open_conversation.is_none() {
                        record.open_conversation = open;
                    }
                    // Conversation ids are ULIDs: the greater one is the later conversation.
                    record.last_conversation = record.last_conversation.clone().max(last);
                }
            }
            Effect::CustomerRestored { customer, from, members } => {
                for member in members {
                    if let Some(record) = self.customer_mut(member)? {
                        record.merged_into = (member != customer).then(|| customer.clone());
                    }
                }
                if let Some(record) = self.customer_mut(from)? {
                    record.absorbed.retain(|m| !members.contains(m));
                }
            }
            Effect::AttributesSet { customer, set, removed } => {
                if let Some(record) = self.customer_mut(customer)? {
                    for name in removed {
                        record.attributes.remove(name);
                    }
                    for (name, value) in set {
                        record.attributes.insert(name.clone(), value.clone());
                    }
                }
            }
            Effect::ConsentSet { customer, channel, granted, at } => {
                if let Some(record) = self.customer_mut(customer)? {
                    record.consent.insert(channel.clone(), Consent { granted: *granted, at: *at });
                }
            }
            Effect::ConversationOpened { conversation, customer, at } => {
                let c = Conversation {
                    id: conversation.clone(),
                    customer: customer.clone(),
                    status: Status::Open,
                    opened_at: *at,
                    updated_at: *at,
                    resolved_at: None,
                    channels: Vec::new(),
                    last_channel: None,
                    queue: None,
                    assignee: None,
                    priority: 0,
                    tags: Vec::new(),
                    route_reason: None,
                    router: None,
                    message_count: 0,
                    last_message_at: None,
                    reopened: 0,
                    first_offset: None,
                    last_offset: None,
                    timelines: vec![customer.clone()],
                    waiting_since: None,
                    queued_at: None,
                };
                self.conversations.insert(conversation.clone(), (Some(Vec::new()), c));
                self.dirty_conversations.insert(conversation.clone());
                self.lines.touched(conversation);
                if let Some(record) = self.customer_mut(customer)? {
                    record.open_conversation = Some(conversation.clone());
                    record.last_conversation = Some(conversation.clone());
                    record.counters.conversations += 1;
                }
            }
            Effect::ConversationReopened { conversation, at } => {
                let Some(c) = self.conversation_mut(conversation)? else { return Ok(()) };
                c.status = Status::Open;
                c.resolved_at = None;
                c.updated_at = *at;
                c.reopened += 1;
                let queue = c.queue.clone();
                c.settle_wait(queue.as_deref(), *at);
                let customer = c.customer.clone();
                if let Some(owner) = self.owner_id(&customer)?
                    && let Some(record) = self.customer_mut(&owner)?
                {
                    record.open_conversation = Some(conversation.clone());
                }
            }
            Effect::ConversationResolved { conversation, at, .. } => {
                let Some(c) = self.conversation_mut(conversation)? else { return Ok(()) };
                c.status = Status::Resolved;
                c.resolved_at = Some(*at);
                c.updated_at = *at;
                c.settle_wait(None, *at);
                let customer = c.customer.clone();
                let owner = self.owner_id(&customer)?;
                for id in [Some(customer), owner].into_iter().flatten() {
                    if let Some(record) = self.customer_mut(&id)?
                        && record.open_conversation.as_ref() == Some(conversation)
                    {
                        record.open_conversation = None;
                    }
                }
            }
            Effect::ConversationRouted { conversation, queue, agent, priority, tags, reason, router, at } => {
                let Some(c) = self.conversation_mut(conversation)? else { return Ok(()) };
                c.priority = *priority;
                for tag in tags {
                    if !c.tags.contains(tag) {
                        c.tags.push(tag.clone());
                    }
                }
                c.route_reason = Some(reason.clone());
                c.router = Some(router.clone());
                self.place(conversation, queue.clone(), agent.clone(), *at)?;
            }
            Effect::ConversationAssigned { conversation, queue, agent, at, .. } => {
                self.place(conversation, queue.clone(), agent.clone(), *at)?;
            }
            Effect::ConversationEscalated { conversation, to, at, .. } => {
                self.place(conversation, Some(to.clone()), None, *at)?;
            }
            Effect::ConversationStatusSet { conversation, status, at, .. } => {
                let Some(c) = self.conversation_mut(conversation)? else { return Ok(()) };
                c.status = *status;
                c.updated_at = c.updated_at.max(*at);
            }
            Effect::Recorded { customer, conversation, kind, channel, identity, inbound_message, at } => {
                let entry = Entry {
                    offset: source,
                    kind: kind.clone(),
                    channel: channel.clone(),
                    conversation: conversation.clone(),
                    identity: identity.clone(),
                    at: *at,
                };
                match self.customer_mut(customer)? {
                    Some(record) => {
                        record.first_seen = Some(record.first_seen.map_or(*at, |f| f.min(*at)));
                        record.last_seen = Some(record.last_seen.map_or(*at, |l| l.max(*at)));
                        record.counters.events += 1;
                        if *inbound_message {
                            record.counters.messages_in += 1;
                        }
                        if let Some(ch) = channel {
                            let used = record
                                .channels
                                .entry(ch.clone())
                                .or_insert_with(|| ChannelUse { first_seen: *at, ..ChannelUse::default() });
                            used.last_seen = used.last_seen.max(*at);
                            used.events += 1;
                            if *inbound_message {
                                used.messages += 1;
                                record.last_channel = Some(ch.clone());
                                record.last_channel_at = Some(*at);
                            }
                        }
                        record.recent.push(&entry);
                        if record.recent.len() >= CHUNK_ENTRIES {
                            let chunk = record
                                .recent
                                .take_chunk()
                                .map_err(|e| ViewError::corrupt_recent(customer, e))?;
                            if let Some((first, chunk)) = chunk {
                                self.puts.push((chunk_key(customer, first), chunk));
                            }
                        }
                    }
                    // Decisions only record events of customers they created or found, so
                    // this is not expected; the entry still gets a chunk of its own.
                    None => self.puts.push((chunk_key(customer, source), encode(&[entry]))),
                }
                if let Some(id) = conversation
                    && let Some(c) = self.conversation_mut(id)?
                {
                    c.first_offset.get_or_insert(source);
                    c.last_offset = Some(source);
                    if !c.timelines.contains(customer) {
                        c.timelines.push(customer.clone());
                    }
                    c.updated_at = c.updated_at.max(*at);
                    if *inbound_message {
                        c.message_count += 1;
                        c.last_message_at = Some(*at);
                        if c.status == Status::Pending {
                            c.status = Status::Open;
                        }
                        if let Some(ch) = channel {
                            if !c.channels.contains(ch) {
                                c.channels.push(ch.clone());
                            }
                            c.last_channel = Some(ch.clone());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The changes made since the last call, with `cursor`, as one batch to apply later;
    /// the unit keeps every record it holds, so it can go on deciding against state that
    /// is not yet written.
    pub fn take_batch(&mut self, cursor: u64) -> Changes {
        let mut batch = Changes::default();
        for id in self.dirty_agents.drain() {
            if let Some(record) = self.agents.get(&id) {
                batch.insert(team::agent_key(&id), encode(record));
            }
        }
        for id in self.dirty_queues.drain() {
            if let Some(record) = self.queues.get(&id) {
                batch.insert(team::queue_key(&id), encode(record));
            }
        }
        for id in self.dirty_customers.drain() {
            if let Some(record) = self.customers.get(&id) {
                put_record(&mut self.held, &mut batch, key(b'c', &[id.as_bytes()]), encode(record));
            }
        }
        for identity in self.dirty_identities.drain(..) {
            if let Some(home) = self.identities.get(&identity) {
                batch.insert(key(b'i', &[identity.as_bytes()]), home.as_bytes());
            }
        }
        for id in self.dirty_conversations.drain() {
            let Some((stored, after)) = self.conversations.get_mut(&id) else { continue };
            // Only index keys that changed are written: most updates (a new message) move
            // none, and each write costs sled a node copy.
            let new = index_keys(after);
            let stored = stored.get_or_insert_default();
            for k in stored.iter() {
                if !new.contains(k) {
                    batch.remove(k.as_slice());
                }
            }
            for k in &new {
                if !stored.contains(k) {
                    batch.insert(k.clone(), Vec::new());
                }
            }
            *stored = new;
            put_record(&mut self.held, &mut batch, key(b'v', &[id.as_bytes()]), encode(&*after));
        }
        for id in self.dirty_messages.drain() {
            let Some((before, after)) = self.messages.get_mut(&id) else { continue };
            let new = after.index_keys();
            let old = before.as_ref().map(OutboundRecord::index_keys).unwrap_or_default();
            for k in &old {
                if !new.contains(k) {
                    batch.remove(k.as_slice());
                }
            }
            for k in new {
                if !old.contains(&k) {
                    batch.insert(k, Vec::new());
                }
            }
            batch.insert(outbound::record_key(&id), encode(&*after));
            *before = Some(after.clone());
        }
        for (k, v) in self.puts.drain(..) {
            batch.insert(k, v);
        }
        if std::mem::take(&mut self.dirty_shadow)
            && let Some(run) = self.shadow.as_ref().and_then(Option::as_ref)
        {
            batch.insert(shadow_key(run.version), encode(run));
        }
        // Removals last: a status held and released within one batch ends up removed (once
        // released, a provider id is never held again).
        for k in self.removes.drain(..) {
            batch.remove(k);
        }
        batch.insert(CURSOR, cursor.to_be_bytes());
        batch
    }

    /// Writes changes from [`Unit::take_batch`], all or nothing across a crash.
    pub fn write(&self, changes: Changes) -> Result<(), ViewError> {
        self.views.apply(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(unit: &mut Unit, id: &str) {
        unit.apply(
            1,
            &Effect::ConversationOpened { conversation: id.into(), customer: "cus_1".into(), at: 1 },
        )
        .unwrap();
    }

    fn routed(unit: &mut Unit, id: &str, queue: Option<&str>, agent: Option<&str>) {
        let effect = Effect::ConversationRouted {
            conversation: id.into(),
            queue: queue.map(str::to_owned),
            agent: agent.map(str::to_owned),
            priority: 0,
            tags: Vec::new(),
            reason: "test".into(),
            router: "test@1".into(),
            at: 2,
        };
        unit.apply(2, &effect).unwrap();
    }

    fn ids(conversations: Vec<Conversation>) -> Vec<String> {
        let mut ids: Vec<String> = conversations.into_iter().map(|c| c.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn conversations_list_by_status_and_queue_in_id_order_page_by_page() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let views = Views::open(&db, "views").unwrap();
        let mut unit = Unit::new(&views);
        let queues = [("c1", Some("support")), ("c2", Some("sales")), ("c3", None), ("c4", Some("support"))];
        for (id, queue) in queues.into_iter().chain([("c5", Some("sales")), ("c6", Some("support"))]) {
            opened(&mut unit, id);
            routed(&mut unit, id, queue, None);
        }
        let resolved =
            Effect::ConversationResolved { conversation: "c4".into(), at: 3, reason: "done".into() };
        unit.apply(3, &resolved).unwrap();
        let batch = unit.take_batch(10);
        unit.write(batch).unwrap();

        let list = |status: Option<Status>, queue: Option<&str>, after: Option<&str>, limit: usize| {
            let filter = crate::views::ConversationFilter {
                status,
                queue: queue.map(str::to_owned),
                after: after.map(str::to_owned),
                limit,
                ..Default::default()
            };
            let listed = views.conversations(&filter).unwrap();
            listed.into_iter().map(|c| c.id).collect::<Vec<_>>()
        };
        let open = Some(Status::Open);
        // Across queues (and none), merged in id order, page by page.
        assert_eq!(list(open, None, None, 2), ["c1", "c2"]);
        assert_eq!(list(open, None, Some("c2"), 2), ["c3", "c5"]);
        assert_eq!(list(open, None, Some("c5"), 2), ["c6"]);
        // Across statuses.
        assert_eq!(list(None, Some("support"), None, 10), ["c1", "c4", "c6"]);
        assert_eq!(list(None, Some("support"), Some("c1"), 1), ["c4"]);
        assert_eq!(list(Some(Status::Resolved), Some("support"), None, 10), ["c4"]);
        assert_eq!(list(open, Some("sales"), None, 10), ["c2", "c5"]);

        // Moved to another queue: listed there only.
        let mut unit = Unit::new(&views);
        routed(&mut unit, "c2", Some("support"), None);
        let batch = unit.take_batch(11);
        unit.write(batch).unwrap();
        assert_eq!(list(open, Some("sales"), None, 10), ["c5"]);
        assert_eq!(list(open, Some("support"), None, 10), ["c1", "c2", "c6"]);
        assert_eq!(list(open, None, None, 10), ["c1", "c2", "c3", "c5", "c6"]);
    }

    #[test]
    fn loads_and_waiting_counts_see_stored_and_pending_changes() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let views = Views::open(&db, "views").unwrap();
        let mut unit = Unit::new(&views);
        for id in ["c1", "c2", "c3"] {
            opened(&mut unit, id);
        }
        routed(&mut unit, "c1", Some("support"), Some("anna"));
        routed(&mut unit, "c2", Some("support"), None);
        routed(&mut unit, "c3", Some("support"), None);
        assert_eq!(ids(unit.live_assignments("anna").unwrap()), ["c1"]);
        assert_eq!(unit.waiting("support").unwrap().len(), 2);
        let batch = unit.take_batch(10);
        unit.write(batch).unwrap();

        // A fresh unit reads the stored indexes; its own changes correct them.
        let mut unit = Unit::new(&views);
        assert_eq!(ids(unit.live_assignments("anna").unwrap()), ["c1"]);
        assert_eq!(unit.waiting("support").unwrap().len(), 2);
        routed(&mut unit, "c2", Some("support"), Some("anna"));
        unit.apply(
            3,
            &Effect::ConversationResolved { conversation: "c1".into(), at: 3, reason: "done".into() },
        )
        .unwrap();
        assert_eq!(ids(unit.live_assignments("anna").unwrap()), ["c2"], "resolved ones do not count");
        assert_eq!(unit.waiting("support").unwrap().len(), 1, "an assigned one no longer waits");
        // The lines the unit has read stay up to date: a conversation opened and queued
        // after they were read joins them, and a written batch changes nothing.
        opened(&mut unit, "c4");
        routed(&mut unit, "c4", Some("support"), None);
        assert_eq!(unit.waiting_count("support").unwrap(), 2);
        let batch = unit.take_batch(20);
        unit.write(batch).unwrap();
        assert_eq!(unit.waiting_count("support").unwrap(), 2);
        routed(&mut unit, "c4", Some("billing"), None);
        assert_eq!(unit.waiting_count("support").unwrap(), 1, "moved to another queue");
        assert_eq!(unit.waiting_count("billing").unwrap(), 1);
        assert_eq!(unit.live_count("anna", |c| c.id == "c2").unwrap(), 1);
        let batch = unit.take_batch(30);
        unit.write(batch).unwrap();
        let mut unit = Unit::new(&views);
        assert_eq!(ids(unit.live_assignments("anna").unwrap()), ["c2"]);
        assert_eq!(unit.waiting("support").unwrap().len(), 1);
        assert_eq!(ids(unit.waiting("billing").unwrap()), ["c4"]);
        assert!(unit.live_assignments("bob").unwrap().is_empty());
    }
}

#[cfg(test)]
mod line_order {
    use super::*;

    fn queued(unit: &mut Unit, id: &str, priority: i32, at: i64) {
        unit.apply(
            1,
            &Effect::ConversationOpened { conversation: id.into(), customer: "cus_1".into(), at: 1 },
        )
        .unwrap();
        rerouted(unit, id, priority, at);
    }

    fn rerouted(unit: &mut Unit, id: &str, priority: i32, at: i64) {
        let effect = Effect::ConversationRouted {
            conversation: id.into(),
            queue: Some("support".into()),
            agent: None,
            priority,
            tags: Vec::new(),
            reason: "test".into(),
            router: "test@1".into(),
            at,
        };
        unit.apply(2, &effect).unwrap();
    }

    #[test]
    fn a_waiting_line_is_in_priority_then_waiting_order_and_positions_count_it() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let views = Views::open(&db, "views").unwrap();
        let mut unit = Unit::new(&views);
        // (id, priority, queued at): ids sort the other way round, so only the rank orders.
        for (id, priority, at) in
            [("c5", 0, 100), ("c4", -3, 50), ("c3", 7, 300), ("c2", 0, 20), ("c1", 7, 400)]
        {
            queued(&mut unit, id, priority, at);
        }
        let expected = ["c3", "c1", "c2", "c5", "c4"];
        let order = |line: Vec<Conversation>| line.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(order(unit.waiting("support").unwrap()), expected, "the unit's line");
        let batch = unit.take_batch(10);
        unit.write(batch).unwrap();
        assert_eq!(order(views.waiting_in("support").unwrap()), expected, "the stored line");
        for (place, id) in expected.iter().enumerate() {
            let c = views.conversation(id).unwrap().unwrap();
            assert_eq!(views.queue_position(&c).unwrap(), Some(place + 1), "{id}");
        }
        // A fresh unit reads the stored line in order; a change of priority moves one.
        let mut unit = Unit::new(&views);
        assert_eq!(order(unit.waiting("support").unwrap()), expected);
        rerouted(&mut unit, "c4", 9, 500);
        assert_eq!(order(unit.waiting("support").unwrap()), ["c4", "c3", "c1", "c2", "c5"]);
        let batch = unit.take_batch(20);
        unit.write(batch).unwrap();
        // The places were read before the move: they follow the writes.
        for (place, id) in ["c4", "c3", "c1", "c2", "c5"].iter().enumerate() {
            let c = views.conversation(id).unwrap().unwrap();
            assert_eq!(views.queue_position(&c).unwrap(), Some(place + 1), "{id} after the move");
        }
        assert_eq!(views.waiting_in("support").unwrap().len(), 5, "the old key is gone");
        // Assigned, c3 leaves the line; the ones behind it move up.
        let effect = Effect::ConversationRouted {
            conversation: "c3".into(),
            queue: Some("support".into()),
            agent: Some("anna".into()),
            priority: 7,
            tags: Vec::new(),
            reason: "test".into(),
            router: "test@1".into(),
            at: 600,
        };
        unit.apply(3, &effect).unwrap();
        let batch = unit.take_batch(30);
        unit.write(batch).unwrap();
        let c3 = views.conversation("c3").unwrap().unwrap();
        assert_eq!(views.queue_position(&c3).unwrap(), None, "assigned");
        let c5 = views.conversation("c5").unwrap().unwrap();
        assert_eq!(views.queue_position(&c5).unwrap(), Some(4));
    }
}
