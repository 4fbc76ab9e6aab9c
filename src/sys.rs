//! Every platform difference the server cares about, each behind a small `cfg`.
//!
//! Keeping them here means the handlers read the same on every OS: they ask
//! "is this error a full descriptor table?", not "is this EMFILE or WSAEMFILE?".

use std::io;

use socket2::Socket;

/// The readiness mechanism `polling` uses on this build, for the startup log
/// (the poll(2) CI leg checks it).
pub fn backend_name() -> &'static str {
    if cfg!(polling_test_poll_backend) {
        "poll"
    } else if cfg!(any(target_os = "linux", target_os = "android")) {
        "epoll"
    } else if cfg!(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )) {
        "kqueue"
    } else if cfg!(windows) {
        "IOCP/AFD"
    } else if cfg!(any(target_os = "illumos", target_os = "solaris")) {
        "event ports"
    } else {
        "poll"
    }
}

/// Raise the soft open-files limit to the hard limit (Unix); returns the new
/// soft limit. Windows has no such limit on sockets.
#[cfg(unix)]
pub fn raise_fd_limit() -> io::Result<Option<u64>> {
    rlimit::increase_nofile_limit(u64::MAX).map(Some)
}

#[cfg(not(unix))]
pub fn raise_fd_limit() -> io::Result<Option<u64>> {
    Ok(None)
}

/// The raw OS error codes the checks below look for, one table per OS.
#[cfg(unix)]
mod codes {
    pub const EXHAUSTION: &[i32] = &[libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM];
    /// Linux's accept(2) passes pending network errors of the new socket up.
    pub const TRANSIENT_ACCEPT: &[i32] = &[
        libc::EPROTO,
        libc::ENOPROTOOPT,
        libc::ENETDOWN,
        libc::ENETUNREACH,
        libc::EHOSTDOWN,
        libc::EHOSTUNREACH,
        libc::EOPNOTSUPP,
        libc::ETIMEDOUT,
    ];
    pub const FAMILY_UNAVAILABLE: &[i32] = &[libc::EAFNOSUPPORT, libc::EPROTONOSUPPORT];
    /// Unix reports no ICMP errors on an unconnected UDP socket.
    pub const UDP_PEER_GONE: &[i32] = &[];
    /// Unix cuts an oversized datagram short silently.
    pub const UDP_TRUNCATED: &[i32] = &[];
}

/// Winsock's numbers (std maps only some of them to an `ErrorKind`).
#[cfg(windows)]
mod codes {
    /// WSAEMFILE, WSAENOBUFS.
    pub const EXHAUSTION: &[i32] = &[10024, 10055];
    /// WSAENETDOWN, WSAETIMEDOUT.
    pub const TRANSIENT_ACCEPT: &[i32] = &[10050, 10060];
    /// WSAEAFNOSUPPORT, WSAEPROTONOSUPPORT.
    pub const FAMILY_UNAVAILABLE: &[i32] = &[10047, 10043];
    /// WSAECONNRESET (an earlier reply met ICMP port unreachable),
    /// WSAENETRESET (its TTL expired).
    pub const UDP_PEER_GONE: &[i32] = &[10054, 10052];
    /// WSAEMSGSIZE: the datagram was larger than the buffer.
    pub const UDP_TRUNCATED: &[i32] = &[10040];
}

#[cfg(not(any(unix, windows)))]
mod codes {
    pub const EXHAUSTION: &[i32] = &[];
    pub const TRANSIENT_ACCEPT: &[i32] = &[];
    pub const FAMILY_UNAVAILABLE: &[i32] = &[];
    pub const UDP_PEER_GONE: &[i32] = &[];
    pub const UDP_TRUNCATED: &[i32] = &[];
}

fn has_code(err: &io::Error, codes: &[i32]) -> bool {
    err.raw_os_error().is_some_and(|code| codes.contains(&code))
}

/// Accept failed because the process or system is out of descriptors or
/// buffers: retrying at once would spin, so the caller pauses accepting.
pub fn is_resource_exhaustion(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::OutOfMemory || has_code(err, codes::EXHAUSTION)
}

/// Accept failed because of the one connection being accepted (it was reset
/// or aborted before we took it, or the network hiccuped): skip it, go on.
pub fn is_transient_accept_error(err: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | PermissionDenied
    ) || has_code(err, codes::TRANSIENT_ACCEPT)
}

/// Binding failed because this address family or address does not exist
/// here (IPv6 disabled, no ::1): the caller may skip that address.
pub fn is_family_unavailable(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported
    ) || has_code(err, codes::FAMILY_UNAVAILABLE)
}

/// Make an accepted socket ready for the loop: nonblocking, no Nagle delay on
/// echoes, and no SIGPIPE where the platform raises it per socket (Apple has
/// no MSG_NOSIGNAL; Linux's send path already passes it).
pub fn prepare_stream(socket: &Socket) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    #[cfg(target_vendor = "apple")]
    socket.set_nosigpipe(true)?;
    Ok(())
}

/// Ask the kernel to report the socket writable only once every byte
/// written has been sent (TCP_NOTSENT_LOWAT of 1, Linux). `false` where
/// there is no such signal: the caller cannot wait for it.
pub fn report_writable_when_sent(socket: &Socket) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        socket.set_tcp_notsent_lowat(1).is_ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = socket;
        false
    }
}

/// A nonblocking connect that has not finished yet: EINPROGRESS on Unix,
/// WSAEWOULDBLOCK on Windows.
pub fn is_connect_in_progress(err: &io::Error) -> bool {
    #[cfg(unix)]
    if err.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    err.kind() == io::ErrorKind::WouldBlock
}

/// Let a restarted server bind its port at once. Unix only: on Windows
/// SO_REUSEADDR would let another process take over a port in use.
pub fn allow_quick_rebind(socket: &Socket) -> io::Result<()> {
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    #[cfg(not(unix))]
    let _ = socket;
    Ok(())
}

/// A TCP send or receive that failed because the peer is gone: it reset
/// the connection (closing with unread data does that) or shut it down.
pub fn is_hang_up(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// A UDP receive that failed only because of an earlier reply: Windows
/// reports an ICMP port-unreachable (or TTL expiry) for a datagram we sent
/// as an error on the socket's next receive. It says nothing about the
/// datagram being received, so the service ignores it and reads on.
/// (Turning it off with SIO_UDP_CONNRESET would take an ioctl, i.e. unsafe.)
pub fn is_udp_peer_gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    ) || has_code(err, codes::UDP_PEER_GONE)
}

/// A UDP receive that cut the datagram short (Windows says so with
/// WSAEMSGSIZE; Unix truncates silently, see `datagram::MAX_DATAGRAM`).
pub fn is_udp_truncated(err: &io::Error) -> bool {
    has_code(err, codes::UDP_TRUNCATED)
}
