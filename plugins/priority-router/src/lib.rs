//! Priority router: raises a conversation's priority (and, if asked, moves it to a queue)
//! by a customer attribute, e.g. `tier=vip`. Attributes are set by agents or integrations
//! (`PATCH /v1/customers/{id}`). Higher priority is served first when an agent frees up.

use seam_sdk::prelude::*;
use seam_sdk::router::RouteContext;

/// One rule: `attribute=value: priority` or `attribute=value: priority, queue`.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Attribute name.
    pub attribute: String,
    /// Value it must have (compared without case).
    pub value: String,
    /// Priority to give.
    pub priority: i32,
    /// Queue to move the conversation to, if any.
    pub queue: Option<String>,
}

/// Parses the `rules` config, one rule per line.
pub fn rules(text: &str) -> Result<Vec<Rule>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("rules line {}: {why}", n + 1);
        let (condition, action) =
            line.split_once(':').ok_or_else(|| bad("expected `attribute=value: priority`"))?;
        let (attribute, value) =
            condition.split_once('=').ok_or_else(|| bad("expected `attribute=value`"))?;
        let mut parts = action.split(',').map(str::trim);
        let priority = parts
            .next()
            .unwrap_or_default()
            .parse::<i32>()
            .map_err(|_| bad("the priority must be a whole number"))?;
        let queue = parts.next().filter(|q| !q.is_empty()).map(str::to_owned);
        out.push(Rule {
            attribute: attribute.trim().to_owned(),
            value: value.trim().to_owned(),
            priority,
            queue,
        });
    }
    Ok(out)
}

/// The decision for `context`: the first rule the customer matches applies.
pub fn decide(context: &RouteContext, rules: &[Rule]) -> Decision {
    let mut decision = context.start();
    let matched = rules
        .iter()
        .find(|r| context.attribute(&r.attribute).is_some_and(|v| v.trim().eq_ignore_ascii_case(&r.value)));
    if let Some(rule) = matched {
        decision.priority = decision.priority.max(rule.priority);
        if let Some(queue) = &rule.queue
            && decision.queue.as_ref() != Some(queue)
        {
            decision.queue = Some(queue.clone());
            decision.agent = None;
        }
        decision.tag(&format!("{}:{}", rule.attribute, rule.value.to_lowercase()));
        decision.because(&format!("{}={}: priority {}", rule.attribute, rule.value, rule.priority));
    }
    decision
}

struct PriorityRouter;

impl Router for PriorityRouter {
    fn route(context: RouteContext) -> Result<Decision, String> {
        Ok(decide(&context, &rules(&config::get("rules").unwrap_or_default())?))
    }
}

seam_sdk::export_router!(PriorityRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use seam_sdk::router::sample::context;

    #[test]
    fn vip_customers_get_priority_and_keep_the_queue() {
        let rules = rules("# VIPs first\ntier=vip: 10\nplan=enterprise: 5, key-accounts").unwrap();
        let mut ctx = context("hello");
        ctx.proposed = Some(Decision::to_queue("support", "keyword"));
        ctx.customer.attributes.push(("tier".into(), "VIP".into()));
        let d = decide(&ctx, &rules);
        assert_eq!((d.queue.as_deref(), d.priority), (Some("support"), 10));
        assert_eq!(d.tags, ["tier:vip"]);
        assert_eq!(d.reason, "keyword; tier=vip: priority 10");

        ctx.customer.attributes = vec![("plan".into(), "enterprise".into())];
        let d = decide(&ctx, &rules);
        assert_eq!((d.queue.as_deref(), d.priority), (Some("key-accounts"), 5));

        ctx.customer.attributes.clear();
        let d = decide(&ctx, &rules);
        assert_eq!((d.queue.as_deref(), d.priority, d.reason.as_str()), (Some("support"), 0, "keyword"));
    }

    #[test]
    fn bad_rules_name_the_line() {
        assert_eq!(rules("tier=vip: high").unwrap_err(), "rules line 1: the priority must be a whole number");
        assert_eq!(rules("\ntier: 1").unwrap_err(), "rules line 2: expected `attribute=value`");
    }
}
