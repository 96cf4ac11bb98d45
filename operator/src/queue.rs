//! A work queue keyed by Service: every trigger names the Service to reconcile, requests for the
//! same Service are merged while it waits, one Service is never reconciled twice at once, at
//! most `concurrency` run together, and each reconcile says when to run it again.
//!
//! kube-runtime's `Controller` keys work by an object of one kind it watches; the operator's
//! work is per bound Service, which may not exist yet (its bindings still need a status), so
//! the queue is built from kube-runtime's scheduler directly.

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt, stream};
use kube::runtime::scheduler::{ScheduleRequest, scheduler};
use tokio::time::Instant;

/// Runs `work` for every key `triggers` yields, once `ready` resolved (the stores `work` reads
/// are filled: keys wait until then), until `stop` resolves (reconciles in flight finish first)
/// or `triggers` ends. `work` returns the delay until the key's next run.
pub async fn run<K, W, F>(
    triggers: impl Stream<Item = K> + Send + 'static,
    ready: impl Future<Output = ()> + Send + 'static,
    concurrency: usize,
    stop: impl Future<Output = ()> + Send + 'static,
    work: W,
) where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    W: Fn(K) -> F,
    F: Future<Output = Duration>,
{
    let (requeue, requeued) = tokio::sync::mpsc::unbounded_channel();
    let now = triggers.map(|key| ScheduleRequest {
        message: key,
        run_at: Instant::now(),
    });
    let is_ready = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&is_ready);
    // Yields nothing; wakes the queue when `ready` resolves, so waiting keys are taken.
    let readiness = stream::once(async move {
        ready.await;
        flag.store(true, Ordering::Release);
    })
    .filter_map(|()| async { None });
    let requests = stream::select(
        stream::select(now, readiness),
        stream::unfold(requeued, |mut rx| async move {
            rx.recv().await.map(|r| (r, rx))
        }),
    );
    // Keys being reconciled; their new requests wait in the scheduler (merged) until they finish.
    let running: Arc<Mutex<HashSet<K>>> = Arc::default();
    let mut scheduled = Box::pin(scheduler(requests));
    let busy = Arc::clone(&running);
    let ready = stream::poll_fn(move |cx| {
        let busy = lock(&busy);
        scheduled
            .as_mut()
            .hold_unless(|key| is_ready.load(Ordering::Acquire) && !busy.contains(key))
            .poll_next_unpin(cx)
    })
    .take_until(stop);
    ready
        .for_each_concurrent(concurrency.max(1), |key| {
            let (running, requeue) = (Arc::clone(&running), requeue.clone());
            lock(&running).insert(key.clone());
            let done = work(key.clone());
            async move {
                let again = done.await;
                lock(&running).remove(&key);
                let _ = requeue.send(ScheduleRequest {
                    message: key,
                    run_at: Instant::now() + again,
                });
            }
        })
        .await;
}

/// A poisoned set is still a set.
fn lock<K>(set: &Mutex<HashSet<K>>) -> std::sync::MutexGuard<'_, HashSet<K>> {
    set.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Keys reconciled in order, and the most reconciles seen running at once.
    #[derive(Default)]
    struct Log {
        order: Mutex<Vec<&'static str>>,
        now: AtomicUsize,
        most: AtomicUsize,
    }

    async fn work(log: &Log, key: &'static str, again: Duration) -> Duration {
        let n = log.now.fetch_add(1, Ordering::SeqCst) + 1;
        log.most.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        log.order.lock().unwrap().push(key);
        log.now.fetch_sub(1, Ordering::SeqCst);
        again
    }

    #[tokio::test(start_paused = true)]
    async fn requests_for_one_key_merge_and_never_run_together() {
        let log = Arc::new(Log::default());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let triggers = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|k| (k, rx)) });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let l = Arc::clone(&log);
        let queue = tokio::spawn(async move {
            run(
                triggers,
                async {},
                4,
                async move {
                    let _ = stop_rx.await;
                },
                move |key| {
                    let l = Arc::clone(&l);
                    async move { work(&l, key, Duration::from_secs(3600)).await }
                },
            )
            .await
        });
        // Five triggers of `a` while it waits or runs: one run now, one more after it (not
        // alongside it), while `b` runs beside them.
        for _ in 0..3 {
            tx.send("a").unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send("a").unwrap();
        tx.send("a").unwrap();
        tx.send("b").unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(*log.order.lock().unwrap(), ["a", "b", "a"]);
        assert_eq!(
            log.most.load(Ordering::SeqCst),
            2,
            "a and b together, never a twice"
        );
        stop_tx.send(()).unwrap();
        queue.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn keys_wait_for_ready_run_again_after_the_delay_they_asked_for_and_concurrency_is_bounded()
     {
        let log = Arc::new(Log::default());
        let keys = ["a", "b", "c", "d"];
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let l = Arc::clone(&log);
        let queue = tokio::spawn(async move {
            run(
                stream::iter(keys).chain(stream::pending()),
                tokio::time::sleep(Duration::from_secs(1)),
                2,
                async move {
                    let _ = stop_rx.await;
                },
                move |key| {
                    let l = Arc::clone(&l);
                    async move { work(&l, key, Duration::from_secs(10)).await }
                },
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(
            log.order.lock().unwrap().is_empty(),
            "nothing runs before ready"
        );
        assert_eq!(log.most.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(log.order.lock().unwrap().len(), 4);
        assert_eq!(log.most.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(log.order.lock().unwrap().len(), 8, "each ran again once");
        stop_tx.send(()).unwrap();
        queue.await.unwrap();
    }
}
