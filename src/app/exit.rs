//! Exit codes beyond success and failure.

/// Exit code for a bad configuration (systemd's unit does not restart on it).
pub(crate) const EXIT_CONFIG: u8 = 2;
