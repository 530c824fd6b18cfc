//! The one-shot commands: `resolve`, `unregister` and `pull` (`status` is in `status.rs`).

use std::process::ExitCode;
use std::time::Duration;

use super::exit::EXIT_CONFIG;
use crate::config;
use crate::daemon::settings::{self, InForce};
use crate::daemon::{self, slave};
use crate::sources::{Lookup, NamesrvList, Plan, Sources, SourcesView};
use futures_util::future::join_all;

/// Every source asked once, all at once, as the daemon combines them: the list and what each
/// source gave. `broker` is the broker's own list (used when the configuration names none).
async fn gather(cfg: &InForce, broker: &[String]) -> (NamesrvList, SourcesView) {
    let plan = Plan::new(cfg, broker);
    let mut sources = Sources::default();
    sources.follow(&plan);
    let (family, timeout) = (cfg.namesrv.resolve_family, cfg.register.timeout);
    let lookups = plan.names().into_iter().map(|k| async move {
        let r = Lookup::default().run(&k, family, timeout).await;
        (k, r)
    });
    let server = async {
        let url = cfg.address_server_url()?;
        let server = match settings::address_server(cfg, url, Duration::from_secs(3)) {
            Ok(s) => s,
            Err(e) => return Some(Err(e.to_string())),
        };
        Some(server.fetch().await.map_err(|e| e.to_string()))
    };
    let (answers, server) = futures_util::future::join(join_all(lookups), server).await;
    let now = tokio::time::Instant::now();
    for (k, r) in answers {
        sources.take_lookup(&k, r, now);
    }
    if let Some(r) = server {
        sources.take_server(r);
    }
    (sources.list(&plan), sources.view(&plan))
}

pub(super) async fn resolve(cfg: &InForce) -> ExitCode {
    match name_servers_or_exit(cfg, &[]).await {
        Ok(list) => {
            for a in list.addrs {
                say!("{a}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The NameServer list (what each source gave said on stderr), or the exit code after saying
/// why there is none.
async fn name_servers_or_exit(cfg: &InForce, broker: &[String]) -> Result<NamesrvList, ExitCode> {
    let (list, view) = gather(cfg, broker).await;
    for s in &view.0 {
        let addrs = s.addrs.join(" ");
        let unused = if s.used {
            ""
        } else {
            " (not used: the address server answered)"
        };
        match &s.error {
            Some(e) => eprintln!("{}: {addrs}{unused} (failed: {e})", s.source),
            None => eprintln!("{}: {addrs}{unused}", s.source),
        }
    }
    if list.addrs.is_empty() {
        let why = view.empty_reasons();
        eprintln!("rmq-registrar: no NameServer address: {}", why.join("; "));
        return Err(ExitCode::FAILURE);
    }
    Ok(list)
}

/// Exit for a TLS client that cannot be built (the config's key and why).
fn tls_failed(e: &crate::tls::TlsError) -> ExitCode {
    eprintln!("rmq-registrar: `{}`: {}", e.key(), config::error_chain(e));
    ExitCode::from(EXIT_CONFIG)
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The identity and NameServers a one-shot command works with (identity from the broker: the
/// broker is asked), or the exit code after saying why there are none.
async fn identity_or_exit(
    cfg: &InForce,
    api: &crate::broker::BrokerApi,
) -> Result<(crate::broker::BrokerIdentity, Vec<String>), ExitCode> {
    let broker = cfg.broker_check_addr();
    let (id, from_broker) = match daemon::identity_now(cfg, api).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            eprintln!("rmq-registrar: the broker at {broker} has no id yet (no election yet)");
            return Err(ExitCode::FAILURE);
        }
        Err(e) => {
            eprintln!("rmq-registrar: cannot ask the broker at {broker} who it is: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let list = name_servers_or_exit(cfg, &from_broker).await?;
    api.client().set_tls_names(list.names);
    Ok((id, list.addrs))
}

/// The client, identity and NameServers `unregister` and `status` work with, or the exit code
/// after saying why there are none.
pub(super) async fn api_and_identity(
    cfg: &InForce,
) -> Result<
    (
        crate::broker::BrokerApi,
        crate::broker::BrokerIdentity,
        Vec<String>,
    ),
    ExitCode,
> {
    let api = daemon::build_api(cfg, None).map_err(|e| tls_failed(&e))?;
    let (id, addrs) = identity_or_exit(cfg, &api).await?;
    Ok((api, id, addrs))
}

pub(super) async fn unregister(cfg: &InForce) -> ExitCode {
    let (api, id, addrs) = match api_and_identity(cfg).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    let outcomes = daemon::unregister_once(&api, &addrs, &id, cfg.register.timeout).await;
    let mut failed = false;
    for o in outcomes {
        match o {
            daemon::Once::Sent(o) => match o.result {
                Ok(()) => say!("{}\tok\t{}ms", o.addr, o.elapsed.as_millis()),
                Err(e) => {
                    failed = true;
                    say!("{}\terror\t{e}", o.addr);
                }
            },
            // Not a failure when what is there is not this broker's to remove.
            daemon::Once::Held {
                addr,
                why,
                failed: false,
            } => say!("{addr}\tnot sent\t{why}"),
            daemon::Once::Held { addr, why, .. } => {
                failed = true;
                say!("{addr}\terror\t{why}");
            }
        }
    }
    api.client().shutdown();
    exit_code(!failed)
}

pub(super) async fn pull(
    cfg: &InForce,
    master: &str,
    out: &std::path::Path,
    vip: bool,
) -> ExitCode {
    let api = match daemon::build_api(cfg, None) {
        Ok(a) => a,
        Err(e) => return tls_failed(&e),
    };
    let mode = cfg
        .slave_file_mode()
        .unwrap_or(crate::daemon::files::DEFAULT_MODE);
    let (results, _) =
        slave::pull_all(&api, master, vip, Some((out, mode)), cfg.register.timeout).await;
    let mut failed = false;
    for r in results {
        match r.result {
            Ok(true) => say!("{}\twritten\t{}", r.kind, out.join(r.file).display()),
            Ok(false) => say!("{}\tunchanged\t{}", r.kind, out.join(r.file).display()),
            Err(e) => {
                failed = true;
                say!("{}\terror\t{e}", r.kind);
            }
        }
    }
    api.client().shutdown();
    exit_code(!failed)
}
