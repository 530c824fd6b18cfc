//! Requests to the broker this daemon advertises: the health check and its topic table.

use std::time::Duration;

use bytes::Bytes;

use super::body::{parse_topics_json, TopicConfigWrapper};
use crate::broker::api::{BrokerApi, Request};
use crate::broker::error::ApiError;
use crate::protocol::code::{request, response};
use crate::protocol::RemotingCommand;

/// What GET_BROKER_RUNTIME_INFO says of the broker's store: whether it can take writes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StoreHealth {
    /// `commitLogDiskRatio`: the fraction of the commit log's disk in use (Java rounds it up to
    /// 0.01); None when absent, unreadable, or -1 (the broker could not tell).
    pub commitlog: Option<f64>,
    /// `consumeQueueDiskRatio`, the same for the consume queues.
    pub consumequeue: Option<f64>,
    /// `storeWriteable` (the Rust broker's; Java says nothing).
    pub writable: Option<bool>,
}

impl StoreHealth {
    /// Read from a KVTable body (`{"table":{"key":"value",...}}`); what is missing or does not
    /// parse is None, never an error: the answer's first use is liveness.
    pub fn from_kv_table(body: &[u8]) -> StoreHealth {
        // Only these three of the table's hundred or so keys: the others are skipped unread.
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Fields {
            #[serde(rename = "commitLogDiskRatio")]
            commitlog: Option<String>,
            #[serde(rename = "consumeQueueDiskRatio")]
            consumequeue: Option<String>,
            #[serde(rename = "storeWriteable")]
            writable: Option<String>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct KvTable {
            table: Fields,
        }
        let t = serde_json::from_slice::<KvTable>(body)
            .unwrap_or_default()
            .table;
        let ratio = |v: Option<String>| {
            v.and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
        };
        StoreHealth {
            commitlog: ratio(t.commitlog),
            consumequeue: ratio(t.consumequeue),
            writable: t.writable.and_then(|s| s.trim().parse::<bool>().ok()),
        }
    }
}

/// GET_BROKER_RUNTIME_INFO, used as the health check: only a serving broker answers it.
struct RuntimeInfo;

impl Request for RuntimeInfo {
    const CODE: i32 = request::GET_BROKER_RUNTIME_INFO;
    type Response = StoreHealth;

    fn parse(reply: RemotingCommand) -> Result<StoreHealth, ApiError> {
        Ok(StoreHealth::from_kv_table(reply.body.as_deref().unwrap_or_default()))
    }
}

/// A health check's answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrokerAnswer {
    /// The broker's remark when it refused the daemon's credentials (NO_PERMISSION).
    pub refused: Option<String>,
    /// What it said of its store (nothing when it refused).
    pub store: StoreHealth,
}

/// GET_ALL_TOPIC_CONFIG whose body is handed back unparsed, to be parsed off the async thread.
struct TopicTableBytes;

impl Request for TopicTableBytes {
    const CODE: i32 = request::GET_ALL_TOPIC_CONFIG;
    type Response = Bytes;

    fn parse(reply: RemotingCommand) -> Result<Bytes, ApiError> {
        reply.body.ok_or_else(|| ApiError::Decode {
            what: "topics",
            reason: "no body".into(),
        })
    }
}

impl BrokerApi {
    /// One health check of the broker at `addr`: Ok when it answered in time, with the
    /// remark of an authentication refusal (NO_PERMISSION) when it refused the daemon's
    /// credentials or their absence.
    ///
    /// Any answer but GO_AWAY counts: a broker that says "no permission" or "busy" still
    /// serves; one that says GO_AWAY is draining and about to stop.
    pub async fn check_broker(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<BrokerAnswer, ApiError> {
        match self.call(addr, &RuntimeInfo, timeout).await {
            Ok(store) => Ok(BrokerAnswer {
                refused: None,
                store,
            }),
            Err(ApiError::Refused { code, remark }) if code == response::NO_PERMISSION => {
                Ok(BrokerAnswer {
                    refused: Some(remark.unwrap_or_default()),
                    store: StoreHealth::default(),
                })
            }
            Err(ApiError::Refused { code, remark }) if code != response::GO_AWAY => {
                tracing::debug!(%addr, code, ?remark, "broker answered the health check with an error code: it serves");
                Ok(BrokerAnswer::default())
            }
            Err(e) => Err(e),
        }
    }

    /// What the broker says of its store now (GET_BROKER_RUNTIME_INFO), outside the health
    /// check (with the identity from the broker, the check is GET_BROKER_CONFIG).
    pub async fn store_health(&self, addr: &str, timeout: Duration) -> Result<StoreHealth, ApiError> {
        self.call(addr, &RuntimeInfo, timeout).await
    }

    /// The broker's own topic table (GET_ALL_TOPIC_CONFIG), parsed on a blocking thread.
    pub async fn broker_topics(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<TopicConfigWrapper, ApiError> {
        let body = self.call(addr, &TopicTableBytes, timeout).await?;
        let parsed = tokio::task::spawn_blocking(move || parse_topics_json(&body)).await;
        match parsed {
            Ok(Ok(w)) => Ok(w),
            Ok(Err(e)) => Err(ApiError::Decode {
                what: "topics",
                reason: e.to_string(),
            }),
            Err(e) => Err(ApiError::Task {
                what: "topics",
                source: std::sync::Arc::new(e),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_the_store_flag_are_read_as_brokers_write_them() {
        let java = br#"{"table":{"commitLogDiskRatio":"0.91","consumeQueueDiskRatio":"0.45","putTps":"0 0 0"}}"#;
        let s = StoreHealth::from_kv_table(java);
        assert_eq!((s.commitlog, s.consumequeue, s.writable), (Some(0.91), Some(0.45), None));
        // The Rust broker does not round; -1 is "could not tell".
        let rust = br#"{"table":{"commitLogDiskRatio":"0.9005","consumeQueueDiskRatio":"-1","storeWriteable":"false"}}"#;
        let s = StoreHealth::from_kv_table(rust);
        assert_eq!((s.consumequeue, s.writable), (None, Some(false)));
        assert_eq!(s.commitlog, Some(0.9005));
        assert_eq!(StoreHealth::from_kv_table(b"<html>"), StoreHealth::default());
    }
}
