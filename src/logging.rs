//! Messages about a run, at duplicity's verbosity levels (0 error, 2 warning, 3 notice, 5 info, 9 debug;
//! `-v`/`--verbosity`), shown on stderr and copied, when asked, in duplicity's machine-readable form to
//! a log file (`--log-file`) or an inherited file descriptor (`--log-fd`): `LEVEL CODE`, then each line
//! of the message after `. `, then an empty line — what tools that parse duplicity's logs read.
//!
//! The engine and the backends report through here rather than printing, so the faces decide where
//! messages go. Until a face configures it, warnings and errors go to stderr as `duplicity-charm: …`.

use std::io::Write;
use std::sync::Mutex;

pub const ERROR: u8 = 0;
pub const WARNING: u8 = 2;
pub const NOTICE: u8 = 3;
pub const INFO: u8 = 5;
pub const DEBUG: u8 = 9;

/// duplicity's name of a level (`LevelName` in its log.py): what the log file's records start with.
pub fn level_name(level: u8) -> &'static str {
    match level {
        9.. => "DEBUG",
        5..=8 => "INFO",
        3..=4 => "NOTICE",
        1..=2 => "WARNING",
        0 => "ERROR",
    }
}

/// `-v` as duplicity takes it: 0–9, or e/w/n/i/d, or error/warning/notice/info/debug.
pub fn parse_verbosity(s: &str) -> Result<u8, String> {
    let l = s.to_ascii_lowercase();
    let level = match l.as_str() {
        "e" | "error" => ERROR,
        "w" | "warning" => WARNING,
        "n" | "notice" => NOTICE,
        "i" | "info" => INFO,
        "d" | "debug" => DEBUG,
        _ => match l.parse::<u8>() {
            Ok(n) if n <= 9 => n,
            _ => {
                return Err(format!(
                    "{s:?} is not a verbosity: give 0-9, or e, w, n, i, d (error, warning, notice, info, debug)"
                ))
            }
        },
    };
    Ok(level)
}

struct Logger {
    verbosity: u8,
    /// Prefix stderr lines with the time and level, as duplicity's `--log-timestamp`.
    timestamp: bool,
    /// The `--log-file` / `--log-fd` copies, in machine-readable form.
    machine: Vec<Box<dyn Write + Send>>,
}

static LOGGER: Mutex<Logger> = Mutex::new(Logger {
    verbosity: NOTICE,
    timestamp: false,
    machine: Vec::new(),
});

/// Sets the verbosity, the timestamps on stderr and the machine-readable copies (replacing any).
pub fn configure(verbosity: u8, timestamp: bool, machine: Vec<Box<dyn Write + Send>>) {
    let mut l = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    l.verbosity = verbosity;
    l.timestamp = timestamp;
    l.machine = machine;
}

/// The verbosity in force.
pub fn verbosity() -> u8 {
    LOGGER.lock().unwrap_or_else(|e| e.into_inner()).verbosity
}

/// One record in duplicity's machine-readable form (its log.py `MachineFormatter`, plus the line end
/// its handler adds).
pub fn machine_record(level: u8, code: u32, msg: &str) -> String {
    let mut s = format!("{} {code}", level_name(level));
    if !msg.is_empty() {
        s.push_str(&format!("\n{msg}").replace('\n', "\n. "));
    }
    s.push_str("\n\n");
    s
}

/// Writes `msg` at `level` with duplicity's message `code` (1: generic; errors carry the exit code):
/// on stderr (`human`, when given) and in the machine-readable copies, when the verbosity shows it.
/// `always` shows it whatever the verbosity (duplicity's `force_print`, used for statistics).
pub fn record(level: u8, code: u32, msg: &str, human: Option<&str>, always: bool) {
    let mut l = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    if level > l.verbosity && !always {
        return;
    }
    if let Some(text) = human {
        let mut err = std::io::stderr().lock();
        let _ = if l.timestamp {
            let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f");
            writeln!(err, "{now} {:<6} {text}", level_name(level))
        } else {
            writeln!(err, "{text}")
        };
    }
    let rec = machine_record(level, code, msg);
    for w in l.machine.iter_mut() {
        let _ = w.write_all(rec.as_bytes()).and_then(|()| w.flush());
    }
}

pub fn error(code: u32, msg: &str) {
    record(
        ERROR,
        code,
        msg,
        Some(&format!("duplicity-charm: error: {msg}")),
        false,
    );
}

pub fn warn(msg: &str) {
    record(
        WARNING,
        1,
        msg,
        Some(&format!("duplicity-charm: warning: {msg}")),
        false,
    );
}

pub fn notice(msg: &str) {
    record(
        NOTICE,
        1,
        msg,
        Some(&format!("duplicity-charm: note: {msg}")),
        false,
    );
}

pub fn info(msg: &str) {
    record(
        INFO,
        1,
        msg,
        Some(&format!("duplicity-charm: {msg}")),
        false,
    );
}

pub fn debug(msg: &str) {
    record(
        DEBUG,
        1,
        msg,
        Some(&format!("duplicity-charm: {msg}")),
        false,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_as_duplicity_takes_it() {
        assert_eq!(parse_verbosity("e"), Ok(0));
        assert_eq!(parse_verbosity("Warning"), Ok(2));
        assert_eq!(parse_verbosity("n"), Ok(3));
        assert_eq!(parse_verbosity("info"), Ok(5));
        assert_eq!(parse_verbosity("d"), Ok(9));
        assert_eq!(parse_verbosity("4"), Ok(4));
        assert!(parse_verbosity("10").unwrap_err().contains("0-9"));
        assert!(parse_verbosity("loud").is_err());
        assert_eq!(level_name(4), "NOTICE");
        assert_eq!(level_name(1), "WARNING");
    }

    #[test]
    fn machine_records_as_duplicity_writes_them() {
        assert_eq!(
            machine_record(WARNING, 1, "a\nb"),
            "WARNING 1\n. a\n. b\n\n"
        );
        assert_eq!(machine_record(NOTICE, 1, "x\n"), "NOTICE 1\n. x\n. \n\n");
        assert_eq!(machine_record(ERROR, 23, ""), "ERROR 23\n\n");
    }
}
