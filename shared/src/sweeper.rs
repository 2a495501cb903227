//! The sweeper: finds jobs that nothing will move any more and moves them, so that every job
//! reaches Complete, Failed or Cancelled whatever failed on the way.
//!
//! It runs on a schedule (the `sweeper` function, every few minutes), inside `batchops local run`,
//! and once with `batchops sweep`. Each run:
//! - drains the dead-letter queues: a task batch there had every delivery fail, so its
//!   uncommitted tasks become failed tasks ([`DEAD_LETTER_CODE`], with a message that says what
//!   happened) and the job can end; a plan request there fails its job ([`PLANNING_FAILED_CODE`]);
//!   a finalize request there is sent again;
//! - fails jobs Suspended (awaiting confirmation) for more than 30 days, as S3 does;
//! - sends the finalize request again for jobs whose batches have all committed but which did not
//!   end (the request was lost, or the process died between claiming and sending it);
//! - wakes jobs with no progress for `stall_after`: plan parts whose run was lost get a new plan
//!   message, jobs that were never planned get their plan request again, and what is missing is
//!   written to the job's StatusUpdateReason and logged.
//!
//! Every repair is logged with the job id and recorded as the job's StatusUpdateReason (a
//! failure also in FailureReasons), so `describe-job` shows it. All repairs are idempotent: the
//! commit, the planner's checkpoints and the reporter each accept a repeated request.

use crate::error::{Error, Result};
use crate::executor::{check_failure_threshold, write_part};
use crate::job::{FailureReason, Job, JobStatus};
use crate::plan::{PlanCheckpoint, TaskBatch};
use crate::queue::{FinalizeRequest, PlanRequest};
use crate::report::TaskOutcome;
use crate::reporter::{finalize_if_done, send_finalize};
use crate::store::{BatchCounts, Segment, SegmentCommit, Store};
use crate::Context;
use aws_sdk_sqs::types::{Message, QueueAttributeName};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;
use tracing::{error, info, warn};

/// ErrorCode of a task whose batch went to the task dead-letter queue uncommitted.
pub const DEAD_LETTER_CODE: &str = "BatchDeadLettered";
/// FailureCode of a job whose plan request went to the plan dead-letter queue.
pub const PLANNING_FAILED_CODE: &str = "PlanningFailed";
/// FailureCode of a job left Suspended (awaiting confirmation) for more than 30 days.
pub const SUSPENDED_EXPIRED_CODE: &str = "SuspendedTooLong";
/// S3 fails a job that waits for confirmation longer than this.
pub const SUSPENDED_LIMIT: Duration = Duration::from_secs(30 * 24 * 3600);
/// Dead-letter messages handled per queue per run, so that one run stays short.
const MAX_DEAD_LETTERS_PER_RUN: usize = 500;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SweepSummary {
    /// `JobsChecked`: jobs not yet ended that the sweep looked at.
    pub jobs_checked: u64,
    /// `Repairs`: what the sweep did, in order.
    pub repairs: Vec<Repair>,
    /// Jobs with no progress for the stall time, whatever was done about them.
    pub stalled_jobs: Vec<String>,
    /// Dead-letter messages of jobs that had ended or committed their batch: removed.
    pub dead_letters_dropped: u64,
}

/// One repair, as logged and as recorded on the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Repair {
    /// `JobId`: the job repaired.
    pub job_id: String,
    /// `Action`: what was done, as written to the job's StatusUpdateReason.
    pub action: String,
}

impl SweepSummary {
    fn repaired(&mut self, job_id: &str, action: String) {
        info!(job_id, %action, "sweeper repair");
        self.repairs.push(Repair {
            job_id: job_id.to_string(),
            action,
        });
    }
}

/// The sweeper function's handler: any event (the schedule's, a console test event) starts one
/// sweep; the answer is what it did.
pub async fn handle(ctx: &Context, event: serde_json::Value) -> Result<serde_json::Value> {
    if let Some(source) = event.get("source").and_then(|s| s.as_str()) {
        tracing::debug!(source, "sweep requested");
    }
    let summary = sweep(ctx).await?;
    serde_json::to_value(summary).map_err(|e| Error::encode("the sweep's summary", e))
}

/// One sweep over the dead-letter queues and every job that has not ended.
pub async fn sweep(ctx: &Context) -> Result<SweepSummary> {
    let now = Utc::now();
    let mut summary = SweepSummary::default();
    let store = ctx.store();
    if let Some(url) = dead_letter_queue(
        ctx,
        &ctx.settings.task_queue_url,
        &ctx.settings.task_dlq_url,
    )
    .await?
    {
        drain(ctx, &url, &mut summary, DeadLetter::Task).await?;
    }
    if let Some(url) = dead_letter_queue(
        ctx,
        &ctx.settings.plan_queue_url,
        &ctx.settings.plan_dlq_url,
    )
    .await?
    {
        drain(ctx, &url, &mut summary, DeadLetter::Plan).await?;
    }
    if let Some(url) = dead_letter_queue(
        ctx,
        &ctx.settings.report_queue_url,
        &ctx.settings.report_dlq_url,
    )
    .await?
    {
        drain(ctx, &url, &mut summary, DeadLetter::Report).await?;
    }
    let open: Vec<JobStatus> = crate::job::ALL_STATUSES
        .iter()
        .copied()
        .filter(|s| !s.is_terminal())
        .collect();
    for job in store.list_jobs(&open).await? {
        summary.jobs_checked += 1;
        // One job that cannot be repaired now must not keep the others waiting.
        if let Err(err) = check_job(ctx, &store, &job, now, &mut summary).await {
            warn!(job_id = %job.job_id, error = %err, "sweeper could not check the job; next run tries again");
        }
    }
    if !summary.stalled_jobs.is_empty() {
        emit_stalled_metric(summary.stalled_jobs.len());
    }
    Ok(summary)
}

/// The checks of one job that has not ended.
async fn check_job(
    ctx: &Context,
    store: &Store,
    job: &Job,
    now: DateTime<Utc>,
    summary: &mut SweepSummary,
) -> Result<()> {
    if job.status == JobStatus::Suspended {
        return expire_suspended(store, job, now, summary).await;
    }
    if job.progress.report_due() {
        let resend = ctx.settings.finalize_resend_after;
        // A long report is written in many invocations: one that saved lately is alive.
        let reporting = store
            .report_saved_at(&job.job_id)
            .await?
            .is_some_and(|at| (now - at).to_std().unwrap_or_default() < resend);
        if !reporting && send_finalize(ctx, &job.job_id, Some(resend)).await? {
            let action = format!(
                "sweeper: every batch had committed but the job had not ended; sent the finalize request again at {}",
                time_text(now)
            );
            store.set_status_update_reason(&job.job_id, &action).await?;
            summary.repaired(&job.job_id, action);
        }
        return Ok(());
    }
    let last = last_activity(job);
    let idle = (now - last).to_std().unwrap_or_default();
    // A Paused job waits for jobs of higher priority on purpose; its batches keep coming back
    // to look (`crate::priority`), so nothing of it is lost while it waits.
    if idle < ctx.settings.stall_after || job.status == JobStatus::Paused {
        return Ok(());
    }
    summary.stalled_jobs.push(job.job_id.clone());
    redrive_stalled(ctx, store, job, now, idle, summary).await
}

/// When the job last moved: its last commit or checkpoint, else when it started.
fn last_activity(job: &Job) -> DateTime<Utc> {
    [
        Some(job.creation_time),
        job.active_since,
        job.tracking.last_progress_at,
        job.tracking.finalize_at,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(job.creation_time)
}

async fn expire_suspended(
    store: &Store,
    job: &Job,
    now: DateTime<Utc>,
    summary: &mut SweepSummary,
) -> Result<()> {
    let since = job.suspended_date.unwrap_or(job.creation_time);
    if (now - since).to_std().unwrap_or_default() < SUSPENDED_LIMIT {
        return Ok(());
    }
    let failure = FailureReason {
        failure_code: SUSPENDED_EXPIRED_CODE.into(),
        failure_reason: format!(
            "the job waited for confirmation (Suspended) since {} and was not confirmed within 30 days",
            time_text(since)
        ),
    };
    if store
        .transition(
            &job.job_id,
            JobStatus::Suspended,
            JobStatus::Failed,
            Some(failure.failure_reason.clone()),
            Some(failure),
        )
        .await?
    {
        summary.repaired(
            &job.job_id,
            "sweeper: Suspended for more than 30 days; the job failed".into(),
        );
        store.expire_ended_job(&job.job_id).await;
    }
    Ok(())
}

/// A job with no progress for the stall time: wake what can be woken, say what is missing.
async fn redrive_stalled(
    ctx: &Context,
    store: &Store,
    job: &Job,
    now: DateTime<Utc>,
    idle: Duration,
    summary: &mut SweepSummary,
) -> Result<()> {
    let job_id = job.job_id.as_str();
    let minutes = idle.as_secs() / 60;
    let mut actions = Vec::new();
    match job.status {
        JobStatus::New | JobStatus::Preparing | JobStatus::Ready => {
            crate::queue::send_plan_request(ctx, job_id).await?;
            actions.push(format!(
                "sent the plan request again (the job was {})",
                job.status
            ));
        }
        _ if job.progress.batches_planned.is_none() => {
            let parts = store.list_plan_parts(job_id).await?;
            if parts.is_empty() {
                crate::queue::send_plan_request(ctx, job_id).await?;
                actions.push("planning had not started; sent the plan request again".into());
            }
            for part in parts.iter().filter(|p| !p.done) {
                if part_is_stalled(part, now, ctx.settings.stall_after) {
                    crate::queue::send_plan_request_for(ctx, job_id, Some(&part.part.id())).await?;
                    actions.push(format!(
                        "plan part {} had not moved since task {}; sent it a new plan message",
                        part.part.id(),
                        part.next_task
                    ));
                }
            }
            if actions.is_empty() {
                actions.push("planning is under way".into());
            }
        }
        _ => {
            let planned = job.progress.batches_planned.unwrap_or(0);
            let missing = planned.saturating_sub(job.progress.batches_committed);
            let queued = queue_depth(ctx, &ctx.settings.task_queue_url)
                .await
                .unwrap_or(0);
            actions.push(format!(
                "{missing} of {planned} batches not committed; the task queue holds about {queued} messages (of all jobs)"
            ));
        }
    }
    let action = format!(
        "sweeper: no progress for {minutes} min ({}): {}",
        job.status,
        actions.join("; ")
    );
    warn!(job_id, %action, "stalled job");
    store.set_status_update_reason(job_id, &action).await?;
    summary.repaired(job_id, action);
    Ok(())
}

fn part_is_stalled(part: &PlanCheckpoint, now: DateTime<Utc>, stall_after: Duration) -> bool {
    part.updated_at
        .is_none_or(|at| (now - at).to_std().unwrap_or_default() >= stall_after)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeadLetter {
    Task,
    Plan,
    Report,
}

/// Handles the messages of one dead-letter queue; each is deleted once it is dealt with. Those
/// that cannot be dealt with now are made visible again at the end, for the next run.
async fn drain(
    ctx: &Context,
    url: &str,
    summary: &mut SweepSummary,
    kind: DeadLetter,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::new();
    'receiving: while seen.len() < MAX_DEAD_LETTERS_PER_RUN {
        let messages = receive(ctx, url).await?;
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let id = message.message_id.clone().unwrap_or_default();
            if !seen.insert(id) {
                // Back already: everything left has been looked at.
                kept.push(message);
                break 'receiving;
            }
            let body = message.body.as_deref().unwrap_or_default();
            let outcome = match kind {
                DeadLetter::Task => dead_batch(ctx, body, summary).await,
                DeadLetter::Plan => dead_plan_request(ctx, body, summary).await,
                DeadLetter::Report => dead_finalize_request(ctx, body, summary).await,
            };
            match outcome {
                Ok(true) => delete(ctx, url, &message).await?,
                Ok(false) => kept.push(message),
                Err(err) => {
                    warn!(queue = url, error = %err, "dead-letter message not handled; the next run tries again");
                    kept.push(message);
                }
            }
        }
    }
    for message in kept {
        release(ctx, url, &message).await;
    }
    Ok(())
}

/// Makes a received message visible again at once (best effort: otherwise it returns after
/// its visibility timeout).
async fn release(ctx: &Context, url: &str, message: &Message) {
    let result = ctx
        .sqs
        .change_message_visibility()
        .queue_url(url)
        .receipt_handle(message.receipt_handle.as_deref().unwrap_or_default())
        .visibility_timeout(0)
        .send()
        .await;
    if let Err(e) = result {
        warn!(queue = url, error = %Error::aws("SQS", "ChangeMessageVisibility", e), "could not release a dead-letter message");
    }
}

/// A task batch whose every delivery failed: its uncommitted tasks fail with a reason (or, for
/// a job that stopped, count as not run), so that the job can end and the report lists them.
/// True when the message can go.
async fn dead_batch(ctx: &Context, body: &str, summary: &mut SweepSummary) -> Result<bool> {
    let batch = match TaskBatch::from_body(body) {
        Ok(batch) => batch,
        Err(err) => {
            error!(error = %err, "a task dead-letter message is not a task batch; left for an operator");
            return Ok(false);
        }
    };
    let store = ctx.store();
    let job = match store.get_job(&batch.job_id).await {
        Ok(job) if !job.status.is_terminal() => job,
        Ok(_) | Err(Error::JobNotFound(_)) => {
            summary.dead_letters_dropped += 1;
            return Ok(true);
        }
        Err(err) => return Err(err),
    };
    let record = store.get_batch(&job.job_id, &batch.batch_id).await?;
    if record.is_none() && !crate::executor::is_planned(&store, &job, &batch.batch_id).await? {
        error!(job_id = %job.job_id, batch_id = %batch.batch_id, "a dead-lettered batch this job's planner never sent; dropped without counting it");
        summary.dead_letters_dropped += 1;
        return Ok(true);
    }
    let done = record.map_or(0, |r| r.tasks_done);
    if done >= batch.end() {
        summary.dead_letters_dropped += 1;
        return Ok(true);
    }
    if done < batch.offset {
        // The tasks before this continuation are in another message; once that one is
        // handled, this one can be.
        return Ok(false);
    }
    let pending = batch.rest_from(done);
    let n = pending.tasks.len() as u64;
    let now = Utc::now();
    crate::operation::abort_recorded_uploads(ctx, &job, Some(&pending.batch_id)).await?;
    let (counts, part_key) = if job.status.stops_execution() {
        (
            BatchCounts {
                not_run: n,
                ..Default::default()
            },
            None,
        )
    } else {
        let outcomes = dead_letter_outcomes(&pending, now);
        let part = write_part(ctx, &job, &pending.batch_id, pending.offset, &outcomes).await?;
        (
            BatchCounts {
                failed: n,
                ..Default::default()
            },
            part,
        )
    };
    let segment = Segment {
        from: pending.offset,
        to: pending.end(),
        batch_tasks: pending.end(),
        counts,
        part_key,
    };
    if store
        .commit_segment(&job.job_id, &pending.batch_id, &segment)
        .await?
        == SegmentCommit::Lost
    {
        // A late delivery committed meanwhile; look again next time.
        return Ok(false);
    }
    let action = format!(
        "sweeper: batch {} went to the task dead-letter queue; its {n} uncommitted tasks were {} ({DEAD_LETTER_CODE})",
        pending.batch_id,
        if counts.not_run > 0 { "counted as not run" } else { "failed" }
    );
    store.set_status_update_reason(&job.job_id, &action).await?;
    summary.repaired(&job.job_id, action);
    check_failure_threshold(ctx, &job.job_id).await?;
    finalize_if_done(ctx, &job.job_id).await?;
    Ok(true)
}

/// The report rows of tasks failed by the sweeper.
pub fn dead_letter_outcomes(pending: &TaskBatch, now: DateTime<Utc>) -> Vec<TaskOutcome> {
    let message = format!(
        "batchops could not finish this task: every delivery of its batch {} failed and the batch went to the task dead-letter queue; the sweeper failed its uncommitted tasks at {}. The task may have run; the executor's logs for the batch give the cause",
        pending.batch_id,
        time_text(now)
    );
    TaskOutcome::all_failed(&pending.tasks, DEAD_LETTER_CODE, 500, &message)
}

/// A plan request whose every delivery failed: the job cannot be planned, so it fails; one
/// that was already running stops, and its planned batches finish as not run.
async fn dead_plan_request(ctx: &Context, body: &str, summary: &mut SweepSummary) -> Result<bool> {
    let Ok(request) = serde_json::from_str::<PlanRequest>(body) else {
        // An S3 event of an inventory arrival: no job to fail; an operator decides.
        error!("a plan dead-letter message is not a plan request (an inventory arrival?); left for an operator");
        return Ok(false);
    };
    let store = ctx.store();
    let job = match store.get_job(&request.job_id).await {
        Ok(job) if !job.status.is_terminal() => job,
        Ok(_) | Err(Error::JobNotFound(_)) => {
            summary.dead_letters_dropped += 1;
            return Ok(true);
        }
        Err(err) => return Err(err),
    };
    let part = request.part.as_deref().unwrap_or("all");
    let failure = FailureReason {
        failure_code: PLANNING_FAILED_CODE.into(),
        failure_reason: format!(
            "planning failed on every delivery of the plan request (part {part}) and the request went to the plan dead-letter queue; the planner's logs give the cause"
        ),
    };
    let to = match job.status {
        JobStatus::Active => JobStatus::Failing,
        JobStatus::Cancelling | JobStatus::Failing => job.status,
        _ => JobStatus::Failed,
    };
    if to != job.status
        && !store
            .transition(&job.job_id, job.status, to, None, Some(failure))
            .await?
    {
        return Ok(false);
    }
    if to == JobStatus::Failed {
        store.expire_ended_job(&job.job_id).await;
    } else {
        // The planner closes the job's parts where they stand and records its totals.
        crate::queue::send_plan_request(ctx, &job.job_id).await?;
    }
    summary.repaired(
        &job.job_id,
        format!("sweeper: the plan request (part {part}) went to the plan dead-letter queue; the job is {to}"),
    );
    Ok(true)
}

/// A finalize request whose every delivery failed: sent again (the reporter is idempotent).
async fn dead_finalize_request(
    ctx: &Context,
    body: &str,
    summary: &mut SweepSummary,
) -> Result<bool> {
    let Ok(request) = serde_json::from_str::<FinalizeRequest>(body) else {
        error!("a report dead-letter message is not a finalize request; left for an operator");
        return Ok(false);
    };
    match ctx.store().get_job(&request.job_id).await {
        Ok(job) if !job.status.is_terminal() => {
            crate::queue::send_finalize_request(ctx, &job.job_id).await?;
            summary.repaired(
                &job.job_id,
                "sweeper: the finalize request went to the report dead-letter queue; sent it again"
                    .into(),
            );
        }
        Ok(_) | Err(Error::JobNotFound(_)) => summary.dead_letters_dropped += 1,
        Err(err) => return Err(err),
    }
    Ok(true)
}

/// The dead-letter queue of `queue_url`: the configured one, else the target of its redrive
/// policy; `None` when it has none.
async fn dead_letter_queue(
    ctx: &Context,
    queue_url: &str,
    configured: &Option<String>,
) -> Result<Option<String>> {
    if let Some(url) = configured {
        return Ok(Some(url.clone()));
    }
    let attrs = ctx
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "GetQueueAttributes", e))?;
    let Some(policy) = attrs
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::RedrivePolicy))
    else {
        return Ok(None);
    };
    let policy: serde_json::Value =
        serde_json::from_str(&policy).map_err(|e| Error::Malformed {
            what: format!("the redrive policy of {queue_url}"),
            reason: format!("it is not JSON: {e}"),
        })?;
    let Some(name) = policy
        .get("deadLetterTargetArn")
        .and_then(|v| v.as_str())
        .and_then(|arn| arn.rsplit(':').next())
    else {
        return Ok(None);
    };
    let url = ctx
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "GetQueueUrl", e))?
        .queue_url;
    Ok(url)
}

async fn receive(ctx: &Context, url: &str) -> Result<Vec<Message>> {
    Ok(ctx
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        // Out of sight while this run works on them; back soon if it cannot.
        .visibility_timeout(60)
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "ReceiveMessage", e))?
        .messages
        .unwrap_or_default())
}

async fn delete(ctx: &Context, url: &str, message: &Message) -> Result<()> {
    ctx.sqs
        .delete_message()
        .queue_url(url)
        .receipt_handle(message.receipt_handle.as_deref().unwrap_or_default())
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "DeleteMessage", e))?;
    Ok(())
}

/// Messages waiting or in flight on a queue (approximate, as SQS counts them).
pub async fn queue_depth(ctx: &Context, url: &str) -> Result<u64> {
    let attrs = ctx
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "GetQueueAttributes", e))?;
    Ok(attrs
        .attributes
        .unwrap_or_default()
        .values()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum())
}

fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The number of stalled jobs as a CloudWatch metric (embedded metric format), for the
/// stack's alarm. Only in Lambda, where stdout goes to CloudWatch Logs.
fn emit_stalled_metric(count: usize) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        return;
    }
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "batchops",
                "Dimensions": [[]],
                "Metrics": [{"Name": "StalledJobs", "Unit": "Count"}]
            }]
        },
        "StalledJobs": count
    });
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Task;
    use crate::report::TaskStatus;

    #[test]
    fn dead_letter_rows_fail_every_pending_task_with_the_reason() {
        let batch = TaskBatch {
            job_id: "j".into(),
            batch_id: "b00000003".into(),
            offset: 2,
            deferral: None,
            tasks: vec![
                Task {
                    bucket: "b".into(),
                    key: "k1".into(),
                    version_id: None,
                    size: None,
                },
                Task {
                    bucket: "b".into(),
                    key: "k2".into(),
                    version_id: Some("v".into()),
                    size: None,
                },
            ],
        };
        let rows = dead_letter_outcomes(&batch, Utc::now());
        assert_eq!(rows.len(), 2);
        for row in &rows {
            assert_eq!(row.status, TaskStatus::Failed);
            assert_eq!(row.error_code.as_deref(), Some(DEAD_LETTER_CODE));
            assert!(
                row.result_message.contains("b00000003"),
                "{}",
                row.result_message
            );
            assert!(row.result_message.contains("dead-letter queue"));
        }
        assert_eq!(rows[1].task.version_id.as_deref(), Some("v"));
    }

    #[test]
    fn a_part_without_a_recent_write_is_stalled() {
        let now = Utc::now();
        let mut part = PlanCheckpoint::start(crate::plan::PlanPart::Whole);
        let stall = Duration::from_secs(600);
        assert!(part_is_stalled(&part, now, stall), "never written");
        part.updated_at = Some(now - chrono::Duration::seconds(60));
        assert!(!part_is_stalled(&part, now, stall));
        part.updated_at = Some(now - chrono::Duration::seconds(601));
        assert!(part_is_stalled(&part, now, stall));
    }
}
