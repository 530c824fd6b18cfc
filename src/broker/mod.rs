//! The broker's outward API: typed requests to NameServers and to a master broker.

pub mod acl;
mod api;
pub mod body;
mod cluster;
pub use cluster::id_holder;
mod controller;
mod error;
pub mod fastjson;
mod identity;
mod local;
mod namesrv_config;
pub mod own_config;
mod register;
pub mod route;
mod sync;

pub use api::{BrokerApi, CallObserver, Request};
pub use error::ApiError;
pub use identity::BrokerIdentity;
pub use register::{
    DataVersionAnswer, Heartbeat, NamesrvOutcome, RegisterOptions, RegisterOutcome, RegisterStatus, RoundBodies, SentAs,
    UnregisterOutcome, DEFAULT_SPLIT_SIZE, SPLIT_SIZES,
};
pub use local::{BrokerAnswer, StoreHealth};
pub use sync::{topic_config_addr, PullDoc};

// What tests and benchmarks name from outside.
#[cfg(any(test, feature = "test-util"))]
pub use {
    register::{
        body_crc32, compressed_body, compressed_preimage, CompressionForm, RegisterBrokerResult,
    },
    sync::{vip_addr, Pulled, SlavePull},
};
