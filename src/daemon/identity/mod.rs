//! Who the broker is: the rules that make the identity registrations carry (`state.rs`) and
//! the identity task, its one publisher (`task.rs`).

mod state;
mod task;

pub(crate) use state::{describe, Change, Current};
pub(crate) use task::identity_loop;
