//! Swapping a plugin version under concurrent calls: no call fails, calls in flight finish
//! on the old version, every call that starts after the swap sees the new one.

use seam_tests::{hostile, message_context, runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CAPS: &str = "[capabilities]\nlog = true\nkv = { quota-bytes = 64 }\nhttp = []\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_under_concurrent_calls_loses_nothing() {
    let rt = runtime(None, 3);
    // v1: the hostile router, whose decisions go to queue "router" (its tag default).
    rt.load(hostile("router", CAPS), &Default::default()).await.unwrap();
    let v2_bundled = seam::bundled::BundledPlugin::find("keyword-router").expect("bundled keyword router");
    // v2: a different component under the same name (the bundled keyword router renamed).
    let mut v2 = v2_bundled.source().unwrap();
    v2.manifest.name = "router".into();
    v2.manifest.version = "2.0.0".into();

    let stop = Arc::new(AtomicBool::new(false));
    let swapped_at: Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (rt, stop, swapped_at, calls) = (rt.clone(), stop.clone(), swapped_at.clone(), calls.clone());
        workers.push(tokio::spawn(async move {
            let mut stale_after_swap = 0;
            while !stop.load(Ordering::Acquire) {
                let started = Instant::now();
                let decision = rt
                    .route("router", &message_context("у меня проблема"))
                    .await
                    .unwrap_or_else(|e| panic!("worker {w}: call failed during swap: {e}"))
                    .unwrap_or_else(|e| panic!("worker {w}: plugin error: {e}"));
                calls.fetch_add(1, Ordering::Relaxed);
                let new_version = decision.queue.as_deref() == Some("support");
                let old_version = decision.queue.as_deref() == Some("router");
                assert!(new_version || old_version, "unexpected decision {decision:?}");
                // A call that *started* after the swap completed must see the new version.
                let swapped = *swapped_at.lock().unwrap();
                if swapped.is_some_and(|at| started > at) && old_version {
                    stale_after_swap += 1;
                }
                // A plugin call that never waits on I/O completes without returning
                // Pending; yield so eight such loops do not starve the two workers.
                tokio::task::yield_now().await;
            }
            stale_after_swap
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = calls.load(Ordering::Relaxed);
    let (_, previous) = rt.load(v2, &Default::default()).await.expect("swap succeeds");
    *swapped_at.lock().unwrap() = Some(Instant::now());
    assert_eq!(previous.expect("replaced v1").manifest().version, "0.1.0");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Release);
    let mut stale = 0;
    for w in workers {
        stale += w.await.expect("worker did not panic");
    }
    let total = calls.load(Ordering::Relaxed);
    assert!(before > 50 && total > before + 50, "calls ran before and after the swap: {before} / {total}");
    assert_eq!(stale, 0, "calls started after the swap saw the old version");
    assert_eq!(rt.slot("router").unwrap().current().manifest().version, "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_finish_on_the_old_version() {
    let (port, _) = seam_tests::stand_in().await;
    let rt = runtime(None, 3);
    let caps = format!(
        "[capabilities]\nlog = true\nkv = {{ quota-bytes = 64 }}\nhttp = [\"http://127.0.0.1:{port}\"]\n[limits]\ntimeout-ms = 5000\n"
    );
    rt.load(hostile("slowpoke", &caps), &Default::default()).await.unwrap();
    // Compile v2 first so the swap itself is quick.
    let mut v2 = seam::bundled::BundledPlugin::find("keyword-router").unwrap().source().unwrap();
    v2.manifest.name = "slowpoke".into();
    let v2 = rt.prepare(v2, &Default::default()).await.unwrap();
    // A call that waits 500 ms on a slow server.
    let started = Instant::now();
    let in_flight = {
        let rt = rt.clone();
        let text = format!("http:http://127.0.0.1:{port}/slow");
        tokio::spawn(async move { rt.route("slowpoke", &message_context(&text)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    rt.install(v2);
    assert!(started.elapsed() < Duration::from_millis(450), "swap happened while the call was waiting");
    let new = rt.route("slowpoke", &message_context("invoice")).await.unwrap().unwrap();
    assert_eq!(new.queue.as_deref(), Some("billing"), "new calls get v2 at once");
    let old = in_flight.await.unwrap().expect("in-flight call not failed by the swap").unwrap();
    assert_eq!(old.reason, "status:200:slow", "finished on the old version");
}
