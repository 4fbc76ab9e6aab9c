//! Half-close: a client that shuts down its write side still receives every
//! echoed byte, then EOF; a client that never half-closes gets its echo at
//! once, without the server waiting for EOF.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use util::{connect, ByteStream, Server};

/// 4 MiB sent, write side shut down while the server still owes most of the
/// echo (the client has read nothing yet), then every byte back and EOF.
#[test]
fn half_close_with_data_pending_gets_everything_then_eof() {
    for mode in util::MODES {
        half_close_with_data_pending(mode);
    }
}

fn half_close_with_data_pending(mode: &str) {
    const TOTAL: usize = 4 << 20;
    let server = Server::start(&["--poll-mode", mode]);
    let mut stream = connect(server.addr());
    let mut writer = stream.try_clone().expect("clone");
    let (done_tx, done_rx) = mpsc::channel();
    let sending = thread::spawn(move || {
        let mut data = vec![0u8; TOTAL];
        ByteStream::new(42).fill(&mut data);
        writer.write_all(&data).expect("send 4 MiB");
        writer.shutdown(Shutdown::Write).expect("shutdown(Write)");
        let _ = done_tx.send(());
    });
    // Read nothing until the half-close went out, so the server holds echo
    // bytes when it sees EOF. If the kernel's buffers cannot take all 4 MiB
    // before the client reads, the writer would wait for us forever: start
    // reading after a bounded wait then (the test is still valid, only the
    // amount pending at EOF is smaller).
    let half_closed_first = done_rx.recv_timeout(Duration::from_secs(5)).is_ok();
    eprintln!("{mode}: half-close sent before the first read: {half_closed_first}");

    let echo = util::read_to_eof(&mut stream);
    sending.join().expect("writer thread");
    assert_eq!(echo.len(), TOTAL, "{mode}: every byte, then EOF");
    let mut expected = ByteStream::new(42);
    expected
        .check(&echo, &mut Vec::new())
        .expect("echo equals what was sent");
}

/// Half-close with nothing sent: EOF comes back promptly.
#[test]
fn half_close_without_data_gets_eof() {
    let server = Server::start(&[]);
    let mut stream = connect(server.addr());
    stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    let closed = util::wait_closed(&mut stream, Duration::from_secs(5));
    assert_eq!(closed, Some(util::Closed::Eof));
}

/// Half-close right after a tiny message, several times in parallel: the
/// last bytes before FIN are never lost.
#[test]
fn small_message_then_half_close_gets_echo_then_eof() {
    let server = Server::start(&[]);
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let addr = server.addr();
            thread::spawn(move || {
                let mut stream = connect(addr);
                let message = format!("last words of client {i}");
                util::send_and_half_close(&mut stream, message.as_bytes());
                let echo = util::read_to_eof(&mut stream);
                assert_eq!(echo, message.as_bytes());
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
}

/// No half-close: the echo of a small message arrives at once (a server that
/// buffers until EOF fails this), and the connection stays usable.
#[test]
fn echo_arrives_without_half_close() {
    let server = Server::start(&[]);
    let mut stream = connect(server.addr());
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("read timeout");
    for message in [&b"ping"[..], b"pong", b"x"] {
        let started = Instant::now();
        stream.write_all(message).expect("send");
        let mut echo = vec![0u8; message.len()];
        stream
            .read_exact(&mut echo)
            .expect("echo within 2 s, with the write side still open");
        assert_eq!(echo, message);
        eprintln!("echo of {} bytes in {:?}", message.len(), started.elapsed());
    }
}
