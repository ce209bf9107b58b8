//! Testing a routing policy before switching to it, end to end with the bundled routers:
//! shadow mode (a candidate beside the live policy on live traffic, decisions recorded and
//! never applied) and replay what-if (a candidate over a past window of the log).

use seam_tests::host::{THREE_CHANNELS, TestHost};
use serde_json::{Value, json};

async fn ok(host: &TestHost, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, reply) = host.api(method, path, Some(&host.admin), body).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {reply}");
    reply
}

async fn write(host: &TestHost, id: u64, user: u64, text: &str) {
    let body = json!({"update_id": id, "message": {"message_id": id, "date": 1_763_900_000 + id, "text": text,
           "from": {"id": user, "first_name": "U"}, "chat": {"id": user, "type": "private"}}});
    let (status, reply) = host.webhook("telegram", &body).await;
    assert_eq!(status, 200, "{reply}");
}

/// The candidate: keywords as live, but anything else goes to `triage`, and no agents.
fn candidate() -> Value {
    json!([{"plugin": "keyword-router", "config": {"default-queue": "triage"}}])
}

fn counts(diff: &Value) -> (u64, u64, u64) {
    let n = |k: &str| diff[k].as_u64().unwrap_or(u64::MAX);
    (n("decisions"), n("same"), n("different"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_records_a_candidates_decisions_without_applying_them() {
    let host = TestHost::start("whatif-shadow", THREE_CHANNELS).await;
    let (status, none) = host.api("GET", "/v1/routing/shadow", Some(&host.admin), None).await;
    assert_eq!(status, 404, "{none}");
    let (status, why) =
        host.api("PUT", "/v1/routing/shadow", Some(&host.admin), Some(json!({"chain": []}))).await;
    assert_eq!(status, 400, "{why}");

    let run =
        ok(&host, "PUT", "/v1/routing/shadow", Some(json!({"chain": candidate(), "note": "try triage"})))
            .await;
    assert_eq!((run["version"].clone(), run["stopped_at"].clone()), (json!(1), Value::Null), "{run}");
    for (i, text) in
        ["hello there", "У меня проблема с заказом", "hi", "the app is not working"].iter().enumerate()
    {
        write(&host, i as u64 + 1, 700 + i as u64, text).await;
    }
    host.settle().await;

    let shadow = host.get("/v1/routing/shadow").await;
    let diff = &shadow["diff"];
    assert_eq!(counts(diff), (4, 2, 2), "{shadow}");
    assert_eq!(diff["by_queue"]["general"]["different"], 2, "{diff}");
    assert_eq!(diff["by_queue"]["general"]["candidate_queues"]["triage"], 2, "{diff}");
    assert_eq!(diff["by_queue"]["support"]["decisions"], 2, "{diff}");
    assert_eq!(diff["by_queue"]["support"]["different"], 0, "{diff}");
    let examples = diff["examples"].as_array().unwrap();
    let texts: Vec<&str> = examples.iter().map(|e| e["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["hello there", "hi"], "{diff}");
    assert_eq!(
        (examples[0]["live"]["queue"].clone(), examples[0]["candidate"]["queue"].clone()),
        (json!("general"), json!("triage"))
    );
    assert_eq!(examples[0]["trigger"], "event");

    // Never applied: nothing is in `triage`, and the live policy placed them all.
    let triage = host.get("/v1/conversations?queue=triage").await;
    assert_eq!(triage["items"].as_array().map(Vec::len), Some(0), "{triage}");
    let general = host.get("/v1/conversations?queue=general").await;
    assert_eq!(general["items"].as_array().map(Vec::len), Some(2), "{general}");

    // Stopped: later traffic is not compared; the diff stays readable.
    let stopped = ok(&host, "DELETE", "/v1/routing/shadow", None).await;
    assert!(stopped["stopped_at"].is_i64(), "{stopped}");
    write(&host, 10, 710, "hello again").await;
    host.settle().await;
    assert_eq!(counts(&host.get("/v1/routing/shadow").await["diff"]), (4, 2, 2));
    let (status, why) = host.api("DELETE", "/v1/routing/shadow", Some(&host.admin), None).await;
    assert_eq!(status, 409, "{why}");

    // The shadow's decisions are effects in the log: a rebuild gives the same views.
    let before = seam_tests::host::dump(&host.state.views);
    seam::pipeline::rebuild(host.state.log.as_ref(), &host.state.views, |_, _| {}).unwrap();
    assert!(before == seam_tests::host::dump(&host.state.views), "a rebuild changed the views");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reports_where_a_candidate_differs_over_a_window() {
    let host = TestHost::start("whatif-replay", THREE_CHANNELS).await;
    ok(&host, "POST", "/v1/queues", Some(json!({"id": "support", "skills": ["support"]}))).await;
    ok(&host, "POST", "/v1/agents", Some(json!({"id": "anna", "skills": ["support"], "capacity": {"*": 5}})))
        .await;
    let start = host.state.log.head() + 1;
    write(&host, 1, 801, "hello").await;
    write(&host, 2, 802, "Проблема: не приходит код").await;
    write(&host, 3, 803, "good morning").await;
    host.settle().await;
    let middle = host.state.log.head();
    // Anna comes online: the three waiting conversations are offered to the live policy
    // (re-offers) and she takes them all; the candidate (no assign-router) leaves them waiting.
    ok(&host, "PUT", "/v1/agents/anna/status", Some(json!({"status": "online"}))).await;
    write(&host, 4, 804, "hello!").await;
    host.settle().await;

    let replay = |body: Value| async { ok(&host, "POST", "/v1/routing/replay", Some(body)).await };
    let all = replay(json!({"chain": candidate(), "from_offset": start})).await;
    let diff = &all["diff"];
    assert_eq!(counts(diff), (7, 1, 6), "{all}");
    let general = &diff["by_queue"]["general"];
    assert_eq!((general["decisions"].clone(), general["different"].clone()), (json!(5), json!(5)), "{diff}");
    assert_eq!(general["candidate_queues"], json!({"triage": 3, "general": 2}), "{diff}");
    let support = &diff["by_queue"]["support"];
    assert_eq!((support["decisions"].clone(), support["different"].clone()), (json!(2), json!(1)), "{diff}");
    let reoffer: Vec<&Value> =
        diff["examples"].as_array().unwrap().iter().filter(|e| e["trigger"] == "reoffer").collect();
    assert_eq!(reoffer.len(), 3, "{diff}");
    for e in reoffer {
        assert_eq!(
            (e["live"]["agent"].clone(), e["candidate"]["agent"].clone()),
            (json!("anna"), Value::Null)
        );
    }
    assert!(all["events_per_sec"].as_u64().unwrap() > 0, "{all}");
    // The four messages and Anna's status change.
    assert_eq!(all["inputs"], 5, "{all}");

    // A window by offsets: only the first three messages.
    let first = replay(json!({"chain": candidate(), "from_offset": start, "to_offset": middle})).await;
    assert_eq!(counts(&first["diff"]), (3, 1, 2), "{first}");
    // A window by time that ends before anything happened is empty.
    let empty = replay(json!({"chain": candidate(), "until": 1})).await;
    assert_eq!(counts(&empty["diff"]), (0, 0, 0), "{empty}");
    // The live policy itself differs nowhere.
    let live = replay(
        json!({"chain": [{"plugin": "keyword-router"}, {"plugin": "assign-router"}], "from_offset": start}),
    )
    .await;
    assert_eq!(counts(&live["diff"]), (7, 7, 0), "{live}");

    let (status, why) = host
        .api(
            "POST",
            "/v1/routing/replay",
            Some(&host.admin),
            Some(json!({"chain": candidate(), "from_offset": 9, "to_offset": 2})),
        )
        .await;
    assert_eq!(status, 400, "{why}");
    assert!(
        why["error"]["message"].as_str().unwrap().contains("from_offset 9 is after to_offset 2"),
        "{why}"
    );
    // Nothing of the replays is in the live views.
    let triage = host.get("/v1/conversations?queue=triage").await;
    assert_eq!(triage["items"].as_array().map(Vec::len), Some(0), "{triage}");
}
