//! The drain, but for its control in the register task: the contract shared by `/drain` and
//! `rmq-registrar drain` (header, token and its rules, the answers' markers: `contract.rs`),
//! the endpoint (`endpoint.rs`), and the rules a NameServer's task applies while a drain holds,
//! as pure functions beside their tests (`rule.rs`). Its start, hold and end are the register
//! task's (`register/drain.rs`); its requests and the view it publishes are in `published.rs`.

pub mod contract;
pub(crate) mod endpoint;
pub(crate) mod rule;
