//! The broker's own properties file (`broker.conf`) as a configuration source, so that the
//! operator states the broker's identity once. Each mapped property is a figment provider of its
//! own, so `check-config` names the property a value came from.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::ConfigError;

/// One mapped value and the broker.conf properties it came from.
#[derive(Debug)]
pub struct Prop {
    name: String,
    data: Dict,
}

impl Provider for Prop {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.data.clone())]))
    }
}

/// What a broker.conf mapped to: providers in order, and warnings to log once logging is up.
#[derive(Debug)]
pub struct Mapped {
    /// One provider per configuration key.
    pub props: Vec<Prop>,
    /// Values adjusted as the Java broker adjusts them.
    pub warnings: Vec<String>,
}

/// Java's `Boolean.parseBoolean`: "true" in any case is true, anything else false.
fn java_bool(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

/// The boolean properties the mapping reads.
const BOOLEANS: [&str; 4] = [
    "fetchNamesrvAddrByAddressServer",
    "enableSplitRegistration",
    "compressedRegister",
    "forceRegister",
];

/// "true" or "false" in any case: what a boolean property was meant to be.
fn is_java_bool_literal(v: &str) -> bool {
    java_bool(v) || v.trim().eq_ignore_ascii_case("false")
}

/// This host's address as the Java broker picks `brokerIP1` when unset: not loopback; an IPv4
/// outside the private ranges first, else the last private IPv4, else an IPv6.
pub fn local_address() -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    pick_address(&addrs)
}

fn pick_address(addrs: &[IpAddr]) -> Option<IpAddr> {
    let v4: Vec<&IpAddr> = addrs.iter().filter(|a| a.is_ipv4()).collect();
    let public = v4
        .iter()
        .find(|a| matches!(a, IpAddr::V4(v) if !v.is_private()));
    public
        .or(v4.last())
        .copied()
        .or_else(|| addrs.iter().find(|a| a.is_ipv6()))
        .copied()
}

fn host_port(ip: &str, port: u32) -> String {
    if ip.contains(':') && !ip.starts_with('[') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `~` and `${user.home}` mean the broker user's home: `HOME`.
fn expand_home(p: &str) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let p = p.replace("${user.home}", &home);
    match p.strip_prefix('~') {
        Some(rest) => PathBuf::from(format!("{home}{rest}")),
        None => PathBuf::from(p),
    }
}

/// Reads and maps `path`. Unknown properties are ignored (it is the broker's file); a value that
/// cannot be mapped is an error naming the property.
pub fn load(path: &Path) -> Result<Mapped, ConfigError> {
    let file_err = |reason: String| ConfigError {
        key: "broker.conf_file".into(),
        source_name: path.display().to_string(),
        reason,
    };
    let f = std::fs::File::open(path).map_err(|e| file_err(e.to_string()))?;
    let props = java_properties::read(std::io::BufReader::new(f))
        .map_err(|e| file_err(format!("not a properties file: {e}")))?;
    map(path, &props, local_address)
}

fn map(
    path: &Path,
    props: &HashMap<String, String>,
    local: impl Fn() -> Option<IpAddr>,
) -> Result<Mapped, ConfigError> {
    let file = path.display();
    let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let bad = |prop: &str, reason: String| ConfigError {
        key: prop.to_string(),
        source_name: format!("broker.conf {file}: {prop}"),
        reason,
    };
    let number = |prop: &str, max: u64| -> Result<Option<u64>, ConfigError> {
        get(prop)
            .map(|v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| bad(prop, format!("{v:?} is not a number up to {max}")))
            })
            .transpose()
    };
    let mut out = Mapped {
        props: Vec::new(),
        warnings: Vec::new(),
    };
    let mut put = |from: &str, key: &str, value: Value| {
        let mut dict = Dict::new();
        let mut parts = key.split('.').rev();
        let leaf = parts.next().unwrap_or(key).to_string();
        dict.insert(leaf, value);
        for p in parts {
            let mut outer = Dict::new();
            outer.insert(p.to_string(), Value::from(dict));
            dict = outer;
        }
        out.props.push(Prop {
            name: format!("broker.conf {file}: {from}"),
            data: dict,
        });
    };
    if let Some(v) = get("brokerClusterName") {
        put("brokerClusterName", "broker.cluster", Value::from(v));
    }
    if let Some(v) = get("brokerName") {
        put("brokerName", "broker.name", Value::from(v));
    }
    map_identity(props, &bad, &mut put)?;
    // The Java broker's defaults: listenPort 10911, haListenPort listenPort + 1,
    // brokerIP2 = brokerIP1 = this host's address.
    let port = number("listenPort", 65_535)?.unwrap_or(10_911) as u32;
    let ip1 = match get("brokerIP1") {
        Some(ip) => ip.to_string(),
        None => local().map(|a| a.to_string()).ok_or_else(|| {
            bad(
                "brokerIP1",
                "unset, and this host has no address but loopback: set brokerIP1".into(),
            )
        })?,
    };
    put(
        "brokerIP1, listenPort",
        "broker.addr",
        Value::from(host_port(&ip1, port)),
    );
    let ha_port = number("haListenPort", 65_535)?.map_or(port + 1, |p| p as u32);
    let ip2 = get("brokerIP2").map_or(ip1.clone(), str::to_string);
    put(
        "brokerIP2, haListenPort",
        "broker.ha_addr",
        Value::from(host_port(&ip2, ha_port)),
    );
    if let Some(v) = get("namesrvAddr") {
        put("namesrvAddr", "namesrv.addrs", Value::from(v));
    }
    if get("fetchNamesrvAddrByAddressServer").is_some_and(java_bool) {
        let domain = get("rmqAddressServerDomain").unwrap_or("jmenv.tbsite.net");
        put(
            "rmqAddressServerDomain",
            "namesrv.domain",
            Value::from(domain),
        );
        if let Some(sub) = get("rmqAddressServerSubGroup") {
            put(
                "rmqAddressServerSubGroup",
                "namesrv.subgroup",
                Value::from(sub),
            );
        }
    }
    if let Some(ms) = number("registerNameServerPeriod", u64::from(u32::MAX))? {
        // Java clamps it to 10..60 s; so do we, with a word.
        let clamped = ms.clamp(10_000, 60_000);
        if clamped != ms {
            out.warnings.push(format!(
                "broker.conf {file}: registerNameServerPeriod={ms} is outside 10000..=60000 ms; using {clamped} ms as the Java broker does"
            ));
        }
        put(
            "registerNameServerPeriod",
            "register.interval",
            Value::from(format!("{clamped}ms")),
        );
    }
    if let Some(ms) = number("registerBrokerTimeoutMills", u64::from(u32::MAX))? {
        put(
            "registerBrokerTimeoutMills",
            "register.timeout",
            Value::from(format!("{ms}ms")),
        );
    }
    if let Some(v) = get("enableSplitRegistration") {
        put(
            "enableSplitRegistration",
            "register.always_split",
            Value::from(java_bool(v)),
        );
    }
    if let Some(n) = number("splitRegistrationSize", 100_000)? {
        put(
            "splitRegistrationSize",
            "register.split_size",
            Value::from(n),
        );
    }
    if let Some(v) = get("compressedRegister") {
        put(
            "compressedRegister",
            "register.compressed",
            Value::from(java_bool(v)),
        );
    }
    if get("forceRegister").is_some_and(|v| !java_bool(v)) {
        put(
            "forceRegister",
            "register.force_every",
            Value::from("never"),
        );
    }
    let root = get("storePathRootDir").map_or_else(|| expand_home("~/store"), expand_home);
    let topics = root.join("config").join("topics.json");
    put(
        "storePathRootDir",
        "broker.topics.file",
        Value::from(topics.display().to_string()),
    );
    if let Some(p) = number("brokerPermission", 7)? {
        put("brokerPermission", "broker.permission", Value::from(p));
    }
    // Java reads anything but "true" as false and so does the mapping (the daemon must see the
    // broker as the broker sees itself), but a typo deserves a word.
    for prop in BOOLEANS {
        if let Some(v) = get(prop).filter(|v| !is_java_bool_literal(v)) {
            out.warnings.push(format!(
                "broker.conf {file}: {prop}={v} is neither true nor false; read as false, as the Java broker does"
            ));
        }
    }
    Ok(out)
}

/// The id as the Java broker sets it at start: DLedger and controller mode elect it at run
/// time (identity from the broker); otherwise a master role (the default, ASYNC_MASTER) is id 0
/// and a slave needs an id of 1 or more.
fn map_identity(
    props: &HashMap<String, String>,
    bad: &impl Fn(&str, String) -> ConfigError,
    put: &mut impl FnMut(&str, &str, Value),
) -> Result<(), ConfigError> {
    let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let dledger = get("enableDLegerCommitLog").is_some_and(java_bool);
    let controller = get("enableControllerMode").is_some_and(java_bool);
    if dledger && controller {
        return Err(bad(
            "enableControllerMode",
            "enableControllerMode and enableDLegerCommitLog cannot both be true (the Java broker refuses to start)".into(),
        ));
    }
    if dledger || controller {
        let prop = if dledger {
            "enableDLegerCommitLog"
        } else {
            "enableControllerMode"
        };
        // The id is elected: it is read from the broker at run time, with its topics.
        put(prop, "broker.identity", Value::from("broker"));
        put(prop, "broker.topics.source", Value::from("broker"));
        return Ok(());
    }
    let id_text = get("brokerId").unwrap_or("0");
    let id = id_text
        .parse::<i64>()
        .map_err(|_| bad("brokerId", format!("{id_text:?} is not a number")))?;
    let role_text = get("brokerRole").unwrap_or("ASYNC_MASTER");
    let role = crate::broker::own_config::BrokerRole::parse(role_text).ok_or_else(|| {
        bad(
            "brokerRole",
            format!("{role_text:?} is not ASYNC_MASTER, SYNC_MASTER or SLAVE"),
        )
    })?;
    if role.is_master() {
        put("brokerRole", "broker.id", Value::from(0u64));
        return Ok(());
    }
    if id < 1 {
        return Err(bad(
            "brokerId",
            format!("{id} with brokerRole=SLAVE: a slave's brokerId must be 1 or more (the Java broker refuses to start)"),
        ));
    }
    put("brokerId", "broker.id", Value::from(id as u64));
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let local = || Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
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
        let local = || None;
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
    }

    #[test]
    fn a_boolean_that_is_not_true_or_false_is_false_as_in_java_with_a_warning() {
        let m = map(
            Path::new("b.conf"),
            &props("brokerIP1=h\ncompressedRegister=maybe\nenableSplitRegistration=TRUE\n"),
            || None,
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
            || None,
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
}

/// Every broker file of RocketMQ's own `distribution/conf` (4.9.8: 15, 5.3.3: 21, not counting
/// `broker-container*.conf`), by the properties that decide identity, loads with the identity
/// the Java broker starts with: a fixed id, or "from the broker at run time" where an election
/// decides it.
#[cfg(test)]
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
        let local = || Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)));
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
        let local = || Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)));
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
