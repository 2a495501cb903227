//! Operations: what a job does to each object (tagging, Lambda invocation, ...), with S3's error
//! codes mapped into the completion report.
//!
//! Every task ends as one [`TaskOutcome`], the way S3 Batch Operations reports it:
//! - S3 operations: success is `succeeded`, HTTP 200, `Successful`; a failure carries S3's error code
//!   (`NoSuchKey`, `AccessDenied`, ...), the HTTP status of S3's answer and S3's message.
//! - `LambdaInvoke`: one task per invocation, as S3 does; see [`crate::invocation`] for the contract.
//!
//! Throttling and server errors (S3 `SlowDown`/503, Lambda `TooManyRequestsException`/429/5xx,
//! timeouts, broken connections) and Lambda's `TemporaryFailure` are retried here with capped
//! exponential backoff and jitter, `lambda_max_attempts` attempts in all, before they become failures.
//! The Lambda client has SDK retries turned off, so these attempts are the only ones; the S3 client
//! keeps the SDK's own few quick retries underneath.

pub mod concurrency;
mod invoke;
mod retry;
#[macro_use]
mod copy;
mod checksum;
mod encryption;
mod multipart;
mod object;
#[cfg(test)]
mod tests;

pub use checksum::*;
pub use copy::*;
pub use encryption::*;
pub use invoke::*;
pub use multipart::*;
pub use object::*;
pub use retry::*;

use aws_sdk_s3::types::{Tag, Tagging};
use futures::stream::{self, StreamExt};
use std::time::Duration;

use crate::invocation::SchemaVersion;
use crate::job::{
    ComputeObjectChecksumOperation, DeleteObjectOperation, InitiateRestoreObjectOperation, Job,
    JobOperation, LambdaInvokeOperation, PutObjectTaggingOperation, SetObjectLegalHoldOperation,
    SetObjectRetentionOperation,
};
use crate::manifest::Task;
use crate::report::{TaskOutcome, TaskStatus};
use crate::Context;

/// The report message of a successful S3 operation, as S3 Batch Operations writes it.
pub const SUCCESS_MESSAGE: &str = "Successful";

/// Runs the job's operation on every task, at most `ctx.settings.executor_concurrency` at once
/// in the whole process (whatever the number of batches running), and returns one outcome per task in the order of `tasks`. Never fails as a whole: every error
/// becomes a failed outcome with S3's error code, HTTP status and message.
pub async fn run_tasks(
    ctx: &Context,
    job: &Job,
    batch_id: &str,
    tasks: &[Task],
) -> Vec<TaskOutcome> {
    run_tasks_until(ctx, job, batch_id, tasks, 0, None).await
}

/// Like [`run_tasks`], but starts no task once `stop_at` has passed (the first task always
/// starts, so every call makes progress) and returns the outcomes of the tasks it started: those
/// of a prefix of `tasks`, in order. Tasks already started run to their end. `first_index` is the
/// index of `tasks[0]` in its batch (LambdaInvoke task ids are `<batch id>-<index>`).
pub async fn run_tasks_until(
    ctx: &Context,
    job: &Job,
    batch_id: &str,
    tasks: &[Task],
    first_index: u64,
    stop_at: Option<std::time::Instant>,
) -> Vec<TaskOutcome> {
    run_tasks_timed(ctx, job, batch_id, tasks, first_index, stop_at)
        .await
        .into_iter()
        .map(|(outcome, _)| outcome)
        .collect()
}

/// [`run_tasks_until`] with each task's time, from its start to its outcome.
pub async fn run_tasks_timed(
    ctx: &Context,
    job: &Job,
    batch_id: &str,
    tasks: &[Task],
    first_index: u64,
    stop_at: Option<std::time::Instant>,
) -> Vec<(TaskOutcome, Duration)> {
    let prepared = prepare(&job.request.operation, ctx.settings.copy);
    let concurrency = ctx.settings.executor_concurrency.max(1);
    let slots = ctx.task_slots.get(concurrency);
    let left = tasks.len();
    let mut runs: Vec<(usize, TaskRun, Duration)> = stream::iter(tasks.iter().enumerate())
        // A slot first, in task order, then the job's rate limit, then the deadline: a task
        // that waited for a slot while other batches of this process ran does not start late.
        .then(|(i, task)| async move {
            let slot = slots.acquire().await.ok();
            let paced = crate::rate::pace(ctx, job, left - i, stop_at, i == 0).await;
            (i, task, slot, paced)
        })
        .take_while(|(i, _, _, paced)| {
            std::future::ready(*paced && (*i == 0 || !crate::deadline::is_past(stop_at)))
        })
        .map(|(i, task, slot, _)| {
            let index = first_index + i as u64;
            let prepared = &prepared;
            async move {
                let started = std::time::Instant::now();
                let at = TaskAt {
                    job_id: &job.job_id,
                    batch_id,
                    index,
                    stop_at,
                };
                let run = run_task(ctx, prepared, task, &at, slot).await;
                (i, run, started.elapsed())
            }
        })
        // Unordered: a slow task (S3's latency has a long tail) does not hold back the start of
        // the tasks after it, as `buffered` would once `concurrency` of them had finished behind
        // it. The outcomes are put back in task order below.
        .buffer_unordered(concurrency)
        .collect()
        .await;
    runs.sort_unstable_by_key(|(i, _, _)| *i);
    // Outcomes up to the first task that must go on in another invocation; the rest run again
    // with it (an unfinished task is rare: a multipart copy longer than the executor's time).
    runs.into_iter()
        .map(|(_, run, took)| (run, took))
        .map_while(|(run, took)| match run {
            TaskRun::Done(outcome) => Some((outcome, took)),
            TaskRun::Unfinished => None,
        })
        .collect()
}

/// One task, holding its slot in the process's concurrency while it runs.
async fn run_task(
    ctx: &Context,
    prepared: &Prepared<'_>,
    task: &Task,
    at: &TaskAt<'_>,
    slot: Option<tokio::sync::SemaphorePermit<'_>>,
) -> TaskRun {
    // Held while the task runs (the semaphore is never closed, so it was granted).
    let _slot = slot;
    if let Some(outcome) = key_too_long(prepared, task) {
        return TaskRun::Done(outcome);
    }
    let outcome = match prepared {
        Prepared::PutTagging(tagging) => put_tagging(ctx, tagging, task).await,
        Prepared::DeleteTagging => delete_tagging(ctx, task).await,
        Prepared::Copy(plan) => return copy_object(ctx, plan, task, at).await,
        Prepared::UpdateEncryption(plan) => return update_encryption(ctx, plan, task, at).await,
        Prepared::Acl(plan) => put_acl(ctx, plan, task).await,
        Prepared::LegalHold(op) => put_legal_hold(ctx, op, task).await,
        Prepared::Retention(op) => put_retention(ctx, op, task).await,
        Prepared::Restore(op) => restore(ctx, op, task).await,
        Prepared::Checksum(op) => compute_checksum(ctx, op, task).await,
        Prepared::Delete(op) => delete_object(ctx, op, task).await,
        Prepared::Invoke(op, schema) => {
            let task_id = format!("{}-{}", at.batch_id, at.index);
            invoke(ctx, op, *schema, at.job_id, &task_id, task).await
        }
        Prepared::Invalid(reason) => invalid_operation_outcome(task, reason),
    };
    TaskRun::Done(outcome)
}

/// One task's end in this invocation.
enum TaskRun {
    Done(TaskOutcome),
    /// Time ran out mid-task; its progress is saved and the next invocation goes on with it.
    Unfinished,
}

/// Where a task stands in its job, for work that outlives one invocation.
struct TaskAt<'a> {
    job_id: &'a str,
    batch_id: &'a str,
    index: u64,
    stop_at: Option<std::time::Instant>,
}

/// What every task of the batch shares, built once.
enum Prepared<'a> {
    PutTagging(Tagging),
    DeleteTagging,
    Copy(Box<CopyPlan>),
    UpdateEncryption(EncryptionPlan),
    Acl(AclPlan),
    LegalHold(&'a SetObjectLegalHoldOperation),
    Retention(&'a SetObjectRetentionOperation),
    Restore(&'a InitiateRestoreObjectOperation),
    Checksum(&'a ComputeObjectChecksumOperation),
    Delete(&'a DeleteObjectOperation),
    Invoke(&'a LambdaInvokeOperation, SchemaVersion),
    /// Should have been refused at job creation; every task fails with the reason.
    Invalid(String),
}

fn prepare<'a>(operation: &'a JobOperation, copy: CopySettings) -> Prepared<'a> {
    match operation {
        JobOperation::S3PutObjectTagging(op) => match tagging(op) {
            Ok(tagging) => Prepared::PutTagging(tagging),
            Err(reason) => Prepared::Invalid(reason),
        },
        JobOperation::S3DeleteObjectTagging(_) => Prepared::DeleteTagging,
        JobOperation::S3PutObjectCopy(op) => match CopyPlan::new(op, copy) {
            Ok(plan) => Prepared::Copy(Box::new(plan)),
            Err(reason) => Prepared::Invalid(reason),
        },
        JobOperation::S3UpdateObjectEncryption(op) => match EncryptionPlan::new(op, copy) {
            Ok(plan) => Prepared::UpdateEncryption(plan),
            Err(reason) => Prepared::Invalid(reason),
        },
        JobOperation::S3PutObjectAcl(op) => match AclPlan::new(op) {
            Ok(plan) => Prepared::Acl(plan),
            Err(reason) => Prepared::Invalid(reason),
        },
        JobOperation::S3PutObjectLegalHold(op) => Prepared::LegalHold(op),
        JobOperation::S3PutObjectRetention(op) => Prepared::Retention(op),
        JobOperation::S3InitiateRestoreObject(op) => Prepared::Restore(op),
        JobOperation::S3ComputeObjectChecksum(op) => Prepared::Checksum(op),
        JobOperation::S3DeleteObject(op) => Prepared::Delete(op),
        JobOperation::LambdaInvoke(op) => match SchemaVersion::parse(op.schema_version()) {
            Ok(schema) => Prepared::Invoke(op, schema),
            Err(e) => Prepared::Invalid(e.to_string()),
        },
    }
}

fn tagging(op: &PutObjectTaggingOperation) -> Result<Tagging, String> {
    let tags = op
        .tag_set
        .iter()
        .map(|t| Tag::builder().key(&t.key).value(&t.value).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid TagSet: {e}"))?;
    Tagging::builder()
        .set_tag_set(Some(tags))
        .build()
        .map_err(|e| format!("invalid TagSet: {e}"))
}

/// S3's limit on a key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

/// A key no S3 object can have fails its task with S3's own code, without a request (emulators
/// answer such a request with a misleading NoSuchKey). A user's Lambda function gets every key:
/// what it does with a manifest row is its own business.
fn key_too_long(prepared: &Prepared, task: &Task) -> Option<TaskOutcome> {
    if matches!(prepared, Prepared::Invoke(..)) || task.key.len() <= MAX_KEY_BYTES {
        return None;
    }
    Some(TaskOutcome {
        task: task.clone(),
        status: TaskStatus::Failed,
        error_code: Some("KeyTooLongError".into()),
        http_status: Some(400),
        result_message: format!(
            "the key is {} bytes long; S3 keys are at most {MAX_KEY_BYTES} bytes, so no such object exists",
            task.key.len()
        ),
    })
}

fn invalid_operation_outcome(task: &Task, reason: &str) -> TaskOutcome {
    TaskOutcome {
        task: task.clone(),
        status: TaskStatus::Failed,
        error_code: Some("InvalidRequest".into()),
        http_status: Some(400),
        result_message: reason.to_string(),
    }
}
