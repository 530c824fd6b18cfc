//! One owner per NameServer: a NameServer that leaves the list while a registration to it is in
//! flight gets nothing after its goodbye, and nothing of it stays in the daemon.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::frame::encode_to_vec;
use rmq_registrar::protocol::RemotingCommand;

use crate::support::daemon::{base_config, Daemon};
use crate::support::http::http_server;
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::remoting::client;
use crate::support::scripted_peer::{ok_reply, Action, Peer};
use crate::support::wait::eventually;

/// A reply frame to request `opaque`.
fn reply_to(opaque: i32) -> Vec<u8> {
    let mut r = RemotingCommand::request(0);
    r.opaque = opaque;
    r.mark_response();
    encode_to_vec(&r).expect("encodable")
}

#[tokio::test]
async fn a_list_that_shrinks_during_a_round_leaves_no_registration_after_the_goodbye() {
    let stays = NameServer::start().await;
    // The leaving NameServer holds its answer to the first batch of the split registration
    // (so the round is in flight, deterministically) until the goodbye comes; then it answers
    // both. A registration that carried on would send its next batch after the goodbye.
    let held: Arc<Mutex<Option<i32>>> = Arc::default();
    let h = held.clone();
    let leaving = Peer::start(move |cmd| match cmd.code {
        request::REGISTER_BROKER => {
            let mut held = h.lock().unwrap();
            if held.is_none() {
                *held = Some(cmd.opaque);
                return Action::Silent;
            }
            ok_reply()
        }
        request::UNREGISTER_BROKER => {
            let mut bytes = h.lock().unwrap().map(reply_to).unwrap_or_default();
            bytes.extend(reply_to(cmd.opaque));
            Action::Raw(bytes)
        }
        _ => ok_reply(),
    })
    .await;
    let script = Arc::new(Mutex::new((
        200,
        format!("{};{}", stays.addr, leaving.addr),
        Duration::ZERO,
    )));
    let (http_addr, _server) = http_server(script.clone()).await;
    let d = Daemon::start(|_, http| {
        let topics: String = ["A", "B", "C"]
            .iter()
            .map(|n| format!("[[broker.topics.inline]]\nname = \"{n}\"\n"))
            .collect();
        let cfg = base_config("shrink", http, &[], &topics);
        let source = format!(
            "address_server = \"http://{http_addr}/rocketmq/nsaddr\"\nrefresh_interval = \"1s\""
        );
        cfg.replace("addrs = []", &source)
            .replace(
                "[register]",
                "[register]\nalways_split = true\nsplit_size = 1",
            )
            // The held batch waits for the goodbye, not for its timeout.
            .replace("timeout = \"2s\"", "timeout = \"10s\"")
    });
    eventually("a batch held in flight", || async {
        held.lock().unwrap().is_some()
    })
    .await;
    let probe = client();
    eventually("on the NameServer that stays", || {
        has_broker(&probe, &stays.addr, "shrink")
    })
    .await;
    // The list shrinks while the batch is in flight.
    script.lock().unwrap().1 = stays.addr.clone();
    let mut seen = Vec::new();
    eventually("the goodbye", || {
        seen.extend(leaving.drain_received().iter().map(|c| c.code));
        let said = seen.contains(&request::UNREGISTER_BROKER);
        async move { said }
    })
    .await;
    eventually("list size 1", || async {
        d.get("/metrics")
            .await
            .is_some_and(|(_, t)| t.contains("rmq_registrar_namesrv_list_size 1"))
    })
    .await;
    // A registration that carried on sends its next batch within a round trip of the held
    // answer: give it ample time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    seen.extend(leaving.drain_received().iter().map(|c| c.code));
    let bye = seen
        .iter()
        .position(|c| *c == request::UNREGISTER_BROKER)
        .expect("goodbye seen");
    assert!(
        !seen[bye..].contains(&request::REGISTER_BROKER),
        "REGISTER_BROKER after the goodbye: {seen:?}"
    );
    let text = d.get("/metrics").await.expect("metrics").1;
    assert!(
        !text.contains(&format!("namesrv=\"{}\"", leaving.addr)),
        "series of the NameServer that left:\n{text}"
    );
    assert!(has_broker(&probe, &stays.addr, "shrink").await);
}
