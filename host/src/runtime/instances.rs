//! Instances made ahead of time, and what happens to them after a call.
//!
//! Reuse policy: **by default an instance serves exactly one call, then is destroyed.**
//! Nothing a call leaves in linear memory, globals or tables can reach another call. What
//! moves off the request's path is the work around that one use: each plugin version keeps a
//! few fresh, already-linked and type-checked instances ready ([`ReadyPool`]), and a recycler
//! thread destroys spent stores (resetting their pooled memory) and makes replacements. If
//! the pool is empty (a burst), the call instantiates inline, so correctness never depends
//! on it.
//!
//! A manifest may raise `limits.calls-per-instance`: an instance whose call succeeded and
//! left nothing behind then goes back to its plugin version's pool ([`ReadyPool::keep`])
//! until it has served that many calls. Making and destroying an instance is most of the
//! cost of a short call (see docs/benchmarks.md), so trusted plugins on the hot path are
//! worth it; a failed call's instance is always destroyed.

use super::bindings::{channel, routing};
use super::plugin::{Exports, Plugin};
use super::state::HostState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use wasmtime::{Engine, Store};

/// The typed export of one instance.
pub enum Guest {
    /// A connector's `channel` interface.
    Connector(channel::Guest),
    /// A router's `routing` interface.
    Router(routing::Guest),
}

impl Guest {
    /// The `routing` export, or an error if this is a connector.
    pub fn router(&self) -> wasmtime::Result<&routing::Guest> {
        match self {
            Guest::Router(g) => Ok(g),
            Guest::Connector(_) => Err(wasmtime::Error::msg("plugin is a connector, not a router")),
        }
    }

    /// The `channel` export, or an error if this is a router.
    pub fn connector(&self) -> wasmtime::Result<&channel::Guest> {
        match self {
            Guest::Connector(g) => Ok(g),
            Guest::Router(_) => Err(wasmtime::Error::msg("plugin is a router, not a connector")),
        }
    }
}

/// A fresh instance in its own store, never called yet.
pub struct Ready {
    /// The store, holding the instance and the call's [`HostState`].
    pub store: Store<HostState>,
    /// Its typed export.
    pub guest: Guest,
}

/// Fresh instances of one plugin version.
#[derive(Default)]
pub struct ReadyPool {
    ready: Mutex<Vec<Ready>>,
    refill_queued: AtomicBool,
}

impl ReadyPool {
    /// A ready instance, if one is waiting.
    pub fn take(&self) -> Option<Ready> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn len(&self) -> usize {
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Adds a fresh instance under the kept ones: a refill that lands after a call kept
    /// its instance must not come before it, or that warm instance would wait unused (and
    /// a plugin that counts on `calls-per-instance` would see a fresh one).
    fn put(&self, ready: Ready) {
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).insert(0, ready);
    }

    /// Takes back an instance for another call, unless [`MAX_KEPT`] are waiting already:
    /// then it is handed back to be destroyed. The last one kept is the next one taken, so
    /// a busy plugin cycles through few instances, warm in the cache.
    pub fn keep(&self, ready: Ready) -> Option<Ready> {
        let mut waiting = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.len() >= MAX_KEPT {
            return Some(ready);
        }
        waiting.push(ready);
        None
    }
}

/// Most reusable instances a plugin version keeps waiting: about as many calls as run at
/// once on a small host. Each one holds a pooled instance slot and its memory.
const MAX_KEPT: usize = 8;

/// A store for one call of `plugin`, with its limits installed.
pub fn new_store(engine: &Engine, plugin: &Plugin) -> Store<HostState> {
    let mut store = Store::new(engine, HostState::new(plugin.env.clone()));
    store.limiter(|s| &mut s.limiter);
    let budget_ns = u64::from(plugin.manifest().limits.cpu_ms) * 1_000_000;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut cx| cx.data_mut().charge_cpu(budget_ns));
    store
}

/// Instantiates `plugin` in a fresh store and looks up its typed export, within the
/// plugin's `timeout-ms` (a component's start code must not stall the recycler).
pub async fn instantiate(engine: &Engine, plugin: &Plugin) -> wasmtime::Result<Ready> {
    let limit = std::time::Duration::from_millis(u64::from(plugin.manifest().limits.timeout_ms));
    tokio::time::timeout(limit, instantiate_now(engine, plugin)).await.map_err(|_| {
        wasmtime::Error::msg(format!("instantiation took longer than {} ms", limit.as_millis()))
    })?
}

async fn instantiate_now(engine: &Engine, plugin: &Plugin) -> wasmtime::Result<Ready> {
    let mut store = new_store(engine, plugin);
    let instance = plugin.pre.instantiate_async(&mut store).await?;
    let guest = match &plugin.exports {
        Exports::Connector(indices) => Guest::Connector(indices.load(&mut store, &instance)?),
        Exports::Router(indices) => Guest::Router(indices.load(&mut store, &instance)?),
    };
    Ok(Ready { store, guest })
}

enum Job {
    /// Destroy a spent store (returns its slot to the pool, resetting its memory).
    Drop(Box<Store<HostState>>),
    /// Top up a plugin's ready instances.
    Refill(Arc<Plugin>),
}

/// Most jobs waiting for the recycler. Past it, callers destroy their own stores and skip
/// refills: under sustained load the background thread cannot absorb the work anyway, and
/// an unbounded backlog would hold instance slots until the pool runs out.
const MAX_BACKLOG: usize = 16;

/// Handle to the recycler thread.
#[derive(Clone)]
pub struct Recycler {
    jobs: mpsc::SyncSender<Job>,
}

impl Recycler {
    /// Starts the recycler thread for `engine`. It stops when every handle is dropped.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(MAX_BACKLOG);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
        std::thread::Builder::new().name("seam-recycler".into()).spawn(move || {
            for job in rx {
                match job {
                    Job::Drop(store) => drop(store),
                    Job::Refill(plugin) => {
                        plugin.ready.refill_queued.store(false, Ordering::Release);
                        runtime.block_on(fill(&engine, &plugin));
                    }
                }
            }
        })?;
        Ok(Recycler { jobs })
    }

    /// Destroys `store`: off the caller's path if the recycler has room, else right here.
    pub fn retire(&self, store: Store<HostState>) {
        // A full or closed channel hands the job back; dropping it here destroys the store.
        drop(self.jobs.try_send(Job::Drop(Box::new(store))));
    }

    /// Asks for `plugin`'s ready pool to be topped up, once until it is; skipped while the
    /// recycler is backlogged (calls then instantiate inline).
    pub fn refill(&self, plugin: &Arc<Plugin>) {
        if plugin.ready.len() < plugin.ready_target
            && !plugin.ready.refill_queued.swap(true, Ordering::AcqRel)
            && self.jobs.try_send(Job::Refill(plugin.clone())).is_err()
        {
            plugin.ready.refill_queued.store(false, Ordering::Release);
        }
    }
}

/// Instantiates until `plugin` has its target of ready instances. A failure is logged and
/// leaves the pool short: calls then instantiate inline and report the error themselves.
pub async fn fill(engine: &Engine, plugin: &Plugin) {
    while plugin.ready.len() < plugin.ready_target {
        match instantiate(engine, plugin).await {
            Ok(ready) => plugin.ready.put(ready),
            Err(e) => {
                tracing::debug!(plugin = %plugin.id(), error = %format!("{e:#}"), "cannot pre-instantiate");
                break;
            }
        }
    }
}
