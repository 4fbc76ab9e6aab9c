//! The live progress line on stderr, once a second, only when stderr is a
//! terminal (a script or a pipe gets the final report alone).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Counters a bench thread publishes for the progress line. Each has one
/// writer (its thread, with plain stores a few times a second) and one reader.
#[derive(Debug, Default)]
pub struct Live {
    /// Messages completed so far, warmup included.
    pub completed: AtomicU64,
    /// Connections up.
    pub up: AtomicU64,
    /// Faults so far.
    pub faults: AtomicU64,
}

pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Option<(Instant, u64)>,
    shown: bool,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
            shown: false,
        }
    }

    /// Start counting rates from here (the load begins).
    pub fn rebase(&mut self, lives: &[Arc<Live>]) {
        let completed = lives
            .iter()
            .map(|l| l.completed.load(Ordering::Relaxed))
            .sum();
        self.last = Some((Instant::now(), completed));
    }

    /// Redraw the line: `stage` (connecting, running, ...), rates since the
    /// previous call, connections up and faults.
    pub fn show(&mut self, stage: &str, lives: &[Arc<Live>], total: usize, size: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let sum = |f: fn(&Live) -> &AtomicU64| -> u64 {
            lives.iter().map(|l| f(l).load(Ordering::Relaxed)).sum()
        };
        let completed = sum(|l| &l.completed);
        let up = sum(|l| &l.up);
        let faults = sum(|l| &l.faults);
        let rate = match self.last {
            Some((at, before)) if now > at => {
                completed.saturating_sub(before) as f64 / (now - at).as_secs_f64()
            }
            _ => 0.0,
        };
        self.last = Some((now, completed));
        let mib = rate * size as f64 / (1024.0 * 1024.0);
        let mut err = std::io::stderr().lock();
        // \r and "erase to end of line": the line is redrawn in place.
        let _ = write!(
            err,
            "\r{stage} {:>4.0}s  {rate:>10.0} msg/s  {mib:>9.1} MiB/s  {up}/{total} up  {faults} errors\x1b[K",
            self.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
        self.shown = true;
    }

    /// Remove the line before the report is printed.
    pub fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
