//! Shared helpers for the integration tests: start the real `pollmux` binary
//! on port 0, read its `listening on ADDR` lines, talk to it with std sockets,
//! and stop it again.
//!
//! Every wait here is bounded: sockets get read/write timeouts, processes are
//! waited for with a deadline. A `Server` kills its process on drop, and when
//! the test is failing (panicking) it prints the command line, the exit
//! status, stdout and stderr of the server so the failure can be read without
//! re-running anything.
//!
//! Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_pollmux");

/// Both ways of registering sockets with the poller (`--poll-mode`): the
/// behaviours that depend on re-arming are tested under each.
pub const MODES: [&str; 2] = ["level", "oneshot"];

/// The longest any single step may take before the test gives up. Generous,
/// because the suite also runs in debug builds on a busy 2-core machine and
/// under wine; a healthy step takes milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A `pollmux` command with a clean environment: no `POLLMUX_*` variable or
/// `RUST_LOG` from the caller's shell may change what the test asked for.
pub fn pollmux() -> Command {
    clean_env(Command::new(BIN))
}

/// Remove the caller's `POLLMUX_*` and `RUST_LOG` variables from `cmd`.
pub fn clean_env(mut cmd: Command) -> Command {
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("POLLMUX_") || key_str == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// `program arg arg ...`, quoted enough to paste into a shell.
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$;|&".contains(c)) {
            parts.push(format!("'{}'", arg.replace('\'', r"'\''")));
        } else {
            parts.push(arg.into_owned());
        }
    }
    let envs: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    if envs.is_empty() {
        parts.join(" ")
    } else {
        format!("{} {}", envs.join(" "), parts.join(" "))
    }
}

/// Output of a child process collected by a reader thread, so the pipe never
/// fills up and the test can look at what was written so far.
#[derive(Default)]
pub struct Capture {
    state: Mutex<(Vec<u8>, bool)>, // (bytes so far, pipe closed)
    changed: Condvar,
}

impl Capture {
    fn start(mut pipe: impl Read + Send + 'static) -> Arc<Capture> {
        let capture = Arc::new(Capture::default());
        let writer = Arc::clone(&capture);
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                let n = match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let mut state = writer.state.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    state.1 = true;
                    writer.changed.notify_all();
                    return;
                }
                state.0.extend_from_slice(&chunk[..n]);
                writer.changed.notify_all();
            }
        });
        capture
    }

    pub fn text(&self) -> String {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&state.0).into_owned()
    }

    /// Wait until `done(text so far)` holds or the pipe closes or `timeout`
    /// passes; returns whether `done` held.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if done(&String::from_utf8_lossy(&state.0)) {
                return true;
            }
            let now = Instant::now();
            if state.1 || now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Wait (bounded) until the writer closed its end, so the text is complete.
    fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !state.1 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A running `pollmux serve`, killed (and reaped) on drop.
pub struct Server {
    child: Child,
    command: String,
    /// Every address from the `listening on` lines, in order.
    pub addrs: Vec<SocketAddr>,
    /// Every address from the `listening on udp` lines, in order.
    pub udp_addrs: Vec<SocketAddr>,
    stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    status: Option<ExitStatus>,
}

impl Server {
    /// `pollmux serve --port 0 [--host 127.0.0.1] ARGS`: the host defaults to
    /// IPv4 loopback (one listener) unless `args` names one.
    pub fn start(args: &[&str]) -> Server {
        let mut cmd = pollmux();
        cmd.args(["serve", "--port", "0"]);
        if !args
            .iter()
            .any(|a| *a == "--host" || a.starts_with("--host="))
        {
            cmd.args(["--host", "127.0.0.1"]);
        }
        cmd.args(args);
        Server::spawn(cmd, 1)
    }

    /// Like `start`, but a server that exits before it listens (e.g. it
    /// refused its arguments) is returned as what it printed, not a panic.
    pub fn try_start(args: &[&str]) -> Result<Server, Finished> {
        let mut cmd = pollmux();
        cmd.args(["serve", "--port", "0", "--host", "127.0.0.1"]);
        cmd.args(args);
        let mut server = Server::launch(cmd);
        let ready = server.stdout.wait_until(PATIENCE, |text| {
            text.lines().any(|l| l.starts_with("listening on ")) && text.ends_with('\n')
        });
        if !ready {
            if let Some(status) = server.wait_exit(Duration::from_secs(5)) {
                return Err(Finished {
                    command: server.command.clone(),
                    status,
                    stdout: server.stdout(),
                    stderr: server.stderr(),
                });
            }
            panic!("server neither listened nor exited within {PATIENCE:?}");
        }
        server.parse_addrs();
        Ok(server)
    }

    pub fn launch(mut cmd: Command) -> Server {
        let command = describe(&cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
        let stdout = Capture::start(child.stdout.take().expect("piped stdout"));
        let stderr = Capture::start(child.stderr.take().expect("piped stderr"));
        Server {
            child,
            command,
            addrs: Vec::new(),
            udp_addrs: Vec::new(),
            stdout,
            stderr,
            status: None,
        }
    }

    fn parse_addrs(&mut self) {
        let text = self.stdout.text();
        let parse = |a: &str| -> SocketAddr {
            a.trim()
                .parse()
                .unwrap_or_else(|e| panic!("bad address in `listening on {a}`: {e}"))
        };
        let listening = text.lines().filter_map(|l| l.strip_prefix("listening on "));
        let (udp, tcp): (Vec<&str>, Vec<&str>) = listening.partition(|a| a.starts_with("udp "));
        self.addrs = tcp.into_iter().map(parse).collect();
        self.udp_addrs = udp
            .into_iter()
            .map(|a| parse(a.trim_start_matches("udp ")))
            .collect();
    }

    /// The first UDP address (`--udp` or `--udp-only`).
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addrs[0]
    }

    /// Spawn any command that ends up running `pollmux serve` (e.g. under a
    /// shell that sets limits first) and wait for `listeners` lines
    /// `listening on ADDR` on its stdout: the server's readiness signal.
    pub fn spawn(cmd: Command, listeners: usize) -> Server {
        let mut server = Server::launch(cmd);
        let ready = server.stdout.wait_until(PATIENCE, |text| {
            text.lines()
                .filter(|l| l.starts_with("listening on "))
                .count()
                >= listeners
                && text.ends_with('\n')
        });
        assert!(
            ready,
            "server did not print {listeners} `listening on` line(s) within {PATIENCE:?} \
             (exit status so far: {:?})",
            server.child.try_wait().ok().flatten()
        );
        server.parse_addrs();
        server
    }

    /// The first listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn command(&self) -> &str {
        &self.command
    }

    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Wait (bounded) until stderr contains `needle`. Use this rather than
    /// `stderr()` right after an event: stdout and stderr are read by two
    /// threads, so a log line written before the `listening on` line may
    /// still be on its way.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        self.stderr
            .wait_until(timeout, |text| text.contains(needle))
    }

    /// Wait (bounded) until some stderr line satisfies `pred`.
    pub fn wait_for_stderr_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        self.stderr
            .wait_until(timeout, |text| text.lines().any(&pred))
    }

    /// Whether the process is still running (not exited, not a zombie).
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait on server");
        }
        self.status
    }

    /// Wait up to `timeout` for the server to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                // Let the readers take the last output.
                self.stdout.wait_closed(Duration::from_secs(2));
                self.stderr.wait_closed(Duration::from_secs(2));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send a signal with `kill -SIG PID`. Unix only: Windows has no signals
    /// (Ctrl-C/Ctrl-Break cannot be sent to a process without a console).
    #[cfg(unix)]
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            // Reaped at once after SIGKILL/TerminateProcess.
            self.status = self.child.wait().ok();
        }
        if thread::panicking() {
            self.stdout.wait_closed(Duration::from_secs(2));
            self.stderr.wait_closed(Duration::from_secs(2));
            eprintln!(
                "\n===== server command: {}\n===== exit status: {:?}\n===== server stdout:\n{}\
                 \n===== server stderr:\n{}\n===== end of server output\n",
                self.command,
                self.status,
                self.stdout.text(),
                self.stderr.text()
            );
        }
    }
}

/// What a short-lived `pollmux` command did.
pub struct Finished {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The exit code; panics (with the output) if a signal ended it.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("no exit code (killed by a signal?)\n{self}"))
    }

    /// Assert that stderr is exactly one line starting `pollmux:`.
    pub fn assert_one_error_line(&self) {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "want one stderr line\n{self}");
        assert!(
            lines[0].starts_with("pollmux: "),
            "want `pollmux: ...`\n{self}"
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "no panic, no backtrace\n{self}"
        );
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "===== command: {}\n===== exit status: {:?}\n===== stdout:\n{}\n===== stderr:\n{}\n=====",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// Run a command to completion within `timeout` (killing it and failing the
/// test if it takes longer), with stdin closed and both outputs captured.
pub fn run(mut cmd: Command, timeout: Duration) -> Finished {
    let command = describe(&cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    let stdout = Capture::start(child.stdout.take().expect("piped stdout"));
    let stderr = Capture::start(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            stdout.wait_closed(Duration::from_secs(2));
            stderr.wait_closed(Duration::from_secs(2));
            panic!(
                "`{command}` did not finish within {timeout:?}\n===== stdout:\n{}\n===== stderr:\n{}",
                stdout.text(),
                stderr.text()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    stdout.wait_closed(Duration::from_secs(5));
    stderr.wait_closed(Duration::from_secs(5));
    Finished {
        command,
        status,
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

/// `pollmux ARGS` run to completion (bounded by `PATIENCE`).
pub fn run_pollmux(args: &[&str]) -> Finished {
    let mut cmd = pollmux();
    cmd.args(args);
    run(cmd, PATIENCE)
}

/// `pollmux bench` at `addr` with `args`, run to completion (bounded).
pub fn bench(addr: SocketAddr, args: &[&str]) -> Finished {
    bench_with(pollmux(), addr, args)
}

/// `pollmux bench` from `cmd` (e.g. with environment variables set).
pub fn bench_with(mut cmd: Command, addr: SocketAddr, args: &[&str]) -> Finished {
    cmd.args(["bench", "--host"])
        .arg(addr.ip().to_string())
        .arg("--port")
        .arg(addr.port().to_string())
        .args(args);
    run(cmd, PATIENCE * 3)
}

/// The number after `name:` in the text report.
pub fn figure(out: &Finished, name: &str) -> u64 {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` figure\n{out}"))
}

/// The one JSON object `pollmux bench --json` printed on stdout.
pub fn bench_json(out: &Finished) -> serde_json::Map<String, serde_json::Value> {
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "--json prints one line\n{out}");
    let value: serde_json::Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("--json output is not JSON: {e}\n{out}"));
    value
        .as_object()
        .unwrap_or_else(|| panic!("--json output is not an object\n{out}"))
        .clone()
}

// ---------------------------------------------------------------- clients

/// A blocking client with a bounded connect and finite read/write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(PATIENCE))
        .expect("write timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Send `message` and read exactly as many bytes back; assert they match.
pub fn assert_echo(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).expect("send message");
    let mut echo = vec![0u8; message.len()];
    stream
        .read_exact(&mut echo)
        .unwrap_or_else(|e| panic!("read echo of {} bytes: {e}", message.len()));
    assert!(
        echo == message,
        "echo differs: sent {:?}, got {:?}",
        String::from_utf8_lossy(message),
        String::from_utf8_lossy(&echo)
    );
}

/// Read until EOF (bounded by the stream's read timeout); returns the bytes.
pub fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("read to EOF (got {} bytes so far): {e}", out.len()));
    out
}

/// How a read ended that was expected to see the connection closed.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// Orderly FIN: read returned 0.
    Eof,
    /// The peer reset (or aborted) the connection.
    Reset,
}

/// Read (discarding data) until the server closes the connection or
/// `timeout` passes; `None` means it was still open at the deadline.
/// Callers accept either kind of close: the server may reset a connection it
/// drops with unread data, and under wine (IOCP/AFD emulated on Linux
/// sockets) a reset is read as `Ok(0)`, i.e. EOF, not `ConnectionReset`.
pub fn wait_closed(stream: &mut TcpStream, timeout: Duration) -> Option<Closed> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Some(Closed::Eof),
            Ok(_) => continue,
            Err(e) if is_timeout(&e) => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_reset(&e) => return Some(Closed::Reset),
            Err(e) => panic!("unexpected read error while waiting for close: {e}"),
        }
    }
}

/// A read/write timeout: `WouldBlock` on Unix, `TimedOut` on Windows.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The peer is gone abruptly.
pub fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Write-all then shut down the write side (half-close).
pub fn send_and_half_close(stream: &mut TcpStream, data: &[u8]) {
    stream.write_all(data).expect("send");
    stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    listener.local_addr().expect("probe addr").port()
}

/// Raise this test process's soft open-files limit to the hard limit, so
/// thousands of client sockets fit. Unix only: Windows has no such limit.
pub fn raise_fd_limit() -> u64 {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE")
    }
    #[cfg(not(unix))]
    {
        u64::MAX
    }
}

// ------------------------------------------------------------ random bytes

/// xorshift64*: small, fast, deterministic; good enough to make every byte
/// of a test stream unpredictable to the server.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Avoid the all-zero state and spread small seeds.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// A size in `1..=max` spread over every order of magnitude, so one-byte
    /// writes are as common as large ones (a uniform pick would almost never
    /// produce a tiny chunk).
    pub fn chunk_size(&mut self, max: usize) -> usize {
        let bits = usize::BITS - max.leading_zeros(); // max < 2^bits
        let cap = (1usize << self.range(0, bits as usize)).min(max);
        self.range(1, cap)
    }
}

/// An endless deterministic byte stream: the same seed yields the same bytes
/// however the reads of it are chunked, so a writer and a checker can each
/// generate it without storing it.
pub struct ByteStream {
    rng: Rng,
    spare: [u8; 8],
    spare_pos: usize,
    /// Bytes produced so far.
    pub offset: u64,
}

impl ByteStream {
    pub fn new(seed: u64) -> ByteStream {
        ByteStream {
            rng: Rng::new(seed ^ 0xB7E1_5162_8AED_2A6B),
            spare: [0; 8],
            spare_pos: 8,
            offset: 0,
        }
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        self.offset += out.len() as u64;
        let mut i = 0;
        while i < out.len() && self.spare_pos < 8 {
            out[i] = self.spare[self.spare_pos];
            self.spare_pos += 1;
            i += 1;
        }
        let mut words = out[i..].chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            self.spare = self.rng.next_u64().to_le_bytes();
            rest.copy_from_slice(&self.spare[..rest.len()]);
            self.spare_pos = rest.len();
        }
    }

    /// Check that `got` is the stream's next bytes; on a mismatch the error
    /// names the first differing offset.
    pub fn check(&mut self, got: &[u8], scratch: &mut Vec<u8>) -> Result<(), String> {
        let start = self.offset;
        scratch.resize(got.len(), 0);
        self.fill(scratch);
        if got == &scratch[..] {
            return Ok(());
        }
        let at = got
            .iter()
            .zip(scratch.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        Err(format!(
            "byte {} of the stream differs: expected {:#04x}, got {:#04x}",
            start + at as u64,
            scratch[at],
            got[at]
        ))
    }
}

// --------------------------------------------------- Linux /proc readings

/// Readings of another process from Linux's /proc. Linux only: other systems
/// have no /proc (or a different one), so the tests using these are
/// `#[cfg(target_os = "linux")]`.
#[cfg(target_os = "linux")]
pub mod proc {
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::thread;
    use std::time::{Duration, Instant};

    /// Resident set size in KiB (VmRSS in /proc/PID/status).
    pub fn rss_kib(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status:\n{status}"))
    }

    /// Open descriptors (entries of /proc/PID/fd).
    pub fn fd_count(pid: u32) -> usize {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap_or_else(|e| panic!("list /proc/{pid}/fd: {e}"))
            .count()
    }

    /// Wait until `fd_count(pid)` satisfies `ok`, or `timeout` passes;
    /// returns the last count seen.
    pub fn wait_fd_count(pid: u32, timeout: Duration, ok: impl Fn(usize) -> bool) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = fd_count(pid);
            if ok(n) || Instant::now() >= deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// CPU time (user + system) used so far, from /proc/PID/stat.
    pub fn cpu_time(pid: u32) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
        // The command name (field 2) may contain spaces: split after its ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // /proc reports clock ticks in USER_HZ, which Linux fixes at 100 for
        // every architecture's user-space ABI.
        Duration::from_millis(ticks * 10)
    }

    /// Send and receive queue lengths (bytes) of the TCP socket `local` ->
    /// `remote`, from /proc/net/tcp{,6}: `tx` is data written but not yet
    /// acknowledged by the peer, `rx` is data received but not yet read by
    /// the application.
    pub fn tcp_queues(local: SocketAddr, remote: SocketAddr) -> Option<(u64, u64)> {
        tcp_table(local.is_ipv6()).queues(local, remote)
    }

    /// One reading of the established TCP sockets of one family (the table
    /// may hold thousands of TIME_WAIT lines from earlier tests: read it
    /// once per look, not once per socket).
    pub struct TcpTable(HashMap<(SocketAddr, SocketAddr), (u64, u64)>);

    impl TcpTable {
        /// (tx, rx) queue lengths of the socket `local` -> `remote`.
        pub fn queues(&self, local: SocketAddr, remote: SocketAddr) -> Option<(u64, u64)> {
            self.0.get(&(local, remote)).copied()
        }
    }

    pub fn tcp_table(ipv6: bool) -> TcpTable {
        let file = if ipv6 { "tcp6" } else { "tcp" };
        let mut map = HashMap::new();
        let Ok(table) = std::fs::read_to_string(format!("/proc/net/{file}")) else {
            return TcpTable(map);
        };
        for line in table.lines().skip(1) {
            let mut cols = line.split_whitespace();
            let (Some(_), Some(local), Some(remote), Some(state), Some(queues)) = (
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
            ) else {
                continue;
            };
            if state != "01" {
                continue; // only ESTABLISHED
            }
            let (Some(local), Some(remote), Some((tx, rx))) = (
                parse_addr(local),
                parse_addr(remote),
                queues.split_once(':'),
            ) else {
                continue;
            };
            if let (Ok(tx), Ok(rx)) = (u64::from_str_radix(tx, 16), u64::from_str_radix(rx, 16)) {
                map.insert((local, remote), (tx, rx));
            }
        }
        TcpTable(map)
    }

    /// `0100007F:8A17` -> 127.0.0.1:35351. The kernel prints the address as
    /// native-endian 32-bit words of the network-order bytes.
    fn parse_addr(text: &str) -> Option<SocketAddr> {
        let (ip, port) = text.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let ip = match ip.len() {
            8 => IpAddr::V4(Ipv4Addr::from(
                u32::from_str_radix(ip, 16).ok()?.to_ne_bytes(),
            )),
            32 => {
                let mut bytes = [0u8; 16];
                for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                    let word = u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).ok()?;
                    chunk.copy_from_slice(&word.to_ne_bytes());
                }
                IpAddr::V6(Ipv6Addr::from(bytes))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }
}

// ------------------------------------------------------------ UDP echo

/// What a [`UdpEcho`] does to datagram number `at` (counted from 0 over
/// every datagram it receives, a bench's probe included); every other
/// datagram is echoed to its sender as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mischief {
    /// A faithful echo.
    None,
    /// Never echo it.
    Drop { at: u64 },
    /// Echo it twice.
    Duplicate { at: u64 },
    /// Hold it back and echo it right after the next datagram's echo.
    Reorder { at: u64 },
    /// Flip the low bit of its last byte.
    Corrupt { at: u64 },
    /// Hold it back; echo it with the first datagram that arrives `after`
    /// or more later.
    Delay { at: u64, after: Duration },
    /// Close the socket instead of echoing it (later datagrams draw ICMP
    /// "port unreachable").
    Vanish { at: u64 },
}

/// A UDP echo server on 127.0.0.1 in a thread of the test, until the
/// pollmux server has UDP of its own to test against. Stopped on drop.
pub struct UdpEcho {
    pub addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl UdpEcho {
    pub fn start(mischief: Mischief) -> UdpEcho {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP echo");
        // Bounded: a stop that somehow never arrives ends the thread anyway.
        socket.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let addr = socket.local_addr().expect("its address");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || udp_echo(&socket, mischief, &stopped));
        UdpEcho {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the thread out of its recv with one datagram.
        if let Ok(waker) = std::net::UdpSocket::bind("127.0.0.1:0") {
            let _ = waker.send_to(b"stop", self.addr);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn udp_echo(
    socket: &std::net::UdpSocket,
    mischief: Mischief,
    stop: &std::sync::atomic::AtomicBool,
) {
    let mut buf = vec![0u8; 65_536];
    let mut held: Option<(Vec<u8>, SocketAddr, Instant)> = None;
    for index in 0u64.. {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            return;
        };
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let mut datagram = buf[..n].to_vec();
        let echo = |d: &[u8], to: SocketAddr| {
            let _ = socket.send_to(d, to);
        };
        match mischief {
            Mischief::Drop { at } if at == index => continue,
            Mischief::Vanish { at } if at == index => return,
            Mischief::Duplicate { at } if at == index => echo(&datagram, from),
            Mischief::Reorder { at } | Mischief::Delay { at, .. } if at == index => {
                held = Some((datagram, from, Instant::now()));
                continue;
            }
            Mischief::Corrupt { at } if at == index => {
                if let Some(last) = datagram.last_mut() {
                    *last ^= 1;
                }
            }
            _ => {}
        }
        echo(&datagram, from);
        let release = match (mischief, &held) {
            (Mischief::Reorder { .. }, Some(_)) => true,
            (Mischief::Delay { after, .. }, Some((_, _, since))) => since.elapsed() >= after,
            _ => false,
        };
        if release {
            if let Some((late, to, _)) = held.take() {
                echo(&late, to);
            }
        }
    }
}

/// A UDP port on 127.0.0.1 that nothing listens on (bound, then released):
/// a datagram sent there draws ICMP "port unreachable".
pub fn closed_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a probe");
    socket.local_addr().expect("probe addr").port()
}
