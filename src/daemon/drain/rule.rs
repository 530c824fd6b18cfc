//! What a drain changes at one NameServer, as pure functions: the NameServer's task
//! (`namesrv/task.rs`) asks them and does what they say.

use std::time::{Duration, SystemTime};

use crate::daemon::published::DRAIN_BEAT;

/// The heartbeat period: every [`DRAIN_BEAT`] while a drain holds (a broker registering
/// itself can make its route writable for at most that and a round trip), else the
/// configured one (`None`: heartbeats off).
pub(crate) fn beat_period(draining: bool, configured: Option<Duration>) -> Option<Duration> {
    if draining {
        Some(DRAIN_BEAT)
    } else {
        configured
    }
}

/// Whether a registration is followed by WIPE_WRITE_PERM_OF_BROKER: a drain's, once the
/// NameServer took it (the wipe also clears what a broker registering itself under the same
/// version made writable).
pub(crate) fn wipe_after(drain: bool, registered: bool) -> bool {
    drain && registered
}

/// What a heartbeat answer means for the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnBeat {
    /// Nothing of the drain's: the answer is a heartbeat's like any other.
    Normal,
    /// The NameServer lost the read-only version: assert it again at once (outside the
    /// interval's limit), with one WARN per drain when the daemon registers its own version.
    Reassert {
        /// Say that another registrar changed the NameServer's data.
        warn: bool,
    },
}

/// A heartbeat answered `changed` (or not) while a drain held since `since` (or none);
/// `own_version`: the daemon registers its own data version (identity from the
/// configuration), so a change means another registrar; `warned`: the drain the WARN was
/// last said for.
pub(crate) fn on_beat(
    since: Option<SystemTime>,
    changed: bool,
    own_version: bool,
    warned: Option<SystemTime>,
) -> OnBeat {
    match since {
        Some(s) if changed => OnBeat::Reassert {
            warn: own_version && warned != Some(s),
        },
        _ => OnBeat::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_go_every_drain_beat_while_draining_whatever_is_configured() {
        let one = Some(Duration::from_secs(1));
        assert_eq!(beat_period(true, one), Some(DRAIN_BEAT));
        assert_eq!(beat_period(true, None), Some(DRAIN_BEAT), "even with heartbeats off");
        assert_eq!(beat_period(false, one), one);
        assert_eq!(beat_period(false, None), None);
    }

    #[test]
    fn only_a_drains_taken_registration_is_followed_by_the_wipe() {
        assert!(wipe_after(true, true));
        assert!(!wipe_after(true, false), "a refused registration: no wipe");
        assert!(!wipe_after(false, true));
    }

    #[test]
    fn a_lost_read_only_version_is_asserted_again_and_warned_once_per_drain() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(on_beat(None, true, true, None), OnBeat::Normal, "no drain");
        assert_eq!(on_beat(Some(t0), false, true, None), OnBeat::Normal, "still held");
        assert_eq!(
            on_beat(Some(t0), true, true, None),
            OnBeat::Reassert { warn: true }
        );
        assert_eq!(
            on_beat(Some(t0), true, true, Some(t0)),
            OnBeat::Reassert { warn: false },
            "warned for this drain already"
        );
        assert_eq!(
            on_beat(Some(t1), true, true, Some(t0)),
            OnBeat::Reassert { warn: true },
            "a new drain warns again"
        );
        assert_eq!(
            on_beat(Some(t0), true, false, None),
            OnBeat::Reassert { warn: false },
            "with the broker's own version a change is the broker's: no WARN"
        );
    }
}
