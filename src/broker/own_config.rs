//! GET_BROKER_CONFIG (code 26): the broker's own properties, and the identity they describe
//! now. Java answers `key=value` lines, the Rust broker `key:value` lines with its own spellings
//! (`brokerIp1`, `enableDledgerCommitLog`). The body can hold secrets from the broker's file:
//! it is never logged, only the fields read here are kept.

use std::collections::HashMap;
use std::time::Duration;

use super::{ApiError, BrokerApi, Request};
use crate::protocol::code::request;
use crate::protocol::RemotingCommand;

/// Java 5.0.x (5.0.0-SNAPSHOT = 412 .. 5.0.9 = 431) reports `brokerId` as broker.conf had it,
/// not the id a DLedger or controller role change set (fixed in 5.1.0 = 433).
const JAVA_5_0: std::ops::Range<i32> = 412..crate::protocol::code::VERSION_5_1_0;

/// The broker's role as it reports it (`brokerRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRole {
    /// `ASYNC_MASTER`.
    AsyncMaster,
    /// `SYNC_MASTER`.
    SyncMaster,
    /// `SLAVE`.
    Slave,
}

impl BrokerRole {
    /// Parses Java's spelling.
    pub fn parse(s: &str) -> Option<BrokerRole> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ASYNC_MASTER" => Some(BrokerRole::AsyncMaster),
            "SYNC_MASTER" => Some(BrokerRole::SyncMaster),
            "SLAVE" => Some(BrokerRole::Slave),
            _ => None,
        }
    }

    /// Whether the role is a master's.
    pub fn is_master(self) -> bool {
        self != BrokerRole::Slave
    }

    /// Java's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerRole::AsyncMaster => "ASYNC_MASTER",
            BrokerRole::SyncMaster => "SYNC_MASTER",
            BrokerRole::Slave => "SLAVE",
        }
    }
}

/// What the broker says of itself: identity and registration settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerReport {
    /// `brokerClusterName`.
    pub cluster: String,
    /// `brokerName`.
    pub name: String,
    /// The id it runs as now; `None` while it has none (`-1`: no election yet).
    pub id: Option<u64>,
    /// `brokerRole`.
    pub role: BrokerRole,
    /// `brokerIP1:listenPort`.
    pub addr: String,
    /// `brokerIP2:haListenPort` (`brokerIP2` empty or absent: `brokerIP1`).
    pub ha_addr: String,
    /// `brokerPermission`.
    pub permission: Option<u32>,
    /// `enableSlaveActingMaster`.
    pub acting_master: bool,
    /// `brokerNotActiveTimeoutMillis`.
    pub not_active_timeout: Option<Duration>,
    /// `enableSplitRegistration`.
    pub always_split: Option<bool>,
    /// `splitRegistrationSize`.
    pub split_size: Option<usize>,
    /// `namesrvAddr`, `;`-separated.
    pub namesrv_addrs: Vec<String>,
}

/// Why an answer gives no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A property the identity needs is absent.
    #[error("the broker's config has no `{0}`")]
    Missing(&'static str),
    /// A property holds something that cannot be used.
    #[error("the broker's `{key}` is {value:?}, not {expected}")]
    Invalid {
        /// The property.
        key: &'static str,
        /// What it held (never a secret: only identity properties are read).
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A Java 5.0.x slave in controller mode reports the id its file had, not the one the
    /// controller gave it: the id is its controller's to say (see
    /// [`BrokerApi::broker_report`](super::BrokerApi::broker_report)).
    #[error("a Java 5.0.x slave in controller mode does not report its id (fixed in 5.1.0): its controller has to be asked")]
    IdFromController(Box<ControllerSlave>),
    /// A Java 5.0.x slave in controller mode whose id no controller gave: each controller
    /// tried, with what it said (none when its `controllerAddr` names none).
    #[error("a Java 5.0.x slave in controller mode does not report its id (fixed in 5.1.0) and no controller gave it: {}", tried_text(.tried))]
    ControllerSlaveOn50 {
        /// `(controller, what it said)`, in the order asked.
        tried: Vec<(String, String)>,
    },
}

/// A Java 5.0.x slave in controller mode as it reported itself: all but its id, and the
/// controllers that know the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerSlave {
    /// What the broker said, with `id` `None`.
    pub report: BrokerReport,
    /// `controllerAddr`, `;`-separated, in the broker's order.
    pub controllers: Vec<String>,
}

/// The controllers tried and what each said, for the health check's reason.
fn tried_text(tried: &[(String, String)]) -> String {
    if tried.is_empty() {
        return "its `controllerAddr` names no controller".to_string();
    }
    let each: Vec<String> = tried.iter().map(|(c, why)| format!("{c}: {why}")).collect();
    format!("tried {}", each.join("; "))
}

/// Splits the body into properties: each line at its first `=` (Java) or `:` (Rust); no
/// Java-properties escaping (the broker writes none).
pub fn parse_properties(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let at = line.find(['=', ':'])?;
            Some((
                line[..at].trim().to_string(),
                line[at + 1..].trim().to_string(),
            ))
        })
        .collect()
}

struct Props<'a>(&'a HashMap<String, String>);

impl Props<'_> {
    /// The first spelling present (Java's first, then the Rust broker's).
    fn get(&self, keys: &[&'static str]) -> Option<&str> {
        keys.iter().find_map(|k| self.0.get(*k)).map(String::as_str)
    }

    fn required(&self, keys: &[&'static str]) -> Result<&str, ReportError> {
        self.get(keys)
            .filter(|v| !v.is_empty())
            .ok_or(ReportError::Missing(keys[0]))
    }

    fn number<T: std::str::FromStr>(
        &self,
        keys: &[&'static str],
        expected: &'static str,
    ) -> Result<Option<T>, ReportError> {
        match self.get(keys) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ReportError::Invalid {
                key: keys[0],
                value: v.to_string(),
                expected,
            }),
        }
    }

    fn flag(&self, keys: &[&'static str]) -> Option<bool> {
        self.get(keys).map(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A `;`-separated list of addresses; blank entries name no address and are dropped.
    fn list(&self, key: &'static str) -> Vec<String> {
        self.get(&[key])
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect()
    }
}

impl BrokerReport {
    /// Reads the identity from the properties of a broker whose remoting version is `version`.
    pub fn from_properties(
        props: &HashMap<String, String>,
        version: i32,
    ) -> Result<BrokerReport, ReportError> {
        let p = Props(props);
        let role_text = p.required(&["brokerRole"])?;
        let role = BrokerRole::parse(role_text).ok_or_else(|| ReportError::Invalid {
            key: "brokerRole",
            value: role_text.to_string(),
            expected: "ASYNC_MASTER, SYNC_MASTER or SLAVE",
        })?;
        let ip1 = p.required(&["brokerIP1", "brokerIp1"])?;
        let ip2 = p.get(&["brokerIP2", "brokerIp2"]).filter(|v| !v.is_empty());
        let port: u16 = p
            .number(&["listenPort"], "a port")?
            .ok_or(ReportError::Missing("listenPort"))?;
        let ha_port: u16 = p
            .number(&["haListenPort"], "a port")?
            .unwrap_or(port.saturating_add(1));
        let cluster = p.required(&["brokerClusterName"])?.to_string();
        let name = p.required(&["brokerName"])?.to_string();
        let id = current_id(&p, role, version)?;
        let report = BrokerReport {
            cluster,
            name,
            id: match id {
                Id::Known(id) => id,
                Id::FromController => None,
            },
            role,
            addr: join(ip1, port),
            ha_addr: join(ip2.unwrap_or(ip1), ha_port),
            permission: p.number(&["brokerPermission"], "a permission")?,
            acting_master: p.flag(&["enableSlaveActingMaster"]).unwrap_or(false),
            not_active_timeout: p
                .number::<u64>(&["brokerNotActiveTimeoutMillis"], "milliseconds")?
                .map(Duration::from_millis),
            always_split: p.flag(&["enableSplitRegistration"]),
            split_size: p.number(&["splitRegistrationSize"], "a topic count")?,
            namesrv_addrs: p.list("namesrvAddr"),
        };
        match id {
            Id::Known(_) => Ok(report),
            Id::FromController => Err(ReportError::IdFromController(Box::new(ControllerSlave {
                report,
                controllers: p.list("controllerAddr"),
            }))),
        }
    }
}

/// `ip:port`, with brackets for an IPv6 address.
fn join(ip: &str, port: u16) -> String {
    if ip.contains(':') && !ip.starts_with('[') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Where the id the broker runs as comes from.
enum Id {
    /// From its answer: the id, `None` while it has none.
    Known(Option<u64>),
    /// From its controller: a Java 5.0.x slave in controller mode.
    FromController,
}

/// The id the broker runs as. Reported ids are current on 4.x and 5.1+; on 5.0.x the id of an
/// HA broker is derived as Java sets it (master role: 0; DLedger follower: the number in
/// `dLegerSelfId` + 1; controller-mode slave: its controller's id for its address).
fn current_id(p: &Props<'_>, role: BrokerRole, version: i32) -> Result<Id, ReportError> {
    let dledger = p
        .flag(&["enableDLegerCommitLog", "enableDledgerCommitLog"])
        .unwrap_or(false);
    let controller = p.flag(&["enableControllerMode"]).unwrap_or(false);
    let reported: Option<i64> = p.number(&["brokerId"], "an id")?;
    let stale = JAVA_5_0.contains(&version) && (dledger || controller);
    if !stale {
        if let Some(id) = reported {
            return Ok(Id::Known(u64::try_from(id).ok()));
        }
    }
    if dledger || stale {
        if role.is_master() {
            return Ok(Id::Known(Some(0)));
        }
        if controller {
            return Ok(Id::FromController);
        }
        let self_id = p.required(&["dLegerSelfId"])?;
        let digits: String = self_id
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        // A number too large for an id (n18446744073709551615) is as unusable as none.
        return match digits.parse::<u64>().ok().and_then(|n| n.checked_add(1)) {
            Some(id) => Ok(Id::Known(Some(id))),
            None => Err(ReportError::Invalid {
                key: "dLegerSelfId",
                value: self_id.to_string(),
                expected: "a name ending in a number (n0, n1, ...)",
            }),
        };
    }
    Err(ReportError::Missing("brokerId"))
}

/// GET_BROKER_CONFIG: the broker's properties and its remoting version.
struct GetBrokerConfig;

impl Request for GetBrokerConfig {
    const CODE: i32 = request::GET_BROKER_CONFIG;
    type Response = (HashMap<String, String>, i32);

    fn parse(reply: RemotingCommand) -> Result<Self::Response, ApiError> {
        let body = reply.body.as_deref().unwrap_or_default();
        Ok((parse_properties(body), reply.version))
    }
}

/// The broker's refusal threshold in percent, from its `diskSpaceWarningLevelRatio` as Java
/// reads it: an integer percent on 5.x (a fraction is taken as one), clamped to 35..=90; 90
/// when absent or unreadable.
pub fn disk_threshold(props: &std::collections::HashMap<String, String>) -> u32 {
    const DEFAULT: u32 = 90;
    let Some(v) = props
        .get("diskSpaceWarningLevelRatio")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
    else {
        return DEFAULT;
    };
    let pct = if v <= 1.0 { v * 100.0 } else { v };
    (pct.round() as u32).clamp(35, 90)
}

impl BrokerApi {
    /// The broker's refusal threshold in percent, from its GET_BROKER_CONFIG answer.
    pub async fn broker_disk_threshold(&self, addr: &str, timeout: Duration) -> Result<u32, ApiError> {
        let (props, _) = self.call(addr, &GetBrokerConfig, timeout).await?;
        Ok(disk_threshold(&props))
    }

    /// Asks the broker at `addr` who it says it is (GET_BROKER_CONFIG, one exchange). An answer
    /// is proof that it serves; an answer without a usable identity is an error, and a Java
    /// 5.0.x slave in controller mode is [`ReportError::IdFromController`]: its id is its
    /// controller's to say ([`broker_report`](Self::broker_report) asks it).
    pub async fn broker_config_report(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<BrokerReport, ApiError> {
        let (props, version) = self.call(addr, &GetBrokerConfig, timeout).await?;
        BrokerReport::from_properties(&props, version).map_err(ApiError::Report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_java_s_clamped_percent_or_90() {
        let p = |v: &str| {
            std::collections::HashMap::from([(
                "diskSpaceWarningLevelRatio".to_string(),
                v.to_string(),
            )])
        };
        assert_eq!(disk_threshold(&p("90")), 90);
        assert_eq!(disk_threshold(&p("85")), 85);
        assert_eq!(disk_threshold(&p("95")), 90, "clamped as Java does");
        assert_eq!(disk_threshold(&p("10")), 35);
        assert_eq!(disk_threshold(&p("0.8")), 80, "a fraction (4.x's system property)");
        assert_eq!(disk_threshold(&p("x")), 90);
        assert_eq!(disk_threshold(&std::collections::HashMap::new()), 90);
    }

    const JAVA_498: &[u8] =
        include_bytes!("../../tests/data/java-4.9.8-GET_BROKER_CONFIG.body.txt");
    const JAVA_500: &[u8] =
        include_bytes!("../../tests/data/java-5.0.0-GET_BROKER_CONFIG.body.txt");

    fn report(text: &str, version: i32) -> Result<BrokerReport, ReportError> {
        BrokerReport::from_properties(&parse_properties(text.as_bytes()), version)
    }

    #[test]
    fn java_captures_give_the_brokers_identity() {
        for (body, version) in [(JAVA_498, 399), (JAVA_500, 413)] {
            let r = BrokerReport::from_properties(&parse_properties(body), version).unwrap();
            assert_eq!(r.cluster, "CapCluster");
            assert_eq!(r.name, "cap-a");
            assert_eq!(r.id, Some(0));
            assert_eq!(r.role, BrokerRole::AsyncMaster);
            assert_eq!(r.addr, "127.0.0.1:22911");
            assert_eq!(r.ha_addr, "127.0.0.1:22912");
            assert_eq!(r.permission, Some(6));
            assert_eq!(r.namesrv_addrs, vec!["127.0.0.1:22877"]);
        }
        let r = BrokerReport::from_properties(&parse_properties(JAVA_500), 413).unwrap();
        assert_eq!(r.not_active_timeout, Some(Duration::from_secs(10)));
        assert!(!r.acting_master);
    }

    const RUST_FORM: &str = "brokerName:rb\nbrokerClusterName:RC\nbrokerId:1\nbrokerRole:SLAVE\n\
        brokerIp1:10.0.0.5\nbrokerIp2:\nlistenPort:10911\nhaListenPort:10912\n\
        enableDledgerCommitLog:false\nnamesrvAddr:127.0.0.1:9876;127.0.0.1:9877\n";

    #[test]
    fn the_rust_brokers_colon_form_and_spellings_are_read() {
        let r = report(RUST_FORM, 479).unwrap();
        assert_eq!((r.cluster.as_str(), r.name.as_str()), ("RC", "rb"));
        assert_eq!(r.id, Some(1));
        assert_eq!(r.role, BrokerRole::Slave);
        assert_eq!(r.addr, "10.0.0.5:10911");
        assert_eq!(r.ha_addr, "10.0.0.5:10912", "empty brokerIp2: brokerIp1");
        assert_eq!(r.namesrv_addrs.len(), 2);
    }

    const DLEDGER: &str =
        "brokerName:b\nbrokerClusterName:C\nbrokerIP1:1.2.3.4\nlistenPort:30911\n\
        enableDLegerCommitLog=true\ndLegerSelfId=n1\ndLegerPeers=n0-a:1;n1-b:2;n2-c:3\n";

    #[test]
    fn ids_follow_the_broker_as_each_version_reports_them() {
        // 4.9.8 before an election: -1, nothing to register yet.
        let pre = format!("{DLEDGER}brokerId=-1\nbrokerRole=ASYNC_MASTER\n");
        assert_eq!(report(&pre, 399).unwrap().id, None);
        // 4.x and 5.1+: the reported id is current.
        let follower = format!("{DLEDGER}brokerId=2\nbrokerRole=SLAVE\n");
        assert_eq!(report(&follower, 399).unwrap().id, Some(2));
        assert_eq!(report(&follower, 479).unwrap().id, Some(2));
        // 5.0.x: the id is the file's; derived from role and dLegerSelfId instead.
        let stale = format!("{DLEDGER}brokerId=0\nbrokerRole=SLAVE\n");
        assert_eq!(report(&stale, 413).unwrap().id, Some(2));
        let leader = format!("{DLEDGER}brokerRole=SYNC_MASTER\n");
        assert_eq!(report(&leader, 413).unwrap().id, Some(0));
        assert_eq!(
            report(&leader, 399).unwrap().id,
            Some(0),
            "no brokerId line"
        );
        // 5.0.x controller mode: a master is 0 by its role; a slave's id is not reported.
        let ctl = "brokerName:b\nbrokerClusterName:C\nbrokerIP1:1.2.3.4\nlistenPort:1\n\
                   enableControllerMode=true\nbrokerId=-1\n";
        let master = format!("{ctl}brokerRole=SYNC_MASTER\n");
        assert_eq!(report(&master, 413).unwrap().id, Some(0));
        // A slave's is its controller's to say: all else reported, and the controllers named.
        let slave = format!("{ctl}brokerRole=SLAVE\ncontrollerAddr= 10.0.0.1:9878;;10.0.0.2:9878 \n");
        let Err(ReportError::IdFromController(ask)) = report(&slave, 413) else {
            panic!("{:?}", report(&slave, 413));
        };
        assert_eq!(ask.controllers, ["10.0.0.1:9878", "10.0.0.2:9878"]);
        assert_eq!((ask.report.id, ask.report.role), (None, BrokerRole::Slave));
        assert_eq!((ask.report.name.as_str(), ask.report.addr.as_str()), ("b", "1.2.3.4:1"));
        // 5.1+: -1 means "not elected yet".
        assert_eq!(report(&slave, 433).unwrap().id, None);
    }

    #[test]
    fn unusable_answers_are_typed_errors() {
        assert_eq!(report("", 479), Err(ReportError::Missing("brokerRole")));
        let bad = "brokerRole=LEADER\n";
        assert!(matches!(
            report(bad, 479),
            Err(ReportError::Invalid {
                key: "brokerRole",
                ..
            })
        ));
        let no_port = "brokerRole=SLAVE\nbrokerIP1=1.1.1.1\n";
        assert_eq!(
            report(no_port, 479),
            Err(ReportError::Missing("listenPort"))
        );
        let huge = format!("{DLEDGER}brokerRole=SLAVE\n")
            .replace("dLegerSelfId=n1", "dLegerSelfId=n18446744073709551615");
        assert!(matches!(
            report(&huge, 413),
            Err(ReportError::Invalid {
                key: "dLegerSelfId",
                ..
            })
        ));
        let garbage_id = format!("{RUST_FORM}brokerId:x\n").replace("brokerId:1\n", "");
        assert!(matches!(
            report(&garbage_id, 479),
            Err(ReportError::Invalid {
                key: "brokerId",
                ..
            })
        ));
    }
}
