//! One bench connection: its socket (owned through [`Watched`]), where its
//! stream stands in each direction, and what it is waiting for.
//!
//! A connection's stream is counted in three places: `limit` (bytes it is
//! allowed to send: the messages started so far), `sent` (handed to the
//! kernel) and `recvd` (came back and matched the pattern). The server can
//! never legitimately have echoed more than `sent`, so anything beyond it is
//! an extra byte; anything short of it at EOF is a truncation.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use polling::{Event, PollMode, Poller};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::pattern::Pattern;

/// The one owner of a socket the bench's poller watches.
///
/// `Poller::add` is `unsafe` because a source must leave the poller before
/// it is closed. Here the socket is reachable only through this owner and
/// `Drop` deletes it from the poller before the socket itself is dropped.
pub struct Watched {
    socket: Socket,
    poller: Arc<Poller>,
    mode: PollMode,
}

impl Watched {
    pub fn new(
        poller: &Arc<Poller>,
        socket: Socket,
        interest: Event,
        mode: PollMode,
    ) -> io::Result<Self> {
        // SAFETY: `socket` moves into the returned owner and nothing else
        // holds it; `Drop` deletes it from this same poller before the socket
        // is closed. If `add` fails the socket was never registered.
        unsafe { poller.add_with_mode(&socket, interest, mode)? };
        Ok(Watched {
            socket,
            poller: Arc::clone(poller),
            mode,
        })
    }

    pub fn rearm(&self, interest: Event) -> io::Result<()> {
        self.poller
            .modify_with_mode(&self.socket, interest, self.mode)
    }

    pub fn socket(&self) -> &Socket {
        &self.socket
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // Nothing useful to do if this fails: the socket is closed next.
        let _ = self.poller.delete(&self.socket);
    }
}

/// Start a nonblocking connect; `Ok(true)` when it completed at once.
pub fn start_connect(addr: SocketAddr) -> io::Result<(Socket, bool)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    #[cfg(target_vendor = "apple")]
    socket.set_nosigpipe(true)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => Ok((socket, true)),
        Err(err) if connect_in_progress(&err) => Ok((socket, false)),
        Err(err) => Err(err),
    }
}

/// A nonblocking connect that has not finished yet (EINPROGRESS on Unix,
/// WSAEWOULDBLOCK on Windows).
fn connect_in_progress(err: &io::Error) -> bool {
    #[cfg(unix)]
    if err.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    err.kind() == io::ErrorKind::WouldBlock
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Carries the load.
    Active,
    /// Held open; a small echo before and after the run.
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nonblocking connect in progress.
    Connecting,
    /// Connected; messages (or probes) may start.
    Open,
    /// No new message starts; waiting for what is owed.
    Finishing,
    /// `--half-close`: FIN sent; waiting for the rest and then EOF.
    HalfClosed,
    /// Closed cleanly.
    Done,
    /// Closed after a failure (already counted).
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub const NONE: Interest = Interest {
        read: false,
        write: false,
    };

    pub fn event(self, key: usize) -> Event {
        Event::new(key, self.read, self.write)
    }
}

pub struct Conn {
    /// `None` once closed.
    pub source: Option<Watched>,
    /// Global connection number: the `K` in failure reports and the pattern's key.
    pub id: u64,
    pub kind: Kind,
    pub phase: Phase,
    pub pattern: Pattern,
    pub limit: u64,
    pub sent: u64,
    pub recvd: u64,
    /// Messages started / completed (active connections).
    pub started: u64,
    pub completed: u64,
    /// Messages started after the warmup (the `--messages` quota counts these).
    pub started_measured: u64,
    /// This connection's share of `--messages`.
    pub quota: u64,
    /// Closed loop: start times (ns since the thread's epoch) of the
    /// messages in flight, oldest first; at most `--depth` of them.
    pub starts: VecDeque<u64>,
    /// Position among the thread's active connections (open-loop schedule).
    pub slot: u64,
    pub armed: Interest,
    /// Through setup: connected (and, if idle, its first probe echoed) or failed.
    pub settled: bool,
    /// ns since the thread's epoch of the last byte moved or the connect start.
    pub last_progress: u64,
}

impl Conn {
    pub fn new(id: u64, kind: Kind, depth: usize, slot: u64, quota: u64) -> Self {
        Conn {
            source: None,
            id,
            kind,
            phase: Phase::Connecting,
            pattern: Pattern::new(id),
            limit: 0,
            sent: 0,
            recvd: 0,
            started: 0,
            completed: 0,
            started_measured: 0,
            quota,
            starts: VecDeque::with_capacity(if kind == Kind::Active { depth } else { 0 }),
            slot,
            armed: Interest::NONE,
            settled: false,
            last_progress: 0,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
    }

    /// Bytes the server owes back.
    pub fn owed(&self) -> u64 {
        self.sent - self.recvd
    }

    /// Interest follows state: write while connecting or while there is
    /// something left to send; read whenever connected (EOF and resets must
    /// be seen even when nothing is owed).
    pub fn interest(&self) -> Interest {
        match self.phase {
            Phase::Connecting => Interest {
                read: false,
                write: true,
            },
            Phase::Open | Phase::Finishing | Phase::HalfClosed => Interest {
                read: true,
                write: self.sent < self.limit,
            },
            Phase::Done | Phase::Failed => Interest::NONE,
        }
    }
}
