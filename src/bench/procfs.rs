//! CPU time and memory from Linux's `/proc`, for CPU-per-message figures of
//! the bench's own threads and of the server (`--server-pid`). On other
//! systems (or without `/proc`) every reading is `None` and the report
//! leaves those figures out.

use std::time::Duration;

/// `/proc` reports CPU times in USER_HZ ticks, which the Linux ABI fixes at
/// 100 per second on every architecture (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of the calling thread.
pub fn thread_cpu() -> Option<Duration> {
    stat_cpu("/proc/thread-self/stat")
}

/// User + system CPU time of a whole process (all its threads).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// Resident set size of a process in KiB (`VmRSS`).
pub fn process_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kib(&status)
}

fn stat_cpu(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    parse_stat_cpu(&stat)
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

    #[cfg(target_os = "linux")]
    #[test]
    fn own_figures_are_readable() {
        assert!(thread_cpu().is_some());
        assert!(process_cpu(std::process::id()).is_some());
        assert!(process_rss_kib(std::process::id()).unwrap_or(0) > 0);
    }
}
