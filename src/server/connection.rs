//! One client: its socket, the echo bytes it is still owed, and the phase of
//! its life. The interest the poller should watch for is derived from this
//! state every time (invariant 2), never stored apart from it.

use std::net::SocketAddr;
use std::time::Instant;

use super::faults::Shaper;
use crate::registration::{Interest, Registered};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and echoing.
    Echo,
    /// The client shut down its write side: send what is pending, then close.
    PeerDone,
    /// The server is stopping: send what is pending, then send FIN.
    Flush,
    /// FIN sent at shutdown: discard what still arrives until the client
    /// closes, so closing never turns into a reset that could cut off echo
    /// bytes still in flight.
    Linger,
    /// `--stall-after`: never send again. Read and drop what arrives; after
    /// the client's EOF keep the socket open and silent all the same (a
    /// black hole does not answer a half-close), until `--idle-timeout` or
    /// shutdown.
    Stalled { peer_done: bool },
    /// `--reset-after`: the last byte is written; reset once the kernel has
    /// sent it all (so the client receives exactly the bytes owed).
    Resetting,
}

/// Bytes received and not yet echoed. Empty and unallocated while the
/// client's echoes leave at once (the common case, and every idle
/// connection); a buffer exists only after a send was partial, and is freed
/// as soon as it drains.
#[derive(Default)]
pub struct Pending {
    buf: Vec<u8>,
    head: usize,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    pub fn push(&mut self, data: &[u8]) {
        // Slide the unsent tail to the front once the sent part dominates,
        // so the buffer stays near the size of what is really pending.
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(data);
    }

    pub fn consume(&mut self, n: usize) {
        self.head += n;
        if self.head >= self.buf.len() {
            self.buf = Vec::new();
            self.head = 0;
        }
    }

    /// Heap bytes held (for tests of the bound).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

pub struct Connection {
    pub source: Registered,
    /// Unique for the server's lifetime: names the connection in logs and
    /// tells a deadline entry whether its slot still holds this connection.
    pub id: u64,
    pub peer: SocketAddr,
    pub phase: Phase,
    pub pending: Pending,
    /// What the poller is watching for now (none after a oneshot event fired).
    pub armed: Interest,
    /// Last time a byte moved either way (idle timeout).
    pub last_active: Instant,
    /// The idle deadline this connection is filed under, if any.
    pub deadline: Option<Instant>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes read and dropped since FIN was sent.
    pub discarded: u64,
    /// Before FIN or an injected RST: whether the kernel has sent every
    /// byte written (`None`: not asked, or it cannot tell on this platform).
    pub all_sent: Option<bool>,
    /// Injected faults, for a connection chosen to have them.
    pub shaper: Option<Box<Shaper>>,
}

impl Connection {
    /// The interest this state implies (invariant 2): read while the client
    /// may still send and there is room under the cap; write while anything
    /// is pending. At shutdown, after FIN, read only to see the client go.
    pub fn interest(&self, max_pending: usize) -> Interest {
        let wanted = self.plain_interest(max_pending);
        match &self.shaper {
            None => wanted,
            // A fault holding a side back takes it out of the interest
            // until the loop's timer lifts the hold.
            Some(shaper) => Interest {
                read: wanted.read
                    && (self.phase != Phase::Echo
                        || (shaper.hold_in.is_none() && !shaper.is_full())),
                write: wanted.write && shaper.hold_out.is_none(),
            },
        }
    }

    fn plain_interest(&self, max_pending: usize) -> Interest {
        match self.phase {
            Phase::Echo => Interest {
                read: self.pending.len() < max_pending,
                write: !self.pending.is_empty(),
            },
            Phase::PeerDone => Interest {
                read: false,
                write: !self.pending.is_empty(),
            },
            Phase::Flush => Interest {
                read: false,
                write: !self.pending.is_empty() || self.all_sent == Some(false),
            },
            Phase::Linger => Interest {
                read: true,
                write: false,
            },
            Phase::Stalled { peer_done } => Interest {
                read: !peer_done,
                write: false,
            },
            Phase::Resetting => Interest {
                read: false,
                write: self.all_sent == Some(false),
            },
        }
    }

    /// Nothing more to do: the client is done sending and got every byte.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::PeerDone && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Pending;

    #[test]
    fn pending_keeps_order_across_partial_consumes_and_frees_when_drained() {
        let mut p = Pending::default();
        assert_eq!(p.capacity(), 0);
        p.push(b"hello ");
        p.consume(2);
        p.push(b"world");
        assert_eq!(p.as_slice(), b"llo world");
        p.consume(4);
        p.push(b"!");
        assert_eq!(p.as_slice(), b"world!");
        p.consume(6);
        assert!(p.is_empty());
        assert_eq!(p.capacity(), 0, "a drained buffer is freed");
    }
}
