//! `seam:plugin/log`: plugin log lines become tracing events tagged with the plugin, under
//! the target `seam::plugin`, within a per-call byte budget.

use crate::runtime::bindings::seam::plugin::log::{Host, Level};
use crate::runtime::state::HostState;

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        if !self.env.manifest.capabilities.log {
            return;
        }
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        if len > self.log_budget {
            self.log_dropped += 1;
            return;
        }
        self.log_budget -= len;
        let plugin = self.env.manifest.name.as_str();
        let version = self.env.manifest.version.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "seam::plugin", plugin, version, "{message}"),
            Level::Debug => tracing::debug!(target: "seam::plugin", plugin, version, "{message}"),
            Level::Info => tracing::info!(target: "seam::plugin", plugin, version, "{message}"),
            Level::Warn => tracing::warn!(target: "seam::plugin", plugin, version, "{message}"),
            Level::Error => tracing::error!(target: "seam::plugin", plugin, version, "{message}"),
        }
    }
}
