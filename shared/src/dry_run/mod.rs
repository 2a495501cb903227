//! The dry run (`create-job --dry-run`, control action `DryRunJob`): a CreateJob request read
//! through without creating a job or touching an object. It reads the manifest (or lists the
//! generator's bucket) as the job's role, packs the tasks into batches as the planner would, and
//! says what the job would do: how many tasks and bytes, the first tasks, the requests it would
//! make by type, what it would cost on this stack beside S3 Batch Operations (prices in
//! [`crate::pricing`]), and how long it would take at the job's rate limit and the stack's
//! concurrency.
//!
//! The cost model counts the requests a job makes: the tasks' own requests exactly (from the
//! operation and the objects' sizes), and batchops' bookkeeping per batch and per job as this
//! code makes them (constants below). Times are assumptions about S3 and Lambda, stated here.

use crate::error::{Error, Result};
use crate::job::{CreateJobRequest, GlacierJobTier, JobOperation};
use crate::manifest::Task;
use crate::operation::{part_ranges, CopySettings};
use crate::plan::{BatchLimits, BatchPacker, TaskBatch};
use crate::pricing::{self, Prices};
use crate::Context;
use serde::{Deserialize, Serialize};

mod text;
pub use text::render;
use text::*;

/// Tasks shown when the request does not say.
pub const DEFAULT_SHOW_TASKS: usize = 10;
/// At most this many tasks are shown.
pub const MAX_SHOW_TASKS: usize = 1_000;

/// One S3 request's round trip inside a Region, as a task sees it.
const S3_REQUEST_SECONDS: f64 = 0.03;
/// How fast S3 copies an object's bytes inside one CopyObject or UploadPartCopy.
const COPY_BYTES_PER_SECOND: f64 = 150e6;
/// How fast an executor reads an object it checksums.
const READ_BYTES_PER_SECOND: f64 = 80e6;
/// One invocation of the user's function (its own time is the user's to know; it is billed to
/// the user's function either way).
const LAMBDA_INVOKE_SECONDS: f64 = 0.1;
/// An executor invocation's own time per batch: reading the job, claiming and committing.
const EXECUTOR_SECONDS_PER_BATCH: f64 = 0.15;
/// The planner: tasks read and packed per second, plus its start.
const PLANNER_TASKS_PER_SECOND: f64 = 500_000.0;
const PLANNER_START_SECONDS: f64 = 0.5;
/// The reporter: seconds per result part read into the report, plus its start.
const REPORTER_SECONDS_PER_BATCH: f64 = 0.01;
const REPORTER_START_SECONDS: f64 = 0.5;
/// A job's fixed time besides its tasks: queues, the planner's and reporter's starts.
const JOB_OVERHEAD_SECONDS: f64 = 5.0;

/// DynamoDB request units per batch: the claim of its segment (1 write), the commit (a
/// transaction of the batch record and the job's counters: 2 items at 2 units each), the TTL
/// given when the job ends (1), the planner's reservation (1 per 64 batches, rounded up to 1);
/// reads of the job, the batch record, its plan part and the job again after the commit.
const DYNAMODB_WRITES_PER_BATCH: u64 = 7;
const DYNAMODB_READS_PER_BATCH: u64 = 4;
/// DynamoDB request units per job: creating it, its status changes, plan parts and the report.
const DYNAMODB_WRITES_PER_JOB: u64 = 30;
const DYNAMODB_READS_PER_JOB: u64 = 20;
/// S3 requests of batchops per job: the manifest's HEAD (its pin), the report's files and its
/// manifest.json (PUTs).
const S3_BOOKKEEPING_PUTS_PER_JOB: u64 = 3;
/// SQS messages per job besides the batches: the plan request and the finalize request.
const SQS_MESSAGES_PER_JOB: u64 = 2;

/// The DryRunJob request: the CreateJob request to look at, or a job whose spec to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DryRunJobInput {
    /// `Request`: the CreateJob request to look at; give this or `CloneOf`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<CreateJobRequest>,
    /// Look at this job's spec instead (what `--clone-of` would create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_of: Option<String>,
    /// How many of the first tasks to show (default 10, at most 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_tasks: Option<usize>,
    /// Executor invocations at once; by default the stack's `ExecutorMaxConcurrency`
    /// (`BATCHOPS_EXECUTOR_INVOCATIONS`, 20 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_invocations: Option<u64>,
}

/// What a job would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DryRunJobResponse {
    /// `Operation`: the operation's name, e.g. `S3PutObjectCopy`.
    pub operation: String,
    /// The manifest read, or the bucket listed.
    pub manifest: String,
    /// `TotalNumberOfTasks`: every task the manifest or listing holds.
    pub total_number_of_tasks: u64,
    /// Tasks whose size the manifest gives (an inventory's `Size`, a listing), and their bytes.
    pub tasks_with_size: u64,
    /// `TotalBytes`: the bytes of the tasks with a known size.
    pub total_bytes: u64,
    /// `FirstTasks`: the first tasks read, as many as `ShowTasks` asked for.
    pub first_tasks: Vec<DryRunTask>,
    /// Batches on the task queue, as the planner would pack them.
    pub batches: u64,
    /// `Requests`: the requests the job would make, by service and type.
    pub requests: Vec<RequestCount>,
    /// `Cost`: the estimated bill on this stack and on S3 Batch Operations.
    pub cost: CostEstimate,
    /// `Duration`: how long the job would run.
    pub duration: DurationEstimate,
    /// `Notes`: caveats of the estimate (unknown sizes, costs not counted); omitted when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One of the first tasks a dry run shows: the object it would act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DryRunTask {
    /// `Bucket`: the object's bucket.
    pub bucket: String,
    /// `Key`: the object's key.
    pub key: String,
    /// `VersionId`: the version the manifest names; omitted for the current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `Size` in bytes, when the manifest gives it (an inventory, a listing); omitted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Requests of one type. `Of` says whose they are: `Tasks` (on the user's objects or function,
/// made by S3 Batch Operations too) or `Batchops` (this stack's own bookkeeping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestCount {
    /// `Service`: `S3`, `Lambda`, `SQS` or `DynamoDB`.
    pub service: String,
    /// `Request`: the request type, e.g. `CopyObject`, or DynamoDB's `write request units`.
    pub request: String,
    /// `Count`: requests (or request units, or SQS's 64 KiB chunks) of this type.
    pub count: u64,
    /// `Of`: whose requests these are.
    pub of: RequestsOf,
}

/// Whose requests a [`RequestCount`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestsOf {
    /// The tasks' own, on the user's objects or function; S3 Batch Operations makes them too.
    Tasks,
    /// batchops' own bookkeeping: queues, the job store, result parts, its functions.
    Batchops,
}

/// A dry run's cost estimate in US dollars, at one Region's prices ([`crate::pricing`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CostEstimate {
    /// `Region`: the Region whose prices are used, e.g. `us-east-1`.
    pub region: String,
    /// `Batchops`: the bill on this stack, one line per service.
    pub batchops: Vec<CostLine>,
    /// `BatchopsTotalUsd`: the sum of `Batchops`.
    pub batchops_total_usd: f64,
    /// None where S3 Batch Operations cannot run the job (batchops' own operations).
    pub s3_batch_operations: Option<Vec<CostLine>>,
    /// `S3BatchOperationsTotalUsd`: the sum of `S3BatchOperations`; `None` with it.
    pub s3_batch_operations_total_usd: Option<f64>,
}

/// One line of a cost estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CostLine {
    /// `Item`: what is charged, e.g. `Job fee` or `SQS`.
    pub item: String,
    /// `Usd`: its cost in US dollars.
    pub usd: f64,
}

/// How long a job would run: its tasks at the rate allowed, plus a fixed overhead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DurationEstimate {
    /// `Seconds`: the job's estimated wall-clock time.
    pub seconds: f64,
    /// `TasksPerSecond`: the rate assumed, the lower of the rate limit and what the tasks in
    /// flight allow.
    pub tasks_per_second: f64,
    /// `MaxTasksPerSecond` (the job's rate limit) or `Concurrency` (tasks in flight).
    pub limited_by: String,
    /// `TasksInFlight`: executor invocations times tasks per invocation.
    pub tasks_in_flight: u64,
    /// `MaxTasksPerSecond`: the job's rate limit; omitted when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_second: Option<u32>,
}

/// What reading the manifest found: everything the estimate needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestStats {
    /// Tasks read.
    pub tasks: u64,
    /// Tasks whose size the manifest gives.
    pub tasks_with_size: u64,
    /// The sum of those sizes.
    pub bytes: u64,
    /// Task batches, packed as the planner would.
    pub batches: u64,
    /// SQS requests to send (or receive) every batch: its body in started 64 KiB chunks.
    pub batch_chunks: u64,
    /// Copies larger than CopyObject takes (multipart), their parts, and tasks over 5 GB.
    pub multipart_copies: u64,
    /// Copy tasks whose source is HEADed before the copy: a known size above the multipart
    /// threshold, or no size while the threshold is below CopyObject's 5 GiB (every other copy
    /// is one CopyObject, S3 itself refusing a source too large for it).
    pub copy_heads: u64,
    /// `UploadPartCopy` parts of those multipart copies.
    pub copy_parts: u64,
    /// Copy and encryption-update tasks over 5 GB (S3 Batch Operations' copy fails those).
    pub tasks_over_5_gb: u64,
    /// Objects read to get the tasks (a CSV manifest; an inventory's manifest.json and data
    /// files) and listing pages (a generator).
    pub manifest_gets: u64,
    /// `ListObjectsV2` pages of a manifest generator's listing (1,000 keys each); 0 for a
    /// manifest.
    pub listing_pages: u64,
    /// The first tasks, as many as were asked to be shown.
    pub first_tasks: Vec<DryRunTask>,
}

/// The stack a job would run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackShape {
    /// Executor invocations at once; at least 1.
    pub executor_invocations: u64,
    /// Tasks one executor invocation runs at once; at least 1.
    pub executor_concurrency: u64,
}

/// Runs a dry run: reads the manifest as the job's role, creates nothing, changes nothing.
pub async fn dry_run(ctx: &Context, input: &DryRunJobInput) -> Result<DryRunJobResponse> {
    let request = match (&input.request, &input.clone_of) {
        (Some(request), None) => request.clone(),
        (None, Some(job_id)) => ctx.store().get_job(job_id).await?.request,
        _ => {
            return Err(Error::InvalidRequest(
                "DryRunJob needs either Request (a CreateJob request) or CloneOf (a job id)".into(),
            ))
        }
    };
    request.validate()?;
    let show = input.show_tasks.unwrap_or(DEFAULT_SHOW_TASKS);
    if show > MAX_SHOW_TASKS {
        return Err(Error::InvalidRequest(format!(
            "ShowTasks must be at most {MAX_SHOW_TASKS}, got {show}"
        )));
    }
    let look = crate::control::new_job(
        format!("dry-run-{}", uuid::Uuid::new_v4()),
        request.clone(),
        chrono::Utc::now(),
    );
    let job_ctx = ctx.for_job(&look).await?;
    let (manifest, stats) = read_stats(&job_ctx, &request, show).await?;
    let stack = StackShape {
        executor_invocations: input
            .executor_invocations
            .unwrap_or(ctx.settings.executor_invocations as u64)
            .max(1),
        executor_concurrency: ctx.settings.executor_concurrency.max(1) as u64,
    };
    Ok(estimate(
        &request,
        manifest,
        stats,
        stack,
        &pricing::US_EAST_1,
    ))
}

/// Reads every task of the request's manifest (or listing) and packs them as the planner would.
async fn read_stats(
    ctx: &Context,
    request: &CreateJobRequest,
    show: usize,
) -> Result<(String, ManifestStats)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Task>>(4);
    let mut packer = BatchPacker::new("dry-run", "b", ctx.settings.max_message_bytes)
        .with_limits(BatchLimits::of(&request.operation));
    let copy = ctx.settings.copy;
    let mut stats = ManifestStats::default();
    let tally = async {
        while let Some(chunk) = rx.recv().await {
            for task in chunk {
                count_task(&mut stats, &task, &request.operation, &copy, show);
                if let Some(batch) = packer.push(task) {
                    count_batch(&mut stats, &batch);
                }
            }
        }
        if let Some(batch) = packer.finish() {
            count_batch(&mut stats, &batch);
        }
    };
    let (source, read) = match (&request.manifest, &request.manifest_generator) {
        (Some(manifest), _) => {
            let (bucket, key) = crate::job::parse_object_arn(&manifest.location.object_arn)?;
            let source = format!("s3://{bucket}/{key}");
            let reader = crate::manifest::read_tasks(&ctx.s3, manifest, tx);
            let (read, ()) = tokio::join!(reader, tally);
            (source, read)
        }
        (None, Some(generator)) => {
            let reader = crate::generator::list_tasks(&ctx.s3, generator, tx);
            let (read, ()) = tokio::join!(reader, tally);
            let bucket = crate::generator::ManifestGenerator::parse(generator)?
                .s3_job_manifest_generator
                .source_bucket_name()?;
            (format!("s3://{bucket} (manifest generator)"), read)
        }
        (None, None) => {
            return Err(Error::InvalidRequest(
                "a job needs Manifest or ManifestGenerator".into(),
            ))
        }
    };
    read?;
    stats.manifest_gets = manifest_gets(ctx, request).await;
    if request.manifest.is_none() {
        stats.listing_pages = stats.tasks.div_ceil(1_000).max(1);
    }
    Ok((source, stats))
}

/// GETs of the manifest: one for a CSV, the manifest.json and every data file of an inventory.
async fn manifest_gets(ctx: &Context, request: &CreateJobRequest) -> u64 {
    let Some(manifest) = &request.manifest else {
        return 0;
    };
    if manifest.spec.format != crate::job::INVENTORY_CSV_FORMAT {
        return 1;
    }
    match crate::manifest::fetch_inventory_manifest(&ctx.s3, manifest).await {
        Ok(inventory) => 1 + inventory.files.len() as u64,
        Err(_) => 1,
    }
}

fn count_task(
    stats: &mut ManifestStats,
    task: &Task,
    operation: &JobOperation,
    copy: &CopySettings,
    show: usize,
) {
    stats.tasks += 1;
    if matches!(operation, JobOperation::S3PutObjectCopy(_)) && !copy.copies_whole(task.size) {
        stats.copy_heads += 1;
    }
    if stats.first_tasks.len() < show {
        stats.first_tasks.push(DryRunTask {
            bucket: task.bucket.clone(),
            key: task.key.clone(),
            version_id: task.version_id.clone(),
            size: task.size,
        });
    }
    let Some(size) = task.size else {
        return;
    };
    stats.tasks_with_size += 1;
    stats.bytes += size;
    if let JobOperation::S3PutObjectCopy(_) | JobOperation::S3UpdateObjectEncryption(_) = operation
    {
        if size > crate::operation::MAX_SINGLE_COPY_BYTES {
            stats.tasks_over_5_gb += 1;
        }
        if copy.needs_multipart(size) {
            stats.multipart_copies += 1;
            stats.copy_parts += part_ranges(size, copy.part_size).len() as u64;
        }
    }
}

fn count_batch(stats: &mut ManifestStats, batch: &TaskBatch) {
    stats.batches += 1;
    stats.batch_chunks += (batch.body_len() as u64)
        .div_ceil(pricing::SQS_BILLED_CHUNK_BYTES)
        .max(1);
}

/// The estimate from what the manifest holds: pure, so that the model is tested without AWS.
pub fn estimate(
    request: &CreateJobRequest,
    manifest: String,
    stats: ManifestStats,
    stack: StackShape,
    prices: &Prices,
) -> DryRunJobResponse {
    let operation = &request.operation;
    let task_requests = task_requests(operation, &stats);
    let own = bookkeeping_requests(&stats);
    let mut notes = Vec::new();
    let task_cost = task_requests_cost(operation, &stats, &task_requests, prices, &mut notes);
    let seconds_per_task = task_seconds(operation, &stats);
    let lambda = lambda_cost(&stats, stack, seconds_per_task, prices);
    let sqs = count_of(&own, "SQS") as f64 * prices.sqs_request;
    let dynamodb = count_of_request(&own, "DynamoDB", "write request units") as f64
        * prices.dynamodb_write_unit
        + count_of_request(&own, "DynamoDB", "read request units") as f64
            * prices.dynamodb_read_unit;
    let s3_own = (count_of_request(&own, "S3", "PutObject") as f64) * prices.s3_put_request
        + (count_of_request(&own, "S3", "GetObject") + count_of_request(&own, "S3", "HeadObject"))
            as f64
            * prices.s3_get_request
        + count_of_request(&own, "S3", "ListObjectsV2") as f64 * prices.s3_put_request;
    let batchops = vec![
        line("Requests of the tasks", task_cost),
        line("Lambda (requests and GB-seconds, arm64)", lambda),
        line("SQS", sqs),
        line("DynamoDB (on-demand)", dynamodb),
        line("S3 requests of batchops itself", s3_own),
    ];
    let s3bo = s3_batch_operations_cost(operation, &stats, task_cost, prices, &mut notes);
    notes.extend(operation_notes(operation, &stats));
    let duration = duration(request, &stats, stack, seconds_per_task);
    let mut requests = task_requests;
    requests.extend(own);
    DryRunJobResponse {
        operation: operation.name().to_string(),
        manifest,
        total_number_of_tasks: stats.tasks,
        tasks_with_size: stats.tasks_with_size,
        total_bytes: stats.bytes,
        first_tasks: stats.first_tasks.clone(),
        batches: stats.batches,
        requests,
        cost: CostEstimate {
            region: prices.region.to_string(),
            batchops_total_usd: total(&batchops),
            batchops,
            s3_batch_operations_total_usd: s3bo.as_deref().map(total),
            s3_batch_operations: s3bo,
        },
        duration,
        notes,
    }
}

fn line(item: &str, usd: f64) -> CostLine {
    CostLine {
        item: item.to_string(),
        usd,
    }
}

fn total(lines: &[CostLine]) -> f64 {
    lines.iter().map(|l| l.usd).sum()
}

fn request(service: &str, request: &str, count: u64, of: RequestsOf) -> RequestCount {
    RequestCount {
        service: service.to_string(),
        request: request.to_string(),
        count,
        of,
    }
}

fn count_of(requests: &[RequestCount], service: &str) -> u64 {
    requests
        .iter()
        .filter(|r| r.service == service)
        .map(|r| r.count)
        .sum()
}

fn count_of_request(requests: &[RequestCount], service: &str, name: &str) -> u64 {
    requests
        .iter()
        .filter(|r| r.service == service && r.request == name)
        .map(|r| r.count)
        .sum()
}

/// The requests of the tasks themselves, on the user's objects or function.
fn task_requests(operation: &JobOperation, stats: &ManifestStats) -> Vec<RequestCount> {
    let n = stats.tasks;
    let one = |service: &str, name: &str| vec![request(service, name, n, RequestsOf::Tasks)];
    match operation {
        JobOperation::LambdaInvoke(_) => one("Lambda", "Invoke"),
        JobOperation::S3PutObjectCopy(_) | JobOperation::S3UpdateObjectEncryption(_) => {
            let single = n - stats.multipart_copies;
            // The encryption update reads every object's class and metadata first.
            let heads = match operation {
                JobOperation::S3UpdateObjectEncryption(_) => n,
                _ => stats.copy_heads,
            };
            let mut requests = Vec::new();
            if heads > 0 {
                requests.push(request("S3", "HeadObject", heads, RequestsOf::Tasks));
            }
            requests.push(request("S3", "CopyObject", single, RequestsOf::Tasks));
            if stats.multipart_copies > 0 {
                let m = stats.multipart_copies;
                requests.push(request("S3", "CreateMultipartUpload", m, RequestsOf::Tasks));
                requests.push(request(
                    "S3",
                    "UploadPartCopy",
                    stats.copy_parts,
                    RequestsOf::Tasks,
                ));
                requests.push(request(
                    "S3",
                    "CompleteMultipartUpload",
                    m,
                    RequestsOf::Tasks,
                ));
            }
            requests
        }
        JobOperation::S3PutObjectAcl(_) => one("S3", "PutObjectAcl"),
        JobOperation::S3PutObjectTagging(_) => one("S3", "PutObjectTagging"),
        JobOperation::S3DeleteObjectTagging(_) => one("S3", "DeleteObjectTagging"),
        JobOperation::S3InitiateRestoreObject(_) => one("S3", "RestoreObject"),
        JobOperation::S3PutObjectLegalHold(_) => one("S3", "PutObjectLegalHold"),
        JobOperation::S3PutObjectRetention(_) => one("S3", "PutObjectRetention"),
        JobOperation::S3ComputeObjectChecksum(_) => one("S3", "GetObject"),
        JobOperation::S3DeleteObject(_) => one("S3", "DeleteObject"),
    }
}

/// batchops' own requests: per batch and per job.
fn bookkeeping_requests(stats: &ManifestStats) -> Vec<RequestCount> {
    let b = stats.batches;
    let own =
        |service: &str, name: &str, count: u64| request(service, name, count, RequestsOf::Batchops);
    let messages = b + SQS_MESSAGES_PER_JOB;
    let chunks = stats.batch_chunks + SQS_MESSAGES_PER_JOB;
    let mut requests = vec![
        own("SQS", "SendMessage (64 KiB chunks)", chunks),
        own("SQS", "ReceiveMessage (64 KiB chunks)", chunks),
        own("SQS", "DeleteMessage", messages),
        own(
            "DynamoDB",
            "write request units",
            b * DYNAMODB_WRITES_PER_BATCH + DYNAMODB_WRITES_PER_JOB,
        ),
        own(
            "DynamoDB",
            "read request units",
            b * DYNAMODB_READS_PER_BATCH + DYNAMODB_READS_PER_JOB,
        ),
        // A result part per batch, written by the executor and read by the reporter.
        own("S3", "PutObject", b + S3_BOOKKEEPING_PUTS_PER_JOB),
        own("S3", "GetObject", b + stats.manifest_gets),
        own("S3", "HeadObject", u64::from(stats.manifest_gets > 0)),
    ];
    if stats.listing_pages > 0 {
        requests.push(own("S3", "ListObjectsV2", stats.listing_pages));
    }
    requests.push(own(
        "Lambda",
        "Invoke (executor, planner, reporter)",
        invocations(stats),
    ));
    requests
}

/// Invocations of this stack's functions: one executor invocation per batch, the planner and
/// the reporter at least once each.
fn invocations(stats: &ManifestStats) -> u64 {
    stats.batches + 2
}

/// What the tasks' own requests cost (the same on S3 Batch Operations).
fn task_requests_cost(
    operation: &JobOperation,
    stats: &ManifestStats,
    requests: &[RequestCount],
    prices: &Prices,
    notes: &mut Vec<String>,
) -> f64 {
    let gb = stats.bytes as f64 / 1e9;
    requests
        .iter()
        .map(|r| {
            let n = r.count as f64;
            match (r.service.as_str(), r.request.as_str()) {
                ("Lambda", _) => {
                    notes.push(
                        "LambdaInvoke: your function's own duration is billed to it on either service and is not in these figures".into(),
                    );
                    n * prices.lambda_request
                }
                ("S3", "HeadObject" | "GetObject") => n * prices.s3_get_request,
                // DELETE requests are free.
                ("S3", "DeleteObjectTagging" | "DeleteObject") => 0.0,
                ("S3", "RestoreObject") => restore_cost(operation, n, gb, prices, notes),
                _ => n * prices.s3_put_request,
            }
        })
        .sum()
}

fn restore_cost(
    operation: &JobOperation,
    n: f64,
    gb: f64,
    prices: &Prices,
    notes: &mut Vec<String>,
) -> f64 {
    let tier = match operation {
        JobOperation::S3InitiateRestoreObject(op) => op.glacier_job_tier,
        _ => None,
    };
    notes.push("RestoreObject priced as S3 Glacier Flexible Retrieval (Deep Archive costs more); retrieval per GB counts only the tasks whose size the manifest gives".into());
    match tier.unwrap_or(GlacierJobTier::Bulk) {
        GlacierJobTier::Bulk => n * prices.restore_bulk_request + gb * prices.restore_bulk_gb,
        GlacierJobTier::Standard => {
            n * prices.restore_standard_request + gb * prices.restore_standard_gb
        }
    }
}

/// Lambda's bill for this stack's functions: requests, and GB-seconds of the executor (its
/// tasks, `executor_concurrency` at a time, plus its own time per batch), planner and reporter.
fn lambda_cost(
    stats: &ManifestStats,
    stack: StackShape,
    seconds_per_task: f64,
    prices: &Prices,
) -> f64 {
    let executor_seconds = stats.tasks as f64 * seconds_per_task
        / stack.executor_concurrency as f64
        + stats.batches as f64 * EXECUTOR_SECONDS_PER_BATCH;
    let planner_seconds = PLANNER_START_SECONDS + stats.tasks as f64 / PLANNER_TASKS_PER_SECOND;
    let reporter_seconds =
        REPORTER_START_SECONDS + stats.batches as f64 * REPORTER_SECONDS_PER_BATCH;
    let gb_seconds = executor_seconds * gb(pricing::EXECUTOR_MEMORY_MB)
        + planner_seconds * gb(pricing::PLANNER_MEMORY_MB)
        + reporter_seconds * gb(pricing::REPORTER_MEMORY_MB);
    invocations(stats) as f64 * prices.lambda_request + gb_seconds * prices.lambda_arm64_gb_second
}

fn gb(mb: u64) -> f64 {
    mb as f64 / 1024.0
}

/// S3 Batch Operations' bill for the same job: its fees and the same requests of the tasks
/// (without the HeadObject batchops sends before some copies). None for an operation it does
/// not have.
fn s3_batch_operations_cost(
    operation: &JobOperation,
    stats: &ManifestStats,
    task_cost: f64,
    prices: &Prices,
    notes: &mut Vec<String>,
) -> Option<Vec<CostLine>> {
    let mut requests = task_cost;
    match operation {
        JobOperation::S3DeleteObject(_) => {
            notes.push("S3 Batch Operations has no delete operation: no figure to compare".into());
            return None;
        }
        JobOperation::S3PutObjectCopy(_) => {
            requests -= stats.copy_heads as f64 * prices.s3_get_request;
        }
        // S3 changes the encryption with one UpdateObjectEncryption request per object.
        JobOperation::S3UpdateObjectEncryption(_) => {
            notes.push("S3's UpdateObjectEncryption requests are priced here as PUT requests, one per object; KMS requests are billed by KMS on either service and are not in these figures".into());
            requests = stats.tasks as f64 * prices.s3_put_request;
        }
        JobOperation::S3ComputeObjectChecksum(_) => notes.push(
            "S3 Batch Operations charges its compute checksum operation per GB processed besides its fees; that charge is not in this table".into(),
        ),
        _ => {}
    }
    Some(vec![
        line("Job fee", prices.batch_operations_job),
        line(
            "Task fee ($1.00 per million)",
            stats.tasks as f64 * prices.batch_operations_task,
        ),
        line("Requests of the tasks", requests),
    ])
}

fn operation_notes(operation: &JobOperation, stats: &ManifestStats) -> Vec<String> {
    let mut notes = Vec::new();
    if stats.tasks_with_size < stats.tasks {
        notes.push(format!(
            "sizes known for {} of {} tasks (a CSV manifest gives none): bytes, multipart copies and per-GB charges count only those",
            thousands(stats.tasks_with_size),
            thousands(stats.tasks)
        ));
    }
    if matches!(operation, JobOperation::S3PutObjectCopy(_)) && stats.tasks_over_5_gb > 0 {
        notes.push(format!(
            "{} objects are over 5 GB: batchops copies them in parts; S3 Batch Operations' copy fails them",
            stats.tasks_over_5_gb
        ));
    }
    notes
}

/// Seconds one task takes on average: its requests one after another, and the bytes copied or
/// read.
fn task_seconds(operation: &JobOperation, stats: &ManifestStats) -> f64 {
    let n = stats.tasks.max(1) as f64;
    let bytes_per_task = stats.bytes as f64 / stats.tasks_with_size.max(1) as f64;
    match operation {
        JobOperation::LambdaInvoke(_) => LAMBDA_INVOKE_SECONDS,
        JobOperation::S3PutObjectCopy(_) | JobOperation::S3UpdateObjectEncryption(_) => {
            let heads = match operation {
                JobOperation::S3UpdateObjectEncryption(_) => n,
                _ => stats.copy_heads as f64,
            };
            let extra_requests = (heads + 2.0 * stats.multipart_copies as f64) / n;
            S3_REQUEST_SECONDS * (1.0 + extra_requests) + bytes_per_task / COPY_BYTES_PER_SECOND
        }
        JobOperation::S3ComputeObjectChecksum(_) => {
            S3_REQUEST_SECONDS + bytes_per_task / READ_BYTES_PER_SECOND
        }
        _ => S3_REQUEST_SECONDS,
    }
}

/// How long the job would run: its tasks at the rate that the rate limit or the tasks in flight
/// allow, plus the job's fixed time.
fn duration(
    request: &CreateJobRequest,
    stats: &ManifestStats,
    stack: StackShape,
    seconds_per_task: f64,
) -> DurationEstimate {
    let in_flight = stack.executor_invocations * stack.executor_concurrency;
    let by_concurrency = in_flight as f64 / seconds_per_task.max(1e-6);
    let limit = request
        .batch_ops
        .as_ref()
        .and_then(|b| b.max_tasks_per_second);
    let (rate, limited_by) = match limit {
        Some(limit) if f64::from(limit) < by_concurrency => (f64::from(limit), "MaxTasksPerSecond"),
        _ => (by_concurrency, "Concurrency"),
    };
    DurationEstimate {
        seconds: JOB_OVERHEAD_SECONDS + stats.tasks as f64 / rate,
        tasks_per_second: rate,
        limited_by: limited_by.to_string(),
        tasks_in_flight: in_flight,
        max_tasks_per_second: limit,
    }
}

#[cfg(test)]
mod tests;
