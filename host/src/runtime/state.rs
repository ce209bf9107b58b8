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
use wasmtime_wasi::p2::pipe::{MemoryOutputPipe, SinkOutputStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Bytes of a plugin's stderr kept per call (a panic message and some context). Writing
/// more fails the write (a Rust `eprintln!` then panics): plugins should log instead.
const STDERR_CAPTURE: usize = 16 * 1024;

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
    /// Parsed `capabilities.smtp`.
    pub smtp_rules: Arc<[HostRule]>,
    /// The plugin name, shared with the HTTP policy.
    pub name: Arc<str>,
    /// TLS settings for outbound https.
    pub tls: Arc<rustls::ClientConfig>,
    /// The operator's extra root certificates (DER), which SMTP relays are checked against
    /// too.
    pub extra_roots: Arc<[Vec<u8>]>,
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
    /// Calls this store's instance has begun.
    pub calls: u32,
    /// wasm execution time charged so far, in nanoseconds.
    pub cpu_used_ns: u64,
    /// When the CPU budget was last checked.
    pub cpu_checked_at: std::time::Instant,
    /// When the call began; `resumed_ns` counts from here.
    cpu_base: std::time::Instant,
    /// When wasm last resumed after yielding to the executor (ns after `cpu_base`): time
    /// spent suspended is not the plugin's.
    resumed_ns: Arc<std::sync::atomic::AtomicU64>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl HostState {
    /// Fresh state for one call of the plugin described by `env`.
    pub fn new(env: Arc<PluginEnv>) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        // Nothing is inherited: no args, env, preopened dirs, stdin or network; clocks only
        // if granted.
        let mut wasi = WasiCtx::builder();
        wasi.stderr(stderr.clone()).stdout(SinkOutputStream);
        if !env.manifest.capabilities.clock {
            wasi.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        let wasi = wasi.build();
        let limits = &env.manifest.limits;
        let limiter = Limiter::new(limits.memory_mb as usize * 1024 * 1024);
        let http_policy = OutboundPolicy::new(env.name.clone(), env.http_rules.clone(), env.tls.clone());
        HostState {
            log_budget: limits.log_bytes,
            log_dropped: 0,
            limiter,
            stderr,
            http_policy,
            calls: 0,
            cpu_used_ns: 0,
            cpu_checked_at: std::time::Instant::now(),
            cpu_base: std::time::Instant::now(),
            resumed_ns: Arc::default(),
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            env,
        }
    }

    /// Marks the start of a call: CPU time is charged from now (the instance may have been
    /// made well before), and the per-call budgets start afresh.
    pub fn begin_call(&mut self) {
        self.calls += 1;
        self.log_budget = self.env.manifest.limits.log_bytes;
        self.log_dropped = 0;
        self.http_policy.waited_ns.store(0, std::sync::atomic::Ordering::Relaxed);
        let now = std::time::Instant::now();
        self.cpu_base = now;
        self.cpu_checked_at = now;
        self.cpu_used_ns = 0;
        self.resumed_ns.store(0, std::sync::atomic::Ordering::Release);
    }

    /// The epoch callback, run every tick while wasm runs: charges the time since the last
    /// check (or since wasm resumed, if later), minus time spent waiting for outbound HTTP
    /// responses, against `budget_ns`, and traps with [`CpuLimitExceeded`] past it.
    /// Otherwise it yields to the executor, so the call's wall-clock timeout can fire and a
    /// long call does not hold a worker thread; the time until wasm resumes is not charged.
    pub fn charge_cpu(&mut self, budget_ns: u64) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        use std::sync::atomic::Ordering;
        let now = std::time::Instant::now();
        let resumed_at =
            self.cpu_base + std::time::Duration::from_nanos(self.resumed_ns.load(Ordering::Acquire));
        let from = self.cpu_checked_at.max(resumed_at);
        let elapsed = now.saturating_duration_since(from).as_nanos() as u64;
        self.cpu_checked_at = now;
        let waited = self.http_policy.waited_ns.swap(0, Ordering::Relaxed);
        self.cpu_used_ns += elapsed.saturating_sub(waited);
        if self.cpu_used_ns > budget_ns {
            return Err(wasmtime::Error::new(CpuLimitExceeded));
        }
        let (resumed, base) = (self.resumed_ns.clone(), self.cpu_base);
        Ok(wasmtime::UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                tokio::task::yield_now().await;
                resumed.store(base.elapsed().as_nanos() as u64, Ordering::Release);
            }),
        ))
    }

    /// Whether the instance may serve another call, after one that succeeded: within
    /// `limits.calls-per-instance`, and nothing left behind that belongs to a call (stderr
    /// output, which would be shown in a later call's error, or open resources such as an
    /// HTTP response body).
    pub fn reusable(&self) -> bool {
        self.calls < self.env.manifest.limits.calls_per_instance
            && self.stderr.contents().is_empty()
            && self.table.is_empty()
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

/// The clocks of a plugin without `capabilities.clock`: always zero.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
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
    /// Bytes of all the store's memories together.
    used: usize,
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
        Limiter { max_memory, used: 0 }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The limit is for the plugin, not per memory: a component with several memories
        // shares one budget.
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.max_memory {
            return Err(wasmtime::Error::new(MemoryLimitExceeded { limit: self.max_memory, desired: total }));
        }
        self.used = total;
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
