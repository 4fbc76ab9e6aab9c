//! What a bench thread does the same way over TCP (`driver.rs`) and UDP
//! (`udp.rs`): its life around the load, one turn of the poll loop, the
//! measured phase's clock (warmup, deadline, CPU time), the open-loop
//! schedule and the books kept on messages and faults. What differs —
//! connections, their I/O, how a message starts, what the tick checks — is
//! each driver's side of [`Load`].

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use polling::{Events, Poller};

use super::driver::{latency_histogram, record_latency, Counts, Note, ThreadResult};
use super::fault::{Class, Failure};
use super::procfs;
use super::progress::Live;
use super::udp::UdpCounts;
use super::Plan;

/// How often the tick work runs (timeouts, losses, publishing counters).
pub(super) const TICK_NS: u64 = 100_000_000;
/// Failure descriptions kept per thread and class (the rest are only counted).
const KEEP_PER_CLASS: usize = 3;

/// A driver's side of the bench thread: its connections and their I/O.
pub(super) trait Load {
    fn run(&self) -> &Run;
    fn run_mut(&mut self) -> &mut Run;
    /// Whether any connection still carries the load: the load phase lasts
    /// until none does.
    fn loaded(&self) -> bool;
    /// Begin the load: in the closed loop, `--depth` messages on every
    /// connection (the open loop starts them as they fall due).
    fn start(&mut self, now: u64);
    fn on_event(&mut self, key: usize, readable: bool, writable: bool);
    /// The tick's checks (timeouts, losses), then publishing the counters.
    fn on_tick(&mut self, now: u64);
    /// Open loop: hand every message due by `now` to its connection.
    fn issue_due(&mut self, now: u64);
    /// The deadline passed: no connection starts another message.
    fn stop_starting(&mut self);
    /// After the load: whatever is left to verify, then the books.
    fn close_out(self) -> io::Result<(Run, UdpCounts)>;
}

/// Open loop: the thread's messages go out on a fixed schedule, round robin
/// over its active connections; message `m` is due `m * period` after the
/// start, so connection `slot`'s message `j` is thread message `j * n + slot`.
/// Open loop: the most messages a connection may have started and not yet
/// seen answered; a scheduled send beyond it is skipped and counted, so a
/// rate the target cannot take bounds what is owed at the end of the run.
pub(super) const MAX_BEHIND: u64 = 1024;

pub(super) struct Schedule {
    period_ns: f64,
    next: u64,
    pub(super) active: u64,
}

impl Schedule {
    pub(super) fn due(&self, run_start: u64, m: u64) -> u64 {
        run_start.saturating_add((m as f64 * self.period_ns) as u64)
    }
}

/// The thread's poller and clock, the phase times and the books: everything
/// a bench thread keeps the same way whichever protocol it drives.
pub(super) struct Run {
    pub index: usize,
    pub plan: Arc<Plan>,
    pub poller: Arc<Poller>,
    live: Arc<Live>,
    epoch: Instant,
    /// How often the tick work runs.
    pub tick: u64,
    /// Edge mode: connections that stopped for fairness with more to do; no
    /// new edge would wake them, so the loop serves them before it waits.
    pub resume: Vec<usize>,
    pub run_start: u64,
    pub warmup_end: u64,
    pub deadline: Option<u64>,
    pub schedule: Option<Schedule>,
    pub hist: Histogram<u64>,
    pub messages: u64,
    pub bytes: u64,
    pub completed_total: u64,
    pub last_measured: u64,
    pub counts: Counts,
    pub failures: Vec<Failure>,
}

impl Run {
    /// The books of thread `index`, whose share has `active` connections
    /// carrying the load.
    pub fn new(
        index: usize,
        plan: Arc<Plan>,
        live: Arc<Live>,
        tick: u64,
        active: usize,
    ) -> io::Result<Run> {
        let schedule = plan.rate.map(|rate| {
            let share_rate = rate * active as f64 / plan.connections as f64;
            Schedule {
                period_ns: 1e9 / share_rate,
                next: 0,
                active: active as u64,
            }
        });
        Ok(Run {
            index,
            plan,
            poller: Arc::new(Poller::new()?),
            live,
            epoch: Instant::now(),
            tick,
            resume: Vec::new(),
            run_start: 0,
            warmup_end: 0,
            deadline: None,
            schedule,
            hist: latency_histogram()?,
            messages: 0,
            bytes: 0,
            completed_total: 0,
            last_measured: 0,
            counts: Counts::default(),
            failures: Vec::new(),
        })
    }

    /// Nanoseconds since the thread's epoch.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn instant(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    /// Whether a connection that has started `started` measured messages of
    /// its share `quota` has no more to start (`--messages` only).
    pub fn quota_out(&self, started: u64, quota: u64) -> bool {
        self.plan.messages.is_some() && started >= quota
    }

    /// Closed loop: whether such a connection may start a message at `now`;
    /// `Some(measured)` if so, `None` past the deadline or the quota.
    pub fn may_start(&self, now: u64, started: u64, quota: u64) -> Option<bool> {
        let in_warmup = now < self.warmup_end;
        let past_deadline = self.deadline.is_some_and(|d| now >= d);
        let quota_left = in_warmup || !self.quota_out(started, quota);
        (!past_deadline && quota_left).then_some(!in_warmup)
    }

    /// Open loop: the next message due by `now`, as its connection's slot
    /// and whether it falls in the measured phase.
    pub fn next_due(&mut self, now: u64) -> Option<(usize, bool)> {
        let s = self.schedule.as_mut()?;
        let due = s.due(self.run_start, s.next);
        if s.active == 0 || due > now || self.deadline.is_some_and(|d| due >= d) {
            return None;
        }
        let slot = (s.next % s.active) as usize;
        s.next += 1;
        Some((slot, due >= self.warmup_end))
    }

    /// When message `m` of connection `slot` started: its slot in the open
    /// loop's schedule, so a lagging bench does not hide delay; `None` in
    /// the closed loop.
    pub fn scheduled(&self, slot: u64, m: u64) -> Option<u64> {
        let s = self.schedule.as_ref()?;
        Some(s.due(self.run_start, m * s.active + slot))
    }

    /// A message of `size` bytes started at `start` came back at `now`; it
    /// counts if it started after the warmup and came back by the deadline.
    pub fn complete(&mut self, start: u64, now: u64, size: u64) {
        self.completed_total += 1;
        let in_window = self.deadline.is_none_or(|d| now <= d);
        if start >= self.warmup_end && in_window {
            record_latency(&mut self.hist, now.saturating_sub(start));
            self.messages += 1;
            self.bytes += size;
            self.last_measured = now;
        }
    }

    /// Count a fault of `class`, keeping its description while there are
    /// few of the class.
    pub fn fault(&mut self, class: Class, describe: impl FnOnce() -> String) {
        *self.counts.of_mut(class) += 1;
        let kept = self.failures.iter().filter(|f| f.class == class).count();
        if kept < KEEP_PER_CLASS {
            self.failures.push(Failure {
                at: Instant::now(),
                class,
                text: describe(),
            });
        }
    }

    /// Share counters with the progress line (plain stores: one writer each).
    pub fn publish(&self, up: usize) {
        self.live
            .completed
            .store(self.completed_total, Ordering::Relaxed);
        self.live.up.store(up as u64, Ordering::Relaxed);
        self.live
            .faults
            .store(self.counts.faults(), Ordering::Relaxed);
    }
}

/// One thread's whole life around `setup` (its connections up): report
/// `Connected`, wait for `go`, run the load, report `MeasureDone`, close out.
pub(super) fn run_thread<L: Load>(
    index: usize,
    setup: io::Result<L>,
    notes: &Sender<Note>,
    go: &Receiver<()>,
) -> io::Result<ThreadResult> {
    // Report even a failed setup, so the main thread never waits for us.
    let _ = notes.send(Note::Connected(index));
    let mut load = setup?;
    if go.recv().is_err() {
        return Err(io::Error::other("the bench stopped before the load began"));
    }
    let measured = run_load(&mut load, notes);
    let _ = notes.send(Note::MeasureDone(index));
    let (warmup_end, measure_end, cpu) = measured?;
    let (run, udp) = load.close_out()?;
    Ok(ThreadResult {
        hist: run.hist,
        messages: run.messages,
        bytes: run.bytes,
        warmup_end,
        measure_end,
        cpu,
        counts: run.counts,
        failures: run.failures,
        udp,
    })
}

/// Drive the load until no connection carries it; returns (warmup end,
/// measured end, this thread's CPU time in between).
fn run_load<L: Load>(
    load: &mut L,
    notes: &Sender<Note>,
) -> io::Result<(Instant, Instant, Option<Duration>)> {
    let run = load.run_mut();
    let (warmup, duration) = (run.plan.warmup, run.plan.duration);
    run.run_start = run.now();
    run.warmup_end = run.run_start + warmup.as_nanos() as u64;
    run.deadline = duration.map(|d| run.warmup_end + d.as_nanos() as u64);
    let mut warmed = warmup.is_zero();
    let mut cpu_start = if warmed { procfs::thread_cpu() } else { None };
    let mut measure_end: Option<(u64, Option<Duration>)> = None;

    load.start(load.run().now());

    let mut events = Events::new();
    let mut next_tick = load.run().now() + load.run().tick;
    // After Ctrl-C, echoes still owed get a grace to come back, not the
    // whole --stall-timeout: the user asked for the report now.
    let mut give_up: Option<u64> = None;
    while load.loaded() && give_up.is_none_or(|at| load.run().now() < at) {
        let run = load.run();
        let mut wake = give_up.unwrap_or(u64::MAX);
        if !warmed {
            wake = wake.min(run.warmup_end);
        }
        if measure_end.is_none() {
            if let Some(deadline) = run.deadline {
                wake = wake.min(deadline);
            }
            if let Some(s) = &run.schedule {
                wake = wake.min(s.due(run.run_start, s.next));
            }
        }
        turn(load, &mut events, wake, &mut next_tick)?;

        let run = load.run();
        let now = run.now();
        if !warmed && now >= run.warmup_end {
            warmed = true;
            cpu_start = procfs::thread_cpu();
        }
        if measure_end.is_none() {
            // Ctrl-C ends the measured phase as its deadline would (the
            // tick wakes the loop often enough to notice).
            give_up = run.plan.interrupted.grace_end(now);
            let end = match give_up {
                Some(_) => Some(now),
                None => run.deadline.filter(|&d| now >= d),
            };
            if let Some(end) = end {
                measure_end = Some((end, cpu_since(cpu_start)));
                let _ = notes.send(Note::MeasureDone(run.index));
                load.stop_starting();
            } else if run.schedule.is_some() {
                load.issue_due(now);
            }
        }
    }
    let run = load.run();
    let (end, cpu) = match measure_end {
        Some(m) => m,
        // Every connection ended early: the run lasted until then, so a
        // rate over the few echoes before the faults is not a rate.
        None if !run.failures.is_empty() => (run.now().max(run.warmup_end), cpu_since(cpu_start)),
        // `--messages`: measured until the last counted echo came back.
        None => (run.last_measured.max(run.warmup_end), cpu_since(cpu_start)),
    };
    Ok((run.instant(run.warmup_end), run.instant(end), cpu))
}

/// One round of the loop: wait until `wake` at the latest, handle the
/// events and the resume list, and run the tick work when it is due.
pub(super) fn turn<L: Load>(
    load: &mut L,
    events: &mut Events,
    wake: u64,
    next_tick: &mut u64,
) -> io::Result<()> {
    let run = load.run();
    let now = run.now();
    let wake = if run.resume.is_empty() {
        wake.min(*next_tick)
    } else {
        now // work is waiting: just collect what is ready
    };
    events.clear();
    run.poller
        .wait(events, Some(Duration::from_nanos(wake.saturating_sub(now))))?;
    for ev in events.iter() {
        load.on_event(ev.key, ev.readable, ev.writable);
    }
    let mut resume = std::mem::take(&mut load.run_mut().resume);
    for &key in &resume {
        load.on_event(key, true, true);
    }
    resume.clear();
    let run = load.run_mut();
    if run.resume.is_empty() {
        run.resume = resume; // keep the allocation
    }
    let now = run.now();
    if now >= *next_tick {
        load.on_tick(now);
        *next_tick = now + load.run().tick;
    }
    Ok(())
}

fn cpu_since(start: Option<Duration>) -> Option<Duration> {
    let end = procfs::thread_cpu()?;
    Some(end.saturating_sub(start?))
}
