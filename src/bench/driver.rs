//! One bench thread: its own `Poller`, its share of the connections and the
//! readiness loop that drives them — the client-side mirror of the server's
//! loop. Each ready socket is read (every byte checked against the pattern),
//! completed messages start new ones, and whatever may be sent is sent at
//! once.
//!
//! Registration (`--poll-mode`): by default level-triggered where the
//! backend has it, with interest following state as in the server, so
//! steady ping-pong needs no `modify` at all; oneshot as the last resort.
//! `edge` registers each socket once for reading and writing and never
//! modifies it (no re-poll of delivered sockets at the next wait either).
//! Edge mode needs every read to go on until the socket is drained (a short
//! read or WouldBlock) and every send until the kernel pushes back; a
//! connection that stops early for fairness goes on a resume list the loop
//! serves before it waits, and one that waits for owed bytes is read again
//! every tick (an EOF that came with the last bytes raises no new edge).
//! Measured on the 50-connection profile the two modes cost the same, so
//! the default is the simpler one.
//!
//! Time inside the thread is nanoseconds since the thread's epoch, read once
//! per `recv`: a ping-pong message costs one clock read.

use std::io::{self, Read};
use std::net::Shutdown;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use polling::{Events, PollMode, Poller};

use super::conn::{start_connect, Conn, Interest, Kind, Phase, Registered};
use super::fault::{Class, Failure, Fault};
use super::progress::Live;
use super::run::{self, Load, Run, MAX_BEHIND, TICK_NS};
use super::udp::UdpCounts;
use super::{BenchPollMode, Plan, Share};

/// Bytes of the echo checked on each idle connection before and after the run.
pub const PROBE: u64 = 16;
/// Connects in flight at once per thread, so a 10,000-connection start does
/// not overrun the server's accept backlog and wait for SYN retransmits.
const MAX_CONNECTING: usize = 256;
/// Bytes one event may read or send before the loop moves on (fairness).
const EVENT_BUDGET: usize = 1 << 20;
/// Latency histogram range: 1 ns .. 1 hour, 3 significant digits. Longer
/// round trips are recorded as 1 hour (clamped, not dropped), so a server
/// that delays its echoes still shows in every percentile.
const HIST_MAX_NS: u64 = 3_600_000_000_000;

/// What a thread tells the main thread while it runs (with its index).
#[derive(Debug, Clone, Copy)]
pub enum Note {
    /// Connect phase over: every connection is up or has failed.
    Connected(usize),
    /// Measured phase over.
    MeasureDone(usize),
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub connected: u64,
    pub connect_failures: u64,
    pub resets: u64,
    pub early_eofs: u64,
    pub stalls: u64,
    /// Wrong or extra bytes, or no EOF after a half-close.
    pub bad_echoes: u64,
    pub errors: u64,
    pub idle_verified: u64,
    /// Open loop: scheduled sends skipped because the connection was
    /// already `MAX_BEHIND` messages behind (the target could not keep up).
    pub missed_sends: u64,
    /// Connections a fault ended after they came up, and what was verified
    /// on them before it.
    pub ended_early: u64,
    pub messages_before_fault: u64,
    pub bytes_before_fault: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.connected += o.connected;
        for class in Class::ALL {
            *self.of_mut(class) += o.of(class);
        }
        self.idle_verified += o.idle_verified;
        self.missed_sends += o.missed_sends;
        self.ended_early += o.ended_early;
        self.messages_before_fault += o.messages_before_fault;
        self.bytes_before_fault += o.bytes_before_fault;
    }

    /// Faults of one class.
    pub fn of(&self, class: Class) -> u64 {
        match class {
            Class::Connect => self.connect_failures,
            Class::Reset => self.resets,
            Class::EarlyEof => self.early_eofs,
            Class::Stall => self.stalls,
            Class::BadEcho => self.bad_echoes,
            Class::Other => self.errors,
        }
    }

    pub fn of_mut(&mut self, class: Class) -> &mut u64 {
        match class {
            Class::Connect => &mut self.connect_failures,
            Class::Reset => &mut self.resets,
            Class::EarlyEof => &mut self.early_eofs,
            Class::Stall => &mut self.stalls,
            Class::BadEcho => &mut self.bad_echoes,
            Class::Other => &mut self.errors,
        }
    }

    pub fn faults(&self) -> u64 {
        Class::ALL.iter().map(|&class| self.of(class)).sum()
    }

    /// Echoes that were not what was sent, early EOFs included: the
    /// meaning `verification_failures` has had in the JSON from the start.
    pub fn verification_failures(&self) -> u64 {
        self.bad_echoes + self.early_eofs
    }
}

/// The latency histogram every thread records into (same bounds, so they add).
pub fn latency_histogram() -> io::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3)
        .map_err(|e| io::Error::other(format!("latency histogram: {e}")))
}

/// Record one round trip of `ns`: below the range counts as 1 ns, above it
/// as the range's top, so no message goes missing from the percentiles.
pub(super) fn record_latency(hist: &mut Histogram<u64>, ns: u64) {
    hist.saturating_record(ns.max(1));
}

/// What a thread hands back when it is done.
pub struct ThreadResult {
    pub hist: Histogram<u64>,
    pub messages: u64,
    pub bytes: u64,
    pub warmup_end: Instant,
    pub measure_end: Instant,
    /// This thread's CPU time during the measured phase (Linux).
    pub cpu: Option<Duration>,
    pub counts: Counts,
    /// The first few faults of each class on this thread.
    pub failures: Vec<Failure>,
    /// `--udp`: the datagram counters (zero for TCP).
    pub udp: UdpCounts,
}

struct Worker {
    run: Run,
    mode: PollMode,
    conns: Vec<Conn>,
    /// Keys of the active connections, in schedule order.
    active: Vec<usize>,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// Connections not through setup yet.
    unsettled: usize,
    /// Connects started and not finished.
    connecting: usize,
    active_left: usize,
    idle_left: usize,
    touched: Vec<usize>,
}

/// One thread's whole life: connect, report `Connected`, wait for `go`, run
/// the load, report `MeasureDone`, echo on the idle connections once more,
/// close everything.
pub fn run_thread(
    index: usize,
    plan: Arc<Plan>,
    share: Share,
    live: Arc<Live>,
    notes: Sender<Note>,
    go: Receiver<()>,
) -> io::Result<ThreadResult> {
    let setup = Worker::new(index, plan, share, live).and_then(|mut w| w.connect_all().map(|()| w));
    run::run_thread(index, setup, &notes, &go)
}

impl Worker {
    fn new(index: usize, plan: Arc<Plan>, share: Share, live: Arc<Live>) -> io::Result<Worker> {
        let mut conns = Vec::with_capacity(share.total());
        let mut active = Vec::with_capacity(share.active_len());
        for (slot, id) in share.active.clone().enumerate() {
            active.push(conns.len());
            conns.push(Conn::new(
                id,
                Kind::Active,
                plan.depth,
                slot as u64,
                plan.quota(id),
            ));
        }
        for id in share.idle.clone() {
            conns.push(Conn::new(id, Kind::Idle, 0, 0, 0));
        }
        // Reads take a whole message where they can (64 KiB .. 256 KiB);
        // sends are generated in 64 KiB slices.
        let rsize = usize::try_from(plan.size)
            .unwrap_or(usize::MAX)
            .clamp(64 << 10, 256 << 10);
        let run = Run::new(index, plan, live, TICK_NS, active.len())?;
        Ok(Worker {
            mode: poll_mode(&run.poller, run.plan.poll_mode)?,
            run,
            unsettled: conns.len(),
            active_left: active.len(),
            idle_left: share.total() - share.active_len(),
            conns,
            active,
            rbuf: vec![0; rsize],
            wbuf: vec![0; 64 << 10],
            connecting: 0,
            touched: Vec::new(),
        })
    }

    // ---- connect phase ---------------------------------------------------

    fn connect_all(&mut self) -> io::Result<()> {
        let mut events = Events::new();
        let mut next = 0;
        let mut next_tick = self.run.now() + TICK_NS;
        while self.unsettled > 0 {
            while self.connecting < MAX_CONNECTING && next < self.conns.len() {
                self.open(next);
                next += 1;
            }
            run::turn(self, &mut events, u64::MAX, &mut next_tick)?;
        }
        self.publish();
        Ok(())
    }

    fn open(&mut self, key: usize) {
        let now = self.run.now();
        self.conns[key].last_progress = now;
        let edge = self.mode == PollMode::Edge;
        let result = start_connect(self.run.plan.addr).and_then(|(socket, done)| {
            // Edge mode registers for both once, for good.
            let interest = Interest {
                read: done || edge,
                write: !done || edge,
            };
            Registered::new(&self.run.poller, socket, interest.event(key), self.mode)
                .map(|w| (w, done, interest))
        });
        match result {
            Ok((watched, done, interest)) => {
                let conn = &mut self.conns[key];
                conn.source = Some(watched);
                conn.armed = interest;
                self.connecting += 1;
                if done {
                    self.connected(key);
                    self.flush_and_settle(key);
                }
            }
            Err(err) => self.fail(key, Fault::Connect(err)),
        }
    }

    /// A nonblocking connect reported writable: find out how it ended.
    fn finish_connect(&mut self, key: usize) {
        let Some(source) = &self.conns[key].source else {
            return;
        };
        let socket = source.socket();
        match socket.take_error() {
            Ok(Some(err)) | Err(err) => return self.fail(key, Fault::Connect(err)),
            Ok(None) => {}
        }
        // Writable without an error may still be early on some backends:
        // connected once the peer's address is known.
        match socket.peer_addr() {
            Ok(_) => self.connected(key),
            Err(err) if err.kind() == io::ErrorKind::NotConnected => {}
            Err(err) => self.fail(key, Fault::Connect(err)),
        }
    }

    fn connected(&mut self, key: usize) {
        let now = self.run.now();
        self.connecting -= 1;
        self.run.counts.connected += 1;
        let conn = &mut self.conns[key];
        conn.phase = Phase::Open;
        conn.last_progress = now;
        match conn.kind {
            Kind::Active => self.settle_setup(key),
            // Settled once this probe comes back.
            Kind::Idle => conn.limit = PROBE,
        }
    }

    fn settle_setup(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if !conn.settled {
            conn.settled = true;
            self.unsettled -= 1;
        }
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
        self.active_left > 0
    }

    fn start(&mut self, now: u64) {
        for i in 0..self.active.len() {
            let key = self.active[i];
            if self.run.schedule.is_none() {
                for _ in 0..self.run.plan.depth {
                    if !self.try_start(key, now) {
                        break;
                    }
                }
            }
            self.flush_and_settle(key);
        }
    }

    fn on_event(&mut self, key: usize, readable: bool, writable: bool) {
        let mode = self.mode;
        let Some(conn) = self.conns.get_mut(key) else {
            return; // not ours (the poller's notify key)
        };
        if conn.is_closed() {
            return;
        }
        if mode == PollMode::Oneshot {
            conn.armed = Interest::NONE;
        }
        if conn.phase == Phase::Connecting {
            self.finish_connect(key);
            if self.conns[key].phase == Phase::Open {
                // Send at once what may already go (an idle probe).
                self.flush_and_settle(key);
            } else {
                self.rearm(key);
            }
            return;
        }
        if readable {
            if let Err(fault) = self.receive(key) {
                return self.fail(key, fault);
            }
        }
        let conn = &self.conns[key];
        if conn.is_closed() {
            return;
        }
        if writable || conn.sent < conn.limit {
            if let Err(fault) = self.flush(key) {
                return self.fail(key, fault);
            }
        }
        self.after_io(key);
    }

    fn on_tick(&mut self, now: u64) {
        self.check_timeouts(now);
        self.publish();
    }

    fn issue_due(&mut self, now: u64) {
        let size = self.run.plan.size;
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        while let Some((slot, measured)) = self.run.next_due(now) {
            let key = self.active[slot];
            let conn = &mut self.conns[key];
            if conn.phase != Phase::Open {
                continue;
            }
            if measured && self.run.quota_out(conn.started_measured, conn.quota) {
                // This connection's share of `--messages` is out.
                conn.phase = Phase::Finishing;
            } else if conn.limit - conn.recvd >= MAX_BEHIND * size {
                self.run.counts.missed_sends += 1;
                continue;
            } else {
                if conn.sent == conn.limit && conn.owed() == 0 {
                    conn.last_progress = now; // the stall clock starts here
                }
                conn.started += 1;
                conn.limit += size;
                if measured {
                    conn.started_measured += 1;
                }
            }
            if touched.last() != Some(&key) {
                touched.push(key);
            }
        }
        for &key in &touched {
            self.flush_and_settle(key);
        }
        self.touched = touched;
    }

    fn stop_starting(&mut self) {
        for i in 0..self.active.len() {
            let key = self.active[i];
            if self.conns[key].phase == Phase::Open {
                self.conns[key].phase = Phase::Finishing;
                self.after_io(key);
            }
        }
    }

    /// The second echo on the idle connections, then the books.
    fn close_out(mut self) -> io::Result<(Run, UdpCounts)> {
        self.finish_idle()?;
        self.publish();
        Ok((self.run, UdpCounts::default()))
    }
}

impl Worker {
    // ---- load phase ------------------------------------------------------

    /// Closed loop: start one more message on `key` if the run allows it,
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
        if conn.sent == conn.limit && conn.owed() == 0 {
            conn.last_progress = now; // the stall clock starts with this message
        }
        conn.starts.push_back(now);
        conn.started += 1;
        if measured {
            conn.started_measured += 1;
        }
        conn.limit += self.run.plan.size;
        true
    }

    // ---- one connection's I/O ------------------------------------------

    fn flush_and_settle(&mut self, key: usize) {
        if self.conns[key].is_closed() {
            return;
        }
        if let Err(fault) = self.flush(key) {
            return self.fail(key, fault);
        }
        self.after_io(key);
    }

    /// Read what the server echoed, check it, complete messages and start
    /// the next ones.
    fn receive(&mut self, key: usize) -> Result<(), Fault> {
        let mut budget = EVENT_BUDGET;
        loop {
            let conn = &self.conns[key];
            let Some(source) = &conn.source else {
                return Ok(());
            };
            let want = self.rbuf.len().min(budget);
            let n = match source.socket().read(&mut self.rbuf[..want]) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(Fault::io(conn.recvd, conn.owed(), err)),
            };
            if n == 0 {
                return self.on_eof(key);
            }
            let now = self.run.now();
            self.take_echo(key, n, now)?;
            budget -= n;
            // A short read drained the socket; whatever comes later raises
            // a new event (in every mode), which costs less than a read
            // that ends in WouldBlock. After a half-close with nothing more
            // owed, read on: the EOF may have come with the last bytes.
            if n < want {
                let conn = &self.conns[key];
                if conn.phase == Phase::HalfClosed && conn.owed() == 0 && !conn.is_closed() {
                    continue;
                }
                return Ok(());
            }
            if budget == 0 {
                if self.mode == PollMode::Edge {
                    self.run.resume.push(key);
                }
                return Ok(());
            }
        }
    }

    fn on_eof(&mut self, key: usize) -> Result<(), Fault> {
        let conn = &mut self.conns[key];
        if conn.phase == Phase::HalfClosed && conn.owed() == 0 {
            self.close(key, true);
            return Ok(());
        }
        Err(Fault::EarlyEof {
            offset: conn.recvd,
            expected: conn.pattern.byte(conn.recvd),
            owed: conn.owed(),
        })
    }

    /// Check `rbuf[..n]` against the pattern and account for it.
    fn take_echo(&mut self, key: usize, n: usize, now: u64) -> Result<(), Fault> {
        let conn = &mut self.conns[key];
        let ok = (n as u64).min(conn.owed()) as usize;
        if let Some(m) = conn.pattern.verify(conn.recvd, &self.rbuf[..ok]) {
            return Err(Fault::Mismatch {
                offset: m.offset,
                expected: m.expected,
                got: m.got,
            });
        }
        conn.recvd += ok as u64;
        conn.last_progress = now;
        if n > ok {
            return Err(Fault::Extra {
                offset: conn.recvd,
                got: self.rbuf[ok],
            });
        }
        match conn.kind {
            Kind::Idle => {
                if conn.recvd == PROBE {
                    self.settle_setup(key);
                }
            }
            Kind::Active => self.complete_messages(key, now),
        }
        Ok(())
    }

    /// Account for every message whose last byte is now back; in the closed
    /// loop each completion starts the next message.
    fn complete_messages(&mut self, key: usize, now: u64) {
        let size = self.run.plan.size;
        loop {
            let conn = &mut self.conns[key];
            if conn.recvd < (conn.completed + 1) * size {
                return;
            }
            let j = conn.completed;
            conn.completed += 1;
            let start = match self.run.scheduled(conn.slot, j) {
                Some(due) => due,
                // Echoes come back in order: the oldest start is this one's.
                None => conn.starts.pop_front().unwrap_or(now),
            };
            self.run.complete(start, now, size);
            if self.run.schedule.is_none() {
                self.try_start(key, now);
            }
        }
    }

    /// Send what the connection may send, generated from the pattern.
    fn flush(&mut self, key: usize) -> Result<(), Fault> {
        let conn = &mut self.conns[key];
        let Some(source) = &conn.source else {
            return Ok(());
        };
        let mut budget = EVENT_BUDGET as u64;
        while conn.sent < conn.limit && budget > 0 {
            let len = (conn.limit - conn.sent)
                .min(self.wbuf.len() as u64)
                .min(budget) as usize;
            let chunk = &mut self.wbuf[..len];
            conn.pattern.fill(conn.sent, chunk);
            match source.socket().send(chunk) {
                Ok(n) => {
                    conn.sent += n as u64;
                    budget -= n as u64;
                    if n < len {
                        break; // the kernel's buffer is full
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(Fault::io(conn.recvd, conn.owed(), err)),
            }
        }
        if budget == 0 && conn.sent < conn.limit && self.mode == PollMode::Edge {
            // Stopped for fairness, not by the kernel: no edge will come.
            self.run.resume.push(key);
        }
        Ok(())
    }

    /// After I/O: half-close or close the connection once it is done, and
    /// re-arm it with the interest its state now implies.
    fn after_io(&mut self, key: usize) {
        let half_close = self.run.plan.half_close;
        let conn = &mut self.conns[key];
        if conn.is_closed() {
            return;
        }
        if conn.phase == Phase::Finishing && conn.sent == conn.limit {
            if half_close {
                // Everything is out: FIN now, then expect the rest and EOF.
                let shut = match &conn.source {
                    Some(source) => source.socket().shutdown(Shutdown::Write),
                    None => Ok(()),
                };
                if let Err(err) = shut {
                    let fault = Fault::io(conn.recvd, conn.owed(), err);
                    return self.fail(key, fault);
                }
                conn.phase = Phase::HalfClosed;
                if conn.owed() == 0 {
                    // The EOF timeout counts from the FIN.
                    conn.last_progress = self.run.now();
                }
            } else if conn.owed() == 0 {
                return self.close(key, true);
            }
        }
        self.rearm(key);
    }

    fn rearm(&mut self, key: usize) {
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
                let fault = Fault::io(conn.recvd, conn.owed(), err);
                self.fail(key, fault);
            }
        }
    }

    /// Connect and stall timeouts, checked every tick (O(connections)).
    fn check_timeouts(&mut self, now: u64) {
        let connect_ns = self.run.plan.connect_timeout.as_nanos() as u64;
        let stall_ns = self.run.plan.stall_timeout.as_nanos() as u64;
        let edge = self.mode == PollMode::Edge;
        for key in 0..self.conns.len() {
            let conn = &self.conns[key];
            let waited = now.saturating_sub(conn.last_progress);
            let waiting = conn.owed() > 0 || conn.phase == Phase::HalfClosed;
            if edge && waiting && waited > TICK_NS && !conn.is_closed() {
                // The EOF of a server that sent its last bytes and closed at
                // once rides on the same edge as the data, after which the
                // short read stopped: read again to see it.
                self.run.resume.push(key);
            }
            let fault = match conn.phase {
                Phase::Connecting if conn.source.is_some() && waited > connect_ns => {
                    Fault::Connect(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no answer within {:.1} s",
                            self.run.plan.connect_timeout.as_secs_f64()
                        ),
                    ))
                }
                Phase::HalfClosed if conn.owed() == 0 && waited > stall_ns => Fault::NoEof {
                    offset: conn.recvd,
                    waited: Duration::from_nanos(waited),
                },
                Phase::Open | Phase::Finishing | Phase::HalfClosed
                    if (conn.owed() > 0 || conn.sent < conn.limit) && waited > stall_ns =>
                {
                    Fault::Stalled {
                        offset: conn.recvd,
                        owed: conn.owed(),
                        waited: Duration::from_nanos(waited),
                    }
                }
                _ => continue,
            };
            self.fail(key, fault);
        }
    }

    /// Count a fault and end its connection; the others go on.
    fn fail(&mut self, key: usize, fault: Fault) {
        let conn = &self.conns[key];
        if conn.is_closed() {
            return;
        }
        if conn.phase != Phase::Connecting {
            self.run.counts.ended_early += 1;
            self.run.counts.messages_before_fault += conn.completed;
            self.run.counts.bytes_before_fault += conn.recvd;
        }
        self.run.fault(fault.class(), || fault.describe(conn.id));
        self.close(key, false);
    }

    /// Close a connection (its `Registered` owner deletes it from the poller)
    /// and do the book-keeping; `ok`: it finished cleanly.
    fn close(&mut self, key: usize, ok: bool) {
        let conn = &mut self.conns[key];
        if conn.phase == Phase::Connecting && conn.source.is_some() {
            self.connecting -= 1;
        }
        conn.phase = if ok { Phase::Done } else { Phase::Failed };
        conn.source = None;
        conn.armed = Interest::NONE;
        match conn.kind {
            Kind::Active => self.active_left -= 1,
            Kind::Idle => {
                self.idle_left -= 1;
                if ok {
                    self.run.counts.idle_verified += 1;
                }
            }
        }
        self.settle_setup(key);
    }

    // ---- after the load ------------------------------------------------

    /// The second echo on every idle connection, then close them all.
    fn finish_idle(&mut self) -> io::Result<()> {
        let now = self.run.now();
        for key in 0..self.conns.len() {
            let conn = &mut self.conns[key];
            if conn.kind == Kind::Idle && conn.phase == Phase::Open {
                conn.limit += PROBE;
                conn.phase = Phase::Finishing;
                conn.last_progress = now;
                self.flush_and_settle(key);
            }
        }
        let mut events = Events::new();
        let mut next_tick = self.run.now() + TICK_NS;
        // After Ctrl-C the report is wanted now: a grace, not --stall-timeout.
        let give_up = self.run.plan.interrupted.grace_end(now);
        while self.idle_left > 0 && give_up.is_none_or(|at| self.run.now() < at) {
            run::turn(
                self,
                &mut events,
                give_up.unwrap_or(u64::MAX),
                &mut next_tick,
            )?;
        }
        Ok(())
    }

    /// Share counters with the progress line.
    fn publish(&self) {
        let up = self
            .conns
            .iter()
            .filter(|c| !c.is_closed() && c.phase != Phase::Connecting)
            .count();
        self.run.publish(up);
    }
}

/// The `PollMode` that `--poll-mode` asks for, if this poller has it.
pub(super) fn poll_mode(poller: &Poller, wanted: BenchPollMode) -> io::Result<PollMode> {
    Ok(match wanted {
        BenchPollMode::Edge if poller.supports_edge() => PollMode::Edge,
        BenchPollMode::Edge => return Err(unsupported("edge")),
        BenchPollMode::Auto | BenchPollMode::Level if poller.supports_level() => PollMode::Level,
        BenchPollMode::Level => return Err(unsupported("level")),
        BenchPollMode::Auto | BenchPollMode::Oneshot => PollMode::Oneshot,
    })
}

fn unsupported(mode: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("--poll-mode {mode} is not supported by this platform's poller"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_echoes_are_recorded_and_clamped_not_dropped() {
        let mut hist = latency_histogram().expect("a latency histogram");
        let slow = 150_000_000; // 150 ms
        record_latency(&mut hist, slow);
        record_latency(&mut hist, 0);
        record_latency(&mut hist, 2 * HIST_MAX_NS);
        assert_eq!(hist.len(), 3, "every round trip counts");
        let near = |got: u64, want: u64| got.abs_diff(want) <= want / 500;
        assert!(near(hist.value_at_quantile(0.5), slow));
        assert!(near(hist.max(), HIST_MAX_NS), "clamped to 1 hour");
        assert!(hist.min() >= 1);
    }
}
