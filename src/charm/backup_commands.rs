//! The operator's commands around each backup (`pre_backup_command`, `post_backup_command`), for the
//! backup action and the scheduled backup alike.
//!
//! Each runs as `/bin/sh -c COMMAND` in the backed-up directory, in a process group of its own (so a
//! timeout kills whatever it started), with stdin closed and a fixed environment: `PATH`, `HOME`, `LANG`
//! and `DUPLICITY_CHARM_*` facts, nothing inherited, so no credential of the charm (nor Juju's agent
//! socket and context) reaches it, and it sees the same environment in an action as from the scheduler.
//! Its output goes, line by line, to the run's log (`action-log` and `juju-log` in an action, the
//! journal from the scheduler). A non-zero exit, a signal or the timeout (`backup_command_timeout`)
//! fails the run, naming the command and its exit status.
//!
//! `pre` failing skips the backup. `post` runs after every attempt, whatever happened before it (as
//! borgmatic's and resticprofile's "finally" hooks do), so a service paused by `pre` is resumed even when
//! the backup failed; `DUPLICITY_CHARM_BACKUP_RESULT` (`success` or `failure`) tells it how it went.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::engine::commands::backup::ProgressFn;

use super::jobs::{Outcome, Runtime};

pub const PRE: &str = "pre_backup_command";
pub const POST: &str = "post_backup_command";

/// The `PATH` commands get, from the scheduler and from an action alike.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Output lines passed on as they come; after these, only the last [`TAIL_LINES`] are shown.
const HEAD_LINES: usize = 100;
const TAIL_LINES: usize = 100;
/// A longer output line is cut (a log line, not a data channel).
const MAX_LINE: usize = 1000;
/// After the timeout's SIGTERM, how long the command has to exit before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// After the shell exits, how long to wait for the rest of its output (a background process it left
/// behind may hold the pipes open; it is not waited for).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Whether a log line comes from (or is about) one of the commands: those also go to `juju-log`.
pub fn is_command_line(line: &str) -> bool {
    line.starts_with(PRE) || line.starts_with(POST)
}

/// How a command failed.
#[derive(Debug)]
pub enum Failure {
    Exit(i32),
    Signal(i32),
    Timeout(u32),
    Spawn(std::io::Error),
}

/// A command that failed; the message names it and how.
#[derive(Debug, thiserror::Error)]
pub struct CommandError {
    pub option: &'static str,
    pub failure: Failure,
    /// For `post`: the backup before it was stored (`full` or `incremental`).
    pub stored: Option<String>,
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let option = self.option;
        match &self.failure {
            Failure::Exit(code) => write!(f, "{option} failed with exit status {code}")?,
            Failure::Signal(sig) => write!(f, "{option} was killed by signal {sig}")?,
            Failure::Timeout(secs) => write!(
                f,
                "{option} timed out after {secs} s (backup_command_timeout) and was killed"
            )?,
            Failure::Spawn(e) => write!(f, "{option} could not be started: {e}")?,
        }
        if let Some(kind) = &self.stored {
            write!(f, " (the {kind} backup itself was stored)")?;
        }
        Ok(())
    }
}

enum Event {
    Line(&'static str, String),
    Eof,
}

/// Reads one of the child's pipes line by line into `tx`.
fn forward(
    pipe: impl std::io::Read + Send + 'static,
    stream: &'static str,
    tx: mpsc::Sender<Event>,
) {
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let mut line = text.trim_end_matches(['\n', '\r']).to_string();
                    if line.len() > MAX_LINE {
                        let mut end = MAX_LINE;
                        while !line.is_char_boundary(end) {
                            end -= 1;
                        }
                        line.truncate(end);
                        line.push_str(" [cut]");
                    }
                    if tx.send(Event::Line(stream, line)).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Event::Eof);
    });
}

/// The output shown: the first lines as they come, then only the last ones.
struct OutputLog<'a> {
    option: &'static str,
    log: &'a mut dyn FnMut(String),
    shown: usize,
    tail: VecDeque<String>,
    dropped: usize,
}

impl OutputLog<'_> {
    fn line(&mut self, stream: &str, line: String) {
        let line = match stream {
            "stderr" => format!("{} (stderr): {line}", self.option),
            _ => format!("{}: {line}", self.option),
        };
        if self.shown < HEAD_LINES {
            self.shown += 1;
            (self.log)(line);
        } else {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
                self.dropped += 1;
            }
            self.tail.push_back(line);
        }
    }

    fn finish(&mut self) {
        if self.dropped > 0 {
            (self.log)(format!(
                "{}: ... {} lines of output not shown ...",
                self.option, self.dropped
            ));
        }
        while let Some(l) = self.tail.pop_front() {
            (self.log)(l);
        }
    }
}

fn kill_group(pid: rustix::process::Pid, sig: rustix::process::Signal) {
    // ESRCH (all gone) is what we want anyway.
    let _ = rustix::process::kill_process_group(pid, sig);
}

/// Runs `command` with `/bin/sh -c` in `cwd`, its environment only the fixed one plus `env`, its
/// output to `log`, for at most `timeout_secs`.
pub fn run(
    option: &'static str,
    command: &str,
    timeout_secs: u32,
    cwd: &Path,
    env: &[(&str, String)],
    log: &mut dyn FnMut(String),
) -> Result<(), CommandError> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let fail = |failure| CommandError {
        option,
        failure,
        stored: None,
    };
    let home = if rustix::process::getuid().is_root() {
        "/root".to_string()
    } else {
        std::env::var("HOME").unwrap_or_else(|_| "/".into())
    };
    log(format!("{option}: started (timeout {timeout_secs} s)"));
    let started = Instant::now();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            let e = fail(Failure::Spawn(e));
            log(format!("{e}"));
            e
        })?;
    let pid = rustix::process::Pid::from_child(&child);
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        forward(out, "stdout", tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        forward(err, "stderr", tx.clone());
    }
    drop(tx);
    let mut output = OutputLog {
        option,
        log,
        shown: 0,
        tail: VecDeque::new(),
        dropped: 0,
    };
    let deadline = started + Duration::from_secs(timeout_secs.into());
    let mut eofs = 0;
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut terminated: Option<Instant> = None;
    let mut killed = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Event::Line(stream, line)) => output.line(stream, line),
            Ok(Event::Eof) => eofs += 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => eofs = 2,
        }
        let now = Instant::now();
        if exited.is_none() {
            match child.try_wait() {
                Ok(Some(status)) => exited = Some((status, now)),
                Ok(None) => {}
                Err(e) => {
                    // Cannot happen for our own child; stop it rather than wait blind.
                    output.line("stderr", format!("cannot wait for the command: {e}"));
                    kill_group(pid, rustix::process::Signal::KILL);
                    let status = child.wait().map_err(|e| fail(Failure::Spawn(e)))?;
                    exited = Some((status, now));
                }
            }
        }
        match exited {
            Some((_, at)) if eofs >= 2 || now >= at + OUTPUT_GRACE => break,
            Some(_) => {}
            None if now >= deadline && terminated.is_none() => {
                kill_group(pid, rustix::process::Signal::TERM);
                terminated = Some(now);
            }
            None if terminated.is_some_and(|t| now >= t + TERM_GRACE) && !killed => {
                kill_group(pid, rustix::process::Signal::KILL);
                killed = true;
            }
            None => {}
        }
    }
    if terminated.is_some() {
        // Whatever of the group outlived the shell goes too.
        kill_group(pid, rustix::process::Signal::KILL);
    }
    output.finish();
    let (status, _) = exited.expect("the loop ends only after the exit");
    let secs = started.elapsed().as_secs();
    let result = if terminated.is_some() {
        Err(fail(Failure::Timeout(timeout_secs)))
    } else if let Some(code) = status.code() {
        match code {
            0 => Ok(()),
            c => Err(fail(Failure::Exit(c))),
        }
    } else {
        Err(fail(Failure::Signal(status.signal().unwrap_or(0))))
    };
    match &result {
        Ok(()) => log(format!("{option}: done in {secs} s")),
        Err(e) => log(format!("{e} after {secs} s")),
    }
    result
}

impl Runtime {
    /// A backup with the operator's commands around it: `pre_backup_command` (its failure skips the
    /// backup), the backup, then `post_backup_command` whatever happened. The first failure is the
    /// run's error; a later `post` failure is put in front of it.
    pub fn backup_with_commands(
        &self,
        force_full: bool,
        progress: Option<ProgressFn>,
        log: &mut dyn FnMut(String),
    ) -> Result<Outcome> {
        let commands = &self.settings.backup_commands;
        let source = self.source();
        let mut env = vec![
            ("DUPLICITY_CHARM_UNIT", self.settings.unit.clone()),
            ("DUPLICITY_CHARM_SOURCE", source.display().to_string()),
        ];
        let timeout = commands.timeout_seconds;
        let pre = match &commands.pre {
            Some(c) => run(PRE, c, timeout, &source, &env, log),
            None => Ok(()),
        };
        let backup = match pre {
            Ok(()) => self.backup(force_full, progress),
            Err(e) => Err(e.into()),
        };
        let Some(post) = &commands.post else {
            return backup;
        };
        let result = if backup.is_ok() { "success" } else { "failure" };
        env.push(("DUPLICITY_CHARM_BACKUP_RESULT", result.into()));
        match (backup, run(POST, post, timeout, &source, &env, log)) {
            (backup, Ok(())) => backup,
            (Ok(outcome), Err(mut e)) => {
                e.stored = outcome.detail.clone();
                Err(e.into())
            }
            (Err(before), Err(e)) => Err(before.context(format!("{e}, and before that"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_sh(command: &str, timeout: u32) -> (Result<(), CommandError>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = Vec::new();
        let r = run(
            PRE,
            command,
            timeout,
            dir.path(),
            &[("DUPLICITY_CHARM_UNIT", "d/0".into())],
            &mut |l| lines.push(l),
        );
        (r, lines)
    }

    #[test]
    fn output_of_both_streams_is_logged_and_the_exit_status_named() {
        let (r, lines) = run_sh("echo out; echo err >&2; exit 3", 60);
        let e = r.unwrap_err();
        assert_eq!(
            e.to_string(),
            "pre_backup_command failed with exit status 3"
        );
        assert!(
            lines.contains(&"pre_backup_command: out".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"pre_backup_command (stderr): err".to_string()),
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| is_command_line(l)), "{lines:?}");
        let (r, lines) = run_sh("true", 60);
        assert!(r.is_ok());
        assert!(lines
            .last()
            .unwrap()
            .starts_with("pre_backup_command: done in "));
    }

    #[test]
    fn the_environment_is_fixed_and_inherits_nothing() {
        // The test process's own environment (HOME, USER, CARGO_*, ...) must not reach the command.
        let (r, lines) = run_sh("env | sort", 60);
        r.unwrap();
        let vars: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("pre_backup_command: "))
            .filter(|l| l.contains('='))
            .map(|l| l.split('=').next().unwrap())
            .collect();
        for v in &vars {
            assert!(
                ["PATH", "HOME", "LANG", "PWD", "SHLVL", "_", "OLDPWD"].contains(v)
                    || v.starts_with("DUPLICITY_CHARM_"),
                "unexpected variable {v} in {lines:?}"
            );
        }
        assert!(vars.contains(&"DUPLICITY_CHARM_UNIT"), "{lines:?}");
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // A background child of the shell would outlive a kill of the shell alone.
        let cmd = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let (r, _) = run_sh(&cmd, 1);
        let e = r.unwrap_err();
        assert_eq!(
            e.to_string(),
            "pre_backup_command timed out after 1 s (backup_command_timeout) and was killed"
        );
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        // Gone, or a zombie until init reaps it.
        let end = Instant::now() + Duration::from_secs(10);
        let gone = || {
            std::fs::read_to_string(&stat).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        while !gone() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            gone(),
            "the command's background process survived the timeout"
        );
    }

    #[test]
    fn long_output_shows_its_head_and_tail() {
        let (r, lines) = run_sh("seq 1 1000", 60);
        r.unwrap();
        assert!(lines.contains(&"pre_backup_command: 100".to_string()));
        assert!(!lines.contains(&"pre_backup_command: 101".to_string()));
        assert!(lines
            .contains(&"pre_backup_command: ... 800 lines of output not shown ...".to_string()));
        assert!(lines.contains(&"pre_backup_command: 1000".to_string()));
    }
}
