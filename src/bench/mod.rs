//! `pollmux bench`: a multiplexing load generator that verifies every byte.
//!
//! Each bench thread runs its own readiness loop on a `polling::Poller` over
//! its share of the connections (`driver.rs`); the payload is derived from
//! (connection, offset) so nothing sent is stored and every echoed byte is
//! checked (`pattern.rs`); what goes wrong is a `Fault` (`fault.rs`); the
//! main thread shows progress (`progress.rs`), samples the server's CPU and
//! memory from `/proc` when given its pid (`procfs.rs`) and prints the report
//! (`report.rs`). Exit code 1 on any fault. `--udp` swaps the TCP driver
//! for connected UDP sockets and datagram accounting (`udp.rs`).

mod conn;
mod driver;
mod fault;
mod pattern;
mod procfs;
mod progress;
mod report;
mod run;
mod udp;

use std::error::Error;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::Args;
use hdrhistogram::Histogram;

use crate::cli::{parse_duration, parse_size, Given, Overridden};
use driver::{Counts, Note, ThreadResult};
use fault::Failure;
use progress::{Live, Progress};
pub use report::{Report, SCHEMA_VERSION};

/// Largest `--size`: 16 MiB.
pub const MAX_SIZE: usize = 16 << 20;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Server host name or address (the first address that accepts a connection is used).
    #[arg(long, env = "POLLMUX_BENCH_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Server port.
    #[arg(short, long, env = "POLLMUX_BENCH_PORT", default_value_t = 8888)]
    pub port: u16,

    /// Connections carrying the load.
    #[arg(allow_negative_numbers = true, short, long, env = "POLLMUX_BENCH_CONNECTIONS", default_value_t = 50,
          value_parser = crate::cli::parse_positive_u32)]
    pub connections: u32,

    /// Bytes per message, 1 B to 16 MiB (e.g. 64, 1k, 64k, 1m).
    #[arg(allow_negative_numbers = true, short, long, env = "POLLMUX_BENCH_SIZE", default_value = "1024", value_parser = parse_message_size)]
    pub size: usize,

    /// Messages in flight per connection (1 = ping-pong; more pipelines).
    #[arg(allow_negative_numbers = true, short, long, env = "POLLMUX_BENCH_DEPTH", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub depth: u32,

    /// Measure for this long after the warmup (seconds, or 500ms, 2m) [default: 10].
    #[arg(allow_negative_numbers = true, short = 't', long, env = "POLLMUX_BENCH_DURATION", value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,

    /// Instead of a duration: measure this many messages in all (shared out over the connections).
    #[arg(allow_negative_numbers = true, short = 'n', long, env = "POLLMUX_BENCH_MESSAGES",
          value_parser = crate::cli::parse_positive_u64)]
    pub messages: Option<u64>,

    /// Run the load this long before measuring (its echoes are verified, not counted).
    #[arg(allow_negative_numbers = true, short, long, env = "POLLMUX_BENCH_WARMUP", default_value = "1", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Bench threads, each with its own poller and an equal share of the connections.
    #[arg(allow_negative_numbers = true, short = 'T', long, env = "POLLMUX_BENCH_THREADS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,

    /// Give up on a connection whose connect takes longer than this.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_BENCH_CONNECT_TIMEOUT", default_value = "5", value_parser = parse_positive_duration)]
    pub connect_timeout: Duration,

    /// A connection that is owed an echo and receives nothing for this long
    /// has stalled: it is counted as a stall and closed (the others go on).
    #[arg(allow_negative_numbers = true, long, visible_alias = "timeout", env = "POLLMUX_BENCH_STALL_TIMEOUT", default_value = "10",
          value_parser = parse_positive_duration)]
    pub stall_timeout: Duration,

    /// Open loop: send this many messages per second in all, on a fixed schedule,
    /// whatever the echoes do; latency counts from each message's scheduled time.
    /// (--depth does not apply.)
    #[arg(allow_negative_numbers = true, short, long, env = "POLLMUX_BENCH_RATE", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Each connection shuts down its write side once its last byte is sent and
    /// expects exactly its bytes back, then EOF (a half-close conformance check).
    #[arg(long, env = "POLLMUX_BENCH_HALF_CLOSE", value_parser = BoolishValueParser::new())]
    pub half_close: bool,

    /// Also hold this many idle connections open, each checked with a small
    /// echo before and after the run (connection-count and memory tests).
    #[arg(short, long, env = "POLLMUX_BENCH_IDLE", default_value_t = 0)]
    pub idle: u32,

    /// Print the report as one JSON object (schema in the README).
    #[arg(long, env = "POLLMUX_BENCH_JSON", value_parser = BoolishValueParser::new())]
    pub json: bool,

    /// How the bench's own sockets are registered: auto = level-triggered
    /// where the backend has it, else oneshot; edge is for epoll and kqueue.
    #[arg(long, env = "POLLMUX_BENCH_POLL_MODE", value_enum, ignore_case = true, default_value_t = BenchPollMode::Auto)]
    pub poll_mode: BenchPollMode,

    /// Linux: the server's process id, to report its CPU time per message and
    /// its memory per connection from /proc over the same measured phase.
    #[arg(long, env = "POLLMUX_BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,

    /// Send datagrams over connected UDP sockets (one per connection) instead
    /// of a TCP stream; --size is the datagram size (16 to 65507 bytes). Loss,
    /// late echoes, duplicates, reordering and corruption are counted; an echo
    /// missing after --stall-timeout is lost and replaced.
    #[arg(long, env = "POLLMUX_BENCH_UDP", value_parser = BoolishValueParser::new())]
    pub udp: bool,

    /// With --udp: the fraction of datagrams that may be lost (0.01 = 1 %)
    /// before the run fails. Corruption always fails it.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_BENCH_MAX_LOSS", default_value_t = 0.0,
          value_parser = parse_fraction)]
    pub max_loss: f64,
}

impl BenchArgs {
    /// Settle the options that conflict or depend on each other, by where
    /// their values came from (see [`Given`]): `--duration` and
    /// `--messages`; `--udp` and `--half-close` or `--idle`; `--max-loss`
    /// needs `--udp`.
    pub fn settle(&mut self, given: &Given) -> Result<(), clap::Error> {
        let duration = ("duration", self.duration.is_some());
        match given.conflict(duration, ("messages", self.messages.is_some()))? {
            Some(Overridden::First) => self.duration = None,
            Some(Overridden::Second) => self.messages = None,
            None => {}
        }
        let mut udp_overridden = false;
        let tcp_only = [("half_close", self.half_close), ("idle", self.idle > 0)];
        for (id, on) in tcp_only {
            match given.conflict(("udp", self.udp), (id, on))? {
                Some(Overridden::First) => {
                    self.udp = false;
                    udp_overridden = true;
                }
                Some(Overridden::Second) if id == "idle" => self.idle = 0,
                Some(Overridden::Second) => self.half_close = false,
                None => {}
            }
        }
        // A variable's --max-loss goes with the variable's --udp that the
        // command line overrode.
        if udp_overridden && given.source("max_loss", true) == Some(ValueSource::EnvVariable) {
            self.max_loss = 0.0;
            return Ok(());
        }
        given.require("max_loss", true, self.udp, "'--udp'")
    }

    /// Values that do not fit together, once settled: a usage error.
    pub fn problem(&self, given: &Given) -> Option<String> {
        if self.threads > self.connections {
            return Some(format!(
                "invalid value '{}' for {}: each thread needs a connection, and {} is {}",
                self.threads,
                given.name("threads"),
                given.name("connections"),
                self.connections,
            ));
        }
        // `--size` must hold the datagram header and fit one datagram.
        let range = udp::HEADER..=crate::cli::MAX_DATAGRAM;
        (self.udp && !range.contains(&self.size)).then(|| {
            format!(
                "invalid value '{}' for {}: with --udp a datagram is {} to {} bytes",
                self.size,
                given.name("size"),
                range.start(),
                range.end()
            )
        })
    }
}

/// `--poll-mode` of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchPollMode {
    /// Level where supported, else oneshot.
    Auto,
    /// Edge-triggered: register once for reading and writing.
    Edge,
    /// Level-triggered: re-register only when the interest changes.
    Level,
    /// Oneshot: re-arm after every event.
    Oneshot,
}

fn parse_message_size(text: &str) -> Result<usize, String> {
    let size = parse_size(text)?;
    if (1..=MAX_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(format!("'{text}' is outside 1 B .. 16 MiB"))
    }
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        Err(format!("'{text}' must be longer than zero"))
    } else {
        Ok(d)
    }
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "'{text}' is not a fraction from 0 to 1 (e.g. 0.01)"
        )),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a rate (messages per second, e.g. 10000)"))?;
    if rate.is_finite() && (0.001..=10_000_000.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "'{text}' must be from 0.001 to 10000000 messages per second"
        ))
    }
}

/// Everything a bench thread needs to know, checked and resolved.
#[derive(Debug)]
pub struct Plan {
    pub addr: SocketAddr,
    pub connections: usize,
    pub idle: usize,
    pub threads: usize,
    pub size: u64,
    pub depth: usize,
    /// Measured time; `None` with `--messages`.
    pub duration: Option<Duration>,
    pub messages: Option<u64>,
    pub warmup: Duration,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    pub rate: Option<f64>,
    pub half_close: bool,
    pub poll_mode: BenchPollMode,
    /// `--udp`, and the loss it tolerates.
    pub udp: bool,
    pub max_loss: f64,
    /// Ctrl-C: ends the measured phase now, as its deadline would.
    pub interrupted: Arc<Interrupt>,
}

/// The connections one thread drives: ids of its active and idle ones.
#[derive(Debug, Clone)]
pub struct Share {
    pub active: Range<u64>,
    pub idle: Range<u64>,
}

impl Share {
    pub fn active_len(&self) -> usize {
        (self.active.end - self.active.start) as usize
    }

    pub fn total(&self) -> usize {
        self.active_len() + (self.idle.end - self.idle.start) as usize
    }
}

impl Plan {
    /// Connection `id`'s share of `--messages` (0 without it).
    pub fn quota(&self, id: u64) -> u64 {
        let Some(total) = self.messages else {
            return 0;
        };
        let c = self.connections as u64;
        total / c + u64::from(id < total % c)
    }

    /// Thread `t`'s connections: active ids `0..C` and idle ids `C..C+I`,
    /// each split into near-equal contiguous ranges.
    pub fn share(&self, t: usize) -> Share {
        let split = |n: usize, base: usize| {
            let lo = base + n * t / self.threads;
            let hi = base + n * (t + 1) / self.threads;
            lo as u64..hi as u64
        };
        Share {
            active: split(self.connections, 0),
            idle: split(self.idle, self.connections),
        }
    }
}

fn plan(args: &BenchArgs, interrupted: Arc<Interrupt>) -> Result<Plan, Box<dyn Error>> {
    // The command line refuses this first, as a usage error (`problem`).
    if args.threads > args.connections {
        return Err(format!(
            "--threads {} is more than --connections {}: each thread needs a connection",
            args.threads, args.connections
        )
        .into());
    }
    let addr = if args.udp {
        udp::resolve(&args.host, args.port, args.connect_timeout)?
    } else {
        resolve(&args.host, args.port, args.connect_timeout)?
    };
    Ok(Plan {
        addr,
        connections: args.connections as usize,
        idle: args.idle as usize,
        threads: args.threads as usize,
        size: args.size as u64,
        depth: args.depth as usize,
        duration: match args.messages {
            Some(_) => None,
            None => Some(args.duration.unwrap_or(Duration::from_secs(10))),
        },
        messages: args.messages,
        warmup: args.warmup,
        connect_timeout: args.connect_timeout,
        stall_timeout: args.stall_timeout,
        rate: args.rate,
        half_close: args.half_close,
        poll_mode: args.poll_mode,
        udp: args.udp,
        max_loss: args.max_loss,
        interrupted,
    })
}

/// The first address of `host` that accepts a connection (like `client`),
/// so a dead target is one clear error, not thousands of connect failures.
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, String> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host '{host}': {e}"))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(_) => return Ok(*addr),
            Err(e) => last = Some((addr, e)),
        }
    }
    match last {
        Some((addr, e)) => Err(format!("cannot connect to {addr}: {e}")),
        None => Err(format!("host '{host}' resolves to no address")),
    }
}

/// Ctrl-C for the bench. Before the load begins there is nothing to
/// report, so the caller leaves at once; during the load it ends the
/// measured phase, and echoes still owed get `GRACE` to come back.
#[derive(Debug, Default)]
pub struct Interrupt {
    asked: AtomicBool,
    loading: AtomicBool,
}

impl Interrupt {
    /// How long echoes owed at the interrupt may still take.
    pub const GRACE: Duration = Duration::from_secs(1);

    /// Ask the load to stop; false if it has not begun.
    pub fn ask(&self) -> bool {
        self.asked.store(true, Ordering::SeqCst);
        self.loading.load(Ordering::SeqCst)
    }

    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    /// If a stop was asked for: when waiting for owed echoes ends, on the
    /// bench's nanosecond clock, for a wait that starts at `now`.
    pub fn grace_end(&self, now: u64) -> Option<u64> {
        self.asked().then(|| now + Self::GRACE.as_nanos() as u64)
    }
}

/// Run the bench and print its report. `interrupted` (Ctrl-C) ends the
/// measured phase early; the report covers what was measured until then.
pub fn run(args: &BenchArgs, interrupted: Arc<Interrupt>) -> Result<ExitCode, Box<dyn Error>> {
    let plan = Arc::new(plan(args, interrupted)?);
    let needed = (plan.connections + plan.idle) as u64 + 32;
    match crate::sys::raise_fd_limit() {
        Ok(Some(limit)) if limit < needed => log::warn!(
            "open-files limit {limit} is below the {needed} descriptors this run needs: \
             expect connect failures"
        ),
        Ok(_) => {}
        Err(err) => log::warn!("cannot raise the open-files limit: {err}"),
    }
    if let Some(pid) = args.server_pid {
        // Figures that silently come out empty would look like a result.
        if !cfg!(target_os = "linux") {
            log::warn!("--server-pid reads /proc, which only Linux has: no server figures");
        } else if procfs::process_cpu(pid).is_none() {
            return Err(
                format!("--server-pid {pid}: no such process (nothing in /proc/{pid})").into(),
            );
        }
    }
    let report = drive(&plan, args.server_pid)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", report.json())?;
    } else {
        write!(out, "{}", report.text())?;
    }
    out.flush()?;
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Start the threads, pace them through their phases, sample the server and
/// put the report together.
fn drive(plan: &Arc<Plan>, server_pid: Option<u32>) -> Result<Report, Box<dyn Error>> {
    let rss_before = server_pid.and_then(procfs::process_rss_kib);
    let total = plan.connections + plan.idle;
    let (note_tx, note_rx) = mpsc::channel();
    let mut lives = Vec::with_capacity(plan.threads);
    let mut handles = Vec::with_capacity(plan.threads);
    let mut gos = Vec::with_capacity(plan.threads);
    for t in 0..plan.threads {
        let live = Arc::new(Live::default());
        let (go_tx, go_rx) = mpsc::channel();
        let (p, l, n) = (Arc::clone(plan), Arc::clone(&live), note_tx.clone());
        let share = plan.share(t);
        let handle = std::thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || {
                if p.udp {
                    udp::run_thread(t, p, share, l, n, go_rx)
                } else {
                    driver::run_thread(t, p, share, l, n, go_rx)
                }
            })?;
        lives.push(live);
        handles.push(handle);
        gos.push(go_tx);
    }
    drop(note_tx);

    let mut progress = Progress::new();
    let second = Duration::from_secs(1);
    let mut connected = vec![false; plan.threads];
    let mut measured = vec![false; plan.threads];

    // Connect phase: wait for every thread (a thread that fails says so too).
    while !connected.iter().all(|&c| c) {
        match note_rx.recv_timeout(second) {
            Ok(note) => mark(note, &mut connected, &mut measured),
            Err(RecvTimeoutError::Timeout) => progress.show("connecting", &lives, total, plan.size),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let mut rss_peak = server_pid.and_then(procfs::process_rss_kib);

    // Load: go, sample the server at the end of the warmup and of the
    // measured phase.
    plan.interrupted.loading.store(true, Ordering::SeqCst);
    for go in &gos {
        let _ = go.send(());
    }
    progress.rebase(&lives);
    let warmup_end = Instant::now() + plan.warmup;
    let mut cpu_start = None;
    let mut cpu_end = None;
    let mut sampled_start = false;
    let mut next_progress = Instant::now() + second;
    loop {
        let now = Instant::now();
        if !sampled_start && now >= warmup_end {
            sampled_start = true;
            cpu_start = server_pid.and_then(procfs::process_cpu);
        }
        if measured.iter().all(|&m| m) {
            break;
        }
        if now >= next_progress {
            progress.show("running", &lives, total, plan.size);
            next_progress = now + second;
        }
        let mut wake = next_progress;
        if !sampled_start {
            wake = wake.min(warmup_end);
        }
        match note_rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(note) => mark(note, &mut connected, &mut measured),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if sampled_start {
        cpu_end = server_pid.and_then(procfs::process_cpu);
    }
    let rss_end = server_pid.and_then(procfs::process_rss_kib);
    rss_peak = rss_peak.max(rss_end);
    progress.show("finishing", &lives, total, plan.size);

    let mut results = Vec::with_capacity(plan.threads);
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(result)) => results.push(result),
            Ok(Err(err)) => {
                first_error.get_or_insert(err.to_string());
            }
            Err(_) => {
                first_error.get_or_insert("a bench thread panicked".to_owned());
            }
        }
    }
    progress.clear();
    if let Some(err) = first_error {
        return Err(err.into());
    }
    let server_cpu = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok(assemble(plan, results, server_cpu, rss_before, rss_peak))
}

fn mark(note: Note, connected: &mut [bool], measured: &mut [bool]) {
    match note {
        Note::Connected(t) => connected[t] = true,
        Note::MeasureDone(t) => {
            connected[t] = true;
            measured[t] = true;
        }
    }
}

fn assemble(
    plan: &Plan,
    results: Vec<ThreadResult>,
    server_cpu: Option<Duration>,
    rss_before: Option<u64>,
    rss_peak: Option<u64>,
) -> Report {
    let mut hist: Option<Histogram<u64>> = None;
    let mut counts = Counts::default();
    let mut udp_counts = udp::UdpCounts::default();
    let mut failures = Vec::new();
    let (mut messages, mut bytes) = (0, 0);
    let mut bench_cpu = Some(Duration::ZERO);
    let mut start: Option<Instant> = None;
    let mut end: Option<Instant> = None;
    for r in results {
        match &mut hist {
            None => hist = Some(r.hist),
            Some(h) => {
                // Same bounds on every thread: adding cannot fail.
                let _ = h.add(&r.hist);
            }
        }
        counts.add(&r.counts);
        udp_counts.add(&r.udp);
        failures.extend(r.failures);
        messages += r.messages;
        bytes += r.bytes;
        bench_cpu = match (bench_cpu, r.cpu) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        start = Some(start.map_or(r.warmup_end, |s| s.min(r.warmup_end)));
        end = Some(end.map_or(r.measure_end, |e| e.max(r.measure_end)));
    }
    failures.sort_by_key(|f: &Failure| f.at);
    let elapsed = match (start, end) {
        (Some(s), Some(e)) => e.saturating_duration_since(s),
        _ => Duration::ZERO,
    };
    Report {
        target: plan.addr,
        connections: plan.connections,
        idle: plan.idle,
        threads: plan.threads,
        size: plan.size,
        depth: plan.depth,
        rate: plan.rate,
        half_close: plan.half_close,
        warmup: plan.warmup,
        elapsed,
        messages,
        bytes,
        latency: hist.as_ref().and_then(report::Latency::from_histogram),
        counts,
        failures,
        bench_cpu,
        server_cpu,
        server_rss_before_kib: rss_before,
        server_rss_kib: rss_peak,
        udp: plan.udp.then_some(udp::UdpSummary {
            counts: udp_counts,
            max_loss: plan.max_loss,
        }),
        interrupted: plan.interrupted.asked(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connections: usize, idle: usize, threads: usize, messages: Option<u64>) -> Plan {
        Plan {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            connections,
            idle,
            threads,
            size: 1,
            depth: 1,
            duration: None,
            messages,
            warmup: Duration::ZERO,
            connect_timeout: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(1),
            rate: None,
            half_close: false,
            poll_mode: BenchPollMode::Auto,
            udp: false,
            max_loss: 0.0,
            interrupted: Arc::default(),
        }
    }

    #[test]
    fn quotas_add_up_to_messages() {
        let p = plan(7, 0, 1, Some(100));
        assert_eq!((0..7).map(|id| p.quota(id)).sum::<u64>(), 100);
        let p = plan(50, 0, 1, Some(3));
        assert_eq!((0..50).map(|id| p.quota(id)).sum::<u64>(), 3);
    }

    #[test]
    fn shares_cover_every_connection_once() {
        let p = plan(10, 5, 3, None);
        let shares: Vec<Share> = (0..3).map(|t| p.share(t)).collect();
        assert_eq!(shares[0].active.start, 0);
        assert_eq!(shares[2].active.end, 10);
        assert_eq!(shares[0].idle.start, 10);
        assert_eq!(shares[2].idle.end, 15);
        for w in shares.windows(2) {
            assert_eq!(w[0].active.end, w[1].active.start);
            assert_eq!(w[0].idle.end, w[1].idle.start);
        }
    }

    #[test]
    fn sizes_are_bounded() {
        assert_eq!(parse_message_size("1"), Ok(1));
        assert_eq!(parse_message_size("16m"), Ok(16 << 20));
        assert!(parse_message_size("0").is_err());
        assert!(parse_message_size("17m").is_err());
    }
}
