use super::*;
use crate::daemon::identity::Change;

#[tokio::test]
async fn anything_registered_that_changes_advances_the_data_version() {
    let mut cfg = Config::default();
    cfg.broker.name = "b".into();
    cfg.broker.addr = "10.0.0.1:10911".into();
    let sh = Shared::for_tests(cfg.clone());
    let v = || sh.topics.table().data_version.counter;
    sh.set_identity(Some(Current::from_config(&cfg))).await;
    let first = v();
    // The same again (a reload that changed nothing registered): no new version.
    sh.set_identity(Some(Current::from_config(&cfg))).await;
    assert_eq!(v(), first);
    // broker.permission changed at SIGHUP: NameServers update queue data only on a new
    // version, so it must advance although no topic changed.
    cfg.broker.permission = Some(4);
    let change = sh.set_identity(Some(Current::from_config(&cfg))).await;
    assert_eq!(change, Change::Settings);
    assert!(v() > first, "{} -> {}", first, v());
    cfg.broker.id = 1;
    let before = v();
    sh.set_identity(Some(Current::from_config(&cfg))).await;
    assert!(v() > before);
    assert_eq!(sh.metrics.broker.identity_changes.get(), 1);
    assert_eq!(sh.metrics.broker.id.get(), 1);
}
