//! The seed's `exception_handler`: a connection that broke, or that is done,
//! leaves the loop here, and only here.
//!
//! Closing is the one place a connection is removed from the table, so its
//! idle deadline is dropped, the counters are settled and the socket is
//! deleted from the poller (by `Registered`'s drop) before it is closed.
//! One client's failure never travels further (invariant 4).
//!
//! The poller's error and hang-up bits are hints, not verdicts: they mean
//! different things per backend, and kqueue reports none of them. The read
//! or write result is the truth on every OS; a hint only makes us ask the
//! socket for its pending error (SO_ERROR) early.
//!
//! | backend            | `is_interrupt()` (HUP) | `is_priority()` (OOB)      | `is_err()`          |
//! |--------------------|------------------------|----------------------------|---------------------|
//! | epoll (Linux)      | EPOLLHUP               | EPOLLPRI                   | `Some(EPOLLERR)`    |
//! | IOCP/AFD (Windows) | AFD_POLL_ABORT         | AFD_POLL_RECEIVE_EXPEDITED | `Some(CONNECT_FAIL)`|
//! | kqueue (macOS, BSD)| always false           | always false               | `None`              |
//! | poll(2)            | POLLHUP                | POLLPRI                    | `Some(POLLERR)`     |

use std::fmt;
use std::io;
use std::time::Duration;

use polling::Event;

use super::connection::Connection;
use super::datagram::Endpoint;
use super::timers::Timer;
use super::Server;

/// Why a connection was closed (for the debug log and the counters).
pub enum Reason {
    /// The client half-closed and received every byte it was owed.
    Finished,
    /// The client went away mid-stream, which ends chargen normally.
    HungUp,
    /// No byte moved for `--idle-timeout`.
    Idle,
    /// The socket failed: reset, broken pipe, a pending error.
    Failed(io::Error),
    /// The server stopped before the client went away.
    Shutdown,
    /// `--reset-after`: abort with RST.
    Reset,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Finished => f.write_str("client finished"),
            Reason::HungUp => f.write_str("client hung up"),
            Reason::Idle => f.write_str("idle timeout"),
            Reason::Failed(err) => write!(f, "{err}"),
            Reason::Shutdown => f.write_str("server shutting down"),
            Reason::Reset => f.write_str("injected reset"),
        }
    }
}

/// Turn an event's error hint into the socket's real pending error, if any.
pub fn check_hints(conn: &Connection, event: &Event) -> Option<io::Error> {
    if event.is_err() != Some(true) {
        return None;
    }
    match conn.source.socket().take_error() {
        Ok(pending) => pending,
        Err(err) => Some(err),
    }
}

/// Remove connection `slot` from the loop and account for it.
pub fn close(server: &mut Server, slot: usize, reason: Reason) {
    let Some(conn) = server.conns.remove(slot) else {
        return;
    };
    if let Some(at) = conn.deadline {
        server.deadlines.remove(at, conn.id, Timer::Idle);
    }
    if let Some(at) = conn.shaper.as_ref().and_then(|s| s.wake) {
        server.deadlines.remove(at, conn.id, Timer::Fault);
    }
    server.stats.closed += 1;
    match reason {
        Reason::Idle => server.stats.idle_closed += 1,
        Reason::Failed(_) => server.stats.failed += 1,
        Reason::Reset => {
            // Linger 0: closing sends RST and drops what is unsent.
            if let Err(err) = conn.source.socket().set_linger(Some(Duration::ZERO)) {
                log::debug!("connection #{}: cannot arrange a reset: {err}", conn.id);
            }
        }
        Reason::Finished | Reason::HungUp | Reason::Shutdown => {}
    }
    log::debug!(
        "connection #{} from {} closed ({reason}): {} bytes in, {} out, {} unsent",
        conn.id,
        conn.peer,
        conn.bytes_in,
        conn.bytes_out,
        conn.pending.len()
    );
    // Dropping `conn` deletes its socket from the poller, then closes it.
}

/// A UDP socket's own error (not one peer's: those are ignored or counted
/// where they happen). The socket is shared by every UDP client, so it is
/// never closed for this; the error is reported and serving goes on.
pub fn datagram_failed(endpoint: &Endpoint, err: &io::Error) {
    log::warn!("udp {}: {err} (still serving)", endpoint.addr);
}
