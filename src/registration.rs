//! The one owner of every socket a poller watches (the server's and the
//! bench's), and the read/write interest it is armed with.
//!
//! `polling::Poller::add` is `unsafe` because the poller must forget a source
//! before the source is closed (on Windows the AFD machinery would otherwise
//! touch a freed socket). `Registered` makes that rule structural: the socket
//! can only be reached through it, and its `Drop` deletes the socket from the
//! poller before the socket field itself is dropped and closed.

use std::io;
use std::sync::Arc;

use polling::{Event, PollMode, Poller};
use socket2::Socket;

/// What the poller should watch for, as two flags.
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

pub struct Registered {
    socket: Socket,
    poller: Arc<Poller>,
    mode: PollMode,
}

impl Registered {
    /// Hand `socket` to the poller with a first `interest`.
    pub fn new(
        poller: &Arc<Poller>,
        socket: Socket,
        interest: Event,
        mode: PollMode,
    ) -> io::Result<Self> {
        // SAFETY: `socket` moves into the returned `Registered`, and nothing
        // else owns it; `Registered::drop` deletes it from this same poller
        // before the socket is dropped, so the poller never outlives its
        // registration. If `add` fails the socket was never registered.
        unsafe { poller.add_with_mode(&socket, interest, mode)? };
        Ok(Registered {
            socket,
            poller: Arc::clone(poller),
            mode,
        })
    }

    /// Change what the poller watches for (and re-arm it in oneshot mode).
    pub fn rearm(&self, interest: Event) -> io::Result<()> {
        self.poller
            .modify_with_mode(&self.socket, interest, self.mode)
    }

    pub fn socket(&self) -> &Socket {
        &self.socket
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Err(err) = self.poller.delete(&self.socket) {
            log::debug!("removing a socket from the poller failed: {err}");
        }
    }
}
