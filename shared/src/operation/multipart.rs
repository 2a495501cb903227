//! Copies in one CopyObject request or in parts (UploadPartCopy), the upload recorded in the job
//! table so that the uploads of a stopped job are aborted, not left billed.

use super::*;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, MetadataDirective as S3MetadataDirective,
    TaggingDirective,
};
use futures::stream::{self, StreamExt};

use crate::job::{Job, S3Tag};
use crate::manifest::Task;
use crate::Context;

pub(super) async fn single_copy(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
) -> Result<(), Failure> {
    let source = copy_source(task);
    let key = plan.target_key(task);
    let (source, key) = (&source, &key);
    s3_call(ctx, &plan.target_bucket, |s3| async move {
        let request = destination!(
            s3.copy_object(),
            plan,
            plan.replace_metadata.as_ref(),
            plan.tagging.clone()
        )
        .key(key)
        .copy_source(source)
        .set_metadata_directive(
            plan.replace_metadata
                .as_ref()
                .map(|_| S3MetadataDirective::Replace),
        )
        .set_tagging_directive(plan.tagging.as_ref().map(|_| TaggingDirective::Replace))
        .set_copy_source_if_modified_since(plan.if_modified_since)
        .set_copy_source_if_unmodified_since(plan.if_unmodified_since);
        request.send().await.done()
    })
    .await
}

/// How far a multipart copy got in this invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Copied {
    Whole,
    /// Time ran out: the upload is recorded and the next invocation copies the other parts.
    Partly,
}

/// A copy too large for CopyObject: parts copied concurrently with UploadPartCopy, each pinned to
/// the source as its HEAD saw it (`x-amz-copy-source-if-match` with its ETag; the version when
/// the task names one), so that a source overwritten mid-copy fails the task with S3's
/// `PreconditionFailed` (412) instead of completing a torn object. Any failure aborts the upload,
/// so no parts are left behind (and billed). When the executor's time runs out, the parts still
/// to copy are left to the next invocation: the upload is recorded in the job's table
/// ([`UploadRecord`]), found again by the task's batch and index, and resumed from S3's list of
/// its parts; the reporter and the sweeper abort recorded uploads of jobs that end.
pub(super) async fn multipart_copy(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
    head: &HeadObjectOutput,
    size: u64,
    at: &TaskAt<'_>,
) -> Result<Copied, Failure> {
    let key = plan.target_key(task);
    let etag = head.e_tag().unwrap_or_default().to_string();
    let store = (!ctx.settings.table.is_empty()).then(|| ctx.store());
    let record = match &store {
        Some(store) => store
            .get_upload(at.job_id, at.batch_id, at.index)
            .await
            .map_err(store_failure)?,
        None => None,
    };
    let (upload_id, done) = match record {
        Some(record) if record.source_etag == etag => {
            let done = read_parts_list(ctx, &record.parts_key).await?;
            (record.upload_id, done)
        }
        Some(record) => {
            // The source changed since the copy began: its parts would tear the object.
            abort_upload(ctx, plan, &record.key, &record.upload_id).await;
            if let Some(store) = &store {
                store
                    .delete_upload(at.job_id, at.batch_id, at.index)
                    .await
                    .map_err(store_failure)?;
            }
            return Err(Failure {
                retryable: false,
                error_code: "PreconditionFailed".into(),
                http_status: Some(412),
                message: format!(
                    "the source changed during the copy: its ETag was {} when the copy began and is {etag} now",
                    record.source_etag
                ),
                bucket_region: None,
            });
        }
        None => (start_upload(ctx, plan, task, head, &key).await?, Vec::new()),
    };
    tracing::debug!(bucket = %plan.target_bucket, size, parts_done = done.len(), "multipart copy");
    let result = copy_parts(
        ctx, plan, task, &key, &upload_id, size, &etag, &done, at.stop_at,
    )
    .await;
    let outcome = match result {
        Ok(parts) if parts.len() == part_ranges(size, plan.settings.part_size).len() => {
            complete_upload(ctx, plan, &key, &upload_id, parts)
                .await
                .map(|()| Copied::Whole)
        }
        Ok(parts) => {
            let Some(store) = &store else {
                return Err(store_failure(crate::Error::Config(
                    "a multipart copy cannot span invocations without the job table".into(),
                )));
            };
            let parts_key = write_parts_list(ctx, at, &parts).await?;
            let record = crate::store::UploadRecord {
                bucket: plan.target_bucket.clone(),
                key: key.clone(),
                upload_id: upload_id.to_string(),
                source_etag: etag.clone(),
                parts_key,
            };
            store
                .put_upload(at.job_id, at.batch_id, at.index, &record)
                .await
                .map_err(store_failure)?;
            return Ok(Copied::Partly);
        }
        Err(failure) => Err(failure),
    };
    if outcome.is_err() {
        abort_upload(ctx, plan, &key, &upload_id).await;
    }
    if let Some(store) = &store {
        store
            .delete_upload(at.job_id, at.batch_id, at.index)
            .await
            .map_err(store_failure)?;
    }
    outcome
}

/// Aborts the multipart copies that a job (or one batch of it) left unfinished and forgets them:
/// when the job ends, or its batch is given up. Best effort per upload (a lifecycle rule on the
/// target bucket is the last resort); errors of the job table are returned.
pub async fn abort_recorded_uploads(
    ctx: &Context,
    job: &Job,
    batch_id: Option<&str>,
) -> crate::Result<usize> {
    let job_id = job.job_id.as_str();
    let store = ctx.store();
    let uploads = store.list_uploads(job_id, batch_id).await?;
    if uploads.is_empty() {
        return Ok(0);
    }
    // The uploads were started as the job's role; without it they are left to the bucket's
    // lifecycle rule for incomplete uploads.
    let data = match ctx.for_job(job).await {
        Ok(data) => Some(data),
        Err(err @ crate::Error::RoleNotAssumed { .. }) => {
            tracing::warn!(job_id, error = %err, "cannot abort unfinished multipart copies: the job's role cannot be assumed");
            None
        }
        Err(other) => return Err(other),
    };
    for (batch, index, record) in &uploads {
        let Some(data) = &data else {
            store.delete_upload(job_id, batch, *index).await?;
            continue;
        };
        if let Err(e) = data
            .s3
            .abort_multipart_upload()
            .bucket(&record.bucket)
            .key(&record.key)
            .upload_id(&record.upload_id)
            .send()
            .await
        {
            let failure = classify_s3_error(&e);
            if failure.error_code != "NoSuchUpload" {
                tracing::warn!(job_id, bucket = %record.bucket, code = %failure.error_code, "could not abort an unfinished multipart copy");
            }
        }
        store.delete_upload(job_id, batch, *index).await?;
        tracing::info!(job_id, batch_id = %batch, bucket = %record.bucket, "aborted an unfinished multipart copy");
    }
    Ok(uploads.len())
}

/// A failure of the job table while copying: the task is retried (not failed) by the batch's
/// redelivery.
pub(super) fn store_failure(err: crate::Error) -> Failure {
    tracing::warn!(error = %err, "the progress of a multipart copy could not be read or saved");
    Failure {
        retryable: true,
        error_code: "InternalError".into(),
        http_status: Some(500),
        message: "the progress of a multipart copy could not be read or saved (the executor's logs give the cause)".into(),
        bucket_region: None,
    }
}

pub(super) async fn start_upload(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
    head: &HeadObjectOutput,
    key: &str,
) -> Result<String, Failure> {
    // A multipart upload copies neither metadata nor tags: carry the source's over unless the
    // job replaces them, as CopyObject would.
    let metadata = match &plan.replace_metadata {
        Some(replace) => replace.clone(),
        None => Metadata::from_source(head),
    };
    let tagging = match &plan.tagging {
        Some(tagging) => Some(tagging.clone()),
        None => source_tagging(ctx, plan, task).await?,
    };
    let tagging = &tagging;
    let metadata = &metadata;
    let created = s3_call(ctx, &plan.target_bucket, |s3| async move {
        destination!(
            s3.create_multipart_upload(),
            plan,
            Some(metadata),
            tagging.clone()
        )
        .key(key)
        .send()
        .await
        .classified()
    })
    .await?;
    Ok(created.upload_id().unwrap_or_default().to_string())
}

/// The parts copied so far, saved in the system bucket for the invocation that goes on (S3's
/// own ListParts would do, but its list can hold 10,000 parts and one call gives 1,000).
pub(super) async fn write_parts_list(
    ctx: &Context,
    at: &TaskAt<'_>,
    parts: &[CompletedPart],
) -> Result<String, Failure> {
    let list: Vec<(i32, String)> = parts
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap_or_default(),
                p.e_tag().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = serde_json::to_vec(&list).unwrap_or_default();
    let key = format!(
        "staging/job-{}/uploads/{}-{:06}-{}.json",
        at.job_id,
        at.batch_id,
        at.index,
        uuid::Uuid::new_v4().simple()
    );
    ctx.write_system_object(&key, body)
        .await
        .map_err(store_failure)?;
    Ok(key)
}

pub(super) async fn read_parts_list(
    ctx: &Context,
    key: &str,
) -> Result<Vec<CompletedPart>, Failure> {
    let bytes = ctx.read_system_object(key).await.map_err(store_failure)?;
    let list: Vec<(i32, String)> = serde_json::from_slice(&bytes).map_err(|e| {
        store_failure(crate::Error::Malformed {
            what: format!("the parts list {key}"),
            reason: e.to_string(),
        })
    })?;
    Ok(list
        .into_iter()
        .map(|(number, etag)| {
            CompletedPart::builder()
                .part_number(number)
                .e_tag(etag)
                .build()
        })
        .collect())
}

pub(super) async fn source_tagging(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
) -> Result<Option<String>, Failure> {
    let output = s3_call(ctx, &task.bucket, |s3| async move {
        s3.get_object_tagging()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .set_request_payer(plan.request_payer.clone())
            .send()
            .await
            .classified()
    })
    .await?;
    let tags: Vec<S3Tag> = output
        .tag_set()
        .iter()
        .map(|t| S3Tag {
            key: t.key().to_string(),
            value: t.value().to_string(),
        })
        .collect();
    Ok((!tags.is_empty()).then(|| tagging_header(&tags)))
}

/// Copies the parts not in `done`, at most `part_concurrency` at once, starting none once
/// `stop_at` has passed (but at least one, so every invocation makes progress). Returns every
/// part now in the upload, sorted; fewer than the object has when time ran out.
#[allow(clippy::too_many_arguments)]
pub(super) async fn copy_parts(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
    key: &str,
    upload_id: &str,
    size: u64,
    etag: &str,
    done: &[CompletedPart],
    stop_at: Option<std::time::Instant>,
) -> Result<Vec<CompletedPart>, Failure> {
    let source = copy_source(task);
    let ranges = part_ranges(size, plan.settings.part_size);
    let missing = ranges.into_iter().enumerate().filter(|(index, _)| {
        let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
        !done.iter().any(|p| p.part_number() == Some(number))
    });
    let parts = stream::iter(missing.enumerate())
        .take_while(|(started, _)| {
            std::future::ready(*started == 0 || !crate::deadline::is_past(stop_at))
        })
        .map(|(_, (index, (first, last)))| {
            let source = &source;
            async move {
                let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
                let output = s3_call(ctx, &plan.target_bucket, |s3| async move {
                    s3.upload_part_copy()
                        .bucket(&plan.target_bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={first}-{last}"))
                        .copy_source_if_match(etag)
                        .set_copy_source_if_modified_since(plan.if_modified_since)
                        .set_copy_source_if_unmodified_since(plan.if_unmodified_since)
                        .set_request_payer(plan.request_payer.clone())
                        .send()
                        .await
                        .classified()
                })
                .await?;
                let result = output.copy_part_result();
                Ok::<_, Failure>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(result.and_then(|r| r.e_tag()).map(String::from))
                        .set_checksum_crc32(
                            result.and_then(|r| r.checksum_crc32()).map(String::from),
                        )
                        .set_checksum_crc32_c(
                            result.and_then(|r| r.checksum_crc32_c()).map(String::from),
                        )
                        .set_checksum_crc64_nvme(
                            result
                                .and_then(|r| r.checksum_crc64_nvme())
                                .map(String::from),
                        )
                        .set_checksum_sha1(result.and_then(|r| r.checksum_sha1()).map(String::from))
                        .set_checksum_sha256(
                            result.and_then(|r| r.checksum_sha256()).map(String::from),
                        )
                        .build(),
                )
            }
        })
        .buffer_unordered(plan.settings.part_concurrency.max(1));
    let mut parts = collect_until_error(parts).await?;
    parts.extend(done.iter().cloned());
    parts.sort_by_key(|p| p.part_number());
    Ok(parts)
}

/// Collects results until the first error, which ends the stream: parts still in flight are
/// dropped, since the upload is aborted anyway.
pub(super) async fn collect_until_error<T>(
    stream: impl futures::Stream<Item = Result<T, Failure>>,
) -> Result<Vec<T>, Failure> {
    let mut stream = std::pin::pin!(stream);
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item?);
    }
    Ok(items)
}

pub(super) async fn complete_upload(
    ctx: &Context,
    plan: &CopyPlan,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
) -> Result<(), Failure> {
    let upload = CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    let upload = &upload;
    s3_call(ctx, &plan.target_bucket, |s3| async move {
        s3.complete_multipart_upload()
            .bucket(&plan.target_bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(upload.clone())
            .set_request_payer(plan.request_payer.clone())
            .send()
            .await
            .done()
    })
    .await
}

/// Best effort: a failed abort is logged (a lifecycle rule for incomplete uploads cleans up).
pub(super) async fn abort_upload(ctx: &Context, plan: &CopyPlan, key: &str, upload_id: &str) {
    let aborted = s3_call(ctx, &plan.target_bucket, |s3| async move {
        s3.abort_multipart_upload()
            .bucket(&plan.target_bucket)
            .key(key)
            .upload_id(upload_id)
            .set_request_payer(plan.request_payer.clone())
            .send()
            .await
            .done()
    })
    .await;
    if let Err(failure) = aborted {
        tracing::warn!(
            bucket = %plan.target_bucket,
            code = %failure.error_code,
            "could not abort a failed multipart copy; its parts stay until a lifecycle rule removes them"
        );
    }
}
