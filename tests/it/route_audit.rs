//! The route read-back against the real NameServer: a stray registration of the broker's own
//! (cluster, name, id) from another address, a rival that keeps registering, a drained broker
//! made writable behind the daemon's back.

use std::time::Duration;

use rmq_registrar::broker::body::{DataVersion, TopicConfig, TopicConfigWrapper};
use rmq_registrar::broker::{BrokerApi, BrokerIdentity, RegisterOptions};
use rmq_registrar::client::RemotingClient;
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;

use crate::support::daemon::{base_config, metric, Daemon, ANY_PORT};
use crate::support::namesrv::NameServer;
use crate::support::remoting::client;
use crate::support::wait::eventually_within;

const OWN: &str = "127.0.0.1:10911";
const STRAY: &str = "127.0.0.1:10999";

/// The broker's own (cluster, name, id), registered from `addr`.
fn identity(name: &str, addr: &str) -> BrokerIdentity {
    BrokerIdentity {
        cluster: "E2ECluster".into(),
        name: name.into(),
        id: 0,
        addr: addr.into(),
        ha_addr: "127.0.0.1:10912".into(),
        zone: None,
    }
}

fn table(names: &[&str]) -> TopicConfigWrapper {
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

/// A registrar from another address, on its own connection.
struct Stray {
    api: BrokerApi,
    id: BrokerIdentity,
    table: TopicConfigWrapper,
}

impl Stray {
    fn new(name: &str) -> Stray {
        Stray {
            api: BrokerApi::new(client()),
            id: identity(name, STRAY),
            table: table(&[name, "StrayTopic"]),
        }
    }

    async fn register(&self, ns: &str) {
        let out = self
            .api
            .register_to(
                &[ns.to_string()],
                &self.id,
                &std::sync::Arc::new(self.table.clone()),
                &RegisterOptions::default(),
            )
            .await;
        assert!(out.per_namesrv[0].result.is_ok(), "{:?}", out.per_namesrv);
    }

    /// Closes its connection: the NameServer cleans up after that address.
    fn close(self) {
        self.api.client().shutdown();
    }
}

/// The address the route of `topic` gives id 0 of broker `name` (None: not routed).
async fn master_in_route(c: &RemotingClient, ns: &str, topic: &str, name: &str) -> Option<String> {
    let req = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_field("topic", topic);
    let r = c
        .invoke_sync(Some(ns), req, Duration::from_secs(5))
        .await
        .ok()?;
    if r.code != 0 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body?).ok()?;
    v["brokerDatas"]
        .as_array()?
        .iter()
        .find(|b| b["brokerName"] == name)?["brokerAddrs"]["0"]
        .as_str()
        .map(str::to_string)
}

/// The route's permission for broker `name` on `topic`.
async fn perm_in_route(c: &RemotingClient, ns: &str, topic: &str, name: &str) -> Option<i64> {
    let req = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_field("topic", topic);
    let r = c
        .invoke_sync(Some(ns), req, Duration::from_secs(5))
        .await
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body?).ok()?;
    v["queueDatas"]
        .as_array()?
        .iter()
        .find(|q| q["brokerName"] == name)?["perm"]
        .as_i64()
}

fn daemon(name: &str, ns: &str, route: &str) -> Daemon {
    let extra = "[[broker.topics.inline]]\nname = \"AuditTopic\"\n";
    let config = format!("{}{route}", base_config(name, ANY_PORT, &[ns], extra));
    Daemon::start(move |_, _| config)
}

async fn scrape(http: &str) -> String {
    reqwest::get(format!("http://{http}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The fault, with the read-back off: one stray registration takes the broker's id, and it
/// stays taken (the daemon's heartbeats answer `ok` all along: nothing notices).
#[tokio::test]
async fn with_the_read_back_off_a_stray_registration_keeps_the_broker_s_id() {
    let ns = NameServer::start().await;
    let name = "ra-off";
    let mut d = daemon(name, &ns.addr, "[route]\naudit_interval = \"off\"\n");
    let c = client();
    eventually_within("registered", Duration::from_secs(20), || async {
        master_in_route(&c, &ns.addr, name, name).await.as_deref() == Some(OWN)
    })
    .await;
    let stray = Stray::new(name);
    stray.register(&ns.addr).await;
    assert_eq!(
        master_in_route(&c, &ns.addr, name, name).await.as_deref(),
        Some(STRAY)
    );
    // Two audit intervals' worth of time and more: nobody takes the id back.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        master_in_route(&c, &ns.addr, name, name).await.as_deref(),
        Some(STRAY)
    );
    let m = scrape(&d.http().await).await;
    let audits: f64 = m
        .lines()
        .filter(|l| l.starts_with("rmq_registrar_route_audits_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(audits, 0.0, "no read-back while off:\n{m}");
    stray.close();
}

#[tokio::test]
async fn a_one_off_stray_registration_is_restored_within_ten_seconds_and_counted() {
    let ns = NameServer::start().await;
    let name = "ra-stray";
    let mut d = daemon(name, &ns.addr, "");
    let c = client();
    eventually_within("registered", Duration::from_secs(20), || async {
        master_in_route(&c, &ns.addr, name, name).await.as_deref() == Some(OWN)
    })
    .await;
    let stray = Stray::new(name);
    stray.register(&ns.addr).await;
    assert_eq!(
        master_in_route(&c, &ns.addr, name, name).await.as_deref(),
        Some(STRAY)
    );
    let took = eventually_within(
        "the route is the daemon's again",
        Duration::from_secs(10),
        || async { master_in_route(&c, &ns.addr, name, name).await.as_deref() == Some(OWN) },
    )
    .await;
    let http = d.http().await;
    let m = scrape(&http).await;
    let restores = metric(
        &m,
        &format!(
            "rmq_registrar_route_restores_total{{kind=\"address\",namesrv=\"{}\"}}",
            ns.addr
        ),
    );
    assert!(
        restores >= 1.0,
        "restored in {took:?}, counted {restores}:\n{m}"
    );
    // The stray leaves: its clean-up on the NameServer must not take the broker with it.
    stray.close();
    eventually_within(
        "routed and matching after the stray left",
        Duration::from_secs(10),
        || async {
            let m = scrape(&http).await;
            master_in_route(&c, &ns.addr, name, name).await.as_deref() == Some(OWN)
                && metric(
                    &m,
                    &format!(
                        "rmq_registrar_route_mismatch{{kind=\"address\",namesrv=\"{}\"}}",
                        ns.addr
                    ),
                ) == 0.0
                && metric(
                    &m,
                    &format!(
                        "rmq_registrar_route_mismatch{{kind=\"missing\",namesrv=\"{}\"}}",
                        ns.addr
                    ),
                ) == 0.0
        },
    )
    .await;
}
