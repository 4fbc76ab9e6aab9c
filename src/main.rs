//! `pollmux`: parse the command line, start logging, run the command and turn
//! its outcome into an exit code (0 success, 1 runtime failure, 2 usage).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::CommandFactory;
use pollmux::cli::{Cli, Command};
use pollmux::server::{Config, Server};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse_checked() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    pollmux::logging::init(cli.verbose, cli.quiet);
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pollmux: {err}");
            ExitCode::from(1)
        }
    }
}

/// `--help` and `--version` print as clap renders them; a real usage error
/// becomes one line naming the flag and the value, and exit code 2.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) || err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        let _ = err.print();
        let code = if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            2
        } else {
            0
        };
        return ExitCode::from(code);
    }
    let rendered = err.render().to_string();
    // clap's message runs until the first blank line (details such as the
    // missing argument or the possible values sit on indented lines); the
    // usage and tips after it are left to --help.
    let what = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let what = what.strip_prefix("error: ").unwrap_or(&what);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = Cli::command();
    let sub = args.iter().find_map(|arg| command.find_subcommand(arg));
    let from_env = blamed_variable(&err, sub.map(|s| s.get_name()))
        .map(|env| format!(" (from {env})"))
        .unwrap_or_default();
    let help = sub.map_or_else(
        || "pollmux --help".to_owned(),
        |sub| format!("pollmux {} --help", sub.get_name()),
    );
    eprintln!("pollmux: {what}{from_env} (see '{help}')");
    ExitCode::from(2)
}

/// The `POLLMUX_*` variable a bad value came from, if it did not come from
/// the command line. Checks after parsing name their variables themselves;
/// this is for clap's own errors, which name the option only. The test is
/// exact: parse again with that option's variable unset; if the error goes
/// away, the variable held the value (short-flag clusters, aliases and
/// `--flag=value` need no guessing).
fn blamed_variable(err: &clap::Error, sub: Option<&str>) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let mut command = Cli::command();
    command.build(); // an argument renders its name only once built
    let owner = sub.and_then(|name| command.find_subcommand(name));
    let arg = owner
        .into_iter()
        .flat_map(|sub| sub.get_arguments())
        .chain(command.get_arguments())
        .find(|arg| arg.to_string() == *shown)?;
    let env = arg.get_env()?.to_owned();
    std::env::var_os(&env)?;
    let id = arg.get_id().clone();
    let unset = |a: clap::Arg| a.env(None);
    let without = match sub {
        Some(name) if owner.is_some_and(|s| s.get_arguments().any(|a| a.get_id() == &id)) => {
            Cli::command().mut_subcommand(name, |s| s.mut_arg(&id, unset))
        }
        _ => Cli::command().mut_arg(&id, unset),
    };
    let still = without.try_get_matches_from(std::env::args_os()).err();
    let same = still.is_some_and(|e| {
        e.kind() == err.kind() && e.get(ContextKind::InvalidArg) == err.get(ContextKind::InvalidArg)
    });
    (!same).then(|| env.to_string_lossy().into_owned())
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(&Config::from(&args)),
        Command::Client(args) => client(&args),
        Command::Bench(args) => bench(&args),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pollmux", &mut script);
            write_stdout(&script)
        }
        Command::Man { command } => {
            let mut page = Vec::new();
            man_page(command.as_deref())?.render(&mut page)?;
            write_stdout(&page)
        }
    }
}

/// pollmux(1), or pollmux-serve(1) and friends for a subcommand.
fn man_page(command: Option<&str>) -> Result<clap_mangen::Man> {
    let top = Cli::command();
    let Some(name) = command else {
        return Ok(clap_mangen::Man::new(top));
    };
    let sub = top
        .find_subcommand(name)
        .ok_or_else(|| format!("no man page for '{name}'"))?
        .clone();
    let page_name = format!("pollmux-{}", sub.get_name());
    let sub = sub
        .name(page_name.clone())
        .bin_name(page_name)
        .version(pollmux::VERSION);
    Ok(clap_mangen::Man::new(sub))
}

/// Write generated output; a closed pipe (`| head`) is an error, not a panic.
fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A second interrupt (or the bench's first, before its load): exit 130
/// now. Say why on stderr, but never wait long for it: stderr may be a full
/// pipe nobody reads, and the loop may be stuck writing to it (holding its
/// lock), which is why the user pressed Ctrl-C twice.
fn leave_at_once(why: &'static str) -> ! {
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        eprintln!("pollmux: {why}");
        let _ = said.send(());
    });
    let _ = heard.recv_timeout(Duration::from_millis(200));
    std::process::exit(130);
}

/// Install the Ctrl-C / SIGTERM / SIGHUP handler: the first signal calls
/// `ask_to_stop`, a second leaves at once (exit 130). A copy of the first
/// within 100 ms is the same request, not a second one (GNU `timeout`
/// signals the child and then its process group).
fn on_interrupt(ask_to_stop: impl Fn() + Send + 'static) -> Result<()> {
    const ECHO_WINDOW: Duration = Duration::from_millis(100);
    let first = OnceLock::new();
    ctrlc::set_handler(move || {
        let now = Instant::now();
        if first.set(now).is_ok() {
            ask_to_stop();
        } else if first.get().is_some_and(|&at| now - at >= ECHO_WINDOW) {
            leave_at_once("second interrupt, exiting without draining");
        }
    })
    .map_err(|e| format!("cannot install the signal handler: {e}").into())
}

/// The first signal ends the client after the echo in progress, as
/// `--count` would (exit 0 unless something failed); a second one, while an
/// echo is still awaited, leaves at once, and so does a first one before
/// the client has connected (there is nothing to finish).
fn client(args: &pollmux::cli::ClientArgs) -> Result<ExitCode> {
    let (ask, asked) = std::sync::mpsc::sync_channel(1);
    let connected = Arc::new(AtomicBool::new(false));
    let stop = pollmux::client::Stop {
        asked,
        connected: Arc::clone(&connected),
    };
    on_interrupt(move || {
        if !connected.load(Ordering::SeqCst) {
            leave_at_once("interrupted before connecting");
        }
        let _ = ask.try_send(());
    })?;
    pollmux::client::run(args, &stop)?;
    Ok(ExitCode::SUCCESS)
}

/// The first signal ends the measured phase at once and the report covers
/// what was measured until then; a second one leaves without a report.
fn bench(args: &pollmux::bench::BenchArgs) -> Result<ExitCode> {
    let interrupted = Arc::new(pollmux::bench::Interrupt::default());
    let flag = Arc::clone(&interrupted);
    on_interrupt(move || {
        if !flag.ask() {
            leave_at_once("interrupted before the load began");
        }
    })?;
    pollmux::bench::run(args, interrupted)
}

fn serve(config: &Config) -> Result<ExitCode> {
    let mut server = Server::bind(config)?;
    // The first signal drains gracefully, a second leaves at once.
    let handle = server.shutdown_handle();
    on_interrupt(move || handle.shutdown())?;

    // Scripts and tests wait for these lines: print them only once the
    // listeners are bound and signals are handled, and flush at once. They
    // go out in one write, so a reader that sees one line sees them all.
    let mut lines = String::new();
    for addr in server.local_addrs() {
        lines += &format!("listening on {addr}\n");
    }
    for addr in server.udp_addrs() {
        lines += &format!("listening on udp {addr}\n");
    }
    let mut out = std::io::stdout().lock();
    out.write_all(lines.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write 'listening on' to stdout: {e}"))?;
    drop(out);

    let summary = server.run()?;
    log::info!("{summary}");
    Ok(ExitCode::SUCCESS)
}
