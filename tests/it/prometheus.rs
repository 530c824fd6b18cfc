//! The alert rules and the dashboard against real Prometheus tools: `promtool` unit tests, lint
//! of a live `/metrics`, every metric the rules and the dashboard name present in it, and a real
//! Prometheus server scraping the daemon and firing (then clearing) the not-registered alert.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::daemon::{base_config, Daemon};
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::ports::ClosedPort;
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};
use crate::support::wait::{eventually, eventually_within};
use rmq_registrar::protocol::RemotingCommand;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{name} not found: scripts/install-peers.sh installs Debian's prometheus package")
    })
}

#[test]
fn the_rules_load_and_their_promtool_unit_tests_pass() {
    let out = Command::new(tool("promtool"))
        .args(["check", "rules"])
        .arg(repo("deploy/prometheus/rules.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new(tool("promtool"))
        .args(["test", "rules", "rules_test.yml"])
        .current_dir(repo("tests/prometheus"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
}

/// Every `rmq_registrar_*` name in `text`, histogram suffixes folded into their family.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("rmq_registrar_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(family.to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn a_live_metrics_page_passes_promtool_and_has_every_metric_the_rules_and_dashboard_use() {
    let ns = NameServer::start().await;
    // A broker that reports its disk (GET_BROKER_RUNTIME_INFO) and its refusal level
    // (GET_BROKER_CONFIG), so that the disk's series exist.
    let broker = Peer::start(|cmd| match cmd.code {
        28 => Action::Reply(RemotingCommand::request(0).with_body(
            br#"{"table":{"commitLogDiskRatio":"0.5","consumeQueueDiskRatio":"0.25","storeWriteable":"true"}}"#.to_vec(),
        )),
        26 => Action::Reply(
            RemotingCommand::request(0).with_body(b"diskSpaceWarningLevelRatio=85\n".to_vec()),
        ),
        _ => Action::Reply(RemotingCommand::request(0)),
    })
    .await;
    // A slave (id 1): its pull series exist from the start as well.
    let checked = format!(
        "[broker.health]\ncheck = \"remoting\"\naddr = {:?}\n",
        broker.addr
    );
    let d = Daemon::start(|_, http| {
        base_config("prom-live", http, &[&ns.addr], "id = 1\n")
            .replace("[broker.health]\ncheck = \"none\"\n", &checked)
            .replace(
                "[register]",
                "[slave]\nmaster_addr = \"127.0.0.1:1\"\n[register]",
            )
    });
    let probe = client();
    eventually("registered", || has_broker(&probe, &ns.addr, "prom-live")).await;
    eventually("a slave pull attempt counted", || async {
        d.get("/metrics").await.is_some_and(|(_, t)| {
            t.contains("rmq_registrar_slave_pulls_total{kind=\"topics\",outcome=\"error\"} 1")
        })
    })
    .await;
    let (_, text) = d.get("/metrics").await.unwrap();
    // The broker's own words, read from its answers.
    for (series, value) in [
        ("rmq_registrar_broker_disk_ratio{store=\"commitlog\"}", 0.5),
        (
            "rmq_registrar_broker_disk_ratio{store=\"consumequeue\"}",
            0.25,
        ),
        ("rmq_registrar_broker_disk_threshold_ratio", 0.85),
        ("rmq_registrar_broker_disk_margin_ratio", 0.02),
        ("rmq_registrar_broker_store_writable", 1.0),
    ] {
        assert_eq!(
            crate::support::daemon::metric(&text, series),
            value,
            "{series}:\n{text}"
        );
    }
    let mut lint = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
    let live: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    let rules = std::fs::read_to_string(repo("deploy/prometheus/rules.yml")).unwrap();
    let dashboard = std::fs::read_to_string(repo("deploy/grafana/rmq-registrar.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    for (what, used) in [
        ("rules", metric_names(&rules)),
        ("dashboard", metric_names(&dashboard)),
    ] {
        assert!(used.len() >= 6, "{what} names {used:?}");
        let missing: Vec<&String> = used.difference(&live).collect();
        assert!(
            missing.is_empty(),
            "{what} uses metrics /metrics lacks: {missing:?}"
        );
    }
}

/// A Prometheus server on 127.0.0.1, killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
    /// Its port, held while it runs (Go's listener sets SO_REUSEADDR: it binds beside).
    _port: ClosedPort,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    async fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = ClosedPort::new();
        let addr = port.addr().to_string();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {:?}\nscrape_configs:\n  - job_name: rmq-registrar\n    static_configs:\n      - targets: [\"{target}\"]\n",
            repo("deploy/prometheus/rules.yml")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(tool("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
            _port: port,
        };
        eventually_within("prometheus ready", Duration::from_secs(60), || async {
            reqwest::get(format!("http://{}/-/ready", p.addr))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        p
    }

    async fn api(&self, path: &str) -> serde_json::Value {
        let r = reqwest::get(format!("http://{}{path}", self.addr)).await;
        match r {
            Ok(r) => {
                serde_json::from_slice(&r.bytes().await.unwrap_or_default()).unwrap_or_default()
            }
            Err(_) => serde_json::Value::Null,
        }
    }

    /// State of `alert` ("pending", "firing"), or None when it is not active.
    async fn alert_state(&self, alert: &str) -> Option<String> {
        let v = self.api("/api/v1/alerts").await;
        v["data"]["alerts"].as_array()?.iter().find_map(|a| {
            (a["labels"]["alertname"] == alert)
                .then(|| a["state"].as_str().unwrap_or("").to_string())
        })
    }
}

#[tokio::test]
async fn a_real_prometheus_fires_not_registered_when_the_namesrv_stops_and_clears_when_back() {
    let ns = NameServer::start().await;
    let mut d = Daemon::start(|_, http| {
        base_config("prom-alert", http, &[&ns.addr], "")
            .replace("[register]", "[register]\ninterval = \"10s\"")
    });
    let probe = client();
    eventually("registered", || has_broker(&probe, &ns.addr, "prom-alert")).await;
    let prom = Prometheus::start(&d.http().await).await;
    eventually_within("scraped", Duration::from_secs(30), || async {
        let v = prom
            .api("/api/v1/query?query=rmq_registrar_broker_up")
            .await;
        v["data"]["result"][0]["value"][1] == "1"
    })
    .await;
    assert_eq!(prom.alert_state("RmqRegistrarNotRegistered").await, None);
    // The NameServer stops: no registration for two intervals (20 s) fires the alert.
    let port = ns.kill();
    let ns_addr = port.addr().to_string();
    let t0 = tokio::time::Instant::now();
    eventually_within("alert firing", Duration::from_secs(45), || async {
        prom.alert_state("RmqRegistrarNotRegistered")
            .await
            .as_deref()
            == Some("firing")
    })
    .await;
    eprintln!(
        "RmqRegistrarNotRegistered firing {:?} after the NameServer stopped",
        t0.elapsed()
    );
    assert_eq!(prom.alert_state("RmqRegistrarBrokerDown").await, None);
    // Back: registered at once, the alert clears at the next evaluation.
    let _ns = NameServer::start_on(port).await;
    eventually("registered again", || {
        has_broker(&probe, &ns_addr, "prom-alert")
    })
    .await;
    let t1 = tokio::time::Instant::now();
    eventually_within("alert cleared", Duration::from_secs(20), || async {
        prom.alert_state("RmqRegistrarNotRegistered")
            .await
            .is_none()
    })
    .await;
    eprintln!(
        "cleared {:?} after the broker was registered again",
        t1.elapsed()
    );
}
