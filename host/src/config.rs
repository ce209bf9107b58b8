//! The operator's configuration file (`seam serve --config seam.toml`... named
//! `--config`, TOML): channels, identity rules, conversation threading and the router.
//! Every section is optional; with no file at all `seam serve` runs one generic webhook
//! channel and the bundled keyword router.
//!
//! ```toml
//! [identity]
//! default-region = "RU"               # region for phone numbers written without +
//! auto-merge = ["phone", "email"]     # kinds whose hints link or merge customers
//! priority = ["crm", "email", "phone"] # the customer holding the higher kind survives a merge
//! blocked = ["phone:+74950000000"]    # shared values never used to link customers
//! limits = { phone = 3, email = 5 }   # most identities of a kind per customer
//!
//! [conversations]
//! reopen-window-secs = 86400          # a resolved conversation reopens within this window
//!
//! [router]
//! plugin = "keyword-router"
//!
//! [[channels]]
//! id = "telegram"
//! plugin = "webhook-connector"        # a bundled plugin by name, or a plugin directory
//! config = { field-id = "update_id", secret = { env = "TG_SECRET" } }
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SeamConfig {
    /// Identity resolution rules.
    #[serde(default)]
    pub identity: IdentityRules,
    /// Conversation threading.
    #[serde(default)]
    pub conversations: ConversationRules,
    /// The routing policy.
    #[serde(default)]
    pub router: RouterConfig,
    /// Channels: configured connector instances. Empty: the zero-config `webhook` channel.
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

/// How identities become customers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IdentityRules {
    /// Region (ISO 3166 alpha-2) assumed for phone numbers without a country code.
    #[serde(default)]
    pub default_region: Option<String>,
    /// Identity kinds whose hints may link an identity to a customer or merge two customers.
    #[serde(default = "default_auto_merge")]
    pub auto_merge: Vec<String>,
    /// Identity kinds from most to least authoritative: in a merge, the customer holding
    /// the highest one survives (ties: the older customer).
    #[serde(default)]
    pub priority: Vec<String>,
    /// `kind:value` identities never used to link or merge (e.g. a shared office phone).
    #[serde(default)]
    pub blocked: Vec<String>,
    /// Most identities of a kind one customer may hold.
    #[serde(default = "default_limits")]
    pub limits: BTreeMap<String, usize>,
}

fn default_auto_merge() -> Vec<String> {
    vec!["phone".into(), "email".into()]
}

fn default_limits() -> BTreeMap<String, usize> {
    [("phone".to_owned(), 5), ("email".to_owned(), 10)].into_iter().collect()
}

impl Default for IdentityRules {
    fn default() -> Self {
        IdentityRules {
            default_region: None,
            auto_merge: default_auto_merge(),
            priority: Vec::new(),
            blocked: Vec::new(),
            limits: default_limits(),
        }
    }
}

/// Conversation threading.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConversationRules {
    /// A customer writing within this many seconds after their conversation was resolved
    /// reopens it; later, a new conversation starts.
    #[serde(default = "default_reopen")]
    pub reopen_window_secs: u64,
}

fn default_reopen() -> u64 {
    24 * 3600
}

impl Default for ConversationRules {
    fn default() -> Self {
        ConversationRules { reopen_window_secs: default_reopen() }
    }
}

/// The routing policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RouterConfig {
    /// Name of a loaded router plugin; empty: conversations are not routed.
    #[serde(default = "default_router")]
    pub plugin: String,
}

fn default_router() -> String {
    "keyword-router".into()
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { plugin: default_router() }
    }
}

/// One channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ChannelConfig {
    /// Its id, used in the webhook URL `/v1/channels/{id}/webhook` and in events.
    pub id: String,
    /// A bundled connector by name, or a directory with `seam.toml` and the component.
    pub plugin: String,
    /// The plugin's config values: strings, or `{ env = "VAR" }` / `{ file = "path" }`.
    #[serde(default)]
    pub config: toml::Table,
}

/// Why the config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("config {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// It is not valid.
    #[error("config {0}: {1}")]
    Invalid(PathBuf, String),
}

impl SeamConfig {
    /// Reads and checks `file`.
    pub fn from_file(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read(file.to_owned(), e))?;
        Self::parse(&text).map_err(|e| ConfigError::Invalid(file.to_owned(), e))
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: SeamConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for channel in &self.channels {
            let valid = !channel.id.is_empty()
                && channel.id.len() <= 64
                && channel.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(format!(
                    "channels: id `{}` must be 1-64 characters of a-z, 0-9 and `-`",
                    channel.id
                ));
            }
            if !seen.insert(&channel.id) {
                return Err(format!("channels: id `{}` is used twice", channel.id));
            }
        }
        if let Some(region) = &self.identity.default_region {
            crate::pipeline::identity::region(region)
                .ok_or_else(|| format!("identity.default-region: `{region}` is not a known region"))?;
        }
        for blocked in &self.identity.blocked {
            if !blocked.contains(':') {
                return Err(format!("identity.blocked: `{blocked}` must be `kind:value`"));
            }
        }
        Ok(())
    }
}
