//! `seam:plugin/kv`: a sled tree per plugin (`kv/<plugin>`), with a byte quota on keys plus
//! values. Plugins cannot name another plugin's tree: the namespace is chosen by the host
//! from the manifest name, never from the guest.

use crate::runtime::bindings::seam::plugin::kv::{Host, KvError};
use crate::runtime::state::HostState;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Longest key a plugin may use, in bytes.
pub const MAX_KEY_BYTES: usize = 512;

/// The store behind every plugin's namespace.
#[derive(Clone)]
pub struct KvStore {
    db: sled::Db,
    /// One accounting record per namespace, shared by every loaded version of a plugin.
    namespaces: Arc<Mutex<HashMap<String, Arc<Usage>>>>,
}

/// Bytes used by a namespace, and the lock that keeps the count exact under
/// concurrent writes.
#[derive(Default)]
struct Usage {
    bytes: AtomicU64,
    write: Mutex<()>,
}

/// One plugin's view of the store.
#[derive(Clone)]
pub struct KvNamespace {
    tree: sled::Tree,
    usage: Arc<Usage>,
    quota: u64,
}

impl KvStore {
    /// Uses `db` for all namespaces.
    pub fn new(db: sled::Db) -> Self {
        KvStore { db, namespaces: Arc::default() }
    }

    /// The namespace of `plugin` with `quota` bytes. Counts existing bytes the first time.
    pub fn namespace(&self, plugin: &str, quota: u64) -> Result<KvNamespace, sled::Error> {
        let tree = self.db.open_tree(format!("kv/{plugin}"))?;
        let mut namespaces = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        let usage = match namespaces.get(plugin) {
            Some(u) => u.clone(),
            None => {
                let mut bytes = 0u64;
                for item in tree.iter() {
                    let (k, v) = item?;
                    bytes += (k.len() + v.len()) as u64;
                }
                let u = Arc::new(Usage { bytes: AtomicU64::new(bytes), write: Mutex::new(()) });
                namespaces.insert(plugin.to_owned(), u.clone());
                u
            }
        };
        Ok(KvNamespace { tree, usage, quota })
    }
}

fn storage(e: sled::Error) -> KvError {
    KvError::Storage(e.to_string())
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey(format!("keys are 1..={MAX_KEY_BYTES} bytes, got {}", key.len())));
    }
    Ok(())
}

impl KvNamespace {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        Ok(self.tree.get(key).map_err(storage)?.map(|v| v.to_vec()))
    }

    /// Stores `value` under `key` if the quota allows.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        check_key(key)?;
        let _write = self.usage.write.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.tree.get(key).map_err(storage)?.map_or(0, |v| (key.len() + v.len()) as u64);
        let new = (key.len() + value.len()) as u64;
        let used = self.usage.bytes.load(Ordering::Acquire);
        if used - old + new > self.quota {
            return Err(KvError::QuotaExceeded(self.quota));
        }
        self.tree.insert(key, value).map_err(storage)?;
        self.usage.bytes.store(used - old + new, Ordering::Release);
        Ok(())
    }

    /// Removes `key`.
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        check_key(key)?;
        let _write = self.usage.write.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = self.tree.remove(key).map_err(storage)? {
            self.usage.bytes.fetch_sub((key.len() + v.len()) as u64, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Up to `limit` keys starting with `prefix`.
    pub fn list_keys(&self, prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
        let mut keys = Vec::new();
        for item in self.tree.scan_prefix(prefix).keys().take(limit as usize) {
            keys.push(String::from_utf8_lossy(&item.map_err(storage)?).into_owned());
        }
        Ok(keys)
    }

    /// Bytes used and the quota.
    pub fn usage(&self) -> (u64, u64) {
        (self.usage.bytes.load(Ordering::Acquire), self.quota)
    }
}

fn not_granted() -> KvError {
    KvError::Storage("capabilities.kv is not granted to this plugin".into())
}

impl Host for HostState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        self.env.kv.as_ref().ok_or_else(not_granted)?.get(&key)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        self.env.kv.as_ref().ok_or_else(not_granted)?.set(&key, &value)
    }

    fn delete(&mut self, key: String) -> Result<(), KvError> {
        self.env.kv.as_ref().ok_or_else(not_granted)?.delete(&key)
    }

    fn list_keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, KvError> {
        self.env.kv.as_ref().ok_or_else(not_granted)?.list_keys(&prefix, limit)
    }

    fn usage(&mut self) -> (u64, u64) {
        self.env.kv.as_ref().map_or((0, 0), KvNamespace::usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> KvStore {
        let db = sled::Config::new().temporary(true).open().unwrap();
        KvStore::new(db)
    }

    #[test]
    fn quota_counts_keys_and_values_and_replacements() {
        let kv = store();
        let ns = kv.namespace("a", 10).unwrap();
        ns.set("k", b"12345").unwrap(); // 6 bytes
        assert_eq!(ns.usage(), (6, 10));
        ns.set("k", b"123456789").unwrap(); // replaces: 10 bytes
        assert!(matches!(ns.set("j", b""), Err(KvError::QuotaExceeded(10))));
        ns.delete("k").unwrap();
        assert_eq!(ns.usage().0, 0);
        ns.set("j", b"x").unwrap();
    }

    #[test]
    fn namespaces_are_separate_and_usage_survives_reopen() {
        let kv = store();
        let a = kv.namespace("a", 100).unwrap();
        let b = kv.namespace("b", 100).unwrap();
        a.set("secret", b"a's").unwrap();
        assert_eq!(b.get("secret").unwrap(), None);
        assert!(b.list_keys("", 10).unwrap().is_empty());
        let fresh = KvStore::new(kv.db.clone()).namespace("a", 100).unwrap();
        assert_eq!(fresh.usage().0, 9);
    }

    #[test]
    fn keys_are_checked() {
        let ns = store().namespace("a", 10_000).unwrap();
        assert!(matches!(ns.set("", b"x"), Err(KvError::InvalidKey(_))));
        assert!(matches!(ns.get(&"k".repeat(513)), Err(KvError::InvalidKey(_))));
    }
}
