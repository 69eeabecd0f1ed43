//! Checks of single option values (SSH keys, known_hosts lines, OpenPGP keys, schedules, retention), each
//! returning the parsed value or a reason an operator can act on. No I/O.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::charm::schedule::{keywords, Schedule};

/// `private_ssh_key`: base64 of a private key file. Returns the decoded key text, ending in a newline
/// (OpenSSH refuses key files without one).
pub fn ssh_private_key(b64: &str) -> Result<String, String> {
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = STANDARD.decode(compact.as_bytes()).map_err(|_| {
        "is not valid base64: set it to the output of `base64 -w0 <private key file>`".to_string()
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        "does not decode to a private key file (the decoded bytes are not text): base64-encode the private key file"
            .to_string()
    })?;
    private_key_text(
        &text,
        "does not decode to a private key",
        "base64-encode the private key file",
    )
}

/// `private_ssh_key_secret`'s `private-key`: the private key file's text itself. Returns it as
/// [`ssh_private_key`] does.
pub fn ssh_private_key_text(text: &str) -> Result<String, String> {
    private_key_text(
        text,
        "is not a private key",
        "store the private key file under private-key (`juju update-secret <id> private-key#file=<private key file>`)",
    )
}

/// Checks a private key file's text; `not_key` and `fix` word the messages for where it came from.
pub fn private_key_text(text: &str, not_key: &str, fix: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let first = trimmed.lines().next().unwrap_or("");
    if trimmed.starts_with("ssh-") || trimmed.starts_with("ecdsa-") || first.contains("PUBLIC KEY")
    {
        return Err(format!("is a public key: {fix}, not the .pub"));
    }
    if !(first.starts_with("-----BEGIN ")
        && first.ends_with("PRIVATE KEY-----")
        && trimmed.contains("-----END "))
    {
        return Err(format!(
            "{not_key} (no \"-----BEGIN ... PRIVATE KEY-----\" line): {fix}"
        ));
    }
    if first.contains("ENCRYPTED")
        || trimmed.contains("Proc-Type: 4,ENCRYPTED")
        || openssh_key_is_encrypted(trimmed)
    {
        return Err("is protected by a passphrase, which unattended backups cannot type: remove it (`ssh-keygen -p -N ''`) and set the key again".into());
    }
    let mut key = trimmed.to_string();
    key.push('\n');
    Ok(key)
}

/// An OpenSSH-format key names its cipher right after the magic; anything but "none" needs a passphrase.
fn openssh_key_is_encrypted(pem: &str) -> bool {
    if !pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return false;
    }
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let Ok(blob) = STANDARD.decode(body) else {
        return false;
    };
    let magic = b"openssh-key-v1\0";
    match blob
        .strip_prefix(magic.as_slice())
        .and_then(read_ssh_string)
    {
        Some((cipher, _)) => cipher != b"none",
        None => false,
    }
}

/// One SSH wire-format string (u32 big-endian length, then the bytes) and what follows it.
fn read_ssh_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let rest = &b[4..];
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// `known_host_key`: exactly one known_hosts line, `[@marker] host[,ip...] keytype base64key [comment]`,
/// whose key blob names the same key type. Returns the line, trimmed.
pub fn known_hosts_line(line: &str) -> Result<String, String> {
    const WHAT: &str = "is not a known_hosts line: set it to \"host[,ip] keytype base64key\", e.g. a line of `ssh-keyscan -t ed25519 HOST`";
    let line = line.trim();
    if line.is_empty() || line.contains('\n') || line.contains('\r') {
        return Err(format!("{WHAT} (exactly one line)"));
    }
    let mut fields = line.split_whitespace().peekable();
    if fields.peek().is_some_and(|f| f.starts_with('@')) {
        let marker = fields.next().unwrap_or_default();
        if marker != "@cert-authority" && marker != "@revoked" {
            return Err(WHAT.into());
        }
    }
    let (Some(hosts), Some(keytype), Some(key)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(WHAT.into());
    };
    if hosts.starts_with('#') || !keytype.contains('-') {
        return Err(WHAT.into());
    }
    let blob = STANDARD.decode(key).map_err(|_| WHAT.to_string())?;
    match read_ssh_string(&blob) {
        Some((t, _)) if t == keytype.as_bytes() => Ok(line.to_string()),
        _ => Err(WHAT.into()),
    }
}

/// A checked OpenPGP public key: the armored text and its fingerprint (for logs; not secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub armored: String,
    pub fingerprint: String,
}

/// `gpg_public_key`: an ASCII-armored OpenPGP public key (certificate) with a usable encryption key.
pub fn gpg_public_key(text: &str) -> Result<PublicKey, String> {
    use sequoia_openpgp::parse::Parse;
    use sequoia_openpgp::policy::StandardPolicy;
    use sequoia_openpgp::Cert;

    let text = text.trim();
    let hex: String = text
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if matches!(hex.len(), 8 | 16 | 40 | 64) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("is a key ID, but the key itself is needed: set it to the output of `gpg --armor --export <key ID>`".into());
    }
    if text.contains("PRIVATE KEY BLOCK") {
        return Err(
            "is a private key: set it to the public key only (`gpg --armor --export <key ID>`)"
                .into(),
        );
    }
    const NOT_KEY: &str = "is not an ASCII-armored OpenPGP public key: set it to the output of `gpg --armor --export <key ID>`";
    if !text.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
        return Err(NOT_KEY.into());
    }
    let cert = Cert::from_bytes(text.as_bytes()).map_err(|_| NOT_KEY.to_string())?;
    if cert.is_tsk() {
        return Err("contains secret key material: set it to the public key only (`gpg --armor --export <key ID>`)".into());
    }
    let policy = StandardPolicy::new();
    let usable = cert
        .keys()
        .with_policy(&policy, None)
        .supported()
        .alive()
        .revoked(false)
        .for_storage_encryption()
        .next()
        .is_some();
    if !usable {
        return Err("has no valid encryption key (expired, revoked or signing-only): export a key with an encryption subkey".into());
    }
    Ok(PublicKey {
        armored: format!("{text}\n"),
        fingerprint: cert.fingerprint().to_hex(),
    })
}

/// The restore action's `secret-key`: an armored OpenPGP private key (with an encryption subkey) and
/// the passphrase that unlocks it (empty when it is not protected). Returns the fingerprint. The key
/// material itself is never part of an error.
pub fn gpg_secret_key(armored: &str, passphrase: &str) -> Result<String, String> {
    use sequoia_openpgp::crypto::Password;
    use sequoia_openpgp::parse::Parse;
    use sequoia_openpgp::policy::StandardPolicy;
    use sequoia_openpgp::Cert;

    const HOW: &str =
        "store the output of `gpg --armor --export-secret-keys <key ID>` under the key \"key\"";
    if !armored
        .trim_start()
        .starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----")
    {
        return Err(format!(
            "is not an ASCII-armored OpenPGP private key: {HOW}"
        ));
    }
    let cert = Cert::from_bytes(armored.as_bytes())
        .map_err(|_| format!("cannot be read as an OpenPGP key: {HOW}"))?;
    let policy = StandardPolicy::new();
    let Some(ka) = cert
        .keys()
        .with_policy(&policy, None)
        .supported()
        .revoked(false)
        .for_storage_encryption()
        .secret()
        .next()
    else {
        return Err(format!("has no secret encryption key: {HOW}"));
    };
    let key = ka.key().clone();
    if !key.has_unencrypted_secret() {
        key.decrypt_secret(&Password::from(passphrase))
            .map_err(|_| "cannot be unlocked with its \"passphrase\": store the key's passphrase under the key \"passphrase\" in the same secret".to_string())?;
    }
    Ok(cert.fingerprint().to_hex())
}

/// When backups run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupFrequency {
    Manual,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    /// A 5-field cron expression, as given.
    Cron(String),
}

impl BackupFrequency {
    /// The 5-field cron expression of a scheduled frequency (the keywords as cron's `@hourly`... mean them).
    pub fn cron(&self) -> Option<String> {
        Some(match self {
            BackupFrequency::Manual => return None,
            BackupFrequency::Hourly => keywords::HOURLY.into(),
            BackupFrequency::Daily => keywords::DAILY.into(),
            BackupFrequency::Weekly => keywords::WEEKLY.into(),
            BackupFrequency::Monthly => keywords::MONTHLY.into(),
            BackupFrequency::Cron(c) => c.clone(),
        })
    }
}

/// `backup_frequency`: hourly|daily|weekly|monthly|manual (any case) or a 5-field cron expression.
pub fn backup_frequency(s: &str) -> Result<BackupFrequency, String> {
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "manual" => BackupFrequency::Manual,
        "hourly" => BackupFrequency::Hourly,
        "daily" => BackupFrequency::Daily,
        "weekly" => BackupFrequency::Weekly,
        "monthly" => BackupFrequency::Monthly,
        _ => BackupFrequency::Cron(cron5(s).map_err(|why| {
            format!(
                "use hourly, daily, weekly, monthly, manual or a 5-field cron expression ({why})"
            )
        })?),
    })
}

/// How long backups are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Manual,
    Days(u32),
    Hours(u32),
}

impl Retention {
    /// The duplicity time interval for `remove-older-than` (`30D`, `36h`), as the Python charm passed it.
    pub fn interval(self) -> Option<String> {
        match self {
            Retention::Manual => None,
            Retention::Days(n) => Some(format!("{n}D")),
            Retention::Hours(n) => Some(format!("{n}h")),
        }
    }
}

/// `retention_period`: manual, `<n>d` or `<n>h` with n ≥ 1.
pub fn retention_period(s: &str) -> Result<Retention, String> {
    const HOW: &str = "use manual, <n>d or <n>h with n at least 1 (e.g. 30d or 36h)";
    if s == "manual" {
        return Ok(Retention::Manual);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u32 =
        (!num.is_empty() && !num.starts_with('0') && num.bytes().all(|b| b.is_ascii_digit()))
            .then(|| num.parse().ok())
            .flatten()
            .ok_or_else(|| HOW.to_string())?;
    match unit {
        "d" => Ok(Retention::Days(n)),
        "h" => Ok(Retention::Hours(n)),
        _ => Err(HOW.into()),
    }
}

/// `deletion_frequency`: hourly (minute 40), daily (23:00) or a 5-field cron expression — the Python
/// charm's meaning. Returns the cron expression.
pub fn deletion_frequency(s: &str) -> Result<String, String> {
    match s.trim() {
        "hourly" => Ok(keywords::DELETION_HOURLY.into()),
        "daily" => Ok(keywords::DELETION_DAILY.into()),
        other => cron5(other)
            .map_err(|why| format!("use hourly, daily or a 5-field cron expression ({why})")),
    }
}

/// A standard 5-field cron expression, checked by the engine's scheduler code (so the charm accepts
/// exactly what the scheduler can run). Returns it with whitespace normalised.
pub fn cron5(s: &str) -> Result<String, String> {
    Schedule::parse(s)
        .map(|c| c.expression().to_string())
        .map_err(|e| e.to_string())
}

/// `s3_endpoint_url`: `http(s)://host[:port]`, nothing else (credentials have their own options).
pub fn s3_endpoint_url(s: &str) -> Result<(), String> {
    let shown = crate::backend::url::redact(s);
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return Err(format!(
            "\"{shown}\" is not an endpoint URL: use https://host[:port] (or http:// for a store without TLS)"
        ));
    };
    let hostport = rest.trim_end_matches('/');
    if hostport.contains('@') {
        return Err(
            "holds credentials: remove them and set aws_access_key_id and aws_secret_access_key"
                .into(),
        );
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (hostport, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !host_ok || port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(format!(
            "\"{shown}\" is not an endpoint URL: use https://host[:port], without a path"
        ));
    }
    Ok(())
}

/// `s3_region_name`: lowercase letters, digits and dashes, as AWS and S3-compatible stores name them.
pub fn s3_region_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_endpoints_and_regions() {
        assert!(s3_endpoint_url("https://s3.example.com").is_ok());
        assert!(s3_endpoint_url("http://127.0.0.1:9000/").is_ok());
        assert!(s3_endpoint_url("s3.example.com")
            .unwrap_err()
            .contains("https://host"));
        assert!(s3_endpoint_url("https://h/bucket").is_err());
        assert!(s3_endpoint_url("https://h:port").is_err());
        let e = s3_endpoint_url("https://key:s3cret@h").unwrap_err();
        assert!(e.contains("aws_access_key_id") && !e.contains("s3cret"));
        assert!(s3_region_name("eu-west-2") && !s3_region_name("EU West") && !s3_region_name(""));
    }

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    /// A known_hosts blob: the SSH string of the key type, then some key bytes.
    fn blob(keytype: &str) -> String {
        let mut b = (keytype.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(keytype.as_bytes());
        b.extend_from_slice(&[0, 0, 0, 32]);
        b.extend_from_slice(&[7u8; 32]);
        STANDARD.encode(b)
    }

    #[test]
    fn ssh_private_keys_decoded_checked_and_newline_terminated() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----";
        assert_eq!(ssh_private_key(&b64(pem)).unwrap(), format!("{pem}\n"));
        // Line-wrapped base64 (`base64` without -w0) is accepted too.
        let wrapped = b64(pem)
            .as_bytes()
            .chunks(10)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(ssh_private_key(&wrapped).is_ok());
        assert!(ssh_private_key("not base64!")
            .unwrap_err()
            .contains("not valid base64"));
        assert!(ssh_private_key(&b64("ssh-ed25519 AAAA x@y"))
            .unwrap_err()
            .contains("public key"));
        assert!(ssh_private_key(&b64("hello"))
            .unwrap_err()
            .contains("PRIVATE KEY"));
        assert!(ssh_private_key(&STANDARD.encode([0xff, 0xfe]))
            .unwrap_err()
            .contains("not text"));
        let enc = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nabc\n-----END RSA PRIVATE KEY-----";
        assert!(ssh_private_key(&b64(enc))
            .unwrap_err()
            .contains("passphrase"));
    }

    #[test]
    fn openssh_keys_with_a_cipher_are_refused() {
        let mk = |cipher: &str| {
            let mut b = b"openssh-key-v1\0".to_vec();
            b.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
            b.extend_from_slice(cipher.as_bytes());
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----",
                STANDARD.encode(b)
            )
        };
        assert!(ssh_private_key(&b64(&mk("none"))).is_ok());
        assert!(ssh_private_key(&b64(&mk("aes256-ctr")))
            .unwrap_err()
            .contains("passphrase"));
    }

    #[test]
    fn known_hosts_lines() {
        let line = format!(
            "backup.example,127.0.0.1 ssh-ed25519 {}",
            blob("ssh-ed25519")
        );
        assert_eq!(known_hosts_line(&format!("  {line}\n")).unwrap(), line);
        let with_comment = format!(
            "|1|abc=|def= ecdsa-sha2-nistp256 {} root@x",
            blob("ecdsa-sha2-nistp256")
        );
        assert!(known_hosts_line(&with_comment).is_ok());
        let ca = format!("@cert-authority *.example ssh-rsa {}", blob("ssh-rsa"));
        assert!(known_hosts_line(&ca).is_ok());
        for bad in [
            String::new(),
            "host".into(),
            format!("host ssh-rsa {}", blob("ssh-ed25519")),
            "host ssh-rsa notbase64!".into(),
            format!("{line}\n{line}"),
            format!("@bogus host ssh-rsa {}", blob("ssh-rsa")),
        ] {
            assert!(known_hosts_line(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn gpg_key_ids_and_garbage_get_their_own_advice() {
        assert!(gpg_public_key("0xDEADBEEF").unwrap_err().contains("key ID"));
        assert!(
            gpg_public_key("ABCD EF01 2345 6789 ABCD EF01 2345 6789 ABCD EF01")
                .unwrap_err()
                .contains("key ID")
        );
        assert!(gpg_public_key("-----BEGIN PGP PRIVATE KEY BLOCK-----\n")
            .unwrap_err()
            .contains("private key"));
        assert!(gpg_public_key("hello")
            .unwrap_err()
            .contains("ASCII-armored"));
        assert!(gpg_public_key(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----"
        )
        .is_err());
    }

    #[test]
    fn a_generated_public_key_is_accepted_and_its_secret_form_refused() {
        use sequoia_openpgp::cert::CertBuilder;
        use sequoia_openpgp::serialize::SerializeInto;
        let (cert, _) = CertBuilder::general_purpose(Some("backup@example"))
            .generate()
            .unwrap();
        let public = String::from_utf8(cert.armored().to_vec().unwrap()).unwrap();
        let k = gpg_public_key(&public).unwrap();
        assert_eq!(k.fingerprint, cert.fingerprint().to_hex());
        assert!(k.armored.ends_with("-----\n"));
        let secret = String::from_utf8(cert.as_tsk().armored().to_vec().unwrap()).unwrap();
        assert!(gpg_public_key(&secret).is_err());
        let (signing_only, _) = CertBuilder::new().add_signing_subkey().generate().unwrap();
        let s = String::from_utf8(signing_only.armored().to_vec().unwrap()).unwrap();
        assert!(gpg_public_key(&s)
            .unwrap_err()
            .contains("no valid encryption key"));
    }

    #[test]
    fn secret_keys_are_checked_and_unlocked() {
        use sequoia_openpgp::cert::CertBuilder;
        use sequoia_openpgp::serialize::SerializeInto;
        let (cert, _) = CertBuilder::general_purpose(Some("r@example"))
            .set_password(Some("unlock me".into()))
            .generate()
            .unwrap();
        let tsk = String::from_utf8(cert.as_tsk().armored().to_vec().unwrap()).unwrap();
        assert_eq!(
            gpg_secret_key(&tsk, "unlock me").unwrap(),
            cert.fingerprint().to_hex()
        );
        assert!(gpg_secret_key(&tsk, "wrong")
            .unwrap_err()
            .contains("unlocked"));
        let public = String::from_utf8(cert.armored().to_vec().unwrap()).unwrap();
        assert!(gpg_secret_key(&public, "")
            .unwrap_err()
            .contains("private key"));
    }

    #[test]
    fn frequencies_retention_and_cron() {
        assert_eq!(backup_frequency("Daily").unwrap(), BackupFrequency::Daily);
        assert_eq!(backup_frequency("manual").unwrap().cron(), None);
        assert_eq!(
            backup_frequency("*/15  2-4 * jan-mar mon,FRI").unwrap(),
            BackupFrequency::Cron("*/15 2-4 * jan-mar mon,FRI".into())
        );
        for bad in [
            "often",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "* * * * * *",
            "1/5 x * * *",
        ] {
            assert!(backup_frequency(bad).is_err(), "{bad}");
        }
        assert!(cron5("0 0 * * 7").is_ok() && cron5("5/10 * * * *").is_ok());
        assert_eq!(retention_period("30d").unwrap(), Retention::Days(30));
        assert_eq!(
            retention_period("36h").unwrap().interval().as_deref(),
            Some("36h")
        );
        assert_eq!(
            retention_period("7d").unwrap().interval().as_deref(),
            Some("7D")
        );
        assert_eq!(retention_period("manual").unwrap(), Retention::Manual);
        for bad in ["", "d", "0d", "07d", "30", "3w", "1d2h", "30D", "-1d"] {
            assert!(retention_period(bad).is_err(), "{bad}");
        }
        assert_eq!(deletion_frequency("hourly").unwrap(), "40 * * * *");
        assert_eq!(deletion_frequency("daily").unwrap(), "0 23 * * *");
        assert!(deletion_frequency("weekly").is_err());
        assert!(deletion_frequency("0 3 * * 1").is_ok());
    }
}
