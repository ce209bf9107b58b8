//! The `seam` binary itself: `seam serve` over real HTTP on a real data directory, and
//! `seam plugin inspect` on a bundled component.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use support::{SEAM, banner_secret, data_dir, free_port, get, post, serve};

fn admin_key(banner: &str) -> Option<String> {
    banner.split_whitespace().find(|w| w.starts_with("seam_")).map(str::to_owned)
}

/// Waits up to 10 s for the view of the customer behind `webhook:visitor-7` to count one
/// message; `what` says what failed otherwise.
fn wait_for_visitor(port: u16, key: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(port, "/v1/customers?identity=webhook:visitor-7", Some(key));
        assert_eq!(status, 200, "{body}");
        if body.contains("\"messages_in\":1") {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_zero_config_then_restart_keeps_the_key() {
    let data = data_dir("serve");
    let port = free_port();
    let server = serve(&data, port, &[]);
    assert!(server.banner.contains(&format!("http://127.0.0.1:{port}")), "{}", server.banner);
    let key = admin_key(&server.banner).expect("first start prints an admin key");

    let (status, body) = get(port, "/healthz", None);
    assert_eq!(status, 200, "{body}");
    let plugins = seam::bundled::BUNDLED.len() + 1;
    assert!(
        body.contains(&format!("\"plugins\":{plugins}")),
        "every bundled plugin and the webhook channel: {body}"
    );

    // The zero-config `webhook` channel takes JSON signed with the secret printed once.
    let secret = banner_secret(&server.banner).expect("first start prints the webhook secret");
    let message = r#"{"id": "m-1", "from": "visitor-7", "text": "hello"}"#;
    let (status, body) = post(port, "/v1/channels/webhook/webhook", &[("x-seam-token", &secret)], message);
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":1}"#));
    let (status, body) = post(port, "/v1/channels/webhook/webhook", &[("x-seam-token", "wrong")], message);
    assert_eq!(status, 401, "{body}");
    wait_for_visitor(port, &key, "the message never reached the customer view");
    let (status, body) = get(port, "/v1/admin/plugins", Some(&key));
    assert_eq!(status, 200);
    assert!(body.contains("keyword-router") && body.contains("webhook-connector"), "{body}");
    assert_eq!(get(port, "/v1/admin/plugins", None).0, 401);
    let (status, metrics) = get(port, "/metrics", None);
    assert_eq!(status, 200);
    assert!(metrics.contains("seam_plugin_loads_total{plugin=\"keyword-router\"} 1"), "{metrics}");

    // `seam plugin push` loads a plugin directory, then swaps in a new version.
    let out = Path::new(env!("OUT_DIR"));
    let plugin_dir = data_dir("push-plugin");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::copy(out.join("keyword-router.wasm"), plugin_dir.join("keyword_router.wasm")).unwrap();
    let manifest = std::fs::read_to_string(out.join("keyword-router.seam.toml")).unwrap();
    let push = |manifest: &str| {
        std::fs::write(plugin_dir.join("seam.toml"), manifest).unwrap();
        let output = Command::new(SEAM)
            .args(["plugin", "push"])
            .arg(&plugin_dir)
            .args([
                "--url",
                &format!("http://127.0.0.1:{port}"),
                "--key",
                &key,
                "--config",
                "default-queue=triage",
            ])
            .output()
            .unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    };
    let renamed = manifest.replace("name = \"keyword-router\"", "name = \"triage-router\"");
    let (ok, text) = push(&renamed);
    assert!(ok && text.starts_with("loaded triage-router 0.1.0"), "{text}");
    let (ok, text) = push(&renamed.replace("version = \"0.1.0\"", "version = \"0.2.0\""));
    assert!(ok && text.starts_with("swapped triage-router 0.1.0 -> 0.2.0"), "{text}");
    let (_, body) = get(port, "/v1/admin/plugins/triage-router", Some(&key));
    assert!(body.contains("\"version\":\"0.2.0\""), "{body}");
    let (ok, text) = push(&renamed.replace("wit = \"0.1.0\"", "wit = \"9.0.0\""));
    assert!(!ok && text.contains("field `wit`"), "a bad manifest is refused before upload: {text}");
    drop(server);

    // The data dir holds the key's hash only, and the compiled plugins.
    let stored = std::fs::read_dir(data.join("db")).unwrap().count();
    assert!(stored > 0);
    // One per distinct component: the pushed router is the bundled one's component.
    let artifacts = std::fs::read_dir(data.join("cache")).unwrap().count();
    assert_eq!(artifacts, seam::bundled::BUNDLED.len(), "one cached artifact per bundled component");

    let port = free_port();
    let server = serve(&data, port, &[]);
    assert!(admin_key(&server.banner).is_none(), "no new key on restart: {}", server.banner);
    assert!(banner_secret(&server.banner).is_none(), "the webhook secret is shown once: {}", server.banner);
    // The views are not fsynced (the log is) and the server was killed: they may come back
    // behind the log, and the pipeline applies the durable decisions after their cursor
    // while the server already answers (a CI run once read them before it had).
    wait_for_visitor(port, &key, "the views come back after a restart");
    assert_eq!(get(port, "/v1/admin/plugins", Some(&key)).0, 200, "the first key still works");
    let (_, body) = get(port, "/v1/admin/plugins/keyword-router", Some(&key));
    assert!(body.contains("\"cache\":\"hit\""), "restart loads from the artifact cache: {body}");
}

#[test]
fn plugin_inspect_shows_world_imports_exports_and_manifest() {
    let dir = Path::new(env!("OUT_DIR"));
    let output = Command::new(SEAM)
        .args(["plugin", "inspect"])
        .arg(dir.join("keyword-router.wasm"))
        .arg("--manifest")
        .arg(dir.join("keyword-router.seam.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("world:     seam:plugin/router"), "{text}");
    assert!(text.contains("  seam:plugin/config@0.1.0"), "imports listed: {text}");
    assert!(text.contains("  seam:plugin/routing@0.1.0\n    route"), "exports with functions: {text}");
    assert!(text.contains("name = \"keyword-router\""), "manifest printed: {text}");
    assert!(!text.contains("WARNING"), "the manifest grants what it imports: {text}");

    let junk = Path::new(env!("CARGO_TARGET_TMPDIR")).join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let output = Command::new(SEAM).args(["plugin", "inspect"]).arg(&junk).output().unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("not a WebAssembly component"), "{err}");
}

/// `seam replay --router`: a candidate policy over the log of a stopped `seam serve`, with the
/// diff by queue as text and as JSON, and a clear error for a bad `--set`.
#[test]
fn replay_router_reports_what_a_candidate_would_have_changed() {
    let data = data_dir("replay-router");
    let port = free_port();
    let server = serve(&data, port, &[]);
    let key = admin_key(&server.banner).expect("an admin key");
    let secret = banner_secret(&server.banner).expect("the webhook secret");
    let texts = ["hello there", "У меня проблема с заказом", "hi", "the app is not working"];
    for (i, text) in texts.iter().enumerate() {
        let message =
            serde_json::json!({"id": format!("m-{i}"), "from": format!("visitor-{i}"), "text": text});
        let (status, body) =
            post(port, "/v1/channels/webhook/webhook", &[("x-seam-token", &secret)], &message.to_string());
        assert_eq!(status, 200, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(port, "/v1/customers?identity=webhook:visitor-3", Some(&key));
        if body.contains("\"open_conversation\":{") {
            break;
        }
        assert!(Instant::now() < deadline, "the messages were never routed: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server);

    let replay = |extra: &[&str]| {
        let output = Command::new(SEAM)
            .args(["replay", "--data-dir"])
            .arg(&data)
            .args(["--router", "keyword-router"])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), stdout, stderr)
    };
    // The candidate sends what no keyword matches to `triage` instead of `general`.
    let (ok, json, stderr) = replay(&["--set", "keyword-router.default-queue=triage", "--json"]);
    assert!(ok, "{stderr}");
    let result: serde_json::Value = serde_json::from_str(&json).expect("--json prints JSON");
    let diff = &result["diff"];
    assert_eq!(
        (diff["decisions"].as_u64(), diff["same"].as_u64(), diff["different"].as_u64()),
        (Some(4), Some(2), Some(2)),
        "{diff}"
    );
    assert_eq!(diff["by_queue"]["general"]["candidate_queues"]["triage"], 2, "{diff}");
    assert_eq!(diff["by_queue"]["support"]["different"], 0, "{diff}");

    let (ok, text, stderr) = replay(&["--set", "keyword-router.default-queue=triage"]);
    assert!(ok, "{stderr}");
    assert!(text.contains("4 decisions compared: 2 the same, 2 different"), "{text}");
    assert!(text.contains("general: 2 decisions, 2 different -> triage 2"), "{text}");
    assert!(text.contains("\"hello there\""), "examples name the message: {text}");

    // The same policy as live changes nothing; bad arguments are named.
    let (ok, text, stderr) = replay(&[]);
    assert!(ok && text.contains("4 decisions compared: 4 the same, 0 different"), "{text}{stderr}");
    let (ok, _, stderr) = replay(&["--set", "nope.default-queue=x"]);
    assert!(!ok && stderr.contains("no --router `nope`"), "{stderr}");
    let (ok, _, stderr) = replay(&["--since", "yesterday-ish"]);
    assert!(!ok && stderr.contains("--since `yesterday-ish`"), "{stderr}");
}

#[test]
fn serve_takes_a_cache_size_and_turns_huge_pages_off() {
    let data = data_dir("serve-cache");
    let port = free_port();
    let server = serve(&data, port, &["--cache-mb", "4", "--log-cache-mb", "2"]);
    assert_eq!(get(port, "/healthz", None).0, 200);
    // Linux reports the process's PR_SET_THP_DISABLE flag as `THP_enabled: 0`.
    if cfg!(target_os = "linux") {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
        let thp = status.lines().find(|l| l.starts_with("THP_enabled:")).expect("kernel reports THP_enabled");
        assert!(thp.ends_with("\t0"), "transparent huge pages are still on: {thp:?}");
    }
    drop(server);

    for flag in ["--cache-mb", "--log-cache-mb"] {
        let out = Command::new(SEAM)
            .args(["serve", flag, "0", "--data-dir"])
            .arg(data_dir(&format!("serve{flag}-zero")))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag) && stderr.contains("1..=65536"), "{stderr}");
    }
}
