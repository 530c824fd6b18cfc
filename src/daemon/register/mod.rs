//! Registration rounds: the register task owns the round state, the drain and the NameServers'
//! tasks, and publishes what every NameServer is told.

mod round;
mod spread;
mod state;
mod task;

pub(crate) use round::{publish_advert, round_with};
pub(crate) use state::Rounds;
pub(crate) use task::register_loop;
#[cfg(test)]
pub(crate) use round::options;
