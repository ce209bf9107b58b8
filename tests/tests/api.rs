//! The HTTP API, driven through the axum router with `tower::ServiceExt::oneshot`:
//! health, metrics, API keys and roles, loading and swapping plugins at run time.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use seam::api::auth::{ApiKeys, Role};
use seam::api::{AppState, router};
use seam_tests::{VIP_MANIFEST, VIP_WASM, app_state, hostile, message_context, runtime};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    state: AppState,
    admin: String,
    agent: String,
}

fn api() -> Api {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let keys = ApiKeys::open(&db).unwrap();
    let (admin, _) = keys.create("admin", Role::Admin, None).unwrap();
    let (agent, _) = keys.create("agent", Role::Agent, None).unwrap();
    Api { state: app_state(runtime(None, 2), keys, &db), admin, agent }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let body = match body {
            Some(v) => {
                request = request.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let response = router(self.state.clone()).oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_need_no_key() {
    let api = api();
    let (status, body) = api.call("GET", "/healthz", None, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, body) = api.call("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_str().unwrap().ends_with("# EOF\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_an_admin_key() {
    let api = api();
    let (status, body) = api.call("GET", "/v1/admin/plugins", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = api.call("GET", "/v1/admin/plugins", Some("seam_abc_forged"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = api.call("GET", "/v1/admin/plugins", Some(&api.agent), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"]["message"].as_str().unwrap().contains("Admin"), "{body}");
    let (status, body) = api.call("GET", "/v1/admin/plugins", Some(&api.admin), None).await;
    assert_eq!((status, body["plugins"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_swap_a_plugin_at_run_time() {
    let api = api();
    let manifest = std::fs::read_to_string(VIP_MANIFEST).unwrap();
    let component = base64::engine::general_purpose::STANDARD.encode(std::fs::read(VIP_WASM).unwrap());
    let body = json!({ "manifest": manifest, "component": component });
    let (status, created) =
        api.call("PUT", "/v1/admin/plugins/vip-router", Some(&api.admin), Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["replaced"].is_null());

    // Swap to version 2 with other config: same component, new manifest version.
    let v2 = json!({
        "manifest": manifest.replace("version = \"0.1.0\"", "version = \"0.2.0\""),
        "component": component,
        "config": { "queue": "frontline" },
    });
    let (status, swapped) = api.call("PUT", "/v1/admin/plugins/vip-router", Some(&api.admin), Some(v2)).await;
    assert_eq!(status, StatusCode::OK, "{swapped}");
    assert_eq!(swapped["replaced"]["version"], "0.1.0");
    assert_eq!(swapped["version"], "0.2.0");
    assert_eq!(swapped["load"]["cache"], "compiled", "no cache dir in this test");
    let d = api.state.runtime.route("vip-router", &message_context("hi")).await.unwrap().unwrap();
    assert_eq!(d.queue.as_deref(), Some("frontline"));

    let (status, shown) = api.call("GET", "/v1/admin/plugins/vip-router", Some(&api.admin), None).await;
    assert_eq!((status, shown["version"].as_str()), (StatusCode::OK, Some("0.2.0")));

    let (status, _) = api.call("DELETE", "/v1/admin/plugins/vip-router", Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.call("GET", "/v1/admin/plugins/vip-router", Some(&api.admin), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("plugin-not-found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_get_clear_errors() {
    let api = api();
    let manifest = std::fs::read_to_string(VIP_MANIFEST).unwrap();
    let cases = [
        (json!({ "manifest": manifest, "component": "%%%" }), "invalid-component", "field `component`"),
        (
            json!({ "manifest": manifest, "component": "AGFzbQEAAAA=" }),
            "not-a-component",
            "core WebAssembly module",
        ),
        (
            json!({ "manifest": "name = 1", "component": "AA==" }),
            "invalid-manifest",
            "admin-upload:vip-router",
        ),
        (json!({ "path": "/nonexistent", "manifest": manifest }), "invalid-body", "either `path`"),
        (
            json!({ "manifest": manifest.replace("vip-router\"", "other\""), "component": base64::engine::general_purpose::STANDARD.encode(std::fs::read(VIP_WASM).unwrap()) }),
            "name-mismatch",
            "`other`",
        ),
    ];
    for (body, code, fragment) in cases {
        let (status, reply) =
            api.call("PUT", "/v1/admin/plugins/vip-router", Some(&api.admin), Some(body)).await;
        assert!(status.is_client_error(), "{code}: {status}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains(fragment), "{code}: {reply}");
    }
    let (status, reply) =
        api.call("PUT", "/v1/admin/plugins/vip-router", Some(&api.admin), Some(json!({"bogus": 1}))).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid-json"))
    );
    assert!(reply["error"]["message"].as_str().unwrap().contains("bogus"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_breaker_shows_in_the_api_and_can_be_reset() {
    let api = api();
    let caps = "[capabilities]\nlog = true\nkv = { quota-bytes = 8 }\nhttp = []\n";
    api.state.runtime.load(hostile("flaky", caps), &Default::default()).await.unwrap();
    for _ in 0..2 {
        assert!(api.state.runtime.route("flaky", &message_context("panic")).await.is_err());
    }
    let (_, shown) = api.call("GET", "/v1/admin/plugins/flaky", Some(&api.admin), None).await;
    assert!(shown["disabled"]["reason"].as_str().unwrap().contains("panics on purpose"), "{shown}");
    let (_, health) = api.call("GET", "/healthz", None, None).await;
    assert_eq!(health["disabled"], json!(["flaky"]));
    let (status, _) = api.call("POST", "/v1/admin/plugins/flaky/enable", Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, shown) = api.call("GET", "/v1/admin/plugins/flaky", Some(&api.admin), None).await;
    assert!(shown["disabled"].is_null(), "{shown}");
    assert!(api.state.runtime.route("flaky", &message_context("hello")).await.unwrap().is_ok());
}
