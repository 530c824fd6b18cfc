//! The drain in one place: the contract shared by `/drain` and `rmq-registrar drain` (header,
//! token and its rules, the answers' markers: `contract.rs`), the endpoint (`endpoint.rs`),
//! the requests it sends the register task (`commands.rs`), the drain's state and published
//! view (`state.rs`), its start, hold and end as the register task runs them (`control.rs`),
//! and the rules a NameServer's task applies while a drain holds, as pure functions beside
//! their tests (`rule.rs`).

mod commands;
pub mod contract;
pub(crate) mod control;
pub(crate) mod endpoint;
pub(crate) mod rule;
mod state;

pub(crate) use commands::{Cancelled, DrainCmd, Refused, Started};
pub(crate) use state::{Drain, DrainView, Draining, Reason};
