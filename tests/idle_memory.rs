//! An idle connection costs the server no buffer of its own: 10,000 of them
//! must stay under 5 MB of RSS beyond the server's baseline (issue 2, item 13).

mod util;

/// Linux only: RSS and descriptor counts come from /proc.
#[cfg(target_os = "linux")]
#[test]
fn ten_thousand_idle_connections_cost_under_5_mb() {
    use std::net::TcpStream;
    use util::proc::{fd_count, rss_kib, wait_fd_count};
    use util::{assert_echo, connect, raise_fd_limit, Server, PATIENCE};

    const IDLE: usize = 10_000;
    let limit = raise_fd_limit();
    assert!(
        limit >= IDLE as u64 + 100,
        "this test needs an open-files hard limit above {IDLE} (have {limit}); \
         raise it with `ulimit -Hn`"
    );

    // The warm-up client is one more than the default cap of 10,000.
    let server = Server::start(&["--max-connections", "10100"]);
    let pid = server.pid();
    // One echo first, so the loop's shared buffers are counted in the baseline.
    let mut warm = connect(server.addr());
    assert_echo(&mut warm, b"warm-up");
    let fds_before = fd_count(pid);
    let rss_before = rss_kib(pid);

    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let stream = TcpStream::connect(server.addr())
            .unwrap_or_else(|e| panic!("connection {i} of {IDLE}: {e}"));
        idle.push(stream);
    }
    let fds = wait_fd_count(pid, PATIENCE, |n| n >= fds_before + IDLE);
    assert!(
        fds >= fds_before + IDLE,
        "server accepted only {} of {IDLE} connections",
        fds - fds_before
    );
    let rss_after = rss_kib(pid);
    let grown = rss_after.saturating_sub(rss_before);
    eprintln!(
        "RSS for {IDLE} idle connections: {rss_before} KiB -> {rss_after} KiB \
         (+{grown} KiB, {:.0} bytes per connection)",
        grown as f64 * 1024.0 / IDLE as f64
    );

    // They are idle, not dead: a sample of them still echoes.
    for (i, stream) in idle.iter_mut().enumerate().step_by(997) {
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        assert_echo(stream, format!("idle {i}").as_bytes());
    }
    assert!(
        grown < 5 * 1024,
        "{IDLE} idle connections grew the server by {grown} KiB (limit 5120 KiB)"
    );
}
