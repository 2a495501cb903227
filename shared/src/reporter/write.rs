//! Writing the completion report: the committed batches' result parts read, checked and
//! written into report files (staged between invocations), the destination checked first, and
//! S3 errors summarised for FailureReasons.

use super::*;

/// Why writing the report stopped.
pub(super) enum Problem {
    /// The job table failed: the finalize message should come again.
    Retry(Error),
    /// The report cannot be made: the job fails with this reason.
    FailJob(FailureReason),
}

impl From<Error> for Problem {
    fn from(err: Error) -> Self {
        Problem::Retry(err)
    }
}

pub(super) fn job_failure(code: &str, reason: String) -> Problem {
    Problem::FailJob(FailureReason {
        failure_code: code.to_string(),
        failure_reason: reason,
    })
}

/// Streams the result parts of the batches after the state's cursor through the report builder,
/// writing each file as soon as it is full, until every batch is in or time runs out; at the end
/// the last files and the report's manifest.json. Memory holds one page of batch records, the
/// parts being read ahead and the two open files, whatever the size of the job.
pub(super) async fn write_rows(
    ctx: &Context,
    store: &Store,
    job: &Job,
    kind: ReportKind,
    state: &mut ReportState,
    stop_at: Option<Instant>,
) -> Result<Progress> {
    match report_rows(ctx, store, job, kind, state, stop_at).await {
        Ok(progress) => Ok(progress),
        Err(Problem::FailJob(reason)) => {
            tracing::error!(job_id = %job.job_id, reason = %reason.failure_reason, "completion report failed");
            state.failure = Some(reason);
            state.phase = ReportPhase::Expire;
            state.cursor = None;
            Ok(Progress::PhaseDone)
        }
        Err(Problem::Retry(err)) => Err(err),
    }
}

/// Before the first task runs: the completion report can be written where the job asks (the
/// bucket exists and takes a PutObject under the job's report prefix), so that a wrong bucket
/// fails the job at once instead of after every object was changed. The check object is deleted
/// again; where the role may not delete, an empty `.write-check` object stays beside the report.
pub async fn check_destination(ctx: &Context, job: &Job) -> Result<()> {
    let report = &job.request.report;
    if !report.enabled {
        return Ok(());
    }
    let Some(bucket) = report
        .bucket
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(bucket_from_arn)
    else {
        return Err(Error::ReportDestination(
            "the report is enabled but Report.Bucket is not set".into(),
        ));
    };
    let key = format!(
        "{}/.write-check",
        crate::report::job_report_prefix(report.prefix.as_deref(), &job.job_id)
    );
    let owner = report.expected_bucket_owner.clone();
    let put = ctx
        .s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(ByteStream::from_static(b""))
        .server_side_encryption(ServerSideEncryption::Aes256)
        .set_expected_bucket_owner(owner.clone())
        .send()
        .await;
    match put {
        Ok(_) => {
            let _ = ctx
                .s3
                .delete_object()
                .bucket(&bucket)
                .key(&key)
                .set_expected_bucket_owner(owner)
                .send()
                .await;
            Ok(())
        }
        Err(err) => {
            // The one classification of S3 errors the tasks use: throttling, server errors and
            // lost connections are worth another delivery, not a failed job.
            let failure = crate::operation::classify_s3_error(&err);
            if failure.retryable {
                return Err(Error::aws("S3", "PutObject", err));
            }
            let code = failure.error_code;
            let why = match code.as_str() {
                "NoSuchBucket" => format!("the report bucket {bucket} does not exist"),
                "AccessDenied" => match &report.expected_bucket_owner {
                    Some(owner) => format!(
                        "access to the report bucket {bucket} is denied: the job's role may not write there, or the bucket is not owned by Report.ExpectedBucketOwner {owner}"
                    ),
                    None => format!("access to the report bucket {bucket} is denied"),
                },
                _ => format!("the report bucket {bucket} refused a test write ({code})"),
            };
            Err(Error::ReportDestination(format!(
                "the completion report cannot be written: {why} (PutObject s3://{bucket}/{key}: {}); no task was run",
                DisplayErrorContext(&err)
            )))
        }
    }
}

pub(super) async fn report_rows(
    ctx: &Context,
    store: &Store,
    job: &Job,
    kind: ReportKind,
    state: &mut ReportState,
    stop_at: Option<Instant>,
) -> Result<Progress, Problem> {
    let report = &job.request.report;
    let bucket = match report.bucket.as_deref().filter(|b| !b.is_empty()) {
        Some(arn) => bucket_from_arn(arn),
        None => {
            return Err(job_failure(
                REPORT_NOT_WRITTEN_CODE,
                "the report is enabled but Report.Bucket is not set".into(),
            ))
        }
    };
    // The report is written as the job's role, like S3 Batch Operations does.
    let data = match ctx.for_job(job).await {
        Ok(data) => data,
        Err(err @ Error::RoleNotAssumed { .. }) => {
            return Err(job_failure(
                crate::role::ACCESS_DENIED_CODE,
                err.to_string(),
            ))
        }
        Err(other) => return Err(Problem::Retry(other)),
    };
    let mut writer = ReportWriter {
        ctx: &data,
        bucket,
        expected_owner: report.expected_bucket_owner.clone(),
        dir: kind.dir(report.prefix.as_deref(), &job.job_id),
        job_id: &job.job_id,
        results: std::mem::take(&mut state.results),
    };
    let mut builder = ReportBuilder::new(&job.job_id, report.scope())
        .with_max_file_bytes(ctx.settings.report_max_file_bytes);
    for (status, open) in [
        (TaskStatus::Succeeded, state.succeeded),
        (TaskStatus::Failed, state.failed),
    ] {
        let bytes = match state.staged.get(status.as_str()) {
            Some(key) if open.rows > 0 => read_staged_file(ctx, key).await?,
            _ => Vec::new(),
        };
        builder.resume_file(status, open, bytes);
    }
    let result = add_parts(ctx, store, job, state, stop_at, &mut builder, &mut writer).await;
    match result {
        Ok(Progress::OutOfTime) => {
            state.staged.clear();
            for status in [TaskStatus::Succeeded, TaskStatus::Failed] {
                let (open, bytes) = builder.take_open_file(status);
                if open.rows > 0 {
                    let key = stage_file(ctx, &job.job_id, status, open.index, bytes).await?;
                    state.staged.insert(status.as_str().to_string(), key);
                }
                *match status {
                    TaskStatus::Succeeded => &mut state.succeeded,
                    TaskStatus::Failed => &mut state.failed,
                } = open;
            }
            state.results = writer.results;
            Ok(Progress::OutOfTime)
        }
        Ok(Progress::PhaseDone) => {
            for file in builder.finish() {
                writer.write_file(file).await?;
            }
            writer.write_manifest(state.started_at).await?;
            state.results = Vec::new();
            state.succeeded = OpenFileState::default();
            state.failed = OpenFileState::default();
            state.staged.clear();
            state.phase = ReportPhase::Expire;
            state.cursor = None;
            Ok(Progress::PhaseDone)
        }
        Err(problem) => Err(problem),
    }
}

/// Feeds the result parts of the batches after the cursor, in batch order, into the builder;
/// the cursor moves past each batch whose rows are all in.
pub(super) async fn add_parts(
    ctx: &Context,
    store: &Store,
    job: &Job,
    state: &mut ReportState,
    stop_at: Option<Instant>,
    builder: &mut ReportBuilder,
    writer: &mut ReportWriter<'_>,
) -> Result<Progress, Problem> {
    let scope = job.request.report.scope();
    let concurrency = ctx.settings.report_read_concurrency.max(1);
    loop {
        let (page, more) = store
            .batches_after(&job.job_id, state.cursor.as_deref(), BATCH_PAGE)
            .await?;
        // Parts are read ahead but consumed in batch order (`buffered`, not
        // `buffer_unordered`), so the report is the same whatever order the reads finish in.
        let last = page.len().saturating_sub(1);
        let mut parts =
            futures::stream::iter(page.iter().enumerate())
                .map(|(i, batch)| async move {
                    (i, batch, read_part(ctx, &job.job_id, scope, batch).await)
                })
                .buffered(concurrency);
        while let Some((i, batch, outcomes)) = parts.next().await {
            for outcome in outcomes? {
                if let Some(file) = builder.push(&outcome) {
                    writer.write_file(file).await?;
                }
            }
            state.cursor = Some(batch.batch_id.clone());
            let work_left = more.is_some() || i < last;
            if work_left && crate::deadline::is_past(stop_at) {
                return Ok(Progress::OutOfTime);
            }
        }
        if more.is_none() {
            return Ok(Progress::PhaseDone);
        }
    }
}

/// Saves the bytes of a report file being filled to a key of its own in the system bucket, for
/// the invocation that continues; returns the key.
pub(super) async fn stage_file(
    ctx: &Context,
    job_id: &str,
    status: TaskStatus,
    index: u32,
    bytes: Vec<u8>,
) -> Result<String, Problem> {
    let key = format!(
        "staging/job-{job_id}/report/{}-{index:06}-{}.csv",
        status.as_str(),
        uuid::Uuid::new_v4().simple()
    );
    ctx.write_system_object(&key, bytes)
        .await
        .map_err(Problem::Retry)?;
    Ok(key)
}

pub(super) async fn read_staged_file(ctx: &Context, key: &str) -> Result<Vec<u8>, Problem> {
    ctx.read_system_object(key).await.map_err(Problem::Retry)
}

/// The outcomes of one batch, from the result parts its winning attempts wrote (one per
/// committed segment with rows to report), in task order.
pub(super) async fn read_part(
    ctx: &Context,
    job_id: &str,
    scope: ReportScope,
    batch: &BatchRecord,
) -> Result<Vec<TaskOutcome>, Problem> {
    let expected = expected_rows(scope, batch);
    if batch.parts.is_empty() {
        if expected > 0 {
            return Err(job_failure(
                PART_UNREADABLE_CODE,
                format!(
                    "batch {} of job {job_id} has {expected} report rows but recorded no result part",
                    batch.batch_id
                ),
            ));
        }
        return Ok(Vec::new());
    }
    let mut outcomes = Vec::new();
    for key in &batch.parts {
        outcomes.extend(read_part_object(ctx, batch, key).await?);
    }
    if outcomes.len() as u64 != expected {
        tracing::warn!(
            job_id,
            batch_id = %batch.batch_id,
            rows = outcomes.len(),
            expected,
            "result part rows differ from the batch's committed counts"
        );
    }
    Ok(outcomes)
}

pub(super) async fn read_part_object(
    ctx: &Context,
    batch: &BatchRecord,
    key: &str,
) -> Result<Vec<TaskOutcome>, Problem> {
    let bucket = &ctx.settings.system_bucket;
    let unreadable = |why: String| {
        job_failure(
            PART_UNREADABLE_CODE,
            format!(
                "result part s3://{bucket}/{key} of batch {} cannot be read: {why}",
                batch.batch_id
            ),
        )
    };
    let object = ctx
        .system_s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_expected_bucket_owner(ctx.settings.system_bucket_owner.clone())
        .send()
        .await
        .map_err(|e| {
            for_now_or(e, "GetObject", |e| {
                unreadable(s3_error_summary("GetObject", e))
            })
        })?;
    // A connection lost mid-body is S3's for now, like a 500: the finalize request comes again.
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| {
            Problem::Retry(Error::Message(format!(
                "result part s3://{bucket}/{key}: the body was cut off: {e}"
            )))
        })?
        .into_bytes();
    crate::report::decode_rows(&bytes).map_err(|e| unreadable(e.to_string()))
}

/// The rows a batch's result part holds: the executor writes only what the report will list,
/// so a FailedTasksOnly batch without failures has no part at all.
pub(super) fn expected_rows(scope: ReportScope, batch: &BatchRecord) -> u64 {
    match scope {
        ReportScope::AllTasks => batch.counts.succeeded + batch.counts.failed,
        ReportScope::FailedTasksOnly => batch.counts.failed,
    }
}

/// An S3 error while reading parts or writing the report: throttling, a server error or a lost
/// connection is S3's for now, so the finalize request comes again (as the planner does with a
/// manifest read); anything else is the report's and fails the job as `fail` says.
pub(super) fn for_now_or<E>(
    err: SdkError<E, HttpResponse>,
    operation: &'static str,
    fail: impl FnOnce(&SdkError<E, HttpResponse>) -> Problem,
) -> Problem
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if crate::operation::classify_s3_error(&err).retryable {
        Problem::Retry(Error::aws("S3", operation, err))
    } else {
        fail(&err)
    }
}

/// Longest error text kept in a FailureReason; the whole error goes to the log.
pub(super) const MAX_ERROR_TEXT: usize = 500;

/// A short account of an S3 error for a FailureReason: S3's error code, the HTTP status and
/// message (`NoSuchKey (HTTP 404): The specified key does not exist.`), never the raw response.
pub(super) fn s3_error_summary<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    tracing::warn!(operation, error = %DisplayErrorContext(err), "S3 call failed");
    let status = err
        .raw_response()
        .map(|r| format!(" (HTTP {})", r.status().as_u16()))
        .unwrap_or_default();
    let text = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{operation}: {code}{status}: {message}"),
        (Some(code), None) => format!("{operation}: {code}{status}"),
        _ => format!("{operation}: {err}{status}: {}", root_cause(err)),
    };
    truncate(text, MAX_ERROR_TEXT)
}

/// The innermost error of a chain (e.g. "connection refused" under "dispatch failure").
pub(super) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

pub(super) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Writes report files to the report bucket and remembers them for the manifest.
pub(super) struct ReportWriter<'a> {
    ctx: &'a Context,
    expected_owner: Option<String>,
    bucket: String,
    /// The report's folder ([`ReportKind::dir`]).
    dir: String,
    job_id: &'a str,
    results: Vec<ReportResult>,
}

impl ReportWriter<'_> {
    async fn write_file(&mut self, file: ReportFile) -> Result<(), Problem> {
        let key = result_file_key_in(&self.dir, &file.name);
        let md5 = file.md5_hex();
        tracing::info!(job_id = self.job_id, key = %key, rows = file.rows, "writing report file");
        self.put(&key, file.bytes, "text/csv").await?;
        self.results.push(ReportResult {
            task_execution_status: file.status,
            bucket: self.bucket.clone(),
            md5_checksum: md5,
            key,
        });
        Ok(())
    }

    async fn write_manifest(
        &mut self,
        created: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Problem> {
        // Succeeded files first, each status in file order, as S3 lists them.
        self.results
            .sort_by_key(|r| r.task_execution_status == TaskStatus::Failed);
        let results = std::mem::take(&mut self.results);
        let manifest = ReportManifest::new(created, results);
        let body = serde_json::to_vec(&manifest).map_err(|e| {
            job_failure(
                REPORT_NOT_WRITTEN_CODE,
                format!("cannot encode the report manifest: {e}"),
            )
        })?;
        let key = report_manifest_key_in(&self.dir);
        self.put(&key, body, "application/json").await?;
        tracing::info!(
            job_id = self.job_id,
            bucket = %self.bucket,
            key = %key,
            files = manifest.results.len(),
            "completion report written"
        );
        Ok(())
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), Problem> {
        self.ctx
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // S3 always encrypts completion reports with SSE-S3.
            .server_side_encryption(ServerSideEncryption::Aes256)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| {
                for_now_or(e, "PutObject", |e| {
                    job_failure(
                        REPORT_NOT_WRITTEN_CODE,
                        format!(
                            "cannot write the completion report to s3://{}/{key}: {}",
                            self.bucket,
                            s3_error_summary("PutObject", e)
                        ),
                    )
                })
            })?;
        Ok(())
    }
}
