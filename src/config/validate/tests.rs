//! Validation: every rule names its key and its source; ranges read as the README writes them.

use std::time::Duration;

use figment::Jail;

use super::*;
use crate::config::tests::{err_in, load_in, MIN};
use crate::config::{from_toml_str, HealthCheck, TopicSource, DEFAULT_MAX_REPLY_FRAME, NEVER};

#[test]
fn a_range_reads_as_the_readme_writes_it() {
    let e = within("register.interval", secs(5), secs(10)..=secs(60)).unwrap_err();
    assert_eq!(e.to_string(), "register.interval: 5s is outside 10s..=60s");
    let e = within("broker.health.timeout", secs(3), millis(50)..secs(3))
        .map_err(|e| e.note("below broker.health.interval"))
        .unwrap_err();
    assert_eq!(
        e.reason,
        "3s is outside 50ms..3s (below broker.health.interval)"
    );
    let e = within("register.heartbeat_timeout", secs(4), secs(5)..).unwrap_err();
    assert_eq!(e.reason, "4s is outside 5s..");
    let e = within("broker.permission", 9u32, PERM_BITS)
        .map_err(perm_bits)
        .unwrap_err();
    assert_eq!(e.reason, "9 is outside 0..=7 (4 read, 2 write, 1 inherit)");
    let e = within("register.interval", secs(90), secs(10)..=secs(60)).unwrap_err();
    assert_eq!(e.reason, "90s is outside 10s..=60s");
    let e = within("broker.health.interval", secs(301), millis(100)..=secs(300)).unwrap_err();
    assert_eq!(e.reason, "5m 1s is outside 100ms..=5m");
    let e = within("slave.sync_interval", millis(10), secs(1)..=DAY).unwrap_err();
    assert_eq!(e.reason, "10ms is outside 1s..=1day");
    assert!(within("remoting.max_frame", 1024usize, 1024..=LARGEST_FRAME).is_ok());
    assert!(within("broker.version", -1, 0..=i32::from(i16::MAX)).is_err());
}

#[test]
fn broker_health_and_topic_source_defaults_and_limits() {
    Jail::expect_with(|jail| {
        let c = load_in(jail, MIN).unwrap();
        let h = &c.broker.health;
        assert_eq!(h.check, HealthCheck::Remoting, "checked unless opted out");
        assert_eq!(
            (h.interval, h.timeout, h.failures),
            (Duration::from_secs(3), Duration::from_secs(1), 3)
        );
        assert_eq!(c.broker_check_addr(), "10.0.0.1:10911");
        assert_eq!(c.broker.topics.source, TopicSource::File);
        assert_eq!(c.remoting.max_reply_frame, DEFAULT_MAX_REPLY_FRAME);
        jail.set_env("RMQ_REGISTRAR_BROKER__HEALTH__CHECK", "tcp");
        jail.set_env("RMQ_REGISTRAR_BROKER__HEALTH__ADDR", "127.0.0.1:10911");
        jail.set_env("RMQ_REGISTRAR_BROKER__TOPICS__SOURCE", "broker");
        let c = load_in(jail, MIN).unwrap();
        assert_eq!(c.broker.health.check, HealthCheck::Tcp);
        assert_eq!(c.broker_check_addr(), "127.0.0.1:10911");
        assert_eq!(c.broker.topics.source, TopicSource::Broker);
        Ok(())
    });
    let cases = [
        ("[broker.health]\ncheck = \"ping\"\n", "broker.health.check"),
        (
            "[broker.health]\ninterval = \"10ms\"\n",
            "broker.health.interval",
        ),
        (
            "[broker.health]\ntimeout = \"3s\"\n",
            "broker.health.timeout",
        ),
        (
            "[broker.health]\ntimeout = \"10ms\"\n",
            "broker.health.timeout",
        ),
        ("[broker.health]\nfailures = 0\n", "broker.health.failures"),
        ("[broker.health]\naddr = \"nohost\"\n", "broker.health.addr"),
        (
            "[broker.topics]\nsource = \"broker\"\nfile = \"/x/topics.json\"\n",
            "broker.topics.file",
        ),
        (
            "[broker.topics]\nsource = \"nameserver\"\n",
            "broker.topics.source",
        ),
        (
            "[remoting]\nmax_reply_frame = 2048\n",
            "remoting.max_reply_frame",
        ),
    ];
    for (extra, key) in cases {
        let e = err_in(&format!("{MIN}\n{extra}"), &[]);
        assert_eq!(e.key, key, "{extra}: {e}");
        assert!(e.source_name.contains("c.toml"), "{e}");
    }
}

#[test]
fn values_that_used_to_panic_or_misbehave_are_refused_at_load() {
    let cases = [
        // Above tokio's semaphore maximum: a panic at start.
        (
            "[remoting]\nasync_permits = 9000000000000000000\n",
            "remoting.async_permits",
        ),
        (
            "[remoting]\noneway_permits = 0\n",
            "remoting.oneway_permits",
        ),
        // Zero: every connection closed at once, a reconnect storm.
        (
            "[remoting]\nidle_timeout = \"0s\"\n",
            "remoting.idle_timeout",
        ),
        // Absurd: Instant + Duration overflowed inside the reader task.
        (
            "[remoting]\nidle_timeout = \"500years\"\n",
            "remoting.idle_timeout",
        ),
        (
            "[remoting]\nconnect_timeout = \"0s\"\n",
            "remoting.connect_timeout",
        ),
        ("[register]\ntimeout = \"1ms\"\n", "register.timeout"),
        ("[register]\nforce_every = \"0s\"\n", "register.force_every"),
        (
            "[namesrv]\naddrs = [\"10.0.0.2:9876\"]\nrefresh_interval = \"100years\"\n",
            "namesrv.refresh_interval",
        ),
        ("[slave]\nsync_interval = \"10ms\"\n", "slave.sync_interval"),
        // Silently became "info" before.
        ("[log]\nlevel = \"rmq_registrar=loud\"\n", "log.level"),
        ("[slave]\nfile_mode = \"0999\"\n", "slave.file_mode"),
    ];
    for (extra, key) in cases {
        let text = if extra.starts_with("[namesrv]") {
            MIN.replace("[namesrv]\naddrs = [\"10.0.0.2:9876\"]\n", "") + extra
        } else {
            format!("{MIN}\n{extra}")
        };
        let e = err_in(&text, &[]);
        assert_eq!(e.key, key, "{extra}: {e}");
    }
}

#[test]
fn force_every_takes_always_and_never_defaults_to_5m_and_broker_permission_is_checked() {
    Jail::expect_with(|jail| {
        let c = load_in(
            jail,
            &format!("{MIN}\n[register]\nforce_every = \"never\"\n"),
        )
        .unwrap();
        assert_eq!(c.register.force_every, Some(NEVER));
        let always = format!("{MIN}\n[register]\nforce_every = \"always\"\n");
        assert_eq!(load_in(jail, &always).unwrap().register.force_every, None);
        // Unset: a full registration at least every 5 min, within the 30 min that the
        // heartbeats and the read-back are trusted for.
        let unset = load_in(jail, MIN).unwrap().register.force_every;
        assert_eq!(unset, Some(Duration::from_secs(300)));
        assert!(unset.is_some_and(|d| d <= Duration::from_secs(30 * 60)));
        let e = load_in(jail, &MIN.replace("[namesrv]", "permission = 9\n[namesrv]")).unwrap_err();
        assert_eq!(e.key, "broker.permission");
        Ok(())
    });
}

#[test]
fn an_inline_topic_perm_beyond_java_s_range_is_refused_naming_its_file() {
    let text = format!("{MIN}\n[[broker.topics.inline]]\nname = \"T\"\nperm = 9\n");
    let e = err_in(&text, &[]);
    assert_eq!(e.key, "broker.topics.inline[0].perm", "{e}");
    assert!(e.source_name.contains("c.toml"), "{e}");
    let ok = format!("{MIN}\n[[broker.topics.inline]]\nname = \"T\"\nperm = 7\n");
    Jail::expect_with(|jail| {
        assert_eq!(load_in(jail, &ok).unwrap().broker.topics.inline[0].perm, 7);
        Ok(())
    });
}

#[test]
fn heartbeat_bounds_hold_with_a_margin_and_are_named() {
    let with = |lines: &str| from_toml_str(&format!("{MIN}\n[register]\n{lines}\n"));
    for ok in [
        "heartbeat = \"200ms\"",
        "heartbeat = \"10s\"\nheartbeat_timeout = \"30s\"",
        // max(3 x 1s, 3s + 2 x 1s) = 5s exactly.
        "heartbeat = \"1s\"\nheartbeat_timeout = \"5s\"",
        "heartbeat = \"1s\"\nheartbeat_timeout = \"off\"",
        // Off: at least 2 x 30s + 3s.
        "heartbeat = \"off\"\nheartbeat_timeout = \"63s\"",
        "heartbeat = \"off\"\nheartbeat_timeout = \"off\"",
    ] {
        assert!(with(ok).is_ok(), "{ok}: {:?}", with(ok).err());
    }
    for (bad, key) in [
        ("heartbeat = \"199ms\"", "register.heartbeat"),
        (
            "heartbeat = \"10001ms\"\nheartbeat_timeout = \"60s\"",
            "register.heartbeat",
        ),
        (
            "heartbeat = \"1s\"\nheartbeat_timeout = \"4999ms\"",
            "register.heartbeat_timeout",
        ),
        // max(3 x 5s, 3s + 2 x 5s) = 15s.
        (
            "heartbeat = \"5s\"\nheartbeat_timeout = \"14s\"",
            "register.heartbeat_timeout",
        ),
        (
            "heartbeat = \"off\"\nheartbeat_timeout = \"62s\"",
            "register.heartbeat_timeout",
        ),
        ("heartbeat = \"soon\"", "register.heartbeat"),
    ] {
        let e = with(bad).unwrap_err();
        assert_eq!(e.key, key, "{bad}: {e}");
    }
}
