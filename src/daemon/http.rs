//! /metrics, /healthz, /readyz and /drain.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, on, MethodFilter};
use axum::Router;
use tokio::net::TcpListener;

use super::shared::Shared;
use super::supervisor::TaskResult;

/// Serves until shutdown; the listener is bound at start-up so a busy port fails early.
pub(crate) async fn serve(
    sh: Arc<Shared>,
    listener: Option<TcpListener>,
    bound: std::net::SocketAddr,
) -> TaskResult {
    let l = match listener {
        Some(l) => l,
        // A restart after a failure: bind the same address again (with port 0 configured, the
        // port first bound, which is the one announced).
        None => TcpListener::bind(bound).await?,
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/drain",
            on(
                MethodFilter::GET
                    .or(MethodFilter::POST)
                    .or(MethodFilter::DELETE),
                super::drain_endpoint::drain,
            ),
        )
        .with_state(sh.clone());
    let token = sh.token.clone();
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(l, app)
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await?;
    Ok(())
}

async fn metrics(State(sh): State<Arc<Shared>>) -> impl IntoResponse {
    let m = &sh.metrics;
    m.remoting.sample(&sh.client);
    m.daemon.sample_runtime();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
}

async fn readyz(State(sh): State<Arc<Shared>>) -> impl IntoResponse {
    match sh.readiness() {
        Ok(()) => match sh.draining.borrow().as_ref() {
            Some(d) => (
                StatusCode::OK,
                format!(
                    "ready; draining since {} (asked by {})\n",
                    humantime::format_rfc3339_seconds(d.since),
                    d.who
                ),
            ),
            None => (StatusCode::OK, "ready\n".to_string()),
        },
        Err(why) => {
            let lines: String = why.iter().map(|w| format!("{w}\n")).collect();
            (StatusCode::SERVICE_UNAVAILABLE, lines)
        }
    }
}
