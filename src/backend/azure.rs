//! `azure://container` (and `azure:///container`, which the charm builds): Azure Blob Storage with the
//! `azure_storage_blobs` SDK, as duplicity's azure backend uses it: one container named by the URL,
//! each file a block blob of the same name at the container root, the container created if missing,
//! credentials from `AZURE_CONNECTION_STRING`.
//!
//! Large files go up one block at a time (Put Block + Put Block List, which commits atomically, so a
//! reader never sees half a file) and come down in ranged chunks: memory stays at about one block.
//! The SDK's own retries are off; `retry::Retrying` is the one retry layer, as for every backend.
//! Nothing secret (AccountKey, SharedAccessSignature) is ever put in an error, a log or `Debug`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::StatusCode;
use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_blobs::prelude::*;
use futures::StreamExt;

use super::{Backend, BackendError, BackendResult, OpenOptions, UrlError};

/// Size of one uploaded block and of one download range. Files up to this size go up in one request.
const BLOCK: usize = 8 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence on an open connection before the request fails (and is retried as Transient).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Azurite's well-known development account (`UseDevelopmentStorage=true`); public, not a secret.
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How each upload is stored and sent (duplicity's `--azure-*` options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureUploadOptions {
    /// `--azure-blob-tier`: the access tier of every blob (Hot, Cool, Cold, Archive). With Archive,
    /// manifests and signatures stay in the account's default tier so they can be read at once.
    pub blob_tier: Option<String>,
    /// `--azure-max-single-put-size`: files up to this many bytes go up in one request (default 8 MiB).
    pub max_single_put_size: Option<usize>,
    /// `--azure-max-block-size`: the size of each block of a larger file (default 8 MiB).
    pub max_block_size: Option<usize>,
    /// `--azure-max-connections`: blocks sent at once (default 1; memory is this many blocks).
    pub max_connections: Option<usize>,
}

/// The tier names Azure takes (any case).
pub fn parse_tier(s: &str) -> Option<AccessTier> {
    match s.to_ascii_lowercase().as_str() {
        "hot" => Some(AccessTier::Hot),
        "cool" => Some(AccessTier::Cool),
        "cold" => Some(AccessTier::Cold),
        "archive" => Some(AccessTier::Archive),
        _ => None,
    }
}

pub struct AzureBackend {
    upload: AzureUploadOptions,
    is_metadata: Option<fn(&str) -> bool>,
    container: String,
    client: ContainerClient,
    rt: tokio::runtime::Runtime,
    /// The secrets of the connection string, to be cut out of any message that might echo them.
    secrets: Vec<String>,
    /// Set once the container is known to exist (created or found), so that is checked once.
    ready: AtomicBool,
    /// Names per List Blobs page; None = the service's default (5000).
    list_page: Option<std::num::NonZeroU32>,
    /// `--limit-upload`/`--limit-download`.
    limits: super::throttle::Limits,
    /// The HTTP client's read timeout (see [`AzureBackend::block_size`]).
    read_timeout: Duration,
}

// Hand-written: the SDK client's Debug would show the credentials.
impl std::fmt::Debug for AzureBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBackend")
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

/// The container a URL names: duplicity strips every leading `/` after `azure://`, so `azure://c` and
/// `azure:///c` are the same container. A `/` inside is refused (duplicity has no prefix either).
pub fn container_from_url(url: &str) -> Result<String, UrlError> {
    let rest = url.strip_prefix("azure://").ok_or_else(|| {
        UrlError::Invalid(format!("{}: not an azure:// URL", super::url::redact(url)))
    })?;
    let name = rest.trim_start_matches('/').trim_end_matches('/');
    validate_container(name).map_err(UrlError::Invalid)?;
    Ok(name.to_string())
}

/// Azure's rule for container names (duplicity checks the same): 3 to 63 characters, lowercase
/// letters, digits and hyphens, starting and ending with a letter or digit, no two hyphens in a row.
pub fn validate_container(name: &str) -> Result<(), String> {
    const RULE: &str = "a valid Azure container name is 3 to 63 characters of lowercase letters \
                        (a-z), digits and single hyphens, starting and ending with a letter or digit; \
                        use azure://container";
    let why = if name.is_empty() {
        Some("no container name".to_string())
    } else if name.contains('/') {
        Some(format!(
            "{name:?} has a '/': the URL names only a container, blobs go at its root"
        ))
    } else if !(3..=63).contains(&name.len()) {
        Some(format!("{name:?} is {} characters long", name.len()))
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!("{name:?} contains {c:?}"))
    } else if name.starts_with('-') || name.ends_with('-') {
        Some(format!("{name:?} starts or ends with a hyphen"))
    } else if name.contains("--") {
        Some(format!("{name:?} has two hyphens in a row"))
    } else {
        None
    };
    match why {
        Some(w) => Err(format!("azure://: {w}; {RULE}")),
        None => Ok(()),
    }
}

/// What a connection string gives: the account, its blob endpoint and one credential.
struct Account {
    name: String,
    endpoint: String,
    key: Option<String>,
    sas: Option<String>,
}

/// Parses the `Key=Value;…` connection string (keys case-insensitive, values may contain `=`).
/// Our own parser rather than the SDK's: its errors quote the whole string, key included.
fn parse_connection_string(s: &str) -> Result<Account, String> {
    let mut name = None;
    let mut key = None;
    let mut sas = None;
    let mut endpoint = None;
    let mut protocol = None;
    let mut suffix = None;
    let mut dev = false;
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(
                "AZURE_CONNECTION_STRING has a part without '=' (expected Key=Value;...)".into(),
            );
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "accountname" => name = Some(v),
            "accountkey" => key = Some(v),
            "sharedaccesssignature" => sas = Some(v.trim_start_matches('?').to_string()),
            "blobendpoint" => endpoint = Some(v.trim_end_matches('/').to_string()),
            "defaultendpointsprotocol" => protocol = Some(v.to_ascii_lowercase()),
            "endpointsuffix" => suffix = Some(v),
            "usedevelopmentstorage" => dev = v.eq_ignore_ascii_case("true"),
            // TableEndpoint, QueueEndpoint, … do not concern blobs.
            _ => {}
        }
    }
    if dev && name.is_none() {
        name = Some(DEV_ACCOUNT.into());
        key.get_or_insert_with(|| DEV_KEY.into());
        endpoint.get_or_insert_with(|| format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"));
    }
    if key.as_deref().is_some_and(str::is_empty) {
        key = None;
    }
    if sas.as_deref().is_some_and(str::is_empty) {
        sas = None;
    }
    if key.is_none() && sas.is_none() {
        return Err(
            "AZURE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature".into(),
        );
    }
    let endpoint = match endpoint {
        Some(e) => e,
        None => {
            let Some(account) = name.as_deref() else {
                return Err(
                    "AZURE_CONNECTION_STRING has neither AccountName nor BlobEndpoint".into(),
                );
            };
            let protocol = protocol.as_deref().unwrap_or("https");
            if protocol != "https" && protocol != "http" {
                return Err(format!(
                    "AZURE_CONNECTION_STRING: DefaultEndpointsProtocol must be https or http, not {protocol:?}"
                ));
            }
            let suffix = suffix.as_deref().unwrap_or("core.windows.net");
            format!("{protocol}://{account}.blob.{suffix}")
        }
    };
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(format!(
            "AZURE_CONNECTION_STRING: BlobEndpoint must be an http(s) URL, not {endpoint:?}"
        ));
    }
    // Checked here, not at the first request: the SDK's decoding error would quote part of the key.
    if let Some(k) = &key {
        use base64::Engine;
        if base64::engine::general_purpose::STANDARD.decode(k).is_err() {
            return Err(
                "AZURE_CONNECTION_STRING: the AccountKey is not valid base64 (copy it whole from \
                 the storage account's access keys)"
                    .into(),
            );
        }
    }
    if key.is_some() && name.is_none() {
        return Err("AZURE_CONNECTION_STRING has an AccountKey but no AccountName".into());
    }
    Ok(Account {
        name: name.unwrap_or_default(),
        endpoint,
        key,
        sas,
    })
}

impl AzureBackend {
    pub fn from_url(url: &str, opts: &OpenOptions) -> Result<AzureBackend, UrlError> {
        let container = container_from_url(url)?;
        let conn = opts
            .azure_connection_string
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                UrlError::Invalid(format!(
                    "azure://{container}: no credentials: set AZURE_CONNECTION_STRING to the storage \
                     account's connection string (charm: the azure_connection_string setting)"
                ))
            })?;
        let acct = parse_connection_string(conn)
            .map_err(|e| UrlError::Invalid(format!("azure://{container}: {e}")))?;
        let mut secrets: Vec<String> = Vec::new();
        let credentials = if let Some(key) = &acct.key {
            secrets.push(key.clone());
            StorageCredentials::access_key(
                acct.name.clone(),
                azure_core::auth::Secret::new(key.clone()),
            )
        } else {
            let sas = acct.sas.clone().unwrap_or_default();
            secrets.push(sas.clone());
            // Each value of the token (the signature above all) on its own, in case one is echoed.
            secrets.extend(
                sas.split('&')
                    .filter_map(|kv| kv.split_once('=').map(|(_, v)| v.to_string()))
                    .filter(|v| v.len() >= 8),
            );
            StorageCredentials::sas_token(&sas).map_err(|_| {
                UrlError::Invalid(format!(
                    "azure://{container}: the SharedAccessSignature of AZURE_CONNECTION_STRING \
                     cannot be read (expected sv=...&sig=...)"
                ))
            })?
        };
        let http = reqwest::Client::builder()
            .connect_timeout(opts.timeout.unwrap_or(CONNECT_TIMEOUT))
            .read_timeout(opts.timeout.unwrap_or(READ_TIMEOUT))
            // As the SDK's own client: an idle pooled connection can make hyper hang.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| UrlError::Invalid(format!("azure://{container}: HTTP client: {e}")))?;
        let client = ClientBuilder::with_location(
            CloudLocation::Custom {
                account: acct.name.clone(),
                uri: acct.endpoint.clone(),
            },
            credentials,
        )
        .retry(azure_core::RetryOptions::none())
        .transport(azure_core::TransportOptions::new(Arc::new(http)))
        .container_client(container.clone());
        let rt = super::runtime::new_runtime()
            .map_err(|e| UrlError::Invalid(format!("azure://{container}: runtime: {e}")))?;
        if let Some(t) = &opts.azure.blob_tier {
            if parse_tier(t).is_none() {
                return Err(UrlError::Invalid(format!(
                    "--azure-blob-tier {t:?}: give one of Hot, Cool, Cold, Archive"
                )));
            }
        }
        Ok(AzureBackend {
            upload: opts.azure.clone(),
            is_metadata: opts.is_metadata,
            container,
            client,
            rt,
            secrets,
            ready: AtomicBool::new(false),
            list_page: None,
            limits: super::throttle::Limits::from_options(opts),
            read_timeout: opts.timeout.unwrap_or(READ_TIMEOUT),
        })
    }

    /// Asks for at most `n` names per List Blobs page, so a test can see `list` follow the pages
    /// without uploading 5000 blobs.
    pub fn set_list_page_size(&mut self, n: u32) {
        self.list_page = std::num::NonZeroU32::new(n);
    }

    /// The container's name.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// How many committed blocks the blob `name` has (0 for a blob put in one request). Lets tests
    /// and a curious operator see that large files went up in blocks.
    pub fn committed_blocks(&self, name: &str) -> BackendResult<usize> {
        self.ensure_container()?;
        let blob = self.client.blob_client(name);
        let r = self
            .rt
            .block_on(async { blob.get_block_list().await })
            .map_err(|e| self.err(name, e))?;
        Ok(r.block_with_size_list.blocks.len())
    }

    /// `s` with every secret and every URL query string (where a SAS would travel) cut out.
    fn scrub(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut in_query = false;
        for c in s.chars() {
            if in_query {
                if c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>') {
                    in_query = false;
                    out.push_str("?<query hidden>");
                    out.push(c);
                }
            } else if c == '?' {
                in_query = true;
            } else {
                out.push(c);
            }
        }
        if in_query {
            out.push_str("?<query hidden>");
        }
        for secret in self.secrets.iter().filter(|s| !s.is_empty()) {
            out = out.replace(secret.as_str(), "<hidden>");
        }
        out
    }

    /// An SDK error as a text without secrets: its own message and its causes.
    fn describe_error(&self, e: &azure_core::Error) -> String {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            let t = s.to_string();
            if !msg.contains(&t) {
                msg.push_str(": ");
                msg.push_str(&t);
            }
            src = s.source();
        }
        self.scrub(&msg)
    }

    /// Classes an SDK error: 404 NotFound; 408, 429 and 5xx Transient; other statuses Permanent (403
    /// with a hint at the credentials); transport failures (refused, reset, timeout) Transient.
    fn err(&self, name: &str, e: azure_core::Error) -> BackendError {
        let backend = self.describe();
        let name = name.to_string();
        match e.kind() {
            ErrorKind::HttpResponse { status, error_code } => {
                let code = error_code.as_deref().unwrap_or("no error code");
                let status_n = u16::from(*status);
                if *status == StatusCode::NotFound {
                    BackendError::NotFound { backend, name }
                } else if status_n == 408 || status_n == 429 || status_n >= 500 {
                    BackendError::Transient {
                        backend,
                        name,
                        message: format!("the server answered HTTP {status_n} ({code})"),
                    }
                } else if status_n == 401 || status_n == 403 {
                    let _ = name;
                    BackendError::AuthRefused {
                        backend,
                        message: format!(
                            "access to container {:?} refused (HTTP {status_n}, {code}): check \
                             AZURE_CONNECTION_STRING (charm: azure_connection_string): the account \
                             name, key or SAS and its permissions",
                            self.container
                        ),
                    }
                } else {
                    BackendError::Permanent {
                        backend,
                        name,
                        message: format!("the server answered HTTP {status_n} ({code})"),
                    }
                }
            }
            ErrorKind::Io => BackendError::Transient {
                backend,
                name,
                message: format!(
                    "cannot reach the blob endpoint: {}",
                    self.describe_error(&e)
                ),
            },
            _ => BackendError::Permanent {
                backend,
                name,
                message: self.describe_error(&e),
            },
        }
    }

    fn io_err(&self, name: &str, what: &str, e: std::io::Error) -> BackendError {
        BackendError::Permanent {
            backend: self.describe(),
            name: name.to_string(),
            message: format!("{what}: {e}"),
        }
    }

    /// Creates the container unless it is known to exist, as duplicity does when it opens the target.
    fn ensure_container(&self) -> BackendResult<()> {
        if self.ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let what = format!("container {}", self.container);
        let r = self.rt.block_on(async { self.client.create().await });
        match r {
            Ok(_) => {}
            Err(e) => match e.kind() {
                ErrorKind::HttpResponse { status, .. } if *status == StatusCode::Conflict => {}
                // A SAS limited to one existing container may not create one: fine if it exists.
                ErrorKind::HttpResponse { status, .. } if *status == StatusCode::Forbidden => {
                    // (Listing, not Get Container Properties, which a container SAS may not do.)
                    let exists = self.rt.block_on(async {
                        let one = std::num::NonZeroU32::MIN;
                        let mut pages = self.client.list_blobs().max_results(one).into_stream();
                        pages.next().await
                    });
                    if !matches!(exists, Some(Ok(_))) {
                        return Err(self.err(&what, e));
                    }
                }
                _ => return Err(self.err(&what, e)),
            },
        }
        self.ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The tier for uploading `name`: Archive skips manifests and signatures (they must stay
    /// readable at once for listings, incrementals and restores).
    fn tier_for(&self, name: &str) -> Option<AccessTier> {
        let t = parse_tier(self.upload.blob_tier.as_deref()?)?;
        if t == AccessTier::Archive && self.is_metadata.is_some_and(|f| f(name)) {
            return None;
        }
        Some(t)
    }

    /// The access tier of the stored `name` as the service reports it (for checks).
    pub fn blob_tier(&self, name: &str) -> BackendResult<Option<String>> {
        let blob = self.client.blob_client(name);
        let props = self
            .rt
            .block_on(async { blob.get_properties().await })
            .map_err(|e| self.err(name, e))?;
        Ok(props
            .blob
            .properties
            .access_tier
            .map(|t| <&'static str>::from(t).to_string()))
    }

    /// The size of the blocks a file of `len` bytes goes up in: [`BLOCK`], or under an upload limit
    /// what the limit sends in 4 s or half the read timeout, whichever is shorter (the client's read
    /// timer runs while a request's body is still going out), but never so small that the file would
    /// need more than Azure's 50,000 blocks.
    fn block_size(&self, len: u64) -> usize {
        const MAX_BLOCKS: u64 = 50_000;
        match &self.limits.upload {
            None => BLOCK,
            Some(l) => {
                let secs = (self.read_timeout.as_secs_f64() / 2.0).min(4.0);
                let floor = len.div_ceil(MAX_BLOCKS).max(16 << 10);
                ((l.rate() as f64 * secs) as u64)
                    .max(floor)
                    .min(BLOCK as u64) as usize
            }
        }
    }

    /// A block's bytes as a request body: as they are, or paced by the upload limit.
    fn body(&self, data: Vec<u8>) -> azure_core::Body {
        match &self.limits.upload {
            None => data.into(),
            Some(limiter) => {
                let paced: Box<dyn azure_core::SeekableStream> = Box::new(PacedBlock {
                    data: bytes::Bytes::from(data),
                    pos: 0,
                    limiter: limiter.clone(),
                    wait: None,
                });
                paced.into()
            }
        }
    }

    /// Reads up to `buf.len()` bytes (fewer only at the end of the file).
    fn fill(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// One block of an upload as a request body that the upload limit paces: each read hands out at
/// most one chunk, and the next read waits until the limiter lets it go (the block is in memory
/// anyway; nothing more is).
struct PacedBlock {
    data: bytes::Bytes,
    pos: usize,
    limiter: Arc<super::throttle::RateLimiter>,
    wait: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Clone for PacedBlock {
    fn clone(&self) -> Self {
        PacedBlock {
            data: self.data.clone(),
            pos: self.pos,
            limiter: self.limiter.clone(),
            wait: None,
        }
    }
}

impl std::fmt::Debug for PacedBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacedBlock")
            .field("len", &self.data.len())
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl futures::io::AsyncRead for PacedBlock {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::future::Future;
        let this = self.get_mut();
        if let Some(wait) = this.wait.as_mut() {
            if wait.as_mut().poll(cx).is_pending() {
                return std::task::Poll::Pending;
            }
            this.wait = None;
        }
        let n = buf
            .len()
            .min(this.limiter.chunk())
            .min(this.data.len() - this.pos);
        buf[..n].copy_from_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        let wait = this.limiter.reserve(n as u64);
        if !wait.is_zero() {
            this.wait = Some(Box::pin(tokio::time::sleep(wait)));
        }
        std::task::Poll::Ready(Ok(n))
    }
}

#[async_trait::async_trait]
impl azure_core::SeekableStream for PacedBlock {
    async fn reset(&mut self) -> azure_core::Result<()> {
        self.pos = 0;
        self.wait = None;
        Ok(())
    }

    fn len(&self) -> usize {
        self.data.len()
    }
}

impl Backend for AzureBackend {
    fn put(&self, src: &Path, name: &str) -> BackendResult<()> {
        self.ensure_container()?;
        let mut f = File::open(src).map_err(|e| self.io_err(name, "open the local file", e))?;
        let len = f
            .metadata()
            .map_err(|e| self.io_err(name, "read the local file", e))?
            .len();
        let paced_block = self.block_size(len);
        let blob = self.client.blob_client(name);
        let tier = self.tier_for(name);
        let single = self.upload.max_single_put_size.unwrap_or(BLOCK).max(1);
        let chosen_block = self.upload.max_block_size.unwrap_or(BLOCK).max(1);
        // Under an upload limit, no request body may take longer to send than the read timeout allows.
        let (single, block) = match &self.limits.upload {
            None => (single, chosen_block),
            Some(_) => (single.min(paced_block), chosen_block.min(paced_block)),
        };
        if len <= single as u64 {
            let mut buf = vec![0u8; len as usize];
            let n = Self::fill(&mut f, &mut buf).map_err(|e| self.io_err(name, "read", e))?;
            buf.truncate(n);
            let body = self.body(buf);
            return self
                .rt
                .block_on(async {
                    let mut put = blob.put_block_blob(body);
                    if let Some(t) = tier {
                        put = put.access_tier(t);
                    }
                    put.await
                })
                .map(|_| ())
                .map_err(|e| self.err(name, e));
        }
        // At most `connections` blocks in memory and in flight; uncommitted blocks are invisible until
        // the list commits them (and Azure drops them after a week if the list never comes).
        let connections = self.upload.max_connections.unwrap_or(1).max(1);
        let mut ids = Vec::new();
        let mut at_end = false;
        while !at_end {
            let mut running = tokio::task::JoinSet::new();
            for _ in 0..connections {
                let mut buf = vec![0u8; block.min(len as usize).max(1)];
                let n = Self::fill(&mut f, &mut buf).map_err(|e| self.io_err(name, "read", e))?;
                if n == 0 {
                    at_end = true;
                    break;
                }
                buf.truncate(n);
                // Block ids must all have the same length within a blob: a fixed-width counter.
                let id = BlockId::new(format!("block-{:08}", ids.len()));
                ids.push(BlobBlockType::Uncommitted(id.clone()));
                let b = blob.clone();
                let body = self.body(buf);
                running.spawn_on(
                    async move { b.put_block(id, body).await.map(|_| ()) },
                    self.rt.handle(),
                );
            }
            self.rt.block_on(async {
                while let Some(done) = running.join_next().await {
                    match done {
                        Ok(r) => r.map_err(|e| self.err(name, e))?,
                        Err(e) => {
                            return Err(BackendError::Transient {
                                backend: self.describe(),
                                name: name.to_string(),
                                message: format!("block upload task failed: {e}"),
                            })
                        }
                    }
                }
                Ok(())
            })?;
        }
        let list = BlockList { blocks: ids };
        self.rt
            .block_on(async {
                let mut put = blob.put_block_list(list);
                if let Some(t) = tier {
                    put = put.access_tier(t);
                }
                put.await
            })
            .map(|_| ())
            .map_err(|e| self.err(name, e))
    }

    fn get(&self, name: &str, dst: &Path) -> BackendResult<()> {
        self.ensure_container()?;
        let blob = self.client.blob_client(name);
        // The size first: a ranged GET of an empty blob is an error, and a missing blob is a clean 404.
        let size = self
            .rt
            .block_on(async { blob.get_properties().await })
            .map_err(|e| self.err(name, e))?
            .blob
            .properties
            .content_length;
        let mut out =
            File::create(dst).map_err(|e| self.io_err(name, "create the local file", e))?;
        if size > 0 {
            self.rt.block_on(async {
                // An open-ended range makes the SDK ask for whole BLOCK-sized ranges (the last one
                // past the end, which Azure cuts short). A closed range under 4 MiB would make it add
                // x-ms-range-get-content-crc64, which Azurite refuses (500 FeatureNotSupported).
                let mut pages = blob
                    .get()
                    .range(0u64..)
                    .chunk_size(BLOCK as u64)
                    .into_stream();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| self.err(name, e))?;
                    let mut body = page.data;
                    while let Some(chunk) = body.next().await {
                        let chunk = chunk.map_err(|e| self.err(name, e))?;
                        out.write_all(&chunk)
                            .map_err(|e| self.io_err(name, "write the local file", e))?;
                        if let Some(limiter) = &self.limits.download {
                            // Meanwhile the connection is not read: TCP holds the sender back.
                            super::throttle::take_async(limiter, chunk.len() as u64).await;
                        }
                    }
                }
                Ok::<(), BackendError>(())
            })?;
        }
        let got = out
            .metadata()
            .map_err(|e| self.io_err(name, "write the local file", e))?
            .len();
        if got != size {
            return Err(BackendError::Transient {
                backend: self.describe(),
                name: name.to_string(),
                message: format!("downloaded {got} bytes of {size}"),
            });
        }
        Ok(())
    }

    fn list(&self) -> BackendResult<Vec<String>> {
        self.ensure_container()?;
        let what = format!("container {}", self.container);
        let mut names = Vec::new();
        self.rt.block_on(async {
            // The SDK follows NextMarker from page to page.
            let mut req = self.client.list_blobs();
            if let Some(n) = self.list_page {
                req = req.max_results(n);
            }
            let mut pages = req.into_stream();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| self.err(&what, e))?;
                names.extend(page.blobs.blobs().map(|b| b.name.clone()));
            }
            Ok::<(), BackendError>(())
        })?;
        names.sort();
        Ok(names)
    }

    fn delete(&self, names: &[String]) -> BackendResult<()> {
        self.ensure_container()?;
        for name in names {
            let blob = self.client.blob_client(name);
            match self.rt.block_on(async { blob.delete().await }) {
                Ok(_) => {}
                Err(e) => match self.err(name, e) {
                    BackendError::NotFound { .. } => {}
                    other => return Err(other),
                },
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("azure://{}", self.container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "c2VjcmV0LWtleS1ub3QtcmVhbA==";

    #[test]
    fn both_url_forms_name_the_same_container() {
        assert_eq!(container_from_url("azure://backups").unwrap(), "backups");
        assert_eq!(container_from_url("azure:///backups").unwrap(), "backups");
        assert_eq!(container_from_url("azure://backups/").unwrap(), "backups");
        // What the charm builds from the Python charm's `azure://` default and the unit name.
        assert_eq!(
            container_from_url("azure:///duplicity-0").unwrap(),
            "duplicity-0"
        );
    }

    #[test]
    fn container_names_follow_azure_rules() {
        for ok in ["abc", "a-b-c", "0day", "x1", "a23", &"a".repeat(63)] {
            if ok.len() >= 3 {
                validate_container(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            }
        }
        for bad in [
            "",
            "ab",
            &"a".repeat(64),
            "Backups",
            "back_ups",
            "-abc",
            "abc-",
            "a--b",
            "a.b",
            "dir/sub",
        ] {
            let e = validate_container(bad).unwrap_err();
            assert!(e.contains("3 to 63 characters"), "{bad}: {e}");
        }
        let e = container_from_url("azure://My_Backups")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lowercase"), "{e}");
        assert!(container_from_url("azure://").is_err());
    }

    #[test]
    fn connection_string_forms() {
        let a = parse_connection_string(&format!(
            "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000/dev/;"
        ))
        .unwrap();
        assert_eq!(a.endpoint, "http://127.0.0.1:10000/dev");
        assert_eq!((a.name.as_str(), a.key.as_deref()), ("dev", Some(KEY)));

        let a = parse_connection_string(&format!(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn"
        ))
        .unwrap();
        assert_eq!(a.endpoint, "https://acct.blob.core.chinacloudapi.cn");

        let a = parse_connection_string(&format!("AccountName=acct;AccountKey={KEY}")).unwrap();
        assert_eq!(a.endpoint, "https://acct.blob.core.windows.net");

        let a = parse_connection_string(
            "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=?sv=2022-11-02&sig=abc%2Bdef",
        )
        .unwrap();
        assert_eq!(a.sas.as_deref(), Some("sv=2022-11-02&sig=abc%2Bdef"));
        assert!(a.key.is_none());

        let a = parse_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(a.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    }

    #[test]
    fn bad_connection_strings_are_explained_without_the_key() {
        for s in [
            "AccountName=acct".to_string(),
            format!("AccountKey={KEY}"),
            format!("AccountName=a;AccountKey={KEY};DefaultEndpointsProtocol=ftp"),
            format!("AccountName=a;AccountKey={KEY};garbage"),
            "AccountName=a;AccountKey=not-base64-secret".to_string(),
        ] {
            let e = parse_connection_string(&s).err().unwrap();
            assert!(e.contains("AZURE_CONNECTION_STRING"), "{e}");
            assert!(!e.contains(KEY) && !e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn missing_connection_string_says_what_to_set() {
        let e = AzureBackend::from_url("azure://backups", &OpenOptions::new())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("AZURE_CONNECTION_STRING"), "{e}");
        assert!(e.contains("azure_connection_string"), "{e}");
    }

    #[test]
    fn describe_and_debug_show_no_secret() {
        let opts = OpenOptions {
            azure_connection_string: Some(format!(
                "AccountName=acct;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:9/acct"
            )),
            ..OpenOptions::new()
        };
        let b = AzureBackend::from_url("azure:///backups", &opts).unwrap();
        assert_eq!(b.describe(), "azure://backups");
        assert!(!format!("{b:?}").contains(KEY));
        let s = b.scrub(&format!("GET http://h/c?sig=x&k={KEY} failed; key {KEY}"));
        assert!(!s.contains(KEY) && !s.contains("sig=x"), "{s}");
    }
}
