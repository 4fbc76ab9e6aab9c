//! Fairness (DESIGN.md invariant 6): one event moves at most a budget of
//! bytes, so fire-hose clients that always have more to send cannot starve
//! a client doing small round trips on the same loop.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use util::{connect, ByteStream, Server};

fn fire_hoses_do_not_starve_a_small_client(mode: &str) {
    const HOSES: usize = 4;
    const ROUND_TRIPS: usize = 200;
    let server = Server::start(&["--poll-mode", mode]);
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));

    // Each hose writes as fast as it can while its reader drains and checks
    // the echo: the server always has more to read and to write for them.
    let hoses: Vec<_> = (0..HOSES)
        .map(|i| {
            let stop = Arc::clone(&stop);
            let seed = 77 + i as u64;
            let mut reader = connect(addr);
            let mut writer = reader.try_clone().expect("clone");
            let sending = thread::spawn(move || {
                let mut data = ByteStream::new(seed);
                let mut chunk = vec![0u8; 64 << 10];
                let mut sent = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    data.fill(&mut chunk);
                    writer.write_all(&chunk).expect("hose write");
                    sent += chunk.len() as u64;
                }
                writer.shutdown(Shutdown::Write).expect("hose half-close");
                sent
            });
            let receiving = thread::spawn(move || {
                let mut expected = ByteStream::new(seed);
                let mut scratch = Vec::new();
                let mut buf = vec![0u8; 64 << 10];
                let mut received = 0u64;
                loop {
                    let n = reader.read(&mut buf).expect("hose read");
                    if n == 0 {
                        return received;
                    }
                    expected
                        .check(&buf[..n], &mut scratch)
                        .unwrap_or_else(|e| panic!("hose {i}: {e}"));
                    received += n as u64;
                }
            });
            (sending, receiving)
        })
        .collect();

    // Let the hoses get going, then time small round trips among them.
    thread::sleep(Duration::from_millis(200)); // warm-up period, not synchronisation
    let mut small = connect(addr);
    let mut latencies = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS {
        let message = format!("ping {i:05}");
        let started = Instant::now();
        small.write_all(message.as_bytes()).expect("ping");
        let mut echo = vec![0u8; message.len()];
        small.read_exact(&mut echo).expect("pong");
        latencies.push(started.elapsed());
        assert_eq!(echo, message.as_bytes());
    }
    stop.store(true, Ordering::SeqCst);
    let mut moved = 0;
    for (i, (sending, receiving)) in hoses.into_iter().enumerate() {
        let sent = sending.join().expect("hose writer");
        let received = receiving.join().expect("hose reader");
        assert_eq!(received, sent, "hose {i}: every byte back");
        moved += sent;
    }

    latencies.sort();
    let median = latencies[ROUND_TRIPS / 2];
    let p99 = latencies[ROUND_TRIPS * 99 / 100];
    let worst = latencies[ROUND_TRIPS - 1];
    eprintln!(
        "{mode}: {HOSES} hoses moved {} MiB; small client round trips: median {median:?}, \
         p99 {p99:?}, worst {worst:?}",
        moved >> 20
    );
    // Generous bounds (debug builds, a busy 2-core machine): starvation
    // shows up as seconds, a fair loop as milliseconds.
    assert!(median < Duration::from_millis(100), "median {median:?}");
    assert!(worst < Duration::from_secs(2), "worst {worst:?}");
}

#[test]
fn fire_hoses_do_not_starve_a_small_client_level_mode() {
    fire_hoses_do_not_starve_a_small_client("level");
}

#[test]
fn fire_hoses_do_not_starve_a_small_client_oneshot_mode() {
    fire_hoses_do_not_starve_a_small_client("oneshot");
}
