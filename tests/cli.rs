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

/// Counts below 1 and negative numbers get a plain reason (not clap's
/// "0 is not in 1..18446744073709551615", nor "unexpected argument '-1'").
#[test]
fn out_of_range_numbers_say_why_in_plain_words() {
    for (args, reason) in [
        (&["client", "--count", "0"][..], "'0' must be at least 1"),
        (&["bench", "-c", "0"], "'0' must be at least 1"),
        (&["bench", "-c", "-3"], "'-3' must be at least 1"),
        (&["serve", "--backlog", "-5"], "'-5' must be at least 1"),
        (
            &["serve", "--max-connections", "5000000000"],
            "must be at most 4294967295",
        ),
        (
            &["client", "-i", "-1"],
            "'-1' must be a non-negative duration",
        ),
        (
            &["serve", "--drop", "-0.5", "--udp"],
            "'-0.5' is not a fraction",
        ),
        (&["client", "--count", "1.5"], "'1.5' is not a whole number"),
    ] {
        let out = run_pollmux(args);
        assert_eq!(out.code(), 2, "{args:?}\n{out}");
        out.assert_one_error_line();
        assert!(
            out.stderr.contains(reason),
            "{args:?}: want `{reason}`\n{out}"
        );
    }
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
        (&["client", "-m", ""], "the message must not be empty"),
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
        server.wait_for_stderr("up to 1 client,", util::PATIENCE),
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

/// `serve` whose stdout reader is gone cannot tell anyone where it
/// listens: one line that says so (not a bare "Broken pipe"), exit 1.
#[cfg(unix)]
#[test]
fn serve_with_a_closed_stdout_says_what_it_could_not_write() {
    use std::process::Stdio;
    // The read end is closed before the server starts. (Closing it after
    // the spawn raced: a child that another test forked meanwhile held a
    // copy of it until its exec, and the server's write went through.)
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = util::pollmux()
        .args(["serve", "--port", "0", "--host", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pollmux");
    let deadline = std::time::Instant::now() + util::PATIENCE;
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("serve kept running with no stdout");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("pollmux: cannot write 'listening on' to stdout: "),
        "{stderr}"
    );
}

// ------------------------------------- options from variables and the command line

/// `pollmux ARGS` with the `POLLMUX_*` variables `env`, run to completion.
fn run_with_env(env: &[(&str, &str)], args: &[&str]) -> util::Finished {
    let mut cmd = util::pollmux();
    cmd.args(args).envs(env.iter().copied());
    util::run(cmd, util::PATIENCE)
}

/// `pollmux serve --port 0 --host 127.0.0.1 ARGS` with `env`, once it listens.
fn serve_with_env(env: &[(&str, &str)], args: &[&str]) -> Server {
    let mut cmd = util::pollmux();
    cmd.args(["serve", "--port", "0", "--host", "127.0.0.1"])
        .args(args)
        .envs(env.iter().copied());
    Server::spawn(cmd, 1)
}

/// `pollmux bench` at `addr` with `env` and `args`: a short verified run.
fn bench_with_env(
    addr: std::net::SocketAddr,
    env: &[(&str, &str)],
    args: &[&str],
) -> util::Finished {
    let mut cmd = util::pollmux();
    cmd.envs(env.iter().copied());
    let short = [
        "--connections",
        "2",
        "--warmup",
        "0",
        "--stall-timeout",
        "5",
    ];
    util::bench_with(cmd, addr, &[&short[..], args].concat())
}

/// A usage error: exit 2, one `pollmux:` line naming each of `names`.
fn assert_usage_error(out: &util::Finished, names: &[&str]) {
    assert_eq!(out.code(), 2, "{out}");
    out.assert_one_error_line();
    for name in names {
        assert!(out.stderr.contains(name), "should name `{name}`\n{out}");
    }
    assert!(out.stdout.is_empty(), "nothing on stdout\n{out}");
}

/// A switch whose variable is false (`false`, `0`, `no`, `off`) is off:
/// it conflicts with nothing (clap counted it as given).
#[test]
fn a_switch_whose_variable_is_false_conflicts_with_nothing() {
    for off in ["false", "0", "no", "off"] {
        let server = serve_with_env(&[("POLLMUX_UDP", off)], &["--udp-only"]);
        assert!(
            server.addrs.is_empty() && server.udp_addrs.len() == 1,
            "POLLMUX_UDP={off} --udp-only: UDP alone\n{}",
            server.stdout()
        );
    }
    let server = serve_with_env(&[("POLLMUX_UDP", "0"), ("POLLMUX_UDP_ONLY", "1")], &[]);
    assert!(server.addrs.is_empty() && server.udp_addrs.len() == 1);

    let server = Server::start(&["--udp"]);
    let off = [("POLLMUX_BENCH_UDP", "0")];
    for args in [
        &["--half-close", "-n", "10"][..],
        &["--idle", "2", "-n", "10"],
    ] {
        let out = bench_with_env(server.addr(), &off, args);
        assert_eq!(out.code(), 0, "POLLMUX_BENCH_UDP=0 {args:?}\n{out}");
        assert!(out.stderr.is_empty(), "{out}");
    }
    let off = [
        ("POLLMUX_BENCH_HALF_CLOSE", "0"),
        ("POLLMUX_BENCH_IDLE", "0"),
    ];
    let out = bench_with_env(
        server.udp_addr(),
        &off,
        &["--udp", "-n", "10", "--size", "64"],
    );
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("UDP, closed loop"), "{out}");

    // Nor does a false --udp satisfy --max-loss.
    let out = run_with_env(
        &[("POLLMUX_BENCH_UDP", "off")],
        &["bench", "--max-loss", "0.1"],
    );
    assert_usage_error(&out, &["'--max-loss", "requires '--udp'"]);
}

/// Of two options that cannot be used together, the one on the command
/// line wins and the variable of the other is ignored.
#[test]
fn the_command_line_overrides_a_conflicting_variable() {
    let server = serve_with_env(&[("POLLMUX_UDP", "1")], &["--udp-only"]);
    assert!(server.addrs.is_empty() && server.udp_addrs.len() == 1);
    let server = serve_with_env(&[("POLLMUX_UDP_ONLY", "1")], &["--udp"]);
    assert!(server.addrs.len() == 1 && server.udp_addrs.len() == 1);

    let out = bench_with_env(
        server.addr(),
        &[("POLLMUX_BENCH_DURATION", "30")],
        &["-n", "10"],
    );
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(util::figure(&out, "messages"), 10, "-n wins\n{out}");

    let out = bench_with_env(
        server.addr(),
        &[("POLLMUX_BENCH_MESSAGES", "1000000000")],
        &["-t", "0.2"],
    );
    assert_eq!(out.code(), 0, "-t wins (else it runs for ever)\n{out}");

    // --half-close or --idle on the command line: a TCP run, and the
    // variables' --udp and its --max-loss are ignored.
    let udp = [
        ("POLLMUX_BENCH_UDP", "true"),
        ("POLLMUX_BENCH_MAX_LOSS", "0.5"),
    ];
    for args in [
        &["--half-close", "-n", "10"][..],
        &["--idle", "2", "-n", "10"],
    ] {
        let out = bench_with_env(server.addr(), &udp, args);
        assert_eq!(out.code(), 0, "{args:?}\n{out}");
        assert!(!out.stdout.contains("UDP"), "{args:?}: TCP\n{out}");
    }
    // --udp on the command line: the variables' --half-close and --idle go.
    let tcp = [
        ("POLLMUX_BENCH_HALF_CLOSE", "1"),
        ("POLLMUX_BENCH_IDLE", "2"),
    ];
    let out = bench_with_env(
        server.udp_addr(),
        &tcp,
        &["--udp", "-n", "10", "--size", "64"],
    );
    assert_eq!(out.code(), 0, "{out}");
    assert!(out.stdout.contains("UDP, closed loop"), "{out}");
}

/// Both on the command line, or both from variables: a usage error that
/// names both options (and both variables).
#[test]
fn conflicting_options_from_the_same_place_are_usage_errors() {
    for (args, names) in [
        (
            &["serve", "--udp", "--udp-only"][..],
            ["--udp-only'", "'--udp'"],
        ),
        (
            &["bench", "-t", "5", "-n", "10"],
            ["--duration", "--messages"],
        ),
        (
            &["bench", "--udp", "--half-close"],
            ["'--udp'", "--half-close"],
        ),
        (&["bench", "--udp", "--idle", "2"], ["'--udp'", "--idle"]),
    ] {
        let out = util::run_pollmux(args);
        assert_usage_error(&out, &names);
        assert!(!out.stderr.contains("(from"), "{out}");
    }
    for (env, sub) in [
        (
            &[("POLLMUX_UDP", "1"), ("POLLMUX_UDP_ONLY", "yes")][..],
            "serve",
        ),
        (
            &[
                ("POLLMUX_BENCH_DURATION", "5"),
                ("POLLMUX_BENCH_MESSAGES", "10"),
            ],
            "bench",
        ),
        (
            &[
                ("POLLMUX_BENCH_UDP", "1"),
                ("POLLMUX_BENCH_HALF_CLOSE", "on"),
            ],
            "bench",
        ),
        (
            &[("POLLMUX_BENCH_UDP", "1"), ("POLLMUX_BENCH_IDLE", "2")],
            "bench",
        ),
    ] {
        let out = run_with_env(env, &[sub]);
        let names: Vec<String> = env.iter().map(|(var, _)| format!("(from {var})")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_usage_error(&out, &[&names[..], &["cannot be used with"]].concat());
    }
}

/// `--seed`, `--fault-ratio` without a fault flag, `--slice-delay` without
/// `--slice`: one line that names the option, and its variable if it came
/// from one (not clap's list of the whole fault group).
#[test]
fn an_option_that_needs_another_names_itself_and_its_variable() {
    for (env, args, names) in [
        (
            &[("POLLMUX_SEED", "5")][..],
            &["serve"][..],
            &["'--seed", "(from POLLMUX_SEED)", "fault flag"][..],
        ),
        (
            &[("POLLMUX_FAULT_RATIO", "1")],
            &["serve"],
            &[
                "'--fault-ratio",
                "(from POLLMUX_FAULT_RATIO)",
                "fault on TCP connections",
            ],
        ),
        (&[], &["serve", "--seed", "5"], &["'--seed", "fault flag"]),
        (
            &[("POLLMUX_SLICE_DELAY", "5ms")],
            &["serve"],
            &["'--slice-delay", "(from POLLMUX_SLICE_DELAY)", "'--slice"],
        ),
        (
            &[("POLLMUX_BENCH_MAX_LOSS", "0.1")],
            &["bench"],
            &["'--max-loss", "(from POLLMUX_BENCH_MAX_LOSS)", "'--udp'"],
        ),
    ] {
        let out = run_with_env(env, args);
        assert_usage_error(&out, names);
        assert!(!out.stderr.contains("were not provided"), "{out}");
    }
    // With a fault flag (from a variable too) the seed is taken.
    let server = serve_with_env(&[("POLLMUX_DELAY", "1ms"), ("POLLMUX_SEED", "5")], &[]);
    assert!(
        server.wait_for_stderr("(seed 5)", util::PATIENCE),
        "{}",
        server.stderr()
    );
    util::assert_echo(&mut util::connect(server.addr()), b"seeded");
}

/// More bench threads than connections is bad input: a usage error (exit
/// 2), over TCP and UDP, that names the variable it came from.
#[test]
fn more_threads_than_connections_is_a_usage_error() {
    let port = util::closed_port().to_string();
    for udp in [&[][..], &["--udp"]] {
        let args = [&["bench", "-p", &port, "-T", "4", "-c", "2"][..], udp].concat();
        let out = util::run_pollmux(&args);
        assert_usage_error(
            &out,
            &[
                "'--threads",
                "'--connections",
                "each thread needs a connection",
            ],
        );
        assert!(!out.stderr.contains("(from"), "{out}");
    }
    let out = run_with_env(
        &[("POLLMUX_BENCH_THREADS", "4")],
        &["bench", "-p", &port, "-c", "2"],
    );
    assert_usage_error(&out, &["'--threads", "(from POLLMUX_BENCH_THREADS)"]);
}

/// A bad value's `(from POLLMUX_...)` names the variable it came from: not
/// that of a flag whose name starts the same (`--udp`, `--udp-queue`), nor
/// one set but overridden by a short flag on the command line.
#[test]
fn a_bad_value_names_the_right_variable() {
    let out = run_with_env(
        &[("POLLMUX_UDP", "1"), ("POLLMUX_UDP_QUEUE", "lots")],
        &["serve"],
    );
    assert_usage_error(&out, &["lots", "(from POLLMUX_UDP_QUEUE)"]);
    assert!(!out.stderr.contains("(from POLLMUX_UDP)"), "{out}");

    let out = run_with_env(&[("POLLMUX_PORT", "7")], &["serve", "-p", "http"]);
    assert_usage_error(&out, &["http"]);
    assert!(
        !out.stderr.contains("(from"),
        "-p is on the command line\n{out}"
    );

    // On the command line in forms a guess would miss: a short flag inside
    // a cluster, an alias, a --flag=value; and a requirement whose other
    // option is off because its variable says so.
    for (env, args) in [
        (
            ("POLLMUX_BENCH_CONNECTIONS", "5"),
            &["bench", "-qc", "abc"][..],
        ),
        (("POLLMUX_PORT", "5"), &["serve", "-qp", "99999"]),
        (
            ("POLLMUX_BENCH_STALL_TIMEOUT", "5"),
            &["bench", "--timeout", "0"],
        ),
        (
            ("POLLMUX_BENCH_STALL_TIMEOUT", "5"),
            &["bench", "--timeout=0"],
        ),
        (("POLLMUX_BENCH_UDP", "0"), &["bench", "--max-loss", "0.1"]),
    ] {
        let out = run_with_env(&[env], args);
        assert_usage_error(&out, &[]);
        assert!(!out.stderr.contains("(from"), "{args:?}\n{out}");
    }
    // And from the variable alone, it is named.
    let out = run_with_env(&[("POLLMUX_BENCH_STALL_TIMEOUT", "0")], &["bench"]);
    assert_usage_error(&out, &["(from POLLMUX_BENCH_STALL_TIMEOUT)"]);
}

/// The serve-only combinations follow the same rule: chargen and
/// --udp-only, a fault and a mode that does not echo, a TCP fault and
/// --udp-only. The command line wins over a variable; both from variables
/// is a usage error naming both variables.
#[test]
fn serve_combinations_let_the_command_line_win_too() {
    let chargen_tcp = serve_with_env(&[("POLLMUX_UDP_ONLY", "1")], &["--mode", "chargen"]);
    assert!(chargen_tcp.addrs.len() == 1 && chargen_tcp.udp_addrs.is_empty());
    let mut stream = util::connect(chargen_tcp.addr());
    let mut line = [0u8; 74];
    std::io::Read::read_exact(&mut stream, &mut line).expect("a chargen line");
    assert!(line.starts_with(b"!\"#$"), "chargen over TCP");

    let echo_udp = serve_with_env(&[("POLLMUX_MODE", "chargen")], &["--udp-only"]);
    assert!(echo_udp.addrs.is_empty() && echo_udp.udp_addrs.len() == 1);

    // POLLMUX_DELAY is dropped: no fault line, and chargen is served.
    let no_fault = serve_with_env(&[("POLLMUX_DELAY", "1s")], &["--mode", "chargen"]);
    assert!(no_fault.wait_for_stderr("chargen server", util::PATIENCE));
    assert!(
        !no_fault.stderr().contains("injecting faults"),
        "{}",
        no_fault.stderr()
    );
    // POLLMUX_MODE is dropped: the fault on the command line applies.
    let faulty = serve_with_env(&[("POLLMUX_MODE", "discard")], &["--delay", "5ms"]);
    assert!(faulty.wait_for_stderr("injecting faults: delay 5ms", util::PATIENCE));
    // POLLMUX_UDP_ONLY is dropped: TCP is served, with the stall.
    let stall = serve_with_env(&[("POLLMUX_UDP_ONLY", "1")], &["--stall-after", "1k"]);
    assert!(stall.addrs.len() == 1 && stall.udp_addrs.is_empty());

    for (env, names) in [
        (
            &[("POLLMUX_MODE", "chargen"), ("POLLMUX_DELAY", "1s")][..],
            ["(from POLLMUX_MODE)", "(from POLLMUX_DELAY)"],
        ),
        (
            &[("POLLMUX_STALL_AFTER", "1k"), ("POLLMUX_UDP_ONLY", "1")],
            ["(from POLLMUX_STALL_AFTER)", "(from POLLMUX_UDP_ONLY)"],
        ),
        (
            &[("POLLMUX_MODE", "chargen"), ("POLLMUX_UDP_ONLY", "1")],
            ["(from POLLMUX_MODE)", "(from POLLMUX_UDP_ONLY)"],
        ),
    ] {
        let out = run_with_env(env, &["serve"]);
        assert_usage_error(&out, &names);
    }
}

/// What a variable sets for the variables' faults (`--seed`,
/// `--fault-ratio`, `--slice-delay`) goes with them when the command line
/// switches them off: the server starts without faults. It refused to
/// start with "'--fault-ratio' (from POLLMUX_FAULT_RATIO) requires a fault".
#[test]
fn options_for_overridden_faults_go_with_them() {
    for (env, args) in [
        (
            &[("POLLMUX_DELAY", "1"), ("POLLMUX_FAULT_RATIO", "0.5")][..],
            &["--mode", "discard"][..],
        ),
        (
            &[("POLLMUX_DELAY", "1"), ("POLLMUX_SEED", "4")],
            &["--mode", "discard"],
        ),
        (
            &[("POLLMUX_SLICE", "1"), ("POLLMUX_SLICE_DELAY", "1")],
            &["--mode", "chargen"],
        ),
        (
            &[("POLLMUX_CLOSE_AFTER", "5"), ("POLLMUX_FAULT_RATIO", "0.5")],
            &["--udp-only"],
        ),
    ] {
        let server = serve_with_env(env, args);
        assert!(
            server.wait_for_stderr(" server: ", util::PATIENCE),
            "{env:?} {args:?}: {}",
            server.stderr()
        );
        assert!(
            !server.stderr().contains("injecting faults"),
            "{env:?} {args:?}: {}",
            server.stderr()
        );
    }
    // --udp-only on the command line drops a variable's ratio, which only
    // picks TCP connections, and keeps the variable's UDP fault.
    let udp = serve_with_env(
        &[("POLLMUX_DUPLICATE", "0.2"), ("POLLMUX_FAULT_RATIO", "0.5")],
        &["--udp-only"],
    );
    assert!(
        udp.wait_for_stderr(
            "injecting faults: udp replies: duplicate 20",
            util::PATIENCE
        ),
        "{}",
        udp.stderr()
    );
    // A variable's fault the command line keeps still takes its ratio.
    let kept = serve_with_env(
        &[("POLLMUX_CLOSE_AFTER", "5"), ("POLLMUX_FAULT_RATIO", "0.5")],
        &["--udp"],
    );
    assert!(
        kept.wait_for_stderr("on 50% of connections", util::PATIENCE),
        "{}",
        kept.stderr()
    );
}

/// Names of choices are taken in any case, like the switches' yes/no.
#[test]
fn choices_ignore_case() {
    let server = serve_with_env(&[("POLLMUX_POLL_MODE", "Level")], &["--mode", "CHARGEN"]);
    assert!(
        server.wait_for_stderr("chargen server", util::PATIENCE),
        "{}",
        server.stderr()
    );
    assert!(
        server.stderr().contains("level mode"),
        "{}",
        server.stderr()
    );
}
