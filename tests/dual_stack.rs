//! Address families: `--host ::` also serves IPv4 clients (dual-stack, with
//! IPV6_V6ONLY cleared explicitly, since Windows sets it by default);
//! `--ipv6-only` opts out; `::1`, `[::1]` and `localhost` bind what they name.
//!
//! On a machine without IPv6 (no ::1 to bind) each test prints why it is
//! skipped and returns.

mod util;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use util::{assert_echo, connect, Server};

/// Whether this machine can listen on IPv6 loopback; prints the reason when not.
fn ipv6_works(test: &str) -> bool {
    match TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIPPED {test}: this machine cannot listen on [::1] ({e})");
            false
        }
    }
}

fn v4(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::LOCALHOST, port))
}

#[test]
fn ipv6_wildcard_also_serves_ipv4() {
    if !ipv6_works("ipv6_wildcard_also_serves_ipv4") {
        return;
    }
    let server = Server::start(&["--host", "::"]);
    assert_eq!(server.addrs.len(), 1, "one dual-stack listener");
    let addr = server.addr();
    assert!(
        addr.ip().is_unspecified() && addr.is_ipv6(),
        "listening on {addr}"
    );
    assert_echo(&mut connect(v4(addr.port())), b"over IPv4 to [::]");
    assert_echo(&mut connect(v6(addr.port())), b"over IPv6 to [::]");
}

#[test]
fn ipv6_only_is_not_reachable_over_ipv4() {
    if !ipv6_works("ipv6_only_is_not_reachable_over_ipv4") {
        return;
    }
    let server = Server::start(&["--host", "::", "--ipv6-only"]);
    let port = server.addr().port();
    assert_echo(&mut connect(v6(port)), b"over IPv6");
    match TcpStream::connect_timeout(&v4(port), Duration::from_secs(5)) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
        other => panic!("127.0.0.1:{port} should be refused with --ipv6-only, got {other:?}"),
    }
}

#[test]
fn ipv6_loopback_literals_with_and_without_brackets() {
    if !ipv6_works("ipv6_loopback_literals_with_and_without_brackets") {
        return;
    }
    for host in ["::1", "[::1]"] {
        let server = Server::start(&["--host", host]);
        let addr = server.addr();
        assert_eq!(addr.ip(), Ipv6Addr::LOCALHOST, "--host {host}");
        assert_echo(&mut connect(addr), format!("--host {host}").as_bytes());
    }
}

/// `localhost` (the default host) means both loopbacks whatever the hosts
/// file says, on one port, so a client resolving either family gets in.
#[test]
fn localhost_serves_both_loopbacks_on_one_port() {
    if !ipv6_works("localhost_serves_both_loopbacks_on_one_port") {
        return;
    }
    let mut cmd = util::pollmux();
    cmd.args(["serve", "--port", "0", "--host", "localhost"]);
    // Wait for both `listening on` lines.
    let server = Server::spawn(cmd, 2);
    let port = server.addr().port();
    let mut addrs = server.addrs.clone();
    addrs.sort();
    assert_eq!(addrs, [v4(port), v6(port)], "both loopbacks, one port");
    assert_echo(&mut connect(v4(port)), b"localhost over IPv4");
    assert_echo(&mut connect(v6(port)), b"localhost over IPv6");
}
