//! The NameServer list: one task publishes it, from whichever source the configuration names:
//! the address server (fetched at start and every `refresh_interval`, the last good list kept;
//! `namesrv.addrs` until its first answer), `namesrv.addrs`, or, with neither, the list the
//! broker itself names.

use std::sync::Arc;

use super::settings;
use super::publisher::{follow, AddressOut, Publisher};
use super::shared::Shared;
use super::supervisor::TaskResult;
use crate::metrics::labels::Outcome;
use crate::address_server::AddressServer;

/// Publishes the NameServer list until shutdown.
pub(crate) async fn refresh_loop(
    sh: Arc<Shared>,
    out: Arc<AddressOut>,
) -> TaskResult {
    // One HTTP client, made again only when a reload changes the URL or timeout.
    let mut server: Option<AddressServer> = None;
    let mut configs = follow(&sh.config);
    let mut reports = follow(&sh.report);
    let mut next = tokio::time::Instant::now();
    loop {
        let cfg = configs.borrow_and_update().clone();
        let url = cfg.address_server_url();
        if url.is_none() && !cfg.namesrv.addrs.is_empty() {
            want(&out.namesrv_list, &cfg.namesrv.addrs);
        } else if url.is_none() {
            // With no NameServer configured, the broker's own list is used.
            let broker_list = reports
                .borrow_and_update()
                .as_ref()
                .map(|r| r.namesrv_addrs.clone())
                .filter(|l| !l.is_empty());
            if let Some(l) = broker_list {
                want(&out.namesrv_list, &l);
            }
        }
        if let Some(url) = url.filter(|_| tokio::time::Instant::now() >= next) {
            let timeout = cfg.register.timeout.max(std::time::Duration::from_secs(3));
            let current = match server.take() {
                Some(s) if s.url() == url && s.timeout() == timeout => s,
                _ => settings::address_server(&cfg, url, timeout)?,
            };
            match current.fetch().await {
                Ok(list) => {
                    out.metrics.address_refresh(Outcome::Ok);
                    want(&out.namesrv_list, &list);
                }
                Err(e) => {
                    out.metrics.address_refresh(Outcome::Error);
                    tracing::warn!(error = %e, "address server lookup failed, keeping the last good list");
                }
            }
            server = Some(current);
            next = tokio::time::Instant::now() + cfg.namesrv.refresh_interval;
        }
        // Without an address server there is nothing to fetch: only a change wakes it.
        let timer = async {
            match cfg.address_server_url() {
                Some(_) => tokio::time::sleep_until(next).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            () = timer => {}
            r = configs.changed() => r?,
            r = reports.changed() => r?,
        }
    }
}

/// Publishes a new NameServer list (a no-op when it is the same).
fn want(list: &Publisher<Arc<Vec<String>>>, addrs: &[String]) {
    list.send_if_modified(|l| {
        let changed = l.as_slice() != addrs;
        if changed {
            *l = Arc::new(addrs.to_vec());
        }
        changed
    });
}
