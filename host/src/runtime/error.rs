//! Errors of loading plugins and of calling them.

use crate::manifest::ManifestError;
use std::path::PathBuf;

/// Why a plugin could not be loaded. Every variant names the plugin or the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest is bad.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The component file could not be read.
    #[error("{file}: cannot read component: {source}")]
    ReadComponent {
        /// The component file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component.
    #[error("{origin}: not a WebAssembly component: {detail}")]
    NotAComponent {
        /// Where the bytes came from.
        origin: String,
        /// What it is instead.
        detail: String,
    },
    /// wasmtime could not compile or validate it.
    #[error("plugin `{plugin}`: cannot compile component: {message}")]
    Compile {
        /// Plugin name.
        plugin: String,
        /// wasmtime's message.
        message: String,
    },
    /// It does not export what its manifest's `kind` requires.
    #[error(
        "plugin `{plugin}`: manifest says kind = \"{kind}\" but the component does not export `{expected}` (it exports: {found})"
    )]
    WrongWorld {
        /// Plugin name.
        plugin: String,
        /// Manifest kind.
        kind: String,
        /// The interface it must export.
        expected: String,
        /// What it exports.
        found: String,
    },
    /// It imports something its manifest does not grant.
    #[error("plugin `{plugin}`: {message}")]
    Capability {
        /// Plugin name.
        plugin: String,
        /// Which import and which field would grant it.
        message: String,
    },
    /// Its imports cannot be satisfied by this host.
    #[error("plugin `{plugin}`: cannot link: {message}")]
    Link {
        /// Plugin name.
        plugin: String,
        /// wasmtime's message.
        message: String,
    },
    /// A config key is missing or unknown.
    #[error("plugin `{plugin}`: config `{key}`: {message}")]
    Config {
        /// Plugin name.
        plugin: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The host's storage failed.
    #[error("plugin `{plugin}`: storage: {message}")]
    Storage {
        /// Plugin name.
        plugin: String,
        /// The storage error.
        message: String,
    },
    /// `describe` failed when the connector was loaded.
    #[error("plugin `{plugin}`: describe() failed: {source}")]
    Describe {
        /// Plugin name.
        plugin: String,
        /// The call error.
        source: Box<CallError>,
    },
}

/// Why one call into a plugin failed. The host keeps serving; only this call fails.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No plugin of that name and kind is loaded.
    #[error("no {kind} plugin named `{plugin}` is loaded")]
    NotFound {
        /// Plugin name.
        plugin: String,
        /// Expected kind.
        kind: String,
    },
    /// The breaker is open.
    #[error("plugin `{plugin}` is disabled after repeated failures (last: {reason})")]
    Disabled {
        /// Plugin name.
        plugin: String,
        /// The failure that tripped the breaker.
        reason: String,
    },
    /// The call ran past `limits.timeout-ms`.
    #[error("plugin `{plugin}`: {export} timed out after {ms} ms")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// Export called.
        export: &'static str,
        /// The limit.
        ms: u32,
    },
    /// The call ran wasm for longer than `limits.cpu-ms`.
    #[error("plugin `{plugin}`: {export} exceeded its CPU limit of {ms} ms")]
    CpuLimit {
        /// Plugin name.
        plugin: String,
        /// Export called.
        export: &'static str,
        /// The limit.
        ms: u32,
    },
    /// The call grew memory past `limits.memory-mb`.
    #[error("plugin `{plugin}`: {export}: {message}")]
    MemoryLimit {
        /// Plugin name.
        plugin: String,
        /// Export called.
        export: &'static str,
        /// The limit and the size asked for.
        message: String,
    },
    /// The result was larger than `limits.output-kb`.
    #[error("plugin `{plugin}`: {export} returned {bytes} bytes, over its limit of {limit}")]
    OutputTooLarge {
        /// Plugin name.
        plugin: String,
        /// Export called.
        export: &'static str,
        /// Size of the result's JSON encoding.
        bytes: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The plugin trapped (a panic, `unreachable`, an out-of-bounds access...).
    #[error("plugin `{plugin}`: {export} trapped: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// Export called.
        export: &'static str,
        /// The trap and what the plugin wrote to stderr (a panic message).
        message: String,
    },
    /// Too many calls in flight for the instance pool.
    #[error("plugin `{plugin}`: no instance slot free ({message})")]
    Busy {
        /// Plugin name.
        plugin: String,
        /// wasmtime's message.
        message: String,
    },
}

impl CallError {
    /// A short stable name for metrics and API error codes.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::NotFound { .. } => "not-found",
            CallError::Disabled { .. } => "disabled",
            CallError::Timeout { .. } => "timeout",
            CallError::CpuLimit { .. } => "cpu-limit",
            CallError::MemoryLimit { .. } => "memory-limit",
            CallError::OutputTooLarge { .. } => "output-too-large",
            CallError::Trap { .. } => "trap",
            CallError::Busy { .. } => "busy",
        }
    }

    /// Whether this failure counts against the plugin's breaker.
    pub fn is_plugin_fault(&self) -> bool {
        !matches!(self, CallError::NotFound { .. } | CallError::Disabled { .. } | CallError::Busy { .. })
    }
}
