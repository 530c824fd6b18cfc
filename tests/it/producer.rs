//! The real load producer (rmq-load-producer, on rocketmq-client-rust) against the real
//! NameServer and broker: the harness the drain tests count failed sends with.

use std::time::Duration;

use crate::support::broker::{create_topic, Broker};
use crate::support::namesrv::{route_brokers, NameServer};
use crate::support::producer::Producer;
use crate::support::remoting::client;
use crate::support::wait::eventually_within;

#[tokio::test]
async fn the_load_producer_sends_through_a_real_broker_without_failures() {
    let ns = NameServer::start().await;
    // The broker registers itself with the NameServer the producer asks; no auto-created
    // topics, as in the drain tests: the topic exists before the first send.
    let broker = Broker::start(
        "ProducerCluster",
        "producer-a",
        &ns.addr,
        "autoCreateTopicEnable=false",
    )
    .await;
    let probe = client();
    let topic = "LoadProducerSmoke";
    create_topic(&probe, &broker.addr, topic, 4).await;
    eventually_within(
        "the topic routed to the broker",
        Duration::from_secs(30),
        || async { route_brokers(&probe, &ns.addr, topic).await == ["producer-a"] },
    )
    .await;

    // Stopped by SIGTERM below; --duration bounds it should this process die without dropping
    // (and killing) it.
    let producer = Producer::start(&[&ns.addr], topic, 50, &["--duration", "30"]);
    producer
        .wait_for("sends going through", Duration::from_secs(20), |c| c.ok > 0)
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let log = producer.logs();
    let counts = producer.stop(Duration::from_secs(10)).await;
    eprintln!("producer counts: {counts:?}");
    assert!(counts.ok > 0, "no send went through: {counts:?}\n{log}");
    assert_eq!(counts.failed, 0, "failed sends: {counts:?}\n{log}");
    assert_eq!(
        counts.by_broker.keys().collect::<Vec<_>>(),
        ["producer-a"],
        "{counts:?}"
    );
    assert_eq!(counts.by_broker.values().sum::<u64>(), counts.ok);
}
