//! NameServer lists as written in configs and address-server answers: `;`-separated `host:port`.

/// Why a list or an address is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// Not `host:port` with a non-empty host and a port in 1..=65535.
    #[error("{0:?} is not host:port")]
    NotHostPort(String),
    /// Nothing but separators and blanks.
    #[error("empty NameServer list")]
    Empty,
}

/// Checks one `host:port`: a non-empty host without spaces, a port in 1..=65535.
pub fn validate_addr(addr: &str) -> Result<(), ListError> {
    let bad = || ListError::NotHostPort(addr.to_string());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == ';');
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(()),
        _ => Err(bad()),
    }
}

/// Splits a `;`-separated list, trimming pieces and dropping empty ones; every piece must be valid.
pub fn parse_list(text: &str) -> Result<Vec<String>, ListError> {
    let addrs: Vec<String> = text
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if addrs.is_empty() {
        return Err(ListError::Empty);
    }
    for a in &addrs {
        validate_addr(a)?;
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_trimmed_and_validated() {
        assert_eq!(parse_list(" a:1; b:2 ;;").unwrap(), vec!["a:1", "b:2"]);
        assert!(parse_list("a:1;b").is_err());
        assert!(parse_list("a:0").is_err());
        assert!(parse_list("a:70000").is_err());
        assert!(parse_list(" ; ").is_err());
        assert!(parse_list("<html>:80").is_ok_and(|v| v.len() == 1));
        assert!(parse_list("a b:1").is_err());
        // Whether a list differs from the last (as a set) is the client's NameServer choice:
        // client/namesrvs.rs.
    }
}
