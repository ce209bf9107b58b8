//! Assign router: picks the agent for a conversation within the queue an earlier router
//! chose (or the queue it is in). Meant to run last in a policy chain, e.g.
//! `keyword-router` -> `assign-router`.
//!
//! Only agents who are online, have every skill the queue needs and have room for one more
//! conversation of the channel kind are candidates. Among them:
//! 1. sticky (config `sticky`, on by default): the agent who last helped the customer;
//! 2. then by `strategy`: `least-loaded` (lowest share of capacity in use, then the one
//!    who waited longest for work) or `round-robin` (the one who waited longest).
//!
//! With no candidate the conversation waits in its queue; the host offers it again when an
//! agent comes online or frees capacity. The router keeps no state of its own: round-robin
//! works from each agent's `last-assigned` time, so replays and shadow runs decide exactly
//! as the live policy would.

use seam_sdk::prelude::*;
use seam_sdk::router::{Agent, RouteContext};

/// How to choose among candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Lowest load relative to capacity.
    LeastLoaded,
    /// Whoever has waited longest since their last assignment.
    RoundRobin,
}

impl Strategy {
    /// Parses the `strategy` config value.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "" | "least-loaded" => Ok(Strategy::LeastLoaded),
            "round-robin" => Ok(Strategy::RoundRobin),
            other => Err(format!("strategy `{other}` is not `least-loaded` or `round-robin`")),
        }
    }
}

/// Picks an agent for `context`: returns the decision (starting from what earlier routers
/// proposed) with `agent` set, or unset and a reason why the conversation waits.
pub fn assign(context: &RouteContext, strategy: Strategy, sticky: bool) -> Decision {
    let mut decision = context.start();
    if let Some(current) = decision.agent.as_deref()
        && context.agent(current).is_some_and(|a| a.status == AgentStatus::Online)
    {
        // Someone already holds it (or an earlier router chose someone online): keep them.
        return decision;
    }
    decision.agent = None;
    let Some(queue) = decision.queue.clone() else {
        decision.because("no queue to pick an agent in");
        return decision;
    };
    let skills = context.queue(&queue).map(|q| q.skills.clone()).unwrap_or_default();
    let candidates: Vec<&Agent> =
        context.agents.iter().filter(|a| a.available() && a.has_skills(&skills)).collect();
    if sticky
        && let Some(last) = context.customer.last_agent.as_deref()
        && let Some(agent) = candidates.iter().find(|a| a.id == last)
    {
        decision.agent = Some(agent.id.clone());
        decision.because(&format!("sticky: {} helped this customer last", agent.id));
        return decision;
    }
    // `None` (never assigned) sorts first: a new agent gets work before anyone else.
    let waited = |a: &Agent| (a.last_assigned, a.id.clone());
    let best = match strategy {
        Strategy::LeastLoaded => candidates.iter().min_by_key(|a| {
            // Share of capacity in use, in thousandths: 1 of 2 is busier than 1 of 5.
            let share = u64::from(a.load) * 1000 / u64::from(a.capacity.max(1));
            (share, waited(a))
        }),
        Strategy::RoundRobin => candidates.iter().min_by_key(|a| waited(a)),
    };
    match best {
        Some(agent) => {
            decision.agent = Some(agent.id.clone());
            let how = match strategy {
                Strategy::LeastLoaded => format!("least loaded ({}/{})", agent.load, agent.capacity),
                Strategy::RoundRobin => "next in turn".to_owned(),
            };
            decision.because(&format!("{} in `{queue}`: {how}", agent.id));
        }
        None => decision.because(&format!("no agent with capacity in `{queue}`; waits")),
    }
    decision
}

struct AssignRouter;

impl Router for AssignRouter {
    fn route(context: RouteContext) -> Result<Decision, String> {
        let strategy = Strategy::parse(&config::get("strategy").unwrap_or_default())?;
        let sticky = config::get("sticky").is_none_or(|v| v.trim() != "false");
        Ok(assign(&context, strategy, sticky))
    }
}

seam_sdk::export_router!(AssignRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use seam_sdk::router::sample::{agent, context, queue};

    fn support_team() -> RouteContext {
        let mut ctx = context("help");
        ctx.proposed = Some(Decision::to_queue("support", "keyword"));
        ctx.queues = vec![queue("support", &["support"]), queue("sales", &[])];
        ctx.agents = vec![
            agent("anna", &["support"], 1, 2),
            agent("boris", &["support", "billing"], 1, 5),
            agent("vera", &["sales"], 0, 5),
        ];
        ctx
    }

    #[test]
    fn least_loaded_uses_the_share_of_capacity_and_skills() {
        let d = assign(&support_team(), Strategy::LeastLoaded, true);
        assert_eq!(d.agent.as_deref(), Some("boris"), "1/5 is less loaded than 1/2; vera lacks the skill");
        assert_eq!(d.queue.as_deref(), Some("support"));
        assert_eq!(d.reason, "keyword; boris in `support`: least loaded (1/5)");
    }

    #[test]
    fn round_robin_takes_who_waited_longest() {
        let mut ctx = support_team();
        ctx.agents[0].last_assigned = Some(100);
        ctx.agents[1].last_assigned = Some(200);
        assert_eq!(assign(&ctx, Strategy::RoundRobin, true).agent.as_deref(), Some("anna"));
        ctx.agents[0].last_assigned = Some(300);
        assert_eq!(assign(&ctx, Strategy::RoundRobin, true).agent.as_deref(), Some("boris"));
    }

    #[test]
    fn capacity_status_and_sticky() {
        let mut ctx = support_team();
        ctx.customer.last_agent = Some("anna".into());
        let d = assign(&ctx, Strategy::LeastLoaded, true);
        assert_eq!(d.agent.as_deref(), Some("anna"), "sticky beats least loaded");
        assert!(d.reason.contains("sticky"), "{}", d.reason);
        assert_eq!(assign(&ctx, Strategy::LeastLoaded, false).agent.as_deref(), Some("boris"));

        ctx.agents[0].load = 2; // anna is full: sticky gives way
        ctx.agents[1].status = AgentStatus::Away;
        let d = assign(&ctx, Strategy::LeastLoaded, true);
        assert_eq!(d.agent, None);
        assert_eq!(d.reason, "keyword; no agent with capacity in `support`; waits");
    }

    #[test]
    fn keeps_an_online_assignee_and_needs_a_queue() {
        let mut ctx = support_team();
        ctx.proposed = None;
        ctx.conversation.queue = Some("support".into());
        ctx.conversation.assignee = Some("anna".into());
        assert_eq!(assign(&ctx, Strategy::LeastLoaded, true).agent.as_deref(), Some("anna"));
        ctx.conversation.queue = None;
        ctx.conversation.assignee = None;
        let d = assign(&ctx, Strategy::LeastLoaded, true);
        assert_eq!((d.agent, d.reason.as_str()), (None, "no queue to pick an agent in"));
    }

    #[test]
    fn strategy_names() {
        assert_eq!(Strategy::parse("round-robin"), Ok(Strategy::RoundRobin));
        assert_eq!(Strategy::parse(""), Ok(Strategy::LeastLoaded));
        assert!(Strategy::parse("random").unwrap_err().contains("`random`"));
    }
}
