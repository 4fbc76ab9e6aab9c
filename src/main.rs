//! `pollmux`: parse the command line, start logging, run the command and turn
//! its outcome into an exit code (0 success, 1 runtime failure, 2 usage).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{CommandFactory, Parser};
use pollmux::cli::{Cli, Command};
use pollmux::server::{Config, Server};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let what = first.strip_prefix("error: ").unwrap_or(first);
    // Point at the help of the subcommand the user was typing, if any.
    let command = Cli::command();
    let help = std::env::args()
        .skip(1)
        .find(|arg| command.find_subcommand(arg).is_some())
        .map_or_else(
            || "pollmux --help".to_owned(),
            |sub| format!("pollmux {sub} --help"),
        );
    eprintln!("pollmux: {what} (see '{help}')");
    ExitCode::from(2)
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(&Config::from(&args)),
        Command::Client(args) => pollmux::client::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => pollmux::bench::run(&args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "pollmux", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(config: &Config) -> Result<ExitCode> {
    let mut server = Server::bind(config)?;

    // First Ctrl-C / SIGTERM: drain gracefully. Second: leave at once.
    let handle = server.shutdown_handle();
    let signals = AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        if signals.fetch_add(1, Ordering::SeqCst) == 0 {
            handle.shutdown();
        } else {
            eprintln!("pollmux: second interrupt, exiting without draining");
            std::process::exit(130);
        }
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;

    // Scripts and tests wait for these lines: print them only once the
    // listeners are bound and signals are handled, and flush at once.
    let mut out = std::io::stdout().lock();
    for addr in server.local_addrs() {
        writeln!(out, "listening on {addr}")?;
    }
    out.flush()?;
    drop(out);

    let summary = server.run()?;
    log::info!("{summary}");
    Ok(ExitCode::SUCCESS)
}
