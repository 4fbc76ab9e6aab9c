//! Bounded memory (DESIGN.md invariant 3): a client that sends and never
//! reads costs the server a fixed amount, because at `--max-pending` the
//! server stops reading it; the kernel's buffers fill and the client's
//! writes stop being taken. Other clients are served meanwhile, and the
//! stalled client still gets every byte it managed to send, in order.
//!
//! Linux only: the bound is measured as the server's resident memory, read
//! from /proc/PID/status (VmRSS); other systems have no such file.
#![cfg(target_os = "linux")]

mod util;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use util::{connect, proc, ByteStream, Server};

/// What the stalled client tries to push through a server that is not
/// reading it any more.
const ATTEMPT: u64 = 256 << 20;
/// How long the client keeps trying after the kernel first pushed back.
const KEEP_TRYING: Duration = Duration::from_secs(2);
/// The allowed growth of the server's RSS over its startup baseline.
const RSS_SLACK_KIB: u64 = 32 << 10;

#[test]
fn a_client_that_never_reads_costs_bounded_memory_level_mode() {
    never_reading_client("level");
}

#[test]
fn a_client_that_never_reads_costs_bounded_memory_oneshot_mode() {
    never_reading_client("oneshot");
}

/// A greedy client that never reads: bounded RSS, no busy loop, another
/// client served meanwhile, and every byte it sent comes back in order.
fn never_reading_client(mode: &str) {
    let server = Server::start(&["--max-pending", "256k", "--poll-mode", mode]);
    let pid = server.pid();
    let baseline = proc::rss_kib(pid);
    let mut peak = baseline;

    // The greedy client: nonblocking writes of a deterministic stream until
    // 256 MiB went out or the kernel stopped taking bytes for KEEP_TRYING.
    let mut greedy = connect(server.addr());
    greedy.set_nonblocking(true).expect("nonblocking");
    let mut data = ByteStream::new(7);
    let mut chunk = vec![0u8; 64 << 10];
    let mut unsent: &[u8] = &[];
    let mut sent: u64 = 0;
    let started = Instant::now();
    let mut first_stall: Option<Instant> = None;
    let mut stall_cpu: Option<Duration> = None;
    let mut last_sample = Instant::now();
    while sent < ATTEMPT {
        if unsent.is_empty() {
            let n = (ATTEMPT - sent).min(chunk.len() as u64) as usize;
            data.fill(&mut chunk[..n]);
            unsent = &chunk[..n];
        }
        match greedy.write(unsent) {
            Ok(n) => {
                sent += n as u64;
                unsent = &unsent[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let stalled = *first_stall.get_or_insert_with(Instant::now);
                stall_cpu.get_or_insert_with(|| proc::cpu_time(pid));
                if stalled.elapsed() >= KEEP_TRYING {
                    break;
                }
                // Pacing, not synchronisation: we are measuring that the
                // kernel keeps refusing bytes for a while.
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write failed after {sent} bytes: {e}"),
        }
        if last_sample.elapsed() >= Duration::from_millis(50) {
            peak = peak.max(proc::rss_kib(pid));
            last_sample = Instant::now();
        }
    }
    // The bytes of `chunk` not taken were never sent; the stream position
    // must match what the server saw.
    let unsent_len = unsent.len();
    let after_fill = proc::rss_kib(pid);
    // While the client is stalled the server has nothing to do: it must
    // not spin on a socket it cannot read from or write to.
    let spent = stall_cpu.map(|before| proc::cpu_time(pid) - before);
    peak = peak.max(after_fill);
    eprintln!(
        "{mode}: greedy client: {} bytes ({:.1} MiB) taken of {} MiB tried in {:.1} s \
         (first refusal after {:?}, {unsent_len} bytes of the last chunk unsent)",
        sent,
        sent as f64 / f64::from(1 << 20),
        ATTEMPT >> 20,
        started.elapsed().as_secs_f64(),
        first_stall.map(|t| t.duration_since(started))
    );
    assert!(
        sent < ATTEMPT,
        "the server took all {ATTEMPT} bytes without the client reading: no backpressure"
    );
    let spent = spent.expect("the kernel pushed back at some point");
    eprintln!(
        "{mode}: server CPU while the greedy client was stalled: {spent:?} in {KEEP_TRYING:?}"
    );
    assert!(
        spent < Duration::from_millis(500),
        "the server burns CPU ({spent:?} in {KEEP_TRYING:?}) while a client is stalled"
    );

    // Meanwhile another client's 1 MiB echo completes.
    let other_started = Instant::now();
    let mut other = connect(server.addr());
    let mut other_writer = other.try_clone().expect("clone");
    let mut payload = vec![0u8; 1 << 20];
    ByteStream::new(99).fill(&mut payload);
    let expected = payload.clone();
    let writer = thread::spawn(move || {
        other_writer.write_all(&payload).expect("send 1 MiB");
        other_writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let echo = util::read_to_eof(&mut other);
    writer.join().expect("writer");
    assert!(echo == expected, "the other client's 1 MiB echo differs");
    eprintln!(
        "other client: 1 MiB echoed in {:?} while the greedy one was stalled",
        other_started.elapsed()
    );
    let after_other = proc::rss_kib(pid);
    peak = peak.max(after_other);

    eprintln!(
        "{mode}: server RSS: baseline {baseline} KiB, after fill {after_fill} KiB, after the other \
         client {after_other} KiB, peak {peak} KiB (+{} KiB; bound +{RSS_SLACK_KIB} KiB)",
        peak.saturating_sub(baseline)
    );
    assert!(
        peak < baseline + RSS_SLACK_KIB,
        "server RSS grew from {baseline} KiB to {peak} KiB while a client did not read"
    );

    // Now the greedy client reads: every byte it managed to send, in order.
    greedy.set_nonblocking(false).expect("blocking");
    greedy
        .set_read_timeout(Some(util::PATIENCE))
        .expect("read timeout");
    greedy.shutdown(Shutdown::Write).expect("half-close");
    let mut expected = ByteStream::new(7);
    let mut scratch = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut received: u64 = 0;
    loop {
        let n = greedy
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read after {received} of {sent} bytes: {e}"));
        if n == 0 {
            break;
        }
        assert!(
            received + n as u64 <= sent,
            "more bytes came back ({}) than were sent ({sent})",
            received + n as u64
        );
        expected
            .check(&buf[..n], &mut scratch)
            .unwrap_or_else(|e| panic!("greedy client's echo: {e}"));
        received += n as u64;
    }
    assert_eq!(received, sent, "every byte sent came back before EOF");
    let end = proc::rss_kib(pid);
    eprintln!("greedy client got all {received} bytes back; server RSS at the end {end} KiB");
}

/// Many clients that never read each cost the server a bounded amount (its
/// `--max-pending` buffer and little more), not what they send.
#[test]
fn many_stalled_clients_cost_a_bounded_amount_each() {
    const CLIENTS: usize = 40;
    let server = Server::start(&["--max-pending", "256k"]);
    let pid = server.pid();
    util::assert_echo(&mut connect(server.addr()), b"warm up");
    let baseline = proc::rss_kib(pid);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let stream = connect(server.addr());
            stream.set_nonblocking(true).expect("nonblocking");
            stream
        })
        .collect();
    // Round-robin nonblocking writes until no client has made progress for
    // half a second: by then every server-side pending buffer is full.
    let chunk = vec![0x5Au8; 64 << 10];
    let mut total_sent = 0u64;
    let mut peak = baseline;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    while last_progress.elapsed() < Duration::from_millis(500) {
        assert!(
            started.elapsed() < util::PATIENCE,
            "the kernel never pushed back"
        );
        for stream in &clients {
            match (&*stream).write(&chunk) {
                Ok(n) => {
                    total_sent += n as u64;
                    last_progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        peak = peak.max(proc::rss_kib(pid));
        thread::sleep(Duration::from_millis(5)); // pacing
    }
    let loaded = proc::rss_kib(pid);
    peak = peak.max(loaded);
    let per_client = peak.saturating_sub(baseline) / CLIENTS as u64;
    eprintln!(
        "{CLIENTS} stalled clients sent {} MiB in {:.1} s: server RSS {baseline} KiB -> \
         {loaded} KiB, peak {peak} KiB ({per_client} KiB per client; --max-pending 256 KiB)",
        total_sent >> 20,
        started.elapsed().as_secs_f64()
    );
    // The pending buffer (256 KiB, which may sit in a Vec of up to twice
    // that capacity) plus bookkeeping.
    assert!(
        per_client <= 600,
        "each stalled client costs {per_client} KiB of server memory"
    );
    drop(clients);
}
