//! `seam plugin push`: upload a plugin directory to a running seam's admin API
//! (`PUT /v1/admin/plugins/{name}`), which loads it or swaps it in atomically.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use seam::manifest::Manifest;
use std::collections::BTreeMap;
use std::path::Path;

/// Uploads the plugin in `dir` to the seam at `url` (plain `http://`), with `config`
/// values given as `key=value`.
pub async fn push(dir: &Path, url: &str, key: &str, config: &[String]) -> Result<()> {
    let manifest_path = dir.join("seam.toml");
    let manifest_text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest = Manifest::parse(&manifest_text, &manifest_path)?;
    let component_path = dir.join(&manifest.component);
    let wasm = std::fs::read(&component_path).with_context(|| {
        format!("cannot read {} (build it first, see examples/README.md)", component_path.display())
    })?;
    let mut values = BTreeMap::new();
    for pair in config {
        let (k, v) = pair.split_once('=').with_context(|| format!("--config `{pair}` is not key=value"))?;
        values.insert(k.to_owned(), v.to_owned());
    }
    let body = serde_json::json!({
        "manifest": manifest_text,
        "component": base64::engine::general_purpose::STANDARD.encode(&wasm),
        "config": values,
    });

    let rest = url.strip_prefix("http://").context(
        "--url must start with http:// (run push on the seam host or through a TLS proxy's plain side)",
    )?;
    let authority = rest.trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::put(format!("/v1/admin/plugins/{}", manifest.name))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::AUTHORIZATION, format!("Bearer {key}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let reply: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let message = reply["error"]["message"]
            .as_str()
            .map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), str::to_owned);
        bail!("seam refused the plugin ({status}): {message}");
    }
    match reply["replaced"]["version"].as_str() {
        Some(old) => {
            println!("swapped {} {} -> {} ({} us)", manifest.name, old, manifest.version, reply["swap_us"])
        }
        None => println!("loaded {} {} ({} us)", manifest.name, manifest.version, reply["swap_us"]),
    }
    Ok(())
}
