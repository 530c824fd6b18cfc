//! The fault drain's decision: a master whose broker cannot take writes (its disk past the
//! broker's own refusal threshold, or its store not writable) is drained by itself, and
//! writable again once the broker takes writes. The health task reads the broker and decides
//! (`level.rs`, pure, with `peers.rs` for the pre-emptive drain's question); it publishes
//! [`WriteFault`], and the register task holds a drain for each fault in it (drain/control.rs).

pub(crate) mod level;
pub(crate) mod peers;

use std::collections::BTreeSet;
use tokio::time::Instant;

pub(crate) use level::FaultKind;
use level::{disk_pct, Change, FaultWatch, Levels, Reading};

use crate::broker::{BrokerApi, StoreHealth};
use crate::config::{Config, HealthCheck};

/// The broker's refusal threshold in percent: `fault.disk_threshold`, else its GET_BROKER_CONFIG
/// `diskSpaceWarningLevelRatio`, else 90 (Java's default) when that cannot be read.
pub(crate) async fn threshold(api: &BrokerApi, cfg: &Config) -> u32 {
    if let Some(t) = cfg.fault.disk_threshold {
        return t;
    }
    let (addr, t) = (cfg.broker_check_addr(), cfg.broker.health.timeout);
    match tokio::time::timeout(t, api.broker_disk_threshold(addr, t)).await {
        Ok(Ok(t)) => t,
        other => {
            tracing::debug!(broker = %addr, answer = ?other.map(|r| r.map_err(|e| e.kind())), "the broker's disk threshold could not be read: 90 %, as Java's default");
            90
        }
    }
}

/// What the health task publishes of the broker's write health: the faults a drain holds for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WriteFault {
    /// The faults in force (empty: the broker takes writes, or the fault drain is off).
    pub(crate) kinds: BTreeSet<FaultKind>,
    /// For /readyz: the last disk reading and the threshold, in percent.
    pub(crate) disk: Option<(u32, u32)>,
}

impl WriteFault {
    /// The /readyz line, while a fault holds.
    pub(crate) fn line(&self) -> Option<String> {
        if self.kinds.is_empty() {
            return None;
        }
        let mut why: Vec<String> = Vec::new();
        if self.kinds.contains(&FaultKind::Disk) {
            why.push(match self.disk {
                Some((p, t)) => format!("its disk is {p} % full (it refuses writes above {t} %)"),
                None => "its disk is full".into(),
            });
        }
        if self.kinds.contains(&FaultKind::Store) {
            why.push("its store takes no writes (storeWriteable=false)".into());
        }
        Some(format!(
            "routed read-only by the fault drain: {}\n",
            why.join("; ")
        ))
    }
}

/// Why this daemon cannot fault-drain its broker, when it cannot (said once, INFO).
fn cannot(cfg: &Config, id: Option<(u64, bool)>) -> Option<&'static str> {
    if cfg.broker.health.check != HealthCheck::Remoting {
        return Some("broker.health.check is not \"remoting\": the broker's disk is not read");
    }
    match id {
        Some((id, _)) if id != 0 => Some("the broker is a slave: its disk is reported only"),
        Some((_, true)) if cfg.broker.identity == crate::config::IdentitySource::Broker => {
            Some("the broker splits its registrations: a drain cannot hold there")
        }
        _ => None,
    }
}

/// The health task's part: the readings, the decision, what it said.
#[derive(Default)]
pub(crate) struct FaultDrive {
    watch: FaultWatch,
    /// The reason last said for not draining (said once per change).
    said: Option<&'static str>,
    /// `fault.disk = false` was said.
    said_off: bool,
}

/// What one check gives the fault drive.
pub(crate) struct Checked<'a> {
    /// What the broker said of its store (None: the check failed or was refused).
    pub(crate) store: Option<&'a StoreHealth>,
    /// The broker's refusal threshold, in percent.
    pub(crate) threshold: u32,
    /// Who the broker is and whether it splits its registrations, when known.
    pub(crate) id: Option<(&'a crate::broker::BrokerIdentity, bool)>,
    /// The listed NameServers (for the pre-emptive drain's question).
    pub(crate) namesrvs: &'a [String],
    /// What is advertised: a topic the broker shares asks the same question where the
    /// cluster has no topic of its own.
    pub(crate) advert: Option<&'a crate::daemon::published::Advert>,
}

impl FaultDrive {
    /// The broker came back: its first reading decides alone.
    pub(crate) fn came_back(&mut self) {
        self.watch.refresh();
    }

    /// Feeds one check; returns the faults in force (for publishing).
    pub(crate) async fn checked(&mut self, api: &BrokerApi, cfg: &Config, c: Checked<'_>) -> WriteFault {
        let now = Instant::now();
        let l = Levels {
            threshold: c.threshold,
            margin: cfg.fault.disk_margin,
        };
        if !cfg.fault.disk {
            if !std::mem::replace(&mut self.said_off, true) {
                tracing::warn!("fault.disk = false: a broker that refuses writes stays writable in every route");
            }
            tell(&self.watch.off(now), l, None);
            return WriteFault::default();
        }
        self.said_off = false;
        if let Some(why) = cannot(cfg, c.id.map(|(id, split)| (id.id, split))) {
            if self.said != Some(why) {
                self.said = Some(why);
                tracing::info!(reason = why, "fault drain: nothing to do here");
            }
            tell(&self.watch.off(now), l, None);
            return WriteFault::default();
        }
        self.said = None;
        let Some(store) = c.store else {
            return self.published(None, l);
        };
        let r = Reading {
            disk: disk_pct(store),
            writable: store.writable,
        };
        let peers_ok = if self.watch.wants_peers(r, l) {
            self.peers_ok(api, cfg, &c).await
        } else {
            false
        };
        let changes = self.watch.feed(r, l, peers_ok, now);
        tell(&changes, l, r.disk);
        self.published(r.disk, l)
    }

    /// At least `fault.min_writable` other masters stay writable, read anew at each check
    /// that asks (one topic route per NameServer, all at once, within the check's timeout:
    /// a drain ahead of the refusal must not rest on an old count); not knowing is "no".
    async fn peers_ok(&mut self, api: &BrokerApi, cfg: &Config, c: &Checked<'_>) -> bool {
        let need = cfg.fault.min_writable as usize;
        if need == 0 {
            return true;
        }
        let Some((id, _)) = c.id else { return false };
        // Looked up only here: the table can hold 150k topics.
        let shared = c.advert.and_then(|a| {
            a.table
                .topic_config_table
                .keys()
                .find(|t| **t != a.id.name && !crate::daemon::route::compare::is_system(t, &a.id.cluster))
        });
        let topics = peers::probe_topics(&id.cluster, shared.map(String::as_str));
        let own = (id.cluster.as_str(), id.name.as_str());
        let t = cfg.broker.health.timeout;
        let count = tokio::time::timeout(t, peers::writable_peers(api, c.namesrvs, &topics, own, t))
            .await
            .ok()
            .flatten();
        count.is_some_and(|n| n >= need)
    }

    fn published(&self, disk: Option<u32>, l: Levels) -> WriteFault {
        WriteFault {
            kinds: self.watch.held(),
            disk: disk.map(|p| (p, l.threshold)),
        }
    }

}

/// One line per change: a WARN when a fault drain begins or is held back, an INFO when it
/// ends.
fn tell(changes: &[Change], l: Levels, disk: Option<u32>) {
        let disk = disk.map_or_else(|| "unknown".to_string(), |p| format!("{p} %"));
        let threshold = format!("{} %", l.threshold);
        for c in changes {
            match c {
                Change::Entered { kind, pre } => {
                    tracing::warn!(reason = kind.as_str(), disk, threshold, pre, "the broker cannot take writes: routing it read-only on every NameServer (fault drain)")
                }
                Change::Ended { kind, held } => {
                    tracing::info!(reason = kind.as_str(), disk, threshold, held = ?held, "the broker takes writes again: fault drain ended")
                }
                Change::HeldBack => {
                    tracing::warn!(disk, threshold, margin = l.margin, "the broker's disk is near its refusal threshold; not drained ahead of it: fewer than fault.min_writable other masters of its cluster are writable")
                }
            }
        }
    }

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_a_remoting_checked_master_that_does_not_split_drains() {
        let mut cfg = Config::default();
        assert_eq!(cannot(&cfg, Some((0, false))), None);
        assert_eq!(cannot(&cfg, None), None, "not known yet: the readings decide");
        assert!(cannot(&cfg, Some((1, false))).is_some_and(|w| w.contains("slave")));
        assert_eq!(cannot(&cfg, Some((0, true))), None, "config mode registers whole");
        cfg.broker.identity = crate::config::IdentitySource::Broker;
        assert!(cannot(&cfg, Some((0, true))).is_some_and(|w| w.contains("splits")));
        cfg.broker.health.check = HealthCheck::Tcp;
        assert!(cannot(&cfg, Some((0, false))).is_some_and(|w| w.contains("remoting")));
    }

    /// Feeds `drive` one check of a broker at `pct` (writable store), then sleeps a check
    /// interval (3 s); returns the faults held.
    async fn check(drive: &mut FaultDrive, api: &BrokerApi, cfg: &Config, pct: f64) -> bool {
        let store = StoreHealth {
            commitlog: Some(pct / 100.0),
            consumequeue: None,
            writable: Some(true),
        };
        let id = crate::broker::BrokerIdentity {
            cluster: "c".into(),
            name: "b".into(),
            id: 0,
            addr: "127.0.0.1:1".into(),
            ha_addr: "127.0.0.1:2".into(),
            zone: None,
        };
        let c = Checked {
            store: Some(&store),
            threshold: 90,
            id: Some((&id, false)),
            namesrvs: &[],
            advert: None,
        };
        let held = !drive.checked(api, cfg, c).await.kinds.is_empty();
        tokio::time::sleep(Duration::from_secs(3)).await;
        held
    }

    #[tokio::test(start_paused = true)]
    async fn a_disk_hovering_at_the_level_for_minutes_moves_the_route_once_each_way() {
        let cfg = Config::default();
        let api = crate::daemon::build_api(&crate::daemon::settings::InForce::default(), None).unwrap();
        let mut drive = FaultDrive::default();
        let t0 = Instant::now();
        assert!(!check(&mut drive, &api, &cfg, 50.0).await, "the fresh start: below");
        // Around the threshold for 3 minutes (91, 90, 91, ...): never two refusals in a row.
        for i in 0..60 {
            let p = if i % 2 == 0 { 91.0 } else { 90.0 };
            assert!(!check(&mut drive, &api, &cfg, p).await, "check {i}");
        }
        // Past it twice: held from the second check (3 s after the first).
        assert!(!check(&mut drive, &api, &cfg, 95.0).await);
        let entered = Instant::now();
        assert!(check(&mut drive, &api, &cfg, 95.0).await);
        // Back and forth between the threshold and just above the end level for 3 minutes,
        // and below it every other check: held throughout.
        for i in 0..60 {
            let p = [91.0, 86.0, 85.0, 87.0][i % 4];
            assert!(check(&mut drive, &api, &cfg, p).await, "check {i}");
        }
        // Below the end level twice: it ends at the second.
        assert!(check(&mut drive, &api, &cfg, 80.0).await);
        assert!(!check(&mut drive, &api, &cfg, 80.0).await);
        assert!(entered.duration_since(t0) >= Duration::from_secs(180));
        assert!(entered.elapsed() >= Duration::from_secs(180));
    }

    #[test]
    fn the_readyz_line_names_the_reading_and_the_threshold() {
        let mut f = WriteFault::default();
        assert_eq!(f.line(), None);
        f.kinds.insert(FaultKind::Disk);
        f.disk = Some((95, 90));
        assert_eq!(
            f.line().as_deref(),
            Some("routed read-only by the fault drain: its disk is 95 % full (it refuses writes above 90 %)\n")
        );
    }
}
