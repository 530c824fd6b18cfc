//! Whether the broker serves: the health task's checks (`task.rs`) and the verdict they make
//! (`verdict.rs`: the rules, pure, beside their tests).

mod task;
mod verdict;

pub(crate) use task::health_loop;
pub(crate) use verdict::Verdicts;
