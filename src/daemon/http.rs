//! /metrics, /healthz, /readyz and /drain.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, on, MethodFilter};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::drain::endpoint::DrainState;
use super::drain::DrainCmd;
use super::shared::Shared;
use super::supervisor::TaskResult;

/// A listener bound at start-up (so a busy port fails early) and the address it is on.
pub(crate) struct Bound {
    /// The listener; taken by the first run of the task.
    pub(crate) listener: Option<TcpListener>,
    /// Its address (with port 0 configured, the port first bound, which is the one announced).
    pub(crate) addr: std::net::SocketAddr,
}

impl Bound {
    /// What one run of the task gets: the listener the first time, the address after.
    pub(crate) fn take_for_run(&mut self) -> Bound {
        Bound {
            listener: self.listener.take(),
            addr: self.addr,
        }
    }

    /// The listener, or after a restart of the task the same address bound again.
    async fn open(self) -> std::io::Result<TcpListener> {
        match self.listener {
            Some(l) => Ok(l),
            None => TcpListener::bind(self.addr).await,
        }
    }
}

/// Serves until shutdown: /metrics, /healthz, /readyz on the `[http]` listener, and /drain
/// there or, with `drain.listen`, on a listener of its own (loopback in a pod, say, while the
/// metrics are scraped on the pod IP).
pub(crate) async fn serve(
    sh: Arc<Shared>,
    main: Bound,
    drain: Option<Bound>,
    requests: mpsc::Sender<DrainCmd>,
) -> TaskResult {
    let drain_app = Router::new()
        .route(
            "/drain",
            on(
                MethodFilter::GET
                    .or(MethodFilter::POST)
                    .or(MethodFilter::DELETE),
                super::drain::endpoint::drain,
            ),
        )
        .with_state(DrainState {
            sh: sh.clone(),
            requests,
        });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(sh.clone());
    match drain {
        Some(own) => {
            let own = own.open().await?;
            let main = main.open().await?;
            tokio::try_join!(serve_one(&sh, main, app), serve_one(&sh, own, drain_app))?;
        }
        None => serve_one(&sh, main.open().await?, app.merge(drain_app)).await?,
    }
    Ok(())
}

async fn serve_one(sh: &Shared, l: TcpListener, app: Router) -> std::io::Result<()> {
    let token = sh.token.clone();
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(l, app)
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await
}

async fn metrics(State(sh): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        sh.metrics.scrape(&sh.client),
    )
}

async fn readyz(State(sh): State<Arc<Shared>>) -> impl IntoResponse {
    match sh.readiness() {
        Ok(()) => {
            let mut body = match sh.draining.borrow().held.as_ref() {
                Some(d) => format!(
                    "ready; draining since {} ({})\n",
                    humantime::format_rfc3339_seconds(d.since),
                    d.why()
                ),
                None => "ready\n".to_string(),
            };
            // Said while the drain holds for it (a broker that could not be drained is not).
            let faulted = sh
                .draining
                .borrow()
                .held
                .as_ref()
                .is_some_and(|d| !d.faults().is_empty());
            if let Some(line) = sh.fault.borrow().line().filter(|_| faulted) {
                body.push_str(&line);
            }
            if let Some(remark) = sh.verdict.borrow().auth_refusal() {
                body.push_str(&format!("the broker refuses the daemon's requests: authentication failed ({remark}): set acl.access_key and acl.secret_key\n"));
            }
            // A source that fails keeps its last good answer: said, not a reason to be unready.
            for s in sh.namesrv_sources.borrow().0.iter().filter(|s| s.used) {
                if let Some(e) = &s.error {
                    let n = s.addrs.len();
                    body.push_str(&format!("{}: lookup failing ({e}); its last {n} addresses kept\n", s.source));
                }
            }
            // Ready while one NameServer routes the broker; the others' difference is said.
            for ns in sh.members.borrow().mismatched() {
                body.push_str(&format!("route differs on {ns} (rmq_registrar_route_mismatch)\n"));
            }
            (StatusCode::OK, body)
        }
        Err(why) => {
            let lines: String = why.iter().map(|w| format!("{w}\n")).collect();
            (StatusCode::SERVICE_UNAVAILABLE, lines)
        }
    }
}
