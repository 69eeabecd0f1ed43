//! Deflate on every core: the stream is cut into blocks that a small pool of threads compresses at
//! once (each block primed with the previous 32 KiB, ended with a sync flush, so the pieces join into
//! one ordinary deflate stream, as pigz does). Blocks that look random are stored, not compressed: half
//! of a typical backup is already-compressed data, and deflating it costs time for nothing.
//! Also the two containers built on it: gzip files and OpenPGP literal data inside a ZIP packet.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use flate2::{Compress, Crc, FlushCompress, Status};

use crate::engine::crypto::MessageSigner;

/// Input per job. Small enough to spread one volume over the cores, large enough that the sync
/// flush and the dictionary priming cost nothing.
const BLOCK: usize = 256 * 1024;
/// Deflate's window: each block is primed with this much of what precedes it.
const DICT: usize = 32 * 1024;

/// A compressed block and the CRC-32 of its input.
type BlockResult = io::Result<(Vec<u8>, Crc)>;

struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    level: u32,
    last: bool,
    reply: Sender<BlockResult>,
}

/// The process-wide compression threads, started on first use.
fn pool() -> &'static SyncSender<Job> {
    static POOL: OnceLock<SyncSender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        let (tx, rx) = sync_channel::<Job>(workers * 2);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("deflate-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(j) => j,
                        Err(_) => return,
                    };
                    // The level is chosen here, off the writer's thread: stored when the block looks random.
                    let level = level_for(&job.data, job.level);
                    let res = compress_block(&job.data, &job.dict, level, job.last);
                    let _ = job.reply.send(res);
                })
                .expect("cannot start a compression thread");
        }
        tx
    })
}

/// Shannon entropy in bits per byte of a sample of `data`.
fn entropy(data: &[u8]) -> f64 {
    let mut hist = [0u32; 256];
    let step = if data.len() > 64 * 1024 { 3 } else { 1 };
    let mut n = 0u32;
    for b in data.iter().step_by(step) {
        hist[*b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    hist.iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// The level for a block: 0 (stored) when it looks like random or already-compressed data.
pub fn level_for(data: &[u8], level: u32) -> u32 {
    if data.len() >= 4096 && entropy(data) > 7.9 {
        0
    } else {
        level
    }
}

fn compress_block(data: &[u8], dict: &[u8], level: u32, last: bool) -> io::Result<(Vec<u8>, Crc)> {
    let mut crc = Crc::new();
    crc.update(data);
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !dict.is_empty() && level > 0 {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Room for the worst case (stored blocks), so the output is never reallocated and copied.
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        match status {
            Status::StreamEnd => break,
            // A sync flush is complete once all input is in and output space was left over.
            _ if !last && all_in && out.capacity() > out.len() => break,
            _ => {}
        }
    }
    Ok((out, crc))
}

/// Compresses what is written to it into `inner` as one raw deflate stream, on the pool's threads.
pub struct ParallelDeflate<W: Write> {
    inner: W,
    level: u32,
    buf: Vec<u8>,
    dict: Vec<u8>,
    queue: VecDeque<Receiver<BlockResult>>,
    crc: Crc,
    max_in_flight: usize,
}

impl<W: Write> ParallelDeflate<W> {
    pub fn new(inner: W, level: u32) -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        ParallelDeflate {
            inner,
            level: level.min(9),
            buf: Vec::with_capacity(BLOCK),
            dict: Vec::new(),
            queue: VecDeque::new(),
            crc: Crc::new(),
            max_in_flight: workers * 2 + 1,
        }
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
        let level = self.level;
        let dict = std::mem::take(&mut self.dict);
        self.dict = data[data.len().saturating_sub(DICT)..].to_vec();
        let (tx, rx) = channel();
        pool()
            .send(Job {
                data,
                dict,
                level,
                last,
                reply: tx,
            })
            .map_err(|_| io::Error::other("the compression threads stopped"))?;
        self.queue.push_back(rx);
        while self.queue.len() >= self.max_in_flight {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let rx = self.queue.pop_front().expect("queue not empty");
        let (out, crc) = rx
            .recv()
            .map_err(|_| io::Error::other("a compression thread stopped"))??;
        self.crc.combine(&crc);
        self.inner.write_all(&out)
    }

    /// Ends the deflate stream; returns the inner writer, the CRC-32 and length of the input.
    pub fn finish(mut self) -> io::Result<(W, u32, u32)> {
        self.dispatch(true)?;
        while !self.queue.is_empty() {
            self.write_oldest()?;
        }
        Ok((self.inner, self.crc.sum(), self.crc.amount()))
    }
}

impl<W: Write> Write for ParallelDeflate<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let take = (BLOCK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == BLOCK {
                self.dispatch(false)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A gzip file (RFC 1952) around a parallel deflate stream.
pub struct GzipWriter<W: Write> {
    deflate: ParallelDeflate<W>,
}

impl<W: Write> GzipWriter<W> {
    pub fn new(mut inner: W, level: u32) -> io::Result<Self> {
        // No name, no mtime, OS unknown (255), as Python's GzipFile writes for a file object.
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
        Ok(GzipWriter {
            deflate: ParallelDeflate::new(inner, level),
        })
    }

    pub fn finish(self) -> io::Result<W> {
        let (mut inner, crc, len) = self.deflate.finish()?;
        inner.write_all(&crc.to_le_bytes())?;
        inner.write_all(&len.to_le_bytes())?;
        Ok(inner)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.deflate.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// OpenPGP packets for compressed literal data, written raw into an encrypted container: a ZIP
/// compressed-data packet (old format, indeterminate length, as gpg writes it) holding a binary
/// literal packet with partial body lengths; when signing, between a one-pass signature packet and the
/// signature packet, as `gpg --sign` writes them.
pub struct PgpLiteralWriter<W: Write> {
    deflate: ParallelDeflate<W>,
    pending: Vec<u8>,
    signer: Option<MessageSigner>,
}

/// Literal body bytes per partial-length piece (2^PIECE_BITS).
const PIECE_BITS: u32 = 18;
const PIECE: usize = 1 << PIECE_BITS;

impl<W: Write> PgpLiteralWriter<W> {
    pub fn new(inner: W, level: u32) -> io::Result<Self> {
        Self::with_signer(inner, level, None)
    }

    /// As `new`, signing the literal data with `signer` if given.
    pub fn with_signer(
        mut inner: W,
        level: u32,
        signer: Option<MessageSigner>,
    ) -> io::Result<Self> {
        inner.write_all(&[0xa3, 0x01])?;
        let mut deflate = ParallelDeflate::new(inner, level);
        if let Some(s) = &signer {
            deflate.write_all(&s.one_pass_packet().map_err(io::Error::other)?)?;
        }
        // New-format literal data packet (tag 11).
        deflate.write_all(&[0xcb])?;
        let mut pending = Vec::with_capacity(PIECE);
        // Binary, no file name, no date.
        pending.extend_from_slice(&[b'b', 0, 0, 0, 0, 0]);
        Ok(PgpLiteralWriter {
            deflate,
            pending,
            signer,
        })
    }

    pub fn finish(mut self) -> io::Result<W> {
        let len = self.pending.len();
        let mut header = Vec::with_capacity(5);
        if len < 192 {
            header.push(len as u8);
        } else if len < 8384 {
            let l = len - 192;
            header.push(((l >> 8) + 192) as u8);
            header.push((l & 0xff) as u8);
        } else {
            header.push(0xff);
            header.extend_from_slice(&(len as u32).to_be_bytes());
        }
        self.deflate.write_all(&header)?;
        let pending = std::mem::take(&mut self.pending);
        self.deflate.write_all(&pending)?;
        if let Some(s) = self.signer.take() {
            self.deflate
                .write_all(&s.signature_packet().map_err(io::Error::other)?)?;
        }
        Ok(self.deflate.finish()?.0)
    }
}

impl<W: Write> Write for PgpLiteralWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        if let Some(s) = &mut self.signer {
            s.update(data);
        }
        while !data.is_empty() {
            if self.pending.len() == PIECE {
                // More follows, so this piece gets a partial length.
                self.deflate.write_all(&[0xe0 + PIECE_BITS as u8])?;
                let piece = std::mem::replace(&mut self.pending, Vec::with_capacity(PIECE));
                self.deflate.write_all(&piece)?;
            }
            let take = (PIECE - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        let mut x = 12345u32;
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            // Alternate text-like and random stretches.
            for i in 0..3000 {
                v.extend_from_slice(format!("line {i} of some log text\n").as_bytes());
            }
            for _ in 0..100_000 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                v.push((x >> 16) as u8);
            }
        }
        v.truncate(n);
        v
    }

    #[test]
    fn gzip_round_trips_through_a_standard_decoder() {
        for n in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 777] {
            let data = sample(n);
            let mut w = GzipWriter::new(Vec::new(), 6).unwrap();
            w.write_all(&data).unwrap();
            let gz = w.finish().unwrap();
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "size {n}");
        }
    }

    #[test]
    fn random_blocks_are_stored_text_blocks_compressed() {
        let text = b"the quick brown fox jumps over the lazy dog\n".repeat(2000);
        assert_eq!(level_for(&text, 6), 6);
        let random = sample(BLOCK).split_off(100_000);
        let mut x = 1u32;
        let random: Vec<u8> = random
            .iter()
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        assert_eq!(level_for(&random, 6), 0);
    }

    #[test]
    fn literal_packet_framing() {
        for n in [0, 100, PIECE - 6, PIECE - 5, PIECE, 3 * PIECE + 5] {
            let data = sample(n);
            let mut w = PgpLiteralWriter::new(Vec::new(), 6).unwrap();
            w.write_all(&data).unwrap();
            let out = w.finish().unwrap();
            assert_eq!(&out[..2], &[0xa3, 0x01]);
            let mut plain = Vec::new();
            flate2::read::DeflateDecoder::new(&out[2..])
                .read_to_end(&mut plain)
                .unwrap();
            // Walk the literal packet's lengths.
            assert_eq!(plain[0], 0xcb);
            let mut body = Vec::new();
            let mut p = 1;
            loop {
                let b = plain[p] as usize;
                p += 1;
                let (len, partial) = if (224..255).contains(&b) {
                    (1usize << (b & 0x1f), true)
                } else if b < 192 {
                    (b, false)
                } else if b < 224 {
                    let l = ((b - 192) << 8) + plain[p] as usize + 192;
                    p += 1;
                    (l, false)
                } else {
                    let l = u32::from_be_bytes(plain[p..p + 4].try_into().unwrap()) as usize;
                    p += 4;
                    (l, false)
                };
                body.extend_from_slice(&plain[p..p + len]);
                p += len;
                if !partial {
                    break;
                }
            }
            assert_eq!(p, plain.len());
            assert_eq!(&body[..6], b"b\0\0\0\0\0");
            assert_eq!(&body[6..], &data[..], "size {n}");
        }
    }
}
