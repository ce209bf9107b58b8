//! API keys with roles. A key is `seam_<id>_<secret>`; the host stores only the SHA-256 of
//! the whole key under its id, so a stolen database does not yield usable keys. Every
//! `/v1` handler takes a [`Caller`] and states the role it needs.

use super::{AppError, AppState};
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Applications that push and read data.
    Integration,
    /// Operators answering customers.
    Agent,
    /// Everything, including plugins and keys.
    Admin,
}

/// A stored key (never the key itself).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRecord {
    /// The key's id (the part after `seam_`).
    pub id: String,
    /// A label for humans.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: u64,
    /// The agent an agent key acts as. A bound key may set only this agent's status and may
    /// only act on conversations that wait or are assigned to this agent; its actions are
    /// recorded under the agent's id. Absent for unbound keys (supervisors, integrations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// The key store.
#[derive(Clone)]
pub struct ApiKeys {
    tree: sled::Tree,
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn random_token(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(hex::encode(buf))
}

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error("api key store: {0}")]
    Storage(#[from] sled::Error),
    /// The OS random source failed.
    #[error("cannot get random bytes: {0}")]
    Random(String),
    /// A stored record is unreadable.
    #[error("api key record is corrupt: {0}")]
    Corrupt(String),
}

impl ApiKeys {
    /// Keys stored in `db`'s `api-keys` tree.
    pub fn open(db: &sled::Db) -> Result<Self, KeyError> {
        Ok(ApiKeys { tree: db.open_tree("api-keys")? })
    }

    /// Creates a key, bound to `agent` if given; returns the key (shown once) and its record.
    /// The caller checks that the agent exists.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        agent: Option<&str>,
    ) -> Result<(String, KeyRecord), KeyError> {
        let id = random_token(6).map_err(|e| KeyError::Random(e.to_string()))?;
        let secret = random_token(24).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = format!("seam_{id}_{secret}");
        self.store(&key, name, role, agent).map(|r| (key, r))
    }

    /// Stores a key chosen by the operator (e.g. `SEAM_ADMIN_KEY`); it must look like
    /// `seam_<id>_<secret>`.
    pub fn insert(&self, key: &str, name: &str, role: Role) -> Result<KeyRecord, KeyError> {
        self.store(key, name, role, None)
    }

    fn store(&self, key: &str, name: &str, role: Role, agent: Option<&str>) -> Result<KeyRecord, KeyError> {
        let id =
            parse_id(key).ok_or_else(|| KeyError::Corrupt("key must look like seam_<id>_<secret>".into()))?;
        let created_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let record = KeyRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            role,
            hash: hash(key),
            created_ms,
            agent: agent.map(str::to_owned),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| KeyError::Corrupt(e.to_string()))?;
        self.tree.insert(id, bytes)?;
        self.tree.flush()?;
        Ok(record)
    }

    /// Whether any admin key exists.
    pub fn has_admin(&self) -> Result<bool, KeyError> {
        for item in self.tree.iter().values() {
            let record: KeyRecord =
                serde_json::from_slice(&item?).map_err(|e| KeyError::Corrupt(e.to_string()))?;
            if record.role == Role::Admin {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every key's record (never the keys).
    pub fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let mut all = Vec::new();
        for item in self.tree.iter().values() {
            all.push(serde_json::from_slice(&item?).map_err(|e| KeyError::Corrupt(e.to_string()))?);
        }
        Ok(all)
    }

    /// Revokes key `id`; returns whether it existed.
    pub fn revoke(&self, id: &str) -> Result<bool, KeyError> {
        let existed = self.tree.remove(id)?.is_some();
        self.tree.flush()?;
        Ok(existed)
    }

    /// The record of `key` if it is valid.
    pub fn verify(&self, key: &str) -> Option<KeyRecord> {
        let id = parse_id(key)?;
        let bytes = self.tree.get(id).ok()??;
        let record: KeyRecord = serde_json::from_slice(&bytes).ok()?;
        let ok: bool = record.hash.as_bytes().ct_eq(hash(key).as_bytes()).into();
        ok.then_some(record)
    }
}

fn parse_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("seam_")?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some(id)
}

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's record.
    pub key: KeyRecord,
}

impl Caller {
    /// Fails with 403 unless the caller's role is at least `role`
    /// (integration < agent < admin).
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.key.role >= role {
            Ok(())
        } else {
            Err(AppError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this route needs the {role:?} role; key `{}` has {:?}", self.key.id, self.key.role),
            ))
        }
    }

    /// The agent this key is bound to, if any.
    pub fn agent(&self) -> Option<&str> {
        self.key.agent.as_deref()
    }

    /// Who did it, as recorded in events: the bound agent's id, else the key's name.
    pub fn author(&self) -> String {
        self.key.agent.clone().unwrap_or_else(|| self.key.name.clone())
    }

    /// Fails with 403 if the key is bound to an agent other than `agent`.
    pub fn act_as(&self, agent: &str) -> Result<(), AppError> {
        match self.agent() {
            Some(own) if own != agent => Err(self.bound(format!("cannot act for agent `{agent}`"))),
            _ => Ok(()),
        }
    }

    /// Fails with 403 if the key is bound to an agent and `conversation` is assigned to
    /// another one: an agent takes waiting conversations and works their own.
    pub fn may_handle(&self, conversation: &crate::views::records::Conversation) -> Result<(), AppError> {
        match (self.agent(), conversation.assignee.as_deref()) {
            (Some(own), Some(other)) if own != other => Err(self.bound(format!(
                "cannot act on conversation `{}`: it is assigned to agent `{other}`",
                conversation.id
            ))),
            _ => Ok(()),
        }
    }

    fn bound(&self, what: String) -> AppError {
        let own = self.agent().unwrap_or_default();
        AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("key `{}` is bound to agent `{own}` and {what}", self.key.id),
        )
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing `Authorization: Bearer <api key>` header"))?;
        let value = header.to_str().map_err(|_| unauthorized("Authorization header is not ASCII"))?;
        let key = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthorized("Authorization header must be `Bearer <api key>`"))?;
        let record =
            state.keys.verify(key.trim()).ok_or_else(|| unauthorized("unknown or revoked API key"))?;
        Ok(Caller { key: record })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_only_when_exact() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let keys = ApiKeys::open(&db).unwrap();
        assert!(!keys.has_admin().unwrap());
        let (key, record) = keys.create("first", Role::Admin, None).unwrap();
        assert!(keys.has_admin().unwrap());
        assert_eq!(keys.verify(&key).unwrap().id, record.id);
        let mut tampered = key.clone();
        tampered.pop();
        tampered.push('x');
        assert!(keys.verify(&tampered).is_none() || tampered == key);
        assert!(keys.verify("seam_nope_nope").is_none());
        assert!(keys.verify("garbage").is_none());
        assert!(
            !db.open_tree("api-keys")
                .unwrap()
                .iter()
                .values()
                .any(|v| { String::from_utf8_lossy(&v.unwrap()).contains(&key) }),
            "the key itself is never stored"
        );
    }
}
