//! Loading: the source stack, where each value came from, the shipped examples.

use std::path::Path;
use std::time::Duration;

use figment::Jail;

use super::*;

pub(super) const MIN: &str = r#"
[broker]
name = "broker-a"
addr = "10.0.0.1:10911"
[namesrv]
addrs = ["10.0.0.2:9876"]
"#;

pub(super) fn load_in(jail: &Jail, text: &str) -> Result<Config, ConfigError> {
    jail.create_file("c.toml", text).unwrap();
    load(Some(Path::new("c.toml"))).map(|l| l.config)
}

#[test]
fn defaults_file_and_env_layer_in_order() {
    Jail::expect_with(|jail| {
        let c = load_in(jail, MIN).unwrap();
        assert_eq!(c.register.interval, Duration::from_secs(30));
        assert_eq!(c.ha_addr(), "10.0.0.1:10912");
        assert_eq!(c.broker.version, 479);
        jail.set_env("RMQ_REGISTRAR_BROKER__NAME", "from-env");
        jail.set_env("RMQ_REGISTRAR_REGISTER__INTERVAL", "45s");
        jail.set_env("RMQ_REGISTRAR_NAMESRV__ADDRS", "a:1;b:2");
        jail.set_env("RMQ_REGISTRAR_CONFIG", "c.toml");
        let c = load_in(jail, MIN).unwrap();
        assert_eq!(c.broker.name, "from-env");
        assert_eq!(c.register.interval, Duration::from_secs(45));
        assert_eq!(c.namesrv.addrs, vec!["a:1", "b:2"]);
        Ok(())
    });
}

#[test]
fn namesrv_addr_env_is_honoured_below_the_file() {
    Jail::expect_with(|jail| {
        jail.set_env("NAMESRV_ADDR", "n1:9876; n2:9876");
        let no_addrs = "[broker]\nname = \"b\"\naddr = \"h:1\"\n";
        let c = load_in(jail, no_addrs).unwrap();
        assert_eq!(c.namesrv.addrs, vec!["n1:9876", "n2:9876"]);
        let c = load_in(jail, MIN).unwrap();
        assert_eq!(c.namesrv.addrs, vec!["10.0.0.2:9876"]);
        Ok(())
    });
}

pub(super) fn err_in(text: &str, env: &[(&str, &str)]) -> ConfigError {
    let mut out = None;
    Jail::expect_with(|jail| {
        for (k, v) in env {
            jail.set_env(k, v);
        }
        out = Some(load_in(jail, text).unwrap_err());
        Ok(())
    });
    out.unwrap()
}

#[test]
fn every_problem_names_its_key_and_source() {
    let e = err_in(&format!("{MIN}\n[register]\ninterval = \"5s\"\n"), &[]);
    assert_eq!(e.key, "register.interval");
    assert!(e.source_name.contains("c.toml"), "{e}");
    assert!(e.reason.contains("10s..=60s"));

    let e = err_in(&format!("{MIN}\n[register]\nintervall = \"30s\"\n"), &[]);
    assert_eq!(e.key, "register.intervall", "{e}");
    assert!(e.source_name.contains("c.toml"), "{e}");

    let e = err_in(&format!("{MIN}\n[register]\ntimeout = 3\n"), &[]);
    assert_eq!(e.key, "register.timeout", "{e}");

    let e = err_in(&MIN.replace("10.0.0.2:9876", "nope"), &[]);
    assert_eq!(e.key, "namesrv.addrs", "{e}");

    let e = err_in("[broker]\nname = \"b\"\naddr = \"h:1\"\n", &[]);
    assert_eq!(e.key, "namesrv.addrs");
    assert!(e.reason.contains("no NameServer source"));

    let e = err_in(MIN, &[("RMQ_REGISTRAR_REGISTER__INTERVAL", "2h")]);
    assert_eq!(e.key, "register.interval");
    assert!(e.source_name.contains("RMQ_REGISTRAR_"), "{e}");

    let e = err_in(MIN, &[("RMQ_REGISTRAR_BROKER__ID", "minus-one")]);
    assert_eq!(e.key, "broker.id", "{e}");

    let e = err_in(MIN, &[("RMQ_REGISTRAR_HTTP__LISTN", "x")]);
    assert!(e.key.contains("listn"), "{e}");
    assert!(e.to_string().contains("config error"));
}

#[test]
fn the_drain_token_is_never_blank_never_twice_and_the_drain_outlasts_its_wait() {
    for (text, key, says) in [
        ("[drain]\ntoken = \"\"\n", "drain.token", "is empty"),
        ("[drain]\ntoken = \"  \"\n", "drain.token", "is empty"),
        (
            "[drain]\ntoken = \"a\"\ntoken_file = \"/t\"\n",
            "drain.token",
            "both set",
        ),
        ("[drain]\ntoken_file = \"\"\n", "drain.token_file", "is empty"),
        (
            "[drain]\nwait = \"40s\"\nmax = \"40s\"\n",
            "drain.max",
            "not longer than drain.wait",
        ),
        ("[drain]\nmax = \"30s\"\n", "drain.max", "not longer than drain.wait (40s)"),
        (
            "[drain]\ntoken = \"<left out by check-config --toml>\"\n",
            "drain.token",
            "RMQ_REGISTRAR_DRAIN__TOKEN",
        ),
        ("[drain]\nlisten = \"nowhere\"\n", "drain.listen", "not ip:port"),
        (
            "[drain]\nlisten = \"127.0.0.1:9100\"\n",
            "drain.listen",
            "port of http.listen",
        ),
        (
            "[drain]\ntoken = \"s3cret\\n\"\n",
            "drain.token",
            "trailing whitespace",
        ),
        (
            "[drain]\nlisten = \"0.0.0.0:9100\"\n",
            "drain.listen",
            "port of http.listen",
        ),
        ("[slave]\nfile_mode = \"0\"\n", "slave.file_mode", "no one read"),
        ("[slave]\nfile_mode = \"0200\"\n", "slave.file_mode", "no one read"),
    ] {
        let e = err_in(&format!("{MIN}\n{text}"), &[]);
        assert_eq!(e.key, key, "{text}: {e}");
        assert!(e.reason.contains(says), "{text}: {e}");
    }
    // From the environment too: an empty variable is an empty token, not none.
    let e = err_in(MIN, &[("RMQ_REGISTRAR_DRAIN__TOKEN", "")]);
    assert_eq!(e.key, "drain.token", "{e}");
    assert!(e.source_name.contains("RMQ_REGISTRAR_DRAIN__TOKEN"), "{e}");
    // What stays accepted.
    Jail::expect_with(|jail| {
        let c = load_in(
            jail,
            &format!("{MIN}\n[drain]\ntoken = \"s3cret\"\nwait = \"0s\"\nmax = \"1s\"\nlisten = \"127.0.0.1:9101\"\n[slave]\nfile_mode = \"0400\"\n"),
        )
        .unwrap();
        assert_eq!(c.drain.listen.as_deref(), Some("127.0.0.1:9101"));
        Ok(())
    });
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let e = load(Some(Path::new("/nonexistent/rmq.toml"))).unwrap_err();
    assert!(e.source_name.contains("/nonexistent/rmq.toml"));
}

#[test]
fn shipped_examples_are_valid() {
    for name in ["minimal.toml", "quickstart.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(name);
        Jail::expect_with(|_| {
            let loaded = load(Some(&path));
            assert!(loaded.is_ok(), "{name}: {:?}", loaded.err());
            Ok(())
        });
    }
}

/// The commented example is the package's conffile and the image's documentation: it carries
/// no broker identity and no NameServer, so alone it is refused with where to set them; given
/// them, it loads.
#[test]
fn the_full_example_has_no_identity_and_loads_with_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rmq-registrar.toml");
    Jail::expect_with(|jail| {
        let e = load(Some(&path)).unwrap_err();
        assert_eq!(e.key, "broker.name", "{e}");
        assert!(e.to_string().contains("RMQ_REGISTRAR_BROKER__NAME"), "{e}");
        assert!(e.to_string().contains("brokerName"), "{e}");
        jail.set_env("RMQ_REGISTRAR_BROKER__NAME", "broker-a");
        let e = load(Some(&path)).unwrap_err();
        assert_eq!(e.key, "broker.addr", "{e}");
        assert!(e.to_string().contains("RMQ_REGISTRAR_BROKER__ADDR"), "{e}");
        jail.set_env("RMQ_REGISTRAR_BROKER__ADDR", "10.0.0.1:10911");
        // Nor a NameServer: those come from where the broker's own come from.
        let e = load(Some(&path)).unwrap_err();
        assert_eq!(e.key, "namesrv.addrs", "{e}");
        jail.set_env("NAMESRV_ADDR", "10.0.0.2:9876");
        let c = load(Some(&path)).map_err(|e| e.to_string())?.config;
        assert_eq!(
            (c.broker.cluster.as_str(), c.broker.id),
            ("DefaultCluster", 0)
        );
        assert_eq!(c.namesrv.addrs, vec!["10.0.0.2:9876"]);
        Ok(())
    });
}

#[test]
fn broker_conf_sits_between_namesrv_addr_and_the_toml_file() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "broker.conf",
            "brokerClusterName=ConfCluster\nbrokerName=conf-broker\nbrokerId=0\n\
             namesrvAddr=127.0.0.1:9876;127.0.0.2:9876\nbrokerIP1=192.0.2.10\nlistenPort=30911\n\
             storePathRootDir=/data/store\nregisterBrokerTimeoutMills=6000\nsomeBrokerOnlyKey=ignored\n",
        )?;
        jail.set_env("NAMESRV_ADDR", "10.9.9.9:9876");
        // Only broker.conf, named by the environment: it wins over NAMESRV_ADDR.
        jail.set_env("RMQ_REGISTRAR_BROKER__CONF_FILE", "broker.conf");
        let l = load(None).unwrap();
        let c = &l.config;
        assert_eq!(c.broker.name, "conf-broker");
        assert_eq!(c.broker.cluster, "ConfCluster");
        assert_eq!(c.broker.addr, "192.0.2.10:30911");
        assert_eq!(c.ha_addr(), "192.0.2.10:30912");
        assert_eq!(c.namesrv.addrs, vec!["127.0.0.1:9876", "127.0.0.2:9876"]);
        assert_eq!(c.register.timeout, Duration::from_secs(6));
        assert_eq!(
            c.broker.topics.file.as_deref(),
            Some(Path::new("/data/store/config/topics.json"))
        );
        let meta = l.figment.find_metadata("broker.name").unwrap();
        assert!(
            describe(meta).ends_with("broker.conf: brokerName"),
            "{}",
            describe(meta)
        );
        let meta = l.figment.find_metadata("broker.addr").unwrap();
        assert!(describe(meta).contains("brokerIP1, listenPort"));
        // The TOML file wins over broker.conf, the environment over both.
        jail.create_file(
            "c.toml",
            "[broker]\nname = \"from-toml\"\n[register]\ntimeout = \"2s\"\n",
        )?;
        jail.set_env("RMQ_REGISTRAR_REGISTER__TIMEOUT", "4s");
        let c = load(Some(Path::new("c.toml"))).unwrap().config;
        assert_eq!(c.broker.name, "from-toml");
        assert_eq!(c.broker.cluster, "ConfCluster");
        assert_eq!(c.register.timeout, Duration::from_secs(4));
        // With the broker as the topic source, broker.conf's topics.json is not a conflict.
        jail.create_file("d.toml", "[broker.topics]\nsource = \"broker\"\n")?;
        let c = load(Some(Path::new("d.toml"))).unwrap().config;
        assert_eq!(c.broker.topics.file, None);
        // A value broker.conf cannot give names the property.
        jail.create_file(
            "broker.conf",
            "brokerName=b\nbrokerIP1=h\nhaListenPort=-1\n",
        )?;
        let e = load(None).unwrap_err();
        assert_eq!(e.key, "haListenPort", "{e}");
        assert!(e.source_name.contains("broker.conf"), "{e}");
        jail.set_env("RMQ_REGISTRAR_BROKER__CONF_FILE", "missing.conf");
        let e = load(None).unwrap_err();
        assert_eq!(e.key, "broker.conf_file", "{e}");
        Ok(())
    });
}

/// Every key the example names, commented out or not: `section.key` from `key = …` and
/// `# key = …` lines under `[section]` or `# [[section]]` headers.
fn example_keys(text: &str) -> std::collections::BTreeSet<String> {
    let mut section = String::new();
    let mut keys = std::collections::BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(head) = line.strip_prefix('[') {
            section = head.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

/// Every key of the model, as dotted paths (an inline topic's keys under its list).
fn model_keys() -> std::collections::BTreeSet<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, child) in m {
                    walk(&format!("{prefix}.{k}"), child, out);
                }
            }
            _ => {
                out.insert(prefix.trim_start_matches('.').to_string());
            }
        }
    }
    let mut keys = std::collections::BTreeSet::new();
    let mut with_topic = Config::default();
    with_topic.broker.topics.inline.push(InlineTopic {
        name: "T".into(),
        read_queues: 8,
        write_queues: 8,
        perm: 6,
        order: false,
    });
    let mut v = serde_json::to_value(&with_topic).unwrap();
    let topic = v["broker"]["topics"]["inline"][0].take();
    v["broker"]["topics"]
        .as_object_mut()
        .unwrap()
        .remove("inline");
    walk("", &v, &mut keys);
    walk("broker.topics.inline", &topic, &mut keys);
    keys
}

#[test]
fn the_example_names_every_key_of_the_model_and_no_other() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rmq-registrar.toml");
    let example = example_keys(&std::fs::read_to_string(path).unwrap());
    let model = model_keys();
    let missing: Vec<_> = model.difference(&example).collect();
    let unknown: Vec<_> = example.difference(&model).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "config/rmq-registrar.toml lacks {missing:?} and names {unknown:?}, which the model has not"
    );
    assert!(model.contains("register.split_size") && model.contains("acl.secret_key"));
}

#[test]
fn environment_sources_are_named_by_their_variable() {
    let e = err_in(MIN, &[("RMQ_REGISTRAR_REGISTER__INTERVAL", "2h")]);
    assert_eq!(
        e.source_name, "environment variable RMQ_REGISTRAR_REGISTER__INTERVAL",
        "{e}"
    );
    let e = err_in(MIN, &[("RMQ_REGISTRAR_BROKER__HEALTH__CHECK", "ping")]);
    assert_eq!(
        e.source_name, "environment variable RMQ_REGISTRAR_BROKER__HEALTH__CHECK",
        "{e}"
    );
    let e = err_in(MIN, &[("RMQ_REGISTRAR_HTTP__LISTN", "x")]);
    assert_eq!(
        e.source_name, "environment variable RMQ_REGISTRAR_HTTP__LISTN",
        "{e}"
    );
    let no_addrs = "[broker]\nname = \"b\"\naddr = \"h:1\"\n";
    let e = err_in(no_addrs, &[("NAMESRV_ADDR", "nope")]);
    assert_eq!(e.key, "namesrv.addrs");
    assert_eq!(e.source_name, "environment variable NAMESRV_ADDR", "{e}");
    Jail::expect_with(|jail| {
        jail.set_env("NAMESRV_ADDR", "n1:9876");
        jail.set_env("RMQ_REGISTRAR_BROKER__NAME", "env-broker");
        jail.create_file("c.toml", no_addrs)?;
        let l = load(Some(Path::new("c.toml"))).unwrap();
        let meta = l.figment.find_metadata("namesrv.addrs").unwrap();
        assert_eq!(
            describe_key(meta, "namesrv.addrs"),
            "environment variable NAMESRV_ADDR"
        );
        let meta = l.figment.find_metadata("broker.name").unwrap();
        assert_eq!(
            describe_key(meta, "broker.name"),
            "environment variable RMQ_REGISTRAR_BROKER__NAME"
        );
        Ok(())
    });
}

#[test]
fn a_debug_print_of_the_configuration_carries_no_secret() {
    let text = format!(
        "{MIN}\n[acl]\naccess_key = \"ak\"\nsecret_key = \"s3cr3t\"\nsecurity_token = \"t0ken\"\n"
    );
    let c = from_toml_str(&text).unwrap();
    let printed = format!("{c:?}");
    assert!(printed.contains("\"ak\""), "{printed}");
    assert!(
        !printed.contains("s3cr3t") && !printed.contains("t0ken"),
        "{printed}"
    );
}

#[test]
fn a_pull_needs_no_broker_identity_or_namesrv_but_keeps_its_settings() {
    Jail::expect_with(|jail| {
        jail.create_file("p.toml", "[slave]\nvip_channel = false\n")?;
        assert!(
            load(Some(Path::new("p.toml"))).is_err(),
            "the daemon needs them"
        );
        let c = load_for_pull(Some(Path::new("p.toml"))).unwrap().config;
        assert!(!c.slave.vip_channel);
        // A value that is set is still checked.
        jail.create_file("q.toml", "[broker]\naddr = \"nope\"\n")?;
        let e = load_for_pull(Some(Path::new("q.toml"))).unwrap_err();
        assert_eq!(e.key, "broker.addr");
        Ok(())
    });
}

#[test]
fn identity_from_the_broker_needs_only_its_address_and_keeps_the_id_its_own() {
    Jail::expect_with(|jail| {
        // As `--broker 127.0.0.1:10911` sets it: nothing else is needed.
        jail.set_env("RMQ_REGISTRAR_BROKER__IDENTITY", "broker");
        jail.set_env("RMQ_REGISTRAR_BROKER__HEALTH__ADDR", "127.0.0.1:10911");
        jail.set_env("RMQ_REGISTRAR_BROKER__TOPICS__SOURCE", "broker");
        let l = load(None).unwrap();
        assert_eq!(l.config.broker.identity, IdentitySource::Broker);
        assert_eq!(l.pinned, Pinned::default());
        // The pod IP set by the operator wins over what the broker says; the id may not be set.
        jail.create_file("c.toml", "[broker]\naddr = \"10.1.1.1:10911\"\n")?;
        let pinned = load(Some(Path::new("c.toml"))).unwrap().pinned;
        assert!(pinned.addr);
        let e = load_in(jail, "[broker]\nid = 1\n").unwrap_err();
        assert_eq!(e.key, "broker.id");
        let e = load_in(jail, "[broker.health]\ncheck = \"tcp\"\n").unwrap_err();
        assert_eq!(e.key, "broker.health.check");
        Ok(())
    });
}

#[test]
fn an_empty_name_or_addr_set_with_the_identity_from_the_broker_is_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("RMQ_REGISTRAR_BROKER__IDENTITY", "broker");
        jail.set_env("RMQ_REGISTRAR_BROKER__HEALTH__ADDR", "127.0.0.1:10911");
        // Set empty, it would win over the broker's and be registered as it is.
        for (text, key) in [
            ("[broker]\nname = \"\"\n", "broker.name"),
            ("[broker]\naddr = \"\"\n", "broker.addr"),
            ("[broker]\nname = \"  \"\n", "broker.name"),
        ] {
            let e = load_in(jail, text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.reason.contains("leave it unset"), "{e}");
        }
        jail.set_env("RMQ_REGISTRAR_BROKER__NAME", "");
        let e = load(None).unwrap_err();
        assert_eq!(e.key, "broker.name", "{e}");
        assert!(e.source_name.contains("RMQ_REGISTRAR_BROKER__NAME"), "{e}");
        Ok(())
    });
}

#[test]
fn a_dledger_broker_conf_follows_the_broker_and_refuses_no_check() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "broker.conf",
            "brokerClusterName=RaftCluster\nbrokerName=RaftNode00\nbrokerIP1=10.0.0.5\n\
             listenPort=30911\nnamesrvAddr=127.0.0.1:9876\nenableDLegerCommitLog=true\n\
             dLegerSelfId=n0\n",
        )?;
        jail.set_env("RMQ_REGISTRAR_BROKER__CONF_FILE", "broker.conf");
        let c = load(None).map(|l| l.config).unwrap();
        assert_eq!(c.broker.identity, IdentitySource::Broker);
        assert_eq!(c.broker_check_addr(), "10.0.0.5:30911");
        assert!(
            c.broker.topics.file.is_none(),
            "topics come from the broker"
        );
        let e = load_in(jail, "[broker.health]\ncheck = \"none\"\n").unwrap_err();
        assert_eq!(e.key, "broker.health.check");
        assert!(e.reason.contains("identity"), "{e}");
        Ok(())
    });
}

#[test]
fn heartbeat_keys_default_to_one_second_and_ten_seconds_and_take_off() {
    let c = from_toml_str(MIN).unwrap();
    assert_eq!(c.register.heartbeat, Some(Duration::from_secs(1)));
    assert_eq!(c.register.heartbeat_timeout, Some(Duration::from_secs(10)));
    let text = format!("{MIN}\n[register]\nheartbeat = \"off\"\nheartbeat_timeout = \"off\"\n");
    let c = from_toml_str(&text).unwrap();
    assert_eq!(
        (c.register.heartbeat, c.register.heartbeat_timeout),
        (None, None)
    );
    // "off" survives a print and a read back (check-config's output is a config file).
    let printed = toml::to_string(&c).unwrap();
    assert!(printed.contains("heartbeat = \"off\""), "{printed}");
}

#[test]
fn force_every_survives_a_print_and_a_read_back_in_each_of_its_forms() {
    for (written, value) in [
        ("", Some(Duration::from_secs(300))),
        ("force_every = \"always\"\n", None),
        ("force_every = \"never\"\n", Some(crate::config::NEVER)),
        ("force_every = \"90s\"\n", Some(Duration::from_secs(90))),
    ] {
        let c = from_toml_str(&format!("{MIN}\n[register]\n{written}")).unwrap();
        assert_eq!(c.register.force_every, value, "{written}");
        let printed = toml::to_string(&c).unwrap();
        let back = from_toml_str(&printed).unwrap();
        assert_eq!(back.register.force_every, value, "{printed}");
    }
}

#[test]
fn the_default_expiry_rises_to_what_the_timings_need_and_a_set_one_is_checked() {
    // register.timeout = 10s was valid before heartbeats: the default expiry (10 s) follows it
    // up to timeout + 2 x heartbeat instead of refusing a config the operator never changed.
    let c = from_toml_str(&format!("{MIN}\n[register]\ntimeout = \"10s\"\n")).unwrap();
    assert_eq!(c.register.heartbeat_timeout, Some(Duration::from_secs(12)));
    let off = from_toml_str(&format!("{MIN}\n[register]\nheartbeat = \"off\"\n")).unwrap();
    assert_eq!(
        off.register.heartbeat_timeout,
        Some(Duration::from_secs(63))
    );
    // Set by the operator: checked, not moved.
    let e = from_toml_str(&format!(
        "{MIN}\n[register]\ntimeout = \"10s\"\nheartbeat_timeout = \"10s\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "register.heartbeat_timeout");
}

#[test]
fn an_environment_value_is_the_text_written_where_the_key_takes_text() {
    Jail::expect_with(|jail| {
        // Each of these was read as a number and refused ("found unsigned int"): a numeric
        // secret could not be passed the way the README recommends.
        jail.set_env("RMQ_REGISTRAR_ACL__ACCESS_KEY", "ak");
        jail.set_env("RMQ_REGISTRAR_ACL__SECRET_KEY", "123456");
        jail.set_env("RMQ_REGISTRAR_SLAVE__FILE_MODE", "0644");
        jail.set_env("RMQ_REGISTRAR_BROKER__NAME", "12345");
        let c = load_in(jail, MIN).unwrap();
        assert_eq!(c.acl.secret_key.as_deref(), Some("123456"));
        assert_eq!(c.slave.file_mode, "0644", "a leading zero stays");
        assert_eq!(c.slave_file_mode(), Some(0o644));
        assert_eq!(c.broker.name, "12345");
        // Text, never a number, whatever it looks like.
        jail.set_env("RMQ_REGISTRAR_ACL__SECRET_KEY", "0123");
        jail.set_env("RMQ_REGISTRAR_BROKER__CLUSTER", "true");
        let c = load_in(jail, MIN).unwrap();
        assert_eq!(c.acl.secret_key.as_deref(), Some("0123"));
        assert_eq!(c.broker.cluster, "true");
        // Numbers, booleans and lists still read as such where the key takes them.
        jail.set_env("RMQ_REGISTRAR_BROKER__ID", "2");
        jail.set_env("RMQ_REGISTRAR_REGISTER__SPLIT_SIZE", "100");
        jail.set_env("RMQ_REGISTRAR_REGISTER__COMPRESSED", "true");
        jail.set_env("RMQ_REGISTRAR_NAMESRV__ADDRS", r#"["a:1", "b:2"]"#);
        let c = load_in(jail, MIN).unwrap();
        assert_eq!(c.broker.id, 2);
        assert_eq!(c.register.split_size, 100);
        assert!(c.register.compressed);
        assert_eq!(c.namesrv.addrs, vec!["a:1", "b:2"]);
        // A number where a number is wanted is still checked, and named by its variable.
        jail.set_env("RMQ_REGISTRAR_BROKER__ID", "two");
        let e = load_in(jail, MIN).unwrap_err();
        assert_eq!(e.key, "broker.id", "{e}");
        assert_eq!(
            e.source_name, "environment variable RMQ_REGISTRAR_BROKER__ID",
            "{e}"
        );
        Ok(())
    });
}

/// The packaged conffile (and the image's documentation) shows every key with its default, and
/// sets none of them: an active line there would win over broker.conf, NAMESRV_ADDR and the
/// broker's own answers, as `addrs = ["127.0.0.1:9876"]` did over every NameServer list.
#[test]
fn the_packaged_config_shows_every_default_and_sets_no_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rmq-registrar.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    fn set_keys(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            match v {
                toml::Value::Table(inner) => set_keys(&format!("{prefix}{k}."), inner, out),
                _ => out.push(format!("{prefix}{k}")),
            }
        }
    }
    let mut set = Vec::new();
    set_keys("", &text.parse::<toml::Table>().unwrap(), &mut set);
    assert!(
        set.is_empty(),
        "config/rmq-registrar.toml sets {set:?}: comment them out (as `# key = default`)"
    );
    // What an operator meets: broker.conf named by the packaged file is not overridden by it.
    Jail::expect_with(|jail| {
        jail.create_file(
            "broker.conf",
            "brokerName=conf-broker\nbrokerIP1=192.0.2.10\nnamesrvAddr=192.0.2.20:9876\n\
             registerNameServerPeriod=45000\ncompressedRegister=true\n",
        )?;
        jail.create_file(
            "rmq-registrar.toml",
            &text.replace(
                "# conf_file = \"/home/rocketmq/conf/broker.conf\"",
                "conf_file = \"broker.conf\"",
            ),
        )?;
        let c = load(Some(Path::new("rmq-registrar.toml")))
            .map_err(|e| e.to_string())?
            .config;
        assert_eq!(c.broker.conf_file.as_deref(), Some(Path::new("broker.conf")));
        assert_eq!(c.namesrv.addrs, vec!["192.0.2.20:9876"]);
        assert_eq!(c.register.interval, Duration::from_secs(45));
        assert!(c.register.compressed);
        Ok(())
    });
}

#[test]
fn a_fault_margin_with_no_level_to_end_at_is_refused() {
    let e = err_in(&format!("{MIN}\n[fault]\ndisk_margin = 18\n"), &[]);
    assert_eq!(e.key, "fault.disk_margin", "{e}");
    assert!(e.reason.contains("35 %"), "{e}");
    let e = err_in(&format!("{MIN}\n[fault]\ndisk_margin = 10\ndisk_threshold = 20\n"), &[]);
    assert_eq!(e.key, "fault.disk_margin", "{e}");
    Jail::expect_with(|jail| {
        let c = load_in(jail, &format!("{MIN}\n[fault]\ndisk_margin = 20\ndisk_threshold = 95\n")).unwrap();
        assert_eq!((c.fault.disk_margin, c.fault.min_writable, c.fault.disk), (20, 1, true));
        Ok(())
    });
}
