//! The real peer programs the tests start, as scripts/install-peers.sh installs them.

use std::path::PathBuf;

/// A peer program (`rocketmq-namesrv-rust`, `rocketmq-broker-rust`): `env_override` if set,
/// else on PATH, else in ~/.cargo/bin; scripts/install-peers.sh installs them.
pub fn peer_binary(name: &str, env_override: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env_override) {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    let p = on_path.unwrap_or_else(|| {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".cargo/bin").join(name)
    });
    assert!(
        p.is_file(),
        "{name} not found: run scripts/install-peers.sh (scripts/test.sh does)"
    );
    p
}
