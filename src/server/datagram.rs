//! UDP (`--udp`, `--udp-only`): one socket per address the TCP listeners
//! use, on the same port; the bounded queue of replies the kernel would not
//! take yet; and the guard that keeps echo from bouncing between services.
//!
//! A UDP socket is one more source on the poller, with keys between the TCP
//! listeners' and the connections'. The seed's handlers serve it:
//! `readable::receive_datagrams`, `writable::flush_datagrams` and
//! `exceptional::datagram_failed`. Its interest follows its state like a
//! connection's (invariant 2): readable while serving, writable while
//! replies are queued. Memory stays bounded (invariant 3): one 64 KiB
//! receive buffer for all UDP sockets and at most `--udp-queue` bytes of
//! queued replies per socket; beyond that replies are dropped and counted —
//! UDP promises no delivery, and the loop never blocks.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use polling::{Event, PollMode, Poller};
use socket2::{Domain, Protocol, Socket, Type};

use super::faults::DatagramShaper;
use super::listener::{self, Bound};
use super::timers::Timer;
use super::{exceptional, readable, writable, Config, Server};
use crate::registration::{Interest, Registered};

/// Receive buffer size: the largest UDP payload (65,507 bytes over IPv4,
/// 65,527 over IPv6) fits, so a datagram that fills it whole can only be
/// an IPv6 jumbogram cut short, and is counted as truncated.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// What a queued reply costs beyond its payload, so that even empty
/// datagrams fill the queue and it cannot grow without bound.
pub const ENTRY_OVERHEAD: usize = 64;

/// Source ports of UDP services that answer whatever reaches them. Echoing
/// to one would start a loop (echo <-> echo, echo <-> chargen) or reflect
/// traffic at a victim; the ones above 1024 stay refused even with
/// `--udp-allow-low-ports`.
pub const REFLECTING_PORTS: &[u16] = &[
    7,     // echo
    13,    // daytime
    17,    // quote of the day
    19,    // chargen
    37,    // time
    53,    // DNS
    69,    // TFTP
    111,   // portmapper
    123,   // NTP
    137,   // NetBIOS name service
    161,   // SNMP
    389,   // CLDAP
    520,   // RIP
    1900,  // SSDP
    3702,  // WS-Discovery
    5353,  // mDNS
    5683,  // CoAP
    11211, // memcached
];

/// The UDP counters (part of the server's `Stats`).
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Datagrams received whole.
    pub received: u64,
    /// Replies sent.
    pub sent: u64,
    /// Dropped by the loop guard (source port 0, a reflecting service, a
    /// low port, our own port).
    pub guarded: u64,
    /// Received cut short (larger than the receive buffer): not echoed.
    pub truncated: u64,
    /// Replies dropped because the queue was full.
    pub overflowed: u64,
    /// Replies the kernel refused (unreachable, no buffer), or still queued
    /// at shutdown.
    pub failed: u64,
    /// Injected faults (`--drop`, `--duplicate`): replies not sent on
    /// purpose, and extra copies sent.
    pub fault_dropped: u64,
    pub fault_duplicated: u64,
}

impl Counters {
    /// Everything received or owed that did not lead to a reply.
    pub fn dropped(&self) -> u64 {
        self.guarded + self.truncated + self.overflowed + self.failed + self.fault_dropped
    }
}

/// Why a datagram was not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    PortZero,
    Reflector(u16),
    LowPort(u16),
    OurPort(u16),
}

/// Whether a datagram from `from` may be answered by the socket bound to
/// `local`. Two echo services must never be able to bounce one packet
/// between them forever, and a spoofed source must not turn us into an
/// amplifier for a well-known service's port. What no port check can catch
/// is a second echo server on an arbitrary high port (README, "Loop
/// guard"): its echo of our echo looks like a client repeating itself.
pub fn check_source(from: SocketAddr, local: SocketAddr, allow_low: bool) -> Result<(), Refused> {
    let port = from.port();
    if port == 0 {
        Err(Refused::PortZero)
    } else if REFLECTING_PORTS.contains(&port) {
        Err(Refused::Reflector(port))
    } else if port < 1024 && !allow_low {
        Err(Refused::LowPort(port))
    } else if port == local.port() {
        // Ourselves (a spoofed source), or another echo server on our port
        // number elsewhere, e.g. a second pollmux with the same settings.
        Err(Refused::OurPort(port))
    } else {
        Ok(())
    }
}

/// UDP replies waiting for the socket to take them, oldest first, at most
/// `cap` bytes (payload plus a fixed overhead per entry).
pub struct ReplyQueue {
    items: VecDeque<(SocketAddr, Box<[u8]>)>,
    bytes: usize,
    cap: usize,
}

impl ReplyQueue {
    pub fn new(cap: usize) -> ReplyQueue {
        ReplyQueue {
            items: VecDeque::new(),
            bytes: 0,
            cap,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Bytes queued, book-keeping included.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queue a reply; `false` (and nothing queued) when it does not fit
    /// beside the `held` bytes of delayed replies, which share the cap.
    pub fn push(&mut self, to: SocketAddr, data: &[u8], held: usize) -> bool {
        let cost = data.len() + ENTRY_OVERHEAD;
        if self.bytes + held + cost > self.cap {
            return false;
        }
        self.bytes += cost;
        self.items.push_back((to, data.into()));
        true
    }

    pub fn front(&self) -> Option<(SocketAddr, &[u8])> {
        self.items.front().map(|(to, data)| (*to, &data[..]))
    }

    pub fn pop(&mut self) {
        if let Some((_, data)) = self.items.pop_front() {
            self.bytes -= data.len() + ENTRY_OVERHEAD;
        }
        if self.items.is_empty() {
            // Give a burst's memory back rather than keep its high-water mark.
            self.items = VecDeque::new();
        }
    }
}

/// One bound UDP socket.
pub struct Endpoint {
    /// The socket as registered with the poller.
    pub source: Registered,
    /// The same socket through a second descriptor, as std's `UdpSocket`:
    /// its `recv_from` fills a plain `&mut [u8]`, where socket2's wants
    /// uninitialised memory (and `unsafe` to read it back).
    pub io: UdpSocket,
    pub addr: SocketAddr,
    pub queue: ReplyQueue,
    /// What the poller is watching for now (none after a oneshot event).
    pub armed: Interest,
    /// `--delay`, `--drop`, `--duplicate`, when asked for.
    pub shaper: Option<Box<DatagramShaper>>,
}

impl Endpoint {
    /// Read while serving; write while replies wait.
    pub fn interest(&self) -> Interest {
        Interest {
            read: true,
            write: !self.queue.is_empty(),
        }
    }
}

/// Every UDP socket of the server, the keys they use and their settings.
pub struct Datagrams {
    pub endpoints: Vec<Endpoint>,
    /// Key of the first endpoint; the rest follow.
    pub base: usize,
    /// The one receive buffer, allocated only when UDP is served.
    pub buf: Vec<u8>,
    pub allow_low_ports: bool,
}

impl Datagrams {
    /// Register `sockets` with keys from `base` on.
    pub fn new(
        poller: &Arc<Poller>,
        sockets: Vec<Bound>,
        base: usize,
        mode: PollMode,
        config: &Config,
    ) -> io::Result<Datagrams> {
        let mut endpoints = Vec::with_capacity(sockets.len());
        for (i, bound) in sockets.into_iter().enumerate() {
            let io = UdpSocket::from(bound.socket.try_clone()?);
            let armed = Interest {
                read: true,
                write: false,
            };
            let source = Registered::new(poller, bound.socket, armed.event(base + i), mode)?;
            endpoints.push(Endpoint {
                source,
                io,
                addr: bound.addr,
                queue: ReplyQueue::new(config.udp_queue),
                armed,
                shaper: DatagramShaper::for_socket(&config.faults, i, config.udp_queue),
            });
        }
        let buf = if endpoints.is_empty() {
            Vec::new()
        } else {
            vec![0; MAX_DATAGRAM]
        };
        Ok(Datagrams {
            endpoints,
            base,
            buf,
            allow_low_ports: config.udp_allow_low_ports,
        })
    }

    /// The endpoint index a poller key names, if it is a UDP key.
    pub fn index(&self, key: usize) -> Option<usize> {
        key.checked_sub(self.base)
            .filter(|&i| i < self.endpoints.len())
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.endpoints.iter().map(|e| e.addr).collect()
    }

    /// Bytes of replies queued or held back by `--delay` on every socket.
    pub fn queued(&self) -> usize {
        let held = |e: &Endpoint| e.shaper.as_ref().map_or(0, |s| s.held_bytes());
        self.endpoints.iter().map(|e| e.queue.bytes + held(e)).sum()
    }

    /// Stop serving UDP (at shutdown): what is still queued is given one
    /// last try, the rest counted as failed; dropping an endpoint deletes
    /// it from the poller and closes it.
    pub fn close(&mut self, counters: &mut Counters) {
        for endpoint in &mut self.endpoints {
            release(endpoint, None, counters);
            writable::flush_datagrams(endpoint, counters);
            counters.failed += endpoint.queue.len() as u64;
        }
        self.endpoints.clear();
    }
}

/// One readiness event on UDP socket `index`: send what waits, receive and
/// answer, re-arm. An error is the socket's, not one client's: it is logged
/// and the socket keeps serving.
pub fn dispatch(server: &mut Server, index: usize, event: &Event, now: Instant) {
    let Server {
        udp,
        stats,
        config,
        mode,
        ..
    } = server;
    let Some(endpoint) = udp.endpoints.get_mut(index) else {
        return; // closed at shutdown earlier in this batch
    };
    if *mode == PollMode::Oneshot {
        endpoint.armed = Interest::NONE;
    }
    if event.writable {
        writable::flush_datagrams(endpoint, &mut stats.udp);
    }
    if event.readable {
        let guard = udp.allow_low_ports;
        if let Err(err) = readable::receive_datagrams(
            endpoint,
            &mut udp.buf,
            config.service,
            guard,
            &mut stats.udp,
            now,
        ) {
            exceptional::datagram_failed(endpoint, &err);
        }
    }
    settle(server, index);
}

/// Delayed replies of socket `index` are due: send them, then re-arm.
pub fn release_due(server: &mut Server, index: usize, now: Instant) {
    let Some(endpoint) = server.udp.endpoints.get_mut(index) else {
        return;
    };
    if let Some(shaper) = endpoint.shaper.as_deref_mut() {
        shaper.wake = None;
    }
    release(endpoint, Some(now), &mut server.stats.udp);
    settle(server, index);
}

/// Send the held replies that are due at `now` (all with `None`).
fn release(endpoint: &mut Endpoint, now: Option<Instant>, counters: &mut Counters) {
    let Some(mut shaper) = endpoint.shaper.take() else {
        return;
    };
    while let Some((to, data)) = shaper.due(now) {
        writable::send_datagram(endpoint, to, &data, counters);
    }
    endpoint.shaper = Some(shaper);
}

/// Re-arm socket `index` with the interest its state implies, and file the
/// moment its next delayed reply is due.
fn settle(server: &mut Server, index: usize) {
    let key = server.udp.base + index;
    let Some(endpoint) = server.udp.endpoints.get_mut(index) else {
        return;
    };
    if let Some(shaper) = endpoint.shaper.as_deref_mut() {
        let next = shaper.next_wake();
        let id = index as u64;
        server
            .deadlines
            .refile(&mut shaper.wake, next, id, Timer::Datagram, index);
    }
    let wanted = endpoint.interest();
    if wanted != endpoint.armed {
        match endpoint.source.rearm(wanted.event(key)) {
            Ok(()) => endpoint.armed = wanted,
            Err(err) => exceptional::datagram_failed(endpoint, &err),
        }
    }
}

/// Bind the TCP listeners (unless `--udp-only`) and, with UDP on, one UDP
/// socket beside each on the same address and port. With `--port 0` the
/// kernel picks the TCP port; if that port is taken for UDP, pick again.
pub fn bind_all(config: &Config, udp: bool) -> io::Result<(Vec<Bound>, Vec<Bound>)> {
    if config.udp_only {
        let addrs = listener::resolve(&config.host, config.port)?;
        return Ok((Vec::new(), bind_each(&addrs, config.ipv6_only)?));
    }
    let attempts = if config.port == 0 && udp { 5 } else { 1 };
    let mut last_err = None;
    for _ in 0..attempts {
        let tcp = listener::bind_all(&config.host, config.port, config.backlog, config.ipv6_only)?;
        if !udp {
            return Ok((tcp, Vec::new()));
        }
        let addrs: Vec<SocketAddr> = tcp.iter().map(|b| b.addr).collect();
        match bind_each(&addrs, config.ipv6_only) {
            Ok(sockets) => return Ok((tcp, sockets)),
            Err(err) => last_err = Some(err),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no address for UDP")))
}

/// One UDP socket per address; with port 0 the first one's port is reused.
fn bind_each(addrs: &[SocketAddr], ipv6_only: bool) -> io::Result<Vec<Bound>> {
    let mut bound: Vec<Bound> = Vec::new();
    for &wanted in addrs {
        let mut addr = wanted;
        if let (0, Some(first)) = (addr.port(), bound.first()) {
            addr.set_port(first.addr.port());
        }
        let b = bind(addr, ipv6_only).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot bind udp {addr}: {}", listener::describe(&err)),
            )
        })?;
        bound.push(b);
    }
    Ok(bound)
}

fn bind(addr: SocketAddr, ipv6_only: bool) -> io::Result<Bound> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let SocketAddr::V6(v6) = addr {
        if v6.ip().is_unspecified() {
            // As for TCP: `::` serves IPv4 too unless asked otherwise.
            if let Err(err) = socket.set_only_v6(ipv6_only) {
                if ipv6_only {
                    return Err(err);
                }
                log::warn!("dual-stack UDP is not available here ({err}): {addr} is IPv6 only");
            }
        }
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    // A burst that arrives while the loop is busy waits in this buffer;
    // what does not fit is dropped by the kernel. Ask for room for a few
    // thousand datagrams (the kernel caps it, on Linux at net.core.rmem_max).
    if let Err(err) = socket.set_recv_buffer_size(4 << 20) {
        log::debug!("udp {addr}: cannot enlarge the receive buffer: {err}");
    }
    let addr = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("UDP socket has no IP address"))?;
    Ok(Bound { socket, addr })
}

/// An IPv4 peer seen through a dual-stack socket, as plain IPv4 (for logs).
pub fn plain(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_guard_refuses_loops_and_reflectors() {
        let local = at(8888);
        assert_eq!(check_source(at(0), local, true), Err(Refused::PortZero));
        assert_eq!(check_source(at(7), local, true), Err(Refused::Reflector(7)));
        assert_eq!(
            check_source(at(19), local, false),
            Err(Refused::Reflector(19))
        );
        assert_eq!(
            check_source(at(11211), local, true),
            Err(Refused::Reflector(11211))
        );
        assert_eq!(
            check_source(at(1000), local, false),
            Err(Refused::LowPort(1000))
        );
        assert_eq!(check_source(at(1000), local, true), Ok(()));
        assert_eq!(
            check_source(at(8888), local, true),
            Err(Refused::OurPort(8888))
        );
        assert_eq!(check_source(at(40000), local, false), Ok(()));
    }

    #[test]
    fn the_reply_queue_is_bounded_even_for_empty_datagrams() {
        let mut q = ReplyQueue::new(3 * ENTRY_OVERHEAD + 10);
        assert!(q.push(at(1), b"0123456789", 0));
        assert!(q.push(at(2), b"", 0));
        assert!(q.push(at(3), b"", 0));
        assert!(!q.push(at(4), b"", 0), "full: dropped, not queued");
        assert_eq!(q.len(), 3);
        assert_eq!(q.front(), Some((at(1), &b"0123456789"[..])));
        q.pop();
        assert!(q.push(at(4), b"", 0), "room again after a send");
        for _ in 0..3 {
            q.pop();
        }
        assert!(q.is_empty());
        assert_eq!(q.bytes, 0);
        assert!(!ReplyQueue::new(0).push(at(1), b"x", 0), "0 means no queue");
        // Delayed replies held elsewhere share the cap.
        let mut q = ReplyQueue::new(2 * ENTRY_OVERHEAD);
        assert!(
            !q.push(at(1), b"", ENTRY_OVERHEAD + 1),
            "no room beside them"
        );
        assert!(q.push(at(1), b"", ENTRY_OVERHEAD));
    }

    #[test]
    fn mapped_ipv4_peers_read_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(plain(mapped), at(5000));
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(plain(v6), v6);
    }
}
