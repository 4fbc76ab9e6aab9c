//! Isolation (DESIGN.md invariant 4): one client's reset or disappearance
//! touches only that client. Other clients keep echoing correctly and the
//! server keeps running.

mod util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use util::{connect, ByteStream, Rng, Server};

/// A client that sends without reading until the kernel pushes back (so the
/// server has echo bytes pending for it and is trying to write them), then
/// resets the connection with SO_LINGER 0 instead of closing it.
fn reset_with_pending_echo(addr: SocketAddr) -> u64 {
    let stream = connect(addr);
    stream.set_nonblocking(true).expect("nonblocking");
    let chunk = vec![0xA5u8; 64 << 10];
    let mut sent = 0u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match (&stream).write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("write failed after {sent} bytes: {e}"),
        }
        assert!(Instant::now() < deadline, "the kernel never pushed back");
    }
    // SO_LINGER 0: close() sends RST and discards what is queued.
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(stream);
    sent
}

/// Connect and reset at once, before the server may even have accepted.
fn connect_and_vanish(addr: SocketAddr) {
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).expect("socket");
    socket
        .connect_timeout(&addr.into(), util::PATIENCE)
        .expect("connect");
    socket
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(socket);
}

/// Echo on one connection, verifying every byte, until `stop` is set (and at
/// least `min_total` bytes went round), while resets happen around it.
fn steady_echo(
    addr: SocketAddr,
    seed: u64,
    min_total: usize,
    stop: &AtomicBool,
) -> Result<usize, String> {
    let mut stream = connect(addr);
    let mut sizes = Rng::new(seed);
    let mut out = ByteStream::new(seed);
    let mut expected = ByteStream::new(seed);
    let mut buf = vec![0u8; 32 << 10];
    let mut echo = vec![0u8; 32 << 10];
    let mut scratch = Vec::new();
    let mut done = 0;
    while done < min_total || !stop.load(Ordering::SeqCst) {
        // Small enough that write-then-read cannot deadlock on full buffers.
        let n = sizes.chunk_size(buf.len());
        out.fill(&mut buf[..n]);
        stream
            .write_all(&buf[..n])
            .map_err(|e| format!("write after {done} bytes: {e}"))?;
        stream
            .read_exact(&mut echo[..n])
            .map_err(|e| format!("read after {done} bytes: {e}"))?;
        expected.check(&echo[..n], &mut scratch)?;
        done += n;
    }
    Ok(done)
}

#[test]
fn resets_with_pending_data_touch_only_that_client() {
    for mode in util::MODES {
        resets_with_pending_data(mode);
    }
}

fn resets_with_pending_data(mode: &str) {
    let mut server = Server::start(&["--poll-mode", mode]);
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let good: Vec<_> = (0..4)
        .map(|i| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || steady_echo(addr, 1000 + i, 1 << 20, &stop))
        })
        .collect();
    let mut reset_bytes = 0;
    for _ in 0..10 {
        reset_bytes += reset_with_pending_echo(addr);
    }
    for _ in 0..50 {
        connect_and_vanish(addr);
    }
    stop.store(true, Ordering::SeqCst);
    for (i, client) in good.into_iter().enumerate() {
        let echoed = client
            .join()
            .expect("client thread")
            .unwrap_or_else(|e| panic!("good client {i}: {e}"));
        eprintln!("{mode}: good client {i}: {echoed} bytes echoed byte-exact during the resets");
    }
    eprintln!("{mode}: 10 clients reset with {reset_bytes} bytes sent and unread in total");
    assert!(server.is_running(), "the server must survive resets");
    // A fresh client is served, and the logs hold no panic.
    util::assert_echo(&mut connect(addr), b"still here");
    assert!(!server.stderr().contains("panicked"), "server panicked");
}

/// A client resets while the server is in the middle of writing a large echo
/// to it (it half-closed, so the server has only writing left to do): the
/// server's failing send is that client's problem alone.
#[test]
fn reset_during_flush_after_half_close() {
    for mode in util::MODES {
        reset_during_flush(mode);
    }
}

fn reset_during_flush(mode: &str) {
    let mut server = Server::start(&["--poll-mode", mode]);
    let addr = server.addr();
    for round in 0..5 {
        let mut victim = connect(addr);
        let mut writer = victim.try_clone().expect("clone");
        let sender = thread::spawn(move || {
            let data = vec![round as u8; 2 << 20];
            // The reset below may interrupt this write: ignore its result.
            let _ = writer.write_all(&data);
            let _ = writer.shutdown(std::net::Shutdown::Write);
        });
        // Read a little so the server is mid-echo, then reset.
        let mut some = [0u8; 1000];
        victim.read_exact(&mut some).expect("first echo bytes");
        SockRef::from(&victim)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
        drop(victim);
        sender.join().expect("sender");
        util::assert_echo(
            &mut connect(addr),
            format!("after reset {round}").as_bytes(),
        );
    }
    assert!(server.is_running(), "the server must survive resets");
}

/// The server resets nothing of its own accord: after a neighbour reset,
/// a long-lived idle connection opened before it still works.
#[test]
fn idle_neighbour_survives_resets() {
    let server = Server::start(&[]);
    let addr = server.addr();
    let mut idle: TcpStream = connect(addr);
    util::assert_echo(&mut idle, b"hello");
    for _ in 0..5 {
        reset_with_pending_echo(addr);
    }
    util::assert_echo(&mut idle, b"hello again");
}
