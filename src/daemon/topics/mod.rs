//! The topics to register: the table and where it comes from. The topics task (`task.rs`) is
//! the table's one owner; the others reach it through `inbox.rs`.

mod inbox;
mod state;
mod store;
mod task;

pub(crate) use inbox::{inbox, Inbox, MasterTopics, RoundTable, TopicsAsk};
pub(crate) use state::TopicState;
#[cfg(feature = "test-util")]
pub use state::TopicsError;
pub(crate) use task::topics_loop;
