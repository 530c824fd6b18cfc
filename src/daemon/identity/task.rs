//! The identity task: the one publisher of who the broker is.

use std::sync::Arc;

use super::state::{describe, Change, Current};
use crate::daemon::publisher::{follow, IdentityOut};
use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;
use crate::broker::BrokerIdentity;
use crate::config::IdentitySource;

/// Publishes who the broker is, the one writer of the identity watch: the configuration's
/// (at start and after a reload), or, with the identity from the broker, what its last usable
/// health answer said under the values the operator set. Logs elections and counts them.
pub(crate) async fn identity_loop(sh: Arc<Shared>, out: Arc<IdentityOut>) -> TaskResult {
    let mut configs = follow(&sh.config);
    let mut reports = follow(&sh.report);
    loop {
        let cfg = configs.borrow_and_update().clone();
        let report = reports.borrow_and_update().clone();
        let before = sh.current();
        // The broker answered but has no id (a controller-mode slave before the controller
        // gave it one, a DLedger node before an election): the gauge says -1 while the
        // identity last registered is kept.
        let no_id = cfg.broker.identity == IdentitySource::Broker
            && report.as_ref().is_some_and(|r| r.id.is_none());
        let now = match cfg.broker.identity {
            IdentitySource::Config => Some((Current::from_config(&cfg), None)),
            IdentitySource::Broker => report
                .and_then(|r| Current::reported(&cfg, &cfg.pinned, &r))
                .map(|c| c.kept_in_place(before.as_ref())),
        };
        let now = match now {
            Some((c, elsewhere)) => {
                refused(&out, c.id.clone(), elsewhere);
                Some(c)
            }
            None => before.clone(),
        };
        publish(&out, before, now);
        if no_id {
            out.metrics.set_id(None);
        }
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            r = configs.changed() => r?,
            r = reports.changed() => r?,
        }
    }
}

/// The broker reports itself as `elsewhere` (another cluster, name or address than `kept`,
/// still registered): one ERROR when that starts or changes, the gauge, and /readyz.
fn refused(out: &IdentityOut, kept: BrokerIdentity, elsewhere: Option<String>) {
    out.metrics.set_elsewhere(elsewhere.is_some());
    out.elsewhere.send_if_modified(|known| {
        if *known == elsewhere {
            return false;
        }
        match &elsewhere {
            Some(new) => tracing::error!(
                old = %describe(&kept), %new,
                "the broker reports another cluster, name or address: keeping the old ones (restart the daemon to move it)"
            ),
            None => tracing::info!(identity = %describe(&kept), "the broker reports the registered cluster, name and address again"),
        }
        *known = elsewhere;
        true
    });
}

/// Publishes `now` if it differs from `before`, with its log line and metrics.
fn publish(out: &IdentityOut, before: Option<Current>, now: Option<Current>) {
    let Some(new) = now else {
        out.metrics.set_id(None);
        return;
    };
    out.metrics.set_id(Some(new.id.id));
    match (new.change_from(before.as_ref()), &before) {
        (Change::None, _) => return,
        (Change::Role, Some(old)) => {
            out.metrics.identity_changed();
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
    out.identity.send_replace(Some(new));
}

