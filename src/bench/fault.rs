//! What can go wrong on one connection, how it is counted and how it reads.
//! Every fault ends the connection it happened on (the others go on) and
//! makes the run fail. The classes are the tester's words for what the
//! server did: it refused or ignored the connect, reset it, closed it early,
//! stalled, or echoed the wrong bytes.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub enum Fault {
    /// The connect failed or timed out.
    Connect(io::Error),
    /// An echoed byte differs from the byte sent at that offset.
    Mismatch { offset: u64, expected: u8, got: u8 },
    /// The server closed (EOF) while it still owed bytes, or while the
    /// connection still expected to exchange messages.
    EarlyEof {
        offset: u64,
        expected: u8,
        owed: u64,
    },
    /// More bytes came back than were sent.
    Extra { offset: u64, got: u8 },
    /// `--half-close`: everything came back but no EOF followed.
    NoEof { offset: u64, waited: Duration },
    /// No byte moved for `--stall-timeout` while the connection was owed some.
    Stalled {
        offset: u64,
        owed: u64,
        waited: Duration,
    },
    /// The server reset the connection (or it was aborted, or the pipe broke).
    Reset {
        offset: u64,
        owed: u64,
        error: io::Error,
    },
    /// Any other I/O error.
    Io { offset: u64, error: io::Error },
}

/// Which report counter a fault adds to; each fault has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Connect,
    Reset,
    EarlyEof,
    Stall,
    /// Wrong or extra bytes, or no EOF after `--half-close`.
    BadEcho,
    Other,
}

impl Class {
    /// In the order the report lists them.
    pub const ALL: [Class; 6] = [
        Class::Connect,
        Class::Reset,
        Class::EarlyEof,
        Class::Stall,
        Class::BadEcho,
        Class::Other,
    ];

    /// What the text report calls one fault of this class.
    pub fn label(self) -> &'static str {
        match self {
            Class::Connect => "connect failure",
            Class::Reset => "reset",
            Class::EarlyEof => "early EOF",
            Class::Stall => "stall",
            Class::BadEcho => "verification failure",
            Class::Other => "other error",
        }
    }
}

impl Fault {
    /// An I/O error at echo offset `offset` with `owed` bytes still owed:
    /// a reset if the peer tore the connection down.
    pub fn io(offset: u64, owed: u64, error: io::Error) -> Fault {
        use io::ErrorKind::*;
        if matches!(
            error.kind(),
            ConnectionReset | ConnectionAborted | BrokenPipe
        ) {
            Fault::Reset {
                offset,
                owed,
                error,
            }
        } else {
            Fault::Io { offset, error }
        }
    }

    pub fn class(&self) -> Class {
        match self {
            Fault::Connect(_) => Class::Connect,
            Fault::EarlyEof { .. } => Class::EarlyEof,
            Fault::Mismatch { .. } | Fault::Extra { .. } | Fault::NoEof { .. } => Class::BadEcho,
            Fault::Stalled { .. } => Class::Stall,
            Fault::Reset { .. } => Class::Reset,
            Fault::Io { .. } => Class::Other,
        }
    }

    /// One line naming the connection and the offset in its stream.
    pub fn describe(&self, conn: u64) -> String {
        format!("connection {conn}, {self}")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Connect(err) => write!(f, "connect failed: {err}"),
            Fault::Mismatch {
                offset,
                expected,
                got,
            } => write!(
                f,
                "offset {offset}: expected 0x{expected:02x}, got 0x{got:02x}"
            ),
            Fault::EarlyEof {
                offset,
                expected,
                owed: 0,
            } => write!(
                f,
                "offset {offset}: expected 0x{expected:02x}, got EOF (the server closed the connection)"
            ),
            Fault::EarlyEof {
                offset,
                expected,
                owed,
            } => write!(
                f,
                "offset {offset}: expected 0x{expected:02x}, got EOF (the server closed with {owed} bytes still owed)"
            ),
            Fault::Extra { offset, got } => write!(
                f,
                "offset {offset}: expected nothing (only {offset} bytes were sent), got 0x{got:02x} (extra bytes)"
            ),
            Fault::NoEof { offset, waited } => write!(
                f,
                "offset {offset}: every byte came back after the half-close but no EOF followed within {:.1} s",
                waited.as_secs_f64()
            ),
            Fault::Stalled {
                offset,
                owed,
                waited,
            } => write!(
                f,
                "offset {offset}: no progress for {:.1} s with {owed} bytes owed (stalled)",
                waited.as_secs_f64()
            ),
            Fault::Reset {
                offset,
                owed,
                error,
            } => write!(
                f,
                "offset {offset}: connection reset ({error}) with {owed} bytes owed"
            ),
            Fault::Io { offset, error } => write!(f, "offset {offset}: {error}"),
        }
    }
}

/// A fault as the report keeps it: when, which class, and its one line.
#[derive(Debug, Clone)]
pub struct Failure {
    pub at: Instant,
    pub class: Class,
    pub text: String,
}
