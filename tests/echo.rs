//! Integrity (DESIGN.md invariant 1): per connection, the bytes sent back are
//! exactly the bytes received, in order, each once — whatever the chunking,
//! partial sends and interleaving with other clients — under both ways of
//! registering sockets with the poller (level and oneshot).

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::Instant;

use util::{connect, ByteStream, Rng, Server};

const CONNECTIONS: usize = 20;
const BYTES_PER_CONNECTION: usize = 16 << 20;
const MAX_CHUNK: usize = 64 << 10;

/// 20 connections at once, each writing 16 MiB of pseudo-random bytes in
/// random chunk sizes (1 B to 64 KiB) from one thread while another thread
/// reads the echo in random sizes and compares every byte.
fn bulk_echo(mode: &str) {
    let server = Server::start(&["--poll-mode", mode]);
    assert!(
        server.wait_for_stderr(&format!("{mode} mode"), util::PATIENCE),
        "the server should say it runs in {mode} mode"
    );
    let addr = server.addr();
    let started = Instant::now();
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let seed = 0x5EED_0000 + i as u64;
            thread::spawn(move || echo_stream(addr, seed, BYTES_PER_CONNECTION))
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| match c.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("connection {i}: {e}")),
            Err(_) => Some(format!("connection {i}: client thread panicked")),
        })
        .collect();
    let elapsed = started.elapsed();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let total = (CONNECTIONS * BYTES_PER_CONNECTION) as f64;
    eprintln!(
        "{mode}: {CONNECTIONS} x {} MiB echoed byte-exact in {:.2} s ({:.0} MiB/s each way)",
        BYTES_PER_CONNECTION >> 20,
        elapsed.as_secs_f64(),
        total / elapsed.as_secs_f64() / f64::from(1 << 20)
    );
}

/// One connection of `bulk_echo`; an error names the first wrong byte.
fn echo_stream(addr: SocketAddr, seed: u64, total: usize) -> Result<(), String> {
    let mut reader = connect(addr);
    let mut writer = reader.try_clone().map_err(|e| format!("clone: {e}"))?;
    let sending = thread::spawn(move || -> Result<(), String> {
        let mut sizes = Rng::new(seed);
        let mut data = ByteStream::new(seed);
        let mut buf = vec![0u8; MAX_CHUNK];
        let mut sent = 0;
        while sent < total {
            let n = sizes.chunk_size(MAX_CHUNK).min(total - sent);
            data.fill(&mut buf[..n]);
            writer
                .write_all(&buf[..n])
                .map_err(|e| format!("write failed after {sent} bytes: {e}"))?;
            sent += n;
        }
        // No half-close: the echo must arrive without the server seeing EOF.
        Ok(())
    });

    let mut sizes = Rng::new(!seed);
    let mut expected = ByteStream::new(seed);
    let mut buf = vec![0u8; MAX_CHUNK];
    let mut scratch = Vec::new();
    let mut received = 0;
    while received < total {
        let want = sizes.chunk_size(MAX_CHUNK).min(total - received);
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => return Err(format!("EOF after {received} of {total} echoed bytes")),
            Ok(n) => n,
            Err(e) => return Err(format!("read failed after {received} bytes: {e}")),
        };
        expected.check(&buf[..n], &mut scratch)?;
        received += n;
    }
    sending
        .join()
        .map_err(|_| "writer thread panicked".to_string())??;

    // Nothing more than what was sent may come back: half-close and the
    // server's FIN must follow at once, with no extra byte before it.
    reader
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    match reader.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{n} bytes beyond the {total} sent came back")),
        Err(e) => Err(format!("expected EOF after the echo, got {e}")),
    }
}

#[test]
fn bulk_random_chunks_echo_byte_exact_level_mode() {
    bulk_echo("level");
}

#[test]
fn bulk_random_chunks_echo_byte_exact_oneshot_mode() {
    bulk_echo("oneshot");
}

/// The server is byte-transparent: every value 0..=255 comes back, alone and
/// in every position of a block; no framing, no line buffering, no mangling
/// of NUL, CR, LF, 0x7f or high bytes.
#[test]
fn every_byte_value_round_trips() {
    let server = Server::start(&[]);
    let mut stream = connect(server.addr());
    for b in 0..=255u8 {
        stream.write_all(&[b]).expect("send one byte");
        let mut echo = [0u8; 1];
        stream.read_exact(&mut echo).expect("read one byte");
        assert_eq!(echo[0], b, "byte {b:#04x} came back as {:#04x}", echo[0]);
    }
    // 256 x 256 bytes: each row a rotation of 0..=255, so every value
    // appears at every offset modulo 256.
    let block: Vec<u8> = (0..256 * 256)
        .map(|i: usize| ((i % 256) + i / 256) as u8)
        .collect();
    util::assert_echo(&mut stream, &block);
    // Messages that a line- or C-string-based server would split or cut.
    for message in [
        &b"\0"[..],
        b"\r\n",
        b"no newline",
        b"\n\n\n",
        b"a\0b\r\nc\xff",
    ] {
        util::assert_echo(&mut stream, message);
    }
}

/// Many clients, each doing small request/response round trips in turn,
/// interleaved on the one loop: every reply goes to its own client only.
#[test]
fn interleaved_clients_each_get_only_their_own_bytes() {
    let server = Server::start(&[]);
    let mut streams: Vec<_> = (0..50).map(|_| connect(server.addr())).collect();
    for round in 0..20 {
        for (i, stream) in streams.iter_mut().enumerate() {
            let message = format!("client {i} round {round}|");
            util::assert_echo(stream, message.as_bytes());
        }
    }
}

/// Odd, tiny buffers (`--read-buffer 7 --max-pending 13`): every read and
/// every pending queue boundary falls somewhere new, and the bytes still
/// come back exact, in both registration modes.
#[test]
fn tiny_odd_buffers_still_echo_byte_exact() {
    for mode in ["level", "oneshot"] {
        let server = Server::start(&[
            "--read-buffer",
            "7",
            "--max-pending",
            "13",
            "--poll-mode",
            mode,
        ]);
        let addr = server.addr();
        let clients: Vec<_> = (0..4)
            .map(|i| thread::spawn(move || echo_stream(addr, 0x71_0000 + i, 64 << 10)))
            .collect();
        for (i, client) in clients.into_iter().enumerate() {
            client
                .join()
                .expect("client thread")
                .unwrap_or_else(|e| panic!("{mode}: connection {i}: {e}"));
        }
    }
}
