//! The key-value capability: namespaces per plugin, quota, persistence across versions.

use seam_tests::{hostile, message_context, reason, runtime};

const CAPS: &str = "[capabilities]\nlog = true\nkv = { quota-bytes = 40 }\nhttp = []\n";

async fn say(rt: &seam::runtime::Runtime, plugin: &str, text: &str) -> String {
    reason(&rt.route(plugin, &message_context(text)).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_cannot_read_each_others_keys() {
    let rt = runtime(None, 10);
    rt.load(hostile("alpha", CAPS), &Default::default()).await.unwrap();
    rt.load(hostile("beta", CAPS), &Default::default()).await.unwrap();
    assert_eq!(say(&rt, "alpha", "kv-set:token=alpha-secret").await, "set");
    assert_eq!(say(&rt, "alpha", "kv-get:token").await, "value:alpha-secret");
    assert_eq!(say(&rt, "beta", "kv-get:token").await, "none", "beta must not see alpha's key");
    assert_eq!(say(&rt, "beta", "kv-list").await, "", "beta lists only its own keys");
    assert_eq!(say(&rt, "beta", "kv-set:token=beta").await, "set");
    assert_eq!(
        say(&rt, "alpha", "kv-get:token").await,
        "value:alpha-secret",
        "beta's write did not touch alpha"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_is_enforced_and_survives_a_new_version() {
    let rt = runtime(None, 10);
    rt.load(hostile("gamma", CAPS), &Default::default()).await.unwrap();
    // 3 + 30 = 33 bytes of 40.
    assert_eq!(say(&rt, "gamma", &format!("kv-set:one={}", "a".repeat(30))).await, "set");
    // 3 + 10 more would be 46 > 40.
    assert_eq!(
        say(&rt, "gamma", &format!("kv-set:two={}", "b".repeat(10))).await,
        "plugin error: KvError::QuotaExceeded(40)"
    );
    // Replacing a value counts only the difference: 3 + 35 = 38.
    assert_eq!(say(&rt, "gamma", &format!("kv-set:one={}", "c".repeat(35))).await, "set");
    // Load the plugin again (a swap): data and usage carry over.
    rt.load(hostile("gamma", CAPS), &Default::default()).await.unwrap();
    assert_eq!(say(&rt, "gamma", "kv-get:one").await, format!("value:{}", "c".repeat(35)));
    assert_eq!(say(&rt, "gamma", "kv-set:x=yyyyy").await, "plugin error: KvError::QuotaExceeded(40)");
}
