//! What a store holds during one call: the plugin's environment, an empty WASI context
//! (no files, env, args or sockets; stdout/stderr captured), the outbound HTTP policy and
//! the per-call limits.

use crate::manifest::Manifest;
use crate::runtime::caps::http::HostRule;
use crate::runtime::caps::http::OutboundPolicy;
use crate::runtime::caps::kv::KvNamespace;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Bytes of a plugin's stderr kept per call (a panic message and a little context).
const STDERR_CAPTURE: usize = 4096;

/// Config values resolved from the operator's settings and the manifest defaults.
#[derive(Debug, Clone, Default)]
pub struct ResolvedConfig {
    /// Keys readable with `config.get`.
    pub plain: BTreeMap<String, String>,
    /// Keys readable with `config.secret`.
    pub secrets: BTreeMap<String, String>,
}

/// Everything about a loaded plugin version that calls share.
pub struct PluginEnv {
    /// The manifest.
    pub manifest: Manifest,
    /// Resolved config and secrets.
    pub config: ResolvedConfig,
    /// Its key-value namespace, if granted.
    pub kv: Option<KvNamespace>,
    /// Parsed `capabilities.http`.
    pub http_rules: Arc<[HostRule]>,
    /// The plugin name, shared with the HTTP policy.
    pub name: Arc<str>,
}

/// Data of one call's store.
pub struct HostState {
    /// The plugin's environment.
    pub env: Arc<PluginEnv>,
    /// Log bytes this call may still write.
    pub log_budget: u32,
    /// Log lines dropped for lack of budget.
    pub log_dropped: u32,
    /// Memory and table limits.
    pub limiter: Limiter,
    /// Captured stderr (panic messages).
    pub stderr: MemoryOutputPipe,
    /// Outbound HTTP policy (and time spent waiting on it).
    pub http_policy: OutboundPolicy,
    /// wasm execution time charged so far, in nanoseconds.
    pub cpu_used_ns: u64,
    /// When the CPU budget was last checked.
    pub cpu_checked_at: std::time::Instant,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl HostState {
    /// Fresh state for one call of the plugin described by `env`.
    pub fn new(env: Arc<PluginEnv>) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        // Nothing is inherited: no args, env, preopened dirs, stdin or network.
        let wasi = WasiCtx::builder().stderr(stderr.clone()).stdout(stderr.clone()).build();
        let limits = &env.manifest.limits;
        let limiter = Limiter::new(limits.memory_mb as usize * 1024 * 1024);
        let http_policy = OutboundPolicy::new(env.name.clone(), env.http_rules.clone());
        HostState {
            log_budget: limits.log_bytes,
            log_dropped: 0,
            limiter,
            stderr,
            http_policy,
            cpu_used_ns: 0,
            cpu_checked_at: std::time::Instant::now(),
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            env,
        }
    }

    /// Marks the start of the call: CPU time is charged from now (the instance may have
    /// been made well before).
    pub fn begin_call(&mut self) {
        self.cpu_checked_at = std::time::Instant::now();
        self.cpu_used_ns = 0;
    }

    /// The epoch callback: charges the wall time since the last check, minus time spent
    /// waiting on outbound HTTP, against `budget_ns`; traps with [`CpuLimitExceeded`] past it.
    pub fn charge_cpu(&mut self, budget_ns: u64) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        let now = std::time::Instant::now();
        let elapsed = now.duration_since(self.cpu_checked_at).as_nanos() as u64;
        self.cpu_checked_at = now;
        let waited = self.http_policy.waited_ns.swap(0, std::sync::atomic::Ordering::Relaxed);
        self.cpu_used_ns += elapsed.saturating_sub(waited);
        if self.cpu_used_ns > budget_ns {
            return Err(wasmtime::Error::new(CpuLimitExceeded));
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    }

    /// What the plugin wrote to stderr during this call, lossily decoded.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).trim().to_owned()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_policy }
    }
}

/// The trap payload when a call runs wasm past its CPU limit.
#[derive(Debug, thiserror::Error)]
#[error("CPU limit exceeded")]
pub struct CpuLimitExceeded;

/// Caps linear memory growth at the manifest's `limits.memory-mb`. Growth past it traps
/// the call at once with [`MemoryLimitExceeded`] rather than letting the guest see an
/// allocation failure it might mishandle.
pub struct Limiter {
    max_memory: usize,
}

/// The trap payload when a plugin grows memory past its limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {desired})")]
pub struct MemoryLimitExceeded {
    /// The limit in bytes.
    pub limit: usize,
    /// The size the guest asked for.
    pub desired: usize,
}

impl Limiter {
    fn new(max_memory: usize) -> Self {
        Limiter { max_memory }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            return Err(wasmtime::Error::new(MemoryLimitExceeded { limit: self.max_memory, desired }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
