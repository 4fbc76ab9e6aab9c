//! The final report: text for people, or one flat JSON object (`--json`)
//! whose schema the README documents and `tests/bench.rs` checks. The JSON
//! is written by hand: a flat object of numbers, booleans, null and two
//! strings does not need a serialization framework in the binary.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::driver::Counts;
use super::fault::{Class, Failure};
use super::udp::UdpSummary;

/// Version of the JSON object's layout; bumped when a field changes meaning
/// or goes away (new fields may appear without a bump).
pub const SCHEMA_VERSION: u32 = 1;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub target: SocketAddr,
    pub connections: usize,
    pub idle: usize,
    pub threads: usize,
    pub size: u64,
    pub depth: usize,
    pub rate: Option<f64>,
    pub half_close: bool,
    pub warmup: Duration,
    /// The measured phase (after the warmup).
    pub elapsed: Duration,
    pub messages: u64,
    pub bytes: u64,
    pub latency: Option<Latency>,
    pub counts: Counts,
    /// The first few faults of each class, earliest first.
    pub failures: Vec<Failure>,
    /// CPU time of the bench's threads during the measured phase.
    pub bench_cpu: Option<Duration>,
    /// `--server-pid`: the server's CPU time over the same phase.
    pub server_cpu: Option<Duration>,
    /// `--server-pid`: the server's RSS before connecting and at its peak
    /// sample (all connections open).
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_kib: Option<u64>,
    /// `--udp`: the datagram counters (the JSON's `udp` object).
    pub udp: Option<UdpSummary>,
    /// Ctrl-C ended the measured phase before its planned end.
    pub interrupted: bool,
}

impl Report {
    /// No fault, every idle connection verified, the loss within bounds,
    /// and something measured (an interrupt may leave nothing).
    pub fn ok(&self) -> bool {
        self.counts.faults() == 0
            && !(self.interrupted && self.messages == 0)
            && self.counts.idle_verified == self.idle as u64
            && self.udp.as_ref().is_none_or(UdpSummary::loss_ok)
    }

    pub fn msgs_per_s(&self) -> f64 {
        per_second(self.messages as f64, self.elapsed)
    }

    pub fn mib_per_s(&self) -> f64 {
        per_second(self.bytes as f64 / (1024.0 * 1024.0), self.elapsed)
    }

    fn per_message(&self, cpu: Option<Duration>) -> Option<f64> {
        let cpu = cpu?;
        (self.messages > 0).then(|| cpu.as_secs_f64() * 1e6 / self.messages as f64)
    }

    pub fn bench_cpu_us_per_msg(&self) -> Option<f64> {
        self.per_message(self.bench_cpu)
    }

    pub fn server_cpu_us_per_msg(&self) -> Option<f64> {
        self.per_message(self.server_cpu)
    }

    /// The first fault of `class`, as its one line.
    pub fn first(&self, class: Class) -> Option<&str> {
        self.failures
            .iter()
            .find(|f| f.class == class)
            .map(|f| f.text.as_str())
    }

    pub fn mode(&self) -> String {
        let pacing = match self.rate {
            Some(rate) => format!("open loop at {rate} msg/s"),
            None => format!("closed loop, depth {}", self.depth),
        };
        match self.udp {
            Some(_) => format!("UDP, {pacing}"),
            None => pacing,
        }
    }

    /// The report for people: one `name: value` line per figure.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "target:                {}", self.target);
        let _ = writeln!(
            s,
            "load:                  {} connections on {} thread{}, {} B messages, {}{}",
            self.connections,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.size,
            self.mode(),
            if self.half_close { ", half-close" } else { "" }
        );
        let warmup = self.warmup.as_secs_f64();
        let _ = match (self.interrupted, self.elapsed.is_zero() && !self.warmup.is_zero()) {
            (true, true) => writeln!(
                s,
                "measured:              nothing: interrupted during the {warmup:.2} s warmup"
            ),
            (true, false) => writeln!(
                s,
                "measured:              {:.2} s (after {warmup:.2} s warmup), cut short by an interrupt",
                self.elapsed.as_secs_f64()
            ),
            (false, _) => writeln!(
                s,
                "measured:              {:.2} s (after {warmup:.2} s warmup)",
                self.elapsed.as_secs_f64()
            ),
        };
        let _ = writeln!(
            s,
            "messages:              {} ({:.1} msg/s)",
            self.messages,
            self.msgs_per_s()
        );
        let _ = writeln!(
            s,
            "bytes:                 {} ({:.2} MiB/s each way)",
            self.bytes,
            self.mib_per_s()
        );
        match &self.latency {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "latency (us):          p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
                    l.p50, l.p90, l.p99, l.p999, l.max
                );
            }
            None => {
                let _ = writeln!(s, "latency (us):          no message measured");
            }
        }
        let c = &self.counts;
        let _ = writeln!(
            s,
            "connections:           {} up of {}",
            c.connected,
            self.connections + self.idle
        );
        if self.idle > 0 {
            let _ = writeln!(
                s,
                "idle connections:      {} of {} echoed before and after the run",
                c.idle_verified, self.idle
            );
        }
        if c.missed_sends > 0 {
            let _ = writeln!(
                s,
                "missed sends:          {} (a connection was {} messages behind the schedule)",
                c.missed_sends,
                super::run::MAX_BEHIND
            );
        }
        let _ = writeln!(s, "connect failures:      {}", c.connect_failures);
        let _ = writeln!(s, "resets:                {}", c.resets);
        let _ = writeln!(s, "early EOFs:            {}", c.early_eofs);
        let _ = writeln!(s, "stalls:                {}", c.stalls);
        let _ = write!(s, "verification failures: {}", c.verification_failures());
        if c.early_eofs > 0 {
            let _ = write!(s, " ({} of them early EOFs)", c.early_eofs);
        }
        s.push('\n');
        if c.errors > 0 {
            let _ = writeln!(s, "other errors:          {}", c.errors);
        }
        let _ = write!(
            s,
            "ended early:           {} of {} connections",
            c.ended_early, c.connected
        );
        if c.ended_early > 0 {
            let _ = write!(
                s,
                ", after {} messages ({} bytes) verified on them",
                c.messages_before_fault, c.bytes_before_fault
            );
        }
        s.push('\n');
        if let Some(udp) = &self.udp {
            udp.write_text(&mut s);
        }
        if let Some(us) = self.bench_cpu_us_per_msg() {
            let _ = writeln!(s, "bench cpu:             {us:.2} us/msg");
        }
        if let Some(us) = self.server_cpu_us_per_msg() {
            let _ = writeln!(s, "server cpu:            {us:.2} us/msg");
        }
        if let (Some(before), Some(peak)) = (self.server_rss_before_kib, self.server_rss_kib) {
            let held = (self.connections + self.idle).max(1) as f64;
            let _ = writeln!(
                s,
                "server rss:            {before} KiB before, {peak} KiB with connections ({:.2} KiB per connection)",
                peak.saturating_sub(before) as f64 / held
            );
        }
        // The first few of each kind, so one reset among many stalls shows.
        for class in Class::ALL {
            let mut shown = 0;
            for f in self.failures.iter().filter(|f| f.class == class) {
                let label = format!("{}:", class.label());
                let _ = writeln!(s, "{label:<23}{}", f.text);
                shown += 1;
            }
            let more = c.of(class).saturating_sub(shown);
            if more > 0 {
                let _ = writeln!(s, "{:23}... and {more} more", "");
            }
        }
        let _ = writeln!(
            s,
            "result:                {}",
            if self.ok() {
                "ok"
            } else if self.interrupted && self.messages == 0 {
                "FAILED (interrupted before any echo was measured)"
            } else {
                "FAILED"
            }
        );
        s
    }

    /// The same figures as one flat JSON object on one line.
    pub fn json(&self) -> String {
        let c = &self.counts;
        let lat = |f: fn(&Latency) -> f64| num(self.latency.as_ref().map(f));
        let mut fields: Vec<(&str, String)> = vec![
            ("schema", SCHEMA_VERSION.to_string()),
            ("ok", self.ok().to_string()),
            ("target", string(&self.target.to_string())),
            ("connections", self.connections.to_string()),
            ("idle", self.idle.to_string()),
            ("threads", self.threads.to_string()),
            ("size", self.size.to_string()),
            ("depth", self.depth.to_string()),
            ("rate", num(self.rate)),
            ("half_close", self.half_close.to_string()),
            ("warmup_s", float(self.warmup.as_secs_f64())),
            ("duration_s", float(self.elapsed.as_secs_f64())),
            ("interrupted", self.interrupted.to_string()),
            ("messages", self.messages.to_string()),
            ("bytes", self.bytes.to_string()),
            ("msgs_per_s", float(self.msgs_per_s())),
            ("mib_per_s", float(self.mib_per_s())),
            ("latency_us_p50", lat(|l| l.p50)),
            ("latency_us_p90", lat(|l| l.p90)),
            ("latency_us_p99", lat(|l| l.p99)),
            ("latency_us_p999", lat(|l| l.p999)),
            ("latency_us_max", lat(|l| l.max)),
            ("connected", c.connected.to_string()),
            ("connect_failures", c.connect_failures.to_string()),
            ("resets", c.resets.to_string()),
            ("early_eofs", c.early_eofs.to_string()),
            ("stalls", c.stalls.to_string()),
            // The old name of `stalls`, kept for the readers of schema 1.
            ("timeouts", c.stalls.to_string()),
            (
                "verification_failures",
                c.verification_failures().to_string(),
            ),
            ("errors", c.errors.to_string()),
            ("idle_verified", c.idle_verified.to_string()),
            ("missed_sends", c.missed_sends.to_string()),
            ("ended_early", c.ended_early.to_string()),
            ("messages_before_fault", c.messages_before_fault.to_string()),
            ("bytes_before_fault", c.bytes_before_fault.to_string()),
            (
                "first_failure",
                opt_string(self.failures.first().map(|f| f.text.as_str())),
            ),
            ("first_reset", opt_string(self.first(Class::Reset))),
            ("first_early_eof", opt_string(self.first(Class::EarlyEof))),
            ("first_stall", opt_string(self.first(Class::Stall))),
            ("bench_cpu_us_per_msg", num(self.bench_cpu_us_per_msg())),
            ("server_cpu_us_per_msg", num(self.server_cpu_us_per_msg())),
            ("server_rss_before_kib", opt_int(self.server_rss_before_kib)),
            ("server_rss_kib", opt_int(self.server_rss_kib)),
        ];
        if let Some(udp) = &self.udp {
            fields.push(("udp", udp.json()));
        }
        let mut s = String::from("{");
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "\"{key}\":{value}");
        }
        s.push('}');
        s
    }
}

fn per_second(amount: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        amount / secs
    } else {
        0.0
    }
}

/// A finite number as JSON (JSON has no NaN or infinity: those become null).
fn float(v: f64) -> String {
    if v.is_finite() {
        // Three decimals are plenty for rates, seconds and microseconds.
        let mut s = format!("{v:.3}");
        if s.contains('.') {
            while s.ends_with('0') {
                s.pop();
            }
            if s.ends_with('.') {
                s.push('0');
            }
        }
        s
    } else {
        "null".to_owned()
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_owned(), float)
}

fn opt_int(v: Option<u64>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

fn opt_string(v: Option<&str>) -> String {
    v.map_or_else(|| "null".to_owned(), string)
}

/// A JSON string with the escapes RFC 8259 requires.
fn string(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for ch in text.chars() {
        match ch {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn json_numbers_are_plain() {
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(2.5), "2.5");
        assert_eq!(float(1234.56789), "1234.568");
        assert_eq!(float(f64::NAN), "null");
        assert_eq!(num(None), "null");
    }
}
