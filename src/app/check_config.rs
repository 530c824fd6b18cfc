//! `check-config`: every key's value and where it came from, or the TOML in force.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::{self, Config};
use crate::daemon;
use crate::daemon::settings::InForce;

/// With the identity from the broker, the values it gives now, by config key (those the
/// operator set are not asked); or why it could not be asked.
pub(super) type BrokerValues = Option<(String, Result<Vec<(&'static str, String)>, String>)>;

/// Asks the broker (identity from the broker) for what `check-config` shows as its values.
pub(super) fn from_broker(cfg: &InForce) -> BrokerValues {
    if cfg.broker.identity != config::IdentitySource::Broker {
        return None;
    }
    let addr = cfg.broker_check_addr().to_string();
    let ask = async {
        let api = daemon::build_api(cfg, None).map_err(|e| config::error_chain(&e))?;
        let r = api
            .broker_report(&addr, cfg.broker.health.timeout.max(Duration::from_secs(1)))
            .await;
        api.client().shutdown();
        r.map_err(|e| e.to_string())
    };
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(ask));
    let values = report.map(|r| {
        let q = |s: &str| format!("{s:?}");
        let mut v = vec![
            ("broker.cluster", q(&r.cluster)),
            ("broker.name", q(&r.name)),
            (
                "broker.id",
                r.id.map_or("-1 (no id yet: no election yet)".into(), |i| i.to_string()),
            ),
            ("broker.addr", q(&r.addr)),
            ("broker.ha_addr", q(&r.ha_addr)),
        ];
        if let Some(p) = r.permission {
            v.push(("broker.permission", p.to_string()));
        }
        if let Some(n) = r.split_size {
            v.push(("register.split_size", n.to_string()));
        }
        if let Some(b) = r.always_split {
            v.push(("register.always_split", b.to_string()));
        }
        if cfg.namesrv.addrs.is_empty() && cfg.address_server_url().is_none() {
            v.push(("namesrv.addrs", format!("{:?}", r.namesrv_addrs)));
        }
        v.retain(|(k, _)| !cfg.pinned.contains(k));
        v
    });
    Some((addr, values))
}

pub(super) fn print_config(
    loaded: &config::Loaded,
    broker: &BrokerValues,
    show_secrets: bool,
    flags: &[(&str, &'static str)],
) {
    let value = serde_json::to_value(&loaded.config).unwrap_or_default();
    let mut lines = Vec::new();
    leaves("", &value, &mut lines);
    for (key, val) in lines {
        // main turns --broker-conf and --broker into environment variables (so that SIGHUP
        // reads them too); the operator typed the flag, so name that.
        let flag = flags.iter().find(|(k, _)| *k == key).map(|(_, f)| *f);
        let source = match (flag, loaded.figment.find_metadata(&key)) {
            (Some(f), _) => f.to_string(),
            (None, Some(meta)) => config::describe_key(meta, &key),
            (None, None) => "built-in default".into(),
        };
        let (val, source) = match broker {
            Some((addr, Ok(values))) => match values.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => (v.clone(), format!("the broker at {addr}")),
                None => (val, source),
            },
            Some((addr, Err(why)))
                if config::FROM_BROKER.contains(&key.as_str()) && !loaded.pinned.contains(&key) =>
            {
                (
                    val,
                    format!("the broker at {addr} at run time (cannot ask it now: {why})"),
                )
            }
            _ => (val, source),
        };
        // An unset key with a derived default: what it resolves to says more than `null`.
        let (val, source) = match derived(&loaded.config, &key) {
            Some((value, from)) if val == "null" => (value.to_string(), from.to_string()),
            _ => (val, source),
        };
        let (val, source) =
            if config::SECRET_KEYS.contains(&key.as_str()) && val != "null" && !show_secrets {
                (
                    "\"***\"".to_string(),
                    format!("{source}; --show-secrets prints it"),
                )
            } else {
                (val, source)
            };
        say!("{key} = {val}    # {source}");
    }
}

/// What an unset key with a derived default resolves to, and from what.
fn derived(cfg: &Config, key: &str) -> Option<(serde_json::Value, &'static str)> {
    Some(match key {
        "broker.ha_addr" => (
            cfg.ha_addr().into(),
            "derived: host of broker.addr, port + 1",
        ),
        "broker.health.addr" => (cfg.broker_check_addr().into(), "derived: broker.addr"),
        "broker.health.tls" => (cfg.broker_tls().into(), "derived: tls.enable"),
        _ => return None,
    })
}

/// The effective configuration as a TOML file that loads back to it. Secrets are left out
/// unless asked for: the file is meant to be kept, and the secret belongs in the environment.
pub(super) fn print_toml(cfg: &Config, show_secrets: bool) -> ExitCode {
    let mut shown = cfg.clone();
    let mut left_out = Vec::new();
    if !show_secrets {
        for (key, slot) in [
            ("acl.secret_key", &mut shown.acl.secret_key),
            ("acl.security_token", &mut shown.acl.security_token),
            ("drain.token", &mut shown.drain.token),
        ] {
            if slot.take().is_some() {
                left_out.push(key);
            }
        }
    }
    match toml::to_string(&shown) {
        Ok(text) => {
            for key in left_out {
                let var = config::env_var(key);
                say!("# {key} left out: set {var}, or print it with --show-secrets");
            }
            say!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rmq-registrar: cannot write the configuration as TOML: {e}");
            ExitCode::FAILURE
        }
    }
}

fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&key, child, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}
