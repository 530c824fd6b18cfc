use super::*;

fn cfg(toml: &str) -> Config {
    let mut c: Config = toml::from_str(toml).unwrap();
    c.broker.name = "b".into();
    c
}

fn answer(addrs: &[&str]) -> Result<Answer, LookupError> {
    Ok(Answer {
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        over_cap: 0,
    })
}

fn key(s: &str) -> NameKey {
    match Entry::parse(s) {
        Entry::Name(k) => k,
        e => panic!("{e:?}"),
    }
}

#[test]
fn names_and_addresses_make_one_list_an_address_met_twice_once() {
    let c = cfg("[namesrv]\naddrs = [\"10.0.0.1:9876\", \"10.0.0.2:9876\", \"ns.test:9876\"]\n");
    let plan = Plan::new(&c, &[]);
    let mut s = Sources::default();
    assert!(s.follow(&plan).is_empty());
    assert_eq!(plan.names(), vec![key("ns.test:9876")]);
    // Before the name answers: the addresses alone.
    assert_eq!(s.list(&plan).addrs, ["10.0.0.1:9876", "10.0.0.2:9876"]);
    assert_eq!(
        s.view(&plan).empty_reasons(),
        ["ns.test:9876: no answer yet"]
    );
    let now = Instant::now();
    s.take_lookup(&key("ns.test:9876"), answer(&["10.0.0.2:9876", "10.0.0.3:9876"]), now);
    let l = s.list(&plan);
    assert_eq!(l.addrs, ["10.0.0.1:9876", "10.0.0.2:9876", "10.0.0.3:9876"]);
    // The address met twice is the first entry's: written as an address, no name.
    assert_eq!(l.names.len(), 1);
    assert_eq!(l.names["10.0.0.3:9876"], "ns.test");
}

#[test]
fn a_failed_lookup_keeps_the_last_good_answer_and_says_so_once() {
    let c = cfg("[namesrv]\naddrs = [\"ns.test:9876\"]\n");
    let plan = Plan::new(&c, &[]);
    let mut s = Sources::default();
    s.follow(&plan);
    let k = key("ns.test:9876");
    let now = Instant::now();
    assert!(matches!(
        s.take_lookup(&k, answer(&["10.0.0.2:9876"]), now),
        Some((Taken::Answer(_), 1))
    ));
    let fail = || Err(LookupError::Failed("no server".into()));
    assert_eq!(
        s.take_lookup(&k, fail(), now),
        Some((Taken::StartedFailing("no server".into()), 1))
    );
    assert_eq!(s.take_lookup(&k, fail(), now), Some((Taken::StillFailing, 1)));
    assert_eq!(s.list(&plan).addrs, ["10.0.0.2:9876"]);
    let v = s.view(&plan);
    assert_eq!(v.0[0].error.as_deref(), Some("no server"));
    assert!(v.empty_reasons().is_empty());
    assert!(matches!(
        s.take_lookup(&k, answer(&["10.0.0.2:9876"]), now),
        Some((Taken::Recovered(_), 1))
    ));
}

#[test]
fn the_address_server_replaces_addrs_once_it_answers_unless_union() {
    for (combine, want) in [
        ("fallback", vec!["10.9.0.1:9876"]),
        ("union", vec!["10.0.0.1:9876", "10.9.0.1:9876"]),
    ] {
        let c = cfg(&format!(
            "[namesrv]\naddrs = [\"10.0.0.1:9876\"]\naddress_server = \"http://127.0.0.1:1/x\"\ncombine = \"{combine}\"\n"
        ));
        let plan = Plan::new(&c, &["10.7.0.1:9876".into()]);
        let mut s = Sources::default();
        s.follow(&plan);
        assert_eq!(s.list(&plan).addrs, ["10.0.0.1:9876"], "{combine}");
        assert_eq!(s.take_server(Err("down".into())), Taken::StartedFailing("down".into()));
        assert_eq!(s.take_server(Err("down".into())), Taken::StillFailing, "said once");
        assert_eq!(s.list(&plan).addrs, ["10.0.0.1:9876"], "{combine}");
        let back = s.take_server(Ok(vec!["10.9.0.1:9876".into()]));
        assert_eq!(back, Taken::Recovered(Change::default()), "{combine}");
        assert_eq!(s.list(&plan).addrs, want, "{combine}");
        // A failure after an answer keeps the answer.
        s.take_server(Err("down".into()));
        assert_eq!(s.list(&plan).addrs, want, "{combine}");
    }
}

#[test]
fn the_brokers_list_only_without_another_source_and_its_names_looked_up() {
    let c = cfg("[broker]\nidentity = \"broker\"\n");
    let plan = Plan::new(&c, &["ns.broker:9876".into(), "10.0.0.9:9876".into()]);
    assert_eq!(plan.names(), vec![key("ns.broker:9876")]);
    let mut s = Sources::default();
    s.follow(&plan);
    s.take_lookup(&key("ns.broker:9876"), answer(&["10.0.0.8:9876"]), Instant::now());
    assert_eq!(s.list(&plan).addrs, ["10.0.0.8:9876", "10.0.0.9:9876"]);
    let c = cfg("[namesrv]\naddrs = [\"10.0.0.1:9876\"]\n");
    let plan = Plan::new(&c, &["ns.broker:9876".into()]);
    assert!(plan.names().is_empty());
    assert_eq!(s.follow(&plan), vec![key("ns.broker:9876")]);
    assert_eq!(s.list(&plan).addrs, ["10.0.0.1:9876"]);
}
