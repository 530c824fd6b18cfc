//! The route read-back: what each NameServer routes producers to, compared with what the
//! daemon advertises (`compare`), what is done about a difference (`policy`), and the reads
//! and their outcome for one NameServer's task (`audit`).

pub(crate) mod audit;
pub(crate) mod compare;
pub(crate) mod policy;
