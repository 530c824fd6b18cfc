//! How the other tasks reach the topics task: the register task asks (with a reply), the slave
//! sync hands over the master's topics. Each sending end has one holder and is not `Clone`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::store::Topics;
use crate::broker::body::{DataVersion, TopicConfig, TopicConfigWrapper};
use crate::daemon::settings::InForce;
use crate::metrics::TopicsMetrics;

/// What the register task asks of the topics task.
pub(crate) enum Ask {
    /// The table a round registers, read now from `cfg`'s source (the broker asked, or the
    /// file read again); None: nothing to register yet.
    ForRound {
        /// The round's configuration.
        cfg: Arc<InForce>,
        /// Where the table goes.
        reply: oneshot::Sender<Option<RoundTable>>,
    },
    /// Something registered besides the topics changed (identity, permission): the table gets
    /// the next data version, since NameServers update queue data only on a new one.
    AdvanceVersion {
        /// Told once it is done.
        reply: oneshot::Sender<()>,
    },
}

/// The table for one round.
#[derive(Debug, Clone)]
pub(crate) struct RoundTable {
    /// What to register.
    pub(crate) table: Arc<TopicConfigWrapper>,
    /// The data version of the broker's own topics as last read (`source = "broker"`).
    pub(crate) broker_version: Option<DataVersion>,
}

/// The register task's end: its asks, answered in order.
#[derive(Debug)]
pub(crate) struct TopicsAsk(mpsc::Sender<Ask>);

impl TopicsAsk {
    /// The table to register this round (None: nothing yet, or the topics task is gone).
    pub(crate) async fn for_round(&self, cfg: Arc<InForce>) -> Option<RoundTable> {
        let (reply, answer) = oneshot::channel();
        self.0.send(Ask::ForRound { cfg, reply }).await.ok()?;
        answer.await.ok().flatten()
    }

    /// Moves the table to the next data version; returns once it is done.
    pub(crate) async fn advance_version(&self) {
        let (reply, answer) = oneshot::channel();
        if self.0.send(Ask::AdvanceVersion { reply }).await.is_ok() {
            let _ = answer.await;
        }
    }
}

/// The slave sync's end: the master's topics after each pull that read them.
#[derive(Debug)]
pub(crate) struct MasterTopics(mpsc::Sender<BTreeMap<String, TopicConfig>>);

impl MasterTopics {
    /// Hands `topics` to the topics task, which registers them at once if they changed.
    pub(crate) async fn send(&self, topics: BTreeMap<String, TopicConfig>) {
        // Closed only while the topics task's spec is gone, i.e. at shutdown.
        let _ = self.0.send(topics).await;
    }
}

/// The topics task's ends, held by its restart spec so that a restarted run takes them over
/// with the state.
pub(crate) struct Inbox {
    /// The topic state.
    pub(crate) store: Arc<Topics>,
    /// The register task's asks.
    pub(crate) asks: tokio::sync::Mutex<mpsc::Receiver<Ask>>,
    /// The master's topics from the slave sync.
    pub(crate) master: tokio::sync::Mutex<mpsc::Receiver<BTreeMap<String, TopicConfig>>>,
    /// The topics task's series.
    pub(crate) metrics: TopicsMetrics,
}

/// The topics task's inbox and the two sending ends, each for its one holder.
pub(crate) fn inbox(metrics: TopicsMetrics) -> (Inbox, TopicsAsk, MasterTopics) {
    let (asks_tx, asks) = mpsc::channel(4);
    let (master_tx, master) = mpsc::channel(1);
    let inbox = Inbox {
        store: Arc::default(),
        asks: tokio::sync::Mutex::new(asks),
        master: tokio::sync::Mutex::new(master),
        metrics,
    };
    (inbox, TopicsAsk(asks_tx), MasterTopics(master_tx))
}
