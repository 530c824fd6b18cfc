//! The drain's guard, shared by `/drain` and `rmq-registrar drain`: the header every request
//! carries, the token (inline or from a file, never blank), how a request's `Authorization`
//! is read, and the answer that tells the command there was nothing to drain.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, Loaded};

/// The header every drain request carries, and its value.
pub const HEADER: (&str, &str) = ("x-rmq-registrar", "drain");

/// The header of a 409 that means "nothing to drain here" (a slave, the broker down), and its
/// value: `rmq-registrar drain` exits 0 on it, so that a broker unit's
/// `ExecStop=` fails only when a drain was due and did not happen.
pub const OUTCOME: (&str, &str) = ("x-rmq-registrar-outcome", "nothing-to-drain");

/// The `WWW-Authenticate` challenge of a 401 (RFC 6750).
pub const CHALLENGE: &str = "Bearer realm=\"rmq-registrar drain\"";

/// The prefix of a `token_file` that names systemd's credentials directory.
const CREDENTIALS: &str = "${CREDENTIALS_DIRECTORY}/";

/// Why the token cannot be had: never read as "no token".
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read (missing, no permission, a directory).
    #[error("{}: cannot be read: {source}", path.display())]
    Unreadable {
        /// The file, as opened.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing but whitespace: a blank token would let anyone drain.
    #[error("{}: holds no token (empty, or only whitespace): a blank token would let any request drain", path.display())]
    Blank {
        /// The file.
        path: PathBuf,
    },
    /// `${CREDENTIALS_DIRECTORY}` is named but not set.
    #[error("{}: CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with LoadCredential=)", path.display())]
    NoCredentials {
        /// The file, as configured.
        path: PathBuf,
    },
}

/// The path `configured` names: a leading `${CREDENTIALS_DIRECTORY}/` is the directory
/// systemd gives a unit's credentials in (`LoadCredential=`), from the environment.
pub fn token_path(configured: &Path) -> Result<PathBuf, TokenError> {
    let text = configured.to_string_lossy();
    let Some(rest) = text.strip_prefix(CREDENTIALS) else {
        return Ok(configured.to_path_buf());
    };
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if !dir.is_empty() => Ok(Path::new(&dir).join(rest)),
        _ => Err(TokenError::NoCredentials {
            path: configured.to_path_buf(),
        }),
    }
}

/// The token in `file` (surrounding whitespace and a final newline are not part of it).
pub fn read_token_file(file: &Path) -> Result<String, TokenError> {
    let path = token_path(file)?;
    let text = std::fs::read_to_string(&path).map_err(|source| TokenError::Unreadable {
        path: path.clone(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Blank { path });
    }
    Ok(token.to_string())
}

/// The token drain requests must carry, if one is set. The file is read at each call, so a
/// rotated secret takes effect without a reload; a file that cannot be read or is blank is an
/// error, never "no token".
pub fn token(cfg: &Config) -> Result<Option<String>, TokenError> {
    if let Some(t) = &cfg.drain.token {
        return Ok(Some(t.clone()));
    }
    cfg.drain
        .token_file
        .as_deref()
        .map(read_token_file)
        .transpose()
}

/// The token file checked as the daemon will read it, at start and at SIGHUP: a file that
/// cannot be read or holds no token is a bad configuration (named by key and source), not a
/// surprise at the first drain.
pub fn check_at_load(loaded: &Loaded) -> Result<(), ConfigError> {
    match &loaded.config.drain.token_file {
        Some(f) => read_token_file(f)
            .map(drop)
            .map_err(|e| loaded.error("drain.token_file", e.to_string())),
        None => Ok(()),
    }
}

/// The credentials of an `Authorization: Bearer …` value; the scheme is matched without regard
/// to case (RFC 7235), one or more spaces after it.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let credentials = rest.trim_start_matches(' ').trim_end();
    (!credentials.is_empty()).then_some(credentials)
}

/// Compares without an early exit on the first difference, and without telling the length:
/// the digests of both are compared, whole.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    use sha1::{Digest, Sha1};
    let (da, db) = (Sha1::digest(a), Sha1::digest(b));
    da.iter().zip(db.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_matched_without_case_and_blank_credentials_are_none() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER   abc "), Some("abc"));
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }

    #[test]
    fn a_blank_or_missing_file_is_an_error_never_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let blank = dir.path().join("blank");
        std::fs::write(&blank, " \n\t\n").unwrap();
        assert!(matches!(
            read_token_file(&blank),
            Err(TokenError::Blank { .. })
        ));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            read_token_file(&empty),
            Err(TokenError::Blank { .. })
        ));
        assert!(matches!(
            read_token_file(&dir.path().join("none")),
            Err(TokenError::Unreadable { .. })
        ));
        let good = dir.path().join("good");
        std::fs::write(&good, "s3cret\n").unwrap();
        assert_eq!(read_token_file(&good).unwrap(), "s3cret");
    }

    #[test]
    fn a_plain_path_is_taken_as_it_is() {
        let p = Path::new("/etc/rmq-registrar/drain.token");
        assert_eq!(token_path(p).unwrap(), p);
    }
}
