use super::*;

fn inline(name: &str, queues: u32) -> InlineTopic {
    InlineTopic {
        name: name.into(),
        read_queues: queues,
        write_queues: queues,
        perm: 6,
        order: false,
    }
}

#[test]
fn a_file_with_bare_numeric_keys_is_read_in_a_second_pass_and_not_again() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("topics.json");
    // 5.x static topics: fastjson writes the queue map's integer keys bare.
    std::fs::write(&f, r#"{"topicConfigTable":{"S":{"topicName":"S","readQueueNums":2,"writeQueueNums":2,"perm":6}},"topicQueueMappingDetailMap":{"S":{"hostedQueues":{0:[{"bname":"b"}]}}}}"#).unwrap();
    let cfg = TopicsConfig {
        source: TopicSource::File,
        file: Some(f),
        inline: vec![],
        ..TopicsConfig::default()    };
    let mut s = TopicState::default();
    assert!(s.refresh(&cfg, true).unwrap());
    assert_eq!(s.table().topic_config_table["S"].read_queue_nums, 2);
    // The CRC is of the pass that parsed: the unchanged file is recognised.
    let crc = s.file_crc.clone();
    assert!(!s.refresh(&cfg, true).unwrap());
    assert_eq!(s.file_crc, crc);
}

#[test]
fn one_big_source_lives_only_in_the_table_and_inline_changes_still_merge_right() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("topics.json");
    std::fs::write(&f, r#"{"topicConfigTable":{"A":{"topicName":"A","readQueueNums":4,"writeQueueNums":4,"perm":6},"B":{"topicName":"B","readQueueNums":4,"writeQueueNums":4,"perm":6}}}"#).unwrap();
    let mut cfg = TopicsConfig {
        source: TopicSource::File,
        file: Some(f.clone()),
        inline: vec![inline("B", 1), inline("C", 2)],
        ..TopicsConfig::default()    };
    let mut s = TopicState::default();
    assert!(s.refresh(&cfg, true).unwrap());
    let names = |s: &TopicState| {
        s.table()
            .topic_config_table
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&s), ["A", "B", "C"]);
    assert_eq!(
        s.table().topic_config_table["B"].read_queue_nums,
        4,
        "the file wins"
    );
    assert!(
        s.from_file.is_empty(),
        "no second copy of the file's topics"
    );
    // A round with nothing changed: no merge, the very same table.
    let t = s.table();
    assert!(!s.refresh(&cfg, true).unwrap());
    assert!(Arc::ptr_eq(&t, &s.table()));
    // SIGHUP drops inline B and C and adds D; the file is unchanged and not parsed again.
    cfg.inline = vec![inline("D", 3)];
    assert!(s.refresh(&cfg, true).unwrap());
    assert_eq!(
        names(&s),
        ["A", "B", "D"],
        "B came from the file, C only inline"
    );
    assert_eq!(s.table().topic_config_table["B"].read_queue_nums, 4);
    assert!(s.from_file.is_empty());
    // The file changes: its new table replaces the old one, inline D stays.
    std::fs::write(&f, r#"{"topicConfigTable":{"E":{"topicName":"E","readQueueNums":4,"writeQueueNums":4,"perm":6}}}"#).unwrap();
    assert!(s.refresh(&cfg, true).unwrap());
    assert_eq!(names(&s), ["D", "E"]);
    // A second source (a slave's master): both are kept, the merge copies.
    let mut master = BTreeMap::new();
    master.insert("M".to_string(), TopicConfig::new("M", 8));
    assert!(s.set_master_topics(&cfg, master));
    assert_eq!(names(&s), ["D", "E", "M"]);
    assert_eq!(s.from_file.len(), 1);
    assert!(s.set_master_topics(&cfg, BTreeMap::new()));
    assert_eq!(names(&s), ["D", "E"]);
}

#[test]
fn file_and_inline_merge_and_a_bad_file_keeps_the_last_good_topics() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("topics.json");
    std::fs::write(&f, r#"{"topicConfigTable":{"A":{"topicName":"A","readQueueNums":4,"writeQueueNums":4,"perm":6}},"dataVersion":{"counter":1,"timestamp":1}}"#).unwrap();
    let cfg = TopicsConfig {
        source: TopicSource::File,
        file: Some(f.clone()),
        inline: vec![inline("B", 2)],
        ..TopicsConfig::default()    };
    let mut s = TopicState::default();
    let v0 = s.table().data_version;
    assert!(s.refresh(&cfg, true).unwrap());
    assert_eq!(
        s.table().topic_config_table.keys().collect::<Vec<_>>(),
        ["A", "B"]
    );
    assert!(s.table().data_version.counter > v0.counter);
    assert!(!s.refresh(&cfg, true).unwrap());
    std::fs::write(&f, "{ not json").unwrap();
    assert!(matches!(
        s.refresh(&cfg, true),
        Err(TopicsError::Parse { .. })
    ));
    assert_eq!(s.table().topic_config_table.len(), 2);
    std::fs::remove_file(&f).unwrap();
    assert!(matches!(
        s.refresh(&cfg, true),
        Err(TopicsError::Read { .. })
    ));
    assert_eq!(s.table().topic_config_table.len(), 2);
}

fn wrapper(counter: i64, topics: &[(&str, u32)]) -> TopicConfigWrapper {
    let mut w = TopicConfigWrapper {
        data_version: DataVersion {
            counter,
            state_version: 0,
            timestamp: 1,
        },
        ..Default::default()
    };
    for (name, queues) in topics {
        w.topic_config_table
            .insert(name.to_string(), TopicConfig::new(*name, *queues));
    }
    w
}

#[test]
fn broker_topics_win_over_inline_and_an_unchanged_version_is_not_merged() {
    let cfg = TopicsConfig {
        source: TopicSource::Broker,
        broker_topic: true,
        added: None,
        file: None,
        inline: vec![InlineTopic {
            name: "Clash".into(),
            read_queues: 1,
            write_queues: 1,
            perm: 6,
            order: false,
        }],
    };
    let mut s = TopicState::default();
    assert!(!s.has_broker_topics());
    assert!(s.set_broker_topics(&cfg, wrapper(5, &[("Clash", 16), ("Own", 4)])));
    let t = s.table();
    assert_eq!(
        t.topic_config_table["Clash"].read_queue_nums, 16,
        "the broker's entry wins"
    );
    assert_eq!(t.topic_config_table.len(), 2);
    // Same data version: taken as unchanged, even if the body differs.
    assert!(!s.set_broker_topics(&cfg, wrapper(5, &[("Other", 1)])));
    assert_eq!(s.table().data_version, t.data_version);
    assert!(s.set_broker_topics(&cfg, wrapper(6, &[("Own", 4)])));
    let t = s.table();
    assert_eq!(
        t.topic_config_table["Clash"].read_queue_nums, 1,
        "the inline topic is back once the broker no longer has it"
    );
    assert!(s.has_broker_topics());
    assert_eq!(
        t.data_version,
        wrapper(6, &[]).data_version,
        "the broker's own"
    );
    // The same topics under a new epoch (an election): registered with the broker's
    // version, stateVersion included, so a NameServer's arbitration sees it.
    let mut epoch = wrapper(7, &[("Own", 4)]);
    epoch.data_version.state_version = 3;
    assert!(s.set_broker_topics(&cfg, epoch));
    assert_eq!(s.table().data_version.state_version, 3);
    assert_eq!(s.table().data_version.counter, 7);
}

#[test]
fn file_topics_win_over_inline_on_a_name_clash() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("topics.json");
    std::fs::write(&f, r#"{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":4,"writeQueueNums":4,"perm":6}}}"#).unwrap();
    let cfg = TopicsConfig {
        source: TopicSource::File,
        broker_topic: true,
        added: None,
        file: Some(f),
        inline: vec![InlineTopic {
            name: "T".into(),
            read_queues: 1,
            write_queues: 1,
            perm: 6,
            order: false,
        }],
    };
    let mut s = TopicState::default();
    s.refresh(&cfg, true).unwrap();
    assert_eq!(s.table().topic_config_table["T"].read_queue_nums, 4);
}

#[test]
fn the_broker_topic_is_advertised_from_a_file_and_loses_every_clash() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("topics.json");
    std::fs::write(&f, r#"{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":4,"writeQueueNums":4,"perm":6}}}"#).unwrap();
    let mut cfg = TopicsConfig {
        source: TopicSource::File,
        file: Some(f.clone()),
        ..TopicsConfig::default()
    };
    let mut s = TopicState::default();
    assert!(s.refresh(&cfg.advertised("b"), true).unwrap());
    let t = s.table();
    let own = &t.topic_config_table["b"];
    assert_eq!((own.read_queue_nums, own.write_queue_nums, own.perm), (1, 1, 7));
    assert_eq!(t.topic_config_table.len(), 2);
    // The file's entry of that name wins.
    std::fs::write(&f, r#"{"topicConfigTable":{"b":{"topicName":"b","readQueueNums":4,"writeQueueNums":4,"perm":6}}}"#).unwrap();
    assert!(s.refresh(&cfg.advertised("b"), true).unwrap());
    assert_eq!(s.table().topic_config_table["b"].read_queue_nums, 4);
    // Alone it is left out: a first registration of exactly one topic is refused.
    std::fs::write(&f, r#"{"topicConfigTable":{}}"#).unwrap();
    assert!(s.refresh(&cfg.advertised("b"), true).unwrap());
    assert!(s.table().topic_config_table.is_empty());
    // Turned off, or with the topics from the broker, nothing is added.
    cfg.broker_topic = false;
    assert!(matches!(cfg.advertised("b"), std::borrow::Cow::Borrowed(_)));
    cfg.broker_topic = true;
    cfg.source = TopicSource::Broker;
    assert!(matches!(cfg.advertised("b"), std::borrow::Cow::Borrowed(_)));
}
