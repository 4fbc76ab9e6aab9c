//! `--trace-events`: one line on stderr per readiness event, for people
//! learning how the loop works: which backend reported it, the key, the bits
//! that were set, which handler ran, the bytes it moved and the interest the
//! socket is armed with afterwards.
//!
//! The loop takes a `Mark` before it dispatches an event and reports it
//! after; both only when tracing is on, so tracing off costs one branch on
//! a bool per event and no formatting. The handlers are named from what the
//! dispatcher does with those bits (see `Server::dispatch`).

use std::fmt::Write as _;
use std::io::Write as _;

use std::net::SocketAddr;

use polling::{Event, PollMode};

use super::{Server, ServiceMode};
use crate::registration::Interest;
use crate::sys;

/// What a key named when its event arrived, and the counters then.
pub struct Mark {
    event: Event,
    target: Target,
    bytes: (u64, u64),
    datagrams: (u64, u64),
    accepted: u64,
}

#[derive(Clone, Copy)]
enum Target {
    Listener,
    Datagram(usize, Interest),
    /// A connection slot and the id in it (none: closed earlier this batch).
    Connection(usize, Option<(u64, SocketAddr)>, Interest),
}

impl Mark {
    pub fn new(server: &Server, event: &Event) -> Mark {
        let target = if let Some(index) = server.udp.index(event.key) {
            Target::Datagram(index, server.udp.endpoints[index].armed)
        } else if event.key < server.key_base {
            Target::Listener
        } else {
            let slot = event.key - server.key_base;
            match server.conns.get(slot) {
                Some(conn) => Target::Connection(slot, Some((conn.id, conn.peer)), conn.armed),
                None => Target::Connection(slot, None, Interest::NONE),
            }
        };
        Mark {
            event: *event,
            target,
            bytes: (server.stats.bytes_in, server.stats.bytes_out),
            datagrams: (server.stats.udp.received, server.stats.udp.sent),
            accepted: server.stats.accepted,
        }
    }

    /// Write the event's line, now that the dispatcher is done with it.
    pub fn report(self, server: &Server) {
        let e = &self.event;
        let mut line = String::with_capacity(160);
        let _ = write!(line, "event: {} key={} ", sys::backend_name(), e.key);
        let oneshot = server.mode == PollMode::Oneshot;
        match self.target {
            Target::Listener => {
                let addr = server.listeners.get(e.key).map(|l| l.addr);
                let _ = write!(line, "(listener {}) ", show(addr));
                bits(&mut line, e);
                // Listeners are (re-)armed after the batch, from whether
                // accepting is allowed then (`Server::sync_listeners`).
                let _ = write!(
                    line,
                    " -> readable::accept: {} accepted -> {}",
                    server.stats.accepted - self.accepted,
                    match (server.may_accept(), oneshot) {
                        (true, false) => "interest read",
                        (true, true) => "re-armed read after the batch",
                        (false, _) => "interest none (accepting paused)",
                    }
                );
            }
            Target::Datagram(index, before) => {
                let endpoint = server.udp.endpoints.get(index);
                let _ = write!(line, "(udp {}) ", show(endpoint.map(|p| p.addr)));
                bits(&mut line, e);
                line.push_str(" ->");
                if e.writable {
                    line.push_str(" writable::flush_datagrams");
                }
                if e.readable {
                    line.push_str(" readable::receive_datagrams");
                }
                let u = &server.stats.udp;
                let _ = write!(
                    line,
                    ": {} datagrams in, {} out",
                    u.received - self.datagrams.0,
                    u.sent - self.datagrams.1
                );
                match endpoint {
                    Some(p) => rearmed(&mut line, oneshot, before, p.armed),
                    None => line.push_str(" -> closed"),
                }
            }
            Target::Connection(slot, id, before) => {
                let conn = server
                    .conns
                    .get(slot)
                    .filter(|c| Some(c.id) == id.map(|(id, _)| id));
                match (id, conn) {
                    (None, _) => {
                        let _ = write!(line, "(closed slot {slot}) ");
                        bits(&mut line, e);
                        line.push_str(" -> none: stale event, dropped");
                    }
                    (Some((id, peer)), conn) => {
                        let _ = write!(line, "(conn #{id} {peer}) ");
                        bits(&mut line, e);
                        let closed = conn.is_none();
                        let moved = (
                            server.stats.bytes_in - self.bytes.0,
                            server.stats.bytes_out - self.bytes.1,
                        );
                        line.push_str(" ->");
                        handlers(&mut line, e, server.config.service, closed, moved);
                        let _ = write!(line, ": {} bytes in, {} out", moved.0, moved.1);
                        match conn {
                            Some(c) => rearmed(&mut line, oneshot, before, c.armed),
                            None => line.push_str(" -> closed"),
                        }
                    }
                }
            }
        }
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

fn show(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "gone".into(), |a| a.to_string())
}

/// The bits the backend set, by the names the exceptional handler uses.
fn bits(line: &mut String, e: &Event) {
    let set = [
        (e.readable, "readable"),
        (e.writable, "writable"),
        (e.is_err() == Some(true), "error"),
        (e.is_interrupt(), "hang-up"),
        (e.is_priority(), "priority"),
    ];
    let names: Vec<&str> = set.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
    let _ = write!(
        line,
        "[{}]",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(" ")
        }
    );
}

/// The handlers `Server::dispatch` runs for these bits.
fn handlers(line: &mut String, e: &Event, service: ServiceMode, closed: bool, moved: (u64, u64)) {
    if e.is_err() == Some(true) {
        line.push_str(" exceptional::check_hints");
        if closed && moved == (0, 0) {
            // The socket's pending error closed it before any I/O.
            line.push_str(" exceptional::close");
            return;
        }
    }
    if e.writable {
        line.push_str(match service {
            ServiceMode::Chargen => " writable::generate",
            _ => " writable::flush",
        });
    }
    if e.readable {
        line.push_str(match service {
            ServiceMode::Echo => " readable::receive",
            _ => " readable::swallow",
        });
    }
    if closed {
        line.push_str(" exceptional::close");
    }
}

fn rearmed(line: &mut String, oneshot: bool, before: Interest, now: Interest) {
    let name = match (now.read, now.write) {
        (true, true) => "read+write",
        (true, false) => "read",
        (false, true) => "write",
        (false, false) => "none",
    };
    let how = if oneshot {
        "re-armed"
    } else if now == before {
        "interest unchanged:"
    } else {
        "modified to"
    };
    let _ = write!(line, " -> {how} {name}");
}
