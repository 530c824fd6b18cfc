//! Requests to the broker this daemon advertises: the health check and its topic table.

use std::time::Duration;

use bytes::Bytes;

use super::body::{parse_topics_json, TopicConfigWrapper};
use crate::broker::api::{BrokerApi, Request};
use crate::broker::error::ApiError;
use crate::protocol::code::{request, response};
use crate::protocol::RemotingCommand;

/// GET_BROKER_RUNTIME_INFO, used as the health check: only a serving broker answers it.
struct RuntimeInfo;

impl Request for RuntimeInfo {
    const CODE: i32 = request::GET_BROKER_RUNTIME_INFO;
    type Response = ();

    fn parse(_reply: RemotingCommand) -> Result<(), ApiError> {
        Ok(())
    }
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
    ) -> Result<Option<String>, ApiError> {
        match self.call(addr, &RuntimeInfo, timeout).await {
            Ok(()) => Ok(None),
            Err(ApiError::Refused { code, remark }) if code == response::NO_PERMISSION => {
                Ok(Some(remark.unwrap_or_default()))
            }
            Err(ApiError::Refused { code, remark }) if code != response::GO_AWAY => {
                tracing::debug!(%addr, code, ?remark, "broker answered the health check with an error code: it serves");
                Ok(None)
            }
            Err(e) => Err(e),
        }
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
