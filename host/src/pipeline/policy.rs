//! Deciding policy swaps and rollbacks. A swap is an input like any other: inputs before it
//! in the log are routed by the old policy, inputs after it by the new one, so no
//! conversation is routed twice or skipped, however much traffic is in flight.

use super::commands::{RollbackPolicy, SetPolicy};
use super::decide::{Context, Decider};
use super::effects::Effect;
use crate::manifest::PluginKind;
use crate::views::ViewError;
use crate::views::policy::{PolicyRecord, PolicySource, Stage};

/// A stage that follows router `name` as loaded (the config's chain).
fn config_stage(ctx: &Context, name: &str) -> Stage {
    let plugin = ctx.runtime.as_ref().and_then(|r| r.slot(name)).map(|s| s.current());
    Stage {
        slot: name.to_owned(),
        plugin: name.to_owned(),
        version: plugin.as_ref().map(|p| p.manifest().version.clone()).unwrap_or_default(),
        hash: plugin.map(|p| p.hash.clone()).unwrap_or_default(),
    }
}

/// Why `stages` cannot route, if they cannot: each must be a router loaded in its slot.
pub(super) fn check_stages(ctx: &Context, stages: &[Stage]) -> Option<String> {
    let runtime = ctx.runtime.as_ref()?;
    stages.iter().find_map(|stage| match runtime.slot(&stage.slot).map(|s| s.current().manifest().kind) {
        Some(PluginKind::Router) => None,
        Some(kind) => Some(format!("`{}` is a {kind}, not a router", stage.plugin)),
        None => Some(format!("router `{}` is not loaded", stage.slot)),
    })
}

impl Decider<'_> {
    /// The routers to call, in order: the active policy's, or the config's chain before any
    /// policy was activated.
    pub(super) fn chain(&mut self, ctx: &Context) -> Result<Vec<String>, ViewError> {
        Ok(match self.unit.policy()? {
            Some(policy) => crate::views::policy::slots(&policy.stages),
            None => ctx.chain.clone(),
        })
    }

    /// Activates `command`'s routers as a new policy version.
    pub(super) fn set_policy(
        &mut self,
        ctx: &Context,
        command: &SetPolicy,
        offset: u64,
    ) -> Result<Option<String>, ViewError> {
        if let Some(refusal) = check_stages(ctx, &command.stages) {
            return self.reject(refusal);
        }
        self.activate(command.stages.clone(), command.source, None, &command.by, &command.note, offset)
    }

    /// Activates the routers of the version before the active one (the config's chain,
    /// before version 1), as a new version.
    pub(super) fn rollback_policy(
        &mut self,
        ctx: &Context,
        command: &RollbackPolicy,
        offset: u64,
    ) -> Result<Option<String>, ViewError> {
        let Some(active) = self.unit.policy()?.cloned() else {
            return self.reject(
                "no routing policy was set through the API: the config's chain is active, there is nothing to roll back to",
            );
        };
        let Some(previous) = active.previous else {
            // Before version 1 the config's chain routed: go back to it, following the names.
            let stages = ctx.chain.iter().map(|name| config_stage(ctx, name)).collect();
            return self.activate(stages, PolicySource::Config, None, &command.by, &command.note, offset);
        };
        let Some(target) = self.unit.views_policy(previous)? else {
            return self.reject(format!("policy version {previous} is missing"));
        };
        self.activate(target.stages, target.source, Some(previous), &command.by, &command.note, offset)
    }

    fn activate(
        &mut self,
        stages: Vec<Stage>,
        source: PolicySource,
        restores: Option<u32>,
        by: &str,
        note: &str,
        offset: u64,
    ) -> Result<Option<String>, ViewError> {
        let previous = self.unit.policy()?.map(|p| p.version);
        let policy = PolicyRecord {
            version: previous.map_or(1, |v| v + 1),
            stages,
            source,
            previous,
            restores,
            by: by.to_owned(),
            note: note.to_owned(),
            activated_at: self.at,
            offset,
        };
        self.emit(Effect::PolicyActivated { policy })?;
        Ok(None)
    }
}
