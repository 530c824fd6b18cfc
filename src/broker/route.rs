//! GET_ROUTEINFO_BY_TOPIC: the route a producer gets for one topic.
//!
//! The NameServer answers it under its read lock in O(brokers of the topic), which makes it the
//! cheap way to see what producers are routed to. Java quotes the `brokerAddrs` keys only for
//! request versions ≥ 4.9.4 (or `acceptStandardJsonOnly`); both forms are read.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::broker::api::{parse_body, BrokerApi, Request};
use crate::broker::error::ApiError;
use crate::protocol::RemotingCommand;

/// TOPIC_NOT_EXIST: no broker serves the topic.
const TOPIC_NOT_EXIST: i32 = 17;
/// SYSTEM_ERROR, which a 5.1+ NameServer with `needWaitForService` answers while it waits.
const SYSTEM_ERROR: i32 = 1;

/// One broker name's entry in a route: its cluster and its addresses by id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerData {
    /// Cluster name.
    pub cluster: String,
    /// Broker name.
    pub broker_name: String,
    /// Id → address (fastjson writes the ids as bare keys; a 4.9.8 DLedger node may hold -1).
    pub broker_addrs: BTreeMap<i64, String>,
}

/// One broker name's queues for the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueData {
    /// Read queues.
    pub read_queue_nums: i32,
    /// Write queues.
    pub write_queue_nums: i32,
    /// Permission bits (PermName: 4 read, 2 write, 1 inherit).
    pub perm: i32,
}

/// A broker name's queue data, with its name (kept apart so `QueueData` stays `Copy`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NamedQueueData {
    /// Broker name.
    pub broker_name: String,
    /// The queues.
    #[serde(flatten)]
    pub queues: QueueData,
}

/// A topic's route as a NameServer holds it (the parts the read-back compares).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicRoute {
    /// Every broker name serving the topic.
    pub broker_datas: Vec<BrokerData>,
    /// Their queues.
    pub queue_datas: Vec<NamedQueueData>,
}

impl TopicRoute {
    /// Broker `name`'s entry.
    pub fn broker(&self, name: &str) -> Option<&BrokerData> {
        self.broker_datas.iter().find(|b| b.broker_name == name)
    }

    /// Broker `name`'s queues.
    pub fn queues(&self, name: &str) -> Option<QueueData> {
        self.queue_datas
            .iter()
            .find(|q| q.broker_name == name)
            .map(|q| q.queues)
    }
}

/// What a NameServer said of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAnswer {
    /// Its route.
    Found(TopicRoute),
    /// TOPIC_NOT_EXIST: no broker serves it there.
    NotExist,
    /// The NameServer is not serving routes yet (5.1+ `needWaitForService`): its remark.
    NotReady(String),
}

/// GET_ROUTEINFO_BY_TOPIC for one topic.
struct RouteOf<'a>(&'a str);

impl Request for RouteOf<'_> {
    const CODE: i32 = crate::protocol::code::request::GET_ROUTEINFO_BY_TOPIC;
    type Response = TopicRoute;

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![("topic", self.0.to_string())]
    }

    fn parse(reply: RemotingCommand) -> Result<TopicRoute, ApiError> {
        parse_body("topic route", &reply)
    }
}

/// True for the remark a NameServer that is not serving yet answers with.
fn not_ready(remark: Option<&str>) -> bool {
    remark.is_some_and(|r| r.to_ascii_lowercase().contains("not ready"))
}

impl BrokerApi {
    /// The route NameServer `addr` gives producers for `topic`.
    pub async fn topic_route(
        &self,
        addr: &str,
        topic: &str,
        timeout: Duration,
    ) -> Result<RouteAnswer, ApiError> {
        match self.call(addr, &RouteOf(topic), timeout).await {
            Ok(route) => Ok(RouteAnswer::Found(route)),
            Err(ApiError::Refused { code, .. }) if code == TOPIC_NOT_EXIST => {
                Ok(RouteAnswer::NotExist)
            }
            Err(ApiError::Refused { code, remark })
                if code == SYSTEM_ERROR && not_ready(remark.as_deref()) =>
            {
                Ok(RouteAnswer::NotReady(remark.unwrap_or_default()))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(body: &str) -> Result<TopicRoute, ApiError> {
        let mut reply = RemotingCommand::response_to(&RemotingCommand::request(105), 0, None);
        reply.body = Some(bytes::Bytes::copy_from_slice(body.as_bytes()));
        RouteOf::parse(reply)
    }

    #[test]
    fn both_key_forms_read_the_same() {
        let quoted = r#"{"brokerDatas":[{"brokerAddrs":{"0":"a:1","1":"b:1"},"brokerName":"b","cluster":"C","enableActingMaster":false}],"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}],"filterServerTable":{}}"#;
        let bare = quoted.replace(r#""0":"#, "0:").replace(r#""1":"#, "1:");
        assert_ne!(quoted, bare);
        let (a, b) = (route(quoted).unwrap(), route(&bare).unwrap());
        assert_eq!(a, b);
        let data = a.broker("b").unwrap();
        assert_eq!(data.broker_addrs[&1], "b:1");
        assert_eq!(data.cluster, "C");
        assert_eq!(
            a.queues("b"),
            Some(QueueData {
                read_queue_nums: 4,
                write_queue_nums: 4,
                perm: 6
            })
        );
        assert_eq!(a.queues("other"), None);
    }

    #[test]
    fn a_dledger_node_before_its_election_and_unknown_keys_parse() {
        let r = route(r#"{"brokerDatas":[{"brokerAddrs":{-1:"a:1"},"brokerName":"b","zoneName":"z"}],"new":[1]}"#)
            .unwrap();
        assert_eq!(r.broker("b").unwrap().broker_addrs[&-1], "a:1");
        assert!(r.queue_datas.is_empty());
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_route() {
        for body in ["<html>", r#"{"brokerDatas":7}"#, r#"{"brokerDatas":[{"brokerAddrs":{"x":"a"}}]}"#] {
            assert!(matches!(route(body), Err(ApiError::Decode { .. })), "{body}");
        }
        assert!(matches!(
            RouteOf::parse(RemotingCommand::response_to(&RemotingCommand::request(105), 0, None)),
            Err(ApiError::Decode { .. })
        ));
    }

    #[test]
    fn the_wait_for_service_remark_is_not_ready() {
        assert!(not_ready(Some("name server not ready")));
        assert!(!not_ready(Some("register broker failed")));
        assert!(!not_ready(None));
    }
}
