//! The one entry to the engine: a [`Repository`] is a backup target opened from one typed
//! [`RepositoryConfig`] (URL, backend options and credentials, keys, archive dir, volume size). Every
//! command is a method on it; the CLI and the charm only translate their input into a config and a
//! request, and word the results. Commands that write (backup, retention applied) take the writer lock
//! ([`crate::engine::lock`]) here, before they list the target.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use sequoia_openpgp::Cert;

use crate::backend::append_only::AppendOnly;
use crate::backend::{self, Backend, OpenOptions};
use crate::engine::archive::names::Prefixes;
use crate::engine::cache::{self, Cache, SyncPolicy};
use crate::engine::collection::Collection;
use crate::engine::commands::backup::{self, BackupOptions, BackupReport};
use crate::engine::commands::list::{self, ListedFile};
use crate::engine::commands::replicate::{
    self, ReplicateContext, ReplicateOptions, ReplicateReport,
};
use crate::engine::commands::restore::{self, RestoreOptions, RestoreReport};
use crate::engine::commands::retention::{self, Applied, Plan, RetentionCommand};
use crate::engine::commands::verify::{self, VerifyOptions, VerifyReport};
use crate::engine::crypto::{Decryptor, Passphrase, SecretKeySource};
use crate::engine::error::{Error, ErrorKind, Result};
use crate::engine::gnupg::{GnupgHome, GnupgSecretKeys};
use crate::engine::keys::{self, KeyError, KeySetup, SignatureCheck};
use crate::engine::lock::{self, WriterLock};
use crate::engine::prefixed::PrefixedBackend;

/// How new backups are encrypted. Reading needs no mode: every file says how it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Encryption {
    /// gzip only (`--no-encryption`).
    None,
    /// Symmetric, with [`Keys::passphrase`].
    #[default]
    Passphrase,
    /// To public keys (`--encrypt-key`).
    PublicKey(Vec<RecipientSpec>),
}

/// A recipient as given: a fingerprint or key id found in [`Keys::public_keys`] (or the secret keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientSpec {
    pub key: String,
    /// Leave the key id out of the files (gpg's hidden recipient).
    pub hidden: bool,
}

/// The keys and passphrases of a repository.
#[derive(Clone, Default)]
pub struct Keys {
    pub encryption: Encryption,
    /// The symmetric passphrase; also unlocks [`Keys::secret_keys`].
    pub passphrase: Option<Passphrase>,
    /// Backups sign every file with this key (a normalized key id found in `secret_keys`); restore and
    /// verify demand its good signature on every file.
    pub sign_key: Option<String>,
    /// Unlocks the signing key (the passphrase is tried when unset).
    pub sign_passphrase: Option<Passphrase>,
    /// Certificates to find recipients and signers in.
    pub public_keys: Vec<Cert>,
    /// Secret keys that decrypt public-key backups and sign.
    pub secret_keys: Vec<Cert>,
    /// Backups refuse to encrypt to or sign with a weak key (gpg 1.x's DSA, ElGamal, RSA-1024, SHA-1
    /// self-signatures) instead of warning. Reading never refuses them.
    pub refuse_weak_keys: bool,
    /// gpg's own keyring, when no keyring file was given: `public_keys` were read from it, secret keys
    /// a message or `sign_key` needs are taken from it on demand (see [`crate::engine::gnupg`]).
    pub gnupg_home: Option<GnupgHome>,
    /// What gpg options change in what is written (`--gpg-options`).
    pub crypto: CryptoOptions,
}

/// The `--gpg-options` that change what backups write. Reading needs none: every file says how it
/// was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CryptoOptions {
    /// gpg's `--cipher-algo`: the cipher of every encrypted file (default AES256).
    pub cipher: Option<sequoia_openpgp::types::SymmetricAlgorithm>,
    /// gpg's `--compress-algo`/`-z`: how the data inside each encrypted file is compressed (default
    /// ZIP at level 2, as duplicity's gpg does by default).
    pub compression: Option<crate::engine::crypto::Compression>,
    /// gpg's `--s2k-*`: how a passphrase protects each file's session key.
    pub s2k: crate::engine::crypto::S2kOptions,
    /// gpg's `--digest-algo`: the hash of the signatures (`--sign-key`; default SHA256).
    pub digest: Option<sequoia_openpgp::types::HashAlgorithm>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("encryption", &self.encryption)
            .field("passphrase", &self.passphrase.is_some())
            .field("sign_key", &self.sign_key)
            .field("public_keys", &self.public_keys.len())
            .field("secret_keys", &self.secret_keys.len())
            .finish_non_exhaustive()
    }
}

/// Everything needed to open a repository.
#[derive(Debug, Clone)]
pub struct RepositoryConfig {
    /// The target URL (`file:///…`, `sftp://…`, …).
    pub url: String,
    /// Backend options and credentials.
    pub backend: OpenOptions,
    pub keys: Keys,
    /// Where archive dirs live (default `~/.cache/duplicity`) and this target's folder name in it
    /// (default: the MD5 of the URL), as duplicity's `--archive-dir` and `--name`.
    pub archive_dir: Option<PathBuf>,
    pub name: Option<String>,
    /// Volume size in bytes.
    pub volsize: u64,
    /// How long a writing command waits for another run's writer lock.
    pub lock_wait: Duration,
    /// Volumes in flight (built, sealed or uploading) at once, so up to this many uploads run together
    /// (duplicity's `--concurrency`); below 2, the default of 2. Each costs a volume of temporary disk,
    /// not memory.
    pub concurrency: usize,
    /// `--file-prefix` and the per-kind prefixes: the names of this collection on the target. Only
    /// names with exactly these prefixes are this repository's.
    pub prefixes: Prefixes,
    /// Backups compress what they store (duplicity's default). False (`--no-compression`): unencrypted
    /// files are stored as they are (no `.gz`), encrypted ones without compression inside.
    pub compression: bool,
    /// The target lets this account create and read files but not delete, rename or replace them
    /// (`--append-only-target`): uploads go straight to final names and are checked, and retention
    /// and cleanup list what would go instead of deleting (see [`crate::backend::append_only`]).
    pub append_only_target: bool,
    /// How the archive dir follows the target (`--check-remote`, `--metadata-sync-mode`).
    pub metadata: SyncPolicy,
}

impl RepositoryConfig {
    /// A config with duplicity's defaults: passphrase encryption, 200 MiB volumes, a 60 s lock wait.
    pub fn new(url: impl Into<String>) -> RepositoryConfig {
        RepositoryConfig {
            url: url.into(),
            backend: OpenOptions::new(),
            keys: Keys::default(),
            archive_dir: None,
            name: None,
            volsize: 200 * 1024 * 1024,
            lock_wait: lock::DEFAULT_WAIT,
            concurrency: 0,
            prefixes: Prefixes::default(),
            compression: true,
            append_only_target: false,
            metadata: SyncPolicy::default(),
        }
    }
}

/// Manifests and signature files: what every listing, incremental and restore reads first (kept out
/// of archive storage classes by the backends).
fn is_metadata_name(name: &str) -> bool {
    crate::engine::archive::names::parse(name)
        .is_some_and(|p| p.kind.is_manifest() || p.kind.is_signature())
}

/// An opened backup target.
pub struct Repository {
    backend: Box<dyn Backend>,
    keys: Keys,
    cache_dir: PathBuf,
    volsize: u64,
    lock_wait: Duration,
    concurrency: usize,
    compression: bool,
    append_only_target: bool,
    metadata: SyncPolicy,
}

/// What a backup needs from its repository (see [`Repository::backup`]).
pub(crate) struct WriteContext<'a> {
    pub backend: &'a dyn Backend,
    pub passphrase: Option<Passphrase>,
    pub keys: KeySetup,
    pub cache_dir: &'a Path,
    pub volsize: u64,
    pub concurrency: usize,
    /// Compress what is stored (see [`RepositoryConfig::compression`]).
    pub compression: bool,
    /// Nothing may be deleted from the target (see [`RepositoryConfig::append_only_target`]).
    pub append_only_target: bool,
    /// How the archive dir follows the target.
    pub metadata: SyncPolicy,
}

/// What a restore or verify needs from its repository.
pub(crate) struct ReadContext<'a> {
    pub backend: &'a dyn Backend,
    pub decryptor: Decryptor,
    /// The archive dir (a selective restore reads the signature chain there).
    pub cache_dir: &'a Path,
    /// The target is append-only (its listing leaves out cut manifests).
    pub append_only: bool,
    /// How the archive dir follows the target.
    pub metadata: SyncPolicy,
}

impl Repository {
    /// Opens the backend of `config.url` (nothing is read from it yet).
    pub fn open(mut config: RepositoryConfig) -> Result<Repository> {
        if config.backend.is_metadata.is_none() {
            config.backend.is_metadata = Some(is_metadata_name);
        }
        let backend = backend::open(&config.url, &config.backend)?;
        Ok(Repository::with_backend(backend, config))
    }

    /// A repository on an already opened backend (`config.url` names the archive dir and the lock;
    /// `config.backend` is not used).
    pub fn with_backend(backend: Box<dyn Backend>, config: RepositoryConfig) -> Repository {
        let backend: Box<dyn Backend> = if config.append_only_target {
            Box::new(AppendOnly::new(backend))
        } else {
            backend
        };
        let mut cache_dir = cache::cache_dir(
            config.archive_dir.as_deref(),
            config.name.as_deref(),
            &config.url,
        );
        let backend: Box<dyn Backend> = if config.prefixes.is_empty() {
            backend
        } else {
            // The archive dir keeps names without prefixes, so each set of prefixes gets a folder of
            // its own beside the target's: sharing one, a sync for one collection would drop the
            // cached files of another in the same target.
            cache_dir = prefixed_cache_dir(&cache_dir, &config.prefixes);
            Box::new(PrefixedBackend::new(backend, config.prefixes.clone()))
        };
        Repository {
            backend,
            keys: config.keys,
            cache_dir,
            volsize: config.volsize,
            lock_wait: config.lock_wait,
            concurrency: config.concurrency,
            compression: config.compression,
            append_only_target: config.append_only_target,
            metadata: config.metadata,
        }
    }

    /// The target as shown to a person (no password).
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// This target's folder in the archive dir.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Encrypting to public keys (so no passphrase is needed to write).
    pub fn encrypts_to_public_keys(&self) -> bool {
        matches!(self.keys.encryption, Encryption::PublicKey(_))
    }

    fn lock_for_writing(&self, purpose: &str) -> Result<WriterLock> {
        Ok(lock::lock_writer(
            &self.cache_dir,
            &self.backend.describe(),
            self.lock_wait,
            purpose,
        )?)
    }

    /// The keys a backup uses: recipients, the signing key (unlocked now, so a wrong passphrase fails
    /// before anything is written) and secret keys for reading metadata the cache lacks. Key validity
    /// is judged at the real time, whatever the backup's time.
    /// gpg's keyring as the source of secret keys the given ones lack, when it is used.
    fn secret_source(&self) -> Option<Arc<dyn SecretKeySource>> {
        self.keys.gnupg_home.as_ref().map(|home| {
            Arc::new(GnupgSecretKeys {
                home: home.clone(),
                passphrase: self.keys.passphrase.clone(),
            }) as Arc<dyn SecretKeySource>
        })
    }

    /// A key not found names gpg's keyring when that is where it was looked for.
    fn name_gnupg_home(&self, e: KeyError) -> KeyError {
        match (e, &self.keys.gnupg_home) {
            (KeyError::NotFound { spec, option, .. }, Some(home)) => KeyError::NotFound {
                spec,
                where_: home.describe(),
                option,
            },
            (e, _) => e,
        }
    }

    fn write_keys(&self) -> Result<(Option<Passphrase>, KeySetup)> {
        let k = &self.keys;
        let now = SystemTime::now();
        let mut all = k.public_keys.clone();
        all.extend(
            k.secret_keys
                .iter()
                .map(|c| c.clone().strip_secret_key_material()),
        );
        let mut setup = KeySetup {
            secret_keys: k.secret_keys.clone(),
            secret_source: self.secret_source(),
            cipher: k.crypto.cipher,
            compression: k.crypto.compression,
            s2k: k.crypto.s2k,
            digest: k.crypto.digest,
            ..KeySetup::default()
        };
        let passphrase = match &k.encryption {
            Encryption::None => {
                return Ok((None, setup));
            }
            Encryption::Passphrase => Some(k.passphrase.clone().ok_or_else(|| {
                Error::bad_input(anyhow::anyhow!(
                    "no passphrase was given to encrypt with: give the backup passphrase, or choose no encryption"
                ))
            })?),
            Encryption::PublicKey(specs) => {
                for spec in specs {
                    setup.recipients.push(
                        keys::recipient(&spec.key, &all, spec.hidden, now)
                            .map_err(|e| self.name_gnupg_home(e))
                            .map_err(Error::from_key)?,
                    );
                }
                // Public-key backups need no passphrase; it may still unlock the secret keys.
                k.passphrase.clone()
            }
        };
        if let Some(id) = &k.sign_key {
            let pass = k.sign_passphrase.as_ref().or(k.passphrase.as_ref());
            let mut secret = k.secret_keys.clone();
            if let Some(home) = &k.gnupg_home {
                let wanted: Vec<String> = keys::normalize_key_id(id).into_iter().collect();
                secret.extend(home.secret_keys(&wanted, pass).map_err(Error::from_key)?);
            }
            setup.signer = Some(
                keys::signing_key(id, &secret, pass, now)
                    .map_err(|e| self.name_gnupg_home(e))
                    .map_err(Error::from_key)?,
            );
        }
        let setup = keys::weak_key_policy(setup, k.refuse_weak_keys).map_err(Error::from_key)?;
        Ok((passphrase, setup))
    }

    /// The keys a restore uses: secret keys, and with a sign key (when `check_signatures`) the
    /// signature every file must carry, checked with the certificates of both keyrings.
    fn read_decryptor(&self, check_signatures: bool) -> Result<Decryptor> {
        let k = &self.keys;
        let check = match &k.sign_key {
            Some(id) if check_signatures => {
                let mut all = k.public_keys.clone();
                all.extend(
                    k.secret_keys
                        .iter()
                        .map(|c| c.clone().strip_secret_key_material()),
                );
                if !keys::has_key(id, &all) {
                    return Err(Error::bad_input(anyhow::anyhow!(
                        "sign key {id}: that key is in neither the public nor the secret keys given, so its signatures cannot be checked: pass its public key (--keyring)"
                    )));
                }
                Some(SignatureCheck {
                    id: id.clone(),
                    certs: all,
                })
            }
            _ => None,
        };
        let setup = KeySetup {
            secret_keys: k.secret_keys.clone(),
            secret_source: self.secret_source(),
            check,
            ..KeySetup::default()
        };
        Ok(Decryptor::with_keys(k.passphrase.clone(), &setup))
    }

    /// A full or incremental backup (see [`BackupOptions`]); a dry run stores nothing and takes no lock.
    pub fn backup(&self, opts: &BackupOptions) -> Result<BackupReport> {
        let _lock = (!opts.dry_run)
            .then(|| {
                self.lock_for_writing(&format!(
                    "backup of {} to {}",
                    opts.source.display(),
                    self.describe()
                ))
            })
            .transpose()?;
        let (passphrase, keys) = self.write_keys()?;
        let ctx = WriteContext {
            backend: self.backend.as_ref(),
            passphrase,
            keys,
            cache_dir: &self.cache_dir,
            volsize: self.volsize,
            concurrency: self.concurrency,
            compression: self.compression,
            append_only_target: self.append_only_target,
            metadata: self.metadata,
        };
        backup::backup(&ctx, opts)
            .with_context(|| format!("backup to {} failed", self.describe()))
            .map_err(Error::classify)
    }

    /// Restores a state of the backup (see [`RestoreOptions`]), checking signatures when a sign key is
    /// set.
    pub fn restore(&self, opts: &RestoreOptions) -> Result<RestoreReport> {
        let ctx = ReadContext {
            backend: self.backend.as_ref(),
            decryptor: self.read_decryptor(true)?,
            cache_dir: &self.cache_dir,
            append_only: self.append_only_target,
            metadata: self.metadata,
        };
        restore::restore(&ctx, opts)
            .with_context(|| format!("restore from {} failed", self.describe()))
            .map_err(Error::classify)
    }

    /// Checks a backup chain and compares it with a directory (see [`VerifyOptions`]).
    pub fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport> {
        let ctx = ReadContext {
            backend: self.backend.as_ref(),
            decryptor: self.read_decryptor(true)?,
            cache_dir: &self.cache_dir,
            append_only: self.append_only_target,
            metadata: self.metadata,
        };
        verify::verify(&ctx, opts)
            .with_context(|| format!("verify of {} failed", self.describe()))
            .map_err(Error::classify)
    }

    /// Calls `each` for every file of the backup as of `time`, in index order, from the signature
    /// chain (brought into the archive dir first). Returns the signature files read and notes.
    pub fn for_each_current_file(
        &self,
        time: i64,
        each: impl FnMut(ListedFile) -> anyhow::Result<()>,
    ) -> Result<list::CurrentFiles> {
        let cache = Cache::open(self.cache_dir.clone()).map_err(Error::classify)?;
        let decryptor = self.read_decryptor(false)?;
        list::for_each_current_file(
            self.backend.as_ref(),
            &cache,
            &decryptor,
            time,
            self.append_only_target,
            self.metadata,
            each,
        )
        .with_context(|| format!("list-current-files of {} failed", self.describe()))
        .map_err(Error::classify)
    }

    /// The chains and sets on the target. The manifests cached in the archive dir (when there is
    /// one) also reveal a missing last volume.
    pub fn collection(&self) -> Result<Collection> {
        let listing = self
            .backend
            .list()
            .with_context(|| format!("cannot list {}", self.describe()))
            .map_err(Error::classify)?;
        let mut col = Collection::from_names(&listing);
        if self.cache_dir.is_dir() {
            let cache = Cache {
                dir: self.cache_dir.clone(),
            };
            col.recheck_volumes(&|set| cache.manifest_volume_count(set));
        }
        Ok(col)
    }

    /// The primary chain's sets, oldest first, each with the files its manifest lists as new, changed
    /// or deleted (collection-status `--file-changed` and `--show-changes-in-set`, as duplicity 3).
    pub fn primary_chain_changes(
        &self,
    ) -> Result<Vec<crate::engine::commands::status::SetChanges>> {
        let col = self.collection()?;
        let Some(chain) = col.primary_chain() else {
            return Ok(Vec::new());
        };
        let decryptor = self.read_decryptor(false)?;
        let mut out = Vec::new();
        for set in chain.sets() {
            let Some(name) = &set.manifest else {
                continue;
            };
            let m = crate::engine::stored::read_manifest(self.backend.as_ref(), name, &decryptor)
                .map_err(Error::classify)?;
            out.push(crate::engine::commands::status::SetChanges {
                full: set.is_full(),
                time: set.time(),
                files: m.files,
            });
        }
        Ok(out)
    }

    /// Plans a retention command (remove-*, cleanup) and, when `apply`, deletes the plan's files.
    /// Applying takes the writer lock before the listing, so the plan never sees a backup in progress
    /// (whose volumes would look like an incomplete set to delete).
    pub fn retention(
        &self,
        command: RetentionCommand,
        apply: bool,
    ) -> Result<(Plan, Option<Applied>)> {
        let _lock = apply
            .then(|| {
                self.lock_for_writing(&format!(
                    "{} --force on {}",
                    command.name(),
                    self.describe()
                ))
            })
            .transpose()?;
        if apply && self.append_only_target {
            return self.refuse_pruning(command);
        }
        retention::run(command, self.backend.as_ref(), &self.cache_dir, apply)
            .map_err(Error::classify)
    }

    /// Copies to this repository (the target) the backup sets of `source` that it lacks: as they are
    /// when this repository's keys open them, otherwise decrypted with the source's keys and encrypted
    /// with this one's (see [`replicate`](crate::engine::commands::replicate)). Takes this target's
    /// writer lock; the source is only read.
    pub fn replicate_from(
        &self,
        source: &Repository,
        opts: &ReplicateOptions,
    ) -> Result<ReplicateReport> {
        let _lock = self.lock_for_writing(&format!(
            "replicate of {} to {}",
            source.describe(),
            self.describe()
        ))?;
        let (passphrase, keys) = self.write_keys()?;
        let ctx = ReplicateContext {
            source: source.backend.as_ref(),
            source_decryptor: source.read_decryptor(false)?,
            source_passphrase: source.keys.passphrase.clone(),
            target: self.backend.as_ref(),
            target_decryptor: self.read_decryptor(false)?,
            target_passphrase: passphrase,
            target_keys: keys,
        };
        replicate::replicate(&ctx, opts)
            .with_context(|| {
                format!(
                    "replicate of {} to {} failed",
                    source.describe(),
                    self.describe()
                )
            })
            .map_err(Error::classify)
    }

    /// The statistics of each set of the primary chain, oldest first, as duplicity 3's
    /// `collection-status --show-changes-in-set N --jsonstat` reads them: (`full-T`/`inc-T`, the set's
    /// jsonstat, `{}` when it has none).
    pub fn primary_chain_jsonstats(
        &self,
    ) -> Result<Vec<(String, crate::engine::commands::jsonstat::OrderedJson)>> {
        let col = self.collection()?;
        let Some(chain) = col.primary_chain() else {
            return Ok(Vec::new());
        };
        let decryptor = self.read_decryptor(false)?;
        chain
            .sets()
            .map(|set| {
                let stats = crate::engine::commands::jsonstat::read_set(
                    self.backend.as_ref(),
                    &self.cache_dir,
                    &decryptor,
                    set,
                )
                .map_err(Error::classify)?;
                Ok((crate::engine::commands::jsonstat::set_key(set), stats))
            })
            .collect()
    }

    /// Whether nothing may be deleted from the target (`--append-only-target`).
    pub fn is_append_only(&self) -> bool {
        self.append_only_target
    }

    /// Retention applied to an append-only target: plans it, and when the plan deletes remote files,
    /// fails before deleting anything, listing them for the server's administrator. A plan that only
    /// touches the archive dir (or nothing) is applied as usual.
    fn refuse_pruning(&self, command: RetentionCommand) -> Result<(Plan, Option<Applied>)> {
        let (plan, _) = retention::run(command, self.backend.as_ref(), &self.cache_dir, false)
            .map_err(Error::classify)?;
        let remote = plan.remote_names();
        if remote.is_empty() {
            return retention::run(command, self.backend.as_ref(), &self.cache_dir, true)
                .map_err(Error::classify);
        }
        Err(Error::new(
            ErrorKind::BadInput,
            anyhow::anyhow!(
                "{} is an append-only target (--append-only-target): {} deletes nothing from it, so nothing was deleted. Pruning must happen on the server side, by whoever administers it; {} would delete these {} file(s) there:\n  {}",
                self.describe(),
                command.name(),
                command.name(),
                remote.len(),
                remote.join("\n  ")
            ),
        ))
    }
}

/// The archive dir of a prefixed collection: the target's folder name, `.prefixed-`, and the MD5 of the
/// prefixes (a sibling of the unprefixed folder, which duplicity and unprefixed runs use).
fn prefixed_cache_dir(dir: &Path, prefixes: &Prefixes) -> PathBuf {
    use md5::{Digest, Md5};
    let key = [
        &prefixes.file,
        &prefixes.archive,
        &prefixes.manifest,
        &prefixes.signature,
        &prefixes.jsonstat,
    ]
    .iter()
    .map(|p| p.as_str())
    .collect::<Vec<_>>()
    .join("\0");
    let mut leaf = dir.file_name().unwrap_or_default().to_os_string();
    leaf.push(format!(
        ".prefixed-{}",
        hex::encode(Md5::digest(key.as_bytes()))
    ));
    dir.with_file_name(leaf)
}
