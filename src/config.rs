//! Configuration: built-in defaults < NAMESRV_ADDR < TOML file < `RMQ_REGISTRAR_*` environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Metadata};
use serde::{Deserialize, Deserializer, Serialize};

use crate::protocol::code::VERSION_5_3_3;
use crate::protocol::{SerializeType, DEFAULT_MAX_FRAME};

/// Default `remoting.max_reply_frame`: a 100k-topic table is 18–27 MB.
pub const DEFAULT_MAX_REPLY_FRAME: usize = 128 * 1024 * 1024;

/// Prefix of the environment overrides.
pub const ENV_PREFIX: &str = "RMQ_REGISTRAR_";
/// Environment variable naming the config file.
pub use crate::tls::TlsConfig;

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
    /// The TLS client built from `[tls]` when this configuration was validated: the one read
    /// of the certificate files for this (re)load.
    #[serde(skip)]
    pub tls_client: crate::tls::Built,
    /// Keys set in the TOML file or the environment: with identity from the broker, these win
    /// over what the broker says.
    #[serde(skip)]
    pub pinned: std::collections::BTreeSet<String>,
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
pub const SECRET_KEYS: [&str; 2] = ["acl.secret_key", "acl.security_token"];

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

/// `[broker]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Where the broker's identity comes from: this configuration, or the broker at run time.
    pub identity: IdentitySource,
    /// Cluster name.
    pub cluster: String,
    /// Broker name.
    pub name: String,
    /// 0 = master, ≥ 1 = slave.
    pub id: u64,
    /// `ip:port` clients use (the broker's listen port).
    pub addr: String,
    /// HA address; default: host of `addr`, port + 1.
    pub ha_addr: Option<String>,
    /// Request version (`MQVersion` ordinal).
    pub version: i32,
    /// Zone name, sent as `__ZONE_NAME`.
    pub zone: Option<String>,
    /// Topics to register.
    pub topics: TopicsConfig,
    /// How the daemon tells that the broker serves.
    pub health: HealthConfig,
    /// The broker's own properties file (broker.conf), read as a source below this file.
    pub conf_file: Option<PathBuf>,
    /// Java's `brokerPermission`: when not both readable and writable, every registered
    /// topic's perm is ANDed with it.
    pub permission: Option<u32>,
}

/// `[broker.health]`: the broker is advertised only while these checks pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// What a check is.
    pub check: HealthCheck,
    /// Start-to-start period of the checks while the broker is up.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Bound on one check; below `interval`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive failed checks before the broker counts as down.
    pub failures: u32,
    /// Where to check (and read topics from) when `broker.addr` is not reachable from here.
    pub addr: Option<String>,
    /// TLS to the broker; unset: as `tls.enable` (false: plain on localhost while NameServers
    /// use TLS).
    pub tls: Option<bool>,
}

/// `broker.identity`: who says who the broker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// The configuration (TOML, environment, broker.conf): a fixed identity.
    #[default]
    Config,
    /// The broker's own GET_BROKER_CONFIG answer, read at start and at every health check: its
    /// id and role follow DLedger and controller elections. Values set in the TOML file or the
    /// environment (except `broker.id`) still win.
    Broker,
}

/// `broker.health.check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheck {
    /// A remoting request the broker must answer (GET_BROKER_RUNTIME_INFO).
    #[default]
    Remoting,
    /// A TCP connect only (a hung broker whose kernel still accepts passes it).
    Tcp,
    /// No check: the broker is always advertised.
    None,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            check: HealthCheck::Remoting,
            interval: Duration::from_secs(3),
            timeout: Duration::from_secs(1),
            failures: 3,
            addr: None,
            tls: None,
        }
    }
}

/// `[broker.topics]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Where the broker's topics come from; inline topics are always merged under them.
    pub source: TopicSource,
    /// The broker's own `topics.json`, re-read each cycle (`source = "file"`).
    pub file: Option<PathBuf>,
    /// Topics given here.
    pub inline: Vec<InlineTopic>,
}

/// `broker.topics.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TopicSource {
    /// `broker.topics.file`, when set.
    #[default]
    File,
    /// GET_ALL_TOPIC_CONFIG from the broker itself, every round.
    Broker,
}

/// `[[broker.topics.inline]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineTopic {
    /// Topic name.
    pub name: String,
    /// Read queues.
    #[serde(default = "default_queues")]
    pub read_queues: u32,
    /// Write queues.
    #[serde(default = "default_queues")]
    pub write_queues: u32,
    /// Permission bits (6 = read + write).
    #[serde(default = "default_perm")]
    pub perm: u32,
    /// Ordered topic.
    #[serde(default)]
    pub order: bool,
}

fn default_queues() -> u32 {
    8
}

fn default_perm() -> u32 {
    6
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
    /// With this set, unchanged registrations are skipped (data-version check) but a full one
    /// is still sent at least this often; unset: every registration is full, as Java's default;
    /// "never": only changed rounds register fully (broker.conf `forceRegister=false`).
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

impl From<HeaderFormat> for SerializeType {
    fn from(s: HeaderFormat) -> Self {
        match s {
            HeaderFormat::Json => SerializeType::Json,
            HeaderFormat::Rocketmq => SerializeType::RocketMq,
        }
    }
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

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            identity: IdentitySource::Config,
            cluster: "DefaultCluster".into(),
            name: String::new(),
            id: 0,
            addr: String::new(),
            ha_addr: None,
            version: VERSION_5_3_3,
            zone: None,
            topics: TopicsConfig::default(),
            health: HealthConfig::default(),
            conf_file: None,
            permission: None,
        }
    }
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        NamesrvConfig {
            addrs: vec![],
            address_server: None,
            domain: None,
            subgroup: crate::namesrv::DEFAULT_SUBGROUP.into(),
            refresh_interval: Duration::from_secs(120),
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
            force_every: None,
            heartbeat: Some(DEFAULT_HEARTBEAT),
            heartbeat_timeout: Some(DEFAULT_HEARTBEAT_TIMEOUT),
            split_size: crate::broker::DEFAULT_SPLIT_SIZE,
            always_split: false,
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

/// Default `register.heartbeat`: RocketMQ 5's broker heartbeat period.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// Default `register.heartbeat_timeout`: RocketMQ 5's short expiry, so that a lost host leaves
/// the routes within seconds instead of the NameServer's 120 s.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// A duration, or "off" (None). None is written as "off": omitting the key would read back as
/// the default, not as off.
mod off_serde {
    use std::time::Duration;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_some("off"),
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.trim() == "off" => Ok(None),
            Some(s) => humantime::parse_duration(&s)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("{s:?}: {e} (or \"off\")"))),
        }
    }
}

/// `register.force_every = "never"`, as a duration no clock reaches.
pub const NEVER: Duration = Duration::MAX;

/// A duration, or "never" ([`NEVER`]).
mod force_every_serde {
    use std::time::Duration;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(d) if *d == super::NEVER => s.serialize_some("never"),
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.trim() == "never" => Ok(Some(super::NEVER)),
            Some(s) => humantime::parse_duration(&s)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("{s:?}: {e} (or \"never\")"))),
        }
    }
}

fn addr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        OneOrMany::Many(v) => v.into_iter().map(|s| s.trim().to_string()).collect(),
    })
}

/// A configuration problem: which key, from where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config error: `{key}` (from {source_name}): {reason}")]
pub struct ConfigError {
    /// Dotted key, e.g. `register.interval`.
    pub key: String,
    /// Where the value came from: a file path, an environment variable, or the defaults.
    pub source_name: String,
    /// What is wrong.
    pub reason: String,
}

/// A loaded, validated configuration and where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The merged sources, for `check-config`.
    pub figment: Figment,
    /// Values adjusted on the way in (e.g. a clamped broker.conf period), to log once.
    pub warnings: Vec<String>,
}

/// Where a value came from, for messages: a file path, an environment variable, or the defaults.
pub fn describe(meta: &Metadata) -> String {
    match &meta.source {
        Some(figment::Source::File(path)) => format!("{} {}", meta.name, path.display()),
        _ if meta.name.contains("environment") || meta.name.starts_with("broker.conf") => {
            meta.name.to_string()
        }
        _ => "built-in default".into(),
    }
}

/// Where the value of `key` came from: as [`describe`], but an environment variable is named.
pub fn describe_key(meta: &Metadata, key: &str) -> String {
    // figment names its provider "`RMQ_REGISTRAR_` environment variable(s)", which does not
    // tell the operator which one to fix.
    if meta.name.contains(ENV_PREFIX) {
        return format!("environment variable {}", env_var(key));
    }
    describe(meta)
}

/// The `RMQ_REGISTRAR_*` variable that sets `key` (`broker.health.check` ->
/// `RMQ_REGISTRAR_BROKER__HEALTH__CHECK`).
pub fn env_var(key: &str) -> String {
    // An element of a list (`broker.topics.inline[0].perm`) is set with its whole list.
    let key = key.split('[').next().unwrap_or(key);
    let parts: Vec<String> = key.split('.').map(str::to_ascii_uppercase).collect();
    format!("{ENV_PREFIX}{}", parts.join("__"))
}

/// The source of `key` for a message. An element of a list has no metadata of its own: its
/// list's is used.
fn describe_in(figment: &Figment, key: &str) -> String {
    let list = key.split('[').next().unwrap_or(key);
    figment
        .find_metadata(key)
        .or_else(|| figment.find_metadata(list))
        .map_or_else(|| "built-in default".into(), |m| describe_key(m, key))
}

/// RocketMQ's own `NAMESRV_ADDR`, named as itself in messages (figment would call it
/// "environment variable(s)").
struct NamesrvAddrEnv;

impl figment::Provider for NamesrvAddrEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable NAMESRV_ADDR")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Env::raw()
            .only(&["NAMESRV_ADDR"])
            .map(|_| "namesrv.addrs".into())
            .data()
    }
}

/// Builds the source stack (without a broker.conf).
pub fn figment(file: Option<&Path>) -> Figment {
    figment_with(file, Vec::new())
}

/// The source stack: defaults < NAMESRV_ADDR < broker.conf < TOML file < environment.
fn figment_with(file: Option<&Path>, broker_conf: Vec<brokerconf::Prop>) -> Figment {
    let mut f = Figment::from(Serialized::defaults(Config::default()));
    // RocketMQ's own variable, below the file as in Java (namesrvAddr > NAMESRV_ADDR).
    f = f.merge(NamesrvAddrEnv);
    for p in broker_conf {
        f = f.merge(p);
    }
    if let Some(path) = file {
        f = f.merge(Toml::file_exact(path));
    }
    f.merge(Env::prefixed(ENV_PREFIX).ignore(&["CONFIG"]).split("__"))
}

/// Loads and validates the configuration from `file` (or none) and the environment.
pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_with(file, |_| {})
}

/// Loads the configuration for a one-shot `pull`, which uses only the remoting, TLS, ACL and
/// slave keys: the broker's identity and the NameServers are not required.
pub fn load_for_pull(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_with(file, |c| {
        // Stand-ins that pass validation and are never used; values that are set are still
        // checked.
        if c.broker.name.trim().is_empty() {
            c.broker.name = "pull".into();
        }
        if c.broker.addr.is_empty() {
            c.broker.addr = "127.0.0.1:10911".into();
        }
        if c.address_server_url().is_none() && c.namesrv.addrs.is_empty() {
            c.namesrv.addrs = vec!["127.0.0.1:9876".into()];
        }
    })
}

fn load_with(file: Option<&Path>, fill: impl FnOnce(&mut Config)) -> Result<Loaded, ConfigError> {
    if let Some(path) = file {
        if let Err(e) = std::fs::metadata(path) {
            return Err(ConfigError {
                key: "(file)".into(),
                source_name: path.display().to_string(),
                reason: e.to_string(),
            });
        }
    }
    let base = figment(file);
    // Where broker.conf is comes from the TOML file or the environment (or --broker-conf).
    let conf_file: Option<PathBuf> = base.extract_inner("broker.conf_file").ok().flatten();
    let (figment, warnings) = match &conf_file {
        Some(path) => {
            let mapped = brokerconf::load(path)?;
            (figment_with(file, mapped.props), mapped.warnings)
        }
        None => (base, Vec::new()),
    };
    // broker.conf always names the store's topics.json; with the broker as the topic source
    // that file is not read, and not a conflict either.
    let file_from_conf = figment
        .find_metadata("broker.topics.file")
        .is_some_and(|m| m.name.starts_with("broker.conf"));
    let config = extract_valid(&figment, |config| {
        fill(config);
        if config.broker.topics.source == TopicSource::Broker && file_from_conf {
            config.broker.topics.file = None;
        }
    })?;
    Ok(Loaded {
        config,
        figment,
        warnings,
    })
}

/// Reads a configuration from TOML text over the defaults alone (no environment, no files):
/// what `load` does to a file's text, for the fuzzer and for tools.
pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
    let figment = Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text));
    extract_valid(&figment, |_| {})
}

fn extract_valid(
    figment: &Figment,
    adjust: impl FnOnce(&mut Config),
) -> Result<Config, ConfigError> {
    let mut config: Config = figment.extract().map_err(|e| extract_error(figment, e))?;
    adjust(&mut config);
    config.pinned = pinnable()
        .filter(|k| figment.find_metadata(k).is_some_and(set_by_operator))
        .map(|k| k.to_string())
        .collect();
    if !config.pinned.contains("register.heartbeat_timeout") {
        // The default expiry follows the timings up to what they need, so that a config valid
        // before heartbeats (register.timeout = 10s, say) is not refused for a default.
        let floor = heartbeat_timeout_floor(&config.register);
        config.register.heartbeat_timeout = config.register.heartbeat_timeout.map(|t| t.max(floor));
    }
    validate(&config).map_err(|(key, reason)| ConfigError {
        source_name: describe_in(figment, &key),
        key,
        reason,
    })?;
    if config.needs_tls() {
        config.tls_client = crate::tls::Built::build(&config.tls).map_err(|e| {
            let key = e.key();
            ConfigError {
                key: key.into(),
                source_name: describe_in(figment, key),
                reason: error_chain(&e),
            }
        })?;
    }
    Ok(config)
}

/// Keys the broker's own answer gives (identity from the broker): set in the TOML file or the
/// environment, they win over it (`broker.id` is refused instead).
pub const FROM_BROKER: [&str; 8] = [
    "broker.cluster",
    "broker.name",
    "broker.id",
    "broker.addr",
    "broker.ha_addr",
    "broker.permission",
    "register.split_size",
    "register.always_split",
];

/// Keys whose operator-set value wins over the broker's: those it gives, and the expiry it
/// gives with acting master on.
fn pinnable() -> impl Iterator<Item = &'static str> {
    FROM_BROKER
        .into_iter()
        .chain(std::iter::once("register.heartbeat_timeout"))
}

/// A value from the TOML file or the environment (not a default, not broker.conf).
fn set_by_operator(meta: &Metadata) -> bool {
    !matches!(meta.source, Some(figment::Source::Code(_)))
        && !meta.name.starts_with("broker.conf")
        && !meta.name.contains("NAMESRV_ADDR")
}

/// An error with its causes, for a one-line message.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn extract_error(figment: &Figment, e: figment::Error) -> ConfigError {
    let e = e
        .into_iter()
        .next()
        .unwrap_or_else(|| figment::Error::from("unknown error".to_string()));
    let key = e.path.join(".");
    let source_name = match &e.metadata {
        Some(meta) => describe_key(meta, &key),
        None => describe_in(figment, &key),
    };
    ConfigError {
        key: if key.is_empty() { "(root)".into() } else { key },
        source_name,
        reason: e.kind.to_string(),
    }
}

/// Says where a missing identity key is set: an installed or container config has none of its
/// own, so "is required" alone leaves the operator guessing which file or variable to fill.
fn required(key: &str, broker_conf: &str) -> String {
    format!(
        "is required: set `{key}` under [broker] in the config file (--config or \
         {ENV_CONFIG}), {ENV_PREFIX}BROKER__{upper} in the environment, or {broker_conf} \
         in the broker's broker.conf (--broker-conf or broker.conf_file)",
        upper = key.to_uppercase()
    )
}

/// Checks what types cannot: addresses, ranges, required keys.
pub fn validate(c: &Config) -> Result<(), (String, String)> {
    let err = |k: &str, r: String| Err((k.to_string(), r));
    let from_broker = c.broker.identity == IdentitySource::Broker;
    if from_broker {
        validate_identity_from_broker(c)?;
    } else if c.broker.name.trim().is_empty() {
        return err("broker.name", required("name", "brokerName"));
    }
    if c.broker.cluster.trim().is_empty() {
        return err("broker.cluster", "must not be empty".into());
    }
    if from_broker && c.broker.addr.is_empty() {
        // The broker says where it listens.
    } else if let Err(r) = crate::namesrv::validate_addr(&c.broker.addr) {
        return err(
            "broker.addr",
            if c.broker.addr.is_empty() {
                required("addr", "brokerIP1 and listenPort")
            } else {
                r
            },
        );
    }
    if let Some(ha) = &c.broker.ha_addr {
        crate::namesrv::validate_addr(ha).or_else(|r| err("broker.ha_addr", r))?;
    }
    if !(1..=100_000).contains(&c.register.split_size) {
        return err("register.split_size", "must be between 1 and 100000".into());
    }
    if c.broker.permission.is_some_and(|p| p > 7) {
        return err(
            "broker.permission",
            "must be between 0 and 7 (4 read, 2 write, 1 inherit)".into(),
        );
    }
    if c.broker.version < 0 || c.broker.version > i32::from(i16::MAX) {
        return err("broker.version", "must be between 0 and 32767".into());
    }
    for a in &c.namesrv.addrs {
        crate::namesrv::validate_addr(a).or_else(|r| err("namesrv.addrs", r))?;
    }
    if c.namesrv.addrs.is_empty()
        && c.namesrv.address_server.is_none()
        && c.namesrv.domain.is_none()
        && !from_broker
    {
        return err("namesrv.addrs", "no NameServer source: set namesrv.addrs, namesrv.address_server, namesrv.domain or NAMESRV_ADDR".into());
    }
    if let Some(url) = &c.namesrv.address_server {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return err(
                "namesrv.address_server",
                format!("{url:?} is not an http:// URL"),
            );
        }
    }
    let day = Duration::from_secs(86_400);
    let ranges = [
        (
            "namesrv.refresh_interval",
            c.namesrv.refresh_interval,
            Duration::from_secs(1),
            day,
        ),
        (
            "register.timeout",
            c.register.timeout,
            Duration::from_millis(100),
            Duration::from_secs(60),
        ),
        (
            "slave.sync_interval",
            c.slave.sync_interval,
            Duration::from_secs(1),
            day,
        ),
        (
            "remoting.connect_timeout",
            c.remoting.connect_timeout,
            Duration::from_millis(10),
            Duration::from_secs(60),
        ),
        (
            "remoting.idle_timeout",
            c.remoting.idle_timeout,
            Duration::from_secs(1),
            day,
        ),
    ];
    for (key, value, min, max) in ranges {
        if !(min..=max).contains(&value) {
            return err(
                key,
                format!(
                    "{} is outside {}..={}",
                    humantime::format_duration(value),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            );
        }
    }
    for (key, value) in [
        (
            "register.force_every",
            c.register.force_every.filter(|d| *d != NEVER),
        ),
        ("register.heartbeat_timeout", c.register.heartbeat_timeout),
    ] {
        if value.is_some_and(|v| v < Duration::from_secs(1) || v > 7 * day) {
            return err(key, "must be between 1s and 7days".into());
        }
    }
    validate_heartbeat(&c.register).or_else(|(k, r)| err(k, r))?;
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log.level) {
        return err(
            "log.level",
            format!("{:?} is not a log filter: {e}", c.log.level),
        );
    }
    if !(Duration::from_secs(10)..=Duration::from_secs(60)).contains(&c.register.interval) {
        return err(
            "register.interval",
            format!(
                "{} is outside 10s..=60s",
                humantime::format_duration(c.register.interval)
            ),
        );
    }
    if c.slave_file_mode().is_none() {
        return err(
            "slave.file_mode",
            format!(
                "{:?} is not an octal mode such as \"0644\"",
                c.slave.file_mode
            ),
        );
    }
    if let Some(m) = &c.slave.master_addr {
        crate::namesrv::validate_addr(m).or_else(|r| err("slave.master_addr", r))?;
    }
    if c.remoting.max_frame < 1024 || c.remoting.max_frame > 0x7FFF_FFFF {
        return err(
            "remoting.max_frame",
            "must be between 1024 and 2147483647".into(),
        );
    }
    if c.remoting.max_reply_frame < c.remoting.max_frame || c.remoting.max_reply_frame > 0x7FFF_FFFF
    {
        return err(
            "remoting.max_reply_frame",
            "must be between remoting.max_frame and 2147483647".into(),
        );
    }
    validate_health(&c.broker.health).or_else(|(k, r)| err(k, r))?;
    if c.broker.topics.source == TopicSource::Broker && c.broker.topics.file.is_some() {
        return err(
            "broker.topics.file",
            "is not read with broker.topics.source = \"broker\" (the broker is asked instead): remove one".into(),
        );
    }
    // tokio's semaphore holds at most MAX_PERMITS; more would panic at start.
    let permits = 1..=tokio::sync::Semaphore::MAX_PERMITS.min(1 << 20);
    for (key, n) in [
        ("remoting.async_permits", c.remoting.async_permits),
        ("remoting.oneway_permits", c.remoting.oneway_permits),
    ] {
        if !permits.contains(&n) {
            return err(key, format!("{n} is outside 1..={}", permits.end()));
        }
    }
    if c.http.listen.parse::<std::net::SocketAddr>().is_err() {
        return err("http.listen", format!("{:?} is not ip:port", c.http.listen));
    }
    if let Some(name) = &c.tls.server_name {
        if let Err(r) = crate::tls::server_name("", Some(name)) {
            return err("tls.server_name", r);
        }
    }
    if c.acl.access_key.is_some() != c.acl.secret_key.is_some() {
        let missing = if c.acl.access_key.is_none() {
            "acl.access_key"
        } else {
            "acl.secret_key"
        };
        return err(
            missing,
            "acl.access_key and acl.secret_key go together".into(),
        );
    }
    for (i, t) in c.broker.topics.inline.iter().enumerate() {
        if t.name.trim().is_empty() || t.name.contains(' ') {
            return err(
                &format!("broker.topics.inline[{i}].name"),
                "must be a name without spaces".into(),
            );
        }
        // Java's PermName.isValid: below PERM_PRIORITY (8). A larger value is no permission
        // (9 with broker.permission = 4 was registered as perm 0).
        if t.perm > 7 {
            return err(
                &format!("broker.topics.inline[{i}].perm"),
                format!(
                    "{} must be between 0 and 7 (4 read, 2 write, 1 inherit)",
                    t.perm
                ),
            );
        }
    }
    Ok(())
}

/// The heartbeat's period, and an expiry it can keep: a NameServer must not drop a broker whose
/// heartbeats are on time but one slow exchange (`register.timeout`) late.
/// The least NameServer expiry the heartbeat timings allow: max(3 x heartbeat, timeout +
/// 2 x heartbeat); with heartbeats off, 2 x interval + timeout.
fn heartbeat_timeout_floor(r: &RegisterConfig) -> Duration {
    match r.heartbeat {
        Some(hb) => (hb * 3).max(r.timeout + hb * 2),
        None => r.interval * 2 + r.timeout,
    }
}

fn validate_heartbeat(r: &RegisterConfig) -> Result<(), (&'static str, String)> {
    let fmt = |d: Duration| humantime::format_duration(d).to_string();
    let least = heartbeat_timeout_floor(r);
    let Some(hb) = r.heartbeat else {
        return match r.heartbeat_timeout {
            Some(t) if t < least => Err((
                "register.heartbeat_timeout",
                format!(
                    "{} with register.heartbeat = \"off\" must be \"off\" or at least 2 x register.interval + register.timeout ({})",
                    fmt(t),
                    fmt(least)
                ),
            )),
            _ => Ok(()),
        };
    };
    if !(Duration::from_millis(200)..=Duration::from_secs(10)).contains(&hb) {
        return Err((
            "register.heartbeat",
            format!("{} is outside 200ms..=10s (or \"off\")", fmt(hb)),
        ));
    }
    match r.heartbeat_timeout {
        Some(t) if t < least => Err((
            "register.heartbeat_timeout",
            format!(
                "{} must be \"off\" or at least max(3 x register.heartbeat, register.timeout + 2 x register.heartbeat) ({})",
                fmt(t),
                fmt(least)
            ),
        )),
        _ => Ok(()),
    }
}

/// With the identity from the broker: it must be asked (a remoting check at a known address),
/// and its id is its own.
fn validate_identity_from_broker(c: &Config) -> Result<(), (String, String)> {
    let err = |k: &str, r: &str| Err((k.to_string(), r.to_string()));
    if c.broker.health.check != HealthCheck::Remoting {
        return err(
            "broker.health.check",
            "must be \"remoting\" with broker.identity = \"broker\": the identity is read by the health check (GET_BROKER_CONFIG)",
        );
    }
    if c.pinned.contains("broker.id") {
        return err(
            "broker.id",
            "cannot be set with broker.identity = \"broker\": the id is the broker's own (DLedger and controller elections change it)",
        );
    }
    if c.broker_check_addr().is_empty() {
        return err(
            "broker.health.addr",
            "is required with broker.identity = \"broker\": where to ask the broker (--broker ADDR)",
        );
    }
    crate::namesrv::validate_addr(c.broker_check_addr())
        .map_err(|r| ("broker.health.addr".to_string(), r))
}

fn validate_health(h: &HealthConfig) -> Result<(), (&'static str, String)> {
    let fmt = |d: Duration| humantime::format_duration(d).to_string();
    if !(Duration::from_millis(100)..=Duration::from_secs(300)).contains(&h.interval) {
        return Err((
            "broker.health.interval",
            format!("{} is outside 100ms..=5m", fmt(h.interval)),
        ));
    }
    if h.timeout < Duration::from_millis(50) || h.timeout >= h.interval {
        return Err((
            "broker.health.timeout",
            format!(
                "{} must be at least 50ms and below broker.health.interval ({})",
                fmt(h.timeout),
                fmt(h.interval)
            ),
        ));
    }
    if !(1..=100).contains(&h.failures) {
        return Err(("broker.health.failures", "must be between 1 and 100".into()));
    }
    if let Some(a) = &h.addr {
        crate::namesrv::validate_addr(a).map_err(|r| ("broker.health.addr", r))?;
    }
    Ok(())
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

    /// This broker as the API names it.
    pub fn identity(&self) -> crate::broker::BrokerIdentity {
        crate::broker::BrokerIdentity {
            cluster: self.broker.cluster.clone(),
            name: self.broker.name.clone(),
            id: self.broker.id,
            addr: self.broker.addr.clone(),
            ha_addr: self.ha_addr(),
            zone: self.broker.zone.clone(),
        }
    }

    /// Whether connections to the broker itself use TLS.
    pub fn broker_tls(&self) -> bool {
        self.broker.health.tls.unwrap_or(self.tls.enable)
    }

    /// Whether anything this configuration connects to uses TLS (so the files must be read).
    pub fn needs_tls(&self) -> bool {
        let https = self
            .address_server_url()
            .is_some_and(|u| u.starts_with("https://"));
        self.tls.enable || self.broker_tls() || https
    }

    /// The remoting client's TLS: `None` when off. With TLS on it is the configuration built at
    /// validation, or an error: never a silent fall-back to plain text.
    pub fn client_tls(&self) -> Result<Option<crate::client::ClientTls>, crate::tls::TlsError> {
        if !self.tls.enable && !self.broker_tls() {
            return Ok(None);
        }
        let config = self.tls_client.require()?;
        // The broker may differ from the rest (plain on localhost while NameServers use TLS).
        let exceptions = if self.broker_tls() == self.tls.enable {
            Vec::new()
        } else {
            vec![self.broker_check_addr().to_string()]
        };
        Ok(Some(crate::client::ClientTls {
            config,
            server_name: self.tls.server_name.clone(),
            default_on: self.tls.enable,
            exceptions,
        }))
    }

    /// The remoting client settings.
    pub fn client_config(&self) -> Result<crate::client::ClientConfig, crate::tls::TlsError> {
        Ok(crate::client::ClientConfig {
            tls: self.client_tls()?,
            connect_timeout: self.remoting.connect_timeout,
            idle_timeout: self.remoting.idle_timeout,
            async_permits: self.remoting.async_permits,
            oneway_permits: self.remoting.oneway_permits,
            max_frame: self.remoting.max_frame,
            max_reply_frame: self.remoting.max_reply_frame,
            ..crate::client::ClientConfig::default()
        })
    }

    /// The address-server client for this configuration (https uses the `[tls]` trust built at
    /// validation; without it an https server is refused, not asked with other roots).
    pub fn address_server(
        &self,
        url: String,
        timeout: Duration,
    ) -> Result<crate::namesrv::AddressServer, crate::namesrv::LookupError> {
        let tls =
            if url.starts_with("https://") {
                Some(self.tls_client.require().map_err(|source| {
                    crate::namesrv::LookupError::Tls {
                        url: url.clone(),
                        source: Box::new(source),
                    }
                })?)
            } else {
                None
            };
        crate::namesrv::AddressServer::with_tls(url, timeout, tls)
    }

    /// The address-server URL, when one is configured.
    pub fn address_server_url(&self) -> Option<String> {
        if let Some(url) = &self.namesrv.address_server {
            return Some(url.clone());
        }
        self.namesrv
            .domain
            .as_ref()
            .map(|d| crate::namesrv::AddressServer::url_for(d, &self.namesrv.subgroup))
    }
}

mod brokerconf;
pub use brokerconf::local_address;

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error by value
mod tests;
