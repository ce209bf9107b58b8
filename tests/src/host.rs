//! A real seam host for end-to-end tests: `server::start` on a scratch data directory with
//! a given config file, serving the real router over real HTTP on an ephemeral port.

use seam::api::AppState;
use seam::server::{self, ServeOptions};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Channel config for Telegram, WhatsApp and SMS (JSON) shaped webhooks through the bundled
/// generic connector, with token auth (`x-seam-token: test-secret`).
pub const THREE_CHANNELS: &str = r#"
[[channels]]
id = "telegram"
plugin = "webhook-connector"
config = { secret = "test-secret", field-id = "update_id", field-sender = "message/from/id", field-sender-kind = "telegram", field-name = "message/from/first_name", field-text = "message/text", field-time = "message/date", field-phone = "message/contact/phone_number" }

[[channels]]
id = "whatsapp"
plugin = "webhook-connector"
config = { secret = "test-secret", field-events = "entry/0/changes/0/value/messages", field-id = "id", field-sender = "from", field-sender-kind = "whatsapp", field-text = "text/body", field-time = "timestamp", field-phone = "from" }

[[channels]]
id = "sms"
plugin = "webhook-connector"
config = { secret = "test-secret", field-id = "MessageSid", field-sender = "From", field-sender-kind = "phone", field-text = "Body", field-time = "" }
"#;

/// A running host.
pub struct TestHost {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (log, views, keys...).
    pub state: AppState,
    /// The admin key made on first start.
    pub admin: String,
    /// Its data directory.
    pub dir: PathBuf,
    /// An HTTP client.
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestHost {
    /// Starts a host in scratch directory `name` with config text `config` (identity rules
    /// and so on are appended to the three channels by callers that need them).
    pub async fn start(name: &str, config: &str) -> TestHost {
        Self::start_with(name, config, Vec::new()).await
    }

    /// [`TestHost::start`], trusting the root certificates in the PEM files `extra_ca` for
    /// outbound TLS (as `seam serve --extra-ca`).
    pub async fn start_with(name: &str, config: &str, extra_ca: Vec<PathBuf>) -> TestHost {
        let dir = crate::scratch(name);
        let config_file = dir.join("seam.config.toml");
        std::fs::write(&config_file, config).expect("write config");
        let options = ServeOptions {
            data_dir: dir.join("data"),
            config: Some(config_file),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            extra_ca,
            ..ServeOptions::default()
        };
        let host = server::start(&options).await.expect("host starts");
        let admin = host.new_admin_key.clone().expect("first start makes an admin key");
        let state = host.state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = seam::api::router(host.state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestHost { addr, state, admin, dir, http: reqwest::Client::new(), server }
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Posts `body` to channel `channel`'s webhook with the test token; status and body.
    pub async fn webhook(&self, channel: &str, body: &Value) -> (u16, String) {
        let response = self
            .http
            .post(self.url(&format!("/v1/channels/{channel}/webhook")))
            .header("x-seam-token", "test-secret")
            .json(body)
            .send()
            .await
            .expect("webhook request");
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    }

    /// A `/v1` call with `key`; status and JSON body (or the text as a JSON string).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("api request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// An admin GET that must succeed.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.api("GET", path, Some(&self.admin), None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Waits until the pipeline has decided everything in the log.
    pub async fn settle(&self) {
        loop {
            let applied = self.state.progress.applied();
            let (inputs, _) =
                self.state.log.read_origin(applied, 1, seam::log::Origin::Input).expect("log readable");
            let Some(next) = inputs.first() else { return };
            assert!(
                self.state.progress.wait_for(next.offset, Duration::from_secs(20)).await,
                "pipeline did not reach input {} (at {})",
                next.offset,
                self.state.progress.applied()
            );
        }
    }

    /// The customer holding `identity` (must exist).
    pub async fn customer(&self, identity: &str) -> Value {
        let found = self.get(&format!("/v1/customers?identity={}", urlencode(identity))).await;
        let items = found["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "customers holding {identity}: {found}");
        items[0].clone()
    }
}

/// Percent-encodes a query value.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every key and value of the views, for comparing two states.
pub fn dump(views: &seam::views::Views) -> Vec<seam::views::KeyValue> {
    views.dump().expect("views readable")
}

/// The decisions in a page of `GET /v1/events`, in order: the payload of each
/// `pipeline.decided` event and each decision of a `pipeline.decisions` event (the decisions
/// of several inputs decided together).
pub fn decisions(page: &Value) -> Vec<Value> {
    let items = page["items"].as_array().cloned().unwrap_or_default();
    items
        .into_iter()
        .flat_map(|e| match e["type"].as_str() {
            Some("pipeline.decided") => vec![e["payload"].clone()],
            Some("pipeline.decisions") => e["payload"]["decisions"].as_array().cloned().unwrap_or_default(),
            _ => Vec::new(),
        })
        .collect()
}
