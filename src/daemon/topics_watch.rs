//! The task that re-reads the topics file when it changes and registers the change at once.

use std::sync::Arc;
use std::time::Duration;

use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;
use crate::metrics::labels::Reload;

/// Re-reads the topics file when it changes, and registers the change at once.
pub(crate) async fn topics_watch(sh: Arc<Shared>) -> TaskResult {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        // The config shared, not its topics copied: this runs every 2 s for the daemon's life.
        let cfg = sh.config();
        // The metadata look and any read and parse happen on a blocking thread.
        let r = sh
            .topics
            .update(move |t| {
                let topics_cfg = &cfg.broker.topics;
                if t.file_changed(topics_cfg) {
                    t.refresh(topics_cfg, false)
                } else {
                    Ok(false)
                }
            })
            .await;
        let Some(r) = r else { continue };
        match r {
            Ok(true) => {
                sh.metrics.broker.topic_reload(Reload::Changed);
                tracing::info!("topics file changed, registering now");
                sh.register_now.notify_one();
            }
            Ok(false) => {}
            Err(e) => {
                sh.metrics.broker.topic_reload(Reload::Error);
                tracing::error!(error = %e, "topics file unusable, keeping the last good topics");
            }
        }
    }
}
