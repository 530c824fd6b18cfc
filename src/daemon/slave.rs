//! A slave's periodic pull of its master's four documents.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::files::write_if_changed_mode;
use super::shared::Shared;
use super::supervisor::TaskResult;
use super::publisher::SlaveOut;
use crate::broker::body::{
    ConsumerOffsetWrapper, DelayOffsetTable, SubscriptionGroupWrapper, TopicConfigWrapper,
};
use crate::broker::{ApiError, BrokerApi, PullDoc};
use crate::metrics::labels::Pull;
use crate::metrics::SlaveMetrics;

/// File names a Java broker uses under `store/config/`.
pub const TOPICS_FILE: &str = "topics.json";
/// Consumer offsets file.
pub const CONSUMER_OFFSET_FILE: &str = "consumerOffset.json";
/// Delay offsets file.
pub const DELAY_OFFSET_FILE: &str = "delayOffset.json";
/// Subscription groups file.
pub const SUBSCRIPTION_GROUP_FILE: &str = "subscriptionGroup.json";

/// The four documents' metric kinds, in pull order.
pub const KINDS: [&str; 4] = [
    TopicConfigWrapper::WHAT,
    ConsumerOffsetWrapper::WHAT,
    DelayOffsetTable::WHAT,
    SubscriptionGroupWrapper::WHAT,
];

/// Why one document was not pulled or written.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The master did not give it.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// What it gave is not JSON.
    #[error("the master's document is not JSON even with its keys quoted: {0}")]
    NotJson(#[from] serde_json::Error),
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The writer task ended abnormally.
    #[error("writer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One document's pull outcome.
#[derive(Debug)]
pub struct PullResult {
    /// Which document (metrics label).
    pub kind: &'static str,
    /// The file name it is written to.
    pub file: &'static str,
    /// Written (true), unchanged (false), or why it failed.
    pub result: Result<bool, PullError>,
}

/// Pulls the four documents in Java's order and writes each that changed into `out`.
/// Returns the outcomes and the master's topics (when that pull worked).
pub async fn pull_all(
    api: &BrokerApi,
    master: &str,
    vip: bool,
    out: Option<(&Path, u32)>,
    timeout: Duration,
) -> (Vec<PullResult>, Option<TopicConfigWrapper>) {
    let topic_addr = crate::broker::topic_config_addr(master, vip);
    let (t, topics) =
        pull_save::<TopicConfigWrapper>(api, &topic_addr, TOPICS_FILE, out, timeout).await;
    let (c, _) =
        pull_save::<ConsumerOffsetWrapper>(api, master, CONSUMER_OFFSET_FILE, out, timeout).await;
    let (d, _) = pull_save::<DelayOffsetTable>(api, master, DELAY_OFFSET_FILE, out, timeout).await;
    let (g, _) =
        pull_save::<SubscriptionGroupWrapper>(api, master, SUBSCRIPTION_GROUP_FILE, out, timeout)
            .await;
    (vec![t, c, d, g], topics)
}

/// The master's fastjson text as standard JSON: bare integer keys (`{0:100}`) quoted, which
/// fastjson reads just as well and `jq`, serde and Python need. Checked to parse.
pub fn standard_json(raw: &str) -> Result<String, PullError> {
    let text = crate::broker::fastjson::quote_numeric_keys(raw).into_owned();
    serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
    Ok(text)
}

/// Pulls one document and writes it to `out/file` when it changed.
async fn pull_save<T: PullDoc>(
    api: &BrokerApi,
    addr: &str,
    file: &'static str,
    out: Option<(&Path, u32)>,
    timeout: Duration,
) -> (PullResult, Option<T>) {
    let (raw, doc) = match api.pull::<T>(addr, timeout).await {
        Ok(p) => (Ok(p.raw), Some(p.doc)),
        Err(e) => (Err(e), None),
    };
    // The write is fsynced twice (file, directory): blocking work, off the async thread.
    let out = out.map(|(dir, mode)| (dir.to_path_buf(), mode));
    let saved = tokio::task::spawn_blocking(move || {
        save(
            T::WHAT,
            file,
            raw,
            out.as_ref().map(|(d, m)| (d.as_path(), *m)),
        )
    })
    .await;
    let result = saved.unwrap_or_else(|e| PullResult {
        kind: T::WHAT,
        file,
        result: Err(PullError::Task(e)),
    });
    (result, doc)
}

fn save(
    kind: &'static str,
    file: &'static str,
    pulled: Result<String, ApiError>,
    out: Option<(&Path, u32)>,
) -> PullResult {
    let result = match (pulled, out) {
        (Err(e), _) => Err(e.into()),
        (Ok(_), None) => Ok(false),
        (Ok(raw), Some((dir, mode))) => standard_json(&raw).and_then(|text| {
            let path = dir.join(file);
            write_if_changed_mode(&path, text.as_bytes(), mode)
                .map_err(|source| PullError::Write { path, source })
        }),
    };
    PullResult { kind, file, result }
}

/// Counts pull outcomes; `to_files`: they were written to `slave.output_dir` (without one,
/// a pull is `pulled`, neither written nor the same as a file).
pub(crate) fn count(metrics: &SlaveMetrics, results: &[PullResult], to_files: bool) {
    for r in results {
        let outcome = match &r.result {
            Ok(_) if !to_files => Pull::Pulled,
            Ok(true) => Pull::Written,
            Ok(false) => Pull::Unchanged,
            Err(_) => Pull::Error,
        };
        metrics.slave_pull(r.kind, outcome);
    }
}

/// For a slave (`broker.id` != 0): pulls from the master every `sync_interval`.
pub(crate) async fn sync_loop(sh: Arc<Shared>, ends: Arc<SlaveOut>) -> TaskResult {
    loop {
        let cfg = sh.config();
        let interval = cfg.slave.sync_interval;
        if cfg.broker.id != 0 && cfg.broker.identity == crate::config::IdentitySource::Config {
            let master = cfg
                .slave
                .master_addr
                .clone()
                .or_else(|| sh.master.borrow().clone());
            match master {
                None => tracing::debug!("master address not known yet"),
                Some(master) => {
                    let mode = cfg.slave_file_mode().unwrap_or(super::files::DEFAULT_MODE);
                    let out = cfg.slave.output_dir.as_deref().map(|d| (d, mode));
                    let (results, topics) = pull_all(
                        &sh.api,
                        &master,
                        cfg.slave.vip_channel,
                        out,
                        cfg.register.timeout,
                    )
                    .await;
                    count(&ends.metrics, &results, out.is_some());
                    for r in &results {
                        if let Err(e) = &r.result {
                            tracing::warn!(%master, kind = r.kind, error = %e, "slave pull failed");
                        }
                    }
                    if let Some(t) = topics {
                        // The topics task decides whether the table changed and registers it.
                        ends.master_topics.send(t.topic_config_table).await;
                    }
                }
            }
        }
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
