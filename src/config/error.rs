//! The error every way of loading a configuration returns: which key, from where, and why.

/// A configuration problem: which key, from where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config error: `{key}` (from {source_name}): {reason}")]
pub struct ConfigError {
    /// Dotted key, e.g. `register.interval`.
    pub key: String,
    /// Where the value came from: a file path, an environment variable, or the defaults.
    pub source_name: String,
    /// What is wrong.
    pub reason: String,
}

/// An error with its causes, for a one-line message.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
