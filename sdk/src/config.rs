//! The plugin's own configuration and secrets (always granted; only the keys the manifest
//! declares are visible).

use crate::bindings::seam::plugin::config as host;

/// The value of a non-secret config key, if set.
pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

/// The value of a secret config key, if set.
pub fn secret(key: &str) -> Option<String> {
    host::secret(key)
}

/// The value of a non-secret key, or an error message naming the missing key.
pub fn require(key: &str) -> Result<String, String> {
    get(key).ok_or_else(|| format!("config key `{key}` is not set"))
}

/// The value of a secret key, or an error message naming the missing key.
pub fn require_secret(key: &str) -> Result<String, String> {
    secret(key).ok_or_else(|| format!("secret `{key}` is not set"))
}
