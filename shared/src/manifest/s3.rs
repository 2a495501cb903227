//! Reading manifests from S3: the object pinned to its ETag and version, opened once (or from a
//! resume point with a ranged GET), and S3's refusals turned into reasons a user can act on.

use super::*;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::mpsc::Sender;
use tokio_util::io::SyncIoBridge;

use crate::error::{Error, Result};

/// Read buffer of the CSV parser; S3 bodies arrive in large frames, so a big buffer means fewer
/// hops through the async bridge.
pub(super) const READ_BUFFER_BYTES: usize = 64 * 1024;

pub(super) async fn read_csv_manifest(
    s3: &aws_sdk_s3::Client,
    manifest: &JobManifest,
    from: &ReadFrom,
    tx: Sender<Vec<Task>>,
) -> Result<u64> {
    let (bucket, key) = manifest_object(manifest)?;
    let source = format!("manifest s3://{bucket}/{key}");
    let fields = manifest.spec.fields.clone().ok_or_else(|| {
        Error::Manifest(format!(
            "{source}: Manifest.Spec.Fields is required for {CSV_MANIFEST_FORMAT}, e.g. [\"Bucket\", \"Key\"]"
        ))
    })?;
    // Checked before any byte is read, so a bad spec fails fast.
    Layout::csv_manifest(&fields, &source)?;
    let location = &manifest.location;
    let body = open_object(
        s3,
        &Opening {
            source: &source,
            bucket: &bucket,
            key: &key,
            version_id: location.object_version_id.as_deref(),
            expected_etag: location.etag.as_deref(),
            pin: &from.pin,
            from_byte: from.start.byte,
        },
    )
    .await?;
    tracing::debug!(%bucket, %key, from = ?from.start, "reading CSV manifest");
    let parse_source = source.clone();
    let start = from.start;
    let points = from.points.clone();
    let reader = SyncIoBridge::new(body.into_async_read());
    run_blocking(&source, "manifest", move || {
        let mut chunks = ChunkSender::new(tx);
        chunks.points = points;
        let layout = Layout::csv_manifest(&fields, &parse_source)?;
        let (count, _) = parse_rows(
            reader,
            &layout,
            &parse_source,
            "the CSV",
            Some(start),
            &mut |task, point| chunks.push_at(task, point),
        )?;
        chunks.flush();
        Ok(count)
    })
    .await
}

/// The pin of a manifest object now: its ETag and version, read with a HeadObject (of the job's
/// `ObjectVersionId`, checked against the job's `ETag`, when they are given).
pub async fn pin_manifest(s3: &aws_sdk_s3::Client, manifest: &JobManifest) -> Result<ManifestPin> {
    let (bucket, key) = manifest_object(manifest)?;
    let source = format!("manifest s3://{bucket}/{key}");
    let location = &manifest.location;
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .set_version_id(location.object_version_id.clone())
        .send()
        .await
        .map_err(|e| read_error(&source, "HeadObject", &e))?;
    if let Some(expected) = &location.etag {
        check_etag(&source, expected, head.e_tag())?;
    }
    Ok(ManifestPin {
        etag: head.e_tag().map(str::to_string),
        version_id: location
            .object_version_id
            .clone()
            .or_else(|| head.version_id().map(str::to_string))
            .filter(|v| v != "null"),
    })
}

/// Reads the inventory `manifest.json` that the job's ObjectArn names (version and ETag pinned as
/// the job asks) and checks that batchops can read its data files.
pub async fn fetch_inventory_manifest(
    s3: &aws_sdk_s3::Client,
    manifest: &JobManifest,
) -> Result<InventoryManifest> {
    fetch_inventory_manifest_pinned(s3, manifest, &ManifestPin::default()).await
}

/// [`fetch_inventory_manifest`] of the pinned `manifest.json`.
pub async fn fetch_inventory_manifest_pinned(
    s3: &aws_sdk_s3::Client,
    manifest: &JobManifest,
    pin: &ManifestPin,
) -> Result<InventoryManifest> {
    let (bucket, key) = manifest_object(manifest)?;
    let source = format!("manifest s3://{bucket}/{key}");
    let location = &manifest.location;
    let body = open_object(
        s3,
        &Opening {
            source: &source,
            bucket: &bucket,
            key: &key,
            version_id: location.object_version_id.as_deref(),
            expected_etag: location.etag.as_deref(),
            pin,
            from_byte: 0,
        },
    )
    .await?;
    // manifest.json is metadata (a list of data files), small even for billions of objects.
    let bytes = body
        .collect()
        .await
        .map_err(|e| {
            Error::Manifest(format!(
                "{source}: cannot read the object: {}",
                DisplayErrorContext(&e)
            ))
        })?
        .into_bytes();
    let inventory = InventoryManifest::parse(&bytes, &source)?;
    inventory.check_supported(&source)?;
    Ok(inventory)
}

/// Streams the tasks of one data file of an inventory into `tx`; the planner may call this once
/// per file to plan a large inventory in parallel. CSV data files are streamed; ORC and Parquet
/// files go through a temporary file (see [`columnar`]).
pub async fn read_inventory_file(
    s3: &aws_sdk_s3::Client,
    inventory: &InventoryManifest,
    file: &InventoryFile,
    tx: Sender<Vec<Task>>,
) -> Result<u64> {
    if let Some(format) = columnar::ColumnarFormat::from_file_format(&inventory.file_format) {
        return columnar::read_inventory_file(s3, inventory, file, format, tx).await;
    }
    let bucket = inventory.destination_bucket_name();
    let source = inventory.data_file_source(file);
    let body = open_object(
        s3,
        &Opening {
            source: &source,
            bucket: &bucket,
            key: &file.key,
            version_id: None,
            expected_etag: None,
            pin: &ManifestPin::default(),
            from_byte: 0,
        },
    )
    .await?;
    tracing::debug!(%bucket, key = %file.key, "reading inventory data file");
    let schema = inventory.file_schema.clone();
    let md5 = file.md5_checksum.clone();
    let sizes = inventory.want_sizes;
    let parse_source = source.clone();
    let mut reader = SyncIoBridge::new(body.into_async_read());
    let dir = std::env::temp_dir();
    run_blocking(&source, "manifest", move || {
        // No task of a file runs before the whole file's MD5 is checked: copy first, then parse.
        let spooled = columnar::spool_as(
            &mut reader,
            &dir,
            "csv.gz",
            "gzipped CSV",
            &parse_source,
            Some(&md5),
        )?;
        let mut chunks = ChunkSender::new(tx);
        let layout = Layout::inventory(&schema, &parse_source)?.with_sizes(sizes);
        let gunzip = flate2::read::MultiGzDecoder::new(spooled.reader(&parse_source)?);
        let (count, _) = parse_rows(
            gunzip,
            &layout,
            &parse_source,
            "the gzipped CSV",
            None,
            &mut |task, _| chunks.push(task),
        )?;
        chunks.flush();
        Ok(count)
    })
    .await
}

pub(super) fn manifest_object(manifest: &JobManifest) -> Result<(String, String)> {
    parse_object_arn(&manifest.location.object_arn).map_err(|e| match e {
        Error::InvalidRequest(reason) => Error::Manifest(format!("manifest: {reason}")),
        other => Error::Manifest(format!("manifest: {other}")),
    })
}

/// What to open: an object, with the job's own version and ETag, the planner's pin, and the byte
/// to start at.
pub(crate) struct Opening<'a> {
    pub source: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    /// The job's `ObjectVersionId`.
    pub version_id: Option<&'a str>,
    /// The job's `ETag`, checked on the response headers before any of the body is read.
    pub expected_etag: Option<&'a str>,
    /// The object as planning first read it: its version is read, or its ETag required.
    pub pin: &'a ManifestPin,
    pub from_byte: u64,
}

/// GetObject with the job's version and ETag and the planner's pin; from a byte on when asked.
pub(crate) async fn open_object(s3: &aws_sdk_s3::Client, o: &Opening<'_>) -> Result<ByteStream> {
    let version_id = o.version_id.or(o.pin.version_id.as_deref());
    // A version pins the object by itself; without one, the ETag must still be the same.
    let if_match = o.pin.etag.as_deref().filter(|_| version_id.is_none());
    let output = s3
        .get_object()
        .bucket(o.bucket)
        .key(o.key)
        .set_version_id(version_id.map(str::to_string))
        .set_if_match(if_match.map(str::to_string))
        .set_range((o.from_byte > 0).then(|| format!("bytes={}-", o.from_byte)))
        .send()
        .await
        .map_err(|e| {
            if e.raw_response().map(|r| r.status().as_u16()) == Some(412) {
                return Error::Manifest(format!(
                    "{}: the object changed while the job was planned: it no longer has the ETag {} it had when planning began, and a job never mixes two versions of its manifest (with versioning on the bucket, planning reads the version it began with)",
                    o.source,
                    if_match.unwrap_or_default()
                ));
            }
            read_error(o.source, "GetObject", &e)
        })?;
    if let Some(expected) = o.expected_etag {
        check_etag(o.source, expected, output.e_tag())?;
    }
    Ok(output.body)
}

/// Why a manifest object could not be read; see [`s3_refusal`].
pub(super) fn read_error<E>(
    source: &str,
    operation: &'static str,
    err: &SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    s3_refusal(&format!("{source}: cannot read the object"), operation, err)
}

/// An S3 call on a job's manifest (its object, a generator's listing or output) that failed.
/// S3 refusing for now (throttling, a server error, a timeout: what the SDK's own attempts did
/// not get past) is an `Error::Aws`, so that the plan request is delivered again and planning
/// goes on from its checkpoint; anything else (NoSuchKey, AccessDenied, ...) is the manifest's:
/// `Error::Manifest`, which fails the job with S3's reason after `what`.
pub(crate) fn s3_refusal<E>(
    what: &str,
    operation: &'static str,
    err: &SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let reason = s3_error_reason(err);
    if crate::error::aws::classify_s3_error(err).retryable {
        return Error::Aws {
            service: "S3",
            operation,
            message: format!("{what}: {reason} (tried again on the next delivery)"),
            source: None,
        };
    }
    Error::Manifest(format!("{what}: {reason}"))
}

/// The S3 error code first (NoSuchKey, AccessDenied, ...), then the HTTP status and message.
pub(crate) fn s3_error_reason<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err
        .raw_response()
        .map(|r| format!(" (HTTP {})", r.status().as_u16()))
        .unwrap_or_default();
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}{status}: {message}"),
        (Some(code), None) => format!("{code}{status}"),
        _ => format!("{}{status}", DisplayErrorContext(err)),
    }
}

/// Compares ETags as S3 shows them, ignoring the surrounding quotes.
pub fn check_etag(source: &str, expected: &str, actual: Option<&str>) -> Result<()> {
    let unquote = |s: &str| s.trim().trim_matches('"').to_string();
    let expected = unquote(expected);
    match actual.map(unquote) {
        Some(actual) if actual == expected => Ok(()),
        Some(actual) => Err(Error::Manifest(format!(
            "{source}: ETag mismatch: the job expects \"{expected}\" but the object's ETag is \"{actual}\""
        ))),
        None => Err(Error::Manifest(format!(
            "{source}: ETag mismatch: the job expects \"{expected}\" but the object has no ETag"
        ))),
    }
}

/// Runs a synchronous reader on a blocking thread; `what` names it if it stops unexpectedly.
pub(crate) async fn run_blocking<F>(source: &str, what: &str, read: F) -> Result<u64>
where
    F: FnOnce() -> Result<u64> + Send + 'static,
{
    tokio::task::spawn_blocking(read).await.map_err(|e| {
        Error::Manifest(format!(
            "{source}: the {what} reader stopped unexpectedly: {e}"
        ))
    })?
}
