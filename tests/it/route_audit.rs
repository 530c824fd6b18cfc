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
use crate::support::relay::Relay;
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

/// REGISTER_BROKER requests relayed so far.
fn registers(r: &Relay) -> usize {
    r.count(request::REGISTER_BROKER)
}

#[tokio::test]
async fn a_rival_that_keeps_registering_is_reported_not_fought_and_its_exit_gives_the_route_back() {
    let ns = NameServer::start().await;
    // The daemon's traffic through a relay: its REGISTER_BROKERs are counted there.
    let relay = Relay::start(&ns.addr).await;
    let name = "ra-rival";
    let mut d = daemon(name, &relay.addr, "");
    let http = d.http().await;
    let c = client();
    eventually_within("registered", Duration::from_secs(20), || async {
        master_in_route(&c, &ns.addr, name, name).await.as_deref() == Some(OWN)
    })
    .await;
    let before = registers(&relay);
    let rival = Stray::new(name);
    let t0 = tokio::time::Instant::now();
    let mut flagged = None;
    let mut at_10s = None;
    while t0.elapsed() < Duration::from_secs(16) {
        rival.register(&ns.addr).await;
        for _ in 0..30 {
            if at_10s.is_none() && t0.elapsed() >= Duration::from_secs(10) {
                at_10s = Some(registers(&relay) - before);
            }
            let m = scrape(&http).await;
            let seen = metric(
                &m,
                &format!(
                    "rmq_registrar_route_mismatch{{kind=\"address\",namesrv=\"{}\"}}",
                    relay.addr
                ),
            ) == 1.0
                || metric(
                    &m,
                    &format!("rmq_registrar_route_conflict{{namesrv=\"{}\"}}", relay.addr),
                ) == 1.0;
            if seen && flagged.is_none() {
                flagged = Some(t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let flagged = flagged.expect("the rivalry is seen in a metric");
    assert!(flagged <= Duration::from_secs(15), "seen after {flagged:?}");
    let sent = at_10s.expect("10 s passed");
    // One restore (two REGISTERs), perhaps a periodic round: never a fight.
    assert!(
        sent <= 3,
        "{sent} REGISTERs from the daemon in 10 s of rivalry"
    );
    assert!(
        d.logs().contains("not this broker"),
        "the probe found a stray: {}",
        d.logs()
    );
    // `status` names the other address and exits 1.
    let cfg = d.dir.path().join("status.toml");
    std::fs::write(
        &cfg,
        base_config(
            name,
            ANY_PORT,
            &[&ns.addr],
            "[[broker.topics.inline]]\nname = \"AuditTopic\"\n",
        ),
    )
    .unwrap();
    let out = std::process::Command::new(crate::support::daemon::binary())
        .args(["--config", cfg.to_str().unwrap(), "status"])
        .env_remove("NAMESRV_ADDR")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(STRAY), "{text}");
    // The rival's connection closes: the route is the daemon's again, and matches.
    rival.close();
    let back = eventually_within(
        "routed and matching after the rival left",
        Duration::from_secs(10),
        || async {
            let m = scrape(&http).await;
            master_in_route(&c, &ns.addr, name, name).await.as_deref() == Some(OWN)
                && ROUTE_KINDS.iter().all(|k| {
                    metric(
                        &m,
                        &format!(
                            "rmq_registrar_route_mismatch{{kind=\"{k}\",namesrv=\"{}\"}}",
                            relay.addr
                        ),
                    ) == 0.0
                })
        },
    )
    .await;
    eprintln!("rivalry seen after {flagged:?}, {sent} REGISTERs in 10 s, route back {back:?} after the rival left");
}

const ROUTE_KINDS: [&str; 5] = ["missing", "address", "cluster", "permission", "queues"];

/// ADD_WRITE_PERM_OF_BROKER: what `mqadmin addWritePerm` sends, behind the daemon's back.
const ADD_WRITE_PERM: i32 = 327;

#[tokio::test]
async fn a_drained_broker_made_writable_behind_the_daemon_s_back_is_read_only_again_within_one_audit(
) {
    let ns = NameServer::start().await;
    let name = "ra-drain";
    let mut d = daemon(name, &ns.addr, "[drain]\ntoken = \"s3cret\"\n");
    let c = client();
    eventually_within("routed writable", Duration::from_secs(20), || async {
        perm_in_route(&c, &ns.addr, "AuditTopic", name).await == Some(6)
    })
    .await;
    let auth = [
        ("X-Rmq-Registrar", "drain"),
        ("Authorization", "Bearer s3cret"),
    ];
    let (s, body) = d
        .request(reqwest::Method::POST, "/drain?wait=0", &auth)
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        perm_in_route(&c, &ns.addr, "AuditTopic", name).await,
        Some(4)
    );
    let req = RemotingCommand::request(ADD_WRITE_PERM).with_field("brokerName", name);
    let r = c
        .invoke_sync(Some(&ns.addr), req, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    assert_eq!(
        perm_in_route(&c, &ns.addr, "AuditTopic", name).await,
        Some(6),
        "made writable"
    );
    // One audit interval (5 s) and its round trip, with room for a shared machine.
    let took = eventually_within("read-only again", Duration::from_secs(8), || async {
        perm_in_route(&c, &ns.addr, "AuditTopic", name).await == Some(4)
    })
    .await;
    let m = scrape(&d.http().await).await;
    let wipes = metric(
        &m,
        &format!(
            "rmq_registrar_route_restores_total{{kind=\"permission\",namesrv=\"{}\"}}",
            ns.addr
        ),
    );
    assert!(
        wipes >= 1.0,
        "read-only again after {took:?}, counted {wipes}"
    );
}
