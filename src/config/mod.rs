//! Configuration: built-in defaults < NAMESRV_ADDR < TOML file < `RMQ_REGISTRAR_*` environment.
//!
//! `model.rs` and `broker_section.rs` hold the types and their defaults, `serde_helpers.rs` how
//! their special values are written, `load.rs` the source stack, `validate.rs` every check a
//! type cannot make (every range in one style), `brokerconf.rs` the broker's own properties file
//! as a source, `error.rs` the error they all return.

mod broker_section;
mod brokerconf;
mod error;
mod load;
mod model;
mod serde_helpers;
mod validate;

pub use broker_section::{
    BrokerConfig, HealthCheck, HealthConfig, IdentitySource, InlineTopic, TopicSource, TopicsConfig,
};
pub use brokerconf::local_address;
pub use error::{error_chain, ConfigError};
pub use load::{
    describe, describe_key, env_var, figment, from_toml_str, load, load_for_pull, Loaded,
    FROM_BROKER,
};
pub use model::{
    AclConfig, Config, HeaderFormat, HttpConfig, LogConfig, LogFormat, NamesrvConfig,
    RegisterConfig, RemotingConfig, SlaveConfig, DEFAULT_DOMAIN, DEFAULT_HEARTBEAT,
    DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_MAX_REPLY_FRAME, DEFAULT_SUBGROUP, ENV_CONFIG, ENV_PREFIX,
    SECRET_KEYS,
};
pub use serde_helpers::NEVER;
pub use validate::{validate, Invalid};

pub use crate::tls::TlsConfig;

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error by value
mod tests;
