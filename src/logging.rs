//! Logging to stderr with UTC timestamps; stdout stays for program output.

use log::LevelFilter;
use simple_logger::SimpleLogger;

/// Start the logger. `-v`/`-q` (net `verbosity`, positive = louder) win over
/// `RUST_LOG`; without them `RUST_LOG` may move the default `info` level.
pub fn init(verbose: u8, quiet: u8) {
    let verbosity = i16::from(verbose) - i16::from(quiet);
    let level = match verbosity {
        i16::MIN..=-2 => LevelFilter::Error,
        -1 => LevelFilter::Warn,
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let mut logger = SimpleLogger::new()
        .with_level(level)
        .with_utc_timestamps()
        .with_colors(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if verbose == 0 && quiet == 0 {
        logger = logger.env();
    }
    // Only fails if a logger is already set (a second init in tests): harmless.
    let _ = logger.init();
}
