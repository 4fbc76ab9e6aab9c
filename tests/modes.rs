//! `--mode discard` (RFC 863) and `--mode chargen` (RFC 864) over TCP:
//! discard reads and drops, chargen sends its rotating line pattern exactly
//! as fast as the client reads, and stops (without spinning) when it does not.

mod util;

use std::io::Read;
use std::net::Shutdown;
use std::time::Instant;

use util::{connect, read_to_eof, send_and_half_close, Server, MODES, PATIENCE};

/// The counter `key` of the last `stats:` line whose counters satisfy `ok`,
/// waiting (bounded) for one.
fn wait_stats(server: &Server, ok: impl Fn(&str) -> bool) -> Option<String> {
    let found = server.wait_for_stderr_line(PATIENCE, |l| l.starts_with("stats: ") && ok(l));
    found.then(|| {
        server
            .stderr()
            .lines()
            .rev()
            .find(|l| l.starts_with("stats: ") && ok(l))
            .map(str::to_owned)
            .unwrap_or_default()
    })
}

fn uptime(line: &str) -> f64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("uptime_s="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no uptime in {line}"))
}

fn counter(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

#[test]
fn discard_reads_everything_and_sends_nothing() {
    let server = Server::start(&["--mode", "discard", "--stats-interval", "50ms"]);
    let mut stream = connect(server.addr());
    let data = vec![b'x'; 1 << 20];
    send_and_half_close(&mut stream, &data);
    assert!(
        read_to_eof(&mut stream).is_empty(),
        "discard answers nothing"
    );
    let line = wait_stats(&server, |l| counter(l, "bytes_in") == 1 << 20)
        .expect("the server counts every byte it dropped");
    assert_eq!(counter(&line, "bytes_out"), 0, "{line}");
}

/// Check `stream` is RFC 864's pattern from its start: 72 printable
/// characters and CR LF per line, each line one further round the ring of
/// the 95 printable ASCII characters, the first starting at '!'.
fn check_pattern(data: &[u8], first_line: usize) {
    for (i, line) in data.chunks(74).enumerate() {
        let n = first_line + i;
        for (j, &c) in line.iter().enumerate() {
            let want = match j {
                72 => b'\r',
                73 => b'\n',
                _ => b' ' + ((n + 1 + j) % 95) as u8,
            };
            assert_eq!(c, want, "line {n}, column {j}");
        }
    }
}

#[test]
fn chargen_sends_the_rotating_pattern() {
    for mode in MODES {
        let server = Server::start(&["--mode", "chargen", "--poll-mode", mode]);
        let mut stream = connect(server.addr());
        // More than one full turn of the ring (95 lines), in odd-sized reads.
        let mut data = vec![0u8; 74 * 300];
        stream.read_exact(&mut data).expect("read the pattern");
        assert!(data.starts_with(b"!\"#$%&'()*+,-./0123456789"));
        check_pattern(&data, 0);
        // Anything the client sends is dropped, not echoed into the pattern.
        std::io::Write::write_all(&mut stream, b"ignored\n").expect("send");
        let mut more = vec![0u8; 74 * 200];
        stream.read_exact(&mut more).expect("read more");
        check_pattern(&more, 300);
    }
}

#[test]
fn chargen_waits_for_a_client_that_stops_reading() {
    for mode in MODES {
        let server = Server::start(&[
            "--mode",
            "chargen",
            "--poll-mode",
            mode,
            "--stats-interval",
            "50ms",
        ]);
        let mut stream = connect(server.addr());
        let mut head = vec![0u8; 74];
        stream.read_exact(&mut head).expect("first line");
        // Not reading: the kernel's buffers fill and bytes_out must stop
        // growing. Wait (bounded) for two lines in a row with the same count.
        let started = Instant::now();
        let mut last = wait_stats(&server, |_| true).expect("a stats line");
        let stalled = loop {
            assert!(
                started.elapsed() < PATIENCE,
                "{mode}: chargen never stopped sending"
            );
            // The next line (lines are 50 ms apart; uptime has 0.1 s steps).
            let after = uptime(&last) + 0.15;
            let line = wait_stats(&server, |l| uptime(l) >= after).expect("stats go on");
            if counter(&line, "bytes_out") == counter(&last, "bytes_out") {
                break counter(&line, "bytes_out");
            }
            last = line;
        };
        assert!(stalled > 74, "{mode}: sent ahead into the buffers first");

        #[cfg(target_os = "linux")]
        {
            use std::time::Duration;
            // Stalled means idle: the loop is not spinning on writability.
            let before = util::proc::cpu_time(server.pid());
            std::thread::sleep(Duration::from_millis(500));
            let spent = util::proc::cpu_time(server.pid()) - before;
            assert!(
                spent < Duration::from_millis(150),
                "{mode}: {spent:?} of CPU in 500 ms while the client reads nothing"
            );
        }

        // Reading again resumes the stream where it stopped.
        let mut rest = vec![0u8; (stalled as usize - 74) + 74 * 100];
        stream.read_exact(&mut rest).expect("read on");
        check_pattern(&rest[..rest.len() / 74 * 74], 1);
        assert!(
            wait_stats(&server, |l| counter(l, "bytes_out") > stalled).is_some(),
            "{mode}: sending resumed"
        );
        stream.shutdown(Shutdown::Both).ok();
    }
}

/// A chargen client ends the stream by closing with pattern unread, which
/// resets the connection: that is chargen's normal end, not a failure.
#[test]
fn a_chargen_client_that_hangs_up_is_not_a_failure() {
    let server = Server::start(&["--mode", "chargen", "--stats-interval", "50ms"]);
    for _ in 0..3 {
        let mut stream = connect(server.addr());
        let mut head = vec![0u8; 74 * 10];
        stream.read_exact(&mut head).expect("ten lines");
        // Dropped with more pattern in its receive buffer: RST.
    }
    let line =
        wait_stats(&server, |l| counter(l, "closed") == 3).expect("the server closes all three");
    assert_eq!(counter(&line, "failed"), 0, "{line}");
    // The summary says what chargen did: it sent, it did not echo.
    #[cfg(unix)]
    {
        let mut server = server;
        server.signal("TERM");
        assert!(server.wait_exit(PATIENCE).is_some_and(|s| s.success()));
        let stderr = server.stderr();
        assert!(stderr.contains(" bytes sent (0 received)"), "{stderr}");
        assert!(!stderr.contains("echoed"), "{stderr}");
    }
}
