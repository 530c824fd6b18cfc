//! GET_BROKER_CLUSTER_INFO: what a NameServer knows of every broker.

use std::time::Duration;

use crate::broker::api::{BrokerApi, Request};
use crate::broker::body;
use crate::broker::error::ApiError;
use crate::protocol::RemotingCommand;

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

/// The address `table` (a GET_BROKER_CLUSTER_INFO answer) gives broker `name`'s id `id`.
pub fn id_holder(
    table: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    id: u64,
) -> Option<String> {
    table
        .get(name)?
        .get("brokerAddrs")?
        .get(id.to_string())?
        .as_str()
        .map(str::to_string)
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
