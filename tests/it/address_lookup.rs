//! The address-server lookup against a scripted local HTTP server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_registrar::address_server::{AddressServer, LookupError};
use rmq_registrar::client::{ClientConfig, RemotingClient};

use crate::support::http::{http_server, Script};

#[tokio::test]
async fn lookup_reports_lists_changes_and_every_failure() {
    let script: Script = Arc::new(Mutex::new((
        200,
        "127.0.0.1:9876;127.0.0.1:9877\n".into(),
        Duration::ZERO,
    )));
    let (addr, task) = http_server(script.clone()).await;
    let url = AddressServer::url_for(&addr, "nsaddr");
    assert_eq!(url, format!("http://{addr}/rocketmq/nsaddr"));
    let server = AddressServer::new(url, Duration::from_millis(500)).unwrap();
    // The client keeps the last good list and says whether a new one changes its members.
    let book = RemotingClient::new(ClientConfig::default(), None);

    let list = server.fetch().await.unwrap();
    assert_eq!(list, vec!["127.0.0.1:9876", "127.0.0.1:9877"]);
    assert!(book.update_name_server_list(list));

    script.lock().unwrap().1 = " 127.0.0.1:9877;127.0.0.1:9876 ".into();
    assert!(
        !book.update_name_server_list(server.fetch().await.unwrap()),
        "same set, other order: unchanged"
    );

    script.lock().unwrap().1 = "127.0.0.1:9878".into();
    assert!(book.update_name_server_list(server.fetch().await.unwrap()));
    assert_eq!(book.name_server_list(), ["127.0.0.1:9878".to_string()]);

    script.lock().unwrap().1 = "".into();
    assert!(matches!(
        server.fetch().await,
        Err(LookupError::Empty { .. })
    ));

    script.lock().unwrap().1 = "<html><body>maintenance</body></html>".into();
    assert!(matches!(
        server.fetch().await,
        Err(LookupError::Invalid { .. })
    ));

    *script.lock().unwrap() = (404, "no".into(), Duration::ZERO);
    assert!(matches!(
        server.fetch().await,
        Err(LookupError::Status { status: 404, .. })
    ));

    *script.lock().unwrap() = (200, "127.0.0.1:1".into(), Duration::from_secs(5));
    let t0 = tokio::time::Instant::now();
    let err = server.fetch().await.unwrap_err();
    assert!(
        matches!(&err, LookupError::Http { source, .. } if source.is_timeout()),
        "{err:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));

    // After every failure the caller still holds its last good list.
    assert_eq!(book.name_server_list(), ["127.0.0.1:9878".to_string()]);
    task.abort();
}
