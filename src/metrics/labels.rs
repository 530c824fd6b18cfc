//! Label values of our own outcomes, each spelled once; error outcomes come from the errors'
//! `kind()`.

/// A metric label value.
pub trait Label: Copy {
    /// The label string.
    fn as_str(self) -> &'static str;
}

macro_rules! labels {
    ($(#[$doc:meta] $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? })+) => {
        $(
            #[$doc]
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub enum $name {
                $($(#[$vdoc])* $variant),+
            }

            impl Label for $name {
                fn as_str(self) -> &'static str {
                    match self {
                        $($name::$variant => $text),+
                    }
                }
            }
        )+
    };
}

labels! {
    /// A check, lookup or pull that either worked or did not.
    Outcome {
        /// It worked.
        Ok => "ok",
        /// It did not.
        Error => "error",
        /// The peer answered, refusing the daemon's credentials (health checks).
        AuthFailed => "auth_failed",
    }
    /// A re-read of the topic source.
    Reload {
        /// The topics changed.
        Changed => "changed",
        /// Same topics.
        Unchanged => "unchanged",
        /// Unusable; the last good topics stay.
        Error => "error",
    }
    /// How a route read-back differs from what is advertised.
    RouteKind {
        /// The broker (or its queues for the topic) is not in the route.
        Missing => "missing",
        /// The broker's id maps to another address, or another id to the broker's address.
        Address => "address",
        /// The broker name sits in another cluster.
        Cluster => "cluster",
        /// The topic's read or write bit differs.
        Permission => "permission",
        /// The topic's read or write queue count differs.
        Queues => "queues",
    }
    /// How one route read-back went.
    Audit {
        /// The route is what the daemon advertises.
        Match => "match",
        /// It differs (by kind: `route_mismatch`).
        Mismatch => "mismatch",
        /// The NameServer is not serving routes yet.
        NotReady => "not_ready",
        /// A refusal, a bad body, a closed connection.
        Error => "error",
        /// No answer in time.
        Timeout => "timeout",
    }
    /// A slave pull of one document.
    Pull {
        /// Written to its file.
        Written => "written",
        /// Same as the file.
        Unchanged => "unchanged",
        /// Pulled, with no `slave.output_dir` to write it to.
        Pulled => "pulled",
        /// Failed.
        Error => "error",
    }
}

impl Outcome {
    /// Both values, for seeding series at 0.
    pub const ALL: &'static [Outcome] = &[Outcome::Ok, Outcome::Error];
}

impl RouteKind {
    /// Every kind, for seeding the gauges at 0.
    pub const ALL: &'static [RouteKind] = &[
        RouteKind::Missing,
        RouteKind::Address,
        RouteKind::Cluster,
        RouteKind::Permission,
        RouteKind::Queues,
    ];
    /// The kinds a restore can fix (a cluster mismatch cannot be registered away).
    pub const RESTORED: &'static [RouteKind] = &[
        RouteKind::Missing,
        RouteKind::Address,
        RouteKind::Permission,
        RouteKind::Queues,
    ];
}

impl Audit {
    /// Every outcome, for seeding the counters at 0.
    pub const ALL: &'static [Audit] = &[
        Audit::Match,
        Audit::Mismatch,
        Audit::NotReady,
        Audit::Error,
        Audit::Timeout,
    ];
}

/// How a registration with one NameServer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Registered, answered.
    Ok,
    /// It already held the current data version: nothing sent.
    Current,
    /// Sent oneway.
    Sent,
    /// Failed; the error's `kind()`.
    Failed(&'static str),
}

impl Label for Registration {
    fn as_str(self) -> &'static str {
        match self {
            Registration::Ok => "ok",
            Registration::Current => "current",
            Registration::Sent => "sent",
            Registration::Failed(kind) => kind,
        }
    }
}

/// How a heartbeat went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The NameServer holds the broker at this version.
    Ok,
    /// It does not: a full registration follows.
    Changed,
    /// Not sent: one or a registration was in flight.
    Skipped,
    /// Failed; the error's `kind()`.
    Failed(&'static str),
}

impl Heartbeat {
    /// Seeded at 0 for every NameServer, so that `increase()` sees the first one.
    pub const SEEDED: &'static [Heartbeat] = &[Heartbeat::Ok, Heartbeat::Changed];
}

impl Label for Heartbeat {
    fn as_str(self) -> &'static str {
        match self {
            Heartbeat::Ok => "ok",
            Heartbeat::Changed => "changed",
            Heartbeat::Skipped => "skipped",
            Heartbeat::Failed(kind) => kind,
        }
    }
}

/// How an unregistration went: "ok" or the error's `kind()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unregistration {
    /// Unregistered.
    Ok,
    /// Failed; the error's `kind()`.
    Failed(&'static str),
}

impl Unregistration {
    /// Seeded at 0 for every NameServer: the outcomes alert rules look at.
    pub const SEEDED: &'static [Unregistration] = &[
        Unregistration::Ok,
        Unregistration::Failed("refused"),
        Unregistration::Failed("timeout"),
    ];
}

impl Label for Unregistration {
    fn as_str(self) -> &'static str {
        match self {
            Unregistration::Ok => "ok",
            Unregistration::Failed(kind) => kind,
        }
    }
}
