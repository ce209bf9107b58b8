//! A real browser for the end-to-end tests: Debian's headless Chromium driven through
//! chromedriver (WebDriver) with `fantoccini`. `tests/run.sh` installs both packages.
//! Screenshots go to `target/test-artifacts/`, kept after the run.

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A headless Chromium session; the browser and chromedriver stop when dropped.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
}

fn find(env: &str, candidates: &[&str]) -> String {
    std::env::var(env).ok().into_iter().chain(candidates.iter().map(|c| c.to_string())).find(|c| Path::new(c).exists()).unwrap_or_else(|| {
        panic!(
            "none of {candidates:?} exists: install Debian's chromium and chromium-driver (tests/run.sh does) or set {env}"
        )
    })
}

/// Where screenshots are kept.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile in scratch
    /// directory `name`.
    pub async fn start(name: &str) -> Browser {
        let chromium = find("SEAM_TEST_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let chromedriver = find("SEAM_TEST_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        // Chromium fails to start ("Could not read in devtools port number") with a profile
        // path holding `..`.
        let profile = std::fs::canonicalize(crate::scratch(name)).expect("profile dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The flags keep Chromium from reaching for the network at start (closed here) and
        // let it run as root in a container.
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": chromium, "args": args }));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session with headless Chromium");
        Browser { client, driver }
    }

    /// Saves a screenshot as `target/test-artifacts/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let file = artifacts().join(format!("{name}.png"));
        std::fs::write(&file, png).expect("write screenshot");
        file
    }

    /// Waits up to 15 s for an element matching `css` whose text contains `text`; returns
    /// that text. On timeout, saves a screenshot `<name>-timeout` and panics.
    pub async fn wait_text(&self, css: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for element in elements {
                    if let Ok(found) = element.text().await
                        && found.contains(text)
                    {
                        return found;
                    }
                }
            }
            if Instant::now() > deadline {
                let shot = self.screenshot("wait-timeout").await;
                panic!("no `{css}` with text {text:?} after 15 s (screenshot {})", shot.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session and stops the browser.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
