//! Named tasks that are restarted with backoff when they fail or panic.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::SupervisorMetrics;

/// What a supervised task returns when it gives up.
pub type TaskResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Runs named tasks until the token is cancelled.
#[derive(Clone)]
pub struct Supervisor {
    tracker: TaskTracker,
    token: CancellationToken,
    metrics: Arc<SupervisorMetrics>,
}

/// How long a task has to end on its own once the token is cancelled (it watches it too).
const STOP_GRACE: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A task that ran this long before failing starts again from the first backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

impl Supervisor {
    /// A supervisor whose tasks stop when `token` is cancelled.
    pub fn new(token: CancellationToken, metrics: Arc<SupervisorMetrics>) -> Self {
        Supervisor {
            tracker: TaskTracker::new(),
            token,
            metrics,
        }
    }

    /// Runs `make()` as task `name`; a failure or panic is logged, counted and restarted
    /// (with a new `make()`: what a task must keep across restarts lives outside it).
    pub fn spawn<F, Fut>(&self, name: &'static str, make: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = TaskResult> + Send + 'static,
    {
        self.spawn_with_grace(name, || STOP_GRACE, make);
    }

    /// As [`Supervisor::spawn`], for a task that has work to finish once the token is
    /// cancelled (a goodbye): it gets `grace()` to end on its own before it is aborted.
    pub fn spawn_with_grace<F, Fut, G>(&self, name: &'static str, grace: G, mut make: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = TaskResult> + Send + 'static,
        G: Fn() -> Duration + Send + 'static,
    {
        let token = self.token.clone();
        let metrics = self.metrics.clone();
        self.tracker.spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let started = Instant::now();
                // A task of its own, so that a panic comes back as a JoinError, not a crash.
                let mut run = tokio::spawn(make());
                let outcome = tokio::select! {
                    _ = token.cancelled() => {
                        // Give the task a moment to finish on its own (it watches the token too).
                        if tokio::time::timeout(grace(), &mut run).await.is_err() {
                            run.abort();
                        }
                        return;
                    }
                    r = &mut run => r,
                };
                match outcome {
                    Ok(Ok(())) => {
                        tracing::debug!(task = name, "task finished");
                        return;
                    }
                    Ok(Err(e)) => tracing::warn!(task = name, error = %e, "task failed, restarting"),
                    Err(e) => tracing::error!(task = name, error = %e, "task panicked, restarting"),
                }
                metrics.task_restarted(name);
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = FIRST_BACKOFF;
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }

    /// Stops every task and waits up to `grace` for them to end.
    pub async fn stop(&self, grace: Duration) {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(?grace, "tasks still running after the grace period");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failing_and_panicking_tasks_are_restarted_and_counted() {
        let metrics = Arc::new(crate::metrics::Metrics::new().unwrap());
        let sup = Supervisor::new(
            CancellationToken::new(),
            Arc::new(crate::metrics::SupervisorMetrics::new(&metrics)),
        );
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        sup.spawn("flaky", move || {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => Err("first failure".into()),
                    1 => panic!("second run panics"),
                    _ => std::future::pending().await,
                }
            }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(
            metrics
                .daemon()
                .task_restarts
                .with_label_values(&["flaky"])
                .get(),
            2
        );
        sup.stop(Duration::from_secs(1)).await;
        assert!(sup.tracker.is_empty());
    }
}
