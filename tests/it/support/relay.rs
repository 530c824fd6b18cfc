//! A TCP relay between a real peer and its NameServer that passes every byte on unchanged and
//! counts the requests going through it by code (a broker's own REGISTER_BROKER).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rmq_registrar::protocol::FrameCodec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;

/// A relay to `upstream` on 127.0.0.1; stops on drop.
pub struct Relay {
    pub addr: String,
    /// Where it relays to.
    pub upstream: String,
    /// Requests seen from the client side, by code.
    pub seen: Arc<Mutex<HashMap<i32, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Starts relaying to `upstream` (reconnecting for each connection it accepts).
    pub async fn start(upstream: &str) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<HashMap<i32, usize>>> = Arc::default();
        let (up, counts) = (upstream.to_string(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = l.accept().await {
                let (up, counts) = (up.clone(), counts.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&up).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let back = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    });
                    let mut codec = FrameCodec::default();
                    let mut pending = BytesMut::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        while let Ok(Some(cmd)) = codec.decode(&mut pending) {
                            if !cmd.is_response() {
                                *counts.lock().unwrap().entry(cmd.code).or_default() += 1;
                            }
                        }
                    }
                    back.abort();
                });
            }
        });
        Relay {
            addr,
            upstream: upstream.to_string(),
            seen,
            task,
        }
    }

    /// Requests of `code` relayed so far.
    pub fn count(&self, code: i32) -> usize {
        self.seen.lock().unwrap().get(&code).copied().unwrap_or(0)
    }
}
