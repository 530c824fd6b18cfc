//! Registration rounds: the register task owns the round state and the NameServers' tasks,
//! and publishes what every NameServer is told.

mod drain;
mod round;

pub(crate) use drain::{DrainCmd, Started};

pub(crate) use round::register_loop;
