//! The payload: every byte a connection sends is a function of (connection,
//! offset), so nothing sent is stored and every echoed byte can be checked.
//!
//! Each aligned 8-byte block of a stream is one 64-bit word, sent
//! little-endian: `TABLE[block % 1024] ^ key(connection, block / 1024)`.
//! `TABLE` holds 1024 distinct words (a bijective mix of the index, built at
//! compile time) and `key` is a bijective mix of the connection's seed and
//! the 8 KiB period, so within a period no two blocks carry the same word,
//! the same block of two periods differs, and two connections' streams are
//! unrelated. A dropped, duplicated, swapped or reordered byte or block thus
//! shows up as a mismatch at the first offset it touches.
//!
//! Filling and checking a period is a table XOR with one constant: the
//! compiler vectorises both loops, so the bench spends a few nanoseconds per
//! KiB on its payload instead of hashing every word.

/// The mismatch found first in a received chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// Offset in the connection's stream.
    pub offset: u64,
    pub expected: u8,
    pub got: u8,
}

/// Words per period (8 KiB of stream).
const PERIOD: usize = 1024;

/// splitmix64's finaliser: a bijection on u64 that scatters neighbours.
const fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const fn build_table() -> [u64; PERIOD] {
    let mut t = [0u64; PERIOD];
    let mut i = 0;
    while i < PERIOD {
        t[i] = mix(i as u64 ^ 0x5EED_0F0B_10C0_FFEE);
        i += 1;
    }
    t
}

static TABLE: [u64; PERIOD] = build_table();

/// One connection's view of the pattern.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    pub fn new(conn: u64) -> Self {
        Pattern {
            seed: mix(conn ^ 0xC04E_C710_4E00_BEEF),
        }
    }

    /// The constant XORed over period `period` of this stream.
    #[inline]
    fn key(&self, period: u64) -> u64 {
        mix(self.seed ^ period)
    }

    #[inline]
    fn word(&self, block: u64) -> u64 {
        TABLE[(block % PERIOD as u64) as usize] ^ self.key(block / PERIOD as u64)
    }

    #[inline]
    pub fn byte(&self, offset: u64) -> u8 {
        self.word(offset / 8).to_le_bytes()[(offset % 8) as usize]
    }

    /// Write the stream bytes `offset .. offset + out.len()` into `out`.
    pub fn fill(&self, offset: u64, out: &mut [u8]) {
        let head = head_len(offset, out.len());
        for (i, b) in out[..head].iter_mut().enumerate() {
            *b = self.byte(offset + i as u64);
        }
        let first_block = (offset + head as u64) / 8;
        let body_len = (out.len() - head) / 8 * 8;
        let (body, tail) = out[head..].split_at_mut(body_len);
        for span in self.spans(first_block, body_len) {
            let (bytes, key) = (&mut body[span.bytes], span.key);
            for (chunk, &t) in bytes.chunks_exact_mut(8).zip(span.table) {
                chunk.copy_from_slice(&(t ^ key).to_le_bytes());
            }
        }
        let tail_start = offset + (head + body_len) as u64;
        for (i, b) in tail.iter_mut().enumerate() {
            *b = self.byte(tail_start + i as u64);
        }
    }

    /// Check that `data` equals the stream bytes from `offset`; the first
    /// byte that differs is returned.
    pub fn verify(&self, offset: u64, data: &[u8]) -> Option<Mismatch> {
        let head = head_len(offset, data.len());
        for (i, &got) in data[..head].iter().enumerate() {
            if let Some(m) = self.check_byte(offset + i as u64, got) {
                return Some(m);
            }
        }
        let body_start = offset + head as u64;
        let body_len = (data.len() - head) / 8 * 8;
        let (body, tail) = data[head..].split_at(body_len);
        for span in self.spans(body_start / 8, body_len) {
            let start = span.bytes.start;
            let bytes = &body[span.bytes];
            // Fast path: OR of all differences over the span (vectorised).
            let mut diff = 0u64;
            for (chunk, &t) in bytes.chunks_exact(8).zip(span.table) {
                let mut w = [0u8; 8];
                w.copy_from_slice(chunk);
                diff |= u64::from_le_bytes(w) ^ t ^ span.key;
            }
            if diff != 0 {
                // Slow path, once per failure: find the first bad byte.
                let base = body_start + start as u64;
                for (i, &got) in bytes.iter().enumerate() {
                    if let Some(m) = self.check_byte(base + i as u64, got) {
                        return Some(m);
                    }
                }
            }
        }
        let tail_start = body_start + body_len as u64;
        for (i, &got) in tail.iter().enumerate() {
            if let Some(m) = self.check_byte(tail_start + i as u64, got) {
                return Some(m);
            }
        }
        None
    }

    /// Split `len` aligned bytes starting at block `first_block` into runs
    /// that stay within one period.
    fn spans(&self, first_block: u64, len: usize) -> impl Iterator<Item = Span> + '_ {
        let mut pos = 0;
        let mut block = first_block;
        std::iter::from_fn(move || {
            if pos >= len {
                return None;
            }
            let index = (block % PERIOD as u64) as usize;
            let words = (PERIOD - index).min((len - pos) / 8);
            let span = Span {
                bytes: pos..pos + words * 8,
                key: self.key(block / PERIOD as u64),
                table: &TABLE[index..index + words],
            };
            pos += words * 8;
            block += words as u64;
            Some(span)
        })
    }

    /// The mismatch, if the byte at `offset` is not `got`.
    #[inline]
    fn check_byte(&self, offset: u64, got: u8) -> Option<Mismatch> {
        let expected = self.byte(offset);
        (expected != got).then_some(Mismatch {
            offset,
            expected,
            got,
        })
    }
}

/// A run of aligned stream bytes within one period.
struct Span {
    bytes: std::ops::Range<usize>,
    key: u64,
    table: &'static [u64],
}

/// Bytes before the next 8-byte boundary of the stream (at most `len`).
fn head_len(offset: u64, len: usize) -> usize {
    let misalign = (offset % 8) as usize;
    if misalign == 0 {
        0
    } else {
        (8 - misalign).min(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte at `offset` of connection `conn`'s stream, one at a time.
    fn byte_at(conn: u64, offset: u64) -> u8 {
        Pattern::new(conn).byte(offset)
    }

    fn reference(conn: u64, offset: u64, len: usize) -> Vec<u8> {
        (0..len as u64).map(|i| byte_at(conn, offset + i)).collect()
    }

    #[test]
    fn fill_matches_byte_at_at_every_alignment() {
        let p = Pattern::new(7);
        for offset in 0..20 {
            for len in [0, 1, 3, 7, 8, 9, 16, 17, 100] {
                let mut out = vec![0; len];
                p.fill(offset, &mut out);
                assert_eq!(out, reference(7, offset, len), "offset {offset} len {len}");
                assert_eq!(p.verify(offset, &out), None);
            }
        }
    }

    #[test]
    fn verify_finds_the_first_wrong_byte() {
        let p = Pattern::new(3);
        let mut data = vec![0; 64];
        p.fill(5, &mut data);
        data[20] ^= 0x40;
        data[30] ^= 1;
        let m = p.verify(5, &data).expect("corruption found");
        assert_eq!(m.offset, 25);
        assert_eq!(m.got, m.expected ^ 0x40);
    }

    #[test]
    fn every_flipped_byte_is_found_where_it_is() {
        let p = Pattern::new(11);
        for offset in 0..16u64 {
            for len in 1..40usize {
                let mut data = vec![0; len];
                p.fill(offset, &mut data);
                for at in 0..len {
                    data[at] ^= 0x80;
                    let m = p.verify(offset, &data).expect("flip found");
                    assert_eq!(m.offset, offset + at as u64, "offset {offset} len {len}");
                    data[at] ^= 0x80;
                }
            }
        }
    }

    #[test]
    fn shifted_streams_do_not_match() {
        // A dropped byte shifts the rest of the stream by one: caught at once.
        let p = Pattern::new(0);
        let mut data = vec![0; 4096];
        p.fill(0, &mut data);
        let dropped: Vec<u8> = data[..100].iter().chain(&data[101..]).copied().collect();
        let m = p.verify(0, &dropped).expect("drop found");
        assert!((100..=102).contains(&m.offset), "{m:?}");
        // Swapping two 8-byte blocks is caught as well.
        let mut swapped = data.clone();
        swapped[..8].copy_from_slice(&data[8..16]);
        swapped[8..16].copy_from_slice(&data[..8]);
        assert!(p.verify(0, &swapped).is_some());
    }

    #[test]
    fn long_runs_across_periods_fill_and_verify() {
        let p = Pattern::new(5);
        for (offset, len) in [(8180, 100), (3, 40_000), (8192 * 3 - 1, 8194)] {
            let mut data = vec![0; len];
            p.fill(offset, &mut data);
            assert_eq!(data, reference(5, offset, len), "offset {offset} len {len}");
            assert_eq!(p.verify(offset, &data), None);
            for at in [0, 1, len / 3, len / 2 + 5, len - 1] {
                data[at] ^= 1;
                let m = p.verify(offset, &data).expect("flip found");
                assert_eq!(m.offset, offset + at as u64);
                data[at] ^= 1;
            }
        }
    }

    #[test]
    fn the_same_block_of_two_periods_differs() {
        let p = Pattern::new(9);
        for block in [0u64, 1, 500, 1023] {
            let a = reference(9, block * 8, 8);
            let b = reference(9, (block + PERIOD as u64) * 8, 8);
            assert_ne!(a, b, "block {block}");
        }
        // And within a period every word is different.
        let mut words: Vec<u64> = (0..PERIOD as u64).map(|b| p.word(b)).collect();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), PERIOD);
    }

    #[test]
    fn connections_get_different_streams() {
        assert_ne!(reference(0, 0, 64), reference(1, 0, 64));
        assert_ne!(reference(1, 0, 64), reference(2, 0, 64));
    }
}
