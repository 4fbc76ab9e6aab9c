//! `pollmux bench` against `pollmux serve`'s own fault injection: each
//! fault flag of the server shows up in the bench's report as the tester
//! would name it — a delay in the latency percentiles, a bandwidth or a
//! slow reader in the throughput, sliced echoes as still-intact echoes, and
//! `--close-after`, `--reset-after`, `--stall-after` as early EOFs, resets
//! and stalls at the offset the server was told.
//!
//! The faulty fake servers of `tests/bench.rs` check the bench alone; these
//! check that the two halves agree.

mod util;

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use util::{bench, bench_json, Finished, Server};

/// Bytes after which the server breaks each connection it picks.
const AFTER: u64 = 10_000;
/// Every connection gets past `AFTER`: 1000-byte messages, 20 each.
const CONNECTIONS: u64 = 4;
const BREAKING_LOAD: &[&str] = &[
    "--json",
    "--connections",
    "4",
    "--size",
    "1000",
    "--messages",
    "80",
    "--warmup",
    "0",
];

/// Run the bench at `server` and parse its `--json` report.
fn bench_report(server: &Server, args: &[&str]) -> (Finished, Map<String, Value>) {
    let out = bench(server.addr(), args);
    let json = bench_json(&out);
    (out, json)
}

fn micros(json: &Map<String, Value>, key: &str) -> f64 {
    json[key].as_f64().unwrap_or(0.0)
}

/// The `offset N` in a fault line.
fn offset_in(line: &str, out: &Finished) -> u64 {
    line.split("offset ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in `{line}`\n{out}"))
}

/// Every connection was broken by the server after `AFTER` bytes: all of
/// them ended early, each after its first 10 messages.
fn assert_all_ended_at_after(json: &Map<String, Value>, out: &Finished) {
    assert_eq!(out.code(), 1, "{out}");
    assert_eq!(json["ok"], false, "{out}");
    assert_eq!(json["ended_early"], CONNECTIONS, "{out}");
    assert_eq!(json["messages_before_fault"], CONNECTIONS * 10, "{out}");
}

#[test]
fn a_delay_shows_in_every_percentile() {
    let server = Server::start(&["--delay", "100ms"]);
    let (out, json) = bench_report(
        &server,
        &[
            "--json",
            "--connections",
            "4",
            "--size",
            "100",
            "--messages",
            "20",
            "--warmup",
            "0",
        ],
    );
    assert_eq!(out.code(), 0, "a delay is no fault\n{out}");
    assert_eq!(json["messages"], 20, "{out}");
    for p in ["latency_us_p50", "latency_us_p90", "latency_us_max"] {
        assert!(micros(&json, p) >= 100_000.0, "{p}\n{out}");
    }
    assert!(micros(&json, "latency_us_max") < 1_000_000.0, "{out}");
}

#[test]
fn a_delay_with_jitter_spreads_the_percentiles() {
    let server = Server::start(&["--delay", "100ms±50ms", "--seed", "1"]);
    let (out, json) = bench_report(
        &server,
        &[
            "--json",
            "--connections",
            "4",
            "--size",
            "100",
            "--messages",
            "40",
            "--warmup",
            "0",
        ],
    );
    assert_eq!(out.code(), 0, "{out}");
    let (p50, max) = (
        micros(&json, "latency_us_p50"),
        micros(&json, "latency_us_max"),
    );
    assert!(p50 >= 50_000.0, "{out}");
    // 40 delays drawn from 50..150 ms: the slowest is well above the median.
    assert!(max - p50 >= 10_000.0, "no spread\n{out}");
    assert!(max < 1_000_000.0, "{out}");
}

/// One connection, pipelined, after a warmup that absorbs any initial
/// burst: the measured throughput is capped near `rate_kib` KiB/s.
fn assert_throughput_capped(server_args: &[&str], rate_kib: f64) {
    let server = Server::start(server_args);
    let (out, json) = bench_report(
        &server,
        &[
            "--json",
            "--connections",
            "1",
            "--size",
            "1k",
            "--depth",
            "4",
            "--warmup",
            "1",
            "--duration",
            "2",
        ],
    );
    assert_eq!(out.code(), 0, "a slow server is no fault\n{out}");
    let kib_per_s = json["mib_per_s"].as_f64().unwrap_or(0.0) * 1024.0;
    assert!(kib_per_s > 0.0, "{out}");
    assert!(kib_per_s <= rate_kib * 1.3, "{kib_per_s:.1} KiB/s\n{out}");
}

#[test]
fn a_bandwidth_caps_the_throughput() {
    assert_throughput_capped(&["--bandwidth", "100k"], 100.0);
}

#[test]
fn a_slow_reader_caps_the_throughput() {
    assert_throughput_capped(&["--slow-read", "100k"], 100.0);
}

#[test]
fn sliced_echoes_are_intact_and_late() {
    // A 1000-byte message in 100-byte slices, 10 ms apart: 9 gaps at least.
    let server = Server::start(&["--slice", "100", "--slice-delay", "10ms"]);
    let (out, json) = bench_report(
        &server,
        &[
            "--json",
            "--connections",
            "2",
            "--size",
            "1000",
            "--messages",
            "20",
            "--warmup",
            "0",
        ],
    );
    assert_eq!(out.code(), 0, "slicing must not change a byte\n{out}");
    assert_eq!(json["messages"], 20, "{out}");
    assert!(micros(&json, "latency_us_p50") >= 80_000.0, "{out}");

    // Slices of varying size: still every byte in order.
    let server = Server::start(&["--slice", "100±50", "--slice-delay", "1ms", "--seed", "3"]);
    let (out, json) = bench_report(
        &server,
        &[
            "--json",
            "--connections",
            "2",
            "--size",
            "10k",
            "--messages",
            "20",
            "--warmup",
            "0",
        ],
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(json["bytes"], 20 * 10 * 1024, "{out}");
}

#[test]
fn close_after_is_an_early_eof_at_that_offset() {
    let server = Server::start(&["--close-after", "10000"]);
    let (out, json) = bench_report(
        &server,
        &[BREAKING_LOAD, &["--stall-timeout", "5"]].concat(),
    );
    assert_all_ended_at_after(&json, &out);
    assert_eq!(json["early_eofs"], CONNECTIONS, "{out}");
    assert_eq!(json["resets"], 0, "{out}");
    assert_eq!(json["stalls"], 0, "{out}");
    assert_eq!(json["bytes_before_fault"], CONNECTIONS * AFTER, "{out}");
    let first = json["first_early_eof"].as_str().unwrap_or_default();
    assert!(first.contains("got EOF"), "{out}");
    assert_eq!(offset_in(first, &out), AFTER, "{out}");
}

#[test]
fn reset_after_is_a_reset_at_that_offset() {
    let server = Server::start(&["--reset-after", "10000"]);
    let (out, json) = bench_report(
        &server,
        &[BREAKING_LOAD, &["--stall-timeout", "5"]].concat(),
    );
    assert_all_ended_at_after(&json, &out);
    let count = |key: &str| json[key].as_u64().unwrap_or_default();
    // wine (the Windows leg) closes some SO_LINGER 0 sockets with FIN, not
    // RST: there the bench sees an early EOF at the same offset instead.
    let wine_eofs = if cfg!(windows) {
        count("early_eofs")
    } else {
        0
    };
    assert_eq!(count("resets") + wine_eofs, CONNECTIONS, "{out}");
    assert_eq!(count("early_eofs"), wine_eofs, "{out}");
    let first = match json["first_reset"].as_str() {
        Some(first) => {
            assert!(first.contains("connection reset"), "{out}");
            first
        }
        None if wine_eofs > 0 => json["first_early_eof"].as_str().unwrap_or_default(),
        None => panic!("no first_reset\n{out}"),
    };
    // Bytes in flight when the RST came may be lost, never more than sent.
    let offset = offset_in(first, &out);
    assert!((AFTER - 1000..=AFTER).contains(&offset), "{out}");
}

#[test]
fn stall_after_is_a_stall_within_the_stall_timeout() {
    let server = Server::start(&["--stall-after", "10000"]);
    let started = Instant::now();
    let (out, json) = bench_report(
        &server,
        &[BREAKING_LOAD, &["--stall-timeout", "1"]].concat(),
    );
    let elapsed = started.elapsed();
    assert_all_ended_at_after(&json, &out);
    assert_eq!(json["stalls"], CONNECTIONS, "{out}");
    assert_eq!(json["bytes_before_fault"], CONNECTIONS * AFTER, "{out}");
    let first = json["first_stall"].as_str().unwrap_or_default();
    assert!(first.contains("no progress for 1."), "{out}");
    assert_eq!(offset_in(first, &out), AFTER, "{out}");
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}\n{out}");
    // The run lasted until the stalls were called, and the rate says so:
    // not the few echoes before the stall over a few milliseconds.
    let measured = json["duration_s"].as_f64().expect("duration_s");
    assert!(measured >= 1.0, "measured {measured} s\n{out}");
    let rate = json["msgs_per_s"].as_f64().expect("msgs_per_s");
    let messages = json["messages"].as_f64().expect("messages");
    assert!(
        rate <= messages,
        "{rate} msg/s from {messages} messages\n{out}"
    );
}

/// `--fault-ratio 0.5`: some of 20 connections are reset, the others finish
/// their messages; the same `--seed` picks the same ones.
#[test]
fn a_fault_ratio_breaks_some_connections_and_the_rest_finish() {
    let run = || {
        let server = Server::start(&[
            "--reset-after",
            "10000",
            "--fault-ratio",
            "0.5",
            "--seed",
            "7",
        ]);
        bench_report(
            &server,
            &[
                "--json",
                "--connections",
                "20",
                "--size",
                "1000",
                "--messages",
                "400",
                "--warmup",
                "0",
                "--stall-timeout",
                "5",
            ],
        )
    };
    let (out, json) = run();
    assert_eq!(out.code(), 1, "{out}");
    let ended = json["ended_early"].as_u64().unwrap_or(0);
    assert!((1..20).contains(&ended), "{out}");
    let count = |key: &str| json[key].as_u64().unwrap_or_default();
    // wine may close an SO_LINGER 0 socket with FIN: an early EOF there.
    let wine_eofs = if cfg!(windows) {
        count("early_eofs")
    } else {
        0
    };
    assert_eq!(count("resets") + wine_eofs, ended, "{out}");
    // Broken ones got 10 messages through, the others all their 20.
    assert_eq!(json["messages_before_fault"], ended * 10, "{out}");
    assert_eq!(json["messages"], ended * 10 + (20 - ended) * 20, "{out}");

    let (again, json_again) = run();
    assert_eq!(
        json_again["ended_early"], ended,
        "the same seed, the same connections\n{out}\n{again}"
    );
}
