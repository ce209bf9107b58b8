//! The queue clock: time does not append to the log by itself, so this task looks for
//! conversations that have waited in a queue past its `timeout_secs` and appends one
//! `queue.escalation-due` input naming them. The pipeline checks each again at that input's
//! time and moves the ones still waiting to the queue's overflow target (see
//! [`super::route`]). A scan that races the pipeline at worst names a conversation twice;
//! the second time it no longer waits there and nothing happens.

use super::Progress;
use super::commands::{ESCALATION_DUE, EscalationDue};
use crate::log::{EventLog, NewEvent};
use crate::views::{ViewError, Views};
use std::sync::Arc;
use std::time::Duration;

/// Conversations named per input at most.
const MAX_PER_INPUT: usize = 256;

/// The conversations waiting past their queue's timeout at `now` (Unix ms), oldest first
/// per queue.
pub fn due(views: &Views, now: i64) -> Result<Vec<String>, ViewError> {
    let mut due = Vec::new();
    for queue in views.queues()? {
        let (Some(timeout), Some(_)) = (queue.timeout_secs, &queue.overflow) else { continue };
        let limit = (timeout as i64).saturating_mul(1000);
        for c in views.waiting_in(&queue.id)? {
            if c.queued_at.is_some_and(|at| now.saturating_sub(at) >= limit) {
                due.push(c.id);
                if due.len() == MAX_PER_INPUT {
                    return Ok(due);
                }
            }
        }
    }
    Ok(due)
}

/// Scans every `every` until the log closes.
pub async fn run(log: Arc<dyn EventLog>, views: Views, progress: Progress, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let conversations = match due(&views, crate::log::now_ms()) {
            Ok(due) if due.is_empty() => continue,
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "queue clock cannot read the views");
                continue;
            }
        };
        let Ok(payload) = serde_json::value::to_raw_value(&EscalationDue { conversations }) else { continue };
        match log.append(vec![NewEvent::input(ESCALATION_DUE, payload)]).await {
            Ok(appended) => {
                // Wait until it is applied, so the next scan does not name the same ones.
                if let Some(first) = appended.first() {
                    progress.wait_for(first.offset, Duration::from_secs(30)).await;
                }
            }
            Err(crate::log::LogError::Closed) => return,
            Err(e) => tracing::error!(error = %e, "queue clock cannot append"),
        }
    }
}
