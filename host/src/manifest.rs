//! Plugin manifests (`seam.toml`): what a plugin is, what it may touch, and its limits.
//!
//! Unknown fields are rejected so a typo (`memroy-mb`) is an error, not a silent default.
//! Every error names the file and the field. The format is documented field by field in
//! `docs/manifest.md`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The WIT package version this host implements. A manifest's `wit` must be
/// semver-compatible with it (same major, and same minor while major is 0).
pub const WIT_VERSION: &str = "0.1.0";

/// What a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// World `seam:plugin/connector`.
    Connector,
    /// World `seam:plugin/router`.
    Router,
}

impl PluginKind {
    /// The interface the component must export.
    pub fn export_interface(self) -> &'static str {
        match self {
            PluginKind::Connector => "seam:plugin/channel@0.1.0",
            PluginKind::Router => "seam:plugin/routing@0.1.0",
        }
    }

    /// The WIT world name.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Connector => "seam:plugin/connector@0.1.0",
            PluginKind::Router => "seam:plugin/router@0.1.0",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Connector => "connector",
            PluginKind::Router => "router",
        })
    }
}

/// A parsed and validated `seam.toml`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Plugin name: lower-case letters, digits and `-`; unique within a host.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// `connector` or `router`.
    pub kind: PluginKind,
    /// The `seam:plugin` WIT version the plugin was built against.
    pub wit: String,
    /// The component file, relative to the manifest.
    pub component: String,
    /// One line for admin screens.
    #[serde(default)]
    pub description: String,
    /// What the plugin may use beyond computing.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Per-call limits.
    #[serde(default)]
    pub limits: Limits,
    /// Config keys the plugin reads, by name.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigKey>,
}

/// Host imports the plugin is granted. Everything is denied unless listed.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Capabilities {
    /// Grants `seam:plugin/log`.
    #[serde(default)]
    pub log: bool,
    /// Grants the real WASI wall and monotonic clocks. Without them both read zero (the Unix
    /// epoch), so a plugin cannot read the time from the clocks.
    #[serde(default)]
    pub clock: bool,
    /// Grants `seam:plugin/kv` with a quota.
    #[serde(default)]
    pub kv: Option<KvGrant>,
    /// Grants outbound `wasi:http` to these destinations: `scheme://host[:port]`, where host
    /// may start with `*.` and port may be `*`. A destination that resolves to a private,
    /// loopback or link-local address is allowed only if listed here as a literal IP.
    /// Absent: the plugin may not import `wasi:http` at all. Empty: it may, but every
    /// request is denied until the operator lists hosts in their copy of the manifest.
    #[serde(default)]
    pub http: Option<Vec<String>>,
    /// Grants `seam:plugin/smtp` to these relays: `smtp://host[:port]` (port 587 when not
    /// given; `*` for any), checked like `http` destinations (a private or loopback address
    /// must be named as a literal IP). Absent: the plugin may not import `seam:plugin/smtp`.
    #[serde(default)]
    pub smtp: Option<Vec<String>>,
}

impl Capabilities {
    /// The parsed `http` destinations (none if absent); the error names the index of the
    /// first bad one and why.
    pub fn http_rules(&self) -> Result<Vec<crate::runtime::caps::http::HostRule>, (usize, String)> {
        self.http
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| crate::runtime::caps::http::HostRule::parse(r).map_err(|m| (i, m)))
            .collect()
    }

    /// The parsed `smtp` relays (none if absent); the error names the index of the first
    /// bad one and why.
    pub fn smtp_rules(&self) -> Result<Vec<crate::runtime::caps::http::HostRule>, (usize, String)> {
        use crate::runtime::caps::{http::HostRule, smtp::SMTP_SCHEMES};
        self.smtp
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| HostRule::parse_with(r, SMTP_SCHEMES).map_err(|m| (i, m)))
            .collect()
    }
}

/// The key-value store grant.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KvGrant {
    /// Most bytes of keys plus values the plugin may store.
    pub quota_bytes: u64,
}

/// Per-call limits. Defaults are deliberately tight; raise them in the manifest.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Most linear memory one call may use, in MiB.
    #[serde(default = "Limits::default_memory_mb")]
    pub memory_mb: u32,
    /// Most time one call may spend running wasm (not counting waits on outbound HTTP), in ms.
    #[serde(default = "Limits::default_cpu_ms")]
    pub cpu_ms: u32,
    /// Most wall-clock time one call may take, including host calls, in ms.
    #[serde(default = "Limits::default_timeout_ms")]
    pub timeout_ms: u32,
    /// Largest result one call may return (its JSON encoding), in KiB.
    #[serde(default = "Limits::default_output_kb")]
    pub output_kb: u32,
    /// Most bytes one call may write to the log.
    #[serde(default = "Limits::default_log_bytes")]
    pub log_bytes: u32,
    /// Calls one instance may serve before it is destroyed. The default, 1, gives every
    /// call a fresh instance, so nothing one call leaves in memory can reach another. More
    /// lets state carry from call to call of this plugin version (never to another plugin,
    /// version or channel) and saves making and destroying an instance per call; grant it
    /// only to plugins trusted not to keep one customer's data for the next.
    #[serde(default = "Limits::default_calls_per_instance")]
    pub calls_per_instance: u32,
}

impl Limits {
    fn default_memory_mb() -> u32 {
        16
    }
    fn default_cpu_ms() -> u32 {
        50
    }
    fn default_timeout_ms() -> u32 {
        1000
    }
    fn default_output_kb() -> u32 {
        256
    }
    fn default_log_bytes() -> u32 {
        16 * 1024
    }
    fn default_calls_per_instance() -> u32 {
        1
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mb: Self::default_memory_mb(),
            cpu_ms: Self::default_cpu_ms(),
            timeout_ms: Self::default_timeout_ms(),
            output_kb: Self::default_output_kb(),
            log_bytes: Self::default_log_bytes(),
            calls_per_instance: Self::default_calls_per_instance(),
        }
    }
}

/// One config key a plugin reads.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigKey {
    /// What the key means, for operators.
    #[serde(default)]
    pub description: String,
    /// Read with `config.secret` and never shown in logs, metrics or the admin API.
    #[serde(default)]
    pub secret: bool,
    /// Loading fails if no value is given and there is no default.
    #[serde(default)]
    pub required: bool,
    /// Value used when the operator gives none.
    #[serde(default)]
    pub default: Option<String>,
}

/// A manifest that cannot be used, naming the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{file}: cannot read manifest: {source}")]
    Read {
        /// The manifest file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, a field is unknown, missing or of the wrong type.
    #[error("{file}: {message}")]
    Syntax {
        /// The manifest file.
        file: PathBuf,
        /// The TOML parser's message, which names the field and line.
        message: String,
    },
    /// A field has a value the host cannot accept.
    #[error("{file}: field `{field}`: {message}")]
    Invalid {
        /// The manifest file.
        file: PathBuf,
        /// The field, dotted (`limits.memory-mb`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl Manifest {
    /// Reads and validates the manifest at `file`.
    pub fn from_file(file: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(file)
            .map_err(|source| ManifestError::Read { file: file.to_owned(), source })?;
        Self::parse(&text, file)
    }

    /// Parses and validates manifest text; `file` is used in error messages.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        manifest.validate(file)?;
        Ok(manifest)
    }

    fn validate(&self, file: &Path) -> Result<(), ManifestError> {
        let invalid = |field: &str, message: String| ManifestError::Invalid {
            file: file.to_owned(),
            field: field.to_owned(),
            message,
        };
        if !is_plugin_name(&self.name) {
            return Err(invalid(
                "name",
                format!(
                    "`{}` must be 1-64 lower-case letters, digits or `-`, starting with a letter",
                    self.name
                ),
            ));
        }
        if parse_semver(&self.version).is_none() {
            return Err(invalid("version", format!("`{}` is not a semver version like 1.2.3", self.version)));
        }
        if !wit_compatible(&self.wit) {
            return Err(invalid(
                "wit",
                format!("plugin targets seam:plugin@{} but this host implements @{WIT_VERSION}", self.wit),
            ));
        }
        if self.component.is_empty()
            || self.component.contains("..")
            || Path::new(&self.component).is_absolute()
        {
            return Err(invalid(
                "component",
                format!("`{}` must be a file name next to the manifest", self.component),
            ));
        }
        let l = &self.limits;
        for (field, value, max) in [
            ("limits.memory-mb", l.memory_mb, crate::runtime::MAX_MEMORY_MB),
            ("limits.cpu-ms", l.cpu_ms, 60_000),
            ("limits.timeout-ms", l.timeout_ms, 300_000),
            ("limits.output-kb", l.output_kb, 64 * 1024),
            ("limits.log-bytes", l.log_bytes, 1024 * 1024),
            ("limits.calls-per-instance", l.calls_per_instance, 100_000),
        ] {
            if value == 0 || value > max {
                return Err(invalid(field, format!("{value} is outside 1..={max}")));
            }
        }
        if l.cpu_ms > l.timeout_ms {
            return Err(invalid(
                "limits.cpu-ms",
                format!("{} exceeds limits.timeout-ms ({})", l.cpu_ms, l.timeout_ms),
            ));
        }
        self.capabilities.http_rules().map_err(|(i, m)| invalid(&format!("capabilities.http[{i}]"), m))?;
        self.capabilities.smtp_rules().map_err(|(i, m)| invalid(&format!("capabilities.smtp[{i}]"), m))?;
        for key in self.config.keys() {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(invalid(
                    &format!("config.{key}"),
                    "config keys are ASCII letters, digits, `-` and `_`".into(),
                ));
            }
        }
        Ok(())
    }
}

fn is_plugin_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `major.minor.patch` with an optional `-pre` / `+build` suffix.
fn parse_semver(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

/// Whether a plugin built against `wit` works with this host's [`WIT_VERSION`].
pub fn wit_compatible(wit: &str) -> bool {
    match (parse_semver(wit), parse_semver(WIT_VERSION)) {
        (Some((0, minor, _)), Some((0, host_minor, _))) => minor == host_minor,
        (Some((major, _, _)), Some((host_major, _, _))) => major == host_major && major != 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "demo"
version = "1.0.0"
kind = "router"
wit = "0.1.0"
component = "demo.wasm"
[capabilities]
log = true
clock = true
kv = { quota-bytes = 1024 }
http = ["https://api.example.com", "http://127.0.0.1:*"]
smtp = ["smtp://smtp.example.com", "smtp://127.0.0.1:2525"]
[limits]
memory-mb = 8
[config.token]
secret = true
required = true
"#;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("plugins/demo/seam.toml"))
    }

    #[test]
    fn parses_a_full_manifest() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.kind, PluginKind::Router);
        assert_eq!(m.capabilities.kv.unwrap().quota_bytes, 1024);
        assert!(m.capabilities.clock);
        assert_eq!(m.limits.memory_mb, 8);
        assert_eq!(m.limits.cpu_ms, 50, "unset limits take defaults");
        assert_eq!(
            m.limits.calls_per_instance, 1,
            "a fresh instance per call unless the manifest says otherwise"
        );
        assert!(m.config["token"].secret);
    }

    #[test]
    fn unknown_field_is_named_with_the_file() {
        let err = parse(&GOOD.replace("memory-mb = 8", "memroy-mb = 8")).unwrap_err().to_string();
        assert!(err.starts_with("plugins/demo/seam.toml:"), "{err}");
        assert!(err.contains("memroy-mb"), "{err}");
    }

    #[test]
    fn wrong_wit_version_is_refused() {
        let err = parse(&GOOD.replace("wit = \"0.1.0\"", "wit = \"0.2.0\"")).unwrap_err().to_string();
        assert!(err.contains("field `wit`") && err.contains("0.2.0"), "{err}");
        assert!(wit_compatible("0.1.7"));
        assert!(!wit_compatible("1.1.0"));
        assert!(!wit_compatible("x"));
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (GOOD.replace("name = \"demo\"", "name = \"Demo!\""), "field `name`"),
            (GOOD.replace("version = \"1.0.0\"", "version = \"one\""), "field `version`"),
            (GOOD.replace("memory-mb = 8", "memory-mb = 0"), "field `limits.memory-mb`"),
            (
                GOOD.replace("memory-mb = 8", "memory-mb = 8\ncalls-per-instance = 0"),
                "field `limits.calls-per-instance`",
            ),
            (GOOD.replace("demo.wasm", "../../etc/x.wasm"), "field `component`"),
            (GOOD.replace("https://api.example.com", "api.example.com"), "field `capabilities.http[0]`"),
            (
                GOOD.replace("smtp://smtp.example.com", "https://smtp.example.com"),
                "field `capabilities.smtp[0]`",
            ),
            (GOOD.replace("kind = \"router\"", "kind = \"robot\""), "robot"),
        ];
        for (text, want) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(want), "want {want:?} in {err}");
        }
    }
}
