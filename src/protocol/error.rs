//! What can be wrong with a frame, read or written.

/// Everything that can be wrong with a frame, read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLong {
        /// Whole frame size announced, prefix included.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The length prefix is too small to hold the header mark.
    #[error("frame length {0} is too short")]
    TooShort(i64),
    /// The header length does not fit in the frame.
    #[error("header length {header} exceeds frame payload {available}")]
    HeaderTooLong {
        /// Announced header length.
        header: usize,
        /// Bytes after the header mark.
        available: usize,
    },
    /// Byte 0 of the header mark is neither 0 (JSON) nor 1 (ROCKETMQ).
    #[error("unknown serialize type {0}")]
    UnknownSerializeType(u8),
    /// The JSON header does not parse (or could not be written).
    #[error("bad JSON header: {0}")]
    Json(#[source] serde_json::Error),
    /// A binary field runs past the end of the header.
    #[error("truncated binary header field: {0}")]
    Truncated(&'static str),
    /// A string field is not UTF-8.
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(&'static str),
    /// A field has a value that cannot be represented.
    #[error("invalid header field: {0}")]
    BadField(&'static str),
    /// The socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
