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

/// `rmq-registrar status` (with `args`) for broker `name` on NameServer `ns`, the daemon's own
/// config beside it: its exit code and output. Run off the test's thread, where a relay may run.
async fn status(d: &Daemon, name: &str, ns: &str, args: &[&str]) -> (Option<i32>, String) {
    let cfg = d.dir.path().join("status.toml");
    let inline = "[[broker.topics.inline]]\nname = \"AuditTopic\"\n";
    std::fs::write(&cfg, base_config(name, ANY_PORT, &[ns], inline)).unwrap();
    let out = tokio::process::Command::new(crate::support::daemon::binary())
        .args(["--config", cfg.to_str().unwrap(), "status"])
        .args(args)
        .env_remove("NAMESRV_ADDR")
        .output()
        .await
        .unwrap();
    // Standard output alone (what `--json` readers parse); the rest is shown, not parsed.
    eprintln!("status stderr: {}", String::from_utf8_lossy(&out.stderr));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn scrape(http: &str) -> String {
    reqwest::get(format!("http://{http}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Waits until the route of broker `name`'s own topic gives the daemon's address.
async fn routed_to_daemon(c: &RemotingClient, ns: &str, name: &str) {
    eventually_within("registered", Duration::from_secs(20), || async {
        master_in_route(c, ns, name, name).await.as_deref() == Some(OWN)
    })
    .await;
}

/// A stray registration of broker `name` on `ns`, and the fault it makes: the stray's address
/// under the broker's id.
async fn strayed(c: &RemotingClient, ns: &str, name: &str) -> Stray {
    let stray = Stray::new(name);
    stray.register(ns).await;
    assert_eq!(
        master_in_route(c, ns, name, name).await.as_deref(),
        Some(STRAY)
    );
    stray
}

/// The sum of every sample whose line starts with `prefix` (a family's series).
fn sum_of(m: &str, prefix: &str) -> f64 {
    m.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The fault, with the read-back off: one stray registration takes the broker's id, and it
/// stays taken (the daemon's heartbeats answer `ok` all along: nothing notices).
#[tokio::test]
async fn with_the_read_back_off_a_stray_registration_keeps_the_broker_s_id() {
    let ns = NameServer::start().await;
    let name = "ra-off";
    let mut d = daemon(name, &ns.addr, "[route]\naudit_interval = \"off\"\n");
    let c = client();
    routed_to_daemon(&c, &ns.addr, name).await;
    let stray = strayed(&c, &ns.addr, name).await;
    // Two audit intervals' worth of time and more: nobody takes the id back.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        master_in_route(&c, &ns.addr, name, name).await.as_deref(),
        Some(STRAY)
    );
    let m = scrape(&d.http().await).await;
    let audits = sum_of(&m, "rmq_registrar_route_audits_total{");
    assert_eq!(audits, 0.0, "no read-back while off:\n{m}");
    stray.close();
}

#[tokio::test]
async fn a_one_off_stray_registration_is_restored_within_ten_seconds_and_counted() {
    let ns = NameServer::start().await;
    let name = "ra-stray";
    let mut d = daemon(name, &ns.addr, "");
    let c = client();
    routed_to_daemon(&c, &ns.addr, name).await;
    let stray = strayed(&c, &ns.addr, name).await;
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
    routed_to_daemon(&c, &ns.addr, name).await;
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
    // A standing difference is said once, not at every audit: 16 s of rivalry (three audits
    // and more) log at most the first sighting, the restore's return and the standing one.
    let warned = d
        .logs()
        .matches("producers are not routed as advertised")
        .count();
    assert!(
        warned <= 3,
        "{warned} WARNs in 16 s of rivalry: {}",
        d.logs()
    );
    // `status` names the other address and exits 1.
    let (code, text) = status(&d, name, &ns.addr, &[]).await;
    assert_eq!(code, Some(1), "{text}");
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

/// What a scripted NameServer in the Java 5.x form holds of the broker.
#[derive(Default)]
struct Java5 {
    /// The address registered under id 0 and its topics (None: not registered).
    held: Option<(String, Vec<String>)>,
    refused: usize,
    registers: usize,
}

/// A NameServer answering as Java 5.x does (RouteInfoManager): a first registration of exactly
/// one topic is refused ("register broker failed"); with `newer` set, another address holds
/// id 0 with a greater stateVersion and every registration is ignored with SUCCESS and an
/// empty result.
async fn java5_namesrv(
    name: &'static str,
    newer: Option<&'static str>,
) -> (
    crate::support::scripted_peer::Peer,
    std::sync::Arc<std::sync::Mutex<Java5>>,
) {
    use crate::support::scripted_peer::{Action, Peer};
    let state: std::sync::Arc<std::sync::Mutex<Java5>> = Default::default();
    let st = state.clone();
    let peer = Peer::start(move |cmd| {
        let mut s = st.lock().unwrap();
        let reply = |code: i32, remark: &str| {
            let mut r = RemotingCommand::request(code);
            if !remark.is_empty() {
                r.remark = Some(remark.to_string());
            }
            r
        };
        match cmd.code {
            request::REGISTER_BROKER => {
                s.registers += 1;
                let body: serde_json::Value = cmd
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or_default();
                let topics: Vec<String> = body["topicConfigSerializeWrapper"]["topicConfigTable"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                if newer.is_some() {
                    return Action::Reply(reply(0, ""));
                }
                let addr = cmd.ext_fields.get("brokerAddr").unwrap_or_default().to_string();
                if s.held.is_none() && topics.len() == 1 {
                    s.refused += 1;
                    return Action::Reply(reply(1, "register broker failed"));
                }
                s.held = Some((addr, topics));
                Action::Reply(reply(0, ""))
            }
            request::GET_ROUTEINFO_BY_TOPIC => {
                let topic = cmd.ext_fields.get("topic").unwrap_or_default().to_string();
                let holder = match (newer, &s.held) {
                    (Some(other), _) => other.to_string(),
                    (None, Some((a, topics))) if topics.contains(&topic) => a.clone(),
                    _ => return Action::Reply(reply(17, "No topic route info in name server")),
                };
                let route = serde_json::json!({
                    "brokerDatas": [{"cluster": "E2ECluster", "brokerName": name, "brokerAddrs": {"0": holder}}],
                    "queueDatas": [{"brokerName": name, "readQueueNums": 1, "writeQueueNums": 1, "perm": 7, "topicSysFlag": 0}],
                });
                Action::Reply(reply(0, "").with_body(route.to_string()))
            }
            request::GET_BROKER_CLUSTER_INFO => {
                let table = match (newer, &s.held) {
                    (Some(other), _) => serde_json::json!({name: {"cluster": "E2ECluster", "brokerName": name, "brokerAddrs": {"0": other}}}),
                    (None, Some((a, _))) => serde_json::json!({name: {"cluster": "E2ECluster", "brokerName": name, "brokerAddrs": {"0": a}}}),
                    _ => serde_json::json!({}),
                };
                Action::Reply(reply(0, "").with_body(serde_json::json!({"brokerAddrTable": table}).to_string()))
            }
            request::QUERY_DATA_VERSION => {
                let mut r = reply(0, "");
                let held = s.held.is_some() || newer.is_some();
                r.ext_fields.insert("changed", (!held).to_string());
                Action::Reply(r)
            }
            _ => Action::Reply(reply(0, "")),
        }
    })
    .await;
    (peer, state)
}

#[tokio::test]
async fn a_one_topic_config_mode_broker_ends_registered_on_a_java_5_namesrv_and_on_the_rust_one() {
    let name = "ra-one";
    let one = |ns: &str, own: bool| {
        let extra = "[[broker.topics.inline]]\nname = \"OnlyTopic\"\n";
        let off = if own {
            ""
        } else {
            "[broker.topics]\nbroker_topic = false\n"
        };
        let config = base_config(name, ANY_PORT, &[ns], &format!("{off}{extra}"));
        Daemon::start(move |_, _| config)
    };
    // The fault, with the broker's own topic turned off: refused, every time.
    let (ns, state) = java5_namesrv(name, None).await;
    let d = one(&ns.addr, false);
    eventually_within("refused twice", Duration::from_secs(20), || async {
        state.lock().unwrap().refused >= 2
    })
    .await;
    assert!(state.lock().unwrap().held.is_none());
    assert!(d.logs().contains("register broker failed"), "{}", d.logs());
    drop(d);
    // The default: the topic named after the broker makes two, registered at once.
    let (ns, state) = java5_namesrv(name, None).await;
    let _d = one(&ns.addr, true);
    eventually_within("registered", Duration::from_secs(20), || async {
        state.lock().unwrap().held.is_some()
    })
    .await;
    let (held, refused) = {
        let s = state.lock().unwrap();
        (s.held.clone(), s.refused)
    };
    let (addr, topics) = held.unwrap();
    assert_eq!(addr, OWN);
    assert!(
        topics.contains(&name.to_string()) && topics.contains(&"OnlyTopic".to_string()),
        "{topics:?}"
    );
    assert_eq!(refused, 0);
    // Measured: the Rust NameServer 1.0 takes a master's first registration of one topic
    // (its source has a check like Java's, which it applies to an id a listed name lacks).
    let rust = NameServer::start().await;
    let _d = one(&rust.addr, false);
    let c = client();
    eventually_within(
        "the Rust NameServer took one topic",
        Duration::from_secs(20),
        || async {
            master_in_route(&c, &rust.addr, "OnlyTopic", name)
                .await
                .as_deref()
                == Some(OWN)
        },
    )
    .await;
}

#[tokio::test]
async fn a_registration_the_state_version_guard_ignores_is_reported_and_not_fought() {
    let name = "ra-guard";
    let newer = "127.0.0.1:10977";
    let (ns, state) = java5_namesrv(name, Some(newer)).await;
    let mut d = daemon(name, &ns.addr, "");
    let http = d.http().await;
    let conflict = format!("rmq_registrar_route_conflict{{namesrv=\"{}\"}}", ns.addr);
    let took = eventually_within("the conflict reported", Duration::from_secs(15), || async {
        metric(&scrape(&http).await, &conflict) == 1.0
    })
    .await;
    let m = scrape(&http).await;
    assert_eq!(
        metric(
            &m,
            &format!(
                "rmq_registrar_route_mismatch{{kind=\"address\",namesrv=\"{}\"}}",
                ns.addr
            )
        ),
        1.0
    );
    assert!(
        d.logs().contains("ignored our registration"),
        "{}",
        d.logs()
    );
    // Not fought: over the next 12 s (two audits and more) no restore goes out.
    let restores = |m: &str| {
        metric(
            m,
            &format!(
                "rmq_registrar_route_restores_total{{kind=\"address\",namesrv=\"{}\"}}",
                ns.addr
            ),
        )
    };
    let (before, sent) = (restores(&m), state.lock().unwrap().registers);
    tokio::time::sleep(Duration::from_secs(12)).await;
    let m = scrape(&http).await;
    assert_eq!(restores(&m), before, "reported after {took:?}, then fought");
    let more = state.lock().unwrap().registers - sent;
    // A periodic round (every 30 s) may fall in the window; a fight would be 2 per audit.
    assert!(
        more <= 1,
        "{more} REGISTERs in 12 s after the conflict was reported"
    );
    assert_eq!(before, 1.0, "one restore, then the report");
}

/// How a hostile NameServer answers the read-back (it registers the broker normally).
#[derive(Clone, Copy, Debug)]
enum Hostile {
    Garbage,
    Refuses,
    Huge,
    Silent,
}

async fn hostile_case(how: Hostile) {
    use crate::support::scripted_peer::{Action, Peer};
    let registers = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = registers.clone();
    let ns = Peer::start(move |cmd| match cmd.code {
        request::GET_ROUTEINFO_BY_TOPIC | request::GET_BROKER_CLUSTER_INFO => match how {
            Hostile::Garbage => {
                Action::Reply(RemotingCommand::request(0).with_body("{\"brokerDatas\": <html>"))
            }
            Hostile::Refuses => {
                let mut r = RemotingCommand::request(1);
                r.remark = Some("boom".into());
                Action::Reply(r)
            }
            Hostile::Huge => {
                Action::Reply(RemotingCommand::request(0).with_body(vec![b'x'; 8 << 20]))
            }
            Hostile::Silent => Action::Silent,
        },
        request::QUERY_DATA_VERSION => {
            let mut r = RemotingCommand::request(0);
            r.ext_fields.insert("changed", "false".to_string());
            Action::Reply(r)
        }
        code => {
            if code == request::REGISTER_BROKER {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Action::Reply(RemotingCommand::request(0))
        }
    })
    .await;
    let mut d = daemon(&format!("ra-{how:?}").to_lowercase(), &ns.addr, "");
    let http = d.http().await;
    let outcome = match how {
        Hostile::Silent => "timeout",
        _ => "error",
    };
    let audits = format!(
        "rmq_registrar_route_audits_total{{namesrv=\"{}\",outcome=\"{outcome}\"}}",
        ns.addr
    );
    eventually_within(
        &format!("{how:?}: two audits counted {outcome}"),
        Duration::from_secs(20),
        || async { metric(&scrape(&http).await, &audits) >= 2.0 },
    )
    .await;
    let m = scrape(&http).await;
    let restores = sum_of(&m, "rmq_registrar_route_restores_total{");
    assert_eq!(
        restores, 0.0,
        "{how:?}: a restore for an answer that says nothing:\n{m}"
    );
    let sent = registers.load(std::sync::atomic::Ordering::SeqCst);
    // The first registration, and a periodic round perhaps: nothing for the audits.
    assert!(sent <= 2, "{how:?}: {sent} REGISTERs");
    assert!(!d.logs().contains("panicked"), "{}", d.logs());
}

#[tokio::test]
async fn garbage_a_refusal_a_huge_body_or_silence_cost_a_counted_outcome_never_a_restore() {
    futures_util::future::join_all(
        [
            Hostile::Garbage,
            Hostile::Refuses,
            Hostile::Huge,
            Hostile::Silent,
        ]
        .map(hostile_case),
    )
    .await;
}

/// A broker at another address that says it is broker `name`, id 0, of the same cluster.
async fn twin(name: &'static str) -> crate::support::scripted_peer::Peer {
    use crate::support::scripted_peer::{Action, Peer};
    Peer::start(move |cmd| {
        if cmd.code == request::GET_BROKER_CONFIG {
            let props = format!(
                "brokerClusterName=E2ECluster\nbrokerName={name}\nbrokerId=0\nbrokerRole=ASYNC_MASTER\nbrokerIP1=127.0.0.1\nlistenPort=10911\n"
            );
            return Action::Reply(RemotingCommand::request(0).with_body(props.into_bytes()));
        }
        Action::Reply(RemotingCommand::request(0))
    })
    .await
}

#[tokio::test]
async fn the_same_broker_at_another_address_is_split_brain_paged_and_not_contended() {
    let ns = NameServer::start().await;
    let name = "ra-twin";
    let mut d = daemon(name, &ns.addr, "");
    let http = d.http().await;
    let c = client();
    routed_to_daemon(&c, &ns.addr, name).await;
    let other = twin(name).await;
    let rival = Stray {
        api: BrokerApi::new(client()),
        id: identity(name, &other.addr),
        table: table(&[name, "TwinTopic"]),
    };
    let conflict = format!("rmq_registrar_route_conflict{{namesrv=\"{}\"}}", ns.addr);
    let t0 = tokio::time::Instant::now();
    while metric(&scrape(&http).await, &conflict) != 1.0 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no conflict: {}",
            d.logs()
        );
        rival.register(&ns.addr).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(d.logs().contains("split-brain"), "{}", d.logs());
    let restores = |m: &str| {
        metric(
            m,
            &format!(
                "rmq_registrar_route_restores_total{{kind=\"address\",namesrv=\"{}\"}}",
                ns.addr
            ),
        )
    };
    let before = restores(&scrape(&http).await);
    // Not contended: the rival keeps the id through two more audits.
    for _ in 0..12 {
        rival.register(&ns.addr).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        restores(&scrape(&http).await),
        before,
        "contended a split-brain"
    );
    assert_eq!(
        master_in_route(&c, &ns.addr, name, name).await.as_deref(),
        Some(other.addr.as_str())
    );
    // `status`, through a relay that counts what it sends: reads only, exit 1 naming the twin.
    let relay = Relay::start(&ns.addr).await;
    let (code, text) = status(&d, name, &relay.addr, &["--json"]).await;
    assert_eq!(code, Some(1), "{text}");
    let row: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(row["other"], other.addr.as_str(), "{row}");
    assert_eq!(row["mismatch"], serde_json::json!(["address"]), "{row}");
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["exit"], 1, "{summary}");
    for code in [request::QUERY_DATA_VERSION, 904] {
        assert_eq!(
            relay.count(code),
            0,
            "status sent code {code}: it refreshes the broker's liveness"
        );
    }
    assert!(relay.count(request::GET_ROUTEINFO_BY_TOPIC) >= 1);
    rival.close();
}
