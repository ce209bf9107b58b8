//! Local stand-ins for providers' send APIs: real HTTP servers on 127.0.0.1 that record
//! every request and answer the way the provider documents, successes and errors alike.
//! A test queues scripted answers (an error, a rate limit) that are given before the
//! provider's normal answer.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One request a stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST`...
    pub method: String,
    /// Path, e.g. `/bot123:abc/sendMessage`.
    pub path: String,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON (Null if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as form fields.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    /// The first form field named `name`.
    pub fn field(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An answer: status, headers, body.
pub type Answer = (u16, Vec<(String, String)>, String);

type Responder = dyn Fn(&Received, u64) -> Answer + Send + Sync;

/// A running stand-in.
#[derive(Clone)]
pub struct StandIn {
    /// Its port on 127.0.0.1.
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// Milliseconds every answer waits (see [`StandIn::slow`]).
    delay: Arc<AtomicU64>,
    /// Requests being answered now, and the most there ever were.
    open: Arc<(AtomicU64, AtomicU64)>,
}

impl StandIn {
    /// Starts a stand-in whose normal answer to the n-th request (1-based) is `respond`.
    pub async fn start(respond: impl Fn(&Received, u64) -> Answer + Send + Sync + 'static) -> StandIn {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<Answer>>> = Arc::default();
        let counter = Arc::new(AtomicU64::new(0));
        let delay: Arc<AtomicU64> = Arc::default();
        let open: Arc<(AtomicU64, AtomicU64)> = Arc::default();
        let respond: Arc<Responder> = Arc::new(respond);
        let (rec, scr, slow, busy) = (received.clone(), script.clone(), delay.clone(), open.clone());
        let app =
            axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (rec, scr, counter, respond, slow, busy) =
                    (rec.clone(), scr.clone(), counter.clone(), respond.clone(), slow.clone(), busy.clone());
                async move {
                    let now_open = busy.0.fetch_add(1, Ordering::SeqCst) + 1;
                    busy.1.fetch_max(now_open, Ordering::SeqCst);
                    let request = Received {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())
                            })
                            .collect(),
                        body: body.to_vec(),
                    };
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let scripted = scr.lock().unwrap().pop_front();
                    let (status, headers, body) = scripted.unwrap_or_else(|| respond(&request, n));
                    rec.lock().unwrap().push(request);
                    let wait = slow.load(Ordering::SeqCst);
                    if wait > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    }
                    busy.0.fetch_sub(1, Ordering::SeqCst);
                    answer(status, headers, body)
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind stand-in");
        let port = listener.local_addr().expect("local addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        StandIn { port, received, script, delay, open }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Queues an answer given (once) before the normal ones.
    pub fn then(&self, status: u16, headers: &[(&str, &str)], body: Value) {
        let headers = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.script.lock().unwrap().push_back((status, headers, body.to_string()));
    }

    /// Makes every answer wait `ms` milliseconds (requests are recorded when they come).
    pub fn slow(&self, ms: u64) {
        self.delay.store(ms, Ordering::SeqCst);
    }

    /// The most requests it was answering at the same time.
    pub fn max_concurrent(&self) -> u64 {
        self.open.1.load(Ordering::SeqCst)
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests came (up to 20 s) and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..400 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("stand-in got {} requests, expected {n}: {:?}", self.received().len(), self.received());
    }
}

fn answer(status: u16, headers: Vec<(String, String)>, body: String) -> Response {
    let mut response = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (k.parse::<axum::http::HeaderName>(), v.parse()) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}

/// The WhatsApp Cloud API's answer to `POST /{phone-number-id}/messages`.
pub fn whatsapp_ok(request: &Received, n: u64) -> Answer {
    let to = request.json()["to"].as_str().unwrap_or_default().to_owned();
    let body = json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": format!("wamid.standin{n}")}],
    });
    (200, Vec::new(), body.to_string())
}

/// A Graph API error body.
pub fn whatsapp_error(code: u64, message: &str) -> Value {
    json!({"error": {"message": message, "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message}, "fbtrace_id": "AbCdEf"}})
}

/// Twilio's answer to `POST /2010-04-01/Accounts/{sid}/Messages.json`.
pub fn twilio_ok(request: &Received, n: u64) -> Answer {
    let body = json!({
        "sid": format!("SM{n:032}"),
        "status": "queued",
        "to": request.field("To"),
        "from": request.field("From"),
        "body": request.field("Body"),
    });
    (201, Vec::new(), body.to_string())
}

/// The Telegram Bot API's answer to `sendMessage` and the other send methods.
pub fn telegram_ok(request: &Received, n: u64) -> Answer {
    let chat = request.json()["chat_id"].clone();
    let body = json!({"ok": true, "result": {"message_id": 1000 + n, "date": 1_700_000_000,
        "chat": {"id": chat, "type": "private"}, "text": request.json()["text"]}});
    (200, Vec::new(), body.to_string())
}

/// Viber's answer to `POST /pa/send_message`.
pub fn viber_ok(_: &Received, n: u64) -> Answer {
    let body = json!({"status": 0, "status_message": "ok", "message_token": 5_098_034_272_000_000_000u64 + n,
        "chat_hostname": "SN-CHAT-01_"});
    (200, Vec::new(), body.to_string())
}

/// The Messenger Send API's answer to `POST /me/messages`.
pub fn messenger_ok(request: &Received, n: u64) -> Answer {
    let body =
        json!({"recipient_id": request.json()["recipient"]["id"], "message_id": format!("m_standin{n}")});
    (200, Vec::new(), body.to_string())
}

/// SendGrid's answer to `POST /v3/mail/send`: 202, empty body, the id in `X-Message-Id`.
pub fn sendgrid_ok(_: &Received, n: u64) -> Answer {
    (202, vec![("x-message-id".into(), format!("sg-standin-{n}"))], String::new())
}
