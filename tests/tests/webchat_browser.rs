//! The web chat widget in a real browser (headless Chromium over WebDriver): a shop page on
//! its own origin embeds `/webchat.js`; the visitor writes, leaves an email, and sees the
//! agent's reply arrive live. A screenshot is kept in `target/test-artifacts/`.

use fantoccini::Locator;
use seam_tests::browser::Browser;
use seam_tests::host::TestHost;
use seam_tests::providers::{send, wait_status};
use serde_json::json;

/// Serves, on `listener`, the shop page embedding the widget of the host at `seam`.
fn serve_shop_page(listener: tokio::net::TcpListener, seam: std::net::SocketAddr) {
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Acme shop</title></head>
<body><h1>Acme shop</h1><p>Spring sale.</p>
<script src="http://{seam}/webchat.js" data-channel="web" data-site-key="site-1" data-title="Acme help" async></script>
</body></html>"#
    );
    let app =
        axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_in_the_browser_and_sees_the_reply_live() {
    // The page's origin goes into the channel's config, and the page names the host: bind
    // the page's port first, serve it once the host runs.
    let page_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_origin = format!("http://{}", page_listener.local_addr().unwrap());
    let config = format!(
        "[[channels]]\nid = \"web\"\nplugin = \"webchat-connector\"\nconfig = {{ site-key = \"site-1\", allowed-origins = \"{page_origin}\" }}\n"
    );
    let host = TestHost::start("webchat-browser", &config).await;
    serve_shop_page(page_listener, host.addr);
    let browser = Browser::start("webchat-browser-profile").await;
    let client = &browser.client;
    client.goto(&format!("{page_origin}/")).await.unwrap();
    browser.wait_text("#seam-chat", "Acme help").await;

    let text = "Здравствуйте, проблема с заказом 1042";
    client.find(Locator::Css("#seam-chat-input")).await.unwrap().send_keys(text).await.unwrap();
    client.find(Locator::Css("#seam-chat-form button")).await.unwrap().click().await.unwrap();
    browser.wait_text(".seam-visitor", text).await;
    let visitor = client.execute("return localStorage.getItem('seam-visitor')", vec![]).await.unwrap();
    let visitor = visitor.as_str().expect("the widget keeps a visitor id").to_owned();
    host.settle().await;
    let customer = host.customer(&format!("web:{visitor}")).await;
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    let timeline = host.get(&format!("/v1/customers/{customer_id}/timeline")).await;
    assert_eq!(timeline["items"][0]["event"]["payload"]["text"], text, "{timeline}");

    client.find(Locator::Css("#seam-chat-email")).await.unwrap().send_keys("anna@example.com").await.unwrap();
    client.find(Locator::Css("#seam-chat-contact button")).await.unwrap().click().await.unwrap();
    browser.wait_text(".seam-system", "anna@example.com").await;
    host.settle().await;
    let by_email = host.customer("email:anna@example.com").await;
    assert_eq!(by_email["id"], customer_id.as_str(), "the left email is the same customer");

    let conversation = customer["open_conversation"]["id"].as_str().expect("conversation").to_owned();
    let reply = "Сейчас проверю заказ 1042";
    let sent =
        send(&host, &format!("/v1/conversations/{conversation}/messages"), json!({"text": reply})).await;
    browser.wait_text(".seam-agent", reply).await;
    // Shown in a visible tab: delivered, then read.
    let read = wait_status(&host, sent["id"].as_str().unwrap(), "read").await;
    let steps: Vec<&str> =
        read["history"].as_array().unwrap().iter().filter_map(|h| h["what"].as_str()).collect();
    assert!(steps.iter().any(|s| s.contains("delivered")), "delivered before read: {steps:?}");
    let shot = browser.screenshot("webchat-widget").await;

    // A reload shows the conversation again, and replies keep arriving live.
    client.refresh().await.unwrap();
    browser.wait_text(".seam-visitor", text).await;
    browser.wait_text(".seam-agent", reply).await;
    let later = "Заказ 1042 отправлен сегодня";
    send(&host, &format!("/v1/conversations/{conversation}/messages"), json!({"text": later})).await;
    browser.wait_text(".seam-agent", later).await;
    let agent_lines = client.find_all(Locator::Css(".seam-agent")).await.unwrap().len();
    assert_eq!(agent_lines, 2, "each reply shown once after the reload");
    browser.screenshot("webchat-widget-reloaded").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000, "a real screenshot");
    browser.close().await;
}
