//! The topics task: the one owner of the topic table. The file watch, the broker's answers (asked
//! for each round), the master's topics (slave sync) and reloads reach it as messages; it alone
//! counts `topic_reloads` and asks for a registration when the table changed outside a round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::inbox::{Ask, Inbox, RoundTable};
use super::state::TopicState;
use crate::broker::body::TopicConfig;
use crate::config::TopicSource;
use crate::daemon::publisher::follow;
use crate::daemon::settings::InForce;
use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;
use crate::metrics::labels::Reload;
use crate::metrics::TopicsMetrics;

/// How often the topics file's metadata is looked at.
const FILE_LOOK: Duration = Duration::from_secs(2);

/// Serves the register task's asks and keeps the table current as its sources change.
pub(crate) async fn topics_loop(sh: Arc<Shared>, inbox: Arc<Inbox>) -> TaskResult {
    // Held for the run; a restarted run takes them over, with the state in `inbox.store`.
    let mut asks = inbox.asks.lock().await;
    let mut master = inbox.master.lock().await;
    let mut config = follow(&sh.config);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + FILE_LOOK, FILE_LOOK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Every piece of work is abandoned at shutdown: a broker read is bounded by
        // register.timeout, but the goodbyes must not wait for it.
        let work = async {
            tokio::select! {
                Some(ask) = asks.recv() => on_ask(&sh, &inbox, ask).await,
                Some(topics) = master.recv() => on_master(&sh, &inbox, topics).await,
                Ok(()) = config.changed() => {
                    let cfg = config.borrow_and_update().clone();
                    on_reload(&sh, &inbox, cfg).await;
                }
                _ = tick.tick() => on_look(&sh, &inbox).await,
            }
        };
        tokio::select! {
            biased;
            _ = sh.token.cancelled() => return Ok(()),
            () = work => {}
        }
    }
}

async fn on_ask(sh: &Shared, inbox: &Inbox, ask: Ask) {
    match ask {
        Ask::ForRound { cfg, reply } => {
            let table = for_round(sh, inbox, cfg).await;
            let _ = reply.send(table);
        }
        Ask::AdvanceVersion { reply } => {
            inbox.store.update(|t| t.advance_version()).await;
            let _ = reply.send(());
        }
    }
}

/// The table for a round, read from the configured source. None: nothing to register yet (the
/// broker's topics were never read: registering an empty table would withdraw its routes).
/// Each read and the table it leaves are taken in one trip to a blocking thread.
async fn for_round(sh: &Shared, inbox: &Inbox, cfg: Arc<InForce>) -> Option<RoundTable> {
    let topics_cfg = advertised(&cfg);
    if topics_cfg.source != TopicSource::Broker {
        let (r, table) = inbox
            .store
            .update(move |t| (t.refresh(&topics_cfg, true), round_table(t)))
            .await?;
        if let Err(e) = &r {
            tracing::error!(error = %e, "topics file unusable, registering the last good topics");
        }
        count(&inbox.metrics, &r);
        return Some(table);
    }
    let addr = cfg.broker_check_addr();
    match sh.api.broker_topics(addr, cfg.register.timeout).await {
        Ok(w) => {
            let (changed, table) = inbox
                .store
                .update(move |t| (t.set_broker_topics(&topics_cfg, w), round_table(t)))
                .await?;
            count(&inbox.metrics, &Ok::<_, ()>(changed));
            Some(table)
        }
        Err(e) => {
            inbox.metrics.topic_reload(Reload::Error);
            let (known, table) = inbox
                .store
                .update(|t| (t.has_broker_topics(), round_table(t)))
                .await?;
            if !known {
                tracing::warn!(broker = %addr, error = %e, "cannot read the broker's topics: registration waits for them");
                return None;
            }
            tracing::warn!(broker = %addr, error = %e, "cannot read the broker's topics, registering the last good ones");
            Some(table)
        }
    }
}

/// The topics the configuration advertises (the broker's own topic added in config mode).
fn advertised(cfg: &crate::config::Config) -> crate::config::TopicsConfig {
    cfg.broker.topics.advertised(&cfg.broker.name).into_owned()
}

/// What a round registers from `t`.
fn round_table(t: &TopicState) -> RoundTable {
    RoundTable {
        table: t.table(),
        broker_version: t.broker_version(),
    }
}

/// The master's topics from a pull (slave): registered at once when they change the table.
async fn on_master(sh: &Shared, inbox: &Inbox, topics: BTreeMap<String, TopicConfig>) {
    let topics_cfg = advertised(&sh.config());
    let changed = inbox
        .store
        .update(move |t| t.set_master_topics(&topics_cfg, topics))
        .await;
    let Some(changed) = changed else { return };
    count(&inbox.metrics, &Ok::<_, ()>(changed));
    if changed {
        // Said of the table, not of the files, which may be as they were.
        tracing::info!("the master's topics differ from those registered, registering now");
        sh.register_now.notify_one();
    }
}

/// A reload (SIGHUP): the topics read again under the new configuration.
async fn on_reload(sh: &Shared, inbox: &Inbox, cfg: Arc<InForce>) {
    let topics_cfg = advertised(&cfg);
    let Some(r) = inbox.store.update(move |t| t.refresh(&topics_cfg, true)).await else {
        return;
    };
    match &r {
        Ok(changed) => tracing::info!(topics_changed = changed, "reload: topics read again"),
        Err(e) => {
            tracing::error!(error = %e, "reload: topics file rejected, keeping the last good topics")
        }
    }
    count(&inbox.metrics, &r);
    if r.is_ok_and(|c| c) {
        sh.register_now.notify_one();
    }
}

/// The topics file looked at: read again when its metadata changed, registered when that
/// changed the table.
async fn on_look(sh: &Shared, inbox: &Inbox) {
    // The config shared, not its topics copied: this runs every 2 s for the daemon's life.
    let cfg = sh.config();
    let r = inbox
        .store
        .update(move |t| {
            t.file_changed(&cfg.broker.topics)
                .then(|| t.refresh(&advertised(&cfg), false))
        })
        .await;
    let Some(Some(r)) = r else { return };
    match &r {
        Ok(true) => {
            tracing::info!("topics file changed, registering now");
            sh.register_now.notify_one();
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "topics file unusable, keeping the last good topics")
        }
    }
    count(&inbox.metrics, &r);
}

/// One topic-source read counted, whatever its cause.
fn count<E>(metrics: &TopicsMetrics, read: &Result<bool, E>) {
    metrics.topic_reload(match read {
        Ok(true) => Reload::Changed,
        Ok(false) => Reload::Unchanged,
        Err(_) => Reload::Error,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, TopicsConfig};

    fn reads(sh: &Shared, outcome: &str) -> u64 {
        sh.metrics
            .broker()
            .topic_reloads
            .with_label_values(&[outcome])
            .get()
    }

    /// Whether someone asked for a registration since the last look (takes the ask).
    async fn asked(sh: &Shared) -> bool {
        tokio::time::timeout(Duration::from_millis(20), sh.register_now.notified())
            .await
            .is_ok()
    }

    fn with_file(dir: &tempfile::TempDir) -> (Config, std::path::PathBuf) {
        let f = dir.path().join("topics.json");
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "127.0.0.1:10911".into();
        cfg.broker.topics = TopicsConfig {
            source: TopicSource::File,
            file: Some(f.clone()),
            inline: vec![],
            ..TopicsConfig::default()        };
        (cfg, f)
    }

    fn write(f: &std::path::Path, names: &[&str]) {
        let table: Vec<String> = names
            .iter()
            .map(|n| format!(r#""{n}":{{"topicName":"{n}","readQueueNums":4,"writeQueueNums":4,"perm":6}}"#))
            .collect();
        let body = format!(r#"{{"topicConfigTable":{{{}}}}}"#, table.join(","));
        std::fs::write(f, body).expect("write the topics file");
    }

    fn parts(cfg: Config) -> (Arc<Shared>, Inbox) {
        let (sh, ch) = Shared::for_tests(cfg);
        (sh, ch.topics)
    }

    #[tokio::test]
    async fn a_rounds_read_is_counted_and_asks_for_no_other_round() {
        let dir = tempfile::tempdir().expect("dir");
        let (cfg, f) = with_file(&dir);
        write(&f, &["A"]);
        let (sh, inbox) = parts(cfg);
        let read = for_round(&sh, &inbox, sh.config()).await.expect("a table");
        assert!(read.table.topic_config_table.contains_key("A"));
        assert_eq!(read.broker_version, None);
        assert_eq!(reads(&sh, "changed"), 1);
        assert!(!asked(&sh).await, "the round is the registration");
        for_round(&sh, &inbox, sh.config()).await.expect("a table");
        assert_eq!(reads(&sh, "unchanged"), 1, "every round's read counts");
    }

    #[tokio::test]
    async fn a_file_change_seen_by_the_watch_is_counted_and_registered_at_once() {
        let dir = tempfile::tempdir().expect("dir");
        let (cfg, f) = with_file(&dir);
        write(&f, &["A"]);
        let (sh, inbox) = parts(cfg);
        on_look(&sh, &inbox).await;
        assert_eq!(reads(&sh, "changed"), 1);
        assert!(asked(&sh).await);
        // Nothing changed: no read, no count, no registration.
        on_look(&sh, &inbox).await;
        assert_eq!(reads(&sh, "changed") + reads(&sh, "unchanged"), 1);
        assert!(!asked(&sh).await);
        std::fs::write(&f, "not json").expect("write");
        on_look(&sh, &inbox).await;
        assert_eq!(reads(&sh, "error"), 1);
        assert!(!asked(&sh).await, "a bad file keeps the last good topics");
    }

    #[tokio::test]
    async fn the_masters_topics_are_counted_and_registered_only_when_they_change_the_table() {
        let dir = tempfile::tempdir().expect("dir");
        let (cfg, _f) = with_file(&dir);
        let (sh, inbox) = parts(cfg);
        let master = || {
            BTreeMap::from([(
                "M".to_string(),
                crate::broker::body::TopicConfig::new("M", 6),
            )])
        };
        on_master(&sh, &inbox, master()).await;
        assert_eq!(reads(&sh, "changed"), 1, "a slave sync's change is counted");
        assert!(asked(&sh).await);
        on_master(&sh, &inbox, master()).await;
        assert_eq!(reads(&sh, "unchanged"), 1);
        assert!(!asked(&sh).await);
        let read = for_round(&sh, &inbox, sh.config()).await.expect("a table");
        assert!(read.table.topic_config_table.contains_key("M"));
    }

    #[tokio::test]
    async fn a_reload_reads_the_topics_again_counts_it_and_registers_a_change() {
        let dir = tempfile::tempdir().expect("dir");
        let (cfg, f) = with_file(&dir);
        write(&f, &["A"]);
        let (sh, inbox) = parts(cfg.clone());
        for_round(&sh, &inbox, sh.config()).await.expect("a table");
        let mut moved = cfg;
        let g = dir.path().join("other.json");
        write(&g, &["A", "B"]);
        moved.broker.topics.file = Some(g);
        let moved = Arc::new(InForce::unpinned(moved).expect("config"));
        on_reload(&sh, &inbox, moved.clone()).await;
        assert_eq!(reads(&sh, "changed"), 2, "a reload's change is counted");
        assert!(asked(&sh).await);
        on_reload(&sh, &inbox, moved).await;
        assert_eq!(reads(&sh, "unchanged"), 1);
        assert!(!asked(&sh).await);
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_answers_asks_in_order_and_ends_at_shutdown() {
        let dir = tempfile::tempdir().expect("dir");
        let (cfg, f) = with_file(&dir);
        write(&f, &["A"]);
        let (sh, ch) = Shared::for_tests(cfg);
        let task = tokio::spawn(topics_loop(sh.clone(), Arc::new(ch.topics)));
        let ask = ch.topics_ask;
        let first = ask.for_round(sh.config()).await.expect("a table");
        ask.advance_version().await;
        let second = ask.for_round(sh.config()).await.expect("a table");
        assert!(second.table.data_version.counter > first.table.data_version.counter);
        sh.token.cancel();
        assert!(task.await.expect("no panic").is_ok());
        assert!(
            ask.for_round(sh.config()).await.is_none(),
            "a gone topics task is no table, not a hang"
        );
    }
}
