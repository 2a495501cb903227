//! The executor: runs the job's operation on the tasks of a batch message, writes their result
//! part and commits them exactly once.
//!
//! A batch is committed in segments. The batch's record says how many of its tasks are committed
//! (`tasks_done`); a delivery runs only the tasks after that point, so a redelivered or
//! duplicated message never runs a committed task again. An executor stops starting tasks when
//! its deadline is near (the Lambda deadline less `executor_margin`, or `executor_budget`),
//! commits the tasks it ran as one segment, and sends the rest of the batch on as a continuation
//! message (`TaskBatch::rest_from`). A segment commit is conditional on where the batch stood, so
//! of two deliveries that ran the same tasks only one counts them.

use crate::context::MetricsSink;
use crate::error::{Error, Result};
use crate::events;
use crate::job::{failure_threshold_exceeded, FailureReason, Job, JobStatus, ReportScope};
use crate::operation;
use crate::plan::TaskBatch;
use crate::priority::{RunningJob, Turn};
use crate::report::{self, TaskOutcome, TaskStatus};
use crate::reporter::finalize_if_done;
use crate::store::{BatchCounts, Deferral, Segment, SegmentCommit, Store};
use crate::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::time::{Duration, Instant, SystemTime};
use tracing::{error, info, warn};

/// The executor Lambda's entry point without a Lambda deadline (`local run`, tests): tasks run
/// until the batch is done, or for `executor_budget` when that is set.
pub async fn handle(ctx: &Context, event: SqsEvent) -> SqsBatchResponse {
    handle_until(ctx, event, None).await
}

/// The executor Lambda's entry point: one SQS event of the task queue, answered with a partial
/// batch response so that only the failed messages come back. `lambda_deadline` is the
/// invocation's deadline.
pub async fn handle_until(
    ctx: &Context,
    event: SqsEvent,
    lambda_deadline: Option<SystemTime>,
) -> SqsBatchResponse {
    let stop_at = crate::deadline::stop_time(
        Instant::now(),
        SystemTime::now(),
        lambda_deadline,
        ctx.settings.executor_margin,
        ctx.settings.executor_budget,
    );
    crate::queue::partial_batch(event, "batch not committed", |_, body| async move {
        // Boxed: a batch's future is deep, and the Lambda's main would exceed the compiler's
        // layout depth limit with it inline.
        Box::pin(process_message_until(ctx, &body, stop_at))
            .await
            .map(|_| ())
    })
    .await
}

/// What happened to one batch message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchResult {
    /// The tasks ran and this delivery's commit finished the batch; the counts of its segment.
    Committed(BatchCounts),
    /// Time ran out: this delivery committed `done` tasks of the batch in all and sent the
    /// other `remaining` on as a continuation message.
    Continued {
        /// Tasks of the batch committed in all, this delivery's included.
        done: u64,
        /// Tasks sent on in the continuation message.
        remaining: u64,
    },
    /// Another delivery of the same batch committed these tasks first; nothing was counted.
    Duplicate,
    /// The job had stopped (cancelled or failing): the tasks were accounted as not run.
    NotRun(u64),
    /// The job has ended (or is gone): a late copy, acknowledged without doing anything.
    Dropped,
    /// A batch the job's planner never sent (a forged or corrupted message): acknowledged
    /// without running or counting anything.
    Refused,
    /// Another delivery is carrying the batch on (it committed past this copy's start just
    /// now): this copy was replaced by a delayed one of the rest, which takes over only if that
    /// delivery stops making progress. `done` tasks of the batch were committed when it looked.
    Deferred {
        /// Tasks of the batch committed when this copy looked.
        done: u64,
    },
    /// A copy that would have been deferred, while another deferred copy of the batch is on its
    /// way (or a deferred copy that is not the one its batch names): acknowledged without
    /// sending anything, as that other copy covers the batch.
    Covered,
    /// A job of higher priority runs first: the batch was sent again, to look later.
    Waiting,
}

/// Runs one batch message (its body) with no Lambda deadline, stopping at `executor_budget`
/// when set; see [`process_message_until`]. An error means the message must come again.
pub async fn process_message(ctx: &Context, body: &str) -> Result<BatchResult> {
    let stop_at = crate::deadline::stop_time(
        Instant::now(),
        SystemTime::now(),
        None,
        ctx.settings.executor_margin,
        ctx.settings.executor_budget,
    );
    process_message_until(ctx, body, stop_at).await
}

/// Runs the uncommitted tasks of one batch message until `stop_at`, commits them as one segment
/// and hands the rest on. An error means the message must be delivered again.
pub async fn process_message_until(
    ctx: &Context,
    body: &str,
    stop_at: Option<Instant>,
) -> Result<BatchResult> {
    let batch = TaskBatch::from_body(body)?;
    let store = ctx.store();
    let job = match store.get_job(&batch.job_id).await {
        Ok(job) => job,
        Err(Error::JobNotFound(_)) => {
            warn!(job_id = %batch.job_id, batch_id = %batch.batch_id, "batch of a job that no longer exists; dropped");
            return Ok(BatchResult::Dropped);
        }
        Err(other) => return Err(other),
    };
    if job.status.is_terminal() {
        info!(job_id = %job.job_id, batch_id = %batch.batch_id, status = %job.status, "late copy of a batch of a job that has ended; dropped");
        return Ok(BatchResult::Dropped);
    }
    let record = store.get_batch(&job.job_id, &batch.batch_id).await?;
    let done = record.as_ref().map_or(0, |r| r.tasks_done);
    if record.as_ref().is_some_and(|r| r.is_done()) || done >= batch.end() {
        info!(job_id = %job.job_id, batch_id = %batch.batch_id, "batch committed before; nothing to run");
        // The delivery that committed may have died before it asked for finalization.
        finalize_if_done(ctx, &job.job_id).await?;
        return Ok(BatchResult::Duplicate);
    }
    if record.is_none() && !is_planned(&store, &job, &batch.batch_id).await? {
        error!(job_id = %job.job_id, batch_id = %batch.batch_id, tasks = batch.tasks.len(), "a batch this job's planner never sent; refused without running it");
        return Ok(BatchResult::Refused);
    }
    if is_stood_down(&batch, record.as_ref()) {
        info!(job_id = %job.job_id, batch_id = %batch.batch_id, "a deferred copy that its batch no longer names; the named one carries on");
        return Ok(BatchResult::Covered);
    }
    if done < batch.offset {
        return Err(Error::NotReady(format!(
            "batch {} of job {}: this message starts at task {} but only {done} tasks are committed; waiting for the message that holds them",
            batch.batch_id, job.job_id, batch.offset
        )));
    }
    // This delivery keeps its deferral id (if it is a deferred copy) for `defer`; what it sends
    // on as a continuation does not.
    let pending = TaskBatch {
        deferral: batch.deferral.clone(),
        ..batch.rest_from(done)
    };
    if done > batch.offset && record.as_ref().is_some_and(|r| is_carried_on(ctx, r)) {
        // A stale copy (a redelivery, a duplicate): the delivery that committed past it is
        // still going. Running the rest too would only race it.
        return defer(ctx, &store, &batch, record.as_ref(), done).await;
    }
    if job.status.stops_execution() {
        return not_run(ctx, &store, &job, &pending).await;
    }
    if !matches!(
        job.status,
        JobStatus::Active | JobStatus::Pausing | JobStatus::Paused
    ) {
        // Not runnable yet (for example still being planned): let SQS deliver it again later.
        return Err(Error::NotReady(format!(
            "job {} is {}; batch {} waits",
            job.job_id, job.status, batch.batch_id
        )));
    }
    if let Turn::Wait(higher) = crate::priority::take_turn(ctx, &store, &job).await? {
        return wait_for_turn(ctx, body, &batch, &higher).await;
    }
    let job = Job {
        status: JobStatus::Active,
        ..job
    };
    run_segment(ctx, &store, &job, &pending, stop_at).await
}

/// Sends the batch message again to be looked at after `priority_wait`: a job of higher priority
/// runs first. (Sent again rather than left to reappear, so that waiting never counts towards
/// the queue's dead-letter limit.)
async fn wait_for_turn(
    ctx: &Context,
    body: &str,
    batch: &TaskBatch,
    higher: &RunningJob,
) -> Result<BatchResult> {
    let wait = ctx.settings.priority_wait;
    info!(job_id = %batch.job_id, batch_id = %batch.batch_id, waits_for = %higher.job_id, wait_seconds = wait.as_secs(), "batch waits for a job of higher priority");
    crate::queue::send_task_body_later(ctx, body, wait).await?;
    Ok(BatchResult::Waiting)
}

/// Whether the job's planner sent (or reserved, ahead of sending) this batch id: its part's
/// checkpoint covers the sequence number. Read once per batch, on its first delivery.
pub(crate) async fn is_planned(store: &Store, job: &Job, batch_id: &str) -> Result<bool> {
    let Some((part, seq)) = crate::plan::PlanPart::of_batch_id(batch_id) else {
        return Ok(false);
    };
    Ok(store
        .get_plan_part(&job.job_id, part)
        .await?
        .is_some_and(|checkpoint| seq < checkpoint.reserved.max(checkpoint.batches)))
}

/// Commits the remaining tasks of a stopped job's batch as not run.
async fn not_run(
    ctx: &Context,
    store: &Store,
    job: &Job,
    pending: &TaskBatch,
) -> Result<BatchResult> {
    let n = pending.tasks.len() as u64;
    let segment = Segment {
        from: pending.offset,
        to: pending.end(),
        batch_tasks: pending.end(),
        counts: BatchCounts {
            not_run: n,
            ..BatchCounts::default()
        },
        part_key: None,
    };
    if store
        .commit_segment(&job.job_id, &pending.batch_id, &segment)
        .await?
        == SegmentCommit::Lost
    {
        return lost_race(ctx, store, &job.job_id, pending).await;
    }
    finalize_if_done(ctx, &job.job_id).await?;
    Ok(BatchResult::NotRun(n))
}

/// Runs tasks of `pending` until `stop_at`, commits them, and sends the rest on.
async fn run_segment(
    ctx: &Context,
    store: &Store,
    job: &Job,
    pending: &TaskBatch,
    stop_at: Option<Instant>,
) -> Result<BatchResult> {
    let batch_id = &pending.batch_id;
    let started = Instant::now();
    let throttles_before = ctx.throttles.load(std::sync::atomic::Ordering::Relaxed);
    let (outcomes, latencies): (Vec<TaskOutcome>, Vec<Duration>) = match ctx.for_job(job).await {
        Ok(data) => operation::run_tasks_timed(
            &data,
            job,
            batch_id,
            &pending.tasks,
            pending.offset,
            stop_at,
        )
        .await
        .into_iter()
        .unzip(),
        // The role was assumed when the job was prepared; if it cannot be now (deleted, its
        // trust changed), each task fails as S3 would fail a request the role may not make.
        Err(err @ Error::RoleNotAssumed { .. }) => {
            warn!(job_id = %job.job_id, %batch_id, error = %err, "the job's role cannot be assumed; its tasks fail");
            let failed = TaskOutcome::all_failed(
                &pending.tasks,
                crate::role::ACCESS_DENIED_CODE,
                403,
                &err.to_string(),
            );
            (failed, Vec::new())
        }
        Err(other) => return Err(other),
    };
    if outcomes.len() > pending.tasks.len() {
        return Err(Error::Malformed {
            what: format!("batch {batch_id}'s results"),
            reason: format!(
                "{} outcomes for {} tasks",
                outcomes.len(),
                pending.tasks.len()
            ),
        });
    }
    if outcomes.is_empty() {
        // The first task (a long multipart copy) saved its progress: the next invocation goes on.
        info!(job_id = %job.job_id, %batch_id, task = pending.offset, "a task goes on in the next invocation");
        crate::queue::send_task_batch(ctx, &pending.rest_from(pending.offset)).await?;
        return Ok(BatchResult::Continued {
            done: pending.offset,
            remaining: pending.tasks.len() as u64,
        });
    }
    let to = pending.offset + outcomes.len() as u64;
    let counts = count(&outcomes);
    let part_key = write_part(ctx, job, batch_id, pending.offset, &outcomes).await?;
    let segment = Segment {
        from: pending.offset,
        to,
        batch_tasks: pending.end(),
        counts,
        part_key: part_key.clone(),
    };
    let batch_done = match store
        .commit_segment(&job.job_id, batch_id, &segment)
        .await?
    {
        SegmentCommit::Committed { batch_done } => batch_done,
        SegmentCommit::Lost => {
            info!(job_id = %job.job_id, %batch_id, from = pending.offset, "another delivery committed these tasks first; counted before");
            if let Some(key) = &part_key {
                delete_part(ctx, key).await;
            }
            return lost_race(ctx, store, &job.job_id, pending).await;
        }
    };
    put_metrics(
        ctx,
        events::BatchMetrics {
            job_id: job.job_id.clone(),
            operation: job.request.operation.name().to_string(),
            succeeded: counts.succeeded,
            failed: counts.failed,
            task_latencies: latencies,
            throttles: ctx
                .throttles
                .load(std::sync::atomic::Ordering::Relaxed)
                .saturating_sub(throttles_before),
            batch_duration: started.elapsed(),
        },
    );
    check_failure_threshold(ctx, &job.job_id).await?;
    if batch_done {
        finalize_if_done(ctx, &job.job_id).await?;
        return Ok(BatchResult::Committed(counts));
    }
    // The tasks so far are committed: if this send fails, the message comes again and runs
    // only what is left.
    let rest = pending.rest_from(to);
    info!(job_id = %job.job_id, %batch_id, done = to, remaining = rest.tasks.len(), "executor time is up; handing the rest of the batch on");
    crate::queue::send_task_batch(ctx, &rest).await?;
    Ok(BatchResult::Continued {
        done: to,
        remaining: rest.tasks.len() as u64,
    })
}

/// The metrics of a committed segment, where the context sends them (CloudWatch, through EMF
/// lines on stdout, in Lambda).
fn put_metrics(ctx: &Context, metrics: events::BatchMetrics) {
    match &ctx.metrics {
        MetricsSink::Off => {}
        MetricsSink::Stdout => events::put_metrics(&metrics),
        MetricsSink::Memory(kept) => kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(events::emf(&metrics, chrono::Utc::now())),
    }
}

/// Another delivery of the batch committed first. When the batch is done, this copy is a
/// duplicate. Otherwise that delivery goes on with the rest, or may have stopped right after
/// its commit, before handing the rest on: this copy is deferred (see [`defer`]).
///
/// Not an error: an error would bring this same message back, and every race it lost would
/// count towards the task queue's maxReceiveCount, until a batch that was progressing fine went
/// to the dead-letter queue (the chaos run at 100,000 tasks saw it: 19,255 tasks failed
/// BatchDeadLettered).
async fn lost_race(
    ctx: &Context,
    store: &Store,
    job_id: &str,
    pending: &TaskBatch,
) -> Result<BatchResult> {
    let record = store.get_batch(job_id, &pending.batch_id).await?;
    match record {
        Some(record) if record.is_done() => {
            finalize_if_done(ctx, job_id).await?;
            Ok(BatchResult::Duplicate)
        }
        record => {
            let done = record.as_ref().map_or(0, |r| r.tasks_done);
            defer(ctx, store, pending, record.as_ref(), done).await
        }
    }
}

/// Whether this message is a deferred copy that its batch no longer names: the batch names one
/// copy at a time (see [`defer`]), and the named one, or what it became, carries the batch.
fn is_stood_down(batch: &TaskBatch, record: Option<&crate::store::BatchRecord>) -> bool {
    match (&batch.deferral, record.and_then(|r| r.deferral.as_ref())) {
        (Some(own), Some(named)) => *own != named.id,
        _ => false,
    }
}

/// Whether the batch was committed to recently enough that the delivery carrying it is taken
/// to be alive: within the time after which the sweeper calls a job stalled.
fn is_carried_on(ctx: &Context, record: &crate::store::BatchRecord) -> bool {
    let lease =
        chrono::Duration::from_std(ctx.settings.stall_after).unwrap_or(chrono::TimeDelta::MAX);
    record
        .updated_at
        .is_some_and(|at| chrono::Utc::now() - at < lease)
}

/// Replaces this delivery with a copy of the batch from task `done` on that becomes visible
/// after the lease (at most SQS's 15 minutes). If the batch has moved on by then, the copy is
/// deferred again or dropped once the batch is done; if it has not, the copy takes over. A new
/// message starts with no receives, so waiting never leads to the dead-letter queue.
///
/// One deferred copy per batch: the batch record names the last one sent (after it was sent), and
/// a stale delivery that finds a named copy still on its way stands down instead of sending
/// another. Without this, every duplicate delivery of a long batch left a copy of its own,
/// re-checking until the batch ended (the chaos run at 100,000 tasks saw hundreds, all taking
/// over at once whenever a commit was late).
async fn defer(
    ctx: &Context,
    store: &Store,
    batch: &TaskBatch,
    record: Option<&crate::store::BatchRecord>,
    done: u64,
) -> Result<BatchResult> {
    let now = chrono::Utc::now();
    let named = record.and_then(|r| r.deferral.as_ref());
    if batch.deferral.is_none() && named.is_some_and(|d| d.due > now) {
        info!(job_id = %batch.job_id, batch_id = %batch.batch_id, "another delivery carries this batch on and a deferred copy is on its way; standing down");
        return Ok(BatchResult::Covered);
    }
    let delay = ctx
        .settings
        .stall_after
        .min(std::time::Duration::from_secs(900));
    let deferral = Deferral {
        id: uuid::Uuid::new_v4().simple().to_string(),
        due: now + chrono::Duration::from_std(delay).unwrap_or(chrono::TimeDelta::MAX),
    };
    let copy = TaskBatch {
        deferral: Some(deferral.id.clone()),
        ..batch.rest_from(done)
    };
    info!(job_id = %batch.job_id, batch_id = %batch.batch_id, from = copy.offset, delay_seconds = delay.as_secs(), "another delivery carries this batch on; checking again later");
    crate::queue::send_task_batch_later(ctx, &copy, delay).await?;
    let claimed = store
        .claim_deferral(
            &batch.job_id,
            &batch.batch_id,
            &deferral,
            batch.deferral.as_deref(),
            now,
        )
        .await;
    match claimed {
        Ok(true) => {}
        Ok(false) => {
            info!(job_id = %batch.job_id, batch_id = %batch.batch_id, "another deferred copy was named first; this one will stand down")
        }
        // The copy is on its way, unnamed: it carries on when it arrives, as copies did before
        // they were named. Failing here would only bring this delivery back to send another.
        Err(err) => {
            warn!(job_id = %batch.job_id, batch_id = %batch.batch_id, error = %err, "could not name the deferred copy; it goes unnamed")
        }
    }
    Ok(BatchResult::Deferred { done: copy.offset })
}

/// Tallies outcomes as succeeded or failed (none counted as not run).
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

/// The rows of `outcomes` kept in the batch's result part: every row when the report lists all
/// tasks, else the failed ones, which `create-job --rerun-failed-of` reads even when the report
/// is disabled or lists failed tasks only.
pub fn report_rows(job: &Job, outcomes: &[TaskOutcome]) -> Vec<TaskOutcome> {
    let report = &job.request.report;
    if report.enabled && report.scope() == ReportScope::AllTasks {
        return outcomes.to_vec();
    }
    outcomes
        .iter()
        .filter(|o| o.status == TaskStatus::Failed)
        .cloned()
        .collect()
}

/// Keeps the rows of [`report_rows`] in the system bucket, under a key of its own for this
/// attempt; `None` when there are no such rows.
pub async fn write_part(
    ctx: &Context,
    job: &Job,
    batch_id: &str,
    from: u64,
    outcomes: &[TaskOutcome],
) -> Result<Option<String>> {
    let rows = report_rows(job, outcomes);
    if rows.is_empty() {
        return Ok(None);
    }
    let attempt = format!("{from:06}-{}", uuid::Uuid::new_v4().simple());
    let key = report::part_key(&job.job_id, batch_id, &attempt);
    ctx.write_system_object(&key, report::encode_rows(&rows))
        .await?;
    Ok(Some(key))
}

/// Deletes a result part from the system bucket, best effort: a failure is only logged (the
/// staging lifecycle rule removes what is left). Used for a part whose commit lost the race.
pub async fn delete_part(ctx: &Context, key: &str) {
    // Best effort: the staging lifecycle rule removes what is left behind.
    if let Err(e) = ctx
        .system_s3
        .delete_object()
        .bucket(&ctx.settings.system_bucket)
        .set_expected_bucket_owner(ctx.settings.system_bucket_owner.clone())
        .key(key)
        .send()
        .await
    {
        warn!(key, error = %Error::aws("S3", "DeleteObject", e), "could not delete a losing result part");
    }
}

/// Applies S3 Batch Operations' failure threshold after a commit: the job goes to Failing, and
/// the batches still queued are not run.
pub async fn check_failure_threshold(ctx: &Context, job_id: &str) -> Result<()> {
    let store = ctx.store();
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
