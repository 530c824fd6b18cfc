//! The command line's work: the daemon, `check-config` and the one-shot commands.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Cli, Cmd};
use crate::config::{self, Config, LogFormat};
use crate::daemon;
use crate::daemon::settings::InForce;

/// Prints a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod check_config;
mod drain;
mod exit;
mod oneshot;
mod status;

use exit::EXIT_CONFIG;

/// Runs the command `cli` asks for: the daemon, or a one-shot command.
pub fn main(cli: Cli) -> ExitCode {
    // Sources of their own, above the environment, so that a message names the flag the
    // operator typed; kept for every SIGHUP reload. Set before the first load.
    config::set_command_line(config::CommandLine {
        broker: cli.broker.clone(),
        broker_conf: cli.broker_conf.clone(),
    });
    // Copying the binary needs no configuration (an init container has none).
    if let Some(Cmd::CopyTo { dir }) = &cli.command {
        return copy_to(dir);
    }
    // A one-shot pull and a drain request need no broker identity and no NameServers (a
    // Kubernetes broker's preStop drains with the sidecar's file, whose identity is the
    // broker's own at run time).
    let load = match cli.command {
        Some(Cmd::Pull { .. } | Cmd::Drain { .. }) => config::load_for_pull,
        _ => config::load,
    };
    let mut loaded = match load(cli.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rmq-registrar: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // The daemon and check-config read the drain's token file as the daemon will: a file that
    // cannot be read or is blank fails here, not at the first drain. (The one-shot commands
    // do not drain, and may run as a user who cannot read it.)
    if matches!(cli.command, None | Some(Cmd::Run | Cmd::CheckConfig { .. })) {
        if let Err(e) = daemon::drain::contract::check_at_load(&loaded) {
            eprintln!("rmq-registrar: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    if let Some(Cmd::CheckConfig { toml, show_secrets }) = cli.command {
        // The TLS files are read as the daemon would read them: a bad one fails here too.
        let cfg = match InForce::new(loaded.clone()) {
            Ok(cfg) => cfg,
            Err(e) => {
                eprintln!("rmq-registrar: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        for w in &loaded.warnings {
            eprintln!("rmq-registrar: warning: {w}");
        }
        if toml {
            return check_config::print_toml(&loaded, show_secrets);
        }
        let broker = check_config::from_broker(&cfg);
        check_config::print_config(&loaded, &broker, show_secrets);
        return ExitCode::SUCCESS;
    }
    let warnings = std::mem::take(&mut loaded.warnings);
    let cfg = match InForce::new(loaded) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("rmq-registrar: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(&cfg);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rmq-registrar: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        match cli.command.unwrap_or(Cmd::Run) {
            Cmd::Run | Cmd::CheckConfig { .. } => run(cfg, cli.config).await,
            // Answered above, before any configuration is read.
            Cmd::CopyTo { dir } => copy_to(&dir),
            Cmd::Resolve => oneshot::resolve(&cfg).await,
            Cmd::Unregister => oneshot::unregister(&cfg).await,
            Cmd::Status { json, any, topics } => status::status(&cfg, json, any, topics).await,
            Cmd::Drain {
                wait,
                cancel,
                token_file,
            } => {
                let ask = drain::Ask {
                    wait: wait.as_deref(),
                    cancel,
                    token_file: token_file.as_deref(),
                };
                drain::drain(&cfg, ask).await
            }
            Cmd::Pull {
                master,
                out,
                no_vip_channel,
            } => {
                // The flag can only turn the VIP channel off; the file may have done so already.
                let vip = cfg.slave.vip_channel && !no_vip_channel;
                oneshot::pull(&cfg, &master, &out, vip).await
            }
        }
    });
    // A topics parse still running on a blocking thread must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

/// `copy-to DIR`: this executable as `DIR/rmq-registrar`, written atomically (a container
/// that starts meanwhile finds the old file or the whole new one).
fn copy_to(dir: &std::path::Path) -> ExitCode {
    let copied = std::env::current_exe()
        .and_then(std::fs::read)
        .and_then(|bytes| {
            daemon::files::write_atomic_mode(&dir.join("rmq-registrar"), &bytes, 0o755)
        });
    match copied {
        Ok(()) => {
            say!("{}", dir.join("rmq-registrar").display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "rmq-registrar: cannot copy this executable into {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// How long an idle blocking thread waits for more work before it exits.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// The daemon's runtime: one thread for every async task, plus blocking threads that exist
/// only while a parse, an encode or a file write runs.
///
/// Why one async thread: the async side only moves small frames and answers HTTP; everything
/// that takes CPU (topics parse, body encode and compression, fsync) is already on blocking
/// threads. The multi-thread scheduler cost an idle daemon two worker stacks and, through
/// its poll-time average (`f64::powf`), all of libm mapped (~0.5 MiB of RSS) for one function:
/// measured in the README's Performance section. Blocking threads live `BLOCKING_KEEP_ALIVE`
/// instead of tokio's 10 s, so that between rounds (10-60 s apart) a round's are not left
/// holding stacks; it is over the topics file's 2 s look and the broker check's 3 s, so those
/// reuse one or two threads instead of making a new one each time.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .enable_all()
        .build()
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

async fn run(cfg: InForce, path: Option<PathBuf>) -> ExitCode {
    let controls = match daemon::signals() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    match daemon::run(cfg, path, controls).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::FAILURE
        }
    }
}
