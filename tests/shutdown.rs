//! Shutdown: on SIGTERM/SIGINT the server stops accepting (new clients are
//! refused), flushes every echo byte it owes for up to `--shutdown-timeout`,
//! logs a summary and exits 0; a second SIGINT exits at once.
//!
//! Unix only: the tests send real signals with `kill`. Windows has no
//! signals, and Ctrl-C/Ctrl-Break can only be raised for processes sharing a
//! console (GenerateConsoleCtrlEvent), which a test harness does not have.
#![cfg(unix)]

mod util;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use util::{connect, ByteStream, Server};

/// A client that writes (nonblocking) until the kernel stops taking bytes
/// for good and never reads, so the server holds echo bytes for it that it
/// cannot send. A first WouldBlock only means the server has not caught up
/// yet (its send queue and the client's receive queue can take megabytes):
/// the client keeps offering bytes until none has been taken for 300 ms.
/// Returns the stream (made blocking again) and how much it sent.
fn stalled_client(server: &Server, seed: u64) -> (TcpStream, u64) {
    let mut stream = connect(server.addr());
    // One round trip first: the server has accepted this connection (a
    // connection still in the kernel's backlog at shutdown is reset, not
    // drained, and that is not what these tests are about).
    util::assert_echo(&mut stream, b"accepted?");
    stream.set_nonblocking(true).expect("nonblocking");
    let mut data = ByteStream::new(seed);
    let mut chunk = vec![0u8; 64 << 10];
    let mut sent = 0u64;
    let deadline = Instant::now() + util::PATIENCE;
    let mut last_progress = Instant::now();
    data.fill(&mut chunk);
    let mut unsent_from = 0;
    while last_progress.elapsed() < Duration::from_millis(300) {
        match (&stream).write(&chunk[unsent_from..]) {
            Ok(n) => {
                sent += n as u64;
                unsent_from += n;
                if unsent_from == chunk.len() {
                    data.fill(&mut chunk);
                    unsent_from = 0;
                }
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write failed after {sent} bytes: {e}"),
        }
        assert!(Instant::now() < deadline, "the kernel never pushed back");
    }
    stream.set_nonblocking(false).expect("blocking");
    (stream, sent)
}

/// Read to EOF; the bytes must be the start of the client's stream (the
/// server may drop what it had not read yet, but never reorders or invents).
fn read_prefix_to_eof(stream: &mut TcpStream, seed: u64, sent: u64) -> u64 {
    let mut expected = ByteStream::new(seed);
    let mut scratch = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut received = 0u64;
    loop {
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read after {received} bytes: {e}"));
        if n == 0 {
            return received;
        }
        expected
            .check(&buf[..n], &mut scratch)
            .unwrap_or_else(|e| panic!("echo during shutdown: {e}"));
        received += n as u64;
        assert!(
            received <= sent,
            "more came back ({received}) than was sent ({sent})"
        );
    }
}

/// A client sends 12 MiB and reads nothing; once the server has read every
/// byte (seen in /proc/net/tcp) and holds part of the echo in its own
/// buffer, SIGTERM. The client then reads all 12 MiB back, then EOF; the
/// server exits 0 with its summary.
///
/// Linux only: /proc/net/tcp is how the test knows the server has read all
/// it was sent before the signal (what it had not read is not owed).
#[cfg(target_os = "linux")]
#[test]
fn sigterm_flushes_pending_echo_then_exits_0() {
    for mode in util::MODES {
        sigterm_flushes_pending_echo(mode);
    }
}

#[cfg(target_os = "linux")]
fn sigterm_flushes_pending_echo(mode: &str) {
    const TOTAL: usize = 12 << 20;
    let mut server = Server::start(&[
        "--max-pending",
        "32m",
        "--shutdown-timeout",
        "20",
        "--poll-mode",
        mode,
    ]);
    let mut stream = connect(server.addr());
    let mut data = vec![0u8; TOTAL];
    ByteStream::new(5).fill(&mut data);
    stream.write_all(&data).expect("send 12 MiB");
    drop(data);

    // Wait until nothing is in flight towards the server and the server
    // has read everything that arrived.
    let client = stream.local_addr().expect("client addr");
    let server_addr = server.addr();
    let deadline = Instant::now() + util::PATIENCE;
    let (client_q, server_q) = loop {
        // One reading of the table for both ends, so they are consistent.
        let table = util::proc::tcp_table(false);
        let client_q = table.queues(client, server_addr);
        let server_q = table.queues(server_addr, client);
        if let (Some(c @ (0, _)), Some(s @ (_, 0))) = (client_q, server_q) {
            break (c, s);
        }
        assert!(
            Instant::now() < deadline,
            "the server did not read all it was sent (client tx/rx {client_q:?}, server {server_q:?})"
        );
        thread::sleep(Duration::from_millis(10));
    };
    // What neither the client's receive queue nor the server's send queue
    // holds is in the server's own pending buffer.
    let in_server = TOTAL as u64 - client_q.1 - server_q.0;
    eprintln!(
        "{mode}: before SIGTERM: client receive queue {} B, server send queue {} B, \
         so {in_server} B pending inside the server",
        client_q.1, server_q.0
    );
    assert!(
        in_server > 0,
        "the test needs the server to hold echo bytes"
    );

    server.signal("TERM");
    assert!(
        server.wait_for_stderr("shutting down", util::PATIENCE),
        "the server should log that it shuts down"
    );
    let received = read_prefix_to_eof(&mut stream, 5, TOTAL as u64);
    assert_eq!(
        received, TOTAL as u64,
        "every byte the server read is echoed before EOF"
    );
    drop(stream);

    let status = server
        .wait_exit(util::PATIENCE)
        .expect("the server exits once the client has its bytes");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let stderr = server.stderr();
    assert!(stderr.contains("1 connection served"), "summary: {stderr}");
    assert!(!stderr.contains("cut off"), "nobody is cut off: {stderr}");
}

/// After SIGTERM the listener is closed: a new client is refused at once
/// rather than left waiting in a backlog nobody reads. The draining client
/// still gets a clean prefix of its stream and EOF, and the server exits 0.
#[test]
fn sigterm_refuses_new_connections_while_draining() {
    let mut server = Server::start(&["--shutdown-timeout", "20"]);
    let addr = server.addr();
    let (mut stalled, sent) = stalled_client(&server, 11);

    server.signal("TERM");
    assert!(
        server.wait_for_stderr("shutting down", util::PATIENCE),
        "the server should log that it shuts down"
    );
    // The server logs "shutting down" just before it closes its listener,
    // so a connect racing that log line may still land in the backlog (and
    // be reset a moment later). Within a short, bounded time every new
    // connection must be refused.
    let logged = Instant::now();
    let mut raced = 0;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
            Ok(_) if logged.elapsed() < Duration::from_secs(1) => raced += 1,
            other => panic!("a connection after SIGTERM should be refused, got {other:?}"),
        }
        thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "new connections refused {:?} after the shutdown log line ({raced} raced it)",
        logged.elapsed()
    );
    assert!(server.is_running(), "still draining the stalled client");

    let received = read_prefix_to_eof(&mut stalled, 11, sent);
    eprintln!("stalled client: sent {sent} B, got {received} B back before EOF");
    assert!(received > 0, "the bytes the server held are flushed");
    drop(stalled);
    let status = server.wait_exit(util::PATIENCE).expect("server exits");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    assert!(server.stderr().contains(" served, "));
}

/// `--shutdown-timeout` bounds the drain: a client that never reads is cut
/// off at the deadline, and the exit is still clean (0, with the summary).
#[test]
fn shutdown_timeout_cuts_off_a_client_that_never_reads() {
    let mut server = Server::start(&["--shutdown-timeout", "1"]);
    let (_stalled, _) = stalled_client(&server, 13);
    let signalled = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(util::PATIENCE)
        .expect("the server exits at the shutdown deadline");
    let took = signalled.elapsed();
    eprintln!(
        "exit {:?} after {took:?} with a client that never reads",
        status.code()
    );
    assert_eq!(status.code(), Some(0));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "exit after {took:?}, want about 1 s"
    );
    let stderr = server.stderr();
    assert!(stderr.contains(" served, "), "summary missing");
    assert!(
        stderr.contains("1 cut off"),
        "summary should count the cut-off client"
    );
    // Every byte received is accounted for: echoed, or owed to the client
    // that was cut off.
    let figure = |before: &str| -> u64 {
        let at = stderr
            .find(before)
            .unwrap_or_else(|| panic!("no '{before}': {stderr}"));
        let digits: String = stderr[..at]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .chars()
            .rev()
            .collect::<String>()
            .parse()
            .expect("a number")
    };
    let (echoed, received) = (figure(" bytes echoed"), figure(" received)"));
    let owed = figure(" bytes owed)");
    assert!(owed > 0, "{stderr}");
    assert_eq!(echoed + owed, received, "{stderr}");
}

/// A second SIGINT ends the server at once, even while a drain is waiting
/// on a client that does not read.
#[test]
fn second_sigint_exits_at_once() {
    let mut server = Server::start(&["--shutdown-timeout", "60"]);
    let (_stalled, _) = stalled_client(&server, 17);
    server.signal("INT");
    assert!(
        server.wait_for_stderr("shutting down", util::PATIENCE),
        "the first SIGINT starts a graceful drain"
    );
    assert!(server.is_running(), "draining a client that does not read");
    // A copy of the first signal within 100 ms counts as the same request;
    // this one comes later, as a person's second Ctrl-C does.
    thread::sleep(Duration::from_millis(150));
    let second = Instant::now();
    server.signal("INT");
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("the second SIGINT exits at once");
    eprintln!(
        "second SIGINT: exit {status:?} after {:?}",
        second.elapsed()
    );
    assert!(
        status.code() == Some(130) || status.code().is_none(),
        "exit 130 (or killed by the signal), got {status:?}"
    );
}

/// An idle server stops at once on SIGTERM or SIGINT, exit 0, with the
/// summary line and nothing else on stdout but the listening line.
#[test]
fn idle_server_exits_0_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let mut server = Server::start(&[]);
        let mut client = connect(server.addr());
        util::assert_echo(&mut client, b"one client");
        client.shutdown(Shutdown::Write).expect("half-close");
        assert_eq!(util::read_to_eof(&mut client), b"");
        let started = Instant::now();
        server.signal(signal);
        let status = server.wait_exit(util::PATIENCE).expect("server exits");
        eprintln!(
            "SIG{signal}: exit {:?} after {:?}",
            status.code(),
            started.elapsed()
        );
        assert_eq!(status.code(), Some(0), "SIG{signal}");
        let stderr = server.stderr();
        assert!(
            stderr.contains("1 connection served") && stderr.contains("10 bytes echoed"),
            "SIG{signal}: summary should count the client and its bytes:\n{stderr}"
        );
        let stdout = server.stdout();
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [format!("listening on {}", server.addr())],
            "stdout holds only the listening line"
        );
    }
}

/// A restart right after a stop binds the same port at once, although the
/// stopped server's connection is still in TIME_WAIT on it (the server
/// closed first: FIN after the flush). This is what SO_REUSEADDR is for.
#[test]
fn restart_on_the_same_port_binds_at_once() {
    let mut first = Server::start(&[]);
    let addr = first.addr();
    let mut client = connect(addr);
    util::assert_echo(&mut client, b"before the restart");
    first.signal("TERM");
    // The server sends FIN first; reading it and closing leaves the
    // server's end of this connection in TIME_WAIT.
    assert_eq!(util::read_to_eof(&mut client), b"");
    drop(client);
    let status = first.wait_exit(util::PATIENCE).expect("first server exits");
    assert_eq!(status.code(), Some(0));

    let port = addr.port().to_string();
    let mut cmd = util::pollmux();
    cmd.args(["serve", "--host", "127.0.0.1", "--port", &port]);
    let second = Server::spawn(cmd, 1);
    assert_eq!(second.addr(), addr, "same address again");
    util::assert_echo(&mut connect(addr), b"after the restart");
}

/// A shutdown timeout too long to add to a clock reading (here 1e19 s) must
/// either be refused as a usage error or work: SIGTERM on an idle server
/// still ends in a clean exit 0, not a panic.
#[test]
fn a_huge_shutdown_timeout_is_refused_or_harmless() {
    match Server::try_start(&["--shutdown-timeout", "1e19"]) {
        Err(refused) => {
            assert_eq!(refused.code(), 2, "refused as a usage error\n{refused}");
            refused.assert_one_error_line();
        }
        Ok(mut server) => {
            server.signal("TERM");
            let status = server.wait_exit(util::PATIENCE).expect("server exits");
            assert_eq!(status.code(), Some(0), "exit status {status:?}");
            assert!(server.stderr().contains(" served, "));
        }
    }
}

/// SIGTERM with many clients each owed part of their echo: every client
/// gets all it sent, then EOF, and the server exits 0 with nobody cut off.
///
/// Linux only, like `sigterm_flushes_pending_echo_then_exits_0`: the test
/// waits in /proc/net/tcp until the server has read every byte sent.
#[cfg(target_os = "linux")]
#[test]
fn sigterm_flushes_every_client_then_exits_0() {
    const CLIENTS: usize = 50;
    const EACH: usize = 512 << 10;
    let mut server = Server::start(&["--max-pending", "1m", "--shutdown-timeout", "20"]);
    let server_addr = server.addr();
    let started = Instant::now();
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|i| {
            let mut stream = connect(server_addr);
            let mut data = vec![0u8; EACH];
            ByteStream::new(1000 + i as u64).fill(&mut data);
            stream.write_all(&data).expect("send");
            stream
        })
        .collect();
    eprintln!(
        "{CLIENTS} clients sent {EACH} B each in {:?}",
        started.elapsed()
    );
    // Wait until nothing is in flight towards the server and the server
    // has read everything that arrived, on every connection.
    let pairs: Vec<_> = clients
        .iter()
        .map(|c| (c.local_addr().expect("client addr"), server_addr))
        .collect();
    let deadline = Instant::now() + util::PATIENCE;
    loop {
        let table = util::proc::tcp_table(false);
        let behind = pairs
            .iter()
            .filter(|&&(client, server)| {
                !matches!(table.queues(client, server), Some((0, _)))
                    || !matches!(table.queues(server, client), Some((_, 0)))
            })
            .count();
        if behind == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not read all it was sent on {behind} connections"
        );
        thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "the server had read every byte {:?} after the start",
        started.elapsed()
    );
    let signalled = Instant::now();
    server.signal("TERM");
    for (i, stream) in clients.iter_mut().enumerate() {
        let received = read_prefix_to_eof(stream, 1000 + i as u64, EACH as u64);
        assert_eq!(received, EACH as u64, "client {i}: every byte, then EOF");
    }
    eprintln!(
        "every client had its echo {:?} after SIGTERM",
        signalled.elapsed()
    );
    drop(clients);
    let status = server.wait_exit(util::PATIENCE).expect("server exits");
    eprintln!("server exited {:?} after SIGTERM", signalled.elapsed());
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let stderr = server.stderr();
    assert!(
        stderr.contains(&format!("{CLIENTS} connections served")),
        "summary: {stderr}"
    );
    assert!(!stderr.contains("cut off"), "nobody is cut off: {stderr}");
}

/// A connected client that owes nothing and is owed nothing does not hold
/// up shutdown: it gets EOF at once, the server exits long before
/// `--shutdown-timeout`, and the summary does not count it as cut off.
#[test]
fn an_idle_connected_client_does_not_delay_shutdown() {
    let mut server = Server::start(&["--shutdown-timeout", "30"]);
    let mut idle = connect(server.addr());
    util::assert_echo(&mut idle, b"still here");
    let started = Instant::now();
    server.signal("TERM");
    assert_eq!(
        util::wait_closed(&mut idle, util::PATIENCE),
        Some(util::Closed::Eof),
        "an orderly FIN, not a reset"
    );
    let status = server.wait_exit(util::PATIENCE).expect("server exits");
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took < Duration::from_secs(10),
        "exit took {took:?}: the idle client held the 30 s drain"
    );
    let stderr = server.stderr();
    assert!(
        !stderr.contains("cut off"),
        "nothing was owed, nobody was cut off:\n{stderr}"
    );
}

/// GNU `timeout` sends SIGTERM to the server and then to its process
/// group: two signals close together (here 10 ms apart) are one request to
/// drain, not a second interrupt. The client that was owed bytes gets them all, exit 0.
#[test]
fn a_doubled_sigterm_still_drains() {
    let mut server = Server::start(&["--shutdown-timeout", "20"]);
    let (mut stalled, _) = stalled_client(&server, 23);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "kill -TERM {0}; sleep 0.01; kill -TERM {0}",
            server.pid()
        ))
        .status()
        .expect("run kill twice");
    assert!(status.success());
    // Reading now lets the drain finish: what the server had taken in
    // comes back, then EOF, and the server exits 0 having cut no one off.
    stalled.shutdown(Shutdown::Write).expect("half-close");
    let got = util::read_to_eof(&mut stalled).len();
    assert!(got > 0, "the drain delivered the pending echo");
    let status = server.wait_exit(util::PATIENCE).expect("exit");
    let stderr = server.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("second interrupt"), "{stderr}");
    assert!(!stderr.contains("cut off"), "{stderr}");
    // Plus the 9-byte round trip `stalled_client` made first.
    let echoed = format!("{} bytes echoed", got + b"accepted?".len());
    assert!(stderr.contains(&echoed), "{stderr}");
}

/// stderr is a pipe nobody reads: once it is full the loop blocks writing a
/// log line, and no drain can happen. The second interrupt must still end
/// the process at once with 130, even though its own message cannot be
/// written either.
#[cfg(target_os = "linux")]
#[test]
fn a_second_interrupt_exits_even_with_stderr_stuck() {
    use std::io::BufRead;
    use std::process::Stdio;

    let mut child = util::pollmux()
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .args(["--stats-interval", "1ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()) // never read
        .spawn()
        .expect("spawn");
    let kill = |sig: &str, pid: u32| {
        let ok = std::process::Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {pid}");
    };
    let pid = child.id();
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    io::BufReader::new(stdout)
        .read_line(&mut first)
        .expect("listening line");
    assert!(first.starts_with("listening on"), "{first}");
    // Wait (bounded) until the main thread is blocked on the full pipe. A
    // kernel that hides wait channels shows "0": then allow 2 s, in which
    // 1 ms stats lines fill a 64 KiB pipe several times over.
    let started = Instant::now();
    let wchan = || std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    loop {
        let now = wchan();
        if now.contains("pipe") {
            break;
        }
        let hidden = now.is_empty() || now == "0";
        if hidden && started.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(started.elapsed() < util::PATIENCE, "never blocked: {now}");
        thread::sleep(Duration::from_millis(10));
    }
    kill("TERM", pid);
    // Further apart than a copy of the same signal (100 ms).
    thread::sleep(Duration::from_millis(150));
    kill("TERM", pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(status.and_then(|s| s.code()), Some(130), "{status:?}");
}

/// Bytes that reached the server but were still in its kernel buffer at
/// the signal (here held back by `--slow-read`) are echoed before the FIN:
/// the last read at shutdown takes them in. Without it the client got the
/// first kilobyte or so back and then EOF.
#[cfg(target_os = "linux")]
#[test]
fn sigterm_echoes_what_was_still_unread() {
    const SENT: usize = 48 << 10;
    let mut server = Server::start(&["--slow-read", "1k", "--shutdown-timeout", "20"]);
    let server_addr = server.addr();
    let mut client = connect(server_addr);
    let mut data = vec![0u8; SENT];
    ByteStream::new(77).fill(&mut data);
    client.write_all(&data).expect("send");
    // Echo waiting at the client says the server is reading (slowly); the
    // client's empty send queue says the rest sits at the server, unread.
    let me = client.local_addr().expect("client addr");
    let deadline = Instant::now() + util::PATIENCE;
    while !matches!(
        util::proc::tcp_table(false).queues(me, server_addr),
        Some((0, rx)) if rx > 0
    ) {
        assert!(Instant::now() < deadline, "no echo yet, or bytes not sent");
        thread::sleep(Duration::from_millis(10));
    }
    server.signal("TERM");
    let received = read_prefix_to_eof(&mut client, 77, SENT as u64);
    assert_eq!(received, SENT as u64, "every byte sent before the signal");
    let status = server.wait_exit(util::PATIENCE).expect("server exits");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}

/// Clients whose handshake completed but who were not yet accepted when the
/// signal came are all taken in, however many batches that takes (it took
/// one batch of 256: with 600 waiting the rest were reset), and each gets
/// the byte it had sent back before the FIN. The server is stopped
/// (SIGSTOP) while they connect, so all of them wait in the backlog.
#[cfg(target_os = "linux")]
#[test]
fn sigterm_serves_every_client_still_in_the_backlog() {
    const CLIENTS: usize = 600;
    util::raise_fd_limit();
    let mut server = Server::start(&["--shutdown-timeout", "20"]);
    server.signal("STOP");
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|i| {
            let mut stream = connect(server.addr());
            stream.write_all(&[i as u8]).expect("send one byte");
            stream
        })
        .collect();
    server.signal("TERM");
    server.signal("CONT");
    let mut failures = Vec::new();
    for (i, stream) in clients.iter_mut().enumerate() {
        let mut got = Vec::new();
        if let Err(e) = stream.read_to_end(&mut got) {
            failures.push(format!("client {i}: {e} after {} bytes", got.len()));
        } else if got != [i as u8] {
            failures.push(format!("client {i}: got {got:?} then EOF"));
        }
    }
    drop(clients);
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients not served: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let status = server.wait_exit(util::PATIENCE).expect("server exits");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let stderr = server.stderr();
    assert!(
        stderr.contains(&format!("{CLIENTS} connections served")),
        "summary: {stderr}"
    );
}

/// The last read at shutdown is bounded by `--max-pending`, not by one
/// event's read budget (256 KiB): with a large receive buffer full at the
/// signal, every byte in it comes back. It stopped at 256 or 512 KiB.
/// The buffer is grown first by streaming through a reading client; the
/// server is then stopped (SIGSTOP) while the client fills it.
#[cfg(target_os = "linux")]
#[test]
fn sigterm_echoes_a_full_receive_buffer_up_to_max_pending() {
    const WARM: usize = 16 << 20;
    const MORE: usize = 4 << 20;
    let mut server = Server::start(&["--max-pending", "8m", "--shutdown-timeout", "20"]);
    let server_addr = server.addr();
    let client = connect(server_addr);
    let mut data = vec![0u8; WARM + MORE];
    ByteStream::new(91).fill(&mut data);
    let mut reader = client.try_clone().expect("clone");
    let echo = thread::spawn(move || read_prefix_to_eof(&mut reader, 91, (WARM + MORE) as u64));
    let mut writer = client;
    writer.write_all(&data[..WARM]).expect("warm-up stream");
    let me = writer.local_addr().expect("client addr");
    // Everything sent so far is echoed back once the server's queues and
    // ours are empty; then stop the server and fill its receive buffer.
    let deadline = Instant::now() + util::PATIENCE;
    while !matches!(
        util::proc::tcp_table(false).queues(server_addr, me),
        Some((0, 0))
    ) {
        assert!(Instant::now() < deadline, "the warm-up never drained");
        thread::sleep(Duration::from_millis(10));
    }
    server.signal("STOP");
    // Loopback hands bytes over at once: a send that waits 200 ms in vain
    // means the server's buffer (and ours) are full. (Not nonblocking: the
    // reader shares the socket.)
    writer
        .set_write_timeout(Some(Duration::from_millis(200)))
        .expect("write timeout");
    let mut sent = WARM;
    while sent < data.len() {
        match writer.write(&data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if util::is_timeout(&e) => break,
            Err(e) => panic!("send: {e}"),
        }
    }
    let (_, unread) = util::proc::tcp_table(false)
        .queues(server_addr, me)
        .expect("the server's socket");
    eprintln!("{unread} bytes sat unread at the server at the signal");
    assert!(
        unread > 600 << 10,
        "the receive buffer did not grow past two read budgets ({unread} B)"
    );
    server.signal("TERM");
    server.signal("CONT");
    let echoed = echo.join().expect("reader");
    assert!(
        echoed >= (WARM as u64) + unread,
        "echoed {echoed}: the {WARM} B warm-up and the {unread} B unread at the signal are owed"
    );
    let status = server.wait_exit(util::PATIENCE).expect("server exits");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}
