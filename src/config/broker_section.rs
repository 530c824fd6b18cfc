//! The `[broker]` section: who the broker is, how its health is checked, where its topics come
//! from.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::code::VERSION_5_3_3;

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Where the broker's topics come from; inline topics are always merged under them.
    pub source: TopicSource,
    /// The broker's own `topics.json`, re-read each cycle (`source = "file"`).
    pub file: Option<PathBuf>,
    /// Topics given here.
    pub inline: Vec<InlineTopic>,
    /// With `source = "file"`: also advertise the topic named after the broker (1 queue, perm
    /// 7), as a Java broker does (`brokerTopicEnable`): the cheapest audit topic, and a Java 5.x
    /// NameServer refuses a first registration of exactly one topic.
    pub broker_topic: bool,
    /// The topic [`advertised`](Self::advertised) added (not a key): left out of a table that
    /// would hold it alone, since a first registration of exactly one topic is refused.
    #[serde(skip)]
    pub added: Option<String>,
}

impl TopicsConfig {
    /// The topics advertised for broker `name`: with `source = "file"` and `broker_topic`, the
    /// topic named after the broker comes first among the inline ones, so that an inline entry,
    /// the file or the master of the same name wins over it. Borrowed as is otherwise.
    pub fn advertised(&self, name: &str) -> std::borrow::Cow<'_, TopicsConfig> {
        if self.source != TopicSource::File || !self.broker_topic || name.is_empty() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut with = self.clone();
        with.added = Some(name.to_string());
        with.inline.insert(
            0,
            InlineTopic {
                name: name.to_string(),
                read_queues: 1,
                write_queues: 1,
                // Java's brokerTopicEnable: inherit + read + write.
                perm: 7,
                order: false,
            },
        );
        std::borrow::Cow::Owned(with)
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            source: TopicSource::default(),
            file: None,
            inline: Vec::new(),
            broker_topic: true,
            added: None,
        }
    }
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
