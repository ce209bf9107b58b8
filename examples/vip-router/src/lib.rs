//! An example Seam router: customers with the attribute `tier = vip` go to the VIP queue
//! with a higher priority; everyone else goes to the general queue.

use seam_sdk::prelude::*;

struct VipRouter;

impl Router for VipRouter {
    fn route(context: RouteContext) -> Result<Decision, String> {
        let vip =
            context.customer.attributes.iter().any(|(k, v)| k == "tier" && v.eq_ignore_ascii_case("vip"));
        if vip {
            let queue = config::get("vip-queue").unwrap_or_else(|| "vip".into());
            log::info(&format!("VIP customer {} -> {queue}", context.customer.id));
            let mut decision = Decision::to_queue(&queue, "customer tier is vip");
            decision.priority = 10;
            decision.tags.push("vip".into());
            Ok(decision)
        } else {
            let queue = config::get("queue").unwrap_or_else(|| "general".into());
            Ok(Decision::to_queue(&queue, "regular customer"))
        }
    }
}

seam_sdk::export_router!(VipRouter);
