//! Resolve `--host` and build one nonblocking listener per address.
//!
//! `localhost` usually resolves to 127.0.0.1 and ::1, so a default server is
//! reachable over both families. `--port 0` lets the kernel pick for the first
//! address and reuses that port for the rest, so every listener shares one
//! port. An IPv6 wildcard clears IPV6_V6ONLY explicitly (Windows sets it by
//! default) unless `--ipv6-only` asks otherwise.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

use crate::sys;

/// A bound, listening, nonblocking socket and its real address.
pub struct Bound {
    pub socket: Socket,
    pub addr: SocketAddr,
}

/// Resolve `host` and listen on every address it names.
pub fn bind_all(host: &str, port: u16, backlog: i32, ipv6_only: bool) -> io::Result<Vec<Bound>> {
    let addrs = resolve(host, port)?;
    if ipv6_only && !addrs.iter().any(|a| a.is_ipv6() && a.ip().is_unspecified()) {
        log::warn!("--ipv6-only only matters for an IPv6 wildcard host such as '::'; ignored");
    }
    // With port 0 a later address may find the first one's port taken in
    // its family; pick again a few times before giving up.
    let attempts = if port == 0 && addrs.len() > 1 { 5 } else { 1 };
    let mut last_err = None;
    for _ in 0..attempts {
        match bind_each(&addrs, backlog, ipv6_only) {
            Ok(bound) => return Ok(bound),
            Err(err) => last_err = Some(err),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no address to listen on")))
}

pub(super) fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    // `localhost` always means both loopbacks, whatever the resolver says:
    // many hosts files list only 127.0.0.1 (or only ::1), and a client that
    // resolves the other family would be refused (RFC 6761 reserves the name
    // for loopback anyway).
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ]);
    }
    let resolved = (crate::cli::unbracket(host), port)
        .to_socket_addrs()
        .map_err(|err| {
            io::Error::new(err.kind(), format!("cannot resolve host '{host}': {err}"))
        })?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in resolved {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("host '{host}' resolves to no address"),
        ));
    }
    Ok(addrs)
}

fn bind_each(addrs: &[SocketAddr], backlog: i32, ipv6_only: bool) -> io::Result<Vec<Bound>> {
    let mut bound: Vec<Bound> = Vec::new();
    let mut skipped = Vec::new();
    for &wanted in addrs {
        let mut addr = wanted;
        if addr.port() == 0 {
            if let Some(first) = bound.first() {
                addr.set_port(first.addr.port());
            }
        }
        match listen(addr, backlog, ipv6_only) {
            Ok(b) => bound.push(b),
            // `localhost` includes ::1 even on a host with IPv6 switched
            // off: serve the addresses that work, and say so.
            Err(err) if sys::is_family_unavailable(&err) && addrs.len() > 1 => {
                skipped.push((addr, err));
            }
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("cannot listen on {addr}: {}", describe(&err)),
                ))
            }
        }
    }
    if bound.is_empty() {
        let (addr, err) = skipped.remove(0);
        return Err(io::Error::new(
            err.kind(),
            format!("cannot listen on {addr}: {}", describe(&err)),
        ));
    }
    for (addr, err) in skipped {
        log::warn!("not listening on {addr}: {}", describe(&err));
    }
    Ok(bound)
}

fn listen(addr: SocketAddr, backlog: i32, ipv6_only: bool) -> io::Result<Bound> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sys::allow_quick_rebind(&socket)?;
    if let SocketAddr::V6(v6) = addr {
        if v6.ip().is_unspecified() {
            let want_v6_only = ipv6_only;
            if let Err(err) = socket.set_only_v6(want_v6_only) {
                if want_v6_only {
                    return Err(err);
                }
                // Some systems (OpenBSD) never allow dual-stack sockets.
                log::warn!(
                    "dual-stack is not available here ({err}): {addr} serves IPv6 clients only"
                );
            }
        }
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    let addr = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no IP address"))?;
    Ok(Bound { socket, addr })
}

/// The OS message plus a hint for the two mistakes people make most.
pub(super) fn describe(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::AddrInUse => format!("{err} (port in use: is another server on it?)"),
        io::ErrorKind::PermissionDenied => {
            format!("{err} (ports below 1024 need privileges; try --port 8888)")
        }
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_on_localhost_shares_one_port() {
        let bound = bind_all("localhost", 0, 16, false).expect("bind localhost:0");
        assert!(!bound.is_empty());
        let port = bound[0].addr.port();
        assert_ne!(port, 0);
        assert!(bound.iter().all(|b| b.addr.port() == port));
    }

    #[test]
    fn an_unresolvable_host_names_the_host() {
        let err = bind_all("no-such-host.invalid", 0, 16, false)
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    }

    #[test]
    fn a_port_in_use_names_the_address() {
        let first = bind_all("127.0.0.1", 0, 16, false).expect("bind");
        let port = first[0].addr.port();
        let err = bind_all("127.0.0.1", port, 16, false)
            .err()
            .expect("must fail");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
