//! The heartbeat: a QUERY_DATA_VERSION to each NameServer every `register.heartbeat`, so that
//! NameServers registered with a short `heartbeatTimeoutMillis` drop a lost host within
//! seconds, and a NameServer that lost the broker (restarted, or told to drop it) is
//! registered with again at once instead of at the next round.

mod plan;
mod task;

pub(crate) use plan::{plan, BeatState, Due, Plan};
pub(crate) use task::heartbeat_loop;
