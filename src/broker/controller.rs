//! The controller of a Java 5.0.x broker in controller mode, asked for the one thing that
//! broker does not report: a slave's id. 5.0.x answers GET_BROKER_CONFIG with the `brokerId` of
//! its file (fixed in 5.1.0) while the controller gave the slave another; the controller's
//! leader knows it (CONTROLLER_GET_REPLICA_INFO, by broker name and address). The leader is
//! found as the broker finds it: CONTROLLER_GET_METADATA_INFO to each address of its
//! `controllerAddr` in turn.
//!
//! Fields as Java 5.0.0 defines them (`GetMetaDataResponseHeader`: `isLeader`,
//! `controllerLeaderAddress`; `GetReplicaInfoRequestHeader`: `brokerName`, `brokerAddress`;
//! `GetReplicaInfoResponseHeader`: `masterAddress`, `masterEpoch`, `brokerId`, -1 for an address
//! the controller does not know). A 5.1.1+ controller answers the same request about the group
//! only (`masterBrokerId`, `masterAddress`, `masterEpoch`, no `brokerId`); its address → id map
//! is CONTROLLER_GET_SYNC_STATE_DATA's (`BrokerReplicasInfo`: per broker name the in-sync and
//! not-in-sync replicas, each `brokerId` with `brokerAddress`, or `address` in older forms).

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use super::own_config::{BrokerReport, ControllerSlave, ReportError};
use super::{ApiError, BrokerApi, Request};
use crate::protocol::code::{request, response};
use crate::protocol::RemotingCommand;

/// What a controller says of its group (CONTROLLER_GET_METADATA_INFO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerMetadata {
    /// `isLeader`: this controller leads (only the leader answers the replica question).
    pub is_leader: bool,
    /// `controllerLeaderAddress`: the leader it knows of, when it names one.
    pub leader: Option<String>,
}

/// CONTROLLER_GET_METADATA_INFO: no header, the answer in the reply's header.
struct GetMetaData;

impl Request for GetMetaData {
    const CODE: i32 = request::CONTROLLER_GET_METADATA_INFO;
    type Response = ControllerMetadata;

    fn parse(reply: RemotingCommand) -> Result<ControllerMetadata, ApiError> {
        Ok(ControllerMetadata {
            // Java writes a boolean field as "true"/"false"; anything else is not a leader.
            is_leader: reply
                .field("isLeader")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            leader: reply
                .field("controllerLeaderAddress")
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(String::from),
        })
    }
}

/// What CONTROLLER_GET_REPLICA_INFO said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replica {
    /// 5.0.x: the id of the address asked (`None`: it gave none).
    Id(Option<u64>),
    /// 5.1.1+: the group's master only; the address's id is in the sync-state data.
    Group,
}

/// CONTROLLER_GET_REPLICA_INFO for one broker address.
struct GetReplicaInfo<'a> {
    name: &'a str,
    addr: &'a str,
}

impl Request for GetReplicaInfo<'_> {
    const CODE: i32 = request::CONTROLLER_GET_REPLICA_INFO;
    type Response = Replica;

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("brokerName", self.name.to_string()),
            ("brokerAddress", self.addr.to_string()),
        ]
    }

    fn parse(reply: RemotingCommand) -> Result<Replica, ApiError> {
        match reply.field("brokerId").map(str::trim) {
            // 5.0.x always names the address's id (-1 for none); 5.1.1+ never does (its
            // `masterBrokerId` too is absent while no master is elected).
            None => Ok(Replica::Group),
            Some("") => Ok(Replica::Id(None)),
            // Slave ids start at 1; -1 is "no id for that address" (the master's is 0 by its
            // role, never asked here).
            Some(v) => v
                .parse::<i64>()
                .map(|id| Replica::Id(u64::try_from(id).ok().filter(|id| *id > 0)))
                .map_err(|_| ApiError::Decode {
                    what: "controller replica info",
                    reason: format!(
                        "brokerId {:?} is not a number",
                        v.chars().take(40).collect::<String>()
                    ),
                }),
        }
    }
}

/// CONTROLLER_GET_SYNC_STATE_DATA for one broker name (5.1.1+): its `BrokerReplicasInfo`, read
/// by [`id_in_sync_state`].
struct GetSyncStateData<'a> {
    name: &'a str,
}

impl Request for GetSyncStateData<'_> {
    const CODE: i32 = request::CONTROLLER_GET_SYNC_STATE_DATA;
    type Response = serde_json::Value;

    fn body(&self) -> Option<bytes::Bytes> {
        Some(serde_json::json!([self.name]).to_string().into_bytes().into())
    }

    fn parse(reply: RemotingCommand) -> Result<serde_json::Value, ApiError> {
        super::api::parse_body("controller sync-state data", &reply)
    }
}

/// The id `addr` has in a `BrokerReplicasInfo` body for broker `name`: `None` while it has
/// none, or while it is the group's master (a slave's report with the master's id is a
/// transition: its role will say master).
fn id_in_sync_state(body: &serde_json::Value, name: &str, addr: &str) -> Option<u64> {
    let group = body.get("replicasInfoTable")?.get(name)?;
    let master = group.get("masterBrokerId").and_then(serde_json::Value::as_i64);
    let master_addr = group.get("masterAddress").and_then(serde_json::Value::as_str);
    if master_addr == Some(addr) {
        return None;
    }
    ["inSyncReplicas", "notInSyncReplicas"]
        .iter()
        .filter_map(|k| group.get(*k)?.as_array())
        .flatten()
        .find(|r| {
            let a = r.get("brokerAddress").or_else(|| r.get("address"));
            a.and_then(serde_json::Value::as_str) == Some(addr)
        })
        .and_then(|r| r.get("brokerId")?.as_i64())
        .filter(|id| Some(*id) != master)
        .and_then(|id| u64::try_from(id).ok())
        .filter(|id| *id > 0)
}

/// What one controller said when it gave no id, for the health check's reason.
fn why(e: &ApiError) -> String {
    match e {
        ApiError::Refused { code, .. } if *code == response::CONTROLLER_NOT_LEADER => {
            format!("not the leader (code {code})")
        }
        e => e.to_string(),
    }
}

/// Finds the controller leader among `controllers` and asks it the id: `metadata` asks one
/// controller whether it leads (a follower, an error or no answer: the next one; a follower
/// that names the leader sends the search there first), `replica` asks the leader. A leader
/// that lost its place between the two questions (CONTROLLER_NOT_LEADER) is passed over like a
/// follower. Each address is asked once, and one leader named outside the list at most (a
/// controller moved since the broker's file was written): a bounded search whatever the
/// answers say. `Err`: each controller asked, with what it said.
async fn leader_answer<M, MF, R, RF>(
    controllers: &[String],
    mut metadata: M,
    mut replica: R,
) -> Result<Option<u64>, Vec<(String, String)>>
where
    M: FnMut(String) -> MF,
    MF: Future<Output = Result<ControllerMetadata, ApiError>>,
    R: FnMut(String) -> RF,
    RF: Future<Output = Result<Option<u64>, ApiError>>,
{
    let mut queue: VecDeque<String> = controllers.iter().cloned().collect();
    let mut outsiders = 1;
    let mut tried: Vec<(String, String)> = Vec::new();
    while let Some(c) = queue.pop_front() {
        if tried.iter().any(|(t, _)| *t == c) {
            continue;
        }
        let said = match metadata(c.clone()).await {
            Err(e) => why(&e),
            Ok(m) if m.is_leader => match replica(c.clone()).await {
                Ok(id) => return Ok(id),
                // The leader knows no such broker name yet: no id, as the broker's own -1.
                Err(ApiError::Refused { code, .. })
                    if code == response::CONTROLLER_BROKER_METADATA_NOT_EXIST =>
                {
                    return Ok(None)
                }
                Err(e) => why(&e),
            },
            Ok(m) => {
                if let Some(leader) = m.leader.filter(|l| *l != c) {
                    let listed = controllers.contains(&leader);
                    if listed || outsiders > 0 {
                        outsiders -= usize::from(!listed);
                        queue.retain(|q| *q != leader);
                        queue.push_front(leader);
                    }
                }
                "not the leader".to_string()
            }
        };
        tried.push((c, said));
    }
    Err(tried)
}

impl BrokerApi {
    /// Who the broker at `addr` is now: its GET_BROKER_CONFIG answer and, for a Java 5.0.x
    /// slave in controller mode, the id its controller leader gave its address. Each exchange
    /// is bounded by `timeout`.
    pub async fn broker_report(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<BrokerReport, ApiError> {
        match self.broker_config_report(addr, timeout).await {
            Err(ApiError::Report(ReportError::IdFromController(slave))) => {
                self.id_from_controller(*slave, timeout).await
            }
            r => r,
        }
    }

    /// Completes a Java 5.0.x controller-mode slave's report with the id its controller leader
    /// gave the broker's address (`None` while it gave none). No controller answering is
    /// [`ReportError::ControllerSlaveOn50`], naming each one tried. Each exchange is bounded by
    /// `timeout`.
    pub async fn id_from_controller(
        &self,
        slave: ControllerSlave,
        timeout: Duration,
    ) -> Result<BrokerReport, ApiError> {
        let ControllerSlave {
            mut report,
            controllers,
        } = slave;
        // The controller knows the broker by the address it registered with (brokerIP1 and
        // listenPort), the one in its report, whatever address the operator registers.
        let (name, addr) = (report.name.as_str(), report.addr.as_str());
        let id = leader_answer(
            &controllers,
            |c| async move { self.ask(&c, &GetMetaData, timeout).await },
            |c| async move {
                match self.ask(&c, &GetReplicaInfo { name, addr }, timeout).await? {
                    Replica::Id(id) => Ok(id),
                    Replica::Group => {
                        let data = self.ask(&c, &GetSyncStateData { name }, timeout).await?;
                        Ok(id_in_sync_state(&data, name, addr))
                    }
                }
            },
        )
        .await
        .map_err(|tried| ReportError::ControllerSlaveOn50 { tried })?;
        report.id = id;
        Ok(report)
    }

    /// One exchange with a controller, connect included, within `timeout`; a controller that
    /// did not answer in time gets a fresh connection next time.
    async fn ask<R: Request>(
        &self,
        addr: &str,
        req: &R,
        timeout: Duration,
    ) -> Result<R::Response, ApiError> {
        match tokio::time::timeout(timeout, self.call(addr, req, timeout)).await {
            Ok(Err(e)) if e.is_timeout() => {
                self.client().close_connection(addr);
                Err(e)
            }
            Ok(r) => r,
            Err(_) => {
                self.client().close_connection(addr);
                Err(ApiError::Timeout(timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    fn reply(fields: &[(&'static str, &str)]) -> RemotingCommand {
        let mut r = RemotingCommand::request(0);
        for (k, v) in fields {
            r.ext_fields.insert(*k, v.to_string());
        }
        r
    }

    #[test]
    fn metadata_headers_are_read_as_java_5_0_writes_them() {
        let leader = reply(&[
            ("group", "g"),
            ("controllerLeaderId", "n1"),
            ("controllerLeaderAddress", "10.0.0.2:9878"),
            ("isLeader", "true"),
            ("peers", "n0:10.0.0.1:9878;n1:10.0.0.2:9878;"),
        ]);
        assert_eq!(
            GetMetaData::parse(leader).unwrap(),
            ControllerMetadata {
                is_leader: true,
                leader: Some("10.0.0.2:9878".into())
            }
        );
        let follower = reply(&[
            ("isLeader", "false"),
            ("controllerLeaderAddress", "10.0.0.2:9878"),
        ]);
        assert!(!GetMetaData::parse(follower).unwrap().is_leader);
        // Before an election: no leader named, none assumed.
        let none = GetMetaData::parse(reply(&[("controllerLeaderAddress", " ")])).unwrap();
        assert_eq!(
            none,
            ControllerMetadata {
                is_leader: false,
                leader: None
            }
        );
    }

    #[test]
    fn replica_headers_give_the_addresses_id_or_none() {
        let fields = GetReplicaInfo {
            name: "b",
            addr: "10.0.0.5:30911",
        }
        .fields();
        assert_eq!(
            fields,
            vec![
                ("brokerName", "b".to_string()),
                ("brokerAddress", "10.0.0.5:30911".to_string())
            ]
        );
        let id = |v: &str| {
            GetReplicaInfo::parse(reply(&[
                ("masterAddress", "10.0.0.4:30911"),
                ("masterEpoch", "3"),
                ("brokerId", v),
            ]))
        };
        assert_eq!(id("2").unwrap(), Replica::Id(Some(2)));
        assert_eq!(
            id("-1").unwrap(),
            Replica::Id(None),
            "an address the controller does not know"
        );
        assert_eq!(GetReplicaInfo::parse(reply(&[])).unwrap(), Replica::Group);
        // 5.1.1+: about the group, no id of the address asked.
        let group = reply(&[
            ("masterBrokerId", "1"),
            ("masterAddress", "10.0.0.4:30911"),
            ("masterEpoch", "3"),
        ]);
        assert_eq!(GetReplicaInfo::parse(group).unwrap(), Replica::Group);
        assert!(matches!(
            id("two"),
            Err(ApiError::Decode {
                what: "controller replica info",
                ..
            })
        ));
    }

    #[test]
    fn the_sync_state_data_gives_a_slave_its_id_in_either_form_and_never_the_masters() {
        let new = serde_json::json!({"replicasInfoTable": {"b": {
            "masterBrokerId": 1, "masterAddress": "10.0.0.4:30911", "masterEpoch": 2,
            "syncStateSetEpoch": 2,
            "inSyncReplicas": [
                {"brokerName": "b", "brokerId": 1, "brokerAddress": "10.0.0.4:30911", "alive": true},
                {"brokerName": "b", "brokerId": 2, "brokerAddress": "10.0.0.5:30911", "alive": true}
            ],
            "notInSyncReplicas": [
                {"brokerName": "b", "brokerId": 3, "brokerAddress": "10.0.0.6:30911", "alive": false}
            ]
        }}});
        assert_eq!(id_in_sync_state(&new, "b", "10.0.0.5:30911"), Some(2));
        assert_eq!(id_in_sync_state(&new, "b", "10.0.0.6:30911"), Some(3));
        assert_eq!(id_in_sync_state(&new, "b", "10.0.0.4:30911"), None, "the master's id");
        assert_eq!(id_in_sync_state(&new, "b", "10.0.0.9:30911"), None);
        assert_eq!(id_in_sync_state(&new, "other", "10.0.0.5:30911"), None);
        let old = serde_json::json!({"replicasInfoTable": {"b": {
            "masterAddress": "10.0.0.4:30911",
            "inSyncReplicas": [{"address": "10.0.0.5:30911", "brokerId": 2}]
        }}});
        assert_eq!(id_in_sync_state(&old, "b", "10.0.0.5:30911"), Some(2));
        let old_master = serde_json::json!({"replicasInfoTable": {"b": {
            "masterAddress": "10.0.0.4:30911",
            "inSyncReplicas": [{"address": "10.0.0.4:30911", "brokerId": 1}]
        }}});
        assert_eq!(id_in_sync_state(&old_master, "b", "10.0.0.4:30911"), None, "the master's, by address");
        let body = GetSyncStateData { name: "b" }.body().unwrap();
        assert_eq!(&body[..], br#"["b"]"#);
    }

    fn refused(code: i32) -> ApiError {
        ApiError::Refused { code, remark: None }
    }

    /// A scripted group: each address's metadata answer and replica answer, and who was asked.
    struct Group {
        meta: HashMap<&'static str, Result<ControllerMetadata, ApiError>>,
        replica: HashMap<&'static str, Result<Option<u64>, ApiError>>,
        asked: Mutex<Vec<String>>,
    }

    impl Group {
        async fn search(&self, list: &[&str]) -> Result<Option<u64>, Vec<(String, String)>> {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            leader_answer(
                &list,
                |c| async move {
                    self.asked.lock().unwrap().push(format!("1005 {c}"));
                    self.meta
                        .get(c.as_str())
                        .cloned()
                        .unwrap_or(Err(ApiError::Timeout(Duration::from_millis(1))))
                },
                |c| async move {
                    self.asked.lock().unwrap().push(format!("1004 {c}"));
                    self.replica.get(c.as_str()).cloned().unwrap_or(Ok(None))
                },
            )
            .await
        }
    }

    fn lead(is_leader: bool, leader: Option<&str>) -> Result<ControllerMetadata, ApiError> {
        Ok(ControllerMetadata {
            is_leader,
            leader: leader.map(String::from),
        })
    }

    #[tokio::test]
    async fn the_leader_is_found_past_followers_and_errors() {
        let g = Group {
            meta: HashMap::from([
                ("f", Err(refused(response::CONTROLLER_NOT_LEADER))),
                ("l", lead(true, Some("l"))),
            ]),
            replica: HashMap::from([("l", Ok(Some(2)))]),
            asked: Mutex::default(),
        };
        assert_eq!(g.search(&["down", "f", "l"]).await, Ok(Some(2)));
        assert_eq!(
            *g.asked.lock().unwrap(),
            ["1005 down", "1005 f", "1005 l", "1004 l"]
        );
    }

    #[tokio::test]
    async fn a_follower_that_names_the_leader_sends_the_search_there() {
        let g = Group {
            meta: HashMap::from([
                ("f", lead(false, Some("l"))),
                ("l", lead(true, None)),
                ("x", lead(false, None)),
            ]),
            replica: HashMap::from([("l", Ok(Some(3)))]),
            asked: Mutex::default(),
        };
        assert_eq!(g.search(&["f", "x", "l"]).await, Ok(Some(3)));
        assert_eq!(
            *g.asked.lock().unwrap(),
            ["1005 f", "1005 l", "1004 l"],
            "x is not asked"
        );
    }

    #[tokio::test]
    async fn a_leader_that_lost_its_place_is_passed_over_and_unknown_names_have_no_id() {
        let g = Group {
            meta: HashMap::from([("a", lead(true, None)), ("b", lead(true, None))]),
            replica: HashMap::from([
                ("a", Err(refused(response::CONTROLLER_NOT_LEADER))),
                ("b", Err(refused(response::CONTROLLER_BROKER_METADATA_NOT_EXIST))),
            ]),
            asked: Mutex::default(),
        };
        assert_eq!(g.search(&["a", "b"]).await, Ok(None));
    }

    #[tokio::test]
    async fn no_answer_names_every_controller_tried_once_and_the_search_is_bounded() {
        // Followers naming one another, and a leader outside the list naming yet another.
        let g = Group {
            meta: HashMap::from([
                ("a", lead(false, Some("b"))),
                ("b", lead(false, Some("a"))),
                ("c", lead(false, Some("out1"))),
                ("out1", lead(false, Some("out2"))),
                ("out2", lead(true, None)),
            ]),
            replica: HashMap::from([("out2", Ok(Some(9)))]),
            asked: Mutex::default(),
        };
        let tried = g.search(&["a", "b", "a", "c"]).await.unwrap_err();
        let names: Vec<&str> = tried.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "out1"], "{tried:?}");
        assert!(tried.iter().all(|(_, why)| why == "not the leader"));
        let text = ReportError::ControllerSlaveOn50 { tried }.to_string();
        assert!(text.contains("tried a: not the leader; b: not the leader"), "{text}");
        let g = Group {
            meta: HashMap::from([("f", Err(refused(response::CONTROLLER_NOT_LEADER)))]),
            replica: HashMap::new(),
            asked: Mutex::default(),
        };
        let tried = g.search(&["f"]).await.unwrap_err();
        assert_eq!(tried, [("f".to_string(), "not the leader (code 2007)".to_string())]);
        let none = ReportError::ControllerSlaveOn50 { tried: Vec::new() }.to_string();
        assert!(none.contains("names no controller"), "{none}");
    }
}
