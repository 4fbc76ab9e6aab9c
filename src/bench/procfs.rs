//! CPU time and memory from Linux's `/proc`, for CPU-per-message figures of
//! the bench's own threads and of the server (`--server-pid`). On other
//! systems (or without `/proc`) every reading is `None` and the report
//! leaves those figures out.

use std::path::Path;
use std::time::Duration;

/// `/proc/*/stat` reports CPU times in USER_HZ ticks, which the Linux ABI
/// fixes at 100 per second on every architecture (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time of the calling thread. `schedstat` counts it in nanoseconds;
/// `stat` only in 10 ms ticks, too coarse for a short run, so it is the
/// fallback for kernels built without schedstat.
pub fn thread_cpu() -> Option<Duration> {
    schedstat_cpu("/proc/thread-self/schedstat").or_else(|| stat_cpu("/proc/thread-self/stat"))
}

/// CPU time of a whole process: the sum over its threads' `schedstat`, or
/// the process's `stat` ticks where there is none.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok();
    let precise = threads.and_then(|dir| {
        // A thread that ended between the listing and the read is skipped.
        let times: Vec<_> = dir
            .filter_map(|task| schedstat_cpu(task.ok()?.path().join("schedstat")))
            .collect();
        (!times.is_empty()).then(|| times.into_iter().sum())
    });
    precise.or_else(|| stat_cpu(format!("/proc/{pid}/stat")))
}

/// Resident set size of a process in KiB (`VmRSS`).
pub fn process_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kib(&status)
}

fn stat_cpu(path: impl AsRef<Path>) -> Option<Duration> {
    parse_stat_cpu(&std::fs::read_to_string(path).ok()?)
}

fn schedstat_cpu(path: impl AsRef<Path>) -> Option<Duration> {
    parse_schedstat_cpu(&std::fs::read_to_string(path).ok()?)
}

/// The first field of a `schedstat` line: nanoseconds spent on a CPU.
fn parse_schedstat_cpu(schedstat: &str) -> Option<Duration> {
    let nanos = schedstat.split_ascii_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Fields 14 and 15 (utime, stime) of a `stat` line. The command name in
/// field 2 may hold spaces and parentheses, so count from its last ')'.
fn parse_stat_cpu(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_odd_command_name() {
        let line = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat_cpu(line), Some(Duration::from_millis(3000)));
    }

    #[test]
    fn rss_from_status() {
        let status = "Name:\tpollmux\nVmPeak:\t  10000 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n";
        assert_eq!(parse_rss_kib(status), Some(2048));
    }

    #[test]
    fn schedstat_line() {
        let line = "1357374 2500 17\n";
        assert_eq!(
            parse_schedstat_cpu(line),
            Some(Duration::from_nanos(1_357_374))
        );
        assert_eq!(parse_schedstat_cpu(""), None);
    }

    /// A few milliseconds of work show up: ticks of 10 ms would read 0.
    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_is_finer_than_a_tick() {
        let before = thread_cpu().expect("thread cpu");
        let until = std::time::Instant::now() + Duration::from_millis(3);
        let mut spins = 0u64;
        while std::time::Instant::now() < until {
            spins = std::hint::black_box(spins + 1);
        }
        // The kernel books a running thread's time when it is switched
        // out (or at a tick): leave the CPU once so the reading is current.
        std::thread::sleep(Duration::from_millis(1));
        let spent = thread_cpu().expect("thread cpu") - before;
        assert!(
            spent > Duration::ZERO && spent < Duration::from_secs(1),
            "{spent:?} for 3 ms of spinning"
        );
        let process = process_cpu(std::process::id()).expect("process cpu");
        assert!(process >= spent, "{process:?} < {spent:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_figures_are_readable() {
        assert!(thread_cpu().is_some());
        assert!(process_cpu(std::process::id()).is_some());
        assert!(process_rss_kib(std::process::id()).unwrap_or(0) > 0);
    }
}
