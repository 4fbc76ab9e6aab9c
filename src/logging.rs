//! Logging to stderr with UTC timestamps; stdout stays for program output.
//!
//! `simple_logger` writes with `eprintln!`, which panics when stderr fails (a
//! closed pipe, a full disk). A log line must never take the server down, so
//! the logger is wrapped: a failed write switches logging off instead.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use log::{LevelFilter, Log, Metadata, Record};
use simple_logger::SimpleLogger;

/// Start the logger. `-v`/`-q` win over `RUST_LOG`; without them `RUST_LOG`
/// (a plain level: `debug`, `warn`, ...) may move the default `info` level.
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
    let max_level = logger.max_level();
    let guarded = Guarded {
        inner: logger,
        broken: AtomicBool::new(false),
    };
    // Only fails if a logger is already set (a second init): harmless.
    if log::set_boxed_logger(Box::new(guarded)).is_ok() {
        log::set_max_level(max_level);
        if verbose == 0 && quiet == 0 {
            warn_of_an_ignored_rust_log();
        }
        // A panic inside the logger is caught and means "stderr is broken";
        // reporting it would only write to that same stderr again.
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_LOGGER.with(Cell::get) {
                previous(info);
            }
        }));
    }
}

/// `RUST_LOG` takes a plain level only; say so when it held something else
/// (`pollmux=debug`, a typo), which would otherwise be ignored in silence.
fn warn_of_an_ignored_rust_log() {
    let Some(value) = std::env::var_os("RUST_LOG") else {
        return;
    };
    let text = value.to_string_lossy();
    if !text.is_empty() && text.trim().parse::<LevelFilter>().is_err() {
        log::warn!(
            "RUST_LOG={text:?} ignored: it takes one level (off, error, warn, info, debug, \
             trace), or use -v / -q"
        );
    }
}

thread_local! {
    static IN_LOGGER: Cell<bool> = const { Cell::new(false) };
}

struct Guarded {
    inner: SimpleLogger,
    /// Set after stderr failed once; later records are dropped.
    broken: AtomicBool,
}

impl Guarded {
    fn guard(&self, write: impl FnOnce()) {
        if self.broken.load(Ordering::Relaxed) {
            return;
        }
        IN_LOGGER.with(|flag| flag.set(true));
        let result = panic::catch_unwind(AssertUnwindSafe(write));
        IN_LOGGER.with(|flag| flag.set(false));
        if result.is_err() {
            self.broken.store(true, Ordering::Relaxed);
        }
    }
}

impl Log for Guarded {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if self.inner.enabled(record.metadata()) {
            self.guard(|| self.inner.log(record));
        }
    }

    fn flush(&self) {
        self.guard(|| self.inner.flush());
    }
}
