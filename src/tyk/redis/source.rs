//! Placeholder while the Redis source is written.
use crate::clock::Clock;
use crate::quota::poller::SweepOutcome;

pub struct RedisSource {}
impl RedisSource {
    pub fn new(
        _s: super::RedisSettings,
        _g: Option<crate::tyk::gateway::Gateway>,
        _h: Option<bool>,
    ) -> Self {
        RedisSource {}
    }
}

impl RedisSource {
    pub async fn sweep(&mut self, _clock: &dyn Clock) -> SweepOutcome {
        SweepOutcome::default()
    }
    pub async fn poll_key(&mut self, _key: &str, _clock: &dyn Clock) -> SweepOutcome {
        SweepOutcome::default()
    }
    pub async fn changed(&mut self) -> Vec<String> {
        std::future::pending().await
    }
    pub async fn poll_suffixes(&mut self, _s: Vec<String>, _clock: &dyn Clock) -> SweepOutcome {
        SweepOutcome::default()
    }
}
