//! The broker's outward API: typed requests to NameServers and to a master broker.

pub mod acl;
pub mod body;
pub mod fastjson;
mod local;
pub mod own_config;
mod register;
mod sync;

use std::time::Duration;

use bytes::Bytes;

pub use register::{
    body_crc32, compressed_body, compressed_preimage, CompressionForm, DataVersionAnswer,
    NamesrvOutcome, RegisterBrokerResult, RegisterOptions, RegisterOutcome, RegisterStatus, SentAs,
    UnregisterOutcome, DEFAULT_SPLIT_SIZE,
};
pub use sync::{topic_config_addr, vip_addr, PullDoc, Pulled, SlavePull};

use crate::client::{ClientError, RemotingClient};
use crate::protocol::code::{response, VERSION_5_3_3};
use crate::protocol::{RemotingCommand, SerializeType};

/// Why a broker API call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The remoting layer failed (connect, send, timeout …).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The peer answered with a non-SUCCESS code (Java's MQBrokerException).
    #[error("peer answered code {code}: {}", remark.as_deref().unwrap_or(""))]
    Refused {
        /// Response code.
        code: i32,
        /// Response remark.
        remark: Option<String>,
    },
    /// The reply body is missing or does not parse.
    #[error("bad {what} in reply: {reason}")]
    Decode {
        /// Which document.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The whole operation ran out of time.
    #[error("no outcome within {0:?}")]
    Timeout(Duration),
    /// A blocking parse task ended without an answer (it panicked or was cancelled).
    #[error("the {what} parse task failed")]
    Task {
        /// Which document.
        what: &'static str,
        /// Why.
        #[source]
        source: std::sync::Arc<tokio::task::JoinError>,
    },
    /// The broker answered GET_BROKER_CONFIG without a usable identity.
    #[error(transparent)]
    Report(#[from] own_config::ReportError),
}

impl ApiError {
    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Client(e) => e.kind(),
            ApiError::Refused { .. } => "refused",
            ApiError::Decode { .. } => "decode",
            ApiError::Timeout(_) => "timeout",
            ApiError::Report(_) => "identity",
            ApiError::Task { .. } => "task",
        }
    }
}

/// One request type: its code, custom header, body and how to read the reply.
pub trait Request {
    /// Request code.
    const CODE: i32;
    /// What a successful reply turns into.
    type Response;
    /// Custom-header fields (extFields).
    fn fields(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Body bytes, if any.
    fn body(&self) -> Option<Bytes> {
        None
    }
    /// Reads a SUCCESS reply.
    fn parse(reply: RemotingCommand) -> Result<Self::Response, ApiError>;
}

/// Who this broker is, as every request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerIdentity {
    /// Cluster name.
    pub cluster: String,
    /// Broker name (shared by master and slaves).
    pub name: String,
    /// 0 = master, ≥ 1 = slave.
    pub id: u64,
    /// `ip:port` clients use.
    pub addr: String,
    /// `ip:port` of the HA service.
    pub ha_addr: String,
    /// Zone name, sent as `__ZONE_NAME` when set.
    pub zone: Option<String>,
}

impl BrokerIdentity {
    /// The four fields every registration-related request carries.
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("brokerAddr", self.addr.clone()),
            ("brokerId", self.id.to_string()),
            ("brokerName", self.name.clone()),
            ("clusterName", self.cluster.clone()),
        ]
    }
}

/// Sees the outcome of every call (for metrics): request code and an outcome label.
pub trait CallObserver: Send + Sync + 'static {
    /// One finished call; `outcome` is "ok", "refused" or an error kind.
    fn observe(&self, code: i32, outcome: &'static str);
}

/// Typed access to NameServers and a master broker over one shared [`RemotingClient`].
#[derive(Clone)]
pub struct BrokerApi {
    client: RemotingClient,
    version: i32,
    serialize: SerializeType,
    observer: Option<std::sync::Arc<dyn CallObserver>>,
}

impl BrokerApi {
    /// Wraps `client`; requests carry the 5.x default version and JSON headers.
    pub fn new(client: RemotingClient) -> Self {
        BrokerApi {
            client,
            version: VERSION_5_3_3,
            serialize: SerializeType::Json,
            observer: None,
        }
    }

    /// Sets the request version written in every header.
    pub fn with_version(mut self, version: i32) -> Self {
        self.version = version;
        self
    }

    /// Sets the header serialization.
    pub fn with_serialize_type(mut self, t: SerializeType) -> Self {
        self.serialize = t;
        self
    }

    /// Reports every call's outcome to `observer`.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe<T>(&self, code: i32, r: &Result<T, ApiError>) {
        if let Some(o) = &self.observer {
            o.observe(code, r.as_ref().map_or_else(ApiError::kind, |_| "ok"));
        }
    }

    /// The client underneath.
    pub fn client(&self) -> &RemotingClient {
        &self.client
    }

    /// Builds the command for `req`.
    fn command<R: Request>(&self, req: &R) -> RemotingCommand {
        let mut cmd = RemotingCommand::request(R::CODE).with_serialize_type(self.serialize);
        cmd.version = self.version;
        for (k, v) in req.fields() {
            cmd.ext_fields.insert(k.to_string(), v);
        }
        cmd.body = req.body();
        cmd
    }

    /// Sends `req` to `addr`, checks the reply code and parses the reply.
    pub async fn call<R: Request>(
        &self,
        addr: &str,
        req: &R,
        timeout: Duration,
    ) -> Result<R::Response, ApiError> {
        let r = self.call_unobserved(addr, req, timeout).await;
        self.observe(R::CODE, &r);
        r
    }

    async fn call_unobserved<R: Request>(
        &self,
        addr: &str,
        req: &R,
        timeout: Duration,
    ) -> Result<R::Response, ApiError> {
        let reply = self
            .client
            .invoke_sync(Some(addr), self.command(req), timeout)
            .await?;
        if reply.code != response::SUCCESS {
            return Err(ApiError::Refused {
                code: reply.code,
                remark: reply.remark,
            });
        }
        R::parse(reply)
    }

    /// Sends `req` to `addr` oneway.
    pub async fn call_oneway<R: Request>(
        &self,
        addr: &str,
        req: &R,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        let r = self
            .client
            .invoke_oneway(Some(addr), self.command(req), timeout)
            .await
            .map_err(ApiError::from);
        self.observe(R::CODE, &r);
        r
    }
}

/// GET_BROKER_CLUSTER_INFO, read as its `brokerAddrTable` (fastjson keys quoted).
struct ClusterInfo;

impl Request for ClusterInfo {
    const CODE: i32 = crate::protocol::code::request::GET_BROKER_CLUSTER_INFO;
    type Response = serde_json::Map<String, serde_json::Value>;

    fn parse(reply: RemotingCommand) -> Result<Self::Response, ApiError> {
        let body = reply.body.unwrap_or_default();
        match body::broker_addr_table(&body) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            Ok(_) => Ok(serde_json::Map::new()),
            Err(e) => Err(ApiError::Decode {
                what: "cluster info",
                reason: e.to_string(),
            }),
        }
    }
}

impl BrokerApi {
    /// What a NameServer knows of every broker: broker name → `{cluster, brokerName, brokerAddrs}`.
    pub async fn cluster_brokers(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        self.call(addr, &ClusterInfo, timeout).await
    }
}

/// Parses a JSON (or fastjson) reply body.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(
    what: &'static str,
    reply: &RemotingCommand,
) -> Result<T, ApiError> {
    let body = reply.body.as_deref().ok_or(ApiError::Decode {
        what,
        reason: "no body".into(),
    })?;
    fastjson::from_fastjson(body).map_err(|e| ApiError::Decode {
        what,
        reason: e.to_string(),
    })
}
