//! A per-tool sliding-window rate limiter (docs/mcp.md#rate-limits: `CFA_MCP_RATE_LIMIT`
//! calls per 60 s per tool) over an injectable monotonic clock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A monotonic clock.
pub trait Monotonic: Send {
    /// Time elapsed since an arbitrary fixed origin.
    fn now(&self) -> Duration;
}

/// The process's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemMonotonic {
    origin: Instant,
}

impl Default for SystemMonotonic {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Monotonic for SystemMonotonic {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// At most `limit` calls per tool in any window of `window`.
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    clock: Box<dyn Monotonic>,
    calls: HashMap<String, VecDeque<Duration>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limit", &self.limit)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// The default window (60 s).
    pub const WINDOW: Duration = Duration::from_secs(60);
    /// The default limit (60 calls per window).
    pub const DEFAULT_LIMIT: usize = 60;

    /// A limiter with `limit` calls per `window` per tool.
    pub fn new(limit: usize, window: Duration, clock: Box<dyn Monotonic>) -> Self {
        Self {
            limit,
            window,
            clock,
            calls: HashMap::new(),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records a call of `tool` and says whether it is allowed (a refused call is not
    /// counted).
    pub fn allow(&mut self, tool: &str) -> bool {
        let now = self.clock.now();
        let window = self.window;
        let calls = self.calls.entry(tool.to_owned()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= window)
        {
            calls.pop_front();
        }
        if calls.len() >= self.limit {
            return false;
        }
        calls.push_back(now);
        true
    }
}

/// Reads `CFA_MCP_RATE_LIMIT` (a positive integer); the default otherwise.
pub fn limit_from_env(value: Option<&str>) -> Result<usize, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(RateLimiter::DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "CFA_MCP_RATE_LIMIT must be a positive integer, got {v:?}"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Clone, Default)]
    struct Manual(Arc<AtomicU64>);
    impl Monotonic for Manual {
        fn now(&self) -> Duration {
            Duration::from_secs(self.0.load(Ordering::SeqCst))
        }
    }
    impl Manual {
        fn set(&self, secs: u64) {
            self.0.store(secs, Ordering::SeqCst);
        }
    }

    #[test]
    fn sliding_window_per_tool() {
        let clock = Manual::default();
        let mut rl = RateLimiter::new(2, Duration::from_secs(60), Box::new(clock.clone()));
        assert!(rl.allow("a"));
        clock.set(10);
        assert!(rl.allow("a"));
        assert!(!rl.allow("a"), "third call inside the window");
        assert!(rl.allow("b"), "other tools have their own window");
        clock.set(59);
        assert!(!rl.allow("a"));
        clock.set(60);
        assert!(rl.allow("a"), "the call at t=0 left the window");
        assert!(!rl.allow("a"), "the call at t=10 is still inside");
        clock.set(70);
        assert!(rl.allow("a"));
    }

    #[test]
    fn refused_calls_do_not_extend_the_window() {
        let clock = Manual::default();
        let mut rl = RateLimiter::new(1, Duration::from_secs(60), Box::new(clock.clone()));
        assert!(rl.allow("a"));
        for s in 1..60 {
            clock.set(s);
            assert!(!rl.allow("a"));
        }
        clock.set(60);
        assert!(rl.allow("a"));
    }

    #[test]
    fn env_parsing() {
        assert_eq!(limit_from_env(None), Ok(60));
        assert_eq!(limit_from_env(Some("5")), Ok(5));
        assert!(limit_from_env(Some("0")).is_err());
        assert!(limit_from_env(Some("x")).is_err());
    }
}
