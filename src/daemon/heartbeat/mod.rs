//! The heartbeat: a QUERY_DATA_VERSION to each NameServer every `register.heartbeat`, so that
//! NameServers registered with a short `heartbeatTimeoutMillis` drop a lost host within
//! seconds, and a NameServer that lost the broker (restarted, or told to drop it) is
//! registered with again at once instead of at the next round. Each NameServer's task sends
//! its own beats; here are the pure send plan and the beat it keeps.

mod beat;
mod plan;

pub(crate) use beat::Beat;
pub(crate) use plan::{after_answer, plan, AfterBeat, BeatState, Due, Plan};
