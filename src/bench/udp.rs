//! `pollmux bench --udp`: the load as datagrams on connected UDP sockets, one
//! per `--connections`, driven by a readiness loop like the TCP driver's
//! (`driver.rs`), one `Poller` per thread.
//!
//! A datagram is `--size` bytes: a 16-byte header (connection id as u32, a
//! check word over connection and sequence as u32, the sequence number as
//! u64, all little-endian) and a payload that is the connection's pattern
//! stream (`pattern.rs`) from offset `sequence * payload length`. An echo is
//! thus verified without storing what was sent, and a damaged header is not
//! mistaken for another datagram's.
//!
//! UDP promises neither delivery nor order, so those are counted, not
//! failed. Each connection keeps its datagrams from the oldest unanswered
//! one on, in sequence order (`Conn::window`): an echo answers one of them,
//! or is a duplicate, or comes late (its datagram was already counted lost);
//! one that comes back after a later sequence is reordered. A datagram
//! unanswered after `--stall-timeout` is lost and, in the closed loop, replaced, so
//! a connection keeps `--depth` in flight and a loss never stalls it.
//! Corruption is a verification failure; loss above `--max-loss` fails the
//! run.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::io::{self, Read};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polling::PollMode;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::driver::{poll_mode, Note, ThreadResult};
use super::fault::Class;
use super::pattern::Pattern;
use super::progress::Live;
use super::run::{self, Load, Run, MAX_BEHIND, TICK_NS};
use super::{Plan, Share};
use crate::registration::{Interest, Registered};

/// Bytes of the header every datagram starts with; the smallest `--size`.
pub const HEADER: usize = 16;
/// Datagrams read from one socket per event before the loop moves on.
const EVENT_DATAGRAMS: usize = 64;
/// Sequence numbers of recent losses kept per connection, so a late echo is
/// told from a duplicate (an older loss coming back counts as a duplicate).
const RECENT_LOST: usize = 1024;
/// The probe `resolve` sends is resent this often until it comes back.
const PROBE_RESEND: Duration = Duration::from_millis(200);

/// Datagram counters over the whole run, warmup included. Once the run is
/// over every datagram sent was either received or lost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UdpCounts {
    pub sent: u64,
    /// Datagrams whose first sound echo came back in time.
    pub received: u64,
    /// No sound echo within `--stall-timeout` (or its connection failed first).
    pub lost: u64,
    /// Sound echoes of datagrams already counted lost.
    pub late: u64,
    /// Second and later echoes of a datagram.
    pub duplicated: u64,
    /// Received after a datagram sent later on the same connection.
    pub reordered: u64,
    /// Echoes of the wrong length, with a damaged header or payload, or of a
    /// datagram never sent (each is also a verification failure).
    pub corrupted: u64,
}

impl UdpCounts {
    pub fn add(&mut self, o: &UdpCounts) {
        self.sent += o.sent;
        self.received += o.received;
        self.lost += o.lost;
        self.late += o.late;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.corrupted += o.corrupted;
    }
}

/// The report's `--udp` part: the counters and the loss allowed.
#[derive(Debug, Clone, Copy)]
pub struct UdpSummary {
    pub counts: UdpCounts,
    pub max_loss: f64,
}

impl UdpSummary {
    /// Lost datagrams as a fraction of those sent.
    pub fn loss(&self) -> f64 {
        match self.counts.sent {
            0 => 0.0,
            sent => self.counts.lost as f64 / sent as f64,
        }
    }

    pub fn loss_ok(&self) -> bool {
        self.loss() <= self.max_loss
    }

    pub fn write_text(&self, s: &mut String) {
        let c = &self.counts;
        let verdict = if self.loss_ok() { "within" } else { "above" };
        let _ = writeln!(s, "datagrams sent:        {}", c.sent);
        let _ = writeln!(s, "datagrams received:    {}", c.received);
        let _ = writeln!(
            s,
            "datagrams lost:        {} ({:.3} %, {verdict} --max-loss {} %)",
            c.lost,
            self.loss() * 100.0,
            self.max_loss * 100.0
        );
        let _ = writeln!(s, "late echoes:           {} (after counted lost)", c.late);
        let _ = writeln!(s, "duplicated echoes:     {}", c.duplicated);
        let _ = writeln!(s, "reordered echoes:      {}", c.reordered);
        let _ = writeln!(s, "corrupted echoes:      {}", c.corrupted);
    }

    /// The JSON `udp` object.
    pub fn json(&self) -> String {
        let c = &self.counts;
        format!(
            "{{\"sent\":{},\"received\":{},\"lost\":{},\"late\":{},\"duplicated\":{},\
             \"reordered\":{},\"corrupted\":{},\"loss\":{},\"max_loss\":{}}}",
            c.sent,
            c.received,
            c.lost,
            c.late,
            c.duplicated,
            c.reordered,
            c.corrupted,
            fraction(self.loss()),
            fraction(self.max_loss)
        )
    }
}

/// A fraction with up to six decimals (the report's three would hide 1 in
/// 10,000), as a JSON number.
fn fraction(v: f64) -> String {
    if !v.is_finite() {
        return "null".to_owned();
    }
    let six = format!("{v:.6}");
    match six.trim_end_matches('0') {
        t if t.ends_with('.') => format!("{t}0"),
        t => t.to_owned(),
    }
}

// ---- the datagram -------------------------------------------------------

/// Ties the header's connection and sequence together, so a flipped bit in
/// either is caught even when the datagram has no payload.
fn check_word(conn: u64, seq: u64) -> u32 {
    let x = (conn.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seq).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (x ^ (x >> 32)) as u32
}

/// Write datagram `seq` of connection `conn` into the whole of `out`.
fn compose(conn: u64, pattern: &Pattern, seq: u64, out: &mut [u8]) {
    let (header, payload) = out.split_at_mut(HEADER);
    header[..4].copy_from_slice(&(conn as u32).to_le_bytes());
    header[4..8].copy_from_slice(&check_word(conn, seq).to_le_bytes());
    header[8..].copy_from_slice(&seq.to_le_bytes());
    pattern.fill(seq * payload.len() as u64, payload);
}

/// What is wrong with an echo.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Corruption {
    Length {
        got: usize,
        want: usize,
    },
    Header,
    Unsent {
        seq: u64,
    },
    Payload {
        seq: u64,
        at: usize,
        expected: u8,
        got: u8,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Length { got, want } => {
                write!(f, "an echo of {got} bytes, expected {want} (corrupted)")
            }
            Corruption::Header => write!(f, "an echo with a damaged header (corrupted)"),
            Corruption::Unsent { seq } => {
                write!(
                    f,
                    "an echo of datagram {seq}, which was never sent (corrupted)"
                )
            }
            Corruption::Payload {
                seq,
                at,
                expected,
                got,
            } => write!(
                f,
                "datagram {seq}, byte {at}: expected 0x{expected:02x}, got 0x{got:02x} (corrupted)"
            ),
        }
    }
}

/// The sequence number of `data` if it is a sound echo of one of the first
/// `sent` datagrams of connection `conn`.
fn inspect(
    conn: u64,
    pattern: &Pattern,
    sent: u64,
    size: usize,
    data: &[u8],
) -> Result<u64, Corruption> {
    if data.len() != size {
        return Err(Corruption::Length {
            got: data.len(),
            want: size,
        });
    }
    let (header, payload) = data.split_at(HEADER);
    let mut word = [0u8; 8];
    word.copy_from_slice(&header[8..]);
    let seq = u64::from_le_bytes(word);
    let mut half = [0u8; 4];
    half.copy_from_slice(&header[..4]);
    let id = u32::from_le_bytes(half);
    half.copy_from_slice(&header[4..8]);
    if id != conn as u32 || u32::from_le_bytes(half) != check_word(conn, seq) {
        return Err(Corruption::Header);
    }
    if seq >= sent {
        return Err(Corruption::Unsent { seq });
    }
    let base = seq * payload.len() as u64;
    match pattern.verify(base, payload) {
        None => Ok(seq),
        Some(m) => Err(Corruption::Payload {
            seq,
            at: HEADER + (m.offset - base) as usize,
            expected: m.expected,
            got: m.got,
        }),
    }
}

// ---- finding the server -------------------------------------------------

/// The first address of `host` whose UDP port echoes a probe datagram, so a
/// dead target is one clear error (the TCP bench connects once instead).
pub fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, String> {
    let addrs: Vec<_> = (crate::cli::unbracket(host), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host '{host}': {e}"))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match probe(addr, timeout) {
            Ok(()) => return Ok(addr),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| format!("host '{host}' resolves to no address")))
}

fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    const PROBE: &[u8] = b"pollmux bench probe";
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let unreachable = |e: io::Error| format!("cannot reach {addr} over UDP: {e}");
    let socket = UdpSocket::bind(local).map_err(unreachable)?;
    socket.connect(addr).map_err(unreachable)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    // The probe itself may be lost: send it again now and then.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no UDP echo from {addr} within {:.1} s (is a UDP echo server there?)",
                timeout.as_secs_f64()
            ));
        }
        socket.send(PROBE).map_err(unreachable)?;
        socket
            .set_read_timeout(Some(left.min(PROBE_RESEND)))
            .map_err(unreachable)?;
        match socket.recv(&mut buf) {
            // Whatever comes back shows a server; the run checks the echoes.
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(unreachable(e)),
        }
    }
}

/// A nonblocking UDP socket connected to `addr`, with receive room for a
/// connection's datagrams in flight where the system allows it.
fn open_socket(addr: SocketAddr, room: usize) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    if socket.recv_buffer_size()? < room {
        // The system caps it (Linux: net.core.rmem_max); less is still fine.
        let _ = socket.set_recv_buffer_size(room);
    }
    socket.connect(&SockAddr::from(addr))?;
    Ok(socket)
}

// ---- one thread ---------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// New datagrams may start.
    Open,
    /// No new datagram starts; waiting for the ones in flight.
    Finishing,
    /// Closed (or never opened).
    Done,
}

/// A datagram sent and not yet known lost: when its latency counts from,
/// and whether an echo answered it.
struct Flight {
    start: u64,
    answered: bool,
}

struct Conn {
    source: Option<Registered>,
    id: u64,
    /// Position among the thread's connections (open-loop schedule).
    slot: u64,
    pattern: Pattern,
    phase: Phase,
    armed: Interest,
    /// Datagrams started but not sent yet (just started, or the socket
    /// would block).
    queued: u64,
    /// The next sequence number, which is also the count sent so far.
    next_seq: u64,
    /// Datagrams `next_seq - window.len() .. next_seq`: from the oldest
    /// unanswered one on, answered or not.
    window: VecDeque<Flight>,
    /// Unanswered datagrams in the window.
    in_flight: u64,
    /// Highest sequence number answered so far.
    highest: Option<u64>,
    /// Sequence numbers lately counted lost, oldest first.
    recent_lost: VecDeque<u64>,
    /// Datagrams started after the warmup, and this connection's share of
    /// `--messages`.
    started_measured: u64,
    quota: u64,
    /// Datagrams answered by a sound echo (what a fault's report counts as
    /// verified on this connection before it).
    answered: u64,
}

impl Conn {
    fn first_seq(&self) -> u64 {
        self.next_seq - self.window.len() as u64
    }

    /// Read always (echoes, and the port-unreachable errors); write only
    /// while a send is waiting for room.
    fn interest(&self) -> Interest {
        Interest {
            read: self.phase != Phase::Done,
            write: self.phase != Phase::Done && self.queued > 0,
        }
    }

    fn finished(&self) -> bool {
        self.phase == Phase::Finishing && self.queued == 0 && self.in_flight == 0
    }
}

struct Worker {
    run: Run,
    mode: PollMode,
    conns: Vec<Conn>,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    udp: UdpCounts,
    /// Connections not done yet.
    left: usize,
    touched: Vec<usize>,
}

/// One thread's whole life, as `driver::run_thread` for TCP: open the
/// sockets, report `Connected`, wait for `go`, run the load until every
/// datagram is answered or lost, report `MeasureDone`.
pub fn run_thread(
    index: usize,
    plan: Arc<Plan>,
    share: Share,
    live: Arc<Live>,
    notes: Sender<Note>,
    go: Receiver<()>,
) -> io::Result<ThreadResult> {
    let setup = Worker::new(index, plan, share, live);
    run::run_thread(index, setup, &notes, &go)
}

impl Worker {
    fn new(index: usize, plan: Arc<Plan>, share: Share, live: Arc<Live>) -> io::Result<Worker> {
        let size = plan.size as usize;
        // Losses are looked for every tick, or more often with a short timeout.
        let timeout = plan.stall_timeout.as_nanos() as u64;
        let tick = TICK_NS.min(timeout / 2).max(1_000_000);
        let run = Run::new(index, plan, live, tick, share.active_len())?;
        let mode = poll_mode(&run.poller, run.plan.poll_mode)?;
        let mut worker = Worker {
            run,
            mode,
            conns: Vec::with_capacity(share.active_len()),
            // One more byte than any datagram, so a longer echo shows.
            rbuf: vec![0; crate::cli::MAX_DATAGRAM + 1],
            wbuf: vec![0; size],
            udp: UdpCounts::default(),
            left: 0,
            touched: Vec::new(),
        };
        let room = (size * worker.run.plan.depth * 2).clamp(256 << 10, 4 << 20);
        for (slot, id) in share.active.enumerate() {
            let key = worker.conns.len();
            let edge = mode == PollMode::Edge;
            let interest = Interest {
                read: true,
                write: edge,
            };
            let opened = open_socket(worker.run.plan.addr, room).and_then(|socket| {
                Registered::new(&worker.run.poller, socket, interest.event(key), mode)
            });
            let mut conn = Conn {
                source: None,
                id,
                slot: slot as u64,
                pattern: Pattern::new(id),
                phase: Phase::Done,
                armed: interest,
                queued: 0,
                next_seq: 0,
                window: VecDeque::new(),
                in_flight: 0,
                highest: None,
                recent_lost: VecDeque::new(),
                started_measured: 0,
                quota: worker.run.plan.quota(id),
                answered: 0,
            };
            match opened {
                Ok(source) => {
                    conn.source = Some(source);
                    conn.phase = Phase::Open;
                    worker.run.counts.connected += 1;
                    worker.left += 1;
                }
                Err(err) => worker.run.fault(Class::Connect, || {
                    format!("connection {id}: connect failed: {err}")
                }),
            }
            worker.conns.push(conn);
        }
        worker.publish();
        Ok(worker)
    }
}

/// The load phase, as `run::run_thread` drives it.
impl Load for Worker {
    fn run(&self) -> &Run {
        &self.run
    }

    fn run_mut(&mut self) -> &mut Run {
        &mut self.run
    }

    fn loaded(&self) -> bool {
        self.left > 0
    }

    fn start(&mut self, now: u64) {
        for key in 0..self.conns.len() {
            if self.run.schedule.is_none() {
                for _ in 0..self.run.plan.depth {
                    if !self.try_start(key, now) {
                        break;
                    }
                }
            }
            self.after_io(key);
        }
    }

    fn on_event(&mut self, key: usize, readable: bool, _writable: bool) {
        let mode = self.mode;
        let Some(conn) = self.conns.get_mut(key) else {
            return; // not ours (the poller's notify key)
        };
        if conn.phase == Phase::Done {
            return;
        }
        if mode == PollMode::Oneshot {
            conn.armed = Interest::NONE;
        }
        if readable {
            if let Err((class, what)) = self.receive(key) {
                return self.fail(key, class, what);
            }
        }
        // Writable or not, whatever is queued goes now if it can.
        self.after_io(key);
    }

    fn on_tick(&mut self, now: u64) {
        self.check_losses(now);
        self.publish();
    }

    fn issue_due(&mut self, now: u64) {
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        while let Some((key, measured)) = self.run.next_due(now) {
            let conn = &mut self.conns[key];
            if conn.phase != Phase::Open {
                continue;
            }
            if measured && self.run.quota_out(conn.started_measured, conn.quota) {
                conn.phase = Phase::Finishing;
            } else if conn.queued + conn.in_flight >= MAX_BEHIND {
                self.run.counts.missed_sends += 1;
                continue;
            } else {
                conn.queued += 1;
                if measured {
                    conn.started_measured += 1;
                }
            }
            if touched.last() != Some(&key) {
                touched.push(key);
            }
        }
        for &key in &touched {
            self.after_io(key);
        }
        self.touched = touched;
    }

    fn stop_starting(&mut self) {
        for key in 0..self.conns.len() {
            if self.conns[key].phase == Phase::Open {
                self.conns[key].phase = Phase::Finishing;
                self.after_io(key);
            }
        }
    }

    fn close_out(self) -> io::Result<(Run, UdpCounts)> {
        self.publish();
        Ok((self.run, self.udp))
    }
}

impl Worker {
    /// Closed loop: start one more datagram on `key` if the run allows it,
    /// else move the connection on to finishing. Returns whether it started.
    fn try_start(&mut self, key: usize, now: u64) -> bool {
        let conn = &mut self.conns[key];
        if conn.phase != Phase::Open {
            return false;
        }
        let Some(measured) = self.run.may_start(now, conn.started_measured, conn.quota) else {
            conn.phase = Phase::Finishing;
            return false;
        };
        conn.queued += 1;
        if measured {
            conn.started_measured += 1;
        }
        true
    }

    /// Read the echoes waiting on `key`'s socket and account for each.
    fn receive(&mut self, key: usize) -> Result<(), (Class, String)> {
        for _ in 0..EVENT_DATAGRAMS {
            let conn = &self.conns[key];
            let Some(source) = &conn.source else {
                return Ok(());
            };
            let n = match source.socket().read(&mut self.rbuf) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(socket_error(conn, err)),
            };
            let now = self.run.now();
            self.take_echo(key, n, now);
        }
        if self.mode == PollMode::Edge {
            self.run.resume.push(key);
        }
        Ok(())
    }

    /// Check the echo in `rbuf[..n]` and count it.
    fn take_echo(&mut self, key: usize, n: usize, now: u64) {
        let size = self.run.plan.size as usize;
        let conn = &mut self.conns[key];
        let seq = match inspect(conn.id, &conn.pattern, conn.next_seq, size, &self.rbuf[..n]) {
            Ok(seq) => seq,
            Err(corruption) => {
                // Its datagram stays unanswered: lost unless a sound copy comes.
                let line = format!("connection {}, {corruption}", conn.id);
                self.udp.corrupted += 1;
                return self.run.fault(Class::BadEcho, || line);
            }
        };
        let first = conn.first_seq();
        if seq < first {
            match conn.recent_lost.iter().position(|&s| s == seq) {
                Some(i) => {
                    conn.recent_lost.remove(i);
                    self.udp.late += 1;
                }
                None => self.udp.duplicated += 1,
            }
            return;
        }
        let flight = &mut conn.window[(seq - first) as usize];
        if flight.answered {
            self.udp.duplicated += 1;
            return;
        }
        flight.answered = true;
        let start = flight.start;
        conn.in_flight -= 1;
        if conn.highest.is_some_and(|h| h > seq) {
            self.udp.reordered += 1;
        }
        conn.highest = conn.highest.max(Some(seq));
        while conn.window.front().is_some_and(|f| f.answered) {
            conn.window.pop_front();
        }
        conn.answered += 1;
        self.udp.received += 1;
        self.run.complete(start, now, size as u64);
        if self.run.schedule.is_none() {
            self.try_start(key, now);
        }
    }

    /// Send the datagrams queued on `key` until none is left or the socket
    /// would block.
    fn flush(&mut self, key: usize) -> Result<(), (Class, String)> {
        let now = self.run.now();
        let conn = &mut self.conns[key];
        let Some(source) = &conn.source else {
            return Ok(());
        };
        while conn.queued > 0 {
            let seq = conn.next_seq;
            compose(conn.id, &conn.pattern, seq, &mut self.wbuf);
            match source.socket().send(&self.wbuf) {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(socket_error(conn, err)),
            }
            // Open loop: latency counts from the datagram's slot in the
            // schedule, so a lagging bench does not hide delay.
            let start = self.run.scheduled(conn.slot, seq).unwrap_or(now);
            conn.window.push_back(Flight {
                start,
                answered: false,
            });
            conn.next_seq += 1;
            conn.queued -= 1;
            conn.in_flight += 1;
            self.udp.sent += 1;
        }
        Ok(())
    }

    /// After I/O: send what is queued, close the connection once it is
    /// finished, else re-arm it with the interest its state implies.
    fn after_io(&mut self, key: usize) {
        if self.conns[key].phase == Phase::Done {
            return;
        }
        if let Err((class, what)) = self.flush(key) {
            return self.fail(key, class, what);
        }
        if self.conns[key].finished() {
            return self.close(key);
        }
        if self.mode == PollMode::Edge {
            return; // registered for reading and writing once, for good
        }
        let conn = &mut self.conns[key];
        let wanted = conn.interest();
        if wanted == conn.armed {
            return;
        }
        let Some(source) = &conn.source else {
            return;
        };
        match source.rearm(wanted.event(key)) {
            Ok(()) => conn.armed = wanted,
            Err(err) => {
                let what = format!("connection {}: {err}", conn.id);
                self.fail(key, Class::Other, what);
            }
        }
    }

    /// Every datagram unanswered after `--stall-timeout` is lost; in the closed
    /// loop each is replaced by a new one. Checked every tick, oldest first
    /// (datagrams leave in the order their clocks start).
    fn check_losses(&mut self, now: u64) {
        let timeout = self.run.plan.stall_timeout.as_nanos() as u64;
        for key in 0..self.conns.len() {
            let conn = &mut self.conns[key];
            if conn.phase == Phase::Done {
                continue;
            }
            let mut lost = 0;
            while let Some(front) = conn.window.front() {
                if !front.answered && now.saturating_sub(front.start) <= timeout {
                    break;
                }
                let seq = conn.first_seq();
                if !front.answered {
                    lost += 1;
                    conn.in_flight -= 1;
                    if conn.recent_lost.len() == RECENT_LOST {
                        conn.recent_lost.pop_front();
                    }
                    conn.recent_lost.push_back(seq);
                }
                conn.window.pop_front();
            }
            if lost == 0 {
                continue;
            }
            self.udp.lost += lost;
            if self.run.schedule.is_none() {
                for _ in 0..lost {
                    self.try_start(key, now);
                }
            }
            self.after_io(key);
        }
    }

    /// Count a fault and end its connection; the others go on. Like TCP's,
    /// it counts as ended early, with what was verified on it before.
    fn fail(&mut self, key: usize, class: Class, what: String) {
        let conn = &self.conns[key];
        if conn.phase == Phase::Done {
            return;
        }
        self.run.counts.ended_early += 1;
        self.run.counts.messages_before_fault += conn.answered;
        self.run.counts.bytes_before_fault += conn.answered * self.run.plan.size;
        self.run.fault(class, || what);
        // Whatever it still had in flight will never come back.
        self.udp.lost += conn.in_flight;
        self.close(key);
    }

    /// Close a connection (its `Registered` owner deletes it from the poller).
    fn close(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        conn.phase = Phase::Done;
        conn.source = None;
        conn.armed = Interest::NONE;
        conn.in_flight = 0;
        conn.queued = 0;
        self.left -= 1;
    }

    /// Share counters with the progress line.
    fn publish(&self) {
        let up = self.conns.iter().filter(|c| c.phase != Phase::Done).count();
        self.run.publish(up);
    }
}

/// A send or receive error on a connected UDP socket. "Refused" (or a reset
/// on Windows) is the ICMP answer of a port nobody listens on.
fn socket_error(conn: &Conn, err: io::Error) -> (Class, String) {
    let id = conn.id;
    match err.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => (
            Class::Other,
            format!(
                "connection {id}: the server's port is closed, {} datagrams after the start ({err})",
                conn.next_seq
            ),
        ),
        _ => (Class::Other, format!("connection {id}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(conn: u64, seq: u64, size: usize) -> Vec<u8> {
        let mut d = vec![0; size];
        compose(conn, &Pattern::new(conn), seq, &mut d);
        d
    }

    #[test]
    fn a_datagram_checks_out_as_itself() {
        for size in [HEADER, HEADER + 1, 100, 1024, 65_507] {
            let d = datagram(3, 41, size);
            assert_eq!(inspect(3, &Pattern::new(3), 42, size, &d), Ok(41), "{size}");
        }
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let p = Pattern::new(3);
        let good = datagram(3, 5, 64);
        assert_eq!(
            inspect(3, &p, 10, 64, &good[..63]),
            Err(Corruption::Length { got: 63, want: 64 })
        );
        assert_eq!(
            inspect(4, &Pattern::new(4), 10, 64, &good),
            Err(Corruption::Header),
            "another connection's datagram"
        );
        for byte in 0..HEADER {
            let mut d = good.clone();
            d[byte] ^= 0x10;
            assert!(
                inspect(3, &p, 1 << 40, 64, &d).is_err(),
                "header byte {byte}"
            );
        }
        assert_eq!(
            inspect(3, &p, 5, 64, &good),
            Err(Corruption::Unsent { seq: 5 })
        );
        let mut d = good.clone();
        d[40] ^= 1;
        assert_eq!(
            inspect(3, &p, 10, 64, &d),
            Err(Corruption::Payload {
                seq: 5,
                at: 40,
                expected: good[40],
                got: good[40] ^ 1
            })
        );
    }

    #[test]
    fn payloads_differ_between_sequences_and_connections() {
        let a = datagram(1, 1, 200);
        assert_ne!(a[HEADER..], datagram(1, 2, 200)[HEADER..]);
        assert_ne!(a[HEADER..], datagram(2, 1, 200)[HEADER..]);
    }

    #[test]
    fn loss_is_judged_against_max_loss() {
        let mut s = UdpSummary {
            counts: UdpCounts {
                sent: 10_000,
                lost: 1,
                ..UdpCounts::default()
            },
            max_loss: 0.0,
        };
        assert!(!s.loss_ok());
        assert!(s.json().contains("\"loss\":0.0001,"), "{}", s.json());
        s.max_loss = 0.0001;
        assert!(s.loss_ok());
        s.counts = UdpCounts::default();
        assert!(s.loss_ok(), "nothing sent, nothing lost");
        assert!(s.json().contains("\"loss\":0.0,"), "{}", s.json());
    }
}
