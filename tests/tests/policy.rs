//! Swapping the routing policy through the API while webhooks pour in: every conversation
//! is routed exactly once, by the old policy before the swap's place in the log and by the
//! new one after it; rollback is one call; every swap is an event.

use seam_tests::host::{THREE_CHANNELS, TestHost};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn message(id: u64, user: u64, text: &str) -> Value {
    json!({"update_id": id, "message": {"message_id": id, "date": 1_763_900_000 + id, "text": text,
           "from": {"id": user, "first_name": "U"}, "chat": {"id": user, "type": "private"}}})
}

async fn active(host: &TestHost) -> Value {
    host.get("/v1/routing/policy").await["active"].clone()
}

/// Every `conversation-routed` effect in the log: (input offset, conversation, queue).
async fn routed(host: &TestHost) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = host.get(&format!("/v1/events?after={after}&limit=500")).await;
        let Some(last) = page["items"].as_array().unwrap().last() else { return out };
        after = last["offset"].as_u64().unwrap();
        for decision in seam_tests::host::decisions(&page) {
            let source = decision["source"].as_u64().unwrap_or_default();
            for effect in decision["effects"].as_array().cloned().unwrap_or_default() {
                if effect["type"] == "conversation-routed" {
                    let conversation = effect["conversation"].as_str().unwrap().to_owned();
                    out.push((source, conversation, effect["queue"].as_str().unwrap_or_default().to_owned()));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_under_load_routes_every_conversation_once_and_rolls_back() {
    let host = Arc::new(TestHost::start("policy-swap", THREE_CHANNELS).await);
    // Until a policy is set through the API, the config's chain routes.
    assert!(active(&host).await.is_null());

    // Refusals name the stage and what was wrong.
    let bad = |chain: Value| {
        let host = host.clone();
        async move {
            host.api("PUT", "/v1/routing/policy", Some(&host.admin), Some(json!({"chain": chain}))).await
        }
    };
    let (status, why) = bad(json!([{"plugin": "keyword-router"}, {"plugin": "nope"}])).await;
    assert_eq!(status, 400, "{why}");
    assert!(why["error"]["message"].as_str().unwrap().starts_with("chain[1]: no router `nope`"), "{why}");
    let (status, why) = bad(json!([{"plugin": "telegram-connector"}])).await;
    assert_eq!(status, 400, "{why}");
    assert!(why["error"]["message"].as_str().unwrap().contains("not a router"), "{why}");
    let (status, why) = host.api("POST", "/v1/routing/policy/rollback", Some(&host.admin), None).await;
    assert_eq!(status, 409, "{why}");
    assert!(why["error"]["message"].as_str().unwrap().contains("nothing to roll back to"), "{why}");

    // 8 senders post 50 messages each; the swap lands in the middle of them.
    const SENDERS: u64 = 8;
    const EACH: u64 = 50;
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let n = sender * EACH + i;
                let (status, body) = host.webhook("telegram", &message(n + 1, 20_000 + n, "hello")).await;
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    // Swap once a quarter of the messages are in the log.
    while host.state.log.head() < SENDERS * EACH / 4 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let new_policy = json!({"chain": [{"plugin": "keyword-router", "config": {"default-queue": "after-swap"}},
                                      {"plugin": "assign-router"}], "note": "new default queue"});
    let (status, swapped) = host.api("PUT", "/v1/routing/policy", Some(&host.admin), Some(new_policy)).await;
    assert_eq!(status, 200, "{swapped}");
    eprintln!("swap under load took {} µs", swapped["swap_us"]);
    let v1 = swapped["active"].clone();
    assert_eq!(
        (v1["version"].clone(), v1["previous"].clone(), v1["source"].clone()),
        (json!(1), Value::Null, json!("api"))
    );
    let pinned = v1["stages"][0]["slot"].as_str().unwrap().to_owned();
    assert!(pinned.starts_with("keyword-router@0.1.0#"), "{pinned}");
    for task in tasks {
        task.await.unwrap();
    }
    host.settle().await;

    // Zero loss, zero double routing, and the swap's place in the log decides which policy.
    let swap_offset = v1["offset"].as_u64().unwrap();
    let routed = routed(&host).await;
    let mut per_conversation: HashMap<&str, usize> = HashMap::new();
    for (source, conversation, queue) in &routed {
        *per_conversation.entry(conversation).or_default() += 1;
        let want = if *source < swap_offset { "general" } else { "after-swap" };
        assert_eq!(queue, want, "input {source} (swap at {swap_offset})");
    }
    assert_eq!(routed.len() as u64, SENDERS * EACH, "every acknowledged message was routed");
    assert!(per_conversation.values().all(|n| *n == 1), "a conversation was routed twice");
    let before = routed.iter().filter(|(s, _, _)| *s < swap_offset).count();
    assert!(before > 0 && before < routed.len(), "the swap landed mid-load ({before} before it)");

    // Rollback is one call, a new version restoring the old routers; and it toggles back.
    let (status, back) = host
        .api("POST", "/v1/routing/policy/rollback", Some(&host.admin), Some(json!({"note": "oops"})))
        .await;
    assert_eq!(status, 200, "{back}");
    // Back past version 1: the config's chain, following the names.
    assert_eq!(
        (back["active"]["version"].clone(), back["active"]["source"].clone()),
        (json!(2), json!("config"))
    );
    let slots: Vec<&str> =
        back["active"]["stages"].as_array().unwrap().iter().map(|s| s["slot"].as_str().unwrap()).collect();
    assert_eq!(slots, ["keyword-router", "assign-router"]);
    let (status, _) = host.webhook("telegram", &message(9001, 30_001, "hello")).await;
    assert_eq!(status, 200);
    host.settle().await;
    let customer = host.customer("telegram:30001").await;
    let c = host
        .get(&format!("/v1/conversations/{}", customer["open_conversation"]["id"].as_str().unwrap()))
        .await;
    assert_eq!(c["queue"], "general", "{c}");
    let (_, again) = host.api("POST", "/v1/routing/policy/rollback", Some(&host.admin), None).await;
    assert_eq!(
        (again["active"]["version"].clone(), again["active"]["restores"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(again["active"]["stages"][0]["slot"], json!(pinned));

    // Every swap is an event; the history lists them newest first.
    let history = host.get("/v1/routing/policy").await["history"].clone();
    let versions: Vec<u64> =
        history.as_array().unwrap().iter().map(|p| p["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [3, 2, 1]);
    assert!(host.dir.join("data/routers").read_dir().unwrap().count() >= 1, "pinned versions are stored");
    let before = seam_tests::host::dump(&host.state.views);
    seam::pipeline::rebuild(host.state.log.as_ref(), &host.state.views, |_, _| {}).unwrap();
    assert!(before == seam_tests::host::dump(&host.state.views), "a rebuild changed the views");
}
