//! The reporter: composes result parts into the completion report and sets the final status.
//!
//! A finalize request is claimed once per job (the store's finalize claim), but SQS may deliver
//! it twice and the sweeper resends lost ones, so finalizing is idempotent: a terminal job is
//! left alone, and report files have deterministic keys, so writing the report again overwrites
//! the same objects with the same bytes.
//!
//! A report of any size: the work goes in phases (rows into report files, the job's items given
//! their TTL, the final status), and stops before the deadline, saving a [`ReportState`] (with
//! optimistic concurrency) and continuing itself through the report queue.
//!
//! A result part that cannot be read, or a report that cannot be written, fails the job with a
//! FailureReason that names the object (rather than leaving the job Active behind a finalize
//! message that goes round until the dead-letter queue). Errors of the job table are returned, so
//! the message is delivered again.

use crate::error::{Error, Result};
use crate::job::{bucket_from_arn, FailureReason, Job, JobStatus, ReportScope};
use crate::queue::FinalizeRequest;
use crate::report::{
    report_manifest_key_in, result_file_key_in, OpenFileState, ReportBuilder, ReportFile,
    ReportKind, ReportManifest, ReportResult, TaskOutcome, TaskStatus,
};
use crate::store::{BatchRecord, Store};
use crate::Context;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// Optional size limit of one report file, in bytes (default [`DEFAULT_MAX_FILE_BYTES`]). The
/// reporter holds at most two files in memory, so its memory must exceed twice this value.
pub use crate::context::ENV_REPORT_MAX_FILE_BYTES;

/// FailureCode of a job whose result part could not be read.
pub const PART_UNREADABLE_CODE: &str = "ResultPartUnreadable";
/// FailureCode of a job whose completion report could not be written.
pub const REPORT_NOT_WRITTEN_CODE: &str = "ReportNotWritten";

/// How many times the final transition is retried when somebody else moves the job meanwhile
/// (e.g. a cancel request that turns Active into Cancelling).
const SETTLE_ATTEMPTS: usize = 5;

/// Sends the finalize request once, when planning is complete and every batch has committed.
/// Called after every commit (a redelivered batch's too) and at the end of planning; the store's
/// conditional claim makes exactly one caller win. A claim whose request cannot be sent is given
/// back, so the next caller sends it; the sweeper resends one that was claimed and then lost.
pub async fn finalize_if_done(ctx: &Context, job_id: &str) -> Result<()> {
    send_finalize(ctx, job_id, None).await.map(|_| ())
}

/// Like [`finalize_if_done`], but also sends again when the last finalize request went out
/// longer than `resend_after` ago and the job has not ended (the sweeper's repair). True when a
/// request was sent.
pub async fn send_finalize(
    ctx: &Context,
    job_id: &str,
    resend_after: Option<std::time::Duration>,
) -> Result<bool> {
    let store = ctx.store();
    let Some(claimed_at) = store
        .claim_finalize(job_id, chrono::Utc::now(), resend_after)
        .await?
    else {
        return Ok(false);
    };
    if let Err(err) = crate::queue::send_finalize_request(ctx, job_id).await {
        store.release_finalize(job_id, claimed_at).await;
        return Err(err);
    }
    Ok(true)
}

/// Writes the completion report (if enabled) and moves the job to its final status, continuing
/// in new invocations (through the report queue) when the reporter's budget runs out.
pub async fn finalize_job(ctx: &Context, job_id: &str) -> Result<Finalized> {
    finalize(ctx, job_id, None).await
}

/// What one finalize invocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalized {
    /// The job is in this final status.
    Ended(JobStatus),
    /// Time ran out: the state is saved and a continuation is on the report queue.
    Continued,
    /// The canary's report is written and the job waits in Suspended for confirmation.
    CanaryReported,
    /// No report is due (a request delivered again after the job moved on, or sent by hand
    /// too early): the job is left as it is, in this status.
    NotDue(JobStatus),
}

/// The reporter function's handler. The event is an SQS event whose records carry
/// [`FinalizeRequest`] bodies (answered with a partial batch response, `batchItemFailures`, so
/// the event source mapping needs `ReportBatchItemFailures`), or one `FinalizeRequest` given
/// directly (a console test event), answered with the job's status.
pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    handle_until(ctx, event, None).await
}

/// [`handle`] with the invocation's deadline: the report is continued before it.
pub async fn handle_until(
    ctx: &Context,
    event: Value,
    lambda_deadline: Option<SystemTime>,
) -> Result<Value> {
    if event.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(event)
            .map_err(|e| Error::Message(format!("not an SQS event: {e}")))?;
        // Boxed: a report's future is deep, and the Lambda's main would exceed the compiler's
        // layout depth limit with it inline.
        let response = crate::queue::partial_batch(event, "finalize failed", |id, body| {
            Box::pin(handle_record(ctx, id, body, lambda_deadline))
        })
        .await;
        return serde_json::to_value(response).map_err(|e| Error::encode("the batch response", e));
    }
    let request: FinalizeRequest = serde_json::from_value(event).map_err(|e| {
        Error::Message(format!(
            "expected an SQS event or {{\"FinalizeJobId\": \"...\"}}: {e}"
        ))
    })?;
    let answer = match finalize(ctx, &request.job_id, lambda_deadline).await? {
        Finalized::Ended(status) | Finalized::NotDue(status) => {
            json!({ "FinalizeJobId": request.job_id, "Status": status.as_str() })
        }
        Finalized::CanaryReported => {
            json!({ "FinalizeJobId": request.job_id, "Status": JobStatus::Suspended.as_str(), "CanaryReported": true })
        }
        Finalized::Continued => {
            json!({ "FinalizeJobId": request.job_id, "Continued": true })
        }
    };
    Ok(answer)
}

async fn handle_record(
    ctx: &Context,
    message_id: String,
    body: String,
    lambda_deadline: Option<SystemTime>,
) -> Result<()> {
    let request: FinalizeRequest = serde_json::from_str(&body).map_err(|e| {
        Error::Message(format!(
            "SQS message {message_id} is not a finalize request ({{\"FinalizeJobId\": \"...\"}}): {e}"
        ))
    })?;
    finalize(ctx, &request.job_id, lambda_deadline)
        .await
        .map(|_| ())
}

/// Time kept free before the reporter's Lambda deadline: the file being written and the saved
/// state finish, and the continuation is sent.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(60);

/// Result part records read per DynamoDB page.
const BATCH_PAGE: i32 = 200;

/// What a reporter that continues in a new invocation saves (item `sk=REPORT`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportState {
    /// When the report was begun: its ReportCreationDate, the same however often it continues.
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub phase: ReportPhase,
    /// The last batch whose rows are in the report files (phase Rows), or the last item given
    /// its TTL (phase Expire).
    pub cursor: Option<String>,
    pub succeeded: OpenFileState,
    pub failed: OpenFileState,
    /// Where the bytes so far of each open file are saved (system bucket), per status. Each save
    /// gets a key of its own, so a reporter that loses the race to save the state cannot
    /// overwrite the winner's bytes.
    pub staged: BTreeMap<String, String>,
    /// Report files written so far, in the order they were written.
    pub results: Vec<ReportResult>,
    /// Why the job fails, when the report could not be made.
    pub failure: Option<FailureReason>,
    /// The TTL given to the job's items (phase Expire).
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportPhase {
    /// Rows of result parts go into report files.
    Rows,
    /// The job's items get their TTL.
    Expire,
    /// The job moves to its final status.
    Settle,
}

impl ReportState {
    fn new(now: chrono::DateTime<chrono::Utc>, wanted: bool) -> Self {
        ReportState {
            started_at: now,
            phase: if wanted {
                ReportPhase::Rows
            } else {
                ReportPhase::Expire
            },
            cursor: None,
            succeeded: OpenFileState::default(),
            failed: OpenFileState::default(),
            staged: BTreeMap::new(),
            results: Vec::new(),
            failure: None,
            expires_at: None,
        }
    }
}

/// Finalizes a job, as far as `lambda_deadline` (or the reporter budget) lets it.
async fn finalize(
    ctx: &Context,
    job_id: &str,
    lambda_deadline: Option<SystemTime>,
) -> Result<Finalized> {
    let stop_at = crate::deadline::stop_time(
        Instant::now(),
        SystemTime::now(),
        lambda_deadline,
        DEADLINE_MARGIN,
        ctx.settings.reporter_budget,
    );
    let store = ctx.store();
    let job = store.get_job(job_id).await?;
    if job.status.is_terminal() {
        tracing::info!(job_id, status = %job.status, "job already final; nothing to do");
        return Ok(Finalized::Ended(job.status));
    }
    let kind = match report_due(&job) {
        Some(kind) => kind,
        None => {
            tracing::info!(job_id, status = %job.status, "no report is due; nothing to do");
            return Ok(Finalized::NotDue(job.status));
        }
    };
    if kind == ReportKind::Canary && job.status.stops_execution() {
        return close_after_canary(ctx, &store, &job).await;
    }
    let (mut step, mut state) = match store.get_report_state::<ReportState>(job_id, kind).await? {
        Some((step, state)) => (step + 1, state),
        None => (0, ReportState::new(chrono::Utc::now(), report_wanted(&job))),
    };
    loop {
        let progress = match (state.phase, kind) {
            (ReportPhase::Rows, _) => {
                write_rows(ctx, &store, &job, kind, &mut state, stop_at).await?
            }
            // The job goes on after its canary: its items stay.
            (ReportPhase::Expire, ReportKind::Canary) => {
                state.phase = ReportPhase::Settle;
                Progress::PhaseDone
            }
            (ReportPhase::Expire, ReportKind::Final) => {
                expire_items(ctx, &store, &job, &mut state, stop_at).await?
            }
            (ReportPhase::Settle, ReportKind::Canary) => {
                return settle_canary(ctx, &store, job, &state).await;
            }
            (ReportPhase::Settle, ReportKind::Final) => {
                let status = settle(&store, job, state.failure).await?;
                return Ok(Finalized::Ended(status));
            }
        };
        // Each phase's end, and each stop for time, is saved; only the last save may fail.
        if !store
            .save_report_state(job_id, kind, step, &state, state.expires_at)
            .await?
        {
            // That reporter may have stopped right after saving: this request comes back later
            // (and then finds the job ended, or goes on from where the report stands).
            return Err(Error::Conflict(format!(
                "job {job_id}: another reporter saved the report's state first; this request is retried later"
            )));
        }
        step += 1;
        if progress == Progress::OutOfTime {
            tracing::info!(job_id, phase = ?state.phase, cursor = ?state.cursor, "reporter time is up; continuing in a new invocation");
            crate::queue::send_finalize_request(ctx, job_id).await?;
            return Ok(Finalized::Continued);
        }
    }
}

/// Whether a phase finished or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    PhaseDone,
    OutOfTime,
}

/// Gives the job's items their TTL, then moves on to settling.
async fn expire_items(
    ctx: &Context,
    store: &Store,
    job: &Job,
    state: &mut ReportState,
    stop_at: Option<Instant>,
) -> Result<Progress> {
    if state.cursor.is_none() {
        // Copies left unfinished when the job stopped would stay in their buckets, billed.
        crate::operation::abort_recorded_uploads(ctx, job, None).await?;
    }
    let expires_at = *state
        .expires_at
        .get_or_insert_with(|| crate::store::expiry_of(chrono::Utc::now()));
    match store
        .expire_job_items(job, expires_at, state.cursor.take(), stop_at)
        .await?
    {
        Some(cursor) => {
            state.cursor = Some(cursor);
            Ok(Progress::OutOfTime)
        }
        None => {
            state.phase = ReportPhase::Settle;
            Ok(Progress::PhaseDone)
        }
    }
}

/// Which report a finalize request is for: the final one once planning is complete, the
/// canary's while the job waits after its canary; `None` when neither is due (a request
/// delivered again after the canary's report, or one sent by hand before the job is done).
fn report_due(job: &Job) -> Option<ReportKind> {
    if job.progress.batches_planned.is_some() {
        Some(ReportKind::Final)
    } else if job.progress.canary_batches.is_some() {
        Some(ReportKind::Canary)
    } else {
        None
    }
}

/// The job stopped (cancelled, or failing) while its canary ran or waited for its report: its
/// parts must be closed before its final report. The finalize claim is given back and the
/// planner asked to close them; once it has, it sends the finalize request of the final report.
async fn close_after_canary(ctx: &Context, store: &Store, job: &Job) -> Result<Finalized> {
    tracing::info!(job_id = %job.job_id, status = %job.status, "job stopped during its canary; planning closes before the final report");
    if let Some(claimed_at) = job.tracking.finalize_at {
        store.release_finalize(&job.job_id, claimed_at).await;
    }
    crate::queue::send_plan_request(ctx, &job.job_id).await?;
    Ok(Finalized::NotDue(job.status))
}

/// After the canary's report: the job waits in Suspended for confirmation of the rest. When the
/// report could not be written, the job fails instead (through Failing, so that its parts are
/// closed and its final report says why).
async fn settle_canary(
    ctx: &Context,
    store: &Store,
    mut job: Job,
    state: &ReportState,
) -> Result<Finalized> {
    use JobStatus::*;
    for _ in 0..SETTLE_ATTEMPTS {
        if job.status.stops_execution() {
            return close_after_canary(ctx, store, &job).await;
        }
        let moved = match (&state.failure, job.status) {
            (Some(failure), Active) => {
                store
                    .transition(&job.job_id, Active, Failing, None, Some(failure.clone()))
                    .await?
            }
            (None, Active | Pausing | Paused) => {
                let reason = canary_reason(&job);
                tracing::info!(job_id = %job.job_id, %reason, "canary reported; the job awaits confirmation");
                if store
                    .transition(&job.job_id, job.status, Suspended, Some(reason), None)
                    .await?
                {
                    return Ok(Finalized::CanaryReported);
                }
                false
            }
            (_, Pausing | Paused) => {
                // Failing starts from Active: wait until the job is back there.
                return Err(Error::NotReady(format!(
                    "job {} is {}; its canary's report failed and the job fails once it is Active again",
                    job.job_id, job.status
                )));
            }
            (_, status) => {
                tracing::info!(job_id = %job.job_id, %status, "canary's report is done, but the job moved on");
                return Ok(Finalized::NotDue(status));
            }
        };
        if !moved {
            job = store.get_job(&job.job_id).await?;
        }
    }
    Err(Error::Conflict(format!(
        "job {} kept changing status while its canary was settled; try again",
        job.job_id
    )))
}

/// What a job suspended after its canary says (StatusUpdateReason).
fn canary_reason(job: &Job) -> String {
    let p = &job.progress;
    let report = &job.request.report;
    let where_ = match report.bucket.as_deref().filter(|_| report.enabled) {
        Some(bucket) => format!(
            "; its report is s3://{}/{}/manifest.json",
            bucket_from_arn(bucket),
            ReportKind::Canary.dir(report.prefix.as_deref(), &job.job_id)
        ),
        None => String::new(),
    };
    format!(
        "canary done: {} tasks ran, {} succeeded, {} failed{where_}; update-job-status --requested-job-status Ready runs the rest, Cancelled ends the job",
        p.succeeded + p.failed + p.not_run,
        p.succeeded,
        p.failed
    )
}

/// S3 writes a report when it is enabled and at least one task ran.
fn report_wanted(job: &Job) -> bool {
    job.request.report.enabled && job.progress.succeeded + job.progress.failed > 0
}

/// The statuses a job goes through, from `from`, to reach its final status; empty for a
/// terminal job, None for a job that must not be finalized (awaiting confirmation).
/// `report_failed` turns the happy ending into Failed (a cancelled job stays Cancelled).
pub fn final_path(from: JobStatus, report_failed: bool) -> Option<&'static [JobStatus]> {
    use JobStatus::*;
    let path: &'static [JobStatus] = match (from, report_failed) {
        (Complete | Cancelled | Failed, _) => &[],
        (Active, false) => &[Complete],
        (Active, true) | (Failing, _) => &[Failed],
        (Cancelling, _) => &[Cancelled],
        // A job with zero tasks finishes without ever having been Active.
        (New, false) => &[Preparing, Active, Complete],
        (Preparing | Ready, false) => &[Active, Complete],
        (New | Preparing | Ready, true) => &[Failed],
        (Pausing, false) => &[Paused, Active, Complete],
        (Pausing, true) => &[Paused, Active, Failed],
        (Paused, false) => &[Active, Complete],
        (Paused, true) => &[Active, Failed],
        (Suspended, _) => return None,
    };
    Some(path)
}

/// Moves the job to its final status, re-reading it when somebody else changed it meanwhile.
async fn settle(store: &Store, mut job: Job, failure: Option<FailureReason>) -> Result<JobStatus> {
    for _ in 0..SETTLE_ATTEMPTS {
        let path = final_path(job.status, failure.is_some()).ok_or_else(|| {
            Error::NotReady(format!(
                "job {} is {} (awaiting confirmation) and cannot be finalized",
                job.job_id, job.status
            ))
        })?;
        let Some(&last) = path.last() else {
            return Ok(job.status);
        };
        if walk(store, &job.job_id, job.status, path, failure.as_ref()).await? {
            tracing::info!(job_id = %job.job_id, status = %last, "job finalized");
            return Ok(last);
        }
        job = store.get_job(&job.job_id).await?;
    }
    Err(Error::Conflict(format!(
        "job {} kept changing status while being finalized; try again",
        job.job_id
    )))
}

/// Takes the job along `path`; false when a step found the job moved by somebody else.
async fn walk(
    store: &Store,
    job_id: &str,
    from: JobStatus,
    path: &[JobStatus],
    failure: Option<&FailureReason>,
) -> Result<bool> {
    let mut from = from;
    for (step, &to) in path.iter().enumerate() {
        // Only the final step carries the report's failure; passing no reason otherwise keeps
        // the one recorded when the job started failing or cancelling.
        let failure = failure.filter(|_| step + 1 == path.len()).cloned();
        let reason = failure.as_ref().map(|f| f.failure_reason.clone());
        if !store.transition(job_id, from, to, reason, failure).await? {
            return Ok(false);
        }
        from = to;
    }
    Ok(true)
}

/// Why writing the report stopped.
enum Problem {
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

fn job_failure(code: &str, reason: String) -> Problem {
    Problem::FailJob(FailureReason {
        failure_code: code.to_string(),
        failure_reason: reason,
    })
}

/// Streams the result parts of the batches after the state's cursor through the report builder,
/// writing each file as soon as it is full, until every batch is in or time runs out; at the end
/// the last files and the report's manifest.json. Memory holds one page of batch records, the
/// parts being read ahead and the two open files, whatever the size of the job.
async fn write_rows(
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

async fn report_rows(
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
async fn add_parts(
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
async fn stage_file(
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

async fn read_staged_file(ctx: &Context, key: &str) -> Result<Vec<u8>, Problem> {
    ctx.read_system_object(key).await.map_err(Problem::Retry)
}

/// The outcomes of one batch, from the result parts its winning attempts wrote (one per
/// committed segment with rows to report), in task order.
async fn read_part(
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

async fn read_part_object(
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
        .map_err(|e| unreadable(s3_error_summary("GetObject", &e)))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| unreadable(e.to_string()))?
        .into_bytes();
    crate::report::decode_rows(&bytes).map_err(|e| unreadable(e.to_string()))
}

/// The rows a batch's result part holds: the executor writes only what the report will list,
/// so a FailedTasksOnly batch without failures has no part at all.
fn expected_rows(scope: ReportScope, batch: &BatchRecord) -> u64 {
    match scope {
        ReportScope::AllTasks => batch.counts.succeeded + batch.counts.failed,
        ReportScope::FailedTasksOnly => batch.counts.failed,
    }
}

/// Longest error text kept in a FailureReason; the whole error goes to the log.
const MAX_ERROR_TEXT: usize = 500;

/// A short account of an S3 error for a FailureReason: S3's error code, the HTTP status and
/// message (`NoSuchKey (HTTP 404): The specified key does not exist.`), never the raw response.
fn s3_error_summary<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> String
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
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

fn truncate(mut text: String, max: usize) -> String {
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
struct ReportWriter<'a> {
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
                job_failure(
                    REPORT_NOT_WRITTEN_CODE,
                    format!(
                        "cannot write the completion report to s3://{}/{key}: {}",
                        self.bucket,
                        s3_error_summary("PutObject", &e)
                    ),
                )
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{can_transition, ALL_STATUSES};

    #[test]
    fn final_paths_follow_the_status_machine() {
        for &from in ALL_STATUSES {
            for report_failed in [false, true] {
                let Some(path) = final_path(from, report_failed) else {
                    assert_eq!(from, JobStatus::Suspended);
                    continue;
                };
                let mut at = from;
                for &to in path {
                    assert!(can_transition(at, to), "{from}: {at} -> {to} not allowed");
                    at = to;
                }
                assert!(at.is_terminal(), "{from} ends at {at}");
            }
        }
    }

    #[test]
    fn final_statuses() {
        use JobStatus::*;
        let end = |from, failed| *final_path(from, failed).unwrap().last().unwrap();
        assert_eq!(end(Active, false), Complete);
        assert_eq!(end(Active, true), Failed);
        assert_eq!(end(Failing, false), Failed);
        assert_eq!(end(Cancelling, false), Cancelled);
        assert_eq!(end(Cancelling, true), Cancelled);
        assert_eq!(end(Preparing, false), Complete);
        assert_eq!(end(Ready, false), Complete);
        assert!(final_path(Complete, false).unwrap().is_empty());
        assert!(final_path(Suspended, false).is_none());
    }

    fn offline_context() -> Context {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let settings = crate::context::Settings {
            table: "t".into(),
            plan_queue_url: "http://127.0.0.1:9/plan".into(),
            task_queue_url: "http://127.0.0.1:9/tasks".into(),
            report_queue_url: "http://127.0.0.1:9/report".into(),
            system_bucket: "system".into(),
            executor_concurrency: 1,
            lambda_max_attempts: 1,
            lambda_retry_base: std::time::Duration::from_millis(1),
            max_message_bytes: 1024,
            report_read_concurrency: 1,
            ..Default::default()
        };
        Context::from_config(&config, settings)
    }

    #[tokio::test]
    async fn a_malformed_sqs_body_becomes_a_batch_item_failure() {
        let event = json!({"Records": [{"messageId": "m-7", "body": "not json"}]});
        let answer = handle(&offline_context(), event).await.unwrap();
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "m-7"}]})
        );
    }

    #[tokio::test]
    async fn a_direct_event_must_name_the_job() {
        let err = handle(&offline_context(), json!({"JobId": "x"}))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("FinalizeJobId"), "{err}");
    }

    #[test]
    fn long_error_texts_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("short".into(), 10), "short");
        let cut = truncate("é".repeat(10), 5);
        assert_eq!(cut, "éé…");
    }

    #[test]
    fn sqs_records_parse_with_only_the_fields_the_reporter_reads() {
        // What `local run` sends: no receipt handle, attributes or ARNs.
        let event = json!({"Records": [{
            "messageId": "m-1",
            "body": "{\"FinalizeJobId\":\"job-1\"}",
            "eventSource": "aws:sqs"
        }]});
        let event: SqsEvent = serde_json::from_value(event).unwrap();
        assert_eq!(event.records[0].message_id.as_deref(), Some("m-1"));
        let body = event.records[0].body.as_deref().unwrap();
        let request: FinalizeRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.job_id, "job-1");
    }
}
