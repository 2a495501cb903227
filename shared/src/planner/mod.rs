//! The planner: turns a job's manifest into task-batch messages on the task queue.
//!
//! It is triggered by a plan request (a job made through the control plane, or a confirmed job) or
//! by an S3 event for a newly delivered inventory `manifest.json` (an automatic job per job template).
//! A job that needs confirmation is prepared first: its manifest is read through and counted, and
//! the job waits in Suspended; once confirmed, the planner reads it again and queues the batches.
//!
//! What a job is planned from is fixed the first time (a [`JobSource`]: the manifest with its
//! ETag and version, or a generator's listing written once), and every later read names it.
//! Planning never runs past its deadline: it checkpoints per plan part (with a CSV resume point),
//! reserves batch numbers before it sends them, and continues itself through the plan queue.

use crate::control;
use crate::error::{Error, Result};
use crate::generator::Listing;
use crate::job::{FailureReason, Job, JobSource, JobStatus, INVENTORY_CSV_FORMAT};
use crate::manifest::{self, ReadFrom, ResumePoints, Task};
use crate::plan::{planning_totals, BatchLimits, BatchPacker, PlanCheckpoint, PlanPart, TaskBatch};
use crate::queue::{send_plan_message, send_plan_request_for, PlanRequest};
use crate::reporter::finalize_if_done;
use crate::Context;
use aws_lambda_events::event::sqs::SqsMessage;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime};
use tracing::{info, warn};

mod event;
mod send;
pub use event::{parse_event, PlannerWork};
pub use send::RESERVE_WINDOW;
use send::*;

/// Messages sent to the task queue at once while planning.
const SEND_CONCURRENCY: usize = 8;
/// How often (in batches) planning looks at the job's status, to stop early when it is cancelled.
const STATUS_CHECK_EVERY: u64 = 50;

/// `FailureCode` of a job that fails because its manifest cannot be read or is not valid.
pub const MANIFEST_FAILURE_CODE: &str = "ManifestReadFailed";

/// Optional planning budget per invocation in milliseconds (`local run`, tests, or to stop well
/// before Lambda's own deadline). When it runs out the planner saves a checkpoint at the next
/// batch boundary and continues itself through the plan queue.
pub const ENV_PLANNER_BUDGET_MS: &str = "BATCHOPS_PLANNER_BUDGET_MS";
/// Time kept free before the Lambda deadline: sends in flight finish, the checkpoint is saved
/// and the continue message is sent.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// The planner Lambda's entry point without a Lambda deadline (`local run`, tests): planning
/// runs until done, or for the settings' `planner_budget` (read from [`ENV_PLANNER_BUDGET_MS`]).
pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    handle_until(ctx, event, None).await
}

/// The planner Lambda's entry point: an SQS event of the plan queue, or a direct S3 event.
/// `lambda_deadline` is the invocation's deadline (the Lambda context's `deadline`): planning
/// checkpoints and continues itself [`DEADLINE_MARGIN`] before it.
pub async fn handle_until(
    ctx: &Context,
    event: Value,
    lambda_deadline: Option<SystemTime>,
) -> Result<Value> {
    let stop_at = stop_time(
        Instant::now(),
        SystemTime::now(),
        lambda_deadline,
        ctx.settings.planner_budget,
    );
    for work in parse_event(&event)? {
        match work {
            // Boxed: planning's futures are large, and debug builds move them on the stack.
            PlannerWork::Plan(job_id) => Box::pin(plan_job_until(ctx, &job_id, stop_at)).await?,
            PlannerWork::PlanPart {
                job_id,
                part,
                from_task,
            } => Box::pin(plan_part_request(ctx, &job_id, part, from_task, stop_at)).await?,
            PlannerWork::ManifestArrived { bucket, key, etag } => {
                start_template_jobs(ctx, &bucket, &key, etag.as_deref()).await?
            }
        }
    }
    Ok(Value::Null)
}

/// When planning must stop: the earlier of the Lambda deadline less [`DEADLINE_MARGIN`] and the
/// end of the budget; `None` for no limit.
pub fn stop_time(
    now: Instant,
    wall_now: SystemTime,
    lambda_deadline: Option<SystemTime>,
    budget: Option<Duration>,
) -> Option<Instant> {
    crate::deadline::stop_time(now, wall_now, lambda_deadline, DEADLINE_MARGIN, budget)
}

/// Starts one job for every template whose prefix covers a newly delivered inventory manifest.
async fn start_template_jobs(
    ctx: &Context,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<()> {
    if !key.ends_with("manifest.json") {
        return Ok(());
    }
    let templates = ctx.store().list_templates().await?;
    let matching = control::matching_templates(&templates, bucket, key);
    if matching.is_empty() {
        info!(
            bucket,
            key, "inventory manifest arrived; no job template covers it"
        );
    }
    for template in matching {
        let created = control::create_job_from_inventory(ctx, template, bucket, key, etag).await?;
        info!(template = %template.name, job_id = %created.job_id, "started job for inventory arrival");
    }
    Ok(())
}

/// Prepares or plans one job, depending on its status, within the settings' `planner_budget`.
pub async fn plan_job(ctx: &Context, job_id: &str) -> Result<()> {
    let stop_at = stop_time(
        Instant::now(),
        SystemTime::now(),
        None,
        ctx.settings.planner_budget,
    );
    plan_job_until(ctx, job_id, stop_at).await
}

async fn plan_job_until(ctx: &Context, job_id: &str, stop_at: Option<Instant>) -> Result<()> {
    let store = ctx.store();
    let mut job = store.get_job(job_id).await?;
    if job.status == JobStatus::New {
        store
            .transition(job_id, JobStatus::New, JobStatus::Preparing, None, None)
            .await?;
        job.status = JobStatus::Preparing;
    }
    let Some(data) = job_context(ctx, &job).await? else {
        return Ok(());
    };
    let ctx = &data;
    match job.status {
        JobStatus::Preparing if job.confirmation_required() => {
            prepare_for_confirmation(ctx, &job, stop_at).await
        }
        JobStatus::Preparing | JobStatus::Ready => {
            if store
                .transition(job_id, job.status, JobStatus::Active, None, None)
                .await?
            {
                // Batches of lower priority that this process starts next see this job now.
                ctx.running_jobs.forget().await;
                Box::pin(start_planning(ctx, &job, stop_at)).await
            } else {
                Ok(())
            }
        }
        // A plan request delivered again: every part resumes from its checkpoint, and batch ids
        // are deterministic, so nothing is planned or counted twice.
        JobStatus::Active if job.progress.batches_planned.is_none() => {
            Box::pin(start_planning(ctx, &job, stop_at)).await
        }
        JobStatus::Cancelling | JobStatus::Failing if job.progress.batches_planned.is_none() => {
            let parts = store.list_plan_parts(job_id).await?;
            if parts.is_empty() {
                store
                    .finish_planning(job_id, job.progress.total_tasks.unwrap_or(0), 0)
                    .await?;
                return finalize_if_done(ctx, job_id).await;
            }
            for part in parts.iter().filter(|p| !p.done) {
                stop_part(ctx, &job, part).await?;
            }
            complete_if_all_done(ctx, job_id).await
        }
        // Planning has closed: the final report may be due already (a reporter that found the
        // job stopped during its canary gave its claim back and asked for this).
        JobStatus::Cancelling | JobStatus::Failing => finalize_if_done(ctx, job_id).await,
        status => {
            info!(job_id, %status, "plan request ignored in this status");
            Ok(())
        }
    }
}

/// A plan request for one part: continue it while the job is Active, close it when the job stops.
async fn plan_part_request(
    ctx: &Context,
    job_id: &str,
    part: PlanPart,
    from_task: Option<u64>,
    stop_at: Option<Instant>,
) -> Result<()> {
    let store = ctx.store();
    let job = store.get_job(job_id).await?;
    let Some(data) = job_context(ctx, &job).await? else {
        return Ok(());
    };
    let ctx = &data;
    match job.status {
        JobStatus::Active => Box::pin(plan_part(ctx, &job, part, from_task, stop_at)).await,
        JobStatus::Cancelling | JobStatus::Failing => {
            if let Some(checkpoint) = store.get_plan_part(job_id, part).await? {
                if !checkpoint.done {
                    stop_part(ctx, &job, &checkpoint).await?;
                }
            }
            complete_if_all_done(ctx, job_id).await
        }
        status => {
            info!(job_id, part = %part.id(), %status, "plan part request ignored in this status");
            Ok(())
        }
    }
}

/// The context planning acts in: the job's role on users' buckets (see [`crate::role`]). A role
/// that cannot be assumed fails the job: at once while it is being prepared, through Failing
/// once it is Active (batches already sent are counted). `None` then. A stopping job closes its
/// parts with the orchestrator's context, which reads nothing of users' buckets when deployed
/// least-privilege: its reserved batches cannot be sent again, and the part closes at its
/// checkpoint.
async fn job_context(ctx: &Context, job: &Job) -> Result<Option<Context>> {
    if job.status.is_terminal() {
        // A late request, ignored below: not worth an AssumeRole.
        return Ok(Some(ctx.clone()));
    }
    let err = match ctx.for_job(job).await {
        Ok(data) => return Ok(Some(data)),
        Err(err @ Error::RoleNotAssumed { .. }) => err,
        Err(other) => return Err(other),
    };
    match job.status {
        JobStatus::New | JobStatus::Preparing | JobStatus::Ready => {
            fail_preparing(ctx, job, job.status, err).await?;
            Ok(None)
        }
        JobStatus::Active => {
            warn!(job_id = %job.job_id, error = %err, "the job's role can no longer be assumed; the job fails");
            set_failing(ctx, job, role_failure(err)).await?;
            crate::queue::send_plan_request(ctx, &job.job_id).await?;
            Ok(None)
        }
        _ => Ok(Some(ctx.clone())),
    }
}

fn role_failure(err: Error) -> FailureReason {
    FailureReason {
        failure_code: crate::role::ACCESS_DENIED_CODE.into(),
        failure_reason: err.to_string(),
    }
}

/// The client that reads the job's manifest: the job's role, or the orchestrator's for the
/// manifest a generator wrote into the system bucket.
fn manifest_s3<'a>(
    ctx: &'a Context,
    job_id: &str,
    manifest: &crate::job::JobManifest,
) -> &'a aws_sdk_s3::Client {
    match crate::job::parse_object_arn(&manifest.location.object_arn) {
        Ok((bucket, key)) => ctx.s3_for(job_id, &bucket, &key),
        Err(_) => &ctx.s3,
    }
}

/// What the job is planned from, pinned (see [`JobSource`]): recorded the first time and read
/// back after; for a manifest generator, its listing is written first. `None` while the listing
/// continues in another invocation (a plan request is on the queue for it).
async fn job_source(
    ctx: &Context,
    job: &Job,
    stop_at: Option<Instant>,
) -> Result<Option<JobSource>> {
    if let Some(source) = &job.tracking.source {
        return Ok(Some(source.clone()));
    }
    // Boxed: the S3 calls are large futures, and this one sits inside every planning run.
    Box::pin(crate::reporter::check_destination(ctx, job)).await?;
    let source = match &job.request.manifest_generator {
        Some(generator) => {
            match crate::generator::write_snapshot(ctx, job, generator, stop_at).await? {
                Listing::Written(source) => source,
                Listing::Continued => {
                    crate::queue::send_plan_request(ctx, &job.job_id).await?;
                    return Ok(None);
                }
            }
        }
        None => {
            let manifest = job.manifest()?.clone();
            let pin =
                manifest::pin_manifest(manifest_s3(ctx, &job.job_id, &manifest), &manifest).await?;
            JobSource {
                manifest,
                pin,
                tasks: None,
            }
        }
    };
    let stored = ctx.store().set_job_source(&job.job_id, &source).await?;
    Ok(Some(stored))
}

/// The source recorded by [`job_source`] when planning began.
fn recorded_source(job: &Job) -> Result<&JobSource> {
    job.tracking
        .source
        .as_ref()
        .ok_or_else(|| Error::Malformed {
            what: format!("job {}'s record", job.job_id),
            reason: "it has plan parts but no recorded manifest; planning did not begin properly"
                .into(),
        })
}

/// The parts a job is planned in: one data file each for an inventory (planned in parallel),
/// otherwise the whole task list.
async fn plan_parts(ctx: &Context, job_id: &str, source: &JobSource) -> Result<Vec<PlanPart>> {
    if source.manifest.spec.format != INVENTORY_CSV_FORMAT {
        return Ok(vec![PlanPart::Whole]);
    }
    let s3 = manifest_s3(ctx, job_id, &source.manifest);
    let inventory =
        manifest::fetch_inventory_manifest_pinned(s3, &source.manifest, &source.pin).await?;
    Ok((0..inventory.files.len())
        .map(PlanPart::InventoryFile)
        .collect())
}

/// Creates the job's plan parts (unless they exist) and plans them: a single part here, several
/// through one plan message each, so that Lambda runs them in parallel.
async fn start_planning(ctx: &Context, job: &Job, stop_at: Option<Instant>) -> Result<()> {
    let store = ctx.store();
    let source = match job_source(ctx, job, stop_at).await {
        Ok(Some(source)) => source,
        Ok(None) => return Ok(()),
        Err(err) => return fail_unplanned(ctx, job, setup_failure(err)?).await,
    };
    let parts = match plan_parts(ctx, &job.job_id, &source).await {
        Ok(parts) => parts,
        Err(err) => return fail_unplanned(ctx, job, setup_failure(err)?).await,
    };
    store.put_plan_parts(&job.job_id, &parts).await?;
    let mut job = job.clone();
    job.tracking.source = Some(source);
    if job.canary_limit().is_some() {
        return Box::pin(plan_canary(ctx, &job, stop_at)).await;
    }
    if let [part] = parts.as_slice() {
        return Box::pin(plan_part(ctx, &job, *part, None, stop_at)).await;
    }
    let checkpoints = store.list_plan_parts(&job.job_id).await?;
    let waiting: Vec<&PlanCheckpoint> = checkpoints.iter().filter(|p| !p.done).collect();
    info!(job_id = %job.job_id, parts = parts.len(), waiting = waiting.len(), "planning inventory files in parallel");
    for checkpoint in &waiting {
        send_plan_request_for(ctx, &job.job_id, Some(&checkpoint.part.id())).await?;
    }
    if waiting.is_empty() {
        complete_if_all_done(ctx, &job.job_id).await?;
    }
    Ok(())
}

/// Plans a job's canary (`BatchOps.CanaryTasks`): its parts one after the other, in order,
/// until the canary's tasks are sent; then its report is due once they commit. A manifest with
/// no more tasks than the canary is planned to its end, and the job simply ends.
async fn plan_canary(ctx: &Context, job: &Job, stop_at: Option<Instant>) -> Result<()> {
    let store = ctx.store();
    let checkpoints = store.list_plan_parts(&job.job_id).await?;
    let sent: u64 = checkpoints.iter().map(|c| c.next_task).sum();
    let limit = job.canary_limit().unwrap_or(u64::MAX);
    match checkpoints.iter().find(|c| !c.done) {
        None => complete_if_all_done(ctx, &job.job_id).await,
        Some(_) if sent >= limit => canary_planned(ctx, job, &checkpoints).await,
        // Boxed: a part's planning is a large future, and debug builds move it on the stack.
        Some(next) => Box::pin(plan_part(ctx, job, next.part, None, stop_at)).await,
    }
}

/// Every task of the canary is on the task queue: records its batches, and sends its report
/// request if they have all committed already (else the last commit does).
async fn canary_planned(ctx: &Context, job: &Job, checkpoints: &[PlanCheckpoint]) -> Result<()> {
    let batches: u64 = checkpoints.iter().map(|c| c.batches).sum();
    let tasks: u64 = checkpoints.iter().map(|c| c.next_task).sum();
    ctx.store().finish_canary(&job.job_id, batches).await?;
    info!(job_id = %job.job_id, tasks, batches, "canary planned; the rest waits for confirmation after its report");
    finalize_if_done(ctx, &job.job_id).await
}

/// How many tasks of `part` the job's canary takes in all (counting those sent before), while
/// the canary is planned: what is left of it after the other parts.
async fn canary_part_limit(ctx: &Context, job: &Job, part: PlanPart) -> Result<Option<u64>> {
    let Some(limit) = job.canary_limit() else {
        return Ok(None);
    };
    let checkpoints = ctx.store().list_plan_parts(&job.job_id).await?;
    let others: u64 = checkpoints
        .iter()
        .filter(|c| c.part != part)
        .map(|c| c.next_task)
        .sum();
    Ok(Some(limit.saturating_sub(others)))
}

/// A manifest that cannot be read before any batch was sent: the job goes to Failing and ends
/// with no task.
async fn fail_unplanned(ctx: &Context, job: &Job, failure: FailureReason) -> Result<()> {
    warn!(job_id = %job.job_id, code = %failure.failure_code, reason = %failure.failure_reason, "job cannot be planned; it fails");
    set_failing(ctx, job, failure).await?;
    ctx.store().finish_planning(&job.job_id, 0, 0).await?;
    finalize_if_done(ctx, &job.job_id).await
}

/// Reads the manifest through to count its tasks (a generator's listing says it), then waits
/// for confirmation.
async fn prepare_for_confirmation(
    ctx: &Context,
    job: &Job,
    stop_at: Option<Instant>,
) -> Result<()> {
    let store = ctx.store();
    let counted = async {
        let Some(source) = job_source(ctx, job, stop_at).await? else {
            return Ok(None);
        };
        if let Some(tasks) = source.tasks {
            return Ok(Some(tasks));
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Task>>(4);
        let from = ReadFrom {
            pin: source.pin.clone(),
            ..ReadFrom::default()
        };
        let s3 = manifest_s3(ctx, &job.job_id, &source.manifest);
        let reader = manifest::read_tasks_from(s3, &source.manifest, &from, tx);
        let drain = async { while rx.recv().await.is_some() {} };
        let (read, ()) = tokio::join!(reader, drain);
        read.map(Some)
    };
    match counted.await {
        Ok(None) => Ok(()),
        Ok(Some(total)) => {
            store.set_total_tasks(&job.job_id, total).await?;
            store
                .transition(
                    &job.job_id,
                    JobStatus::Preparing,
                    JobStatus::Suspended,
                    None,
                    None,
                )
                .await?;
            info!(job_id = %job.job_id, total, "job prepared, awaiting confirmation");
            Ok(())
        }
        Err(err) => fail_preparing(ctx, job, JobStatus::Preparing, err).await,
    }
}

/// Every task of one plan part, in order, from where `from` says reading can resume: a CSV
/// manifest from its resume point (a ranged GET), anything else from its start. Tasks before
/// `from.next_task` are skipped by the caller. The manifest is the one pinned when planning
/// began. For a CSV manifest, `points` records where a later run can resume.
async fn read_part(
    ctx: &Context,
    job_id: &str,
    source: &JobSource,
    from: &PlanCheckpoint,
    points: Option<ResumePoints>,
    sizes: bool,
    tx: tokio::sync::mpsc::Sender<Vec<Task>>,
) -> Result<u64> {
    let s3 = manifest_s3(ctx, job_id, &source.manifest);
    match from.part {
        PlanPart::Whole => {
            let read_from = ReadFrom {
                pin: source.pin.clone(),
                start: from.resume.unwrap_or_default(),
                points,
            };
            manifest::read_tasks_from(s3, &source.manifest, &read_from, tx).await
        }
        PlanPart::InventoryFile(index) => {
            let mut inventory =
                manifest::fetch_inventory_manifest_pinned(s3, &source.manifest, &source.pin)
                    .await?;
            inventory.want_sizes = sizes;
            let file = inventory.files.get(index).ok_or_else(|| {
                Error::Manifest(format!(
                    "manifest {}: the inventory lists {} data files, but planning expects file number {index}; was manifest.json replaced while the job was planned?",
                    source.manifest.location.object_arn,
                    inventory.files.len()
                ))
            })?;
            manifest::read_inventory_file(s3, &inventory, file, tx).await
        }
    }
}

/// The task number the stream of `read_part` starts at.
fn stream_start(from: &PlanCheckpoint) -> u64 {
    match from.part {
        PlanPart::Whole => from.resume.map_or(0, |r| r.task),
        PlanPart::InventoryFile(_) => 0,
    }
}

/// The job failure of an error found while setting a job up (its manifest, its report's
/// destination); any other error is passed on, for the message to be delivered again.
fn setup_failure(err: Error) -> Result<FailureReason> {
    let (code, reason) = match err {
        Error::Manifest(reason) => (MANIFEST_FAILURE_CODE, reason),
        Error::ReportDestination(reason) => (crate::reporter::REPORT_NOT_WRITTEN_CODE, reason),
        err @ Error::RoleNotAssumed { .. } => (crate::role::ACCESS_DENIED_CODE, err.to_string()),
        other => return Err(other),
    };
    Ok(FailureReason {
        failure_code: code.into(),
        failure_reason: reason,
    })
}

async fn fail_preparing(ctx: &Context, job: &Job, from: JobStatus, err: Error) -> Result<()> {
    let failure = setup_failure(err)?;
    warn!(job_id = %job.job_id, code = %failure.failure_code, reason = %failure.failure_reason, "job cannot be prepared; it fails");
    ctx.store()
        .transition(&job.job_id, from, JobStatus::Failed, None, Some(failure))
        .await?;
    ctx.store().expire_ended_job(&job.job_id).await;
    Ok(())
}

/// A manifest that fails while the job is Active: the job goes to Failing; batches already
/// queued are accounted as not run, and the reporter then sets Failed.
async fn fail_active(ctx: &Context, job: &Job, reason: String) -> Result<()> {
    warn!(job_id = %job.job_id, %reason, "manifest failed while planning; job fails");
    let failure = FailureReason {
        failure_code: MANIFEST_FAILURE_CODE.into(),
        failure_reason: reason,
    };
    set_failing(ctx, job, failure).await
}

/// Active → Failing with the reason; the reporter sets Failed once every batch is accounted for.
async fn set_failing(ctx: &Context, job: &Job, failure: FailureReason) -> Result<()> {
    ctx.store()
        .transition(
            &job.job_id,
            JobStatus::Active,
            JobStatus::Failing,
            None,
            Some(failure),
        )
        .await?;
    Ok(())
}

/// Closes a part for good (the job stopped): its batches on the task queue are its total. A run
/// that died after sending batches but before saving its checkpoint may have sent some of the
/// batches it reserved; those are sent again (the same batches: same ids, same tasks), so that
/// every batch that may be on the queue is counted in the part's total and commits exactly once.
async fn stop_part(ctx: &Context, job: &Job, checkpoint: &PlanCheckpoint) -> Result<()> {
    let unconfirmed = checkpoint.unconfirmed_batches();
    let (tasks, batches) = if unconfirmed.is_empty() {
        (0, 0)
    } else {
        match replay_batches(ctx, job, checkpoint, unconfirmed.end).await {
            Ok(sent) => (sent.tasks, sent.batches),
            Err(err) => {
                warn!(job_id = %job.job_id, part = %checkpoint.part.id(), error = %err, "cannot send the reserved batches of a stopped part again; closing it at its checkpoint");
                (0, 0)
            }
        }
    };
    let closed = checkpoint.advanced(tasks, batches, true);
    ctx.store()
        .advance_plan_part(&job.job_id, checkpoint, &closed)
        .await?;
    Ok(())
}

/// Sends the part's batches from the checkpoint up to (not including) sequence number `until`.
async fn replay_batches(
    ctx: &Context,
    job: &Job,
    from: &PlanCheckpoint,
    until: u64,
) -> Result<Sent> {
    info!(job_id = %job.job_id, part = %from.part.id(), from = from.batches, until, "sending the reserved batches of a stopped part again");
    let source = recorded_source(job)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Task>>(8);
    let limits = BatchLimits::of(&job.request.operation);
    let reader = read_part(
        ctx,
        &job.job_id,
        source,
        from,
        None,
        limits.wants_sizes(),
        tx,
    );
    let sender = send_batches(
        ctx,
        &job.job_id,
        from,
        limits,
        rx,
        SendMode::Replay { until },
    );
    let (read, sent) = tokio::join!(reader, sender);
    let sent = sent?;
    if sent.stop.is_none() {
        read?;
    }
    Ok(sent)
}

/// When every part is done, records the job's totals (once the same, however often it runs)
/// and sends the finalize request if every batch has committed already.
async fn complete_if_all_done(ctx: &Context, job_id: &str) -> Result<()> {
    let store = ctx.store();
    let parts = store.list_plan_parts(job_id).await?;
    if let Some((tasks, batches)) = planning_totals(&parts) {
        store.finish_planning(job_id, tasks, batches).await?;
        info!(
            job_id,
            tasks,
            batches,
            parts = parts.len(),
            "planning complete"
        );
        finalize_if_done(ctx, job_id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
