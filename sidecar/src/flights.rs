//! What the sidecar remembers of exchanges of single-use codes with WeChat (code2Session's
//! `js_code`, keyed by plugin, appid and code; a phone code, keyed also by openid): the calls in flight, which later requests with
//! the same code wait for, and for a while the outcomes `T` that spent their code, so a double
//! submit gets the same answer instead of WeChat's "code used". Bounded by count and by the
//! code's lifetime; the oldest is forgotten first, and forgetting is safe: WeChat itself refuses
//! a spent code.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub type Key = [u8; 32];

/// What is known of one code.
pub enum Known<T> {
    /// Its exchange is in flight: wait for this.
    InFlight(watch::Receiver<Option<T>>),
    /// Its exchange spent the code with this outcome.
    Done(T),
}

struct Entry<T> {
    started: Instant,
    known: Known<T>,
}

pub struct Flights<T> {
    entries: HashMap<Key, Entry<T>>,
    /// Keys in the order their exchanges started, to forget the oldest first.
    order: VecDeque<(Instant, Key)>,
    capacity: usize,
    lifetime: Duration,
}

impl<T: Clone> Flights<T> {
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            lifetime,
        }
    }

    /// What is known of a code now (forgetting first what is too old or too many).
    pub fn get(&mut self, key: &Key, now: Instant) -> Option<&Known<T>> {
        self.forget(now);
        self.entries.get(key).map(|e| &e.known)
    }

    /// Records an exchange starting at `now`; returns where to send its outcome.
    pub fn start(&mut self, key: Key, now: Instant) -> watch::Sender<Option<T>> {
        let (tx, rx) = watch::channel(None);
        self.entries.insert(
            key,
            Entry {
                started: now,
                known: Known::InFlight(rx),
            },
        );
        self.order.push_back((now, key));
        self.forget(now);
        tx
    }

    /// Records how the exchange that started at `started` ended: remembered when it spent the
    /// code, forgotten otherwise (a later login tries WeChat again). An exchange already
    /// forgotten stays forgotten.
    pub fn finish(&mut self, key: &Key, started: Instant, outcome: &T, spent: bool) {
        let Some(entry) = self.entries.get_mut(key).filter(|e| e.started == started) else {
            return;
        };
        if spent {
            entry.known = Known::Done(outcome.clone());
        } else {
            self.entries.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn forget(&mut self, now: Instant) {
        while let Some(&(started, key)) = self.order.front() {
            let expired = now.duration_since(started) >= self.lifetime;
            if !expired && self.entries.len() <= self.capacity {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&key).is_some_and(|e| e.started == started) {
                self.entries.remove(&key);
            }
        }
    }
}

/// Runs the exchange of `key` once. A caller that finds it in flight waits for it, one that
/// finds it done gets its outcome; otherwise `start` gives the call (or an answer to return at
/// once, remembered nowhere), which runs in its own task: a client that goes away must not
/// cancel it, or a second caller would spend the single-use code again. `spent` tells which
/// outcomes are remembered for the code's lifetime; `lost` is the answer if the task dies.
pub async fn once<T, F>(
    flights: &Arc<Mutex<Flights<T>>>,
    key: Key,
    start: impl FnOnce() -> Result<F, T>,
    spent: fn(&T) -> bool,
    lost: T,
) -> T
where
    T: Clone + Send + Sync + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut waiting = {
        let mut known = flights.lock().unwrap_or_else(|e| e.into_inner());
        match known.get(&key, Instant::now()) {
            Some(Known::Done(outcome)) => return outcome.clone(),
            Some(Known::InFlight(waiting)) => waiting.clone(),
            None => {
                let call = match start() {
                    Ok(call) => call,
                    Err(answer) => return answer,
                };
                let started = Instant::now();
                let tx = known.start(key, started);
                let waiting = tx.subscribe();
                let flights = Arc::clone(flights);
                tokio::spawn(async move {
                    let outcome = call.await;
                    let spent = spent(&outcome);
                    flights
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .finish(&key, started, &outcome, spent);
                    let _ = tx.send(Some(outcome));
                });
                waiting
            }
        }
    };
    match waiting.wait_for(Option::is_some).await {
        Ok(done) => done.clone().unwrap_or(lost),
        Err(_) => lost,
    }
}

/// The key of a code: its parts, each length-prefixed, hashed.
pub fn key(parts: &[&str]) -> Key {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    type Outcome = Result<u32, ErrorCode>;

    fn key(n: u32) -> Key {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&n.to_be_bytes());
        k
    }

    fn done(flights: &mut Flights<Outcome>, n: u32, now: Instant) {
        let started = now;
        let _tx = flights.start(key(n), now);
        flights.finish(&key(n), started, &Err(ErrorCode::WxCodeUsed), true);
    }

    #[test]
    fn spent_outcomes_are_remembered_and_unspent_ones_forgotten() {
        let now = Instant::now();
        let mut f = Flights::<Outcome>::new(10, Duration::from_secs(300));
        let started = now;
        let _tx = f.start(key(1), now);
        assert!(matches!(f.get(&key(1), now), Some(Known::InFlight(_))));
        f.finish(&key(1), started, &Err(ErrorCode::WxCodeInvalid), true);
        assert!(matches!(
            f.get(&key(1), now),
            Some(Known::Done(Err(ErrorCode::WxCodeInvalid)))
        ));
        let started = now;
        let _tx = f.start(key(2), now);
        f.finish(&key(2), started, &Err(ErrorCode::WxUnavailable), false);
        assert!(f.get(&key(2), now).is_none());
    }

    #[test]
    fn the_oldest_is_forgotten_first_and_nothing_outlives_the_code() {
        let t0 = Instant::now();
        let mut f = Flights::<Outcome>::new(100, Duration::from_secs(300));
        for n in 0..1000 {
            done(&mut f, n, t0 + Duration::from_millis(u64::from(n)));
        }
        assert_eq!(f.len(), 100, "bounded, and never refusing a new code");
        let now = t0 + Duration::from_secs(1);
        assert!(f.get(&key(899), now).is_none());
        assert!(f.get(&key(900), now).is_some());
        assert!(f.get(&key(999), t0 + Duration::from_secs(301)).is_none());
        assert!(f.is_empty(), "all past the code's lifetime");
    }

    #[test]
    fn an_exchange_forgotten_while_in_flight_is_not_brought_back() {
        let now = Instant::now();
        let mut f = Flights::<Outcome>::new(1, Duration::from_secs(300));
        let started = now;
        let _tx = f.start(key(1), now);
        done(&mut f, 2, now);
        assert!(f.get(&key(1), now).is_none());
        f.finish(&key(1), started, &Err(ErrorCode::WxCodeUsed), true);
        assert!(f.get(&key(1), now).is_none());
        assert_eq!(f.len(), 1);
    }
}
