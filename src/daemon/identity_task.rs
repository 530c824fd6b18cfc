//! The identity task: the one publisher of who the broker is.

use std::sync::Arc;

use super::identity::{describe, Change, Current};
use super::shared::Shared;
use super::supervisor::TaskResult;
use crate::config::IdentitySource;

/// Publishes who the broker is, the one writer of the identity watch: the configuration's
/// (at start and after a reload), or, with the identity from the broker, what its last usable
/// health answer said under the values the operator set. Logs elections and counts them.
pub(crate) async fn identity_loop(sh: Arc<Shared>) -> TaskResult {
    let mut configs = sh.config.subscribe();
    let mut reports = sh.report.subscribe();
    loop {
        let cfg = configs.borrow_and_update().clone();
        let report = reports.borrow_and_update().clone();
        let before = sh.current();
        let now = match cfg.broker.identity {
            IdentitySource::Config => Some(Current::from_config(&cfg)),
            IdentitySource::Broker => report
                .and_then(|r| Current::from_report(&cfg, &cfg.pinned, &r, before.as_ref()))
                .or(before.clone()),
        };
        publish(&sh, before, now);
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            r = configs.changed() => r?,
            r = reports.changed() => r?,
        }
    }
}

/// Publishes `now` if it differs from `before`, with its log line and metrics.
fn publish(sh: &Shared, before: Option<Current>, now: Option<Current>) {
    let Some(new) = now else {
        sh.metrics.broker.set_id(None);
        return;
    };
    sh.metrics.broker.set_id(Some(new.id.id));
    match (new.change_from(before.as_ref()), &before) {
        (Change::None, _) => return,
        (Change::Role, Some(old)) => {
            sh.metrics.broker.identity_changed();
            tracing::info!(
                old = %describe(&old.id), new = %describe(&new.id),
                old_role = old.role.map_or("", |r| r.as_str()), new_role = new.role.map_or("", |r| r.as_str()),
                "the broker's id or role changed: registering the new identity with every NameServer"
            );
        }
        (Change::First, _) if new.role.is_some() => {
            tracing::info!(identity = %describe(&new.id), role = new.role.map_or("", |r| r.as_str()), "identity from the broker");
        }
        _ => {}
    }
    sh.identity.send_replace(Some(new));
}

