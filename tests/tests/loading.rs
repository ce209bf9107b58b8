//! Loading: clear errors for bad manifests and bad components, the artifact cache
//! (compiled once, reused, corrupt entries repaired), and plugin directories.

use seam::runtime::cache::CacheOutcome;
use seam::runtime::{LoadError, PluginSource};
use seam_tests::{HOSTILE_WASM, VIP_MANIFEST, VIP_WASM, hostile, message_context, runtime, scratch};
use std::collections::BTreeMap;
use std::path::Path;

fn write_plugin(dir: &Path, manifest: &str, wasm: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("seam.toml"), manifest).unwrap();
    std::fs::write(dir.join("plugin.wasm"), wasm).unwrap();
}

const MANIFEST: &str = "name = \"demo\"\nversion = \"1.0.0\"\nkind = \"router\"\nwit = \"0.1.0\"\ncomponent = \"plugin.wasm\"\n[capabilities]\nlog = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifests_and_components_name_what_is_wrong() {
    let rt = runtime(None, 5);
    let vip = std::fs::read(VIP_WASM).unwrap();
    let dir = scratch("bad-manifests");
    let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
        ("typo", MANIFEST.replace("kind", "kimd"), vip.clone(), "unknown field `kimd`"),
        ("wit", MANIFEST.replace("0.1.0", "0.3.0"), vip.clone(), "field `wit`"),
        ("core", MANIFEST.to_owned(), b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        ("junk", MANIFEST.to_owned(), b"MZ\x90\0 definitely not wasm".to_vec(), "magic bytes"),
        (
            "world",
            MANIFEST.replace("\"router\"", "\"connector\""),
            vip.clone(),
            "does not export `seam:plugin/channel@0.1.0`",
        ),
        (
            "grant",
            MANIFEST.replace("log = true", "log = false"),
            vip.clone(),
            "imports `seam:plugin/log@0.1.0`",
        ),
    ];
    for (name, manifest, wasm, want) in cases {
        let plugin_dir = dir.join(name);
        write_plugin(&plugin_dir, &manifest, &wasm);
        let err = match PluginSource::from_dir(&plugin_dir) {
            Err(e) => e,
            Ok(source) => rt.load(source, &BTreeMap::new()).await.err().expect("must fail"),
        };
        let text = err.to_string();
        assert!(text.contains(want), "{name}: want {want:?} in: {text}");
        if matches!(err, LoadError::Manifest(_)) {
            assert!(text.contains("seam.toml"), "{name}: names the file: {text}");
        }
    }
    let missing = PluginSource::from_dir(&dir.join("nowhere")).err().unwrap().to_string();
    assert!(missing.contains("nowhere/seam.toml"), "{missing}");
    assert!(rt.slots().is_empty(), "nothing bad was installed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_compiles_once_reuses_and_repairs_corruption() {
    let cache = scratch("artifact-cache");
    let load = |rt: seam::runtime::Runtime| async move {
        let (plugin, _) = rt
            .load(
                PluginSource::from_files(Path::new(VIP_MANIFEST), Path::new(VIP_WASM)).unwrap(),
                &BTreeMap::new(),
            )
            .await
            .unwrap();
        let d = rt.route("vip-router", &message_context("hi")).await.unwrap().unwrap();
        assert_eq!(d.queue.as_deref(), Some("general"), "the loaded plugin works");
        plugin.stats.cache
    };
    assert_eq!(load(runtime(Some(&cache), 5)).await, CacheOutcome::Compiled);
    assert_eq!(load(runtime(Some(&cache), 5)).await, CacheOutcome::Hit, "a new runtime reuses the artifact");

    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    // Flip one byte in the middle of the artifact: the checksum catches it.
    let mut bytes = std::fs::read(entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(entry, &bytes).unwrap();
    assert_eq!(load(runtime(Some(&cache), 5)).await, CacheOutcome::Repaired);
    assert_eq!(load(runtime(Some(&cache), 5)).await, CacheOutcome::Hit, "the repaired entry is good");
    // A truncated entry (crash while copying it by hand) is repaired too.
    std::fs::write(entry, &std::fs::read(entry).unwrap()[..100]).unwrap();
    assert_eq!(load(runtime(Some(&cache), 5)).await, CacheOutcome::Repaired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_directory_loads_good_plugins_and_skips_bad_ones() {
    let dir = scratch("plugin-dir");
    let hostile_wasm = std::fs::read(HOSTILE_WASM).unwrap();
    let good = "name = \"fine\"\nversion = \"1.0.0\"\nkind = \"router\"\nwit = \"0.1.0\"\ncomponent = \"plugin.wasm\"\n[capabilities]\nlog = true\nkv = { quota-bytes = 10 }\nhttp = []\n[config.tag]\nsecret = false\n";
    write_plugin(&dir.join("a-fine"), good, &hostile_wasm);
    std::fs::write(dir.join("a-fine/config.toml"), "tag = { env = \"SEAM_TEST_TAG\" }\n").unwrap();
    write_plugin(&dir.join("b-broken"), "name = \"broken\"\n", &hostile_wasm);
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("SEAM_TEST_TAG", "from-env") };
    let rt = runtime(None, 5);
    seam::server::load_dir(&rt, &dir).await;
    let names: Vec<String> = rt.slots().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["fine".to_string()]);
    let d = rt.route("fine", &message_context("hello")).await.unwrap().unwrap();
    assert_eq!(d.queue.as_deref(), Some("from-env"), "config value taken from the environment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_config_is_refused() {
    let rt = runtime(None, 5);
    let mut source = hostile("needy", "[capabilities]\nlog = true\nkv = { quota-bytes = 1 }\nhttp = []\n");
    source.manifest.config.insert(
        "api-token".into(),
        seam::manifest::ConfigKey { secret: true, required: true, ..Default::default() },
    );
    let err = rt.load(source, &BTreeMap::new()).await.err().unwrap().to_string();
    assert_eq!(err, "plugin `needy`: config `api-token`: required but not set and has no default");
}
