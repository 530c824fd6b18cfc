//! A broker with authentication on (RocketMQ 5.3's ACL 2.0): the daemon signs every request to
//! it, a refusal of its credentials is named (and changes nothing about liveness). The scripted
//! broker checks signatures as Java 5.3's DefaultAuthenticationHandler does, with a checker of
//! its own proven against signatures made outside this code (tests/data, openssl).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;
use sha1::Sha1;

use crate::support::daemon::{base_config, metric, Daemon};
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};
use crate::support::wait::{eventually, eventually_within};

/// The signature Java 5.3 expects: the ext fields' values sorted by key (Signature left out)
/// concatenated, then the body; HmacSHA1 keyed by the password; Base64.
fn java_signature(fields: &[(&str, &str)], body: &[u8], password: &str) -> String {
    let mut sorted: Vec<&(&str, &str)> = fields.iter().filter(|(k, _)| *k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut content: Vec<u8> = sorted.iter().flat_map(|(_, v)| v.bytes()).collect();
    content.extend_from_slice(body);
    let mut mac = Hmac::<Sha1>::new_from_slice(password.as_bytes()).unwrap();
    mac.update(&content);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn the_checker_agrees_with_signatures_made_by_openssl() {
    let text = include_str!("../data/acl2-signatures.txt");
    let mut n = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let [password, fields, body, signature] = cols[..] else {
            panic!("bad vector line: {line:?}");
        };
        let fields: Vec<(&str, &str)> = fields
            .split(';')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        assert_eq!(
            java_signature(&fields, body.as_bytes(), password),
            signature,
            "{line}"
        );
        n += 1;
    }
    assert_eq!(n, 4);
}

/// Health checks the broker answered refusing the credentials, from `/metrics` text (NaN
/// before the first).
fn refused_checks(text: &str) -> f64 {
    metric(
        text,
        "rmq_registrar_broker_health_checks_total{outcome=\"auth_failed\"}",
    )
}

/// Users of the scripted broker: name → password.
const USERS: &[(&str, &str)] = &[("rocketmq", "12345678")];

/// A broker (config mode's health check, GET_BROKER_RUNTIME_INFO; GET_BROKER_CONFIG) that
/// authenticates every request as Java 5.3 does, answering NO_PERMISSION (16) with Java's
/// remarks; what it refused is kept.
async fn authenticating_broker() -> (Peer, Arc<Mutex<Vec<String>>>) {
    let refusals: Arc<Mutex<Vec<String>>> = Arc::default();
    let said = refusals.clone();
    let peer = Peer::start(move |cmd| {
        let refuse = |remark: String| {
            said.lock().unwrap().push(remark.clone());
            let mut r = RemotingCommand::request(16);
            r.remark = Some(remark);
            Action::Reply(r)
        };
        let fields: Vec<(&str, &str)> = cmd.ext_fields.iter().collect();
        let Some(user) = cmd.field("AccessKey") else {
            return refuse("username cannot be null.".into());
        };
        let Some((_, password)) = USERS.iter().find(|(u, _)| *u == user) else {
            return refuse(format!("User:{user} is not found."));
        };
        let body = cmd.body.as_deref().unwrap_or_default();
        if cmd.field("Signature") != Some(java_signature(&fields, body, password).as_str()) {
            return refuse("check signature failed.".into());
        }
        match cmd.code {
            request::GET_BROKER_RUNTIME_INFO => Action::Reply(
                RemotingCommand::request(0)
                    .with_body(br#"{"table":{"brokerActive":"true"}}"#.to_vec()),
            ),
            _ => Action::Reply(RemotingCommand::request(0)),
        }
    })
    .await;
    (peer, refusals)
}

/// True once `f` holds, false when `limit` passed first.
async fn eventually_or<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = tokio::time::Instant::now();
    while t0.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A daemon in config mode whose health check asks `broker`, with `acl` keys under `[acl]`.
fn daemon_for(broker: &str, ns: &str, name: &str, acl: &str) -> Daemon {
    let (broker, ns, name, acl) = (
        broker.to_string(),
        ns.to_string(),
        name.to_string(),
        acl.to_string(),
    );
    Daemon::start(move |_, http| {
        base_config(&name, http, &[&ns], &format!("[broker.health]\ncheck = \"remoting\"\naddr = {broker:?}\ninterval = \"500ms\"\ntimeout = \"400ms\"\n"))
            .replace("[broker.health]\ncheck = \"none\"\n", "")
            + &format!("[acl]\n{acl}")
    })
}

#[tokio::test]
async fn signed_health_checks_are_accepted_and_a_refused_credential_is_named_not_taken_as_down() {
    let ns = NameServer::start().await;
    let (broker, refusals) = authenticating_broker().await;
    let probe = client();
    // The right user: accepted, nothing refused.
    let right = daemon_for(
        &broker.addr,
        &ns.addr,
        "auth-ok",
        "access_key = \"rocketmq\"\nsecret_key = \"12345678\"\n",
    );
    let ok = eventually_or(Duration::from_secs(20), || {
        has_broker(&probe, &ns.addr, "auth-ok")
    })
    .await;
    assert!(ok, "not registered: {}", right.logs());
    let checks = "rmq_registrar_broker_health_checks_total{outcome=\"ok\"}";
    eventually("checks pass", || async {
        right
            .get("/metrics")
            .await
            .is_some_and(|(_, t)| metric(&t, checks) >= 2.0)
    })
    .await;
    assert!(
        refusals.lock().unwrap().is_empty(),
        "{:?}",
        refusals.lock().unwrap()
    );
    let signed: Vec<RemotingCommand> = broker.drain_received();
    assert!(!signed.is_empty());
    assert!(signed
        .iter()
        .all(|c| c.field("AccessKey") == Some("rocketmq") && c.field("Signature").is_some()));
    drop(right);
    // No credentials, then a wrong password: the broker still serves (registered, ready), the
    // refusal is named once in the log, in /readyz and in the checks' outcome.
    for (name, acl, remark) in [
        ("auth-none", "", "username cannot be null."),
        (
            "auth-bad",
            "access_key = \"rocketmq\"\nsecret_key = \"wrong\"\n",
            "check signature failed.",
        ),
    ] {
        let d = daemon_for(&broker.addr, &ns.addr, name, acl);
        eventually_within("registered all the same", Duration::from_secs(20), || {
            has_broker(&probe, &ns.addr, name)
        })
        .await;
        eventually("named in /readyz", || async {
            d.get("/readyz").await.is_some_and(|(s, b)| {
                s == 200 && b.contains("authentication failed") && b.contains(remark)
            })
        })
        .await;
        let (_, text) = d.get("/metrics").await.unwrap();
        assert!(refused_checks(&text) >= 1.0, "{text}");
        eventually("several checks", || async {
            d.get("/metrics")
                .await
                .is_some_and(|(_, t)| refused_checks(&t) >= 3.0)
        })
        .await;
        let warned = d.logs().matches("authentication failed (its reads").count();
        assert_eq!(warned, 1, "one WARN, not one per check: {}", d.logs());
        assert!(refusals.lock().unwrap().iter().any(|r| r == remark));
    }
}

/// A daemon following `broker` (`--broker`: identity, topics and health from it), registering
/// with `ns`, `acl` keys under `[acl]`.
fn follower_with(broker: &str, ns: &str, acl: &str) -> Daemon {
    let (ns, acl) = (ns.to_string(), acl.to_string());
    Daemon::start_with(&["--broker", broker], move |_, http| {
        format!(
            "[broker.health]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\
             [namesrv]\naddrs = [{ns:?}]\n[http]\nlisten = \"{http}\"\n[acl]\n{acl}"
        )
    })
}

#[tokio::test]
async fn the_real_rust_broker_with_authentication_on_takes_the_daemon_s_signed_requests() {
    let sink = NameServer::start().await;
    let ns = NameServer::start().await;
    // A fresh user store: the broker creates the user only where none is kept yet.
    let auth = tempfile::tempdir().unwrap();
    let extra = format!(
        "authenticationEnabled=true\ninitAuthenticationUser={{\"username\":\"rocketmq\",\"password\":\"12345678\"}}\nauthConfigPath={}\n",
        auth.path().display()
    );
    let b =
        crate::support::broker::Broker::start("AuthCluster", "auth-real", &sink.addr, &extra).await;
    // Unsigned, the broker refuses (measured: one remark for every case on the Rust broker).
    let c = client();
    let r = c
        .invoke_sync(
            Some(&b.addr),
            RemotingCommand::request(request::GET_BROKER_CONFIG),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 16, "{:?}", r.remark);
    assert_eq!(
        r.remark.as_deref(),
        Some("Authentication credentials are invalid")
    );
    // Signed: identity (GET_BROKER_CONFIG), topics (GET_ALL_TOPIC_CONFIG) and the checks pass.
    let d = follower_with(
        &b.addr,
        &ns.addr,
        "access_key = \"rocketmq\"\nsecret_key = \"12345678\"\n",
    );
    let probe = client();
    let ok = eventually_or(Duration::from_secs(30), || {
        has_broker(&probe, &ns.addr, "auth-real")
    })
    .await;
    assert!(ok, "not registered: {}", d.logs());
    let (_, text) = d.get("/metrics").await.unwrap();
    // Not one refused (the series appears with the first refusal).
    let refused = refused_checks(&text);
    assert!(refused.is_nan() || refused == 0.0, "{text}");
    assert!(
        metric(&text, "rmq_registrar_topics") > 1.0,
        "the broker's own topics: {text}"
    );
    // Its disk, as it reports it (an extra signed GET_BROKER_RUNTIME_INFO in this mode), and its
    // refusal level from its own configuration (the Rust broker writes `key:value` lines).
    let ratio = metric(
        &text,
        "rmq_registrar_broker_disk_ratio{store=\"commitlog\"}",
    );
    assert!(ratio > 0.0 && ratio < 1.0, "{text}");
    assert_eq!(
        metric(&text, "rmq_registrar_broker_disk_threshold_ratio"),
        0.9,
        "{text}"
    );
    assert_eq!(
        metric(&text, "rmq_registrar_broker_store_writable"),
        1.0,
        "{text}"
    );
    drop(d);
    // A wrong password: nothing registered (the identity is the broker's to say), and why.
    let ns2 = NameServer::start().await;
    let d = follower_with(
        &b.addr,
        &ns2.addr,
        "access_key = \"rocketmq\"\nsecret_key = \"wrong\"\n",
    );
    eventually("not ready, naming the refusal", || async {
        d.get("/readyz")
            .await
            .is_some_and(|(s, body)| s == 503 && body.contains("authentication failed"))
    })
    .await;
    assert!(!has_broker(&probe, &ns2.addr, "auth-real").await);
    let (_, text) = d.get("/metrics").await.unwrap();
    assert!(refused_checks(&text) >= 1.0, "{text}");
}
