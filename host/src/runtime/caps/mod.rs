//! Host capabilities, one module each. A plugin gets a capability only if its manifest
//! grants it: imports of ungranted interfaces are refused at load time ([`check_imports`]),
//! and each implementation checks its grant again at call time.

pub mod config;
pub mod http;
pub mod kv;
pub mod log;
pub mod outbound;
pub mod smtp;

use crate::manifest::Manifest;

/// Which `seam:plugin` and `wasi:http` imports a manifest grants; refuses the first import
/// that is not granted, naming the manifest field that would grant it.
pub fn check_imports<'a>(
    manifest: &Manifest,
    imports: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    for name in imports {
        let (granted, field) = if name.starts_with("seam:plugin/log@") {
            (manifest.capabilities.log, "capabilities.log = true")
        } else if name.starts_with("seam:plugin/kv@") {
            (manifest.capabilities.kv.is_some(), "capabilities.kv = { quota-bytes = N }")
        } else if name.starts_with("seam:plugin/smtp@") {
            (manifest.capabilities.smtp.is_some(), "capabilities.smtp = [\"smtp://relay.example.com:587\"]")
        } else if name.starts_with("wasi:http/") {
            (manifest.capabilities.http.is_some(), "capabilities.http = [\"https://host\"]")
        } else if name.starts_with("wasi:sockets/") {
            (false, "(sockets are never granted; use wasi:http)")
        } else {
            (true, "")
        };
        if !granted {
            return Err(format!(
                "the component imports `{name}` but its manifest does not grant it ({field})"
            ));
        }
    }
    Ok(())
}
