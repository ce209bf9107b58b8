//! Agents and queues over the API: created and changed through the log (a rebuild restores
//! them), refusals that name what was wrong, status changes as events, roles enforced.

use seam::api::auth::Role;
use seam_tests::host::TestHost;
use serde_json::{Value, json};

async fn ok(host: &TestHost, method: &str, path: &str, body: Value, want: u16) -> Value {
    let (status, reply) = host.api(method, path, Some(&host.admin), Some(body)).await;
    assert_eq!(status, want, "{method} {path}: {reply}");
    reply
}

async fn refused(host: &TestHost, method: &str, path: &str, body: Value, want: u16) -> String {
    let (status, reply) = host.api(method, path, Some(&host.admin), Some(body)).await;
    assert_eq!(status, want, "{method} {path}: {reply}");
    reply["error"]["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_and_agents_are_created_changed_and_rebuilt() {
    let host = TestHost::start("team-api", "").await;
    let hours = json!({"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "18:00", "utc_offset": "+03:00"});
    let support = ok(
        &host,
        "POST",
        "/v1/queues",
        json!({"id": "support", "skills": ["Support", "ru"], "hours": hours}),
        201,
    )
    .await;
    assert_eq!(support["skills"], json!(["ru", "support"]), "skills are normalized");
    assert_eq!(support["name"], "support");
    ok(&host, "POST", "/v1/queues", json!({"id": "billing", "priority": 5, "overflow": "support"}), 201)
        .await;

    // Refusals name what was wrong and change nothing.
    let why = refused(&host, "POST", "/v1/queues", json!({"id": "support"}), 409).await;
    assert!(why.contains("already exists"), "{why}");
    let why = refused(&host, "POST", "/v1/queues", json!({"id": "vip", "overflow": "nowhere"}), 409).await;
    assert!(why.contains("`nowhere` does not exist"), "{why}");
    let bad_hours = json!({"id": "night", "hours": {"days": ["mon"], "from": "22:00", "to": "06:00", "utc_offset": "+00:00"}});
    let why = refused(&host, "POST", "/v1/queues", bad_hours, 409).await;
    assert!(why.contains("hours.to"), "{why}");
    let why = refused(&host, "PATCH", "/v1/queues/billing", json!({"overflow": "billing"}), 409).await;
    assert!(why.contains("itself"), "{why}");
    let why = refused(&host, "POST", "/v1/queues", json!({"id": "x", "sla": 5}), 422).await;
    assert!(why.contains("sla"), "{why}");
    let why = refused(&host, "POST", "/v1/queues", json!({"id": "bad id!"}), 409).await;
    assert!(why.contains("bad id!"), "{why}");
    refused(&host, "PATCH", "/v1/queues/nope", json!({"priority": 1}), 404).await;
    let (_, queues) = host.api("GET", "/v1/queues", Some(&host.admin), None).await;
    let ids: Vec<&str> =
        queues["items"].as_array().unwrap().iter().map(|q| q["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["billing", "support"]);

    // `null` removes business hours; absent fields stay.
    let patched = ok(&host, "PATCH", "/v1/queues/support", json!({"hours": null, "priority": 2}), 200).await;
    assert_eq!((patched["hours"].clone(), patched["priority"].clone()), (Value::Null, json!(2)));
    assert_eq!(patched["skills"], json!(["ru", "support"]));

    let anna = ok(
        &host,
        "POST",
        "/v1/agents",
        json!({"id": "anna", "name": "Анна", "skills": ["support", "ru"], "languages": ["ru", "en"], "capacity": {"telegram": 3, "*": 1}}),
        201,
    )
    .await;
    assert_eq!(anna["status"], "offline", "a new agent is offline");
    let patched = ok(&host, "PATCH", "/v1/agents/anna", json!({"skills": ["support", "billing"]}), 200).await;
    assert_eq!(patched["skills"], json!(["billing", "support"]));
    assert_eq!(patched["name"], "Анна");
    let why = refused(&host, "PATCH", "/v1/agents/anna", json!({"id": "bob"}), 400).await;
    assert!(why.contains("cannot change"), "{why}");

    // Status: an agent key may set it; it is an event in the log.
    let (agent_key, _) = host.state.keys.create("anna-key", Role::Agent, None).unwrap();
    let (status, online) =
        host.api("PUT", "/v1/agents/anna/status", Some(&agent_key), Some(json!({"status": "online"}))).await;
    assert_eq!(status, 200, "{online}");
    assert_eq!(online["status"], "online");
    let (status, _) = host.api("POST", "/v1/agents", Some(&agent_key), Some(json!({"id": "bob"}))).await;
    assert_eq!(status, 403, "only admins create agents");
    let (status, _) = host.api("GET", "/v1/agents", None, None).await;
    assert_eq!(status, 401);
    let why = refused(&host, "PUT", "/v1/agents/anna/status", json!({"status": "busy"}), 422).await;
    assert!(why.contains("busy"), "{why}");
    let (_, events) = host.api("GET", "/v1/events?after=0&limit=500", Some(&host.admin), None).await;
    let changed = seam_tests::host::decisions(&events)
        .iter()
        .flat_map(|d| d["effects"].as_array().cloned().unwrap_or_default())
        .find(|effect| effect["type"] == "agent-status-changed")
        .expect("the status change is an event");
    assert_eq!(
        (changed["agent"].clone(), changed["status"].clone(), changed["previous"].clone()),
        (json!("anna"), json!("online"), json!("offline"))
    );

    // Views are derived from the log: a rebuild gives the same team.
    let before = seam_tests::host::dump(&host.state.views);
    seam::pipeline::rebuild(host.state.log.as_ref(), &host.state.views, |_, _| {}).unwrap();
    assert!(before == seam_tests::host::dump(&host.state.views), "a rebuild changed the views");
    let (_, agents) = host.api("GET", "/v1/agents", Some(&host.admin), None).await;
    assert_eq!(agents["items"][0]["status"], "online");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routers_see_queues_agents_their_load_and_waiting_counts() {
    // The test router alone: the default chain's assign-router would give the waiting one to Anna.
    let config = format!("{}\n[router]\nchain = [\"keyword-router\"]\n", seam_tests::host::THREE_CHANNELS);
    let host = TestHost::start("team-route-context", &config).await;
    // The hostile test router stands in for the pipeline's router: it routes to `support`
    // and reports what it sees.
    let caps = "[capabilities]\nlog = true\nkv = { quota-bytes = 64 }\nhttp = []\n";
    let config = [("tag".to_owned(), "support".to_owned())].into_iter().collect();
    host.state.runtime.load(seam_tests::hostile("keyword-router", caps), &config).await.unwrap();
    ok(&host, "POST", "/v1/queues", json!({"id": "support"}), 201).await;
    // Open one minute a week (Sunday 00:00 UTC): closed whenever this runs, but for that minute.
    let closed = json!({"id": "night", "hours": {"days": ["sun"], "from": "00:00", "to": "00:01", "utc_offset": "+00:00"}});
    ok(&host, "POST", "/v1/queues", closed, 201).await;
    ok(&host, "POST", "/v1/agents", json!({"id": "anna", "capacity": {"*": 2}}), 201).await;
    ok(&host, "POST", "/v1/agents", json!({"id": "boris", "capacity": {"email": 5}}), 201).await;
    ok(&host, "PUT", "/v1/agents/anna/status", json!({"status": "online"}), 200).await;

    let message = |id: u64, user: u64, text: &str| {
        json!({"update_id": id, "message": {"message_id": id, "date": 1_763_900_000 + id, "text": text,
               "from": {"id": user, "first_name": "U"}, "chat": {"id": user, "type": "private"}}})
    };
    // One conversation waits in `support`, one is Anna's; the third sees both.
    host.webhook("telegram", &message(1, 501, "hello")).await;
    host.webhook("telegram", &message(2, 502, "assign:anna")).await;
    host.settle().await;
    host.webhook("telegram", &message(3, 503, "team")).await;
    host.settle().await;
    let customer = host.customer("telegram:503").await;
    let conversation = host
        .get(&format!("/v1/conversations/{}", customer["open_conversation"]["id"].as_str().unwrap()))
        .await;
    let seen = conversation["route_reason"].as_str().unwrap_or_default();
    assert_eq!(seen, "night=w0:closed support=w1:open anna=online:1/2 boris=offline:0/0", "{conversation}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_key_acts_for_its_own_agent_only() {
    let host = TestHost::start("team-agent-keys", seam_tests::host::THREE_CHANNELS).await;
    ok(&host, "POST", "/v1/agents", json!({"id": "anna", "capacity": {"*": 5}}), 201).await;
    ok(&host, "POST", "/v1/agents", json!({"id": "boris", "capacity": {"*": 5}}), 201).await;

    // Binding: only agent keys, only to an agent that exists.
    let why =
        refused(&host, "POST", "/v1/admin/keys", json!({"name": "x", "role": "admin", "agent": "anna"}), 400)
            .await;
    assert!(why.contains("only an `agent` key"), "{why}");
    let why = refused(
        &host,
        "POST",
        "/v1/admin/keys",
        json!({"name": "x", "role": "agent", "agent": "ghost"}),
        409,
    )
    .await;
    assert!(why.contains("ghost"), "{why}");
    let created =
        ok(&host, "POST", "/v1/admin/keys", json!({"name": "anna's", "role": "agent", "agent": "anna"}), 201)
            .await;
    assert_eq!(created["record"]["agent"], "anna");
    let anna = created["key"].as_str().unwrap().to_owned();
    let (status, me) = host.api("GET", "/v1/me", Some(&anna), None).await;
    assert_eq!(
        (status, me["agent"].clone(), me["role"].clone()),
        (200, json!("anna"), json!("agent")),
        "{me}"
    );

    // Two customers write; Boris has the first conversation, the second waits.
    for (sid, from) in [("SM1", "+79160000001"), ("SM2", "+79160000002")] {
        let (status, body) =
            host.webhook("sms", &json!({"MessageSid": sid, "From": from, "Body": "Здравствуйте"})).await;
        assert_eq!(status, 200, "{body}");
    }
    host.settle().await;
    let open = |c: Value| c["open_conversation"]["id"].as_str().expect("an open conversation").to_owned();
    let borises = open(host.customer("phone:+79160000001").await);
    let waiting = open(host.customer("phone:+79160000002").await);
    ok(&host, "PATCH", &format!("/v1/conversations/{borises}"), json!({"assignee": "boris"}), 200).await;

    // Anna's key cannot touch Boris's conversation, nor set his status.
    let as_anna = |method: &'static str, path: String, body: Value| {
        let (host, anna) = (&host, anna.clone());
        async move { host.api(method, &path, Some(&anna), Some(body)).await }
    };
    let (status, body) =
        as_anna("PATCH", format!("/v1/conversations/{borises}"), json!({"status": "resolved"})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("assigned to agent `boris`"), "{body}");
    let (status, body) =
        as_anna("POST", format!("/v1/conversations/{borises}/messages"), json!({"text": "hi"})).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = as_anna("PUT", "/v1/agents/boris/status".into(), json!({"status": "online"})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("bound to agent `anna`"), "{body}");

    // She sets her own status and takes the waiting one; the change is recorded as hers.
    let (status, body) = as_anna("PUT", "/v1/agents/anna/status".into(), json!({"status": "away"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        as_anna("PATCH", format!("/v1/conversations/{waiting}"), json!({"assignee": "anna"})).await;
    assert_eq!((status, body["assignee"].clone()), (200, json!("anna")), "{body}");
    let (status, body) =
        as_anna("PATCH", format!("/v1/conversations/{waiting}"), json!({"status": "resolved"})).await;
    assert_eq!((status, body["status"].clone()), (200, json!("resolved")), "{body}");
    let (_, events) = host.api("GET", "/v1/events?after=0&limit=500", Some(&host.admin), None).await;
    let taken = seam_tests::host::decisions(&events)
        .iter()
        .flat_map(|d| d["effects"].as_array().cloned().unwrap_or_default())
        .find(|effect| effect["type"] == "conversation-assigned" && effect["conversation"] == json!(waiting))
        .expect("the take is an event");
    assert_eq!(taken["by"], "anna", "{taken}");
    let stored = host.state.keys.list().unwrap();
    assert!(stored.iter().any(|k| k.agent.as_deref() == Some("anna")), "the binding is stored");
}
