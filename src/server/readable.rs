//! The seed's `add_readable`: a listener is readable -> accept; a client is
//! readable -> receive into the loop's one buffer and echo.
//!
//! The seed accepted one client per wake-up and pushed every received chunk
//! into an unbounded queue. Here accept drains the backlog (up to a batch),
//! survives the errors a busy server meets, and a read never takes more than
//! the room left under `--max-pending` (invariant 3) nor more than one
//! event's budget (invariant 6).

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::connection::{Connection, Phase};
use super::{writable, Server, Stats, EVENT_BUDGET};
use crate::sys;

/// Connections taken from one listener per event, so a connect storm cannot
/// hold up clients that are already being served.
const ACCEPT_BATCH: usize = 256;

/// How long accepting pauses after the descriptor table filled up.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Accept from listener `index` until its backlog is empty, the batch is
/// done, the connection cap is reached or the system runs out of descriptors.
pub fn accept(server: &mut Server, index: usize, now: Instant) {
    for _ in 0..ACCEPT_BATCH {
        if !server.may_accept() {
            return;
        }
        let listener = &server.listeners[index];
        match listener.source.socket().accept() {
            Ok((socket, addr)) => server.adopt(socket, addr, now),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) if sys::is_transient_accept_error(&err) => {
                log::debug!("accept on {}: {err} (skipped)", listener.addr);
            }
            Err(err) => {
                let why = if sys::is_resource_exhaustion(&err) {
                    "out of descriptors or memory"
                } else {
                    "unexpected error"
                };
                log::warn!(
                    "accept on {} failed ({why}: {err}); pausing accepts for {} ms, \
                     connected clients are still served",
                    listener.addr,
                    ACCEPT_PAUSE.as_millis()
                );
                server.accept_paused_until = Some(now + ACCEPT_PAUSE);
                return;
            }
        }
    }
}

/// Receive what the client sent and echo it; returns an error when the
/// connection is broken (the caller closes it).
pub fn receive(
    conn: &mut Connection,
    buf: &mut [u8],
    max_pending: usize,
    stats: &mut Stats,
) -> io::Result<()> {
    let mut budget = EVENT_BUDGET;
    loop {
        let want = match conn.phase {
            Phase::Echo => max_pending
                .saturating_sub(conn.pending.len())
                .min(buf.len()),
            Phase::Linger => buf.len(),
            // Nothing more is read from a client that is done or while the
            // server flushes at shutdown (an error/hang-up hint can still
            // report "readable"; the write side will find the truth).
            Phase::PeerDone | Phase::Flush => return Ok(()),
        }
        .min(budget);
        if want == 0 {
            return Ok(());
        }
        let n = match conn.source.socket().read(&mut buf[..want]) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if n == 0 {
            // The client shut down its write side. Its echo is still owed.
            conn.phase = Phase::PeerDone;
            return Ok(());
        }
        conn.bytes_in += n as u64;
        stats.bytes_in += n as u64;
        if conn.phase == Phase::Echo {
            writable::send_or_queue(conn, &buf[..n], stats)?;
        }
        budget -= n;
        // A short read means the socket is very likely drained; if more
        // arrived meanwhile, the poller reports it again (level or re-armed
        // oneshot), which is cheaper than a read that ends in WouldBlock.
        if n < want {
            return Ok(());
        }
    }
}
