//! Simulated traffic: every tick, each key's pattern yields a number of requests that go through
//! the same quota logic as [`State::consume`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::model::now_unix;
use super::state::{Pattern, State, consume_entry, pick_api};

/// Real time between ticks.
pub const TICK: Duration = Duration::from_millis(250);

impl State {
    /// Advances simulated traffic by `dt` simulated seconds at wall-clock `now`.
    pub fn tick(&mut self, dt: f64, now: i64) {
        if dt <= 0.0 || !dt.is_finite() {
            return;
        }
        let State {
            keys,
            order,
            orgs,
            rng,
            ..
        } = self;
        for id in order.iter() {
            let Some(entry) = keys.get_mut(id) else {
                continue;
            };
            let t = &mut entry.traffic;
            let n = match t.pattern {
                Pattern::Idle => continue,
                Pattern::Steady { rate } => {
                    t.acc += rate * dt * rng.range(0.7, 1.3);
                    take_whole(&mut t.acc)
                }
                Pattern::Bursty { base, burst, per_s } => {
                    let mut rate = base;
                    if t.burst_left > 0.0 {
                        rate += burst;
                        t.burst_left -= dt;
                    } else if rng.chance((per_s * dt).min(1.0)) {
                        t.burst_left = rng.range(5.0, 30.0);
                    }
                    t.acc += rate * dt * rng.range(0.5, 1.5);
                    take_whole(&mut t.acc)
                }
                Pattern::Waking { period, .. } => {
                    t.next_wake -= dt;
                    let mut n = 0;
                    while t.next_wake <= 0.0 {
                        n += 1;
                        t.next_wake += period.max(1.0);
                    }
                    n
                }
            };
            if n == 0 {
                continue;
            }
            let api = pick_api(&entry.session, rng);
            consume_entry(entry, orgs, api.as_deref(), n, now);
        }
    }
}

fn take_whole(acc: &mut f64) -> i64 {
    let whole = acc.floor();
    *acc -= whole;
    whole as i64
}

/// The simulator task: ticks every [`TICK`] until `stop` changes or its sender is dropped.
pub async fn run(state: Arc<Mutex<State>>, speed: f64, mut stop: watch::Receiver<bool>) {
    let dt = TICK.as_secs_f64() * speed;
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let now = now_unix();
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                st.tick(dt, now);
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}
