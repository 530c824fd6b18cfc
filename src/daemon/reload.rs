//! SIGHUP: the configuration read again and applied where it can be at run time.

use std::sync::Arc;

use super::settings::{self, InForce};
use super::publisher::Publisher;
use super::shared::Shared;
use crate::config;

/// SIGHUP: re-reads the config; a bad one is reported and the old one kept.
pub(crate) async fn reload(shared: Arc<Shared>, config: Arc<Publisher<Arc<InForce>>>) {
    let shared = &shared;
    let loaded = match config::load(shared.config_path.as_deref()) {
        Ok(l) => l,
        Err(e) if e.key.starts_with("drain.token") => {
            tracing::warn!(error = %e, "reload: the drain token cannot be used, keeping the old configuration");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "reload: new configuration rejected, keeping the old one");
            return;
        }
    };
    // The drain's token as the endpoint will read it: a bad one keeps the old configuration
    // (and with it the old token) rather than leave /drain refusing or unguarded.
    if let Err(e) = super::drain::contract::check_at_load(&loaded) {
        tracing::warn!(error = %e, "reload: the drain token cannot be used, keeping the old configuration");
        return;
    }
    // The certificate files are read here, once: a reload whose TLS cannot be built is
    // rejected as a bad configuration is.
    let new = match InForce::new(loaded) {
        Ok(new) => Arc::new(new),
        Err(e) => {
            tracing::error!(error = %e, "reload: new configuration rejected, keeping the old one");
            return;
        }
    };
    // The client's TLS from that one build: refused here (TLS on, nothing built), before
    // anything of this reload is applied.
    let tls = match settings::client_tls(&new) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %crate::config::error_chain(&e), "reload: TLS cannot be built, keeping the old configuration");
            return;
        }
    };
    let old = shared.config();
    if new.http != old.http || new.remoting != old.remoting || new.log != old.log {
        tracing::warn!("reload: [http], [remoting] and [log] changes take effect after a restart");
    }
    if new.drain.listen != old.drain.listen {
        // `rmq-registrar drain` reads the file: until the restart it asks where nothing listens.
        tracing::warn!(
            old = old.drain.listen.as_deref().unwrap_or("http.listen"),
            new = new.drain.listen.as_deref().unwrap_or("http.listen"),
            "reload: drain.listen changes take effect after a restart; until then `rmq-registrar drain` with the new file cannot reach the daemon"
        );
    }
    if new.tls.enable && !new.tls.verify {
        tracing::warn!(
            "tls.verify = false: NameServer certificates are not checked (test setups only)"
        );
    }
    // Certificates as read by this load: connections opened from now on use them.
    shared.client.set_tls(tls);
    // The identity task registers a changed permission, id or address (with a new data
    // version) at once; the list task applies a changed NameServer list; the topics task
    // reads the topics again.
    config.send_replace(new);
    tracing::info!("configuration reloaded");
    shared.register_now.notify_one();
}
