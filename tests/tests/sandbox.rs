//! Hostile plugins: each misbehaviour fails only its own call, with a typed error, while
//! the host keeps serving other plugins; repeated failures trip the breaker.

use seam::runtime::CallError;
use seam_tests::{hostile, message_context, reason, runtime, stand_in};
use std::time::{Duration, Instant};

const LIMITS: &str = "[capabilities]\nlog = true\nkv = { quota-bytes = 64 }\nhttp = []\n[limits]\nmemory-mb = 16\ncpu-ms = 50\ntimeout-ms = 2000\noutput-kb = 8\nlog-bytes = 1000\n";

async fn setup(threshold: u32) -> seam::runtime::Runtime {
    let rt = runtime(None, threshold);
    rt.load(hostile("bad", LIMITS), &Default::default()).await.expect("hostile loads");
    rt.load(hostile("good", LIMITS), &Default::default()).await.expect("second copy loads");
    rt
}

async fn route(
    rt: &seam::runtime::Runtime,
    name: &str,
    text: &str,
) -> Result<Result<seam_tests::routing::Decision, String>, CallError> {
    rt.route(name, &message_context(text)).await
}

/// The other plugin still answers normally.
async fn good_still_serves(rt: &seam::runtime::Runtime) {
    let d = route(rt, "good", "hello").await.expect("good plugin answers").expect("decision");
    assert_eq!(d.queue.as_deref(), Some("good"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_loop_hits_the_cpu_limit_not_the_wall_timeout() {
    let rt = setup(10).await;
    let started = Instant::now();
    let err = route(&rt, "bad", "loop").await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, CallError::CpuLimit { ms: 50, .. }), "{err}");
    assert!(
        elapsed < Duration::from_millis(2000),
        "stopped by the CPU deadline, not the 2 s timeout: {elapsed:?}"
    );
    assert!(err.to_string().contains("plugin `bad`"), "error names the plugin: {err}");
    good_still_serves(&rt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_growth_past_the_cap_fails_the_call() {
    let rt = setup(10).await;
    let err = route(&rt, "bad", "alloc:64").await.unwrap_err();
    assert!(matches!(err, CallError::MemoryLimit { .. }), "{err}");
    assert!(err.to_string().contains("16777216"), "names the limit: {err}");
    // Within the cap the same code works: the limit, not the code, failed the call.
    let ok = route(&rt, "bad", "alloc:4").await.unwrap().unwrap();
    assert!(ok.reason.starts_with("allocated 4194304"), "{}", ok.reason);
    good_still_serves(&rt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_output_is_refused() {
    let rt = setup(10).await;
    let err = route(&rt, "bad", "big:64").await.unwrap_err();
    match &err {
        CallError::OutputTooLarge { bytes, limit, .. } => {
            assert!(*bytes > 64 * 1024, "{bytes}");
            assert_eq!(*limit, 8 * 1024);
        }
        other => panic!("expected OutputTooLarge, got {other}"),
    }
    assert_eq!(reason(&route(&rt, "bad", "big:1").await).len(), 1024, "small output passes");
    good_still_serves(&rt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_a_trap_with_the_message() {
    let rt = setup(10).await;
    let err = route(&rt, "bad", "panic").await.unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    assert!(err.to_string().contains("hostile plugin panics on purpose"), "stderr captured: {err}");
    // The next call gets a fresh instance: a trap does not poison the plugin.
    assert_eq!(route(&rt, "bad", "hello").await.unwrap().unwrap().queue.as_deref(), Some("bad"));
    good_still_serves(&rt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_state_survives_from_one_call_to_the_next() {
    let rt = setup(10).await;
    assert_eq!(reason(&route(&rt, "bad", "remember:secret").await), "remembered");
    assert_eq!(reason(&route(&rt, "bad", "recall").await), "recalled:None");
}

/// A runtime with the hostile router loaded as `keeper`, `calls` calls per instance.
async fn keeper(calls: u32) -> seam::runtime::Runtime {
    let rt = runtime(None, 10);
    let limits =
        LIMITS.replace("log-bytes = 1000\n", &format!("log-bytes = 1000\ncalls-per-instance = {calls}\n"));
    rt.load(hostile("keeper", &limits), &Default::default()).await.expect("hostile loads");
    rt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_only_as_many_calls_as_the_manifest_allows() {
    let rt = keeper(3).await;
    let call = async |text: &str| reason(&route(&rt, "keeper", text).await);
    assert_eq!(call("remember:secret").await, "remembered");
    assert_eq!(call("recall").await, "recalled:Some(\"secret\")", "the second call reuses the instance");
    assert_eq!(call("recall").await, "recalled:Some(\"secret\")", "and so does the third");
    assert_eq!(call("recall").await, "recalled:None", "the fourth gets a fresh instance");
    // A failed call's instance is destroyed, whatever its count.
    assert_eq!(call("remember:again").await, "remembered");
    assert!(matches!(route(&rt, "keeper", "panic").await, Err(CallError::Trap { .. })));
    assert_eq!(call("recall").await, "recalled:None", "no state survives a trap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_disables_after_n_failures_and_admin_reenables() {
    let rt = setup(3).await;
    for _ in 0..3 {
        assert!(matches!(route(&rt, "bad", "panic").await, Err(CallError::Trap { .. })));
    }
    let err = route(&rt, "bad", "hello").await.unwrap_err();
    assert!(matches!(err, CallError::Disabled { .. }), "{err}");
    assert!(err.to_string().contains("panics on purpose"), "says why: {err}");
    assert!(rt.slot("bad").unwrap().disabled().is_some());
    let metrics = rt.metrics().encode();
    assert!(metrics.contains("seam_plugin_disabled{plugin=\"bad\"} 1"), "{metrics}");
    assert!(metrics.contains("seam_plugin_breaker_trips_total{plugin=\"bad\"} 1"), "{metrics}");
    good_still_serves(&rt).await;
    assert!(rt.enable("bad"));
    assert_eq!(route(&rt, "bad", "hello").await.unwrap().unwrap().queue.as_deref(), Some("bad"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_plugin_errors_do_not_trip_the_breaker() {
    let rt = setup(2).await;
    for _ in 0..5 {
        let r = route(&rt, "bad", "alloc:x").await.expect("call itself succeeds");
        assert_eq!(r.unwrap_err(), "alloc:N needs a number");
    }
    assert!(rt.slot("bad").unwrap().disabled().is_none());
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures this thread's INFO-level logs until the guard is dropped.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }
}

// Current-thread runtime: the plugin call runs on this thread, under this subscriber.
#[tokio::test(flavor = "current_thread")]
async fn log_lines_are_tagged_and_past_the_budget_dropped() {
    let (captured, _guard) = Captured::install();
    let rt = setup(10).await;
    // 100 lines of 100 bytes against a 1000-byte budget.
    assert_eq!(reason(&route(&rt, "bad", "log:100").await), "logged 100");
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("seam::plugin")).collect();
    assert_eq!(lines.len(), 10, "1000 bytes of budget hold 10 lines: {text}");
    assert!(lines[0].contains("plugin=\"bad\"") && lines[0].contains("version=\"0.1.0\""), "{}", lines[0]);
    assert!(
        text.contains("log lines over limits.log-bytes dropped") && text.contains("dropped=90"),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_reused_instance_gets_each_calls_log_budget_afresh() {
    let (captured, _guard) = Captured::install();
    let rt = keeper(3).await;
    // 8 lines of 100 bytes fit the 1,000-byte budget once; the second call on the same
    // instance would drop lines if it inherited what its predecessor spent.
    assert_eq!(reason(&route(&rt, "keeper", "remember:same").await), "remembered");
    for _ in 0..2 {
        assert_eq!(reason(&route(&rt, "keeper", "log:8").await), "logged 8");
    }
    assert_eq!(
        reason(&route(&rt, "keeper", "recall").await),
        "recalled:None",
        "those were the instance's 3 calls"
    );
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("seam::plugin")).count(), 16, "{text}");
    assert!(!text.contains("dropped"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_is_checked_against_the_manifest() {
    let (port, _) = stand_in().await;
    let (other, _) = stand_in().await;
    let rt = runtime(None, 10);
    let grants = format!(
        "[capabilities]\nlog = true\nkv = {{ quota-bytes = 64 }}\nhttp = [\"http://127.0.0.1:{port}\", \"http://localhost:{other}\"]\n[limits]\ntimeout-ms = 5000\ncpu-ms = 100\n"
    );
    rt.load(hostile("caller", &grants), &Default::default()).await.unwrap();

    // Named literally: allowed, and the stand-in answers.
    let ok = reason(&route(&rt, "caller", &format!("http:http://127.0.0.1:{port}/")).await);
    assert_eq!(ok, "status:200:hello from stand-in");
    // Not in the manifest at all (another port of the same IP): denied.
    let denied = reason(&route(&rt, "caller", &format!("http:http://127.0.0.1:{other}/")).await);
    assert_eq!(denied, "error:request denied by the host (destination not allowed)");
    // An allowed host name that resolves to a loopback address the manifest does not
    // name literally: denied, although a server listens there.
    let private = reason(&route(&rt, "caller", &format!("http:http://localhost:{other}/")).await);
    assert_eq!(private, "error:request denied by the host (destination not allowed)");
    // Wrong scheme for an allowed host and port: denied.
    let https = reason(&route(&rt, "caller", &format!("http:https://127.0.0.1:{port}/")).await);
    assert_eq!(https, "error:request denied by the host (destination not allowed)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_imports_are_refused_at_load() {
    let rt = runtime(None, 10);
    // The hostile component imports kv, log and wasi:http; grant none of them.
    let err = rt
        .load(hostile("greedy", "[limits]\nmemory-mb = 8\n"), &Default::default())
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(text.contains("plugin `greedy`") && text.contains("does not grant"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_timeout_covers_slow_host_calls() {
    // A server that never answers: the call is cut at timeout-ms, not left hanging.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let rt = runtime(None, 10);
    let grants = format!(
        "[capabilities]\nlog = true\nkv = {{ quota-bytes = 64 }}\nhttp = [\"http://127.0.0.1:{port}\"]\n[limits]\ntimeout-ms = 300\ncpu-ms = 100\n"
    );
    rt.load(hostile("slow", &grants), &Default::default()).await.unwrap();
    let started = Instant::now();
    let err = route(&rt, "slow", &format!("http:http://127.0.0.1:{port}/")).await.unwrap_err();
    assert!(matches!(err, CallError::Timeout { ms: 300, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clocks_read_zero_unless_granted() {
    let rt = runtime(None, 10);
    rt.load(hostile("timeless", LIMITS), &Default::default()).await.unwrap();
    rt.load(
        hostile("timely", &LIMITS.replace("log = true", "log = true\nclock = true")),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(reason(&route(&rt, "timeless", "clock").await), "clock:0");
    let granted = reason(&route(&rt, "timely", "clock").await);
    let ms: u128 = granted.strip_prefix("clock:").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert!(now.abs_diff(ms) < 60_000, "granted clock is the real time: {ms} vs {now}");
}

// One thread for everything: if a running plugin did not yield, the ticker below could not
// run until the call ended.
#[tokio::test(flavor = "current_thread")]
async fn a_long_wasm_call_does_not_starve_other_tasks() {
    let rt = runtime(None, 10);
    let limits = LIMITS.replace("cpu-ms = 50", "cpu-ms = 500");
    rt.load(hostile("spinner", &limits), &Default::default()).await.unwrap();
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let err = route(&rt, "spinner", "loop").await.unwrap_err();
    let elapsed = started.elapsed();
    ticker.abort();
    assert!(matches!(err, CallError::CpuLimit { ms: 500, .. }), "{err}");
    let ticks = ticks.load(std::sync::atomic::Ordering::Relaxed);
    assert!(ticks >= 10, "the ticker ran while wasm looped for {elapsed:?}: {ticks} ticks");
    // Time spent suspended is not charged: the call took at least its CPU budget.
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_trial_call_does_not_wedge_the_breaker() {
    let (port, _) = stand_in().await;
    let db = sled::Config::new().temporary(true).open().unwrap();
    let options = seam::runtime::RuntimeOptions {
        breaker: seam::runtime::BreakerConfig { threshold: 1, cooldown: Duration::ZERO },
        ..Default::default()
    };
    let rt = seam::runtime::Runtime::new(options, db, seam::metrics::Metrics::default()).unwrap();
    let caps = format!(
        "[capabilities]\nlog = true\nkv = {{ quota-bytes = 8 }}\nhttp = [\"http://127.0.0.1:{port}\"]\n[limits]\ntimeout-ms = 5000\n"
    );
    rt.load(hostile("wobbly", &caps), &Default::default()).await.unwrap();
    assert!(matches!(route(&rt, "wobbly", "panic").await, Err(CallError::Trap { .. })));
    // The next call is the trial; its caller gives up after 50 ms (the server takes 500).
    let slow = format!("http:http://127.0.0.1:{port}/slow");
    let gave_up = tokio::time::timeout(Duration::from_millis(50), route(&rt, "wobbly", &slow)).await;
    assert!(gave_up.is_err(), "the trial call was still running when dropped");
    // Another trial is admitted and closes the breaker.
    let d = route(&rt, "wobbly", "hello").await.expect("admitted as a new trial").unwrap();
    assert_eq!(d.queue.as_deref(), Some("wobbly"));
    assert!(rt.slot("wobbly").unwrap().disabled().is_none());
}
