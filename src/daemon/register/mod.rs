//! Registration: the periodic round, what its outcomes teach, and re-registration with one
//! NameServer that lost the broker or its connection.

mod reconnect;
mod record;
mod round;

pub(crate) use reconnect::{reconnect_loop, reregister_lost, OnClose, Retries};
pub(crate) use record::note_ok;
pub(crate) use round::register_loop;
