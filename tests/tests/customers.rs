//! Issue #3 end to end: provider-shaped webhooks through real connector plugins into the
//! durable log, the pipeline (identity resolution, threading, the keyword router) and the
//! views, read back over real HTTP.

use seam_tests::fixture;
use seam_tests::host::{THREE_CHANNELS, TestHost};
use serde_json::{Value, json};

const PHONE: &str = "+7 916 123-45-67";
const E164: &str = "+79161234567";

fn telegram_text(update_id: u64, user: u64, text: &str) -> Value {
    let mut update = fixture("telegram/text.json");
    update["update_id"] = json!(update_id);
    update["message"]["from"]["id"] = json!(user);
    update["message"]["text"] = json!(text);
    update
}

fn telegram_contact(update_id: u64, user: u64, phone: &str) -> Value {
    let mut update = fixture("telegram/contact.json");
    update["update_id"] = json!(update_id);
    update["message"]["from"]["id"] = json!(user);
    update["message"]["contact"]["phone_number"] = json!(phone);
    update
}

fn whatsapp_text(id: &str, wa_id: &str, text: &str) -> Value {
    let mut body = fixture("whatsapp/message__text.json");
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["contacts"][0]["wa_id"] = json!(wa_id);
    value["messages"][0]["from"] = json!(wa_id);
    value["messages"][0]["id"] = json!(id);
    value["messages"][0]["text"]["body"] = json!(text);
    body
}

fn sms(sid: &str, from: &str, text: &str) -> Value {
    let mut body = fixture("twilio/whatsapp_inbound_text.json");
    body["MessageSid"] = json!(sid);
    body["From"] = json!(from);
    body["Body"] = json!(text);
    body
}

fn identities(customer: &Value) -> Vec<String> {
    let mut all: Vec<String> = customer["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .map(|i| i["identity"].as_str().unwrap_or_default().to_owned())
        .collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_on_three_channels_is_one_customer_in_one_conversation() {
    let host = TestHost::start(
        "customers-three-channels",
        &format!("[identity]\ndefault-region = \"RU\"\n{THREE_CHANNELS}"),
    )
    .await;
    assert_eq!(
        host.webhook("telegram", &telegram_text(1, 5550001, "Здравствуйте, у меня проблема с заказом"))
            .await
            .0,
        200
    );
    assert_eq!(host.webhook("telegram", &telegram_contact(2, 5550001, PHONE)).await.0, 200);
    let (status, body) =
        host.webhook("whatsapp", &whatsapp_text("wamid.1", "79161234567", "It still does not work")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":1}"#));
    assert_eq!(host.webhook("sms", &sms("SM1", E164, "Any news?")).await.0, 200);
    host.settle().await;

    let customer = host.customer(&format!("phone:{E164}")).await;
    assert_eq!(
        identities(&customer),
        vec![format!("phone:{E164}"), "telegram:5550001".to_owned(), "whatsapp:79161234567".to_owned()]
    );
    for identity in ["telegram:5550001", "whatsapp:79161234567", "phone:8 (916) 123-45-67"] {
        assert_eq!(host.customer(identity).await["id"], customer["id"], "{identity}");
    }
    assert_eq!(customer["last_channel"], "sms");
    assert_eq!(customer["counters"]["messages_in"], 4);
    let channels: Vec<&String> = customer["channels"].as_object().unwrap().keys().collect();
    assert_eq!(channels, ["sms", "telegram", "whatsapp"]);
    let conversation = &customer["open_conversation"];
    assert_eq!(conversation["channels"], json!(["telegram", "whatsapp", "sms"]));
    assert_eq!(conversation["last_channel"], "sms");
    assert_eq!(conversation["status"], "open");
    assert_eq!(conversation["message_count"], 4);
    assert_eq!(conversation["queue"], "support", "the keyword router saw «проблема»: {conversation}");
    assert_eq!(customer["counters"]["conversations"], 1);

    let id = customer["id"].as_str().unwrap();
    let timeline = host.get(&format!("/v1/customers/{id}/timeline")).await;
    let messages: Vec<(&str, &str)> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message.received")
        .map(|i| (i["channel"].as_str().unwrap(), i["event"]["payload"]["text"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        messages,
        [
            ("telegram", "Здравствуйте, у меня проблема с заказом"),
            ("telegram", ""),
            ("whatsapp", "It still does not work"),
            ("sms", "Any news?")
        ]
    );
    let offsets: Vec<u64> =
        timeline["items"].as_array().unwrap().iter().map(|i| i["offset"].as_u64().unwrap()).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "timeline in log order: {offsets:?}");

    // Newest first, paged by two.
    let page = host.get(&format!("/v1/customers/{id}/timeline?order=desc&limit=2")).await;
    assert_eq!(page["items"][0]["channel"], "sms");
    let next = page["next_cursor"].as_u64().expect("a next page");
    let page2 = host.get(&format!("/v1/customers/{id}/timeline?order=desc&limit=2&cursor={next}")).await;
    assert!(page2["items"][0]["offset"].as_u64().unwrap() < next);

    let conversation_id = conversation["id"].as_str().unwrap();
    let listed = host.get("/v1/conversations?status=open&queue=support").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], conversation_id);
    assert_eq!(host.get("/v1/conversations?status=resolved").await["items"], json!([]));
    let messages = host.get(&format!("/v1/conversations/{conversation_id}/messages")).await;
    assert_eq!(
        messages["items"].as_array().unwrap().iter().filter(|i| i["type"] == "message.received").count(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_webhook_appends_nothing_and_gets_the_same_answer() {
    let host = TestHost::start("customers-retry", THREE_CHANNELS).await;
    let update = telegram_text(77, 4242, "hello");
    let first = host.webhook("telegram", &update).await;
    host.settle().await;
    let head = host.state.log.head();
    for _ in 0..3 {
        assert_eq!(host.webhook("telegram", &update).await, first);
    }
    host.settle().await;
    assert_eq!(host.state.log.head(), head, "a retry appends nothing");
    let customer = host.customer("telegram:4242").await;
    assert_eq!(customer["counters"]["messages_in"], 1);
    let events = host.get("/v1/events?after=0&limit=1000").await;
    let received =
        events["items"].as_array().unwrap().iter().filter(|e| e["type"] == "message.received").count();
    assert_eq!(received, 1);
    // A different update from the same person is a new message.
    host.webhook("telegram", &telegram_text(78, 4242, "again")).await;
    host.settle().await;
    assert_eq!(host.customer("telegram:4242").await["counters"]["messages_in"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_values_and_limits_stop_wrong_merges_and_unmerge_restores_two_customers() {
    let config = format!(
        "[identity]\ndefault-region = \"RU\"\nblocked = [\"phone:+7 495 111-22-33\"]\nlimits = {{ phone = 1 }}\n{THREE_CHANNELS}"
    );
    let host = TestHost::start("customers-rules", &config).await;
    // Two people share the office number: it is never used to link them.
    host.webhook("telegram", &telegram_contact(1, 1001, "+74951112233")).await;
    host.webhook("telegram", &telegram_contact(2, 1002, "+74951112233")).await;
    // Each has a phone of their own; then 1002 shares 1001's phone too: the merge would
    // give one customer two phones, over the limit of 1.
    host.webhook("telegram", &telegram_contact(3, 1001, "+79160000001")).await;
    host.webhook("telegram", &telegram_contact(4, 1002, "+79160000002")).await;
    host.webhook("telegram", &telegram_contact(5, 1002, "+79160000001")).await;
    host.settle().await;
    let a = host.customer("telegram:1001").await;
    let b = host.customer("telegram:1002").await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(identities(&a), ["phone:+79160000001", "telegram:1001"]);
    assert_eq!(identities(&b), ["phone:+79160000002", "telegram:1002"]);
    let (status, _) =
        host.api("GET", "/v1/customers?identity=phone:%2B74951112233", Some(&host.admin), None).await;
    assert_eq!(status, 200);
    assert_eq!(host.get("/v1/customers?identity=phone:%2B74951112233").await["items"], json!([]));
    // The API refuses the same merge, naming the limit.
    let (status, body) = host
        .api(
            "POST",
            &format!("/v1/customers/{}/merge", a["id"].as_str().unwrap()),
            Some(&host.admin),
            Some(json!({"customer": b["id"]})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("limit 1"), "{body}");

    // A third person with no phone shares 1001's: auto-merged (wrongly, say)...
    host.webhook("telegram", &telegram_text(6, 1003, "hi, I am Carol")).await;
    host.webhook("telegram", &telegram_contact(7, 1003, "+79160000001")).await;
    host.settle().await;
    let merged = host.customer("telegram:1003").await;
    assert_eq!(merged["id"], a["id"], "1003 joined 1001 through the shared phone");
    assert_eq!(identities(&merged), ["phone:+79160000001", "telegram:1001", "telegram:1003"]);
    // ...and unmerged by one of its identities: two customers again, each with its history.
    let (status, body) = host
        .api(
            "POST",
            &format!("/v1/customers/{}/unmerge", a["id"].as_str().unwrap()),
            Some(&host.admin),
            Some(json!({"identity": "telegram:1003"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let carol = host.customer("telegram:1003").await;
    let alice = host.customer("telegram:1001").await;
    assert_ne!(carol["id"], alice["id"]);
    assert_eq!(identities(&carol), ["telegram:1003"]);
    assert_eq!(identities(&alice), ["phone:+79160000001", "telegram:1001"]);
    let timeline = host.get(&format!("/v1/customers/{}/timeline", carol["id"].as_str().unwrap())).await;
    let texts: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["event"]["payload"]["text"].as_str())
        .collect();
    assert_eq!(texts, ["hi, I am Carol"]);
    // Unmerging again is refused with a reason.
    let (status, body) = host
        .api(
            "POST",
            &format!("/v1/customers/{}/unmerge", alice["id"].as_str().unwrap()),
            Some(&host.admin),
            Some(json!({"customer": carol["id"]})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("is not merged into"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhooks_get_a_clear_4xx_and_append_nothing() {
    let host = TestHost::start("customers-bad-webhooks", THREE_CHANNELS).await;
    let url = host.url("/v1/channels/telegram/webhook");
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "not json",
            host.http.post(&url).header("x-seam-token", "test-secret").body("{nope"),
            400,
            "webhook-malformed",
        ),
        (
            "no sender",
            host.http.post(&url).header("x-seam-token", "test-secret").json(&json!({"update_id": 1})),
            400,
            "webhook-malformed",
        ),
        (
            "wrong token",
            host.http.post(&url).header("x-seam-token", "guess").json(&telegram_text(9, 1, "x")),
            401,
            "webhook-unauthorized",
        ),
        ("no auth", host.http.post(&url).json(&telegram_text(9, 1, "x")), 401, "webhook-unauthorized"),
        (
            "no channel",
            host.http.post(host.url("/v1/channels/nope/webhook")).json(&json!({})),
            404,
            "channel-not-found",
        ),
    ];
    for (name, request, status, code) in cases {
        let response = request.send().await.expect(name);
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body: Value = response.json().await.expect(name);
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}: {body}");
    }
    // Oversized, declared: refused before the body is read (over a raw socket, so the
    // client is not still writing when the server answers and closes).
    {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(host.addr).unwrap();
        write!(stream, "POST /v1/channels/telegram/webhook HTTP/1.1\r\nHost: x\r\nx-seam-token: test-secret\r\nContent-Length: {}\r\n\r\n{{", 2 << 20).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 413"), "{response}");
        assert!(response.contains("webhook-too-large") && response.contains("1048576 bytes"), "{response}");
    }
    // Oversized, streamed without a length: refused when the limit is crossed.
    {
        use tower::ServiceExt;
        let request = axum::http::Request::post("/v1/channels/telegram/webhook")
            .header("x-seam-token", "test-secret")
            .body(axum::body::Body::from_stream(futures_stream(vec![vec![b' '; 64 << 10]; 40])))
            .unwrap();
        let response = seam::api::router(host.state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), 413);
    }
    assert_eq!(host.state.log.head(), 0, "nothing was appended");
    assert_eq!(host.webhook("telegram", &telegram_text(10, 1, "fine")).await.0, 200);
    host.settle().await;
    assert_eq!(host.customer("telegram:1").await["counters"]["messages_in"], 1);
}

/// A body stream of `chunks`, with no length known in advance.
fn futures_stream(chunks: Vec<Vec<u8>>) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::iter(chunks.into_iter().map(Ok))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_have_roles() {
    let host = TestHost::start("customers-keys", THREE_CHANNELS).await;
    let (status, body) = host.api("GET", "/v1/customers?identity=telegram:1", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = host.api("GET", "/v1/customers?identity=telegram:1", Some("seam_x_y"), None).await;
    assert_eq!(status, 401);
    let (status, created) = host
        .api("POST", "/v1/admin/keys", Some(&host.admin), Some(json!({"name": "inbox", "role": "agent"})))
        .await;
    assert_eq!(status, 201, "{created}");
    let agent = created["key"].as_str().unwrap().to_owned();
    let (status, _) = host.api("GET", "/v1/customers?identity=telegram:1", Some(&agent), None).await;
    assert_eq!(status, 200);
    for (method, path) in
        [("GET", "/v1/admin/keys"), ("GET", "/v1/admin/plugins"), ("POST", "/v1/admin/keys")]
    {
        let (status, body) =
            host.api(method, path, Some(&agent), Some(json!({"name": "x", "role": "admin"}))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{method} {path}");
    }
    let (_, created) = host
        .api("POST", "/v1/admin/keys", Some(&host.admin), Some(json!({"name": "crm", "role": "integration"})))
        .await;
    let integration = created["key"].as_str().unwrap().to_owned();
    let (status, _) = host
        .api("POST", "/v1/customers/cus_x/merge", Some(&integration), Some(json!({"customer": "cus_y"})))
        .await;
    assert_eq!(status, 403, "merging needs the agent role");
    let id = created["record"]["id"].as_str().unwrap();
    let (status, _) = host.api("DELETE", &format!("/v1/admin/keys/{id}"), Some(&host.admin), None).await;
    assert_eq!(status, 204);
    let (status, _) = host.api("GET", "/v1/customers?identity=telegram:1", Some(&integration), None).await;
    assert_eq!(status, 401, "a revoked key stops working at once");
    let listed = host.get("/v1/admin/keys").await;
    assert!(!listed.to_string().contains(&agent), "keys are never listed, only their records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_events_stream_and_openapi() {
    let host = TestHost::start("customers-api", THREE_CHANNELS).await;
    // Subscribe before anything happens: the stream must deliver what comes next.
    let mut stream =
        host.http.get(host.url("/v1/events/stream?after=0")).bearer_auth(&host.admin).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    host.webhook("telegram", &telegram_text(1, 31337, "hi")).await;
    host.settle().await;
    let mut seen = String::new();
    while !seen.contains("pipeline.decided") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
            .await
            .expect("stream delivers")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: message.received") && seen.contains("id: 1"), "{seen}");

    let customer = host.customer("telegram:31337").await;
    let id = customer["id"].as_str().unwrap();
    let (status, body) = host
        .api(
            "PATCH",
            &format!("/v1/customers/{id}"),
            Some(&host.admin),
            Some(json!({"attributes": {"tier": "vip", "crm_id": 42}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attributes"], json!({"tier": "vip", "crm_id": 42}));
    let (_, body) = host
        .api(
            "PATCH",
            &format!("/v1/customers/{id}"),
            Some(&host.admin),
            Some(json!({"attributes": {"tier": null}})),
        )
        .await;
    assert_eq!(body["attributes"], json!({"crm_id": 42}));
    let (status, body) = host
        .api(
            "PATCH",
            &format!("/v1/customers/{id}"),
            Some(&host.admin),
            Some(json!({"attributes": {"bad name": 1}})),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid-attribute")));
    let (status, body) = host
        .api("PATCH", "/v1/customers/cus_missing", Some(&host.admin), Some(json!({"attributes": {}})))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("customer-not-found")));
    let (status, body) = host.api("GET", "/v1/customers?identity=phone:12", Some(&host.admin), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid-identity")), "{body}");

    let events = host.get("/v1/events?after=0").await;
    let types: Vec<&str> =
        events["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "message.received");
    assert!(types.contains(&"customer.update-requested") && types.contains(&"pipeline.decided"), "{types:?}");

    let (status, doc) = host.api("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    for path in [
        "/v1/channels/{channel}/webhook",
        "/v1/customers",
        "/v1/customers/{id}",
        "/v1/customers/{id}/timeline",
        "/v1/customers/{id}/merge",
        "/v1/customers/{id}/unmerge",
        "/v1/conversations",
        "/v1/conversations/{id}",
        "/v1/events",
        "/v1/events/stream",
        "/v1/admin/keys",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from /openapi.json");
    }
    assert!(doc["components"]["schemas"]["CustomerView"].is_object());
    assert!(
        doc["components"]["schemas"]["DecisionGroup"]["properties"]["decisions"].is_object(),
        "the grouped decisions are documented"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_equal_a_full_rebuild() {
    let host = TestHost::start(
        "customers-rebuild",
        &format!("[identity]\ndefault-region = \"RU\"\n{THREE_CHANNELS}"),
    )
    .await;
    // Sender 100 writes more than a timeline chunk's worth, so chunks are rebuilt too.
    for i in 0..40u64 {
        let user = if i % 4 == 0 { 101 + i % 3 } else { 100 };
        host.webhook("telegram", &telegram_text(i, user, &format!("message {i}"))).await;
    }
    host.webhook("telegram", &telegram_contact(100, 100, PHONE)).await;
    host.webhook("whatsapp", &whatsapp_text("w1", "79161234567", "from whatsapp")).await;
    host.webhook("telegram", &telegram_contact(101, 101, PHONE)).await;
    host.settle().await;
    let before = seam_tests::host::dump(&host.state.views);
    assert!(before.iter().any(|(k, _)| k.first() == Some(&b't')), "no timeline chunk was written");
    seam::pipeline::rebuild(host.state.log.as_ref(), &host.state.views, |_, _| {}).unwrap();
    let after = seam_tests::host::dump(&host.state.views);
    assert_eq!(before.len(), after.len());
    assert!(before == after, "views after a rebuild differ from the live ones");

    // Views of an older layout are rebuilt before the processor starts.
    assert_eq!(seam::pipeline::prepare_views(host.state.log.as_ref(), &host.state.views).unwrap(), None);
    host.state.views.clear().unwrap();
    host.state.views.set_format(seam::views::FORMAT - 1).unwrap();
    let rebuilt = seam::pipeline::prepare_views(host.state.log.as_ref(), &host.state.views).unwrap();
    assert!(rebuilt.is_some_and(|applied| applied > 40), "an older layout was not rebuilt: {rebuilt:?}");
    assert!(seam_tests::host::dump(&host.state.views) == before, "the rebuilt layout differs");
}

/// Follows `next_cursor` from `path` (which has a query string) to the end; the offsets and
/// texts of every item, in the order served.
async fn all_pages(host: &TestHost, path: &str) -> Vec<(u64, String)> {
    let mut items = Vec::new();
    let mut url = path.to_owned();
    loop {
        let page = host.get(&url).await;
        for item in page["items"].as_array().expect("items") {
            let offset = item["offset"].as_u64().expect("offset");
            items.push((offset, item["event"]["payload"].to_string()));
        }
        match page["next_cursor"].as_u64() {
            Some(next) => url = format!("{path}&cursor={next}"),
            None => return items,
        }
        assert!(items.len() < 1000, "paging does not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelines_and_messages_page_across_chunks() {
    let host = TestHost::start("customers-paging", THREE_CHANNELS).await;
    // 40 messages from one person, more than two timeline chunks, interleaved in the log
    // with another person's.
    for i in 0..40u64 {
        host.webhook("telegram", &telegram_text(1000 + i, 500, &format!("mine-{i:02}"))).await;
        if i % 3 == 0 {
            host.webhook("telegram", &telegram_text(5000 + i, 501, &format!("other-{i:02}"))).await;
        }
    }
    host.settle().await;
    let customer = host.customer("telegram:500").await;
    let id = customer["id"].as_str().expect("id");
    let conversation = customer["open_conversation"]["id"].as_str().expect("conversation").to_owned();

    let asc = all_pages(&host, &format!("/v1/customers/{id}/timeline?order=asc&limit=7")).await;
    let mut desc = all_pages(&host, &format!("/v1/customers/{id}/timeline?order=desc&limit=6")).await;
    assert_eq!(asc.len(), 40, "{asc:?}");
    for (i, (_, payload)) in asc.iter().enumerate() {
        assert!(payload.contains(&format!("mine-{i:02}")), "entry {i} is {payload}");
    }
    assert!(asc.windows(2).all(|w| w[0].0 < w[1].0), "ascending pages are out of order");
    desc.reverse();
    assert_eq!(asc, desc, "descending pages are not the ascending ones reversed");

    // A page that starts in the middle of a chunk.
    let middle = asc[20].0;
    let page = host.get(&format!("/v1/customers/{id}/timeline?order=asc&limit=3&cursor={middle}")).await;
    let offsets: Vec<u64> =
        page["items"].as_array().expect("items").iter().filter_map(|i| i["offset"].as_u64()).collect();
    assert_eq!(offsets, vec![asc[21].0, asc[22].0, asc[23].0]);

    let messages =
        all_pages(&host, &format!("/v1/conversations/{conversation}/messages?order=asc&limit=9")).await;
    assert_eq!(messages, asc, "the conversation's messages are not the customer's timeline");
    let mut newest_first =
        all_pages(&host, &format!("/v1/conversations/{conversation}/messages?order=desc&limit=4")).await;
    newest_first.reverse();
    assert_eq!(newest_first, asc);
}
