//! `pollmux client` against `pollmux serve`, and against servers that fail
//! it in each way the client must report: refused, unknown host, a wrong
//! echo, no echo in time, a connection closed early. With `--udp`, against
//! a UDP echo in the test that loses, corrupts or duplicates a datagram.

mod util;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use util::{run_pollmux, Mischief, Server, UdpEcho};

#[test]
fn client_against_serve_prints_each_echo_and_exits_0() {
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let out = run_pollmux(&[
        "client",
        "--port",
        &port,
        "--count",
        "3",
        "--interval",
        "0.05",
    ]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "test\ntest\ntest\n", "{out}");
}

#[test]
fn client_sends_a_custom_message() {
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let message = "héllo wörld, 5 × 7 ≠ 36";
    let out = run_pollmux(&[
        "client",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--message",
        message,
        "--count",
        "2",
        "--interval",
        "10ms",
    ]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, format!("{message}\n{message}\n"), "{out}");
}

#[test]
fn client_against_a_closed_port_exits_1_with_one_line() {
    let port = util::closed_port().to_string();
    let out = run_pollmux(&["client", "--port", &port, "--count", "1"]);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "names the address\n{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn client_with_an_unknown_host_exits_1_with_one_line() {
    let out = run_pollmux(&["client", "--host", "no-such-host.invalid", "--count", "1"]);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(
        out.stderr.contains("no-such-host.invalid"),
        "names the host\n{out}"
    );
}

/// A fake server on 127.0.0.1 that handles one connection with `serve`.
fn fake_server(serve: impl FnOnce(std::net::TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
    let port = listener.local_addr().expect("addr").port().to_string();
    thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            stream
                .set_read_timeout(Some(util::PATIENCE))
                .expect("timeout");
            serve(stream);
        }
    });
    port
}

#[test]
fn client_reports_a_wrong_echo_and_exits_1() {
    let port = fake_server(|mut stream| {
        let mut buf = [0u8; 4];
        if stream.read_exact(&mut buf).is_ok() {
            let _ = stream.write_all(b"tesT");
        }
        // Hold the connection until the client gives up.
        let _ = stream.read(&mut buf);
    });
    let out = run_pollmux(&["client", "--port", &port, "--count", "1"]);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(out.stderr.contains("differs"), "{out}");
    assert!(out.stdout.is_empty(), "a wrong echo is not printed\n{out}");
}

#[test]
fn client_gives_up_after_its_timeout() {
    let port = fake_server(|mut stream| {
        // Read, never answer, hold the connection.
        let mut buf = [0u8; 64];
        while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
    });
    let started = Instant::now();
    let out = run_pollmux(&[
        "client",
        "--port",
        &port,
        "--count",
        "1",
        "--timeout",
        "0.5",
    ]);
    let took = started.elapsed();
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(
        took < Duration::from_secs(10),
        "--timeout 0.5 took {took:?}\n{out}"
    );
    eprintln!("client gave up after {took:?}: {}", out.stderr.trim());
}

/// `--timeout` bounds the whole echo, not each read: a server that trickles
/// the echo a byte every 300 ms (2.4 s for 8 bytes) fails a 1 s timeout.
/// It passed, since every single read came within the second.
#[test]
fn client_timeout_bounds_the_whole_echo() {
    let port = fake_server(|mut stream| {
        let mut buf = [0u8; 8];
        if stream.read_exact(&mut buf).is_ok() {
            for byte in buf {
                thread::sleep(Duration::from_millis(300));
                if stream.write_all(&[byte]).is_err() {
                    return;
                }
            }
        }
    });
    let args = [
        "client", "--port", &port, "-c", "1", "-t", "1", "-m", "abcdefgh",
    ];
    let out = run_pollmux(&args);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    // About 3 of the 8 bytes are in by then; a slow machine may see fewer.
    assert!(out.stderr.contains("no complete echo within 1s ("), "{out}");
    assert!(out.stderr.contains(" of 8 bytes)"), "{out}");
}

#[test]
fn client_reports_a_connection_closed_before_the_echo() {
    let port = fake_server(|mut stream| {
        let mut buf = [0u8; 4];
        let _ = stream.read_exact(&mut buf);
        let _ = stream.write_all(b"te");
        // Dropping the stream closes it after half an echo.
    });
    let out = run_pollmux(&["client", "--port", &port, "--count", "1"]);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(out.stdout.is_empty(), "{out}");
}

/// `--count 0` must not send a message: either it is refused as a usage
/// error (exit 2) or the client sends nothing and exits 0.
#[test]
fn client_count_zero_sends_nothing() {
    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let out = run_pollmux(&["client", "--port", &port, "--count", "0"]);
    match out.code() {
        2 => out.assert_one_error_line(),
        0 => assert_eq!(out.stdout, "", "--count 0 printed an echo\n{out}"),
        _ => panic!("--count 0: want exit 0 (nothing sent) or 2 (usage)\n{out}"),
    }
}

/// An echo server must send back exactly what it got: a surplus right
/// behind the echo is reported, even on the last message.
#[test]
fn client_reports_bytes_beyond_the_echo_and_exits_1() {
    let port = fake_server(|mut stream| {
        let mut buf = [0u8; 4];
        if stream.read_exact(&mut buf).is_ok() {
            let _ = stream.write_all(b"testEXTRA");
        }
        let _ = stream.read(&mut buf);
    });
    let out = run_pollmux(&["client", "--port", &port, "--count", "1"]);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(out.stderr.contains("more bytes than"), "{out}");
    assert!(out.stderr.contains("EXTRA"), "{out}");
}

// ------------------------------------------------------------------ --udp

fn udp_client(echo: &UdpEcho, args: &[&str]) -> util::Finished {
    let port = echo.addr.port().to_string();
    let mut all = vec!["client", "--udp", "--port", &port, "--interval", "10ms"];
    all.extend_from_slice(args);
    run_pollmux(&all)
}

#[test]
fn udp_client_prints_each_echo_and_exits_0() {
    let echo = UdpEcho::start(Mischief::None);
    let out = udp_client(&echo, &["--count", "3", "--message", "héllo"]);
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.stdout, "héllo\nhéllo\nhéllo\n", "{out}");
    assert!(out.stderr.is_empty(), "{out}");
}

#[test]
fn udp_client_reports_a_lost_datagram_goes_on_and_exits_1() {
    let echo = UdpEcho::start(Mischief::Drop { at: 1 });
    let out = udp_client(&echo, &["--count", "3", "--timeout", "0.3"]);
    assert_eq!(out.code(), 1, "{out}");
    assert_eq!(out.stdout, "test\ntest\n", "the other two came back\n{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "pollmux: datagram 2: no echo within 300ms (lost)",
            "pollmux: 1 of 3 datagrams lost, 0 echoed wrong",
        ],
        "{out}"
    );
}

#[test]
fn udp_client_reports_a_wrong_echo_and_exits_1() {
    let echo = UdpEcho::start(Mischief::Corrupt { at: 0 });
    let out = udp_client(&echo, &["--count", "2"]);
    assert_eq!(out.code(), 1, "{out}");
    assert_eq!(
        out.stdout, "test\n",
        "only the sound echo is printed\n{out}"
    );
    assert!(
        out.stderr
            .contains("datagram 1: echo differs: sent \"test\", got \"tesu\""),
        "{out}"
    );
    assert!(
        out.stderr.contains("0 of 2 datagrams lost, 1 echoed wrong"),
        "{out}"
    );
}

#[test]
fn udp_client_shows_a_duplicate_without_failing() {
    let echo = UdpEcho::start(Mischief::Duplicate { at: 0 });
    let out = udp_client(&echo, &["--count", "2"]);
    assert_eq!(out.code(), 0, "UDP may duplicate\n{out}");
    assert_eq!(out.stdout, "test\ntest\n", "{out}");
    assert!(
        out.stderr
            .contains("an extra echo arrived (late or duplicated): \"test\""),
        "{out}"
    );
}

#[test]
fn udp_client_against_a_closed_port_exits_1_with_one_line() {
    let port = util::closed_udp_port().to_string();
    let out = run_pollmux(&["client", "--udp", "--port", &port, "--count", "1"]);
    assert_eq!(out.code(), 1, "{out}");
    if cfg!(windows) {
        // wine passes the port-unreachable on late or not at all: the
        // datagram is then reported lost, which also fails the run.
        assert!(
            out.stderr.contains("no UDP server") || out.stderr.contains("1 of 1 datagrams lost"),
            "{out}"
        );
        return;
    }
    out.assert_one_error_line();
    assert!(out.stderr.contains(&format!("127.0.0.1:{port}")), "{out}");
    assert!(out.stderr.contains("no UDP server"), "{out}");
}

/// Unix only: Windows caps a command line (and a variable) at 32,767
/// characters, so a message this large cannot reach the client there.
#[cfg(unix)]
#[test]
fn udp_client_refuses_a_message_larger_than_a_datagram() {
    let message = "x".repeat(65_508);
    let out = run_pollmux(&["client", "--udp", "--message", &message, "--count", "1"]);
    assert_eq!(out.code(), 2, "{out}");
    out.assert_one_error_line();
    assert!(out.stderr.contains("--message"), "{out}");
    assert!(out.stderr.contains("65507"), "{out}");
}

#[test]
fn udp_client_flag_is_explained_and_read_from_the_environment() {
    let out = run_pollmux(&["client", "--help"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("--udp"), "{out}");
    assert!(out.stdout.contains("POLLMUX_CLIENT_UDP"), "{out}");
    let echo = UdpEcho::start(Mischief::None);
    let mut cmd = util::pollmux();
    cmd.args(["client", "--count", "2", "--interval", "10ms", "--port"])
        .arg(echo.addr.port().to_string())
        .env("POLLMUX_CLIENT_UDP", "true");
    let out = util::run(cmd, util::PATIENCE);
    assert_eq!(out.code(), 0, "a UDP echo only answers datagrams\n{out}");
    assert_eq!(out.stdout, "test\ntest\n", "{out}");
}

/// Ctrl-C ends a client that runs until interrupted the way `--count` ends
/// one: at once (not after its interval), exit 0, every echo printed; over
/// UDP too. A second interrupt while an echo is awaited leaves at once
/// (exit 130). Unix only: the test sends signals.
#[cfg(unix)]
#[test]
fn client_interrupted_ends_as_count_would() {
    let server = Server::start(&["--udp"]);
    let port = server.addr().port().to_string();
    for udp in [&[][..], &["--udp"]] {
        let mut cmd = util::pollmux();
        cmd.args(["client", "--port", &port, "--interval", "60"])
            .args(udp);
        // Ready once the first echo is printed (its line ends in a newline).
        let mut client = Server::spawn(cmd, 0);
        let asked = Instant::now();
        client.signal("INT");
        let status = client.wait_exit(util::PATIENCE).expect("client exits");
        assert!(asked.elapsed() < Duration::from_secs(5), "{udp:?}");
        assert_eq!(status.code(), Some(0), "{udp:?}\n{}", client.stderr());
        assert_eq!(client.stdout(), "test\n", "{udp:?}");
    }

    // Over UDP too: the first interrupt lets the datagram's echo, held
    // back 1 s, arrive (it died of EINTR: 'Interrupted system call').
    let held = Server::start(&["--udp", "--delay", "1s", "--stats-interval", "20ms"]);
    let port = held.addr().port().to_string();
    let mut cmd = util::pollmux();
    cmd.args(["client", "--udp", "--port", &port, "--timeout", "30"]);
    let mut client = Server::launch(cmd);
    let waiting = held.wait_for_stderr_line(util::PATIENCE, |l| l.contains(" udp_in=1 "));
    assert!(waiting, "{}", held.stderr());
    client.signal("INT");
    let status = client.wait_exit(util::PATIENCE).expect("client exits");
    assert_eq!(status.code(), Some(0), "{}", client.stderr());
    assert_eq!(client.stdout(), "test\n");

    // Its echo held back for a minute: the first interrupt waits for it,
    // the second does not.
    let slow = Server::start(&["--delay", "60s", "--stats-interval", "20ms"]);
    let port = slow.addr().port().to_string();
    let mut cmd = util::pollmux();
    cmd.args(["client", "--port", &port, "--timeout", "120"]);
    let mut client = Server::launch(cmd);
    let waiting = slow.wait_for_stderr_line(util::PATIENCE, |l| l.contains(" bytes_in=4 "));
    assert!(waiting, "{}", slow.stderr());
    client.signal("INT");
    // Further apart than a copy of the first signal can be (100 ms).
    thread::sleep(Duration::from_millis(300));
    assert!(
        client.is_running(),
        "the first interrupt waits for the echo"
    );
    client.signal("INT");
    let status = client.wait_exit(util::PATIENCE).expect("client exits");
    assert_eq!(status.code(), Some(130), "{}", client.stderr());
}

/// Ctrl-C while the client is still connecting (to a listener whose backlog
/// is full, so the handshake never completes) exits 130 at once and says
/// why: there is no echo to finish. It waited out --timeout and exited 1.
#[cfg(target_os = "linux")]
#[test]
fn client_interrupted_while_connecting_exits_130() {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    listener.bind(&addr.into()).expect("bind");
    listener.listen(0).expect("listen");
    let addr = listener
        .local_addr()
        .expect("local addr")
        .as_socket()
        .expect("inet");
    // Fill the accept queue (room for one with backlog 0): later SYNs are
    // dropped and their connects hang.
    let fillers: Vec<_> = (0..3)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
        })
        .collect();
    assert!(!fillers.is_empty());
    let port = addr.port().to_string();
    let mut cmd = util::pollmux();
    cmd.args(["client", "--port", &port, "--timeout", "60"]);
    let mut client = Server::launch(cmd);
    // The client's SYN waits in SYN_SENT (state 02) towards the listener.
    let remote = format!("0100007F:{:04X}", addr.port());
    let deadline = Instant::now() + util::PATIENCE;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let syn_sent = table.lines().any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 3 && cols[2] == remote && cols[3] == "02"
        });
        if syn_sent {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client never tried to connect"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let asked = Instant::now();
    client.signal("INT");
    let status = client.wait_exit(util::PATIENCE).expect("client exits");
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{}", client.stderr());
    assert!(
        client
            .stderr()
            .contains("pollmux: interrupted before connecting"),
        "{}",
        client.stderr()
    );
    drop(fillers);
}
