//! The payload: every byte a connection sends is a function of (connection,
//! offset), so nothing sent is stored and every echoed byte can be checked.
//!
//! Each aligned 8-byte block of a connection's stream is one 64-bit word,
//! `mix(seed(connection) ^ block)`, sent little-endian. `mix` is a bijection
//! (multiply by an odd constant, then xor-shifts), so two different blocks of
//! one connection never carry the same word: a dropped, duplicated, swapped
//! or reordered byte or block shows up as a mismatch at the first offset it
//! touches. Different connections get unrelated seeds, so bytes crossing
//! from one connection to another are caught too.

/// The mismatch found first in a received chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// Offset in the connection's stream.
    pub offset: u64,
    pub expected: u8,
    pub got: u8,
}

#[inline]
fn seed(conn: u64) -> u64 {
    // splitmix64's finaliser: unrelated seeds even for neighbouring ids.
    let mut z = conn.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The word of block `block` for a connection whose seed is `seed`.
#[inline(always)]
fn word(seed: u64, block: u64) -> u64 {
    let z = (seed ^ block).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let z = z ^ (z >> 32);
    z ^ (z >> 16)
}

/// One connection's view of the pattern (the seed computed once).
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    pub fn new(conn: u64) -> Self {
        Pattern { seed: seed(conn) }
    }

    /// Write the stream bytes `offset .. offset + out.len()` into `out`.
    pub fn fill(&self, offset: u64, out: &mut [u8]) {
        let head = head_len(offset, out.len());
        for (i, b) in out[..head].iter_mut().enumerate() {
            *b = self.byte(offset + i as u64);
        }
        let start = offset + head as u64;
        let mut block = start / 8;
        let mut chunks = out[head..].chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&word(self.seed, block).to_le_bytes());
            block += 1;
        }
        let tail = chunks.into_remainder();
        let tail_start = block * 8;
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
        let start = offset + head as u64;
        let mut block = start / 8;
        let mut chunks = data[head..].chunks_exact(8);
        for chunk in &mut chunks {
            let mut word_bytes = [0u8; 8];
            word_bytes.copy_from_slice(chunk);
            let expected = word(self.seed, block);
            if u64::from_le_bytes(word_bytes) != expected {
                // Find the byte within the word.
                let exp = expected.to_le_bytes();
                let i = (0..8).find(|&i| exp[i] != chunk[i]).unwrap_or(0);
                return Some(Mismatch {
                    offset: block * 8 + i as u64,
                    expected: exp[i],
                    got: chunk[i],
                });
            }
            block += 1;
        }
        let tail_start = block * 8;
        for (i, &got) in chunks.remainder().iter().enumerate() {
            if let Some(m) = self.check_byte(tail_start + i as u64, got) {
                return Some(m);
            }
        }
        None
    }

    #[inline]
    pub fn byte(&self, offset: u64) -> u8 {
        word(self.seed, offset / 8).to_le_bytes()[(offset % 8) as usize]
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

    /// The byte at `offset` of connection `conn`'s stream, the slow way.
    fn byte_at(conn: u64, offset: u64) -> u8 {
        word(seed(conn), offset / 8).to_le_bytes()[(offset % 8) as usize]
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
    fn connections_get_different_streams() {
        assert_ne!(reference(0, 0, 64), reference(1, 0, 64));
        assert_ne!(reference(1, 0, 64), reference(2, 0, 64));
    }
}
