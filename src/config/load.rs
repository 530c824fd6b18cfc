//! Loading: the figment source stack (defaults < NAMESRV_ADDR < broker.conf < TOML file <
//! environment < command line), extraction, validation, which keys the operator set, and where each value
//! came from for messages.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Metadata};

use super::broker_section::TopicSource;
use super::brokerconf;
use super::error::ConfigError;
use super::model::{Config, ENV_PREFIX};
use super::pinned::{pinnable, Pinned};
use super::validate::{heartbeat_timeout_floor, validate};

/// A loaded, validated configuration and where each value came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Which of the values the broker also gives the operator set.
    pub pinned: Pinned,
    /// The merged sources, for `check-config`.
    pub figment: Figment,
    /// Values adjusted on the way in (e.g. a clamped broker.conf period), to log once.
    pub warnings: Vec<String>,
}

impl Loaded {
    /// A problem with `key` found after loading (a TLS file that cannot be read), named with
    /// where the key's value came from, as a loading error would be.
    pub fn error(&self, key: &str, reason: String) -> ConfigError {
        ConfigError {
            key: key.into(),
            source_name: describe_in(&self.figment, key),
            reason,
        }
    }
}

/// Where a value came from, for messages: a file path, an environment variable, a flag, or the
/// defaults.
pub fn describe(meta: &Metadata) -> String {
    match &meta.source {
        Some(figment::Source::File(path)) => format!("{} {}", meta.name, path.display()),
        // TOML given as text, not read from a file (figment: "TOML source string").
        _ if meta.name.starts_with("TOML") => "TOML text".into(),
        _ if meta.name.contains("environment")
            || meta.name.starts_with("broker.conf")
            || meta.name.ends_with(ON_THE_COMMAND_LINE) =>
        {
            meta.name.to_string()
        }
        _ => "built-in default".into(),
    }
}

/// Where the value of `key` came from: as [`describe`], but an environment variable is named.
pub fn describe_key(meta: &Metadata, key: &str) -> String {
    // figment names its provider "`RMQ_REGISTRAR_` environment variable(s)", which does not
    // tell the operator which one to fix.
    if meta.name.contains(ENV_PREFIX) {
        return format!("environment variable {}", env_var(key));
    }
    describe(meta)
}

/// The `RMQ_REGISTRAR_*` variable that sets `key` (`broker.health.check` ->
/// `RMQ_REGISTRAR_BROKER__HEALTH__CHECK`).
pub fn env_var(key: &str) -> String {
    // An element of a list (`broker.topics.inline[0].perm`) is set with its whole list.
    let key = key.split('[').next().unwrap_or(key);
    let parts: Vec<String> = key.split('.').map(str::to_ascii_uppercase).collect();
    format!("{ENV_PREFIX}{}", parts.join("__"))
}

/// The source of `key` for a message. An element of a list has no metadata of its own: its
/// list's is used.
fn describe_in(figment: &Figment, key: &str) -> String {
    let list = key.split('[').next().unwrap_or(key);
    figment
        .find_metadata(key)
        .or_else(|| figment.find_metadata(list))
        .map_or_else(|| "built-in default".into(), |m| describe_key(m, key))
}

/// RocketMQ's own `NAMESRV_ADDR`, named as itself in messages (figment would call it
/// "environment variable(s)").
struct NamesrvAddrEnv;

impl figment::Provider for NamesrvAddrEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable NAMESRV_ADDR")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Env::raw()
            .only(&["NAMESRV_ADDR"])
            .map(|_| "namesrv.addrs".into())
            .data()
    }
}

/// How a flag's values are named in messages: `--broker on the command line`.
const ON_THE_COMMAND_LINE: &str = " on the command line";

/// The configuration flags of the command line (`--broker`, `--broker-conf`): the keys they set,
/// above every other source, and named as the flag in messages.
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    /// `--broker ADDR`: `broker.identity = "broker"`, `broker.health.addr = ADDR`,
    /// `broker.topics.source = "broker"`.
    pub broker: Option<String>,
    /// `--broker-conf FILE`: `broker.conf_file = FILE`.
    pub broker_conf: Option<PathBuf>,
}

/// The flags of this process, for every load of it: the start and each SIGHUP reload (which
/// loads as the start did, so the flags are kept as the process's environment is).
static COMMAND_LINE: OnceLock<CommandLine> = OnceLock::new();

/// Records the command line's configuration flags for every later load in this process. Set
/// once, before the first load; a second call changes nothing.
pub fn set_command_line(flags: CommandLine) {
    let _ = COMMAND_LINE.set(flags);
}

/// One flag's values, named as the flag (figment would name them "Serialized").
struct Flag {
    name: &'static str,
    values: Vec<(&'static str, Value)>,
}

impl figment::Provider for Flag {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("{}{ON_THE_COMMAND_LINE}", self.name))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.values {
            if let Value::Dict(_, nested) = figment::util::nest(key, value.clone()) {
                merge_into(&mut dict, nested);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// The flags of `cl` as sources, each on its own so that a message names the flag.
fn flags(cl: &CommandLine) -> Vec<Flag> {
    let mut out = Vec::new();
    if let Some(p) = &cl.broker_conf {
        out.push(Flag {
            name: "--broker-conf",
            values: vec![("broker.conf_file", p.display().to_string().into())],
        });
    }
    if let Some(addr) = &cl.broker {
        out.push(Flag {
            name: "--broker",
            values: vec![
                ("broker.identity", "broker".into()),
                ("broker.health.addr", addr.clone().into()),
                ("broker.topics.source", "broker".into()),
            ],
        });
    }
    out
}

/// Builds the source stack (without a broker.conf).
pub fn figment(file: Option<&Path>) -> Figment {
    figment_with(file, Vec::new())
}

/// The source stack: defaults < NAMESRV_ADDR < broker.conf < TOML file < environment <
/// command line.
fn figment_with(file: Option<&Path>, broker_conf: Vec<brokerconf::Prop>) -> Figment {
    let mut f = Figment::from(Serialized::defaults(Config::default()));
    // RocketMQ's own variable, below the file as in Java (namesrvAddr > NAMESRV_ADDR).
    f = f.merge(NamesrvAddrEnv);
    for p in broker_conf {
        f = f.merge(p);
    }
    if let Some(path) = file {
        f = f.merge(Toml::file_exact(path));
    }
    f = f.merge(PrefixedEnv(
        Env::prefixed(ENV_PREFIX).ignore(&["CONFIG"]).split("__"),
    ));
    // A flag typed for this run wins over the environment it runs in.
    for flag in COMMAND_LINE.get().map(flags).unwrap_or_default() {
        f = f.merge(flag);
    }
    f
}

/// The `RMQ_REGISTRAR_*` variables, each read as the key it sets takes it.
///
/// figment's `Env` reads every value as data: `0644` becomes the number 644 and `123456` a
/// number, which a text key (`acl.secret_key`, `slave.file_mode`, `broker.name`) refuses, and
/// a leading zero is lost. A value is read as data only where its key takes that; otherwise it
/// is the text as written.
struct PrefixedEnv(Env);

impl figment::Provider for PrefixedEnv {
    fn metadata(&self) -> Metadata {
        // The same name as figment's own provider: messages name the variable from it.
        self.0.metadata()
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, raw) in self.0.iter() {
            let key = key.as_str();
            let Ok(parsed) = raw.parse::<Value>();
            let value = if matches!(parsed, Value::String(..)) || takes(key, &parsed) {
                parsed
            } else if takes(key, &Value::from(raw.clone())) {
                Value::from(raw)
            } else {
                // Neither fits: the data reading, so that the error says what was expected.
                parsed
            };
            if let Value::Dict(_, nested) = figment::util::nest(key, value) {
                merge_into(&mut dict, nested);
            }
        }
        Ok(self.0.profile.collect(dict))
    }
}

/// Merges `from` into `into`, tables key by key (`A__B` and `A__C` both set), `from` winning.
fn merge_into(into: &mut Dict, from: Dict) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Dict(_, old)), Value::Dict(_, new)) => merge_into(old, new),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Whether the configuration takes `value` at `key` (its type only: ranges are checked later).
fn takes(key: &str, value: &Value) -> bool {
    Figment::from(Serialized::defaults(Config::default()))
        .merge(Serialized::default(key, value))
        .extract::<Config>()
        .is_ok()
}

/// Loads and validates the configuration from `file` (or none) and the environment.
pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_with(file, |_| {})
}

/// Loads the configuration for a one-shot `pull` or a `drain` request, which use only the
/// remoting, TLS, ACL, slave, HTTP and drain keys: the broker's identity and the NameServers
/// are not required.
pub fn load_for_pull(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_with(file, |c| {
        // Stand-ins that pass validation and are never used; values that are set are still
        // checked.
        if c.broker.name.trim().is_empty() {
            c.broker.name = "pull".into();
        }
        if c.broker.addr.is_empty() {
            c.broker.addr = "127.0.0.1:10911".into();
        }
        if c.address_server_url().is_none() && c.namesrv.addrs.is_empty() {
            c.namesrv.addrs = vec!["127.0.0.1:9876".into()];
        }
    })
}

fn load_with(file: Option<&Path>, fill: impl FnOnce(&mut Config)) -> Result<Loaded, ConfigError> {
    if let Some(path) = file {
        if let Err(e) = std::fs::metadata(path) {
            let reason = format!("cannot read it: {e}");
            return Err(ConfigError::whole(toml_file(path), reason));
        }
    }
    let base = figment(file);
    // Where broker.conf is comes from the TOML file or the environment (or --broker-conf).
    let conf_file: Option<PathBuf> = base.extract_inner("broker.conf_file").ok().flatten();
    let (figment, warnings) = match &conf_file {
        Some(path) => {
            let mapped = brokerconf::load(path)?;
            (figment_with(file, mapped.props), mapped.warnings)
        }
        None => (base, Vec::new()),
    };
    // broker.conf always names the store's topics.json; with the broker as the topic source
    // that file is not read, and not a conflict either.
    let file_from_conf = figment
        .find_metadata("broker.topics.file")
        .is_some_and(|m| m.name.starts_with("broker.conf"));
    let (config, pinned) = extract_valid(&figment, |config| {
        fill(config);
        if config.broker.topics.source == TopicSource::Broker && file_from_conf {
            config.broker.topics.file = None;
        }
    })?;
    Ok(Loaded {
        config,
        pinned,
        figment,
        warnings,
    })
}

/// Reads a configuration from TOML text over the defaults alone (no environment, no files):
/// what `load` does to a file's text, for the fuzzer and for tools.
#[cfg(any(test, feature = "test-util"))]
pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
    let figment = Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text));
    extract_valid(&figment, |_| {}).map(|(config, _)| config)
}

fn extract_valid(
    figment: &Figment,
    adjust: impl FnOnce(&mut Config),
) -> Result<(Config, Pinned), ConfigError> {
    let mut config: Config = figment.extract().map_err(|e| extract_error(figment, e))?;
    adjust(&mut config);
    let pinned = Pinned::from_keys(pinnable(), |k| {
        figment.find_metadata(k).is_some_and(set_by_operator)
    });
    if !pinned.heartbeat_timeout {
        // The default expiry follows the timings up to what they need, so that a config valid
        // before heartbeats (register.timeout = 10s, say) is not refused for a default.
        let floor = heartbeat_timeout_floor(&config.register);
        config.register.heartbeat_timeout = config.register.heartbeat_timeout.map(|t| t.max(floor));
    }
    validate(&config, &pinned).map_err(|e| ConfigError {
        source_name: describe_in(figment, &e.key),
        key: e.key,
        reason: e.reason,
    })?;
    Ok((config, pinned))
}

/// A value from the TOML file or the environment (not a default, not broker.conf).
fn set_by_operator(meta: &Metadata) -> bool {
    !matches!(meta.source, Some(figment::Source::Code(_)))
        && !meta.name.starts_with("broker.conf")
        && !meta.name.contains("NAMESRV_ADDR")
}

/// The first of figment's errors, named by key and source.
fn extract_error(figment: &Figment, e: figment::Error) -> ConfigError {
    let e = e
        .into_iter()
        .next()
        .unwrap_or_else(|| figment::Error::from("unknown error".to_string()));
    let key = e.path.join(".");
    let source_name = match &e.metadata {
        Some(meta) => describe_key(meta, &key),
        None => describe_in(figment, &key),
    };
    let reason = e.kind.to_string();
    if key.is_empty() {
        // The source itself failed: a TOML file that cannot be read (a directory, not UTF-8,
        // no permission) or parsed. figment says which file; the reason says what is wrong.
        let reason = match &e.metadata {
            Some(Metadata {
                source: Some(figment::Source::File(_)),
                ..
            }) if !reason.starts_with("TOML parse error") => format!("cannot read it: {reason}"),
            _ => reason,
        };
        return ConfigError::whole(source_name, reason);
    }
    ConfigError {
        key,
        source_name,
        reason,
    }
}

/// A TOML config file as messages name it, the way figment names the file it reads.
fn toml_file(path: &Path) -> String {
    format!("TOML file {}", path.display())
}

