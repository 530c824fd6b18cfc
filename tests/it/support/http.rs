//! A scripted address server (the HTTP endpoint that names the NameServers).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// What the scripted HTTP server answers next: status, body, delay before answering.
pub type Script = Arc<Mutex<(u16, String, Duration)>>;

/// An address server on 127.0.0.1 answering `GET /rocketmq/nsaddr` from `script`.
pub async fn http_server(script: Script) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncReadExt;
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
                let ok_path = buf.starts_with(b"GET /rocketmq/nsaddr HTTP/1.1");
                let (status, body, delay) = if ok_path {
                    script.lock().unwrap().clone()
                } else {
                    (400, String::new(), Duration::ZERO)
                };
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
