//! A token bucket per channel: a provider's rate limit, kept by waiting before a send
//! rather than by being refused.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows `rate` sends per second on average, in bursts of up to `rate` (at least 1).
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    /// Tokens left (negative: sends reserved ahead) and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A full bucket for `rate` sends per second.
    pub fn new(rate: f64) -> Self {
        let burst = rate.max(1.0);
        RateLimiter { rate, burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Reserves one send: how long to wait before making it. Reservations queue up, so
    /// concurrent senders are spaced out instead of racing for the next token.
    pub fn reserve(&self) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = *state;
        let refilled = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        let left = refilled - 1.0;
        *state = (left, now);
        if left >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-left / self.rate) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_sends_are_spaced_at_the_rate() {
        let limiter = RateLimiter::new(10.0);
        let waits: Vec<Duration> = (0..13).map(|_| limiter.reserve()).collect();
        assert!(waits[..10].iter().all(|w| w.is_zero()), "the first 10 pass: {waits:?}");
        // The 11th waits ~0.1 s, the 12th ~0.2 s, the 13th ~0.3 s.
        for (i, wait) in waits[10..].iter().enumerate() {
            let expected = 0.1 * (i + 1) as f64;
            assert!((wait.as_secs_f64() - expected).abs() < 0.02, "send {}: waited {wait:?}", i + 11);
        }
    }

    #[test]
    fn a_slow_rate_still_allows_one_send() {
        let limiter = RateLimiter::new(0.5);
        assert!(limiter.reserve().is_zero());
        let wait = limiter.reserve();
        assert!((wait.as_secs_f64() - 2.0).abs() < 0.05, "{wait:?}");
    }
}
