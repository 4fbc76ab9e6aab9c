//! Logging: timestamped lines on stderr (stdout holds only the `listening
//! on` lines), info by default, per-connection open/close at debug, and
//! `-v`/`-q`/`RUST_LOG` moving the level (`-v`/`-q` win over `RUST_LOG`).

mod util;

use std::net::Shutdown;
use std::time::Duration;

use util::{connect, Server};

/// Start a server with `global` flags (before `serve`) and `env`, run one
/// client through it (echo, half-close, EOF) and wait until the server has
/// logged the close if it logs at debug.
fn server_log(global: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let mut cmd = util::pollmux();
    cmd.args(global)
        .args(["serve", "--port", "0", "--host", "127.0.0.1"])
        .envs(env.iter().copied());
    let server = Server::spawn(cmd, 1);
    let mut client = connect(server.addr());
    util::assert_echo(&mut client, b"log me");
    client.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(util::read_to_eof(&mut client), b"");
    // Debug logging (if on) says so once the connection is closed; for the
    // quieter levels this bounded wait simply runs out.
    server.wait_for_stderr("closed", Duration::from_millis(500));
    (server.stdout(), server.stderr())
}

fn has_level(stderr: &str, level: &str) -> bool {
    stderr.lines().any(|l| l.contains(&format!(" {level} ")))
}

#[test]
fn default_level_is_info_without_per_connection_lines() {
    let (stdout, stderr) = server_log(&[], &[]);
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout: only `listening on`\n{stdout}"
    );
    assert!(
        has_level(&stderr, "INFO"),
        "startup is logged at info:\n{stderr}"
    );
    assert!(
        !has_level(&stderr, "DEBUG"),
        "no debug lines by default:\n{stderr}"
    );
    // Every log line starts with a UTC timestamp, e.g. 2026-01-02T03:04:05.678Z.
    for line in stderr.lines() {
        let stamp = line.split(' ').next().unwrap_or("");
        assert!(
            stamp.len() >= 20 && stamp.as_bytes()[4] == b'-' && stamp.contains('T'),
            "log line without a timestamp: {line}"
        );
    }
}

#[test]
fn verbose_logs_each_connection_opening_and_closing() {
    let (stdout, stderr) = server_log(&["-v"], &[]);
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout: only `listening on`\n{stdout}"
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("connection #"))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("opened")) && lines.iter().any(|l| l.contains("closed")),
        "-v: per-connection open and close lines expected:\n{stderr}"
    );
    assert!(
        lines.iter().all(|l| has_level(l, "DEBUG")),
        "per-connection lines are debug:\n{stderr}"
    );
}

#[test]
fn quiet_drops_info_lines() {
    let (_, stderr) = server_log(&["-q"], &[]);
    assert!(!has_level(&stderr, "INFO"), "-q: no info lines:\n{stderr}");
}

#[test]
fn rust_log_moves_the_level_and_flags_win_over_it() {
    let (_, stderr) = server_log(&[], &[("RUST_LOG", "debug")]);
    assert!(
        has_level(&stderr, "DEBUG"),
        "RUST_LOG=debug turns on debug lines:\n{stderr}"
    );
    let (_, stderr) = server_log(&["-q"], &[("RUST_LOG", "debug")]);
    assert!(
        !has_level(&stderr, "DEBUG") && !has_level(&stderr, "INFO"),
        "-q wins over RUST_LOG=debug:\n{stderr}"
    );
}

/// RUST_LOG holding anything but a level (a module filter, a typo) is
/// not ignored in silence: one warning says what it takes.
#[test]
fn rust_log_that_is_not_a_level_is_named_in_a_warning() {
    for value in ["pollmux=debug", "bogus"] {
        let (_, stderr) = server_log(&[], &[("RUST_LOG", value)]);
        let warning = format!("RUST_LOG=\"{value}\" ignored: it takes one level");
        assert!(stderr.contains(&warning), "{stderr}");
        assert!(
            has_level(&stderr, "INFO"),
            "info stays the level:\n{stderr}"
        );
    }
    let (_, stderr) = server_log(&[], &[("RUST_LOG", "Debug")]);
    assert!(!stderr.contains("ignored"), "{stderr}");
}

/// A log line that cannot be written (stderr's reader is gone) must not
/// take the server down: it keeps echoing, with logging switched off, and
/// still shuts down cleanly. Unix only: the clean exit is checked by SIGTERM.
#[cfg(unix)]
#[test]
fn a_broken_stderr_does_not_stop_the_server() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mut child = util::pollmux()
        .args(["serve", "--port", "0", "--host", "127.0.0.1", "-v"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pollmux");
    drop(child.stderr.take());
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("listening line");
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("want a listening line, got {line:?}"))
        .parse()
        .expect("address");
    // Each connection logs open/close at debug (-v): every one of those
    // writes fails now.
    for i in 0..3 {
        let mut client = util::connect(addr);
        util::assert_echo(&mut client, format!("still echoing {i}").as_bytes());
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + util::PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not exit after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "clean exit, not a panic (101)");
}
