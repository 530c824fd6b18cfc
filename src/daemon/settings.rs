//! The configuration as the daemon runs it: the plain configuration with what its (re)load
//! noted beside it ([`InForce`]).

use std::ops::Deref;

use crate::config::{Config, Loaded, Pinned};

/// The configuration in force and what its (re)load noted beside it; a reload replaces all of
/// it at once.
#[derive(Debug, Clone, Default)]
pub struct InForce {
    /// The configuration, plain data.
    pub config: Config,
    /// Which of the values the broker also gives the operator set.
    pub pinned: Pinned,
}

impl InForce {
    /// What the daemon runs from a loaded configuration.
    pub fn new(loaded: Loaded) -> InForce {
        InForce {
            config: loaded.config,
            pinned: loaded.pinned,
        }
    }

    /// `config` with nothing pinned, as tests and benchmarks make one.
    #[cfg(any(test, feature = "test-util"))]
    pub fn unpinned(config: Config) -> InForce {
        InForce {
            config,
            pinned: Pinned::default(),
        }
    }
}

// The tasks read the configuration in force as they read a `Config` (`cfg.register.timeout`):
// what travels beside it is named, the configuration itself is not.
impl Deref for InForce {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.config
    }
}
