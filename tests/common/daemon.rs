//! The built `rmq-registrar` binary as a test peer: started with a config, signalled, probed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use super::closed_port_addr;

/// The daemon process, killed on drop if still running.
pub struct Daemon {
    pub child: Option<Child>,
    pub http: String,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
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

impl Daemon {
    pub fn start(config: impl FnOnce(&Path, &str) -> String) -> Daemon {
        Self::start_with(&[], config)
    }

    /// As [`start`](Self::start), with extra command-line arguments before `--config`.
    pub fn start_with(args: &[&str], config: impl FnOnce(&Path, &str) -> String) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let http = closed_port_addr();
        std::fs::write(dir.path().join("rmq.toml"), config(dir.path(), &http)).unwrap();
        let log = dir.path().join("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_rmq-registrar"))
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
            http,
            log,
            dir,
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

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("http://{}{path}", self.http))
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    }
}
