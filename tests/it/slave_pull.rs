//! Slave pulls against a scripted master that answers in the Java broker's exact format.

use std::time::Duration;

use rmq_registrar::broker::body::TopicFilterType;
use rmq_registrar::broker::{ApiError, BrokerApi};
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;

use crate::support::ports::closed_port_with;
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};

const T: Duration = Duration::from_secs(5);

pub const TOPICS: &str = r#"{"dataVersion":{"counter":5,"stateVersion":0,"timestamp":1700000000000},"mappingDataVersion":{"counter":0,"stateVersion":0,"timestamp":1700000000000},"topicConfigTable":{"TopicA":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"TopicA","topicSysFlag":0,"writeQueueNums":4},"TopicM":{"attributes":{"+message.type":"NORMAL"},"order":true,"perm":7,"readQueueNums":8,"topicFilterType":"MULTI_TAG","topicName":"TopicM","topicSysFlag":1,"writeQueueNums":8}},"topicQueueMappingDetailMap":{},"topicQueueMappingInfoMap":{}}"#;
pub const OFFSETS: &str = r#"{"dataVersion":{"counter":3,"stateVersion":0,"timestamp":1700000000001},"offsetTable":{"TopicA@g1":{0:1234,1:99},"%RETRY%g1@g1":{0:0}},"pullOffsetTable":{}}"#;
pub const DELAY: &str = r#"{"dataVersion":{"counter":1,"stateVersion":0,"timestamp":1700000000002},"offsetTable":{1:0,2:17,18:4}}"#;
pub const GROUPS: &str = r#"{"dataVersion":{"counter":9,"stateVersion":0,"timestamp":1700000000003},"forbiddenTable":{"g1":{"TopicA":1}},"subscriptionGroupTable":{"g1":{"attributes":{},"brokerId":0,"consumeBroadcastEnable":true,"consumeEnable":true,"consumeFromMinEnable":true,"consumeMessageOrderly":false,"consumeTimeoutMinute":15,"groupName":"g1","groupRetryPolicy":{"customizedRetryPolicy":{"initial":1000,"max":7200000,"multiplier":2},"type":"CUSTOMIZED"},"groupSysFlag":0,"notifyConsumerIdsChangedEnable":true,"retryMaxTimes":16,"retryQueueNums":1,"subscriptionDataSet":[],"whichBrokerWhenConsumeSlowly":1}}}"#;

fn answer(c: &RemotingCommand) -> Action {
    let body = match c.code {
        request::GET_ALL_TOPIC_CONFIG => TOPICS,
        request::GET_ALL_CONSUMER_OFFSET => OFFSETS,
        request::GET_ALL_DELAY_OFFSET => DELAY,
        request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => GROUPS,
        _ => return Action::Reply(RemotingCommand::request(3)),
    };
    Action::Reply(RemotingCommand::request(0).with_body(body))
}

/// A master whose main port is the VIP port + 2, both scripted.
async fn master_pair() -> (Peer, Peer) {
    let (vip, [main]) = closed_port_with([2]);
    let vip = Peer::start_on(vip, answer).await;
    let main = Peer::start_on(main, |c| {
        if c.code == request::GET_ALL_TOPIC_CONFIG {
            // Topic config must come over the VIP channel.
            Action::Reply(RemotingCommand::request(1).with_body(""))
        } else {
            answer(c)
        }
    })
    .await;
    (main, vip)
}

#[tokio::test]
async fn pulls_parse_java_bodies_and_keep_the_raw_text() {
    let (main, vip) = master_pair().await;
    let api = BrokerApi::new(client());
    let topics = api.get_all_topic_config(&main.addr, true, T).await.unwrap();
    assert_eq!(topics.raw, TOPICS);
    assert_eq!(topics.doc.data_version.counter, 5);
    let m = &topics.doc.topic_config_table["TopicM"];
    assert_eq!(
        (m.perm, m.order, m.topic_filter_type, m.topic_sys_flag),
        (7, true, TopicFilterType::MultiTag, 1)
    );
    assert_eq!(
        m.attributes.get("+message.type").map(String::as_str),
        Some("NORMAL")
    );
    assert_eq!(vip.accepts.load(std::sync::atomic::Ordering::SeqCst), 1);

    let offsets = api.get_all_consumer_offset(&main.addr, T).await.unwrap();
    assert_eq!(offsets.doc.offset_table["TopicA@g1"][&0], 1234);
    assert_eq!(offsets.doc.offset_table["TopicA@g1"][&1], 99);
    assert!(offsets.doc.other.contains_key("pullOffsetTable"));
    assert_eq!(offsets.raw, OFFSETS);

    let delay = api.get_all_delay_offset(&main.addr, T).await.unwrap();
    assert_eq!(delay.doc.offset_table[&18], 4);
    assert_eq!(delay.raw, DELAY);

    let groups = api
        .get_all_subscription_group_config(&main.addr, T)
        .await
        .unwrap();
    let g = &groups.doc.subscription_group_table["g1"];
    assert_eq!((g.retry_max_times, g.consume_enable), (16, true));
    assert!(g.other.contains_key("groupRetryPolicy"));
    assert_eq!(groups.doc.forbidden_table["g1"]["TopicA"], 1);

    // Without the VIP channel, topic config goes to the main port (which refuses here).
    let err = api
        .get_all_topic_config(&main.addr, false, T)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Refused { code: 1, .. }), "{err:?}");
}

#[tokio::test]
async fn master_errors_and_bad_bodies_are_typed() {
    let master = Peer::start(|c| match c.code {
        request::GET_ALL_CONSUMER_OFFSET => {
            let mut r = RemotingCommand::request(1);
            r.remark = Some("No consumer offset in this broker".into());
            Action::Reply(r)
        }
        request::GET_ALL_DELAY_OFFSET => {
            Action::Reply(RemotingCommand::request(0).with_body("{not json"))
        }
        _ => Action::Reply(RemotingCommand::request(0)),
    })
    .await;
    let api = BrokerApi::new(client());
    match api.get_all_consumer_offset(&master.addr, T).await {
        Err(ApiError::Refused {
            code: 1,
            remark: Some(r),
        }) => assert_eq!(r, "No consumer offset in this broker"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        api.get_all_delay_offset(&master.addr, T).await,
        Err(ApiError::Decode { .. })
    ));
    assert!(matches!(
        api.get_all_subscription_group_config(&master.addr, T).await,
        Err(ApiError::Decode { .. })
    ));
}
