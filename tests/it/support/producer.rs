//! The real load producer (`rmq-load-producer`, peers/load-producer: rocketmq-client-rust's
//! `DefaultMQProducer` at a steady rate) as a test peer, and the counts it reports.
//!
//! The producer prints one JSON line a second with its cumulative counts and, when it stops
//! (SIGTERM, SIGINT or `--duration`), a final line with the sends per broker; a thread here
//! collects the lines as they come.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::programs::peer_binary;

/// What the producer has reported: cumulative counts of sends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Seconds since the producer began sending.
    pub t: u64,
    /// Sends that returned SEND_OK.
    pub ok: u64,
    /// Sends that failed (after the client's retries) or returned another status.
    pub failed: u64,
    /// The last failure's text, if any.
    pub last_error: Option<String>,
    /// Successful sends per broker name (the final line only; empty before it).
    pub by_broker: BTreeMap<String, u64>,
}

impl Counts {
    /// One of the producer's lines, or None when it is not one.
    fn parse(line: &str) -> Option<(bool, Counts)> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let by_broker = v["by_broker"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let counts = Counts {
            t: v["t"].as_u64()?,
            ok: v["ok"].as_u64()?,
            failed: v["failed"].as_u64()?,
            last_error: v["last_error"].as_str().map(String::from),
            by_broker,
        };
        Some((v["final"] == true, counts))
    }
}

/// Lines read from the producer's stdout so far.
#[derive(Default)]
struct Lines {
    /// The latest per-second counts.
    latest: Option<Counts>,
    /// The final line's counts, once printed.
    last: Option<Counts>,
}

/// A running `rmq-load-producer`; killed on drop.
pub struct Producer {
    child: Option<Child>,
    lines: Arc<Mutex<Lines>>,
    /// Its stderr (the client's warnings), for failure messages.
    dir: tempfile::TempDir,
}

impl Drop for Producer {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Producer {
    /// Starts `rmq-load-producer --namesrv NAMESRVS --topic TOPIC --rate RATE EXTRA...`
    /// (`namesrvs` joined with ';'; `extra` e.g. `["--duration", "5"]`).
    pub fn start(namesrvs: &[&str], topic: &str, rate: u32, extra: &[&str]) -> Producer {
        let dir = tempfile::tempdir().unwrap();
        let stderr = std::fs::File::create(dir.path().join("producer.log")).unwrap();
        let mut child = Command::new(peer_binary("rmq-load-producer", "RMQ_LOAD_PRODUCER_BIN"))
            .args(["--namesrv", &namesrvs.join(";")])
            .args(["--topic", topic])
            .args(["--rate", &rate.to_string()])
            .args(extra)
            // The client reads its NameServers from the environment too: only ours count.
            .env_remove("NAMESRV_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn rmq-load-producer");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Lines::default()));
        let sink = Arc::clone(&lines);
        // A thread, not a task: it blocks on the pipe and ends at EOF, when the process exits.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((last, counts)) = Counts::parse(&line) {
                    let mut l = sink.lock().unwrap();
                    if last {
                        l.last = Some(counts);
                    } else {
                        l.latest = Some(counts);
                    }
                }
            }
        });
        Producer {
            child: Some(child),
            lines,
            dir,
        }
    }

    /// The latest per-second counts, if a line has come yet.
    pub fn latest(&self) -> Option<Counts> {
        self.lines.lock().unwrap().latest.clone()
    }

    /// Waits until the per-second counts satisfy `f` (e.g. some sends went through); panics
    /// with the producer's log after `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, f: impl Fn(&Counts) -> bool) {
        let t0 = Instant::now();
        loop {
            if self.latest().is_some_and(|c| f(&c)) {
                return;
            }
            assert!(
                t0.elapsed() < limit,
                "producer: timed out after {limit:?} waiting for: {what}; last counts {:?}\n{}",
                self.latest(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it with SIGTERM and returns its final counts; panics unless it prints them and
    /// exits 0 within `limit` (a send in flight ends within the client's 3 s send timeout).
    pub async fn stop(mut self, limit: Duration) -> Counts {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
        self.finish(limit).await
    }

    /// Waits for it to end by itself (`--duration`) and returns its final counts; panics
    /// unless it prints them and exits 0 within `limit`.
    pub async fn finish(&mut self, limit: Duration) -> Counts {
        let status = self.wait_exit(limit).await;
        assert!(
            status.success(),
            "producer exited with {status}:\n{}",
            self.logs()
        );
        // The reader thread may still be handing over the last line the pipe held.
        let t0 = Instant::now();
        loop {
            if let Some(last) = self.lines.lock().unwrap().last.clone() {
                return last;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "producer exited without its final line:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the process to exit; panics with its log after `limit` (it is then killed on
    /// drop).
    async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let t0 = Instant::now();
        loop {
            let child = self.child.as_mut().expect("still running");
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                t0.elapsed() < limit,
                "producer did not exit within {limit:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("producer.log")).unwrap_or_default()
    }
}
