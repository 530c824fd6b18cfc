//! The broker API against two real NameServers (and a black-holed third).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_registrar::broker::body::{DataVersion, TopicConfig, TopicConfigWrapper};
use rmq_registrar::broker::{ApiError, BrokerApi, BrokerIdentity, RegisterOptions, RegisterStatus};
use rmq_registrar::client::RpcHook;
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;

use crate::support::namesrv::{cluster_brokers, route_brokers, NameServer};
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};
use crate::support::wait::eventually;

const T: Duration = Duration::from_secs(5);

fn identity(name: &str) -> BrokerIdentity {
    BrokerIdentity {
        cluster: "ApiCluster".into(),
        name: name.into(),
        id: 0,
        addr: "127.0.0.1:10911".into(),
        ha_addr: "127.0.0.1:10912".into(),
        zone: None,
    }
}

fn topics(names: &[&str]) -> TopicConfigWrapper {
    let mut w = TopicConfigWrapper {
        data_version: DataVersion::now(),
        ..Default::default()
    };
    for n in names {
        w.topic_config_table
            .insert(n.to_string(), TopicConfig::new(*n, 4));
    }
    w
}

fn api_for(addrs: &[&str]) -> BrokerApi {
    let c = client();
    c.update_name_server_list(addrs.iter().map(|s| s.to_string()).collect());
    BrokerApi::new(c)
}

#[tokio::test]
async fn register_all_then_unregister_all_on_two_nameservers() {
    let (a, b) = (NameServer::start().await, NameServer::start().await);
    let api = api_for(&[&a.addr, &b.addr]);
    let id = identity("broker-two");
    let out = api
        .register_broker_all(&id, &topics(&["RegA", "RegB"]), &RegisterOptions::default())
        .await;
    assert_eq!(out.per_namesrv.len(), 2);
    for o in &out.per_namesrv {
        assert!(
            matches!(o.result, Ok(RegisterStatus::Registered(_))),
            "{}: {:?}",
            o.addr,
            o.result
        );
    }
    assert!(out.merged.is_some());
    let probe = client();
    for ns in [&a.addr, &b.addr] {
        let brokers = cluster_brokers(&probe, ns).await;
        assert_eq!(brokers["broker-two"]["cluster"], "ApiCluster", "{brokers}");
        assert_eq!(brokers["broker-two"]["brokerAddrs"]["0"], "127.0.0.1:10911");
        assert_eq!(route_brokers(&probe, ns, "RegA").await, vec!["broker-two"]);
        assert_eq!(route_brokers(&probe, ns, "RegB").await, vec!["broker-two"]);
    }
    let un = api.unregister_broker_all(&id, T).await;
    assert!(un.iter().all(|o| o.result.is_ok()), "{un:?}");
    for ns in [&a.addr, &b.addr] {
        eventually("broker gone", || async {
            cluster_brokers(&probe, ns)
                .await
                .get("broker-two")
                .is_none()
        })
        .await;
        assert!(route_brokers(&probe, ns, "RegA").await.is_empty());
    }
}

struct SeeCompressed(Mutex<Vec<String>>);

impl RpcHook for SeeCompressed {
    fn before_request(&self, _remote: &str, request: &mut RemotingCommand) {
        if request.code == request::REGISTER_BROKER {
            self.0
                .lock()
                .unwrap()
                .push(request.field("compressed").unwrap_or("").to_string());
        }
    }
    fn after_response(&self, _: &str, _: &RemotingCommand, _: Option<&RemotingCommand>) {}
}

#[tokio::test]
async fn compressed_registration_is_accepted_once_the_form_is_known() {
    let ns = NameServer::start().await;
    let api = api_for(&[&ns.addr]);
    let seen = Arc::new(SeeCompressed(Mutex::default()));
    api.client().register_rpc_hook(seen.clone());
    let id = identity("broker-z");
    let opts = RegisterOptions {
        compressed: true,
        ..RegisterOptions::default()
    };
    // First contact: a QUERY_DATA_VERSION learns the NameServer's form, so even the first
    // registration goes compressed.
    let out = api
        .register_broker_all(&id, &topics(&["ZipA", "ZipB"]), &opts)
        .await;
    assert!(
        out.per_namesrv[0].result.is_ok(),
        "{:?}",
        out.per_namesrv[0].result
    );
    let mut w = topics(&["ZipA", "ZipB", "ZipC"]);
    w.data_version = w.data_version.next();
    let out = api.register_broker_all(&id, &w, &opts).await;
    assert!(
        matches!(out.per_namesrv[0].result, Ok(RegisterStatus::Registered(_))),
        "{:?}",
        out.per_namesrv[0].result
    );
    assert_eq!(
        *seen.0.lock().unwrap(),
        vec!["true".to_string(), "true".to_string()]
    );
    let probe = client();
    assert_eq!(
        route_brokers(&probe, &ns.addr, "ZipC").await,
        vec!["broker-z"]
    );
    assert_eq!(
        route_brokers(&probe, &ns.addr, "ZipA").await,
        vec!["broker-z"]
    );
}

struct CountRegisters(AtomicUsize);

impl RpcHook for CountRegisters {
    fn before_request(&self, _remote: &str, request: &mut RemotingCommand) {
        if request.code == request::REGISTER_BROKER {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn after_response(&self, _: &str, _: &RemotingCommand, _: Option<&RemotingCommand>) {}
}

#[tokio::test]
async fn data_version_check_skips_only_unchanged_registrations() {
    let (a, b) = (NameServer::start().await, NameServer::start().await);
    let api = api_for(&[&a.addr, &b.addr]);
    let count = Arc::new(CountRegisters(AtomicUsize::new(0)));
    api.client().register_rpc_hook(count.clone());
    let id = identity("broker-dv");
    let mut w = topics(&["DvA", "DvB"]);
    let checked = RegisterOptions {
        force: false,
        ..RegisterOptions::default()
    };
    // Unknown to both NameServers: the check says "changed", so both register.
    let out = api.register_broker_all(&id, &w, &checked).await;
    assert!(
        out.per_namesrv
            .iter()
            .all(|o| matches!(o.result, Ok(RegisterStatus::Registered(_)))),
        "{out:?}"
    );
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
    // Unchanged: skipped on both.
    let out = api.register_broker_all(&id, &w, &checked).await;
    assert!(
        out.per_namesrv
            .iter()
            .all(|o| matches!(o.result, Ok(RegisterStatus::Current))),
        "{out:?}"
    );
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
    // Forced: registers although unchanged.
    let out = api
        .register_broker_all(&id, &w, &RegisterOptions::default())
        .await;
    assert!(out
        .per_namesrv
        .iter()
        .all(|o| matches!(o.result, Ok(RegisterStatus::Registered(_)))));
    assert_eq!(count.0.load(Ordering::SeqCst), 4);
    // Changed: registers again, and the new topic is routed.
    w.topic_config_table
        .insert("DvC".into(), TopicConfig::new("DvC", 2));
    w.data_version = w.data_version.next();
    let out = api.register_broker_all(&id, &w, &checked).await;
    assert!(
        out.per_namesrv
            .iter()
            .all(|o| matches!(o.result, Ok(RegisterStatus::Registered(_)))),
        "{out:?}"
    );
    assert_eq!(count.0.load(Ordering::SeqCst), 6);
    assert_eq!(
        route_brokers(&client(), &a.addr, "DvC").await,
        vec!["broker-dv"]
    );
}

#[tokio::test]
async fn black_holed_nameserver_costs_one_timeout_in_total() {
    let (a, b) = (NameServer::start().await, NameServer::start().await);
    let hole = Peer::start(|_| Action::Silent).await;
    let api = api_for(&[&a.addr, &hole.addr, &b.addr]);
    let id = identity("broker-hole");
    let opts = RegisterOptions {
        timeout: Duration::from_secs(2),
        ..RegisterOptions::default()
    };
    let t0 = tokio::time::Instant::now();
    let out = api
        .register_broker_all(&id, &topics(&["HoleA", "HoleB"]), &opts)
        .await;
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let ok = out.per_namesrv.iter().filter(|o| o.result.is_ok()).count();
    assert_eq!(ok, 2, "{out:?}");
    let timed_out: Vec<_> = out
        .per_namesrv
        .iter()
        .filter(|o| o.result.is_err())
        .collect();
    assert_eq!(timed_out.len(), 1);
    assert_eq!(timed_out[0].addr, hole.addr);
    let err = timed_out[0].result.as_ref().unwrap_err();
    assert!(
        matches!(err, ApiError::Timeout(_)) || matches!(err, ApiError::Client(e) if e.is_timeout()),
        "{err:?}"
    );
    // Unregister is bounded the same way.
    let t0 = tokio::time::Instant::now();
    let un = api.unregister_broker_all(&id, Duration::from_secs(2)).await;
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(un.iter().filter(|o| o.result.is_ok()).count(), 2);
}

#[tokio::test]
async fn refused_registration_is_a_typed_error() {
    // A NameServer that refuses: the code and remark come back, nothing is swallowed.
    let ns = Peer::start(|_| {
        let mut r = RemotingCommand::request(1);
        r.remark = Some("register broker failed".into());
        Action::Reply(r)
    })
    .await;
    let api = api_for(&[&ns.addr]);
    let mut id = identity("b");
    id.zone = Some("zone-a".into());
    let opts = RegisterOptions {
        heartbeat_timeout: Some(Duration::from_secs(10)),
        ..RegisterOptions::default()
    };
    let out = api
        .register_broker_all(&id, &topics(&["A", "B"]), &opts)
        .await;
    match &out.per_namesrv[0].result {
        Err(ApiError::Refused {
            code: 1,
            remark: Some(r),
        }) => assert_eq!(r, "register broker failed"),
        other => panic!("{other:?}"),
    }
    assert!(out.merged.is_none());
    let seen = ns.next_received().await;
    // The request carries what a 5.x broker sends, CRC included.
    for k in [
        "brokerAddr",
        "brokerId",
        "brokerName",
        "clusterName",
        "haServerAddr",
        "compressed",
        "bodyCrc32",
        "enableActingMaster",
    ] {
        assert!(seen.field(k).is_some(), "missing {k}");
    }
    assert_eq!(seen.field("heartbeatTimeoutMillis"), Some("10000"));
    assert_eq!(seen.field("__ZONE_NAME"), Some("zone-a"));
    assert_eq!(seen.version, 479);
    let crc = crc32fast::hash(seen.body.as_deref().unwrap()) & 0x7FFF_FFFF;
    assert_eq!(seen.field("bodyCrc32"), Some(crc.to_string().as_str()));
}

#[tokio::test]
async fn oneway_registration_awaits_no_reply() {
    let ns = Peer::start(|_| Action::Silent).await;
    let api = api_for(&[&ns.addr]);
    let opts = RegisterOptions {
        oneway: true,
        ..RegisterOptions::default()
    };
    let out = api
        .register_broker_all(&identity("b"), &topics(&["A", "B"]), &opts)
        .await;
    assert!(matches!(
        out.per_namesrv[0].result,
        Ok(RegisterStatus::Sent)
    ));
    assert!(ns.next_received().await.is_oneway());
}

#[tokio::test]
async fn an_unanswered_data_version_check_is_not_asked_again_before_a_split() {
    // The check's QUERY_DATA_VERSION gets no answer, so the NameServer's form stays unknown;
    // the table does not fit one frame. One question per exchange: the batches go next.
    let ns = Peer::start(|cmd| match cmd.code {
        request::QUERY_DATA_VERSION => Action::Silent,
        _ => crate::support::scripted_peer::ok_reply(),
    })
    .await;
    let api = api_for(&[&ns.addr]);
    let names: Vec<String> = (0..1_000).map(|i| format!("SplitCheck{i:04}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let opts = RegisterOptions {
        force: false,
        timeout: Duration::from_millis(500),
        max_frame: 64 * 1024,
        ..RegisterOptions::default()
    };
    let out = api
        .register_broker_all(&identity("b"), &topics(&names), &opts)
        .await;
    let registered = match &out.per_namesrv[0].result {
        Ok(RegisterStatus::Registered(r)) => r.sent_as,
        other => panic!("{other:?}"),
    };
    let seen = ns.drain_received();
    let count = |code| seen.iter().filter(|c| c.code == code).count();
    assert_eq!(count(request::QUERY_DATA_VERSION), 1, "{registered:?}");
    let batches = count(request::REGISTER_BROKER);
    assert!(batches >= 3, "{batches} batches");
    assert_eq!(registered, rmq_registrar::broker::SentAs::Batches(batches));
}
