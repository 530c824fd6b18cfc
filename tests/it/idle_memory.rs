//! An idle daemon's memory, with the README's minimal config (config/minimal.toml: a name, an
//! address, the broker's topics file, two NameServers) next to a real broker and two real
//! NameServers, measured from the second round on (DECISIONS: the first grows the allocator's
//! arenas).
//!
//! Run by the test suite on the debug build, it holds what a build profile hardly moves: the
//! threads left between rounds and the anonymous memory (heap, arenas, stacks). The package test
//! runs it again on the installed release binary (`REGISTRAR_UNDER_TEST`), and there it also holds
//! the README's figure for the whole RSS: at most 8 MiB, most of it the executable's own pages.

use std::time::Duration;

use crate::support::broker::Broker;
use crate::support::daemon::{metric, proc_status as status, Daemon};
use crate::support::namesrv::NameServer;
use crate::support::wait::eventually_within;

/// The README's promise for an idle daemon's RSS (release build, a few topics).
const IDLE_RSS_MAX_KIB: u64 = 8 * 1024;

/// The names of the process's threads.
fn thread_names(pid: &str) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.flatten()
                .map(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_idle_daemon_keeps_one_async_thread_and_its_memory_small() {
    let sink = NameServer::start().await;
    let (ns1, ns2) = (NameServer::start().await, NameServer::start().await);
    let broker = Broker::start("DefaultCluster", "idle-a", &sink.addr, "").await;
    let (addr, topics) = (broker.addr.clone(), broker.topics_file.clone());
    let d = Daemon::start(|_, http| {
        // config/minimal.toml, with this test's addresses; the interval at its least, so that
        // the second round comes after 10 s instead of 30 s.
        format!(
            "[broker]\nname = \"idle-a\"\naddr = \"{addr}\"\n\n[broker.topics]\nfile = {topics:?}\n\n\
             [namesrv]\naddrs = [\"{}\", \"{}\"]\n\n[register]\ninterval = \"10s\"\n\n[http]\nlisten = \"{http}\"\n",
            ns1.addr, ns2.addr
        )
    });
    let pid = d.pid();
    eventually_within("two rounds", Duration::from_secs(60), || async {
        let text = d.get("/metrics").await.map(|(_, t)| t).unwrap_or_default();
        metric(
            &text,
            "rmq_registrar_registration_round_duration_seconds_count",
        ) >= 2.0
            && metric(&text, "rmq_registrar_broker_up") == 1.0
    })
    .await;
    // One async thread, and at most two blocking threads: the topics file's look every 2 s and
    // the broker check's every 3 s keep them alive, and a round's other blocking threads exit
    // 5 s after their last job. tokio's multi-thread scheduler kept two workers beside them.
    let settled = tokio::time::timeout(Duration::from_secs(20), async {
        while status(&pid, "Threads:") > 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "threads left 20 s after round 2: {:?}",
        thread_names(&pid)
    );
    let (rss, anon) = (status(&pid, "VmRSS:"), status(&pid, "RssAnon:"));
    let binary = crate::support::daemon::binary();
    eprintln!(
        "idle after round 2, {}: VmRSS {rss} KiB, RssAnon {anon} KiB, RssFile {} KiB, {} threads",
        binary.display(),
        status(&pid, "RssFile:"),
        status(&pid, "Threads:")
    );
    // ~1 MiB in a release build (heap ~430, relocated read-only data ~250, stacks, the second
    // arena), ~2.1 MiB in a debug build (its relocated data is larger). 3 MiB catches what the
    // allocator tuning guards against (an arena per thread, a table kept twice: megabytes).
    assert!(
        anon <= 3 * 1024,
        "idle daemon holds {anon} KiB of anonymous memory"
    );
    if std::env::var_os("REGISTRAR_UNDER_TEST").is_some_and(|p| !p.is_empty()) {
        assert!(
            rss <= IDLE_RSS_MAX_KIB,
            "idle RSS {rss} KiB is above the README's {IDLE_RSS_MAX_KIB} KiB"
        );
    }
}
