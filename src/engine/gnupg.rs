//! gpg's own home (`GNUPGHOME`, else `~/.gnupg`): where `gpg --import` leaves keys. The command line
//! looks there when no `--keyring`/`--secret-keyring` is given, as duplicity (which runs gpg) does, so
//! `gpg --import key.asc` followed by our command works unchanged.
//!
//! Public keys are read in process: `pubring.kbx` (gpg 2.1+'s keybox, parsed by [`keybox_blocks`]) or
//! `pubring.gpg` (gpg 1.x). Secret keys come from `secring.gpg` (gpg 1.x), else from gpg itself: gpg
//! 2.1+ keeps them in its agent's own format, so `gpg --export-secret-keys` hands them over, protected
//! by their passphrase, which gpg receives on a pipe (never in argv or an environment). That is the
//! only program this module runs, only for a key a run needs, and only when gpg is installed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::{Cert, KeyHandle};

use super::crypto::{Passphrase, SecretKeySource};
use super::keys::{self, KeyError};

/// gpg's home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GnupgHome {
    dir: PathBuf,
}

impl GnupgHome {
    /// `GNUPGHOME`, else `$HOME/.gnupg`; `None` when that directory does not exist.
    pub fn from_env() -> Option<GnupgHome> {
        let dir = match std::env::var_os("GNUPGHOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".gnupg"),
        };
        dir.is_dir().then_some(GnupgHome { dir })
    }

    pub fn at(dir: impl Into<PathBuf>) -> GnupgHome {
        GnupgHome { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// For messages: where keys were looked for.
    pub fn describe(&self) -> String {
        format!("gpg's keyring in {}", self.dir.display())
    }

    /// Every certificate of the public keyring (`pubring.kbx`, else `pubring.gpg`); none if neither
    /// exists.
    pub fn public_certs(&self) -> Result<Vec<Cert>, KeyError> {
        let kbx = self.dir.join("pubring.kbx");
        if kbx.is_file() {
            let load = |reason: String| KeyError::Load {
                path: kbx.display().to_string(),
                reason,
            };
            let data = std::fs::read(&kbx).map_err(|e| load(e.to_string()))?;
            let mut certs = Vec::new();
            for block in keybox_blocks(&data).map_err(|e| load(e.to_string()))? {
                // A keyblock gpg itself could not use (e.g. an algorithm sequoia lacks) is skipped,
                // as gpg skips it: the key asked for is then reported as not found.
                if let Ok(cert) = Cert::from_bytes(block) {
                    certs.push(cert);
                }
            }
            return Ok(certs);
        }
        let gpg1 = self.dir.join("pubring.gpg");
        if gpg1.is_file() && gpg1.metadata().is_ok_and(|m| m.len() > 0) {
            return keys::load_certs(&gpg1);
        }
        Ok(Vec::new())
    }

    /// The secret keys among `wanted` (key ids or fingerprints, hex; empty: every secret key), protected
    /// as gpg keeps them. From `secring.gpg` when gpg 1.x left one; otherwise exported by gpg with
    /// `passphrase` (which gpg's agent asks for before it hands a protected key over).
    pub fn secret_keys(
        &self,
        wanted: &[String],
        passphrase: Option<&Passphrase>,
    ) -> Result<Vec<Cert>, KeyError> {
        let secring = self.dir.join("secring.gpg");
        if secring.is_file() && secring.metadata().is_ok_and(|m| m.len() > 0) {
            let certs = keys::load_certs(&secring)?;
            let found: Vec<Cert> = certs
                .into_iter()
                .filter(|c| wanted.is_empty() || wanted.iter().any(|w| holds(c, w)))
                .collect();
            if !found.is_empty() {
                return Ok(found);
            }
        }
        self.export_secret_keys(wanted, passphrase)
    }

    /// `gpg --export-secret-keys` for `wanted`: the passphrase goes in on stdin (loopback pinentry), the
    /// keys come out on stdout; gpg gets a bare environment (PATH and HOME: nothing secret of ours).
    fn export_secret_keys(
        &self,
        wanted: &[String],
        passphrase: Option<&Passphrase>,
    ) -> Result<Vec<Cert>, KeyError> {
        let gpg_failed = |reason: String| KeyError::GpgExport {
            home: self.dir.display().to_string(),
            reason,
        };
        let mut cmd = Command::new("gpg");
        cmd.env_clear()
            .envs(std::env::vars_os().filter(|(k, _)| k == "PATH" || k == "HOME"))
            .arg("--homedir")
            .arg(&self.dir)
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase-fd",
                "0",
                "--export-secret-keys",
            ])
            .args(wanted.iter().map(|w| format!("0x{w}")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            gpg_failed(if e.kind() == std::io::ErrorKind::NotFound {
                "gpg is not installed, and gpg 2.1+ keeps secret keys where only it can read them: \
                 install gpg, or export the key (gpg --export-secret-keys KEY > key.asc) and pass \
                 --secret-keyring key.asc"
                    .into()
            } else {
                format!("cannot run gpg: {e}")
            })
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            // gpg reads one line; an unprotected key needs none, and an empty line is then harmless.
            let mut line = Vec::new();
            if let Some(p) = passphrase {
                p.password().map(|b| line.extend_from_slice(b));
            }
            line.push(b'\n');
            // A gpg that exits early (no such key) closes the pipe: its status says why.
            let _ = stdin.write_all(&line);
            line.iter_mut().for_each(|b| *b = 0);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| gpg_failed(format!("cannot run gpg: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("Bad passphrase") || stderr.contains("bad passphrase") {
            return Err(KeyError::GpgBadPassphrase {
                home: self.dir.display().to_string(),
                keys: wanted.join(", "),
            });
        }
        if stderr.contains("No passphrase given") || stderr.contains("no passphrase given") {
            return Err(KeyError::GpgNoPassphrase {
                home: self.dir.display().to_string(),
                keys: wanted.join(", "),
            });
        }
        let certs: Vec<Cert> = if out.stdout.is_empty() {
            Vec::new()
        } else {
            sequoia_openpgp::cert::CertParser::from_bytes(&out.stdout)
                .map_err(|e| gpg_failed(format!("gpg's output is not a key: {e}")))?
                .filter_map(Result::ok)
                .collect()
        };
        if certs.is_empty() && !out.status.success() {
            let last = stderr.lines().last().unwrap_or("").trim();
            return Err(gpg_failed(format!(
                "gpg --export-secret-keys failed: {last}"
            )));
        }
        Ok(certs)
    }
}

/// gpg's keyring as the decryptor's source of secret keys: asked for the recipients of the first
/// message the given keys do not open, unlocked with `passphrase` (duplicity's `PASSPHRASE`).
pub struct GnupgSecretKeys {
    pub home: GnupgHome,
    pub passphrase: Option<Passphrase>,
}

impl SecretKeySource for GnupgSecretKeys {
    fn secret_keys(&self, recipients: &[KeyHandle]) -> Result<Vec<Cert>, String> {
        let wanted = key_ids(recipients);
        let certs = self
            .home
            .secret_keys(&wanted, self.passphrase.as_ref())
            .map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err(format!(
                "the backup is encrypted to key {} and {} has no secret key for it: import it \
                 (gpg --import secret-key.asc) or pass --secret-keyring FILE",
                if wanted.is_empty() {
                    "(hidden recipient)".to_string()
                } else {
                    wanted.join(", ")
                },
                self.home.describe()
            ));
        }
        Ok(certs)
    }
}

/// True if `cert` has a (sub)key whose fingerprint or key id is `id` (hex).
fn holds(cert: &Cert, id: &str) -> bool {
    cert.keys()
        .any(|k| keys::id_matches(&k.key().fingerprint().to_hex(), id))
}

/// The key ids (hex) of `handles`, for [`GnupgHome::secret_keys`].
pub fn key_ids(handles: &[KeyHandle]) -> Vec<String> {
    handles.iter().map(|h| h.to_hex()).collect()
}

/// A keybox that is not one.
#[derive(Debug, thiserror::Error)]
#[error("not a keybox file or damaged at byte {offset}: {what}")]
pub struct KeyboxError {
    pub offset: usize,
    pub what: &'static str,
}

/// The OpenPGP keyblocks of a keybox (`pubring.kbx`). Hand-written: no maintained crate reads the
/// format, and it is small: a sequence of blobs, each `u32 length` (big-endian, counting itself),
/// `u8 type` (1 header, 2 OpenPGP, 3 X.509, 0 deleted), `u8 version`, `u16 flags`, and for OpenPGP
/// blobs `u32 offset` and `u32 length` of the keyblock inside the blob. Fuzzed (`fuzz/keybox`).
pub fn keybox_blocks(data: &[u8]) -> Result<Vec<&[u8]>, KeyboxError> {
    const OPENPGP: u8 = 2;
    let u32_at = |at: usize| -> Option<usize> {
        let b = data.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let mut blocks = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let bad = |what| KeyboxError { offset: pos, what };
        let len = u32_at(pos).ok_or_else(|| bad("truncated blob length"))?;
        if len < 8 {
            return Err(bad("blob shorter than its header"));
        }
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| bad("blob runs past the end of the file"))?;
        if pos == 0 && data.get(8..12) != Some(b"KBXf".as_slice()) {
            return Err(bad("no keybox header (KBXf)"));
        }
        if data[pos + 4] == OPENPGP {
            let (off, klen) = match (u32_at(pos + 8), u32_at(pos + 12)) {
                (Some(o), Some(l)) if len >= 16 => (o, l),
                _ => return Err(bad("OpenPGP blob too short")),
            };
            let start = off
                .checked_add(pos)
                .filter(|&s| s <= end)
                .ok_or_else(|| bad("keyblock offset outside its blob"))?;
            let stop = start
                .checked_add(klen)
                .filter(|&s| s <= end)
                .ok_or_else(|| bad("keyblock length outside its blob"))?;
            blocks.push(&data[start..stop]);
        }
        pos = end;
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        let len = 20 + payload.len();
        b.extend_from_slice(&(len as u32).to_be_bytes());
        b.extend_from_slice(&[kind, 1, 0, 0]);
        b.extend_from_slice(&20u32.to_be_bytes());
        b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(payload);
        b
    }

    fn header() -> Vec<u8> {
        let mut h = vec![0, 0, 0, 32, 1, 1, 0, 0];
        h.extend_from_slice(b"KBXf");
        h.resize(32, 0);
        h
    }

    #[test]
    fn keyblocks_of_openpgp_blobs_only() {
        let mut kbx = header();
        kbx.extend(blob(2, b"first"));
        kbx.extend(blob(3, b"x509"));
        kbx.extend(blob(0, b"deleted"));
        kbx.extend(blob(2, b"second"));
        assert_eq!(
            keybox_blocks(&kbx).unwrap(),
            vec![b"first".as_slice(), b"second".as_slice()]
        );
        assert!(keybox_blocks(&[]).unwrap().is_empty());
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let mut kbx = header();
        kbx.extend(blob(2, b"first"));
        assert!(keybox_blocks(&kbx[..kbx.len() - 1]).is_err());
        assert!(keybox_blocks(b"not a keybox at all, no").is_err());
        let mut bad_offset = header();
        let mut b = blob(2, b"x");
        b[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        bad_offset.extend(b);
        assert!(keybox_blocks(&bad_offset).is_err());
        for cut in 0..kbx.len() {
            let _ = keybox_blocks(&kbx[..cut]);
        }
    }
}
