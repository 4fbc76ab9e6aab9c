//! `--stats-interval`: the loop's counters as one line on stderr every
//! period, as `key=value` text or a JSON object per line (`--stats-format`);
//! with the interval set, a last line marked final at shutdown.
//!
//! The lines are written straight to stderr, not through the logger: they
//! were asked for, so `-q` does not hide them, and a JSON line is the whole
//! line. The keys are stable (the README documents them).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use super::{Server, Stats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum StatsFormat {
    /// `stats: uptime_s=1.0 open=2 ...`
    #[default]
    Text,
    /// `{"uptime_s":1.0,"open":2,...}`
    Json,
}

/// When the next line is due.
pub struct Reporter {
    every: Duration,
    pub next: Instant,
    format: StatsFormat,
}

impl Reporter {
    pub fn new(every: Duration, format: StatsFormat, now: Instant) -> Option<Reporter> {
        Some(Reporter {
            every,
            next: now.checked_add(every)?,
            format,
        })
    }
}

/// Print a line if one is due (called once per loop turn).
pub fn tick(server: &mut Server, now: Instant) {
    let Some(reporter) = &server.reporter else {
        return;
    };
    if reporter.next > now {
        return;
    }
    emit(server, false);
    if let Some(reporter) = &mut server.reporter {
        // Skip the periods the loop slept through rather than print a
        // burst: jump to the first period boundary after `now`, in one step.
        let behind = now.duration_since(reporter.next).as_nanos();
        let periods = behind / reporter.every.as_nanos().max(1) + 1;
        let skip = u32::try_from(periods)
            .ok()
            .and_then(|n| reporter.every.checked_mul(n));
        reporter.next = skip
            .and_then(|d| reporter.next.checked_add(d))
            .unwrap_or(now + reporter.every);
    }
}

/// Print the line for the counters now (`last`: the one at shutdown).
pub fn emit(server: &Server, last: bool) {
    let Some(reporter) = &server.reporter else {
        return;
    };
    let line = render(
        reporter.format,
        &server.stats,
        server.conns.len(),
        server.udp.queued(),
        server.started.elapsed(),
        last,
    );
    // A broken stderr must not stop the server (see logging.rs).
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Track what one event did to a connection's pending bytes: the peak, and
/// whether it just reached the cap, which pauses reading it (backpressure).
pub fn note_pending(stats: &mut Stats, before: usize, after: usize, max_pending: usize) {
    stats.peak_pending = stats.peak_pending.max(after);
    if before < max_pending && after >= max_pending {
        stats.reads_paused += 1;
    }
}

fn render(
    format: StatsFormat,
    s: &Stats,
    open: usize,
    udp_queued: usize,
    uptime: Duration,
    last: bool,
) -> String {
    let fields: [(&str, u64); 14] = [
        ("open", open as u64),
        ("accepted", s.accepted),
        ("closed", s.closed),
        ("failed", s.failed),
        ("bytes_in", s.bytes_in),
        ("bytes_out", s.bytes_out),
        ("reads_paused", s.reads_paused),
        ("peak_pending", s.peak_pending as u64),
        ("udp_in", s.udp.received),
        ("udp_out", s.udp.sent),
        ("udp_dropped", s.udp.dropped()),
        ("udp_guarded", s.udp.guarded),
        ("udp_truncated", s.udp.truncated),
        ("udp_queued", udp_queued as u64),
    ];
    let uptime = uptime.as_secs_f64();
    let mut line = String::with_capacity(320);
    match format {
        StatsFormat::Text => {
            let _ = write!(line, "stats: uptime_s={uptime:.1}");
            for (key, value) in fields {
                let _ = write!(line, " {key}={value}");
            }
            if last {
                line.push_str(" final");
            }
        }
        StatsFormat::Json => {
            let _ = write!(line, "{{\"uptime_s\":{uptime:.1}");
            for (key, value) in fields {
                let _ = write!(line, ",\"{key}\":{value}");
            }
            let _ = write!(line, ",\"final\":{last}}}");
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_every_counter() {
        let mut s = Stats {
            accepted: 3,
            bytes_in: 10,
            ..Stats::default()
        };
        s.udp.received = 4;
        s.udp.guarded = 1;
        let text = render(StatsFormat::Text, &s, 2, 0, Duration::from_secs(1), false);
        assert!(
            text.starts_with("stats: uptime_s=1.0 open=2 accepted=3"),
            "{text}"
        );
        assert!(text.contains(" udp_in=4 ") && text.contains(" udp_dropped=1 "));
        let json = render(StatsFormat::Json, &s, 2, 0, Duration::from_secs(1), true);
        assert!(json.starts_with("{\"uptime_s\":1.0,\"open\":2,"), "{json}");
        assert!(json.ends_with(",\"final\":true}\n"), "{json}");
    }

    #[test]
    fn a_pause_is_counted_when_pending_reaches_the_cap() {
        let mut s = Stats::default();
        note_pending(&mut s, 0, 100, 100);
        note_pending(&mut s, 100, 100, 100); // still paused: not a new pause
        note_pending(&mut s, 100, 40, 100);
        assert_eq!((s.reads_paused, s.peak_pending), (1, 100));
    }
}
