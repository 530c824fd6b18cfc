//! Which of the values the broker also gives were set by the operator: filled by the loader,
//! read by field.

/// Keys set in the TOML file or the environment (not a default, not broker.conf) among those
/// the broker's own answer gives, and the expiry it gives with acting master on: with the
/// identity from the broker, these win over it (`broker.id` is refused instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pinned {
    /// `broker.cluster`.
    pub cluster: bool,
    /// `broker.name`.
    pub name: bool,
    /// `broker.id` (refused with the identity from the broker).
    pub id: bool,
    /// `broker.addr`.
    pub addr: bool,
    /// `broker.ha_addr`.
    pub ha_addr: bool,
    /// `broker.permission`.
    pub permission: bool,
    /// `register.split_size`.
    pub split_size: bool,
    /// `register.always_split`.
    pub always_split: bool,
    /// `register.heartbeat_timeout`.
    pub heartbeat_timeout: bool,
}

impl Pinned {
    /// The one table from key names to fields; `None` for a key that cannot be pinned.
    fn slot(&mut self, key: &str) -> Option<&mut bool> {
        Some(match key {
            "broker.cluster" => &mut self.cluster,
            "broker.name" => &mut self.name,
            "broker.id" => &mut self.id,
            "broker.addr" => &mut self.addr,
            "broker.ha_addr" => &mut self.ha_addr,
            "broker.permission" => &mut self.permission,
            "register.split_size" => &mut self.split_size,
            "register.always_split" => &mut self.always_split,
            "register.heartbeat_timeout" => &mut self.heartbeat_timeout,
            _ => return None,
        })
    }

    /// The keys of `keys` for which `set` is true.
    pub(super) fn from_keys<'k>(
        keys: impl IntoIterator<Item = &'k str>,
        set: impl Fn(&str) -> bool,
    ) -> Pinned {
        let mut pinned = Pinned::default();
        for key in keys {
            if set(key) {
                // A key without a field is a bug in this table: the test below lists them all.
                if let Some(slot) = pinned.slot(key) {
                    *slot = true;
                }
            }
        }
        pinned
    }

    /// The keys that can be pinned and are not: with the identity from the broker, those it
    /// gives.
    pub fn not_set(&self) -> impl Iterator<Item = &'static str> + '_ {
        pinnable().filter(|k| !self.contains(k))
    }

    /// Whether the key named `key` is pinned: for what goes through keys by name
    /// (`check-config`); code reads the fields.
    pub fn contains(&self, key: &str) -> bool {
        let mut copy = *self;
        copy.slot(key).is_some_and(|b| *b)
    }
}

/// Keys the broker's own answer gives (identity from the broker): set in the TOML file or the
/// environment, they win over it (`broker.id` is refused instead).
pub const FROM_BROKER: [&str; 8] = [
    "broker.cluster",
    "broker.name",
    "broker.id",
    "broker.addr",
    "broker.ha_addr",
    "broker.permission",
    "register.split_size",
    "register.always_split",
];

/// Keys whose operator-set value wins over the broker's: those it gives, and the expiry it
/// gives with acting master on.
pub(super) fn pinnable() -> impl Iterator<Item = &'static str> {
    FROM_BROKER
        .into_iter()
        .chain(std::iter::once("register.heartbeat_timeout"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinnable_key_has_its_own_field() {
        let keys: Vec<&str> = pinnable().collect();
        for key in &keys {
            let one = Pinned::from_keys(keys.iter().copied(), |k| k == *key);
            assert!(one.contains(key), "{key} has no field");
            assert_eq!(
                keys.iter().filter(|k| one.contains(k)).count(),
                1,
                "{key} shares a field"
            );
        }
        assert!(!Pinned::from_keys(keys.iter().copied(), |_| true).contains("broker.zone"));
    }
}
