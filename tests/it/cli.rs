//! The one-shot commands of the binary: resolve, status, unregister, pull, check-config.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_registrar::broker::body::{DataVersion, TopicConfig, TopicConfigWrapper};
use rmq_registrar::broker::{BrokerApi, BrokerIdentity, RegisterOptions};
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;

use crate::support::http::http_server;
use crate::support::namesrv::NameServer;
use crate::support::ports::ClosedPort;
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};

fn config(namesrv: &str) -> String {
    format!("[broker]\nname = \"cli-broker\"\ncluster = \"CliCluster\"\naddr = \"127.0.0.1:10911\"\n[namesrv]\n{namesrv}\n")
}

fn run(cfg: Option<&str>, args: &[&str]) -> (Output, String) {
    run_env(cfg, args, &[])
}

/// As [`run`], with these environment variables set.
fn run_env(cfg: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(crate::support::daemon::binary());
    cmd.env_remove("NAMESRV_ADDR")
        .env_remove("RMQ_REGISTRAR_CONFIG")
        .envs(env.iter().copied());
    if let Some(cfg) = cfg {
        let path = dir.path().join("rmq.toml");
        std::fs::write(&path, cfg).unwrap();
        cmd.arg("--config").arg(path);
    }
    let out = cmd.args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

#[tokio::test]
async fn resolve_prints_the_static_or_looked_up_list() {
    let (out, text) = run(
        Some(&config("addrs = [\"10.1.1.1:9876\", \"10.1.1.2:9876\"]")),
        &["resolve"],
    );
    assert!(out.status.success());
    assert_eq!(text, "10.1.1.1:9876\n10.1.1.2:9876\n");
    let script = Arc::new(Mutex::new((
        200,
        "10.2.2.2:9876;10.2.2.3:9876".to_string(),
        Duration::ZERO,
    )));
    let (addr, _server) = http_server(script).await;
    let cfg = config(&format!(
        "address_server = \"http://{addr}/rocketmq/nsaddr\""
    ));
    let (out, text) = tokio::task::spawn_blocking(move || run(Some(&cfg), &["resolve"]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text, "10.2.2.2:9876\n10.2.2.3:9876\n");
}

#[tokio::test]
async fn status_and_unregister_report_per_namesrv() {
    let ns = NameServer::start().await;
    let refusing = ClosedPort::new();
    let dead = refusing.addr().to_string();
    // Register over a held connection, as the daemon would.
    let c = client();
    c.update_name_server_list(vec![ns.addr.clone()]);
    let api = BrokerApi::new(c);
    let id = BrokerIdentity {
        cluster: "CliCluster".into(),
        name: "cli-broker".into(),
        id: 0,
        addr: "127.0.0.1:10911".into(),
        ha_addr: "127.0.0.1:10912".into(),
        zone: None,
    };
    let mut w = TopicConfigWrapper {
        data_version: DataVersion::now(),
        ..Default::default()
    };
    for t in ["CliA", "CliB"] {
        w.topic_config_table
            .insert(t.into(), TopicConfig::new(t, 4));
    }
    let out = api
        .register_broker_all(&id, &w, &RegisterOptions::default())
        .await;
    assert!(out.per_namesrv[0].result.is_ok());

    let cfg = config(&format!("addrs = [\"{}\", \"{dead}\"]", ns.addr));
    let cfg2 = cfg.clone();
    let (out, text) = tokio::task::spawn_blocking(move || run(Some(&cfg2), &["status"]))
        .await
        .unwrap();
    assert!(!out.status.success(), "one NameServer is down");
    assert!(
        text.contains(&format!("{}\tcli-broker\tregistered", ns.addr)),
        "{text}"
    );
    let cfg3 = cfg.clone();
    let (_, json) = tokio::task::spawn_blocking(move || run(Some(&cfg3), &["status", "--json"]))
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "two NameServers and the summary: {json}");
    assert_eq!(lines[2]["summary"]["exit"], 2, "{json}");
    assert_eq!(lines[0]["namesrv"], ns.addr.as_str());
    assert_eq!(lines[0]["registered"], true);
    assert_eq!(lines[0]["brokerAddrs"]["0"], "127.0.0.1:10911");
    assert_eq!(lines[1]["registered"], false);
    assert!(lines[1]["error"].is_string(), "{json}");
    assert!(
        text.contains(&format!("{dead}\tcli-broker\terror")),
        "{text}"
    );

    let (out, text) = tokio::task::spawn_blocking(move || run(Some(&cfg), &["unregister"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(text.contains(&format!("{}\tok", ns.addr)), "{text}");
    assert!(text.contains(&format!("{dead}\terror")), "{text}");
}

#[tokio::test]
async fn pull_writes_the_four_documents_once() {
    let master = Peer::start(|c| {
        let body = match c.code {
            request::GET_ALL_TOPIC_CONFIG => r#"{"topicConfigTable":{}}"#,
            request::GET_ALL_CONSUMER_OFFSET => r#"{"offsetTable":{"t@g":{0:1}}}"#,
            request::GET_ALL_DELAY_OFFSET => r#"{"offsetTable":{1:0}}"#,
            _ => r#"{"subscriptionGroupTable":{}}"#,
        };
        Action::Reply(RemotingCommand::request(0).with_body(body))
    })
    .await;
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().to_str().unwrap().to_string();
    let addr = master.addr.clone();
    let (out, text) = tokio::task::spawn_blocking(move || {
        run(
            None,
            &["pull", "--master", &addr, "--out", &dir, "--no-vip-channel"],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("\twritten\t").count(), 4, "{text}");
    // Standard JSON (the master's bare integer keys quoted), readable by the broker's user.
    let path = out_dir.path().join("consumerOffset.json");
    let text_on_disk = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text_on_disk, r#"{"offsetTable":{"t@g":{"0":1}}}"#);
    let v: serde_json::Value = serde_json::from_str(&text_on_disk).unwrap();
    assert_eq!(v["offsetTable"]["t@g"]["0"], 1);
    let typed: rmq_registrar::broker::body::ConsumerOffsetWrapper =
        serde_json::from_str(&text_on_disk).unwrap();
    assert_eq!(typed.offset_table["t@g"][&0], 1);
    let delay: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("delayOffset.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(delay["offsetTable"]["1"], 0);
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "topics.json",
        "consumerOffset.json",
        "delayOffset.json",
        "subscriptionGroup.json",
    ] {
        let mode = std::fs::metadata(out_dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{f}");
    }
    let dir = out_dir.path().to_str().unwrap().to_string();
    let addr = master.addr.clone();
    let (_, text) = tokio::task::spawn_blocking(move || {
        run(
            None,
            &["pull", "--master", &addr, "--out", &dir, "--no-vip-channel"],
        )
    })
    .await
    .unwrap();
    assert_eq!(text.matches("\tunchanged\t").count(), 4, "{text}");
}

#[tokio::test]
async fn pull_signs_requests_when_acl_keys_are_set() {
    let master = Peer::start(|_| Action::Reply(RemotingCommand::request(0).with_body("{}"))).await;
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().to_str().unwrap().to_string();
    let addr = master.addr.clone();
    let cfg = config("addrs = [\"127.0.0.1:9876\"]")
        + "[acl]\naccess_key = \"rocketmq2\"\nsecret_key = \"12345678\"\n";
    let (out, text) = tokio::task::spawn_blocking(move || {
        run(
            Some(&cfg),
            &["pull", "--master", &addr, "--out", &dir, "--no-vip-channel"],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{text}");
    let hook = rmq_registrar::broker::acl::AclHook::new("rocketmq2", "12345678", None);
    for _ in 0..4 {
        let seen = master.next_received().await;
        assert_eq!(seen.field("AccessKey"), Some("rocketmq2"));
        let sig = seen.field("Signature").expect("signed").to_string();
        assert_eq!(sig, hook.signature(&seen));
    }
}

#[test]
fn check_config_toml_loads_back_to_the_same_configuration() {
    let cfg = format!(
        "{}[register]\nforce_every = \"never\"\n[broker.health]\ncheck = \"tcp\"\n",
        config("addrs = \"127.0.0.1:9876;127.0.0.2:9876\"")
    );
    let (out, toml_text) = run(Some(&cfg), &["check-config", "--toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, first) = run(Some(&cfg), &["check-config"]);
    let (out, second) = run(Some(&toml_text), &["check-config"]);
    assert!(
        out.status.success(),
        "{toml_text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split("    # ").next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(values(&first), values(&second), "{toml_text}");
    assert!(
        first.contains("register.force_every = \"never\""),
        "{first}"
    );
}

#[test]
fn check_config_prints_no_secret_unless_asked() {
    let cfg = config("addrs = \"127.0.0.1:9876\"")
        + "[acl]\naccess_key = \"rocketmq2\"\nsecret_key = \"s3cr3t-key\"\nsecurity_token = \"t0ken-value\"\n";
    for args in [&["check-config"][..], &["check-config", "--toml"]] {
        let (out, text) = run(Some(&cfg), args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            !text.contains("s3cr3t-key") && !text.contains("t0ken-value"),
            "{args:?} printed a secret:\n{text}"
        );
        assert!(text.contains("rocketmq2"), "{args:?}: {text}");
    }
    let (_, listing) = run(Some(&cfg), &["check-config"]);
    assert!(
        listing.contains("acl.secret_key = \"***\""),
        "masked, not hidden: {listing}"
    );
    // Asked for: both forms carry them, and the TOML loads back to the same configuration.
    let (_, listing) = run(Some(&cfg), &["check-config", "--show-secrets"]);
    assert!(
        listing.contains("acl.secret_key = \"s3cr3t-key\""),
        "{listing}"
    );
    let (out, toml_text) = run(Some(&cfg), &["check-config", "--toml", "--show-secrets"]);
    assert!(out.status.success());
    assert!(toml_text.contains("t0ken-value"), "{toml_text}");
    let (out, again) = run(Some(&toml_text), &["check-config", "--show-secrets"]);
    assert!(out.status.success(), "{toml_text}");
    let values = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split("    # ").next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(values(&listing), values(&again));
    // Without them the TOML says what it left out and where the secret goes instead.
    let (_, toml_text) = run(Some(&cfg), &["check-config", "--toml"]);
    assert!(
        toml_text.contains("# acl.secret_key left out: set RMQ_REGISTRAR_ACL__SECRET_KEY"),
        "{toml_text}"
    );
}

#[test]
fn check_config_shows_what_derived_defaults_resolve_to() {
    let (out, text) = run(
        Some(&config("addrs = \"127.0.0.1:9876\"")),
        &["check-config"],
    );
    assert!(out.status.success());
    assert!(
        text.contains("broker.ha_addr = \"127.0.0.1:10912\"    # derived"),
        "{text}"
    );
    assert!(
        text.contains("broker.health.addr = \"127.0.0.1:10911\"    # derived"),
        "{text}"
    );
    assert!(
        text.contains("broker.health.tls = false    # derived"),
        "{text}"
    );
    for key in ["broker.ha_addr", "broker.health.addr", "broker.health.tls"] {
        assert!(!text.contains(&format!("{key} = null")), "{text}");
    }
}

/// `--broker ADDR` sets its keys as a source of its own: an error in them names the flag the
/// operator typed, not the variable it used to be turned into.
#[test]
fn an_error_in_a_flags_value_names_the_command_line() {
    let (out, _) = run(None, &["--broker", "127.0.0.1:0", "check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`broker.health.addr` (from --broker on the command line)"),
        "{stderr}"
    );
    assert!(!stderr.contains("RMQ_REGISTRAR_"), "{stderr}");
    // Still above the environment, as the flag is what the operator typed for this run.
    let (out, text) = run_env(
        None,
        &["--broker", "127.0.0.1:10911", "check-config"],
        &[("RMQ_REGISTRAR_BROKER__HEALTH__ADDR", "127.0.0.1:0")],
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("broker.health.addr = \"127.0.0.1:10911\"    # --broker on the command line"),
        "{text}"
    );
}

/// `--toml` leaves the secret out: the file alone is refused with a message naming the variable
/// the secret goes in and the file that set the access key (not "built-in default"), and loads
/// with that variable set.
#[test]
fn check_config_toml_without_the_secret_says_where_the_secret_goes() {
    let cfg = config("addrs = \"127.0.0.1:9876\"")
        + "[acl]\naccess_key = \"rocketmq2\"\nsecret_key = \"s3cr3t-key\"\n";
    let (out, toml_text) = run(Some(&cfg), &["check-config", "--toml"]);
    assert!(out.status.success());
    let (out, _) = run(Some(&toml_text), &["check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`acl.access_key` (from TOML file ")
            && stderr.contains("set the secret in RMQ_REGISTRAR_ACL__SECRET_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("built-in default"), "{stderr}");
    let (out, again) = run_env(
        Some(&toml_text),
        &["check-config", "--show-secrets"],
        &[("RMQ_REGISTRAR_ACL__SECRET_KEY", "s3cr3t-key")],
    );
    assert!(out.status.success(), "{toml_text}");
    assert!(again.contains("acl.secret_key = \"s3cr3t-key\""), "{again}");
}

/// The expiry's default raised by the timings is shown as derived, with from what, as the other
/// derived defaults are: it is not the built-in 10s.
#[test]
fn check_config_shows_a_raised_expiry_as_derived() {
    let cfg = config("addrs = \"127.0.0.1:9876\"") + "[register]\ntimeout = \"10s\"\n";
    let (out, text) = run(Some(&cfg), &["check-config"]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "register.heartbeat_timeout = \"12s\"    # derived: the 10s default raised to max(3 x register.heartbeat, register.timeout + 2 x register.heartbeat)"
        ),
        "{text}"
    );
    // Not raised: the built-in default, as it is.
    let (_, text) = run(
        Some(&config("addrs = \"127.0.0.1:9876\"")),
        &["check-config"],
    );
    assert!(
        text.contains("register.heartbeat_timeout = \"10s\"    # built-in default"),
        "{text}"
    );
}

/// A config file that cannot be read (a directory, not UTF-8, missing) is named with the reason;
/// no key is blamed (there was `(root)` and `(file)`).
#[test]
fn an_unreadable_config_file_is_named_with_the_reason_and_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let not_utf8 = dir.path().join("latin1.toml");
    std::fs::write(&not_utf8, b"[broker]\nname = \"\xe9\"\n").unwrap();
    for (path, reason) in [
        (dir.path().to_path_buf(), "Is a directory"),
        (not_utf8, "valid UTF-8"),
        (dir.path().join("missing.toml"), "No such file"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rmq-registrar"))
            .env_remove("RMQ_REGISTRAR_CONFIG")
            .arg("--config")
            .arg(&path)
            .arg("check-config")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let expected = format!(
            "config error: TOML file {}: cannot read it: ",
            path.display()
        );
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(!stderr.contains('`'), "a key is blamed: {stderr}");
    }
}

#[test]
fn check_config_names_the_flag_and_the_variables_values_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.conf");
    std::fs::write(
        &conf,
        "brokerName=conf-broker\nbrokerIP1=127.0.0.1\nnamesrvAddr=127.0.0.1:9876\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rmq-registrar"))
        .env_remove("NAMESRV_ADDR")
        .env_remove("RMQ_REGISTRAR_CONFIG")
        .env("RMQ_REGISTRAR_BROKER__HEALTH__CHECK", "tcp")
        .arg("--broker-conf")
        .arg(&conf)
        .arg("check-config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("broker.conf_file =")
            && l.ends_with("# --broker-conf on the command line")),
        "{text}"
    );
    assert!(
        text.contains(
            "broker.health.check = \"tcp\"    # environment variable RMQ_REGISTRAR_BROKER__HEALTH__CHECK"
        ),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rmq-registrar"))
        .env_remove("RMQ_REGISTRAR_CONFIG")
        .env("NAMESRV_ADDR", "127.0.0.1:9876")
        .env("RMQ_REGISTRAR_BROKER__NAME", "b")
        .env("RMQ_REGISTRAR_BROKER__ADDR", "127.0.0.1:10911")
        .arg("check-config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "namesrv.addrs = [\"127.0.0.1:9876\"]    # environment variable NAMESRV_ADDR"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn pull_honours_vip_channel_false_from_the_file_and_needs_no_identity() {
    let master = Peer::start(|_| Action::Reply(RemotingCommand::request(0).with_body("{}"))).await;
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().to_str().unwrap().to_string();
    let addr = master.addr.clone();
    // No broker, no NameServers: a pull uses neither.
    let cfg = "[slave]\nvip_channel = false\n".to_string();
    let (out, text) = tokio::task::spawn_blocking(move || {
        run(Some(&cfg), &["pull", "--master", &addr, "--out", &dir])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // All four from the main port: the topics too, not from port − 2.
    assert_eq!(text.matches("\twritten\t").count(), 4, "{text}");
    let codes: Vec<i32> = master.drain_received().iter().map(|c| c.code).collect();
    assert!(codes.contains(&request::GET_ALL_TOPIC_CONFIG), "{codes:?}");
}

/// What the container image does with nothing mounted and nothing set: it ships no identity, so
/// the daemon refuses to start and names the variable and the files that set one.
#[test]
fn without_any_config_the_missing_identity_names_where_to_set_it() {
    for args in [&["check-config"][..], &["run"][..]] {
        let (out, _) = run(None, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for needle in [
            "`broker.name`",
            "RMQ_REGISTRAR_BROKER__NAME",
            "RMQ_REGISTRAR_CONFIG",
            "brokerName",
        ] {
            assert!(stderr.contains(needle), "{args:?}: no {needle} in {stderr}");
        }
    }
}

/// `broker.addr` as `check-config` prints it (`broker.addr = "IP:PORT"    # source`).
fn printed_broker_addr(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("broker.addr = \""))
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string)
}

/// broker.conf without `brokerIP1` under each packaged unit's `RestrictAddressFamilies=`, as a
/// seccomp filter read from the unit (tests/sandbox/restrict-address-families.py, Debian's
/// python3-seccomp): this host's address is still found, as it is without the filter. The
/// address lookup needs a netlink socket; the units forbade it, so the packaged service exited 2
/// ("no address but loopback") and RestartPreventExitStatus=2 left it failed.
#[test]
fn the_units_sandbox_lets_check_config_find_this_hosts_address() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = "/usr/bin/python3";
    let has_seccomp = Command::new(python)
        .args(["-c", "import seccomp"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_seccomp,
        "{python} cannot import seccomp: run scripts/install-peers.sh seccomp (Debian's \
         python3-seccomp; scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "brokerName=b\nnamesrvAddr=127.0.0.1:9876\n").unwrap();
    let check_config = |sandbox: Option<&std::path::Path>| {
        let mut cmd = match sandbox {
            Some(unit) => {
                let mut c = Command::new(python);
                c.arg(root.join("tests/sandbox/restrict-address-families.py"))
                    .arg(unit)
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_rmq-registrar"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_rmq-registrar")),
        };
        let out = cmd
            .env_remove("NAMESRV_ADDR")
            .env_remove("RMQ_REGISTRAR_CONFIG")
            .arg("--broker-conf")
            .arg(&conf)
            .arg("check-config")
            .output()
            .unwrap();
        let text = format!(
            "exit {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = out
            .status
            .success()
            .then(|| printed_broker_addr(&String::from_utf8_lossy(&out.stdout)))
            .flatten();
        (addr, text)
    };
    // Outside the sandbox first: what the address is on this machine, if it has one.
    let (expected, text) = check_config(None);
    let Some(expected) = expected else {
        panic!(
            "this machine has no address but loopback (or none could be listed even without a \
             sandbox), so the sandboxed lookup cannot be shown to find one:\n{text}"
        );
    };
    let ip: std::net::IpAddr = expected
        .rsplit_once(':')
        .map(|(ip, _)| ip.trim_matches(|c| c == '[' || c == ']'))
        .and_then(|ip| ip.parse().ok())
        .unwrap_or_else(|| panic!("broker.addr {expected:?} is not IP:PORT\n{text}"));
    assert!(!ip.is_loopback(), "{text}");
    let mut units = 0;
    for entry in std::fs::read_dir(root.join("systemd")).unwrap() {
        let unit = entry.unwrap().path();
        if unit.extension().is_none_or(|e| e != "service") {
            continue;
        }
        let (addr, text) = check_config(Some(&unit));
        assert_eq!(
            addr.as_deref(),
            Some(expected.as_str()),
            "under {}'s RestrictAddressFamilies=, check-config must find this host's address \
             ({expected}) as it does outside it:\n{text}",
            unit.display()
        );
        units += 1;
    }
    assert!(units >= 2, "systemd/ holds the service and its template");
    // Without AF_NETLINK (the units before it was allowed), the cause is named, not "no address
    // but loopback".
    let old_unit = dir.path().join("no-netlink.service");
    std::fs::write(
        &old_unit,
        "[Service]\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n",
    )
    .unwrap();
    let (addr, text) = check_config(Some(&old_unit));
    assert_eq!(addr, None, "{text}");
    assert!(
        text.contains("exit Some(2)") && text.contains("addresses cannot be listed"),
        "{text}"
    );
}

/// A NameServer in the Java 4.x form (it removes by id on UNREGISTER_BROKER) whose table gives
/// `cli-broker`'s id 0 to `holder`.
async fn java4_namesrv_holding(holder: &str) -> Peer {
    let table = format!(
        r#"{{"brokerAddrTable":{{"cli-broker":{{"cluster":"CliCluster","brokerName":"cli-broker","brokerAddrs":{{"0":"{holder}"}}}}}},"clusterAddrTable":{{"CliCluster":["cli-broker"]}}}}"#
    );
    Peer::start(move |c| {
        let mut r = RemotingCommand::request(0);
        r.language = rmq_registrar::protocol::LanguageCode::JAVA;
        r.version = rmq_registrar::protocol::code::VERSION_5_0_0 - 100;
        if c.code == request::GET_BROKER_CLUSTER_INFO {
            r.body = Some(table.clone().into_bytes().into());
        }
        Action::Reply(r)
    })
    .await
}

#[tokio::test]
async fn unregister_never_removes_another_registrars_entry_where_a_namesrv_removes_by_id() {
    // Another address holds the id (a new master, a moved pod): on a NameServer that removes
    // by id, UNREGISTER would delete its entry. Before: sent all the same.
    let theirs = java4_namesrv_holding("127.0.0.1:20911").await;
    // This broker's own entry there: removing it is what the command is for.
    let ours = java4_namesrv_holding("127.0.0.1:10911").await;
    // A NameServer that removes by address (answers as Rust): always asked.
    let by_address = Peer::start(|_| Action::Reply(RemotingCommand::request(0))).await;
    let cfg = config(&format!(
        "addrs = [{:?}, {:?}, {:?}]",
        theirs.addr, ours.addr, by_address.addr
    ));
    let (out, text) = tokio::task::spawn_blocking(move || run(Some(&cfg), &["unregister"]))
        .await
        .unwrap();
    assert!(out.status.success(), "{text}");
    let sent = |p: &Peer| {
        p.drain_received()
            .iter()
            .any(|c| c.code == request::UNREGISTER_BROKER)
    };
    assert!(!sent(&theirs), "{text}");
    assert!(
        text.contains(&format!(
            "{}\tnot sent\tid 0 is 127.0.0.1:20911 here",
            theirs.addr
        )),
        "{text}"
    );
    assert!(sent(&ours), "{text}");
    assert!(sent(&by_address), "{text}");
    assert!(text.contains(&format!("{}\tok", ours.addr)), "{text}");
    // A NameServer that does not answer: what it is and who holds the id are not known, so
    // nothing is sent there (a slow Java 4.x one would remove by id), and the command fails.
    let silent = Peer::start(|_| Action::Silent).await;
    let cfg = config(&format!(
        "addrs = [{:?}]\n[register]\ntimeout = \"1s\"",
        silent.addr
    ));
    let (out, text) = tokio::task::spawn_blocking(move || run(Some(&cfg), &["unregister"]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!sent(&silent), "{text}");
    assert!(
        text.contains("\terror\tcannot ask who holds id 0"),
        "{text}"
    );
}
