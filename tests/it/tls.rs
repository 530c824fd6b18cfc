//! TLS against the real NameServer (`rocketmq-namesrv-rust -c FILE.ini` with `tls.*` lines),
//! with a CA, server and client certificates made here (rcgen, IP SAN 127.0.0.1).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rmq_registrar::client::{ClientConfig, ClientTls, RemotingClient};
use rmq_registrar::config::TlsConfig;
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;

use crate::support::daemon::{base_config, metric, Daemon};
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::ports::ClosedPort;
use crate::support::programs::peer_binary;
use crate::support::remoting::{client, client_with};
use crate::support::wait::{eventually, eventually_within};

/// PEM files of one test PKI in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A CA, a server certificate for 127.0.0.1 and "namesrv.test", a client certificate, a
    /// second unrelated CA, and a self-signed server certificate.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, cn);
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let server_params = || {
            let mut p = CertificateParams::new(vec!["namesrv.test".to_string()]).unwrap();
            p.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
            p
        };
        let root = ca("rmq-registrar test CA");
        write("ca.pem", root.pem());
        write("other-ca.pem", ca("some other CA").pem());
        let key = KeyPair::generate().unwrap();
        let cert = server_params().signed_by(&key, &root).unwrap();
        write("server.pem", cert.pem());
        write("server.key", key.serialize_pem());
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["rmq-registrar".to_string()]).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "rmq-registrar");
        let cert = p.signed_by(&key, &root).unwrap();
        write("client.pem", cert.pem());
        write("client.key", key.serialize_pem());
        write("stranger.key", KeyPair::generate().unwrap().serialize_pem());
        let key = KeyPair::generate().unwrap();
        let cert = server_params().self_signed(&key).unwrap();
        write("self.pem", cert.pem());
        write("self.key", key.serialize_pem());
        Pki { dir }
    }
}

/// A client that speaks TLS and checks nothing: the test's own eyes on a TLS NameServer.
fn probe() -> RemotingClient {
    let tls = TlsConfig {
        verify: false,
        ..TlsConfig::default()
    };
    let cfg = ClientConfig {
        tls: Some(ClientTls {
            config: rmq_registrar::tls::Built::build(&tls)
                .unwrap()
                .require()
                .unwrap(),
            server_name: None,
            default_on: true,
            exceptions: vec![],
        }),
        ..ClientConfig::default()
    };
    client_with(cfg)
}

/// The real NameServer serving TLS as `ini` says; killed on drop.
struct TlsNameServer {
    addr: String,
    child: Child,
    _home: tempfile::TempDir,
    /// Held while it runs; handed back by [`kill`](Self::kill) for a restart on the same port.
    port: Option<ClosedPort>,
}

impl Drop for TlsNameServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsNameServer {
    /// Enforcing TLS with the test CA's server certificate, no client authentication.
    async fn standard(pki: &Pki) -> TlsNameServer {
        Self::start(
            pki,
            "server.pem",
            "server.key",
            "tls.server.need.client.auth=none",
        )
        .await
    }

    async fn start(pki: &Pki, cert: &str, key: &str, extra: &str) -> TlsNameServer {
        Self::start_in(pki, "enforcing", cert, key, extra).await
    }

    async fn start_in(pki: &Pki, mode: &str, cert: &str, key: &str, extra: &str) -> TlsNameServer {
        Self::start_at(pki, ClosedPort::new(), mode, cert, key, extra).await
    }

    async fn start_at(
        pki: &Pki,
        port: ClosedPort,
        mode: &str,
        cert: &str,
        key: &str,
        extra: &str,
    ) -> TlsNameServer {
        let files = [mode, cert, key, extra];
        Self::launch(pki, "127.0.0.1", port, files).await
    }

    /// Bound to `ip` on `port`; `[mode, cert, key, extra]` as [`start_at`](Self::start_at).
    async fn launch(pki: &Pki, ip: &str, port: ClosedPort, files: [&str; 4]) -> TlsNameServer {
        let [mode, cert, key, extra] = files;
        let home = tempfile::tempdir().unwrap();
        let ini = home.path().join("namesrv.ini");
        std::fs::write(
            &ini,
            format!(
                "tls.enable=true\ntls.test.mode.enable=false\ntls.server.mode={mode}\n\
                 tls.server.certPath={}\ntls.server.keyPath={}\n{extra}\n",
                pki.path(cert).display(),
                pki.path(key).display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(home.path().join("namesrv.log")).unwrap();
        let child = Command::new(binary("rocketmq-namesrv-rust"))
            .arg("-c")
            .arg(&ini)
            .args(["--listenPort", &port.port().to_string()])
            .args(["--bindAddress", ip])
            .arg("--rocketmqHome")
            .arg(home.path())
            .arg("--kvConfigPath")
            .arg(home.path().join("kvConfig.json"))
            .env("HOME", home.path())
            .env("ROCKETMQ_HOME", home.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let ns = TlsNameServer {
            addr: format!("{ip}:{}", port.port()),
            child,
            _home: home,
            port: Some(port),
        };
        // Ready when a TCP connect succeeds (a TLS probe needs the client cert for mTLS).
        eventually_within(
            "TLS NameServer listening",
            Duration::from_secs(60),
            || async { tokio::net::TcpStream::connect(&ns.addr).await.is_ok() },
        )
        .await;
        ns
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self._home.path().join("namesrv.log")).unwrap_or_default()
    }

    /// Stops the process; its port, still held, for a NameServer started on it again.
    fn kill(mut self) -> ClosedPort {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port.take().expect("held until killed")
    }
}

fn binary(name: &str) -> PathBuf {
    peer_binary(name, "RMQ_NAMESRV_BIN")
}

fn tls_section(pki: &Pki, lines: &str) -> String {
    format!(
        "[tls]\nenable = true\nca_file = {:?}\n{lines}\n",
        pki.path("ca.pem")
    )
}

fn daemon(name: &str, ns: &str, extra: &str) -> Daemon {
    let extra = extra.to_string();
    let name = name.to_string();
    let ns = ns.to_string();
    Daemon::start(move |_, http| {
        let mut c = base_config(&name, http, &[&ns], "")
            .replace("[register]", "[register]\ninterval = \"10s\"");
        c.push_str(&extra);
        c
    })
}

async fn tls_failures(d: &Daemon, ns: &str) -> f64 {
    let text = d.get("/metrics").await.map(|(_, t)| t).unwrap_or_default();
    metric(
        &text,
        &format!("rmq_registrar_registrations_total{{namesrv=\"{ns}\",outcome=\"tls\"}}"),
    )
}

#[tokio::test]
async fn verified_tls_registers_and_sigterm_unregisters_over_tls() {
    let pki = Pki::new();
    let ns = TlsNameServer::standard(&pki).await;
    let mut d = daemon("tls-ok", &ns.addr, &tls_section(&pki, ""));
    let p = probe();
    eventually("registered over TLS", || has_broker(&p, &ns.addr, "tls-ok")).await;
    // The NameServer really speaks only TLS: a plain request gets nothing back.
    let plain = client();
    let r = plain
        .invoke_sync(
            Some(&ns.addr),
            RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO),
            Duration::from_secs(2),
        )
        .await;
    assert!(r.is_err(), "plain request answered: {r:?}\n{}", ns.logs());
    d.signal("TERM");
    let (status, took) = d.wait_exit(Duration::from_secs(4)).await;
    assert!(status.success(), "{}", d.logs());
    eprintln!("SIGTERM over TLS: exit after {took:?}");
    eventually_within("unregistered over TLS", Duration::from_secs(2), || async {
        !has_broker(&p, &ns.addr, "tls-ok").await
    })
    .await;
}

#[tokio::test]
async fn a_garbage_ca_or_key_at_sighup_keeps_tls() {
    let pki = Pki::new();
    let ns = TlsNameServer::standard(&pki).await;
    let tls = format!(
        "[tls]\nenable = true\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key")
    );
    let d = daemon("tls-hup", &ns.addr, &tls);
    let p = probe();
    eventually("registered over TLS", || {
        has_broker(&p, &ns.addr, "tls-hup")
    })
    .await;
    for (file, rejected) in [("ca.pem", 1), ("client.key", 2)] {
        let good = std::fs::read(pki.path(file)).unwrap();
        std::fs::write(pki.path(file), "-----BEGIN GARBAGE-----\n").unwrap();
        d.signal("HUP");
        eventually("the reload rejected", || async {
            d.logs().matches("new configuration rejected").count() == rejected
        })
        .await;
        std::fs::write(pki.path(file), good).unwrap();
    }
    // A new NameServer on the same port that speaks only TLS: the daemon's next connection
    // must be TLS with the certificates it had, or it never registers there.
    let port = ns.kill();
    let ns = TlsNameServer::start_at(
        &pki,
        port,
        "enforcing",
        "server.pem",
        "server.key",
        "tls.server.need.client.auth=none",
    )
    .await;
    eventually("registered again over TLS", || {
        has_broker(&p, &ns.addr, "tls-hup")
    })
    .await;
    assert!(!d.logs().contains("may require TLS"), "{}", d.logs());
}

#[tokio::test]
async fn a_wrong_ca_or_a_name_mismatch_is_refused_with_a_reason_and_retried() {
    let pki = Pki::new();
    let ns = TlsNameServer::standard(&pki).await;
    // A certificate problem does not fix itself in a second: retried every round (10 s here).
    let wrong_ca = format!(
        "[tls]\nenable = true\nca_file = {:?}\n",
        pki.path("other-ca.pem")
    );
    let wrong_name = tls_section(&pki, "server_name = \"other.test\"");
    let (a, b) = (
        daemon("tls-wrong-ca", &ns.addr, &wrong_ca),
        daemon("tls-wrong-name", &ns.addr, &wrong_name),
    );
    let p = probe();
    for (d, why) in [(&a, "unknown issuer"), (&b, "name mismatch")] {
        // Retried, each attempt a typed `tls` outcome.
        eventually_within("two refused attempts", Duration::from_secs(15), || async {
            tls_failures(d, &ns.addr).await >= 2.0
        })
        .await;
        assert!(d.logs().contains(why), "{why}:\n{}", d.logs());
        let (status, body) = d.get("/readyz").await.unwrap();
        assert_eq!(status, 503, "{body}");
    }
    assert!(!has_broker(&p, &ns.addr, "tls-wrong-ca").await);
    assert!(!has_broker(&p, &ns.addr, "tls-wrong-name").await);
    // The right name, given explicitly, works.
    let c = daemon(
        "tls-named",
        &ns.addr,
        &tls_section(&pki, "server_name = \"namesrv.test\""),
    );
    eventually("registered with server_name", || {
        has_broker(&p, &ns.addr, "tls-named")
    })
    .await;
    drop(c);
}

#[tokio::test]
async fn verify_false_accepts_a_self_signed_namesrv_with_a_warning() {
    let pki = Pki::new();
    let ns = TlsNameServer::start(
        &pki,
        "self.pem",
        "self.key",
        "tls.server.need.client.auth=none",
    )
    .await;
    let d = daemon(
        "tls-noverify",
        &ns.addr,
        "[tls]\nenable = true\nverify = false\n",
    );
    let p = probe();
    eventually("registered without verification", || {
        has_broker(&p, &ns.addr, "tls-noverify")
    })
    .await;
    assert!(d.logs().contains("tls.verify = false"), "{}", d.logs());
    // With verification on, the same server is refused.
    let strict = daemon("tls-strict", &ns.addr, &tls_section(&pki, ""));
    eventually("refused", || async {
        tls_failures(&strict, &ns.addr).await >= 1.0
    })
    .await;
    assert!(!has_broker(&p, &ns.addr, "tls-strict").await);
}

#[tokio::test]
async fn mutual_tls_required_by_the_namesrv_works_with_a_client_certificate_only() {
    let pki = Pki::new();
    let extra = format!(
        "tls.server.need.client.auth=require\ntls.server.authClient=true\ntls.server.trustCertPath={}",
        pki.path("ca.pem").display()
    );
    let ns = TlsNameServer::start(&pki, "server.pem", "server.key", &extra).await;
    let with_cert = tls_section(
        &pki,
        &format!(
            "cert_file = {:?}\nkey_file = {:?}",
            pki.path("client.pem"),
            pki.path("client.key")
        ),
    );
    let mtls_probe = {
        let tls = TlsConfig {
            verify: false,
            cert_file: Some(pki.path("client.pem")),
            key_file: Some(pki.path("client.key")),
            ..TlsConfig::default()
        };
        client_with(ClientConfig {
            tls: Some(ClientTls {
                config: rmq_registrar::tls::Built::build(&tls)
                    .unwrap()
                    .require()
                    .unwrap(),
                server_name: None,
                default_on: true,
                exceptions: vec![],
            }),
            ..ClientConfig::default()
        })
    };
    let good = daemon("mtls-ok", &ns.addr, &with_cert);
    eventually("registered with a client certificate", || {
        has_broker(&mtls_probe, &ns.addr, "mtls-ok")
    })
    .await;
    let bad = daemon("mtls-none", &ns.addr, &tls_section(&pki, ""));
    eventually("refused without one", || async {
        let text = bad
            .get("/metrics")
            .await
            .map(|(_, t)| t)
            .unwrap_or_default();
        text.lines().any(|l| {
            l.starts_with("rmq_registrar_registrations_total{")
                && l.contains(&ns.addr)
                && !l.contains("outcome=\"ok\"")
                && !l.ends_with(" 0")
        })
    })
    .await;
    assert!(!has_broker(&mtls_probe, &ns.addr, "mtls-none").await);
    drop(good);
}

#[tokio::test]
async fn a_plain_client_against_an_enforcing_namesrv_is_told_why() {
    let pki = Pki::new();
    let ns = TlsNameServer::standard(&pki).await;
    let d = daemon("tls-plain", &ns.addr, "");
    eventually("a failed attempt logged", || async {
        d.logs()
            .contains("registration with this NameServer failed")
    })
    .await;
    let logs = d.logs();
    assert!(logs.contains("may require TLS (tls.enable)"), "{logs}");
    assert!(!has_broker(&probe(), &ns.addr, "tls-plain").await);
}

#[test]
fn bad_tls_files_fail_at_start_naming_the_key() {
    let pki = Pki::new();
    let base = "[broker]\nname = \"b\"\naddr = \"127.0.0.1:10911\"\n[namesrv]\naddrs = [\"127.0.0.1:9876\"]\n";
    let cases = [
        (
            "[tls]\nenable = true\nca_file = \"/nonexistent/ca.pem\"\n".to_string(),
            "tls.ca_file",
        ),
        (
            format!(
                "[tls]\nenable = true\nca_file = {:?}\n",
                pki.path("server.key")
            ),
            "tls.ca_file",
        ),
        (
            format!(
                "[tls]\nenable = true\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
                pki.path("ca.pem"),
                pki.path("client.pem"),
                pki.path("stranger.key")
            ),
            "tls.key_file",
        ),
        (
            format!(
                "[tls]\nenable = true\ncert_file = {:?}\n",
                pki.path("client.pem")
            ),
            "tls.key_file",
        ),
    ];
    for (extra, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rmq.toml");
        std::fs::write(&path, format!("{base}{extra}")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_rmq-registrar"))
            .arg("--config")
            .arg(&path)
            .arg("check-config")
            .env_remove("NAMESRV_ADDR")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains(key), "{extra}: {err}");
    }
}

/// An https address server on 127.0.0.1 answering `list` with the test CA's server certificate.
async fn https_address_server(pki: &Pki, list: String) -> (String, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(pki.path("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (acceptor, list) = (acceptor.clone(), list.clone());
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{list}",
                    list.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn an_https_address_server_is_trusted_through_tls_ca_file() {
    let pki = Pki::new();
    let ns = NameServer::start().await;
    let (addr, _server) = https_address_server(&pki, ns.addr.clone()).await;
    let d = Daemon::start(|_, http| {
        let mut c = base_config("https-addr", http, &[], "").replace(
            "addrs = []",
            &format!(
                "address_server = \"https://{addr}/rocketmq/nsaddr\"\nrefresh_interval = \"1s\""
            ),
        );
        c.push_str(&format!("[tls]\nca_file = {:?}\n", pki.path("ca.pem")));
        c
    });
    let plain = client();
    eventually(
        "registered with the NameServer the https server named",
        || has_broker(&plain, &ns.addr, "https-addr"),
    )
    .await;
    // Without the CA the lookup fails (typed, counted) and nothing is registered.
    let ns2 = NameServer::start().await;
    let (addr2, _server2) = https_address_server(&pki, ns2.addr.clone()).await;
    let untrusting = Daemon::start(|_, http| {
        base_config("https-untrusted", http, &[], "").replace(
            "addrs = []",
            &format!(
                "address_server = \"https://{addr2}/rocketmq/nsaddr\"\nrefresh_interval = \"1s\""
            ),
        )
    });
    eventually("lookup failures counted", || async {
        untrusting.get("/metrics").await.is_some_and(|(_, t)| {
            metric(
                &t,
                "rmq_registrar_address_refreshes_total{outcome=\"error\"}",
            ) >= 1.0
        })
    })
    .await;
    assert!(!has_broker(&plain, &ns2.addr, "https-untrusted").await);
    drop(d);
}

#[tokio::test]
async fn a_permissive_namesrv_takes_both_plain_and_tls_registrations() {
    let pki = Pki::new();
    let ns = TlsNameServer::start_in(
        &pki,
        "permissive",
        "server.pem",
        "server.key",
        "tls.server.need.client.auth=none",
    )
    .await;
    let addr = ns.addr.clone();
    let plain = daemon("perm-plain", &addr, "");
    let secure = daemon("perm-tls", &addr, &tls_section(&pki, ""));
    let p = client();
    eventually("plain registration", || has_broker(&p, &addr, "perm-plain")).await;
    eventually("TLS registration", || has_broker(&p, &addr, "perm-tls")).await;
    drop((plain, secure));
}

#[tokio::test]
async fn tls_against_plain_namesrvs_warns_once_then_one_reminder_per_round() {
    let pki = Pki::new();
    let (a, b) = (NameServer::start().await, NameServer::start().await);
    let tls = tls_section(&pki, "");
    let d = Daemon::start(|_, http| {
        base_config("tls-vs-plain", http, &[&a.addr, &b.addr], "")
            .replace("[register]", "[register]\ninterval = \"10s\"")
            + &tls
    });
    for ns in [&a.addr, &b.addr] {
        eventually_within("two refused rounds", Duration::from_secs(25), || async {
            tls_failures(&d, ns).await >= 2.0
        })
        .await;
    }
    let logs = d.logs();
    for ns in [&a.addr, &b.addr] {
        let warns: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(ns.as_str()))
            .collect();
        let first = warns
            .iter()
            .filter(|l| l.contains("registration with this NameServer failed"))
            .count();
        let reminders = warns
            .iter()
            .filter(|l| l.contains("NameServer still failing"))
            .count();
        // Each handshake also logged a WARN of its own, every round.
        assert_eq!(first, 1, "{ns}:\n{logs}");
        assert_eq!(
            warns.len(),
            first + reminders,
            "{ns}: WARNs outside the once-then-reminder rule:\n{logs}"
        );
        assert!(
            warns[0].contains("does not speak TLS"),
            "the one WARN says why: {}",
            warns[0]
        );
        let rounds = tls_failures(&d, ns).await;
        assert!(reminders as f64 <= rounds - 1.0, "{ns}:\n{logs}");
    }
}

/// A NameServer found by looking a name up is dialled by address and its certificate checked
/// against the name: the test CA's certificate names "namesrv.test" and 127.0.0.1, the
/// NameServer listens on 127.0.0.2, and the name points there.
#[tokio::test]
async fn a_looked_up_address_is_checked_against_the_name_it_came_from() {
    let pki = Pki::new();
    let files = [
        "enforcing",
        "server.pem",
        "server.key",
        "tls.server.need.client.auth=none",
    ];
    let ns = TlsNameServer::launch(&pki, "127.0.0.2", ClosedPort::new(), files).await;
    let port = ns.addr.rsplit_once(':').unwrap().1.to_string();
    let dns = crate::support::dns::DnsServer::start().await;
    dns.set("namesrv.test", &["127.0.0.2"]);
    dns.set("other.test", &["127.0.0.2"]);
    let start = |name: &str, entry: String| {
        let name = name.to_string();
        let tls = tls_section(&pki, "");
        Daemon::start_resolving(dns.files(), move |_, http| {
            let mut c = base_config(&name, http, &[&entry], "")
                .replace("[register]", "[register]\ninterval = \"10s\"");
            c.push_str(&tls);
            c
        })
    };
    let by_name = start("tls-by-name", format!("namesrv.test:{port}"));
    let wrong_name = start("tls-other-name", format!("other.test:{port}"));
    let by_address = start("tls-by-address", ns.addr.clone());
    let p = probe();
    eventually_within(
        "registered through the name",
        Duration::from_secs(20),
        || has_broker(&p, &ns.addr, "tls-by-name"),
    )
    .await;
    // The same address under a name the certificate does not give, or as written (an IP the
    // certificate does not give): refused, each attempt a typed `tls` outcome.
    for d in [&wrong_name, &by_address] {
        eventually_within("a refused attempt", Duration::from_secs(20), || async {
            tls_failures(d, &ns.addr).await >= 1.0
        })
        .await;
        assert!(d.logs().contains("name mismatch"), "{}", d.logs());
    }
    assert!(!has_broker(&p, &ns.addr, "tls-other-name").await);
    assert!(!has_broker(&p, &ns.addr, "tls-by-address").await);
    drop((by_name, wrong_name, by_address));
}
