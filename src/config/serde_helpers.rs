//! How the model's special values are written: a duration or "off", a duration, "always" or
//! "never", and a NameServer list as a TOML list or one `;`-separated string.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// `register.force_every = "never"`, as a duration no clock reaches.
pub const NEVER: Duration = Duration::MAX;

/// `register.force_every` by default: the heartbeats and the route read-back find a NameServer
/// that lost the broker within seconds, so a full registration every round is a safety net
/// only (`rmq-bench fleet`, README "Fleet scale": most of a fleet's cost to the NameServers).
pub const DEFAULT_FORCE_EVERY: Duration = Duration::from_secs(300);

/// A duration, or "off" (None). None is written as "off": omitting the key would read back as
/// the default, not as off.
pub(super) mod off_serde {
    use std::time::Duration;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_some("off"),
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.trim() == "off" => Ok(None),
            Some(s) => humantime::parse_duration(&s)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("{s:?}: {e} (or \"off\")"))),
        }
    }
}

/// A duration, "never" ([`NEVER`]) or "always" (None: every round is a full one).
pub(super) mod force_every_serde {
    use std::time::Duration;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            // Written out: omitting the key would read back as the default, not as always.
            None => s.serialize_some("always"),
            Some(d) if *d == crate::config::serde_helpers::NEVER => s.serialize_some("never"),
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) if s.trim() == "always" => Ok(None),
            Some(s) if s.trim() == "never" => Ok(Some(crate::config::serde_helpers::NEVER)),
            Some(s) => humantime::parse_duration(&s)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("{s:?}: {e} (or \"always\", \"never\")"))),
            None => Ok(Some(super::DEFAULT_FORCE_EVERY)),
        }
    }
}

/// One `;`-separated string or a list, each address trimmed.
pub(super) fn addr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        OneOrMany::Many(v) => v.into_iter().map(|s| s.trim().to_string()).collect(),
    })
}
