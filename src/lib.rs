//! rmq-registrar: keeps an Apache RocketMQ broker registered with its NameServers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod broker;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod fuzzing;
pub mod metrics;
pub mod namesrv;
mod poison;
pub mod protocol;
pub mod tls;
