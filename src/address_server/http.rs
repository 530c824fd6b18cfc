//! The address server lookup (Java's TopAddressing, PROTOCOL.md §7).

use std::time::Duration;


/// RocketMQ's default address-server domain (`rmqAddressServerDomain`).
pub const DEFAULT_DOMAIN: &str = "jmenv.tbsite.net";
/// RocketMQ's default address-server subgroup (`namesrv.subgroup`).
pub const DEFAULT_SUBGROUP: &str = "nsaddr";

/// Why a lookup gave no list; the caller keeps its last good one.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The request failed (connect, timeout, body read).
    #[error("address server {url}: {source}")]
    Http {
        /// The URL asked.
        url: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with another status than 200.
    #[error("address server {url} answered HTTP {status}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The answer held no address.
    #[error("address server {url} sent an empty list")]
    Empty {
        /// The URL asked.
        url: String,
    },
    /// The answer was not a usable list.
    #[error("address server {url} sent an invalid list: {reason}")]
    Invalid {
        /// The URL asked.
        url: String,
        /// What was wrong (in the message: a lookup's log line carries no cause chain).
        reason: AnswerError,
    },
    /// An https address server without the TLS client its configuration should have built.
    #[error("address server {url}: TLS unavailable")]
    Tls {
        /// The URL asked.
        url: String,
        /// Why.
        #[source]
        source: Box<crate::tls::TlsError>,
    },
}

/// What is wrong with an address server's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// No address in it.
    #[error("no address")]
    Empty,
    /// Longer than a NameServer list can be.
    #[error("answer larger than {limit} bytes")]
    TooLarge {
        /// The largest answer read, bytes.
        limit: usize,
    },
    /// A piece that is not `host:port`.
    #[error(transparent)]
    NotAList(#[from] super::list::ListError),
}

/// An HTTP endpoint that serves the `;`-separated NameServer list.
#[derive(Debug, Clone)]
pub struct AddressServer {
    url: String,
    timeout: Duration,
    http: reqwest::Client,
}

impl AddressServer {
    /// The URL RocketMQ builds: `http://{domain}:8080/rocketmq/{subgroup}`, or without the
    /// port when the domain carries one.
    pub fn url_for(domain: &str, subgroup: &str) -> String {
        match domain.find(':') {
            Some(i) if i > 0 => format!("http://{domain}/rocketmq/{subgroup}"),
            _ => format!("http://{domain}:8080/rocketmq/{subgroup}"),
        }
    }

    /// A lookup against `url`, each attempt bounded by `timeout`.
    #[cfg(any(test, feature = "test-util"))]
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self, LookupError> {
        Self::with_tls(url, timeout, None)
    }

    /// As [`new`](Self::new), with the trust settings (`[tls]`) for an https URL.
    pub fn with_tls(
        url: impl Into<String>,
        timeout: Duration,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Result<Self, LookupError> {
        let url = url.into();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout);
        if let Some(tls) = tls {
            builder = builder.use_preconfigured_tls((*tls).clone());
        }
        let http = builder.build().map_err(|source| LookupError::Http {
            url: url.clone(),
            source,
        })?;
        Ok(AddressServer { url, timeout, http })
    }

    /// The URL asked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound on each lookup.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Fetches and validates the list.
    pub async fn fetch(&self) -> Result<Vec<String>, LookupError> {
        let url = self.url.clone();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let resp = self
            .http
            .get(&url)
            .header("Client-Version", "V5_3_3")
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .header("Metaq-Client-RequestTS", now_ms.to_string())
            .send()
            .await
            .map_err(|source| LookupError::Http {
                url: url.clone(),
                source,
            })?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(LookupError::Status { url, status });
        }
        // A NameServer list is a line; anything past this is not one.
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|source| LookupError::Http {
            url: url.clone(),
            source,
        })? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(LookupError::Invalid {
                    url: url.clone(),
                    reason: AnswerError::TooLarge { limit: MAX_ANSWER },
                });
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body);
        parse_answer(&text).map_err(|reason| match reason {
            AnswerError::Empty => LookupError::Empty { url: url.clone() },
            reason => LookupError::Invalid {
                url: url.clone(),
                reason,
            },
        })
    }
}

/// Largest address-server answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// Reads the body as Java does (trim, cut at the first line break), then validates strictly.
pub fn parse_answer(text: &str) -> Result<Vec<String>, AnswerError> {
    let trimmed = text.trim();
    let line = trimmed.split(['\r', '\n']).next().unwrap_or("").trim();
    if line.split(';').all(|p| p.trim().is_empty()) {
        return Err(AnswerError::Empty);
    }
    Ok(super::list::parse_list(line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_is_built_as_rocketmq_does() {
        assert_eq!(
            AddressServer::url_for(DEFAULT_DOMAIN, DEFAULT_SUBGROUP),
            "http://jmenv.tbsite.net:8080/rocketmq/nsaddr"
        );
        assert_eq!(
            AddressServer::url_for("10.0.0.1:8081", "g"),
            "http://10.0.0.1:8081/rocketmq/g"
        );
        assert_eq!(
            AddressServer::url_for(":x", "g"),
            "http://:x:8080/rocketmq/g"
        );
    }

    #[test]
    fn answers_are_trimmed_cut_and_validated() {
        assert_eq!(parse_answer(" a:1;b:2\n").unwrap(), vec!["a:1", "b:2"]);
        assert_eq!(parse_answer("a:1;b:2\r\nc:3").unwrap(), vec!["a:1", "b:2"]);
        assert_eq!(parse_answer("  \n"), Err(AnswerError::Empty));
        assert_eq!(parse_answer(";;"), Err(AnswerError::Empty));
        assert!(matches!(
            parse_answer("<html>oops</html>"),
            Err(AnswerError::NotAList(_))
        ));
    }
}
