//! `pollmux bench`: against the real server it reports zero failures (closed
//! loop, pipelined, open loop, several threads, idle connections,
//! half-close); against echo servers that break the echo on purpose it names
//! each fault with its connection and offset and exits 1; `--json` prints the
//! schema the README documents.
//!
//! The faulty servers run inside the test, one std thread per connection:
//! each echoes faithfully except at stream offset `AT` of the first
//! connection that gets there, where it drops, duplicates or swaps bytes,
//! adds one, closes, resets or stalls — and records what the bench should
//! then report. One more delays every echo, for the latency percentiles.
//! `tests/bench_faults.rs` does the same against `pollmux serve`'s own
//! fault flags.

mod util;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use util::{
    bench, bench_json, bench_with, figure, pollmux, run_pollmux, Finished, Mischief, Server,
    UdpEcho, PATIENCE,
};

/// Stream offset at which a faulty server misbehaves: inside the third
/// 500-byte message, not at a chunk boundary.
const AT: u64 = 1010;
/// Bench flags shared by the fault tests: small, quick, bounded.
const FAULT_LOAD: &[&str] = &[
    "--connections",
    "2",
    "--size",
    "500",
    "--messages",
    "200",
    "--warmup",
    "0",
    "--connect-timeout",
    "5",
];

fn assert_clean(out: &Finished) {
    assert_eq!(out.code(), 0, "bench should pass\n{out}");
    for line in [
        "connect failures:      0",
        "resets:                0",
        "early EOFs:            0",
        "stalls:                0",
        "verification failures: 0",
        "ended early:           0 of ",
        "result:                ok",
    ] {
        assert!(out.stdout.contains(line), "missing `{line}`\n{out}");
    }
}

// ------------------------------------------------------ against pollmux serve

#[test]
fn closed_loop_against_serve_has_no_failures() {
    let server = Server::start(&[]);
    // An odd message size puts message boundaries at every alignment.
    let out = bench(
        server.addr(),
        &[
            "--connections",
            "8",
            "--size",
            "1001",
            "--messages",
            "4000",
            "--warmup",
            "0",
        ],
    );
    assert_clean(&out);
    assert_eq!(figure(&out, "messages"), 4000, "{out}");
    assert_eq!(figure(&out, "bytes"), 4000 * 1001, "{out}");
}

#[test]
fn pipelined_threads_and_idle_connections_against_serve() {
    let server = Server::start(&[]);
    let out = bench(
        server.addr(),
        &[
            "--connections",
            "6",
            "--threads",
            "2",
            "--size",
            "64k",
            "--depth",
            "4",
            "--duration",
            "0.5",
            "--warmup",
            "0.2",
            "--idle",
            "20",
        ],
    );
    assert_clean(&out);
    assert!(figure(&out, "messages") > 0, "{out}");
    assert!(
        out.stdout
            .contains("idle connections:      20 of 20 echoed before and after the run"),
        "{out}"
    );
}

#[test]
fn open_loop_against_serve_keeps_the_rate() {
    let server = Server::start(&[]);
    let out = bench(
        server.addr(),
        &[
            "--connections",
            "4",
            "--size",
            "100",
            "--rate",
            "2000",
            "--duration",
            "1",
            "--warmup",
            "0",
        ],
    );
    assert_clean(&out);
    // 2000 msg/s for 1 s: the schedule, not the server, sets the count.
    let messages = figure(&out, "messages");
    assert!((1500..=2100).contains(&messages), "{out}");
    assert!(out.stdout.contains("open loop at 2000 msg/s"), "{out}");
}

#[test]
fn half_close_against_serve_passes() {
    let server = Server::start(&[]);
    // Large pipelined messages: plenty is still owed when the FIN goes out.
    let out = bench(
        server.addr(),
        &[
            "--half-close",
            "--connections",
            "4",
            "--size",
            "100000",
            "--depth",
            "3",
            "--messages",
            "40",
            "--warmup",
            "0",
            "--idle",
            "3",
        ],
    );
    assert_clean(&out);
    assert!(out.stdout.contains("half-close"), "{out}");
}

#[test]
fn a_closed_port_is_one_clear_error() {
    let port = util::closed_port();
    let out = bench(
        SocketAddr::from(([127, 0, 0, 1], port)),
        &["--connect-timeout", "2"],
    );
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(out.stderr.contains("cannot connect"), "{out}");
}

// --------------------------------------------------------------- the JSON

/// The documented `--json` schema (README "Benchmark"): every key, and the
/// JSON types it may have.
const SCHEMA: &[(&str, &str)] = &[
    ("schema", "int"),
    ("ok", "bool"),
    ("target", "string"),
    ("connections", "int"),
    ("idle", "int"),
    ("threads", "int"),
    ("size", "int"),
    ("depth", "int"),
    ("rate", "number|null"),
    ("half_close", "bool"),
    ("warmup_s", "number"),
    ("duration_s", "number"),
    ("interrupted", "bool"),
    ("messages", "int"),
    ("bytes", "int"),
    ("msgs_per_s", "number"),
    ("mib_per_s", "number"),
    ("latency_us_p50", "number|null"),
    ("latency_us_p90", "number|null"),
    ("latency_us_p99", "number|null"),
    ("latency_us_p999", "number|null"),
    ("latency_us_max", "number|null"),
    ("connected", "int"),
    ("connect_failures", "int"),
    ("resets", "int"),
    ("early_eofs", "int"),
    ("stalls", "int"),
    ("timeouts", "int"),
    ("verification_failures", "int"),
    ("errors", "int"),
    ("idle_verified", "int"),
    ("missed_sends", "int"),
    ("ended_early", "int"),
    ("messages_before_fault", "int"),
    ("bytes_before_fault", "int"),
    ("first_failure", "string|null"),
    ("first_reset", "string|null"),
    ("first_early_eof", "string|null"),
    ("first_stall", "string|null"),
    ("bench_cpu_us_per_msg", "number|null"),
    ("server_cpu_us_per_msg", "number|null"),
    ("server_rss_before_kib", "int|null"),
    ("server_rss_kib", "int|null"),
];

/// The `udp` object, present only with `--udp` (README "Benchmark").
const UDP_SCHEMA: &[(&str, &str)] = &[
    ("sent", "int"),
    ("received", "int"),
    ("lost", "int"),
    ("late", "int"),
    ("duplicated", "int"),
    ("reordered", "int"),
    ("corrupted", "int"),
    ("loss", "number"),
    ("max_loss", "number"),
];

fn parse_json(out: &Finished) -> serde_json::Map<String, serde_json::Value> {
    parse_json_as(out, SCHEMA)
}

fn parse_json_as(
    out: &Finished,
    schema: &[(&str, &str)],
) -> serde_json::Map<String, serde_json::Value> {
    let object = bench_json(out);
    assert_schema(&object, schema, out);
    object
}

fn assert_schema(
    object: &serde_json::Map<String, serde_json::Value>,
    schema: &[(&str, &str)],
    out: &Finished,
) {
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    let documented: BTreeSet<&str> = schema.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, documented, "keys differ from the schema\n{out}");
    for (key, types) in schema {
        let v = &object[*key];
        let fits = types.split('|').any(|t| match t {
            "int" => v.is_u64(),
            "number" => v.is_number(),
            "bool" => v.is_boolean(),
            "string" => v.is_string(),
            "null" => v.is_null(),
            "object" => v.is_object(),
            _ => unreachable!("unknown type {t}"),
        });
        assert!(fits, "`{key}` is {v}, want {types}\n{out}");
    }
}

#[test]
fn json_output_matches_the_documented_schema() {
    let server = Server::start(&[]);
    let pid = server.pid().to_string();
    let out = bench(
        server.addr(),
        &[
            "--json",
            "--connections",
            "5",
            "--size",
            "1k",
            "--messages",
            "1000",
            "--warmup",
            "0",
            "--idle",
            "4",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(out.code(), 0, "{out}");
    let json = parse_json(&out);
    assert_eq!(json["schema"], 1);
    assert_eq!(json["ok"], true);
    assert_eq!(json["messages"], 1000);
    assert_eq!(json["bytes"], 1000 * 1024);
    assert_eq!(json["connections"], 5);
    assert_eq!(json["idle"], 4);
    assert_eq!(json["idle_verified"], 4);
    assert_eq!(json["connected"], 9);
    assert_eq!(json["verification_failures"], 0);
    assert_eq!(json["ended_early"], 0);
    assert!(json["first_failure"].is_null());
    assert!(
        json["latency_us_p50"].as_f64().unwrap_or(0.0) > 0.0,
        "{out}"
    );
    assert!(
        json["latency_us_p50"].as_f64() <= json["latency_us_max"].as_f64(),
        "{out}"
    );
    if cfg!(target_os = "linux") {
        assert!(json["server_rss_kib"].is_u64(), "{out}");
        assert!(json["bench_cpu_us_per_msg"].is_number(), "{out}");
    }
}

#[test]
fn udp_json_adds_the_documented_udp_object() {
    let echo = UdpEcho::start(Mischief::Drop { at: 5 });
    let out = bench(
        echo.addr,
        &[
            "--udp",
            "--json",
            "--connections",
            "2",
            "--size",
            "200",
            "--messages",
            "400",
            "--warmup",
            "0",
            "--timeout",
            "0.5",
            "--max-loss",
            "0.01",
        ],
    );
    assert_eq!(out.code(), 0, "1 of 400 lost is within 1 %\n{out}");
    let mut schema = SCHEMA.to_vec();
    schema.push(("udp", "object"));
    let json = parse_json_as(&out, &schema);
    let udp = json["udp"].as_object().expect("an object");
    assert_schema(udp, UDP_SCHEMA, &out);
    assert_eq!(json["ok"], true, "{out}");
    assert_eq!(json["messages"], 399, "{out}");
    assert_eq!(udp["sent"], 400, "{out}");
    assert_eq!(udp["received"], 399, "{out}");
    assert_eq!(udp["lost"], 1, "{out}");
    assert_eq!(udp["loss"], 0.0025, "{out}");
    assert_eq!(udp["max_loss"], 0.01, "{out}");
    assert_eq!(json["verification_failures"], 0, "{out}");
}

// --------------------------------------------------------- faulty servers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    DropByte,
    DuplicateByte,
    SwapBytes,
    ExtraByte,
    CloseEarly,
    Reset,
    /// Echo up to `AT`, then keep the socket open and send nothing more.
    Stall,
    /// Echo everything, each chunk `ECHO_DELAY` late (never "applied").
    Delay,
}

/// How late `Fault::Delay` echoes each chunk it reads.
const ECHO_DELAY: Duration = Duration::from_millis(100);

/// What a faulty server did, for the test to compare with the report.
#[derive(Debug, Clone, Copy)]
struct Applied {
    offset: u64,
    expected: u8,
    got: u8,
}

struct FaultyServer {
    addr: SocketAddr,
    applied: Arc<Mutex<Option<Applied>>>,
}

impl FaultyServer {
    fn start(fault: Fault) -> FaultyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a faulty server");
        let addr = listener.local_addr().expect("its address");
        let applied = Arc::new(Mutex::new(None));
        let record = Arc::clone(&applied);
        let claimed = Arc::new(AtomicBool::new(false));
        // Detached: blocks in accept until the test process ends.
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = Arc::clone(&record);
                let claimed = Arc::clone(&claimed);
                thread::spawn(move || faulty_echo(stream, fault, &record, &claimed));
            }
        });
        FaultyServer { addr, applied }
    }

    fn applied(&self) -> Option<Applied> {
        *self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Echo `stream`, breaking it once at offset `AT` the way `fault` says.
fn faulty_echo(
    mut stream: TcpStream,
    fault: Fault,
    record: &Mutex<Option<Applied>>,
    claimed: &AtomicBool,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let mut buf = [0u8; 4096];
    let mut offset = 0u64;
    let mut done = false;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut out = buf[..n].to_vec();
        if fault == Fault::Delay {
            thread::sleep(ECHO_DELAY);
        }
        let end = offset + n as u64;
        // Only the first connection to reach `AT` breaks (so the bench's
        // first failure is the one recorded); the others echo faithfully.
        let at_fault = !done && (offset..end).contains(&AT);
        if at_fault {
            done = true;
        }
        if at_fault && !claimed.swap(true, Ordering::SeqCst) {
            let i = (AT - offset) as usize;
            let note = |offset: u64, expected: u8, got: u8| {
                let mut r = record.lock().unwrap_or_else(|e| e.into_inner());
                r.get_or_insert(Applied {
                    offset,
                    expected,
                    got,
                });
            };
            // Dropping, duplicating or swapping a byte next to an equal one
            // changes nothing visible: act at the first pair that differs.
            let pair = (i..n - 1).find(|&j| out[j] != out[j + 1]);
            match (fault, pair) {
                (Fault::DropByte, Some(j)) => {
                    note(offset + j as u64, out[j], out[j + 1]);
                    out.remove(j);
                }
                (Fault::DuplicateByte, Some(j)) => {
                    // The copy of byte j stands where byte j+1 belongs.
                    note(offset + j as u64 + 1, out[j + 1], out[j]);
                    out.insert(j, out[j]);
                }
                (Fault::SwapBytes, Some(j)) => {
                    note(offset + j as u64, out[j], out[j + 1]);
                    out.swap(j, j + 1);
                }
                (Fault::ExtraByte, _) => {
                    // One junk byte right after the end of this chunk (a
                    // message boundary): the bench is owed nothing more.
                    note(end, 0, 0x5a);
                    out.push(0x5a);
                }
                (Fault::CloseEarly, _) => {
                    note(AT, out[i], 0);
                    let _ = stream.write_all(&out[..i]);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                (Fault::Reset, _) => {
                    note(AT, out[i], 0);
                    let _ = stream.write_all(&out[..i]);
                    thread::sleep(Duration::from_millis(50));
                    // SO_LINGER 0: close sends RST instead of FIN.
                    let socket = socket2::Socket::from(stream);
                    let _ = socket.set_linger(Some(Duration::ZERO));
                    return;
                }
                (Fault::Stall, _) => {
                    note(AT, out[i], 0);
                    let _ = stream.write_all(&out[..i]);
                    // Keep reading, never echo again.
                    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                    return;
                }
                _ => {}
            }
        }
        offset = end;
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// Run the bench at a faulty server; it must fail with exit code 1 and the
/// report must name the fault. `--stall-timeout 3` unless `extra` sets it.
fn bench_faulty(fault: Fault, extra: &[&str]) -> (Finished, Applied) {
    let server = FaultyServer::start(fault);
    let mut args = FAULT_LOAD.to_vec();
    if !extra.contains(&"--stall-timeout") && !extra.contains(&"--timeout") {
        args.extend_from_slice(&["--stall-timeout", "3"]);
    }
    args.extend_from_slice(extra);
    let out = bench(server.addr, &args);
    assert_eq!(out.code(), 1, "bench must fail against {fault:?}\n{out}");
    let applied = server
        .applied()
        .unwrap_or_else(|| panic!("the {fault:?} server never applied its fault\n{out}"));
    (out, applied)
}

fn assert_mismatch_reported(fault: Fault) {
    let (out, a) = bench_faulty(fault, &[]);
    let line = format!(
        "offset {}: expected 0x{:02x}, got 0x{:02x}",
        a.offset, a.expected, a.got
    );
    assert!(out.stdout.contains(&line), "want `{line}`\n{out}");
    assert!(
        out.stdout.contains("verification failure:  connection "),
        "{out}"
    );
    assert!(figure(&out, "verification failures") >= 1, "{out}");
    assert!(
        out.stdout.contains("result:                FAILED"),
        "{out}"
    );
}

#[test]
fn a_dropped_byte_is_reported() {
    assert_mismatch_reported(Fault::DropByte);
}

#[test]
fn a_duplicated_byte_is_reported() {
    assert_mismatch_reported(Fault::DuplicateByte);
}

#[test]
fn swapped_bytes_are_reported() {
    assert_mismatch_reported(Fault::SwapBytes);
}

#[test]
fn an_extra_byte_is_reported() {
    let (out, a) = bench_faulty(Fault::ExtraByte, &[]);
    let line = format!(
        "offset {}: expected nothing (only {} bytes were sent), got 0x5a (extra bytes)",
        a.offset, a.offset
    );
    assert!(out.stdout.contains(&line), "want `{line}`\n{out}");
    assert!(figure(&out, "verification failures") >= 1, "{out}");
}

#[test]
fn an_early_close_is_reported() {
    let (out, a) = bench_faulty(Fault::CloseEarly, &[]);
    let line = format!(
        "offset {}: expected 0x{:02x}, got EOF",
        a.offset, a.expected
    );
    assert!(out.stdout.contains(&line), "want `{line}`\n{out}");
    assert_eq!(figure(&out, "early EOFs"), 1, "{out}");
    // Verification failures count every wrong echo, early EOFs included.
    assert!(figure(&out, "verification failures") >= 1, "{out}");
    assert!(
        out.stdout.contains("early EOF:             connection "),
        "{out}"
    );
}

#[test]
fn a_reset_is_reported() {
    let (out, a) = bench_faulty(Fault::Reset, &[]);
    if cfg!(windows) && figure(&out, "resets") == 0 {
        // wine (where the Windows build is tested) closes a SO_LINGER 0
        // socket with FIN, not RST: then the bench sees the early EOF.
        let line = format!(
            "offset {}: expected 0x{:02x}, got EOF",
            a.offset, a.expected
        );
        assert!(out.stdout.contains(&line), "want `{line}`\n{out}");
        return;
    }
    assert!(figure(&out, "resets") >= 1, "{out}");
    assert!(out.stdout.contains("connection reset"), "{out}");
    assert!(
        out.stdout.contains("reset:                 connection "),
        "{out}"
    );
}

/// The faulty server broke one of the two connections at `AT`, inside its
/// third message: that one ended early after two verified messages and
/// `AT` verified bytes, and the other went on to finish its 100.
fn assert_one_ended_early_at_at(json: &serde_json::Map<String, serde_json::Value>, out: &Finished) {
    assert_eq!(json["ok"], false, "{out}");
    assert_eq!(json["ended_early"], 1, "{out}");
    assert_eq!(json["messages_before_fault"], 2, "{out}");
    assert_eq!(json["bytes_before_fault"], AT, "{out}");
    assert_eq!(
        json["messages"],
        100 + 2,
        "the other connection went on\n{out}"
    );
}

#[test]
fn an_early_eof_has_its_own_json_fields() {
    let (out, a) = bench_faulty(Fault::CloseEarly, &["--json"]);
    let json = parse_json(&out);
    assert_eq!(json["early_eofs"], 1, "{out}");
    assert_eq!(json["resets"], 0, "{out}");
    assert_eq!(json["stalls"], 0, "{out}");
    assert_eq!(
        json["verification_failures"], 1,
        "early EOFs included\n{out}"
    );
    let first = json["first_early_eof"].as_str().unwrap_or_default();
    // Message 3 (bytes 1000..1500) was out: 490 bytes still owed.
    let want = format!(
        "offset {}: expected 0x{:02x}, got EOF (the server closed with 490 bytes still owed)",
        a.offset, a.expected
    );
    assert!(first.ends_with(&want), "want `{want}`\n{out}");
    assert!(
        json["first_reset"].is_null() && json["first_stall"].is_null(),
        "{out}"
    );
    assert_one_ended_early_at_at(&json, &out);
}

#[test]
fn a_reset_has_its_own_json_fields() {
    let (out, a) = bench_faulty(Fault::Reset, &["--json"]);
    let json = parse_json(&out);
    if cfg!(windows) && json["resets"] == 0 {
        // wine sends FIN for a SO_LINGER 0 close (see a_reset_is_reported).
        assert_eq!(json["early_eofs"], 1, "{out}");
        return;
    }
    assert_eq!(json["resets"], 1, "{out}");
    assert_eq!(json["early_eofs"], 0, "{out}");
    assert_eq!(json["verification_failures"], 0, "{out}");
    let first = json["first_reset"].as_str().unwrap_or_default();
    assert!(
        first.contains(&format!("offset {}: connection reset (", a.offset))
            && first.ends_with(") with 490 bytes owed"),
        "{out}"
    );
    assert!(json["first_early_eof"].is_null(), "{out}");
    assert_one_ended_early_at_at(&json, &out);
}

/// The seconds in the stall line's `no progress for 1.1 s`.
fn stall_waited(line: &str, out: &Finished) -> f64 {
    line.split("no progress for ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("no stall time in `{line}`\n{out}"))
}

#[test]
fn a_stall_is_reported_within_the_stall_timeout() {
    let started = Instant::now();
    let (out, a) = bench_faulty(Fault::Stall, &["--json", "--stall-timeout", "1"]);
    let elapsed = started.elapsed();
    let json = parse_json(&out);
    assert_eq!(json["stalls"], 1, "{out}");
    assert_eq!(json["timeouts"], 1, "the old name of stalls\n{out}");
    assert_eq!(json["resets"], 0, "{out}");
    assert_eq!(json["early_eofs"], 0, "{out}");
    let first = json["first_stall"].as_str().unwrap_or_default();
    assert!(
        first.contains(&format!("offset {}: no progress for", a.offset))
            && first.ends_with("with 490 bytes owed (stalled)"),
        "{out}"
    );
    // Checked every 100 ms: seen after 1 s, not much later.
    let waited = stall_waited(first, &out);
    assert!((1.0..=1.6).contains(&waited), "stalled {waited} s\n{out}");
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(6),
        "the bench took {elapsed:?}\n{out}"
    );
    assert_one_ended_early_at_at(&json, &out);
}

/// `--stall-timeout` was `--timeout` before: the old flag still works, and
/// so does `POLLMUX_BENCH_STALL_TIMEOUT`; both are in `--help`.
#[test]
fn the_stall_timeout_keeps_its_old_name_and_has_a_variable() {
    let help = run_pollmux(&["bench", "--help"]);
    for text in [
        "--stall-timeout",
        "--timeout",
        "POLLMUX_BENCH_STALL_TIMEOUT",
    ] {
        assert!(help.stdout.contains(text), "--help lacks `{text}`\n{help}");
    }

    // One stall, seen well before the default timeout would have passed.
    let assert_stalled_after_1s = |out: &Finished, ignored: &str| {
        assert_eq!(figure(out, "stalls"), 1, "{out}");
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("stall:"))
            .unwrap_or_default();
        assert!(
            stall_waited(line, out) < 2.0,
            "{ignored} was ignored\n{out}"
        );
    };

    let (out, _) = bench_faulty(Fault::Stall, &["--timeout", "1"]);
    assert_stalled_after_1s(&out, "--timeout 1");

    let server = FaultyServer::start(Fault::Stall);
    let mut cmd = pollmux();
    cmd.env("POLLMUX_BENCH_STALL_TIMEOUT", "1");
    let out = bench_with(cmd, server.addr, FAULT_LOAD);
    assert_eq!(out.code(), 1, "{out}");
    assert_stalled_after_1s(&out, "the variable");
}

/// Echoes 100 ms late: every percentile shows the delay, and the run,
/// slow as it is, passes.
#[test]
fn delayed_echoes_show_in_the_latency_percentiles() {
    let server = FaultyServer::start(Fault::Delay);
    let out = bench(
        server.addr,
        &[
            "--json",
            "--connections",
            "2",
            "--size",
            "100",
            "--messages",
            "10",
            "--warmup",
            "0",
        ],
    );
    assert_eq!(out.code(), 0, "{out}");
    let json = parse_json(&out);
    assert_eq!(json["messages"], 10, "{out}");
    let us = |key: &str| json[key].as_f64().unwrap_or(0.0);
    let delay_us = ECHO_DELAY.as_micros() as f64;
    assert!(us("latency_us_p50") >= delay_us, "{out}");
    // Not clamped, not garbage: a round trip is a delay plus a little.
    assert!(us("latency_us_max") < 10.0 * delay_us, "{out}");
    assert!(us("latency_us_p50") <= us("latency_us_max"), "{out}");
}

#[test]
fn a_fault_shows_in_the_json_too() {
    let (out, a) = bench_faulty(Fault::DropByte, &["--json"]);
    let json = parse_json(&out);
    assert_eq!(json["ok"], false);
    assert!(json["verification_failures"].as_u64() >= Some(1), "{out}");
    assert_eq!(json["early_eofs"], 0, "a wrong byte is no early EOF\n{out}");
    let first = json["first_failure"].as_str().unwrap_or_default();
    assert!(
        first.ends_with(&format!(
            "offset {}: expected 0x{:02x}, got 0x{:02x}",
            a.offset, a.expected, a.got
        )),
        "{out}"
    );
}

// ------------------------------------------------------ every poll mode

/// The bench's own registration modes: each must pass a clean run (with
/// pipelining, half-close and idle connections) and still see an early
/// close as an EOF. A mode the platform's poller lacks is skipped.
#[test]
fn every_poll_mode_verifies_and_sees_eof() {
    let server = Server::start(&[]);
    for mode in ["level", "oneshot", "edge"] {
        let out = bench(
            server.addr(),
            &[
                "--poll-mode",
                mode,
                "--half-close",
                "--connections",
                "4",
                "--size",
                "100000",
                "--depth",
                "3",
                "--messages",
                "24",
                "--warmup",
                "0",
                "--idle",
                "3",
            ],
        );
        if out.code() == 1 && out.stderr.contains("not supported by this platform") {
            continue;
        }
        assert_clean(&out);

        let (out, a) = bench_faulty(Fault::CloseEarly, &["--poll-mode", mode]);
        let line = format!(
            "offset {}: expected 0x{:02x}, got EOF",
            a.offset, a.expected
        );
        assert!(out.stdout.contains(&line), "{mode}: want `{line}`\n{out}");
    }
}

/// An open-loop rate far beyond what the target takes does not pile up
/// without bound: once a connection is 1024 messages behind, scheduled
/// sends are skipped and counted, and the run ends on time; a rate too
/// small to schedule is a usage error.
#[test]
fn an_impossible_rate_is_reported_not_owed() {
    let server = Server::start(&[]);
    let started = Instant::now();
    let out = bench(
        server.addr(),
        &[
            "--json", "-c", "2", "-s", "64", "-r", "10000000", "-t", "0.5", "-w", "0",
        ],
    );
    assert_eq!(out.code(), 0, "{out}");
    let json = bench_json(&out);
    assert!(json["missed_sends"].as_u64() > Some(0), "{out}");
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
    let out = run_pollmux(&["bench", "--rate", "1e-11"]);
    assert_eq!(out.code(), 2, "{out}");
    out.assert_one_error_line();
}

/// `--server-pid` naming no process is an error before the load, not a
/// report whose server figures are silently empty.
#[cfg(target_os = "linux")]
#[test]
fn a_server_pid_that_names_no_process_is_an_error() {
    let server = Server::start(&[]);
    let mut gone = std::process::Command::new("true").spawn().expect("spawn");
    gone.wait().expect("wait");
    let pid = gone.id().to_string();
    let out = bench(server.addr(), &["-n", "10", "--server-pid", &pid]);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(out.stderr.contains("no such process"), "{out}");
    assert!(out.stdout.is_empty(), "no report\n{out}");
}

/// Ctrl-C (SIGINT) ends the measured phase at once and the report covers
/// what was measured until then: exit 0, `interrupted` set, the echoes
/// counted. It exited 130 with no report. Unix only: the test sends a
/// signal.
#[cfg(unix)]
#[test]
fn an_interrupted_bench_reports_what_it_measured() {
    let server = Server::start(&["--stats-interval", "20ms"]);
    let port = server.addr().port().to_string();
    let mut cmd = pollmux();
    cmd.args([
        "bench", "-p", &port, "-c", "2", "-t", "60", "-w", "0", "--json",
    ]);
    let mut bench = Server::launch(cmd);
    // Echoes are flowing once the server's counters show bytes.
    let flowing = server.wait_for_stderr_line(PATIENCE, |line| {
        line.split_whitespace()
            .any(|w| w.strip_prefix("bytes_in=").is_some_and(|n| n != "0"))
    });
    assert!(flowing, "{}", server.stderr());
    let asked = Instant::now();
    bench.signal("INT");
    let status = bench.wait_exit(PATIENCE).expect("bench exits");
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", bench.stderr());
    let json: serde_json::Value =
        serde_json::from_str(bench.stdout().trim()).expect("one JSON report");
    assert_eq!(json["interrupted"], true, "{json}");
    assert_eq!(json["ok"], true, "{json}");
    assert!(json["messages"].as_u64().is_some_and(|n| n > 0), "{json}");
    assert!(
        json["duration_s"].as_f64().is_some_and(|d| d < 30.0),
        "{json}"
    );
}

/// After Ctrl-C, echoes still owed get a short grace, not the whole
/// `--stall-timeout`: against a server that went silent the report comes
/// within seconds (it came after the 60 s stall timeout).
#[cfg(unix)]
#[test]
fn an_interrupted_bench_does_not_wait_out_the_stall_timeout() {
    let server = Server::start(&["--stall-after", "1k", "--stats-interval", "20ms"]);
    let port = server.addr().port().to_string();
    let mut cmd = pollmux();
    cmd.args(["bench", "-p", &port, "-c", "2", "-t", "120", "-w", "0"])
        .args(["--stall-timeout", "60", "--json"]);
    let mut bench = Server::launch(cmd);
    // Both connections are stalled once the server has swallowed 2 KiB.
    let stalled = server.wait_for_stderr_line(PATIENCE, |line| {
        line.split_whitespace().any(|w| {
            w.strip_prefix("bytes_out=")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= 2048)
        })
    });
    assert!(stalled, "{}", server.stderr());
    let asked = Instant::now();
    bench.signal("INT");
    let status = bench.wait_exit(PATIENCE).expect("bench exits");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(10), "report after {took:?}");
    assert_eq!(status.code(), Some(0), "{}", bench.stderr());
    let json: serde_json::Value =
        serde_json::from_str(bench.stdout().trim()).expect("one JSON report");
    assert_eq!(json["interrupted"], true, "{json}");
}

/// Ctrl-C before the load began (here: waiting for the first UDP echo from
/// a server that never answers) leaves at once with 130 and says why; there
/// is nothing to report. It waited out --connect-timeout and exited 1.
#[cfg(unix)]
#[test]
fn a_bench_interrupted_before_its_load_exits_130() {
    let server = Server::start(&[
        "--udp-only",
        "--mode",
        "discard",
        "--stats-interval",
        "20ms",
    ]);
    let port = server.udp_addr().port().to_string();
    let mut cmd = pollmux();
    cmd.args(["bench", "--udp", "-p", &port, "--connect-timeout", "60"]);
    let mut bench = Server::launch(cmd);
    let probing = server.wait_for_stderr_line(PATIENCE, |l| l.contains(" udp_in=1 "));
    assert!(probing, "{}", server.stderr());
    let asked = Instant::now();
    bench.signal("INT");
    let status = bench.wait_exit(PATIENCE).expect("bench exits");
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{}", bench.stderr());
    assert!(
        bench
            .stderr()
            .contains("pollmux: interrupted before the load began"),
        "{}",
        bench.stderr()
    );
    assert!(bench.stdout().is_empty(), "{}", bench.stdout());
}

/// A bench interrupted in its warmup measured nothing and proved nothing:
/// it fails (exit 1) and says why, instead of reporting `ok`.
#[cfg(unix)]
#[test]
fn a_bench_interrupted_in_its_warmup_fails() {
    let server = Server::start(&["--stats-interval", "20ms"]);
    let port = server.addr().port().to_string();
    let mut cmd = pollmux();
    cmd.args(["bench", "-p", &port, "-c", "2", "-t", "60", "-w", "60"]);
    let mut bench = Server::launch(cmd);
    let flowing = server.wait_for_stderr_line(PATIENCE, |line| {
        line.split_whitespace()
            .any(|w| w.strip_prefix("bytes_in=").is_some_and(|n| n != "0"))
    });
    assert!(flowing, "{}", server.stderr());
    bench.signal("INT");
    let status = bench.wait_exit(PATIENCE).expect("bench exits");
    assert_eq!(status.code(), Some(1), "{}", bench.stderr());
    let report = bench.stdout();
    assert!(
        report.contains("interrupted during the 60.00 s warmup")
            && report.contains("FAILED (interrupted before any echo was measured)"),
        "{report}"
    );
}
