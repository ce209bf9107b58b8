//! A circuit breaker per plugin: after `threshold` consecutive failed calls (trap, timeout,
//! limit) the plugin is disabled; after `cooldown` one trial call is let through, and its
//! success closes the breaker again. An admin can also reset it. Typed errors a plugin
//! returns (a webhook with a bad signature) are not failures: otherwise anyone could switch
//! a channel off by sending bad requests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Breaker settings.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive failures that disable a plugin.
    pub threshold: u32,
    /// How long a disabled plugin waits before a trial call.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { threshold: 5, cooldown: Duration::from_secs(30) }
    }
}

/// Why a breaker is open.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tripped {
    /// The last failure.
    pub reason: String,
    /// When it tripped.
    #[serde(with = "unix_ms")]
    pub since: SystemTime,
    #[serde(skip)]
    opened_at: Instant,
}

mod unix_ms {
    pub fn serialize<S: serde::Serializer>(t: &std::time::SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        s.serialize_u64(ms)
    }
}

/// One plugin's breaker.
pub struct Breaker {
    config: BreakerConfig,
    failures: AtomicU32,
    /// Fast-path flag mirroring `tripped.is_some()`.
    open: AtomicBool,
    trial_running: AtomicBool,
    tripped: Mutex<Option<Tripped>>,
}

/// What the breaker says about a call about to start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admit {
    /// Go ahead.
    Closed,
    /// Go ahead as the one trial call after the cooldown.
    Trial,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            failures: AtomicU32::new(0),
            open: AtomicBool::new(false),
            trial_running: AtomicBool::new(false),
            tripped: Mutex::new(None),
        }
    }

    /// Whether a call may run; `Err` carries why the plugin is disabled.
    pub fn admit(&self) -> Result<Admit, Tripped> {
        if !self.open.load(Ordering::Acquire) {
            return Ok(Admit::Closed);
        }
        let tripped = self.tripped.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = tripped.as_ref() else { return Ok(Admit::Closed) };
        let cooled = t.opened_at.elapsed() >= self.config.cooldown;
        if cooled && !self.trial_running.swap(true, Ordering::AcqRel) {
            return Ok(Admit::Trial);
        }
        Err(t.clone())
    }

    /// Records a successful call.
    pub fn success(&self, admit: Admit) {
        self.failures.store(0, Ordering::Release);
        if admit == Admit::Trial || self.open.load(Ordering::Acquire) {
            self.reset();
        }
    }

    /// Records a failed call; returns true if this failure tripped the breaker.
    pub fn failure(&self, admit: Admit, reason: &str) -> bool {
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if admit == Admit::Trial || (n >= self.config.threshold && !self.open.load(Ordering::Acquire)) {
            let mut tripped = self.tripped.lock().unwrap_or_else(|p| p.into_inner());
            *tripped = Some(Tripped {
                reason: reason.to_owned(),
                since: SystemTime::now(),
                opened_at: Instant::now(),
            });
            self.open.store(true, Ordering::Release);
            self.trial_running.store(false, Ordering::Release);
            return true;
        }
        false
    }

    /// Records a call that ended for a reason that is not the plugin's (pool exhausted, or
    /// the caller gave up and dropped it): it neither counts nor uses up the trial.
    pub fn abandon(&self, admit: Admit) {
        if admit == Admit::Trial {
            self.trial_running.store(false, Ordering::Release);
        }
    }

    /// Closes the breaker (admin reset, or a new version swapped in).
    pub fn reset(&self) {
        let mut tripped = self.tripped.lock().unwrap_or_else(|p| p.into_inner());
        *tripped = None;
        self.failures.store(0, Ordering::Release);
        self.open.store(false, Ordering::Release);
        self.trial_running.store(false, Ordering::Release);
    }

    /// Why the plugin is disabled, if it is.
    pub fn state(&self) -> Option<Tripped> {
        self.tripped.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Consecutive failures so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_after_threshold_and_recovers_after_a_good_trial() {
        let b = Breaker::new(BreakerConfig { threshold: 3, cooldown: Duration::from_millis(20) });
        for i in 0..2 {
            assert!(!b.failure(b.admit().unwrap(), &format!("trap {i}")));
        }
        assert!(b.failure(b.admit().unwrap(), "trap 2"));
        assert_eq!(b.admit().unwrap_err().reason, "trap 2");
        std::thread::sleep(Duration::from_millis(25));
        let trial = b.admit().unwrap();
        assert_eq!(trial, Admit::Trial);
        assert!(b.admit().is_err(), "only one trial at a time");
        b.success(trial);
        assert_eq!(b.admit().unwrap(), Admit::Closed);
        assert!(b.state().is_none());
    }

    #[test]
    fn failed_trial_reopens_and_success_resets_the_count() {
        let b = Breaker::new(BreakerConfig { threshold: 2, cooldown: Duration::ZERO });
        b.failure(Admit::Closed, "x");
        b.success(Admit::Closed);
        assert!(!b.failure(Admit::Closed, "y"), "count restarted after a success");
        assert!(b.failure(Admit::Closed, "z"));
        let trial = b.admit().unwrap();
        assert!(b.failure(trial, "still broken"));
        assert_eq!(b.state().unwrap().reason, "still broken");
    }
}
