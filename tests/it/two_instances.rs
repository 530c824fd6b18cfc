//! Two brokers on one host, as in RocketMQ's 2m-2s-async layout (broker-a's master beside
//! broker-b's slave): two rmq-registrar instances, each with its own instance file (as
//! rmq-registrar@broker-a and rmq-registrar@broker-b read /etc/rmq-registrar/NAME.toml), its own
//! broker.conf and its own HTTP port, against one real NameServer.

use std::path::Path;
use std::time::Duration;

use crate::support::daemon::Daemon;
use crate::support::namesrv::{cluster_brokers, has_broker, route_brokers, NameServer};
use crate::support::remoting::client;
use crate::support::wait::eventually;

/// One instance as the README lays it out: the identity from that broker's own broker.conf, the
/// HTTP port in the instance file. No broker runs in this test, hence `check = "none"`.
fn instance(dir: &Path, http: &str, broker_conf: &str, topic: &str) -> String {
    let store = dir.join("store");
    std::fs::create_dir_all(store.join("config")).unwrap();
    std::fs::write(
        store.join("config/topics.json"),
        format!(
            r#"{{"dataVersion":{{"counter":1,"timestamp":1700000000000}},"topicConfigTable":{{"{topic}":{{"topicName":"{topic}","readQueueNums":4,"writeQueueNums":4,"perm":6}}}}}}"#
        ),
    )
    .unwrap();
    let conf = dir.join("broker.conf");
    std::fs::write(
        &conf,
        format!("{broker_conf}storePathRootDir={}\n", store.display()),
    )
    .unwrap();
    format!(
        "[broker]\nconf_file = {:?}\n[broker.health]\ncheck = \"none\"\n[http]\nlisten = {http:?}\n",
        conf.display().to_string()
    )
}

#[tokio::test]
async fn two_instances_on_one_host_register_two_brokers_and_stop_independently() {
    let ns = NameServer::start().await;
    // RocketMQ's conf/2m-2s-async, host 1: broker-a's master on 10911, broker-b's slave on 11011.
    let conf_a = format!(
        "brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId=0\nbrokerRole=ASYNC_MASTER\nbrokerIP1=127.0.0.1\nlistenPort=10911\nnamesrvAddr={}\n",
        ns.addr
    );
    let conf_b = format!(
        "brokerClusterName=DefaultCluster\nbrokerName=broker-b\nbrokerId=1\nbrokerRole=SLAVE\nbrokerIP1=127.0.0.1\nlistenPort=11011\nnamesrvAddr={}\n",
        ns.addr
    );
    let mut a = Daemon::start(|dir, http| instance(dir, http, &conf_a, "TopicOfA"));
    let mut b = Daemon::start(|dir, http| instance(dir, http, &conf_b, "TopicOfB"));
    assert_ne!(
        a.http().await,
        b.http().await,
        "each instance has its own port"
    );

    let probe = client();
    eventually("broker-a registered", || {
        has_broker(&probe, &ns.addr, "broker-a")
    })
    .await;
    eventually("broker-b registered", || {
        has_broker(&probe, &ns.addr, "broker-b")
    })
    .await;
    let table = cluster_brokers(&probe, &ns.addr).await;
    assert_eq!(
        table["broker-a"]["brokerAddrs"]["0"], "127.0.0.1:10911",
        "{table}"
    );
    assert_eq!(
        table["broker-b"]["brokerAddrs"]["1"], "127.0.0.1:11011",
        "{table}"
    );
    assert_eq!(
        route_brokers(&probe, &ns.addr, "TopicOfA").await,
        ["broker-a"]
    );
    // Each instance answers on its own port, about its own broker (its gauge is set when the
    // NameServer's reply is read, which may be a moment after the NameServer lists it).
    let registered = format!("registered{{namesrv=\"{}\"}} 1", ns.addr);
    for (d, name) in [(&a, "broker-a"), (&b, "broker-b")] {
        eventually(
            &format!("{name}'s instance reports it registered"),
            || async {
                d.get("/metrics")
                    .await
                    .is_some_and(|(status, text)| status == 200 && text.contains(&registered))
            },
        )
        .await;
        let (status, _) = d.get("/healthz").await.expect("HTTP answers");
        assert_eq!(status, 200, "{name}: {}", d.logs());
    }

    // Stopping broker-a's instance (systemctl stop rmq-registrar@broker-a) unregisters broker-a
    // before it exits, and only broker-a.
    a.signal("TERM");
    let (status, _) = a.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "{}", a.logs());
    assert!(
        !has_broker(&probe, &ns.addr, "broker-a").await,
        "broker-a still listed after its instance stopped"
    );
    assert!(
        has_broker(&probe, &ns.addr, "broker-b").await,
        "{}",
        b.logs()
    );
    let table = cluster_brokers(&probe, &ns.addr).await;
    assert_eq!(
        table["broker-b"]["brokerAddrs"]["1"], "127.0.0.1:11011",
        "{table}"
    );
    assert_eq!(
        route_brokers(&probe, &ns.addr, "TopicOfB").await,
        ["broker-b"]
    );
    let (status, _) = b.get("/readyz").await.expect("broker-b's instance answers");
    assert_eq!(status, 200, "{}", b.logs());
}
