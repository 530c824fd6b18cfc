//! A scripted DNS server on a loopback address of its own, port 53 (UDP, and TCP for answers
//! that do not fit), and the private mount namespace that points a daemon's system resolver
//! at it: the daemon's lookups take the real path (getaddrinfo, resolv.conf, a DNS query over
//! the wire), while the test says what the name holds.
//!
//! Messages are parsed and built with hickory-proto; what the server answers is the test's.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::AbortHandle;

/// What the names hold, and what the test asked to see.
#[derive(Default)]
struct Zone {
    records: HashMap<String, Vec<IpAddr>>,
    /// The next A answer (any name) leaves this address out.
    omit_once: Option<IpAddr>,
    a_queries: u64,
}

/// The server; stopped on drop.
pub struct DnsServer {
    zone: Arc<Mutex<Zone>>,
    tasks: Vec<AbortHandle>,
    files: tempfile::TempDir,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Loopback addresses handed out in this process: 127.53.P.N, P from the process id.
static NEXT: AtomicU8 = AtomicU8::new(1);

impl DnsServer {
    /// Listens on 127.53.x.y:53 (the tests run as root, and a resolv.conf names no port).
    pub async fn start() -> DnsServer {
        let mid = (std::process::id() % 250) as u8;
        for _ in 0..250 {
            let ip = Ipv4Addr::new(127, 53, mid, NEXT.fetch_add(1, Ordering::Relaxed));
            let at = SocketAddr::from((ip, 53));
            let (Ok(udp), Ok(tcp)) = (UdpSocket::bind(at).await, TcpListener::bind(at).await)
            else {
                continue;
            };
            let zone = Arc::new(Mutex::new(Zone::default()));
            let tasks = vec![
                tokio::spawn(serve_udp(udp, zone.clone())).abort_handle(),
                tokio::spawn(serve_tcp(tcp, zone.clone())).abort_handle(),
            ];
            let files = tempfile::tempdir().unwrap();
            let dir = files.path();
            std::fs::write(
                dir.join("resolv.conf"),
                format!("nameserver {ip}\noptions timeout:1 attempts:1\n"),
            )
            .unwrap();
            std::fs::write(dir.join("hosts"), "127.0.0.1 localhost\n").unwrap();
            std::fs::write(dir.join("nsswitch.conf"), "hosts: files dns\n").unwrap();
            return DnsServer { zone, tasks, files };
        }
        panic!("no free 127.53.{mid}.N:53 for the test DNS server");
    }

    /// `name` holds `ips` from now on (an empty list: the name does not exist).
    pub fn set(&self, name: &str, ips: &[&str]) {
        let ips: Vec<IpAddr> = ips.iter().map(|i| i.parse().unwrap()).collect();
        let mut z = self.zone.lock().unwrap();
        if ips.is_empty() {
            z.records.remove(name);
        } else {
            z.records.insert(name.to_string(), ips);
        }
    }

    /// The next A answer leaves `ip` out (one lookup missing a live NameServer).
    pub fn omit_once(&self, ip: &str) {
        self.zone.lock().unwrap().omit_once = Some(ip.parse().unwrap());
    }

    /// A queries answered so far (one per lookup).
    pub fn a_queries(&self) -> u64 {
        self.zone.lock().unwrap().a_queries
    }

    /// Stops answering: the sockets close, queries are refused.
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    /// The resolv.conf, hosts and nsswitch.conf a daemon is given (see [`in_mount_namespace`]).
    pub fn files(&self) -> &Path {
        self.files.path()
    }
}

/// `program args…` run in a private mount namespace where /etc/resolv.conf, /etc/hosts and
/// /etc/nsswitch.conf are the files in `dir`: the command line for `unshare`.
pub fn in_mount_namespace(dir: &Path, program: &Path) -> (PathBuf, Vec<String>) {
    let f = |n: &str| dir.join(n).display().to_string();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && mount --bind {} /etc/hosts && mount --bind {} /etc/nsswitch.conf && exec \"$@\"",
        f("resolv.conf"),
        f("hosts"),
        f("nsswitch.conf")
    );
    let args = vec![
        "--mount".to_string(),
        "--propagation".into(),
        "private".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        script,
        "sh".into(),
        program.display().to_string(),
    ];
    (PathBuf::from("unshare"), args)
}

/// Runs the daemon's binary with `args` (a one-shot command) resolving through the test DNS
/// server whose files are in `dir`; blocks until it exits.
pub fn run_resolving(dir: &Path, args: &[&str]) -> std::process::Output {
    let (program, mut argv) = in_mount_namespace(dir, &super::daemon::binary());
    argv.extend(args.iter().map(|a| a.to_string()));
    std::process::Command::new(program)
        .args(argv)
        .env_remove("NAMESRV_ADDR")
        .output()
        .unwrap()
}

async fn serve_udp(sock: UdpSocket, zone: Arc<Mutex<Zone>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            return;
        };
        let Some(mut reply) = answer(&buf[..n], &zone) else {
            continue;
        };
        let limit = reply_limit(&buf[..n]);
        let mut bytes = reply.to_vec().unwrap();
        if bytes.len() > limit {
            // Too big for UDP: the resolver asks again over TCP.
            reply.take_answers();
            reply.set_truncated(true);
            bytes = reply.to_vec().unwrap();
        }
        let _ = sock.send_to(&bytes, from).await;
    }
}

async fn serve_tcp(listener: TcpListener, zone: Arc<Mutex<Zone>>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let zone = zone.clone();
        tokio::spawn(async move {
            loop {
                let Ok(len) = s.read_u16().await else { return };
                let mut buf = vec![0u8; usize::from(len)];
                if s.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Some(reply) = answer(&buf, &zone) else {
                    return;
                };
                let bytes = reply.to_vec().unwrap();
                let _ = s.write_u16(bytes.len() as u16).await;
                if s.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The largest UDP answer the query allows (512, or its EDNS size).
fn reply_limit(query: &[u8]) -> usize {
    Message::from_vec(query)
        .ok()
        .and_then(|m| {
            m.extensions()
                .as_ref()
                .map(|e| usize::from(e.max_payload()))
        })
        .unwrap_or(512)
        .max(512)
}

/// The answer to one query message.
fn answer(query: &[u8], zone: &Mutex<Zone>) -> Option<Message> {
    let q = Message::from_vec(query).ok()?;
    let mut reply = Message::new();
    reply
        .set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(q.op_code())
        .set_recursion_desired(q.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    let mut z = zone.lock().unwrap();
    for query in q.queries() {
        reply.add_query(query.clone());
        let name = query
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let Some(ips) = z.records.get(&name).cloned() else {
            reply.set_response_code(ResponseCode::NXDomain);
            continue;
        };
        let omit = if query.query_type() == RecordType::A {
            z.a_queries += 1;
            z.omit_once.take()
        } else {
            None
        };
        for ip in ips.iter().filter(|ip| Some(**ip) != omit) {
            let rdata = match (ip, query.query_type()) {
                (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(query.name().clone(), 0, rdata));
        }
    }
    Some(reply)
}
