//! The broker as it is now: the identity and settings every registration carries. With
//! `broker.identity = "config"` it is the configuration's, replaced at a reload; with
//! `"broker"` it is what the broker's own GET_BROKER_CONFIG said at the last health check, so
//! that a DLedger or controller election (a new id or role) is registered at once.

use std::time::Duration;

use crate::broker::own_config::{BrokerReport, BrokerRole};
use crate::daemon::settings;
use crate::broker::{BrokerIdentity, SPLIT_SIZES};
use crate::config::{Config, Pinned};

/// What registrations carry now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Current {
    /// Who the broker is.
    pub(crate) id: BrokerIdentity,
    /// Its role, when the broker said (identity from the broker).
    pub(crate) role: Option<BrokerRole>,
    /// `brokerPermission`.
    pub(crate) permission: Option<u32>,
    /// `enableActingMaster` in registrations.
    pub(crate) acting_master: bool,
    /// `heartbeatTimeoutMillis` in registrations.
    pub(crate) heartbeat_timeout: Option<Duration>,
    /// Topics per request with `always_split`.
    pub(crate) split_size: usize,
    /// Split every registration of more than `split_size` topics.
    pub(crate) always_split: bool,
}

/// How a new identity differs from the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing registered changes.
    None,
    /// The first identity known.
    First,
    /// The id or role changed: an election.
    Role,
    /// Something else registered changed (permission, flags, split settings, addresses).
    Settings,
}

impl Current {
    /// The configuration's identity (`broker.identity = "config"`).
    pub(crate) fn from_config(cfg: &Config) -> Current {
        Current {
            id: settings::identity(cfg),
            role: None,
            permission: cfg.broker.permission,
            acting_master: false,
            heartbeat_timeout: cfg.register.heartbeat_timeout,
            split_size: cfg.register.split_size,
            always_split: cfg.register.always_split,
        }
    }

    /// What the broker reported, under the values the operator set (TOML file or environment),
    /// or `None` while it has no id; a change of cluster, name or addresses against `before`
    /// is refused, the old values kept ([`Current::kept_in_place`]).
    pub(crate) fn from_report(
        cfg: &Config,
        pinned: &Pinned,
        report: &BrokerReport,
        before: Option<&Current>,
    ) -> Option<Current> {
        Some(Self::reported(cfg, pinned, report)?.kept_in_place(before).0)
    }

    /// What the broker reported under the operator's values, taken as it is.
    pub(crate) fn reported(cfg: &Config, pinned: &Pinned, report: &BrokerReport) -> Option<Current> {
        let id = report.id?;
        let pick = |pinned: bool, configured: String, reported: &str| {
            if pinned {
                configured
            } else {
                reported.to_string()
            }
        };
        let ha_pinned = pinned.ha_addr || pinned.addr;
        let identity = BrokerIdentity {
            cluster: pick(
                pinned.cluster,
                cfg.broker.cluster.clone(),
                &report.cluster,
            ),
            name: pick(pinned.name, cfg.broker.name.clone(), &report.name),
            id,
            addr: pick(pinned.addr, cfg.broker.addr.clone(), &report.addr),
            ha_addr: if ha_pinned {
                cfg.ha_addr()
            } else {
                report.ha_addr.clone()
            },
            zone: cfg.broker.zone.clone(),
        };
        // Acting master (5.x): the broker's own expiry goes with it, as Java registers (a
        // broker that does not say keeps the configured one).
        let heartbeat_timeout = if pinned.heartbeat_timeout || !report.acting_master {
            cfg.register.heartbeat_timeout
        } else {
            report.not_active_timeout.or(cfg.register.heartbeat_timeout)
        };
        Some(Current {
            id: identity,
            role: Some(report.role),
            permission: if pinned.permission {
                cfg.broker.permission
            } else {
                report.permission
            },
            acting_master: report.acting_master,
            heartbeat_timeout,
            split_size: match report.split_size {
                Some(n) if !pinned.split_size && SPLIT_SIZES.contains(&n) => n,
                _ => cfg.register.split_size,
            },
            always_split: match report.always_split {
                Some(b) if !pinned.always_split => b,
                _ => cfg.register.always_split,
            },
        })
    }

    /// `self` with the cluster, name and addresses of `before` when the broker reports others
    /// (a sidecar is not moved to another broker at run time, while ids and roles move with
    /// elections), and then what the broker reports instead, for the log and /readyz.
    pub(crate) fn kept_in_place(mut self, before: Option<&Current>) -> (Current, Option<String>) {
        let Some(b) = before else {
            return (self, None);
        };
        let place = |c: &Current| {
            (
                c.id.cluster.clone(),
                c.id.name.clone(),
                c.id.addr.clone(),
                c.id.ha_addr.clone(),
            )
        };
        if place(b) == place(&self) {
            return (self, None);
        }
        let elsewhere = describe(&self.id);
        (self.id.cluster, self.id.name, self.id.addr, self.id.ha_addr) = place(b);
        (self, Some(elsewhere))
    }

    /// How `self` differs from `before`.
    pub(crate) fn change_from(&self, before: Option<&Current>) -> Change {
        match before {
            None => Change::First,
            Some(b) if b.id.id != self.id.id || b.role != self.role => Change::Role,
            Some(b) if b != self => Change::Settings,
            Some(_) => Change::None,
        }
    }
}

/// `cluster/name id addr`, for logs.
pub(crate) fn describe(id: &BrokerIdentity) -> String {
    format!("{}/{} id {} at {}", id.cluster, id.name, id.id, id.addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: Option<u64>, role: BrokerRole) -> BrokerReport {
        BrokerReport {
            cluster: "C".into(),
            name: "b".into(),
            id,
            role,
            addr: "10.0.0.1:10911".into(),
            ha_addr: "10.0.0.1:10912".into(),
            permission: Some(6),
            acting_master: false,
            not_active_timeout: Some(Duration::from_secs(10)),
            always_split: None,
            split_size: None,
            namesrv_addrs: Vec::new(),
        }
    }

    #[test]
    fn operator_values_win_but_never_the_id() {
        let mut cfg = Config::default();
        cfg.broker.addr = "192.168.1.9:10911".into();
        cfg.broker.id = 7;
        let pinned = Pinned {
            addr: true,
            ..Pinned::default()
        };
        let c = Current::from_report(&cfg, &pinned, &report(Some(1), BrokerRole::Slave), None)
            .unwrap();
        assert_eq!(c.id.addr, "192.168.1.9:10911", "pinned: the pod IP");
        assert_eq!(
            c.id.ha_addr, "192.168.1.9:10912",
            "derived from the pinned addr"
        );
        assert_eq!(c.id.cluster, "C", "not pinned: the broker's");
        assert_eq!(c.id.id, 1, "the id is the broker's");
    }

    #[test]
    fn no_id_yet_is_no_identity_and_elections_are_role_changes() {
        let cfg = Config::default();
        assert!(Current::from_report(&cfg, &Pinned::default(), &report(None, BrokerRole::AsyncMaster), None).is_none());
        let master =
            Current::from_report(&cfg, &Pinned::default(), &report(Some(0), BrokerRole::SyncMaster), None).unwrap();
        assert_eq!(master.change_from(None), Change::First);
        let follower =
            Current::from_report(&cfg, &Pinned::default(), &report(Some(2), BrokerRole::Slave), Some(&master)).unwrap();
        assert_eq!(follower.change_from(Some(&master)), Change::Role);
        assert_eq!(follower.change_from(Some(&follower)), Change::None);
        let mut ro = report(Some(2), BrokerRole::Slave);
        ro.permission = Some(4);
        let ro = Current::from_report(&cfg, &Pinned::default(), &ro, Some(&follower)).unwrap();
        assert_eq!(ro.change_from(Some(&follower)), Change::Settings);
    }

    #[test]
    fn a_moved_broker_keeps_its_old_name_and_address() {
        let cfg = Config::default();
        let first =
            Current::from_report(&cfg, &Pinned::default(), &report(Some(0), BrokerRole::SyncMaster), None).unwrap();
        let mut other = report(Some(0), BrokerRole::SyncMaster);
        other.name = "elsewhere".into();
        other.addr = "10.9.9.9:1".into();
        let kept = Current::from_report(&cfg, &Pinned::default(), &other, Some(&first)).unwrap();
        assert_eq!(kept.id, first.id);
    }

    #[test]
    fn acting_master_carries_the_brokers_expiry() {
        let cfg = Config::default();
        let mut r = report(Some(1), BrokerRole::Slave);
        r.acting_master = true;
        let c = Current::from_report(&cfg, &Pinned::default(), &r, None).unwrap();
        assert!(c.acting_master);
        assert_eq!(c.heartbeat_timeout, Some(Duration::from_secs(10)));
    }

    #[test]
    fn the_expiry_is_the_configured_one_unless_the_acting_master_says() {
        let mut cfg = Config::default();
        assert_eq!(
            Current::from_config(&cfg).heartbeat_timeout,
            Some(crate::config::DEFAULT_HEARTBEAT_TIMEOUT),
            "short expiry by default"
        );
        let plain = Current::from_report(&cfg, &Pinned::default(), &report(Some(1), BrokerRole::Slave), None).unwrap();
        assert_eq!(plain.heartbeat_timeout, Some(Duration::from_secs(10)));
        let mut r = report(Some(1), BrokerRole::Slave);
        r.acting_master = true;
        r.not_active_timeout = Some(Duration::from_secs(25));
        let c = Current::from_report(&cfg, &Pinned::default(), &r, None).unwrap();
        assert_eq!(
            c.heartbeat_timeout,
            Some(Duration::from_secs(25)),
            "the broker's"
        );
        r.not_active_timeout = None;
        let c = Current::from_report(&cfg, &Pinned::default(), &r, None).unwrap();
        assert_eq!(
            c.heartbeat_timeout,
            Some(Duration::from_secs(10)),
            "silent: ours"
        );
        // "off", set by the operator: no heartbeatTimeoutMillis at all, even as acting master.
        cfg.register.heartbeat_timeout = None;
        let pinned = Pinned {
            heartbeat_timeout: true,
            ..Pinned::default()
        };
        r.not_active_timeout = Some(Duration::from_secs(25));
        assert_eq!(
            Current::from_report(&cfg, &pinned, &r, None)
                .unwrap()
                .heartbeat_timeout,
            None
        );
        assert_eq!(Current::from_config(&cfg).heartbeat_timeout, None);
    }
}
