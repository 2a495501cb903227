//! The executor: runs the job's operation on every task of a batch message, writes the batch's
//! result part and commits the batch exactly once.

use crate::error::{Error, Result};
use crate::job::{failure_threshold_exceeded, FailureReason, Job, JobStatus, ReportScope};
use crate::operation;
use crate::plan::TaskBatch;
use crate::report::{self, TaskOutcome, TaskStatus};
use crate::reporter::finalize_if_done;
use crate::store::{BatchCounts, Store};
use crate::Context;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tracing::{error, info, warn};

/// The executor Lambda's entry point: one SQS event of the task queue, answered with a partial
/// batch response so that only the failed messages come back.
pub async fn handle(ctx: &Context, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        if let Err(err) = process_message(ctx, body).await {
            error!(%message_id, error = %err, "batch not committed; it will be delivered again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// What happened to one batch message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchResult {
    /// The tasks ran and this delivery's commit won.
    Committed(BatchCounts),
    /// Another delivery of the same batch committed first; nothing was counted.
    Duplicate,
    /// The job had stopped (cancelled or failing): the tasks were accounted as not run.
    NotRun(u64),
}

pub async fn process_message(ctx: &Context, body: &str) -> Result<BatchResult> {
    let batch = TaskBatch::from_body(body)?;
    let store = Store::from_context(ctx);
    let job = store.get_job(&batch.job_id).await?;
    if job.status.stops_execution() {
        let n = batch.tasks.len() as u64;
        let counts = BatchCounts {
            not_run: n,
            ..BatchCounts::default()
        };
        store
            .commit_batch(&job.job_id, &batch.batch_id, counts, None)
            .await?;
        finalize_if_done(ctx, &job.job_id).await?;
        return Ok(BatchResult::NotRun(n));
    }
    if job.status != JobStatus::Active {
        // Not runnable yet (for example still being planned): let SQS deliver it again later.
        return Err(Error::Other(format!(
            "job {} is {}; batch {} waits",
            job.job_id, job.status, batch.batch_id
        )));
    }
    let outcomes = operation::run_tasks(ctx, &job, &batch.batch_id, &batch.tasks).await;
    if outcomes.len() != batch.tasks.len() {
        return Err(Error::Other(format!(
            "batch {}: {} outcomes for {} tasks",
            batch.batch_id,
            outcomes.len(),
            batch.tasks.len()
        )));
    }
    let counts = count(&outcomes);
    let part_key = write_part(ctx, &job, &batch, &outcomes).await?;
    let won = store
        .commit_batch(&job.job_id, &batch.batch_id, counts, part_key.as_deref())
        .await?;
    if !won {
        info!(job_id = %job.job_id, batch_id = %batch.batch_id, "duplicate delivery; counted before");
        if let Some(key) = &part_key {
            delete_part(ctx, key).await;
        }
        return Ok(BatchResult::Duplicate);
    }
    check_failure_threshold(ctx, &job.job_id).await?;
    finalize_if_done(ctx, &job.job_id).await?;
    Ok(BatchResult::Committed(counts))
}

pub fn count(outcomes: &[TaskOutcome]) -> BatchCounts {
    let failed = outcomes
        .iter()
        .filter(|o| o.status == TaskStatus::Failed)
        .count() as u64;
    BatchCounts {
        succeeded: outcomes.len() as u64 - failed,
        failed,
        not_run: 0,
    }
}

/// Keeps the rows the report will need (none when the report is disabled) in the system bucket.
async fn write_part(
    ctx: &Context,
    job: &Job,
    batch: &TaskBatch,
    outcomes: &[TaskOutcome],
) -> Result<Option<String>> {
    let report = &job.request.report;
    if !report.enabled {
        return Ok(None);
    }
    let rows: Vec<TaskOutcome> = match report.scope() {
        ReportScope::AllTasks => outcomes.to_vec(),
        ReportScope::FailedTasksOnly => outcomes
            .iter()
            .filter(|o| o.status == TaskStatus::Failed)
            .cloned()
            .collect(),
    };
    if rows.is_empty() {
        return Ok(None);
    }
    let attempt = uuid::Uuid::new_v4().simple().to_string();
    let key = report::part_key(&job.job_id, &batch.batch_id, &attempt);
    ctx.s3
        .put_object()
        .bucket(&ctx.settings.system_bucket)
        .key(&key)
        .body(report::encode_rows(&rows).into())
        .send()
        .await
        .map_err(|e| Error::aws("S3", "PutObject", e))?;
    Ok(Some(key))
}

async fn delete_part(ctx: &Context, key: &str) {
    // Best effort: the staging lifecycle rule removes what is left behind.
    if let Err(e) = ctx
        .s3
        .delete_object()
        .bucket(&ctx.settings.system_bucket)
        .key(key)
        .send()
        .await
    {
        warn!(key, error = %Error::aws("S3", "DeleteObject", e), "could not delete a losing result part");
    }
}

/// Applies S3 Batch Operations' failure threshold after a commit: the job goes to Failing, and
/// the batches still queued are not run.
async fn check_failure_threshold(ctx: &Context, job_id: &str) -> Result<()> {
    let store = Store::from_context(ctx);
    let job = store.get_job(job_id).await?;
    let p = &job.progress;
    if job.status == JobStatus::Active && failure_threshold_exceeded(p.succeeded, p.failed) {
        let done = p.succeeded + p.failed;
        let failure = FailureReason {
            failure_code: crate::job::THRESHOLD_FAILURE_CODE.into(),
            failure_reason: format!(
                "{} of the first {done} tasks failed, more than 50%; the job was stopped",
                p.failed
            ),
        };
        warn!(
            job_id,
            failed = p.failed,
            done,
            "failure threshold exceeded"
        );
        store
            .transition(
                job_id,
                JobStatus::Active,
                JobStatus::Failing,
                None,
                Some(failure),
            )
            .await?;
    }
    Ok(())
}
