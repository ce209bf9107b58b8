//! Calling into plugins. Every call runs on its own instance, used once and destroyed unless
//! the manifest's `limits.calls-per-instance` allows more (see `instances.rs` for how they
//! are made ahead of time and kept), so by default nothing a call leaves in linear memory or
//! globals can leak into the next one. Limits per call:
//! - memory: the store's limiter traps growth past `limits.memory-mb`;
//! - CPU: an epoch callback charges wall time spent in the call, minus time waiting on
//!   outbound HTTP, against `limits.cpu-ms` (`HostState::charge_cpu`);
//! - wall time: a timeout of `limits.timeout-ms` around the whole call;
//! - output: the result's JSON encoding must fit `limits.output-kb`.

use super::bindings::{channel, routing};
use super::error::CallError;
use super::instances::{self, Guest};
use super::plugin::Plugin;
use super::state::{CpuLimitExceeded, HostState, MemoryLimitExceeded};
use super::{Runtime, Slot};
use crate::manifest::PluginKind;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Store;

/// Gives an admission back to the breaker if a call is dropped before it finishes.
struct AdmitGuard<'a> {
    slot: &'a Slot,
    admit: Option<super::breaker::Admit>,
}

impl Drop for AdmitGuard<'_> {
    fn drop(&mut self) {
        if let Some(admit) = self.admit.take() {
            self.slot.breaker.abandon(admit);
        }
    }
}

/// Counts bytes written, to size a result without allocating its encoding.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn encoded_size<R: Serialize>(value: &R) -> usize {
    let mut counter = ByteCounter(0);
    // Serializing generated WIT types into a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

impl Runtime {
    /// Asks router `name` where the conversation in `context` goes.
    pub async fn route(
        &self,
        name: &str,
        context: &routing::RouteContext,
    ) -> Result<Result<routing::Decision, String>, CallError> {
        let (slot, plugin) = self.slot_of_kind(name, PluginKind::Router)?;
        self.guarded(&slot, &plugin, "route", async |store: &mut Store<HostState>, guest: &Guest| {
            guest.router()?.call_route(store, context).await
        })
        .await
    }

    /// Hands a webhook request to connector `name`.
    pub async fn handle_webhook(
        &self,
        name: &str,
        request: &channel::HttpRequest,
    ) -> Result<Result<channel::WebhookOutcome, channel::WebhookError>, CallError> {
        let (slot, plugin) = self.slot_of_kind(name, PluginKind::Connector)?;
        self.guarded(&slot, &plugin, "handle-webhook", async |store: &mut Store<HostState>, guest: &Guest| {
            guest.connector()?.call_handle_webhook(store, request).await
        })
        .await
    }

    /// Sends `message` through connector `name`.
    pub async fn send(
        &self,
        name: &str,
        message: &channel::OutboundMessage,
    ) -> Result<channel::DeliveryResult, CallError> {
        let (slot, plugin) = self.slot_of_kind(name, PluginKind::Connector)?;
        self.guarded(&slot, &plugin, "send", async |store: &mut Store<HostState>, guest: &Guest| {
            guest.connector()?.call_send(store, message).await
        })
        .await
    }

    /// Asks connector `name` for new events since `cursor`.
    pub async fn poll(
        &self,
        name: &str,
        cursor: Option<&str>,
    ) -> Result<Result<channel::PollOutcome, String>, CallError> {
        let (slot, plugin) = self.slot_of_kind(name, PluginKind::Connector)?;
        self.guarded(&slot, &plugin, "poll", async |store: &mut Store<HostState>, guest: &Guest| {
            guest.connector()?.call_poll(store, cursor).await
        })
        .await
    }

    /// Calls `describe` on a connector version that is not installed yet.
    pub(crate) async fn call_describe(
        &self,
        plugin: &Arc<Plugin>,
    ) -> Result<channel::ChannelInfo, CallError> {
        self.invoke(plugin, "describe", async |store: &mut Store<HostState>, guest: &Guest| {
            guest.connector()?.call_describe(store).await
        })
        .await
    }

    /// [`Runtime::invoke`] behind the plugin's breaker, with metrics and logs.
    async fn guarded<R: Serialize>(
        &self,
        slot: &Slot,
        plugin: &Arc<Plugin>,
        export: &'static str,
        call: impl AsyncFnOnce(&mut Store<HostState>, &Guest) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let name = &plugin.manifest().name;
        let admit = slot
            .breaker
            .admit()
            .map_err(|t| CallError::Disabled { plugin: name.clone(), reason: t.reason })?;
        // If the caller drops this future mid-call, the admission is given back, so a
        // cancelled trial call cannot leave the breaker waiting for a result forever.
        let mut guard = AdmitGuard { slot, admit: Some(admit) };
        let started = Instant::now();
        let result = self.invoke(plugin, export, call).await;
        let seconds = started.elapsed().as_secs_f64();
        guard.admit = None;
        match &result {
            Ok(_) => {
                slot.breaker.success(admit);
                slot.metrics.record(export, "ok", seconds);
            }
            Err(e) => {
                slot.metrics.record(export, e.kind(), seconds);
                tracing::warn!(plugin = %plugin.id(), export, error = %e, "plugin call failed");
                if !e.is_plugin_fault() {
                    slot.breaker.abandon(admit);
                } else if slot.breaker.failure(admit, &e.to_string()) {
                    slot.metrics.disabled.set(1);
                    slot.metrics.trips.inc();
                    tracing::error!(
                        plugin = %plugin.id(),
                        failures = slot.breaker.consecutive_failures(),
                        error = %e,
                        "breaker open: plugin disabled after repeated failures"
                    );
                }
            }
        }
        result
    }

    /// One call on a ready or new instance: limits, error classification, and the instance
    /// kept for another call or destroyed.
    async fn invoke<R: Serialize>(
        &self,
        plugin: &Arc<Plugin>,
        export: &'static str,
        call: impl AsyncFnOnce(&mut Store<HostState>, &Guest) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let limits = &plugin.manifest().limits;
        let ready = plugin.ready.take();
        self.recycler.refill(plugin);
        let mut spent: Option<instances::Ready> = None;
        let run = async {
            let mut ready = match ready {
                Some(ready) => ready,
                None => instances::instantiate(&self.engine, plugin).await?,
            };
            ready.store.data_mut().begin_call();
            ready.store.set_epoch_deadline(1);
            let result = call(&mut ready.store, &ready.guest).await;
            spent = Some(ready);
            result
        };
        let outcome = tokio::time::timeout(Duration::from_millis(u64::from(limits.timeout_ms)), run).await;
        let name = || plugin.manifest().name.clone();
        let result = match outcome {
            Err(_) => return Err(CallError::Timeout { plugin: name(), export, ms: limits.timeout_ms }),
            Ok(result) => result,
        };
        let stderr = match &spent {
            Some(spent) if result.is_err() => spent.store.data().stderr_text(),
            _ => String::new(),
        };
        if let Some(dropped) = spent.as_ref().map(|s| s.store.data().log_dropped).filter(|d| *d > 0) {
            tracing::warn!(plugin = %plugin.id(), export, dropped, "log lines over limits.log-bytes dropped");
        }
        let result = match result {
            Ok(value) => {
                let bytes = encoded_size(&value);
                let limit = limits.output_kb as usize * 1024;
                if bytes > limit {
                    Err(CallError::OutputTooLarge { plugin: name(), export, bytes, limit })
                } else {
                    Ok(value)
                }
            }
            Err(e) => Err(classify(e, name(), export, limits, stderr)),
        };
        if let Some(spent) = spent {
            // Only an instance whose call succeeded may serve again: a trap can leave it
            // poisoned or half-way through changing its state.
            let spent = if result.is_ok() && spent.store.data().reusable() {
                plugin.ready.keep(spent)
            } else {
                Some(spent)
            };
            if let Some(spent) = spent {
                self.recycler.retire(spent.store);
            }
        }
        result
    }
}

fn classify(
    e: wasmtime::Error,
    plugin: String,
    export: &'static str,
    limits: &crate::manifest::Limits,
    stderr: String,
) -> CallError {
    if e.downcast_ref::<CpuLimitExceeded>().is_some() {
        return CallError::CpuLimit { plugin, export, ms: limits.cpu_ms };
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::MemoryLimit { plugin, export, message: m.to_string() };
    }
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return CallError::Busy { plugin, message: e.to_string() };
    }
    let mut message = format!("{e:#}");
    if !stderr.is_empty() {
        message.push_str(&format!(" (stderr: {stderr})"));
    }
    CallError::Trap { plugin, export, message }
}
