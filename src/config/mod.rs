//! Configuration: built-in defaults < NAMESRV_ADDR < broker.conf < TOML file <
//! `RMQ_REGISTRAR_*` environment < command line (`--broker`, `--broker-conf`).
//!
//! `model.rs` and `broker_section.rs` hold the types and their defaults, `serde_helpers.rs` how
//! their special values are written, `load.rs` the source stack, `validate.rs` every check a
//! type cannot make (every range in one style), `brokerconf.rs` the broker's own properties file
//! as a source, `pinned.rs` which values the operator set (and which keys can be),
//! `error.rs` the error they all return. The configuration is plain data: the daemon turns it
//! into each component's settings (`daemon/settings.rs`), and nothing below the daemon names it.

mod broker_section;
mod brokerconf;
mod error;
mod load;
mod model;
mod pinned;
mod serde_helpers;
mod validate;

pub use broker_section::{HealthCheck, IdentitySource, InlineTopic, TopicSource, TopicsConfig};
pub use error::{error_chain, ConfigError};
pub use load::{
    describe_key, env_var, load, load_for_pull, set_command_line, CommandLine, Loaded,
};
pub use model::{Combine, Config, HeaderFormat, LogFormat, ResolveFamily, SECRET_KEYS};
pub use pinned::{Pinned, FROM_BROKER};
pub use validate::TOKEN_LEFT_OUT;

// What tests and benchmarks name from outside; the daemon reaches these through their files.
#[cfg(any(test, feature = "test-util"))]
pub use {
    broker_section::{BrokerConfig, HealthConfig},
    brokerconf::local_address,
    load::{describe, figment, from_toml_str},
    model::{
        AclConfig, HttpConfig, LogConfig, NamesrvConfig, RegisterConfig,
        RemotingConfig, SlaveConfig, DEFAULT_HEARTBEAT, DEFAULT_HEARTBEAT_TIMEOUT,
        DEFAULT_MAX_REPLY_FRAME, ENV_CONFIG, ENV_PREFIX,
    },
    serde_helpers::NEVER,
    validate::{validate, Invalid},
    crate::tls::TlsConfig,
};

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error by value
mod tests;
