//! broker.conf's mapping, property by property, and every broker file RocketMQ ships.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

fn props(text: &str) -> HashMap<String, String> {
    java_properties::read(text.as_bytes()).unwrap()
}

fn values(m: &Mapped) -> Vec<(String, String)> {
    m.props
        .iter()
        .map(|p| {
            (
                p.name.rsplit(": ").next().unwrap().to_string(),
                format!("{:?}", p.data),
            )
        })
        .collect()
}

#[test]
fn java_properties_syntax_is_read_as_java_does() {
    let p = props("# comment\n! also a comment\nbrokerName = broker-a\nbrokerClusterName: Cluster\\\n  A\nnamesrvAddr=a:1;\\\n b:2\nkey\\ with\\ space=x\n");
    assert_eq!(p["brokerName"], "broker-a");
    assert_eq!(p["brokerClusterName"], "ClusterA");
    assert_eq!(p["namesrvAddr"], "a:1;b:2");
    assert_eq!(p["key with space"], "x");
}

#[test]
fn addresses_follow_the_java_defaults() {
    let local = || Ok(Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))));
    let m = map(Path::new("b.conf"), &props("brokerName=b\n"), local).unwrap();
    let v = format!("{:?}", values(&m));
    assert!(v.contains("10.1.2.3:10911"), "{v}");
    assert!(
        v.contains("10.1.2.3:10912"),
        "haListenPort = listenPort + 1: {v}"
    );
    let m = map(
        Path::new("b.conf"),
        &props("brokerIP1=192.0.2.1\nlistenPort=20911\nbrokerIP2=192.0.2.2\n"),
        local,
    )
    .unwrap();
    let v = format!("{:?}", values(&m));
    assert!(
        v.contains("192.0.2.1:20911") && v.contains("192.0.2.2:20912"),
        "{v}"
    );
}

#[test]
fn the_local_address_is_picked_as_java_picks_it() {
    let a = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        pick_address(&[a("10.0.0.1"), a("203.0.113.5"), a("192.168.1.1")]),
        Some(a("203.0.113.5"))
    );
    assert_eq!(
        pick_address(&[a("10.0.0.1"), a("192.168.1.1")]),
        Some(a("192.168.1.1"))
    );
    assert_eq!(
        pick_address(&[IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1))]),
        Some(a("fd00::1"))
    );
    assert_eq!(pick_address(&[]), None);
    assert_eq!(host_port("fd00::1", 10911), "[fd00::1]:10911");
}

#[test]
fn a_value_that_cannot_be_mapped_names_the_property() {
    let local = || Ok(None);
    let e = map(
        Path::new("/etc/b.conf"),
        &props("brokerId=first\nbrokerIP1=h\n"),
        local,
    )
    .unwrap_err();
    assert_eq!(e.key, "brokerId");
    assert_eq!(e.source_name, "broker.conf /etc/b.conf: brokerId");
    let e = map(
        Path::new("b.conf"),
        &props("listenPort=99999\nbrokerIP1=h\n"),
        local,
    )
    .unwrap_err();
    assert_eq!(e.key, "listenPort");
    let e = map(Path::new("b.conf"), &props("brokerName=b\n"), local).unwrap_err();
    assert_eq!(e.key, "brokerIP1", "no address to default to");
    assert!(e.reason.contains("no address but loopback"), "{e}");
    // Interfaces that cannot be listed are not a host without an address: the cause is named.
    let unlisted = || Err(std::io::Error::from_raw_os_error(libc::EAFNOSUPPORT));
    let e = map(Path::new("b.conf"), &props("brokerName=b\n"), unlisted).unwrap_err();
    assert_eq!(e.key, "brokerIP1");
    assert!(
        e.reason.contains("cannot be listed") && e.reason.contains("os error 97"),
        "{e}"
    );
}

#[test]
fn a_boolean_that_is_not_true_or_false_is_false_as_in_java_with_a_warning() {
    let m = map(
        Path::new("b.conf"),
        &props("brokerIP1=h\ncompressedRegister=maybe\nenableSplitRegistration=TRUE\n"),
        || Ok(None),
    )
    .unwrap();
    let v = values(&m);
    let of = |prop: &str| v.iter().find(|(p, _)| p == prop).unwrap().1.clone();
    assert!(of("compressedRegister").contains("false)"), "{v:?}");
    assert!(of("enableSplitRegistration").contains("true)"), "{v:?}");
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(
        m.warnings[0].contains("compressedRegister=maybe is neither true nor false"),
        "{:?}",
        m.warnings
    );
}

#[test]
fn period_is_clamped_with_a_warning_and_store_root_expands_home() {
    let m = map(
        Path::new("b.conf"),
        &props("brokerIP1=h\nregisterNameServerPeriod=5000\nstorePathRootDir=${user.home}/data\nforceRegister=false\n"),
        || Ok(None),
    )
    .unwrap();
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    let v = format!("{:?}", values(&m));
    assert!(v.contains("10000ms"), "{v}");
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    assert!(
        v.contains(&format!("{home}/data/config/topics.json")),
        "{v}"
    );
    assert!(v.contains("never"), "forceRegister=false: {v}");
}

/// Every broker file of RocketMQ's own `distribution/conf` (4.9.8: 15, 5.3.3: 21, not counting
/// `broker-container*.conf`), by the properties that decide identity, loads with the identity
/// the Java broker starts with: a fixed id, or "from the broker at run time" where an election
/// decides it.
mod distribution {
    use std::net::{IpAddr, Ipv4Addr};

    use figment::providers::Serialized;
    use figment::Figment;

    use super::*;
    use crate::config::{Config, IdentitySource};

    const DLEDGER: &str = "brokerClusterName=RaftCluster\nbrokerName=RaftNode00\n\
        namesrvAddr=127.0.0.1:9876\nenableDLegerCommitLog=true\ndLegerGroup=RaftNode00\n\
        dLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913\n";
    const CONTROLLER: &str = "brokerClusterName=DefaultCluster\nbrokerName=broker-a\n\
        brokerId=-1\nbrokerRole=SLAVE\nenableControllerMode=true\nnamesrvAddr=127.0.0.1:9876\n";

    /// (file, its identity properties, the id Java starts it with; None: elected at run time).
    fn files() -> Vec<(String, String, Option<u64>)> {
        let mut v = Vec::new();
        let dc = "brokerClusterName=DefaultCluster\n";
        for layout in ["2m-2s-async", "2m-2s-sync"] {
            let role = if layout.ends_with("sync") && !layout.ends_with("async") {
                "SYNC_MASTER"
            } else {
                "ASYNC_MASTER"
            };
            for b in ["a", "b"] {
                v.push((
                    format!("{layout}/broker-{b}.properties"),
                    format!("{dc}brokerName=broker-{b}\nbrokerId=0\nbrokerRole={role}\n"),
                    Some(0),
                ));
                v.push((
                    format!("{layout}/broker-{b}-s.properties"),
                    format!("{dc}brokerName=broker-{b}\nbrokerId=1\nbrokerRole=SLAVE\n"),
                    Some(1),
                ));
            }
        }
        for b in ["a", "b", "trace"] {
            v.push((
                format!("2m-noslave/broker-{b}.properties"),
                format!("{dc}brokerName=broker-{b}\nbrokerId=0\nbrokerRole=ASYNC_MASTER\n"),
                Some(0),
            ));
        }
        v.push((
            "broker.conf".into(),
            format!("{dc}brokerName = broker-a\nbrokerId = 0\nbrokerRole = ASYNC_MASTER\n"),
            Some(0),
        ));
        for (n, port) in [(0, 30911), (1, 30921), (2, 30931)] {
            v.push((
                format!("dledger/broker-n{n}.conf"),
                format!("{DLEDGER}listenPort={port}\ndLegerSelfId=n{n}\nstorePathRootDir=/tmp/rmqstore/node0{n}\n"),
                None,
            ));
        }
        v
    }

    /// The files 5.3.3 adds.
    fn files_5_3_3() -> Vec<(String, String, Option<u64>)> {
        let mut v = Vec::new();
        for (file, name, id, role, port) in [
            (
                "broker-a-in-container1",
                "broker-a",
                0,
                "SYNC_MASTER",
                10911,
            ),
            ("broker-a-in-container2", "broker-a", 1, "SLAVE", 10911),
            ("broker-b-in-container1", "broker-b", 1, "SLAVE", 20911),
            (
                "broker-b-in-container2",
                "broker-b",
                0,
                "SYNC_MASTER",
                20911,
            ),
        ] {
            v.push((
                format!("container/2container-2m-2s/{file}.conf"),
                format!(
                    "brokerClusterName=DefaultCluster\nbrokerName={name}\nbrokerId={id}\n\
                     brokerRole={role}\nlistenPort={port}\nhaListenPort={}\n\
                     enableSlaveActingMaster=true\n",
                    port + 1
                ),
                Some(id),
            ));
        }
        for (n, port) in [(0, 30911), (1, 30921)] {
            v.push((
                format!("controller/quick-start/broker-n{n}.conf"),
                format!("{CONTROLLER}listenPort={port}\n"),
                None,
            ));
        }
        v
    }

    fn load(text: &str) -> Config {
        let local = || Ok(Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))));
        let p = java_properties::read(text.as_bytes()).unwrap();
        let mapped = map(Path::new("broker.conf"), &p, local).unwrap();
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        for prop in mapped.props {
            f = f.merge(prop);
        }
        f.extract().unwrap()
    }

    #[test]
    fn every_shipped_broker_file_loads_with_the_java_brokers_identity() {
        let old = files();
        let new: Vec<_> = old.iter().cloned().chain(files_5_3_3()).collect();
        assert_eq!((old.len(), new.len()), (15, 21));
        for (file, text, id) in new {
            let c = load(&text);
            match id {
                Some(id) => {
                    assert_eq!(c.broker.identity, IdentitySource::Config, "{file}");
                    assert_eq!(c.broker.id, id, "{file}");
                }
                None => {
                    assert_eq!(c.broker.identity, IdentitySource::Broker, "{file}");
                    assert_eq!(c.broker.topics.source, crate::config::TopicSource::Broker);
                    assert_eq!(c.broker.id, 0, "{file}: the file's id is not used");
                }
            }
        }
    }

    #[test]
    fn roles_map_as_java_maps_them() {
        // A master role forces id 0 whatever the file says; the default role is ASYNC_MASTER.
        assert_eq!(load("brokerName=b\nbrokerId=3\n").broker.id, 0);
        assert_eq!(
            load("brokerName=b\nbrokerId=3\nbrokerRole=SYNC_MASTER\n")
                .broker
                .id,
            0
        );
        assert_eq!(
            load("brokerName=b\nbrokerId=3\nbrokerRole=SLAVE\n")
                .broker
                .id,
            3
        );
        let local = || Ok(Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))));
        let refused = |text: &str| {
            let p = java_properties::read(text.as_bytes()).unwrap();
            map(Path::new("b.conf"), &p, local).unwrap_err()
        };
        let e = refused("brokerName=b\nbrokerRole=SLAVE\n");
        assert_eq!(e.key, "brokerId");
        assert!(e.reason.contains("must be 1 or more"), "{e}");
        let e = refused("brokerName=b\nbrokerId=-1\nbrokerRole=SLAVE\n");
        assert_eq!(e.key, "brokerId");
        let e = refused("brokerName=b\nenableDLegerCommitLog=true\nenableControllerMode=true\n");
        assert_eq!(e.key, "enableControllerMode");
        let e = refused("brokerName=b\nbrokerRole=LEADER\n");
        assert_eq!(e.key, "brokerRole");
        // -1 alone (no DLedger, no controller) is not "elected": it is refused for a slave and
        // forced to 0 for a master, as Java does.
        assert_eq!(load("brokerName=b\nbrokerId=-1\n").broker.id, 0);
    }
}
