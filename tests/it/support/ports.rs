//! Ports the tests own: a socket bound to the port that never listens holds it for as long as
//! the test keeps the guard.
//!
//! Connecting to such a port is refused (nothing listens), and the kernel gives the port to no
//! one else: not to a `bind` on port 0, not as the local port of an outgoing connection, and not
//! to another [`ClosedPort`] (bound before `SO_REUSEADDR` is set, so any other socket already
//! bound there fails it). A peer the test starts on the port itself binds and listens beside the
//! guard, as long as it sets `SO_REUSEADDR` on its listener: tokio, mio, Go's `net` and the Rust
//! NameServer and broker all do. So a test can stop a peer and start it again on the same
//! address without a window in which the port is free.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpSocket;

/// A port held by a bound, never listening socket; see the module documentation.
pub struct ClosedPort {
    addr: String,
    port: u16,
    _socket: TcpSocket,
}

impl ClosedPort {
    /// A port the kernel picks (on all interfaces, so that no other address takes it either).
    pub fn new() -> ClosedPort {
        Self::at(0).expect("bind a socket to port 0")
    }

    /// `port` itself, or the error when someone else has it.
    pub fn at(port: u16) -> std::io::Result<ClosedPort> {
        let socket = TcpSocket::new_v4()?;
        // Bound first without SO_REUSEADDR, so that the bind fails when any socket (another
        // test's guard too) has the port; set afterwards, so that the peer can listen beside it.
        socket.bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
        socket.set_reuseaddr(true)?;
        let port = socket.local_addr()?.port();
        Ok(ClosedPort {
            addr: format!("127.0.0.1:{port}"),
            port,
            _socket: socket,
        })
    }

    /// `127.0.0.1:port`, refusing connections until the test starts a peer on it.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A kernel-picked port and the ports at `offsets` from it, all held: for peers that listen
/// on ports at fixed distances from each other (a broker's main port, port − 2 and its HA port).
/// Tries new ports until one has all its neighbours free.
pub fn closed_port_with<const N: usize>(offsets: [i32; N]) -> (ClosedPort, [ClosedPort; N]) {
    for _ in 0..200 {
        let base = ClosedPort::new();
        let neighbours: Option<Vec<ClosedPort>> = offsets
            .iter()
            .map(|&o| {
                let port = u16::try_from(i32::from(base.port()) + o).ok()?;
                ClosedPort::at(port).ok()
            })
            .collect();
        if let Some(Ok(neighbours)) = neighbours.map(<[ClosedPort; N]>::try_from) {
            return (base, neighbours);
        }
    }
    panic!("no port whose neighbours at {offsets:?} are free");
}

#[tokio::test]
async fn a_closed_port_refuses_is_given_to_no_one_else_and_lets_a_peer_listen_beside_it() {
    let held = ClosedPort::new();
    let refused = tokio::net::TcpStream::connect(held.addr()).await;
    assert_eq!(
        refused.map(drop).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(ClosedPort::at(held.port()).is_err(), "held twice");
    // tokio's listener sets SO_REUSEADDR, as the real peers' do.
    let peer = tokio::net::TcpListener::bind(held.addr()).await.unwrap();
    tokio::net::TcpStream::connect(held.addr()).await.unwrap();
    drop(peer);
    assert!(tokio::net::TcpStream::connect(held.addr()).await.is_err());
    let (base, [below]) = closed_port_with([-2]);
    assert_eq!(below.port() + 2, base.port());
}
