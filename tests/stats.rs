//! Seeing the loop: `--stats-interval` lines (text and JSON, a final line at
//! shutdown beside the usual summary) and `--trace-events` (one line per
//! readiness event naming the handler that ran).

mod util;

use util::{connect, Server, PATIENCE};

const KEYS: [&str; 16] = [
    "uptime_s",
    "open",
    "accepted",
    "closed",
    "failed",
    "bytes_in",
    "bytes_out",
    "reads_paused",
    "peak_pending",
    "udp_in",
    "udp_out",
    "udp_dropped",
    "udp_guarded",
    "udp_truncated",
    "udp_queued",
    "final",
];

fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn json_stats_lines_parse_and_carry_every_counter() {
    let server = Server::start(&[
        "--udp",
        "--stats-interval",
        "50ms",
        "--stats-format",
        "json",
    ]);
    let mut stream = connect(server.addr());
    util::assert_echo(&mut stream, b"hello stats");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.send_to(b"dgram", server.udp_addr()).expect("send");
    assert!(
        server.wait_for_stderr_line(PATIENCE, |l| {
            l.starts_with('{') && l.contains("\"bytes_out\":11,") && l.contains("\"udp_out\":1,")
        }),
        "a stats line with the TCP and UDP traffic"
    );
    let lines = json_lines(&server.stderr());
    assert!(!lines.is_empty());
    for line in &lines {
        let object = line.as_object().expect("an object per line");
        for key in KEYS {
            assert!(object.contains_key(key), "{key} missing in {line}");
        }
        assert_eq!(object.len(), KEYS.len(), "stable keys, no extra: {line}");
    }
    let last = lines.last().expect("a line");
    assert_eq!(last["open"], 1);
    assert_eq!(last["accepted"], 1);
    assert_eq!(last["bytes_in"], 11);
    assert_eq!(last["udp_in"], 1);
    assert_eq!(last["final"], false);
}

#[cfg(unix)]
#[test]
fn shutdown_prints_a_final_stats_line_beside_the_summary() {
    let mut server = Server::start(&["--stats-interval", "1m"]);
    let mut stream = connect(server.addr());
    util::assert_echo(&mut stream, b"0123456789");
    drop(stream);
    server.signal("TERM");
    let status = server.wait_exit(PATIENCE).expect("server exits");
    assert_eq!(status.code(), Some(0));
    let stderr = server.stderr();
    assert!(
        stderr.contains("1 connection served") && stderr.contains("10 bytes echoed"),
        "the summary line stays as it was:\n{stderr}"
    );
    let last = stderr
        .lines()
        .find(|l| l.starts_with("stats: "))
        .unwrap_or_else(|| panic!("a final stats line:\n{stderr}"));
    assert!(last.ends_with(" final"), "{last}");
    for field in ["accepted=1", "closed=1", "bytes_in=10", "bytes_out=10"] {
        assert!(last.contains(&format!(" {field} ")), "{field} in {last}");
    }
}

#[test]
fn backpressure_pauses_are_counted() {
    // A client that sends more than --max-pending and reads nothing.
    let server = Server::start(&["--max-pending", "4k", "--stats-interval", "50ms"]);
    let mut stream = connect(server.addr());
    stream
        .set_write_timeout(Some(std::time::Duration::from_millis(300)))
        .expect("timeout");
    let chunk = [7u8; 64 * 1024];
    let mut sent = 0;
    while sent < 64 << 20 {
        match std::io::Write::write(&mut stream, &chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // the kernel buffers are full: we are stalled
        }
    }
    assert!(
        server.wait_for_stderr_line(PATIENCE, |l| {
            l.starts_with("stats: ") && l.contains(" peak_pending=4096 ")
        }),
        "pending reached the 4k cap"
    );
    let line = server
        .stderr()
        .lines()
        .rev()
        .find(|l| l.starts_with("stats: "))
        .map(str::to_owned)
        .expect("a line");
    assert!(!line.contains(" reads_paused=0 "), "{line}");
}

#[test]
fn trace_events_name_each_handler() {
    let server = Server::start(&["--trace-events"]);
    let mut stream = connect(server.addr());
    util::assert_echo(&mut stream, b"traced");
    util::send_and_half_close(&mut stream, b"");
    assert!(util::read_to_eof(&mut stream).is_empty());
    assert!(
        server.wait_for_stderr("exceptional::close", PATIENCE),
        "the close shows up"
    );
    let stderr = server.stderr();
    let events: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("event: "))
        .collect();
    let accept = events
        .iter()
        .find(|l| l.contains("readable::accept"))
        .unwrap_or_else(|| panic!("an accept event:\n{stderr}"));
    assert!(accept.contains("(listener 127.0.0.1:"), "{accept}");
    assert!(accept.contains("[readable]"), "{accept}");
    assert!(accept.contains("1 accepted"), "{accept}");
    let echo = events
        .iter()
        .find(|l| l.contains("readable::receive: 6 bytes in, 6 out"))
        .unwrap_or_else(|| panic!("the echo event:\n{stderr}"));
    assert!(echo.contains("(conn #1 "), "{echo}");
    assert!(echo.contains(" -> "), "{echo}");
    assert!(
        events
            .iter()
            .any(|l| l.contains("readable::receive") && l.ends_with("-> closed")),
        "EOF: receive, then close\n{stderr}"
    );
    // The backend is named on every line.
    assert!(events.iter().all(|l| {
        let backend = l.split_whitespace().nth(1).unwrap_or("");
        ["epoll", "kqueue", "IOCP/AFD", "poll", "event"].contains(&backend)
    }));
}

#[test]
fn without_the_flag_there_is_no_trace() {
    let server = Server::start(&[]);
    let mut stream = connect(server.addr());
    util::assert_echo(&mut stream, b"quiet");
    drop(stream);
    let mut other = connect(server.addr());
    util::assert_echo(&mut other, b"still quiet");
    assert!(
        !server.stderr().lines().any(|l| l.starts_with("event: ")),
        "{}",
        server.stderr()
    );
}
