//! `/drain` on the HTTP listener: GET or POST starts a drain (or joins the one in force) and
//! answers once every NameServer routes the broker read-only and the wait has passed; DELETE
//! cancels. Every request carries `X-Rmq-Registrar: drain` (a Kubernetes `httpGet` hook can
//! send headers, a stray GET cannot), and `Authorization: Bearer TOKEN` when `drain.token` or
//! `drain.token_file` is set: the listener is often on the pod IP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use tokio::sync::oneshot;

use super::published::{DrainCmd, Started};
use super::shared::Shared;
use crate::config::Config;

/// The header every drain request carries, and its value.
pub const HEADER: (&str, &str) = ("x-rmq-registrar", "drain");
/// The longest `?wait=` (as `drain.wait`'s range).
const MAX_WAIT: Duration = Duration::from_secs(600);

/// Answers one drain request.
pub(crate) async fn drain(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let cfg = sh.config();
    if let Err(refused) = admitted(&cfg, &headers) {
        return refused;
    }
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no user agent");
    let who = format!("{peer} ({agent})");
    match method {
        Method::DELETE => cancel(&sh, who).await,
        Method::GET | Method::POST => {
            let wait = match wait_of(&uri, cfg.drain.wait) {
                Ok(w) => w,
                Err(why) => return (StatusCode::BAD_REQUEST, format!("{why}\n")),
            };
            start(&sh, who, wait).await
        }
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "GET or POST drains, DELETE cancels\n".into(),
        ),
    }
}

/// The header and the token, checked before anything else.
fn admitted(cfg: &Config, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    let marked = headers
        .get(HEADER.0)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(HEADER.1));
    if !marked {
        return Err((
            StatusCode::BAD_REQUEST,
            "a drain request carries the header `X-Rmq-Registrar: drain`\n".into(),
        ));
    }
    let expected = match token(cfg) {
        Ok(t) => t,
        Err(e) => {
            let file = cfg.drain.token_file.as_deref().unwrap_or(std::path::Path::new(""));
            tracing::error!(file = %file.display(), error = %e, "drain.token_file cannot be read: drain refused");
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("drain.token_file {} cannot be read: {e}\n", file.display()),
            ));
        }
    };
    let Some(expected) = expected else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if same(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            "drain.token is set: the request carries `Authorization: Bearer TOKEN`\n".into(),
        ))
    }
}

/// The token drain requests must carry, if one is set (the file is read at each request, so
/// a rotated secret takes effect without a reload).
pub fn token(cfg: &Config) -> std::io::Result<Option<String>> {
    if let Some(t) = &cfg.drain.token {
        return Ok(Some(t.clone()));
    }
    match &cfg.drain.token_file {
        Some(f) => Ok(Some(std::fs::read_to_string(f)?.trim().to_string())),
        None => Ok(None),
    }
}

/// Compares without an early exit on the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `?wait=DURATION` (e.g. `40s`, `0`), or the configured wait.
fn wait_of(uri: &Uri, configured: Duration) -> Result<Duration, String> {
    let Some(raw) = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("wait="))
    else {
        return Ok(configured);
    };
    let wait = if raw == "0" {
        Duration::ZERO
    } else {
        humantime::parse_duration(raw)
            .map_err(|e| format!("wait={raw:?} is not a duration such as \"40s\": {e}"))?
    };
    if wait > MAX_WAIT {
        return Err(format!(
            "wait={raw:?} is longer than {}",
            humantime::format_duration(MAX_WAIT)
        ));
    }
    Ok(wait)
}

async fn start(sh: &Shared, who: String, wait: Duration) -> (StatusCode, String) {
    let (reply, answer) = oneshot::channel();
    let asked = sh.drains.send(DrainCmd::Start { who, reply }).await;
    let started = match (asked, answer.await) {
        (Ok(()), Ok(s)) => s,
        _ => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is stopping\n".into(),
            )
        }
    };
    let Started {
        since,
        joined,
        refused,
    } = match started {
        Ok(s) => s,
        Err(why) => return (StatusCode::CONFLICT, format!("not drained: {why}\n")),
    };
    let since_text = humantime::format_rfc3339_seconds(since);
    if !refused.is_empty() {
        return (
            StatusCode::BAD_GATEWAY,
            format!(
                "draining since {since_text}, but these NameServers did not take it: {}\n",
                refused.join("; ")
            ),
        );
    }
    let mut draining = sh.draining.subscribe();
    let ended = async {
        loop {
            if draining.borrow_and_update().is_none() || draining.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = ended => return (
            StatusCode::CONFLICT,
            "the drain ended before the wait passed (cancelled, or the broker restarted)\n".into(),
        ),
        _ = sh.token.cancelled() => return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping\n".into(),
        ),
    }
    let how = if joined { "joined the drain" } else { "drained" };
    (
        StatusCode::OK,
        format!(
            "{how}: every NameServer routes the broker read-only since {since_text}; waited {}\n",
            humantime::format_duration(wait)
        ),
    )
}

async fn cancel(sh: &Shared, who: String) -> (StatusCode, String) {
    let (reply, answer) = oneshot::channel();
    let asked = sh.drains.send(DrainCmd::Cancel { who, reply }).await;
    match (asked, answer.await) {
        (Ok(()), Ok(Some(since))) => (
            StatusCode::OK,
            format!(
                "drain cancelled (held since {}): the broker's true permissions are registered\n",
                humantime::format_rfc3339_seconds(since)
            ),
        ),
        (Ok(()), Ok(None)) => (StatusCode::CONFLICT, "no drain in force\n".into()),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_read_from_the_query() {
        let d = Duration::from_secs(40);
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(wait_of(&uri("/drain"), d), Ok(d));
        assert_eq!(wait_of(&uri("/drain?wait=0"), d), Ok(Duration::ZERO));
        assert_eq!(
            wait_of(&uri("/drain?x=1&wait=12s"), d),
            Ok(Duration::from_secs(12))
        );
        assert!(wait_of(&uri("/drain?wait=soon"), d).is_err());
        assert!(wait_of(&uri("/drain?wait=11m"), d).is_err());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }
}
