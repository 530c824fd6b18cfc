//! Where the NameServer list comes from: a static list or an address server over HTTP.

mod http;

pub use http::{parse_answer, AddressServer, LookupError, DEFAULT_DOMAIN, DEFAULT_SUBGROUP};

use std::collections::BTreeSet;

/// Checks one `host:port`: a non-empty host without spaces, a port in 1..=65535.
pub fn validate_addr(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} is not host:port"))?;
    let host_ok = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == ';');
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(()),
        _ => Err(format!("{addr:?} is not host:port")),
    }
}

/// Splits a `;`-separated list, trimming pieces and dropping empty ones; every piece must be valid.
pub fn parse_list(text: &str) -> Result<Vec<String>, String> {
    let addrs: Vec<String> = text
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if addrs.is_empty() {
        return Err("empty NameServer list".into());
    }
    for a in &addrs {
        validate_addr(a)?;
    }
    Ok(addrs)
}

/// The last good NameServer list; reports a change only when the set of members differs.
#[derive(Debug, Default, Clone)]
pub struct AddressBook {
    current: Vec<String>,
}

impl AddressBook {
    /// Takes a new list; true when its membership differs from the current one.
    pub fn update(&mut self, addrs: Vec<String>) -> bool {
        let old: BTreeSet<&String> = self.current.iter().collect();
        let new: BTreeSet<&String> = addrs.iter().collect();
        if old == new {
            return false;
        }
        self.current = addrs;
        true
    }

    /// The current list.
    pub fn current(&self) -> &[String] {
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_trimmed_validated_and_compared_as_sets() {
        assert_eq!(parse_list(" a:1; b:2 ;;").unwrap(), vec!["a:1", "b:2"]);
        assert!(parse_list("a:1;b").is_err());
        assert!(parse_list("a:0").is_err());
        assert!(parse_list("a:70000").is_err());
        assert!(parse_list(" ; ").is_err());
        assert!(parse_list("<html>:80").is_ok_and(|v| v.len() == 1));
        assert!(parse_list("a b:1").is_err());
        let mut book = AddressBook::default();
        assert!(book.update(vec!["a:1".into(), "b:2".into()]));
        assert!(!book.update(vec!["b:2".into(), "a:1".into()]));
        assert!(book.update(vec!["a:1".into()]));
        assert_eq!(book.current(), ["a:1".to_string()]);
    }
}
