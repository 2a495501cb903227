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

/// Messages sent to the task queue at once while planning.
const SEND_CONCURRENCY: usize = 8;
/// How often (in batches) planning looks at the job's status, to stop early when it is cancelled.
const STATUS_CHECK_EVERY: u64 = 50;

pub const MANIFEST_FAILURE_CODE: &str = "ManifestReadFailed";

/// Optional planning budget per invocation in milliseconds (`local run`, tests, or to stop well
/// before Lambda's own deadline). When it runs out the planner saves a checkpoint at the next
/// batch boundary and continues itself through the plan queue.
pub const ENV_PLANNER_BUDGET_MS: &str = "BATCHOPS_PLANNER_BUDGET_MS";
/// Time kept free before the Lambda deadline: sends in flight finish, the checkpoint is saved
/// and the continue message is sent.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// The planner Lambda's entry point without a Lambda deadline (`local run`, tests): planning
/// runs until done, or for [`ENV_PLANNER_BUDGET_MS`] when that is set.
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
        planner_budget(ctx)?,
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

/// The planning budget of [`ENV_PLANNER_BUDGET_MS`], if set.
pub fn budget_from_env() -> Result<Option<Duration>> {
    crate::deadline::budget_from_env(ENV_PLANNER_BUDGET_MS)
}

/// The context's planning budget, else the variable's as it is now.
fn planner_budget(ctx: &Context) -> Result<Option<Duration>> {
    match ctx.settings.planner_budget {
        Some(budget) => Ok(Some(budget)),
        None => budget_from_env(),
    }
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannerWork {
    Plan(String),
    /// Plan (continue) one part of a job from its checkpoint.
    PlanPart {
        job_id: String,
        part: PlanPart,
        /// A continuation's `From`: where the part stood when it was sent.
        from_task: Option<u64>,
    },
    ManifestArrived {
        bucket: String,
        key: String,
        etag: Option<String>,
    },
}

/// Reads the planner's event: a plan request (`queue::PlanRequest`, `{"PlanJobId"}` with
/// `"Part"` for one plan part), an S3 event notification (`S3Notification`),
/// an EventBridge `Object Created` event, or an SQS event (`SqsMessage`) whose bodies are any of
/// these. Which one it is shows in its keys; each is then read as its type.
pub fn parse_event(event: &Value) -> Result<Vec<PlannerWork>> {
    if event.get("PlanJobId").is_some() {
        let request: PlanRequest = serde_json::from_value(event.clone())
            .map_err(|e| Error::Message(format!("plan request {event}: {e}")))?;
        return Ok(vec![plan_work(request)?]);
    }
    if event.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return parse_eventbridge_s3(event);
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        // S3 sends `{"Event":"s3:TestEvent",...}` when a notification is configured.
        if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            return Ok(Vec::new());
        }
        return Err(Error::Message(
            "planner event is neither a plan request, an S3 event nor an SQS event".into(),
        ));
    };
    let mut work = Vec::new();
    for record in records {
        let source = record
            .get("eventSource")
            .or_else(|| record.get("EventSource"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match source {
            "aws:sqs" => {
                let message: SqsMessage = serde_json::from_value(record.clone())
                    .map_err(|e| Error::Message(format!("SQS record in the planner event: {e}")))?;
                let body = message.body.ok_or_else(|| {
                    Error::Message("SQS record without a body in the planner event".into())
                })?;
                let inner: Value = serde_json::from_str(&body)
                    .map_err(|e| Error::Message(format!("plan queue message is not JSON: {e}")))?;
                work.extend(parse_event(&inner)?);
            }
            "aws:s3" => work.extend(parse_s3_record(record)?),
            other => {
                return Err(Error::Message(format!(
                    "planner event record has unexpected eventSource {other:?}"
                )))
            }
        }
    }
    Ok(work)
}

fn plan_work(request: PlanRequest) -> Result<PlannerWork> {
    Ok(match request.part {
        Some(part) => PlannerWork::PlanPart {
            job_id: request.job_id,
            part: PlanPart::parse(&part)?,
            from_task: request.from_task,
        },
        None => PlannerWork::Plan(request.job_id),
    })
}

/// The parts of an EventBridge S3 event the planner reads (the bucket's EventBridge switch and
/// the template's rule): the bucket and the key as stored (not URL-encoded, unlike S3's own
/// notifications).
#[derive(Debug, Deserialize)]
struct EventBridgeS3 {
    #[serde(rename = "detail-type", default)]
    detail_type: String,
    detail: Option<EventBridgeS3Detail>,
}

#[derive(Debug, Deserialize)]
struct EventBridgeS3Detail {
    bucket: BucketName,
    object: EventBridgeObject,
}

#[derive(Debug, Deserialize)]
struct BucketName {
    name: String,
}

#[derive(Debug, Deserialize)]
struct EventBridgeObject {
    key: String,
    #[serde(default)]
    etag: Option<String>,
}

/// An EventBridge S3 event: `Object Created` is a manifest that may have arrived; other S3
/// events are none of the planner's business.
fn parse_eventbridge_s3(event: &Value) -> Result<Vec<PlannerWork>> {
    if event.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
        return Ok(Vec::new());
    }
    let event: EventBridgeS3 = serde_json::from_value(event.clone())
        .map_err(|e| Error::Message(format!("EventBridge S3 event: {e}")))?;
    let detail = event.detail.ok_or_else(|| {
        Error::Message(format!(
            "EventBridge S3 event {} without detail",
            event.detail_type
        ))
    })?;
    Ok(vec![PlannerWork::ManifestArrived {
        bucket: detail.bucket.name,
        key: detail.object.key,
        etag: detail.object.etag,
    }])
}

/// The parts of an S3 event notification record the planner reads. (Not `aws_lambda_events`'
/// `S3EventRecord`: it requires `eventTime`, `userIdentity` and `requestParameters`, which S3
/// sends but moto's notifications, those `local up` wires, leave out.)
#[derive(Debug, Deserialize)]
struct S3Notification {
    s3: S3NotificationEntity,
}

#[derive(Debug, Deserialize)]
struct S3NotificationEntity {
    bucket: BucketName,
    object: S3NotificationObject,
}

#[derive(Debug, Deserialize)]
struct S3NotificationObject {
    key: String,
    #[serde(rename = "eTag", default)]
    e_tag: Option<String>,
}

/// An S3 event notification record: `ObjectCreated:*` is a manifest that may have arrived.
fn parse_s3_record(record: &Value) -> Result<Option<PlannerWork>> {
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !name.starts_with("ObjectCreated") {
        return Ok(None);
    }
    let record: S3Notification = serde_json::from_value(record.clone())
        .map_err(|e| Error::Message(format!("S3 record: {e}")))?;
    let raw_key = record.s3.object.key;
    // S3 event keys are URL-encoded (spaces as '+').
    let key = manifest::decode_key(&raw_key)
        .map_err(|e| Error::Message(format!("S3 event key {raw_key:?}: {e}")))?;
    Ok(Some(PlannerWork::ManifestArrived {
        bucket: record.s3.bucket.name,
        key,
        etag: record.s3.object.e_tag,
    }))
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

/// Prepares or plans one job, depending on its status, within [`ENV_PLANNER_BUDGET_MS`] if set.
pub async fn plan_job(ctx: &Context, job_id: &str) -> Result<()> {
    let stop_at = stop_time(
        Instant::now(),
        SystemTime::now(),
        None,
        planner_budget(ctx)?,
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

/// Plans one part from its checkpoint until it ends, the job stops, or time runs out; then
/// saves the new checkpoint and, when time ran out, sends the continue message.
async fn plan_part(
    ctx: &Context,
    job: &Job,
    part: PlanPart,
    from_task: Option<u64>,
    stop_at: Option<Instant>,
) -> Result<()> {
    let store = ctx.store();
    let job_id = job.job_id.as_str();
    let Some(from) = store.get_plan_part(job_id, part).await? else {
        warn!(job_id, part = %part.id(), "plan part has no checkpoint; ignored");
        return Ok(());
    };
    if from.is_stale(from_task) {
        info!(job_id, part = %part.id(), ?from_task, next_task = from.next_task, "old copy of a continue message; the part has moved on");
        return Ok(());
    }
    if from.done {
        return complete_if_all_done(ctx, job_id).await;
    }
    let canary = canary_part_limit(ctx, job, part).await?;
    if canary.is_some_and(|limit| from.next_task >= limit) {
        return Box::pin(plan_canary(ctx, job, stop_at)).await;
    }
    let source = recorded_source(job)?;
    let points = ResumePoints::default();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Task>>(8);
    let limits = BatchLimits::of(&job.request.operation);
    let reader = read_part(
        ctx,
        job_id,
        source,
        &from,
        Some(points.clone()),
        limits.wants_sizes(),
        tx,
    );
    let mode = SendMode::Plan {
        stop_at,
        until_task: canary,
    };
    let sender = send_batches(ctx, job_id, &from, limits, rx, mode);
    let (read, sent) = tokio::join!(reader, sender);
    let sent = sent?;
    let done = match (sent.stop, read) {
        // Planning stopped before the end: the reader only saw its channel close.
        (Some(Stop::OutOfTime | Stop::ReplayDone | Stop::CanaryDone), _) => false,
        (Some(Stop::JobStopped), _) => true,
        (None, Ok(_)) if sent.received < from.next_task => {
            let reason = format!(
                "the manifest has {} tasks for plan part {} now, but {} were planned before; was it replaced while the job was planned?",
                sent.received,
                part.id(),
                from.next_task
            );
            fail_active(ctx, job, reason).await?;
            true
        }
        (None, Ok(_)) => true,
        (None, Err(Error::Manifest(reason))) => {
            fail_active(ctx, job, reason).await?;
            true
        }
        (None, Err(other)) => return Err(other),
    };
    let mut to = from.advanced(sent.tasks, sent.batches, done);
    if let Some(point) = points.at_or_before(to.next_task) {
        to.resume = Some(point);
    }
    if !store.advance_plan_part(job_id, &from, &to).await? {
        info!(job_id, part = %part.id(), "another run of this plan part saved its checkpoint first; this run stops");
        return Ok(());
    }
    if sent.stop == Some(Stop::CanaryDone) {
        store
            .release_plan_reservations(job_id, part, to.batches)
            .await?;
        return Box::pin(plan_canary(ctx, job, stop_at)).await;
    }
    if done && canary.is_some() {
        // The next part of the canary (or the closing of the rest, when the job stopped) in an
        // invocation of its own.
        return send_plan_request_for(ctx, job_id, None).await;
    }
    if done {
        return complete_if_all_done(ctx, job_id).await;
    }
    info!(job_id, part = %part.id(), next_task = to.next_task, batches = to.batches, "planning time is up; continuing in a new invocation");
    let request = PlanRequest {
        job_id: job_id.to_string(),
        part: Some(part.id()),
        from_task: Some(to.next_task),
    };
    send_plan_message(ctx, &request).await?;
    store
        .mark_plan_part_continued(job_id, part, to.next_task)
        .await
}

/// Why planning stopped before the end of its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The job was cancelled or is failing.
    JobStopped,
    /// The invocation's time is up: checkpoint and continue.
    OutOfTime,
    /// A replay reached its last batch.
    ReplayDone,
    /// Every task of the job's canary is sent.
    CanaryDone,
}

#[derive(Debug, Clone, Copy)]
enum SendMode {
    /// Plan until the part ends, the job stops or `stop_at` passes; while a canary is planned,
    /// up to (not including) the part's task `until_task`.
    Plan {
        stop_at: Option<Instant>,
        until_task: Option<u64>,
    },
    /// Send the batches before sequence number `until` again.
    Replay { until: u64 },
}

#[derive(Debug, Default)]
struct Sent {
    /// Tasks sent in this run (in full batches, plus the last one when the part ended).
    tasks: u64,
    batches: u64,
    /// Tasks received from the reader, including those skipped (sent by earlier runs).
    received: u64,
    stop: Option<Stop>,
}

/// Batches reserved at a time ahead of sending (one DynamoDB write per this many batches).
pub const RESERVE_WINDOW: u64 = 64;

/// Skips the tasks that `from` says are sent, packs the rest into batches numbered on from
/// `from.batches` and sends them. Planning stops at a batch boundary when time runs out (after
/// at least one batch, so every run makes progress) or when the job stops, and reserves batches
/// in the store before it sends them; a replay sends up to its `until`.
async fn send_batches(
    ctx: &Context,
    job_id: &str,
    from: &PlanCheckpoint,
    limits: BatchLimits,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Task>>,
    mode: SendMode,
) -> Result<Sent> {
    let store = ctx.store();
    let mut packer = BatchPacker::new(
        job_id,
        &from.part.batch_prefix(),
        ctx.settings.max_message_bytes,
    )
    .with_limits(limits)
    .resume_at(from.batches);
    let mut reserved = from.reserved.max(from.batches);
    let mut in_flight = FuturesUnordered::new();
    let mut sent = Sent {
        received: stream_start(from),
        ..Sent::default()
    };
    let until_task = match mode {
        SendMode::Plan { until_task, .. } => until_task,
        SendMode::Replay { .. } => None,
    };
    let mut next_task = from.next_task;
    'reading: while let Some(chunk) = rx.recv().await {
        let fresh = skip_sent(chunk, from.next_task, &mut sent.received);
        for task in fresh {
            if until_task.is_some_and(|until| next_task >= until) {
                sent.stop = Some(Stop::CanaryDone);
                break 'reading;
            }
            next_task += 1;
            let Some(batch) = packer.push(task) else {
                continue;
            };
            let seq = from.batches + sent.batches;
            match mode {
                SendMode::Replay { until } if seq >= until => {
                    sent.stop = Some(Stop::ReplayDone);
                    break 'reading;
                }
                SendMode::Plan { .. } if seq >= reserved => {
                    reserved = seq + RESERVE_WINDOW;
                    store
                        .reserve_plan_batches(job_id, from.part, reserved)
                        .await?;
                }
                _ => {}
            }
            while in_flight.len() >= SEND_CONCURRENCY {
                if let Some(result) = in_flight.next().await {
                    result?;
                }
            }
            sent.tasks += batch.tasks.len() as u64;
            in_flight.push(send_batch(ctx, batch));
            sent.batches += 1;
            let SendMode::Plan { stop_at, .. } = mode else {
                continue;
            };
            if stop_at.is_some_and(|at| Instant::now() >= at) {
                sent.stop = Some(Stop::OutOfTime);
                break 'reading;
            }
            if sent.batches.is_multiple_of(STATUS_CHECK_EVERY)
                && store.get_job(job_id).await?.status.stops_execution()
            {
                // Tasks not yet sent are not part of the job: only queued batches are counted.
                sent.stop = Some(Stop::JobStopped);
                break 'reading;
            }
        }
    }
    // Closing the channel tells the reader to stop.
    drop(rx);
    if matches!(sent.stop, None | Some(Stop::CanaryDone)) {
        if let Some(batch) = packer.finish() {
            let seq = from.batches + sent.batches;
            let wanted = match mode {
                SendMode::Replay { until } => seq < until,
                SendMode::Plan { .. } => {
                    if seq >= reserved {
                        store
                            .reserve_plan_batches(job_id, from.part, seq + 1)
                            .await?;
                    }
                    true
                }
            };
            if wanted {
                sent.tasks += batch.tasks.len() as u64;
                in_flight.push(send_batch(ctx, batch));
                sent.batches += 1;
            }
        }
    }
    // Every batch is on the queue before the checkpoint that counts it is saved.
    while let Some(result) = in_flight.next().await {
        result?;
    }
    Ok(sent)
}

/// The tasks of `chunk` that come after the first `already_sent` tasks of the stream, given that
/// `received` tasks came before this chunk (updated to include it).
fn skip_sent(mut chunk: Vec<Task>, already_sent: u64, received: &mut u64) -> Vec<Task> {
    let before = *received;
    *received += chunk.len() as u64;
    let skip = already_sent.saturating_sub(before).min(chunk.len() as u64) as usize;
    if skip > 0 {
        chunk.drain(..skip);
    }
    chunk
}

async fn send_batch(ctx: &Context, batch: TaskBatch) -> Result<()> {
    crate::queue::send_task_batch(ctx, &batch).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_eventbridge_object_created_event_is_a_manifest_arrival() {
        let event = json!({
            "version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "account": "111122223333", "region": "us-east-1",
            "resources": ["arn:aws:s3:::inv"],
            "detail": {"version": "0", "bucket": {"name": "inv"},
                       "object": {"key": "src/cfg/2026-12-01T01-00Z/manifest.json", "size": 10,
                                  "etag": "abc"},
                       "reason": "PutObject"}
        });
        assert_eq!(
            parse_event(&event).unwrap(),
            vec![PlannerWork::ManifestArrived {
                bucket: "inv".into(),
                key: "src/cfg/2026-12-01T01-00Z/manifest.json".into(),
                etag: Some("abc".into()),
            }]
        );
        // Through the plan queue, as the rule's SQS target delivers it.
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": event.to_string()}]});
        assert_eq!(parse_event(&sqs).unwrap().len(), 1);
        let deleted = json!({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}});
        assert!(parse_event(&deleted).unwrap().is_empty());
        let broken =
            json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}});
        assert!(parse_event(&broken).is_err());
    }

    #[test]
    fn reads_plan_requests_direct_and_in_sqs() {
        let direct = json!({"PlanJobId": "j1"});
        assert_eq!(
            parse_event(&direct).unwrap(),
            vec![PlannerWork::Plan("j1".into())]
        );
        let sqs =
            json!({"Records": [{"eventSource": "aws:sqs", "body": "{\"PlanJobId\":\"j2\"}"}]});
        assert_eq!(
            parse_event(&sqs).unwrap(),
            vec![PlannerWork::Plan("j2".into())]
        );
    }

    #[test]
    fn reads_s3_events_direct_and_wrapped_and_decodes_keys() {
        let s3 = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-25T01:02:03.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "inventory",
                   "bucket": {"name": "inv", "arn": "arn:aws:s3:::inv"},
                   "object": {"key": "inv/src/cfg/2026-11-25T01-00Z/my+manifest%2B.json", "size": 10, "eTag": "abc"}}
        }]});
        let expected = PlannerWork::ManifestArrived {
            bucket: "inv".into(),
            key: "inv/src/cfg/2026-11-25T01-00Z/my manifest+.json".into(),
            etag: Some("abc".into()),
        };
        assert_eq!(parse_event(&s3).unwrap(), vec![expected.clone()]);
        // moto's notifications leave out userIdentity and requestParameters.
        let moto = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-25T01:02:03.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "inventory",
                   "bucket": {"name": "inv", "arn": "arn:aws:s3:::inv"},
                   "object": {"key": "inv/src/cfg/2026-11-25T01-00Z/my+manifest%2B.json", "size": 10, "eTag": "abc"}}
        }]});
        assert_eq!(parse_event(&moto).unwrap(), vec![expected.clone()]);
        let no_bucket = json!({"Records": [{
            "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {}, "object": {"key": "k"}}
        }]});
        assert!(parse_event(&no_bucket)
            .unwrap_err()
            .to_string()
            .contains("missing field `name`"));
        let wrapped = json!({"Records": [{"eventSource": "aws:sqs", "body": s3.to_string()}]});
        assert_eq!(parse_event(&wrapped).unwrap(), vec![expected]);
    }

    #[test]
    fn ignores_test_events_and_removals_and_rejects_garbage() {
        let test_event = json!({"Records": [{"eventSource": "aws:sqs",
            "body": "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}"}]});
        assert!(parse_event(&test_event).unwrap().is_empty());
        let removed = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
        assert!(parse_event(&removed).unwrap().is_empty());
        assert!(parse_event(&json!({"hello": 1})).is_err());
        let bad_body = json!({"Records": [{"eventSource": "aws:sqs", "body": "not json"}]});
        assert!(parse_event(&bad_body).is_err());
    }
    #[test]
    fn reads_plan_part_requests_and_rejects_bad_parts() {
        let part = json!({"Records": [{"eventSource": "aws:sqs",
            "body": "{\"PlanJobId\":\"j3\",\"Part\":\"f000002\"}"}]});
        assert_eq!(
            parse_event(&part).unwrap(),
            vec![PlannerWork::PlanPart {
                job_id: "j3".into(),
                part: PlanPart::InventoryFile(2),
                from_task: None,
            }]
        );
        assert_eq!(
            parse_event(&json!({"PlanJobId": "j", "Part": "m", "From": 4000})).unwrap(),
            vec![PlannerWork::PlanPart {
                job_id: "j".into(),
                part: PlanPart::Whole,
                from_task: Some(4000),
            }]
        );
        assert!(parse_event(&json!({"PlanJobId": "j", "Part": "zz"})).is_err());
    }

    #[test]
    fn stop_time_is_the_earlier_of_deadline_less_margin_and_budget() {
        let now = Instant::now();
        let wall = SystemTime::now();
        assert_eq!(stop_time(now, wall, None, None), None);
        let budget = Duration::from_millis(250);
        assert_eq!(stop_time(now, wall, None, Some(budget)), Some(now + budget));
        let deadline = wall + Duration::from_secs(900);
        let from_deadline = now + Duration::from_secs(900) - DEADLINE_MARGIN;
        assert_eq!(
            stop_time(now, wall, Some(deadline), None),
            Some(from_deadline)
        );
        assert_eq!(
            stop_time(now, wall, Some(deadline), Some(budget)),
            Some(now + budget)
        );
        assert_eq!(
            stop_time(now, wall, Some(deadline), Some(Duration::from_secs(3600))),
            Some(from_deadline)
        );
        // A deadline closer than the margin (or past) means: stop at the first batch boundary.
        let close = wall + Duration::from_secs(5);
        assert_eq!(stop_time(now, wall, Some(close), None), Some(now));
        let past = wall - Duration::from_secs(5);
        assert_eq!(stop_time(now, wall, Some(past), None), Some(now));
    }

    fn numbered(range: std::ops::Range<u32>) -> Vec<Task> {
        range
            .map(|i| Task {
                bucket: "b".into(),
                key: i.to_string(),
                version_id: None,
                size: None,
            })
            .collect()
    }

    #[test]
    fn skip_sent_drops_exactly_the_tasks_sent_before_across_chunks() {
        let mut received = 0;
        assert!(skip_sent(numbered(0..10), 25, &mut received).is_empty());
        assert!(skip_sent(numbered(10..20), 25, &mut received).is_empty());
        assert_eq!(
            skip_sent(numbered(20..30), 25, &mut received),
            numbered(25..30)
        );
        assert_eq!(
            skip_sent(numbered(30..40), 25, &mut received),
            numbered(30..40)
        );
        assert_eq!(received, 40);
        let mut received = 0;
        assert_eq!(skip_sent(numbered(0..5), 0, &mut received), numbered(0..5));
        let mut received = 0;
        assert!(skip_sent(numbered(0..5), 5, &mut received).is_empty());
        assert_eq!(skip_sent(numbered(5..6), 5, &mut received), numbered(5..6));
    }
}
