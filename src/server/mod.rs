//! The echo server: listeners, one `Poller`, the connection table and the
//! loop that hands each ready socket to the seed's three handlers
//! (`readable`, `writable`, `exceptional`). See DESIGN.md for the invariants
//! each part keeps.

mod connection;
mod datagram;
mod exceptional;
pub mod faults;
mod listener;
mod mode;
mod readable;
mod slab;
mod stats;
mod timers;
mod trace;
mod writable;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polling::{Event, Events, PollMode, Poller};
use socket2::Socket;

use crate::cli::{AtLimit, PollModeArg, ServeArgs};
use crate::registration::{Interest, Registered};
use crate::sys;
use connection::{Connection, Pending, Phase};
use exceptional::Reason;
use faults::{Ending, FaultConfig};
use slab::Slab;
use timers::{Deadlines, Timer};

pub use datagram::Counters as UdpCounters;
pub use mode::ServiceMode;
pub use stats::StatsFormat;

/// Bytes one event may move in each direction before the loop moves on to
/// other clients (invariant 6: fairness).
pub const EVENT_BUDGET: usize = 256 * 1024;

/// Everything `serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub backlog: i32,
    pub ipv6_only: bool,
    pub max_pending: usize,
    pub max_connections: usize,
    /// `None`: never close idle clients.
    pub idle_timeout: Option<Duration>,
    pub shutdown_timeout: Duration,
    pub read_buffer: usize,
    pub poll_mode: PollModeArg,
    /// What happens to clients beyond `max_connections`.
    pub at_limit: AtLimit,
    pub faults: FaultConfig,
    /// echo, discard or chargen (`--mode`).
    pub service: ServiceMode,
    /// Serve UDP beside TCP (`--udp`).
    pub udp: bool,
    /// Serve UDP alone (`--udp-only`).
    pub udp_only: bool,
    /// Bytes of UDP replies that may wait per socket.
    pub udp_queue: usize,
    pub udp_allow_low_ports: bool,
    /// `None`: no periodic stats lines.
    pub stats_interval: Option<Duration>,
    pub stats_format: StatsFormat,
    pub trace_events: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "localhost".into(),
            port: 8888,
            backlog: 1000,
            ipv6_only: false,
            max_pending: 256 * 1024,
            max_connections: 10_000,
            idle_timeout: None,
            shutdown_timeout: Duration::from_secs(5),
            read_buffer: 256 * 1024,
            poll_mode: PollModeArg::Auto,
            at_limit: AtLimit::Queue,
            faults: FaultConfig {
                ratio: 1.0,
                ..FaultConfig::default()
            },
            service: ServiceMode::Echo,
            udp: false,
            udp_only: false,
            udp_queue: 1 << 20,
            udp_allow_low_ports: false,
            stats_interval: None,
            stats_format: StatsFormat::Text,
            trace_events: false,
        }
    }
}

impl From<&ServeArgs> for Config {
    fn from(args: &ServeArgs) -> Self {
        Config {
            host: args.host.clone(),
            port: args.port,
            backlog: args.backlog,
            ipv6_only: args.ipv6_only,
            max_pending: args.max_pending.max(1),
            max_connections: args.max_connections as usize,
            idle_timeout: Some(args.idle_timeout).filter(|d| !d.is_zero()),
            shutdown_timeout: args.shutdown_timeout,
            read_buffer: args.read_buffer.max(1),
            poll_mode: args.poll_mode,
            at_limit: args.at_limit,
            faults: args.faults(),
            service: args.mode,
            udp: args.udp,
            udp_only: args.udp_only,
            udp_queue: args.udp_queue,
            udp_allow_low_ports: args.udp_allow_low_ports,
            stats_interval: Some(args.stats_interval).filter(|d| !d.is_zero()),
            stats_format: args.stats_format,
            trace_events: args.trace_events,
        }
    }
}

/// Counters kept by the loop; the shutdown summary prints them.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub accepted: u64,
    pub closed: u64,
    pub idle_closed: u64,
    pub failed: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Received and never echoed: read after a FIN or during a stall, or
    /// pending when a fault ended the echo.
    pub discarded: u64,
    pub peak_connections: usize,
    /// Accepted and closed at once at the connection cap (`--at-limit`).
    pub turned_away: u64,
    /// Connections chosen for the injected faults, and what ended them.
    pub faulted: u64,
    pub fault_closes: u64,
    pub fault_resets: u64,
    pub fault_stalls: u64,
    /// Times a connection's pending bytes reached `--max-pending`, so it
    /// was not read until it drained (backpressure).
    pub reads_paused: u64,
    /// The most bytes one connection held not yet echoed.
    pub peak_pending: usize,
    pub udp: UdpCounters,
}

/// `1 connection`, `2 connections`: a count and its noun.
fn count(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// What `run` returns when the server stops.
#[derive(Debug, Clone)]
pub struct Summary {
    pub stats: Stats,
    pub uptime: Duration,
    /// Connections still open at the shutdown deadline (closed unflushed),
    /// and the bytes received that they were still owed.
    pub cut_off: usize,
    pub owed: u64,
    pub service: ServiceMode,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "stopped after {:.1} s: {} served, {} bytes {} ({} received), \
             peak {} concurrent, {} closed idle, {} failed",
            self.uptime.as_secs_f64(),
            count(s.accepted, "connection"),
            s.bytes_out,
            if self.service.echoes() {
                "echoed"
            } else {
                "sent"
            },
            s.bytes_in,
            s.peak_connections,
            s.idle_closed,
            s.failed
        )?;
        if s.discarded > 0 {
            write!(
                f,
                ", {} bytes not echoed (after FIN, a stall or a fault's end)",
                s.discarded
            )?;
        }
        if s.turned_away > 0 {
            write!(f, ", {} turned away at the limit", s.turned_away)?;
        }
        if s.faulted > 0 {
            write!(
                f,
                ", {} with injected faults ({} closed, {} reset, {} stalled)",
                s.faulted, s.fault_closes, s.fault_resets, s.fault_stalls
            )?;
        }
        if self.cut_off > 0 {
            write!(
                f,
                ", {} cut off at the shutdown deadline ({} bytes owed)",
                self.cut_off, self.owed
            )?;
        }
        let u = &s.udp;
        if u.received > 0 || u.dropped() > 0 {
            write!(
                f,
                "; udp: {} datagrams in, {} out, {} dropped ({} guarded, {} truncated, \
                 {} over the queue, {} failed)",
                u.received,
                u.sent,
                u.dropped(),
                u.guarded,
                u.truncated,
                u.overflowed,
                u.failed
            )?;
            if u.fault_dropped + u.fault_duplicated > 0 {
                write!(
                    f,
                    ", {} dropped and {} duplicated on purpose",
                    u.fault_dropped, u.fault_duplicated
                )?;
            }
        }
        Ok(())
    }
}

/// Asks a running server to shut down gracefully; safe to call from a signal
/// handler thread or another thread, any number of times.
#[derive(Clone)]
pub struct ShutdownHandle {
    requested: Arc<AtomicBool>,
    poller: Arc<Poller>,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Err(err) = self.poller.notify() {
            log::error!("cannot wake the event loop for shutdown: {err}");
        }
    }
}

struct Listener {
    source: Registered,
    addr: SocketAddr,
    /// Whether the poller is watching it for new connections right now.
    armed: bool,
}

pub struct Server {
    poller: Arc<Poller>,
    mode: PollMode,
    listeners: Vec<Listener>,
    /// UDP sockets; their keys follow the listeners'.
    udp: datagram::Datagrams,
    /// Connection keys start after the listeners' and UDP sockets' keys.
    key_base: usize,
    conns: Slab<Connection>,
    deadlines: Deadlines,
    /// The one receive buffer the loop reuses for every read.
    buf: Vec<u8>,
    config: Config,
    stats: Stats,
    next_id: u64,
    accept_paused_until: Option<Instant>,
    /// Accept has been failing since then (descriptors exhausted), with
    /// this many pauses so far: one warning per episode, not per pause.
    accept_trouble: Option<(Instant, u32)>,
    shutdown: Arc<AtomicBool>,
    /// Set once shutdown began.
    draining: bool,
    /// When the flushing must end (`None`: a timeout too large to matter).
    drain_deadline: Option<Instant>,
    started: Instant,
    /// `--stats-interval`: when the next line is due.
    reporter: Option<stats::Reporter>,
    /// `--mode chargen`: the pattern it sends.
    chargen: Option<mode::Chargen>,
}

impl Server {
    /// Bind every listener and set up the poller; nothing is accepted until `run`.
    pub fn bind(config: &Config) -> io::Result<Server> {
        match sys::raise_fd_limit() {
            Ok(Some(limit)) => {
                log::debug!("open-files limit is {limit}");
                if limit < config.max_connections as u64 + 16 {
                    log::warn!(
                        "open-files limit {limit} is below --max-connections {}: \
                         accepting pauses when descriptors run out",
                        config.max_connections
                    );
                }
            }
            Ok(None) => {}
            Err(err) => log::warn!("cannot raise the open-files limit: {err}"),
        }

        let poller = Arc::new(Poller::new()?);
        let mode = choose_mode(&poller, config.poll_mode)?;
        let serve_udp = (config.udp || config.udp_only) && config.service.serves_udp();
        let (bound, udp_bound) = datagram::bind_all(config, serve_udp)?;
        let mut listeners = Vec::with_capacity(bound.len());
        for (key, b) in bound.into_iter().enumerate() {
            let source = Registered::new(&poller, b.socket, Event::readable(key), mode)?;
            listeners.push(Listener {
                source,
                addr: b.addr,
                armed: true,
            });
        }
        let udp = datagram::Datagrams::new(&poller, udp_bound, listeners.len(), mode, config)?;
        let limits = if config.udp_only {
            "UDP only".to_owned()
        } else {
            format!(
                "up to {}, {} bytes pending each",
                count(config.max_connections as u64, "client"),
                config.max_pending
            )
        };
        log::info!(
            "pollmux {} {} server: {} backend (edge-triggering {}), {} mode; {limits}",
            crate::VERSION,
            config.service.name(),
            sys::backend_name(),
            if poller.supports_edge() {
                "supported"
            } else {
                "unsupported"
            },
            mode_name(mode),
        );
        if config.faults.is_active() {
            log::info!(
                "injecting faults: {}",
                config.faults.describe(!config.udp_only, serve_udp)
            );
        }
        if !serve_udp {
            if config.udp || config.udp_only {
                log::warn!("chargen is served on TCP only: --udp ignored (over UDP it is a reflection amplifier)");
            }
        } else if config.service.echoes() {
            log::info!(
                "udp {}: replies queue up to {} bytes per socket; sources below port 1024 {}",
                config.service.name(),
                config.udp_queue,
                if config.udp_allow_low_ports {
                    "allowed (known reflecting services still refused)"
                } else {
                    "refused"
                }
            );
        }
        let now = Instant::now();
        Ok(Server {
            key_base: listeners.len() + udp.endpoints.len(),
            udp,
            reporter: config
                .stats_interval
                .and_then(|every| stats::Reporter::new(every, config.stats_format, now)),
            chargen: (config.service == ServiceMode::Chargen).then(mode::Chargen::new),
            poller,
            mode,
            listeners,
            conns: Slab::new(),
            deadlines: Deadlines::default(),
            buf: vec![0; config.read_buffer],
            config: config.clone(),
            stats: Stats::default(),
            next_id: 1,
            accept_paused_until: None,
            accept_trouble: None,
            shutdown: Arc::new(AtomicBool::new(false)),
            draining: false,
            drain_deadline: None,
            started: now,
        })
    }

    /// The addresses actually bound (the real port when 0 was asked).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    /// The UDP addresses bound (the same port as TCP).
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp.addrs()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            requested: Arc::clone(&self.shutdown),
            poller: Arc::clone(&self.poller),
        }
    }

    /// Serve until shut down. Returns an error only if the poller itself fails.
    pub fn run(&mut self) -> io::Result<Summary> {
        let mut events = Events::new();
        loop {
            if self.shutdown.load(Ordering::SeqCst) && !self.draining {
                self.begin_shutdown(Instant::now());
            }
            if self.draining
                && (self.conns.is_empty()
                    || self.drain_deadline.is_some_and(|at| Instant::now() >= at))
            {
                break;
            }
            let timeout = self
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()));
            events.clear();
            self.poller.wait(&mut events, timeout)?;

            // One clock read per batch: good enough for idle timing.
            let now = Instant::now();
            for event in events.iter() {
                self.handle(event, now);
            }
            self.conns.end_batch();
            self.fire_timers(now);
            stats::tick(self, now);
            self.sync_listeners();
        }
        Ok(self.finish())
    }

    /// One readiness event: dispatched, and traced with --trace-events.
    fn handle(&mut self, event: Event, now: Instant) {
        let mark = self
            .config
            .trace_events
            .then(|| trace::Mark::new(self, &event));
        self.dispatch(event, now);
        if let Some(mark) = mark {
            mark.report(self);
        }
    }

    fn dispatch(&mut self, event: Event, now: Instant) {
        if let Some(index) = self.udp.index(event.key) {
            datagram::dispatch(self, index, &event, now);
            return;
        }
        if event.key < self.key_base {
            // Listeners are gone once shutdown began; ignore a late event.
            let Some(listener) = self.listeners.get_mut(event.key) else {
                return;
            };
            // The listener's oneshot registration is used up by this event.
            if self.mode == PollMode::Oneshot {
                listener.armed = false;
            }
            readable::accept(self, event.key, now);
            return;
        }
        let slot = event.key - self.key_base;
        let oneshot = self.mode == PollMode::Oneshot;
        let Some(conn) = self.conns.get_mut(slot) else {
            return; // closed earlier in this batch
        };
        if oneshot {
            conn.armed = Interest::NONE;
        }
        let before = (conn.bytes_in, conn.bytes_out);
        let pending_before = conn.pending.len();
        let outcome = match exceptional::check_hints(conn, &event) {
            Some(err) => Err(err),
            None => self.handle_io(slot, &event, now),
        };
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let max_pending = self.config.max_pending;
        stats::note_pending(
            &mut self.stats,
            pending_before,
            conn.pending.len(),
            max_pending,
        );
        if (conn.bytes_in, conn.bytes_out) != before {
            conn.last_active = now;
        }
        match outcome {
            Ok(()) => self.settle(slot, now),
            Err(err) if self.config.service.ends_by_hang_up() && sys::is_hang_up(&err) => {
                exceptional::close(self, slot, Reason::HungUp)
            }
            Err(err) => exceptional::close(self, slot, Reason::Failed(err)),
        }
    }

    /// Let the readable and writable handlers at a connection's socket.
    fn handle_io(&mut self, slot: usize, event: &Event, now: Instant) -> io::Result<()> {
        let Server {
            conns,
            buf,
            config,
            stats,
            chargen,
            ..
        } = self;
        let Some(conn) = conns.get_mut(slot) else {
            return Ok(());
        };
        if event.writable && conn.all_sent == Some(false) && conn.pending.is_empty() {
            // Nothing was left to write, so writable is the kernel's word
            // that all of it has been sent (see `settle`).
            conn.all_sent = Some(true);
        }
        // Older bytes first: a flush makes room, so the read after it can
        // often send its bytes straight out instead of queueing them.
        if event.writable {
            match chargen {
                Some(chargen) => writable::generate(conn, chargen, stats)?,
                None => writable::flush(conn, stats, now)?,
            }
        }
        if event.readable {
            if config.service.echoes() {
                readable::receive(conn, buf, config.max_pending, stats, now)?;
            } else {
                readable::swallow(conn, buf, stats)?;
            }
        }
        Ok(())
    }

    /// After a connection's state changed: end its echo if a fault says so,
    /// close it if it is done, move it through shutdown, and re-arm it with
    /// the interest its state implies.
    fn settle(&mut self, slot: usize, now: Instant) {
        let max_pending = self.config.max_pending;
        let key = self.key_base + slot;
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let ending = conn.shaper.as_ref().and_then(|s| s.ending());
        if let Some((end, ending)) = ending {
            let echoing = matches!(conn.phase, Phase::Echo | Phase::PeerDone);
            if echoing && conn.bytes_out >= end && !self.end_echo(slot, ending, now) {
                return;
            }
        }
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if conn.is_finished() {
            exceptional::close(self, slot, Reason::Finished);
            return;
        }
        if conn.phase == Phase::Resetting && conn.all_sent == Some(true) {
            // Every byte owed has left the kernel: now abort.
            exceptional::close(self, slot, Reason::Reset);
            return;
        }
        if conn.phase == Phase::Flush && conn.pending.is_empty() {
            // Everything owed is written. Where the kernel can say when it
            // has also sent it all, wait for that before the FIN: a close
            // later may turn into a reset, and a reset destroys what the
            // kernel has not sent yet.
            if conn.all_sent.is_none() && sys::report_writable_when_sent(conn.source.socket()) {
                conn.all_sent = Some(false);
            }
            if conn.all_sent != Some(false) {
                if let Err(err) = conn.source.socket().shutdown(std::net::Shutdown::Write) {
                    exceptional::close(self, slot, Reason::Failed(err));
                    return;
                }
                conn.phase = Phase::Linger;
                conn.discarded = 0;
            }
        }
        if conn.phase == Phase::Linger {
            // Closing with unread input sends RST: close once the client
            // ended its input (EOF), or at once if it has been quiet since
            // the FIN. A client still sending is drained until its EOF or
            // the deadline.
            let reason = if self.draining {
                Reason::Shutdown
            } else {
                Reason::Finished
            };
            match readable::discard(conn, &mut self.buf, &mut self.stats) {
                Ok(eof) if eof || conn.discarded == 0 => {
                    exceptional::close(self, slot, reason);
                    return;
                }
                Ok(_) => {}
                Err(err) => {
                    exceptional::close(self, slot, Reason::Failed(err));
                    return;
                }
            }
        }
        if let Some(shaper) = conn.shaper.as_deref_mut() {
            // File the moment the fault's hold ends (O(log n)).
            let next = shaper.next_wake();
            self.deadlines
                .refile(&mut shaper.wake, next, conn.id, Timer::Fault, slot);
        }
        let serving = conn.phase == Phase::Echo;
        let wanted = self
            .config
            .service
            .interest(serving, conn.interest(max_pending));
        if wanted != conn.armed {
            if let Err(err) = conn.source.rearm(wanted.event(key)) {
                exceptional::close(self, slot, Reason::Failed(err));
                return;
            }
            conn.armed = wanted;
        }
    }

    /// `--close-after`, `--reset-after` or `--stall-after` was reached: what
    /// is still pending is never sent. False if the connection is gone.
    fn end_echo(&mut self, slot: usize, ending: Ending, now: Instant) -> bool {
        let linger = self.config.shutdown_timeout;
        let Some(conn) = self.conns.get_mut(slot) else {
            return false;
        };
        log::debug!(
            "connection #{}: injected {} after {} bytes",
            conn.id,
            ending.name(),
            conn.bytes_out
        );
        // Received, never to be echoed: counted with the bytes dropped later.
        let unsent = conn.pending.len() as u64;
        conn.pending = Pending::default();
        self.stats.discarded += unsent;
        if let Some(shaper) = conn.shaper.as_deref_mut() {
            shaper.unshape();
            shaper.ended();
            if ending == Ending::Close {
                shaper.linger_until = now.checked_add(linger);
            }
        }
        let peer_done = conn.phase == Phase::PeerDone;
        match ending {
            Ending::Reset => {
                self.stats.fault_resets += 1;
                // RST throws away what the kernel has not sent yet: where the
                // kernel can say when all is sent, wait for that (bounded).
                if !sys::report_writable_when_sent(conn.source.socket()) {
                    exceptional::close(self, slot, Reason::Reset);
                    return false;
                }
                conn.phase = Phase::Resetting;
                conn.all_sent = Some(false);
                if let Some(shaper) = conn.shaper.as_deref_mut() {
                    shaper.linger_until = now.checked_add(linger);
                }
            }
            Ending::Close => {
                self.stats.fault_closes += 1;
                // FIN goes out through the shutdown path: Flush, then Linger.
                conn.phase = if peer_done {
                    Phase::PeerDone
                } else {
                    Phase::Flush
                };
            }
            Ending::Stall => {
                self.stats.fault_stalls += 1;
                conn.phase = Phase::Stalled { peer_done };
            }
        }
        true
    }

    /// Take in an accepted socket: prepare it, register it, file its deadline.
    fn adopt(&mut self, socket: Socket, peer: socket2::SockAddr, now: Instant) {
        let peer = peer
            .as_socket()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        if let Err(err) = sys::prepare_stream(&socket) {
            log::debug!("dropping new connection from {peer}: {err}");
            return;
        }
        let slot = self.conns.vacant_key();
        let interest = Interest {
            read: true,
            write: self.config.service == ServiceMode::Chargen,
        };
        let source = match Registered::new(
            &self.poller,
            socket,
            interest.event(self.key_base + slot),
            self.mode,
        ) {
            Ok(source) => source,
            Err(err) => {
                log::warn!("cannot watch new connection from {peer}: {err}");
                return;
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        let deadline = self.config.idle_timeout.and_then(|t| now.checked_add(t));
        // Faults shape the echo; discard and chargen are left as they are.
        let shaper = if self.config.service.echoes() {
            self.config
                .faults
                .shaper_for(id, self.config.max_pending, now)
        } else {
            None
        };
        if shaper.is_some() {
            self.stats.faulted += 1;
            log::debug!("connection #{id} from {peer}: faults injected");
        }
        let inserted = self.conns.insert(Connection {
            source,
            id,
            peer,
            phase: Phase::Echo,
            pending: Pending::default(),
            armed: interest,
            last_active: now,
            deadline,
            bytes_in: 0,
            bytes_out: 0,
            discarded: 0,
            all_sent: None,
            shaper,
        });
        debug_assert_eq!(inserted, slot);
        if let Some(at) = deadline {
            self.deadlines.insert(at, id, Timer::Idle, slot);
        }
        // A fault that ends the echo after 0 bytes acts at once.
        if self.config.faults.ending().is_some_and(|(end, _)| end == 0) {
            self.settle(slot, now);
        }
        self.stats.accepted += 1;
        self.stats.peak_connections = self.stats.peak_connections.max(self.conns.len());
        log::debug!("connection #{id} from {peer} opened");
    }

    fn may_accept(&self) -> bool {
        !self.draining
            && self.accept_paused_until.is_none()
            && (self.config.at_limit != AtLimit::Queue || !self.at_limit())
    }

    fn at_limit(&self) -> bool {
        self.conns.len() >= self.config.max_connections
    }

    /// `--at-limit refuse|close`: a client beyond the cap is accepted only
    /// to be sent away at once, with RST (refuse) or FIN (close).
    fn turn_away(&mut self, socket: Socket, peer: socket2::SockAddr) {
        self.stats.turned_away += 1;
        if self.config.at_limit == AtLimit::Refuse {
            if let Err(err) = socket.set_linger(Some(Duration::ZERO)) {
                log::debug!("cannot arrange a reset: {err}");
            }
        }
        if let Some(peer) = peer.as_socket() {
            log::debug!("at the connection limit: turned {peer} away");
        }
    }

    /// Watch the listeners exactly when accepting is allowed: not while
    /// paused, at the connection cap, or shutting down.
    fn sync_listeners(&mut self) {
        let wanted = self.may_accept();
        for (key, listener) in self.listeners.iter_mut().enumerate() {
            if listener.armed == wanted {
                continue;
            }
            let interest = if wanted {
                Event::readable(key)
            } else {
                Event::none(key)
            };
            match listener.source.rearm(interest) {
                Ok(()) => listener.armed = wanted,
                Err(err) => log::warn!("cannot re-arm listener {}: {err}", listener.addr),
            }
        }
    }

    /// The earliest moment the loop must wake up without I/O.
    fn next_deadline(&self) -> Option<Instant> {
        [
            self.deadlines.next(),
            self.accept_paused_until,
            self.drain_deadline,
            self.reporter.as_ref().map(|r| r.next),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn fire_timers(&mut self, now: Instant) {
        if self.accept_paused_until.is_some_and(|at| at <= now) {
            self.accept_paused_until = None;
            log::debug!("accepting connections again");
        }
        while let Some((id, timer, slot)) = self.deadlines.pop_due(now) {
            let current =
                |conns: &mut Slab<Connection>| conns.get_mut(slot).is_some_and(|c| c.id == id);
            match timer {
                Timer::Datagram => datagram::release_due(self, slot, now),
                Timer::Idle if current(&mut self.conns) => self.idle_due(slot, now),
                Timer::Fault if current(&mut self.conns) => self.fault_due(slot, now),
                // The connection it was filed for is gone.
                Timer::Idle | Timer::Fault => {}
            }
        }
        self.conns.end_batch();
    }

    /// Close the connection if it stayed idle for the whole timeout, else
    /// file it again at its real deadline.
    fn idle_due(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        // Echo a fault holds back is the server being slow, not the client
        // being idle: the clock starts again (and the bytes are not lost).
        let pending = !conn.pending.is_empty();
        if let Some(shaper) = conn.shaper.as_deref() {
            if shaper.is_holding(conn.bytes_out, pending) {
                conn.last_active = now;
            }
        }
        let due = self
            .config
            .idle_timeout
            .and_then(|t| conn.last_active.checked_add(t));
        match due {
            None => conn.deadline = None,
            Some(due) if due <= now => {
                conn.deadline = None;
                exceptional::close(self, slot, Reason::Idle);
            }
            Some(due) => {
                conn.deadline = Some(due);
                self.deadlines.insert(due, conn.id, Timer::Idle, slot);
            }
        }
    }

    /// A fault's hold is over: send what may leave now, then let `settle`
    /// derive the interest and file the next hold.
    fn fault_due(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let Some(shaper) = conn.shaper.as_deref_mut() else {
            return;
        };
        shaper.wake = None;
        if shaper.linger_until.is_some_and(|at| at <= now) {
            match conn.phase {
                // A client that kept sending long after `--close-after`'s FIN.
                Phase::Linger => return exceptional::close(self, slot, Reason::Finished),
                // One that never read what `--reset-after` still owed it.
                Phase::Resetting => return exceptional::close(self, slot, Reason::Reset),
                _ => {}
            }
        }
        let lifted = shaper.lift_holds(now);
        let sent = conn.bytes_out;
        if let Err(err) = writable::flush(conn, &mut self.stats, now) {
            exceptional::close(self, slot, Reason::Failed(err));
            return;
        }
        // The end of a hold is the server moving (a lifted read hold is
        // followed by a read only after the next poll, and an idle timer
        // due in this same batch must not take the gap for idleness).
        if lifted || conn.bytes_out != sent {
            conn.last_active = now;
        }
        self.settle(slot, now);
    }

    /// Stop accepting; every client gets what it is owed, then FIN.
    fn begin_shutdown(&mut self, now: Instant) {
        // Take in every client whose handshake already completed, so it gets
        // an orderly close rather than a reset when the listener goes. The
        // backlog bounds the batches; a connect storm cannot keep this going.
        let batches = self.config.backlog.unsigned_abs() as usize / readable::ACCEPT_BATCH + 1;
        for index in 0..self.listeners.len() {
            for _ in 0..batches {
                if !readable::accept(self, index, now) {
                    break;
                }
            }
        }
        log::info!(
            "shutting down: flushing {} for up to {:.1} s",
            count(self.conns.len() as u64, "connection"),
            self.config.shutdown_timeout.as_secs_f64()
        );
        // Dropping a listener deletes it from the poller and closes it;
        // later clients are refused.
        self.listeners.clear();
        self.udp.close(&mut self.stats.udp);
        for slot in self.conns.keys() {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            if let Some(shaper) = conn.shaper.as_deref_mut() {
                shaper.unshape();
            }
            if conn.phase == Phase::Echo && self.config.service.echoes() {
                self.read_before_flush(slot, now);
            }
        }
        self.draining = true;
        self.drain_deadline = now.checked_add(self.config.shutdown_timeout);
        for slot in self.conns.keys() {
            if let Some(conn) = self.conns.get_mut(slot) {
                if matches!(conn.phase, Phase::Echo | Phase::Stalled { .. }) {
                    conn.phase = Phase::Flush;
                }
            }
            self.settle(slot, now);
        }
        self.conns.end_batch();
    }

    /// Bytes that reached the server before the signal are owed too, even
    /// those still in the kernel's buffer: read them as readiness events
    /// would, up to --max-pending more (a client that keeps sending cannot
    /// hold shutdown here), until the buffer is empty.
    fn read_before_flush(&mut self, slot: usize, now: Instant) {
        let Some(start) = self.conns.get(slot).map(|c| c.bytes_in) else {
            return;
        };
        let limit = start.saturating_add(self.config.max_pending as u64);
        let mut last = start;
        loop {
            self.handle(Event::readable(self.key_base + slot), now);
            let Some(conn) = self.conns.get(slot) else {
                return;
            };
            if conn.phase != Phase::Echo || conn.bytes_in == last || conn.bytes_in >= limit {
                return;
            }
            last = conn.bytes_in;
        }
    }

    fn finish(&mut self) -> Summary {
        // Clients still owed bytes at the deadline; the rest had all of
        // theirs and were only slow to close.
        let (cut_off, owed) = self
            .conns
            .values()
            .filter(|c| !c.pending.is_empty() || c.phase == Phase::Flush)
            .fold((0, 0), |(n, bytes), c| {
                (n + 1, bytes + c.pending.len() as u64)
            });
        for slot in self.conns.keys() {
            exceptional::close(self, slot, Reason::Shutdown);
        }
        self.conns.end_batch();
        stats::emit(self, true);
        Summary {
            stats: self.stats.clone(),
            uptime: self.started.elapsed(),
            cut_off,
            owed,
            service: self.config.service,
        }
    }
}

/// Level-triggered where the backend has it (one `modify` only when the
/// interest changes), else oneshot (re-arm after each event).
fn choose_mode(poller: &Poller, wanted: PollModeArg) -> io::Result<PollMode> {
    match wanted {
        PollModeArg::Auto if poller.supports_level() => Ok(PollMode::Level),
        PollModeArg::Auto | PollModeArg::Oneshot => Ok(PollMode::Oneshot),
        PollModeArg::Level if poller.supports_level() => Ok(PollMode::Level),
        PollModeArg::Level => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "--poll-mode level is not supported by the {} backend",
                sys::backend_name()
            ),
        )),
    }
}

fn mode_name(mode: PollMode) -> &'static str {
    match mode {
        PollMode::Level => "level",
        PollMode::Edge => "edge",
        PollMode::EdgeOneshot => "edge-oneshot",
        _ => "oneshot",
    }
}
