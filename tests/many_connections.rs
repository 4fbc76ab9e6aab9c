//! Many clients: thousands at once all get their own echo, and churn (ten
//! thousand connect/close cycles, some ending in a reset) leaves no
//! descriptor behind in the server (invariants 3, 4 and 5). The memory cost
//! of 10,000 idle connections is measured in `idle_memory.rs`.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;
use util::{connect, Server};

/// 2,000 clients connected at the same time; each sends a distinct message
/// and reads back exactly its own.
#[test]
fn two_thousand_concurrent_clients_all_echo() {
    const CLIENTS: usize = 2000;
    util::raise_fd_limit();
    let server = Server::start(&[]);
    #[cfg(target_os = "linux")]
    let fds_before = util::proc::fd_count(server.pid());
    let started = Instant::now();
    let mut streams: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(server.addr())).collect();
    let connected = started.elapsed();
    for (i, stream) in streams.iter_mut().enumerate() {
        stream
            .write_all(message(i).as_bytes())
            .unwrap_or_else(|e| panic!("client {i}: send: {e}"));
    }
    // Linux: the server holds all of them at once (one descriptor each).
    #[cfg(target_os = "linux")]
    {
        let pid = server.pid();
        let open = util::proc::wait_fd_count(pid, util::PATIENCE, |n| n >= fds_before + CLIENTS);
        eprintln!("server descriptors: {fds_before} before, {open} with {CLIENTS} clients");
        assert!(
            open >= fds_before + CLIENTS,
            "the server should hold {CLIENTS} connections at once"
        );
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let expected = message(i);
        let mut echo = vec![0u8; expected.len()];
        stream
            .read_exact(&mut echo)
            .unwrap_or_else(|e| panic!("client {i}: read echo: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&echo),
            expected,
            "client {i} got someone else's bytes"
        );
    }
    eprintln!(
        "{CLIENTS} clients: connected in {connected:?}, all echoed after {:?}",
        started.elapsed()
    );
    drop(streams);
    #[cfg(target_os = "linux")]
    {
        let pid = server.pid();
        let after = util::proc::wait_fd_count(pid, util::PATIENCE, |n| n <= fds_before);
        eprintln!("server descriptors after all {CLIENTS} closed: {after}");
        assert_eq!(
            after, fds_before,
            "every connection's descriptor is released"
        );
    }
}

fn message(i: usize) -> String {
    format!(
        "<client {i:04} {:016x}>",
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

/// One connect-and-close cycle, three ways: close at once, echo then close,
/// or echo then reset (SO_LINGER 0). Resets also keep the client side from
/// piling up TIME_WAIT sockets.
fn cycle(addr: SocketAddr, i: usize) {
    let mut stream = connect(addr);
    match i % 3 {
        0 => {}
        1 => util::assert_echo(&mut stream, b"x"),
        _ => {
            util::assert_echo(&mut stream, b"bye");
            SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER 0");
        }
    }
}

/// 10,000 connect-and-close cycles (from 4 threads) leave the server with
/// the descriptors it started with (Linux: counted in /proc/PID/fd; other
/// systems run the churn and check that the server still serves).
#[test]
fn ten_thousand_connect_close_cycles_leak_no_descriptor() {
    const CYCLES: usize = 10_000;
    const THREADS: usize = 4;
    let server = Server::start(&[]);
    let addr = server.addr();
    #[cfg(target_os = "linux")]
    let fds_before = util::proc::fd_count(server.pid());
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in (t..CYCLES).step_by(THREADS) {
                    cycle(addr, i);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("cycle thread");
    }
    eprintln!("{CYCLES} cycles in {:?}", started.elapsed());
    // The server still serves.
    util::assert_echo(&mut connect(addr), b"after the churn");
    #[cfg(target_os = "linux")]
    {
        // Closes are processed asynchronously: wait (bounded) for the count
        // to settle back to where it was, then allow a little slack for a
        // close still in flight on a slow machine.
        const SLACK: usize = 2;
        let pid = server.pid();
        let after = util::proc::wait_fd_count(pid, Duration::from_secs(10), |n| n <= fds_before);
        eprintln!("server descriptors: {fds_before} before {CYCLES} cycles, {after} after");
        assert!(
            after <= fds_before + SLACK,
            "descriptor leak: {fds_before} before, {after} after {CYCLES} connect/close cycles"
        );
    }
}
