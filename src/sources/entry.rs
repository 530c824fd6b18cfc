//! One `host:port` of a list: an address as written, or a name that stands for the
//! NameServers its records point at.

use std::net::{IpAddr, SocketAddr};

/// A list entry, classified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entry {
    /// An IP and port: one NameServer, as written.
    Addr(SocketAddr),
    /// A host name and port: every address the name has is a NameServer on `port`.
    Name(NameKey),
    /// Neither (not `host:port`): passed on as written, for the client to try.
    Other(String),
}

/// A name to look up and the port its NameServers listen on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameKey {
    /// The host name, as written.
    pub host: String,
    /// The port every address of the name is dialled on.
    pub port: u16,
}

impl std::fmt::Display for NameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Entry {
    /// Classifies `text` (`10.0.0.1:9876`, `[::1]:9876`, `ns.example:9876`).
    pub fn parse(text: &str) -> Entry {
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Entry::Addr(a);
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Entry::Other(text.to_string());
        };
        match (port.parse::<u16>(), host.parse::<IpAddr>()) {
            // `::1:9876`-like text: an address after all, written without brackets.
            (Ok(port), Ok(ip)) => Entry::Addr(SocketAddr::new(ip, port)),
            (Ok(port), Err(_)) if !host.is_empty() && !host.contains(':') => {
                Entry::Name(NameKey {
                    host: host.to_string(),
                    port,
                })
            }
            _ => Entry::Other(text.to_string()),
        }
    }
}

/// `ip:port` as the NameServer is keyed everywhere (`[v6]:port` for IPv6).
pub fn addr_key(a: SocketAddr) -> String {
    a.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_names_and_the_rest() {
        let ip = |s: &str| Entry::Addr(s.parse().unwrap());
        assert_eq!(Entry::parse("10.0.0.1:9876"), ip("10.0.0.1:9876"));
        assert_eq!(Entry::parse("[::1]:9876"), ip("[::1]:9876"));
        assert_eq!(
            Entry::parse("ns.example:9876"),
            Entry::Name(NameKey {
                host: "ns.example".into(),
                port: 9876
            })
        );
        assert_eq!(
            Entry::parse("localhost:1"),
            Entry::Name(NameKey {
                host: "localhost".into(),
                port: 1
            })
        );
        assert_eq!(Entry::parse("nope"), Entry::Other("nope".into()));
        assert_eq!(Entry::parse(":9876"), Entry::Other(":9876".into()));
        assert_eq!(addr_key("[::1]:9876".parse().unwrap()), "[::1]:9876");
    }
}
