//! rmq-registrar: command line, config, logging; the work is in the library.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cli::{Cli, Cmd};
use rmq_registrar::config::{self, Config, LogFormat};
use rmq_registrar::daemon::{self, slave};

/// Prints a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Exit code for a bad configuration.
const EXIT_CONFIG: u8 = 2;

/// glibc keeps freed multi-MB registration bodies in per-thread arenas, and its dynamic mmap
/// threshold moves big blocks onto the heap after the first free: RSS then ratchets up with
/// every round. A fixed 1 MiB threshold (big bodies are mmapped and given back on free) and
/// two arenas keep the footprint flat (measured in tests/daemon_faults.rs).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    if let Some(p) = &cli.broker_conf {
        // The same as RMQ_REGISTRAR_BROKER__CONF_FILE, so that a SIGHUP reload reads it too.
        // Set before any other thread exists.
        std::env::set_var("RMQ_REGISTRAR_BROKER__CONF_FILE", p);
    }
    if let Some(addr) = &cli.broker {
        // As the environment would say it (so that a SIGHUP reload keeps it). Set before any
        // other thread exists.
        std::env::set_var("RMQ_REGISTRAR_BROKER__IDENTITY", "broker");
        std::env::set_var("RMQ_REGISTRAR_BROKER__HEALTH__ADDR", addr);
        std::env::set_var("RMQ_REGISTRAR_BROKER__TOPICS__SOURCE", "broker");
    }
    // A one-shot pull needs no broker identity and no NameServers.
    let load = match cli.command {
        Some(Cmd::Pull { .. }) => config::load_for_pull,
        _ => config::load,
    };
    let loaded = match load(cli.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rmq-registrar: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(Cmd::CheckConfig { toml, show_secrets }) = cli.command {
        for w in &loaded.warnings {
            eprintln!("rmq-registrar: warning: {w}");
        }
        if toml {
            return print_toml(&loaded.config, show_secrets);
        }
        let broker = from_broker(&loaded.config);
        let mut flags = Vec::new();
        if cli.broker_conf.is_some() {
            flags.push(("broker.conf_file", "--broker-conf"));
        }
        if cli.broker.is_some() {
            for key in [
                "broker.identity",
                "broker.health.addr",
                "broker.topics.source",
            ] {
                flags.push((key, "--broker"));
            }
        }
        print_config(&loaded, &broker, show_secrets, &flags);
        return ExitCode::SUCCESS;
    }
    init_logging(&loaded.config);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rmq-registrar: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        match cli.command.unwrap_or(Cmd::Run) {
            Cmd::Run | Cmd::CheckConfig { .. } => run(loaded, cli.config).await,
            Cmd::Resolve => resolve(&loaded.config).await,
            Cmd::Unregister => unregister(&loaded.config).await,
            Cmd::Status { json } => status(&loaded.config, json).await,
            Cmd::Pull {
                master,
                out,
                no_vip_channel,
            } => {
                // The flag can only turn the VIP channel off; the file may have done so already.
                let vip = loaded.config.slave.vip_channel && !no_vip_channel;
                pull(&loaded.config, &master, &out, vip).await
            }
        }
    });
    // A topics parse still running on a blocking thread must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

fn init_logging(cfg: &Config) {
    // log.level was parsed when the config was loaded; "info" is only a fallback.
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cfg.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(loaded: config::Loaded, path: Option<PathBuf>) -> ExitCode {
    let controls = match daemon::signals() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    match daemon::run(loaded, path, controls).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::FAILURE
        }
    }
}

/// With the identity from the broker, the values it gives now, by config key (those the
/// operator set are not asked); or why it could not be asked.
type BrokerValues = Option<(String, Result<Vec<(&'static str, String)>, String>)>;

/// Asks the broker (identity from the broker) for what `check-config` shows as its values.
fn from_broker(cfg: &Config) -> BrokerValues {
    if cfg.broker.identity != config::IdentitySource::Broker {
        return None;
    }
    let addr = cfg.broker_check_addr().to_string();
    let ask = async {
        let api = daemon::build_api(cfg, None).map_err(|e| config::error_chain(&e))?;
        let r = api
            .broker_report(&addr, cfg.broker.health.timeout.max(Duration::from_secs(1)))
            .await;
        api.client().shutdown();
        r.map_err(|e| e.to_string())
    };
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(ask));
    let values = report.map(|r| {
        let q = |s: &str| format!("{s:?}");
        let mut v = vec![
            ("broker.cluster", q(&r.cluster)),
            ("broker.name", q(&r.name)),
            (
                "broker.id",
                r.id.map_or("-1 (no id yet: no election yet)".into(), |i| i.to_string()),
            ),
            ("broker.addr", q(&r.addr)),
            ("broker.ha_addr", q(&r.ha_addr)),
        ];
        if let Some(p) = r.permission {
            v.push(("broker.permission", p.to_string()));
        }
        if let Some(n) = r.split_size {
            v.push(("register.split_size", n.to_string()));
        }
        if let Some(b) = r.always_split {
            v.push(("register.always_split", b.to_string()));
        }
        if cfg.namesrv.addrs.is_empty() && cfg.address_server_url().is_none() {
            v.push(("namesrv.addrs", format!("{:?}", r.namesrv_addrs)));
        }
        v.retain(|(k, _)| !cfg.pinned.contains(*k));
        v
    });
    Some((addr, values))
}

fn print_config(
    loaded: &config::Loaded,
    broker: &BrokerValues,
    show_secrets: bool,
    flags: &[(&str, &'static str)],
) {
    let value = serde_json::to_value(&loaded.config).unwrap_or_default();
    let mut lines = Vec::new();
    leaves("", &value, &mut lines);
    for (key, val) in lines {
        // main turns --broker-conf and --broker into environment variables (so that SIGHUP
        // reads them too); the operator typed the flag, so name that.
        let flag = flags.iter().find(|(k, _)| *k == key).map(|(_, f)| *f);
        let source = match (flag, loaded.figment.find_metadata(&key)) {
            (Some(f), _) => f.to_string(),
            (None, Some(meta)) => config::describe_key(meta, &key),
            (None, None) => "built-in default".into(),
        };
        let (val, source) = match broker {
            Some((addr, Ok(values))) => match values.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => (v.clone(), format!("the broker at {addr}")),
                None => (val, source),
            },
            Some((addr, Err(why)))
                if config::FROM_BROKER.contains(&key.as_str())
                    && !loaded.config.pinned.contains(&key) =>
            {
                (
                    val,
                    format!("the broker at {addr} at run time (cannot ask it now: {why})"),
                )
            }
            _ => (val, source),
        };
        // An unset key with a derived default: what it resolves to says more than `null`.
        let (val, source) = match derived(&loaded.config, &key) {
            Some((value, from)) if val == "null" => (value.to_string(), from.to_string()),
            _ => (val, source),
        };
        let (val, source) =
            if config::SECRET_KEYS.contains(&key.as_str()) && val != "null" && !show_secrets {
                (
                    "\"***\"".to_string(),
                    format!("{source}; --show-secrets prints it"),
                )
            } else {
                (val, source)
            };
        say!("{key} = {val}    # {source}");
    }
}

/// What an unset key with a derived default resolves to, and from what.
fn derived(cfg: &Config, key: &str) -> Option<(serde_json::Value, &'static str)> {
    Some(match key {
        "broker.ha_addr" => (
            cfg.ha_addr().into(),
            "derived: host of broker.addr, port + 1",
        ),
        "broker.health.addr" => (cfg.broker_check_addr().into(), "derived: broker.addr"),
        "broker.health.tls" => (cfg.broker_tls().into(), "derived: tls.enable"),
        _ => return None,
    })
}

/// The effective configuration as a TOML file that loads back to it. Secrets are left out
/// unless asked for: the file is meant to be kept, and the secret belongs in the environment.
fn print_toml(cfg: &Config, show_secrets: bool) -> ExitCode {
    let mut shown = cfg.clone();
    let mut left_out = Vec::new();
    if !show_secrets {
        for (key, slot) in [
            ("acl.secret_key", &mut shown.acl.secret_key),
            ("acl.security_token", &mut shown.acl.security_token),
        ] {
            if slot.take().is_some() {
                left_out.push(key);
            }
        }
    }
    match toml::to_string(&shown) {
        Ok(text) => {
            for key in left_out {
                let var = config::env_var(key);
                say!("# {key} left out: set {var}, or print it with --show-secrets");
            }
            say!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rmq-registrar: cannot write the configuration as TOML: {e}");
            ExitCode::FAILURE
        }
    }
}

fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&key, child, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

async fn name_servers(cfg: &Config) -> Result<Vec<String>, String> {
    if let Some(url) = cfg.address_server_url() {
        let server = cfg
            .address_server(url, Duration::from_secs(3))
            .map_err(|e| e.to_string())?;
        match server.fetch().await {
            Ok(list) => return Ok(list),
            Err(e) if cfg.namesrv.addrs.is_empty() => return Err(e.to_string()),
            Err(e) => eprintln!("address server failed ({e}); using namesrv.addrs"),
        }
    }
    Ok(cfg.namesrv.addrs.clone())
}

async fn resolve(cfg: &Config) -> ExitCode {
    match name_servers_or_exit(cfg).await {
        Ok(list) => {
            for a in list {
                say!("{a}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The NameServer list, or the exit code after saying why there is none.
async fn name_servers_or_exit(cfg: &Config) -> Result<Vec<String>, ExitCode> {
    name_servers(cfg).await.map_err(|e| {
        eprintln!("rmq-registrar: {e}");
        ExitCode::FAILURE
    })
}

/// Exit for a TLS client that cannot be built (the config's key and why).
fn tls_failed(e: &rmq_registrar::tls::TlsError) -> ExitCode {
    eprintln!("rmq-registrar: `{}`: {}", e.key(), config::error_chain(e));
    ExitCode::from(EXIT_CONFIG)
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The identity and NameServers a one-shot command works with (identity from the broker: the
/// broker is asked), or the exit code after saying why there are none.
async fn identity_or_exit(
    cfg: &Config,
    api: &rmq_registrar::broker::BrokerApi,
) -> Result<(rmq_registrar::broker::BrokerIdentity, Vec<String>), ExitCode> {
    let broker = cfg.broker_check_addr();
    let (id, from_broker) = match daemon::identity_now(cfg, api).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            eprintln!("rmq-registrar: the broker at {broker} has no id yet (no election yet)");
            return Err(ExitCode::FAILURE);
        }
        Err(e) => {
            eprintln!("rmq-registrar: cannot ask the broker at {broker} who it is: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let mut addrs = name_servers_or_exit(cfg).await?;
    if addrs.is_empty() {
        addrs = from_broker;
    }
    Ok((id, addrs))
}

async fn unregister(cfg: &Config) -> ExitCode {
    let api = match daemon::build_api(cfg, None) {
        Ok(a) => a,
        Err(e) => return tls_failed(&e),
    };
    let (id, addrs) = match identity_or_exit(cfg, &api).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    let outcomes = api.unregister_from(&addrs, &id, cfg.register.timeout).await;
    let mut failed = false;
    for o in outcomes {
        match o.result {
            Ok(()) => say!("{}\tok\t{}ms", o.addr, o.elapsed.as_millis()),
            Err(e) => {
                failed = true;
                say!("{}\terror\t{e}", o.addr);
            }
        }
    }
    api.client().shutdown();
    exit_code(!failed)
}

async fn status(cfg: &Config, json: bool) -> ExitCode {
    let api = match daemon::build_api(cfg, None) {
        Ok(a) => a,
        Err(e) => return tls_failed(&e),
    };
    let (id, addrs) = match identity_or_exit(cfg, &api).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    let mut all_seen = true;
    for addr in addrs {
        let (registered, detail) = match api.cluster_brokers(&addr, cfg.register.timeout).await {
            Ok(table) => match table.get(&id.name) {
                Some(b) => (true, b.get("brokerAddrs").cloned().unwrap_or_default()),
                None => (false, serde_json::Value::Null),
            },
            Err(e) => (false, serde_json::Value::String(e.to_string())),
        };
        all_seen &= registered;
        if json {
            let line = serde_json::json!({
                "namesrv": addr,
                "broker": id.name,
                "registered": registered,
                "brokerAddrs": if registered { detail.clone() } else { serde_json::Value::Null },
                "error": if detail.is_string() { detail.clone() } else { serde_json::Value::Null },
            });
            say!("{line}");
            continue;
        }
        let line = match (registered, &detail) {
            (true, addrs) => format!("registered {addrs}"),
            (false, serde_json::Value::String(e)) => format!("error {e}"),
            (false, _) => "not registered".to_string(),
        };
        say!("{addr}\t{}\t{line}", id.name);
    }
    api.client().shutdown();
    exit_code(all_seen)
}

async fn pull(cfg: &Config, master: &str, out: &std::path::Path, vip: bool) -> ExitCode {
    let api = match daemon::build_api(cfg, None) {
        Ok(a) => a,
        Err(e) => return tls_failed(&e),
    };
    let mode = cfg
        .slave_file_mode()
        .unwrap_or(rmq_registrar::daemon::files::DEFAULT_MODE);
    let (results, _) =
        slave::pull_all(&api, master, vip, Some((out, mode)), cfg.register.timeout).await;
    let mut failed = false;
    for r in results {
        match r.result {
            Ok(true) => say!("{}\twritten\t{}", r.kind, out.join(r.file).display()),
            Ok(false) => say!("{}\tunchanged\t{}", r.kind, out.join(r.file).display()),
            Err(e) => {
                failed = true;
                say!("{}\terror\t{e}", r.kind);
            }
        }
    }
    api.client().shutdown();
    exit_code(!failed)
}
