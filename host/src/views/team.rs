//! The team: agents (skills, languages, capacity per channel kind, status) and queues
//! (required skills, priority, business hours, overflow target). Keys: `g id` agent,
//! `h id` queue. Both are small sets read whole by the router and the API.

use super::{ViewError, Views, decode, key};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Whether an agent takes work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Signed in and taking conversations.
    Online,
    /// Signed in, not taking new conversations.
    Away,
    /// Signed out.
    #[default]
    Offline,
}

/// An agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentRecord {
    /// Id: 1-64 letters, digits, `_`, `-`, `.`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Skills, e.g. `support`, `billing`.
    pub skills: Vec<String>,
    /// Languages, BCP 47 tags (`ru`, `en`).
    pub languages: Vec<String>,
    /// Most conversations the agent holds at once, per channel kind (`telegram`, `email`...);
    /// `*` applies to kinds not listed. No entry: 0, the agent takes none of that kind.
    pub capacity: BTreeMap<String, u32>,
    /// Whether the agent takes work now.
    pub status: AgentStatus,
    /// Since when (ms).
    pub status_since: i64,
    /// Created (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
    /// When a conversation was last assigned to the agent (ms), for round-robin.
    #[serde(default)]
    pub last_assigned: Option<i64>,
}

impl AgentRecord {
    /// Most conversations of channel kind `kind` the agent may hold.
    pub fn capacity_for(&self, kind: &str) -> u32 {
        self.capacity.get(kind).or_else(|| self.capacity.get("*")).copied().unwrap_or(0)
    }
}

/// When a queue is staffed: on `days`, from `from` to `to`, local time at `utc_offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BusinessHours {
    /// Days of the week, `mon` ... `sun`.
    pub days: Vec<String>,
    /// Opening time, `HH:MM`.
    pub from: String,
    /// Closing time, `HH:MM` (after `from`).
    pub to: String,
    /// The local time's offset from UTC, `+03:00`, `-05:00` (no daylight saving rules).
    pub utc_offset: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn minutes(hhmm: &str) -> Option<i64> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
    ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

fn offset_minutes(offset: &str) -> Option<i64> {
    let (sign, rest) = match offset.as_bytes().first()? {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        _ => return None,
    };
    let m = minutes(rest)?;
    (m <= 14 * 60).then_some(sign * m)
}

impl BusinessHours {
    /// Checks the fields; the error names the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        if self.days.is_empty() {
            return Err("hours.days is empty: list days like \"mon\", \"tue\"".into());
        }
        if let Some(bad) = self.days.iter().find(|d| !DAYS.contains(&d.as_str())) {
            return Err(format!("hours.days: `{bad}` is not one of {}", DAYS.join(", ")));
        }
        let from = minutes(&self.from).ok_or_else(|| format!("hours.from `{}` is not HH:MM", self.from))?;
        let to = minutes(&self.to).ok_or_else(|| format!("hours.to `{}` is not HH:MM", self.to))?;
        if to <= from {
            return Err(format!("hours.to `{}` must be after hours.from `{}`", self.to, self.from));
        }
        offset_minutes(&self.utc_offset)
            .ok_or_else(|| format!("hours.utc_offset `{}` is not like +03:00 or -05:00", self.utc_offset))?;
        Ok(())
    }

    /// Whether the queue is open at `now_ms` (Unix ms).
    pub fn is_open(&self, now_ms: i64) -> bool {
        let (Some(from), Some(to), Some(offset)) =
            (minutes(&self.from), minutes(&self.to), offset_minutes(&self.utc_offset))
        else {
            return false;
        };
        let local_minutes = now_ms.div_euclid(60_000) + offset;
        let day = local_minutes.div_euclid(24 * 60);
        let minute = local_minutes.rem_euclid(24 * 60);
        // 1970-01-01 was a Thursday (index 3 from Monday).
        let weekday = DAYS[(day + 3).rem_euclid(7) as usize];
        self.days.iter().any(|d| d == weekday) && (from..to).contains(&minute)
    }
}

/// A queue (or team) conversations wait in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueRecord {
    /// Id, e.g. `support`: 1-64 letters, digits, `_`, `-`, `.`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Skills an agent needs (all of them) to take conversations from it.
    pub skills: Vec<String>,
    /// Higher is served first.
    pub priority: i32,
    /// When it is staffed; none: always.
    pub hours: Option<BusinessHours>,
    /// Where conversations go when it is closed or nobody can take them in time.
    pub overflow: Option<String>,
    /// A conversation waiting longer than this many seconds moves to `overflow`.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Created (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
}

impl QueueRecord {
    /// Whether the queue is within business hours at `now_ms`.
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.hours.as_ref().is_none_or(|h| h.is_open(now_ms))
    }
}

/// Key of agent `id`.
pub fn agent_key(id: &str) -> Vec<u8> {
    key(b'g', &[id.as_bytes()])
}

/// Key of queue `id`.
pub fn queue_key(id: &str) -> Vec<u8> {
    key(b'h', &[id.as_bytes()])
}

fn all<T: serde::de::DeserializeOwned>(views: &Views, tag: u8) -> Result<Vec<T>, ViewError> {
    views
        .tree()
        .scan_prefix([tag, 0])
        .map(|item| {
            let (k, v) = item?;
            decode(&k, &v)
        })
        .collect()
}

impl Views {
    /// Agent `id`.
    pub fn agent(&self, id: &str) -> Result<Option<AgentRecord>, ViewError> {
        self.get(&agent_key(id))
    }

    /// Every agent, by id.
    pub fn agents(&self) -> Result<Vec<AgentRecord>, ViewError> {
        all(self, b'g')
    }

    /// Queue `id`.
    pub fn queue(&self, id: &str) -> Result<Option<QueueRecord>, ViewError> {
        self.get(&queue_key(id))
    }

    /// Every queue, by id.
    pub fn queues(&self) -> Result<Vec<QueueRecord>, ViewError> {
        all(self, b'h')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(days: &[&str], from: &str, to: &str, offset: &str) -> BusinessHours {
        BusinessHours {
            days: days.iter().map(|d| d.to_string()).collect(),
            from: from.into(),
            to: to.into(),
            utc_offset: offset.into(),
        }
    }

    #[test]
    fn business_hours_follow_the_local_day_and_time() {
        // Monday 2026-11-23 06:30 UTC = 09:30 in Moscow (+03:00).
        let monday_0630_utc = 1_795_415_400_000;
        let moscow = hours(&["mon", "tue", "wed", "thu", "fri"], "09:00", "18:00", "+03:00");
        assert!(moscow.validate().is_ok());
        assert!(moscow.is_open(monday_0630_utc));
        assert!(!moscow.is_open(monday_0630_utc - 3_600_000), "08:30 local is before opening");
        assert!(!moscow.is_open(monday_0630_utc + 9 * 3_600_000), "18:30 local is after closing");
        // New York (-05:00), weekdays all day: Monday 03:00 UTC is still Sunday 22:00 there.
        let new_york = hours(&["mon", "tue", "wed", "thu", "fri"], "00:00", "24:00", "-05:00");
        assert!(!new_york.is_open(monday_0630_utc - 3 * 3_600_000 - 1_800_000));
        assert!(new_york.is_open(monday_0630_utc), "Monday 01:30 local");
    }

    #[test]
    fn bad_hours_name_the_field() {
        assert!(hours(&[], "09:00", "18:00", "+00:00").validate().unwrap_err().contains("days"));
        assert!(hours(&["mon", "fun"], "09:00", "18:00", "+00:00").validate().unwrap_err().contains("`fun`"));
        assert!(hours(&["mon"], "9am", "18:00", "+00:00").validate().unwrap_err().contains("hours.from"));
        assert!(hours(&["mon"], "18:00", "09:00", "+00:00").validate().unwrap_err().contains("after"));
        assert!(hours(&["mon"], "09:00", "18:00", "3").validate().unwrap_err().contains("utc_offset"));
    }

    #[test]
    fn capacity_falls_back_to_the_wildcard() {
        let agent = AgentRecord {
            capacity: [("email".to_owned(), 10), ("*".to_owned(), 3)].into_iter().collect(),
            ..Default::default()
        };
        assert_eq!((agent.capacity_for("email"), agent.capacity_for("telegram")), (10, 3));
        assert_eq!(AgentRecord::default().capacity_for("telegram"), 0);
    }
}
