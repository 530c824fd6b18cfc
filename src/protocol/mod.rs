//! RocketMQ remoting wire format: frames, headers and commands.

pub mod code;
pub mod command;
pub mod frame;
pub mod header;

pub use command::{LanguageCode, RemotingCommand, SerializeType};
pub use frame::{FrameCodec, FrameError, DEFAULT_MAX_FRAME};
