//! The daemon: supervised tasks that keep the broker registered, and a clean goodbye.
//!
//! Where things are: start-up, tasks and signals in `run`; SIGHUP in `reload`; SIGTERM's
//! unregistration in `goodbye`; the health verdict in `liveness` (the checks in `health`);
//! rounds, re-registration and outcome bookkeeping under `register`; heartbeats under
//! `heartbeat`; each NameServer's state in `namesrvs`; the 1 s response sweeper
//! (`client/sweeper.rs`) is a supervised task started in `run`; the configuration turned into
//! each component's settings, and what travels beside it, in `settings`.

mod addresses;
mod api;
pub mod files;
mod goodbye;
mod health;
mod heartbeat;
mod http;
mod identity;
mod liveness;
mod namesrvs;
mod register;
mod reload;
mod run;
pub mod settings;
mod shared;
pub mod slave;
pub mod supervisor;
pub mod topics;

pub use api::{build_api, identity_now};
pub use run::{run, signals};
#[cfg(feature = "test-util")]
pub use run::{Control, StartError};
