//! Loads the compiled plugin into the real Seam runtime, in-process, and calls it.

use seam_sdk::testing::{Harness, message_context};

#[test]
fn vip_customers_go_first_in_the_vip_queue() {
    let plugin = Harness::build(env!("CARGO_MANIFEST_DIR"), &[]).expect("plugin builds and loads");

    let mut context = message_context("hello");
    context.customer.attributes.push(("tier".into(), "VIP".into()));
    let decision = plugin.route(&context).expect("call succeeds").expect("plugin decides");
    assert_eq!(decision.queue.as_deref(), Some("vip"));
    assert_eq!(decision.priority, 10);
    assert_eq!(decision.tags, vec!["vip".to_string()]);

    let decision = plugin.route(&message_context("hello")).unwrap().unwrap();
    assert_eq!(decision.queue.as_deref(), Some("general"));
    assert_eq!(decision.priority, 0);
}

#[test]
fn config_overrides_the_queue_names() {
    let plugin = Harness::build(env!("CARGO_MANIFEST_DIR"), &[("queue", "frontline")]).unwrap();
    let decision = plugin.route(&message_context("hi")).unwrap().unwrap();
    assert_eq!(decision.queue.as_deref(), Some("frontline"));
}
