//! The package's upgrade rule (packaging/debian/postinst) run for real: the template's
//! instances restarted one at a time, each once its broker is registered again
//! (`status --any`), with a NameServer down before the upgrade or going down during it, each
//! wait bounded. `deb-systemd-invoke` is a script of the test's that restarts daemons it runs;
//! the daemons, `status` and the NameServers are real.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::daemon::{base_config, binary};
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::ports::ClosedPort;
use crate::support::remoting::client;
use crate::support::wait::eventually;

/// How long a restarted instance takes before it runs (the stub sleeps first): the time the
/// postinst must wait for before restarting the next one.
const START_DELAY_S: u64 = 2;

/// The maintainer script under test: `POSTINST_UNDER_TEST` (the package test points it at the
/// installed one), else the repository's.
fn postinst() -> PathBuf {
    std::env::var_os("POSTINST_UNDER_TEST")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/debian/postinst"))
}

/// `deb-systemd-invoke try-restart rmq-registrar@NAME.service`, as the test's stand-in for
/// systemd: logs the time, stops the instance's daemon (SIGTERM, waits for it), stops the
/// process in `$STOP_PID` if set (a NameServer going down during the upgrade), and starts the
/// daemon again after START_DELAY_S. Units it does not run are left alone.
const STUB: &str = r#"#!/bin/sh
[ "$1" = try-restart ] || exit 0
name=${2#rmq-registrar@}
name=${name%.service}
[ -f "$STATE/$name.pid" ] || exit 0
echo "$(date +%s.%N) $name" >> "$STATE/restarts"
pid=$(cat "$STATE/$name.pid")
kill -TERM "$pid" 2>/dev/null
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
if [ -n "$STOP_PID" ]; then kill -KILL "$STOP_PID" 2>/dev/null; STOP_PID=; fi
(sleep "$START_DELAY"; exec rmq-registrar --config "$ETC/$name.toml" run) >>"$STATE/$name.log" 2>&1 &
echo $! > "$STATE/$name.pid"
"#;

/// The instances' daemons (whoever started them last), killed at the end.
struct Instances {
    state: PathBuf,
    names: Vec<&'static str>,
}

impl Drop for Instances {
    fn drop(&mut self) {
        for n in &self.names {
            if let Ok(pid) = std::fs::read_to_string(self.state.join(format!("{n}.pid"))) {
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
            }
        }
    }
}

struct Host {
    etc: tempfile::TempDir,
    state: tempfile::TempDir,
    systemd: tempfile::TempDir,
    bin: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        let host = Host {
            etc: tempfile::tempdir().unwrap(),
            state: tempfile::tempdir().unwrap(),
            systemd: tempfile::tempdir().unwrap(),
            bin: tempfile::tempdir().unwrap(),
        };
        let stub = host.bin.path().join("deb-systemd-invoke");
        std::fs::write(&stub, STUB).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(binary(), host.bin.path().join("rmq-registrar")).unwrap();
        host
    }

    /// Instance `name`'s config (its broker registered with `namesrvs`), and its daemon started.
    fn instance(&self, name: &str, namesrvs: &[&str]) {
        let text = base_config(name, "127.0.0.1:0", namesrvs, "");
        std::fs::write(self.etc.path().join(format!("{name}.toml")), text).unwrap();
        let log = std::fs::File::create(self.state.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(binary())
            .arg("--config")
            .arg(self.etc.path().join(format!("{name}.toml")))
            .arg("run")
            .env_remove("NAMESRV_ADDR")
            .stderr(log)
            .spawn()
            .unwrap();
        std::fs::write(
            self.state.path().join(format!("{name}.pid")),
            child.id().to_string(),
        )
        .unwrap();
        // Reaped as soon as it exits: the stub waits for the pid to go, and a zombie stays.
        let mut child = child;
        std::thread::spawn(move || child.wait());
    }

    /// Runs the postinst as an upgrade (`configure OLD-VERSION`): how long it took, and the
    /// time of each restart (seconds since the epoch) by instance.
    fn upgrade(&self, stop_pid: Option<u32>) -> (Duration, Vec<(String, f64)>, String) {
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let t0 = Instant::now();
        let out = Command::new("sh")
            .arg(postinst())
            .args(["configure", "0.0.9"])
            .env("PATH", path)
            .env("RMQREGISTRAR_TEST_ETC", self.etc.path())
            .env("RMQREGISTRAR_TEST_SYSTEMD", self.systemd.path())
            .env("ETC", self.etc.path())
            .env("STATE", self.state.path())
            .env("START_DELAY", START_DELAY_S.to_string())
            .env(
                "STOP_PID",
                stop_pid.map(|p| p.to_string()).unwrap_or_default(),
            )
            .env_remove("NAMESRV_ADDR")
            .output()
            .unwrap();
        let took = t0.elapsed();
        assert!(
            out.status.success(),
            "postinst: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let restarts = std::fs::read_to_string(self.state.path().join("restarts"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (t, n) = l.split_once(' ')?;
                Some((n.to_string(), t.parse().ok()?))
            })
            .collect();
        (
            took,
            restarts,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The two instances restarted in order, the second only after the first was back.
fn one_at_a_time(restarts: &[(String, f64)]) {
    let names: Vec<&str> = restarts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["pi-a", "pi-b"], "{restarts:?}");
    let gap = restarts[1].1 - restarts[0].1;
    // The first is back START_DELAY_S after its restart at the earliest; the bound (60 s,
    // and a status try) is far above what it needs here.
    assert!(
        gap >= START_DELAY_S as f64,
        "pi-b restarted {gap:.2} s after pi-a: before pi-a was registered again"
    );
    assert!(gap < 20.0, "pi-b restarted {gap:.2} s after pi-a");
}

#[tokio::test]
async fn an_upgrade_with_a_namesrv_down_restarts_the_instances_one_at_a_time() {
    let ns = NameServer::start().await;
    let down = ClosedPort::new();
    let host = Host::new();
    let _running = Instances {
        state: host.state.path().to_path_buf(),
        names: vec!["pi-a", "pi-b"],
    };
    host.instance("pi-a", &[&ns.addr, down.addr()]);
    host.instance("pi-b", &[&ns.addr, down.addr()]);
    let probe = client();
    eventually("both registered", || async {
        has_broker(&probe, &ns.addr, "pi-a").await && has_broker(&probe, &ns.addr, "pi-b").await
    })
    .await;
    let (took, restarts, _) = host.upgrade(None);
    one_at_a_time(&restarts);
    assert!(took < Duration::from_secs(40), "postinst took {took:?}");
    eventually("both registered after the upgrade", || async {
        has_broker(&probe, &ns.addr, "pi-a").await && has_broker(&probe, &ns.addr, "pi-b").await
    })
    .await;
}

#[tokio::test]
async fn an_upgrade_during_which_a_namesrv_goes_down_waits_for_the_one_left_not_for_the_bound() {
    let ns = NameServer::start().await;
    let ns2 = NameServer::start().await;
    let host = Host::new();
    let _running = Instances {
        state: host.state.path().to_path_buf(),
        names: vec!["pi-a", "pi-b"],
    };
    host.instance("pi-a", &[&ns.addr, &ns2.addr]);
    host.instance("pi-b", &[&ns.addr, &ns2.addr]);
    let probe = client();
    eventually("both registered on both", || async {
        has_broker(&probe, &ns.addr, "pi-a").await
            && has_broker(&probe, &ns.addr, "pi-b").await
            && has_broker(&probe, &ns2.addr, "pi-a").await
            && has_broker(&probe, &ns2.addr, "pi-b").await
    })
    .await;
    // ns2 goes down as pi-a restarts: every NameServer no longer lists pi-a, one does.
    let (took, restarts, _) = host.upgrade(Some(ns2.pid()));
    one_at_a_time(&restarts);
    // Asking every NameServer in turn until all list it ran the whole bound for each instance
    // (60 tries of 1 s + register.timeout: 180 s here).
    assert!(took < Duration::from_secs(40), "postinst took {took:?}");
}

#[tokio::test]
async fn an_instance_whose_file_the_new_version_refuses_is_left_running_not_restarted() {
    let ns = NameServer::start().await;
    let host = Host::new();
    let _running = Instances {
        state: host.state.path().to_path_buf(),
        names: vec!["pi-a", "pi-b"],
    };
    host.instance("pi-a", &[&ns.addr]);
    host.instance("pi-b", &[&ns.addr]);
    let probe = client();
    eventually("both registered", || async {
        has_broker(&probe, &ns.addr, "pi-a").await && has_broker(&probe, &ns.addr, "pi-b").await
    })
    .await;
    // A rule the new version adds (here: an empty drain token) refuses pi-a's file: restarted,
    // it would exit 2 and stay down, its broker unregistered on the way.
    let conf = host.etc.path().join("pi-a.toml");
    let text = std::fs::read_to_string(&conf).unwrap() + "[drain]\ntoken = \"\"\n";
    std::fs::write(&conf, text).unwrap();
    let (_, restarts, stderr) = host.upgrade(None);
    let names: Vec<&str> = restarts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["pi-b"], "{stderr}");
    assert!(
        stderr.contains("rmq-registrar@pi-a: NOT restarted") && stderr.contains("drain.token"),
        "{stderr}"
    );
    assert!(
        has_broker(&probe, &ns.addr, "pi-a").await,
        "pi-a still runs and is registered"
    );
}
