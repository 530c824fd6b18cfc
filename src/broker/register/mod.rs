//! REGISTER_BROKER, UNREGISTER_BROKER and QUERY_DATA_VERSION, fanned out to every NameServer:
//! options and outcomes, the pure send plan, body encoding, the round's shared bodies, the
//! requests, the fan-out I/O and the prepared heartbeat, each in a file of its own.

mod bodies;
mod encode;
mod fanout;
mod heartbeat;
mod options;
mod outcome;
mod plan;
mod requests;

pub use bodies::RoundBodies;
pub use heartbeat::Heartbeat;
pub use options::{RegisterOptions, DEFAULT_SPLIT_SIZE, SPLIT_SIZES};
pub use outcome::{NamesrvOutcome, RegisterOutcome, RegisterStatus, SentAs, UnregisterOutcome};
pub use requests::DataVersionAnswer;

#[cfg(any(test, feature = "test-util"))]
pub use {
    encode::{body_crc32, compressed_body, compressed_preimage},
    outcome::RegisterBrokerResult,
    plan::CompressionForm,
};
