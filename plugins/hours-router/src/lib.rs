//! Hours router: when the queue chosen so far is outside its business hours, sends the
//! conversation to that queue's after-hours target instead (and drops any agent chosen for
//! the closed queue). Put it after the router that picks the queue and before the one that
//! picks the agent: `keyword-router` -> `hours-router` -> `assign-router`.
//!
//! Business hours are the queues' own (`PATCH /v1/queues/{id}` with `hours`); the host
//! tells every router whether each queue is open now.

use seam_sdk::prelude::*;
use seam_sdk::router::RouteContext;

/// The after-hours target of `queue` under `rules` (`queue: target` lines, `*` for every
/// other queue), if any.
pub fn target(rules: &str, queue: &str) -> Result<Option<String>, String> {
    let mut fallback = None;
    for (n, line) in rules.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((from, to)) = line.split_once(':') else {
            return Err(format!("after-hours line {}: expected `queue: target`", n + 1));
        };
        let (from, to) = (from.trim(), to.trim());
        if from.is_empty() || to.is_empty() {
            return Err(format!("after-hours line {}: empty queue name", n + 1));
        }
        if from == queue {
            return Ok(Some(to.to_owned()));
        }
        if from == "*" && fallback.is_none() {
            fallback = Some(to.to_owned());
        }
    }
    Ok(fallback.filter(|f| f != queue))
}

/// The decision for `context` under `rules`.
pub fn decide(context: &RouteContext, rules: &str) -> Result<Decision, String> {
    let mut decision = context.start();
    let Some(queue) = decision.queue.clone() else { return Ok(decision) };
    if context.queue(&queue).is_none_or(|q| q.open) {
        return Ok(decision);
    }
    match target(rules, &queue)? {
        Some(to) => {
            decision.queue = Some(to.clone());
            decision.agent = None;
            decision.tag("after-hours");
            decision.because(&format!("`{queue}` is closed now: after-hours queue `{to}`"));
        }
        None => {
            decision.tag("after-hours");
            decision.because(&format!("`{queue}` is closed now and has no after-hours target"));
        }
    }
    Ok(decision)
}

struct HoursRouter;

impl Router for HoursRouter {
    fn route(context: RouteContext) -> Result<Decision, String> {
        decide(&context, &config::get("after-hours").unwrap_or_default())
    }
}

seam_sdk::export_router!(HoursRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use seam_sdk::router::sample::{context, queue};

    fn closed_support() -> RouteContext {
        let mut ctx = context("help");
        let mut support = queue("support", &["support"]);
        support.open = false;
        ctx.queues = vec![support, queue("sales", &[]), queue("night", &[])];
        let mut proposed = Decision::to_queue("support", "keyword");
        proposed.agent = Some("anna".into());
        ctx.proposed = Some(proposed);
        ctx
    }

    #[test]
    fn a_closed_queue_goes_to_its_target() {
        let d = decide(&closed_support(), "support: night\n*: general").unwrap();
        assert_eq!((d.queue.as_deref(), d.agent.as_deref()), (Some("night"), None));
        assert_eq!(d.tags, ["after-hours"]);
        assert_eq!(d.reason, "keyword; `support` is closed now: after-hours queue `night`");
        let d = decide(&closed_support(), "# every queue\n*: general").unwrap();
        assert_eq!(d.queue.as_deref(), Some("general"), "the `*` rule");
    }

    #[test]
    fn an_open_queue_or_no_target_stays() {
        let mut ctx = closed_support();
        ctx.proposed = Some(Decision::to_queue("sales", "keyword"));
        assert_eq!(decide(&ctx, "*: night").unwrap().queue.as_deref(), Some("sales"));
        let d = decide(&closed_support(), "sales: night").unwrap();
        assert_eq!(d.queue.as_deref(), Some("support"));
        assert_eq!(d.tags, ["after-hours"]);
    }

    #[test]
    fn bad_rules_name_the_line() {
        assert_eq!(
            decide(&closed_support(), "support night").unwrap_err(),
            "after-hours line 1: expected `queue: target`"
        );
    }
}
