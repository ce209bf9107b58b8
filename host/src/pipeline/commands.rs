//! Input events that API calls append: the pipeline decides them in log order with every
//! other input, so a merge never races a message from the same customer.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Event type of [`UpdateAttributes`].
pub const UPDATE: &str = "customer.update-requested";
/// Event type of [`Merge`].
pub const MERGE: &str = "customer.merge-requested";
/// Event type of [`Unmerge`].
pub const UNMERGE: &str = "customer.unmerge-requested";

/// Whether an input of type `kind` is an API command (whose outcome the API waits for).
pub fn is_command(kind: &str) -> bool {
    matches!(kind, UPDATE | MERGE | UNMERGE)
}

/// Set or remove attributes of a customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateAttributes {
    /// The customer.
    pub customer: String,
    /// Values to set.
    #[serde(default)]
    pub set: BTreeMap<String, serde_json::Value>,
    /// Names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Who asked (API key name).
    pub by: String,
}

/// Merge customer `other` into `customer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merge {
    /// The customer that survives.
    pub customer: String,
    /// The customer merged into it.
    pub other: String,
    /// Who asked.
    pub by: String,
}

/// Split a merged customer off `customer` again: the one named by `restore`, or the one
/// whose identities include `identity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unmerge {
    /// The surviving customer.
    pub customer: String,
    /// The merged customer to restore.
    pub restore: Option<String>,
    /// Or: an identity (normalized) of the merged customer to restore.
    pub identity: Option<String>,
    /// Who asked.
    pub by: String,
}
