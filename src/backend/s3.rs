//! `s3://`, `s3+http://` and `boto3+s3://` with the `aws-sdk-s3` crate, laid out as duplicity lays
//! them out so either tool reads the other's bucket:
//!
//! - `s3://host[:port]/bucket[/prefix]`: `host` is the endpoint (https unless
//!   `--s3-unencrypted-connection`); `s3:///bucket[/prefix]` uses AWS's own endpoint.
//! - `s3+http://bucket[/prefix]` and `boto3+s3://bucket[/prefix]`: the bucket is in the netloc; AWS's
//!   endpoint (as in duplicity, the `+http` does not by itself turn TLS off).
//! - `--s3-endpoint-url` replaces the endpoint in every form.
//!
//! Objects are named `<prefix>/<name>` (empty path parts folded away, as duplicity's boto backends do).
//! Path-style addressing for any endpoint that is not AWS (S3-compatible stores rarely do virtual hosts),
//! virtual-hosted style for AWS. Credentials come only from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
//! (via `OpenOptions`); the region from `--s3-region-name`, else `us-east-1`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length, SdkBody};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
    Delete, ObjectIdentifier,
};
use aws_sdk_s3::Client;

use super::url::redact;
use super::{Backend, BackendError, BackendResult, OpenOptions, UrlError};

/// Files above this go up in parts (one PutObject is limited to 5 GiB, and a part can be retried alone).
const MULTIPART_THRESHOLD: u64 = 32 << 20;
/// The smallest part; larger when a file would need more than S3's 10 000 parts.
const MIN_PART_SIZE: u64 = 16 << 20;
const MAX_PARTS: u64 = 10_000;
/// DeleteObjects takes at most this many keys per request.
const DELETE_BATCH: usize = 1000;
const DEFAULT_REGION: &str = "us-east-1";
/// S3's smallest multipart part (but the last).
pub const MIN_MULTIPART_CHUNK: u64 = 5 << 20;

/// S3 Object Lock's retention mode for every upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Nobody can shorten or remove the lock before its date, not even the bucket's owner.
    Compliance,
    /// Only credentials allowed `s3:BypassGovernanceRetention` can shorten or remove it.
    Governance,
}

impl LockMode {
    pub fn parse(s: &str) -> Option<LockMode> {
        match s.to_ascii_lowercase().as_str() {
            "compliance" => Some(LockMode::Compliance),
            "governance" => Some(LockMode::Governance),
            _ => None,
        }
    }
}

/// Upload every object under an Object Lock retention: `mode` until now + `retain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    pub mode: LockMode,
    pub retain: Duration,
}

/// duplicity's `--s3-use-*` storage classes, in the order duplicity picks the first one given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageClass {
    ReducedRedundancy,
    StandardIa,
    OnezoneIa,
    Glacier,
    GlacierIr,
    DeepArchive,
}

impl StorageClass {
    /// S3's name of the class.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::ReducedRedundancy => "REDUCED_REDUNDANCY",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::Glacier => "GLACIER",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
        }
    }

    /// S3's class name, any case, `-` or `_` (`glacier-ir`, `DEEP_ARCHIVE`).
    pub fn parse(s: &str) -> Option<StorageClass> {
        let want = s.trim().to_ascii_uppercase().replace('-', "_");
        [
            StorageClass::ReducedRedundancy,
            StorageClass::StandardIa,
            StorageClass::OnezoneIa,
            StorageClass::Glacier,
            StorageClass::GlacierIr,
            StorageClass::DeepArchive,
        ]
        .into_iter()
        .find(|c| c.as_str() == want)
    }

    /// The archive classes, where duplicity keeps manifests and signatures in STANDARD.
    pub fn is_archive(self) -> bool {
        matches!(
            self,
            StorageClass::Glacier | StorageClass::GlacierIr | StorageClass::DeepArchive
        )
    }
}

/// Server-side encryption of every upload (on top of the archive's own OpenPGP encryption).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// `--s3-use-server-side-encryption`: S3-managed keys (AES256).
    Aes256,
    /// `--s3-use-server-side-kms-encryption --s3-kms-key-id ID [--s3-kms-grant GRANT]`.
    Kms {
        key_id: String,
        /// duplicity's `--s3-kms-grant`: sent as `x-amz-grant-full-control`.
        grant_full_control: Option<String>,
    },
}

/// How each upload is stored (duplicity's S3 options, and Object Lock).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3UploadOptions {
    pub object_lock: Option<ObjectLock>,
    pub storage_class: Option<StorageClass>,
    pub sse: Option<ServerSideEncryption>,
    /// `--s3-multipart-chunk-size`: files above it go up in parts of this size (duplicity's
    /// threshold and part size are both this value). Default: 32 MiB threshold, 16 MiB parts.
    pub multipart_chunk_size: Option<u64>,
    /// `--s3-multipart-max-procs`: parts sent at once (default 1).
    pub multipart_max_procs: Option<usize>,
}

/// The headers one upload carries (the same on PutObject and CreateMultipartUpload).
struct UploadHeaders {
    storage_class: Option<aws_sdk_s3::types::StorageClass>,
    sse: Option<aws_sdk_s3::types::ServerSideEncryption>,
    kms_key_id: Option<String>,
    grant_full_control: Option<String>,
    lock_mode: Option<aws_sdk_s3::types::ObjectLockMode>,
    lock_until: Option<aws_sdk_s3::primitives::DateTime>,
}

/// Sets [`UploadHeaders`] on a PutObject or CreateMultipartUpload builder (same setter names).
macro_rules! with_headers {
    ($builder:expr, $h:expr) => {
        $builder
            .set_storage_class($h.storage_class.clone())
            .set_server_side_encryption($h.sse.clone())
            .set_ssekms_key_id($h.kms_key_id.clone())
            .set_grant_full_control($h.grant_full_control.clone())
            .set_object_lock_mode($h.lock_mode.clone())
            .set_object_lock_retain_until_date($h.lock_until)
    };
}

/// Now + `retain`, in whole seconds rounded up (what S3 stores).
fn retain_until(retain: Duration) -> aws_sdk_s3::primitives::DateTime {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let until = now + retain;
    let secs = until.as_secs() + u64::from(until.subsec_nanos() > 0);
    aws_sdk_s3::primitives::DateTime::from_secs(secs as i64)
}

/// The base64 MD5 of `len` bytes of `path` from `offset`: S3 demands Content-MD5 (or a checksum) on
/// uploads that carry an Object Lock.
fn content_md5(path: &Path, offset: u64, len: u64) -> std::io::Result<String> {
    use base64::Engine as _;
    use md5::Digest as _;
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut f = f.take(len);
    let mut h = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(h.finalize()))
}

/// Where a URL points: the parts duplicity derives from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `None` = AWS's own endpoint for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// `""` or `a/b/` (ends with `/`): prepended to every name.
    pub key_prefix: String,
    /// Bucket in the path (S3-compatible stores) rather than in the host name (AWS).
    pub path_style: bool,
}

impl S3Location {
    /// Parses duplicity's S3 URL forms, then applies `--s3-endpoint-url` and
    /// `--s3-unencrypted-connection`.
    pub fn parse(url: &str, opts: &OpenOptions) -> Result<S3Location, UrlError> {
        let shown = redact(url);
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::NotAUrl(shown.clone()))?;
        let (netloc, path) = rest.split_once('/').unwrap_or((rest, ""));
        if netloc.contains('@') {
            return Err(UrlError::Invalid(format!(
                "{shown}: no user or password in an S3 URL; credentials come from \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )));
        }
        // Where the bucket and prefix are: after the host for s3://, from the netloc on otherwise
        // (duplicity treats only `s3` as having a network location).
        let (host, bucket_path) = match scheme {
            "s3" => (netloc, path.to_string()),
            "s3+http" | "boto3+s3" => ("", format!("{netloc}/{path}")),
            other => {
                return Err(UrlError::Unsupported {
                    scheme: other.to_string(),
                })
            }
        };
        let mut parts = bucket_path.split('/').filter(|p| !p.is_empty());
        let bucket = parts
            .next()
            .ok_or_else(|| {
                UrlError::Invalid(format!(
                    "{shown}: no bucket; use s3://host/bucket/prefix, s3:///bucket/prefix or \
                     boto3+s3://bucket/prefix"
                ))
            })?
            .to_string();
        let prefix: Vec<&str> = parts.collect();
        let key_prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", prefix.join("/"))
        };
        let tls = if opts.s3_unencrypted_connection {
            "http"
        } else {
            "https"
        };
        let endpoint = match (&opts.s3_endpoint_url, host) {
            (Some(e), _) => Some(e.trim_end_matches('/').to_string()),
            // AWS's endpoint chosen by the SDK, unless plain http was asked for (the SDK's is https).
            (None, "") if opts.s3_unencrypted_connection => {
                Some(format!("http://s3.{}.amazonaws.com", region(opts)))
            }
            (None, "") => None,
            (None, h) => Some(format!("{tls}://{h}")),
        };
        let path_style = endpoint.as_deref().is_some_and(|e| !is_aws(e));
        Ok(S3Location {
            endpoint,
            bucket,
            key_prefix,
            path_style,
        })
    }
}

/// `--s3-region-name`, else us-east-1 (where boto3 sends S3 requests when no region is configured).
fn region(opts: &OpenOptions) -> String {
    opts.s3_region_name
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// An endpoint URL on AWS itself (e.g. `https://s3.eu-west-1.amazonaws.com`).
fn is_aws(endpoint: &str) -> bool {
    let host = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host = host.split(['/', ':']).next().unwrap_or("");
    host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
}

pub struct S3Backend {
    shown: String,
    loc: S3Location,
    client: Client,
    rt: tokio::runtime::Runtime,
    /// Set once the bucket is known to exist (checked or made before the first upload).
    bucket_ready: AtomicBool,
    upload: S3UploadOptions,
    is_metadata: Option<fn(&str) -> bool>,
    /// Whether the bucket has Object Lock enabled, once asked (see `stored_lock`).
    bucket_locks: std::sync::OnceLock<bool>,
    /// `--limit-upload`/`--limit-download`.
    limits: super::throttle::Limits,
    /// The connect and read timeouts of every request (see [`S3Backend::paced_timeouts`]).
    timeouts: (Duration, Duration),
}

impl S3Backend {
    pub fn from_url(url: &str, opts: &OpenOptions) -> Result<S3Backend, UrlError> {
        let loc = S3Location::parse(url, opts)?;
        let shown = match &opts.s3_endpoint_url {
            Some(e) => format!("{} (endpoint {})", redact(url), redact(e)),
            None => redact(url),
        };
        let (Some(key_id), Some(secret)) = (&opts.aws_access_key_id, &opts.aws_secret_access_key)
        else {
            return Err(UrlError::Invalid(format!(
                "{shown}: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )));
        };
        let rt = super::runtime::new_runtime().map_err(|e| {
            UrlError::Invalid(format!("{shown}: cannot start the I/O runtime: {e}"))
        })?;
        // rustls with ring (not aws-lc) and the system's trusted roots; plain http also allowed for
        // --s3-unencrypted-connection and local endpoints.
        let mut http = aws_smithy_http_client::Builder::new().tls_provider(
            aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ),
        );
        if !opts.tls_extra_roots.is_empty() {
            // The system's roots and the given CAs (--ssl-cacert-file/--ssl-cacert-path).
            let mut roots = aws_smithy_http_client::tls::TrustStore::default();
            for pem in &opts.tls_extra_roots {
                roots.add_pem_certificate(pem.clone());
            }
            let ctx = aws_smithy_http_client::tls::TlsContext::builder()
                .with_trust_store(roots)
                .build()
                .map_err(|e| {
                    UrlError::Invalid(format!(
                        "{shown}: the certificates of --ssl-cacert-file/--ssl-cacert-path cannot \
                         be used: {e}"
                    ))
                })?;
            http = http.tls_context(ctx);
        }
        let http = http.build_https();
        // The SDK retries one request (e.g. one part) a little; the Retrying wrapper retries whole calls.
        let retry = if opts.attempts > 1 {
            RetryConfig::standard().with_max_attempts(3)
        } else {
            RetryConfig::disabled()
        };
        let timeouts = (
            opts.timeout.unwrap_or(Duration::from_secs(15)),
            opts.timeout.unwrap_or(Duration::from_secs(120)),
        );
        let mut conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region(opts)))
            .credentials_provider(Credentials::new(
                key_id.clone(),
                secret.clone(),
                None,
                None,
                "duplicity-charm",
            ))
            .http_client(http)
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeouts.0)
                    .read_timeout(timeouts.1)
                    .build(),
            )
            // Checksums only where S3 demands them: many S3-compatible stores reject the newer
            // default (aws-chunked uploads with CRC trailers).
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .force_path_style(loc.path_style);
        if let Some(e) = &loc.endpoint {
            conf = conf.endpoint_url(e);
        }
        Ok(S3Backend {
            shown,
            client: Client::from_conf(conf.build()),
            loc,
            rt,
            bucket_ready: AtomicBool::new(false),
            upload: opts.s3.clone(),
            is_metadata: opts.is_metadata,
            bucket_locks: std::sync::OnceLock::new(),
            limits: super::throttle::Limits::from_options(opts),
            timeouts,
        })
    }

    pub fn location(&self) -> &S3Location {
        &self.loc
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.loc.key_prefix)
    }

    /// The object's ETag as S3 reports it (a multipart upload's ends in `-<parts>`); for checks.
    pub fn etag(&self, name: &str) -> BackendResult<String> {
        let out = self
            .rt
            .block_on(
                self.client
                    .head_object()
                    .bucket(&self.loc.bucket)
                    .key(self.key(name))
                    .send(),
            )
            .map_err(|e| self.classify(name, e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    /// Names with a multipart upload begun and neither completed nor aborted (e.g. left by a killed
    /// process; their parts are stored and billed until aborted).
    pub fn pending_uploads(&self) -> BackendResult<Vec<String>> {
        let res = self.rt.block_on(
            self.client
                .list_multipart_uploads()
                .bucket(&self.loc.bucket)
                .prefix(&self.loc.key_prefix)
                .send(),
        );
        let out = match res {
            Ok(out) => out,
            Err(e) if is_no_such_bucket(&e) => return Ok(Vec::new()),
            Err(e) => return Err(self.classify("", e)),
        };
        Ok(out
            .uploads()
            .iter()
            .filter_map(|u| u.key())
            .map(|k| {
                k.strip_prefix(&self.loc.key_prefix)
                    .unwrap_or(k)
                    .to_string()
            })
            .collect())
    }

    fn permanent(&self, name: &str, message: String) -> BackendError {
        BackendError::Permanent {
            backend: self.shown.clone(),
            name: name.to_string(),
            message,
        }
    }

    fn refused(&self, name: &str, message: String) -> BackendError {
        let message = if name.is_empty() {
            message
        } else {
            format!("{name}: {message}")
        };
        BackendError::AuthRefused {
            backend: self.shown.clone(),
            message,
        }
    }

    fn transient(&self, name: &str, message: String) -> BackendError {
        BackendError::Transient {
            backend: self.shown.clone(),
            name: name.to_string(),
            message,
        }
    }

    /// Maps an SDK error: a missing key is NotFound; refused credentials, denied access and other 4xx
    /// are Permanent; 5xx, throttling, timeouts, unreachable hosts and broken responses Transient.
    fn classify<E>(&self, name: &str, e: SdkError<E, HttpResponse>) -> BackendError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let endpoint = self.loc.endpoint.as_deref().map(redact).unwrap_or_else(|| {
            let region = self
                .client
                .config()
                .region()
                .map_or(DEFAULT_REGION, |r| r.as_ref());
            format!("https://{}.s3.{region}.amazonaws.com", self.loc.bucket)
        });
        match &e {
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let code = se.err().code().unwrap_or("").to_string();
                let msg = se.err().message().unwrap_or("").to_string();
                let what = if code.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("{code} (HTTP {status})")
                };
                let bucket = &self.loc.bucket;
                match (status, code.as_str()) {
                    (404, "NoSuchKey" | "NotFound" | "") | (_, "NoSuchKey") => {
                        BackendError::NotFound {
                            backend: self.shown.clone(),
                            name: name.to_string(),
                        }
                    }
                    (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken") => self
                        .refused(
                            name,
                            format!(
                                "S3 refused the credentials for bucket {bucket}: {what}; check \
                                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                            ),
                        ),
                    // An archive storage class (Glacier, Deep Archive) must be restored first.
                    (_, "InvalidObjectState") => self.permanent(
                        name,
                        format!(
                            "{what}: the object is in an archive storage class (Glacier or Deep \
                             Archive); restore it first (S3 RestoreObject, e.g. `aws s3api \
                             restore-object`), then read it again"
                        ),
                    ),
                    (403, _) => self.refused(
                        name,
                        format!(
                            "access to bucket {bucket} denied: {what}; check AWS_ACCESS_KEY_ID and \
                             AWS_SECRET_ACCESS_KEY, and that this key may use the bucket"
                        ),
                    ),
                    // The bucket lives in another region than the one we sign for; AWS says which.
                    (301, _) | (_, "PermanentRedirect" | "AuthorizationHeaderMalformed") => {
                        let region = se
                            .raw()
                            .headers()
                            .get("x-amz-bucket-region")
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default();
                        self.permanent(
                            name,
                            format!(
                                "bucket {bucket} is in another region{region}: {what}; give it \
                                 with --s3-region-name"
                            ),
                        )
                    }
                    (429 | 500..=599, _) => self.transient(name, format!("{what}: {msg}")),
                    _ => self.permanent(name, format!("{what}: {msg}")),
                }
            }
            SdkError::TimeoutError(_) => {
                self.transient(name, format!("timed out talking to {endpoint}"))
            }
            SdkError::DispatchFailure(d) if d.is_user() => self.permanent(name, chain(&e)),
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                let why = chain(&e);
                // An untrusted or mismatched certificate does not fix itself: no point retrying.
                if why.contains("invalid peer certificate") {
                    self.permanent(
                        name,
                        format!(
                            "{endpoint}: the server's TLS certificate is not trusted: {why} (its CA \
                             must be in the system's trust store, or in a file named by SSL_CERT_FILE)"
                        ),
                    )
                } else {
                    self.transient(name, format!("cannot reach {endpoint}: {why}"))
                }
            }
            _ => self.permanent(name, chain(&e)),
        }
    }

    /// HeadBucket, and CreateBucket if it is missing (in the region's location unless us-east-1).
    async fn ensure_bucket(&self) -> BackendResult<()> {
        let bucket = &self.loc.bucket;
        let head = self.client.head_bucket().bucket(bucket).send().await;
        match head {
            Ok(_) => return Ok(()),
            Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 404 => {}
            Err(e) => return Err(self.classify("", e)),
        }
        let region = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let mut create = self
            .client
            .create_bucket()
            .bucket(bucket)
            // A bucket made for locked uploads must have Object Lock from the start.
            .set_object_lock_enabled_for_bucket(self.upload.object_lock.map(|_| true));
        if region != DEFAULT_REGION {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(()),
            // Made meanwhile by another writer (or ours from an earlier run).
            Err(SdkError::ServiceError(se))
                if matches!(se.err().code(), Some("BucketAlreadyOwnedByYou")) =>
            {
                Ok(())
            }
            Err(e) => Err(self.classify("", e)),
        }
    }

    async fn ensure_bucket_once(&self) -> BackendResult<()> {
        if self.bucket_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.ensure_bucket().await?;
        if self.upload.object_lock.is_some() && !self.bucket_has_locks().await? {
            return Err(self.permanent(
                "",
                format!(
                    "bucket {} does not have S3 Object Lock enabled, which --s3-object-lock-mode \
                     needs: enable Object Lock on the bucket (it also turns versioning on), or \
                     drop the Object Lock options",
                    self.loc.bucket
                ),
            ));
        }
        self.bucket_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The headers for uploading `name`: archive storage classes skip the metadata files (manifests
    /// and signatures stay in STANDARD, readable at once, as duplicity keeps them).
    fn upload_headers(&self, name: &str) -> UploadHeaders {
        use aws_sdk_s3::types::{ObjectLockMode, ServerSideEncryption as Sse};
        let u = &self.upload;
        let metadata = self.is_metadata.is_some_and(|f| f(name));
        let storage_class = u
            .storage_class
            .filter(|c| !(c.is_archive() && metadata))
            .map(|c| aws_sdk_s3::types::StorageClass::from(c.as_str()));
        let (sse, kms_key_id, grant_full_control) = match &u.sse {
            None => (None, None, None),
            Some(ServerSideEncryption::Aes256) => (Some(Sse::Aes256), None, None),
            Some(ServerSideEncryption::Kms {
                key_id,
                grant_full_control,
            }) => (
                Some(Sse::AwsKms),
                Some(key_id.clone()),
                grant_full_control.clone(),
            ),
        };
        let (lock_mode, lock_until) = match u.object_lock {
            None => (None, None),
            Some(l) => (
                Some(match l.mode {
                    LockMode::Compliance => ObjectLockMode::Compliance,
                    LockMode::Governance => ObjectLockMode::Governance,
                }),
                Some(retain_until(l.retain)),
            ),
        };
        UploadHeaders {
            storage_class,
            sse,
            kms_key_id,
            grant_full_control,
            lock_mode,
            lock_until,
        }
    }

    /// (threshold, part size) for multipart uploads.
    fn multipart_sizes(&self, len: u64) -> (u64, u64) {
        match self.upload.multipart_chunk_size {
            Some(c) => (c, c.max(len.div_ceil(MAX_PARTS))),
            None => (
                MULTIPART_THRESHOLD,
                MIN_PART_SIZE.max(len.div_ceil(MAX_PARTS)),
            ),
        }
    }

    async fn put_async(&self, src: &Path, name: &str) -> BackendResult<()> {
        let io = |e: std::io::Error| self.permanent(name, format!("{}: {e}", src.display()));
        let len = std::fs::metadata(src).map_err(io)?.len();
        self.ensure_bucket_once().await?;
        let key = self.key(name);
        let headers = self.upload_headers(name);
        let locking = self.upload.object_lock.is_some();
        let (threshold, part_size) = self.multipart_sizes(len);
        if len <= threshold {
            let md5 = if locking {
                Some(content_md5(src, 0, len).map_err(io)?)
            } else {
                None
            };
            // Read from the file as it is sent (and again if the SDK retries).
            let body = self.file_body(src, name, 0, len).await?;
            let req = with_headers!(
                self.client
                    .put_object()
                    .bucket(&self.loc.bucket)
                    .key(&key)
                    .content_length(len as i64)
                    .set_content_md5(md5)
                    .body(body),
                headers
            );
            match self.paced_timeouts(len) {
                Some(t) => req.customize().config_override(t).send().await,
                None => req.send().await,
            }
            .map_err(|e| self.classify(name, e))?;
            return Ok(());
        }
        let created = with_headers!(
            self.client
                .create_multipart_upload()
                .bucket(&self.loc.bucket)
                .key(&key),
            headers
        )
        .send()
        .await
        .map_err(|e| self.classify(name, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| self.transient(name, "no upload id in the S3 answer".into()))?
            .to_string();
        let res = self
            .upload_parts(src, name, &key, &upload_id, len, part_size)
            .await;
        let version = match res {
            Ok(v) => v,
            Err(e) => {
                // Do not leave the parts stored (and billed) on the server.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.loc.bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return Err(e);
            }
        };
        if let Some(lock) = self.upload.object_lock {
            // The lock was asked for on CreateMultipartUpload; set it again on the stored version:
            // some S3 servers ignore it there, and a later date only lengthens it.
            self.put_retention(name, &key, version, lock).await?;
        }
        Ok(())
    }

    /// PutObjectRetention on one version of `key` (the current one when `version` is None).
    async fn put_retention(
        &self,
        name: &str,
        key: &str,
        version: Option<String>,
        lock: ObjectLock,
    ) -> BackendResult<()> {
        use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};
        let mode = match lock.mode {
            LockMode::Compliance => ObjectLockRetentionMode::Compliance,
            LockMode::Governance => ObjectLockRetentionMode::Governance,
        };
        self.client
            .put_object_retention()
            .bucket(&self.loc.bucket)
            .key(key)
            .set_version_id(version)
            .retention(
                ObjectLockRetention::builder()
                    .mode(mode)
                    .retain_until_date(retain_until(lock.retain))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.classify(name, e))?;
        Ok(())
    }

    /// Sends `src` in parts of `part_size`, each read from its slice of the file (up to
    /// `--s3-multipart-max-procs` at once), then completes the upload. Returns the version id S3
    /// gave the object (versioned buckets).
    async fn upload_parts(
        &self,
        src: &Path,
        name: &str,
        key: &str,
        upload_id: &str,
        len: u64,
        part_size: u64,
    ) -> BackendResult<Option<String>> {
        let procs = self.upload.multipart_max_procs.unwrap_or(1).max(1);
        let locking = self.upload.object_lock.is_some();
        let mut parts: Vec<CompletedPart> = Vec::new();
        let mut running = tokio::task::JoinSet::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        loop {
            // Start parts until `procs` run, then wait for one; stop at the first failure.
            while offset < len && running.len() < procs {
                let n = part_size.min(len - offset);
                let md5 = if locking {
                    Some(
                        content_md5(src, offset, n)
                            .map_err(|e| self.permanent(name, format!("{}: {e}", src.display())))?,
                    )
                } else {
                    None
                };
                let body = self.file_body(src, name, offset, n).await?;
                let req = self
                    .client
                    .upload_part()
                    .bucket(&self.loc.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(n as i64)
                    .set_content_md5(md5)
                    .body(body);
                let part = number;
                let paced = self.paced_timeouts(n);
                running.spawn(async move {
                    let res = match paced {
                        Some(t) => req.customize().config_override(t).send().await,
                        None => req.send().await,
                    };
                    (part, res)
                });
                offset += n;
                number += 1;
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (part, res) =
                done.map_err(|e| self.transient(name, format!("part upload task failed: {e}")))?;
            let out = res.map_err(|e| self.classify(name, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(part)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
        }
        parts.sort_by_key(|p| p.part_number());
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.loc.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.classify(name, e))?;
        Ok(out.version_id().map(str::to_string))
    }

    /// Whether the bucket has Object Lock enabled (asked once). When the question itself is
    /// refused, every object is asked about instead.
    async fn bucket_has_locks(&self) -> BackendResult<bool> {
        if let Some(b) = self.bucket_locks.get() {
            return Ok(*b);
        }
        let res = self
            .client
            .get_object_lock_configuration()
            .bucket(&self.loc.bucket)
            .send()
            .await;
        let enabled = match res {
            Ok(out) => out
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                .is_some_and(|e| e.as_str() == "Enabled"),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err().code(),
                    Some("ObjectLockConfigurationNotFoundError" | "NoSuchBucket")
                ) =>
            {
                false
            }
            Err(SdkError::ServiceError(_)) => true,
            Err(e) => return Err(self.classify("", e)),
        };
        let _ = self.bucket_locks.set(enabled);
        Ok(enabled)
    }

    async fn stored_lock_async(&self, name: &str) -> BackendResult<Option<super::StoredLock>> {
        use aws_sdk_s3::types::ObjectLockLegalHoldStatus;
        if !self.bucket_has_locks().await? {
            return Ok(None);
        }
        let out = match self
            .client
            .head_object()
            .bucket(&self.loc.bucket)
            .key(self.key(name))
            .send()
            .await
            .map_err(|e| self.classify(name, e))
        {
            Ok(out) => out,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        if out.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On) {
            return Ok(Some(super::StoredLock {
                until: None,
                mode: "LEGAL-HOLD".into(),
            }));
        }
        let now = chrono::Utc::now().timestamp();
        Ok(
            match (out.object_lock_mode(), out.object_lock_retain_until_date()) {
                (Some(mode), Some(until)) if until.secs() > now => Some(super::StoredLock {
                    until: Some(until.secs()),
                    mode: mode.as_str().to_string(),
                }),
                _ => None,
            },
        )
    }

    /// The SDK's read timeout runs from the start of a request to its answer, so it includes sending
    /// the body: under an upload limit, a request of `len` bytes gets the time the limit needs for
    /// them on top of the usual timeout (a stalled server is still caught that much later).
    fn paced_timeouts(&self, len: u64) -> Option<aws_sdk_s3::config::Builder> {
        let limiter = self.limits.upload.as_ref()?;
        let sending = Duration::from_secs_f64(len as f64 / limiter.rate() as f64);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.timeouts.0)
            .read_timeout(self.timeouts.1 + sending)
            .build();
        Some(aws_sdk_s3::config::Builder::default().timeout_config(timeouts))
    }

    /// `len` bytes of `src` from `offset` as a request body, read as it is sent (and again if the SDK
    /// retries), at the upload limit when there is one.
    async fn file_body(
        &self,
        src: &Path,
        name: &str,
        offset: u64,
        len: u64,
    ) -> BackendResult<ByteStream> {
        if let Some(limiter) = &self.limits.upload {
            let (path, limiter) = (src.to_path_buf(), limiter.clone());
            return Ok(ByteStream::new(SdkBody::retryable(move || {
                SdkBody::from_body_1_x(ThrottledFileBody::new(
                    path.clone(),
                    offset,
                    len,
                    limiter.clone(),
                ))
            })));
        }
        ByteStream::read_from()
            .path(src)
            .offset(offset)
            .length(Length::Exact(len))
            .build()
            .await
            .map_err(|e| self.permanent(name, format!("{}: {e}", src.display())))
    }

    async fn get_async(&self, name: &str, dst: &Path) -> BackendResult<()> {
        let out = self
            .client
            .get_object()
            .bucket(&self.loc.bucket)
            .key(self.key(name))
            .send()
            .await
            .map_err(|e| match e {
                // (A missing key is NotFound in `classify`.)
                e if is_no_such_bucket(&e) => BackendError::NotFound {
                    backend: self.shown.clone(),
                    name: name.to_string(),
                },
                e => self.classify(name, e),
            })?;
        let expected = out.content_length();
        let local = |e: std::io::Error| self.permanent(name, format!("{}: {e}", dst.display()));
        let mut f = File::create(dst).map_err(local)?;
        let mut body = out.body;
        let mut got = 0u64;
        // Chunk by chunk to the file: a volume is never held in memory whole.
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| self.transient(name, format!("download interrupted: {}", chain(&e))))?
        {
            f.write_all(&chunk).map_err(local)?;
            got += chunk.len() as u64;
            if let Some(limiter) = &self.limits.download {
                // While this waits the connection is not read: TCP's window holds the sender back.
                super::throttle::take_async(limiter, chunk.len() as u64).await;
            }
        }
        f.flush().map_err(local)?;
        if let Some(exp) = expected.filter(|&n| n >= 0) {
            if got != exp as u64 {
                return Err(
                    self.transient(name, format!("download cut short: {got} of {exp} bytes"))
                );
            }
        }
        Ok(())
    }

    async fn list_async(&self) -> BackendResult<Vec<String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // The delimiter keeps deeper "directories" out: only the target's own files.
            let res = self
                .client
                .list_objects_v2()
                .bucket(&self.loc.bucket)
                .prefix(&self.loc.key_prefix)
                .delimiter("/")
                .set_continuation_token(token.take())
                .send()
                .await;
            let out = match res {
                Ok(out) => out,
                // No bucket yet: an empty target (it is made on the first upload).
                Err(e) if is_no_such_bucket(&e) => return Ok(Vec::new()),
                Err(e) => return Err(self.classify("", e)),
            };
            for o in out.contents() {
                if let Some(n) = o.key().and_then(|k| k.strip_prefix(&self.loc.key_prefix)) {
                    if !n.is_empty() {
                        names.push(n.to_string());
                    }
                }
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        names.sort();
        Ok(names)
    }

    async fn delete_async(&self, names: &[String]) -> BackendResult<()> {
        for batch in names.chunks(DELETE_BATCH) {
            let objects = batch
                .iter()
                .map(|n| ObjectIdentifier::builder().key(self.key(n)).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.permanent(&batch[0], e.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| self.permanent(&batch[0], e.to_string()))?;
            let res = self
                .client
                .delete_objects()
                .bucket(&self.loc.bucket)
                .delete(delete)
                .send()
                .await;
            let out = match res {
                Ok(out) => out,
                Err(e) if is_no_such_bucket(&e) => return Ok(()),
                Err(e) => return Err(self.classify(&batch[0], e)),
            };
            // Per-key failures; a key that was not there is fine.
            if let Some(err) = out.errors().iter().find(|e| e.code() != Some("NoSuchKey")) {
                let key = err.key().unwrap_or_default();
                let name = key.strip_prefix(&self.loc.key_prefix).unwrap_or(key);
                return Err(self.permanent(
                    name,
                    format!(
                        "not deleted: {} {}",
                        err.code().unwrap_or_default(),
                        err.message().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// An upload body that reads its slice of a local file one chunk at a time, each sent when the
/// limiter lets it: the request goes out at the limit, with no more than a chunk in memory.
struct ThrottledFileBody {
    path: std::path::PathBuf,
    offset: u64,
    remaining: u64,
    file: Option<File>,
    limiter: std::sync::Arc<super::throttle::RateLimiter>,
    /// A chunk read and waiting for its turn, and the wait.
    pending: Option<bytes::Bytes>,
    wait: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl ThrottledFileBody {
    fn new(
        path: std::path::PathBuf,
        offset: u64,
        len: u64,
        limiter: std::sync::Arc<super::throttle::RateLimiter>,
    ) -> Self {
        ThrottledFileBody {
            path,
            offset,
            remaining: len,
            file: None,
            limiter,
            pending: None,
            wait: None,
        }
    }

    fn read_chunk(&mut self) -> std::io::Result<bytes::Bytes> {
        use std::io::{Read, Seek};
        if self.file.is_none() {
            let mut f = File::open(&self.path)?;
            f.seek(std::io::SeekFrom::Start(self.offset))?;
            self.file = Some(f);
        }
        let n = (self.limiter.chunk() as u64).min(self.remaining) as usize;
        let mut buf = vec![0u8; n];
        self.file
            .as_mut()
            .expect("opened above")
            .read_exact(&mut buf)?;
        self.remaining -= n as u64;
        Ok(bytes::Bytes::from(buf))
    }
}

impl http_body::Body for ThrottledFileBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = self.get_mut();
        if let Some(wait) = this.wait.as_mut() {
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.wait = None;
        }
        if let Some(chunk) = this.pending.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(chunk))));
        }
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let chunk = match this.read_chunk() {
            Ok(c) => c,
            Err(e) => return Poll::Ready(Some(Err(e))),
        };
        let wait = this.limiter.reserve(chunk.len() as u64);
        if wait.is_zero() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(chunk))));
        }
        this.pending = Some(chunk);
        let mut sleep = Box::pin(tokio::time::sleep(wait));
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(
                this.pending.take().expect("just set"),
            ))));
        }
        this.wait = Some(sleep);
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.pending.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let pending = self.pending.as_ref().map_or(0, |p| p.len() as u64);
        http_body::SizeHint::with_exact(self.remaining + pending)
    }
}

/// An error and its sources on one line (the SDK's own Display says only "dispatch failure"), without
/// the Debug dump `DisplayErrorContext` appends; repeats are dropped.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn is_no_such_bucket<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().code() == Some("NoSuchBucket"))
}

impl Backend for S3Backend {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.rt.block_on(self.put_async(src, name))
    }

    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        self.rt.block_on(self.get_async(name, dst))
    }

    fn list(&self) -> BackendResult<Vec<String>> {
        self.rt.block_on(self.list_async())
    }

    fn delete(&self, names: &[String]) -> BackendResult<()> {
        self.rt.block_on(self.delete_async(names))
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn stored_lock(&self, name: &str) -> BackendResult<Option<super::StoredLock>> {
        self.rt.block_on(self.stored_lock_async(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> S3Location {
        S3Location::parse(url, &OpenOptions::new()).unwrap()
    }

    fn loc(endpoint: Option<&str>, bucket: &str, prefix: &str, path_style: bool) -> S3Location {
        S3Location {
            endpoint: endpoint.map(str::to_string),
            bucket: bucket.into(),
            key_prefix: prefix.into(),
            path_style,
        }
    }

    #[test]
    fn duplicity_url_forms() {
        assert_eq!(
            parse("s3://127.0.0.1:9000/bkt/a/b"),
            loc(Some("https://127.0.0.1:9000"), "bkt", "a/b/", true)
        );
        assert_eq!(
            parse("s3://s3.eu-west-1.amazonaws.com/bkt"),
            loc(Some("https://s3.eu-west-1.amazonaws.com"), "bkt", "", false)
        );
        assert_eq!(parse("s3:///bkt/p"), loc(None, "bkt", "p/", false));
        assert_eq!(parse("s3+http://bkt/p/q"), loc(None, "bkt", "p/q/", false));
        assert_eq!(parse("boto3+s3://bkt"), loc(None, "bkt", "", false));
        // Empty parts fold away, as in duplicity: //b// and //b are one target.
        assert_eq!(
            parse("boto3+s3://bkt//x///y/"),
            loc(None, "bkt", "x/y/", false)
        );
        assert_eq!(parse("s3:///bkt/"), loc(None, "bkt", "", false));
    }

    #[test]
    fn endpoint_option_and_plain_http() {
        let mut o = OpenOptions::new();
        o.s3_unencrypted_connection = true;
        assert_eq!(
            S3Location::parse("s3://minio.lan:9000/b/p", &o).unwrap(),
            loc(Some("http://minio.lan:9000"), "b", "p/", true)
        );
        o.s3_region_name = Some("eu-west-1".into());
        assert_eq!(
            S3Location::parse("s3+http://b/p", &o).unwrap(),
            loc(Some("http://s3.eu-west-1.amazonaws.com"), "b", "p/", false)
        );
        o.s3_endpoint_url = Some("http://127.0.0.1:5000/".into());
        for url in [
            "s3://ignored.example/b/p",
            "s3:///b/p",
            "s3+http://b/p",
            "boto3+s3://b/p",
        ] {
            assert_eq!(
                S3Location::parse(url, &o).unwrap(),
                loc(Some("http://127.0.0.1:5000"), "b", "p/", true),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_urls_are_refused() {
        let o = OpenOptions::new();
        assert!(S3Location::parse("s3:///", &o).is_err());
        assert!(S3Location::parse("boto3+s3://", &o).is_err());
        let e = S3Location::parse("s3://key:hunter2@host/b", &o).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn keys_are_prefix_slash_name() {
        let mut o = OpenOptions::new();
        o.aws_access_key_id = Some("AKIDEXAMPLE".into());
        o.aws_secret_access_key = Some("s3cretkey".into());
        let b = S3Backend::from_url("boto3+s3://bkt/a/b", &o).unwrap();
        assert_eq!(b.key("duplicity-full.x"), "a/b/duplicity-full.x");
        let b = S3Backend::from_url("boto3+s3://bkt", &o).unwrap();
        assert_eq!(b.key("duplicity-full.x"), "duplicity-full.x");
        assert_eq!(b.describe(), "boto3+s3://bkt");
    }

    #[test]
    fn archive_classes_skip_metadata_and_chunk_size_sets_parts() {
        let mut o = OpenOptions::new();
        o.aws_access_key_id = Some("AKIDEXAMPLE".into());
        o.aws_secret_access_key = Some("s3cretkey".into());
        o.is_metadata = Some(|n| n.ends_with(".manifest"));
        o.s3.storage_class = Some(StorageClass::DeepArchive);
        o.s3.object_lock = Some(ObjectLock {
            mode: LockMode::Governance,
            retain: Duration::from_secs(86400),
        });
        let b = S3Backend::from_url("boto3+s3://bkt", &o).unwrap();
        let h = b.upload_headers("x.vol1.difftar.gz");
        assert_eq!(h.storage_class.unwrap().as_str(), "DEEP_ARCHIVE");
        assert_eq!(h.lock_mode.unwrap().as_str(), "GOVERNANCE");
        let now = chrono::Utc::now().timestamp();
        let until = h.lock_until.unwrap().secs();
        assert!(until > now + 86000 && until <= now + 86401, "{until}");
        assert!(b.upload_headers("x.manifest").storage_class.is_none());
        o.s3.storage_class = Some(StorageClass::StandardIa);
        let b = S3Backend::from_url("boto3+s3://bkt", &o).unwrap();
        assert_eq!(
            b.upload_headers("x.manifest")
                .storage_class
                .unwrap()
                .as_str(),
            "STANDARD_IA"
        );
        assert_eq!(b.multipart_sizes(1 << 30), (32 << 20, 16 << 20));
        o.s3.multipart_chunk_size = Some(5 << 20);
        let b = S3Backend::from_url("boto3+s3://bkt", &o).unwrap();
        assert_eq!(b.multipart_sizes(1 << 30), (5 << 20, 5 << 20));
        // Never more than 10 000 parts.
        assert_eq!(b.multipart_sizes(100_000 << 20).1, 10 << 20);
        assert_eq!(
            StorageClass::parse("glacier-ir"),
            Some(StorageClass::GlacierIr)
        );
        assert_eq!(StorageClass::parse("standard"), None);
    }

    #[test]
    fn no_credentials_is_a_clear_error() {
        let e = S3Backend::from_url("s3:///bkt", &OpenOptions::new())
            .err()
            .unwrap();
        assert!(e.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{e}");
    }
}
