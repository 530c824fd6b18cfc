//! RocketMQ remoting wire format: frames, headers and commands.

pub mod code;
pub mod command;
mod error;
pub mod fields;
pub mod frame;
pub mod header;
pub mod prepared;

pub use command::{LanguageCode, RemotingCommand, SerializeType};
pub use error::FrameError;
pub use frame::{FrameCodec, DEFAULT_MAX_FRAME};
pub use prepared::Prepared;
