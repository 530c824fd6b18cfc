//! The command line, on its own so that the man page and shell completions are generated from
//! the same definition (they cannot drift from it).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Environment variable naming the TOML config file (the same as `--config`).
pub const ENV_CONFIG: &str = "RMQ_REGISTRAR_CONFIG";

/// The command line (its help text is the `about` below and each argument's doc).
#[derive(Parser)]
#[command(
    name = "rmq-registrar",
    version,
    about = "Keeps a RocketMQ broker registered with its NameServers"
)]
pub struct Cli {
    /// TOML config file.
    #[arg(long, short, global = true, env = ENV_CONFIG)]
    pub config: Option<PathBuf>,
    /// The broker's own broker.conf, read as a source below the TOML file.
    #[arg(long, global = true)]
    pub broker_conf: Option<PathBuf>,
    /// Follow the broker at ADDR (host:port): its identity, role, topics and NameServer list
    /// are read from it at run time (broker.identity = "broker").
    #[arg(long, global = true, value_name = "ADDR")]
    pub broker: Option<String>,
    /// What to do (run the daemon when absent).
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Cmd {
    /// Run the daemon (the default).
    Run,
    /// Print the effective configuration with the source of every value.
    CheckConfig {
        /// Print it as a TOML file that loads back to the same configuration.
        #[arg(long)]
        toml: bool,
        /// Include the secrets `acl.secret_key`, `acl.security_token` and `drain.token` (masked,
        /// or left out of `--toml`, otherwise).
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print the NameServer list the daemon would use.
    Resolve,
    /// Remove the configured broker from every NameServer, once.
    Unregister,
    /// Show what each NameServer routes producers to for the configured broker, and where
    /// they disagree (exit 1: a route differs, 2: a NameServer could not be asked).
    Status {
        /// One JSON object per NameServer and a summary, for scripts.
        #[arg(long)]
        json: bool,
        /// Exit 0 when at least one NameServer maps this broker's id to its address (the
        /// package's restart rule), else 1.
        #[arg(long)]
        any: bool,
        /// Also read the route of every advertised topic (16 at a time): for people, not for
        /// a loop.
        #[arg(long)]
        topics: bool,
    },
    /// Ask the running daemon to drain the broker: routed read-only on every NameServer, the
    /// answer once no producer with a fresh route writes to it (before stopping the broker).
    Drain {
        /// How long the daemon waits after the NameServers took it (default: drain.wait).
        #[arg(long, value_name = "DURATION")]
        wait: Option<String>,
        /// End the drain in force instead (the broker's true permissions are registered).
        #[arg(long)]
        cancel: bool,
        /// Read the token from this file instead of drain.token / drain.token_file (e.g.
        /// a systemd credential: `%d/drain-token`).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Copy this executable into DIR (atomically, mode 0755), for a container that runs
    /// `rmq-registrar drain` from a shared volume (a Kubernetes broker's preStop hook); reads
    /// no configuration.
    CopyTo {
        /// The directory (e.g. an emptyDir the broker container mounts).
        dir: PathBuf,
    },
    /// Pull the four documents from a master, once, and write them as the daemon does.
    Pull {
        /// Master address (host:port, its main port).
        #[arg(long)]
        master: String,
        /// Directory for topics.json, consumerOffset.json, delayOffset.json, subscriptionGroup.json.
        #[arg(long)]
        out: PathBuf,
        /// Pull topic config from the main port instead of the VIP port (main − 2).
        #[arg(long)]
        no_vip_channel: bool,
    },
}
