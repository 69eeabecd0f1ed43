//! `--progress` and `--progress-rate` (issue 13): on a terminal, a live bar (indicatif) with the bytes
//! read, the rate and the time left, redrawn every `--progress-rate` seconds (duplicity's default 3);
//! off a terminal (a pipe, a log, cron) no bar but one line per volume, which a log keeps readably.
//! Backups count source bytes against the size of the source tree measured first; restores count
//! volumes. The charm's actions have their own progress lines (`action-log`), from the same callbacks.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::commands::backup::{ProgressFn, VolumeProgress};
use crate::engine::commands::restore::{RestoreProgress, RestoreProgressFn};

/// duplicity's default `--progress-rate`, in seconds.
pub const DEFAULT_RATE: u64 = 3;

/// A backup's or restore's progress display; the bar (if any) is finished or abandoned when dropped.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Source bytes read so far, updated by the engine as it goes (backups).
    read: Arc<AtomicU64>,
    /// The source's size measured before the backup (a backup's total; grows if the source does).
    total: Arc<AtomicU64>,
    started: Instant,
    ticker: Option<(Sender<()>, JoinHandle<()>)>,
}

/// One line of a volume stored, off a terminal: what was stored, how far the reading is, the rate and
/// the time left at that rate.
pub fn volume_line(p: &VolumeProgress, total: u64, elapsed: Duration) -> String {
    let total = total.max(p.source_bytes);
    let percent = (p.source_bytes * 100).checked_div(total).unwrap_or(100);
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        (p.source_bytes as f64 / secs) as u64
    } else {
        0
    };
    let eta = match (total - p.source_bytes, rate) {
        (0, _) => "0s".to_string(),
        (_, 0) => "unknown".to_string(),
        (left, r) => format!("{:#}", HumanDuration(Duration::from_secs(left.div_ceil(r)))),
    };
    format!(
        "Progress: volume {} stored ({}), {} stored so far; {} of {} read ({percent}%), {}/s, ETA {eta}",
        p.volume,
        HumanBytes(p.volume_bytes),
        HumanBytes(p.stored_bytes),
        HumanBytes(p.source_bytes),
        HumanBytes(total),
        HumanBytes(rate),
    )
}

/// One line of a volume restored, off a terminal.
pub fn restore_line(p: &RestoreProgress, elapsed: Duration) -> String {
    let percent = (p.done * 100).checked_div(p.volumes).unwrap_or(100);
    let eta = if p.done == 0 || p.done >= p.volumes {
        "0s".to_string()
    } else {
        let per = elapsed.as_secs_f64() / p.done as f64;
        let left = Duration::from_secs_f64(per * (p.volumes - p.done) as f64);
        format!("{:#}", HumanDuration(left))
    };
    format!(
        "Progress: volume {} of {} restored ({percent}%), {} written, ETA {eta}",
        p.done,
        p.volumes,
        HumanBytes(p.bytes)
    )
}

/// A line goes to stderr and the machine-readable log (duplicity's progress code, 2), as a notice.
fn report_line(line: &str) {
    crate::logging::record(crate::logging::NOTICE, 2, line, Some(line), false);
}

impl Progress {
    /// Progress of a backup of `source`, drawn every `rate` seconds on a terminal.
    pub fn backup(
        source: &Path,
        selection: &crate::engine::selection::Selection,
        rate: Duration,
    ) -> Progress {
        let total = Arc::new(AtomicU64::new(
            crate::engine::commands::backup::source_size(source, selection),
        ));
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total.load(Ordering::Relaxed)),
                ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{bytes}/{total_bytes} {elapsed_precise} [{binary_bytes_per_sec}] [{bar:30}] {percent}% ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        let mut p = Progress {
            bar,
            read: Arc::new(AtomicU64::new(0)),
            total,
            started: Instant::now(),
            ticker: None,
        };
        p.start_ticker(rate);
        p
    }

    /// Progress of a restore (volumes applied), drawn on a terminal as each volume is done.
    pub fn restore() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{pos}/{len} volumes {elapsed_precise} [{bar:30}] {percent}% ETA {eta} {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            read: Arc::new(AtomicU64::new(0)),
            total: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
            ticker: None,
        }
    }

    /// Every `rate`, the bar shows the bytes read so far (the engine reports volumes only when stored).
    fn start_ticker(&mut self, rate: Duration) {
        let Some(bar) = self.bar.clone() else {
            return;
        };
        let (read, total) = (self.read.clone(), self.total.clone());
        let (tx, rx) = channel::<()>();
        let h = std::thread::spawn(move || loop {
            match rx.recv_timeout(rate) {
                Err(RecvTimeoutError::Timeout) => {
                    let done = read.load(Ordering::Relaxed);
                    bar.set_length(total.load(Ordering::Relaxed).max(done));
                    bar.set_position(done);
                }
                _ => return,
            }
        });
        self.ticker = Some((tx, h));
    }

    /// The counter the engine keeps the source bytes read in (`BackupOptions::source_bytes_read`).
    pub fn read_counter(&self) -> Arc<AtomicU64> {
        self.read.clone()
    }

    /// The engine's callback for each volume stored: a line off a terminal (the bar shows the rest).
    pub fn volume_callback(&self) -> ProgressFn {
        let (bar, total, started) = (self.bar.is_some(), self.total.clone(), self.started);
        Arc::new(move |p: &VolumeProgress| {
            if !bar {
                report_line(&volume_line(
                    p,
                    total.load(Ordering::Relaxed),
                    started.elapsed(),
                ));
            }
        })
    }

    /// The engine's callback for each volume restored: the bar, or a line off a terminal.
    pub fn restore_callback(&self) -> RestoreProgressFn {
        let (bar, started) = (self.bar.clone(), self.started);
        Arc::new(move |p: &RestoreProgress| match &bar {
            Some(bar) => {
                bar.set_length(p.volumes);
                bar.set_message(format!("{} written", HumanBytes(p.bytes)));
                bar.set_position(p.done);
            }
            None => report_line(&restore_line(p, started.elapsed())),
        })
    }

    /// The run ended well: the bar shows everything done (`read` bytes of a backup) and stays.
    pub fn finish(mut self, read: Option<u64>) {
        self.stop_ticker();
        if let Some(bar) = self.bar.take() {
            if let Some(n) = read {
                bar.set_length(n);
                bar.set_position(n);
            }
            bar.finish();
        }
    }

    fn stop_ticker(&mut self) {
        if let Some((tx, h)) = self.ticker.take() {
            drop(tx);
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    /// A failed run leaves the bar as it last was, so the error below it reads after it.
    fn drop(&mut self) {
        self.stop_ticker();
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_lines_show_amounts_rate_and_eta() {
        let p = VolumeProgress {
            volume: 2,
            volume_bytes: 1024 * 1024,
            stored_bytes: 2 * 1024 * 1024,
            source_bytes: 4 * 1024 * 1024,
        };
        let line = volume_line(&p, 8 * 1024 * 1024, Duration::from_secs(2));
        assert_eq!(
            line,
            "Progress: volume 2 stored (1.00 MiB), 2.00 MiB stored so far; 4.00 MiB of 8.00 MiB read (50%), 2.00 MiB/s, ETA 2s"
        );
        // A source that grew past its measured size: never above 100%.
        let line = volume_line(&p, 1, Duration::from_secs(0));
        assert!(
            line.contains("(100%)") && line.ends_with("ETA 0s"),
            "{line}"
        );
        let r = restore_line(
            &RestoreProgress {
                done: 1,
                volumes: 4,
                bytes: 3 * 1024,
            },
            Duration::from_secs(5),
        );
        assert_eq!(
            r,
            "Progress: volume 1 of 4 restored (25%), 3.00 KiB written, ETA 15s"
        );
    }
}
