//! The built `rmq-registrar` binary as a test peer: started with a config, signalled, probed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// The `http.listen` the tests give the daemon: the kernel picks the port, and the daemon names
/// the address it bound in its start-up log line ([`listen_addr`]).
pub const ANY_PORT: &str = "127.0.0.1:0";

/// The daemon process, killed on drop if still running.
pub struct Daemon {
    pub child: Option<Child>,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
    /// Where its HTTP endpoint listens, once its log has said so.
    http: OnceLock<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A daemon config whose broker is not checked (these tests run no broker).
pub fn base_config(name: &str, http: &str, namesrvs: &[&str], extra: &str) -> String {
    let mut c = checked_config(name, http, namesrvs, extra);
    c.push_str("[broker.health]\ncheck = \"none\"\n");
    c
}

/// A daemon config with the default broker health check, `extra` inside `[broker]`.
pub fn checked_config(name: &str, http: &str, namesrvs: &[&str], extra: &str) -> String {
    let list: Vec<String> = namesrvs.iter().map(|a| format!("{a:?}")).collect();
    format!(
        r#"
[broker]
cluster = "E2ECluster"
name = "{name}"
addr = "127.0.0.1:10911"
{extra}
[namesrv]
addrs = [{}]
[register]
timeout = "2s"
[http]
listen = "{http}"
[log]
level = "debug"
"#,
        list.join(", ")
    )
}

/// One `/proc/PID/status` field (KiB for the sizes; 0 when unreadable).
pub fn proc_status(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The binary under test: `REGISTRAR_UNDER_TEST` when set (the package test points it at the
/// installed release build), else the one cargo built beside these tests. (Not named
/// `RMQ_REGISTRAR_…`: the daemon reads every such variable as a key, and refuses unknown ones.)
pub fn binary() -> PathBuf {
    std::env::var_os("REGISTRAR_UNDER_TEST")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rmq-registrar")))
}

impl Daemon {
    /// Starts the daemon with the config `config` writes, given the daemon's directory and the
    /// `http.listen` to use ([`ANY_PORT`]).
    pub fn start(config: impl FnOnce(&Path, &str) -> String) -> Daemon {
        Self::start_with(&[], config)
    }

    /// As [`start`](Self::start), with extra command-line arguments before `--config`.
    pub fn start_with(args: &[&str], config: impl FnOnce(&Path, &str) -> String) -> Daemon {
        Self::start_as(Command::new(binary()), args, config)
    }

    /// As [`start`](Self::start), its system resolver asking the test DNS server whose files
    /// are in `dns_files` (a private mount namespace: see `support::dns`).
    pub fn start_resolving(dns_files: &Path, config: impl FnOnce(&Path, &str) -> String) -> Daemon {
        let (program, args) = super::dns::in_mount_namespace(dns_files, &binary());
        let mut cmd = Command::new(program);
        cmd.args(args);
        Self::start_as(cmd, &[], config)
    }

    fn start_as(
        mut cmd: Command,
        args: &[&str],
        config: impl FnOnce(&Path, &str) -> String,
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rmq.toml"), config(dir.path(), ANY_PORT)).unwrap();
        let log = dir.path().join("daemon.log");
        let child = cmd
            .args(args)
            .arg("--config")
            .arg(dir.path().join("rmq.toml"))
            .env_remove("NAMESRV_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child: Some(child),
            log,
            dir,
            http: OnceLock::new(),
        }
    }

    pub fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for exit; returns the status and how long it took.
    pub async fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return (s, t0.elapsed());
            }
            assert!(
                t0.elapsed() < limit,
                "daemon did not exit within {limit:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address its HTTP endpoint listens on, as its start-up log line names it; waits up to
    /// 30 s for the line.
    pub async fn http(&mut self) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(addr) = self.bound_http() {
                return addr;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "daemon exited with {status} before listening:\n{}",
                    self.logs()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no start-up line naming the HTTP address in 30 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Where its HTTP endpoint listens; None until its log has said so.
    fn bound_http(&self) -> Option<String> {
        if let Some(addr) = self.http.get() {
            return Some(addr.clone());
        }
        let addr = listen_addr(&self.logs())?;
        Some(self.http.get_or_init(|| addr).clone())
    }

    /// `method` `path` on its HTTP endpoint with `headers`: status and body (a drain request).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let http = self
            .bound_http()
            .expect("the daemon named its HTTP address");
        let mut req = reqwest::Client::new().request(method, format!("http://{http}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("the daemon answers");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// GET `path` from its HTTP endpoint: status and body, None while it cannot be asked.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let http = self.bound_http()?;
        let r = reqwest::get(format!("http://{http}{path}")).await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    }
}

/// A sidecar following the broker at `broker` (`--broker`), registering with `ns`: checks
/// every 500 ms, debug logs.
pub fn follower(broker: &str, ns: &str) -> Daemon {
    let ns = ns.to_string();
    Daemon::start_with(&["--broker", broker], move |_, http| {
        format!(
            "[broker.health]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\
             [namesrv]\naddrs = [{ns:?}]\n[register]\ntimeout = \"2s\"\n\
             [http]\nlisten = \"{http}\"\n[log]\nlevel = \"debug\"\n"
        )
    })
}

/// The address in a daemon log's "rmq-registrar starting" line (text or JSON format).
pub fn listen_addr(logs: &str) -> Option<String> {
    let line = logs
        .lines()
        .find(|l| l.contains("rmq-registrar starting"))?;
    let (_, rest) = line
        .split_once("listen=")
        .or_else(|| line.split_once("\"listen\":\""))?;
    let addr = rest.split(|c: char| c == '"' || c.is_whitespace()).next()?;
    Some(addr.to_string())
}

/// The value of the first sample of `/metrics` text whose line starts with `name` (labels
/// included); NaN when there is none.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn the_listen_address_is_read_from_the_start_up_line_in_either_log_format() {
    let text = "2026-01-01T00:00:00.000000Z  INFO rmq_registrar::daemon: rmq-registrar starting listen=127.0.0.1:41234 broker=b addr=127.0.0.1:10911 tls=false\n";
    assert_eq!(listen_addr(text).as_deref(), Some("127.0.0.1:41234"));
    let json = r#"{"timestamp":"x","level":"INFO","fields":{"message":"rmq-registrar starting","listen":"127.0.0.1:41235","broker":"b"},"target":"rmq_registrar::daemon"}"#;
    assert_eq!(listen_addr(json).as_deref(), Some("127.0.0.1:41235"));
    assert_eq!(listen_addr("INFO something else listen=1.2.3.4:5\n"), None);
}
