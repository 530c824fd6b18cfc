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

/// Prints every key's value and where it came from (`check-config`).
pub(super) fn print_config(loaded: &config::Loaded, broker: &BrokerValues, show_secrets: bool) {
    let value = serde_json::to_value(&loaded.config).unwrap_or_default();
    let mut lines = Vec::new();
    leaves("", &value, &mut lines);
    for (key, val) in lines {
        let source = match loaded.figment.find_metadata(&key) {
            Some(meta) => config::describe_key(meta, &key),
            None => "built-in default".into(),
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
        // The expiry's default rises with the timings: that value is not the built-in one.
        let source = match raised_expiry(loaded) {
            Some(from) if key == "register.heartbeat_timeout" => from.to_string(),
            _ => source,
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

/// Where `register.heartbeat_timeout` came from when the loader raised the unset default to
/// what the timings need; `None` when it was set or is the default as built in.
fn raised_expiry(loaded: &config::Loaded) -> Option<&'static str> {
    let r = &loaded.config.register;
    if loaded.pinned.heartbeat_timeout
        || r.heartbeat_timeout == Config::default().register.heartbeat_timeout
    {
        return None;
    }
    Some(match r.heartbeat {
        Some(_) => "derived: the 10s default raised to max(3 x register.heartbeat, register.timeout + 2 x register.heartbeat)",
        None => "derived: the 10s default raised to 2 x register.interval + register.timeout (register.heartbeat = \"off\")",
    })
}

/// The effective configuration as a TOML file that loads back to it. Secrets are left out
/// unless asked for: the file is meant to be kept, and the secret belongs in the environment.
/// With the identity from the broker, the values the broker gives are left out unless the
/// operator set them: written, they would be the operator's and win over the broker's (and a
/// written `broker.id` is refused in that mode).
pub(super) fn print_toml(loaded: &config::Loaded, show_secrets: bool) -> ExitCode {
    let cfg = &loaded.config;
    let mut shown = cfg.clone();
    let mut left_out = Vec::new();
    if !show_secrets {
        for (key, slot) in [
            ("acl.secret_key", &mut shown.acl.secret_key),
            ("acl.security_token", &mut shown.acl.security_token),
        ] {
            if slot.take().is_some() {
                left_out.push(key);
            }
        }
        // Left out, the token would load back as "no token": the drain unguarded. A marker in
        // its place makes the file refuse to load until the token is given again.
        if let Some(t) = shown.drain.token.as_mut() {
            *t = config::TOKEN_LEFT_OUT.to_string();
            left_out.push("drain.token");
        }
    }
    let broker_gives: Vec<&str> = if cfg.broker.identity == config::IdentitySource::Broker {
        loaded.pinned.not_set().collect()
    } else {
        Vec::new()
    };
    let text = toml::Table::try_from(&shown).and_then(|mut table| {
        for key in &broker_gives {
            remove(&mut table, key);
        }
        toml::to_string(&table)
    });
    match text {
        Ok(text) => {
            for key in left_out {
                let var = config::env_var(key);
                if key == "drain.token" {
                    say!("# {key} left out (the file refuses to load until it is given): set {var}, or drain.token_file in its place, or print it with --show-secrets");
                } else {
                    say!("# {key} left out: set {var}, or print it with --show-secrets");
                }
            }
            if !broker_gives.is_empty() {
                say!(
                    "# left out, the broker gives them at run time (broker.identity = \"broker\"): {}",
                    broker_gives.join(", ")
                );
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

/// Removes the dotted `key` from `table`, if there.
fn remove(table: &mut toml::Table, key: &str) {
    match key.split_once('.') {
        Some((section, rest)) => {
            if let Some(toml::Value::Table(inner)) = table.get_mut(section) {
                remove(inner, rest);
            }
        }
        None => {
            table.remove(key);
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
