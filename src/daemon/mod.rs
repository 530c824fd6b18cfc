//! The daemon: supervised tasks that keep the broker registered, and a clean goodbye.
//!
//! Where things are (docs/architecture.md has the picture and a "where is" table): start-up,
//! tasks and signals in `run`; SIGHUP in `reload`; every state's channel in `publisher` (each
//! publisher goes to its one task); the read-only context and the states' receivers in
//! `shared`; the goodbye rule in `goodbye`; grouped by concern, each task beside its values:
//! `health` (the checks and the verdict), `identity` (who the broker is), `topics` (the table
//! and its one owner), `register` (rounds; the register task owns the round state and the
//! NameServers' tasks), `namesrv` (each NameServer's task and record, and the fleet), `drain`
//! (all of the drain), `fault` (when a broker that cannot take writes is drained); the NameServer list's publisher in `addresses`; the heartbeat plan and
//! beat under `heartbeat`; the 1 s response sweeper (`client/sweeper.rs`) is a supervised task
//! started in `run`.

mod addresses;
mod api;
pub mod files;
pub mod drain;
pub(crate) mod fault;
mod goodbye;
mod health;
mod heartbeat;
mod http;
mod identity;
mod namesrv;
mod published;
mod publisher;
mod register;
mod reload;
pub(crate) mod route;
mod run;
pub mod settings;
mod shared;
pub mod slave;
pub mod supervisor;
pub mod topics;

pub use api::{build_api, identity_now};
pub use goodbye::{unregister_once, Once};
pub use run::{run, signals};
#[cfg(feature = "test-util")]
pub use run::{Control, StartError};
