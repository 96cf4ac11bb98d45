//! Deadlines kept per connection and moved for each request: the client's header read timeout
//! and the app's response timeout. A timer made per request costs a lock and an insertion into
//! tokio's timer wheel, and its removal when the request beats it; moving a pending timer later
//! costs an atomic store (tokio files it again only when the old time comes first).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// One connection's timer, set again for each request.
pub struct Deadline(Pin<Box<Sleep>>);

impl Default for Deadline {
    fn default() -> Self {
        // Set before each use; until then, far away.
        let unset = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        Self(Box::pin(tokio::time::sleep_until(unset.into())))
    }
}

impl Deadline {
    /// Expires at `at` (instead of any earlier time).
    pub fn set(&mut self, at: Instant) {
        self.0.as_mut().reset(at.into());
    }

    /// Resolves when the time set has come.
    pub fn expired(&mut self) -> Pin<&mut Sleep> {
        self.0.as_mut()
    }
}

/// hyper's timer for one client connection: hyper asks for a fresh timer each time it starts to
/// read a request head (the slowloris bound, which also closes an idle kept-alive connection);
/// each is the connection's one [`Deadline`], set to the new time. hyper holds one such timer at
/// a time; a later one moves the deadline of any earlier.
#[derive(Clone, Default)]
pub struct ConnTimer(Arc<Mutex<Deadline>>);

impl hyper::rt::Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        if let Ok(mut d) = self.0.lock() {
            d.set(deadline);
        }
        Box::pin(HeadWait(Arc::clone(&self.0)))
    }
}

/// What hyper polls while a request head is awaited.
struct HeadWait(Arc<Mutex<Deadline>>);

impl Future for HeadWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.0.lock() {
            Ok(mut d) => d.expired().poll(cx),
            // Poisoned only by a panic holding it, which never happens: the head wait ends.
            Err(_) => Poll::Ready(()),
        }
    }
}

impl hyper::rt::Sleep for HeadWait {}
