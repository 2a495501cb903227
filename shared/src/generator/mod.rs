//! The manifest generator (`ManifestGenerator.S3JobManifestGenerator`): the task list of a job built
//! from a bucket listing with S3 Batch Operations' filters instead of a manifest file.
//!
//! The listing is ListObjectsV2 (current versions only, as a manifest without a VersionId column:
//! every task acts on the latest version). The listing's filters are applied client-side by
//! [`matches()`] (a single `MatchAnyPrefix` is also sent to S3 as the listing prefix so that S3
//! lists less); the filters a listing cannot answer (encryption, replication) look at each
//! object that passed them ([`details`]).
//! With `EnableManifestOutput`, the selected objects are also written as S3 writes a generated
//! manifest, an S3 Inventory report (`output.rs`): `manifest.json` and a gzipped CSV data file under
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

mod snapshot;
pub use snapshot::{write_snapshot, Listing, ListingState, SnapshotTarget, LISTING_STATE};

/// Size of the multipart-upload parts of the generated manifest (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// What the filters look at: one entry of the bucket listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// The object's key, as ListObjectsV2 returns it (not URL-encoded).
    pub key: String,
    /// Size in bytes, from the listing; 0 when the listing gives none.
    pub size: i64,
    /// LastModified from the listing; `None` when the listing gives none.
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

#[cfg(test)]
mod tests;
