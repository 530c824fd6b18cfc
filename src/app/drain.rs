//! `rmq-registrar drain`: asks the running daemon (its drain listener, `drain.listen` or the
//! `[http]` one, as this configuration names it) to drain the broker, or to cancel the drain.

use std::process::ExitCode;
use std::time::Duration;

use super::exit::EXIT_CONFIG;
use crate::config::Config;
use crate::daemon::drain::contract::{read_token_file, token, HEADER, OUTCOME};

/// What `rmq-registrar drain` is asked to do.
pub(super) struct Ask<'a> {
    /// `--wait`: overrides `drain.wait`.
    pub(super) wait: Option<&'a str>,
    /// `--cancel`.
    pub(super) cancel: bool,
    /// `--token-file`: overrides `drain.token` and `drain.token_file`.
    pub(super) token_file: Option<&'a std::path::Path>,
}

/// Asks for a drain or its cancel; prints the daemon's answer. Exit 0 on a 2xx answer and on
/// a 409 that says there is nothing to drain (a slave, the broker down), 1 otherwise (401,
/// 500, a refusal, the daemon unreachable), 2 when the configuration names no listener or the
/// token cannot be read.
pub(super) async fn drain(cfg: &Config, ask: Ask<'_>) -> ExitCode {
    let (key, listen) = match &cfg.drain.listen {
        Some(l) => ("drain.listen", l.as_str()),
        None => ("http.listen", cfg.http.listen.as_str()),
    };
    let base = match listener_url(listen) {
        Ok(b) => b,
        Err(why) => {
            eprintln!("rmq-registrar: {key}: {why}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let secret = match ask.token_file {
        Some(f) => read_token_file(f).map(Some),
        None => token(cfg),
    };
    let secret = match secret {
        Ok(t) => t,
        Err(e) => {
            let key = if ask.token_file.is_some() {
                "--token-file"
            } else {
                "drain.token_file"
            };
            eprintln!("rmq-registrar: {key} {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (wait, cancel) = (ask.wait, ask.cancel);
    let client = match reqwest::Client::builder()
        .user_agent(format!(
            "rmq-registrar-drain/{} (pid {})",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rmq-registrar: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = match wait {
        Some(w) => format!("{base}/drain?wait={w}"),
        None => format!("{base}/drain"),
    };
    let req = if cancel {
        client.delete(&url)
    } else {
        client.post(&url)
    };
    let mut req = req.header(HEADER.0, HEADER.1);
    if let Some(t) = secret {
        req = req.bearer_auth(t);
    }
    // The daemon answers after the wait: give it that, the NameServers' answers, and a margin.
    let limit = wait
        .and_then(|w| humantime::parse_duration(w).ok())
        .unwrap_or(cfg.drain.wait)
        + cfg.register.timeout * 2
        + Duration::from_secs(10);
    match req.timeout(limit).send().await {
        Ok(r) => {
            let nothing = r.status() == reqwest::StatusCode::CONFLICT
                && r.headers()
                    .get(OUTCOME.0)
                    .is_some_and(|v| v.as_bytes() == OUTCOME.1.as_bytes());
            let ok = r.status().is_success() || nothing;
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            say!("{} {}", status.as_u16(), body.trim_end());
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("rmq-registrar: cannot reach the daemon at {base}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the daemon listens, as a URL this host can reach: a wildcard address is asked on
/// loopback; port 0 (picked at start, unknown here) names no listener.
fn listener_url(listen: &str) -> Result<String, String> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| format!("{listen:?} is not host:port: {e}"))?;
    if addr.port() == 0 {
        return Err(format!(
            "{listen:?} names no fixed port (0: the daemon picks one at start): set one to drain through it"
        ));
    }
    let host = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    Ok(format!("http://{host}:{}", addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_is_asked_where_this_host_reaches_it() {
        assert_eq!(
            listener_url("0.0.0.0:9100").as_deref(),
            Ok("http://127.0.0.1:9100")
        );
        assert_eq!(
            listener_url("10.1.2.3:9100").as_deref(),
            Ok("http://10.1.2.3:9100")
        );
        assert_eq!(
            listener_url("[::]:9100").as_deref(),
            Ok("http://[::1]:9100")
        );
        assert!(listener_url("127.0.0.1:0").is_err());
        assert!(listener_url("nowhere").is_err());
    }
}
