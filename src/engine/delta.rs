//! librsync signatures, deltas and patches, as duplicity stores them: MD4 signatures with 8-byte strong
//! sums and duplicity 0.8's block-length rule, rdiff deltas, and patching a base file with a delta.

use std::io::{self, Read, Seek};

use librsync::{Delta, Patch, Signature, SignatureType};

/// duplicity 0.8.22's block length: 512 below 1,024,000 bytes, else size/1,024,000 × 512, at most 2048.
pub fn block_len(size: u64) -> usize {
    if size < 1_024_000 {
        512
    } else {
        (((size / 1_024_000) * 512) as usize).clamp(512, 2048)
    }
}

/// duplicity 3.2.1's block length under `--max-blocksize MAX`: the integer square root of the size,
/// rounded up to a multiple of 512, at most `max` (itself rounded up to 512, as duplicity's parser does).
pub fn block_len_capped(size: u64, max: usize) -> usize {
    round512(size.isqrt() as usize).min(round512(max))
}

/// Rounds up to the next multiple of 512, at least 512 (duplicity's `round512`).
pub fn round512(n: usize) -> usize {
    n.max(1).div_ceil(512) * 512
}

/// The block length for a file of `size` bytes: duplicity 0.8.22's rule, or 3.2.1's with
/// `--max-blocksize` (`max`). Either way, both versions read the signature (it names its block length).
pub fn block_len_for(size: u64, max: Option<usize>) -> usize {
    match max {
        Some(m) => block_len_capped(size, m),
        None => block_len(size),
    }
}

/// Strong sum length duplicity's signatures carry.
pub const STRONG_LEN: usize = 8;

fn rs_err(e: librsync::Error) -> io::Error {
    match e {
        librsync::Error::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("librsync: {other}")),
    }
}

/// Computes the signature of everything `input` yields (one pass; `input` may tee the data elsewhere),
/// in blocks of `block` bytes (see [`block_len_for`]).
pub fn signature<R: Read>(input: R, size_hint: u64, block: usize) -> io::Result<Vec<u8>> {
    // Reads of 64 KiB: one duplicity chunk per read when `input` tees into an archive.
    let buffered = io::BufReader::with_capacity(64 * 1024, input);
    let mut sig = Signature::with_buf_read(buffered, block, STRONG_LEN, SignatureType::MD4)
        .map_err(rs_err)?;
    let mut out = Vec::with_capacity(12 + (size_hint as usize / block + 1) * 12);
    sig.read_to_end(&mut out)?;
    Ok(out)
}

/// A delta stream that turns the file described by `old_signature` into what `new` yields.
pub fn delta<'a, R: Read + 'a>(new: R, old_signature: &[u8]) -> io::Result<impl Read + 'a> {
    let mut sig = old_signature;
    Delta::new(new, &mut sig).map_err(rs_err)
}

/// A stream of `base` patched by `delta`.
pub fn patch<'a, B: Read + Seek + 'a, D: Read + 'a>(
    base: B,
    delta: D,
) -> io::Result<impl Read + 'a> {
    Patch::new(base, delta).map_err(rs_err)
}

/// Copies what it reads from `inner` to a sink as it goes: lets one pass over a file feed both the
/// signature and the archive.
pub struct TeeReader<R, F> {
    inner: R,
    sink: F,
}

impl<R: Read, F: FnMut(&[u8]) -> io::Result<()>> TeeReader<R, F> {
    pub fn new(inner: R, sink: F) -> Self {
        TeeReader { inner, sink }
    }
}

impl<R: Read, F: FnMut(&[u8]) -> io::Result<()>> Read for TeeReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            (self.sink)(&buf[..n])?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    }

    #[test]
    fn block_len_follows_duplicity_0_8() {
        assert_eq!(block_len(0), 512);
        assert_eq!(block_len(1_023_999), 512);
        assert_eq!(block_len(3 * 1024 * 1024), 1536);
        assert_eq!(block_len(100 << 20), 2048);
    }

    #[test]
    fn max_blocksize_follows_duplicity_3() {
        // 3.2.1: round512(isqrt(size)), capped at the option rounded up to 512.
        assert_eq!(block_len_capped(0, 4096), 512);
        assert_eq!(block_len_capped(100 << 20, 1_000_000), 10_240);
        assert_eq!(block_len_capped(100 << 20, 4096), 4096);
        assert_eq!(block_len_capped(100 << 20, 1000), 1024);
        assert_eq!(block_len_capped(1 << 30, 100_000), 32_768);
        assert_eq!(block_len_for(100 << 20, None), 2048);
        assert_eq!(round512(1), 512);
        assert_eq!(round512(513), 1024);
    }

    #[test]
    fn signature_header_is_md4_strong_8() {
        let s = signature(&b""[..], 0, 512).unwrap();
        assert_eq!(s, [0x72, 0x73, 0x01, 0x36, 0, 0, 2, 0, 0, 0, 0, 8]);
        let s = signature(&data(1000, 1)[..], 1000, 512).unwrap();
        assert_eq!(s.len(), 12 + 2 * 12);
    }

    #[test]
    fn signature_names_its_block_length() {
        let s = signature(&data(100_000, 2)[..], 100_000, 4096).unwrap();
        // Block length (big-endian u32) after the magic; 25 blocks of 12 bytes.
        assert_eq!(&s[4..8], &4096u32.to_be_bytes());
        assert_eq!(s.len(), 12 + 25 * 12);
    }

    #[test]
    fn delta_then_patch_round_trips() {
        let old = data(300_000, 7);
        let mut new = old.clone();
        new[150_000..150_100].copy_from_slice(&data(100, 9));
        new.extend_from_slice(b"appended");
        let sig = signature(&old[..], old.len() as u64, 512).unwrap();
        let mut d = Vec::new();
        delta(&new[..], &sig).unwrap().read_to_end(&mut d).unwrap();
        assert!(d.len() < 10_000, "delta should be small, was {}", d.len());
        let mut out = Vec::new();
        patch(io::Cursor::new(&old), &d[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, new);
    }

    #[test]
    fn tee_feeds_both() {
        let src = data(200_000, 3);
        let mut copy = Vec::new();
        let sig = signature(
            TeeReader::new(&src[..], |b: &[u8]| {
                copy.extend_from_slice(b);
                Ok(())
            }),
            src.len() as u64,
            512,
        )
        .unwrap();
        assert_eq!(copy, src);
        assert_eq!(sig, signature(&src[..], src.len() as u64, 512).unwrap());
    }
}
