//! Background work of a serving registry: one poll helper for every periodic
//! job (htpasswd and TLS reloads, the maintenance lock watch, upload purging)
//! and one task set, owned by the server, that shutdown cancels and waits for,
//! so nothing keeps polling files or storage after `serve` returns.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Runs `f` at once and then every `interval` until `cancel` fires.
pub async fn every<F, Fut>(interval: Duration, cancel: CancellationToken, f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    every_after(Duration::ZERO, interval, cancel, f).await;
}

/// Runs `f` after `first` and then every `interval` until `cancel` fires. A
/// run in progress is dropped at cancellation (every job here is safe to stop
/// anywhere and picks up on the next start); ticks missed while a run took
/// longer than `interval` are not made up in a burst.
pub async fn every_after<F, Fut>(
    first: Duration,
    interval: Duration,
    cancel: CancellationToken,
    mut f: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval_at(Instant::now() + first, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = f() => {}
        }
    }
}

/// The background tasks of one server. Dropping it aborts them; [`shutdown`]
/// cancels them and waits until every one has ended.
///
/// [`shutdown`]: Background::shutdown
#[derive(Debug, Default)]
pub struct Background {
    tasks: JoinSet<()>,
    cancel: CancellationToken,
}

impl Background {
    pub fn new() -> Self {
        Background::default()
    }

    /// Polls with [`every`] until shutdown.
    pub fn every<F, Fut>(&mut self, interval: Duration, f: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.every_after(Duration::ZERO, interval, f);
    }

    /// Polls with [`every_after`] until shutdown.
    pub fn every_after<F, Fut>(&mut self, first: Duration, interval: Duration, f: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tasks.spawn(every_after(first, interval, cancel, f));
    }

    /// How many tasks have not ended yet.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Cancels every task and waits for all of them to end.
    pub async fn shutdown(&mut self) {
        self.cancel.cancel();
        while let Some(ended) = self.tasks.join_next().await {
            if let Err(e) = ended
                && e.is_panic()
            {
                tracing::error!(error = %e, "a background task panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn eventually(condition: impl Fn() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("condition reached in 10s");
    }

    #[tokio::test]
    async fn every_runs_at_once_then_on_each_tick_and_stops_on_cancel() {
        let runs = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let polling = tokio::spawn(every(Duration::from_millis(10), cancel.clone(), {
            let runs = Arc::clone(&runs);
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                std::future::ready(())
            }
        }));
        eventually(|| runs.load(Ordering::SeqCst) >= 3).await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), polling)
            .await
            .expect("stops on cancel")
            .unwrap();
        let after = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), after);
    }

    #[tokio::test]
    async fn cancel_ends_a_run_in_progress_and_a_first_delay() {
        let cancel = CancellationToken::new();
        let started = Arc::new(AtomicUsize::new(0));
        let stuck = tokio::spawn(every(Duration::from_millis(10), cancel.clone(), {
            let started = Arc::clone(&started);
            move || {
                started.fetch_add(1, Ordering::SeqCst);
                std::future::pending()
            }
        }));
        let waiting = tokio::spawn(every_after(
            Duration::from_secs(3600),
            Duration::from_secs(3600),
            cancel.clone(),
            || async { unreachable!("the first run is an hour away") },
        ));
        eventually(|| started.load(Ordering::SeqCst) == 1).await;
        cancel.cancel();
        for task in [stuck, waiting] {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("stops on cancel")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn shutdown_cancels_and_awaits_every_task() {
        let mut background = Background::new();
        let ended = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let guard = EndGuard(Arc::clone(&ended));
            background.every(Duration::from_millis(10), move || {
                let _ = &guard;
                std::future::ready(())
            });
        }
        assert_eq!(background.len(), 3);
        background.shutdown().await;
        assert!(background.is_empty());
        // Each task's closure is gone, not just asked to stop.
        assert_eq!(ended.load(Ordering::SeqCst), 3);
    }

    /// Counts the drops of a task's captured state.
    struct EndGuard(Arc<AtomicUsize>);

    impl Drop for EndGuard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
