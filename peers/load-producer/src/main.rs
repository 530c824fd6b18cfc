//! rmq-load-producer: sends messages at a steady rate through rocketmq-client-rust's
//! `DefaultMQProducer` and counts the sends that succeed and fail, one JSON line a second.
//!
//! It exists so that rmq-registrar's tests can measure what a real RocketMQ client sees (its
//! route polling, its retries, its choice of broker) while brokers stop, start and drain.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocketmq_client_rust::{
    ClientConfig, ClientError, ClientRuntime, ClientRuntimeConfig, DefaultMQProducer, SendResult, SendStatus,
    TelemetryHandle,
};
use rocketmq_model::common::message::message_single::Message;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

const USAGE: &str = "\
Usage: rmq-load-producer --namesrv ADDR[;ADDR...] --topic TOPIC --rate N [options]

Sends N messages a second (synchronous sends, one at a time; with --async, asynchronous
sends, each counted when its callback runs) until SIGTERM, SIGINT or the duration ends. Prints one JSON line a second to stdout, cumulative:
  {\"t\":SECONDS,\"ok\":N,\"failed\":N,\"last_error\":\"...\"|null}
and at the end
  {\"final\":true,\"t\":SECONDS,\"ok\":N,\"failed\":N,\"last_error\":...,\"by_broker\":{\"NAME\":N,...}}
then exits 0. The client's own warnings go to stderr (RUST_LOG to change the level).

Options:
  --namesrv ADDR[;ADDR...]  NameServer addresses (host:port), separated by ';'
  --topic TOPIC             the topic to send to (it must exist, or the broker auto-create it)
  --rate N                  messages per second (1 or more)
  --group G                 producer group (default: rmq-load-producer)
  --poll-ms MS              route poll interval in ms (default: 10000, the client's minimum)
  --duration S              stop after S seconds (default: until a signal)
  --async                   asynchronous sends (the client's send with a callback)
  --async-retries N         retries of a failed asynchronous send (default: the client's 2;
                            0 is what a Java producer does after a broker's error answer)
  --version                 print the version and exit
  --help                    print this help and exit";

/// The producer's settings, from the command line.
#[derive(Debug)]
struct Args {
    namesrv: String,
    topic: String,
    rate: u32,
    group: String,
    poll_ms: u32,
    duration: Option<Duration>,
    asynchronous: bool,
    async_retries: Option<u32>,
}

/// What the command line asked for.
enum Command {
    Run(Args),
    Help,
    Version,
}

/// Parses `args` (without the program name).
fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut it = args.into_iter();
    let (mut namesrv, mut topic, mut rate, mut duration) = (None, None, None, None);
    let mut group = "rmq-load-producer".to_string();
    let mut poll_ms = 10_000;
    let mut asynchronous = false;
    let mut async_retries = None;
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--namesrv" => namesrv = Some(value("--namesrv")?),
            "--topic" => topic = Some(value("--topic")?),
            "--group" => group = value("--group")?,
            "--async" => asynchronous = true,
            "--async-retries" => {
                async_retries = Some(number("--async-retries", &value("--async-retries")?)?)
            }
            "--rate" => rate = Some(number::<u32>("--rate", &value("--rate")?)?),
            "--poll-ms" => poll_ms = number("--poll-ms", &value("--poll-ms")?)?,
            "--duration" => {
                let s: f64 = number("--duration", &value("--duration")?)?;
                duration = Some(
                    Duration::try_from_secs_f64(s)
                        .map_err(|_| format!("--duration: not a duration: {s}"))?,
                );
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let rate = rate.ok_or("--rate is required")?;
    if rate == 0 {
        return Err("--rate must be 1 or more".into());
    }
    Ok(Command::Run(Args {
        namesrv: namesrv.ok_or("--namesrv is required")?,
        topic: topic.ok_or("--topic is required")?,
        rate,
        group,
        poll_ms,
        duration,
        asynchronous,
        async_retries,
    }))
}

/// `text` as a number, or an error naming `flag`.
fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: not a valid number: {text}"))
}

/// Counts so far, shared by the sending loop and the reporter.
#[derive(Default)]
struct Stats {
    ok: u64,
    failed: u64,
    last_error: Option<String>,
    /// Successful sends per broker name (from the send result's message queue).
    by_broker: BTreeMap<String, u64>,
}

impl Stats {
    /// Counts one send's outcome. Only SEND_OK counts as ok: any other status (a flush or
    /// slave timeout) is a send the application would have to look at, so it counts as failed.
    fn record(&mut self, outcome: Result<Option<SendResult>, String>) {
        match outcome {
            Ok(Some(r)) if r.send_status == SendStatus::SendOk => {
                self.ok += 1;
                let broker = r
                    .message_queue
                    .as_ref()
                    .map_or_else(|| "unknown".to_string(), |q| q.broker_name().to_string());
                *self.by_broker.entry(broker).or_default() += 1;
            }
            Ok(Some(r)) => self.fail(format!("send status {:?}", r.send_status)),
            Ok(None) => self.fail("the client returned no send result".to_string()),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, error: String) {
        self.failed += 1;
        self.last_error = Some(error);
    }

    /// The per-second line.
    fn line(&self, t: u64) -> serde_json::Value {
        json!({"t": t, "ok": self.ok, "failed": self.failed, "last_error": self.last_error})
    }

    /// The last line, with the sends per broker.
    fn final_line(&self, t: u64) -> serde_json::Value {
        json!({
            "final": true,
            "t": t,
            "ok": self.ok,
            "failed": self.failed,
            "last_error": self.last_error,
            "by_broker": self.by_broker,
        })
    }
}

/// Writes one line to stdout and flushes it, so that a reader sees each line when it is
/// written. A closed stdout is ignored: the counts are lost, but sending goes on as asked.
fn emit(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            // The digest scripts/install-peers.sh computed of the sources it built from: it
            // reinstalls when they change, without anyone bumping the version.
            let sources = option_env!("RMQ_LOAD_PRODUCER_SOURCES").unwrap_or("unknown");
            println!(
                "rmq-load-producer {} (sources {sources})",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("rmq-load-producer: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The client logs through tracing: its warnings (a broker that does not answer, a route
    // that cannot be fetched) explain failed sends, and stdout stays for the JSON lines.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    // The client runs its tasks on a runtime it is given (it never creates one of its own).
    let owner = match RuntimeOwner::plan(RuntimeConfig {
        thread_name: "rmq-load-producer".into(),
        ..Default::default()
    })
    .map_err(|e| e.to_string())
    .and_then(|plan| plan.build().map_err(|e| e.to_string()))
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rmq-load-producer: cannot create the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = owner.block_on(async {
        let client = match ClientRuntime::try_new(
            owner.root_context().component("client"),
            ClientRuntimeConfig::default(),
            TelemetryHandle::noop(),
        ) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("rmq-load-producer: cannot create the client runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        let code = match run(args, Arc::clone(&client)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rmq-load-producer: {e}");
                ExitCode::FAILURE
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), client.shutdown()).await;
        code
    });
    // Whatever the client left running is not waited for: the counts are already out.
    owner.shutdown_background();
    code
}

/// Starts the producer, sends until told to stop, prints the final line, shuts it down.
async fn run(args: Args, client: Arc<ClientRuntime>) -> Result<(), String> {
    let stop = stop_signal(args.duration)?;

    let mut config = ClientConfig::default();
    config.set_namesrv_addr(args.namesrv.clone().into());
    // The client refuses a poll below 10 s (MIN_POLL_NAME_SERVER_INTERVAL) when it starts.
    config.set_poll_name_server_interval(args.poll_ms);
    config.set_send_latency_enable(false);
    let mut producer = DefaultMQProducer::builder(client)
        .client_config(config)
        .producer_group(args.group.clone())
        .build();
    // Set on the producer as well as in its config, explicitly: the client's default comes
    // from an environment variable, and latency fault avoidance would change which broker a
    // send goes to after a failure, which is what the tests measure.
    producer.set_send_latency_fault_enable(false);
    if let Some(n) = args.async_retries {
        producer.set_retry_times_when_send_async_failed(n);
    }
    producer
        .start()
        .await
        .map_err(|e| format!("the producer did not start: {e}"))?;

    let stats = Arc::new(Mutex::new(Stats::default()));
    let started = Instant::now();
    let reporter = tokio::spawn(report_every_second(Arc::clone(&stats), started));
    let in_flight = Arc::new(AtomicU64::new(0));
    send_until_stopped(&producer, &args, (&stats, &in_flight), stop).await;
    // Asynchronous sends still in flight get their callbacks (bounded by the send timeout).
    let waiting = Instant::now();
    while in_flight.load(Ordering::SeqCst) > 0 && waiting.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reporter.abort();
    let t = started.elapsed().as_secs();
    let final_line = stats.lock().map(|s| s.final_line(t)).unwrap_or_default();
    emit(&final_line);

    // Bounded: a shutdown that hangs on an unreachable broker must not keep the process alive.
    let _ = tokio::time::timeout(Duration::from_secs(5), producer.shutdown()).await;
    Ok(())
}

/// A receiver that turns true on SIGTERM, SIGINT or when `duration` has passed.
fn stop_signal(duration: Option<Duration>) -> Result<watch::Receiver<bool>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    tokio::spawn(async move {
        let deadline = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = deadline => {}
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Sends `rate` messages a second, one at a time, until `stop` turns true. A send in flight
/// when it does is finished and counted (it ends within the client's send timeout).
async fn send_until_stopped(
    producer: &DefaultMQProducer,
    args: &Args,
    (stats, in_flight): (&Arc<Mutex<Stats>>, &Arc<AtomicU64>),
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / args.rate);
    // A send slower than the period delays the next ones instead of bursting to catch up:
    // a synchronous producer's rate drops while a broker is slow, as an application's would.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        seq += 1;
        let outcome = match Message::builder()
            .topic(args.topic.as_str())
            .body_slice(format!("rmq-load-producer {seq}").as_bytes())
            .build()
        {
            Ok(msg) if args.asynchronous => {
                // Counted by its callback; a send refused before it went (no route) here.
                let (st, fl) = (Arc::clone(stats), Arc::clone(in_flight));
                fl.fetch_add(1, Ordering::SeqCst);
                let callback = move |r: Option<&SendResult>, e: Option<&ClientError>| {
                    let outcome = match (r, e) {
                        (_, Some(e)) => Err(e.to_string()),
                        (r, None) => Ok(r.cloned()),
                    };
                    if let Ok(mut s) = st.lock() {
                        s.record(outcome);
                    }
                    fl.fetch_sub(1, Ordering::SeqCst);
                };
                match producer.send_with_callback(msg, callback).await {
                    Ok(()) => continue,
                    Err(e) => {
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        Err(e.to_string())
                    }
                }
            }
            // A synchronous send with the producer's defaults (send timeout, retries).
            Ok(msg) => producer.send(msg).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("message not built: {e}")),
        };
        if let Ok(mut s) = stats.lock() {
            s.record(outcome);
        }
    }
}

/// Prints the counts so far once a second, `t` seconds after sending began.
async fn report_every_second(stats: Arc<Mutex<Stats>>, started: Instant) {
    let mut tick =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    loop {
        tick.tick().await;
        let t = started.elapsed().as_secs();
        if let Ok(line) = stats.lock().map(|s| s.line(t)) {
            emit(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_the_documented_flags_with_their_defaults() {
        let Ok(Command::Run(a)) = parse(args("--namesrv a:1;b:2 --topic T --rate 100")) else {
            panic!("not a run");
        };
        assert_eq!(
            (a.namesrv.as_str(), a.topic.as_str(), a.rate),
            ("a:1;b:2", "T", 100)
        );
        assert_eq!(
            (a.group.as_str(), a.poll_ms, a.duration),
            ("rmq-load-producer", 10_000, None)
        );
        let Ok(Command::Run(a)) = parse(args(
            "--namesrv a:1 --topic T --rate 5 --group G --poll-ms 20000 --duration 2.5",
        )) else {
            panic!("not a run");
        };
        assert_eq!((a.group.as_str(), a.poll_ms), ("G", 20_000));
        assert_eq!(a.duration, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn refuses_missing_or_bad_values() {
        for bad in [
            "--topic T --rate 1",
            "--namesrv a:1 --rate 1",
            "--namesrv a:1 --topic T",
            "--namesrv a:1 --topic T --rate 0",
            "--namesrv a:1 --topic T --rate x",
            "--namesrv a:1 --topic T --rate 1 --duration -1",
            "--namesrv a:1 --topic T --rate 1 --extra",
            "--namesrv",
        ] {
            assert!(parse(args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_only_send_ok_as_ok_and_keeps_the_last_error() {
        let mut s = Stats::default();
        s.record(Ok(Some(SendResult::default())));
        s.record(Ok(Some(SendResult {
            send_status: SendStatus::FlushDiskTimeout,
            ..SendResult::default()
        })));
        s.record(Err("boom".into()));
        assert_eq!(
            (s.ok, s.failed, s.last_error.as_deref()),
            (1, 2, Some("boom"))
        );
        assert_eq!(s.final_line(3)["by_broker"], json!({"unknown": 1}));
        assert_eq!(
            s.line(3),
            json!({"t": 3, "ok": 1, "failed": 2, "last_error": "boom"})
        );
    }
}
