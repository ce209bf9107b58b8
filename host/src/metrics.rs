//! Prometheus metrics, served at `/metrics`.
//!
//! Per-plugin handles are created once per plugin ([`PluginMetrics`]) so the call path only
//! touches atomics, never the label maps.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// Labels of per-plugin call metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// Plugin name.
    pub plugin: String,
    /// Export called (`route`, `handle-webhook`...).
    pub export: String,
    /// `ok` or the error kind (`trap`, `timeout`, `cpu-limit`...).
    pub outcome: String,
}

/// Labels of per-plugin metrics without an export.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// Plugin name.
    pub plugin: String,
}

/// Labels of per-plugin latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExportLabels {
    /// Plugin name.
    pub plugin: String,
    /// Export called.
    pub export: String,
}

/// Labels of webhook outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// Channel id.
    pub channel: String,
    /// `accepted`, `duplicate`, `plugin-failed` or the refusal code.
    pub outcome: String,
}

/// All metrics of a host.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    calls: Family<CallLabels, Counter>,
    latency: Family<ExportLabels, Histogram>,
    disabled: Family<PluginLabels, Gauge>,
    breaker_trips: Family<PluginLabels, Counter>,
    loads: Family<PluginLabels, Counter>,
    webhooks: Family<WebhookLabels, Counter>,
    sends: Family<WebhookLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 2 us .. ~4 s
    Histogram::new(exponential_buckets(2e-6, 4.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("seam");
        let calls = Family::<CallLabels, Counter>::default();
        let latency =
            Family::<ExportLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let disabled = Family::<PluginLabels, Gauge>::default();
        let breaker_trips = Family::<PluginLabels, Counter>::default();
        let loads = Family::<PluginLabels, Counter>::default();
        let webhooks = Family::<WebhookLabels, Counter>::default();
        let sends = Family::<WebhookLabels, Counter>::default();
        registry.register("webhooks", "Channel webhooks by outcome", webhooks.clone());
        registry.register(
            "outbound_attempts",
            "Outbound send attempts by channel and result (accepted, rejected, retry-later, error)",
            sends.clone(),
        );
        registry.register("plugin_calls", "Plugin calls by export and outcome", calls.clone());
        registry.register(
            "plugin_call_seconds",
            "Plugin call latency, including instantiation",
            latency.clone(),
        );
        registry.register("plugin_disabled", "1 while a plugin's breaker is open", disabled.clone());
        registry.register("plugin_breaker_trips", "Times a plugin's breaker opened", breaker_trips.clone());
        registry.register("plugin_loads", "Plugin versions loaded (start, load, swap)", loads.clone());
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            calls,
            latency,
            disabled,
            breaker_trips,
            loads,
            webhooks,
            sends,
        }
    }
}

impl Metrics {
    /// Handles for one plugin.
    pub fn plugin(&self, name: &str) -> PluginMetrics {
        let plugin = PluginLabels { plugin: name.to_owned() };
        PluginMetrics {
            name: name.to_owned(),
            metrics: self.clone(),
            disabled: self.disabled.get_or_create(&plugin).clone(),
            trips: self.breaker_trips.get_or_create(&plugin).clone(),
            loads: self.loads.get_or_create(&plugin).clone(),
            ok: Default::default(),
        }
    }

    /// Counts one webhook on `channel` with `outcome`.
    pub fn webhook(&self, channel: &str, outcome: &str) {
        self.webhooks
            .get_or_create(&WebhookLabels { channel: channel.into(), outcome: outcome.into() })
            .inc();
    }

    /// Counts one outbound send attempt on `channel` with `result`.
    pub fn send_attempt(&self, channel: &str, result: &str) {
        self.sends.get_or_create(&WebhookLabels { channel: channel.into(), outcome: result.into() }).inc();
    }

    /// Registers further metrics (the API's own) on the same registry.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.registry.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The Prometheus text exposition of everything.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Metric handles of one plugin.
pub struct PluginMetrics {
    name: String,
    metrics: Metrics,
    /// 1 while disabled.
    pub disabled: Gauge,
    /// Breaker trips.
    pub trips: Counter,
    /// Versions loaded.
    pub loads: Counter,
    /// Cached (ok counter, latency) per export, the hot path.
    ok: Mutex<Vec<(&'static str, Counter, Histogram)>>,
}

impl PluginMetrics {
    /// Records one call of `export`.
    pub fn record(&self, export: &'static str, outcome: &str, seconds: f64) {
        let mut ok = self.ok.lock().unwrap_or_else(|p| p.into_inner());
        let idx = match ok.iter().position(|(e, _, _)| *e == export) {
            Some(i) => i,
            None => {
                let labels = ExportLabels { plugin: self.name.clone(), export: export.to_owned() };
                let counter = self.metrics.calls.get_or_create(&self.call_labels(export, "ok")).clone();
                let histogram = self.metrics.latency.get_or_create(&labels).clone();
                ok.push((export, counter, histogram));
                ok.len() - 1
            }
        };
        let (_, counter, histogram) = &ok[idx];
        histogram.observe(seconds);
        if outcome == "ok" {
            counter.inc();
        } else {
            drop(ok);
            self.metrics.calls.get_or_create(&self.call_labels(export, outcome)).inc();
        }
    }

    fn call_labels(&self, export: &str, outcome: &str) -> CallLabels {
        CallLabels { plugin: self.name.clone(), export: export.to_owned(), outcome: outcome.to_owned() }
    }
}
