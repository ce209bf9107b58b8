//! The plugin's private key-value store (`[capabilities.kv]` in the manifest, with a quota).

use crate::bindings::seam::plugin::kv as host;
pub use crate::bindings::seam::plugin::kv::KvError;
use serde::{Serialize, de::DeserializeOwned};

/// The bytes stored under `key`, if any.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    host::get(key)
}

/// Store `value` under `key`.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    host::set(key, value)
}

/// Remove `key`.
pub fn delete(key: &str) -> Result<(), KvError> {
    host::delete(key)
}

/// Up to `limit` keys starting with `prefix`, in byte order.
pub fn list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
    host::list_keys(prefix, limit)
}

/// Bytes used and the quota.
pub fn usage() -> (u64, u64) {
    host::usage()
}

/// The JSON value stored under `key`, if any. A value that does not parse as `T` is
/// reported as a storage error naming the key.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, KvError> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| KvError::Storage(format!("value of `{key}` is not the expected JSON: {e}"))),
    }
}

/// Store `value` as JSON under `key`.
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), KvError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| KvError::Storage(format!("cannot encode `{key}` as JSON: {e}")))?;
    set(key, &bytes)
}
