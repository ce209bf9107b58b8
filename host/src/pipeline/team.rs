//! Deciding the team commands: agents and queues are created and changed through the log
//! like everything else, so their history is in it and a rebuild restores them.

use super::commands::{SaveAgent, SaveQueue, SetAgentStatus};
use super::decide::Decider;
use super::effects::Effect;
use crate::views::ViewError;
use crate::views::team::{AgentRecord, QueueRecord};

/// Whether `id` can name an agent or a queue: 1-64 letters, digits, `_`, `-`, `.`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Skills, languages and channel kinds: trimmed, lower-cased, without blanks or repeats.
fn tags(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> =
        list.iter().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty()).collect();
    out.sort();
    out.dedup();
    out
}

impl Decider<'_> {
    /// Creates or changes an agent.
    pub(super) fn save_agent(&mut self, command: &SaveAgent) -> Result<Option<String>, ViewError> {
        let existing = self.unit.agent(&command.id)?.cloned();
        let mut agent = match (existing, command.create) {
            (Some(_), true) => return self.reject(format!("agent `{}` already exists", command.id)),
            (None, false) => return self.reject(format!("no agent `{}`", command.id)),
            (Some(agent), false) => agent,
            (None, true) => {
                if !valid_id(&command.id) {
                    return self.reject(format!(
                        "agent id `{}` must be 1-64 letters, digits, `_`, `-` or `.`",
                        command.id
                    ));
                }
                AgentRecord {
                    id: command.id.clone(),
                    created_at: self.at,
                    status_since: self.at,
                    ..Default::default()
                }
            }
        };
        if let Some(name) = &command.name {
            agent.name = name.trim().to_owned();
        }
        if agent.name.is_empty() {
            agent.name = agent.id.clone();
        }
        if let Some(skills) = &command.skills {
            agent.skills = tags(skills);
        }
        if let Some(languages) = &command.languages {
            agent.languages = tags(languages);
        }
        if let Some(capacity) = &command.capacity {
            agent.capacity = capacity.iter().map(|(k, v)| (k.trim().to_lowercase(), *v)).collect();
        }
        agent.updated_at = self.at;
        self.emit(Effect::AgentSaved { agent })?;
        Ok(None)
    }

    /// Changes an agent's status (nothing if it is already that).
    pub(super) fn set_agent_status(&mut self, command: &SetAgentStatus) -> Result<Option<String>, ViewError> {
        let Some(previous) = self.unit.agent(&command.id)?.map(|a| a.status) else {
            return self.reject(format!("no agent `{}`", command.id));
        };
        if previous != command.status {
            let at = self.at;
            self.emit(Effect::AgentStatusChanged {
                agent: command.id.clone(),
                status: command.status,
                previous,
                at,
            })?;
        }
        Ok(None)
    }

    /// Creates or changes a queue. The overflow target must be another existing queue.
    pub(super) fn save_queue(&mut self, command: &SaveQueue) -> Result<Option<String>, ViewError> {
        let existing = self.unit.queue(&command.id)?.cloned();
        let mut queue = match (existing, command.create) {
            (Some(_), true) => return self.reject(format!("queue `{}` already exists", command.id)),
            (None, false) => return self.reject(format!("no queue `{}`", command.id)),
            (Some(queue), false) => queue,
            (None, true) => {
                if !valid_id(&command.id) {
                    return self.reject(format!(
                        "queue id `{}` must be 1-64 letters, digits, `_`, `-` or `.`",
                        command.id
                    ));
                }
                QueueRecord { id: command.id.clone(), created_at: self.at, ..Default::default() }
            }
        };
        if let Some(name) = &command.name {
            queue.name = name.trim().to_owned();
        }
        if queue.name.is_empty() {
            queue.name = queue.id.clone();
        }
        if let Some(skills) = &command.skills {
            queue.skills = tags(skills);
        }
        if let Some(priority) = command.priority {
            queue.priority = priority;
        }
        if let Some(hours) = &command.hours {
            if let Some(Err(why)) = hours.as_ref().map(|h| h.validate()) {
                return self.reject(why);
            }
            queue.hours = hours.clone();
        }
        if let Some(overflow) = &command.overflow {
            if let Some(target) = overflow {
                if target == &queue.id {
                    return self.reject(format!("queue `{}` cannot overflow to itself", queue.id));
                }
                if self.unit.queue(target)?.is_none() {
                    return self.reject(format!("overflow queue `{target}` does not exist"));
                }
            }
            queue.overflow = overflow.clone();
        }
        if let Some(timeout) = command.timeout_secs {
            if timeout == Some(0) {
                return self.reject("timeout_secs must be at least 1");
            }
            queue.timeout_secs = timeout;
        }
        if queue.timeout_secs.is_some() && queue.overflow.is_none() {
            return self.reject(format!(
                "queue `{}` has timeout_secs but no overflow queue to escalate to",
                queue.id
            ));
        }
        queue.updated_at = self.at;
        self.emit(Effect::QueueSaved { queue })?;
        Ok(None)
    }
}
