//! Hours router: when the queue chosen so far is outside its business hours, sends the
//! conversation to that queue's after-hours target instead (and drops any agent chosen for
//! the closed queue). Put it after the router that picks the queue and before the one that
//! picks the agent: `keyword-router` -> `hours-router` -> `assign-router`.
//!
//! Business hours are the queues' own (`PATCH /v1/queues/{id}` with `hours`); the host
//! tells every router whether each queue is open now.
//!
//! Config:
//! - `after-hours`: `queue: target` lines, `*` for every other queue;
//! - `after-hours-reply`: a text sent to the customer the first time a conversation lands in
//!   a closed queue (e.g. "We are closed now and will answer at 9:00"); none by default.

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

/// The decision for `context` under `rules`; `reply`, if any, is sent on a customer's
/// message the first time the conversation meets a closed queue (it is not tagged
/// `after-hours` yet), never on a re-offer or an escalation.
pub fn decide(context: &RouteContext, rules: &str, reply: Option<&str>) -> Result<Decision, String> {
    let mut decision = context.start();
    let Some(queue) = decision.queue.clone() else { return Ok(decision) };
    if context.queue(&queue).is_none_or(|q| q.open) {
        return Ok(decision);
    }
    let first_time = !context.conversation.tags.iter().any(|t| t == "after-hours");
    if let Some(text) = reply.map(str::trim).filter(|t| !t.is_empty())
        && first_time
        && matches!(context.trigger, Trigger::Event)
    {
        decision.reply = Some(text.to_owned());
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
        let reply = config::get("after-hours-reply");
        decide(&context, &config::get("after-hours").unwrap_or_default(), reply.as_deref())
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
        let d = decide(&closed_support(), "support: night\n*: general", None).unwrap();
        assert_eq!((d.queue.as_deref(), d.agent.as_deref()), (Some("night"), None));
        assert_eq!(d.tags, ["after-hours"]);
        assert_eq!(d.reason, "keyword; `support` is closed now: after-hours queue `night`");
        let d = decide(&closed_support(), "# every queue\n*: general", None).unwrap();
        assert_eq!(d.queue.as_deref(), Some("general"), "the `*` rule");
    }

    #[test]
    fn an_open_queue_or_no_target_stays() {
        let mut ctx = closed_support();
        ctx.proposed = Some(Decision::to_queue("sales", "keyword"));
        assert_eq!(decide(&ctx, "*: night", None).unwrap().queue.as_deref(), Some("sales"));
        let d = decide(&closed_support(), "sales: night", None).unwrap();
        assert_eq!(d.queue.as_deref(), Some("support"));
        assert_eq!(d.tags, ["after-hours"]);
    }

    #[test]
    fn the_reply_goes_once_and_only_on_a_message() {
        let closed = "We are closed now";
        let d = decide(&closed_support(), "*: night", Some(closed)).unwrap();
        assert_eq!(d.reply.as_deref(), Some(closed));
        let mut again = closed_support();
        again.conversation.tags = vec!["after-hours".into()];
        assert_eq!(decide(&again, "*: night", Some(closed)).unwrap().reply, None, "once per conversation");
        let mut reoffer = closed_support();
        reoffer.trigger = Trigger::Reoffer;
        assert_eq!(decide(&reoffer, "*: night", Some(closed)).unwrap().reply, None);
        let mut open = closed_support();
        open.queues[0].open = true;
        assert_eq!(decide(&open, "*: night", Some(closed)).unwrap().reply, None, "open: no reply");
        assert_eq!(decide(&closed_support(), "*: night", Some("  ")).unwrap().reply, None);
    }

    #[test]
    fn bad_rules_name_the_line() {
        assert_eq!(
            decide(&closed_support(), "support night", None).unwrap_err(),
            "after-hours line 1: expected `queue: target`"
        );
    }
}
