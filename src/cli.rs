//! The command line: `pollmux serve | client | bench | completions | man`.
//!
//! Every flag can also come from a `POLLMUX_*` environment variable (clap's
//! `env` feature), and `--help` shows which. Values with units are parsed by
//! the small helpers at the bottom so the error names the flag and the value.

use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::server::faults::{FaultConfig, Slice, Spread};

pub use crate::server::{ServiceMode, StatsFormat};

/// A fast, portable I/O-multiplexing echo server, its client and a load
/// generator that checks every byte.
#[derive(Debug, Parser)]
#[command(name = "pollmux", version = crate::VERSION, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success; 1 runtime failure (client: no or a wrong echo; bench: \
                  any fault, or an interrupt before anything was measured); 2 usage error; \
                  130 a second Ctrl-C or SIGTERM (a first one before the client connected or \
                  the bench's load began)."
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). Overrides RUST_LOG.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet", help_heading = "Logging")]
    pub verbose: u8,

    /// Less log output (-q warnings only, -qq errors only). Overrides RUST_LOG.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Logging")]
    pub quiet: u8,

    #[command(subcommand)]
    pub command: Command,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  pollmux serve                          # localhost:8888, IPv4 and IPv6
  pollmux serve --host :: --port 7000    # every interface, dual-stack
  pollmux serve --port 0 -v              # a free port; log each connection
  pollmux serve --max-pending 64k --idle-timeout 30s
  pollmux serve --udp --port 7007         # TCP and UDP echo on one port
  pollmux serve --mode chargen --port 1919 --stats-interval 5
  pollmux serve --port 0 --trace-events  # one line per readiness event

Fault injection (a misbehaving peer for testing clients; combinable):
  pollmux serve --delay 200ms±50ms       # every echo 150-250 ms late, order kept
  pollmux serve --bandwidth 64k          # echo at 64 KiB/s per connection
  pollmux serve --slice 10 --slice-delay 5ms   # echo in 10-byte pieces
  pollmux serve --reset-after 1m --fault-ratio 0.1 --seed 42
                                         # 10% of connections reset after 1 MiB, same ones every run

Prints one line per listener on stdout (`listening on 127.0.0.1:8888`), logs on stderr.
Ctrl-C, SIGTERM or SIGHUP stops accepting and flushes pending echoes; a second one exits at once (130).";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the echo server (every byte a client sends comes back to it).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Send a message every interval and check that it comes back.
    Client(ClientArgs),
    /// Drive many connections at an echo server and verify every byte.
    Bench(crate::bench::BenchArgs),
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) to stdout: pollmux(1), or with a subcommand
    /// name its own page (`pollmux man serve` prints pollmux-serve(1)).
    Man {
        /// The subcommand whose page to print.
        #[arg(value_parser = ["serve", "client", "bench", "completions", "man"])]
        command: Option<String>,
    },
}

/// How sockets are registered with the poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PollModeArg {
    /// Level-triggered where the backend supports it, else oneshot.
    Auto,
    /// Level-triggered: re-register only when the interest changes.
    Level,
    /// Oneshot: re-arm the socket after every event.
    Oneshot,
}

/// What happens to clients beyond `--max-connections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AtLimit {
    /// Leave them in the kernel's backlog until a client leaves.
    Queue,
    /// Accept and close at once (the client sees EOF).
    Close,
    /// Accept and reset at once (the client sees a reset).
    Refuse,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Host to listen on; every address it resolves to is bound ("::" also serves IPv4).
    #[arg(long, env = "POLLMUX_HOST", default_value = "localhost")]
    pub host: String,

    /// TCP port to listen on (0 picks a free port).
    #[arg(short, long, env = "POLLMUX_PORT", default_value_t = 8888)]
    pub port: u16,

    /// Length of the kernel's queue of connections not yet accepted.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_BACKLOG", default_value_t = 1000, value_parser = parse_positive_i32)]
    pub backlog: i32,

    /// With an IPv6 wildcard host, serve IPv6 only (no IPv4-mapped clients).
    #[arg(long, env = "POLLMUX_IPV6_ONLY", value_parser = BoolishValueParser::new())]
    pub ipv6_only: bool,

    /// Bytes a connection may hold not yet echoed; at the cap it is not read (e.g. 256k, 1m).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_MAX_PENDING", default_value = "256k", value_parser = parse_nonzero_size)]
    pub max_pending: usize,

    /// Most clients served at once; beyond it new ones wait in the kernel backlog.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = parse_positive_u32)]
    pub max_connections: u32,

    /// Close clients that moved no byte for this long (seconds, or 500ms, 2m); 0 = never.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_IDLE_TIMEOUT", default_value = "0", value_parser = parse_interval)]
    pub idle_timeout: Duration,

    /// On Ctrl-C, SIGTERM or SIGHUP, how long to keep flushing pending echoes before exiting.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_SHUTDOWN_TIMEOUT", default_value = "5", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Size of the one receive buffer the loop reuses for every read (1 to 64m).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_READ_BUFFER", default_value = "256k", value_parser = parse_buffer_size)]
    pub read_buffer: usize,

    /// How sockets are registered with the poller.
    #[arg(long, env = "POLLMUX_POLL_MODE", value_enum, ignore_case = true, default_value_t = PollModeArg::Auto)]
    pub poll_mode: PollModeArg,

    /// The service: echo (RFC 862), discard (RFC 863: read and drop) or
    /// chargen (RFC 864: a rotating line pattern, as fast as the client reads; TCP only).
    #[arg(long, env = "POLLMUX_MODE", value_enum, ignore_case = true, default_value_t = ServiceMode::Echo, help_heading = "Services")]
    pub mode: ServiceMode,

    /// Also serve UDP on the same addresses and port as TCP (echo or discard).
    #[arg(long, env = "POLLMUX_UDP", help_heading = "Services", value_parser = BoolishValueParser::new())]
    pub udp: bool,

    /// Serve UDP only, no TCP.
    #[arg(long, env = "POLLMUX_UDP_ONLY", help_heading = "Services", value_parser = BoolishValueParser::new())]
    pub udp_only: bool,

    /// Bytes of UDP replies that may wait while the socket will not take them; beyond it they are dropped and counted.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_UDP_QUEUE", default_value = "1m", value_parser = parse_size, help_heading = "Services")]
    pub udp_queue: usize,

    /// Answer UDP datagrams from ports below 1024 (known reflecting services stay refused).
    #[arg(long, env = "POLLMUX_UDP_ALLOW_LOW_PORTS", help_heading = "Services", value_parser = BoolishValueParser::new())]
    pub udp_allow_low_ports: bool,

    /// Print a one-line summary of the counters on stderr this often (seconds, or 500ms); 0 = never.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_STATS_INTERVAL", default_value = "0", value_parser = parse_interval, help_heading = "Seeing the loop")]
    pub stats_interval: Duration,

    /// Format of the --stats-interval lines: key=value text or one JSON object per line.
    #[arg(long, env = "POLLMUX_STATS_FORMAT", value_enum, ignore_case = true, default_value_t = StatsFormat::Text, help_heading = "Seeing the loop")]
    pub stats_format: StatsFormat,

    /// Print one line per readiness event on stderr: key, bits, handler, bytes moved, new interest.
    #[arg(long, env = "POLLMUX_TRACE_EVENTS", help_heading = "Seeing the loop", value_parser = BoolishValueParser::new())]
    pub trace_events: bool,

    /// What to do with clients beyond --max-connections.
    #[arg(long, env = "POLLMUX_AT_LIMIT", value_enum, ignore_case = true, default_value_t = AtLimit::Queue)]
    pub at_limit: AtLimit,

    /// Echo each chunk this long after it arrived, optionally with a uniform
    /// jitter (100ms, 1s±200ms or 1s+-200ms); TCP keeps the order, UDP
    /// replies may overtake each other.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_DELAY", value_parser = parse_spread, help_heading = "Fault injection")]
    pub delay: Option<Spread>,

    /// Throttle each connection's echo to this many bytes per second (64k, 1m).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_BANDWIDTH", value_parser = parse_rate, help_heading = "Fault injection")]
    pub bandwidth: Option<u64>,

    /// Echo in pieces of this many bytes, optionally varied (10, 1k±512).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_SLICE", value_parser = parse_slice, help_heading = "Fault injection")]
    pub slice: Option<(usize, usize)>,

    /// Pause between --slice pieces.
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_SLICE_DELAY", default_value = "10ms", value_parser = parse_duration,
          help_heading = "Fault injection")]
    pub slice_delay: Duration,

    /// Read from each client at most this many bytes per second (backpressure).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_SLOW_READ", value_parser = parse_rate, help_heading = "Fault injection")]
    pub slow_read: Option<u64>,

    /// After echoing this many bytes on a connection, close it (FIN).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_CLOSE_AFTER", value_parser = parse_count, help_heading = "Fault injection")]
    pub close_after: Option<u64>,

    /// After echoing this many bytes on a connection, abort it (RST).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_RESET_AFTER", value_parser = parse_count, help_heading = "Fault injection")]
    pub reset_after: Option<u64>,

    /// After echoing this many bytes, never send again; the connection stays
    /// open and what arrives is dropped (a black hole).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_STALL_AFTER", value_parser = parse_count, help_heading = "Fault injection")]
    pub stall_after: Option<u64>,

    /// UDP: leave this fraction of datagrams unanswered (0 to 1).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_DROP", value_parser = parse_ratio, help_heading = "Fault injection")]
    pub drop: Option<f64>,

    /// UDP: answer this fraction of datagrams twice (0 to 1).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_DUPLICATE", value_parser = parse_ratio, help_heading = "Fault injection")]
    pub duplicate: Option<f64>,

    /// Give the faults to this fraction of TCP connections only (0 to 1).
    #[arg(allow_negative_numbers = true, long, env = "POLLMUX_FAULT_RATIO", default_value = "1", value_parser = parse_ratio,
          help_heading = "Fault injection")]
    pub fault_ratio: f64,

    /// Seed for choosing the connections and for jitter: the same seed
    /// chooses the same connections (by accept order) on every run
    /// [default: random, logged at startup].
    #[arg(long, env = "POLLMUX_SEED", help_heading = "Fault injection")]
    pub seed: Option<u64>,
}

impl ServeArgs {
    /// The fault flags as one value (inactive when none is given).
    pub fn faults(&self) -> FaultConfig {
        FaultConfig {
            delay: self.delay,
            bandwidth: self.bandwidth,
            slice: self.slice.map(|(size, var)| Slice {
                size,
                var,
                gap: self.slice_delay,
            }),
            slow_read: self.slow_read,
            close_after: self.close_after,
            reset_after: self.reset_after,
            stall_after: self.stall_after,
            drop: self.drop,
            duplicate: self.duplicate,
            ratio: self.fault_ratio,
            seed: self.seed.unwrap_or_else(random_seed),
        }
    }

    /// Settle the options that conflict or depend on each other, by where
    /// their values came from (see [`Given`]): a flag on the command line
    /// switches off a conflicting option set by a variable; anything else
    /// that cannot work together is a usage error naming both.
    pub fn settle(&mut self, given: &Given) -> Result<(), clap::Error> {
        match given.conflict(("udp_only", self.udp_only), ("udp", self.udp))? {
            Some(Overridden::First) => self.udp_only = false,
            Some(Overridden::Second) => self.udp = false,
            None => {}
        }
        let had_slice = self.slice.is_some();
        let had_faults = self.faults().is_active();
        // (--udp-only on the command line leaves a ratio nothing to pick.)
        let cli_udp_only =
            given.source("udp_only", self.udp_only) == Some(ValueSource::CommandLine);
        let had_picks = self.picks() || cli_udp_only;
        let chargen = self.mode == ServiceMode::Chargen;
        let why = "chargen over UDP is a reflection amplifier, so it is served on TCP only";
        match given.conflict_because(("mode", chargen), ("udp_only", self.udp_only), why)? {
            Some(Overridden::First) => self.mode = ServiceMode::Echo,
            Some(Overridden::Second) => self.udp_only = false,
            None => {}
        }
        for fault in Fault::ALL {
            let echoes = self.mode == ServiceMode::Echo;
            let why = format!(
                "the fault flags shape the echo, and '--mode {}' does not echo",
                self.mode.name()
            );
            match given.conflict_because(("mode", !echoes), (fault.id(), self.has(fault)), &why)? {
                Some(Overridden::First) => self.mode = ServiceMode::Echo,
                Some(Overridden::Second) => self.clear(fault),
                None => {}
            }
            let on = self.has(fault);
            match fault.acts_on() {
                Acts::Tcp => {
                    let why = "it acts on TCP connections, and --udp-only serves none";
                    match given.conflict_because(
                        (fault.id(), on),
                        ("udp_only", self.udp_only),
                        why,
                    )? {
                        Some(Overridden::First) => self.clear(fault),
                        Some(Overridden::Second) => self.udp_only = false,
                        None => {}
                    }
                }
                Acts::Udp => {
                    let udp = self.udp || self.udp_only;
                    given.require(
                        fault.id(),
                        on,
                        udp,
                        "--udp or --udp-only (it acts on UDP datagrams)",
                    )?;
                }
                Acts::Both => {}
            }
        }
        // An option a variable set for the variables' faults goes with them
        // when the command line switched them off
        // (`POLLMUX_DELAY=1 POLLMUX_SEED=4 pollmux serve --mode discard`).
        let went =
            |id: &str, had: bool| had && given.source(id, true) == Some(ValueSource::EnvVariable);
        given.require(
            "slice_delay",
            true,
            self.slice.is_some() || went("slice_delay", had_slice),
            "'--slice <SLICE>'",
        )?;
        let active = self.faults().is_active();
        given.require(
            "seed",
            true,
            active || went("seed", had_faults),
            FAULT_FLAGS,
        )?;
        if !self.picks() && went("fault_ratio", had_picks) {
            self.fault_ratio = 1.0;
        }
        let ratio_went = went("fault_ratio", had_faults);
        given.require("fault_ratio", true, active || ratio_went, TCP_FAULT_FLAGS)?;
        // UDP faults judge every datagram; only TCP connections are picked.
        let what = if self.udp_only {
            format!(
                "TCP connections to pick from, and {} serves none",
                given.name("udp_only")
            )
        } else {
            "a fault on TCP connections: --drop and --duplicate judge every datagram \
             on its own"
                .to_owned()
        };
        given.require("fault_ratio", self.fault_ratio < 1.0, self.picks(), &what)
    }

    /// Whether a fault is on that `--fault-ratio` can pick connections for.
    fn picks(&self) -> bool {
        !self.udp_only
            && Fault::ALL
                .into_iter()
                .any(|f| f.acts_on() != Acts::Udp && self.has(f))
    }

    fn has(&self, fault: Fault) -> bool {
        match fault {
            Fault::Delay => self.delay.is_some(),
            Fault::Bandwidth => self.bandwidth.is_some(),
            Fault::Slice => self.slice.is_some(),
            Fault::SlowRead => self.slow_read.is_some(),
            Fault::CloseAfter => self.close_after.is_some(),
            Fault::ResetAfter => self.reset_after.is_some(),
            Fault::StallAfter => self.stall_after.is_some(),
            Fault::Drop => self.drop.is_some(),
            Fault::Duplicate => self.duplicate.is_some(),
        }
    }

    /// Switch a fault off (its variable lost to a command-line flag).
    fn clear(&mut self, fault: Fault) {
        match fault {
            Fault::Delay => self.delay = None,
            Fault::Bandwidth => self.bandwidth = None,
            Fault::Slice => self.slice = None,
            Fault::SlowRead => self.slow_read = None,
            Fault::CloseAfter => self.close_after = None,
            Fault::ResetAfter => self.reset_after = None,
            Fault::StallAfter => self.stall_after = None,
            Fault::Drop => self.drop = None,
            Fault::Duplicate => self.duplicate = None,
        }
    }
}

/// The fault flags of `serve`, for the checks that treat them alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Delay,
    Bandwidth,
    Slice,
    SlowRead,
    CloseAfter,
    ResetAfter,
    StallAfter,
    Drop,
    Duplicate,
}

/// What a fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acts {
    Tcp,
    Udp,
    Both,
}

impl Fault {
    const ALL: [Fault; 9] = [
        Fault::Delay,
        Fault::Bandwidth,
        Fault::Slice,
        Fault::SlowRead,
        Fault::CloseAfter,
        Fault::ResetAfter,
        Fault::StallAfter,
        Fault::Drop,
        Fault::Duplicate,
    ];

    /// The clap id of its option.
    fn id(self) -> &'static str {
        match self {
            Fault::Delay => "delay",
            Fault::Bandwidth => "bandwidth",
            Fault::Slice => "slice",
            Fault::SlowRead => "slow_read",
            Fault::CloseAfter => "close_after",
            Fault::ResetAfter => "reset_after",
            Fault::StallAfter => "stall_after",
            Fault::Drop => "drop",
            Fault::Duplicate => "duplicate",
        }
    }

    fn acts_on(self) -> Acts {
        match self {
            Fault::Delay => Acts::Both,
            Fault::Drop | Fault::Duplicate => Acts::Udp,
            _ => Acts::Tcp,
        }
    }
}

/// What `--seed` acts on.
const FAULT_FLAGS: &str = "a fault flag (--delay, --bandwidth, --slice, --slow-read, \
                           --close-after, --reset-after, --stall-after, --drop or --duplicate)";

/// What `--fault-ratio` picks connections for.
const TCP_FAULT_FLAGS: &str = "a fault on TCP connections (--delay, --bandwidth, --slice, \
                               --slow-read, --close-after, --reset-after or --stall-after)";

/// A seed that differs from run to run (the startup log shows it).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() % 1_000_000
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Server host name or address.
    #[arg(long, env = "POLLMUX_CLIENT_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Server port.
    #[arg(short, long, env = "POLLMUX_CLIENT_PORT", default_value_t = 8888)]
    pub port: u16,

    /// The message to send (UTF-8 text, sent as is; not empty).
    #[arg(short, long, env = "POLLMUX_MESSAGE", default_value = "test", value_parser = parse_message)]
    pub message: String,

    /// Pause between messages (seconds, or 500ms).
    #[arg(allow_negative_numbers = true, short, long, env = "POLLMUX_INTERVAL", default_value = "2", value_parser = parse_duration)]
    pub interval: Duration,

    /// Stop after this many messages (default: until Ctrl-C).
    #[arg(allow_negative_numbers = true, short, long, env = "POLLMUX_COUNT", value_parser = parse_positive_u64)]
    pub count: Option<u64>,

    /// Give up when connecting, or receiving a whole echo, takes longer than this.
    #[arg(allow_negative_numbers = true, short, long, env = "POLLMUX_TIMEOUT", default_value = "5", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// Use UDP: each message is one datagram (at most 65507 bytes); an echo
    /// missing after --timeout is reported as lost and the client goes on.
    #[arg(long, env = "POLLMUX_CLIENT_UDP", value_parser = BoolishValueParser::new())]
    pub udp: bool,
}

/// The largest UDP payload that fits one IPv4 datagram (65535 less the IP
/// and UDP headers); IPv6 allows 20 bytes more, but one limit is simpler.
pub const MAX_DATAGRAM: usize = 65_507;

impl Cli {
    /// Parse the command line and the `POLLMUX_*` variables, then settle and
    /// check the combinations of options: every problem is a usage error
    /// (exit 2) like any other bad value.
    pub fn try_parse_checked() -> Result<Cli, clap::Error> {
        Cli::try_parse_checked_from(std::env::args_os())
    }

    /// [`Cli::try_parse_checked`] with these arguments (and the process's
    /// environment).
    pub fn try_parse_checked_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)?.check(&matches)
    }

    /// The checks that involve more than one flag, as usage errors (exit 2)
    /// like any other bad value.
    pub fn check(mut self, matches: &ArgMatches) -> Result<Cli, clap::Error> {
        let mut command = Cli::command();
        command.build();
        let problem = match &mut self.command {
            Command::Client(args) if args.udp && args.message.len() > MAX_DATAGRAM => {
                Some(format!(
                "invalid value for '--message <MESSAGE>': {} bytes do not fit one UDP datagram \
                 (at most {MAX_DATAGRAM} with --udp)",
                args.message.len()
            ))
            }
            Command::Bench(args) => {
                let given = Given::new(&command, matches, "bench");
                args.settle(&given)?;
                args.problem(&given)
            }
            Command::Serve(args) => {
                args.settle(&Given::new(&command, matches, "serve"))?;
                None
            }
            _ => None,
        };
        match problem {
            Some(message) => Err(usage(ErrorKind::ValueValidation, message)),
            None => Ok(self),
        }
    }
}

/// A usage error (exit 2) in clap's form.
fn usage(kind: ErrorKind, message: String) -> clap::Error {
    Cli::command().error(kind, message)
}

/// Where the values of one subcommand's options came from: the command
/// line, a `POLLMUX_*` variable or the default. Options that cannot be used
/// together, or that need another, are settled here rather than by clap's
/// `conflicts_with` and `requires`, which count a switch whose variable is
/// `false` as given, and cannot let the command line override a variable.
pub struct Given<'a> {
    /// The subcommand's definition (built): flag names and variables.
    command: Option<&'a clap::Command>,
    matches: Option<&'a ArgMatches>,
}

/// Of two options that cannot be used together, the one to switch off:
/// the one set by a variable, when the other is on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overridden {
    First,
    Second,
}

impl<'a> Given<'a> {
    /// Subcommand `name` of `command` (built) as `matches` has it.
    pub fn new(command: &'a clap::Command, matches: &'a ArgMatches, name: &str) -> Given<'a> {
        Given {
            command: command.find_subcommand(name),
            matches: matches.subcommand_matches(name),
        }
    }

    /// Where option `id` came from if it is in effect (`on`: a switch that
    /// is true, or an option that has a value); `None` for a default or a
    /// switch that is off (its variable is `false`, `0`, `no` or `off`).
    pub fn source(&self, id: &str, on: bool) -> Option<ValueSource> {
        match self.matches?.value_source(id)? {
            ValueSource::DefaultValue => None,
            source => on.then_some(source),
        }
    }

    /// `'--flag <VALUE>'` as clap writes it, followed by `(from POLLMUX_...)`
    /// when its value came from that variable.
    pub fn name(&self, id: &str) -> String {
        let arg = self
            .command
            .and_then(|c| c.get_arguments().find(|a| a.get_id() == id));
        let mut name = match arg {
            Some(arg) => format!("'{arg}'"),
            None => format!("'{id}'"),
        };
        let from_env = self
            .matches
            .and_then(|m| m.value_source(id))
            .is_some_and(|source| source == ValueSource::EnvVariable);
        if let Some(env) = arg.and_then(clap::Arg::get_env).filter(|_| from_env) {
            name += &format!(" (from {})", env.to_string_lossy());
        }
        name
    }

    /// Two options that cannot be used together, each `(id, on)`: when both
    /// are in effect, the command line overrides a variable (the option to
    /// switch off is returned); both on the command line, or both from
    /// variables, is a usage error.
    pub fn conflict(
        &self,
        first: (&str, bool),
        second: (&str, bool),
    ) -> Result<Option<Overridden>, clap::Error> {
        self.conflict_because(first, second, "")
    }

    /// [`Given::conflict`], with the reason (if not empty) in the error.
    pub fn conflict_because(
        &self,
        first: (&str, bool),
        second: (&str, bool),
        why: &str,
    ) -> Result<Option<Overridden>, clap::Error> {
        let (Some(a), Some(b)) = (
            self.source(first.0, first.1),
            self.source(second.0, second.1),
        ) else {
            return Ok(None);
        };
        match (a, b) {
            (ValueSource::EnvVariable, ValueSource::CommandLine) => Ok(Some(Overridden::First)),
            (ValueSource::CommandLine, ValueSource::EnvVariable) => Ok(Some(Overridden::Second)),
            _ => {
                let mut message = format!(
                    "the argument {} cannot be used with {}",
                    self.name(first.0),
                    self.name(second.0)
                );
                if !why.is_empty() {
                    message += &format!(": {why}");
                }
                Err(usage(ErrorKind::ArgumentConflict, message))
            }
        }
    }

    /// Option `id` (`on` as for [`Given::source`]) needs `what`, which is
    /// there if `met`: a usage error otherwise, from wherever `id` came.
    pub fn require(&self, id: &str, on: bool, met: bool, what: &str) -> Result<(), clap::Error> {
        if met || self.source(id, on).is_none() {
            return Ok(());
        }
        Err(usage(
            ErrorKind::MissingRequiredArgument,
            format!("the argument {} requires {what}", self.name(id)),
        ))
    }
}

/// Parse a byte count: `1024`, `64k`, `1m`, `2g`, `256KiB` (binary multiples).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size (try 1024, 64k, 1m)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("'{text}' has an unknown unit (use k, m or g)")),
    };
    value
        .checked_mul(1u64 << shift)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// A size of at least one byte.
pub fn parse_nonzero_size(text: &str) -> Result<usize, String> {
    match parse_size(text)? {
        0 => Err(format!("'{text}' must be at least 1 byte")),
        n => Ok(n),
    }
}

/// The receive buffer: 1 byte to 64 MiB (it is allocated at startup).
pub fn parse_buffer_size(text: &str) -> Result<usize, String> {
    const MAX: usize = 64 << 20;
    match parse_size(text)? {
        n @ 1..=MAX => Ok(n),
        _ => Err(format!("'{text}' must be between 1 and 64m")),
    }
}

/// The longest duration any flag takes: ten years is "never" in practice,
/// and keeps every deadline computed from it far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A duration that must not be zero (a timeout of 0 would fail at once).
/// The client's message: any text but the empty one (nothing to echo).
fn parse_message(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the message must not be empty: an echo of nothing proves nothing".into());
    }
    Ok(text.to_owned())
}

pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("'{text}' must be more than 0"));
    }
    Ok(d)
}

/// Parse a duration: plain seconds (`5`, `0.5`) or with a unit (`250ms`, `2s`, `1m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (try 5, 0.5, 250ms, 2m)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("'{text}' must be a non-negative duration"));
    }
    match Duration::try_from_secs_f64(value * scale) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!("'{text}' is too long (at most 10 years)")),
    }
}

/// A period: 0 (off) or at least a millisecond, so that a typo such as
/// `1e-9` cannot ask the loop to wake up a billion times a second.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if !d.is_zero() && d < Duration::from_millis(1) {
        return Err(format!("'{text}' is shorter than 1ms (0 turns it off)"));
    }
    Ok(d)
}

/// A value with an optional `±spread` (also written `+-`).
fn split_spread(text: &str) -> (&str, Option<&str>) {
    match text.split_once('±').or_else(|| text.split_once("+-")) {
        Some((base, spread)) => (base, Some(spread)),
        None => (text, None),
    }
}

/// `--delay`: `100ms` or `100ms±20ms`; the jitter may not exceed the delay
/// (the spread stays uniform, and nothing leaves early).
pub fn parse_spread(text: &str) -> Result<Spread, String> {
    let (base, jitter) = split_spread(text);
    let spread = Spread {
        base: parse_duration(base)?,
        jitter: jitter.map_or(Ok(Duration::ZERO), parse_duration)?,
    };
    if spread.jitter > spread.base {
        return Err(format!("'{text}': the jitter is larger than the delay"));
    }
    Ok(spread)
}

/// `--slice`: a piece size of at least 1 byte, and its optional variation.
pub fn parse_slice(text: &str) -> Result<(usize, usize), String> {
    let (size, var) = split_spread(text);
    Ok((parse_nonzero_size(size)?, var.map_or(Ok(0), parse_size)?))
}

/// Bytes per second, at least 1: `1000`, `64k`, `1m`, also with `/s`.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let size = parse_nonzero_size(t.strip_suffix("/s").unwrap_or(t))?;
    Ok(size as u64)
}

/// A byte count that may be 0 (`--close-after 0` closes at once).
pub fn parse_count(text: &str) -> Result<u64, String> {
    parse_size(text).map(|n| n as u64)
}

/// A whole number from 1 to `max`, with errors a person can read (clap's
/// own range check says "0 is not in 1..18446744073709551615").
fn parse_positive(text: &str, max: u64) -> Result<u64, String> {
    match text.trim().parse::<i128>() {
        Ok(n) if n < 1 => Err(format!("'{text}' must be at least 1")),
        Ok(n) if n > i128::from(max) => Err(format!("'{text}' must be at most {max}")),
        Ok(n) => Ok(n as u64),
        Err(_) => Err(format!("'{text}' is not a whole number")),
    }
}

/// A count of at least 1.
pub fn parse_positive_u64(text: &str) -> Result<u64, String> {
    parse_positive(text, u64::MAX)
}

/// A count of at least 1 that fits a `u32`.
pub fn parse_positive_u32(text: &str) -> Result<u32, String> {
    parse_positive(text, u32::MAX.into()).map(|n| n as u32)
}

/// A count of at least 1 that fits an `i32` (the listen backlog).
pub fn parse_positive_i32(text: &str) -> Result<i32, String> {
    parse_positive(text, i32::MAX as u64).map(|n| n as i32)
}

/// A fraction from 0 to 1.
pub fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "'{text}' is not a fraction from 0 to 1 (e.g. 0.25)"
        )),
    }
}

/// A host as people write it in URLs, `[::1]`, without the brackets.
pub fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("256KiB"), Ok(256 << 10));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(parse_size("").is_err());
        assert!(parse_size("12x").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999g").is_err());
        assert!(parse_nonzero_size("0").is_err());
        assert!(parse_buffer_size("0").is_err());
        assert!(parse_buffer_size("100g").is_err());
        assert_eq!(parse_buffer_size("64m"), Ok(64 << 20));
        assert_eq!(unbracket("[::1]"), "::1");
        assert_eq!(unbracket("::1"), "::1");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("inf").is_err());
        assert!(parse_duration("1e19").is_err(), "would overflow a deadline");
        assert!(parse_positive_duration("0").is_err());
        assert_eq!(parse_positive_duration("1"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn fault_values_parse_with_spreads_and_rates() {
        let ms = Duration::from_millis;
        assert_eq!(
            parse_spread("100ms±20ms"),
            Ok(Spread {
                base: ms(100),
                jitter: ms(20)
            })
        );
        assert_eq!(parse_spread("1+-0.5").map(|s| s.jitter), Ok(ms(500)));
        assert_eq!(parse_spread("5ms").map(|s| s.jitter), Ok(Duration::ZERO));
        assert!(parse_spread("100ms±").is_err());
        assert!(parse_spread("1s±5s").is_err(), "jitter beyond the delay");
        assert!(parse_interval("1e-9").is_err());
        assert_eq!(parse_interval("0"), Ok(Duration::ZERO));
        assert_eq!(parse_slice("1k±512"), Ok((1024, 512)));
        assert!(parse_slice("0").is_err());
        assert_eq!(parse_rate("64k/s"), Ok(65536));
        assert!(parse_rate("0").is_err());
        assert_eq!(parse_count("0"), Ok(0));
        assert_eq!(parse_ratio("0.25"), Ok(0.25));
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("NaN").is_err());
    }
}
