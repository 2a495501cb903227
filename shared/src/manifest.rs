//! Manifests: the CSV manifest of S3 Batch Operations and S3 Inventory reports, read as streams.
//!
//! Parsing is synchronous over `std::io::Read` so it is fast and testable without a network; the
//! async entry point [`read_tasks`] bridges the S3 object body into it on a blocking thread and
//! hands tasks to the planner in chunks, so memory stays constant whatever the manifest's size.

use std::io::{self, Read};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::error::display::DisplayErrorContext;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::Sender;
use tokio_util::io::SyncIoBridge;

use crate::error::{Error, Result};
use crate::job::{bucket_from_arn, parse_object_arn, JobManifest};
use crate::job::{CSV_MANIFEST_FORMAT, INVENTORY_CSV_FORMAT};

pub mod columnar;

/// One object to act on: a task of the job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Task {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// The object's size in bytes, when the manifest says it (an inventory's `Size` column):
    /// what the planner sizes the batches of copies and checksums by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Tasks per chunk sent to the planner: large enough to amortise channel traffic, small enough
/// that memory stays flat.
pub const CHUNK_TASKS: usize = 1000;

/// Read buffer of the CSV parser; S3 bodies arrive in large frames, so a big buffer means fewer
/// hops through the async bridge.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The identity of a manifest object as planning first read it. Every later read names it (the
/// version, or the ETag as `If-Match`), so a job never mixes two versions of its manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPin {
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// Where reading a CSV manifest can start again: before its task number `task` (counted from the
/// start of the file), at byte `byte`, after `line` newlines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    pub task: u64,
    pub byte: u64,
    pub line: u64,
}

/// The most recent resume points of a CSV manifest being read, one per chunk of tasks sent: the
/// planner saves the latest one at or before its checkpoint, so that a continuation starts with
/// a ranged GET there instead of reading from byte 0.
#[derive(Debug, Clone, Default)]
pub struct ResumePoints(Arc<Mutex<VecDeque<ResumePoint>>>);

/// Resume points kept: the reader runs at most a few chunks ahead of what is sent.
const RESUME_POINTS_KEPT: usize = 64;

impl ResumePoints {
    fn record(&self, point: ResumePoint) {
        let mut points = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if points.len() >= RESUME_POINTS_KEPT {
            points.pop_front();
        }
        points.push_back(point);
    }

    /// The latest point at or before task `task`.
    pub fn at_or_before(&self, task: u64) -> Option<ResumePoint> {
        let points = self.0.lock().unwrap_or_else(|p| p.into_inner());
        points.iter().rev().find(|p| p.task <= task).copied()
    }
}

/// How to read a manifest: the pinned object, and (CSV manifests) where to start and where to
/// record resume points.
#[derive(Debug, Clone, Default)]
pub struct ReadFrom {
    pub pin: ManifestPin,
    pub start: ResumePoint,
    pub points: Option<ResumePoints>,
}

/// Streams the tasks of a manifest into `tx` in chunks, in manifest order, and returns how many
/// tasks there were. Errors are `Error::Manifest` with a reason fit for the job's FailureReasons.
///
/// If the receiver is dropped the reading stops quietly and the count so far is returned.
/// Each inventory data file is copied and its MD5 checked before any of its tasks is sent.
pub async fn read_tasks(
    s3: &aws_sdk_s3::Client,
    manifest: &JobManifest,
    tx: Sender<Vec<Task>>,
) -> Result<u64> {
    read_tasks_from(s3, manifest, &ReadFrom::default(), tx).await
}

/// [`read_tasks`] of the pinned manifest; a CSV manifest from `from.start` on.
pub async fn read_tasks_from(
    s3: &aws_sdk_s3::Client,
    manifest: &JobManifest,
    from: &ReadFrom,
    tx: Sender<Vec<Task>>,
) -> Result<u64> {
    match manifest.spec.format.as_str() {
        CSV_MANIFEST_FORMAT => read_csv_manifest(s3, manifest, from, tx).await,
        INVENTORY_CSV_FORMAT => {
            let inventory = fetch_inventory_manifest_pinned(s3, manifest, &from.pin).await?;
            let mut total = 0;
            for file in &inventory.files {
                if tx.is_closed() {
                    break;
                }
                total += read_inventory_file(s3, &inventory, file, tx.clone()).await?;
            }
            Ok(total)
        }
        other => Err(Error::Manifest(format!(
            "manifest {}: format {other} is not supported; use {CSV_MANIFEST_FORMAT} or {INVENTORY_CSV_FORMAT}",
            manifest.location.object_arn
        ))),
    }
}

async fn read_csv_manifest(
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

fn manifest_object(manifest: &JobManifest) -> Result<(String, String)> {
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
fn read_error<E>(source: &str, operation: &'static str, err: &SdkError<E, HttpResponse>) -> Error
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
    if crate::operation::classify_s3_error(err).retryable {
        return Error::Aws {
            service: "S3",
            operation,
            message: format!("{what}: {reason} (tried again on the next delivery)"),
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

/// Collects tasks into chunks and sends each with `blocking_send`; reports a dropped receiver so
/// the parser can stop. With `points`, records where reading could resume after each chunk.
pub(crate) struct ChunkSender {
    tx: Sender<Vec<Task>>,
    chunk: Vec<Task>,
    open: bool,
    points: Option<ResumePoints>,
    last_point: Option<ResumePoint>,
}

impl ChunkSender {
    pub(crate) fn new(tx: Sender<Vec<Task>>) -> Self {
        ChunkSender {
            tx,
            chunk: Vec::with_capacity(CHUNK_TASKS),
            open: true,
            points: None,
            last_point: None,
        }
    }

    pub(crate) fn push(&mut self, task: Task) -> bool {
        self.chunk.push(task);
        if self.chunk.len() >= CHUNK_TASKS {
            return self.flush();
        }
        self.open
    }

    /// Pushes a task and where reading could resume after it.
    fn push_at(&mut self, task: Task, point: Option<ResumePoint>) -> bool {
        self.last_point = point.or(self.last_point);
        self.push(task)
    }

    pub(crate) fn flush(&mut self) -> bool {
        if self.chunk.is_empty() || !self.open {
            return self.open;
        }
        // Recorded before the chunk is sent, so it exists when the planner reaches it.
        if let (Some(points), Some(point)) = (&self.points, self.last_point) {
            points.record(point);
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_TASKS));
        self.open = self.tx.blocking_send(chunk).is_ok();
        self.open
    }
}

// ---------------------------------------------------------------------------------------------
// Synchronous parsing
// ---------------------------------------------------------------------------------------------

/// Parses a `S3BatchOperations_CSV_20180820` manifest: no header, columns as `fields` names them
/// (Bucket, Key, VersionId, Ignore), URL-encoded keys. Calls `emit` for each task in order and
/// stops early, without error, when `emit` returns false. Returns the number of tasks emitted.
/// `source` names the manifest in error messages, e.g. `manifest s3://bucket/key`.
pub fn parse_csv_manifest<R: Read>(
    reader: R,
    fields: &[String],
    source: &str,
    mut emit: impl FnMut(Task) -> bool,
) -> Result<u64> {
    let layout = Layout::csv_manifest(fields, source)?;
    let (count, _) = parse_rows(reader, &layout, source, "the CSV", None, &mut |t, _| {
        emit(t)
    })?;
    Ok(count)
}

/// Like [`parse_csv_manifest`] for a manifest read from `start` on (`reader` begins at
/// `start.byte` of the file): line numbers and the resume points given to `emit` with each task
/// count from the start of the file.
pub fn parse_csv_manifest_from<R: Read>(
    reader: R,
    fields: &[String],
    source: &str,
    start: ResumePoint,
    mut emit: impl FnMut(Task, ResumePoint) -> bool,
) -> Result<u64> {
    let layout = Layout::csv_manifest(fields, source)?;
    let (count, _) = parse_rows(
        reader,
        &layout,
        source,
        "the CSV",
        Some(start),
        &mut |t, p| emit(t, p.unwrap_or(start)),
    )?;
    Ok(count)
}

/// Parses the (already decompressed) CSV of an S3 Inventory data file, columns in the order of the
/// inventory's `fileSchema`. Delete markers are skipped; keys are URL-decoded.
pub fn parse_inventory_csv<R: Read>(
    reader: R,
    file_schema: &str,
    source: &str,
    mut emit: impl FnMut(Task) -> bool,
) -> Result<u64> {
    let layout = Layout::inventory(file_schema, source)?.with_sizes(false);
    let (count, _) = parse_rows(reader, &layout, source, "the CSV", None, &mut |t, _| {
        emit(t)
    })?;
    Ok(count)
}

/// Parses an S3 Inventory data file as stored: gzipped CSV. The MD5 of the stored bytes is
/// computed while streaming and compared with `expected_md5` (the file's `MD5checksum` in
/// manifest.json) at the end, unless `emit` asked to stop early.
pub fn parse_inventory_data_file<R: Read>(
    reader: R,
    file_schema: &str,
    source: &str,
    expected_md5: Option<&str>,
    mut emit: impl FnMut(Task) -> bool,
) -> Result<u64> {
    let layout = Layout::inventory(file_schema, source)?.with_sizes(false);
    let mut hashed = Md5Reader::new(reader);
    let (count, completed) = {
        let gunzip = flate2::read::MultiGzDecoder::new(&mut hashed);
        parse_rows(
            gunzip,
            &layout,
            source,
            "the gzipped CSV",
            None,
            &mut |t, _| emit(t),
        )?
    };
    if !completed {
        return Ok(count);
    }
    // The decoder stops at the end of the last gzip member; hash anything after it too.
    io::copy(&mut hashed, &mut io::sink())
        .map_err(|e| Error::Manifest(format!("{source}: cannot read the file: {e}")))?;
    if let Some(expected) = expected_md5 {
        let actual = hashed.hex_digest();
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            return Err(Error::Manifest(format!(
                "{source}: MD5 mismatch: manifest.json gives MD5checksum {expected} but the file's {} bytes hash to {actual}",
                hashed.bytes
            )));
        }
    }
    Ok(count)
}

/// Where the task's parts are in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    width: usize,
    bucket: usize,
    key: usize,
    version_id: Option<usize>,
    delete_marker: Option<usize>,
    /// The `Size` column, read only when asked for.
    size: Option<usize>,
    /// Column names for error messages, e.g. "Bucket, Key".
    names: String,
}

impl Layout {
    fn csv_manifest(fields: &[String], source: &str) -> Result<Self> {
        let invalid =
            |reason: String| Error::Manifest(format!("{source}: Manifest.Spec.Fields {reason}"));
        if let Some(bad) = fields
            .iter()
            .find(|f| !matches!(f.as_str(), "Bucket" | "Key" | "VersionId" | "Ignore"))
        {
            return Err(invalid(format!(
                "names {bad:?}, which is not one of Bucket, Key, VersionId, Ignore"
            )));
        }
        let position = |name: &str| -> Result<Option<usize>> {
            let mut found = fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.as_str() == name);
            match (found.next(), found.next()) {
                (Some((i, _)), None) => Ok(Some(i)),
                (None, _) => Ok(None),
                (Some(_), Some(_)) => Err(invalid(format!("names {name} more than once"))),
            }
        };
        let bucket = position("Bucket")?.ok_or_else(|| invalid("must name Bucket".into()))?;
        let key = position("Key")?.ok_or_else(|| invalid("must name Key".into()))?;
        Ok(Layout {
            width: fields.len(),
            bucket,
            key,
            version_id: position("VersionId")?,
            delete_marker: None,
            size: None,
            names: fields.join(", "),
        })
    }

    fn inventory(file_schema: &str, source: &str) -> Result<Self> {
        let columns: Vec<&str> = file_schema.split(',').map(str::trim).collect();
        let position = |name: &str| columns.iter().position(|c| *c == name);
        let required = |name: &str| {
            position(name).ok_or_else(|| {
                Error::Manifest(format!(
                    "{source}: the inventory fileSchema {file_schema:?} has no {name} column"
                ))
            })
        };
        Ok(Layout {
            width: columns.len(),
            bucket: required("Bucket")?,
            key: required("Key")?,
            version_id: position("VersionId"),
            delete_marker: position("IsDeleteMarker"),
            size: position("Size"),
            names: columns.join(", "),
        })
    }

    /// Reads the `Size` column (when there is one) only if `sizes`.
    fn with_sizes(mut self, sizes: bool) -> Self {
        if !sizes {
            self.size = None;
        }
        self
    }

    /// The task of a row; `None` for rows that are not tasks (delete markers).
    fn task(&self, row: &csv::ByteRecord) -> std::result::Result<Option<Task>, String> {
        if row.len() != self.width {
            return Err(format!(
                "expected {} columns ({}), found {}",
                self.width,
                self.names,
                row.len()
            ));
        }
        let field = |i: usize| row.get(i).unwrap_or_default();
        if let Some(i) = self.delete_marker {
            if field(i).eq_ignore_ascii_case(b"true") {
                return Ok(None);
            }
        }
        let bucket = std::str::from_utf8(field(self.bucket))
            .map_err(|_| "the bucket name is not valid UTF-8".to_string())?;
        if bucket.is_empty() {
            return Err("the bucket name is empty".into());
        }
        let raw_key = field(self.key);
        let key = decode_key_bytes(raw_key).map_err(|e| {
            format!(
                "cannot decode key {:?}: {e}",
                String::from_utf8_lossy(raw_key)
            )
        })?;
        if key.is_empty() {
            return Err("the key is empty".into());
        }
        let version_id = match self.version_id.map(field) {
            None | Some(b"") => None,
            Some(raw) => Some(
                std::str::from_utf8(raw)
                    .map_err(|_| "the version ID is not valid UTF-8".to_string())?
                    .to_string(),
            ),
        };
        let size = match self.size.map(field) {
            None | Some(b"") => None,
            Some(raw) => Some(
                std::str::from_utf8(raw)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        format!(
                            "the size {:?} is not a number",
                            String::from_utf8_lossy(raw)
                        )
                    })?,
            ),
        };
        Ok(Some(Task {
            bucket: bucket.to_string(),
            key,
            version_id,
            size,
        }))
    }
}

/// Reads CSV rows and emits their tasks. Returns the count and whether the input was read to the
/// end (false when `emit` asked to stop). With `start` (a CSV manifest read from a resume point
/// on), each task comes with the point just after its row, and line numbers count from the start
/// of the file; without, no points are worked out.
fn parse_rows<R: Read>(
    reader: R,
    layout: &Layout,
    source: &str,
    what: &str,
    start: Option<ResumePoint>,
    emit: &mut dyn FnMut(Task, Option<ResumePoint>) -> bool,
) -> Result<(u64, bool)> {
    let base = start.unwrap_or_default();
    let read_error = |line: u64, e: &dyn std::fmt::Display| {
        let line = base.line + line;
        let place = if line == 0 {
            "at the start".to_string()
        } else {
            format!("after line {line}")
        };
        Error::Manifest(format!("{source}: cannot read {what} {place}: {e}"))
    };
    // A byte order mark can only be at the start of the file.
    let (reader, bom) = if base.byte == 0 {
        skip_bom(reader).map_err(|e| read_error(0, &e))?
    } else {
        (io::Cursor::new(Vec::new()).chain(reader), 0)
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(READ_BUFFER_BYTES)
        .from_reader(LineCounter::new(RowGuard::new(reader)));
    let mut row = csv::ByteRecord::new();
    let mut count = 0u64;
    loop {
        match csv.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => return Ok((count, true)),
            Err(e) => {
                if let Some(problem) = RowProblem::of(&e) {
                    let line = base.line + problem.line;
                    return Err(Error::Manifest(format!(
                        "{source} line {line}: {}",
                        problem.reason
                    )));
                }
                // The lines read whole so far: the newlines the reader has consumed.
                let consumed = csv.position().byte();
                return Err(read_error(csv.get_ref().newlines_before(consumed), &e));
            }
        }
        match layout.task(&row) {
            Ok(Some(task)) => {
                count += 1;
                let point = start.map(|_| {
                    let end = csv.position().byte();
                    ResumePoint {
                        task: base.task + count,
                        byte: base.byte + bom + end,
                        line: base.line + csv.get_mut().newlines_until(end),
                    }
                });
                if !emit(task, point) {
                    return Ok((count, false));
                }
            }
            Ok(None) => {}
            Err(reason) => {
                let line = base.line + start_line(&mut csv, &row);
                return Err(Error::Manifest(format!("{source} line {line}: {reason}")));
            }
        }
    }
}

/// The line on which the row just read starts; worked out only for a row in error. The csv
/// crate's own line numbers skip blank lines and CRLF pairs, so lines are counted here: after a
/// row, the reader stands just past the first byte of its terminator ('\n', or the '\r' of
/// "\r\n"; the end of input for a last row without one), and the row's own newlines are the
/// ones inside quoted fields.
fn start_line<R: Read>(csv: &mut csv::Reader<LineCounter<R>>, row: &csv::ByteRecord) -> u64 {
    let end = csv.position().byte().saturating_sub(1);
    let inside = newline_count(row.as_slice());
    1 + csv.get_mut().newlines_before(end).saturating_sub(inside)
}

/// Counts in byte-wide counters (at most 255 bytes per chunk) so that it vectorises well: every
/// byte of a manifest passes through here once.
fn newline_count(bytes: &[u8]) -> u64 {
    bytes
        .chunks(255)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'\n')));
            u64::from(n)
        })
        .sum()
}

/// Passes bytes through, counting the newlines of every read and keeping a copy of the last one,
/// so that the line of a row in error can be worked out. The CSV reader refills its buffer only
/// once it has used it up, so the row just read always ends inside the last read.
struct LineCounter<R> {
    inner: R,
    last: Vec<u8>,
    /// Offset of the first byte of `last` in the stream.
    last_start: u64,
    /// Newlines before `last_start`.
    newlines_before_last: u64,
    /// [`LineCounter::newlines_until`]'s last answer (position, newlines before it), so that
    /// positions asked for in order are counted once in all.
    memo: (u64, u64),
}

impl<R: Read> LineCounter<R> {
    fn new(inner: R) -> Self {
        LineCounter {
            inner,
            last: Vec::new(),
            last_start: 0,
            newlines_before_last: 0,
            memo: (0, 0),
        }
    }

    /// Newlines before `position` (within the last read), counting on from the last position
    /// asked for when this one is not before it.
    fn newlines_until(&mut self, position: u64) -> u64 {
        let (at, count) = self.memo;
        if position < at || at < self.last_start {
            let count = self.newlines_before(position);
            self.memo = (position, count);
            return count;
        }
        let from = usize::try_from(at - self.last_start)
            .unwrap_or(usize::MAX)
            .min(self.last.len());
        let to = usize::try_from(position.saturating_sub(self.last_start))
            .unwrap_or(usize::MAX)
            .min(self.last.len());
        let count = count + newline_count(&self.last[from..to.max(from)]);
        self.memo = (position, count);
        count
    }

    /// Newlines at byte offsets before `position`, which must not be before the last read.
    fn newlines_before(&self, position: u64) -> u64 {
        let within = usize::try_from(position.saturating_sub(self.last_start))
            .unwrap_or(usize::MAX)
            .min(self.last.len());
        self.newlines_before_last + newline_count(&self.last[..within])
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.newlines_before_last += newline_count(&self.last);
            self.last_start += self.last.len() as u64;
            self.last.clear();
            self.last.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// The longest row a manifest may have. A row is a bucket (63 bytes), a URL-encoded key (at most
/// 3 x 1,024 bytes), a version ID and a few more columns; anything near this is not a manifest,
/// or a quote was left open and swallowed the lines after it.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// Why a CSV row is malformed in a way the CSV parser itself lets through: a quoted field that is
/// never closed (the parser would run it to the end of the file, many lines as one key), or a row
/// without bound. `line` counts from the start of what was read, from 1.
#[derive(Debug)]
struct RowProblem {
    line: u64,
    reason: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for RowProblem {}

impl RowProblem {
    fn of(error: &csv::Error) -> Option<&RowProblem> {
        match error.kind() {
            csv::ErrorKind::Io(io) => io.get_ref()?.downcast_ref::<RowProblem>(),
            _ => None,
        }
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// Where the bytes read so far leave the CSV grammar (RFC 4180, as the csv crate reads it: a
/// quote opens a quoted field only at the start of a field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    Unquoted {
        field_start: bool,
    },
    Quoted,
    /// Just after a quote inside a quoted field: the end of the field, or the first half of `""`.
    QuoteInQuoted,
}

/// Bytes that move [`QuoteState`]; every other byte is field content.
const CSV_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b',' as usize] = true;
    table[b'\n' as usize] = true;
    table[b'\r' as usize] = true;
    table
};

/// Passes bytes through while following the quoting of the CSV, so that an unterminated quote
/// and an unbounded row fail with their line instead of becoming one huge task (the csv crate
/// accepts a quote left open and buffers the rest of the file as one field).
struct RowGuard<R> {
    inner: R,
    state: QuoteState,
    row_bytes: usize,
    newlines: u64,
    row_line: u64,
    quote_line: u64,
}

impl<R: Read> RowGuard<R> {
    fn new(inner: R) -> Self {
        RowGuard {
            inner,
            state: QuoteState::Unquoted { field_start: true },
            row_bytes: 0,
            newlines: 0,
            row_line: 1,
            quote_line: 0,
        }
    }

    fn end_row(&mut self) {
        self.state = QuoteState::Unquoted { field_start: true };
        self.row_bytes = 0;
        self.row_line = self.newlines + 1;
    }

    fn scan(&mut self, bytes: &[u8]) -> std::result::Result<(), RowProblem> {
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            let plain = rest
                .iter()
                .position(|&b| CSV_SPECIAL[usize::from(b)])
                .unwrap_or(rest.len());
            if plain > 0 {
                if self.state != QuoteState::Quoted {
                    self.state = QuoteState::Unquoted { field_start: false };
                }
                self.row_bytes += plain;
                i += plain;
            } else {
                self.step(bytes[i]);
                i += 1;
            }
            if self.row_bytes > MAX_ROW_BYTES {
                let reason = if self.state == QuoteState::Quoted {
                    format!("a quoted field opened on line {} runs on for more than {MAX_ROW_BYTES} bytes: a quote is not closed", self.quote_line)
                } else {
                    format!("a row is longer than {MAX_ROW_BYTES} bytes; a manifest row is a bucket, a URL-encoded key and a version ID")
                };
                return Err(RowProblem {
                    line: self.row_line,
                    reason,
                });
            }
        }
        Ok(())
    }

    fn step(&mut self, byte: u8) {
        self.row_bytes += 1;
        if byte == b'\n' {
            self.newlines += 1;
        }
        match (self.state, byte) {
            (QuoteState::Quoted, b'"') => self.state = QuoteState::QuoteInQuoted,
            (QuoteState::Quoted, _) => {}
            (QuoteState::QuoteInQuoted, b'"') => self.state = QuoteState::Quoted,
            (QuoteState::Unquoted { field_start: true }, b'"') => {
                self.state = QuoteState::Quoted;
                self.quote_line = self.newlines + 1;
            }
            (_, b'\n' | b'\r') => self.end_row(),
            (_, b',') => self.state = QuoteState::Unquoted { field_start: true },
            _ => self.state = QuoteState::Unquoted { field_start: false },
        }
    }
}

impl<R: Read> Read for RowGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.state == QuoteState::Quoted {
            return Err(RowProblem {
                line: self.quote_line,
                reason: "a quoted field opened on this line is never closed (a quote is missing, or a quote inside a key is not URL-encoded as %22)".into(),
            }
            .into_io());
        }
        self.scan(&buf[..n]).map_err(RowProblem::into_io)?;
        Ok(n)
    }
}

/// A reader with bytes read ahead put back in front.
type Unread<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Drops a UTF-8 byte order mark. The CSV parser only strips one that arrives in its first read,
/// so it is done here, whatever sizes the reads come in.
fn skip_bom<R: Read>(mut reader: R) -> io::Result<(Unread<R>, u64)> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut start = Vec::with_capacity(BOM.len());
    while start.len() < BOM.len() {
        let mut byte = [0u8; 1];
        match reader.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                start.push(byte[0]);
                if !BOM.starts_with(&start) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut dropped = 0;
    if start == BOM {
        start.clear();
        dropped = BOM.len() as u64;
    }
    Ok((io::Cursor::new(start).chain(reader), dropped))
}

/// Passes bytes through and keeps their MD5 and count.
struct Md5Reader<R> {
    inner: R,
    md5: Md5,
    bytes: u64,
}

impl<R: Read> Md5Reader<R> {
    fn new(inner: R) -> Self {
        Md5Reader {
            inner,
            md5: Md5::new(),
            bytes: 0,
        }
    }

    fn hex_digest(&self) -> String {
        hex::encode(self.md5.clone().finalize())
    }
}

impl<R: Read> Read for Md5Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// S3 Inventory manifest.json
// ---------------------------------------------------------------------------------------------

/// An S3 Inventory `manifest.json`, as S3 writes it next to the data files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryManifest {
    pub source_bucket: String,
    /// An ARN, `arn:aws:s3:::bucket`.
    pub destination_bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Milliseconds since the epoch, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// CSV, ORC or Parquet.
    pub file_format: String,
    /// For CSV, the column names in order, e.g. "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size";
    /// for ORC, `struct<bucket:string,key:string,...>`; for Parquet,
    /// `message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); ... }`.
    pub file_schema: String,
    pub files: Vec<InventoryFile>,
    /// Whether the readers put each object's size into its task (not part of the file: the
    /// planner asks for sizes when the job's batches are sized by them).
    #[serde(skip)]
    pub want_sizes: bool,
}

/// One data file of an inventory report, in the destination bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryFile {
    pub key: String,
    pub size: u64,
    /// Hex MD5 of the file as stored (gzipped CSV, or the ORC or Parquet file).
    #[serde(rename = "MD5checksum")]
    pub md5_checksum: String,
}

impl InventoryManifest {
    /// `source` names the manifest.json in error messages.
    pub fn parse(json: &[u8], source: &str) -> Result<Self> {
        let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
        let invalid = |e: &dyn std::fmt::Display| {
            Error::Manifest(format!(
                "{source}: not a valid S3 Inventory manifest.json: {e}"
            ))
        };
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| invalid(&e))?;
        if !value.is_object() {
            return Err(invalid(&format!(
                "expected an object with sourceBucket, fileFormat, fileSchema and files, got {}",
                crate::job::json_kind(&value)
            )));
        }
        serde_json::from_value(value).map_err(|e| invalid(&e))
    }

    /// Checks that batchops can read the data files: CSV, ORC or Parquet, with bucket and key
    /// columns in the `fileSchema`.
    pub fn check_supported(&self, source: &str) -> Result<()> {
        if let Some(format) = columnar::ColumnarFormat::from_file_format(&self.file_format) {
            return columnar::check_file_schema(format, &self.file_schema, source);
        }
        if !self.file_format.eq_ignore_ascii_case("CSV") {
            return Err(Error::Manifest(format!(
                "{source}: inventory fileFormat {} is not supported; S3 Inventory writes CSV, ORC or Parquet",
                self.file_format
            )));
        }
        Layout::inventory(&self.file_schema, source).map(|_| ())
    }

    /// The name of the bucket that holds the data files.
    pub fn destination_bucket_name(&self) -> String {
        bucket_from_arn(&self.destination_bucket)
    }

    /// How errors name one data file.
    pub fn data_file_source(&self, file: &InventoryFile) -> String {
        format!(
            "inventory data file s3://{}/{}",
            self.destination_bucket_name(),
            file.key
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Key encoding
// ---------------------------------------------------------------------------------------------

/// Decodes a URL-encoded key as manifests and inventories carry them (form decoding: '+' is a
/// space, %XX a byte); the result must be UTF-8.
pub fn decode_key(s: &str) -> std::result::Result<String, String> {
    decode_key_bytes(s.as_bytes())
}

fn decode_key_bytes(raw: &[u8]) -> std::result::Result<String, String> {
    let not_utf8 = || "the decoded key is not valid UTF-8".to_string();
    let Some(first) = memchr::memchr2(b'%', b'+', raw) else {
        return std::str::from_utf8(raw)
            .map(str::to_string)
            .map_err(|_| not_utf8());
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while i < raw.len() {
        if raw[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            let hi = raw.get(i + 1).copied().and_then(hex_value);
            let lo = raw.get(i + 2).copied().and_then(hex_value);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                let escape = &raw[i..raw.len().min(i + 3)];
                return Err(format!(
                    "invalid percent-escape {:?} at byte {i}",
                    String::from_utf8_lossy(escape)
                ));
            };
            out.push(hi << 4 | lo);
            i += 3;
        }
        // Copy the plain run up to the next escape in one go.
        let next = memchr::memchr2(b'%', b'+', &raw[i..]).map_or(raw.len(), |n| i + n);
        out.extend_from_slice(&raw[i..next]);
        i = next;
    }
    String::from_utf8(out).map_err(|_| not_utf8())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Everything but the unreserved characters and '/' is escaped.
const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// URL-encodes a key for a manifest: the inverse of [`decode_key`].
pub fn encode_key(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, KEY_ESCAPES).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    const SRC: &str = "manifest s3://b/m.csv";

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn task(bucket: &str, key: &str, version_id: Option<&str>) -> Task {
        Task {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version_id.map(str::to_string),
            size: None,
        }
    }

    fn csv_tasks(data: &[u8], names: &[&str]) -> Result<Vec<Task>> {
        let mut tasks = Vec::new();
        let count = parse_csv_manifest(data, &fields(names), SRC, |t| {
            tasks.push(t);
            true
        })?;
        assert_eq!(count, tasks.len() as u64);
        Ok(tasks)
    }

    /// Every task of `data` read from `start` on, with the resume point after each.
    fn tasks_from(data: &[u8], start: ResumePoint) -> Result<Vec<(Task, ResumePoint)>> {
        let mut out = Vec::new();
        let from = usize::try_from(start.byte).unwrap();
        parse_csv_manifest_from(
            &data[from..],
            &fields(&["Bucket", "Key"]),
            SRC,
            start,
            |t, p| {
                out.push((t, p));
                true
            },
        )?;
        Ok(out)
    }

    #[test]
    fn a_csv_manifest_resumed_at_any_point_gives_exactly_the_remaining_tasks() {
        // A byte order mark, CRLF and LF endings, a blank line, a quoted key with a line break.
        let data = "\u{feff}b,k0\r\nb,k1\n\nb,\"k%0A2\"\r\nb,\"k\n3\"\nb,k4\nb,k5".as_bytes();
        let whole = tasks_from(data, ResumePoint::default()).unwrap();
        let keys: Vec<&str> = whole.iter().map(|(t, _)| t.key.as_str()).collect();
        assert_eq!(keys, ["k0", "k1", "k\n2", "k\n3", "k4", "k5"]);
        for (i, (_, point)) in whole.iter().enumerate() {
            assert_eq!(point.task, i as u64 + 1);
            let rest = tasks_from(data, *point).unwrap();
            assert_eq!(
                rest.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
                whole[i + 1..]
                    .iter()
                    .map(|(t, _)| t.clone())
                    .collect::<Vec<_>>(),
                "resumed after task {i} at {point:?}"
            );
            assert_eq!(rest, whole[i + 1..].to_vec(), "the same points again");
        }
    }

    #[test]
    fn a_resumed_csv_manifest_names_lines_from_the_start_of_the_file() {
        let data = b"b,k0\r\nb,k1\nb,\"a\nb\"\nb,k3\nb,k4,extra\n";
        let whole = manifest_error(csv_tasks(data, &["Bucket", "Key"]));
        assert!(
            whole.ends_with("line 6: expected 2 columns (Bucket, Key), found 3"),
            "{whole}"
        );
        let mut points = Vec::new();
        let _ = parse_csv_manifest_from(
            &data[..],
            &fields(&["Bucket", "Key"]),
            SRC,
            ResumePoint::default(),
            |_, p| {
                points.push(p);
                true
            },
        );
        for point in points {
            let from = usize::try_from(point.byte).unwrap();
            let resumed = parse_csv_manifest_from(
                &data[from..],
                &fields(&["Bucket", "Key"]),
                SRC,
                point,
                |_, _| true,
            );
            match resumed {
                Err(Error::Manifest(reason)) => assert_eq!(reason, whole, "from {point:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    fn manifest_error(result: Result<Vec<Task>>) -> String {
        match result {
            Err(Error::Manifest(reason)) => reason,
            other => panic!("expected Error::Manifest, got {other:?}"),
        }
    }

    /// Hands out one byte per read, the worst a network stream can do.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((byte, rest)), Some(slot)) => {
                    *slot = *byte;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn csv_tasks_trickled(data: &[u8], names: &[&str]) -> Result<Vec<Task>> {
        let mut tasks = Vec::new();
        parse_csv_manifest(Trickle(data), &fields(names), SRC, |t| {
            tasks.push(t);
            true
        })?;
        Ok(tasks)
    }

    #[test]
    fn csv_two_columns() {
        let tasks = csv_tasks(b"b1,k1\nb2,dir/k2\n", &["Bucket", "Key"]).unwrap();
        assert_eq!(
            tasks,
            vec![task("b1", "k1", None), task("b2", "dir/k2", None)]
        );
    }

    #[test]
    fn csv_three_columns_with_empty_version() {
        let tasks = csv_tasks(b"b,k1,v1\nb,k2,\n", &["Bucket", "Key", "VersionId"]).unwrap();
        assert_eq!(
            tasks,
            vec![task("b", "k1", Some("v1")), task("b", "k2", None)]
        );
    }

    #[test]
    fn csv_columns_follow_fields_including_ignore() {
        let tasks = csv_tasks(b"x,v1,k1,b\n", &["Ignore", "VersionId", "Key", "Bucket"]).unwrap();
        assert_eq!(tasks, vec![task("b", "k1", Some("v1"))]);
    }

    #[test]
    fn csv_bom_crlf_and_blank_trailing_lines() {
        let data = b"\xEF\xBB\xBFb,k1\r\nb,k2\r\n\r\n\n";
        assert_eq!(
            csv_tasks(data, &["Bucket", "Key"]).unwrap(),
            vec![task("b", "k1", None), task("b", "k2", None)]
        );
    }

    #[test]
    fn csv_bom_is_skipped_even_when_reads_are_tiny() {
        let data = b"\xEF\xBB\xBFb,k1\nb,k2\n";
        let mut tasks = Vec::new();
        parse_csv_manifest(Trickle(data), &fields(&["Bucket", "Key"]), SRC, |t| {
            tasks.push(t);
            true
        })
        .unwrap();
        assert_eq!(tasks, vec![task("b", "k1", None), task("b", "k2", None)]);
    }

    #[test]
    fn csv_quoted_fields_with_commas_quotes_and_newlines() {
        let data = b"\"b\",\"a,b\"\nb,\"say \"\"hi\"\"\"\nb,\"two\nlines\"\n";
        assert_eq!(
            csv_tasks(data, &["Bucket", "Key"]).unwrap(),
            vec![
                task("b", "a,b", None),
                task("b", "say \"hi\"", None),
                task("b", "two\nlines", None)
            ]
        );
    }

    #[test]
    fn csv_unterminated_quote_fails_with_the_line_it_opens_on() {
        // Found by a hostile run: the csv crate runs an open quote to the end of the file, so
        // two lines became one task whose key held a newline.
        let data = b"src,a.txt\nsrc,\"a.txt\nsrc,a.txt\n";
        let reason = manifest_error(csv_tasks(data, &["Bucket", "Key"]));
        assert!(
            reason.starts_with(&format!(
                "{SRC} line 2: a quoted field opened on this line is never closed"
            )),
            "{reason}"
        );
        // The same, read a byte at a time, and without a final newline.
        let reason = manifest_error(csv_tasks_trickled(b"b,k\nb,k\nb,\"k", &["Bucket", "Key"]));
        assert!(
            reason.starts_with(&format!("{SRC} line 3: a quoted field")),
            "{reason}"
        );
    }

    #[test]
    fn csv_quotes_that_close_and_literal_quotes_still_parse() {
        let data = b"b,\"a\"\"b\"\nb,x\"y\nb,\"q\"\n\"b\",\"\"\"\"\n";
        let tasks = csv_tasks(data, &["Bucket", "Key"]).unwrap();
        let keys: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["a\"b", "x\"y", "q", "\""]);
    }

    #[test]
    fn csv_rows_have_a_bound() {
        let mut data = b"b,k\nb,".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_ROW_BYTES + 10));
        data.extend_from_slice(b"\nb,k\n");
        let reason = manifest_error(csv_tasks(&data, &["Bucket", "Key"]));
        assert!(
            reason.starts_with(&format!("{SRC} line 2: a row is longer than 65536 bytes")),
            "{reason}"
        );
        // An open quote followed by a large file fails at the bound, not at the end of the file.
        let mut data = b"b,\"k\n".to_vec();
        for i in 0..10_000 {
            data.extend_from_slice(format!("b,key{i}\n").as_bytes());
        }
        let reason = manifest_error(csv_tasks(&data, &["Bucket", "Key"]));
        assert!(
            reason.contains("line 1: a quoted field opened on line 1 runs on for more than"),
            "{reason}"
        );
    }

    #[test]
    fn csv_keys_are_url_decoded() {
        let data = b"b,my+file%2B1.txt\nb,caf%C3%A9/%25done%2C\nb,plain/%F0%9F%A6%80\n";
        assert_eq!(
            csv_tasks(data, &["Bucket", "Key"]).unwrap(),
            vec![
                task("b", "my file+1.txt", None),
                task("b", "café/%done,", None),
                task("b", "plain/🦀", None)
            ]
        );
    }

    #[test]
    fn csv_wrong_column_count_names_the_line() {
        let reason = manifest_error(csv_tasks(b"b,k\nb,k\nb,k,x\n", &["Bucket", "Key"]));
        assert_eq!(
            reason,
            "manifest s3://b/m.csv line 3: expected 2 columns (Bucket, Key), found 3"
        );
        let reason = manifest_error(csv_tasks(b"b,k,v\nb,k\n", &["Bucket", "Key", "VersionId"]));
        assert_eq!(
            reason,
            "manifest s3://b/m.csv line 2: expected 3 columns (Bucket, Key, VersionId), found 2"
        );
    }

    #[test]
    fn csv_line_numbers_count_blank_lines_and_quoted_newlines() {
        let reason = manifest_error(csv_tasks(
            b"b,\"multi\nline\"\n\nb,k,extra\n",
            &["Bucket", "Key"],
        ));
        assert!(
            reason.starts_with("manifest s3://b/m.csv line 4: "),
            "{reason}"
        );
    }

    #[test]
    fn csv_bad_percent_encoding_names_the_line() {
        let reason = manifest_error(csv_tasks(b"b,ok\nb,bad%zzkey\n", &["Bucket", "Key"]));
        assert_eq!(
            reason,
            "manifest s3://b/m.csv line 2: cannot decode key \"bad%zzkey\": invalid percent-escape \"%zz\" at byte 3"
        );
        let reason = manifest_error(csv_tasks(b"b,truncated%4\n", &["Bucket", "Key"]));
        assert!(reason.contains("line 1: cannot decode key"), "{reason}");
    }

    #[test]
    fn csv_invalid_utf8_after_decoding_names_the_line() {
        let reason = manifest_error(csv_tasks(b"b,k\nb,k\nb,%FF%FE\n", &["Bucket", "Key"]));
        assert_eq!(
            reason,
            "manifest s3://b/m.csv line 3: cannot decode key \"%FF%FE\": the decoded key is not valid UTF-8"
        );
    }

    #[test]
    fn csv_empty_key_and_empty_bucket_name_the_line() {
        let reason = manifest_error(csv_tasks(b"b,k\nb,\n", &["Bucket", "Key"]));
        assert_eq!(reason, "manifest s3://b/m.csv line 2: the key is empty");
        let reason = manifest_error(csv_tasks(b",k\n", &["Bucket", "Key"]));
        assert_eq!(
            reason,
            "manifest s3://b/m.csv line 1: the bucket name is empty"
        );
    }

    #[test]
    fn csv_bad_fields_spec_is_refused() {
        let reason = manifest_error(csv_tasks(b"b,k\n", &["Bucket"]));
        assert!(reason.contains("must name Key"), "{reason}");
        let reason = manifest_error(csv_tasks(b"b,k\n", &["Bucket", "Key", "Key"]));
        assert!(reason.contains("Key more than once"), "{reason}");
        let reason = manifest_error(csv_tasks(b"b,k\n", &["Bucket", "Name"]));
        assert!(reason.contains("\"Name\""), "{reason}");
    }

    #[test]
    fn csv_empty_manifest_has_no_tasks() {
        assert_eq!(csv_tasks(b"", &["Bucket", "Key"]).unwrap(), vec![]);
        assert_eq!(
            csv_tasks(b"\xEF\xBB\xBF\n\n", &["Bucket", "Key"]).unwrap(),
            vec![]
        );
    }

    #[test]
    fn csv_stops_quietly_when_emit_says_stop() {
        let mut seen = 0;
        let count = parse_csv_manifest(
            &b"b,1\nb,2\nb,3\nb,4\n"[..],
            &fields(&["Bucket", "Key"]),
            SRC,
            |_| {
                seen += 1;
                seen < 2
            },
        )
        .unwrap();
        assert_eq!((count, seen), (2, 2));
    }

    // --- S3 Inventory ----------------------------------------------------------------------

    const SCHEMA: &str = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size";
    const FILE: &str = "inventory data file s3://dest/inv/data/1.csv.gz";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn md5_hex(data: &[u8]) -> String {
        hex::encode(Md5::digest(data))
    }

    fn inventory_tasks(stored: &[u8], schema: &str, md5: Option<&str>) -> Result<Vec<Task>> {
        let mut tasks = Vec::new();
        let count = parse_inventory_data_file(stored, schema, FILE, md5, |t| {
            tasks.push(t);
            true
        })?;
        assert_eq!(count, tasks.len() as u64);
        Ok(tasks)
    }

    #[test]
    fn inventory_rows_follow_file_schema_and_skip_delete_markers() {
        let csv = concat!(
            "\"src\",\"a%20b.txt\",\"v1\",\"true\",\"false\",\"10\"\n",
            "\"src\",\"deleted\",\"v2\",\"true\",\"true\",\"\"\n",
            "\"src\",\"old+version\",\"v0\",\"false\",\"false\",\"3\"\n",
            "\"src\",\"unversioned\",\"\",\"true\",\"false\",\"4\"\n",
        );
        let stored = gzip(csv.as_bytes());
        let tasks = inventory_tasks(&stored, SCHEMA, Some(&md5_hex(&stored))).unwrap();
        assert_eq!(
            tasks,
            vec![
                task("src", "a b.txt", Some("v1")),
                task("src", "old version", Some("v0")),
                task("src", "unversioned", None)
            ]
        );
    }

    #[test]
    fn inventory_columns_in_any_order() {
        let schema = "Size, Key, StorageClass, Bucket";
        let stored = gzip(b"\"5\",\"dir/f%C3%A9\",\"STANDARD\",\"src\"\n");
        let tasks = inventory_tasks(&stored, schema, Some(&md5_hex(&stored))).unwrap();
        assert_eq!(tasks, vec![task("src", "dir/fé", None)]);
    }

    #[test]
    fn inventory_with_several_gzip_members_is_read_whole() {
        let mut stored = gzip(b"\"src\",\"k1\"\n");
        stored.extend(gzip(b"\"src\",\"k2\"\n"));
        let tasks = inventory_tasks(&stored, "Bucket, Key", Some(&md5_hex(&stored))).unwrap();
        assert_eq!(
            tasks,
            vec![task("src", "k1", None), task("src", "k2", None)]
        );
    }

    #[test]
    fn inventory_md5_mismatch_names_the_file() {
        let stored = gzip(b"\"src\",\"k1\"\n");
        let reason = manifest_error(inventory_tasks(
            &stored,
            "Bucket, Key",
            Some("0123456789abcdef0123456789abcdef"),
        ));
        assert!(
            reason.starts_with(
                "inventory data file s3://dest/inv/data/1.csv.gz: MD5 mismatch: manifest.json gives MD5checksum 0123456789abcdef0123456789abcdef but the file's"
            ),
            "{reason}"
        );
        assert!(reason.ends_with(&md5_hex(&stored)), "{reason}");
    }

    #[test]
    fn inventory_md5_is_compared_ignoring_case() {
        let stored = gzip(b"\"src\",\"k1\"\n");
        let upper = md5_hex(&stored).to_uppercase();
        assert_eq!(
            inventory_tasks(&stored, "Bucket, Key", Some(&upper))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn inventory_truncated_gzip_names_the_file() {
        let rows: String = (0..200).map(|i| format!("\"src\",\"key-{i}\"\n")).collect();
        let stored = gzip(rows.as_bytes());
        let truncated = &stored[..stored.len() - 10];
        let reason = manifest_error(inventory_tasks(
            truncated,
            "Bucket, Key",
            Some(&md5_hex(truncated)),
        ));
        assert!(
            reason.starts_with(
                "inventory data file s3://dest/inv/data/1.csv.gz: cannot read the gzipped CSV"
            ),
            "{reason}"
        );
    }

    #[test]
    fn inventory_not_gzip_names_the_file() {
        let stored = b"\"src\",\"k1\"\n";
        let reason = manifest_error(inventory_tasks(stored, "Bucket, Key", None));
        assert!(reason.starts_with(FILE), "{reason}");
        assert!(
            reason.contains("cannot read the gzipped CSV at the start"),
            "{reason}"
        );
    }

    #[test]
    fn inventory_row_errors_name_file_and_line() {
        let stored = gzip(b"\"src\",\"k1\"\n\"src\",\"k2\",\"extra\"\n");
        let reason = manifest_error(inventory_tasks(&stored, "Bucket, Key", None));
        assert_eq!(
            reason,
            format!("{FILE} line 2: expected 2 columns (Bucket, Key), found 3")
        );
    }

    #[test]
    fn inventory_schema_without_key_is_refused() {
        let stored = gzip(b"\"src\"\n");
        let reason = manifest_error(inventory_tasks(&stored, "Bucket, Size", None));
        assert!(reason.contains("has no Key column"), "{reason}");
    }

    #[test]
    fn plain_inventory_csv_parses() {
        let mut tasks = Vec::new();
        let count = parse_inventory_csv(&b"\"src\",\"k%2B1\"\n"[..], "Bucket, Key", FILE, |t| {
            tasks.push(t);
            true
        })
        .unwrap();
        assert_eq!(count, 1);
        assert_eq!(tasks, vec![task("src", "k+1", None)]);
    }

    const INVENTORY_JSON: &str = r#"{
        "sourceBucket": "example-source-bucket",
        "destinationBucket": "arn:aws:s3:::example-inventory-destination-bucket",
        "version": "2016-11-30",
        "creationTimestamp": "1514944800000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size",
        "files": [
            {
                "key": "Inventory/example-source-bucket/2016-11-06T21-32Z/files/939c6d46.csv.gz",
                "size": 2147483647,
                "MD5checksum": "f11166069f1990abeb9c97ace9cdfabc"
            }
        ]
    }"#;

    #[test]
    fn inventory_manifest_json_parses() {
        let inventory = InventoryManifest::parse(INVENTORY_JSON.as_bytes(), SRC).unwrap();
        assert_eq!(inventory.source_bucket, "example-source-bucket");
        assert_eq!(
            inventory.destination_bucket_name(),
            "example-inventory-destination-bucket"
        );
        assert_eq!(
            inventory.creation_timestamp.as_deref(),
            Some("1514944800000")
        );
        assert_eq!(inventory.files.len(), 1);
        assert_eq!(inventory.files[0].size, 2147483647);
        assert_eq!(
            inventory.files[0].md5_checksum,
            "f11166069f1990abeb9c97ace9cdfabc"
        );
        inventory.check_supported(SRC).unwrap();
        assert_eq!(
            inventory.data_file_source(&inventory.files[0]),
            "inventory data file s3://example-inventory-destination-bucket/Inventory/example-source-bucket/2016-11-06T21-32Z/files/939c6d46.csv.gz"
        );
        // Serialises back with AWS's field names.
        let json = serde_json::to_value(&inventory).unwrap();
        assert_eq!(
            json["files"][0]["MD5checksum"],
            "f11166069f1990abeb9c97ace9cdfabc"
        );
        assert_eq!(json["fileSchema"], inventory.file_schema.as_str());
    }

    #[test]
    fn inventory_formats_other_than_csv_orc_parquet_are_refused() {
        let json = INVENTORY_JSON.replace("\"CSV\"", "\"JSON\"");
        let inventory = InventoryManifest::parse(json.as_bytes(), SRC).unwrap();
        match inventory.check_supported(SRC) {
            Err(Error::Manifest(reason)) => assert_eq!(
                reason,
                format!("{SRC}: inventory fileFormat JSON is not supported; S3 Inventory writes CSV, ORC or Parquet")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inventory_manifest_json_errors_name_the_object() {
        match InventoryManifest::parse(b"{\"files\": []}", SRC) {
            Err(Error::Manifest(reason)) => assert!(
                reason.starts_with("manifest s3://b/m.csv: not a valid S3 Inventory manifest.json"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }

    // --- ETag and keys -------------------------------------------------------------------

    #[test]
    fn etag_compares_without_quotes() {
        check_etag(SRC, "abc123", Some("\"abc123\"")).unwrap();
        check_etag(SRC, "\"abc123\"", Some("abc123")).unwrap();
        match check_etag(SRC, "\"wrong\"", Some("\"abc123\"")) {
            Err(Error::Manifest(reason)) => assert_eq!(
                reason,
                "manifest s3://b/m.csv: ETag mismatch: the job expects \"wrong\" but the object's ETag is \"abc123\""
            ),
            other => panic!("{other:?}"),
        }
        assert!(check_etag(SRC, "x", None).is_err());
    }

    #[test]
    fn decode_key_is_form_decoding() {
        assert_eq!(decode_key("a+b%20c").unwrap(), "a b c");
        assert_eq!(decode_key("%2b%2B").unwrap(), "++");
        assert_eq!(decode_key("%E6%97%A5%E6%9C%AC").unwrap(), "日本");
        assert_eq!(decode_key("raw/été").unwrap(), "raw/été");
        assert_eq!(decode_key("").unwrap(), "");
        assert!(decode_key("%").is_err());
        assert!(decode_key("%g1").is_err());
        assert!(decode_key("%C3").is_err(), "a lone UTF-8 lead byte");
    }

    #[test]
    fn encode_key_escapes_all_but_unreserved_and_slash() {
        assert_eq!(encode_key("dir/a-b_c.d~e"), "dir/a-b_c.d~e");
        assert_eq!(encode_key("a b+c%d,e\"f"), "a%20b%2Bc%25d%2Ce%22f");
        assert_eq!(encode_key("é"), "%C3%A9");
        assert_eq!(encode_key("line\nbreak"), "line%0Abreak");
    }

    #[test]
    fn encode_then_decode_is_identity() {
        for key in [
            "with space",
            "plus+",
            "100%",
            "a,b",
            "q\"uote",
            "back\\slash",
            "日本/🦀",
            "nl\r\n",
        ] {
            assert_eq!(decode_key(&encode_key(key)).unwrap(), key);
        }
    }

    #[test]
    fn encoded_keys_round_trip_through_a_csv_manifest() {
        let keys = [
            "with space",
            "plus+",
            "100%",
            "a,b",
            "q\"uote",
            "日本/🦀",
            "nl\nx",
        ];
        let csv: String = keys
            .iter()
            .map(|k| format!("b,{}\n", encode_key(k)))
            .collect();
        let tasks = csv_tasks(csv.as_bytes(), &["Bucket", "Key"]).unwrap();
        let decoded: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(decoded, keys);
    }
}

#[cfg(test)]
mod line_tests {
    use super::*;

    fn error_line(data: &[u8], width: usize) -> String {
        let names: Vec<String> = ["Bucket", "Key", "VersionId"][..width]
            .iter()
            .map(|s| s.to_string())
            .collect();
        match parse_csv_manifest(data, &names, "m", |_| true) {
            Err(Error::Manifest(reason)) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn line_numbers_are_exact() {
        let cases: &[(&[u8], &str)] = &[
            (b"b,k\nb,k,x\n", "m line 2:"),
            (b"b,k\r\nb,k\r\nb,k,x\r\n", "m line 3:"),
            (b"b,k\n\n\nb,k,x\n", "m line 4:"),
            (b"b,k\r\n\r\n\r\nb,k,x\r\n", "m line 4:"),
            (b"b,\"two\nlines\"\nb,k,x\n", "m line 3:"),
            (b"b,\"two\r\nlines\"\r\n\r\nb,k,x\r\n", "m line 4:"),
            (b"b,\"x\ny\nz\",extra\n", "m line 1:"),
            (b"\n\nb,k,x", "m line 3:"),
            (b"\xEF\xBB\xBF\nb,k,x", "m line 2:"),
        ];
        for (data, expected) in cases {
            let reason = error_line(data, 2);
            assert!(
                reason.starts_with(expected),
                "{:?}: {reason}",
                String::from_utf8_lossy(data)
            );
        }
    }

    /// Hands out the data in reads of `size` bytes.
    struct Chunked<'a> {
        data: &'a [u8],
        size: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Line numbers are worked out from the last read only, so they must stay exact when the bad
    /// row is far into the input and rows straddle reads of any size.
    #[test]
    fn line_numbers_are_exact_far_into_the_input_whatever_the_read_sizes() {
        let mut data = Vec::new();
        let mut line = 1u64;
        for i in 0..12000 {
            match i % 4 {
                0 => data.extend_from_slice(b"bucket,\"quoted\nkey\"\r\n"),
                1 => data.extend_from_slice(b"\n"),
                _ => data.extend_from_slice(format!("bucket,key-{i:08}-padding\n").as_bytes()),
            }
            line += if i % 4 == 0 { 2 } else { 1 };
        }
        data.extend_from_slice(b"bucket,key,extra\n");
        assert!(data.len() > 3 * READ_BUFFER_BYTES);
        let expected = format!("m line {line}:");
        let names = vec!["Bucket".to_string(), "Key".to_string()];
        for size in [1, 7, 4096, READ_BUFFER_BYTES - 1, READ_BUFFER_BYTES + 13] {
            let reader = Chunked { data: &data, size };
            match parse_csv_manifest(reader, &names, "m", |_| true) {
                Err(Error::Manifest(reason)) => {
                    assert!(reason.starts_with(&expected), "reads of {size}: {reason}")
                }
                other => panic!("reads of {size}: {other:?}"),
            }
        }
    }
}

/// `read_tasks` against a real S3 API. Ignored by default: start `moto_server -p PORT` and run
/// `BATCHOPS_TEST_S3_ENDPOINT=http://127.0.0.1:PORT cargo test -p batchops --lib manifest -- --ignored`.
#[cfg(test)]
mod s3_tests {
    use super::*;
    use crate::job::{ManifestLocation, ManifestSpec};
    use std::io::Write;

    async fn client() -> aws_sdk_s3::Client {
        let endpoint = std::env::var("BATCHOPS_TEST_S3_ENDPOINT")
            .expect("set BATCHOPS_TEST_S3_ENDPOINT to a moto server URL");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> String {
        let _ = s3.create_bucket().bucket(bucket).send().await;
        let out = s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
        out.e_tag().unwrap().to_string()
    }

    fn job_manifest(format: &str, arn: &str, etag: Option<&str>) -> JobManifest {
        JobManifest {
            spec: ManifestSpec {
                format: format.into(),
                fields: (format == CSV_MANIFEST_FORMAT)
                    .then(|| vec!["Bucket".to_string(), "Key".to_string()]),
            },
            location: ManifestLocation {
                object_arn: arn.into(),
                object_version_id: None,
                etag: etag.map(str::to_string),
            },
        }
    }

    async fn read_all(
        s3: &aws_sdk_s3::Client,
        manifest: &JobManifest,
    ) -> (Result<u64>, Vec<Vec<Task>>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let collect = tokio::spawn(async move {
            let mut chunks = Vec::new();
            while let Some(chunk) = rx.recv().await {
                chunks.push(chunk);
            }
            chunks
        });
        let result = read_tasks(s3, manifest, tx).await;
        (result, collect.await.unwrap())
    }

    #[tokio::test]
    #[ignore = "needs BATCHOPS_TEST_S3_ENDPOINT (a moto server)"]
    async fn read_tasks_from_s3() {
        let s3 = client().await;
        let rows: String = (0..2500)
            .map(|i| format!("src,{}\n", encode_key(&format!("dir/key {i}+%,é"))))
            .collect();
        let etag = put(&s3, "manifests", "m.csv", rows.into_bytes()).await;

        // CSV manifest, pinned by its ETag, arrives in order in chunks of CHUNK_TASKS.
        let manifest = job_manifest(
            CSV_MANIFEST_FORMAT,
            "arn:aws:s3:::manifests/m.csv",
            Some(&etag),
        );
        let (result, chunks) = read_all(&s3, &manifest).await;
        assert_eq!(result.unwrap(), 2500);
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1000, 1000, 500]);
        assert_eq!(chunks[2][499].key, "dir/key 2499+%,é");

        // Wrong ETag.
        let manifest = job_manifest(
            CSV_MANIFEST_FORMAT,
            "arn:aws:s3:::manifests/m.csv",
            Some("\"0000\""),
        );
        match read_all(&s3, &manifest).await {
            (Err(Error::Manifest(reason)), chunks) => {
                assert!(chunks.is_empty());
                assert_eq!(
                    reason,
                    format!("manifest s3://manifests/m.csv: ETag mismatch: the job expects \"0000\" but the object's ETag is {etag}")
                );
            }
            other => panic!("{other:?}"),
        }

        // Missing object.
        let manifest = job_manifest(CSV_MANIFEST_FORMAT, "arn:aws:s3:::manifests/none.csv", None);
        match read_all(&s3, &manifest).await.0 {
            Err(Error::Manifest(reason)) => assert!(
                reason.starts_with("manifest s3://manifests/none.csv: cannot read the object: NoSuchKey (HTTP 404)"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }

        // Receiver dropped: reading stops quietly.
        let manifest = job_manifest(CSV_MANIFEST_FORMAT, "arn:aws:s3:::manifests/m.csv", None);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        assert!(read_tasks(&s3, &manifest, tx).await.unwrap() <= 1000);

        // Inventory: two gzipped data files, a delete marker, then an MD5 mismatch.
        let gzip = |data: &str| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data.as_bytes()).unwrap();
            encoder.finish().unwrap()
        };
        let file1 = gzip("\"src\",\"a%20b\",\"v1\",\"false\"\n\"src\",\"gone\",\"v2\",\"true\"\n");
        let file2 = gzip("\"src\",\"c%2Bd\",\"\",\"false\"\n");
        put(&s3, "inventory", "inv/data/1.csv.gz", file1.clone()).await;
        put(&s3, "inventory", "inv/data/2.csv.gz", file2.clone()).await;
        let inventory = |md5_2: String| {
            serde_json::json!({
                "sourceBucket": "src",
                "destinationBucket": "arn:aws:s3:::inventory",
                "version": "2016-11-30",
                "creationTimestamp": "1514944800000",
                "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, VersionId, IsDeleteMarker",
                "files": [
                    {"key": "inv/data/1.csv.gz", "size": file1.len(), "MD5checksum": hex::encode(Md5::digest(&file1))},
                    {"key": "inv/data/2.csv.gz", "size": file2.len(), "MD5checksum": md5_2}
                ]
            })
            .to_string()
            .into_bytes()
        };
        put(
            &s3,
            "inventory",
            "inv/manifest.json",
            inventory(hex::encode(Md5::digest(&file2))),
        )
        .await;
        let manifest = job_manifest(
            INVENTORY_CSV_FORMAT,
            "arn:aws:s3:::inventory/inv/manifest.json",
            None,
        );
        let (result, chunks) = read_all(&s3, &manifest).await;
        assert_eq!(result.unwrap(), 2);
        let tasks: Vec<Task> = chunks.into_iter().flatten().collect();
        assert_eq!(
            tasks,
            vec![
                Task {
                    bucket: "src".into(),
                    key: "a b".into(),
                    version_id: Some("v1".into()),
                    size: None,
                },
                Task {
                    bucket: "src".into(),
                    key: "c+d".into(),
                    version_id: None,
                    size: None,
                },
            ]
        );

        put(
            &s3,
            "inventory",
            "inv/manifest.json",
            inventory("00".repeat(16)),
        )
        .await;
        match read_all(&s3, &manifest).await.0 {
            Err(Error::Manifest(reason)) => assert!(
                reason.starts_with(
                    "inventory data file s3://inventory/inv/data/2.csv.gz: MD5 mismatch"
                ),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
