//! Limits: `--max-connections` (the rest wait in the kernel backlog),
//! `--idle-timeout` (silent clients are closed, talking ones are not), and
//! running out of descriptors (accepting pauses without spinning; connected
//! clients keep being served).

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use util::{assert_echo, connect, Closed, Server};

/// Assert that `stream` gets no echo of `message` within `wait`.
fn assert_no_echo_within(stream: &mut TcpStream, message: &[u8], wait: Duration) {
    stream.write_all(message).expect("send");
    stream.set_read_timeout(Some(wait)).expect("read timeout");
    let mut buf = vec![0u8; message.len()];
    match stream.read(&mut buf) {
        Err(e) if util::is_timeout(&e) => {}
        other => {
            panic!("expected no echo within {wait:?} (client still in the backlog), got {other:?}")
        }
    }
    stream
        .set_read_timeout(Some(util::PATIENCE))
        .expect("read timeout");
}

/// With `--max-connections 3`, three clients are served; a fourth completes
/// its handshake in the kernel backlog but is not served until one of the
/// three leaves, and then it gets the echo of what it sent while waiting.
#[test]
fn max_connections_holds_extra_clients_until_one_leaves() {
    let server = Server::start(&["--max-connections", "3"]);
    let addr = server.addr();
    let mut served: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut stream = connect(addr);
            assert_echo(&mut stream, format!("client {i}").as_bytes());
            stream
        })
        .collect();

    let mut fourth = connect(addr);
    assert_no_echo_within(&mut fourth, b"fourth", Duration::from_millis(500));
    // The three are still served meanwhile.
    for stream in &mut served {
        assert_echo(stream, b"still served");
    }

    let left = Instant::now();
    drop(served.remove(0));
    let mut echo = [0u8; 6];
    fourth
        .read_exact(&mut echo)
        .expect("the fourth client's echo once a slot is free");
    assert_eq!(&echo, b"fourth");
    eprintln!("fourth client served {:?} after one left", left.elapsed());

    // The cap holds again with the fourth one in: a fifth waits.
    let mut fifth = connect(addr);
    assert_no_echo_within(&mut fifth, b"fifth", Duration::from_millis(500));
    drop(fourth);
    let mut echo = [0u8; 5];
    fifth
        .read_exact(&mut echo)
        .expect("the fifth client's echo");
    assert_eq!(&echo, b"fifth");
}

/// How long after connecting the server closed a client that sent nothing.
fn silent_client_closed_after(server: &Server, limit: Duration) -> Duration {
    let mut stream = connect(server.addr());
    let connected = Instant::now();
    let closed = util::wait_closed(&mut stream, limit);
    let after = connected.elapsed();
    assert!(
        matches!(closed, Some(Closed::Eof | Closed::Reset)),
        "a silent client must be closed within {limit:?}"
    );
    after
}

/// `--idle-timeout 1`: a silent client is closed about 1 s after it
/// connected; a client that talks every 200 ms for 2 s is left alone, and is
/// closed about 1 s after it falls silent.
#[test]
fn idle_timeout_closes_silent_clients_and_spares_talking_ones() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let addr = server.addr();

    let silent = {
        let mut stream = connect(addr);
        thread::spawn(move || {
            let connected = Instant::now();
            let closed = util::wait_closed(&mut stream, Duration::from_secs(5));
            (closed, connected.elapsed())
        })
    };

    let mut talker = connect(addr);
    let started = Instant::now();
    let mut round = 0;
    let went_silent = loop {
        assert_echo(&mut talker, format!("still here {round}").as_bytes());
        round += 1;
        if started.elapsed() >= Duration::from_secs(2) {
            break Instant::now();
        }
        // The client's own pace of talking (not synchronisation).
        thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "talking client: {round} echoes over {:?}",
        started.elapsed()
    );

    let (closed, after) = silent.join().expect("silent client");
    eprintln!("silent client closed ({closed:?}) after {after:?}");
    assert!(closed.is_some(), "a silent client must be closed");
    assert!(
        after >= Duration::from_millis(900) && after <= Duration::from_secs(3),
        "silent client closed after {after:?}, want about 1 s"
    );

    let closed = util::wait_closed(&mut talker, Duration::from_secs(5));
    let after = went_silent.elapsed();
    eprintln!("talking client closed ({closed:?}) {after:?} after falling silent");
    assert!(closed.is_some(), "the talker is closed once silent");
    assert!(
        after >= Duration::from_millis(900) && after <= Duration::from_secs(3),
        "talker closed {after:?} after falling silent, want about 1 s"
    );
}

/// Fractional and unit forms: `0.5` and `300ms`.
#[test]
fn idle_timeout_accepts_fractions_and_units() {
    for (flag, expected) in [("0.5", 500u64), ("300ms", 300)] {
        let server = Server::start(&["--idle-timeout", flag]);
        let after = silent_client_closed_after(&server, Duration::from_secs(5));
        eprintln!("--idle-timeout {flag}: silent client closed after {after:?}");
        let expected = Duration::from_millis(expected);
        assert!(
            after >= expected.mul_f64(0.8) && after <= expected + Duration::from_secs(2),
            "--idle-timeout {flag}: closed after {after:?}"
        );
    }
}

/// With the server's open-files limit at 64 (`ulimit -n 64` in a shell that
/// then execs the server: it cannot raise a hard limit), 100 clients run it
/// out of descriptors. It must pause accepting instead of spinning on
/// EMFILE, warn about it, keep serving the connected clients, and serve new
/// clients once others have left.
///
/// Linux only: it needs `sh`/`ulimit`, and reads the server's CPU time and
/// descriptors from /proc.
#[cfg(target_os = "linux")]
#[test]
fn out_of_descriptors_pauses_accepting_without_spinning() {
    use std::process::Command;
    use util::proc;

    let mut cmd = util::clean_env(Command::new("sh"));
    cmd.arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" serve --port 0 --host 127.0.0.1"#)
        .arg(util::BIN);
    let server = Server::spawn(cmd, 1);
    let pid = server.pid();
    let addr = server.addr();
    let fds_idle = proc::fd_count(pid);

    // 30 clients, each one served (the server has room for about 55).
    let mut early: Vec<TcpStream> = (0..30)
        .map(|i| {
            let mut stream = connect(addr);
            assert_echo(&mut stream, format!("early {i}").as_bytes());
            stream
        })
        .collect();
    // 70 more: the table fills up, the rest wait in the backlog.
    let late: Vec<TcpStream> = (0..70).map(|_| connect(addr)).collect();
    assert!(
        server.wait_for_stderr("pausing accepts", util::PATIENCE),
        "the server should warn that it pauses accepting"
    );
    let fds_full = proc::wait_fd_count(pid, Duration::from_secs(5), |n| n >= 64);
    eprintln!("server descriptors: {fds_idle} idle, {fds_full} with the table full");
    // 64 with a clean descriptor table; a descriptor inherited above the
    // limit (some harnesses pass one down) is listed as well.
    assert!(
        fds_full >= 64,
        "the server should use every descriptor it may (has {fds_full})"
    );

    // No busy loop: over one second, little CPU (and few warnings).
    let warnings_before = server.stderr().matches("pausing accepts").count();
    let cpu_before = proc::cpu_time(pid);
    let window = Instant::now();
    thread::sleep(Duration::from_secs(1)); // the measurement window itself
    let cpu = proc::cpu_time(pid) - cpu_before;
    let wall = window.elapsed();
    let warnings = server.stderr().matches("pausing accepts").count() - warnings_before;
    eprintln!("out of descriptors: {cpu:?} CPU in {wall:?}, {warnings} pause warnings");
    assert!(
        cpu < Duration::from_millis(300),
        "the server spins while out of descriptors: {cpu:?} CPU in {wall:?}"
    );
    // One warning per episode (then a reminder every 10 s), not one per
    // 100 ms pause, let alone one per attempt.
    assert!(
        warnings <= 1,
        "{warnings} pause warnings in {wall:?}: should be one per episode"
    );

    // Connected clients keep being served.
    for (i, stream) in early.iter_mut().enumerate() {
        assert_echo(stream, format!("early {i} again").as_bytes());
    }

    // Most clients leave; new ones are served (after the server has worked
    // through the backlog of clients that already left).
    drop(late);
    early.truncate(5);
    let recovered = Instant::now();
    let fresh: Vec<TcpStream> = (0..10)
        .map(|i| {
            let mut stream = connect(addr);
            assert_echo(&mut stream, format!("fresh {i}").as_bytes());
            stream
        })
        .collect();
    eprintln!(
        "10 new clients served {:?} after 95 left",
        recovered.elapsed()
    );
    for stream in &mut early {
        assert_echo(stream, b"survivor");
    }
    // Wording differs between versions ("accepting connections again",
    // "accepting again after ..."): a line about accepting, again.
    assert!(
        server.wait_for_stderr_line(util::PATIENCE, |l| l.contains("accepting")
            && l.contains("again")),
        "the server should say when it accepts again"
    );
    drop(fresh);
}

/// An idle timeout too long to add to a clock reading (here 1e19 s) must
/// either be refused as a usage error or mean "practically never": it must
/// not crash the server when the first client connects.
#[test]
fn a_huge_idle_timeout_is_refused_or_harmless() {
    match Server::try_start(&["--idle-timeout", "1e19"]) {
        Err(refused) => {
            assert_eq!(refused.code(), 2, "refused as a usage error\n{refused}");
            refused.assert_one_error_line();
        }
        Ok(mut server) => {
            let mut client = connect(server.addr());
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("read timeout");
            client.write_all(b"forever").expect("send");
            let mut echo = [0u8; 7];
            if let Err(e) = client.read_exact(&mut echo) {
                let status = server.wait_exit(Duration::from_secs(5));
                panic!(
                    "no echo ({e}): with --idle-timeout 1e19 the server must not die when a \
                     client connects (exit status {status:?})"
                );
            }
            assert!(server.is_running(), "the server keeps running");
            assert_eq!(&echo, b"forever");
        }
    }
}
