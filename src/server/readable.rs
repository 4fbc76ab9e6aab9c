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
use super::datagram::{self, Counters, Endpoint};
use super::{writable, Server, ServiceMode, Stats, EVENT_BUDGET};
use crate::sys;

/// Connections taken from one listener per event, so a connect storm cannot
/// hold up clients that are already being served.
pub const ACCEPT_BATCH: usize = 256;

/// How long accepting pauses after the descriptor table filled up.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Accept from listener `index` until its backlog is empty, the batch is
/// done, the connection cap is reached or the system runs out of descriptors.
/// True only when the batch ran out: more clients may be waiting.
pub fn accept(server: &mut Server, index: usize, now: Instant) -> bool {
    for _ in 0..ACCEPT_BATCH {
        if !server.may_accept() {
            return false;
        }
        let listener = &server.listeners[index];
        match listener.source.socket().accept() {
            Ok((socket, addr)) => {
                if let Some((since, pauses)) = server.accept_trouble.take() {
                    log::info!(
                        "accepting again after {:.1} s and {pauses} pause(s)",
                        now.duration_since(since).as_secs_f64()
                    );
                }
                if server.at_limit() {
                    server.turn_away(socket, addr);
                } else {
                    server.adopt(socket, addr, now);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
            Err(err) if sys::is_transient_accept_error(&err) => {
                log::debug!("accept on {}: {err} (skipped)", listener.addr);
            }
            Err(err) => {
                pause(server, index, &err, now);
                return false;
            }
        }
    }
    true
}

/// Accept failed in a way that retrying at once would repeat (EMFILE and
/// friends): stop accepting for a moment. The first failure of an episode
/// is a warning, later ones are repeated only every ten seconds.
fn pause(server: &mut Server, index: usize, err: &io::Error, now: Instant) {
    const REMIND: Duration = Duration::from_secs(10);
    let why = if sys::is_resource_exhaustion(err) {
        "out of descriptors or memory"
    } else {
        "unexpected error"
    };
    let addr = server.listeners[index].addr;
    server.accept_paused_until = Some(now + ACCEPT_PAUSE);
    match &mut server.accept_trouble {
        None => {
            server.accept_trouble = Some((now, 1));
            log::warn!(
                "accept on {addr} failed ({why}: {err}); pausing accepts for {} ms, \
                 connected clients are still served",
                ACCEPT_PAUSE.as_millis()
            );
        }
        Some((since, pauses)) => {
            *pauses += 1;
            let elapsed = now.duration_since(*since);
            // About once per REMIND: the pauses are ACCEPT_PAUSE apart.
            if *pauses % (REMIND.as_millis() / ACCEPT_PAUSE.as_millis()) as u32 == 0 {
                log::warn!(
                    "accept on {addr} still failing after {:.0} s ({why}: {err})",
                    elapsed.as_secs_f64()
                );
            } else {
                log::debug!("accept on {addr} failed again: {err}");
            }
        }
    }
}

/// After FIN (at shutdown or `--close-after`) or a stall: read and drop what
/// the client still sends. `Ok(true)` once the client ended its input (EOF).
/// The caller decides what a quiet client means: with nothing discarded since
/// FIN, nothing is in flight that would turn a close into a reset.
pub fn discard(conn: &mut Connection, buf: &mut [u8], stats: &mut Stats) -> io::Result<bool> {
    let (dropped, eof) = drop_input(conn, buf)?;
    conn.discarded += dropped;
    stats.discarded += dropped;
    stats.bytes_in += dropped;
    Ok(eof)
}

/// Read what the client sent and drop it, up to one event's budget
/// (invariant 6): the bytes dropped, and whether the client ended its input.
fn drop_input(conn: &mut Connection, buf: &mut [u8]) -> io::Result<(u64, bool)> {
    let mut budget = EVENT_BUDGET.max(buf.len());
    let mut dropped = 0;
    while budget > 0 {
        let want = buf.len().min(budget);
        match conn.source.socket().read(&mut buf[..want]) {
            Ok(0) => return Ok((dropped, true)),
            Ok(n) => {
                conn.bytes_in += n as u64;
                dropped += n as u64;
                budget -= n;
                // Short read: very likely drained (see `receive`).
                if n < want {
                    break;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok((dropped, false))
}

/// Receive what the client sent and echo it; returns an error when the
/// connection is broken (the caller closes it).
pub fn receive(
    conn: &mut Connection,
    buf: &mut [u8],
    max_pending: usize,
    stats: &mut Stats,
    now: Instant,
) -> io::Result<()> {
    if let Phase::Stalled { peer_done } = conn.phase {
        // The black hole swallows input, and stays silent after its EOF.
        if !peer_done && discard(conn, buf, stats)? {
            conn.phase = Phase::Stalled { peer_done: true };
        }
        return Ok(());
    }
    // At least one full read per event, so a larger --read-buffer is used.
    let mut budget = EVENT_BUDGET.max(buf.len());
    loop {
        // Only a client being echoed is read here: one that is done, or any
        // client at shutdown, is not (an error/hang-up hint can still report
        // "readable"; the write side or `discard` finds the truth).
        if conn.phase != Phase::Echo {
            return Ok(());
        }
        let mut want = max_pending
            .saturating_sub(conn.pending.len())
            .min(buf.len())
            .min(budget);
        if let Some(shaper) = conn.shaper.as_deref_mut() {
            want = if shaper.is_full() {
                0
            } else {
                shaper.read_allowance(want, now)
            };
        }
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
        if let Some(shaper) = conn.shaper.as_deref_mut() {
            shaper.note_read(n);
        }
        writable::send_or_queue(conn, &buf[..n], stats, now)?;
        budget -= n;
        // A short read means the socket is very likely drained; if more
        // arrived meanwhile, the poller reports it again (level or re-armed
        // oneshot), which is cheaper than a read that ends in WouldBlock.
        if n < want {
            return Ok(());
        }
    }
}

/// discard and chargen (RFC 863, 864): read what the client sends and drop
/// it. EOF ends the client's side as in echo: nothing is owed, so it closes.
pub fn swallow(conn: &mut Connection, buf: &mut [u8], stats: &mut Stats) -> io::Result<()> {
    if conn.phase != Phase::Echo {
        return Ok(());
    }
    let (dropped, eof) = drop_input(conn, buf)?;
    stats.bytes_in += dropped;
    if eof {
        conn.phase = Phase::PeerDone;
    }
    Ok(())
}

/// Datagrams taken from one UDP socket per event, so a flood on it cannot
/// hold up the TCP clients (invariant 6).
const DATAGRAM_BATCH: usize = 256;

/// A UDP socket is readable: take datagrams until none are left (or the
/// batch or byte budget is spent) and answer each one whole, to its sender,
/// from this socket — unless the guard refuses its source or the service
/// is discard. An error is returned only if the socket itself fails.
pub fn receive_datagrams(
    endpoint: &mut Endpoint,
    buf: &mut [u8],
    service: ServiceMode,
    allow_low_ports: bool,
    counters: &mut Counters,
    now: Instant,
) -> io::Result<()> {
    let mut budget = EVENT_BUDGET;
    for _ in 0..DATAGRAM_BATCH {
        if budget == 0 {
            return Ok(());
        }
        let (n, from) = match endpoint.io.recv_from(buf) {
            Ok(got) => got,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if sys::is_udp_peer_gone(&err) => {
                log::debug!(
                    "udp {}: an earlier reply was not delivered ({err})",
                    endpoint.addr
                );
                continue;
            }
            Err(err) if sys::is_udp_truncated(&err) => {
                counters.truncated += 1;
                continue;
            }
            Err(err) => return Err(err),
        };
        budget = budget.saturating_sub(n.max(1));
        if n == buf.len() {
            counters.truncated += 1;
            continue;
        }
        counters.received += 1;
        if let Err(why) = datagram::check_source(from, endpoint.addr, allow_low_ports) {
            counters.guarded += 1;
            log::debug!(
                "udp {}: datagram from {} not answered ({why:?})",
                endpoint.addr,
                datagram::plain(from)
            );
            continue;
        }
        if !service.echoes() {
            continue;
        }
        let copies = match endpoint.shaper.as_deref_mut() {
            None => 1,
            Some(shaper) => {
                let queued = endpoint.queue.bytes();
                let verdict = shaper.admit(from, &buf[..n], queued, now);
                counters.fault_dropped += u64::from(verdict.dropped);
                counters.fault_duplicated += u64::from(verdict.duplicated);
                counters.overflowed += verdict.overflowed as u64;
                verdict.now
            }
        };
        for _ in 0..copies {
            writable::send_datagram(endpoint, from, &buf[..n], counters);
        }
    }
    Ok(())
}
