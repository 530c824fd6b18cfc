//! The address-server lookup against a scripted local HTTP server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_registrar::namesrv::{AddressBook, AddressServer, LookupError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the HTTP server answers next: status, body, delay before answering.
type Script = Arc<Mutex<(u16, String, Duration)>>;

async fn http_server(script: Script) -> (String, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                assert!(
                    buf.starts_with(b"GET /rocketmq/nsaddr HTTP/1.1"),
                    "{}",
                    String::from_utf8_lossy(&buf)
                );
                let (status, body, delay) = script.lock().unwrap().clone();
                tokio::time::sleep(delay).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

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
    let mut book = AddressBook::default();

    let list = server.fetch().await.unwrap();
    assert_eq!(list, vec!["127.0.0.1:9876", "127.0.0.1:9877"]);
    assert!(book.update(list));

    script.lock().unwrap().1 = " 127.0.0.1:9877;127.0.0.1:9876 ".into();
    assert!(
        !book.update(server.fetch().await.unwrap()),
        "same set, other order: unchanged"
    );

    script.lock().unwrap().1 = "127.0.0.1:9878".into();
    assert!(book.update(server.fetch().await.unwrap()));
    assert_eq!(book.current(), ["127.0.0.1:9878".to_string()]);

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
    assert_eq!(book.current(), ["127.0.0.1:9878".to_string()]);
    task.abort();
}
