//! Bandwidth limits (`--limit-upload`, `--limit-download`; the charm's `upload_rate_limit` and
//! `download_rate_limit`): a token bucket over the bytes a backend moves, shared by every transfer of
//! that backend in one direction.
//!
//! Each backend applies it where its bytes stream: the sync ones (file, sftp/scp, ftp) through
//! [`Throttled`] around the local file or the remote stream, the async ones (s3, azure) per chunk
//! with [`take_async`] or a throttled request body. rsync, a separate program, gets `--bwlimit`.
//! Nothing is buffered beyond one chunk of at most [`RateLimiter::chunk`] bytes, which is also the
//! largest burst the bucket lets through after an idle spell: the rate over any window of `w` seconds
//! is at most `rate × w + chunk`, so over a minute it is within a fraction of a percent of the limit.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bucket holds this fraction of a second's worth of bytes (1/20 s = 50 ms at the limit) ...
const BURST_PER_SECOND: u64 = 20;
/// ... but at least this much (tiny limits still move whole packets) ...
const MIN_BURST: u64 = 1024;
/// ... and at most this much (fast limits sleep often rather than send large bursts).
const MAX_BURST: u64 = 1 << 20;
/// The lowest limit accepted: slower would not finish a backup, and rsync's `--bwlimit` cannot go
/// below 1 KiB/s.
pub const MIN_RATE: u64 = 1024;

/// Time as the limiter sees it: the real clock, or a fake one in tests.
pub trait Clock: Send + Sync {
    /// Time since an arbitrary fixed origin; never goes back.
    fn now(&self) -> Duration;
    fn sleep(&self, d: Duration);
}

/// The monotonic clock and `thread::sleep`.
pub struct RealClock {
    origin: Instant,
}

impl RealClock {
    pub fn new() -> RealClock {
        RealClock {
            origin: Instant::now(),
        }
    }
}

impl Default for RealClock {
    fn default() -> Self {
        RealClock::new()
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A token bucket: `rate` bytes per second, holding at most [`RateLimiter::chunk`] bytes.
pub struct RateLimiter {
    rate: u64,
    burst: u64,
    clock: Arc<dyn Clock>,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    /// Bytes that may pass now; negative when bytes were let through ahead of their time (their
    /// sender is waiting that debt off).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Duration,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `rate` bytes per second on the real clock.
    pub fn new(rate: u64) -> RateLimiter {
        RateLimiter::with_clock(rate, Arc::new(RealClock::new()))
    }

    pub fn with_clock(rate: u64, clock: Arc<dyn Clock>) -> RateLimiter {
        let rate = rate.max(1);
        let burst = (rate / BURST_PER_SECOND).clamp(MIN_BURST, MAX_BURST);
        let at = clock.now();
        RateLimiter {
            rate,
            burst,
            clock,
            // Full at first: a transfer may start at once.
            bucket: Mutex::new(Bucket {
                tokens: burst as f64,
                at,
            }),
        }
    }

    /// Bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The most bytes to move in one go (the bucket's size): callers cut their reads and writes to it.
    pub fn chunk(&self) -> usize {
        self.burst as usize
    }

    /// Counts `n` bytes as sent and returns how long their sender must wait so that the rate holds
    /// (zero while the bucket has tokens). Concurrent callers queue up: each waits its own share.
    pub fn reserve(&self, n: u64) -> Duration {
        let now = self.clock.now();
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_sub(b.at);
        b.at = b.at.max(now);
        // Tokens refill with time, up to the bucket's size: an idle spell never buys more than one
        // burst.
        b.tokens = (b.tokens + elapsed.as_secs_f64() * self.rate as f64).min(self.burst as f64);
        b.tokens -= n as f64;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate as f64)
        }
    }

    /// Counts `n` bytes as sent and sleeps as long as [`RateLimiter::reserve`] says.
    pub fn take(&self, n: u64) {
        let wait = self.reserve(n);
        if !wait.is_zero() {
            self.clock.sleep(wait);
        }
    }
}

/// As [`RateLimiter::take`], for async code on a tokio runtime (which keeps driving other tasks,
/// e.g. the connection, while this waits).
pub async fn take_async(limiter: &RateLimiter, n: u64) {
    let wait = limiter.reserve(n);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// A reader or writer whose bytes pass through a limiter (none: unchanged). Each call moves at most
/// one chunk and then waits for it, so a caller's large buffer never becomes a burst.
pub struct Throttled<T> {
    inner: T,
    limiter: Option<Arc<RateLimiter>>,
}

impl<T> Throttled<T> {
    pub fn new(inner: T, limiter: Option<Arc<RateLimiter>>) -> Throttled<T> {
        Throttled { inner, limiter }
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: Read> Read for Throttled<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(l) = &self.limiter else {
            return self.inner.read(buf);
        };
        let max = buf.len().min(l.chunk());
        let n = self.inner.read(&mut buf[..max])?;
        l.take(n as u64);
        Ok(n)
    }
}

impl<T: Write> Write for Throttled<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(l) = &self.limiter else {
            return self.inner.write(buf);
        };
        let max = buf.len().min(l.chunk());
        let n = self.inner.write(&buf[..max])?;
        l.take(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes per read when copying without `--copy-blocksize` (as `io::copy`).
pub const COPY_BUFFER: usize = 8 * 1024;

/// A backend's two limiters, made once when it is opened from [`super::OpenOptions`].
#[derive(Clone, Default, Debug)]
pub struct Limits {
    pub upload: Option<Arc<RateLimiter>>,
    pub download: Option<Arc<RateLimiter>>,
    /// `--copy-blocksize`: bytes per read of [`Limits::copy`] (travels with the limiters because every
    /// backend that copies has them).
    pub copy_block: Option<usize>,
}

impl Limits {
    pub fn from_options(o: &super::OpenOptions) -> Limits {
        let make = |r: Option<u64>| r.filter(|&r| r > 0).map(|r| Arc::new(RateLimiter::new(r)));
        Limits {
            upload: make(o.upload_limit),
            download: make(o.download_limit),
            copy_block: o.copy_blocksize.filter(|&b| b > 0),
        }
    }

    /// `io::copy` with reads of `--copy-blocksize` bytes, else of `default` bytes. `write_all`
    /// re-offers an unwritten tail, which pipelined writers (libssh2's SFTP) expect.
    pub fn copy(
        &self,
        from: &mut impl std::io::Read,
        to: &mut impl std::io::Write,
        default: usize,
    ) -> std::io::Result<u64> {
        let mut buf = vec![0u8; self.copy_block.unwrap_or(default).max(1)];
        let mut total = 0u64;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            to.write_all(&buf[..n])?;
            total += n as u64;
        }
    }

    /// `r` (a local file being sent, or an upload stream) at the upload limit.
    pub fn upload<T>(&self, r: T) -> Throttled<T> {
        Throttled::new(r, self.upload.clone())
    }

    /// `r` (a remote stream being read, or the local file written) at the download limit.
    pub fn download<T>(&self, r: T) -> Throttled<T> {
        Throttled::new(r, self.download.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.upload.is_none() && self.download.is_none()
    }
}

/// Why a rate was refused; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RateError(String);

/// Parses a rate as rsync's `--bwlimit` and restic's `--limit-upload` take it: a number of KiB/s,
/// or a number (fractions allowed) with a unit: `B`; `K`/`KiB`, `M`/`MiB`, `G`/`GiB` (powers of
/// 1024); `KB`, `MB`, `GB` (powers of 1000); any case, optionally followed by `/s`. Returns bytes per
/// second; 0 means no limit. Below 1 KiB/s is refused.
pub fn parse_rate(text: &str) -> Result<u64, RateError> {
    let t = text.trim();
    let bad = || {
        RateError(format!(
            "{t:?} is not a rate: give KiB/s as a number (500), or a number with a unit such as 500K, 10M, 1.5M or 2MB (0 for no limit)"
        ))
    };
    let t_lower = t.to_ascii_lowercase();
    let body = t_lower.strip_suffix("/s").unwrap_or(&t_lower).trim_end();
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) if !f.contains('.') => (w, f),
        Some(_) => return Err(bad()),
        None => (number, ""),
    };
    let multiplier: u64 = match unit.trim_start() {
        "" | "k" | "kib" => 1 << 10,
        "b" => 1,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    // Exact integer arithmetic: whole × multiplier + frac × multiplier / 10^digits.
    let too_big = || RateError(format!("{t:?} is too large a rate: use at most 1000G"));
    let whole: u64 = whole.parse().map_err(|_| too_big())?;
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(too_big)?;
    if !frac.is_empty() {
        let digits = frac.len().min(9);
        let f: u64 = frac[..digits].parse().map_err(|_| bad())?;
        let scale = 10u64.pow(digits as u32);
        let part = (u128::from(f) * u128::from(multiplier) / u128::from(scale)) as u64;
        bytes = bytes.checked_add(part).ok_or_else(too_big)?;
    }
    if bytes > 1000 * (1 << 30) {
        return Err(too_big());
    }
    if bytes != 0 && bytes < MIN_RATE {
        return Err(RateError(format!(
            "{t:?} is below the lowest limit, 1K (1 KiB/s): give at least 1K, or 0 for no limit"
        )));
    }
    Ok(bytes)
}

/// A rate for people: `500 KiB/s`, `1.5 MiB/s`.
pub fn format_rate(bytes_per_second: u64) -> String {
    let b = bytes_per_second as f64;
    if bytes_per_second >= 1 << 30 {
        format!("{:.1} GiB/s", b / (1u64 << 30) as f64)
    } else if bytes_per_second >= 1 << 20 {
        format!("{:.1} MiB/s", b / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB/s", b / 1024.0)
    }
    .replace(".0 ", " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that records how many bytes each read asked for.
    struct Asked<'a>(&'a [u8], Vec<usize>);
    impl std::io::Read for Asked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1.push(buf.len());
            self.0.read(buf)
        }
    }

    #[test]
    fn copy_reads_copy_blocksize_bytes_at_a_time() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let copy_with = |block: Option<usize>| {
            let limits = Limits {
                copy_block: block,
                ..Limits::default()
            };
            let mut r = Asked(&data, Vec::new());
            let mut out = Vec::new();
            assert_eq!(limits.copy(&mut r, &mut out, 4096).unwrap(), 10_000);
            assert_eq!(out, data);
            r.1
        };
        assert!(copy_with(Some(3 * 1024)).iter().all(|&n| n == 3072));
        assert!(copy_with(None).iter().all(|&n| n == 4096));
        let o = super::super::OpenOptions {
            copy_blocksize: Some(65536),
            ..Default::default()
        };
        assert_eq!(Limits::from_options(&o).copy_block, Some(65536));
    }

    /// A clock that only moves when someone sleeps (or the test advances it); it records the sleeps.
    #[derive(Default)]
    struct FakeClock {
        now: Mutex<Duration>,
    }

    impl FakeClock {
        fn advance(&self, d: Duration) {
            *self.now.lock().unwrap() += d;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            *self.now.lock().unwrap()
        }
        fn sleep(&self, d: Duration) {
            self.advance(d);
        }
    }

    /// A source of `len` zero bytes that records, for every read, the fake time and the bytes returned.
    struct Source {
        left: usize,
        clock: Arc<FakeClock>,
        log: Arc<Mutex<Vec<(Duration, usize)>>>,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.left);
            buf[..n].fill(0);
            self.left -= n;
            self.log.lock().unwrap().push((self.clock.now(), n));
            Ok(n)
        }
    }

    fn limited(rate: u64) -> (Arc<FakeClock>, Arc<RateLimiter>) {
        let clock = Arc::new(FakeClock::default());
        let limiter = Arc::new(RateLimiter::with_clock(rate, clock.clone()));
        (clock, limiter)
    }

    fn copy_through(
        rate: u64,
        len: usize,
        buf: usize,
    ) -> (Duration, usize, Vec<(Duration, usize)>) {
        let (clock, limiter) = limited(rate);
        let log = Arc::new(Mutex::new(Vec::new()));
        let src = Source {
            left: len,
            clock: clock.clone(),
            log: log.clone(),
        };
        let mut r = Throttled::new(src, Some(limiter.clone()));
        let mut b = vec![0u8; buf];
        let mut total = 0;
        loop {
            let n = r.read(&mut b).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        let log = log.lock().unwrap().clone();
        (clock.now(), total, log)
    }

    #[test]
    fn a_long_transfer_takes_bytes_over_rate_within_one_percent() {
        // 60 MiB at 1 MiB/s, read with 8 MiB buffers: a minute, give or take the first burst.
        let rate = 1 << 20;
        let len = 60 << 20;
        let (elapsed, total, _) = copy_through(rate, len, 8 << 20);
        assert_eq!(total, len);
        let expected = len as f64 / rate as f64;
        let got = elapsed.as_secs_f64();
        assert!(
            (got - expected).abs() <= expected * 0.01,
            "{got} s for {expected} s of data"
        );
    }

    #[test]
    fn no_window_carries_more_than_rate_times_its_length_plus_one_chunk() {
        let rate = 300 * 1024;
        let (_, _, log) = copy_through(rate, 5 << 20, 4 << 20);
        let chunk = RateLimiter::new(rate).chunk();
        assert!(
            log.iter().all(|&(_, n)| n <= chunk),
            "a read over one chunk"
        );
        // Bytes handed out from read i to read j (inclusive) vs. the time between them.
        for i in 0..log.len() {
            let mut bytes = 0usize;
            for j in i..log.len() {
                bytes += log[j].1;
                let window = (log[j].0 - log[i].0).as_secs_f64();
                let allowed = rate as f64 * window + chunk as f64 * 2.0;
                assert!(
                    bytes as f64 <= allowed,
                    "{bytes} bytes in {window} s (allowed {allowed})"
                );
            }
        }
    }

    #[test]
    fn an_idle_spell_buys_one_chunk_not_a_burst() {
        let rate = 100 * 1024;
        let (clock, limiter) = limited(rate);
        let chunk = limiter.chunk() as u64;
        clock.advance(Duration::from_secs(3600));
        let start = clock.now();
        for _ in 0..50 {
            limiter.take(chunk);
        }
        let took = (clock.now() - start).as_secs_f64();
        // 50 chunks; only the first comes from the bucket.
        let at_least = 49.0 * chunk as f64 / rate as f64;
        assert!(took >= at_least * 0.999, "{took} s < {at_least} s");
    }

    #[test]
    fn concurrent_senders_share_the_rate() {
        let rate = 64 * 1024;
        let (clock, limiter) = limited(rate);
        let chunk = limiter.chunk() as u64;
        // Two senders interleaved: each reservation waits for the other's too.
        let mut waits = Vec::new();
        for _ in 0..40 {
            waits.push(limiter.reserve(chunk));
            waits.push(limiter.reserve(chunk));
        }
        let last = waits.last().unwrap().as_secs_f64();
        let expected = (80 * chunk - chunk) as f64 / rate as f64;
        assert!((last - expected).abs() < 1e-6, "{last} vs {expected}");
        drop(clock);
    }

    #[test]
    fn writes_are_cut_to_a_chunk_and_paced() {
        let rate = 10 * 1024;
        let (clock, limiter) = limited(rate);
        let mut w = Throttled::new(Vec::new(), Some(limiter.clone()));
        w.write_all(&vec![7u8; 100 * 1024]).unwrap();
        assert_eq!(w.get_mut().len(), 100 * 1024);
        let took = clock.now().as_secs_f64();
        assert!((took - 9.9).abs() < 0.2, "{took}");
    }

    #[test]
    fn no_limiter_passes_through() {
        let mut r = Throttled::new(&b"abc"[..], None);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abc");
    }

    #[test]
    fn rates_parse_as_rsync_and_restic_write_them() {
        assert_eq!(parse_rate("500").unwrap(), 500 * 1024);
        assert_eq!(parse_rate("500K").unwrap(), 500 * 1024);
        assert_eq!(parse_rate("500kib/s").unwrap(), 500 * 1024);
        assert_eq!(parse_rate("10M").unwrap(), 10 << 20);
        assert_eq!(parse_rate(" 1.5m ").unwrap(), 3 << 19);
        assert_eq!(parse_rate("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_rate("1G").unwrap(), 1 << 30);
        assert_eq!(parse_rate("4096B").unwrap(), 4096);
        assert_eq!(parse_rate("0").unwrap(), 0);
        for bad in ["", "fast", "10X", "-5", "1.2.3", ".5M", "5.M", "10 M bits"] {
            let e = parse_rate(bad).unwrap_err().to_string();
            assert!(e.contains("500K"), "{bad}: {e}");
        }
        assert!(parse_rate("100b").unwrap_err().to_string().contains("1K"));
        assert!(parse_rate("99999999999999999999").is_err());
        assert!(parse_rate("2000G").is_err());
    }

    #[test]
    fn rates_format_for_people() {
        assert_eq!(format_rate(500 * 1024), "500 KiB/s");
        assert_eq!(format_rate(3 << 19), "1.5 MiB/s");
        assert_eq!(format_rate(10 << 20), "10 MiB/s");
    }
}
