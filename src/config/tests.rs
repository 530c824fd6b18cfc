use figment::Jail;

use super::*;

const MIN: &str = r#"
[broker]
name = "broker-a"
addr = "10.0.0.1:10911"
[namesrv]
addrs = ["10.0.0.2:9876"]
"#;

fn load_in(jail: &Jail, text: &str) -> Result<Config, ConfigError> {
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

fn err_in(text: &str, env: &[(&str, &str)]) -> ConfigError {
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
/// no broker identity, so alone it is refused with where to set one; given one, it loads.
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
        let c = load(Some(&path)).map_err(|e| e.to_string())?.config;
        assert_eq!(
            (c.broker.cluster.as_str(), c.broker.id),
            ("DefaultCluster", 0)
        );
        Ok(())
    });
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

#[test]
fn force_every_takes_never_and_broker_permission_is_checked() {
    Jail::expect_with(|jail| {
        let c = load_in(
            jail,
            &format!("{MIN}\n[register]\nforce_every = \"never\"\n"),
        )
        .unwrap();
        assert_eq!(c.register.force_every, Some(NEVER));
        let e = load_in(jail, &MIN.replace("[namesrv]", "permission = 9\n[namesrv]")).unwrap_err();
        assert_eq!(e.key, "broker.permission");
        Ok(())
    });
}

/// A CA certificate in PEM, made here.
fn ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn a_tls_file_turned_to_garbage_after_validation_cannot_make_a_plain_client() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem()).unwrap();
    let text = format!("{MIN}\n[tls]\nenable = true\nca_file = {ca:?}\n");
    let cfg = from_toml_str(&text).unwrap();
    let built = cfg.tls_client.get().cloned().expect("built at validation");
    // A rotation caught half-way: the file is garbage when the client is made. This is where
    // the files used to be read a second time (and a failure gave a plain client).
    std::fs::write(&ca, "not a certificate").unwrap();
    let tls = cfg.client_tls().unwrap().expect("TLS stays on");
    assert!(
        std::sync::Arc::ptr_eq(&tls.config, &built),
        "the files were read again"
    );
    assert!(cfg.client_config().unwrap().tls.is_some());
    // The same for a client that connects only to the broker over TLS.
    let mut broker_only = cfg.clone();
    broker_only.tls.enable = false;
    broker_only.broker.health.tls = Some(true);
    assert!(broker_only.client_tls().unwrap().is_some());
}

#[test]
fn tls_on_without_a_validated_build_is_an_error_not_plain_text() {
    let mut cfg = Config::default();
    cfg.tls.enable = true;
    let e = cfg.client_tls().unwrap_err();
    assert_eq!(e.key(), "tls.enable");
    assert!(cfg.client_config().is_err());
    assert!(crate::daemon::build_api(&cfg, None).is_err());
    // With TLS off there is nothing to build and nothing to refuse.
    assert!(Config::default().client_tls().unwrap().is_none());
}

#[test]
fn a_garbage_ca_is_refused_at_load_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "garbage").unwrap();
    let text = format!("{MIN}\n[tls]\nenable = true\nca_file = {ca:?}\n");
    let e = from_toml_str(&text).unwrap_err();
    assert_eq!(e.key, "tls.ca_file");
    assert!(e.reason.contains("holds no PEM certificate"), "{e}");
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
        let c = load(None).map(|l| l.config).unwrap();
        assert_eq!(c.broker.identity, IdentitySource::Broker);
        assert!(c.pinned.is_empty(), "{:?}", c.pinned);
        // The pod IP set by the operator wins over what the broker says; the id may not be set.
        let c = load_in(jail, "[broker]\naddr = \"10.1.1.1:10911\"\n").unwrap();
        assert!(c.pinned.contains("broker.addr"));
        let e = load_in(jail, "[broker]\nid = 1\n").unwrap_err();
        assert_eq!(e.key, "broker.id");
        let e = load_in(jail, "[broker.health]\ncheck = \"tcp\"\n").unwrap_err();
        assert_eq!(e.key, "broker.health.check");
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
