//! The configuration model: [`Config`] and its sections, their defaults, and the values derived
//! from them. The `[broker]` section is in `broker_section.rs`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::broker_section::BrokerConfig;
use super::serde_helpers::{addr_list, force_every_serde, off_serde};
use crate::address_server::{AddressServer, DEFAULT_SUBGROUP};
use crate::protocol::DEFAULT_MAX_FRAME;
use crate::tls::TlsConfig;

/// Default `remoting.max_reply_frame`: a 100k-topic table is 18–27 MB.
pub const DEFAULT_MAX_REPLY_FRAME: usize = 128 * 1024 * 1024;

/// Default `register.heartbeat`: RocketMQ 5's broker heartbeat period.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// Default `register.heartbeat_timeout`: RocketMQ 5's short expiry, so that a lost host leaves
/// the routes within seconds instead of the NameServer's 120 s.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// Prefix of the environment overrides.
pub const ENV_PREFIX: &str = "RMQ_REGISTRAR_";

/// Environment variable naming the TOML config file.
pub const ENV_CONFIG: &str = "RMQ_REGISTRAR_CONFIG";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Who the broker is.
    pub broker: BrokerConfig,
    /// Where the NameServers are.
    pub namesrv: NamesrvConfig,
    /// How registration runs.
    pub register: RegisterConfig,
    /// Slave pulls from the master (only when `broker.id` != 0).
    pub slave: SlaveConfig,
    /// Remoting client settings.
    pub remoting: RemotingConfig,
    /// The metrics and health endpoint.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// ACL 1.0 credentials for signing requests (a master with ACL on checks them).
    pub acl: AclConfig,
    /// TLS to NameServers, the master, the broker and the address server.
    pub tls: TlsConfig,
    /// Draining the broker before it stops (`POST /drain`, `rmq-registrar drain`).
    pub drain: DrainConfig,
    /// Reading back what producers are routed to, on every NameServer.
    pub route: RouteConfig,
    /// The broker's write health: its disk against the level at which it refuses writes.
    pub fault: FaultConfig,
}

/// `[fault]`: the fault drain: a master that cannot take writes (its disk past its refusal
/// threshold, its store not writable), read from its own answers, is routed read-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// The fault drain is on (`false`: a broker that refuses writes stays writable in the
    /// routes, with a WARN at start).
    pub disk: bool,
    /// The disk use (percent) above which the broker refuses writes, for a broker that sets it
    /// with a `-D` property (unset: its GET_BROKER_CONFIG `diskSpaceWarningLevelRatio`).
    pub disk_threshold: Option<u32>,
    /// Points below the threshold from which the broker is drained ahead of its refusal (and
    /// the alert warns within twice this); the drain ends below threshold − 2 × margin.
    pub disk_margin: u32,
    /// Other masters of the cluster that must stay writable in the routes for a drain ahead
    /// of the refusal (the refusal itself always drains).
    pub min_writable: u32,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            disk: true,
            disk_threshold: None,
            disk_margin: 2,
            min_writable: 1,
        }
    }
}

/// `[route]`: the read-back of the route each NameServer gives producers, compared with what
/// the daemon advertises, and what is done about a difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    /// Period of the audit topic's read-back on each NameServer (also right after each
    /// registration); None: "off".
    #[serde(with = "off_serde")]
    pub audit_interval: Option<Duration>,
    /// Period of the broker's entry in GET_BROKER_CLUSTER_INFO on each NameServer.
    #[serde(with = "humantime_serde")]
    pub full_audit_interval: Duration,
    /// The topic whose route is read; unset: the topic named after the broker, else the first
    /// non-system topic with the write bit.
    pub audit_topic: Option<String>,
    /// Restore the write bit where a NameServer routes the broker read-only while it is not
    /// drained (off: reported only, as it may be an operator's `wipeWritePerm`).
    pub restore_write: bool,
}

/// Default `route.audit_interval`.
pub const DEFAULT_AUDIT_INTERVAL: Duration = Duration::from_secs(5);

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            audit_interval: Some(DEFAULT_AUDIT_INTERVAL),
            full_audit_interval: Duration::from_secs(300),
            audit_topic: None,
            restore_write: false,
        }
    }
}

/// `[drain]`: routing the broker read-only on every NameServer before it stops, so that no
/// producer is still writing to it then.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrainConfig {
    /// How long a drain request waits after every NameServer routes the broker read-only:
    /// longer than the producers' route poll (Java's default 30 s).
    #[serde(with = "humantime_serde")]
    pub wait: Duration,
    /// A drain still held after this long ends by itself, with a WARN.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Bearer token every drain request must carry (the listener is often on the pod IP).
    pub token: Option<String>,
    /// A file holding the token (read at each request, so a rotated file takes effect); a
    /// leading `${CREDENTIALS_DIRECTORY}/` is systemd's credentials directory.
    pub token_file: Option<PathBuf>,
    /// A listener of the drain's own (`/drain` only), e.g. `127.0.0.1:9101`; unset: `/drain`
    /// is served on `http.listen`.
    pub listen: Option<String>,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            wait: Duration::from_secs(40),
            max: Duration::from_secs(15 * 60),
            token: None,
            token_file: None,
            listen: None,
        }
    }
}

// By hand: the token is a secret.
impl std::fmt::Debug for DrainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrainConfig")
            .field("wait", &self.wait)
            .field("max", &self.max)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("token_file", &self.token_file)
            .field("listen", &self.listen)
            .finish()
    }
}

/// `[acl]`: signing is on when both keys are set.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AclConfig {
    /// Access key (`AccessKey`).
    pub access_key: Option<String>,
    /// Secret key; prefer `RMQ_REGISTRAR_ACL__SECRET_KEY` to a file.
    pub secret_key: Option<String>,
    /// Optional `SecurityToken`.
    pub security_token: Option<String>,
}

/// Keys whose values are never printed.
pub const SECRET_KEYS: [&str; 3] = ["acl.secret_key", "acl.security_token", "drain.token"];

// By hand: a `{:?}` of the configuration (a log line, a panic message) must not carry secrets.
impl std::fmt::Debug for AclConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("AclConfig")
            .field("access_key", &self.access_key)
            .field("secret_key", &masked(&self.secret_key))
            .field("security_token", &masked(&self.security_token))
            .finish()
    }
}

/// `[namesrv]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamesrvConfig {
    /// Static list (a TOML list, or one `;`-separated string).
    #[serde(deserialize_with = "addr_list")]
    pub addrs: Vec<String>,
    /// Full URL of the address server.
    pub address_server: Option<String>,
    /// Address-server domain (URL built as RocketMQ does).
    pub domain: Option<String>,
    /// Address-server subgroup.
    pub subgroup: String,
    /// How often the address server is asked.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// How often each name in `addrs` is looked up (1s..=1h).
    #[serde(with = "humantime_serde")]
    pub resolve_interval: Duration,
    /// Which records of a name are NameServers.
    pub resolve_family: ResolveFamily,
    /// How `addrs` and the address server's list make one list.
    pub combine: Combine,
}

/// `namesrv.resolve_family`: which of a name's addresses are its NameServers. One address per
/// NameServer: a dual-stack NameServer has an A and an AAAA record and is one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolveFamily {
    /// The A records, or the AAAA records of a name that has no A record.
    #[default]
    Auto,
    /// The A records only.
    Ipv4,
    /// The AAAA records only.
    Ipv6,
}

/// `namesrv.combine`: what `addrs` means beside an address server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// `addrs` is used until the address server's first answer, then the answer alone.
    #[default]
    Fallback,
    /// Both: the address server's answer and `addrs` together.
    Union,
}

/// `[register]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// Period between registrations (10s..=60s, as RocketMQ clamps it).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Bound on each NameServer's exchange, and on the whole unregistration.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Compress the body where the NameServer's form is known.
    pub compressed: bool,
    /// Send registrations oneway.
    pub oneway: bool,
    /// Unchanged registrations are skipped (the heartbeat's or a QUERY_DATA_VERSION's
    /// data-version check) but a full one is still sent at least this often (default 5 min);
    /// None ("always"): every round is full, as Java brokers register; "never": only changed
    /// rounds register fully (broker.conf `forceRegister=false`).
    #[serde(with = "force_every_serde")]
    pub force_every: Option<Duration>,
    /// Period of the QUERY_DATA_VERSION heartbeat to each NameServer (200ms..=10s); None: "off".
    #[serde(with = "off_serde")]
    pub heartbeat: Option<Duration>,
    /// NameServer-side expiry for this broker (`heartbeatTimeoutMillis`); None: "off", the
    /// NameServer's own 120 s.
    #[serde(with = "off_serde")]
    pub heartbeat_timeout: Option<Duration>,
    /// Topics per request when a registration is split (broker.conf `splitRegistrationSize`).
    pub split_size: usize,
    /// Split whenever there are more than `split_size` topics (broker.conf
    /// `enableSplitRegistration`); otherwise only when the body would not fit in a frame.
    pub always_split: bool,
    /// Take a NameServer that does not answer GET_NAMESRV_CONFIG as one that deletes the
    /// broker's topics missing from a registration (`deleteTopicWithBrokerRegistration`), so
    /// that no registration toward it is split.
    pub assume_topic_deletion: bool,
}

/// `[slave]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaveConfig {
    /// Master address; default: the masterAddr NameServers return.
    pub master_addr: Option<String>,
    /// Period between pulls.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Where the four documents are written.
    pub output_dir: Option<PathBuf>,
    /// Pull topic config over the master's VIP port (port − 2).
    pub vip_channel: bool,
    /// Mode of the written files, octal ("0644": the broker may run as another user).
    pub file_mode: String,
}

/// `[remoting]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemotingConfig {
    /// TCP connect timeout.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Close connections idle this long.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Concurrent async requests.
    pub async_permits: usize,
    /// Concurrent oneway requests.
    pub oneway_permits: usize,
    /// Header serialization: "json" or "rocketmq".
    pub serialize: HeaderFormat,
    /// Largest frame sent to or read from a NameServer, bytes.
    pub max_frame: usize,
    /// Largest reply read from a broker or master (their topic tables outgrow `max_frame`).
    pub max_reply_frame: usize,
}

/// Header serialization as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HeaderFormat {
    /// JSON headers.
    #[default]
    Json,
    /// ROCKETMQ binary headers.
    Rocketmq,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address of /metrics, /healthz, /readyz.
    pub listen: String,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: "info", "debug", "rmq_registrar=debug" …
    pub level: String,
    /// "text" or "json".
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9100".into(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        NamesrvConfig {
            addrs: vec![],
            address_server: None,
            domain: None,
            subgroup: DEFAULT_SUBGROUP.into(),
            refresh_interval: Duration::from_secs(120),
            resolve_interval: Duration::from_secs(10),
            resolve_family: ResolveFamily::Auto,
            combine: Combine::Fallback,
        }
    }
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(3),
            compressed: false,
            oneway: false,
            force_every: Some(super::serde_helpers::DEFAULT_FORCE_EVERY),
            heartbeat: Some(DEFAULT_HEARTBEAT),
            heartbeat_timeout: Some(DEFAULT_HEARTBEAT_TIMEOUT),
            split_size: crate::broker::DEFAULT_SPLIT_SIZE,
            always_split: false,
            assume_topic_deletion: false,
        }
    }
}

impl Default for SlaveConfig {
    fn default() -> Self {
        SlaveConfig {
            master_addr: None,
            sync_interval: Duration::from_secs(60),
            output_dir: None,
            vip_channel: true,
            file_mode: "0644".into(),
        }
    }
}

impl Default for RemotingConfig {
    fn default() -> Self {
        RemotingConfig {
            connect_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(120),
            async_permits: 65_535,
            oneway_permits: 65_535,
            serialize: HeaderFormat::Json,
            max_frame: DEFAULT_MAX_FRAME,
            max_reply_frame: DEFAULT_MAX_REPLY_FRAME,
        }
    }
}

impl Config {
    /// `slave.file_mode` as a number; None when it is not an octal mode up to 0777.
    pub fn slave_file_mode(&self) -> Option<u32> {
        u32::from_str_radix(self.slave.file_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
    }

    /// Where the broker is checked and its topics read: `broker.health.addr` or `broker.addr`.
    pub fn broker_check_addr(&self) -> &str {
        self.broker
            .health
            .addr
            .as_deref()
            .unwrap_or(&self.broker.addr)
    }

    /// The HA address: configured, or host of `addr` with port + 1.
    pub fn ha_addr(&self) -> String {
        if let Some(ha) = &self.broker.ha_addr {
            return ha.clone();
        }
        match self.broker.addr.rsplit_once(':') {
            Some((host, port)) => match port.parse::<u16>() {
                Ok(p) => format!("{host}:{}", p.saturating_add(1)),
                Err(_) => self.broker.addr.clone(),
            },
            None => self.broker.addr.clone(),
        }
    }

    /// Whether connections to the broker itself use TLS.
    pub fn broker_tls(&self) -> bool {
        self.broker.health.tls.unwrap_or(self.tls.enable)
    }

    /// The address-server URL, when one is configured.
    pub fn address_server_url(&self) -> Option<String> {
        if let Some(url) = &self.namesrv.address_server {
            return Some(url.clone());
        }
        self.namesrv
            .domain
            .as_ref()
            .map(|d| AddressServer::url_for(d, &self.namesrv.subgroup))
    }
}
