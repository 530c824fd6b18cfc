//! `/drain` on the HTTP listener: GET or POST starts a drain (or joins the one in force) and
//! answers once every NameServer routes the broker read-only and the wait has passed; DELETE
//! cancels. Every request carries `X-Rmq-Registrar: drain` (a Kubernetes `httpGet` hook can
//! send headers, a stray GET cannot), and `Authorization: Bearer TOKEN` when `drain.token` or
//! `drain.token_file` is set: the listener is often on the pod IP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use super::contract::{bearer, same, token, CHALLENGE, HEADER, OUTCOME};
use crate::daemon::publisher::follow;
use crate::daemon::drain::{Cancelled, DrainCmd, Started};
use crate::daemon::shared::Shared;
use crate::config::Config;

/// The longest `?wait=` (as `drain.wait`'s range).
const MAX_WAIT: Duration = Duration::from_secs(600);

/// An answer: its status, its text, and the headers that go with some of them.
struct Answer {
    status: StatusCode,
    text: String,
    /// 401: the challenge; 409 "nothing to drain": the outcome header.
    header: Option<(&'static str, &'static str)>,
}

impl Answer {
    fn new(status: StatusCode, text: impl Into<String>) -> Self {
        Answer {
            status,
            text: text.into(),
            header: None,
        }
    }

    fn with(mut self, name: &'static str, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.text).into_response();
        if let Some((name, value)) = self.header {
            r.headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        r
    }
}

/// What `/drain` needs: the shared context, and the sending end of the register task's drain
/// requests (the HTTP task's alone).
#[derive(Clone)]
pub(crate) struct DrainState {
    /// The shared context.
    pub(crate) sh: Arc<Shared>,
    /// Drain requests to the register task.
    pub(crate) requests: mpsc::Sender<DrainCmd>,
}

/// Answers one drain request.
pub(crate) async fn drain(
    State(DrainState { sh, requests }): State<DrainState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let cfg = sh.config();
    if let Err(refused) = admitted(&cfg, &headers) {
        return refused.into_response();
    }
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no user agent");
    let who = format!("{peer} ({agent})");
    let answer = match method {
        Method::DELETE => cancel(&requests, who).await,
        Method::GET | Method::POST => match wait_of(&uri, cfg.drain.wait) {
            Ok(wait) => start(&sh, &requests, who, wait).await,
            Err(why) => Answer::new(StatusCode::BAD_REQUEST, format!("{why}\n")),
        },
        _ => Answer::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET or POST drains, DELETE cancels\n",
        ),
    };
    answer.into_response()
}

/// The header and the token, checked before anything else. A token that cannot be had (its
/// file unreadable or blank) refuses every request: never "no token".
fn admitted(cfg: &Config, headers: &HeaderMap) -> Result<(), Answer> {
    let marked = headers
        .get(HEADER.0)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(HEADER.1));
    if !marked {
        return Err(Answer::new(
            StatusCode::BAD_REQUEST,
            "a drain request carries the header `X-Rmq-Registrar: drain`\n",
        ));
    }
    let expected = match token(cfg) {
        Ok(t) => t,
        Err(e) => {
            // The file and the error in the log; the answer says only what kind, to whoever
            // sent the header.
            tracing::error!(error = %e, "drain.token_file: no usable token, drain refused");
            let what = match e {
                super::contract::TokenError::Blank { .. } => "holds no token",
                _ => "cannot be read",
            };
            return Err(Answer::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("drain refused: drain.token_file {what} (the daemon's log says why)\n"),
            ));
        }
    };
    let Some(expected) = expected else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .unwrap_or("");
    if !given.is_empty() && same(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Answer::new(
            StatusCode::UNAUTHORIZED,
            "a drain token is set: the request carries `Authorization: Bearer TOKEN`\n",
        )
        .with("www-authenticate", CHALLENGE))
    }
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

async fn start(
    sh: &Shared,
    requests: &mpsc::Sender<DrainCmd>,
    who: String,
    wait: Duration,
) -> Answer {
    let stopping = || Answer::new(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping\n");
    let (reply, answer) = oneshot::channel();
    let asked = requests.send(DrainCmd::Start { who, wait, reply }).await;
    let started = match (asked, answer.await) {
        (Ok(()), Ok(s)) => s,
        _ => return stopping(),
    };
    let Started {
        since,
        joined,
        refused,
    } = match started {
        Ok(s) => s,
        Err(why) => {
            let a = Answer::new(StatusCode::CONFLICT, format!("not drained: {why}\n"));
            return if why.nothing_to_drain() {
                a.with(OUTCOME.0, OUTCOME.1)
            } else {
                a
            };
        }
    };
    let since_text = humantime::format_rfc3339_seconds(since);
    if !refused.is_empty() {
        return Answer::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "draining since {since_text}, but these NameServers did not take it: {}\n",
                refused.join("; ")
            ),
        );
    }
    let mut draining = follow(&sh.draining);
    // Ends with why this drain (the one held since `since`) ended.
    let ended = async {
        loop {
            {
                let v = draining.borrow_and_update();
                if v.held.as_ref().is_none_or(|d| d.since != since) {
                    return match &v.ended {
                        Some((s, why)) if *s == since => why.clone(),
                        _ => "it ended".to_string(),
                    };
                }
            }
            if draining.changed().await.is_err() {
                return "the daemon is stopping".to_string();
            }
        }
    };
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        why = ended => return Answer::new(
            StatusCode::CONFLICT,
            format!("the drain ended before the wait passed: {why}\n"),
        ),
        _ = sh.token.cancelled() => return stopping(),
    }
    let how = if joined { "joined the drain" } else { "drained" };
    Answer::new(
        StatusCode::OK,
        format!(
            "{how}: every NameServer routes the broker read-only since {since_text}; waited {}\n",
            humantime::format_duration(wait)
        ),
    )
}

async fn cancel(requests: &mpsc::Sender<DrainCmd>, who: String) -> Answer {
    let (reply, answer) = oneshot::channel();
    let asked = requests.send(DrainCmd::Cancel { who, reply }).await;
    let Cancelled { since, faults } = match (asked, answer.await) {
        (Ok(()), Ok(c)) => c,
        _ => return Answer::new(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping\n"),
    };
    // A fault drain is not the operator's to end: it holds until the broker takes writes.
    let fault = (!faults.is_empty()).then(|| {
        let kinds: Vec<&str> = faults.iter().map(|k| k.as_str()).collect();
        format!(
            "the fault drain holds on ({}): the broker stays read-only until it takes writes again (fault.disk = false and a reload end it)\n",
            kinds.join(", ")
        )
    });
    match (since, fault) {
        (Some(since), None) => Answer::new(
            StatusCode::OK,
            format!(
                "drain cancelled (held since {}): the broker's true permissions are registered\n",
                humantime::format_rfc3339_seconds(since)
            ),
        ),
        (Some(since), Some(f)) => Answer::new(
            StatusCode::OK,
            format!(
                "planned drain cancelled (held since {}); {f}",
                humantime::format_rfc3339_seconds(since)
            ),
        ),
        (None, Some(f)) => Answer::new(StatusCode::CONFLICT, format!("no planned drain in force; {f}")),
        (None, None) => Answer::new(StatusCode::CONFLICT, "no drain in force\n"),
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
}
