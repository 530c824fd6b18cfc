//! Registration rounds: the register task owns the round state, the drain and the NameServers'
//! tasks, and publishes what every NameServer is told.

mod drain;
mod round;
mod state;
mod task;

pub(crate) use task::register_loop;
#[cfg(test)]
pub(crate) use round::options;
