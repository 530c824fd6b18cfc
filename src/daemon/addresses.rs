//! The NameServer list: applied from config or fetched from the address server.

use std::sync::Arc;

use super::goodbye::{count_unregistrations, goodbye};
use super::settings;
use super::shared::Shared;
use super::supervisor::TaskResult;
use crate::metrics::labels::Outcome;
use crate::namesrv::AddressServer;

/// Installs a new list and registers at once; NameServers that left it get an UNREGISTER and
/// lose their connection.
pub(crate) async fn apply_list(sh: &Shared, addrs: Vec<String>) {
    if install_list(sh, &addrs).await {
        sh.register_now.notify_one();
    }
}

/// Installs a new list without asking for a registration; true if it changed.
pub(crate) async fn install_list(sh: &Shared, addrs: &[String]) -> bool {
    let old = sh.client.name_server_list();
    if !sh.client.update_name_server_list(addrs.to_vec()) {
        return false;
    }
    sh.metrics.daemon.set_namesrv_list_size(addrs.len());
    for a in addrs {
        sh.metrics.namesrv.seed(a);
    }
    let removed: Vec<String> = old.into_iter().filter(|a| !addrs.contains(a)).collect();
    tracing::info!(namesrvs = ?addrs, removed = ?removed, "NameServer list changed");
    if !removed.is_empty() {
        let cfg = sh.config();
        let outcomes = goodbye(sh, &removed, cfg.register.timeout).await;
        count_unregistrations(sh, &outcomes);
        for addr in &removed {
            sh.namesrvs.forget(addr);
        }
    }
    true
}

/// Asks the address server at start and then every `refresh_interval`; keeps the last good list.
pub(crate) async fn refresh_loop(sh: Arc<Shared>) -> TaskResult {
    // One HTTP client, made again only when a reload changes the URL or timeout.
    let mut server: Option<AddressServer> = None;
    loop {
        let cfg = sh.config();
        if let Some(url) = cfg.address_server_url() {
            let timeout = cfg.register.timeout.max(std::time::Duration::from_secs(3));
            let current = match server.take() {
                Some(s) if s.url() == url && s.timeout() == timeout => s,
                _ => settings::address_server(&cfg, url, timeout)?,
            };
            match current.fetch().await {
                Ok(list) => {
                    sh.metrics.daemon.address_refresh(Outcome::Ok);
                    apply_list(&sh, list).await;
                }
                Err(e) => {
                    sh.metrics.daemon.address_refresh(Outcome::Error);
                    tracing::warn!(error = %e, "address server lookup failed, keeping the last good list");
                }
            }
            server = Some(current);
        }
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(cfg.namesrv.refresh_interval) => {}
        }
    }
}
