//! What can go wrong on one connection, how it is counted and how it reads.
//! Every fault ends the connection it happened on and makes the run fail.

use std::fmt;
use std::io;
use std::time::Duration;

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
    /// No byte moved for `--timeout` while the connection was owed some.
    Stalled {
        offset: u64,
        owed: u64,
        waited: Duration,
    },
    /// The server reset the connection (or it was aborted, or the pipe broke).
    Reset { offset: u64, error: io::Error },
    /// Any other I/O error.
    Io { offset: u64, error: io::Error },
}

/// Which report counter a fault adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Connect,
    Verification,
    Timeout,
    Reset,
    Other,
}

impl Fault {
    pub fn io(offset: u64, error: io::Error) -> Fault {
        use io::ErrorKind::*;
        if matches!(
            error.kind(),
            ConnectionReset | ConnectionAborted | BrokenPipe
        ) {
            Fault::Reset { offset, error }
        } else {
            Fault::Io { offset, error }
        }
    }

    pub fn class(&self) -> Class {
        match self {
            Fault::Connect(_) => Class::Connect,
            Fault::Mismatch { .. }
            | Fault::EarlyEof { .. }
            | Fault::Extra { .. }
            | Fault::NoEof { .. } => Class::Verification,
            Fault::Stalled { .. } => Class::Timeout,
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
                "offset {offset}: no progress for {:.1} s with {owed} bytes owed (timeout)",
                waited.as_secs_f64()
            ),
            Fault::Reset { offset, error } => {
                write!(f, "offset {offset}: connection reset ({error})")
            }
            Fault::Io { offset, error } => write!(f, "offset {offset}: {error}"),
        }
    }
}
