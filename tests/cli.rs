//! The command line as a user meets it: help, version, usage errors (exit 2,
//! one `pollmux:` line), runtime errors (exit 1, one line naming what and
//! where: unresolvable host, port in use), and `POLLMUX_*` variables.
//! (`Cli::command().debug_assert()` is a unit test in src/cli.rs.)

mod util;

use util::{run_pollmux, Server};

#[test]
fn help_lists_the_commands_and_exit_codes() {
    let out = run_pollmux(&["--help"]);
    assert_eq!(out.code(), 0, "{out}");
    for word in ["serve", "client", "bench", "Exit codes"] {
        assert!(
            out.stdout.contains(word),
            "--help should mention {word}\n{out}"
        );
    }
    assert!(out.stderr.is_empty(), "help goes to stdout\n{out}");
}

#[test]
fn serve_help_shows_every_flag_and_its_environment_variable() {
    let out = run_pollmux(&["serve", "--help"]);
    assert_eq!(out.code(), 0, "{out}");
    for (flag, env) in [
        ("--host", "POLLMUX_HOST"),
        ("--port", "POLLMUX_PORT"),
        ("--backlog", "POLLMUX_BACKLOG"),
        ("--ipv6-only", "POLLMUX_IPV6_ONLY"),
        ("--max-pending", "POLLMUX_MAX_PENDING"),
        ("--max-connections", "POLLMUX_MAX_CONNECTIONS"),
        ("--idle-timeout", "POLLMUX_IDLE_TIMEOUT"),
        ("--shutdown-timeout", "POLLMUX_SHUTDOWN_TIMEOUT"),
        ("--mode", "POLLMUX_MODE"),
        ("--udp", "POLLMUX_UDP"),
        ("--udp-only", "POLLMUX_UDP_ONLY"),
        ("--udp-queue", "POLLMUX_UDP_QUEUE"),
        ("--udp-allow-low-ports", "POLLMUX_UDP_ALLOW_LOW_PORTS"),
        ("--stats-interval", "POLLMUX_STATS_INTERVAL"),
        ("--stats-format", "POLLMUX_STATS_FORMAT"),
        ("--trace-events", "POLLMUX_TRACE_EVENTS"),
    ] {
        assert!(
            out.stdout.contains(flag),
            "serve --help lacks {flag}\n{out}"
        );
        assert!(out.stdout.contains(env), "serve --help lacks {env}\n{out}");
    }
}

#[test]
fn client_help_shows_its_environment_variables() {
    let out = run_pollmux(&["client", "--help"]);
    assert_eq!(out.code(), 0, "{out}");
    for word in ["--count", "--interval", "--message", "POLLMUX_"] {
        assert!(
            out.stdout.contains(word),
            "client --help lacks {word}\n{out}"
        );
    }
}

#[test]
fn version_prints_the_crate_version() {
    let out = run_pollmux(&["--version"]);
    assert_eq!(out.code(), 0, "{out}");
    let expected = format!("pollmux {}", env!("CARGO_PKG_VERSION"));
    assert!(
        out.stdout.starts_with(&expected),
        "want `{expected}...`\n{out}"
    );
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
}

#[test]
fn no_command_is_a_usage_error() {
    let out = run_pollmux(&[]);
    assert_eq!(out.code(), 2, "{out}");
}

/// Every usage error: exit 2 and one line on stderr, `pollmux: ...`,
/// naming the offending flag or value.
#[test]
fn usage_errors_exit_2_with_one_line() {
    for (args, mentions) in [
        (&["serve", "--bogus"][..], "--bogus"),
        (&["serve", "--port", "99999"], "99999"),
        (&["serve", "--port", "http"], "http"),
        (&["serve", "--max-pending", "12x"], "12x"),
        (&["serve", "--idle-timeout", "soon"], "soon"),
        (&["serve", "--idle-timeout", "-1"], "-1"),
        (&["serve", "--max-connections", "0"], "--max-connections"),
        (&["serve", "--backlog", "0"], "--backlog"),
        (&["serve", "--poll-mode", "sideways"], "sideways"),
        (&["client", "--count", "many"], "many"),
        (&["frobnicate"], "frobnicate"),
    ] {
        let out = run_pollmux(args);
        assert_eq!(out.code(), 2, "{args:?}\n{out}");
        out.assert_one_error_line();
        assert!(
            out.stderr.contains(mentions),
            "{args:?}: should name `{mentions}`\n{out}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout\n{out}");
    }
}

/// A bad value from the environment is a usage error too.
#[test]
fn a_bad_environment_value_exits_2() {
    let mut cmd = util::pollmux();
    cmd.arg("serve").env("POLLMUX_PORT", "99999");
    let out = util::run(cmd, util::PATIENCE);
    assert_eq!(out.code(), 2, "{out}");
    out.assert_one_error_line();
    assert!(out.stderr.contains("99999"), "{out}");
}

/// Flags can come from `POLLMUX_*` variables: host and port from the
/// environment, and the server listens where they say.
#[test]
fn host_and_port_come_from_the_environment() {
    let mut cmd = util::pollmux();
    cmd.arg("serve")
        .env("POLLMUX_HOST", "127.0.0.1")
        .env("POLLMUX_PORT", "0")
        .env("POLLMUX_MAX_CONNECTIONS", "1");
    let server = Server::spawn(cmd, 1);
    assert!(server.addr().ip().is_loopback() && server.addr().is_ipv4());
    // The startup log line precedes the `listening on` line, but it comes
    // through another pipe: wait for it rather than race its reader.
    assert!(
        server.wait_for_stderr("up to 1 clients", util::PATIENCE),
        "POLLMUX_MAX_CONNECTIONS should be used:\n{}",
        server.stderr()
    );
    util::assert_echo(&mut util::connect(server.addr()), b"configured by env");
}

#[test]
fn unresolvable_host_exits_1_with_one_line() {
    let out = run_pollmux(&["serve", "--host", "no-such-host.invalid", "--port", "0"]);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(
        out.stderr.contains("no-such-host.invalid"),
        "names the host\n{out}"
    );
}

/// A second server on a port in use: exit 1 and one line that names the
/// address and says it is in use.
#[test]
fn port_in_use_exits_1_naming_the_address() {
    let first = Server::start(&[]);
    let addr = first.addr();
    let port = addr.port().to_string();
    let out = run_pollmux(&["serve", "--host", "127.0.0.1", "--port", &port]);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_one_error_line();
    assert!(
        out.stderr.contains(&addr.to_string()),
        "names {addr}\n{out}"
    );
    assert!(
        out.stderr.to_lowercase().contains("in use"),
        "says the address is in use\n{out}"
    );
    assert!(out.stdout.is_empty(), "no `listening on` line\n{out}");
    // The first server is unaffected.
    util::assert_echo(&mut util::connect(addr), b"first one still serves");
}

/// `completions` and `man` print something useful and exit 0.
#[test]
fn completions_and_man_page_are_generated() {
    let out = run_pollmux(&["completions", "bash"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("pollmux"), "{out}");
    let out = run_pollmux(&["man"]);
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains(".TH"), "roff man page\n{out}");
}

/// A read buffer no machine can allocate is bad input: one `pollmux:` line
/// and exit 1 or 2, not an allocation-failure abort with a backtrace.
#[test]
fn an_impossible_read_buffer_is_refused_with_one_line() {
    // ~950 TiB: more than any 64-bit address space offers a process.
    let out = run_pollmux(&[
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--read-buffer",
        "1000000g",
    ]);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "want exit 1 or 2, not a crash\n{out}"
    );
    out.assert_one_error_line();
}

/// The one usage line keeps clap's details: which argument is missing, the
/// values allowed, and which POLLMUX_ variable a bad value came from.
#[test]
fn usage_errors_keep_the_details_that_matter() {
    let out = run_pollmux(&["completions"]);
    assert_eq!(out.code(), 2, "{out}");
    out.assert_one_error_line();
    assert!(
        out.stderr.contains("<SHELL>"),
        "names the missing argument\n{out}"
    );

    let out = run_pollmux(&["serve", "--poll-mode", "edge"]);
    assert_eq!(out.code(), 2, "{out}");
    out.assert_one_error_line();
    assert!(out.stderr.contains("possible values"), "{out}");
    assert!(out.stderr.contains("pollmux serve --help"), "{out}");

    let mut cmd = util::pollmux();
    cmd.args(["serve"]).env("POLLMUX_PORT", "abc");
    let out = util::run(cmd, util::PATIENCE);
    assert_eq!(out.code(), 2, "{out}");
    out.assert_one_error_line();
    assert!(out.stderr.contains("(from POLLMUX_PORT)"), "{out}");
}

/// Every subcommand has its own man page; an unknown one is a usage error.
#[test]
fn man_pages_exist_for_each_subcommand() {
    for sub in ["serve", "client", "bench", "completions", "man"] {
        let out = run_pollmux(&["man", sub]);
        assert_eq!(out.code(), 0, "{out}");
        assert!(
            out.stdout.contains(&format!(".TH pollmux-{sub} 1")),
            "pollmux-{sub}(1)\n{out}"
        );
    }
    let out = run_pollmux(&["man", "serve"]);
    assert!(out.stdout.contains("max\\-pending"), "serve's flags\n{out}");
    let out = run_pollmux(&["man", "frob"]);
    assert_eq!(out.code(), 2, "{out}");
    out.assert_one_error_line();
}

/// Generated output into a pipe whose reader is gone (`| head -1` that
/// already exited) is an error line and exit 1, not a panic (exit 101).
#[test]
fn generated_output_into_a_closed_pipe_does_not_panic() {
    use std::process::Stdio;
    for args in [["completions", "bash"], ["man", "serve"]] {
        let mut child = util::pollmux()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pollmux");
        // Close the read end before the child (still starting) writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "{args:?}: exit 1 on a broken pipe (0 if it won the race), got {code:?}\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
