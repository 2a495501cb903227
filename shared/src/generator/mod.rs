//! The manifest generator (`ManifestGenerator.S3JobManifestGenerator`): the task list of a job built
//! from a bucket listing with S3 Batch Operations' filters instead of a manifest file.
//!
//! The listing is ListObjectsV2 (current versions only, as a manifest without a VersionId column:
//! every task acts on the latest version). The listing's filters are applied client-side by
//! [`matches`] (a single `MatchAnyPrefix` is also sent to S3 as the listing prefix so that S3
//! lists less); the filters a listing cannot answer (encryption, replication) look at each
//! object that passed them ([`details`]).
//! With `EnableManifestOutput`, the selected objects are also written as S3 writes a generated
//! manifest, an S3 Inventory report ([`output`]): `manifest.json` and a gzipped CSV data file under
//! `s3://<ManifestOutputLocation.Bucket>/<ManifestPrefix>/job-<job id>/`, streamed in
//! multipart-upload parts so memory stays flat whatever the number of objects.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::Sender;

use crate::error::{Error, Result};
use crate::manifest::{encode_key, s3_error_reason, Task, CHUNK_TASKS};

// The request's `ManifestGenerator` is part of the job model (a lower module); named here too.
pub use crate::job::manifest_generator::*;

pub mod details;
mod output;
use details::ReplicationRules;
use output::InventoryOutput;

/// Size of the multipart-upload parts of the generated manifest (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// What the filters look at: one entry of the bucket listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: i64,
    pub last_modified: Option<DateTime<Utc>>,
    /// As ListObjectsV2 gives it; absent means STANDARD.
    pub storage_class: Option<String>,
}

/// The objects of one listing page that pass every filter, in listing order: the listing's
/// filters first, then, for those that pass and only when asked for, each object's HEAD (and
/// tags), several at a time.
async fn select(
    s3: &aws_sdk_s3::Client,
    generator: &S3JobManifestGenerator,
    bucket: &str,
    filter: &JobManifestGeneratorFilter,
    replication: Option<&ReplicationRules>,
    page: &[aws_sdk_s3::types::Object],
) -> Result<Vec<ObjectSummary>> {
    use futures::StreamExt;
    let listed: Vec<ObjectSummary> = page
        .iter()
        .filter_map(summary)
        .filter(|object| matches(filter, object))
        .collect();
    if !filter.needs_lookup() {
        return Ok(listed);
    }
    let owner = generator.expected_bucket_owner.as_deref();
    let with_tags = replication.is_some_and(ReplicationRules::need_tags);
    let looked: Vec<Result<Option<details::ObjectDetails>>> = futures::stream::iter(&listed)
        .map(|object| details::look_up(s3, bucket, &object.key, owner, with_tags))
        .buffered(details::LOOKUPS_AT_ONCE)
        .collect()
        .await;
    let mut selected = Vec::new();
    for (object, found) in listed.into_iter().zip(looked) {
        // An object gone since the listing is not a task.
        let Some(found) = found? else { continue };
        if details::matches_details(
            filter.match_any_object_encryption.as_deref(),
            filter.object_replication_statuses.as_deref(),
            replication,
            &object.key,
            &found,
        ) {
            selected.push(object);
        }
    }
    Ok(selected)
}

/// The source bucket's replication rules when `EligibleForReplication` asks for them.
async fn replication_of(
    s3: &aws_sdk_s3::Client,
    generator: &S3JobManifestGenerator,
    bucket: &str,
    filter: &JobManifestGeneratorFilter,
) -> Result<Option<ReplicationRules>> {
    if filter.eligible_for_replication != Some(true) {
        return Ok(None);
    }
    details::replication_rules(s3, bucket, generator.expected_bucket_owner.as_deref())
        .await
        .map(Some)
}

/// Whether an object of the listing passes every filter given. An object without a
/// LastModified is left out when a creation-time filter is given (it cannot be shown to pass).
pub fn matches(filter: &JobManifestGeneratorFilter, object: &ObjectSummary) -> bool {
    if let Some(after) = filter.created_after {
        if object.last_modified.is_none_or(|t| t <= after) {
            return false;
        }
    }
    if let Some(before) = filter.created_before {
        if object.last_modified.is_none_or(|t| t >= before) {
            return false;
        }
    }
    if let Some(min) = filter.object_size_greater_than_bytes {
        if object.size <= min {
            return false;
        }
    }
    if let Some(max) = filter.object_size_less_than_bytes {
        if object.size >= max {
            return false;
        }
    }
    if let Some(classes) = &filter.match_any_storage_class {
        let class = object.storage_class.as_deref().unwrap_or("STANDARD");
        if !classes.iter().any(|c| c == class) {
            return false;
        }
    }
    if let Some(constraint) = &filter.key_name_constraint {
        let key = object.key.as_str();
        let any = |list: &Option<Vec<String>>, test: &dyn Fn(&str) -> bool| {
            list.as_ref().is_none_or(|l| l.iter().any(|s| test(s)))
        };
        if !any(&constraint.match_any_prefix, &|p| key.starts_with(p))
            || !any(&constraint.match_any_suffix, &|s| key.ends_with(s))
            || !any(&constraint.match_any_substring, &|s| key.contains(s))
        {
            return false;
        }
    }
    true
}

fn summary(object: &aws_sdk_s3::types::Object) -> Option<ObjectSummary> {
    let key = object.key()?.to_string();
    let last_modified = object
        .last_modified()
        .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
    Some(ObjectSummary {
        key,
        size: object.size().unwrap_or(0),
        last_modified,
        storage_class: object.storage_class().map(|c| c.as_str().to_string()),
    })
}

/// Streams the tasks that the job's `ManifestGenerator` selects into `tx`, in listing order, and
/// returns how many there were; with `EnableManifestOutput`, also writes them as a CSV manifest.
///
/// If the receiver is dropped the listing stops quietly, no manifest is written (a multipart
/// upload under way is aborted), and the count so far is returned. Errors are `Error::Manifest`
/// with a reason fit for the job's FailureReasons.
pub async fn read_tasks(
    s3: &aws_sdk_s3::Client,
    generator: &serde_json::Value,
    job_id: &str,
    tx: tokio::sync::mpsc::Sender<Vec<Task>>,
) -> Result<u64> {
    let generator = ManifestGenerator::parse(generator)
        .map_err(|e| Error::Manifest(e.to_string()))?
        .s3_job_manifest_generator;
    let bucket = generator
        .source_bucket_name()
        .map_err(|e| Error::Manifest(e.to_string()))?;
    let filter = generator.filter.clone().unwrap_or_default();
    let mut output = match (
        &generator.manifest_output_location,
        generator.enable_manifest_output,
    ) {
        (Some(location), true) => Some(InventoryOutput::new(s3, location, job_id, &bucket)?),
        _ => None,
    };
    let listed = list_matching(s3, &generator, &bucket, &filter, tx, output.as_mut(), false).await;
    match (listed, output) {
        (Ok(Listed::Complete(count)), Some(writer)) => {
            writer.finish().await?;
            Ok(count)
        }
        (Ok(Listed::Complete(count)), None) => Ok(count),
        (Ok(Listed::Stopped(count)), writer) => {
            if let Some(writer) = writer {
                writer.abort().await;
            }
            Ok(count)
        }
        (Err(e), writer) => {
            if let Some(writer) = writer {
                writer.abort().await;
            }
            Err(e)
        }
    }
}

/// The tasks that the job's `ManifestGenerator` selects, with their sizes from the listing, into
/// `tx`: what a dry run reads. Nothing is written, whatever `EnableManifestOutput` says.
pub async fn list_tasks(
    s3: &aws_sdk_s3::Client,
    generator: &serde_json::Value,
    tx: tokio::sync::mpsc::Sender<Vec<Task>>,
) -> Result<u64> {
    let generator = ManifestGenerator::parse(generator)
        .map_err(|e| Error::Manifest(e.to_string()))?
        .s3_job_manifest_generator;
    let bucket = generator
        .source_bucket_name()
        .map_err(|e| Error::Manifest(e.to_string()))?;
    let filter = generator.filter.clone().unwrap_or_default();
    match list_matching(s3, &generator, &bucket, &filter, tx, None, true).await? {
        Listed::Complete(count) | Listed::Stopped(count) => Ok(count),
    }
}

enum Listed {
    Complete(u64),
    /// The receiver went away.
    Stopped(u64),
}

async fn list_matching(
    s3: &aws_sdk_s3::Client,
    generator: &S3JobManifestGenerator,
    bucket: &str,
    filter: &JobManifestGeneratorFilter,
    tx: Sender<Vec<Task>>,
    mut output: Option<&mut InventoryOutput<'_>>,
    with_sizes: bool,
) -> Result<Listed> {
    let prefix = filter.listing_prefix();
    tracing::debug!(%bucket, ?prefix, "listing the source bucket of a manifest generator");
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .set_prefix(prefix)
        .set_expected_bucket_owner(generator.expected_bucket_owner.clone())
        .into_paginator()
        .send();
    let replication = replication_of(s3, generator, bucket, filter).await?;
    let mut total = 0u64;
    let mut chunk = Vec::with_capacity(CHUNK_TASKS);
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            crate::manifest::s3_refusal(
                &format!("manifest generator: cannot list the source bucket s3://{bucket}"),
                "ListObjectsV2",
                &e,
            )
        })?;
        let selected = select(
            s3,
            generator,
            bucket,
            filter,
            replication.as_ref(),
            page.contents(),
        )
        .await?;
        for object in selected {
            if let Some(writer) = output.as_deref_mut() {
                writer.push(bucket, &encode_key(&object.key)).await?;
            }
            // A job's tasks carry no size from a listing: its batches are then the same
            // whether or not the generated manifest is read back later.
            let size = with_sizes.then(|| u64::try_from(object.size).unwrap_or(0));
            chunk.push(Task {
                bucket: bucket.to_string(),
                key: object.key,
                version_id: None,
                size,
            });
            if chunk.len() >= CHUNK_TASKS {
                total += chunk.len() as u64;
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_TASKS));
                if tx.send(full).await.is_err() {
                    return Ok(Listed::Stopped(total));
                }
            }
        }
    }
    if !chunk.is_empty() {
        total += chunk.len() as u64;
        if tx.send(chunk).await.is_err() {
            return Ok(Listed::Stopped(total));
        }
    }
    Ok(Listed::Complete(total))
}

/// Writes the generated manifest as it is produced: one PutObject when it stays under a part,
/// otherwise a multipart upload of [`PART_BYTES`] parts.
struct ManifestWriter<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: String,
    key: String,
    expected_owner: Option<String>,
    encryption: Option<GeneratedManifestEncryption>,
    buffer: Vec<u8>,
    upload_id: Option<String>,
    /// Parts uploaded by this writer.
    parts: Vec<CompletedPart>,
    /// The number of the next part.
    next_part: i32,
    content_type: &'static str,
}

impl<'a> ManifestWriter<'a> {
    fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    /// Bytes as they are, in the order given.
    async fn push_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PART_BYTES {
            self.upload_part().await?;
        }
        Ok(())
    }

    fn to(s3: &'a aws_sdk_s3::Client, target: &SnapshotTarget) -> Self {
        ManifestWriter {
            s3,
            bucket: target.bucket.clone(),
            key: target.key.clone(),
            expected_owner: target.expected_owner.clone(),
            encryption: target.encryption.clone(),
            buffer: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            next_part: 1,
            content_type: "text/csv",
        }
    }

    /// Goes on with a multipart upload that an earlier invocation began.
    fn resume(&mut self, state: &ListingState, carry: Vec<u8>) {
        self.upload_id = state.upload_id.clone();
        self.next_part = state.next_part.max(1);
        self.parts = state
            .parts
            .iter()
            .map(|(number, etag)| {
                CompletedPart::builder()
                    .part_number(*number)
                    .e_tag(etag)
                    .build()
            })
            .collect();
        self.buffer = carry;
    }

    /// The parts uploaded so far, to save between invocations.
    fn parts_so_far(&self) -> Vec<(i32, String)> {
        self.parts
            .iter()
            .map(|p| {
                (
                    p.part_number().unwrap_or_default(),
                    p.e_tag().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn target(&self) -> String {
        format!("generated manifest s3://{}/{}", self.bucket, self.key)
    }

    fn sse(&self) -> (Option<ServerSideEncryption>, Option<String>) {
        match &self.encryption {
            Some(GeneratedManifestEncryption {
                sse_kms: Some(kms), ..
            }) => (Some(ServerSideEncryption::AwsKms), Some(kms.key_id.clone())),
            Some(GeneratedManifestEncryption {
                sse_s3: Some(_), ..
            }) => (Some(ServerSideEncryption::Aes256), None),
            _ => (None, None),
        }
    }

    async fn push(&mut self, bucket: &str, key: &str) -> Result<()> {
        // Neither part needs CSV quoting: bucket names and encoded keys have no comma or quote.
        self.buffer.extend_from_slice(bucket.as_bytes());
        self.buffer.push(b',');
        self.buffer.extend_from_slice(encode_key(key).as_bytes());
        self.buffer.push(b'\n');
        if self.buffer.len() >= PART_BYTES {
            self.upload_part().await?;
        }
        Ok(())
    }

    async fn upload_part(&mut self) -> Result<()> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let (sse, kms_key) = self.sse();
                let created = self
                    .s3
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .content_type(self.content_type)
                    .set_server_side_encryption(sse)
                    .set_ssekms_key_id(kms_key)
                    .set_expected_bucket_owner(self.expected_owner.clone())
                    .send()
                    .await
                    .map_err(|e| self.write_error(&e))?;
                let id = created.upload_id().map(str::to_string).ok_or_else(|| {
                    Error::Manifest(format!(
                        "{}: CreateMultipartUpload returned no UploadId",
                        self.target()
                    ))
                })?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = self.next_part;
        self.next_part += 1;
        let body = std::mem::take(&mut self.buffer);
        let uploaded = self
            .s3
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .part_number(number)
            .body(body.into())
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await
            .map_err(|e| self.write_error(&e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    async fn finish(mut self) -> Result<()> {
        let Some(upload_id) = self.upload_id.clone() else {
            let (sse, kms_key) = self.sse();
            let body = std::mem::take(&mut self.buffer);
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(self.content_type)
                .body(body.into())
                .set_server_side_encryption(sse)
                .set_ssekms_key_id(kms_key)
                .set_expected_bucket_owner(self.expected_owner.clone())
                .send()
                .await
                .map_err(|e| self.write_error(&e))?;
            tracing::info!(bucket = %self.bucket, key = %self.key, "wrote the generated manifest");
            return Ok(());
        };
        let result = async {
            if !self.buffer.is_empty() {
                self.upload_part().await?;
            }
            let parts = std::mem::take(&mut self.parts);
            self.s3
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .set_expected_bucket_owner(self.expected_owner.clone())
                .send()
                .await
                .map_err(|e| self.write_error(&e))?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(bucket = %self.bucket, key = %self.key, "wrote the generated manifest");
                Ok(())
            }
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    /// Drops a multipart upload under way, so no partial manifest or stray parts remain.
    async fn abort(self) {
        let Some(upload_id) = &self.upload_id else {
            return;
        };
        if let Err(e) = self
            .s3
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .send()
            .await
        {
            tracing::warn!(
                bucket = %self.bucket,
                key = %self.key,
                error = %s3_error_reason(&e),
                "cannot abort the multipart upload of a generated manifest"
            );
        }
    }

    fn write_error<E>(&self, err: &SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        crate::manifest::s3_refusal(
            &format!("{}: cannot write the object", self.target()),
            "PutObject",
            err,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The listing snapshot: listed once, planned from the file.

/// Name of the job state that a listing being written saves between invocations.
pub const LISTING_STATE: &str = "LISTING";

/// Where a job's listing snapshot goes: the system bucket (kept 90 days, with the job), as a CSV
/// manifest that planning reads and continues from. A generated manifest that the job asks for is
/// written from it once the listing is done ([`output`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotTarget {
    pub bucket: String,
    pub key: String,
    pub expected_owner: Option<String>,
    pub encryption: Option<GeneratedManifestEncryption>,
}

impl SnapshotTarget {
    pub fn of(job_id: &str, system_bucket: &str) -> Self {
        SnapshotTarget {
            bucket: system_bucket.to_string(),
            key: format!("jobs/job-{job_id}/generated-manifest.csv"),
            expected_owner: None,
            encryption: None,
        }
    }
}

/// Writes the generated manifest the job asked for from its listing snapshot, as the job's role.
async fn write_output(
    ctx: &crate::Context,
    job: &crate::job::Job,
    location: &S3ManifestOutputLocation,
    source_bucket: &str,
    snapshot: &SnapshotTarget,
) -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let body = ctx
        .system_s3
        .get_object()
        .bucket(&snapshot.bucket)
        .key(&snapshot.key)
        .send()
        .await
        .map_err(|e| {
            crate::manifest::s3_refusal(
                &format!(
                    "listing snapshot s3://{}/{}: cannot read it",
                    snapshot.bucket, snapshot.key
                ),
                "GetObject",
                &e,
            )
        })?
        .body;
    let out_bucket = bucket_name(&location.bucket, "ManifestOutputLocation.Bucket")
        .map_err(|e| Error::Manifest(e.to_string()))?;
    let s3 = ctx.s3_for(
        &job.job_id,
        &out_bucket,
        &location.manifest_key(&job.job_id),
    );
    let mut output = InventoryOutput::new(s3, location, &job.job_id, source_bucket)?;
    let mut lines = tokio::io::BufReader::new(body.into_async_read()).lines();
    let copied = async {
        while let Some(line) = lines.next_line().await.map_err(|e| {
            Error::Manifest(format!(
                "listing snapshot s3://{}/{}: cannot read it: {e}",
                snapshot.bucket, snapshot.key
            ))
        })? {
            // The snapshot's rows are `bucket,url-encoded key`, as this module writes them.
            if let Some((bucket, key)) = line.split_once(',') {
                output.push(bucket, key).await?;
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    match copied {
        Ok(()) => output.finish().await,
        Err(e) => {
            output.abort().await;
            Err(e)
        }
    }
}

/// How far a listing got, saved when an invocation's time runs out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingState {
    /// The last key listed; the next invocation lists after it.
    pub start_after: Option<String>,
    /// Objects selected so far.
    pub tasks: u64,
    /// The multipart upload of the snapshot, once begun, its parts so far (number and ETag;
    /// 8 MiB each, so a few thousand at most for a listing of a hundred million objects), and
    /// the next part number.
    pub upload_id: Option<String>,
    pub parts: Vec<(i32, String)>,
    pub next_part: i32,
    /// Rows selected since the last part, saved in the system bucket (fewer than a part holds).
    pub carry_key: Option<String>,
}

/// What writing the listing snapshot did.
#[derive(Debug, Clone, PartialEq)]
pub enum Listing {
    /// The snapshot is written: a CSV manifest (`Bucket, Key`), pinned by its ETag.
    Written(crate::job::JobSource),
    /// Time ran out: the state is saved; the caller continues through the plan queue.
    Continued,
}

/// Lists the job's source bucket with its filters, once, into a CSV manifest (the snapshot)
/// that planning then reads and continues from: objects added after the listing are not part of
/// the job. Stops between listing pages when `stop_at` passes, saving where it stands.
pub async fn write_snapshot(
    ctx: &crate::Context,
    job: &crate::job::Job,
    generator: &serde_json::Value,
    stop_at: Option<std::time::Instant>,
) -> Result<Listing> {
    let generator = ManifestGenerator::parse(generator)
        .map_err(|e| Error::Manifest(e.to_string()))?
        .s3_job_manifest_generator;
    let source_bucket = generator
        .source_bucket_name()
        .map_err(|e| Error::Manifest(e.to_string()))?;
    let target = SnapshotTarget::of(&job.job_id, &ctx.settings.system_bucket);
    let store = ctx.store();
    let (step, mut state) = match store
        .get_job_state::<ListingState>(&job.job_id, LISTING_STATE)
        .await?
    {
        Some((step, state)) => (step + 1, state),
        None => (0, ListingState::default()),
    };
    // The snapshot goes where the generator says as the job's role, or into the system bucket
    // as the orchestrator's.
    let target_s3 = ctx.s3_for(&job.job_id, &target.bucket, &target.key);
    let mut writer = ManifestWriter::to(target_s3, &target);
    let carry = match &state.carry_key {
        Some(key) => ctx.read_system_object(key).await?,
        None => Vec::new(),
    };
    writer.resume(&state, carry);
    let filter = generator.filter.clone().unwrap_or_default();
    let replication = replication_of(&ctx.s3, &generator, &source_bucket, &filter).await?;
    let mut pages = ctx
        .s3
        .list_objects_v2()
        .bucket(&source_bucket)
        .set_prefix(filter.listing_prefix())
        .set_start_after(state.start_after.clone())
        .set_expected_bucket_owner(generator.expected_bucket_owner.clone())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            crate::manifest::s3_refusal(
                &format!("manifest generator: cannot list the source bucket s3://{source_bucket}"),
                "ListObjectsV2",
                &e,
            )
        })?;
        let selected = select(
            &ctx.s3,
            &generator,
            &source_bucket,
            &filter,
            replication.as_ref(),
            page.contents(),
        )
        .await?;
        for object in selected {
            writer.push(&source_bucket, &object.key).await?;
            state.tasks += 1;
        }
        if let Some(last) = page.contents().last().and_then(|o| o.key()) {
            state.start_after = Some(last.to_string());
        }
        if page.is_truncated() == Some(true) && crate::deadline::is_past(stop_at) {
            state.carry_key = match std::mem::take(&mut writer.buffer) {
                carry if carry.is_empty() => None,
                carry => Some(write_system_object(ctx, &job.job_id, carry).await?),
            };
            state.upload_id = writer.upload_id.clone();
            state.parts = writer.parts_so_far();
            state.next_part = writer.next_part;
            if !store
                .save_job_state(&job.job_id, LISTING_STATE, step, &state, None)
                .await?
            {
                return Err(Error::Conflict(format!(
                    "job {}: another planner saved the listing first; this run stops",
                    job.job_id
                )));
            }
            tracing::info!(job_id = %job.job_id, tasks = state.tasks, "listing time is up; continuing in a new invocation");
            return Ok(Listing::Continued);
        }
    }
    writer.finish().await?;
    let head = target_s3
        .head_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .set_expected_bucket_owner(target.expected_owner.clone())
        .send()
        .await
        .map_err(|e| {
            crate::manifest::s3_refusal(
                &format!(
                    "generated manifest s3://{}/{}: cannot read it back",
                    target.bucket, target.key
                ),
                "HeadObject",
                &e,
            )
        })?;
    tracing::info!(job_id = %job.job_id, tasks = state.tasks, bucket = %target.bucket, key = %target.key, "listing written");
    if let (Some(location), true) = (
        &generator.manifest_output_location,
        generator.enable_manifest_output,
    ) {
        write_output(ctx, job, location, &source_bucket, &target).await?;
    }
    Ok(Listing::Written(crate::job::JobSource {
        manifest: crate::job::JobManifest {
            spec: crate::job::ManifestSpec {
                format: crate::job::CSV_MANIFEST_FORMAT.into(),
                fields: Some(vec!["Bucket".into(), "Key".into()]),
            },
            location: crate::job::ManifestLocation {
                object_arn: format!("arn:aws:s3:::{}/{}", target.bucket, target.key),
                object_version_id: None,
                etag: None,
            },
        },
        pin: crate::manifest::ManifestPin {
            etag: head.e_tag().map(str::to_string),
            version_id: head
                .version_id()
                .map(str::to_string)
                .filter(|v| v != "null"),
        },
        tasks: Some(state.tasks),
    }))
}

/// Saves rows between listing invocations under a key of their own in the system bucket.
async fn write_system_object(ctx: &crate::Context, job_id: &str, body: Vec<u8>) -> Result<String> {
    let key = format!(
        "jobs/job-{job_id}/listing-carry-{}.csv",
        uuid::Uuid::new_v4().simple()
    );
    ctx.write_system_object(&key, body).await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(key: &str, size: i64, modified: &str, class: Option<&str>) -> ObjectSummary {
        ObjectSummary {
            key: key.into(),
            size,
            last_modified: Some(
                DateTime::parse_from_rfc3339(modified)
                    .unwrap()
                    .with_timezone(&Utc),
            ),
            storage_class: class.map(str::to_string),
        }
    }

    fn filter(value: serde_json::Value) -> JobManifestGeneratorFilter {
        let filter: JobManifestGeneratorFilter = serde_json::from_value(value).unwrap();
        filter.validate().unwrap();
        filter
    }

    fn generator(filter: serde_json::Value) -> serde_json::Value {
        json!({"S3JobManifestGenerator": {
            "SourceBucket": "arn:aws:s3:::src-bucket",
            "EnableManifestOutput": false,
            "Filter": filter
        }})
    }

    fn refusal(value: serde_json::Value) -> String {
        match validate(&value) {
            Err(Error::InvalidRequest(reason)) => reason,
            other => panic!("{value}: {other:?}"),
        }
    }

    const T: &str = "2024-06-01T12:00:00Z";

    #[test]
    fn no_filter_selects_everything() {
        let f = JobManifestGeneratorFilter::default();
        assert!(matches(&f, &object("a", 0, T, None)));
        assert!(matches(&f, &object("b/c", 10, T, Some("GLACIER"))));
    }

    #[test]
    fn created_after_is_strict() {
        let f = filter(json!({"CreatedAfter": T}));
        assert!(!matches(&f, &object("k", 1, "2024-06-01T11:59:59Z", None)));
        assert!(!matches(&f, &object("k", 1, T, None)));
        assert!(matches(&f, &object("k", 1, "2024-06-01T12:00:01Z", None)));
    }

    #[test]
    fn created_before_is_strict() {
        let f = filter(json!({"CreatedBefore": T}));
        assert!(matches(&f, &object("k", 1, "2024-06-01T11:59:59Z", None)));
        assert!(!matches(&f, &object("k", 1, T, None)));
        assert!(!matches(&f, &object("k", 1, "2024-06-02T00:00:00Z", None)));
    }

    #[test]
    fn creation_filters_leave_out_objects_without_a_time() {
        let f = filter(json!({"CreatedBefore": T}));
        let mut o = object("k", 1, T, None);
        o.last_modified = None;
        assert!(!matches(&f, &o));
    }

    #[test]
    fn timestamps_take_epoch_seconds_too() {
        let f = filter(json!({"CreatedAfter": 1717243200}));
        assert_eq!(
            f.created_after,
            Some(DateTime::parse_from_rfc3339(T).unwrap().with_timezone(&Utc))
        );
        let reason = refusal(generator(json!({"CreatedAfter": "yesterday"})));
        assert!(
            reason.contains("\"yesterday\" is not a timestamp"),
            "{reason}"
        );
    }

    #[test]
    fn size_bounds_are_strict() {
        let f = filter(json!({"ObjectSizeGreaterThanBytes": 10, "ObjectSizeLessThanBytes": 20}));
        assert!(!matches(&f, &object("k", 10, T, None)));
        assert!(matches(&f, &object("k", 11, T, None)));
        assert!(matches(&f, &object("k", 19, T, None)));
        assert!(!matches(&f, &object("k", 20, T, None)));
    }

    #[test]
    fn storage_class_absent_means_standard() {
        let f = filter(json!({"MatchAnyStorageClass": ["STANDARD", "GLACIER"]}));
        assert!(matches(&f, &object("k", 1, T, None)));
        assert!(matches(&f, &object("k", 1, T, Some("GLACIER"))));
        assert!(!matches(&f, &object("k", 1, T, Some("STANDARD_IA"))));
        let f = filter(json!({"MatchAnyStorageClass": ["GLACIER_IR"]}));
        assert!(!matches(&f, &object("k", 1, T, None)));
    }

    #[test]
    fn key_constraints_match_any_within_and_all_across() {
        let f = filter(json!({"KeyNameConstraint": {"MatchAnyPrefix": ["logs/", "data/"]}}));
        assert!(matches(&f, &object("logs/a", 1, T, None)));
        assert!(matches(&f, &object("data/b", 1, T, None)));
        assert!(!matches(&f, &object("other/logs/a", 1, T, None)));

        let f = filter(json!({"KeyNameConstraint": {"MatchAnySuffix": [".csv"]}}));
        assert!(matches(&f, &object("a/b.csv", 1, T, None)));
        assert!(!matches(&f, &object("a/b.csv.gz", 1, T, None)));

        let f = filter(json!({"KeyNameConstraint": {"MatchAnySubstring": ["2024"]}}));
        assert!(matches(&f, &object("x/2024/y", 1, T, None)));
        assert!(!matches(&f, &object("x/2023/y", 1, T, None)));

        let f = filter(json!({"KeyNameConstraint": {
            "MatchAnyPrefix": ["logs/"], "MatchAnySuffix": [".gz"], "MatchAnySubstring": ["/2024/"]
        }}));
        assert!(matches(&f, &object("logs/2024/a.gz", 1, T, None)));
        assert!(!matches(&f, &object("logs/2024/a.csv", 1, T, None)));
        assert!(!matches(&f, &object("logs/2023/a.gz", 1, T, None)));
        assert!(!matches(&f, &object("data/2024/a.gz", 1, T, None)));
    }

    #[test]
    fn all_filters_must_hold() {
        let f = filter(json!({
            "CreatedAfter": "2024-01-01T00:00:00Z",
            "ObjectSizeLessThanBytes": 100,
            "MatchAnyStorageClass": ["STANDARD"],
            "KeyNameConstraint": {"MatchAnyPrefix": ["a"]}
        }));
        assert!(matches(&f, &object("ab", 5, T, None)));
        assert!(!matches(&f, &object("ab", 500, T, None)));
        assert!(!matches(&f, &object("ab", 5, "2023-12-31T00:00:00Z", None)));
        assert!(!matches(&f, &object("ab", 5, T, Some("GLACIER"))));
        assert!(!matches(&f, &object("b", 5, T, None)));
    }

    #[test]
    fn listing_prefix_only_for_a_single_prefix() {
        let one = filter(json!({"KeyNameConstraint": {"MatchAnyPrefix": ["logs/"]}}));
        assert_eq!(one.listing_prefix().as_deref(), Some("logs/"));
        let two = filter(json!({"KeyNameConstraint": {"MatchAnyPrefix": ["a", "b"]}}));
        assert_eq!(two.listing_prefix(), None);
        assert_eq!(JobManifestGeneratorFilter::default().listing_prefix(), None);
    }

    #[test]
    fn detail_filters_are_checked_at_creation() {
        for (value, expected) in [
            (
                json!({"ObjectReplicationStatuses": ["PENDING"]}),
                "Filter.ObjectReplicationStatuses: \"PENDING\" is not one of COMPLETED, FAILED, REPLICA, NONE",
            ),
            (
                json!({"ObjectReplicationStatuses": []}),
                "Filter.ObjectReplicationStatuses must name at least one status",
            ),
            (
                json!({"MatchAnyObjectEncryption": []}),
                "Filter.MatchAnyObjectEncryption must hold at least one encryption type",
            ),
            (
                json!({"MatchAnyObjectEncryption": [{"SSES3": {}, "NOTSSE": {}}]}),
                "each entry names exactly one of SSES3, SSEKMS, DSSEKMS, SSEC, NOTSSE",
            ),
        ] {
            let reason = refusal(generator(value.clone()));
            assert!(reason.contains(expected), "{value}: {reason}");
        }
        let unknown = refusal(generator(
            json!({"MatchAnyObjectEncryption": [{"SSE-S3": {}}]}),
        ));
        assert!(unknown.contains("SSE-S3"), "{unknown}");
        let accepted = filter(json!({
            "EligibleForReplication": true,
            "ObjectReplicationStatuses": ["NONE", "FAILED"],
            "MatchAnyObjectEncryption": [{"SSEKMS": {"KmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k"}}, {"NOTSSE": {}}]
        }));
        assert!(accepted.needs_lookup());
        assert!(!filter(json!({"EligibleForReplication": false})).needs_lookup());
    }

    #[test]
    fn bad_filters_are_refused() {
        let cases = [
            (
                json!({"MatchAnyStorageClass": ["COLD"]}),
                "\"COLD\" is not one of STANDARD",
            ),
            (
                json!({"MatchAnyStorageClass": []}),
                "at least one storage class",
            ),
            (
                json!({"ObjectSizeLessThanBytes": -1}),
                "ObjectSizeLessThanBytes must be 0 or greater",
            ),
            (
                json!({"KeyNameConstraint": {"MatchAnyPrefix": []}}),
                "MatchAnyPrefix must hold at least one string",
            ),
            (
                json!({"KeyNameConstraint": {"MatchAnySuffix": [""]}}),
                "1 to 1024 characters",
            ),
            (
                json!({"KeyNameConstraint": {"MatchAnyInfix": ["x"]}}),
                "unknown field `MatchAnyInfix`",
            ),
            (json!({"SizeAbove": 1}), "unknown field `SizeAbove`"),
        ];
        for (filter, expected) in cases {
            let reason = refusal(generator(filter.clone()));
            assert!(reason.contains(expected), "{filter}: {reason}");
        }
    }

    #[test]
    fn generator_shape_is_checked() {
        let base = json!({
            "SourceBucket": "arn:aws:s3:::src-bucket",
            "EnableManifestOutput": true,
            "ManifestOutputLocation": {
                "Bucket": "arn:aws:s3:::out-bucket",
                "ManifestPrefix": "generated",
                "ManifestFormat": GENERATED_MANIFEST_FORMAT,
                "ManifestEncryption": {"SSEKMS": {"KeyId": "arn:aws:kms:us-east-1:111122223333:key/k"}}
            },
            "ExpectedBucketOwner": "111122223333"
        });
        validate(&json!({ "S3JobManifestGenerator": base })).unwrap();

        let with = |path: &[&str], value: serde_json::Value| {
            let mut g = base.clone();
            let mut at = &mut g;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = value;
            json!({ "S3JobManifestGenerator": g })
        };
        let cases = [
            (
                with(&["SourceBucket"], json!("arn:aws:s3:::")),
                "SourceBucket \"arn:aws:s3:::\" is not a bucket ARN",
            ),
            (
                with(&["ExpectedBucketOwner"], json!("12")),
                "ExpectedBucketOwner \"12\" is not a 12-digit",
            ),
            (
                with(
                    &["ManifestOutputLocation", "ManifestFormat"],
                    json!("S3BatchOperations_CSV_20180820"),
                ),
                "ManifestFormat must be S3InventoryReport_CSV_20211130",
            ),
            (
                with(
                    &["ManifestOutputLocation", "Bucket"],
                    json!("arn:aws:s3:::Bad_Bucket"),
                ),
                "ManifestOutputLocation.Bucket",
            ),
            (
                with(&["ManifestOutputLocation", "ManifestEncryption"], json!({})),
                "exactly one of SSES3 and SSEKMS",
            ),
            (
                with(&["ManifestOutputLocation"], serde_json::Value::Null),
                "ManifestOutputLocation is required when EnableManifestOutput is true",
            ),
        ];
        for (value, expected) in cases {
            let reason = refusal(value.clone());
            assert!(reason.contains(expected), "{value}: {reason}");
        }
        let reason =
            refusal(json!({"S3JobManifestGenerator": {"SourceBucket": "arn:aws:s3:::src-bucket"}}));
        assert!(
            reason.contains("missing field `EnableManifestOutput`"),
            "{reason}"
        );
        let reason = refusal(json!({"OtherGenerator": {}}));
        assert!(
            reason.starts_with("ManifestGenerator: unknown field `OtherGenerator`"),
            "{reason}"
        );
    }

    #[test]
    fn manifest_key_layout() {
        let mut location = S3ManifestOutputLocation {
            expected_manifest_bucket_owner: None,
            bucket: "arn:aws:s3:::out".into(),
            manifest_prefix: Some("gen/".into()),
            manifest_encryption: None,
            manifest_format: GENERATED_MANIFEST_FORMAT.into(),
        };
        assert_eq!(location.manifest_key("j1"), "gen/job-j1/manifest.json");
        assert_eq!(location.data_key("j1"), "gen/job-j1/data/j1.csv.gz");
        location.manifest_prefix = None;
        assert_eq!(location.manifest_key("j1"), "job-j1/manifest.json");
        assert_eq!(location.data_key("j1"), "job-j1/data/j1.csv.gz");
    }

    #[test]
    fn serialises_back_with_aws_names() {
        let value = json!({"S3JobManifestGenerator": {
            "SourceBucket": "arn:aws:s3:::src-bucket",
            "EnableManifestOutput": true,
            "ManifestOutputLocation": {
                "Bucket": "arn:aws:s3:::out-bucket",
                "ManifestFormat": GENERATED_MANIFEST_FORMAT,
                "ManifestEncryption": {"SSES3": {}}
            },
            "Filter": {
                "KeyNameConstraint": {"MatchAnyPrefix": ["a"]},
                "ObjectSizeGreaterThanBytes": 1,
                "MatchAnyStorageClass": ["STANDARD"]
            }
        }});
        let parsed = ManifestGenerator::parse(&value).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
    }
}
