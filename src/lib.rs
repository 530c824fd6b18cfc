//! rmq-registrar: keeps an Apache RocketMQ broker registered with its NameServers.
//!
//! The public API is what the binaries need: the command line and its work. The inner modules
//! are public only with the `test-util` feature (integration tests, rmq-bench), so that what
//! the daemon does not use warns as dead code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod cli;

/// Declares modules public with `test-util` and crate-private without.
macro_rules! inner {
    ($($name:ident),+ $(,)?) => {
        $(
            #[cfg(feature = "test-util")]
            pub mod $name;
            #[cfg(not(feature = "test-util"))]
            pub(crate) mod $name;
        )+
    };
}

inner!(
    address_server,
    broker,
    client,
    config,
    daemon,
    metrics,
    protocol,
    sources,
    tls
);

/// Fuzz targets: for fuzz/ (feature `fuzz`) and the unit tests that share their helpers.
#[cfg(any(test, feature = "fuzz"))]
pub mod fuzzing;
mod poison;
