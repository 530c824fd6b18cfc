//! The broker's own properties file (`broker.conf`) as a configuration source, so that the
//! operator states the broker's identity once. Each mapped property is a figment provider of its
//! own, so `check-config` names the property a value came from.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::error::ConfigError;
use crate::broker::SPLIT_SIZES;
use crate::address_server::DEFAULT_DOMAIN;

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
/// outside the private ranges first, else the last private IPv4, else an IPv6. Err: the
/// interfaces could not be listed (a sandbox without netlink sockets, say).
pub fn local_address() -> std::io::Result<Option<IpAddr>> {
    let addrs: Vec<IpAddr> = if_addrs::get_if_addrs()?
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    Ok(pick_address(&addrs))
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
    local: impl Fn() -> std::io::Result<Option<IpAddr>>,
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
        // Which of the two it is tells the operator what to fix: the sandbox, or the file.
        None => match local() {
            Ok(Some(a)) => a.to_string(),
            Ok(None) => {
                return Err(bad(
                    "brokerIP1",
                    "unset, and this host has no address but loopback: set brokerIP1".into(),
                ))
            }
            Err(e) => {
                return Err(bad(
                    "brokerIP1",
                    format!(
                        "unset, and this host's addresses cannot be listed ({e}; a sandbox \
                         forbidding netlink sockets?): set brokerIP1"
                    ),
                ))
            }
        },
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
        let domain = get("rmqAddressServerDomain").unwrap_or(DEFAULT_DOMAIN);
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
    if let Some(n) = number("splitRegistrationSize", *SPLIT_SIZES.end() as u64)? {
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
mod tests;
