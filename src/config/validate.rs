//! What types cannot check: addresses, ranges, required keys, keys that go together. Every range
//! is checked by [`within`], so every range message reads "{value} is outside {range}".

use std::ops::{Bound, RangeBounds};
use std::time::Duration;

use super::broker_section::{HealthCheck, HealthConfig, IdentitySource, InlineTopic, TopicSource};
use super::model::{AclConfig, Config, RegisterConfig, RemotingConfig, ENV_CONFIG, ENV_PREFIX};
use super::pinned::Pinned;
use super::serde_helpers::NEVER;
use crate::broker::SPLIT_SIZES;

/// A value that breaks a rule: its dotted key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct Invalid {
    /// Dotted key, e.g. `register.interval` (`broker.topics.inline[0].perm` for an element).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl Invalid {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same, with why the rule is what it is.
    fn note(mut self, note: &str) -> Self {
        self.reason = format!("{} ({note})", self.reason);
        self
    }
}

/// A value a range check prints: durations as they are written in the file, numbers as numbers.
trait Shown: PartialOrd + Copy {
    fn shown(self) -> String;
}

impl Shown for Duration {
    fn shown(self) -> String {
        // Up to two minutes, whole seconds read as seconds: the README writes 10s..=60s, where
        // humantime would write 10s..=1m.
        if self < Duration::from_secs(120) && self.subsec_nanos() == 0 && self.as_secs() > 0 {
            return format!("{}s", self.as_secs());
        }
        humantime::format_duration(self).to_string()
    }
}

macro_rules! shown_as_display {
    ($($t:ty),*) => {
        $(impl Shown for $t {
            fn shown(self) -> String {
                self.to_string()
            }
        })*
    };
}

shown_as_display!(u32, u64, usize, i32);

/// `value` within `range`, or "{value} is outside {range}", the range written as in the README
/// (`lo..=hi`, `lo..hi`, `lo..`).
fn within<T: Shown>(key: &str, value: T, range: impl RangeBounds<T>) -> Result<(), Invalid> {
    if range.contains(&value) {
        return Ok(());
    }
    let end = |b: Bound<&T>| match b {
        Bound::Included(v) | Bound::Excluded(v) => v.shown(),
        Bound::Unbounded => String::new(),
    };
    let dots = match range.end_bound() {
        Bound::Included(_) => "..=",
        _ => "..",
    };
    Err(Invalid::new(
        key,
        format!(
            "{} is outside {}{dots}{}",
            value.shown(),
            end(range.start_bound()),
            end(range.end_bound())
        ),
    ))
}

/// One `host:port`.
fn addr(key: &str, value: &str) -> Result<(), Invalid> {
    crate::address_server::validate_addr(value).map_err(|r| Invalid::new(key, r.to_string()))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

const DAY: Duration = Duration::from_secs(86_400);

/// The largest frame: its length is a Java `int`.
const LARGEST_FRAME: usize = 0x7FFF_FFFF;

/// Java's `PermName.isValid`: below PERM_PRIORITY (8). A larger value is no permission (9 with
/// broker.permission = 4 was registered as perm 0).
const PERM_BITS: std::ops::RangeInclusive<u32> = 0..=7;

fn perm_bits(e: Invalid) -> Invalid {
    e.note("4 read, 2 write, 1 inherit")
}

/// Says where a missing identity key is set: an installed or container config has none of its
/// own, so "is required" alone leaves the operator guessing which file or variable to fill.
fn required(key: &str, broker_conf: &str) -> String {
    format!(
        "is required: set `{key}` under [broker] in the config file (--config or \
         {ENV_CONFIG}), {ENV_PREFIX}BROKER__{upper} in the environment, or {broker_conf} \
         in the broker's broker.conf (--broker-conf or broker.conf_file)",
        upper = key.to_uppercase()
    )
}

/// Checks what types cannot: addresses, ranges, required keys. The first problem is reported.
pub fn validate(c: &Config, pinned: &Pinned) -> Result<(), Invalid> {
    broker_identity(c, pinned)?;
    within("register.split_size", c.register.split_size, SPLIT_SIZES)?;
    if let Some(p) = c.broker.permission {
        within("broker.permission", p, PERM_BITS).map_err(perm_bits)?;
    }
    within("broker.version", c.broker.version, 0..=i32::from(i16::MAX))?;
    namesrv_sources(c)?;
    periods(c)?;
    heartbeat(&c.register)?;
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log.level) {
        let reason = format!("{:?} is not a log filter: {e}", c.log.level);
        return Err(Invalid::new("log.level", reason));
    }
    within(
        "register.interval",
        c.register.interval,
        secs(10)..=secs(60),
    )?;
    slave_file_mode(c)?;
    if let Some(m) = &c.slave.master_addr {
        addr("slave.master_addr", m)?;
    }
    frames(&c.remoting)?;
    health(&c.broker.health)?;
    drain(&c.drain)?;
    route(&c.route)?;
    within("fault.disk_margin", c.fault.disk_margin, 0..=20)?;
    within("fault.min_writable", c.fault.min_writable, 0..=1000)?;
    // The fault drain ends below threshold - 2 x margin: that level must exist, for the lowest
    // threshold a broker may have (35 %) or the one set.
    let lowest = c.fault.disk_threshold.unwrap_or(35);
    if 2 * c.fault.disk_margin >= lowest {
        return Err(Invalid::new(
            "fault.disk_margin",
            format!(
                "{}: a fault drain ends below the threshold ({lowest} %) minus twice the margin, which must stay above 0",
                c.fault.disk_margin
            ),
        ));
    }
    if let Some(t) = c.fault.disk_threshold {
        within("fault.disk_threshold", t, 1..=99)?;
    }
    if c.broker.topics.source == TopicSource::Broker && c.broker.topics.file.is_some() {
        return Err(Invalid::new(
            "broker.topics.file",
            "is not read with broker.topics.source = \"broker\" (the broker is asked instead): remove one",
        ));
    }
    permits(&c.remoting)?;
    listen("http.listen", &c.http.listen)?;
    if let Some(l) = &c.drain.listen {
        listen("drain.listen", l)?;
        if same_port(l, &c.http.listen) {
            return Err(Invalid::new(
                "drain.listen",
                format!(
                    "takes the port of http.listen ({}): leave it unset to serve /drain there, or give it a port of its own",
                    c.http.listen
                ),
            ));
        }
    }
    if let Some(name) = &c.tls.server_name {
        crate::tls::server_name("", Some(name))
            .map_err(|r| Invalid::new("tls.server_name", r.to_string()))?;
    }
    acl(&c.acl)?;
    inline_topics(&c.broker.topics.inline)
}

/// Who the broker is: its name, cluster and addresses, or, with the identity from the broker,
/// how to ask it.
fn broker_identity(c: &Config, pinned: &Pinned) -> Result<(), Invalid> {
    let from_broker = c.broker.identity == IdentitySource::Broker;
    if from_broker {
        identity_from_broker(c, pinned)?;
    } else if c.broker.name.trim().is_empty() {
        return Err(Invalid::new("broker.name", required("name", "brokerName")));
    }
    if c.broker.cluster.trim().is_empty() {
        return Err(Invalid::new("broker.cluster", "must not be empty"));
    }
    if from_broker && c.broker.addr.is_empty() {
        // The broker says where it listens.
    } else if c.broker.addr.is_empty() {
        let reason = required("addr", "brokerIP1 and listenPort");
        return Err(Invalid::new("broker.addr", reason));
    } else {
        addr("broker.addr", &c.broker.addr)?;
    }
    if let Some(ha) = &c.broker.ha_addr {
        addr("broker.ha_addr", ha)?;
    }
    Ok(())
}

/// With the identity from the broker: it must be asked (a remoting check at a known address),
/// and its id is its own.
fn identity_from_broker(c: &Config, pinned: &Pinned) -> Result<(), Invalid> {
    if c.broker.health.check != HealthCheck::Remoting {
        return Err(Invalid::new(
            "broker.health.check",
            "must be \"remoting\" with broker.identity = \"broker\": the identity is read by the health check (GET_BROKER_CONFIG)",
        ));
    }
    if pinned.id {
        return Err(Invalid::new(
            "broker.id",
            "cannot be set with broker.identity = \"broker\": the id is the broker's own (DLedger and controller elections change it)",
        ));
    }
    // A value set by the operator wins over the broker's: an empty one would be registered as
    // it is (and refused by the NameServer), which no one means. Unset is how to take the
    // broker's.
    for (key, set, value) in [
        ("broker.name", pinned.name, &c.broker.name),
        ("broker.addr", pinned.addr, &c.broker.addr),
    ] {
        if set && value.trim().is_empty() {
            return Err(Invalid::new(
                key,
                "is set but empty: with broker.identity = \"broker\" leave it unset (remove the key or the variable) to take the broker's, or give a value",
            ));
        }
    }
    if c.broker_check_addr().is_empty() {
        return Err(Invalid::new(
            "broker.health.addr",
            "is required with broker.identity = \"broker\": where to ask the broker (--broker ADDR)",
        ));
    }
    addr("broker.health.addr", c.broker_check_addr())
}

/// At least one way to find the NameServers (the broker gives none), each usable.
fn namesrv_sources(c: &Config) -> Result<(), Invalid> {
    for a in &c.namesrv.addrs {
        addr("namesrv.addrs", a)?;
    }
    if c.namesrv.addrs.is_empty()
        && c.namesrv.address_server.is_none()
        && c.namesrv.domain.is_none()
        && c.broker.identity != IdentitySource::Broker
    {
        return Err(Invalid::new(
            "namesrv.addrs",
            "no NameServer source: set namesrv.addrs, namesrv.address_server, namesrv.domain or NAMESRV_ADDR",
        ));
    }
    if let Some(url) = &c.namesrv.address_server {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            let reason = format!("{url:?} is not an http:// URL");
            return Err(Invalid::new("namesrv.address_server", reason));
        }
    }
    Ok(())
}

/// Periods and timeouts: zero or absurd values become reconnect storms or overflow an
/// `Instant`.
fn periods(c: &Config) -> Result<(), Invalid> {
    let refresh = c.namesrv.refresh_interval;
    within("namesrv.refresh_interval", refresh, secs(1)..=DAY)?;
    let resolve = c.namesrv.resolve_interval;
    within("namesrv.resolve_interval", resolve, secs(1)..=secs(3600))?;
    within(
        "register.timeout",
        c.register.timeout,
        millis(100)..=secs(60),
    )?;
    within("slave.sync_interval", c.slave.sync_interval, secs(1)..=DAY)?;
    let connect = c.remoting.connect_timeout;
    within("remoting.connect_timeout", connect, millis(10)..=secs(60))?;
    within(
        "remoting.idle_timeout",
        c.remoting.idle_timeout,
        secs(1)..=DAY,
    )?;
    for (key, value) in [
        (
            "register.force_every",
            c.register.force_every.filter(|d| *d != NEVER),
        ),
        ("register.heartbeat_timeout", c.register.heartbeat_timeout),
    ] {
        if let Some(v) = value {
            within(key, v, secs(1)..=DAY * 7)?;
        }
    }
    Ok(())
}

/// The read-back's periods: an audit costs each NameServer a route read, so not more than a
/// few a second; the cluster-wide read is O(brokers), so not more often than the audit.
fn route(r: &super::model::RouteConfig) -> Result<(), Invalid> {
    if let Some(a) = r.audit_interval {
        within("route.audit_interval", a, secs(1)..=secs(600)).map_err(|e| e.note("or \"off\""))?;
        if r.full_audit_interval < a {
            return Err(Invalid::new(
                "route.full_audit_interval",
                format!(
                    "{} is shorter than route.audit_interval ({})",
                    humantime::format_duration(r.full_audit_interval),
                    humantime::format_duration(a)
                ),
            ));
        }
    }
    within("route.full_audit_interval", r.full_audit_interval, secs(1)..=DAY)?;
    if let Some(t) = &r.audit_topic {
        if t.trim().is_empty() || t.len() > 127 {
            return Err(Invalid::new(
                "route.audit_topic",
                "must be a topic name (1..=127 characters): leave it unset for the broker's own topic",
            ));
        }
    }
    Ok(())
}

/// The least NameServer expiry the heartbeat timings allow: max(3 x heartbeat, timeout +
/// 2 x heartbeat); with heartbeats off, 2 x interval + timeout. A NameServer must not drop a
/// broker whose heartbeats are on time but one slow exchange (`register.timeout`) late.
pub(super) fn heartbeat_timeout_floor(r: &RegisterConfig) -> Duration {
    match r.heartbeat {
        Some(hb) => (hb * 3).max(r.timeout + hb * 2),
        None => r.interval * 2 + r.timeout,
    }
}

/// The heartbeat's period, and an expiry it can keep.
fn heartbeat(r: &RegisterConfig) -> Result<(), Invalid> {
    let key = "register.heartbeat_timeout";
    let least = heartbeat_timeout_floor(r);
    let Some(hb) = r.heartbeat else {
        if let Some(t) = r.heartbeat_timeout {
            within(key, t, least..).map_err(|e| {
                e.note("with register.heartbeat = \"off\": \"off\" or at least 2 x register.interval + register.timeout")
            })?;
        }
        return Ok(());
    };
    within("register.heartbeat", hb, millis(200)..=secs(10)).map_err(|e| e.note("or \"off\""))?;
    if let Some(t) = r.heartbeat_timeout {
        within(key, t, least..).map_err(|e| {
            e.note("\"off\" or at least max(3 x register.heartbeat, register.timeout + 2 x register.heartbeat)")
        })?;
    }
    Ok(())
}

/// Frame limits: a reply may be larger than a request, never smaller.
fn frames(r: &RemotingConfig) -> Result<(), Invalid> {
    within("remoting.max_frame", r.max_frame, 1024..=LARGEST_FRAME)?;
    within(
        "remoting.max_reply_frame",
        r.max_reply_frame,
        r.max_frame..=LARGEST_FRAME,
    )
    .map_err(|e| e.note("at least remoting.max_frame"))
}

/// Concurrency limits.
fn permits(r: &RemotingConfig) -> Result<(), Invalid> {
    // tokio's semaphore holds at most MAX_PERMITS; more would panic at start.
    let permits = 1..=tokio::sync::Semaphore::MAX_PERMITS.min(1 << 20);
    within("remoting.async_permits", r.async_permits, permits.clone())?;
    within("remoting.oneway_permits", r.oneway_permits, permits)
}

fn health(h: &HealthConfig) -> Result<(), Invalid> {
    within(
        "broker.health.interval",
        h.interval,
        millis(100)..=secs(300),
    )?;
    within("broker.health.timeout", h.timeout, millis(50)..h.interval)
        .map_err(|e| e.note("below broker.health.interval"))?;
    within("broker.health.failures", h.failures, 1..=100)?;
    if let Some(a) = &h.addr {
        addr("broker.health.addr", a)?;
    }
    Ok(())
}

/// Two listeners that could not both be bound: the same port (not 0, which is picked at
/// start) on the same address, or on any address where one is a wildcard.
fn same_port(a: &str, b: &str) -> bool {
    match (a.parse::<std::net::SocketAddr>(), b.parse::<std::net::SocketAddr>()) {
        (Ok(a), Ok(b)) => {
            a.port() == b.port()
                && a.port() != 0
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
        }
        _ => false,
    }
}

fn listen(key: &str, value: &str) -> Result<(), Invalid> {
    match value.parse::<std::net::SocketAddr>() {
        Ok(_) => Ok(()),
        Err(_) => Err(Invalid::new(key, format!("{value:?} is not ip:port"))),
    }
}

/// An octal mode the broker can read the slave's files with: some read bit set (the broker
/// usually runs as another user; a mode such as "0" or "0200" leaves it nothing to read).
fn slave_file_mode(c: &Config) -> Result<(), Invalid> {
    let Some(mode) = c.slave_file_mode() else {
        let reason = format!(
            "{:?} is not an octal mode such as \"0644\"",
            c.slave.file_mode
        );
        return Err(Invalid::new("slave.file_mode", reason));
    };
    if mode & 0o444 == 0 {
        let reason = format!(
            "{:?} gives no one read access: the broker reads these files (e.g. \"0644\", or \"0640\" with the broker's group)",
            c.slave.file_mode
        );
        return Err(Invalid::new("slave.file_mode", reason));
    }
    Ok(())
}

/// What `check-config --toml` writes in place of a token it leaves out: a file that loads back
/// with it refuses to start instead of running with the drain unguarded.
pub const TOKEN_LEFT_OUT: &str = "<left out by check-config --toml>";

/// The drain's timings and its token: a token is either inline or in a file, never both,
/// never blank.
fn drain(d: &super::model::DrainConfig) -> Result<(), Invalid> {
    within("drain.wait", d.wait, secs(0)..=secs(600))?;
    within("drain.max", d.max, secs(1)..=DAY)?;
    if d.max <= d.wait {
        return Err(Invalid::new(
            "drain.max",
            format!(
                "{} is not longer than drain.wait ({}): the drain would end before a request's wait passed",
                d.max.shown(),
                d.wait.shown()
            ),
        ));
    }
    let token_var = format!("{ENV_PREFIX}DRAIN__TOKEN");
    match (&d.token, &d.token_file) {
        (Some(_), Some(_)) => Err(Invalid::new(
            "drain.token",
            "and drain.token_file are both set: one would be ignored, set one of them",
        )),
        (Some(t), None) if t == TOKEN_LEFT_OUT => Err(Invalid::new(
            "drain.token",
            format!(
                "was left out of this file by `check-config --toml`: set {token_var}, \
                 drain.token_file, or the token itself"
            ),
        )),
        (Some(t), None) if t.trim().is_empty() => Err(Invalid::new(
            "drain.token",
            "is empty: an empty token would let any request drain; set a secret, or remove the key \
             (no token: the header alone guards /drain)",
        )),
        // A request carries it in a header, where it cannot end in a newline: such a token
        // would never match, and every drain would be refused.
        (Some(t), None) if t.trim() != t || t.chars().any(char::is_control) => Err(Invalid::new(
            "drain.token",
            "has leading or trailing whitespace or a control character (a newline from a file?): \
             remove it, or give the file as drain.token_file (its content is trimmed)",
        )),
        (None, Some(f)) if f.as_os_str().is_empty() => Err(Invalid::new(
            "drain.token_file",
            "is empty: name the file holding the token, or remove the key",
        )),
        _ => Ok(()),
    }
}

/// Signing needs both keys. The error names the key that is set, with its source: the one
/// missing has none, and `check-config --toml` leaves the secret out on purpose.
fn acl(a: &AclConfig) -> Result<(), Invalid> {
    let secret_var = format!("{ENV_PREFIX}ACL__SECRET_KEY");
    match (a.access_key.is_some(), a.secret_key.is_some()) {
        (true, false) => Err(Invalid::new(
            "acl.access_key",
            format!(
                "is set but acl.secret_key is not (they go together): set the secret in \
                 {secret_var} (`check-config --toml` leaves it out of the file) or as \
                 acl.secret_key"
            ),
        )),
        (false, true) => Err(Invalid::new(
            "acl.secret_key",
            "is set but acl.access_key is not (they go together): set acl.access_key",
        )),
        _ => Ok(()),
    }
}

fn inline_topics(topics: &[InlineTopic]) -> Result<(), Invalid> {
    for (i, t) in topics.iter().enumerate() {
        if t.name.trim().is_empty() || t.name.contains(' ') {
            return Err(Invalid::new(
                format!("broker.topics.inline[{i}].name"),
                "must be a name without spaces",
            ));
        }
        let key = format!("broker.topics.inline[{i}].perm");
        within(&key, t.perm, PERM_BITS).map_err(perm_bits)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error by value
mod tests;
