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
//! message that goes round until the dead-letter queue). Errors of the job table, and S3's
//! throttling, server errors and lost connections (S3's for now, not the report's), are
//! returned, so the message is delivered again.

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

/// Optional size limit of one report file, in bytes (default [`crate::report::DEFAULT_MAX_FILE_BYTES`]). The
/// reporter holds at most two files in memory, so its memory must exceed twice this value.
pub use crate::context::ENV_REPORT_MAX_FILE_BYTES;

mod write;
pub use write::check_destination;
use write::*;

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
    /// The step the reporter is at; a continuation picks up there.
    pub phase: ReportPhase,
    /// The last batch whose rows are in the report files (phase Rows), or the last item given
    /// its TTL (phase Expire).
    pub cursor: Option<String>,
    /// The report file of succeeded tasks being filled: its index and rows so far.
    pub succeeded: OpenFileState,
    /// The report file of failed tasks being filled: its index and rows so far.
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

/// The steps of finishing a job, in order: `Rows`, `Expire`, `Settle`. A job that wants
/// no report starts at `Expire`.
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

#[cfg(test)]
mod tests;
