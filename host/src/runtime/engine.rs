//! The one wasmtime [`Engine`] of a host: pooling allocator, copy-on-write memory images,
//! epoch interruption driven by a ticker thread.

use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. CPU deadlines are checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Largest `limits.memory-mb` a manifest may ask for; also the pool's slot size.
pub const MAX_MEMORY_MB: u32 = 512;

/// Sizing of the instance pool.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Most plugin instances alive at once: calls in flight plus ready instances.
    pub max_instances: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { max_instances: 1000 }
    }
}

/// Builds the engine and starts its epoch ticker. The ticker holds only a weak reference,
/// so it stops when the last clone of the engine is dropped.
pub fn build(options: &EngineOptions) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let n = options.max_instances;
    pool.total_component_instances(n)
        // Per component: a Rust plugin has one memory and a few small core modules and
        // tables. Caps keep one plugin from taking many pool slots (or many memories of
        // `memory-mb` each) in one instance.
        .max_memories_per_component(2)
        .max_core_instances_per_component(16)
        .max_tables_per_component(16)
        // A Rust component has its main module plus a few small adapter modules.
        .total_core_instances(n * 4)
        .total_memories(n)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_memory_size(MAX_MEMORY_MB as usize * 1024 * 1024)
        // A call-per-store design recycles slots constantly. Resetting them with madvise
        // costs page faults on the next call and TLB-shootdown IPIs on every core (measured:
        // most of a route() call). Instead keep up to 4 MiB resident and, where the kernel has
        // PAGEMAP_SCAN (Linux 6.7+), memset only the pages the call dirtied.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(4 * 1024 * 1024)
        .table_keep_resident(64 * 1024)
        // Reuse the most recently used slot of the same component: its pages are resident
        // and its image mapped, so instantiation takes no page faults.
        .max_unused_warm_slots(0);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .max_wasm_stack(512 * 1024)
        .async_stack_size(1024 * 1024)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config)?;
    spawn_ticker(engine.weak());
    Ok(engine)
}

fn spawn_ticker(engine: wasmtime::EngineWeak) {
    let spawned = std::thread::Builder::new().name("seam-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch ticker; CPU deadlines will not fire");
    }
}
