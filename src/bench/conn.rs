//! One bench connection: its socket (owned through [`Registered`]), where its
//! stream stands in each direction, and what it is waiting for.
//!
//! A connection's stream is counted in three places: `limit` (bytes it is
//! allowed to send: the messages started so far), `sent` (handed to the
//! kernel) and `recvd` (came back and matched the pattern). The server can
//! never legitimately have echoed more than `sent`, so anything beyond it is
//! an extra byte; anything short of it at EOF is a truncation.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use super::pattern::Pattern;
pub use crate::registration::{Interest, Registered};

/// Start a nonblocking connect; `Ok(true)` when it completed at once.
pub fn start_connect(addr: SocketAddr) -> io::Result<(Socket, bool)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    crate::sys::prepare_stream(&socket)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => Ok((socket, true)),
        Err(err) if crate::sys::is_connect_in_progress(&err) => Ok((socket, false)),
        Err(err) => Err(err),
    }
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

pub struct Conn {
    /// `None` once closed.
    pub source: Option<Registered>,
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
