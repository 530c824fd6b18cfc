//! The remoting client against the real NameServer (`rocketmq-namesrv-rust`).

use std::time::Duration;

use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::{RemotingCommand, SerializeType};

use crate::support::daemon::{base_config, Daemon};
use crate::support::namesrv::{route_brokers, NameServer};
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};
use crate::support::wait::eventually;

const T: Duration = Duration::from_secs(5);

fn cluster_info(t: SerializeType) -> RemotingCommand {
    RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO).with_serialize_type(t)
}

fn register_body(topics: &[&str]) -> String {
    let dv = r#"{"counter":1,"stateVersion":0,"timestamp":1700000000000}"#;
    let table: Vec<String> = topics
        .iter()
        .map(|n| {
            format!(
                r#""{n}":{{"attributes":{{}},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"{n}","topicSysFlag":0,"writeQueueNums":4}}"#
            )
        })
        .collect();
    format!(
        r#"{{"filterServerList":[],"topicConfigSerializeWrapper":{{"dataVersion":{dv},"mappingDataVersion":{dv},"topicConfigTable":{{{}}},"topicQueueMappingDetailMap":{{}},"topicQueueMappingInfoMap":{{}}}}}}"#,
        table.join(",")
    )
}

#[tokio::test]
async fn cluster_info_answers_in_json_and_rocketmq_headers() {
    let ns = NameServer::start().await;
    let c = client();
    for t in [SerializeType::Json, SerializeType::RocketMq] {
        let resp = c
            .invoke_sync(Some(&ns.addr), cluster_info(t), T)
            .await
            .unwrap();
        assert_eq!(resp.code, 0, "{t:?}: {:?}", resp.remark);
        let body = resp.body.expect("cluster info body");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("brokerAddrTable").is_some(), "{v}");
        // The server says who it is: language RUST, a 5.x version.
        assert_eq!(resp.language.name(), Some("RUST"));
        assert!(resp.version >= 413, "{}", resp.version);
    }
}

#[tokio::test]
async fn register_on_a_held_connection_shows_the_broker_until_it_closes() {
    let ns = NameServer::start().await;
    let c = client();
    let body = register_body(&["InteropA", "InteropB"]);
    let crc = crc32fast::hash(body.as_bytes()) & 0x7FFF_FFFF;
    let reg = RemotingCommand::request(request::REGISTER_BROKER)
        .with_field("brokerAddr", "127.0.0.1:10911")
        .with_field("brokerId", 0)
        .with_field("brokerName", "interop-broker")
        .with_field("clusterName", "InteropCluster")
        .with_field("compressed", false)
        .with_field("enableActingMaster", false)
        .with_field("haServerAddr", "127.0.0.1:10912")
        .with_field("bodyCrc32", crc)
        .with_body(body);
    let resp = c.invoke_sync(Some(&ns.addr), reg, T).await.unwrap();
    assert_eq!(resp.code, 0, "{:?}", resp.remark);

    let info = c
        .invoke_sync(Some(&ns.addr), cluster_info(SerializeType::Json), T)
        .await
        .unwrap();
    let text = String::from_utf8(info.body.unwrap().to_vec()).unwrap();
    assert!(
        text.contains("interop-broker") && text.contains("InteropCluster"),
        "{text}"
    );

    // The registration is bound to the connection: close it and the broker is gone.
    c.close_connection(&ns.addr);
    let other = client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = other
            .invoke_sync(Some(&ns.addr), cluster_info(SerializeType::Json), T)
            .await
            .unwrap();
        let text = String::from_utf8(info.body.unwrap().to_vec()).unwrap();
        if !text.contains("interop-broker") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker still registered: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn header_without_serialize_type_key_is_dropped_by_the_rust_namesrv() {
    // PROTOCOL.md §10: the Rust NameServer closes the connection, silently, on such a header.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ns = NameServer::start().await;
    let header = br#"{"code":106,"flag":0,"language":"JAVA","opaque":1,"version":479}"#;
    let mut frame = ((4 + header.len()) as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header);
    let mut s = tokio::net::TcpStream::connect(&ns.addr).await.unwrap();
    s.write_all(&frame).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "expected a silent close, got {n:?}"
    );
}

/// Split registration: the same broker's topics sent as consecutive REGISTER_BROKER requests
/// on one connection, each batch a part of the table, with the same or a new data version.
/// What the NameServer keeps decides whether splitting can work at all.
#[tokio::test]
async fn split_batches_what_the_namesrv_keeps() {
    use rmq_registrar::broker::body::{DataVersion, TopicConfig, TopicConfigWrapper};
    use rmq_registrar::broker::{BrokerApi, BrokerIdentity, RegisterOptions};
    use std::sync::Arc;
    let ns = NameServer::start().await;
    let c = client();
    let api = BrokerApi::new(c.clone());
    let id = BrokerIdentity {
        cluster: "SplitCluster".into(),
        name: "split-probe".into(),
        id: 0,
        addr: "127.0.0.1:10911".into(),
        ha_addr: "127.0.0.1:10912".into(),
        zone: None,
    };
    let batch = |names: &[&str], counter: i64| {
        let mut w = TopicConfigWrapper {
            data_version: DataVersion {
                counter,
                state_version: 0,
                timestamp: 1_700_000_000_000,
            },
            ..Default::default()
        };
        for n in names {
            w.topic_config_table
                .insert(n.to_string(), TopicConfig::new(*n, 4));
        }
        Arc::new(w)
    };
    let addrs = [ns.addr.clone()];
    let opts = RegisterOptions::default();
    for (label, second_counter) in [("same data version", 1), ("next data version", 2)] {
        let (a, b) = (
            format!("First{second_counter}"),
            format!("Second{second_counter}"),
        );
        let out = api.register_to(&addrs, &id, &batch(&[&a], 1), &opts).await;
        assert!(out.per_namesrv[0].result.is_ok());
        let out = api
            .register_to(&addrs, &id, &batch(&[&b], second_counter), &opts)
            .await;
        assert!(out.per_namesrv[0].result.is_ok());
        let first = route_brokers(&c, &ns.addr, &a).await;
        let second = route_brokers(&c, &ns.addr, &b).await;
        // Measured: the NameServer keeps the topics of earlier batches (it merges, it does not
        // replace), whatever the data version says: split registration works against it.
        assert_eq!(first, ["split-probe"], "{label}: first batch kept");
        assert_eq!(second, ["split-probe"], "{label}: second batch added");
    }
}

/// enableSplitRegistration's way: 2,000 topics in requests of 800; the data-version check and
/// UNREGISTER work for the split registration as for a whole one.
#[tokio::test]
async fn a_split_registration_checks_its_version_and_unregisters_like_a_whole_one() {
    use rmq_registrar::broker::body::{DataVersion, TopicConfig, TopicConfigWrapper};
    use rmq_registrar::broker::{
        BrokerApi, BrokerIdentity, RegisterOptions, RegisterStatus, SentAs,
    };
    use std::sync::Arc;
    let ns = NameServer::start().await;
    let c = client();
    let api = BrokerApi::new(c.clone());
    let id = BrokerIdentity {
        cluster: "SplitCluster".into(),
        name: "split-java-way".into(),
        id: 0,
        addr: "127.0.0.1:10911".into(),
        ha_addr: "127.0.0.1:10912".into(),
        zone: None,
    };
    let mut w = TopicConfigWrapper {
        data_version: DataVersion::now(),
        ..Default::default()
    };
    for i in 0..2000 {
        let n = format!("SplitT{i:04}");
        w.topic_config_table
            .insert(n.clone(), TopicConfig::new(n, 4));
    }
    let w = Arc::new(w);
    let addrs = [ns.addr.clone()];
    let opts = RegisterOptions {
        always_split: true,
        split_size: 800,
        ..RegisterOptions::default()
    };
    let out = api.register_to(&addrs, &id, &w, &opts).await;
    match &out.per_namesrv[0].result {
        Ok(RegisterStatus::Registered(r)) => assert_eq!(r.sent_as, SentAs::Batches(3)),
        other => panic!("{other:?}"),
    }
    for t in ["SplitT0000", "SplitT0799", "SplitT0800", "SplitT1999"] {
        assert_eq!(
            route_brokers(&c, &ns.addr, t).await,
            ["split-java-way"],
            "{t}"
        );
    }
    let checked = RegisterOptions {
        force: false,
        ..opts.clone()
    };
    let out = api.register_to(&addrs, &id, &w, &checked).await;
    assert!(
        matches!(out.per_namesrv[0].result, Ok(RegisterStatus::Current)),
        "the NameServer holds the split registration's version: {:?}",
        out.per_namesrv[0].result
    );
    let un = api.unregister_from(&addrs, &id, T).await;
    assert!(un[0].result.is_ok());
    eventually("unregistered", || async {
        route_brokers(&c, &ns.addr, "SplitT0000").await.is_empty()
    })
    .await;
}

/// Topics in each REGISTER_BROKER `peer` received.
fn registered_batches(peer: &Peer) -> Vec<usize> {
    peer.drain_received()
        .iter()
        .filter(|c| c.code == request::REGISTER_BROKER)
        .map(|c| {
            let body: serde_json::Value =
                serde_json::from_slice(c.body.as_deref().unwrap_or_default()).unwrap_or_default();
            body["topicConfigSerializeWrapper"]["topicConfigTable"]
                .as_object()
                .map_or(0, |m| m.len())
        })
        .collect()
}

/// A NameServer answering GET_NAMESRV_CONFIG with `deleteTopicWithBrokerRegistration=deletes`,
/// and SUCCESS to everything else.
async fn namesrv_that_deletes(deletes: bool) -> Peer {
    Peer::start(move |cmd| {
        if cmd.code == 319 {
            let body = format!("listenPort=9876\ndeleteTopicWithBrokerRegistration={deletes}\n");
            return Action::Reply(RemotingCommand::request(0).with_body(body.into_bytes()));
        }
        Action::Reply(RemotingCommand::request(0))
    })
    .await
}

#[tokio::test]
async fn no_split_registration_goes_to_a_namesrv_that_deletes_topics_by_registration() {
    // 5.1.4+ with deleteTopicWithBrokerRegistration=true deletes, at each registration, the
    // broker's topics missing from it: batch after batch, only the last would stay.
    let (deleting, keeping) = (
        namesrv_that_deletes(true).await,
        namesrv_that_deletes(false).await,
    );
    let inline: String = (0..6)
        .map(|i| format!("[[broker.topics.inline]]\nname = \"SplitT{i}\"\n"))
        .collect();
    let list = [deleting.addr.as_str(), keeping.addr.as_str()];
    let d = Daemon::start(|_, http| {
        base_config("split-del", http, &list, &inline).replace(
            "[register]",
            "[register]\nalways_split = true\nsplit_size = 2",
        )
    });
    eventually("registered with both", || async {
        d.logs().contains("registration round ok=2 total=2")
    })
    .await;
    // Six inline topics and the broker's own: seven.
    assert_eq!(registered_batches(&deleting), [7], "{}", d.logs());
    assert_eq!(registered_batches(&keeping), [2, 2, 2, 1], "{}", d.logs());
    assert!(d.logs().contains("never split"), "{}", d.logs());
}
