//! The queue, end to end with the bundled routers (`keyword-router` -> `assign-router` by
//! default): a conversation nobody can take waits in line; it is offered again when an agent
//! comes online or finishes one; a queue's timeout escalates it to the overflow queue; the
//! line, positions and waits are visible in the API; agents assign, transfer and resolve.

use seam::api::auth::Role;
use seam_tests::host::{THREE_CHANNELS, TestHost};
use serde_json::{Value, json};
use std::time::Duration;

async fn ok(host: &TestHost, method: &str, path: &str, body: Value) -> Value {
    let (status, reply) = host.api(method, path, Some(&host.admin), Some(body)).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {reply}");
    reply
}

fn message(id: u64, user: u64, text: &str) -> Value {
    json!({"update_id": id, "message": {"message_id": id, "date": 1_763_900_000 + id, "text": text,
           "from": {"id": user, "first_name": "U"}, "chat": {"id": user, "type": "private"}}})
}

/// Sends `text` from Telegram user `user` and returns that customer's open conversation.
async fn write(host: &TestHost, id: u64, user: u64, text: &str) -> Value {
    let (status, body) = host.webhook("telegram", &message(id, user, text)).await;
    assert_eq!(status, 200, "{body}");
    host.settle().await;
    conversation_of(host, user).await
}

async fn conversation_of(host: &TestHost, user: u64) -> Value {
    let customer = host.customer(&format!("telegram:{user}")).await;
    let id = customer["open_conversation"]["id"].as_str().expect("an open conversation").to_owned();
    host.get(&format!("/v1/conversations/{id}")).await
}

async fn placement(host: &TestHost, user: u64) -> (Value, Value, Value) {
    let c = conversation_of(host, user).await;
    (c["queue"].clone(), c["assignee"].clone(), c["queue_position"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_wait_and_are_offered_when_an_agent_frees_up() {
    let host = TestHost::start("queue-capacity", THREE_CHANNELS).await;
    ok(&host, "POST", "/v1/queues", json!({"id": "support", "skills": ["support"]})).await;
    ok(&host, "POST", "/v1/queues", json!({"id": "billing", "skills": ["billing"]})).await;
    ok(&host, "POST", "/v1/agents", json!({"id": "anna", "skills": ["support"], "capacity": {"*": 1}})).await;

    // Nobody is online: both problems wait in `support`, in the order they came.
    let first = write(&host, 1, 601, "У меня проблема с заказом").await;
    assert_eq!(
        (first["queue"].clone(), first["assignee"].clone()),
        (json!("support"), Value::Null),
        "{first}"
    );
    assert_eq!(first["queue_position"], 1);
    assert!(first["wait_ms"].as_i64().is_some_and(|w| w >= 0), "{first}");
    assert!(
        first["route_reason"].as_str().unwrap().contains("no agent with capacity in `support`"),
        "{first}"
    );
    let second = write(&host, 2, 602, "the app is not working").await;
    assert_eq!((second["queue"].clone(), second["queue_position"].clone()), (json!("support"), json!(2)));
    let line = host.get("/v1/queues/support/waiting").await;
    assert_eq!(line["waiting"], 2, "{line}");
    let ids: Vec<&str> =
        line["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first["id"].as_str().unwrap(), second["id"].as_str().unwrap()]);

    // Anna comes online: she gets the first in line; her capacity (1) keeps the second waiting.
    ok(&host, "PUT", "/v1/agents/anna/status", json!({"status": "online"})).await;
    host.settle().await;
    assert_eq!(placement(&host, 601).await, (json!("support"), json!("anna"), Value::Null));
    assert_eq!(placement(&host, 602).await, (json!("support"), Value::Null, json!(1)));
    let taken = conversation_of(&host, 601).await;
    assert!(taken["route_reason"].as_str().unwrap().contains("anna in `support`"), "{taken}");

    // She resolves it (an agent key): the second is offered to her at once.
    let (agent_key, _) = host.state.keys.create("anna-key", Role::Agent, None).unwrap();
    let (status, resolved) = host
        .api(
            "PATCH",
            &format!("/v1/conversations/{}", first["id"].as_str().unwrap()),
            Some(&agent_key),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["status"], "resolved");
    host.settle().await;
    assert_eq!(placement(&host, 602).await, (json!("support"), json!("anna"), Value::Null));

    // Transfer to a queue Anna has no skill for: it waits there, and Anna is free again
    // (so the next problem goes straight to her).
    let second_id = second["id"].as_str().unwrap();
    let moved = ok(
        &host,
        "PATCH",
        &format!("/v1/conversations/{second_id}"),
        json!({"queue": "billing", "assignee": null}),
    )
    .await;
    assert_eq!(
        (moved["queue"].clone(), moved["assignee"].clone(), moved["queue_position"].clone()),
        (json!("billing"), Value::Null, json!(1))
    );
    let third = write(&host, 3, 603, "ошибка при оплате картой").await;
    assert_eq!(
        (third["queue"].clone(), third["assignee"].clone()),
        (json!("support"), json!("anna")),
        "{third}"
    );

    // Refusals name what was wrong.
    let (status, why) = host
        .api(
            "PATCH",
            &format!("/v1/conversations/{second_id}"),
            Some(&host.admin),
            Some(json!({"assignee": "nobody"})),
        )
        .await;
    assert_eq!(status, 409, "{why}");
    assert!(why["error"]["message"].as_str().unwrap().contains("no agent `nobody`"), "{why}");
    let (status, _) = host
        .api(
            "PATCH",
            &format!("/v1/conversations/{second_id}"),
            Some(&host.admin),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(status, 422);
    let (integration, _) = host.state.keys.create("crm", Role::Integration, None).unwrap();
    let (status, _) = host
        .api(
            "PATCH",
            &format!("/v1/conversations/{second_id}"),
            Some(&integration),
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(status, 403, "an integration key does not act as an agent");

    // Everything above is in the log: a rebuild gives the same views.
    let before = seam_tests::host::dump(&host.state.views);
    seam::pipeline::rebuild(host.state.log.as_ref(), &host.state.views, |_, _| {}).unwrap();
    assert!(before == seam_tests::host::dump(&host.state.views), "a rebuild changed the views");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_timeout_escalates_to_the_overflow_queue() {
    let host = TestHost::start("queue-escalation", THREE_CHANNELS).await;
    ok(&host, "POST", "/v1/queues", json!({"id": "general"})).await;
    let support = json!({"id": "support", "skills": ["support"], "overflow": "general", "timeout_secs": 1});
    ok(&host, "POST", "/v1/queues", support).await;
    // Boris can take `general` (no skills needed) but not `support`.
    ok(&host, "POST", "/v1/agents", json!({"id": "boris", "capacity": {"*": 5}})).await;
    ok(&host, "PUT", "/v1/agents/boris/status", json!({"status": "online"})).await;

    let waiting = write(&host, 1, 701, "problem with login").await;
    assert_eq!((waiting["queue"].clone(), waiting["assignee"].clone()), (json!("support"), Value::Null));
    let id = waiting["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let escalated = loop {
        let c = host.get(&format!("/v1/conversations/{id}")).await;
        if c["queue"] == "general" {
            break c;
        }
        assert!(tokio::time::Instant::now() < deadline, "not escalated: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(escalated["assignee"], "boris", "offered in the overflow queue: {escalated}");

    let (_, events) = host.api("GET", "/v1/events?after=0&limit=500", Some(&host.admin), None).await;
    let effects: Vec<Value> = seam_tests::host::decisions(&events)
        .iter()
        .flat_map(|d| d["effects"].as_array().cloned().unwrap_or_default())
        .collect();
    let escalation =
        effects.iter().find(|e| e["type"] == "conversation-escalated").expect("an escalation event");
    assert_eq!((escalation["from"].clone(), escalation["to"].clone()), (json!("support"), json!("general")));
    let (status, why) =
        host.api("POST", "/v1/queues", Some(&host.admin), Some(json!({"id": "x", "timeout_secs": 5}))).await;
    assert_eq!(status, 409, "{why}");
    assert!(why["error"]["message"].as_str().unwrap().contains("no overflow queue"), "{why}");
}
