//! The seed's `add_writable`: send what a client is owed.
//!
//! The seed sent one queued chunk per wake-up with a single `send` and
//! dropped whatever that call did not take. Here a partial send keeps the
//! rest, in order, and sending goes on until the kernel pushes back
//! (WouldBlock), the event's budget is spent (invariant 6) or an injected
//! fault holds the echo back (`faults.rs`).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::connection::{Connection, Phase};
use super::datagram::{Counters, Endpoint};
use super::mode::Chargen;
use super::{Stats, EVENT_BUDGET};

/// Echo freshly received bytes: straight to the socket when nothing older is
/// waiting (no copy, no extra wake-up), queued behind older bytes otherwise.
/// With faults, every byte is queued and leaves when the faults allow.
pub fn send_or_queue(
    conn: &mut Connection,
    data: &[u8],
    stats: &mut Stats,
    now: Instant,
) -> io::Result<()> {
    if let Some(shaper) = conn.shaper.as_deref_mut() {
        conn.pending.push(data);
        shaper.note_queued(conn.bytes_out + conn.pending.len() as u64, now);
        return flush(conn, stats, now);
    }
    let sent = if conn.pending.is_empty() {
        send(conn, data, stats)?
    } else {
        0
    };
    if sent < data.len() {
        conn.pending.push(&data[sent..]);
    }
    Ok(())
}

/// Send pending bytes until none are left, the kernel pushes back, the
/// event's budget is spent or a fault says wait.
pub fn flush(conn: &mut Connection, stats: &mut Stats, now: Instant) -> io::Result<()> {
    let mut budget = EVENT_BUDGET;
    while !conn.pending.is_empty() && budget > 0 {
        let mut len = conn.pending.len().min(budget);
        if let Some(shaper) = conn.shaper.as_deref_mut() {
            len = shaper.send_allowance(conn.bytes_out, len, now);
            if len == 0 {
                break;
            }
        }
        let n = send_raw(conn.source.socket(), &conn.pending.as_slice()[..len])?;
        if n == 0 {
            break;
        }
        conn.pending.consume(n);
        conn.bytes_out += n as u64;
        stats.bytes_out += n as u64;
        budget -= n;
        if let Some(shaper) = conn.shaper.as_deref_mut() {
            shaper.note_sent(n, now);
        }
    }
    Ok(())
}

fn send(conn: &mut Connection, data: &[u8], stats: &mut Stats) -> io::Result<usize> {
    let n = send_raw(conn.source.socket(), data)?;
    conn.bytes_out += n as u64;
    stats.bytes_out += n as u64;
    Ok(n)
}

/// One send; 0 means the kernel's buffer is full (WouldBlock).
fn send_raw(socket: &socket2::Socket, data: &[u8]) -> io::Result<usize> {
    loop {
        match socket.send(data) {
            Ok(n) => return Ok(n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
}

/// chargen: send the next part of the line pattern until the kernel pushes
/// back or the event's budget is spent. The client's reading speed is the
/// only pace: no writable event comes while its buffers are full.
pub fn generate(conn: &mut Connection, chargen: &Chargen, stats: &mut Stats) -> io::Result<()> {
    let mut budget = EVENT_BUDGET;
    while conn.phase == Phase::Echo && budget > 0 {
        let n = send_raw(conn.source.socket(), chargen.chunk(conn.bytes_out, budget))?;
        if n == 0 {
            break;
        }
        conn.bytes_out += n as u64;
        stats.bytes_out += n as u64;
        budget -= n;
    }
    Ok(())
}

/// Answer one datagram: straight away when nothing older waits, else (or
/// when the kernel will not take it now) into the bounded queue.
pub fn send_datagram(
    endpoint: &mut Endpoint,
    to: SocketAddr,
    data: &[u8],
    counters: &mut Counters,
) {
    if endpoint.queue.is_empty() {
        match send_to(endpoint, to, data) {
            Sent::Done => {
                counters.sent += 1;
                return;
            }
            Sent::Failed => {
                counters.failed += 1;
                return;
            }
            Sent::Later => {}
        }
    }
    // Held replies share the cap (none while they are being released: each
    // moves from one to the other).
    let held = endpoint.shaper.as_ref().map_or(0, |s| s.held_bytes());
    if !endpoint.queue.push(to, data, held) {
        counters.overflowed += 1;
    }
}

/// Send queued datagram replies, oldest first, until none are left or the
/// kernel pushes back.
pub fn flush_datagrams(endpoint: &mut Endpoint, counters: &mut Counters) {
    let mut budget = EVENT_BUDGET;
    while let Some((to, data)) = endpoint.queue.front() {
        if budget == 0 {
            return;
        }
        budget = budget.saturating_sub(data.len().max(1));
        let outcome = send_to(endpoint, to, data);
        match outcome {
            Sent::Done => counters.sent += 1,
            Sent::Failed => counters.failed += 1,
            Sent::Later => return,
        }
        endpoint.queue.pop();
    }
}

enum Sent {
    Done,
    /// WouldBlock: keep it for the next writable event.
    Later,
    /// The kernel refused this one datagram (no route, peer unreachable,
    /// too large): count it and go on; UDP promises no delivery.
    Failed,
}

fn send_to(endpoint: &Endpoint, to: SocketAddr, data: &[u8]) -> Sent {
    loop {
        match endpoint.io.send_to(data, to) {
            Ok(_) => return Sent::Done,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Sent::Later,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                log::debug!("udp {}: reply to {to} failed: {err}", endpoint.addr);
                return Sent::Failed;
            }
        }
    }
}
