//! Where time comes from: the one clock port. Deployed it is the system clock; a test or a
//! simulation moves a [`ManualClock`] and everything that asks (the tick, the consumers,
//! the gate, the local queue's delays and visibility) sees the same time.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::oneshot;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Waits until `t` on this clock.
    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let wait = (t - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// The system clock moved by a fixed offset: it runs at the system's pace, `offset` ahead
/// (or behind). A test that must send on a running clock uses it to stand inside a sending
/// window whatever the hour it runs at; everything given the same clock agrees on the time.
#[derive(Clone, Copy, Debug)]
pub struct OffsetClock(pub chrono::Duration);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let wait = (t - self.now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

struct State {
    now: DateTime<Utc>,
    /// `None`: a sleeper moves the clock to its wake time itself (one task at a time).
    /// `Some`: a driver moves it, waking sleepers as it passes their times.
    sleepers: Option<Vec<Sleeper>>,
}

struct Sleeper {
    wake: DateTime<Utc>,
    /// The tokio task waiting (several futures of one task may wait at once).
    task: Option<tokio::task::Id>,
    tx: oneshot::Sender<()>,
}

/// A clock that moves only when told. Made with [`ManualClock::at`], a sleep moves it to the
/// wake time at once (a test that runs one thing at a time); made with
/// [`ManualClock::driven`], sleepers wait for a driver to pass their time (a simulation of
/// many concurrent workers, which asks [`ManualClock::sleeping`] and [`ManualClock::next_wake`]).
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<State>>);

impl ManualClock {
    pub fn at(t: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(State { now: t, sleepers: None })))
    }

    pub fn driven(t: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(State { now: t, sleepers: Some(Vec::new()) })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, t: DateTime<Utc>) {
        let mut s = self.state();
        s.now = t;
        if let Some(sleepers) = &mut s.sleepers {
            let (due, later): (Vec<_>, Vec<_>) = sleepers.drain(..).partition(|s| s.wake <= t);
            *sleepers = later;
            for s in due {
                let _ = s.tx.send(());
            }
        }
    }

    pub fn advance(&self, d: chrono::Duration) {
        let t = self.now() + d;
        self.set(t);
    }

    /// How many tasks wait on this clock (a task counts once however many of its futures wait).
    pub fn sleeping(&self) -> usize {
        let mut s = self.state();
        match &mut s.sleepers {
            Some(v) => {
                v.retain(|s| !s.tx.is_closed());
                let mut tasks: Vec<Option<tokio::task::Id>> = v.iter().map(|s| s.task).collect();
                tasks.sort_by_key(|t| t.map(|id| id.to_string()));
                tasks.dedup();
                tasks.len()
            }
            None => 0,
        }
    }

    /// The earliest time a sleeper waits for.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.state().sleepers.as_ref()?.iter().filter(|s| !s.tx.is_closed()).map(|s| s.wake).min()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state().now
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut s = self.state();
        if t <= s.now {
            return Box::pin(async {});
        }
        match &mut s.sleepers {
            None => {
                s.now = t;
                Box::pin(async {})
            }
            Some(sleepers) => {
                let (tx, rx) = oneshot::channel();
                sleepers.push(Sleeper { wake: t, task: tokio::task::try_id(), tx });
                Box::pin(async move {
                    let _ = rx.await;
                })
            }
        }
    }
}
