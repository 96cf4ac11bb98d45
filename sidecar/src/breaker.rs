//! A circuit breaker in front of WeChat (`reference/threats.md` 13): after a run of calls WeChat
//! did not answer, logins are refused at once for a cool-down instead of each waiting out the
//! timeout; then one call probes, and WeChat answering it closes the breaker again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failures that open the breaker, and how long it then stays open.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// 0: never open.
    pub failures: u32,
    pub cooldown: Duration,
}

pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    /// Cooled down, and one call is out probing.
    probing: bool,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether a call may go now. Once the cool-down is over, the first call admitted is the
    /// probe and the others wait for its outcome (refused until then). Every admitted call
    /// must be [`Breaker::record`]ed.
    pub fn admit(&self) -> bool {
        if self.config.failures == 0 {
            return true;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.open_until {
            None => true,
            Some(until) if Instant::now() < until || s.probing => false,
            Some(_) => {
                s.probing = true;
                true
            }
        }
    }

    /// Records how an admitted call ended: `answered` when WeChat gave a usable answer.
    pub fn record(&self, answered: bool) {
        if self.config.failures == 0 {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if answered {
            if s.open_until.is_some() {
                tracing::info!("WeChat answers again: circuit breaker closed");
            }
            *s = State::default();
            return;
        }
        s.failures = s.failures.saturating_add(1);
        if s.probing || s.failures >= self.config.failures {
            s.open_until = Some(Instant::now() + self.config.cooldown);
            s.probing = false;
            tracing::warn!(
                failures = s.failures,
                cooldown_ms = self.config.cooldown.as_millis() as u64,
                "WeChat is not answering: circuit breaker open, logins refused until the cool-down ends"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, cooldown_ms: u64) -> Breaker {
        Breaker::new(BreakerConfig {
            failures,
            cooldown: Duration::from_millis(cooldown_ms),
        })
    }

    #[test]
    fn opens_after_a_run_of_failures_and_an_answer_resets_the_run() {
        let b = breaker(3, 60_000);
        for _ in 0..2 {
            assert!(b.admit());
            b.record(false);
        }
        assert!(b.admit());
        b.record(true);
        for _ in 0..2 {
            assert!(b.admit());
            b.record(false);
        }
        assert!(b.admit(), "the run started again after the answer");
        b.record(false);
        assert!(!b.admit(), "three in a row: open");
    }

    #[test]
    fn after_the_cool_down_one_probe_decides() {
        let b = breaker(1, 20);
        assert!(b.admit());
        b.record(false);
        assert!(!b.admit());
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.admit(), "the probe");
        assert!(!b.admit(), "only one probe at a time");
        b.record(false);
        assert!(!b.admit(), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.admit());
        b.record(true);
        assert!(b.admit() && b.admit(), "an answered probe closes it");
    }

    #[test]
    fn zero_failures_means_never_open() {
        let b = breaker(0, 60_000);
        for _ in 0..100 {
            assert!(b.admit());
            b.record(false);
        }
        assert!(b.admit());
    }
}
