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
//! chain = ["keyword-router", "priority-router", "hours-router", "assign-router"]
//! config.assign-router = { strategy = "round-robin" }  # config of one router in the chain
//!
//! [outbound]
//! fallback = ["sms", "email"]         # channels tried after the first one fails
//! fallback-after-secs = 300           # ...or does not report delivery in time
//! max-attempts = 5                    # attempts per channel before falling back
//!
//! [[channels]]
//! id = "telegram"
//! plugin = "telegram-connector"       # a bundled plugin by name, or a plugin directory
//! config = { bot-token = { env = "TG_TOKEN" }, secret = { env = "TG_SECRET" } }
//! http = ["http://127.0.0.1:9000"]    # replaces the manifest's capabilities.http
//! smtp = ["smtp://127.0.0.1:2525"]    # replaces the manifest's capabilities.smtp
//! rate-limit = 30                     # sends per second at most
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
    /// Outbound delivery: retries and fallback.
    #[serde(default)]
    pub outbound: OutboundRules,
    /// Channels: configured connector instances. Empty: the zero-config `webhook` channel.
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

/// How outbound messages are retried and fall back to other channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutboundRules {
    /// Channels tried, in order, after the message's first channel fails or does not
    /// deliver in time, when the request names no fallback of its own. Channels the
    /// customer cannot be reached on (no address, no consent) are skipped.
    #[serde(default)]
    pub fallback: Vec<String>,
    /// Move to the next channel when a sent message is not reported delivered within this
    /// many seconds (only while there is a next channel). Unset: only failures fall back.
    #[serde(default)]
    pub fallback_after_secs: Option<u64>,
    /// Attempts per channel before the message falls back (or is dead-lettered).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay, ms; doubled on each further attempt, with jitter.
    #[serde(default = "default_retry_base")]
    pub retry_base_ms: u64,
    /// Longest retry delay, ms (a provider's retry-after may ask for longer).
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
}

fn default_max_attempts() -> u32 {
    5
}

fn default_retry_base() -> u64 {
    1_000
}

fn default_retry_max() -> u64 {
    300_000
}

impl Default for OutboundRules {
    fn default() -> Self {
        OutboundRules {
            fallback: Vec::new(),
            fallback_after_secs: None,
            max_attempts: default_max_attempts(),
            retry_base_ms: default_retry_base(),
            retry_max_ms: default_retry_max(),
        }
    }
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

/// The routing policy: router plugins called in order, each refining the decision of the
/// ones before it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RouterConfig {
    /// One router plugin (the same as a chain of one); `""`: conversations are not routed.
    #[serde(default)]
    pub plugin: Option<String>,
    /// Router plugins, in order; default `["keyword-router", "assign-router"]`.
    #[serde(default)]
    pub chain: Option<Vec<String>>,
    /// Config values of the routers in the chain, by plugin name (strings, or
    /// `{ env = "VAR" }` / `{ file = "path" }`).
    #[serde(default)]
    pub config: BTreeMap<String, toml::Table>,
}

impl RouterConfig {
    /// The chain of router plugin names: `chain`, else `plugin`, else the default.
    pub fn chain(&self) -> Vec<String> {
        match (&self.chain, &self.plugin) {
            (Some(chain), _) => chain.iter().filter(|n| !n.is_empty()).cloned().collect(),
            (None, Some(plugin)) if plugin.is_empty() => Vec::new(),
            (None, Some(plugin)) => vec![plugin.clone()],
            (None, None) => vec!["keyword-router".into(), "assign-router".into()],
        }
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
    /// Destinations the connector may reach (`scheme://host[:port]`), replacing its
    /// manifest's `capabilities.http`: e.g. a regional API endpoint or a test stand-in.
    #[serde(default)]
    pub http: Option<Vec<String>>,
    /// SMTP relays the connector may reach (`smtp://host[:port]`), replacing its manifest's
    /// `capabilities.smtp`: the company's own relay, or a test server.
    #[serde(default)]
    pub smtp: Option<Vec<String>>,
    /// Most sends per second through this channel (the provider's rate limit). Unset: no limit.
    #[serde(default)]
    pub rate_limit: Option<f64>,
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
        for channel in &self.channels {
            if channel.rate_limit.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                return Err(format!("channels: `{}`: rate-limit must be a positive number", channel.id));
            }
        }
        for fallback in &self.outbound.fallback {
            if !self.channels.is_empty() && !seen.contains(fallback) {
                return Err(format!("outbound.fallback: no channel `{fallback}` is configured"));
            }
        }
        if self.outbound.max_attempts == 0 {
            return Err("outbound.max-attempts must be at least 1".into());
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
