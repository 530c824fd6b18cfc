//! The error every way of loading a configuration returns: which key, from where, and why.

/// A configuration problem: which key, from where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct ConfigError {
    /// Dotted key, e.g. `register.interval`; empty when the whole source is at fault (a file
    /// that cannot be read or parsed).
    pub key: String,
    /// Where the value came from: a file path, an environment variable, or the defaults.
    pub source_name: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    /// A source that cannot be used as a whole (a file that cannot be read or parsed): no key.
    pub(super) fn whole(source_name: String, reason: String) -> ConfigError {
        ConfigError {
            key: String::new(),
            source_name,
            reason,
        }
    }

    fn message(&self) -> String {
        if self.key.is_empty() {
            // No key is at fault: naming one (`(root)`) would send the operator looking for it.
            format!("config error: {}: {}", self.source_name, self.reason)
        } else {
            format!(
                "config error: `{}` (from {}): {}",
                self.key, self.source_name, self.reason
            )
        }
    }
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
