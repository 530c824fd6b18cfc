//! The drain fails closed: a token that is empty, blank, unreadable or set twice never leaves
//! `/drain` unguarded, at load, at SIGHUP or at request time; `drain.listen` serves `/drain`
//! alone; the command's exit codes (what a broker unit's `ExecStop=` reads); `status --any`,
//! the package's restart rule. Against the real NameServer.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;

use crate::drain::{route_perm, MARK};
use crate::support::daemon::{base_config, binary, Daemon};
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};
use crate::support::wait::eventually;

fn topics(name: &str) -> String {
    format!("[[broker.topics.inline]]\nname = \"{name}\"\n")
}

/// The binary with `args` and `env`: exit code and everything it printed.
fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::new(binary());
    c.args(args).env_remove("NAMESRV_ADDR");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn config_file(dir: &Path, text: &str) -> String {
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// A drain request with `auth` as its Authorization header: status, body, and the
/// `WWW-Authenticate` header.
async fn drain_with(
    http: &str,
    method: Method,
    path: &str,
    auth: Option<&str>,
) -> (u16, String, Option<String>) {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{http}{path}"))
        .header(MARK.0, MARK.1);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let r = req.send().await.expect("the daemon answers");
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.text().await.unwrap_or_default(), challenge)
}

#[test]
fn a_token_file_that_cannot_be_read_or_is_blank_fails_check_config_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drain.token");
    let cfg = |token_file: &str| {
        base_config("guard-f", "127.0.0.1:0", &["127.0.0.1:9"], "")
            + &format!("[drain]\ntoken_file = {token_file:?}\n")
    };
    let path = config_file(dir.path(), &cfg(&file.to_string_lossy()));
    // Missing: both the check and the daemon refuse to start (exit 2, key and file named).
    for cmd in ["check-config", "run"] {
        let (code, out) = cli(&["--config", &path, cmd], &[]);
        assert_eq!(code, 2, "{cmd}: {out}");
        assert!(
            out.contains("drain.token_file")
                && out.contains("drain.token")
                && out.contains("cannot be read"),
            "{cmd}: {out}"
        );
    }
    // Blank: the same, saying why.
    std::fs::write(&file, "  \n").unwrap();
    let (code, out) = cli(&["--config", &path, "check-config"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("holds no token"), "{out}");
    // A token in it: accepted, and still shown masked.
    std::fs::write(&file, "s3cret\n").unwrap();
    let (code, out) = cli(&["--config", &path, "check-config"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("s3cret"), "{out}");
    // A one-shot command that does not drain is not held up by a token it does not use.
    std::fs::remove_file(&file).unwrap();
    let (code, out) = cli(&["--config", &path, "resolve"], &[]);
    assert_eq!(code, 0, "{out}");
    // systemd's credentials directory: named in the file, given by the environment.
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("drain-token"), "c3ed\n").unwrap();
    let path = config_file(dir.path(), &cfg("${CREDENTIALS_DIRECTORY}/drain-token"));
    let (code, out) = cli(&["--config", &path, "check-config"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("CREDENTIALS_DIRECTORY is not set"), "{out}");
    let dir_var = creds.path().to_string_lossy().into_owned();
    let (code, out) = cli(
        &["--config", &path, "check-config"],
        &[("CREDENTIALS_DIRECTORY", &dir_var)],
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn an_empty_or_doubled_token_refuses_to_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (drain, key, says) in [
        ("token = \"\"\n", "drain.token", "is empty"),
        ("token = \" \\t \"\n", "drain.token", "is empty"),
        (
            "token = \"a\"\ntoken_file = \"/etc/hostname\"\n",
            "drain.token",
            "both set",
        ),
        ("max = \"30s\"\n", "drain.max", "not longer than drain.wait"),
    ] {
        let text =
            base_config("guard-e", "127.0.0.1:0", &["127.0.0.1:9"], "") + "[drain]\n" + drain;
        let path = config_file(dir.path(), &text);
        for cmd in ["check-config", "run"] {
            let (code, out) = cli(&["--config", &path, cmd], &[]);
            assert_eq!(code, 2, "{drain} {cmd}: {out}");
            assert!(
                out.contains(key) && out.contains(says),
                "{drain} {cmd}: {out}"
            );
        }
    }
    // Set empty in the environment: the same.
    let path = config_file(
        dir.path(),
        &base_config("guard-e", "127.0.0.1:0", &["127.0.0.1:9"], ""),
    );
    let (code, out) = cli(
        &["--config", &path, "check-config"],
        &[("RMQ_REGISTRAR_DRAIN__TOKEN", "")],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("RMQ_REGISTRAR_DRAIN__TOKEN"), "{out}");
}

#[test]
fn check_config_toml_leaves_the_token_out_and_the_file_refuses_to_load_until_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let text = base_config("guard-t", "127.0.0.1:0", &["127.0.0.1:9"], "")
        + "[drain]\ntoken = \"s3cret\"\n";
    let path = config_file(dir.path(), &text);
    let (code, toml) = cli(&["--config", &path, "check-config", "--toml"], &[]);
    assert_eq!(code, 0, "{toml}");
    assert!(!toml.contains("s3cret"), "{toml}");
    assert!(toml.contains("# drain.token left out"), "{toml}");
    let again = dir.path().join("again.toml");
    std::fs::write(&again, &toml).unwrap();
    let again = again.to_string_lossy().into_owned();
    // Loaded back as it is: refused (before the fix it loaded with no token: auth off).
    let (code, out) = cli(&["--config", &again, "check-config"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("drain.token") && out.contains("left out"),
        "{out}"
    );
    // With the token given in the environment, as the comment says: it loads, guarded.
    let (code, out) = cli(
        &["--config", &again, "check-config", "--show-secrets"],
        &[("RMQ_REGISTRAR_DRAIN__TOKEN", "s3cret")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("drain.token = \"s3cret\""), "{out}");
    // --show-secrets says it covers the drain token.
    let (_, help) = cli(&["check-config", "--help"], &[]);
    assert!(help.contains("drain.token"), "{help}");
}

#[tokio::test]
async fn a_token_file_turned_blank_or_unreadable_refuses_every_drain_and_sighup_keeps_the_old_token(
) {
    let ns = NameServer::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("drain.token");
    std::fs::write(&file, "s3cret\n").unwrap();
    let file_s = file.to_string_lossy().into_owned();
    let mut d = Daemon::start(|_, http| {
        base_config("guard-r", http, &[&ns.addr], &topics("GuardR"))
            + &format!("[drain]\ntoken_file = {file_s:?}\n")
    });
    let http = d.http().await;
    let probe = client();
    eventually("routed writable", || async {
        route_perm(&probe, &ns.addr, "GuardR", "guard-r").await == Some(6)
    })
    .await;
    // No token, a wrong one, a blank one: 401 with the challenge.
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Bearer "),
        Some("Basic s3cret"),
    ] {
        let (s, body, challenge) = drain_with(&http, Method::POST, "/drain?wait=0", auth).await;
        assert_eq!(s, 401, "{auth:?}: {body}");
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer realm=\"rmq-registrar drain\""),
            "{auth:?}"
        );
    }
    // The scheme in any case (RFC 7235).
    let (s, body, _) =
        drain_with(&http, Method::POST, "/drain?wait=0", Some("bearer s3cret")).await;
    assert_eq!(s, 200, "{body}");
    let (s, body, _) = drain_with(&http, Method::DELETE, "/drain", Some("BEARER s3cret")).await;
    assert_eq!(s, 200, "{body}");
    eventually("writable again", || async {
        route_perm(&probe, &ns.addr, "GuardR", "guard-r").await == Some(6)
    })
    .await;
    // The file turns blank, then goes: every request refused with 500, none let through
    // without a token (before the fix a blank file let a request with no header drain).
    for (turn, says) in [("blank", "holds no token"), ("gone", "cannot be read")] {
        if turn == "blank" {
            std::fs::write(&file, "\n").unwrap();
        } else {
            std::fs::remove_file(&file).unwrap();
        }
        for auth in [None, Some("Bearer "), Some("Bearer s3cret")] {
            let (s, body, _) = drain_with(&http, Method::POST, "/drain?wait=0", auth).await;
            assert_eq!(s, 500, "{turn} {auth:?}: {body}");
            assert!(body.contains(says), "{turn}: {body}");
            // The file's path and the error stay in the log, not in an answer to anyone.
            assert!(!body.contains(&file_s), "{turn}: {body}");
        }
    }
    assert_eq!(
        route_perm(&probe, &ns.addr, "GuardR", "guard-r").await,
        Some(6),
        "no drain happened"
    );
    // SIGHUP with the file still gone: a WARN, and the configuration (and token) kept.
    d.signal("HUP");
    eventually("the reload is refused", || async {
        d.logs()
            .contains("reload: the drain token cannot be used, keeping the old configuration")
    })
    .await;
    // SIGHUP to an empty inline token: the same.
    let cfg = d.dir.path().join("rmq.toml");
    let blank =
        base_config("guard-r", &http, &[&ns.addr], &topics("GuardR")) + "[drain]\ntoken = \"\"\n";
    std::fs::write(&cfg, blank).unwrap();
    d.signal("HUP");
    eventually("the blank inline token is refused", || async {
        d.logs().matches("keeping the old configuration").count() >= 2
    })
    .await;
    let warned = d
        .logs()
        .lines()
        .filter(|l| l.contains("keeping the old configuration"))
        .all(|l| l.contains("WARN"));
    assert!(warned, "{}", d.logs());
    // The old configuration still reads the file: back in place, the old token drains.
    std::fs::write(&file, "s3cret").unwrap();
    let (s, _, _) = drain_with(&http, Method::POST, "/drain?wait=0", None).await;
    assert_eq!(s, 401);
    let (s, body, _) =
        drain_with(&http, Method::POST, "/drain?wait=0", Some("Bearer s3cret")).await;
    assert_eq!(s, 200, "{body}");
}

/// The `drain_listen=` address of a daemon's start-up line.
fn drain_listen(logs: &str) -> Option<String> {
    let line = logs
        .lines()
        .find(|l| l.contains("rmq-registrar starting"))?;
    let (_, rest) = line.split_once("drain_listen=")?;
    Some(
        rest.split_whitespace()
            .next()?
            .trim_matches('"')
            .to_string(),
    )
}

#[tokio::test]
async fn drain_listen_serves_the_drain_alone_and_the_command_drains_through_it() {
    let ns = NameServer::start().await;
    let mut d = Daemon::start(|_, http| {
        base_config("guard-l", http, &[&ns.addr], &topics("GuardL"))
            + "[drain]\nlisten = \"127.0.0.1:0\"\n"
    });
    let http = d.http().await;
    let own = drain_listen(&d.logs()).expect("the start-up line names the drain listener");
    assert_ne!(own, http);
    let probe = client();
    eventually("routed writable", || async {
        route_perm(&probe, &ns.addr, "GuardL", "guard-l").await == Some(6)
    })
    .await;
    // /drain is not on the metrics listener, and only /drain is on its own.
    let (s, _, _) = drain_with(&http, Method::POST, "/drain?wait=0", None).await;
    assert_eq!(s, 404);
    let r = reqwest::get(format!("http://{own}/metrics")).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        route_perm(&probe, &ns.addr, "GuardL", "guard-l").await,
        Some(6)
    );
    // The command reads drain.listen from the same configuration.
    let cli_cfg = base_config("guard-l", &http, &[&ns.addr], &topics("GuardL"))
        + &format!("[drain]\nlisten = {own:?}\n");
    let path = config_file(d.dir.path(), &cli_cfg);
    let (code, out) = cli(&["--config", &path, "drain", "--wait", "0"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("200 drained:"), "{out}");
    assert_eq!(
        route_perm(&probe, &ns.addr, "GuardL", "guard-l").await,
        Some(4)
    );
    let (code, out) = cli(&["--config", &path, "drain", "--cancel"], &[]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn the_command_exits_0_when_there_is_nothing_to_drain_and_1_when_refused() {
    let ns = NameServer::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let good = secrets.path().join("good");
    let wrong = secrets.path().join("wrong");
    std::fs::write(&good, "s3cret\n").unwrap();
    std::fs::write(&wrong, "nope\n").unwrap();
    // A slave: nothing to drain (a 409 saying so), exit 0 — what ExecStop= needs.
    let mut slave = Daemon::start(|_, http| {
        base_config(
            "guard-s",
            http,
            &[&ns.addr],
            &("id = 1\n".to_string() + &topics("GuardS")),
        ) + "[drain]\ntoken = \"s3cret\"\n"
    });
    let http = slave.http().await;
    let probe = client();
    eventually("slave listed", || has_broker(&probe, &ns.addr, "guard-s")).await;
    let cfg = base_config(
        "guard-s",
        &http,
        &[&ns.addr],
        &("id = 1\n".to_string() + &topics("GuardS")),
    ) + "[drain]\ntoken = \"s3cret\"\n";
    let path = config_file(slave.dir.path(), &cfg);
    let (code, out) = cli(&["--config", &path, "drain", "--wait", "0"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("409 not drained:") && out.contains("not a master"),
        "{out}"
    );
    let drain_with_token = |file: &Path| {
        let file = file.to_string_lossy().into_owned();
        let args = [
            "--config",
            &path,
            "drain",
            "--wait",
            "0",
            "--token-file",
            &file,
        ];
        cli(&args, &[])
    };
    // The wrong token (--token-file wins over the configuration's): 401, exit 1.
    let (code, out) = drain_with_token(&wrong);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("401"), "{out}");
    // A token file the command cannot read: exit 2, naming it.
    let missing = secrets
        .path()
        .join("missing")
        .to_string_lossy()
        .into_owned();
    let (code, out) = cli(&["--config", &path, "drain", "--token-file", &missing], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("--token-file") && out.contains("cannot be read"),
        "{out}"
    );
    // The daemon gone: unreachable, exit 1.
    slave.signal("TERM");
    slave.wait_exit(Duration::from_secs(10)).await;
    let (code, out) = drain_with_token(&good);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot reach the daemon"), "{out}");
}

#[tokio::test]
async fn a_drain_ended_by_drain_max_says_so_and_the_log_names_the_requested_wait() {
    let ns = NameServer::start().await;
    let mut d = Daemon::start(|_, http| {
        base_config("guard-m", http, &[&ns.addr], &topics("GuardM"))
            + "[drain]\nwait = \"1s\"\nmax = \"2s\"\n"
    });
    let http = d.http().await;
    let probe = client();
    eventually("routed writable", || async {
        route_perm(&probe, &ns.addr, "GuardM", "guard-m").await == Some(6)
    })
    .await;
    let (s, body, _) = drain_with(&http, Method::POST, "/drain?wait=30s", None).await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body.contains("ended before the wait passed") && body.contains("drain.max passed"),
        "{body}"
    );
    let logs = d.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("draining: routing the broker read-only"))
        .unwrap_or_default();
    assert!(
        line.contains("wait=30s"),
        "the requested wait, not drain.wait: {line}"
    );
    // A cancel's own reason.
    let addr = http.clone();
    let pending =
        tokio::spawn(async move { drain_with(&addr, Method::POST, "/drain?wait=30s", None).await });
    eventually("draining", || async {
        d.get("/readyz")
            .await
            .is_some_and(|(_, b)| b.contains("draining since"))
    })
    .await;
    let (s, _) = d.request(Method::DELETE, "/drain", &[MARK]).await;
    assert_eq!(s, 200);
    let (s, body, _) = pending.await.unwrap();
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("cancelled by"), "{body}");
}

#[tokio::test]
async fn status_any_passes_with_a_namesrv_down_asks_all_at_once_and_a_slave_does_not_pass_on_its_master(
) {
    let ns = NameServer::start().await;
    // Two NameServers that take the connection and never answer: asked one after the other
    // they would cost a timeout each.
    let silent = || Peer::start(|_| Action::Silent);
    let (hole1, hole2) = (silent().await, silent().await);
    let master =
        Daemon::start(|_, http| base_config("guard-a", http, &[&ns.addr], &topics("GuardA")));
    let probe = client();
    eventually("registered", || has_broker(&probe, &ns.addr, "guard-a")).await;
    let dir = tempfile::tempdir().unwrap();
    let listed = [ns.addr.as_str(), hole1.addr.as_str(), hole2.addr.as_str()];
    let path = config_file(
        dir.path(),
        &base_config("guard-a", "127.0.0.1:0", &listed, &topics("GuardA")),
    );
    let (code, out) = cli(&["--config", &path, "status"], &[]);
    assert_eq!(code, 2, "two NameServers could not be asked: {out}");
    let t0 = Instant::now();
    let (code, out) = cli(&["--config", &path, "status", "--any"], &[]);
    let took = t0.elapsed();
    assert_eq!(code, 0, "one NameServer maps the id to this address: {out}");
    // One register.timeout (2 s) for both silent NameServers, with room for a shared machine
    // (one after the other: 4 s and more).
    assert!(
        took < Duration::from_millis(3_800),
        "status --any took {took:?}"
    );
    assert!(
        out.contains(&format!("{}\tguard-a\tregistered", ns.addr)),
        "{out}"
    );
    // The slave of the same broker name: its id is not on the NameServer, its master's is.
    let slave = config_file(
        dir.path(),
        &base_config(
            "guard-a",
            "127.0.0.1:0",
            &[&ns.addr],
            &("id = 1\n".to_string() + &topics("GuardA")),
        ),
    );
    let (code, out) = cli(&["--config", &slave, "status", "--any"], &[]);
    assert_eq!(code, 1, "the master's entry is not the slave's: {out}");
    assert!(out.contains("id 1 is not listed"), "{out}");
    let (code, out) = cli(&["--config", &slave, "status", "--any", "--json"], &[]);
    assert_eq!(code, 1, "{out}");
    let row: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(row["holds_id"], false, "{row}");
    assert_eq!(row["registered"], true, "{row}");
    drop(master);
}

/// The lines of the block scalar that follows `key: |` in `yaml`, unindented.
fn block_after(yaml: &str, key: &str) -> String {
    let mut lines = yaml
        .lines()
        .skip_while(|l| !l.trim_end().ends_with(&format!("{key}: |")));
    let head = lines.next().expect("the block's key");
    let indent = head.len() - head.trim_start().len() + 2;
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or("").to_string() + "\n")
        .collect()
}

/// The Kubernetes example as it runs: the sidecar's own configuration from the ConfigMap (its
/// ports moved to free ones), the binary copied by the init container's `copy-to`, and the
/// broker's preStop command as the example writes it: it drains through the loopback listener,
/// and /drain is not on the listener the pod IP serves.
#[tokio::test]
async fn the_kubernetes_example_drains_through_its_loopback_listener_with_its_prestop_command() {
    let yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/broker-with-registrar.yaml"),
    )
    .unwrap();
    let sidecar = block_after(&yaml, "rmq-registrar.toml");
    assert!(sidecar.contains("listen = \"0.0.0.0:9100\""), "{sidecar}");
    assert!(sidecar.contains("listen = \"127.0.0.1:9101\""), "{sidecar}");
    let copier: Vec<&str> = yaml
        .lines()
        .find(|l| l.contains("\"copy-to\""))
        .expect("an init container copying the binary")
        .split('"')
        .collect();
    let (static_bin, shared) = (copier[1], copier[5].to_string());
    // The image's static build (any libc in the broker's image), where the Dockerfile puts it.
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("/src/static/rmq-registrar {static_bin}"))
            && dockerfile.contains("target-feature=+crt-static"),
        "the init container runs the Dockerfile's static build: {static_bin}"
    );
    let hook: Vec<String> = yaml
        .split("preStop:")
        .nth(1)
        .expect("a preStop hook")
        .lines()
        .skip_while(|l| !l.contains("command:"))
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- ").map(str::to_string))
        .collect();
    assert_eq!(hook[0], format!("{shared}/rmq-registrar"), "{hook:?}");
    assert_eq!(hook.last().map(String::as_str), Some("drain"), "{hook:?}");
    let ns = NameServer::start().await;
    let (metrics_port, drain_port) = (
        crate::support::ports::ClosedPort::new(),
        crate::support::ports::ClosedPort::new(),
    );
    let cfg_text = sidecar
        .replace("0.0.0.0:9100", &format!("0.0.0.0:{}", metrics_port.port()))
        .replace("127.0.0.1:9101", drain_port.addr())
        .replace("format = \"json\"", "format = \"text\"");
    // The pod: the identity the sidecar takes from the broker given here instead (config
    // mode, not checked), the file in the place the hook names.
    let pod = tempfile::tempdir().unwrap();
    let etc = pod.path().join("etc/rmq-registrar");
    std::fs::create_dir_all(&etc).unwrap();
    let cfg_path = etc.join("rmq-registrar.toml");
    let full = cfg_text.clone()
        + &format!(
            "[broker]\nname = \"k8s-a\"\naddr = \"127.0.0.1:10911\"\n{}\n[broker.health]\ncheck = \"none\"\n[namesrv]\naddrs = [{:?}]\n",
            topics("K8sT"),
            ns.addr
        );
    std::fs::write(&cfg_path, &full).unwrap();
    let mut d = Daemon::start(|_, _| full.clone());
    let http = d.http().await;
    let probe = client();
    eventually("routed writable", || async {
        route_perm(&probe, &ns.addr, "K8sT", "k8s-a").await == Some(6)
    })
    .await;
    let (s, _, _) = drain_with(&http, Method::POST, "/drain?wait=0", None).await;
    assert_eq!(s, 404, "/drain is not on the pod-IP listener");
    // The init container's copy, then the hook as written, its file the sidecar's alone (the
    // broker container has no identity to give it).
    let bin_dir = pod.path().join(shared.trim_start_matches('/'));
    std::fs::create_dir_all(&bin_dir).unwrap();
    let (code, out) = cli(&["copy-to", &bin_dir.to_string_lossy()], &[]);
    assert_eq!(code, 0, "{out}");
    let copied = bin_dir.join("rmq-registrar");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&copied).unwrap().permissions().mode() & 0o777,
        0o755
    );
    std::fs::write(&cfg_path, &cfg_text).unwrap();
    let args: Vec<String> = hook[1..]
        .iter()
        .map(|a| {
            if a == "/etc/rmq-registrar/rmq-registrar.toml" {
                cfg_path.to_string_lossy().into_owned()
            } else {
                a.clone()
            }
        })
        .collect();
    let out = Command::new(&copied)
        .args(&args)
        .args(["--wait", "0"])
        .env_remove("NAMESRV_ADDR")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("200 drained:"), "{text}");
    assert_eq!(route_perm(&probe, &ns.addr, "K8sT", "k8s-a").await, Some(4));
}
