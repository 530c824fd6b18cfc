//! Every command the README shows in a shell code block, run as written (placeholders filled in)
//! against the real NameServer, so that the README cannot rot unnoticed. A command this test
//! does not know fails it: run it here, or say in `NOT_RUN_HERE` why it cannot be.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rmq_registrar::protocol::RemotingCommand;

use crate::support::daemon::ANY_PORT;
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::ports::closed_port_with;
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};
use crate::support::wait::eventually;

/// Commands of the README that this test does not run, and why.
/// Commands (or, for long ones, their first words) not run here, with the reason.
const NOT_RUN_HERE: [(&str, &str); 13] = [
    (
        "deb=$(scripts/package.sh",
        "a release build with full LTO; scripts/package-test.sh (run by .ci/run where dpkg is) builds, installs and checks the package",
    ),
    (
        "sudo apt install",
        "installs on this machine as root: scripts/package-test.sh does it with dpkg -i and purges",
    ),
    (
        "sudoedit ",
        "an editor; scripts/package-test.sh checks the installed file and check-config on it",
    ),
    (
        "sudo systemctl enable --now rmq-registrar",
        "systemd does not run the tests' machines; scripts/package-test.sh runs systemd-analyze verify on both units",
    ),
    (
        "systemctl status",
        "systemd does not run the tests' machines",
    ),
    ("docker build -t rmq-registrar:0.1.0 .", "needs Docker, which the test machines do not have"),
    ("docker run ", "needs Docker; tests/it/cli.rs checks what the image does without an identity"),
    (
        "./scripts/quickstart.sh",
        "fixed ports 9876 and 9100 and a full-LTO release build; its steps (a daemon, then `status`) are the commands below, on free ports",
    ),
    ("./scripts/test.sh", "it is the test suite that runs this test"),
    (
        "cargo install --locked cargo-afl",
        "installs a fuzzer: minutes of building, and the network",
    ),
    (
        "scripts/fuzz.sh frame 20",
        "a 20-minute fuzz campaign (tests/it/fuzz_corpus.rs replays its corpus)",
    ),
    (
        "docker build -t REGISTRY/rmq-registrar:0.1.0 .",
        "needs Docker, which the test machines do not have",
    ),
    (
        "docker push REGISTRY/rmq-registrar:0.1.0",
        "needs Docker and a registry of the reader's own",
    ),
];

/// The commands of the README's `sh` code blocks, comments cut off.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut continued: Option<String> = None;
    for line in text.lines() {
        let fence = line.trim_start();
        if let Some(lang) = fence.strip_prefix("```") {
            in_sh = !in_sh && matches!(lang.trim(), "sh" | "bash" | "shell" | "console");
            continue;
        }
        if !in_sh {
            continue;
        }
        let command = line.split(" #").next().unwrap_or("").trim();
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        // A line ending in `\` goes on on the next one: one command.
        match continued.take() {
            Some(mut head) => {
                head.push(' ');
                head.push_str(command.trim_end_matches('\\').trim());
                if command.ends_with('\\') {
                    continued = Some(head);
                } else {
                    out.push(head);
                }
            }
            None if command.ends_with('\\') => {
                continued = Some(command.trim_end_matches('\\').trim().to_string());
            }
            None => out.push(command.to_string()),
        }
    }
    out
}

/// Files and peers the README's placeholders stand for.
struct Place {
    config: String,
    /// A scripted broker answering GET_BROKER_CONFIG (identity from the broker).
    follow: String,
    broker_conf: String,
    master: String,
    out: String,
}

/// One README command as argument lists, placeholders filled in (`[--flag]`: with and without).
fn expand(command: &str, p: &Place) -> Vec<Vec<String>> {
    let mut variants: Vec<Vec<String>> = vec![Vec::new()];
    for word in command.split_whitespace().skip(1) {
        let filled = match word {
            "FILE"
            | "/etc/rmq-registrar/rmq-registrar.toml"
            | "/etc/rmq-registrar/broker-b.toml" => p.config.clone(),
            "/home/rocketmq/conf/broker.conf" => p.broker_conf.clone(),
            "HOST:PORT" => p.master.clone(),
            "BROKER_ADDR" => p.follow.clone(),
            "DIR" => p.out.clone(),
            w if w.starts_with("[--") && w.ends_with(']') => {
                let flag = w.trim_matches(|c| c == '[' || c == ']').to_string();
                let with: Vec<Vec<String>> = variants
                    .iter()
                    .map(|v| {
                        let mut v = v.clone();
                        v.push(flag.clone());
                        v
                    })
                    .collect();
                variants.extend(with);
                continue;
            }
            w => {
                assert!(
                    !w.chars().any(|c| c.is_ascii_uppercase()),
                    "unknown placeholder {w:?} in README command {command:?}"
                );
                w.to_string()
            }
        };
        for v in &mut variants {
            v.push(filled.clone());
        }
    }
    variants
}

/// The subcommand of an argument list (None: the daemon).
fn subcommand(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" | "--broker-conf" | "--broker" => {
                it.next();
            }
            "run" => return None,
            s if !s.starts_with('-') => return Some(s),
            _ => {}
        }
    }
    None
}

/// The README's command as a process: each daemon on an HTTP port of its own (the kernel's
/// pick, as several run at once).
fn command(args: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rmq-registrar"));
    cmd.args(args)
        .env_remove("NAMESRV_ADDR")
        .env_remove("RMQ_REGISTRAR_CONFIG")
        .env("RMQ_REGISTRAR_HTTP__LISTEN", ANY_PORT)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // No broker runs here (as in the quick start) but the scripted one `--broker` asks.
    if !args.iter().any(|a| a == "--broker") {
        cmd.env("RMQ_REGISTRAR_BROKER__HEALTH__CHECK", "none");
    }
    cmd
}

/// Runs a one-shot command to its end (bounded): exit code and stdout.
async fn one_shot(args: &[String]) -> (i32, String) {
    let out = tokio::time::timeout(Duration::from_secs(30), command(args).output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not end within 30 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "{args:?} was killed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

/// Starts the daemon as the command says, waits until the NameServer lists `broker`, stops it
/// with SIGTERM and checks that it exits 0 having unregistered.
async fn daemon(args: &[String], ns: &str, broker: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("daemon.log");
    let mut child = command(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let probe = client();
    eventually(&format!("{args:?} registers {broker}"), || {
        has_broker(&probe, ns, broker)
    })
    .await;
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exit within 5 s of SIGTERM")
        .unwrap();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{args:?}: {status}\n{logs}");
    // The NameServer takes UNREGISTER_BROKER in and removes the broker a moment later (Java
    // 5's and the Rust NameServer's batch unregistration): gone within a bound, not at once.
    let gone = eventually_within_or_logs(Duration::from_secs(2), || async {
        !has_broker(&probe, ns, broker).await
    })
    .await;
    assert!(gone, "{args:?} left {broker}:\n{logs}");
}

/// Polls `f` until it holds or `limit` passes; whether it held.
async fn eventually_within_or_logs<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A master on a port of its own whose port − 2 (the VIP channel) is its too, both answering
/// `{}`.
async fn master_with_vip_port() -> (Peer, Peer) {
    let (main, [vip]) = closed_port_with([-2]);
    let reply = |_: &RemotingCommand| Action::Reply(RemotingCommand::request(0).with_body("{}"));
    let vip = Peer::start_on(vip, reply).await;
    let main = Peer::start_on(main, reply).await;
    (main, vip)
}

#[tokio::test]
async fn every_command_the_readme_shows_runs_as_it_says() {
    let commands = readme_commands();
    assert!(
        commands
            .iter()
            .filter(|c| c.starts_with("rmq-registrar "))
            .count()
            >= 8,
        "the README's commands were not found: {commands:?}"
    );
    let ns = NameServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(
        path("rmq.toml"),
        format!(
            "[broker]\nname = \"readme-broker\"\naddr = \"127.0.0.1:10911\"\n[namesrv]\naddrs = [\"{}\"]\n",
            ns.addr
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("store/config")).unwrap();
    std::fs::write(
        path("store/config/topics.json"),
        r#"{"topicConfigTable":{"ReadmeT":{"topicName":"ReadmeT","readQueueNums":1,"writeQueueNums":1,"perm":6},"ReadmeU":{"topicName":"ReadmeU","readQueueNums":1,"writeQueueNums":1,"perm":6}},"dataVersion":{"counter":1,"timestamp":1}}"#,
    )
    .unwrap();
    std::fs::write(
        path("broker.conf"),
        format!(
            "brokerName=readme-conf-broker\nbrokerIP1=127.0.0.1\nnamesrvAddr={}\nstorePathRootDir={}\n",
            ns.addr,
            path("store")
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let (master, vip) = master_with_vip_port().await;
    // The broker `--broker` follows: its identity and NameServer list said when asked.
    let props = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let said = props.clone();
    let topics = r#"{"topicConfigTable":{"A":{"topicName":"A","perm":6},"B":{"topicName":"B","perm":6}},"dataVersion":{"counter":1,"timestamp":1}}"#;
    let follow = Peer::start(move |cmd| match cmd.code {
        26 => {
            let body = said.lock().unwrap().clone().into_bytes();
            Action::Reply(RemotingCommand::request(0).with_body(body))
        }
        21 => Action::Reply(RemotingCommand::request(0).with_body(topics)),
        _ => Action::Reply(RemotingCommand::request(0)),
    })
    .await;
    let (ip, port) = follow.addr.rsplit_once(':').unwrap();
    *props.lock().unwrap() = format!(
        "brokerClusterName=ReadmeCluster\nbrokerName=readme-follow\nbrokerId=0\n\
         brokerRole=ASYNC_MASTER\nbrokerIP1={ip}\nlistenPort={port}\nnamesrvAddr={}\n",
        ns.addr
    );
    let place = Place {
        follow: follow.addr.clone(),
        config: path("rmq.toml"),
        broker_conf: path("broker.conf"),
        master: master.addr.clone(),
        out: path("out"),
    };

    // The daemons first, each on its own; then the one-shot commands, with the broker kept
    // registered by a daemon of the README's first kind (status and unregister need one).
    let mut one_shots = Vec::new();
    let mut ran = 0;
    for c in &commands {
        if let Some((_, why)) = NOT_RUN_HERE.iter().find(|(n, _)| c.starts_with(n)) {
            eprintln!("not run here: {c} ({why})");
            continue;
        }
        assert!(
            c.starts_with("rmq-registrar "),
            "README command {c:?} is neither run by this test nor in NOT_RUN_HERE with a reason"
        );
        for args in expand(c, &place) {
            if subcommand(&args).is_some() {
                one_shots.push(args);
                continue;
            }
            let broker = if args.contains(&"--broker-conf".to_string()) {
                "readme-conf-broker"
            } else if args.contains(&"--broker".to_string()) {
                "readme-follow"
            } else {
                "readme-broker"
            };
            daemon(&args, &ns.addr, broker).await;
            ran += 1;
        }
    }
    assert!(ran >= 2, "both ways of starting the daemon ran");

    // Without heartbeats: with them the keeper puts the broker back within a second of the
    // README's `unregister` (as it should), and that command's effect could not be seen.
    let keeper = command(&["--config".into(), place.config.clone()])
        .env("RMQ_REGISTRAR_REGISTER__HEARTBEAT", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let probe = client();
    eventually("registered for the one-shot commands", || {
        has_broker(&probe, &ns.addr, "readme-broker")
    })
    .await;
    // `unregister` last: the others (status) need the broker registered.
    one_shots.sort_by_key(|a| subcommand(a) == Some("unregister"));
    for args in &one_shots {
        let (code, out) = one_shot(args).await;
        assert_eq!(code, 0, "{args:?}:\n{out}");
        let has = |flag: &str| args.iter().any(|a| a == flag);
        match subcommand(args) {
            Some("check-config") if has("--toml") => {
                let file = path("again.toml");
                std::fs::write(&file, &out).unwrap();
                let again = ["--config".to_string(), file, "check-config".into()];
                let (code, listing) = one_shot(&again).await;
                assert_eq!(code, 0, "the --toml output does not load back:\n{out}");
                assert!(
                    listing.contains("broker.name = \"readme-broker\""),
                    "{listing}"
                );
            }
            Some("check-config") => {
                assert!(out.contains("broker.name = \"readme-broker\""), "{out}");
                assert!(out.contains("rmq.toml"), "sources named: {out}");
            }
            Some("resolve") => assert_eq!(out.trim(), ns.addr),
            Some("status") => assert!(
                out.contains(&format!("{}\treadme-broker\tregistered", ns.addr)),
                "{out}"
            ),
            Some("unregister") => {
                assert!(out.contains(&format!("{}\tok", ns.addr)), "{out}");
                let gone = eventually_within_or_logs(Duration::from_secs(2), || async {
                    !has_broker(&probe, &ns.addr, "readme-broker").await
                })
                .await;
                assert!(gone, "{args:?}: still registered:\n{out}");
            }
            Some("pull") => {
                let files =
                    out.matches("\twritten\t").count() + out.matches("\tunchanged\t").count();
                assert_eq!(files, 4, "{args:?}:\n{out}");
            }
            Some("copy-to") => {
                let copied = Path::new(&place.out).join("rmq-registrar");
                assert_eq!(out.trim(), copied.display().to_string());
                let (code, version) = one_shot(&["--version".into()]).await;
                assert_eq!(code, 0);
                let run = std::process::Command::new(&copied)
                    .arg("--version")
                    .output()
                    .unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&run.stdout),
                    version,
                    "the copy runs"
                );
            }
            other => panic!("README command {args:?}: no check for {other:?}; add one"),
        }
        ran += 1;
    }
    drop(keeper);
    // Both VIP variants of `pull` ran: topics from port − 2, and from the main port.
    assert!(
        !vip.drain_received().is_empty(),
        "nothing pulled over the VIP port"
    );
    assert!(!master.drain_received().is_empty());
    eprintln!("ran {ran} README commands");
}

/// The image's `USER` (uid:gid), numeric as the kubelet needs it to verify `runAsNonRoot`.
fn image_user() -> (String, String) {
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).expect("Dockerfile");
    // The last USER is the one the running image has.
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("the Dockerfile sets USER");
    let (uid, gid) = user.trim().split_once(':').unwrap_or((user.trim(), ""));
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    assert!(
        numeric(uid) && numeric(gid),
        "Dockerfile: USER {user}: the kubelet refuses runAsNonRoot for a non-numeric user; \
         write uid:gid as numbers"
    );
    (uid.to_string(), gid.to_string())
}

/// Each `securityContext` of a YAML file (block or `{ ... }` form): its own keys and values.
fn security_contexts(yaml: &str) -> Vec<Vec<(String, String)>> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let pair = |s: &str| {
        s.split_once(':')
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
    };
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("securityContext:") else {
            continue;
        };
        let rest = rest.trim();
        if let Some(inline) = rest.strip_prefix('{') {
            out.push(
                inline
                    .trim_end_matches('}')
                    .split(',')
                    .filter_map(pair)
                    .collect(),
            );
            continue;
        }
        let own = indent(line);
        let body: Vec<&str> = lines[i + 1..]
            .iter()
            .copied()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .take_while(|l| indent(l) > own)
            .collect();
        let child = body.iter().map(|l| indent(l)).min().unwrap_or(0);
        out.push(
            body.iter()
                .filter(|l| indent(l) == child)
                .filter_map(|l| pair(l))
                .collect(),
        );
    }
    out
}

/// The Kubernetes example runs the image as the user the image has: a container asking
/// `runAsNonRoot` of an image whose user is a name is refused by the kubelet ("image has
/// non-numeric user (nonroot), cannot verify user is non-root").
#[test]
fn the_kubernetes_example_runs_the_image_as_its_numeric_user() {
    let (uid, gid) = image_user();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/kubernetes") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a YAML file");
        for context in security_contexts(&text) {
            let get = |k: &str| context.iter().find(|(key, _)| key == k).map(|(_, v)| v);
            if get("runAsNonRoot").is_none_or(|v| v != "true") {
                continue;
            }
            assert_eq!(
                (get("runAsUser"), get("runAsGroup")),
                (Some(&uid), Some(&gid)),
                "{}: a securityContext with runAsNonRoot: true must say runAsUser: {uid} and \
                 runAsGroup: {gid}, the Dockerfile's USER: {context:?}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "no container of deploy/kubernetes/ asks runAsNonRoot: the sidecar should"
    );
}

/// The wiring a drain needs where operators run it: the Kubernetes broker drains in its
/// `preStop` hook with our binary on the sidecar's loopback drain listener (the run of it is
/// in drain_guard.rs), never through the pod-IP listener; the pod's grace period covers the
/// drain, the broker's shutdown and the goodbye; the systemd drop-in drains first, fails the
/// stop when a due drain did not happen, and gives the stop as long.
#[test]
fn the_examples_drain_the_broker_before_it_stops() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(root.join("deploy/kubernetes/broker-with-registrar.yaml"))
        .expect("the Kubernetes example");
    let broker = yaml
        .split("- name: broker")
        .nth(1)
        .expect("a broker container");
    let hook = broker
        .split("preStop:")
        .nth(1)
        .expect("the broker container has a preStop hook");
    assert!(
        hook.trim_start().starts_with("exec:") && !hook.contains("httpGet"),
        "an exec of our binary: the kubelet's httpGet comes from the node and cannot reach loopback: {hook}"
    );
    assert!(
        yaml.contains("listen = \"127.0.0.1:9101\""),
        "the drain listener is on the pod's loopback"
    );
    assert!(
        !yaml.contains("path: /drain"),
        "nothing drains through the pod-IP listener"
    );
    let grace: u64 = yaml
        .split("terminationGracePeriodSeconds:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|g| g.parse().ok())
        .expect("terminationGracePeriodSeconds");
    // drain.wait (40 s) + a Java broker's shutdown (~30 s) + the goodbye (register.timeout).
    assert!(
        grace >= 40 + 30 + 3,
        "terminationGracePeriodSeconds {grace}"
    );
    let unit = std::fs::read_to_string(root.join("systemd/broker-drain.conf")).expect("drop-in");
    assert!(
        unit.lines()
            .any(|l| l.starts_with("ExecStop=/") && l.ends_with(" drain")),
        "a drain that was due and did not happen fails the stop (no \"-\"): {unit}"
    );
    assert!(unit.contains("After=rmq-registrar.service"), "{unit}");
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim().parse().ok())
        .expect("TimeoutStopSec");
    assert!(stop >= 40 + 30, "TimeoutStopSec {stop}");
}
