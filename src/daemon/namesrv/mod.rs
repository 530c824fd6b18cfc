//! Each listed NameServer has a task of its own that owns everything known of it (its record,
//! heartbeat, retries, what it was last registered as, its metric series); the register task
//! starts and stops those tasks as the list changes ([`Fleet`]).

mod fleet;
mod record;
mod task;

pub(crate) use fleet::{CloseRoutes, Fleet};
