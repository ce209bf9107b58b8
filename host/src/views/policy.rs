//! The routing policy's versions: key `z version` (big-endian, so the last key is the active
//! policy). Every swap and rollback adds a version; none is ever changed, so the history of
//! which routers decided when is in the views as it is in the log.

use super::{ViewError, Views, key};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One router of a policy, pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stage {
    /// The runtime slot called: `name@version#hash` for a version pinned through the API
    /// (stored under the data directory), or the plain name for a router that follows what
    /// is loaded under the name (the config file's chain).
    pub slot: String,
    /// The plugin's name.
    pub plugin: String,
    /// Its version when the policy was activated.
    pub version: String,
    /// BLAKE3 of its component when the policy was activated.
    pub hash: String,
}

/// Where a policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicySource {
    /// The config file's `[router]` chain (a rollback past the first API version).
    Config,
    /// `PUT /v1/routing/policy` or a rollback.
    Api,
}

/// A version of the routing policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyRecord {
    /// 1, 2, ...: the highest is active.
    pub version: u32,
    /// The routers, called in order; empty: conversations are not routed.
    pub stages: Vec<Stage>,
    /// Where it came from.
    pub source: PolicySource,
    /// The version active before it.
    pub previous: Option<u32>,
    /// For a rollback: the version whose routers it restored.
    pub restores: Option<u32>,
    /// Who activated it (API key name, or `config`).
    pub by: String,
    /// Why, in the operator's words.
    pub note: String,
    /// When, ms.
    pub activated_at: i64,
    /// Log offset of the input that activated it: inputs after it are routed by it.
    pub offset: u64,
}

/// The runtime slots of `stages`, in calling order.
pub fn slots(stages: &[Stage]) -> Vec<String> {
    stages.iter().map(|s| s.slot.clone()).collect()
}

/// Key of policy version `version`.
pub fn policy_key(version: u32) -> Vec<u8> {
    key(b'z', &[&version.to_be_bytes()])
}

impl Views {
    /// The active policy (the highest version), if any was ever activated.
    pub fn active_policy(&self) -> Result<Option<PolicyRecord>, ViewError> {
        Ok(self.newest(b'z', 1)?.pop())
    }

    /// Policy version `version`.
    pub fn policy(&self, version: u32) -> Result<Option<PolicyRecord>, ViewError> {
        self.get(&policy_key(version))
    }

    /// The newest `limit` policy versions, newest first.
    pub fn policies(&self, limit: usize) -> Result<Vec<PolicyRecord>, ViewError> {
        self.newest(b'z', limit)
    }
}
