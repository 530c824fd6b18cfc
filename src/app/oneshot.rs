//! The one-shot commands: `resolve`, `unregister` and `pull` (`status` is in `status.rs`).

use std::process::ExitCode;
use std::time::Duration;

use super::exit::EXIT_CONFIG;
use crate::config;
use crate::daemon::settings::{self, InForce};
use crate::daemon::{self, slave};

async fn name_servers(cfg: &InForce) -> Result<Vec<String>, String> {
    if let Some(url) = cfg.address_server_url() {
        let server = settings::address_server(cfg, url, Duration::from_secs(3))
            .map_err(|e| e.to_string())?;
        match server.fetch().await {
            Ok(list) => return Ok(list),
            Err(e) if cfg.namesrv.addrs.is_empty() => return Err(e.to_string()),
            Err(e) => eprintln!("address server failed ({e}); using namesrv.addrs"),
        }
    }
    Ok(cfg.namesrv.addrs.clone())
}

pub(super) async fn resolve(cfg: &InForce) -> ExitCode {
    match name_servers_or_exit(cfg).await {
        Ok(list) => {
            for a in list {
                say!("{a}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The NameServer list, or the exit code after saying why there is none.
async fn name_servers_or_exit(cfg: &InForce) -> Result<Vec<String>, ExitCode> {
    name_servers(cfg).await.map_err(|e| {
        eprintln!("rmq-registrar: {e}");
        ExitCode::FAILURE
    })
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
    let mut addrs = name_servers_or_exit(cfg).await?;
    if addrs.is_empty() {
        addrs = from_broker;
    }
    Ok((id, addrs))
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
