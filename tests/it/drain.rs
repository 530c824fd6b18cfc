//! The drain (`/drain`, `rmq-registrar drain`): the broker routed read-only on every NameServer
//! before it stops, against the real NameServer; what a bad request gets.

use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use rmq_registrar::client::RemotingClient;
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;

use crate::support::daemon::{base_config, checked_config, metric, Daemon};
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::remoting::client;
use crate::support::scripted_peer::{ok_reply, Action, Peer};
use crate::support::wait::eventually;

/// The header every drain request carries.
pub const MARK: (&str, &str) = ("X-Rmq-Registrar", "drain");

/// `perm` of `broker`'s queue data in `topic`'s route on `ns` (None: not routed there).
pub async fn route_perm(c: &RemotingClient, ns: &str, topic: &str, broker: &str) -> Option<u64> {
    let req = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_field("topic", topic);
    let r = c
        .invoke_sync(Some(ns), req, Duration::from_secs(2))
        .await
        .ok()?;
    if r.code != 0 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(r.body.as_deref()?).ok()?;
    v["queueDatas"]
        .as_array()?
        .iter()
        .find(|q| q["brokerName"] == broker)
        .and_then(|q| q["perm"].as_u64())
}

fn topics(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("[[broker.topics.inline]]\nname = \"{n}\"\n"))
        .collect()
}

#[tokio::test]
async fn a_drain_routes_the_broker_read_only_until_cancelled_and_bad_requests_change_nothing() {
    let ns = NameServer::start().await;
    let d = Daemon::start(|_, http| {
        base_config("drain-a", http, &[&ns.addr], &topics(&["DrainT"]))
            + "[drain]\ntoken = \"s3cret\"\n"
    });
    let probe = client();
    eventually("routed writable", || async {
        route_perm(&probe, &ns.addr, "DrainT", "drain-a").await == Some(6)
    })
    .await;
    let auth = ("Authorization", "Bearer s3cret");
    // Bad requests: each answered clearly, the route untouched.
    for (headers, path, status, says) in [
        (vec![auth], "/drain", 400, "X-Rmq-Registrar: drain"),
        (vec![MARK], "/drain", 401, "Authorization: Bearer"),
        (
            vec![MARK, ("Authorization", "Bearer nope")],
            "/drain",
            401,
            "Bearer",
        ),
        (vec![MARK, auth], "/drain?wait=soon", 400, "not a duration"),
        (vec![MARK, auth], "/drain?wait=11m", 400, "longer than"),
    ] {
        let (s, body) = d.request(Method::POST, path, &headers).await;
        assert_eq!(s, status, "{path} {headers:?}: {body}");
        assert!(body.contains(says), "{body}");
    }
    let (s, body) = d.request(Method::DELETE, "/drain", &[MARK, auth]).await;
    assert_eq!((s, body.as_str()), (409, "no drain in force\n"));
    assert_eq!(
        route_perm(&probe, &ns.addr, "DrainT", "drain-a").await,
        Some(6)
    );
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_draining"), 0.0);
    // The drain: read-only on the NameServer once answered (wait=0: right after it).
    let (s, body) = d
        .request(Method::POST, "/drain?wait=0", &[MARK, auth])
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.starts_with("drained:"), "{body}");
    assert_eq!(
        route_perm(&probe, &ns.addr, "DrainT", "drain-a").await,
        Some(4)
    );
    let (s, ready) = d.get("/readyz").await.unwrap();
    assert_eq!(s, 200);
    assert!(
        ready.contains("draining since") && ready.contains("127.0.0.1"),
        "{ready}"
    );
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_draining"), 1.0);
    assert!(metric(&text, "rmq_registrar_drain_started_timestamp_seconds") > 1.7e9);
    assert!(d.logs().contains("draining: routing the broker read-only"));
    // Asked again (systemd and a preStop hook both): it joins the drain in force; GET works
    // as POST does (a Kubernetes httpGet hook).
    let (s, body) = d.request(Method::GET, "/drain?wait=0", &[MARK, auth]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.starts_with("joined the drain"), "{body}");
    // Held across rounds: the next forced round registers read-only again.
    // Cancel: the true permissions, registered under a new version.
    let (s, body) = d.request(Method::DELETE, "/drain", &[MARK, auth]).await;
    assert_eq!(s, 200, "{body}");
    eventually("writable again", || async {
        route_perm(&probe, &ns.addr, "DrainT", "drain-a").await == Some(6)
    })
    .await;
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_draining"), 0.0);
    assert!(d.logs().contains("drain ended"), "{}", d.logs());
    assert_eq!(d.get("/readyz").await.unwrap().1, "ready\n");
}

#[tokio::test]
async fn a_drain_is_refused_on_a_slave_and_while_the_broker_is_down() {
    let ns = NameServer::start().await;
    let slave = Daemon::start(|_, http| {
        base_config(
            "drain-s",
            http,
            &[&ns.addr],
            &("id = 1\n".to_string() + &topics(&["DrainS"])),
        )
    });
    let probe = client();
    // A NameServer takes topic routes from masters only: the slave is listed, not routed.
    eventually("slave listed", || has_broker(&probe, &ns.addr, "drain-s")).await;
    let (s, body) = slave.request(Method::POST, "/drain?wait=0", &[MARK]).await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("not a master"), "{body}");
    assert!(
        slave.logs().contains("registration round ok=1"),
        "{}",
        slave.logs()
    );
    assert!(!slave.logs().contains("draining:"), "{}", slave.logs());
    // A broker that does not serve (nothing listens where it is checked).
    let down = Daemon::start(|_, http| checked_config("drain-d", http, &[&ns.addr], ""));
    eventually("/readyz answers", || async {
        down.get("/readyz").await.is_some()
    })
    .await;
    let (s, body) = down.request(Method::POST, "/drain?wait=0", &[MARK]).await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("not serving"), "{body}");
}

#[tokio::test]
async fn a_namesrv_that_refuses_the_wipe_makes_the_answer_say_so() {
    let ns = NameServer::start().await;
    // A NameServer that takes registrations but refuses WIPE_WRITE_PERM_OF_BROKER (as one
    // whose ACL denies it would).
    let refusing = Peer::start(|cmd| {
        if cmd.code == request::WIPE_WRITE_PERM_OF_BROKER {
            let mut r = RemotingCommand::request(16);
            r.remark = Some("no permission".into());
            Action::Reply(r)
        } else {
            ok_reply()
        }
    })
    .await;
    let d = Daemon::start(|_, http| {
        base_config(
            "drain-r",
            http,
            &[&ns.addr, &refusing.addr],
            &topics(&["DrainR"]),
        )
    });
    let probe = client();
    eventually("routed", || async {
        route_perm(&probe, &ns.addr, "DrainR", "drain-r").await == Some(6)
    })
    .await;
    let (s, body) = d.request(Method::POST, "/drain?wait=0", &[MARK]).await;
    assert_eq!(s, 502, "{body}");
    assert!(
        body.contains(&refusing.addr) && body.contains("no permission"),
        "{body}"
    );
    // The NameServer that took it routes the broker read-only all the same.
    assert_eq!(
        route_perm(&probe, &ns.addr, "DrainR", "drain-r").await,
        Some(4)
    );
}

#[tokio::test]
async fn the_command_drains_through_the_daemons_listener_and_sigterm_ends_a_pending_drain() {
    let ns = NameServer::start().await;
    let mut d =
        Daemon::start(|_, http| base_config("drain-c", http, &[&ns.addr], &topics(&["DrainC"])));
    let probe = client();
    eventually("routed", || async {
        route_perm(&probe, &ns.addr, "DrainC", "drain-c").await == Some(6)
    })
    .await;
    let http = d.http().await;
    // The command reads the same configuration (here with the port the daemon bound).
    let cfg = base_config("drain-c", &http, &[&ns.addr], &topics(&["DrainC"]));
    let path = d.dir.path().join("cli.toml");
    std::fs::write(&path, &cfg).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rmq-registrar"))
            .arg("--config")
            .arg(&path)
            .arg("drain")
            .args(args)
            .env_remove("NAMESRV_ADDR")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = run(&["--wait", "0"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("200 drained:"), "{out}");
    assert_eq!(
        route_perm(&probe, &ns.addr, "DrainC", "drain-c").await,
        Some(4)
    );
    assert!(
        d.logs().contains("rmq-registrar-drain/"),
        "who asked is logged"
    );
    let (code, out) = run(&["--cancel"]);
    assert_eq!(code, 0, "{out}");
    // A configuration that names no fixed listener: a clear answer, exit 2.
    let nowhere = base_config("drain-c", "127.0.0.1:0", &[&ns.addr], "");
    std::fs::write(&path, nowhere).unwrap();
    let (code, out) = run(&[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("http.listen") && out.contains("no fixed port"),
        "{out}"
    );
    // SIGTERM while a drain request waits: the usual goodbye, within the usual bound.
    let addr = http.clone();
    let pending = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("http://{addr}/drain?wait=5m"))
            .header(MARK.0, MARK.1)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    eventually("draining", || async {
        d.get("/readyz")
            .await
            .is_some_and(|(_, b)| b.contains("draining since"))
    })
    .await;
    d.signal("TERM");
    let (status, took) = d.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{}", d.logs());
    // register.timeout (2 s) + 0.5 s, with room for a shared machine.
    assert!(took < Duration::from_secs(4), "exit took {took:?}");
    assert!(d.logs().contains("unregistered; bye"), "{}", d.logs());
    let answered = pending.await.unwrap();
    assert!(!matches!(answered, Ok(200)), "{answered:?}");
}
