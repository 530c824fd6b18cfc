//! `rmq-bench fleet BROKERS TOPICS`: what a fleet of registrars costs the NameServer it shares.
//! BROKERS daemons run in this process, each the daemon's own `daemon::run` with its own broker
//! identity, config, client and metrics (the registration, heartbeat and read-back code the
//! binary runs), all registering the same TOPICS topic names (one cluster's brokers) with one
//! real NameServer. Phases one after another, each on a fresh NameServer when the bench starts
//! it: first the NameServer idle (the same table registered once, no registrar running), then
//! each mode. Per phase: the NameServer's CPU and RSS from /proc, a producer's route-query
//! latency (GET_ROUTEINFO_BY_TOPIC of a topic every broker has, one every 10 ms from a thread
//! and runtime of its own), this process's CPU and RSS per registrar (the producer's thread left
//! out), and what the registrars sent. Bounded: at most 1000 registrars, 10M broker-topics, 600 s
//! per window, each phase under a deadline. Not part of the test suite.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rmq_registrar::broker::body::DataVersion;
use rmq_registrar::broker::{BrokerApi, BrokerIdentity, RegisterOptions};
use rmq_registrar::client::{ClientConfig, RemotingClient};
use rmq_registrar::daemon::{self, Control};
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::{
    clock_ticks_per_second, cpu_ticks, http_client, java_topics_json, rss_kib, start_namesrv,
    wrapper, BoxError, Namesrv,
};

/// `rmq-bench fleet` options.
#[derive(Parser, Debug)]
#[command(
    name = "rmq-bench fleet",
    about = "What a fleet of registrars costs a NameServer"
)]
pub struct Args {
    /// Registrars, each with a broker identity of its own (1..=1000).
    brokers: usize,
    /// Topics every broker registers, the same names on each (1..=100000).
    topics: usize,
    /// `register.interval` of every registrar.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// The modes, run one after another: `full` (every round a full registration, as Java
    /// brokers register), `defaults` (the daemon's defaults), `no-heartbeat` (the defaults
    /// with `register.heartbeat = "off"`).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "full,defaults"
    )]
    modes: Vec<Mode>,
    /// The measured window of each phase, seconds (10..=600).
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// A NameServer already running, by address (default: a fresh rocketmq-namesrv-rust for
    /// each phase).
    #[arg(long)]
    namesrv: Option<String>,
    /// That NameServer's process id on this machine, for its CPU and RSS.
    #[arg(long, requires = "namesrv")]
    namesrv_pid: Option<u32>,
}

/// How the registrars of a phase are configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `register.force_every = "always"`.
    Full,
    /// Nothing set but the interval.
    Defaults,
    /// The defaults, heartbeats off.
    NoHeartbeat,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Full => "full registration every round (`force_every = \"always\"`)",
            Mode::Defaults => "the daemon's defaults",
            Mode::NoHeartbeat => "the defaults, `heartbeat = \"off\"`",
        }
    }

    /// The `[register]` keys beside the interval.
    fn keys(self) -> &'static str {
        match self {
            Mode::Full => "force_every = \"always\"\n",
            Mode::Defaults => "",
            // Without heartbeats only rounds refresh the broker: the NameServer's own expiry.
            Mode::NoHeartbeat => "heartbeat = \"off\"\nheartbeat_timeout = \"off\"\n",
        }
    }
}

const MAX_BROKERS: usize = 1000;
const MAX_TOPICS: usize = 100_000;
/// Broker-topics held by the registrars together (each parses its own table: ~120 bytes a
/// topic), and by the NameServer.
const MAX_BROKER_TOPICS: usize = 10_000_000;
/// The topic every broker has: the producer's.
const PRODUCER_TOPIC: &str = "bench-topic-000000";
/// How long after its registration the idle phase's broker is still listed, with a margin,
/// seconds.
const IDLE_HELD: u64 = 110;
/// One route query every this long.
const PRODUCER_EVERY: Duration = Duration::from_millis(10);
/// Time for every registrar to be registered once a phase starts; a NameServer that cannot
/// take them all is measured as it is, with fewer.
const SETTLE: Duration = Duration::from_secs(180);

/// What one phase measured.
struct Row {
    label: String,
    /// The NameServer's CPU over the window, % of one core.
    ns_cpu: Option<f64>,
    /// Its VmRSS at the window's end and VmHWM, KiB.
    ns_rss: Option<(u64, u64)>,
    lat: Latency,
    /// This process's CPU over the window without the producer's thread, % of one core.
    bench_cpu: Option<f64>,
    /// This process's VmRSS at the window's end, KiB.
    bench_rss: u64,
    /// Summed over the registrars, over the window.
    sent: Sent,
    /// Brokers the NameServer listed when the window began.
    listed: usize,
}

/// Route-query latencies of a window, and the brokers in the routes.
#[derive(Default)]
struct Latency {
    /// Every query's time, the failed ones' (an error or no reply in 10 s) included.
    sorted: Vec<Duration>,
    failed: usize,
    /// Fewest and most brokers in one route answer.
    brokers: Option<(usize, usize)>,
}

impl Latency {
    fn pct(&self, p: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        let i = ((n as f64 * p) as usize).min(n - 1);
        self.sorted[i].as_secs_f64() * 1e3
    }
}

/// What the registrars sent over a window (from their /metrics).
#[derive(Default, Clone, Copy)]
struct Sent {
    full: f64,
    current: f64,
    beats: f64,
    audits: f64,
}

impl std::ops::Sub for Sent {
    type Output = Sent;
    fn sub(self, o: Sent) -> Sent {
        Sent {
            full: self.full - o.full,
            current: self.current - o.current,
            beats: self.beats - o.beats,
            audits: self.audits - o.audits,
        }
    }
}

/// Runs the phases and prints the table.
pub async fn run(args: Args) -> Result<(), BoxError> {
    check_bounds(&args)?;
    let dir = tempfile::tempdir()?;
    let topics_file = dir.path().join("topics.json");
    std::fs::write(&topics_file, java_topics_json(args.topics))?;
    println!(
        "\nfleet: {} registrars x {} topics, register.interval = {:?}, {} s per window, {}",
        args.brokers,
        args.topics,
        args.interval,
        args.secs,
        args.namesrv
            .as_deref()
            .map_or("a fresh rocketmq-namesrv-rust per phase".to_string(), |a| {
                format!("NameServer {a}")
            })
    );
    let mut rows: Vec<Row> = idle_phase(&args).await?.into_iter().collect();
    let has_idle = !rows.is_empty();
    for mode in args.modes.clone() {
        let deadline = SETTLE + args.interval * 2 + Duration::from_secs(args.secs + 120);
        let row = tokio::time::timeout(deadline, fleet_phase(&args, mode, &topics_file))
            .await
            .map_err(|_| format!("{mode:?}: the phase took longer than {deadline:?}"))??;
        println!(
            "{mode:?}: NameServer {} of a core, route p99 {:.2} ms, this process {}",
            row.ns_cpu.map_or("-".into(), |c| format!("{c:.1} %")),
            row.lat.pct(0.99),
            row.bench_cpu.map_or("-".into(), |c| format!("{c:.1} %")),
        );
        rows.push(row);
    }
    print_rows(&args, has_idle, &rows);
    Ok(())
}

fn check_bounds(args: &Args) -> Result<(), BoxError> {
    if !(1..=MAX_BROKERS).contains(&args.brokers) {
        return Err(format!("BROKERS must be 1..={MAX_BROKERS}").into());
    }
    if !(1..=MAX_TOPICS).contains(&args.topics) {
        return Err(format!("TOPICS must be 1..={MAX_TOPICS}").into());
    }
    if args.brokers * args.topics > MAX_BROKER_TOPICS {
        return Err(format!("BROKERS x TOPICS must be at most {MAX_BROKER_TOPICS}").into());
    }
    if !(10..=600).contains(&args.secs) {
        return Err("--secs must be 10..=600".into());
    }
    if !(Duration::from_secs(10)..=Duration::from_secs(60)).contains(&args.interval) {
        return Err("--interval must be 10s..=60s (the daemon's range)".into());
    }
    Ok(())
}

/// The NameServer of a phase: started here (and stopped when dropped), or the one given.
struct Target {
    addr: String,
    pid: Option<u32>,
    _own: Option<Namesrv>,
}

async fn target(args: &Args, probe: &RemotingClient) -> Result<Target, BoxError> {
    Ok(match &args.namesrv {
        Some(addr) => Target {
            addr: addr.clone(),
            pid: args.namesrv_pid,
            _own: None,
        },
        None => {
            let ns = start_namesrv(probe).await?;
            Target {
                addr: ns.1.clone(),
                pid: Some(ns.0.id()),
                _own: Some(ns),
            }
        }
    })
}

/// Broker `i`'s identity: its own name and address in one cluster.
fn identity(i: usize) -> BrokerIdentity {
    let addr = broker_ip(i);
    BrokerIdentity {
        cluster: "FleetCluster".into(),
        name: format!("fleet-b{i:04}"),
        id: 0,
        addr: format!("{addr}:10911"),
        ha_addr: format!("{addr}:10912"),
        zone: None,
    }
}

/// An address nobody dials (the brokers are not checked): 10.9.x.y.
fn broker_ip(i: usize) -> String {
    format!("10.9.{}.{}", i / 250, 1 + i % 250)
}

/// The NameServer holding every broker's table, registered once, and nothing else but the
/// producer: the route latency and CPU the registrars' rows are compared with.
async fn idle_phase(args: &Args) -> Result<Option<Row>, BoxError> {
    let probe = RemotingClient::new(ClientConfig::default(), None);
    let ns = target(args, &probe).await?;
    let api = BrokerApi::new(probe.clone());
    let table = wrapper(args.topics);
    // Held for the whole window without a second registration (a busy NameServer may take
    // seconds over one).
    let opts = RegisterOptions {
        timeout: Duration::from_secs(60),
        heartbeat_timeout: Some(Duration::from_secs(1800)),
        ..RegisterOptions::default()
    };
    let started = Instant::now();
    let mut registered = 0;
    for i in 0..args.brokers {
        if started.elapsed() + Duration::from_secs(10) > Duration::from_secs(IDLE_HELD) {
            break;
        }
        registered += 1;
        let mut w = table.clone();
        w.data_version = DataVersion::now();
        let out = api
            .register_to(
                std::slice::from_ref(&ns.addr),
                &identity(i),
                &Arc::new(w),
                &opts,
            )
            .await;
        if let Some(Err(e)) = out.per_namesrv.first().map(|o| &o.result) {
            return Err(format!("registering broker {i}: {e}").into());
        }
    }
    println!(
        "idle: {registered} of {} brokers registered once in {:.1} s",
        args.brokers,
        started.elapsed().as_secs_f64()
    );
    // The Rust NameServer drops a broker 120 s after its last registration whatever
    // heartbeatTimeoutMillis asks for (measured: a 310 s window saw the routes go at ~120 s):
    // the window ends before the first broker registered goes.
    let left = Duration::from_secs(IDLE_HELD).saturating_sub(started.elapsed());
    let window = Duration::from_secs(args.secs).min(left);
    if window < Duration::from_secs(10) {
        println!(
            "idle: not measured: {} brokers registered one at a time would take longer than the NameServer holds the first ({:.0} s spent)",
            args.brokers,
            started.elapsed().as_secs_f64()
        );
        return Ok(None);
    }
    let label = "the NameServer idle (the table registered once)";
    let row = measure(&ns, window, label, args.brokers, || async {
        Ok(Sent::default())
    })
    .await?;
    println!("idle: measured over {window:?}");
    if args.namesrv.is_some() {
        for i in 0..args.brokers {
            let _ = api
                .unregister_from(
                    std::slice::from_ref(&ns.addr),
                    &identity(i),
                    Duration::from_secs(3),
                )
                .await;
        }
    }
    Ok(Some(row))
}

/// One registrar: its stop and its metrics address.
struct Registrar {
    stop: oneshot::Sender<()>,
    http: String,
}

/// BROKERS daemons in `mode` against a NameServer, measured once all are registered and one
/// interval has passed; then all stopped (each unregisters).
async fn fleet_phase(args: &Args, mode: Mode, topics: &Path) -> Result<Row, BoxError> {
    let probe = RemotingClient::new(ClientConfig::default(), None);
    let ns = target(args, &probe).await?;
    let dir = tempfile::tempdir()?;
    let mut running = JoinSet::new();
    let mut fleet = Vec::with_capacity(args.brokers);
    let started = Instant::now();
    for i in 0..args.brokers {
        let (r, stopped) = start_registrar(args, mode, i, topics, &ns.addr, dir.path())?;
        running.spawn(stopped);
        fleet.push(r);
    }
    let listed = wait_registered(&probe, &ns.addr, args.brokers).await;
    println!(
        "{mode:?}: {} registrars started, {listed} listed by the NameServer after {:.1} s",
        args.brokers,
        started.elapsed().as_secs_f64()
    );
    // The start's burst (every registrar's first full round at once) is left out.
    tokio::time::sleep(args.interval).await;
    let http = http_client()?;
    let window = Duration::from_secs(args.secs);
    let row = measure(&ns, window, mode.label(), listed, || {
        sent_total(&http, &fleet)
    })
    .await;
    for r in fleet {
        let _ = r.stop.send(());
    }
    while let Some(done) = running.join_next().await {
        done??;
    }
    row
}

/// Starts broker `i`'s daemon; the future to await is its `daemon::run`.
fn start_registrar(
    args: &Args,
    mode: Mode,
    i: usize,
    topics: &Path,
    namesrv: &str,
    dir: &Path,
) -> Result<
    (
        Registrar,
        impl std::future::Future<Output = Result<(), String>> + Send + 'static,
    ),
    BoxError,
> {
    let id = identity(i);
    let http = listen_addr(i)?;
    let cfg = format!(
        "[broker]\ncluster = {:?}\nname = {:?}\naddr = {:?}\n[broker.health]\ncheck = \"none\"\n\
         [broker.topics]\nfile = {topics:?}\n[namesrv]\naddrs = [{namesrv:?}]\n\
         [register]\ninterval = \"{}s\"\n{}[http]\nlisten = \"{http}\"\n",
        id.cluster,
        id.name,
        id.addr,
        args.interval.as_secs(),
        mode.keys(),
    );
    let path: PathBuf = dir.join(format!("{}.toml", id.name));
    std::fs::write(&path, cfg)?;
    let loaded = rmq_registrar::config::load(Some(&path))?;
    let start = daemon::settings::InForce::new(loaded)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let controls = Box::pin(futures_util::stream::once(async move {
        let _ = stopped.await;
        Control::Stop
    }));
    let run = async move {
        daemon::run(start, None, controls)
            .await
            .map_err(|e| e.to_string())
    };
    Ok((Registrar { stop, http }, run))
}

/// A free port for registrar `i`'s HTTP listener, below the kernel's ephemeral range (32768 and
/// up by default): there the fleet's own outgoing connections and the NameServers cannot take
/// it between this check and the daemon's bind.
fn listen_addr(i: usize) -> Result<String, BoxError> {
    let first = 20_000 + i * 8;
    (first..first + 8)
        .map(|port| format!("127.0.0.1:{port}"))
        .find(|a| std::net::TcpListener::bind(a).is_ok())
        .ok_or_else(|| format!("no free port in {first}..{}", first + 8).into())
}

/// Waits until the NameServer lists `n` brokers, at most [`SETTLE`]; how many it lists.
async fn wait_registered(probe: &RemotingClient, ns: &str, n: usize) -> usize {
    let api = BrokerApi::new(probe.clone());
    let t0 = Instant::now();
    let mut seen = 0;
    while t0.elapsed() < SETTLE {
        if let Ok(table) = api.cluster_brokers(ns, Duration::from_secs(10)).await {
            seen = table.len();
            if seen >= n {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

/// Full registrations, skipped ones, heartbeats and read-backs summed over the fleet.
async fn sent_total(http: &reqwest::Client, fleet: &[Registrar]) -> Result<Sent, BoxError> {
    let mut total = Sent::default();
    for r in fleet {
        let text = http
            .get(format!("http://{}/metrics", r.http))
            .send()
            .await?
            .text()
            .await?;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let v: f64 = value.parse().unwrap_or(0.0);
            let slot = if series.starts_with("rmq_registrar_registrations_total") {
                if series.contains("outcome=\"ok\"") {
                    &mut total.full
                } else if series.contains("outcome=\"current\"") {
                    &mut total.current
                } else {
                    continue;
                }
            } else if series.starts_with("rmq_registrar_heartbeats_total") {
                &mut total.beats
            } else if series.starts_with("rmq_registrar_route_audits_total") {
                &mut total.audits
            } else {
                continue;
            };
            *slot += v;
        }
    }
    Ok(total)
}

/// Measures a window of `len`: the NameServer's and this process's CPU, the producer's
/// latencies, and `sent` read at either end (outside the CPU window).
async fn measure<F, Fut>(
    ns: &Target,
    len: Duration,
    label: &str,
    listed: usize,
    sent: F,
) -> Result<Row, BoxError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Sent, BoxError>>,
{
    let hz = clock_ticks_per_second();
    let me = std::process::id();
    let before = sent().await?;
    let producer = Producer::start(ns.addr.clone(), len)?;
    let (ns0, me0, t0) = (ns.pid.map(cpu_ticks), cpu_ticks(me), Instant::now());
    let (lat, producer_ticks) = producer.finish().await?;
    let (ns1, me1, took) = (ns.pid.map(cpu_ticks), cpu_ticks(me), t0.elapsed());
    let after = sent().await?;
    let secs = took.as_secs_f64();
    let pct = |ticks: u64| ticks as f64 / hz / secs * 100.0;
    Ok(Row {
        label: label.to_string(),
        ns_cpu: ns0.zip(ns1).map(|(a, b)| pct(b.saturating_sub(a))),
        ns_rss: ns.pid.map(rss_kib),
        lat,
        bench_cpu: Some(pct((me1 - me0).saturating_sub(producer_ticks))),
        bench_rss: rss_kib(me).0,
        sent: after - before,
        listed,
    })
}

/// The producer: route queries from a thread and runtime of its own, so that the registrars'
/// work in this process does not delay them (the machine's two cores are still shared).
struct Producer(std::thread::JoinHandle<Result<(Latency, u64), String>>);

impl Producer {
    fn start(ns: String, len: Duration) -> Result<Producer, BoxError> {
        let handle = std::thread::Builder::new()
            .name("producer".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(produce(ns, len))
            })?;
        Ok(Producer(handle))
    }

    /// Its latencies and its thread's CPU ticks.
    async fn finish(self) -> Result<(Latency, u64), BoxError> {
        let joined = tokio::task::spawn_blocking(move || self.0.join()).await?;
        let out = joined.map_err(|_| "the producer thread panicked")?;
        Ok(out?)
    }
}

/// GET_ROUTEINFO_BY_TOPIC every [`PRODUCER_EVERY`] for `len`, one at a time.
async fn produce(ns: String, len: Duration) -> Result<(Latency, u64), String> {
    let c = RemotingClient::new(ClientConfig::default(), None);
    let query = || {
        RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC)
            .with_field("topic", PRODUCER_TOPIC)
    };
    // Connected before the window (a NameServer too busy to answer is measured as it is).
    let _ = c
        .invoke_sync(Some(&ns), query(), Duration::from_secs(10))
        .await;
    let ticks0 = thread_ticks();
    let mut lat = Latency::default();
    let t0 = Instant::now();
    let mut next = tokio::time::Instant::now();
    while t0.elapsed() < len {
        let t = Instant::now();
        match c
            .invoke_sync(Some(&ns), query(), Duration::from_secs(10))
            .await
        {
            Ok(r) if r.code == 0 => {
                lat.sorted.push(t.elapsed());
                let n = brokers_in(r.body.as_deref().unwrap_or_default());
                let (lo, hi) = lat.brokers.unwrap_or((n, n));
                lat.brokers = Some((lo.min(n), hi.max(n)));
            }
            // A producer waited that long too: in the percentiles, and counted.
            _ => {
                lat.sorted.push(t.elapsed());
                lat.failed += 1;
            }
        }
        next += PRODUCER_EVERY;
        tokio::time::sleep_until(next).await;
    }
    lat.sorted.sort_unstable();
    Ok((lat, thread_ticks().saturating_sub(ticks0)))
}

/// Brokers in a route answer: one `brokerAddrs` per broker (the body is fastjson, whose bare
/// numeric keys a JSON parser refuses; this count needs no parse).
fn brokers_in(body: &[u8]) -> usize {
    const KEY: &[u8] = b"\"brokerAddrs\"";
    body.windows(KEY.len()).filter(|w| *w == KEY).count()
}

/// This thread's user + system CPU, in clock ticks.
fn thread_ticks() -> u64 {
    super::stat_ticks(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default())
}

/// The table; the first row is the idle NameServer's when `has_idle` (the others are compared
/// with it).
fn print_rows(args: &Args, has_idle: bool, rows: &[Row]) {
    let first = rows.first().filter(|_| has_idle);
    let idle = first.and_then(|r| r.ns_cpu);
    let idle_p99 = first.map(|r| r.lat.pct(0.99));
    let idle_bench = first.and_then(|r| r.bench_cpu);
    let full = rows
        .iter()
        .find(|r| r.label == Mode::Full.label())
        .and_then(|r| r.ns_cpu);
    println!(
        "\n| phase | NameServer CPU (% of a core) | due to the registrars | vs full | NameServer RSS / peak | brokers listed / in routes | route query p50 / p99 / max | p99 vs idle | this process's CPU | registrars' CPU per registrar | bench RSS per registrar | full registrations / skipped / heartbeats / read-backs per s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (n, r) in rows.iter().enumerate() {
        let fleet = !(has_idle && n == 0);
        let due = r.ns_cpu.zip(idle).map(|(c, i)| c - i);
        let vs_full = due
            .zip(full.zip(idle).map(|(f, i)| f - i))
            .filter(|_| fleet)
            .map_or("-".to_string(), |(d, f)| format!("{:.2}x", d / f));
        let per = r
            .bench_cpu
            .zip(idle_bench)
            .filter(|_| fleet)
            .map_or("-".to_string(), |(c, i)| {
                format!("{:.4} %", (c - i).max(0.0) / args.brokers as f64)
            });
        let secs = args.secs as f64;
        println!(
            "| {} | {} | {} | {vs_full} | {} | {} | {:.2} / {:.2} / {:.2} ms{} | {} | {} | {per} | {} | {} |",
            r.label,
            r.ns_cpu.map_or("-".into(), |c| format!("{c:.1} %")),
            due.filter(|_| fleet).map_or("-".into(), |d| format!("{d:.1} %")),
            r.ns_rss.map_or("-".into(), |(a, b)| format!(
                "{:.0} / {:.0} MiB",
                a as f64 / 1024.0,
                b as f64 / 1024.0
            )),
            match r.lat.brokers {
                Some((lo, hi)) if lo == hi => format!("{} / {lo}", r.listed),
                Some((lo, hi)) => format!("{} / {lo}-{hi}", r.listed),
                None => format!("{} / -", r.listed),
            },
            r.lat.pct(0.5),
            r.lat.pct(0.99),
            r.lat.sorted.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
            if r.lat.failed > 0 {
                format!(" ({} failed)", r.lat.failed)
            } else {
                String::new()
            },
            idle_p99
                .filter(|_| fleet)
                .map_or("-".into(), |i| format!("{:.2}x", r.lat.pct(0.99) / i)),
            r.bench_cpu.map_or("-".into(), |c| format!("{c:.2} %")),
            if fleet {
                format!("{:.0} KiB", r.bench_rss as f64 / args.brokers as f64)
            } else {
                "-".into()
            },
            if fleet {
                format!(
                    "{:.2} / {:.2} / {:.1} / {:.1}",
                    r.sent.full / secs,
                    r.sent.current / secs,
                    r.sent.beats / secs,
                    r.sent.audits / secs
                )
            } else {
                "-".into()
            },
        );
    }
}
