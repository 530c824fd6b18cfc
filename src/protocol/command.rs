//! The remoting command: one request or response on the wire.

use std::sync::atomic::{AtomicI32, Ordering};

use bytes::Bytes;

use super::code::VERSION_5_3_3;
#[cfg(any(test, feature = "test-util"))]
use super::fields::Text;
use super::fields::Fields;

/// Flag bit set on every response.
pub const FLAG_RESPONSE: i32 = 1;
/// Flag bit set on oneway requests: the peer sends no reply.
pub const FLAG_ONEWAY: i32 = 2;

/// How the header of a frame is serialized (byte 0 of the header mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum SerializeType {
    /// Compact JSON object (type 0).
    #[default]
    Json,
    /// RocketMQ's binary header (type 1).
    RocketMq,
}

impl SerializeType {
    /// The wire byte for this type.
    pub fn code(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    /// The type for a wire byte, if known.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }

    /// The name written in `serializeTypeCurrentRPC`.
    pub fn name(self) -> &'static str {
        match self {
            SerializeType::Json => "JSON",
            SerializeType::RocketMq => "ROCKETMQ",
        }
    }
}

/// The sender's language, as a wire code; unknown codes are kept as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LanguageCode(pub u8);

const LANGUAGE_NAMES: [&str; 14] = [
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP",
    "OMS", "RUST", "NODE_JS",
];

impl LanguageCode {
    /// Java, the reference implementation.
    pub const JAVA: LanguageCode = LanguageCode(0);
    /// Unknown or other.
    pub const OTHER: LanguageCode = LanguageCode(7);
    /// Rust (Java ≥ 4.9.4 knows it).
    pub const RUST: LanguageCode = LanguageCode(12);

    /// The enum name Java writes in JSON headers, if the code is known.
    pub fn name(self) -> Option<&'static str> {
        LANGUAGE_NAMES.get(usize::from(self.0)).copied()
    }

    /// Parses a Java enum name.
    pub fn from_name(name: &str) -> Option<Self> {
        LANGUAGE_NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| u8::try_from(i).ok())
            .map(LanguageCode)
    }
}

static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(0);

/// Next request id from the process-wide counter (wraps like Java's `AtomicInteger`).
pub fn next_opaque() -> i32 {
    NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed)
}

/// One request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code, or response code in a response.
    pub code: i32,
    /// Sender's language.
    pub language: LanguageCode,
    /// Sender's `MQVersion` ordinal.
    pub version: i32,
    /// Request id; a response copies it.
    pub opaque: i32,
    /// Bit 0: response; bit 1: oneway.
    pub flag: i32,
    /// Error text, mostly in responses. An empty remark is the same as none.
    pub remark: Option<String>,
    /// The custom header; sorted so the wire form is stable.
    pub ext_fields: Fields,
    /// How the header is serialized when this command is written.
    pub serialize_type: SerializeType,
    /// Opaque body bytes.
    pub body: Option<Bytes>,
}

impl RemotingCommand {
    /// A new request with a fresh opaque, language RUST and the 5.x default version.
    pub fn request(code: i32) -> Self {
        RemotingCommand {
            code,
            language: LanguageCode::RUST,
            version: VERSION_5_3_3,
            opaque: next_opaque(),
            flag: 0,
            remark: None,
            ext_fields: Fields::new(),
            serialize_type: SerializeType::Json,
            body: None,
        }
    }

    /// A response to `request` with the given code and remark.
    pub fn response_to(request: &RemotingCommand, code: i32, remark: Option<String>) -> Self {
        RemotingCommand {
            code,
            language: LanguageCode::RUST,
            version: request.version,
            opaque: request.opaque,
            flag: FLAG_RESPONSE,
            remark,
            ext_fields: Fields::new(),
            serialize_type: request.serialize_type,
            body: None,
        }
    }

    #[cfg(any(test, feature = "test-util"))]
    /// Adds one custom-header field.
    pub fn with_field(mut self, key: impl Into<Text>, value: impl ToString) -> Self {
        self.ext_fields.insert(key, value.to_string());
        self
    }

    #[cfg(any(test, feature = "test-util"))]
    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the header serialization.
    pub fn with_serialize_type(mut self, t: SerializeType) -> Self {
        self.serialize_type = t;
        self
    }

    /// True when the response bit is set.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// True when the oneway bit is set.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// Marks this request oneway.
    pub fn mark_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }

    /// Marks this command a response.
    pub fn mark_response(&mut self) {
        self.flag |= FLAG_RESPONSE;
    }

    /// One custom-header field.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.ext_fields.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_names_round_trip() {
        assert_eq!(LanguageCode::from_name("RUST"), Some(LanguageCode::RUST));
        assert_eq!(LanguageCode::JAVA.name(), Some("JAVA"));
        assert_eq!(LanguageCode(13).name(), Some("NODE_JS"));
        assert_eq!(LanguageCode(99).name(), None);
        assert_eq!(LanguageCode::from_name("COBOL"), None);
    }

    #[test]
    fn opaques_are_distinct_and_flags_work() {
        let a = RemotingCommand::request(106);
        let mut b = RemotingCommand::request(106);
        assert_ne!(a.opaque, b.opaque);
        assert!(!b.is_oneway() && !b.is_response());
        b.mark_oneway();
        assert!(b.is_oneway());
        let r = RemotingCommand::response_to(&b, 0, None);
        assert!(r.is_response());
        assert_eq!(r.opaque, b.opaque);
    }
}
