//! What a NameServer routes, compared with what the daemon advertises: pure functions, no I/O.

use serde_json::{Map, Value};

use crate::broker::body::{perm, TopicConfig, TopicConfigWrapper};
use crate::broker::route::{BrokerData, QueueData, TopicRoute};
use crate::broker::BrokerIdentity;
use crate::metrics::labels::RouteKind;

/// The queues and permission advertised for the audit topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Want {
    /// Read queues.
    pub(crate) read: u32,
    /// Write queues.
    pub(crate) write: u32,
    /// Permission bits.
    pub(crate) perm: u32,
}

impl Want {
    /// What `t` advertises.
    pub(crate) fn of(t: &TopicConfig) -> Want {
        Want {
            read: t.read_queue_nums,
            write: t.write_queue_nums,
            perm: t.perm,
        }
    }
}

/// What one NameServer should show: the broker as advertised and its audit topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expect {
    /// Who the broker is.
    pub(crate) id: BrokerIdentity,
    /// The audit topic, and what is advertised for it (None: not in the table, e.g. a
    /// `route.audit_topic` the broker does not have: only the broker's entry is compared).
    pub(crate) topic: Option<(String, Option<Want>)>,
}

impl Expect {
    /// A master's queue data is the topic's; a slave's daemon compares its own entry only.
    fn master(&self) -> bool {
        self.id.id == 0
    }

    /// This broker's registration can give the audit topic a route: a master advertising it.
    pub(crate) fn could_route(&self) -> bool {
        self.master() && self.topic.as_ref().is_some_and(|(_, w)| w.is_some())
    }
}

/// Topics every broker of a cluster carries (or the NameServer makes up): auditing them would
/// read O(brokers) routes for the whole fleet.
pub(crate) fn is_system(name: &str, cluster: &str) -> bool {
    const PREFIXES: [&str; 4] = ["rmq_sys_", "RMQ_SYS_", "%RETRY%", "%DLQ%"];
    const NAMES: [&str; 6] = [
        "TBW102",
        "SCHEDULE_TOPIC_XXXX",
        "OFFSET_MOVED_EVENT",
        "SELF_TEST_TOPIC",
        "BenchmarkTest",
        "TRANS_CHECK_MAX_TIME_TOPIC",
    ];
    name == cluster
        || NAMES.contains(&name)
        || PREFIXES.iter().any(|p| name.starts_with(p))
        || name.ends_with("_REPLY_TOPIC")
}

/// The topic whose route is read: `chosen` (`route.audit_topic`) when set; else the topic named
/// after the broker; else the first non-system topic with the write bit, else the first
/// non-system one (a drained table has no write bit anywhere). None: nothing to read but the
/// cluster table.
pub(crate) fn audit_topic(
    chosen: Option<&str>,
    id: &BrokerIdentity,
    table: &TopicConfigWrapper,
) -> Option<(String, Option<Want>)> {
    let topics = &table.topic_config_table;
    if let Some(t) = chosen {
        return Some((t.to_string(), topics.get(t).map(Want::of)));
    }
    if let Some(t) = topics.get(&id.name) {
        return Some((id.name.clone(), Some(Want::of(t))));
    }
    let mut user = topics
        .iter()
        .filter(|(n, _)| !is_system(n, &id.cluster));
    let first = user.clone().next();
    user.find(|(_, t)| t.perm & perm::WRITE != 0)
        .or(first)
        .map(|(n, t)| (n.clone(), Some(Want::of(t))))
}

/// How a route differs from what is advertised; empty when it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Findings {
    kinds: u8,
    /// The address that holds the broker's id, when another does.
    pub(crate) other: Option<String>,
    /// The id the broker's address sits under, when another.
    pub(crate) moved_to: Option<i64>,
    /// The cluster the broker name sits in, when another.
    pub(crate) cluster: Option<String>,
    /// The audit topic's queues for the broker as routed.
    pub(crate) routed: Option<QueueData>,
    /// The topic is routed writable where the advert is read-only (a drain's or the
    /// broker's permission).
    pub(crate) writable: bool,
}

fn bit(k: RouteKind) -> u8 {
    1 << (RouteKind::ALL.iter().position(|x| *x == k).unwrap_or(0))
}

impl Findings {
    /// True when the route is what is advertised.
    pub(crate) fn matches(&self) -> bool {
        self.kinds == 0
    }

    /// True when it differs by `k`.
    pub(crate) fn has(&self, k: RouteKind) -> bool {
        self.kinds & bit(k) != 0
    }

    pub(crate) fn add(&mut self, k: RouteKind) {
        self.kinds |= bit(k);
    }

    /// The kinds it differs by.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = RouteKind> + '_ {
        RouteKind::ALL.iter().copied().filter(|k| self.has(*k))
    }

    /// Both reads together (a kind either saw).
    pub(crate) fn merge(mut self, other: Findings) -> Findings {
        self.kinds |= other.kinds;
        self.other = self.other.or(other.other);
        self.moved_to = self.moved_to.or(other.moved_to);
        self.cluster = self.cluster.or(other.cluster);
        self.routed = self.routed.or(other.routed);
        self.writable |= other.writable;
        self
    }

    /// The broker's entry (cluster, id → address) compared.
    fn entry(&mut self, id: &BrokerIdentity, cluster: &str, addrs: &[(i64, &str)]) {
        let own = i64::try_from(id.id).unwrap_or(i64::MAX);
        match addrs.iter().find(|(i, _)| *i == own) {
            Some((_, a)) if *a == id.addr => {}
            Some((_, a)) => {
                self.add(RouteKind::Address);
                self.other = Some((*a).to_string());
            }
            None => match addrs.iter().find(|(_, a)| *a == id.addr) {
                Some((i, _)) => {
                    self.add(RouteKind::Address);
                    self.moved_to = Some(*i);
                }
                None => self.add(RouteKind::Missing),
            },
        }
        if !cluster.is_empty() && cluster != id.cluster {
            self.add(RouteKind::Cluster);
            self.cluster = Some(cluster.to_string());
        }
    }

    /// The master's queue data for the audit topic compared with `want`.
    fn queues(&mut self, routed: Option<QueueData>, want: Option<Want>) {
        let Some(q) = routed else {
            self.add(RouteKind::Missing);
            return;
        };
        self.routed = Some(q);
        let Some(w) = want else { return };
        let as_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        if q.read_queue_nums != as_i32(w.read) || q.write_queue_nums != as_i32(w.write) {
            self.add(RouteKind::Queues);
        }
        let rw = as_i32(perm::READ | perm::WRITE);
        if q.perm & rw != as_i32(w.perm) & rw {
            self.add(RouteKind::Permission);
            self.writable = q.perm & as_i32(perm::WRITE) != 0 && w.perm & perm::WRITE == 0;
        }
    }
}

fn pairs(b: &BrokerData) -> Vec<(i64, &str)> {
    b.broker_addrs
        .iter()
        .map(|(i, a)| (*i, a.as_str()))
        .collect()
}

/// The audit topic's route compared with `expect` (None: TOPIC_NOT_EXIST). A NameServer that
/// is not serving yet has no route to compare: its answer never gets here.
pub(crate) fn route(expect: &Expect, answer: Option<&TopicRoute>) -> Findings {
    let mut f = Findings::default();
    let Some(route) = answer else {
        f.add(RouteKind::Missing);
        return f;
    };
    let name = &expect.id.name;
    let Some(b) = route.broker(name) else {
        f.add(RouteKind::Missing);
        return f;
    };
    f.entry(&expect.id, &b.cluster, &pairs(b));
    // Queue data only where there is something advertised to compare it with.
    if let Some(want) = expect.topic.as_ref().and_then(|(_, w)| *w) {
        if expect.master() {
            f.queues(route.queues(name), Some(want));
        }
    }
    f
}

/// Both reads judged together (`route`: None when not read, Some(None) for TOPIC_NOT_EXIST).
/// A topic with no route says nothing of a broker that could not put it there: a slave (its
/// queue data is the master's, away now) or a `route.audit_topic` it does not advertise; the
/// cluster table judges those, when it was read.
pub(crate) fn judge(
    expect: &Expect,
    route: Option<Option<&TopicRoute>>,
    cluster: Option<&Map<String, Value>>,
) -> Findings {
    let mut f = match route {
        None => Findings::default(),
        Some(None) if cluster.is_some() && !expect.could_route() => Findings::default(),
        Some(r) => self::route(expect, r),
    };
    if let Some(t) = cluster {
        f = f.merge(cluster_entry(expect, t));
    }
    f
}

/// The broker's entry in a GET_BROKER_CLUSTER_INFO `brokerAddrTable` compared with `expect`.
pub(crate) fn cluster_entry(expect: &Expect, table: &Map<String, Value>) -> Findings {
    let mut f = Findings::default();
    let Some(entry) = table.get(&expect.id.name) else {
        f.add(RouteKind::Missing);
        return f;
    };
    let addrs: Vec<(i64, &str)> = entry
        .get("brokerAddrs")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let cluster = entry.get("cluster").and_then(Value::as_str).unwrap_or("");
    f.entry(&expect.id, cluster, &addrs);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::route::NamedQueueData;

    fn id(n: u64) -> BrokerIdentity {
        BrokerIdentity {
            cluster: "C".into(),
            name: "b".into(),
            id: n,
            addr: "10.0.0.1:10911".into(),
            ha_addr: "10.0.0.1:10912".into(),
            zone: None,
        }
    }

    fn expect(n: u64, perm: u32) -> Expect {
        Expect {
            id: id(n),
            topic: Some((
                "b".into(),
                Some(Want {
                    read: 1,
                    write: 1,
                    perm,
                }),
            )),
        }
    }

    fn routed(addrs: &[(i64, &str)], perm: i32, queues: i32) -> Option<TopicRoute> {
        Some(TopicRoute {
            broker_datas: vec![BrokerData {
                cluster: "C".into(),
                broker_name: "b".into(),
                broker_addrs: addrs.iter().map(|(i, a)| (*i, a.to_string())).collect(),
            }],
            queue_datas: vec![NamedQueueData {
                broker_name: "b".into(),
                queues: QueueData {
                    read_queue_nums: queues,
                    write_queue_nums: queues,
                    perm,
                },
            }],
        })
    }

    fn kinds(f: &Findings) -> Vec<&'static str> {
        use crate::metrics::labels::Label;
        f.kinds().map(Label::as_str).collect()
    }

    #[test]
    fn the_route_as_advertised_matches() {
        let f = route(&expect(0, 7), routed(&[(0, "10.0.0.1:10911")], 7, 1).as_ref());
        assert!(f.matches(), "{f:?}");
        // The inherit bit is not compared: only read and write reach producers.
        let f = route(&expect(0, 6), routed(&[(0, "10.0.0.1:10911")], 7, 1).as_ref());
        assert!(f.matches(), "{f:?}");
    }

    #[test]
    fn another_address_under_the_id_is_address_and_names_it() {
        let f = route(&expect(0, 7), routed(&[(0, "10.0.0.9:10911")], 7, 1).as_ref());
        assert_eq!(kinds(&f), ["address"]);
        assert_eq!(f.other.as_deref(), Some("10.0.0.9:10911"));
        let f = route(&expect(0, 7), routed(&[(3, "10.0.0.1:10911")], 7, 1).as_ref());
        assert_eq!((kinds(&f), f.moved_to), (vec!["address"], Some(3)));
    }

    #[test]
    fn absent_broker_topic_or_queues_are_missing() {
        let e = expect(0, 7);
        assert_eq!(kinds(&route(&e, None)), ["missing"]);
        let mut other = routed(&[(0, "10.0.0.1:10911")], 7, 1);
        if let Some(r) = &mut other {
            r.broker_datas[0].broker_name = "x".into();
        }
        assert_eq!(kinds(&route(&e, other.as_ref())), ["missing"]);
        let mut no_queues = routed(&[(0, "10.0.0.1:10911")], 7, 1);
        if let Some(r) = &mut no_queues {
            r.queue_datas.clear();
        }
        assert_eq!(kinds(&route(&e, no_queues.as_ref())), ["missing"]);
        assert_eq!(kinds(&route(&e, routed(&[(1, "s:1")], 7, 1).as_ref())), ["missing"]);
    }

    #[test]
    fn permission_and_queues_are_told_apart_and_the_direction_kept() {
        let own = [(0, "10.0.0.1:10911")];
        let drained = route(&expect(0, 4), routed(&own, 6, 1).as_ref());
        assert_eq!((kinds(&drained), drained.writable), (vec!["permission"], true));
        let wiped = route(&expect(0, 6), routed(&own, 4, 1).as_ref());
        assert_eq!((kinds(&wiped), wiped.writable), (vec!["permission"], false));
        assert_eq!(kinds(&route(&expect(0, 6), routed(&own, 6, 8).as_ref())), ["queues"]);
    }

    #[test]
    fn a_slave_compares_its_own_entry_only_and_another_cluster_is_reported() {
        // The master's queue data may say anything: it is not the slave's to fix.
        let f = route(
            &expect(1, 6),
            routed(&[(0, "m:1"), (1, "10.0.0.1:10911")], 2, 16).as_ref(),
        );
        assert!(f.matches(), "{f:?}");
        let mut elsewhere = routed(&[(0, "10.0.0.1:10911")], 7, 1);
        if let Some(r) = &mut elsewhere {
            r.broker_datas[0].cluster = "Other".into();
        }
        let f = route(&expect(0, 7), elsewhere.as_ref());
        assert_eq!((kinds(&f), f.cluster.as_deref()), (vec!["cluster"], Some("Other")));
    }

    #[test]
    fn the_cluster_table_entry_is_compared_as_the_route_is() {
        let table: Map<String, Value> = serde_json::from_str(
            r#"{"b":{"cluster":"C","brokerName":"b","brokerAddrs":{"0":"10.0.0.9:10911"}}}"#,
        )
        .unwrap();
        let f = cluster_entry(&expect(0, 7), &table);
        assert_eq!((kinds(&f), f.other.as_deref()), (vec!["address"], Some("10.0.0.9:10911")));
        assert_eq!(kinds(&cluster_entry(&expect(0, 7), &Map::new())), ["missing"]);
        let merged = f.merge(cluster_entry(&expect(0, 7), &Map::new()));
        assert_eq!(kinds(&merged), ["missing", "address"]);
    }

    #[test]
    fn a_topic_with_no_route_is_judged_by_the_table_where_this_broker_could_not_route_it() {
        let listed: Map<String, Value> = serde_json::from_str(
            r#"{"b":{"cluster":"C","brokerName":"b","brokerAddrs":{"1":"10.0.0.1:10911"}}}"#,
        )
        .unwrap();
        // A slave whose master is away: listed, so it matches.
        assert!(judge(&expect(1, 6), Some(None), Some(&listed)).matches());
        // Without the table: missing (nothing else to go by).
        assert_eq!(kinds(&judge(&expect(1, 6), Some(None), None)), ["missing"]);
        // A chosen topic the master does not advertise: only its entry is compared.
        let mut chosen = expect(0, 6);
        chosen.topic = Some(("Other".into(), None));
        let master: Map<String, Value> = serde_json::from_str(
            r#"{"b":{"cluster":"C","brokerName":"b","brokerAddrs":{"0":"10.0.0.1:10911"}}}"#,
        )
        .unwrap();
        assert!(judge(&chosen, Some(None), Some(&master)).matches());
        // A master's own topic with no route is missing, whatever the table says.
        assert_eq!(kinds(&judge(&expect(0, 6), Some(None), Some(&master))), ["missing"]);
    }

    #[test]
    fn the_audit_topic_is_the_broker_s_own_else_a_writable_user_topic() {
        let mut t = TopicConfigWrapper::default();
        for (n, p) in [("TBW102", 7), ("C", 7), ("%RETRY%g", 6), ("A", 4), ("B", 6)] {
            let mut c = TopicConfig::new(n, 4);
            c.perm = p;
            t.topic_config_table.insert(n.into(), c);
        }
        let pick = |t: &TopicConfigWrapper, chosen| audit_topic(chosen, &id(0), t).map(|(n, _)| n);
        assert_eq!(pick(&t, None).as_deref(), Some("B"));
        assert_eq!(pick(&t, Some("Z")).as_deref(), Some("Z"));
        assert_eq!(audit_topic(Some("Z"), &id(0), &t).unwrap().1, None);
        t.topic_config_table.insert("b".into(), TopicConfig::new("b", 1));
        assert_eq!(pick(&t, None).as_deref(), Some("b"));
        t.topic_config_table.remove("b");
        t.topic_config_table.remove("B");
        // Drained: no write bit anywhere, the first user topic still.
        assert_eq!(pick(&t, None).as_deref(), Some("A"));
        t.topic_config_table.remove("A");
        assert_eq!(pick(&t, None), None);
    }
}
