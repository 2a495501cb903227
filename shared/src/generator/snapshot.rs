//! The listing snapshot: a generator's listing is written once to the system bucket as a CSV
//! manifest (continued between invocations from its saved state), and planning reads that file.

use super::*;

/// Name of the job state that a listing being written saves between invocations.
pub const LISTING_STATE: &str = "LISTING";

/// Where a job's listing snapshot goes: the system bucket (kept 90 days, with the job), as a CSV
/// manifest that planning reads and continues from. A generated manifest that the job asks for is
/// written from it once the listing is done (`output.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotTarget {
    /// Bucket the file is written to.
    pub bucket: String,
    /// Object key of the file.
    pub key: String,
    /// Account id sent as `x-amz-expected-bucket-owner`; `None` sends none.
    pub expected_owner: Option<String>,
    /// Server-side encryption to write the file with (SSE-S3 or SSE-KMS); `None` asks for
    /// none and leaves the bucket default.
    pub encryption: Option<GeneratedManifestEncryption>,
}

impl SnapshotTarget {
    /// The snapshot of job `job_id` in `system_bucket`, at
    /// `jobs/job-<job id>/generated-manifest.csv`, with no expected owner and no requested
    /// encryption.
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
pub(super) async fn write_output(
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
    /// Parts uploaded so far: (part number, ETag).
    pub parts: Vec<(i32, String)>,
    /// Part number the next part is uploaded as.
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
pub(super) async fn write_system_object(
    ctx: &crate::Context,
    job_id: &str,
    body: Vec<u8>,
) -> Result<String> {
    let key = format!(
        "jobs/job-{job_id}/listing-carry-{}.csv",
        uuid::Uuid::new_v4().simple()
    );
    ctx.write_system_object(&key, body).await?;
    Ok(key)
}
