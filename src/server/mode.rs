//! `--mode`: which of inetd's classic services the loop provides. The loop
//! itself is the same for all three; the handlers consult this strategy for
//! the two things that differ:
//!
//! - what a receive does with the bytes: echo sends them back (RFC 862);
//!   discard (RFC 863) and chargen (RFC 864) read and drop them;
//! - whether the writable handler has something to send unprompted: only
//!   chargen, which writes its line pattern whenever the socket takes more,
//!   so it goes exactly as fast as the client reads (backpressure is the
//!   kernel's send buffer filling up, then no writable event).
//!
//! Chargen is never served over UDP: one small spoofed datagram would make
//! it send a large answer to a victim (a reflection amplifier).

use clap::ValueEnum;

use crate::registration::Interest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ServiceMode {
    /// Send every byte back (RFC 862).
    #[default]
    Echo,
    /// Read and drop everything (RFC 863).
    Discard,
    /// Send a rotating 72-character line pattern, drop what arrives (RFC 864; TCP only).
    Chargen,
}

impl ServiceMode {
    pub fn name(self) -> &'static str {
        match self {
            ServiceMode::Echo => "echo",
            ServiceMode::Discard => "discard",
            ServiceMode::Chargen => "chargen",
        }
    }

    /// Whether received bytes go back to their sender.
    pub fn echoes(self) -> bool {
        self == ServiceMode::Echo
    }

    /// Whether the service may run over UDP at all.
    pub fn serves_udp(self) -> bool {
        self != ServiceMode::Chargen
    }

    /// Whether a client that vanishes mid-stream (reset, broken pipe) ended
    /// the service normally. Chargen never ends on its own: a client stops
    /// it by closing, usually with pattern still unread, which turns the
    /// close into a reset. In echo mode that reset loses echo: a failure.
    pub fn ends_by_hang_up(self) -> bool {
        self == ServiceMode::Chargen
    }

    /// The interest a connection's state implies, adjusted for the service:
    /// chargen also wants to write whenever the connection is being served.
    pub fn interest(self, serving: bool, base: Interest) -> Interest {
        match self {
            ServiceMode::Chargen if serving => Interest {
                write: true,
                ..base
            },
            _ => base,
        }
    }
}

/// Characters per chargen line, before CR LF.
pub const LINE: usize = 72;
/// The printable ASCII characters, space to `~`: the ring chargen rotates.
const RING: usize = 95;
/// One line per ring position, then the pattern repeats.
const PERIOD: usize = RING * (LINE + 2);
/// The most bytes one `chunk` hands out (one send call).
pub const CHUNK: usize = 64 * 1024;

/// The chargen pattern, laid out often enough that any position in it is
/// the start of a contiguous `CHUNK`: a send never needs a copy.
pub struct Chargen {
    pattern: Box<[u8]>,
}

impl Chargen {
    pub fn new() -> Chargen {
        let periods = (PERIOD + CHUNK).div_ceil(PERIOD);
        let mut pattern = Vec::with_capacity(periods * PERIOD);
        for line in 0..periods * RING {
            // RFC 864's example starts its first line at '!' (ring position
            // 1); each line starts one character further round the ring.
            pattern.extend((0..LINE).map(|i| b' ' + ((line + 1 + i) % RING) as u8));
            pattern.extend_from_slice(b"\r\n");
        }
        Chargen {
            pattern: pattern.into_boxed_slice(),
        }
    }

    /// The next at most `max` bytes of the stream for a connection that has
    /// been sent `sent` bytes so far (its position needs no state of its own).
    pub fn chunk(&self, sent: u64, max: usize) -> &[u8] {
        let start = (sent % PERIOD as u64) as usize;
        &self.pattern[start..start + max.min(CHUNK)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargen_lines_rotate_through_the_printable_ring() {
        let chargen = Chargen::new();
        let first = chargen.chunk(0, 2 * (LINE + 2));
        assert_eq!(
            &first[..LINE + 2],
            &b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n"[..]
        );
        assert_eq!(first[LINE + 2], b'"', "line 2 starts one further");
        // Any position continues the same stream, across the period too.
        let whole = chargen.chunk(0, CHUNK);
        for sent in [1u64, 73, 74, PERIOD as u64 - 1, PERIOD as u64 * 7 + 5] {
            let at = (sent % PERIOD as u64) as usize;
            assert_eq!(chargen.chunk(sent, 100), &whole[at..at + 100]);
        }
        assert_eq!(chargen.chunk(PERIOD as u64 - 3, CHUNK).len(), CHUNK);
    }

    #[test]
    fn only_chargen_writes_unprompted() {
        let read = Interest {
            read: true,
            write: false,
        };
        assert_eq!(ServiceMode::Echo.interest(true, read), read);
        assert_eq!(ServiceMode::Discard.interest(true, read), read);
        assert!(ServiceMode::Chargen.interest(true, read).write);
        assert!(!ServiceMode::Chargen.interest(false, read).write);
    }
}
