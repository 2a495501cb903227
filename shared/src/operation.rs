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

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::DateTime as SmithyDateTime;
use aws_sdk_s3::types::{
    ChecksumAlgorithm as S3ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
    GlacierJobParameters, MetadataDirective as S3MetadataDirective, ObjectCannedAcl,
    ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode as S3ObjectLockMode,
    ObjectLockRetention, ObjectLockRetentionMode, RequestPayer, RestoreRequest,
    ServerSideEncryption, StorageClass as S3StorageClass, Tag, Tagging, TaggingDirective, Tier,
};
use futures::stream::{self, StreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use crate::invocation::{self, InvocationRequest, InvocationTask, Judgement, SchemaVersion};
use crate::job::{
    ComputeChecksumAlgorithm, ComputeObjectChecksumOperation, CopyObjectOperation,
    DeleteObjectOperation, GrantPermission, GranteeType, InitiateRestoreObjectOperation, Job,
    JobOperation, LambdaInvokeOperation, MetadataDirective, ObjectMetadata,
    PutObjectTaggingOperation, S3Grant, S3Tag, SetObjectAclOperation, SetObjectLegalHoldOperation,
    SetObjectRetentionOperation, SseAlgorithm, UpdateObjectEncryptionOperation,
};
use crate::manifest::Task;
use crate::report::{TaskOutcome, TaskStatus};
use crate::Context;

/// The report message of a successful S3 operation, as S3 Batch Operations writes it.
pub const SUCCESS_MESSAGE: &str = "Successful";

/// No retry waits longer than this, however many attempts came before.
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Error codes that mean "try again later", whatever the HTTP status says.
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceException",
    "ResourceConflictException",
    "ResourceNotReadyException",
    "EC2ThrottledException",
];

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
    let prepared = prepare(&job.request.operation);
    let concurrency = ctx.settings.executor_concurrency.max(1);
    let slots = ctx.task_slots.get(concurrency);
    let left = tasks.len();
    let runs: Vec<(TaskRun, Duration)> = stream::iter(tasks.iter().enumerate())
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
                (run, started.elapsed())
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    // Outcomes up to the first task that must go on in another invocation; the rest run again
    // with it (an unfinished task is rare: a multipart copy longer than the executor's time).
    runs.into_iter()
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

fn prepare(operation: &JobOperation) -> Prepared<'_> {
    match operation {
        JobOperation::S3PutObjectTagging(op) => match tagging(op) {
            Ok(tagging) => Prepared::PutTagging(tagging),
            Err(reason) => Prepared::Invalid(reason),
        },
        JobOperation::S3DeleteObjectTagging(_) => Prepared::DeleteTagging,
        JobOperation::S3PutObjectCopy(op) => match CopyPlan::new(op, CopySettings::from_env()) {
            Ok(plan) => Prepared::Copy(Box::new(plan)),
            Err(reason) => Prepared::Invalid(reason),
        },
        JobOperation::S3UpdateObjectEncryption(op) => {
            match EncryptionPlan::new(op, CopySettings::from_env()) {
                Ok(plan) => Prepared::UpdateEncryption(plan),
                Err(reason) => Prepared::Invalid(reason),
            }
        }
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

async fn put_tagging(ctx: &Context, tagging: &Tagging, task: &Task) -> TaskOutcome {
    with_s3_retries(ctx, task, |s3| async move {
        s3.put_object_tagging()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .tagging(tagging.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await
}

async fn delete_tagging(ctx: &Context, task: &Task) -> TaskOutcome {
    with_s3_retries(ctx, task, |s3| async move {
        s3.delete_object_tagging()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await
}

/// Calls S3 for `task` until it succeeds, fails for good, or attempts run out.
async fn with_s3_retries<F, Fut>(ctx: &Context, task: &Task, call: F) -> TaskOutcome
where
    F: FnMut(aws_sdk_s3::Client) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    match s3_call(ctx, &task.bucket, call).await {
        Ok(()) => s3_success_outcome(task),
        Err(failure) => failure.into_outcome(task),
    }
}

/// One S3 request on `bucket` with the executor's retries of throttling and server errors: its
/// answer, or the failure that ended the attempts. `call` gets the client for the bucket's
/// Region; when S3 answers that the bucket is in another Region (a 301 or 400 naming it in
/// `x-amz-bucket-region`), the Region is learned and the request sent there at once.
async fn s3_call<T, F, Fut>(ctx: &Context, bucket: &str, mut call: F) -> Result<T, Failure>
where
    F: FnMut(aws_sdk_s3::Client) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let max_attempts = ctx.settings.lambda_max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let answer = call(ctx.s3_for_bucket(bucket)).await;
        if answer.as_ref().is_err_and(is_throttle) {
            ctx.throttles
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match answer {
            Ok(answer) => return Ok(answer),
            Err(Failure {
                bucket_region: Some(region),
                ..
            }) if ctx.s3_regions.learn(bucket, &region) => {
                tracing::info!(bucket, region = %region, "the bucket is in another Region; sending there");
            }
            Err(failure) if failure.retryable && attempt < max_attempts => {
                tracing::debug!(code = %failure.error_code, attempt, "S3 call will be retried");
                pause(ctx, attempt).await;
                attempt += 1;
            }
            Err(failure) => return Err(failure),
        }
    }
}

/// Whether a failure is the service asking to slow down (S3's SlowDown and 503, Lambda's 429,
/// any throttling code): what the `Throttles` metric counts.
pub fn is_throttle(failure: &Failure) -> bool {
    matches!(failure.http_status, Some(429 | 503))
        || matches!(
            failure.error_code.as_str(),
            "SlowDown" | "Throttling" | "ThrottlingException" | "TooManyRequestsException"
        )
}

fn s3_success_outcome(task: &Task) -> TaskOutcome {
    TaskOutcome {
        task: task.clone(),
        status: TaskStatus::Succeeded,
        error_code: None,
        http_status: Some(200),
        result_message: SUCCESS_MESSAGE.into(),
    }
}

/// One Lambda task: invoke until a final answer, retrying `TemporaryFailure` and throttling.
///
/// How each answer of Invoke becomes a report row (TaskStatus, ErrorCode, HTTPStatusCode,
/// ResultMessage). The S3 user guide ("Invoke AWS Lambda function", response and result codes, and
/// "Examples: S3 Batch Operations completion reports") documents the first five rows; the rest are
/// batchops' choice where the guide is silent, made the way an AWS user reads a report:
/// - `Succeeded`: succeeded, 200, -, the resultString.
/// - `PermanentFailure`: failed, 200, PermanentFailure, the resultString.
/// - `TemporaryFailure`: retried with backoff; on the last attempt failed, 200, TemporaryFailure.
/// - Function error, `X-Amz-Function-Error: Handled` or `Unhandled` on a 200 (an exception, a crash
///   such as `Runtime.ExitError`, a timeout `Sandbox.Timedout`): failed, 200, PermanentFailure,
///   `Lambda returned function error: <Lambda's error document>`, not retried — the guide's
///   report example shows exactly this row for timed-out functions. `cargo lambda watch`'s HTTP
///   500 with an error document is read the same way.
/// - A payload that is not the contract (not JSON, a missing task with no treatMissingKeysAs,
///   another invocation's id): failed, 200, PermanentFailure, the reason; not retried, since the
///   same function would answer the same. The guide names non-JSON "Invalid JSON returned in
///   Lambda payload".
/// - (silent) Invoke refused by Lambda with throttling (429 `TooManyRequestsException`) or a
///   server error (5xx, e.g. `ServiceException`), a timeout or a broken connection: retried with
///   backoff; when attempts run out, failed with Lambda's error code and HTTP status, and a
///   message that says it was throttled — a task is never lost, and never counted before then.
/// - (silent) Any other refusal (403 `AccessDeniedException`, 404 `ResourceNotFoundException`,
///   400 `InvalidRequestContentException`, ...): failed at once with Lambda's code and status.
async fn invoke(
    ctx: &Context,
    op: &LambdaInvokeOperation,
    schema: SchemaVersion,
    job_id: &str,
    task_id: &str,
    task: &Task,
) -> TaskOutcome {
    let max_attempts = ctx.settings.lambda_max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let pending = match invoke_once(ctx, op, schema, job_id, task_id, task).await {
            Attempt::Final(outcome) => return outcome,
            Attempt::Again(pending) => pending,
        };
        if matches!(&pending, Pending::Throttled(failure) if is_throttle(failure)) {
            ctx.throttles
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if attempt >= max_attempts {
            return match pending {
                Pending::Temporary(result_string) => {
                    invocation::temporary_failure_outcome(task, attempt, &result_string)
                }
                Pending::Throttled(mut failure) => {
                    failure.message = exhausted_invoke_message(&failure, attempt);
                    failure.into_outcome(task)
                }
            };
        }
        tracing::debug!(task_id, attempt, "Lambda task will be retried");
        pause(ctx, attempt).await;
        attempt += 1;
    }
}

enum Attempt {
    Final(TaskOutcome),
    Again(Pending),
}

/// Why another attempt is worth making.
enum Pending {
    /// The function answered `TemporaryFailure` (with its result string).
    Temporary(String),
    /// The Invoke API itself throttled, failed on the server side or timed out.
    Throttled(Failure),
}

async fn invoke_once(
    ctx: &Context,
    op: &LambdaInvokeOperation,
    schema: SchemaVersion,
    job_id: &str,
    task_id: &str,
    task: &Task,
) -> Attempt {
    // A fresh invocationId per Invoke: each attempt is a separate invocation of the function.
    let request = InvocationRequest::new(
        schema,
        uuid::Uuid::new_v4().to_string(),
        job_id,
        op.user_arguments.as_ref(),
        vec![InvocationTask::new(schema, task_id, task)],
    );
    let payload = match serde_json::to_vec(&request) {
        Ok(payload) => payload,
        Err(e) => {
            return Attempt::Final(invalid_operation_outcome(
                task,
                &format!("cannot encode the invocation request: {e}"),
            ))
        }
    };
    let (function_name, qualifier) = split_function_arn(&op.function_arn);
    let result = ctx
        .lambda
        .invoke()
        .function_name(function_name)
        .set_qualifier(qualifier.map(str::to_string))
        .payload(Blob::new(payload))
        .send()
        .await;
    match result {
        Ok(output) => {
            let body = output.payload().map(|b| b.as_ref()).unwrap_or_default();
            if output.function_error().is_some() {
                return Attempt::Final(invocation::function_error_outcome(task, body));
            }
            match invocation::judge(task, &request, body) {
                Judgement::Final(outcome) => Attempt::Final(outcome),
                Judgement::Retry(result_string) => {
                    Attempt::Again(Pending::Temporary(result_string))
                }
            }
        }
        Err(err) => match classify_invoke_error(&err) {
            InvokeFailure::FunctionError(body) => {
                Attempt::Final(invocation::function_error_outcome(task, &body))
            }
            InvokeFailure::Api(failure) if failure.retryable => {
                Attempt::Again(Pending::Throttled(failure))
            }
            InvokeFailure::Api(failure) => Attempt::Final(failure.into_outcome(task)),
        },
    }
}

/// Splits a `FunctionArn` into the function (full ARN, partial ARN or name) and its version or
/// alias, which Invoke then carries as its `Qualifier` (`?Qualifier=` on the wire), as S3 Control
/// accepts them: `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`,
/// `ACCOUNT:function:NAME[:QUALIFIER]`, `function:NAME[:QUALIFIER]` or `NAME[:QUALIFIER]`.
pub fn split_function_arn(function_arn: &str) -> (&str, Option<&str>) {
    let arn = function_arn.trim();
    let parts: Vec<&str> = arn.split(':').collect();
    // The name follows the `function` segment; without one, the name comes first.
    let name_index = parts
        .iter()
        .position(|p| *p == "function")
        .map_or(0, |i| i + 1);
    if parts.len() == name_index + 2 && !parts[name_index + 1].is_empty() {
        let cut = arn.len() - parts[name_index + 1].len() - 1;
        (&arn[..cut], Some(parts[name_index + 1]))
    } else {
        (arn, None)
    }
}

/// The report message of an Invoke that Lambda itself refused on every attempt: says plainly
/// when it was throttling, so that the fix (reserved concurrency, a smaller job priority) is clear.
pub fn exhausted_invoke_message(failure: &Failure, attempts: u32) -> String {
    let plural = if attempts == 1 { "" } else { "s" };
    let throttled = failure.http_status == Some(429)
        || matches!(
            failure.error_code.as_str(),
            "TooManyRequestsException" | "Throttling" | "ThrottlingException"
        );
    let what = if throttled {
        "Lambda throttled the invocation"
    } else {
        "Lambda Invoke failed"
    };
    format!(
        "{what} ({}) on all {attempts} attempt{plural}: {}",
        failure.error_code, failure.message
    )
}

async fn pause(ctx: &Context, failed_attempt: u32) {
    let delay = backoff_delay(
        ctx.settings.lambda_retry_base,
        failed_attempt,
        fastrand::f64(),
    );
    tokio::time::sleep(delay).await;
}

/// The wait after the `failed_attempt`-th attempt (1-based): `base` doubled per attempt, capped at
/// [`MAX_BACKOFF`], then scaled into its upper half by `jitter` (0.0..1.0) so that tasks throttled
/// together do not come back together.
pub fn backoff_delay(base: Duration, failed_attempt: u32, jitter: f64) -> Duration {
    let doublings = failed_attempt.saturating_sub(1).min(20);
    let exponential = base.saturating_mul(1u32 << doublings).min(MAX_BACKOFF);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    exponential.mul_f64(0.5 + 0.5 * jitter)
}

/// A failed AWS call, as the completion report shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// Worth another attempt (throttling, server error, timeout, broken connection).
    pub retryable: bool,
    /// The service's error code (`NoSuchKey`, `SlowDown`, ...).
    pub error_code: String,
    /// The HTTP status of the service's answer; `None` when no answer came.
    pub http_status: Option<u16>,
    /// The service's error message.
    pub message: String,
    /// The bucket's Region, when S3 refused the request for being sent to another one.
    pub bucket_region: Option<String>,
}

impl Failure {
    pub fn into_outcome(self, task: &Task) -> TaskOutcome {
        TaskOutcome {
            task: task.clone(),
            status: TaskStatus::Failed,
            error_code: Some(self.error_code),
            http_status: self.http_status,
            result_message: self.message,
        }
    }
}

/// How an S3 call failed: S3's code, status and message, and whether to retry.
pub fn classify_s3_error<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    Failure {
        bucket_region: redirect_region(err),
        ..classify_parts(
            err.code(),
            err.message(),
            status,
            transport_problem(err),
            || describe(err),
        )
    }
}

/// The Region S3 names in `x-amz-bucket-region` when it refuses a request sent to the wrong
/// Region: a 301 (`PermanentRedirect`, or a HEAD's bare 301) or a 400 whose signature or location
/// was for another Region (`AuthorizationHeaderMalformed`, `IllegalLocationConstraintException`).
fn redirect_region<E>(err: &SdkError<E, HttpResponse>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    let raw = err.raw_response()?;
    let status = raw.status().as_u16();
    let wrong_region = status == 301
        || (status == 400
            && matches!(
                err.code(),
                Some("AuthorizationHeaderMalformed" | "IllegalLocationConstraintException")
            ));
    if !wrong_region {
        return None;
    }
    raw.headers().get("x-amz-bucket-region").map(str::to_string)
}

/// A short account of an error that came without a message: the answer's status and the start of
/// its body when there was an answer, the error chain otherwise.
fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
{
    const MAX_BODY_CHARS: usize = 300;
    let Some(raw) = err.raw_response() else {
        return DisplayErrorContext(err).to_string();
    };
    let status = raw.status().as_u16();
    let body = raw
        .body()
        .bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let body = body.trim();
    if body.is_empty() {
        return format!("HTTP {status} with no error message");
    }
    let mut snippet: String = body.chars().take(MAX_BODY_CHARS).collect();
    if body.chars().nth(MAX_BODY_CHARS).is_some() {
        snippet.push_str("...");
    }
    format!("HTTP {status}: {snippet}")
}

/// How a Lambda Invoke call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeFailure {
    /// The function ran and failed. Real Lambda flags this on a 200 answer (`FunctionError`); a local
    /// endpoint such as `cargo lambda watch` answers HTTP 500 with Lambda's error document
    /// (`{"errorType":..,"errorMessage":..}`) instead, which lands here. Holds that document.
    FunctionError(Vec<u8>),
    /// The Invoke API itself failed.
    Api(Failure),
}

pub fn classify_invoke_error<E>(err: &SdkError<E, HttpResponse>) -> InvokeFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let SdkError::ServiceError(service) = err {
        let raw = service.raw();
        let body = raw.body().bytes().unwrap_or_default();
        if err.code().is_none() && is_function_error_document(raw.status().as_u16(), body) {
            return InvokeFailure::FunctionError(body.to_vec());
        }
    }
    InvokeFailure::Api(classify_s3_error(err))
}

/// A 500 whose body is Lambda's own error document, not an AWS service error.
pub fn is_function_error_document(status: u16, body: &[u8]) -> bool {
    if status != 500 {
        return false;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(doc)) => {
            doc.contains_key("errorMessage") || doc.contains_key("errorType")
        }
        _ => false,
    }
}

/// A failure that happened before or instead of an answer from the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Timeout,
    Connection,
    /// The request could not be built: retrying will not help.
    Construction,
}

fn transport_problem<E, R>(err: &SdkError<E, R>) -> Option<Transport> {
    match err {
        SdkError::TimeoutError(_) => Some(Transport::Timeout),
        SdkError::DispatchFailure(d) if d.is_timeout() => Some(Transport::Timeout),
        SdkError::DispatchFailure(d) if d.is_user() => Some(Transport::Construction),
        SdkError::DispatchFailure(_) => Some(Transport::Connection),
        SdkError::ConstructionFailure(_) => Some(Transport::Construction),
        _ => None,
    }
}

/// The rules, on plain values: retry on throttling codes, 429, 5xx, timeouts and broken connections.
pub fn classify_parts(
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    transport: Option<Transport>,
    detail: impl FnOnce() -> String,
) -> Failure {
    let retryable = match transport {
        Some(Transport::Timeout | Transport::Connection) => true,
        Some(Transport::Construction) => false,
        None => {
            code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
                || status.is_some_and(|s| s == 429 || s >= 500)
        }
    };
    let error_code = match (code, transport, status) {
        (Some(code), _, _) => code.to_string(),
        (None, Some(Transport::Timeout), _) => "RequestTimeout".into(),
        (None, Some(Transport::Connection), _) => "ConnectionError".into(),
        (None, Some(Transport::Construction), _) => "InvalidRequest".into(),
        (None, None, Some(status)) => code_for_status(status).into(),
        (None, None, None) => "UnknownError".into(),
    };
    let message = match message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => detail(),
    };
    Failure {
        retryable,
        error_code,
        http_status: status,
        message,
        bucket_region: None,
    }
}

/// S3's usual code for a status, for answers without an error body (e.g. HEAD requests).
fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "InvalidRequest",
        403 => "AccessDenied",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalError",
        501 => "NotImplemented",
        503 => "ServiceUnavailable",
        _ => "UnknownError",
    }
}

// ---------------------------------------------------------------------------------------------
// S3PutObjectCopy

/// Largest object CopyObject copies in one request (5 GiB); larger ones need a multipart copy.
pub const MAX_SINGLE_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// S3's bounds on a part: at least 5 MiB (except the last), at most 5 GiB, at most 10,000 parts.
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
pub const MAX_PARTS: u64 = 10_000;

pub const ENV_MULTIPART_COPY_THRESHOLD: &str = "BATCHOPS_MULTIPART_COPY_THRESHOLD";
pub const ENV_COPY_PART_SIZE: &str = "BATCHOPS_COPY_PART_SIZE";
pub const ENV_COPY_PART_CONCURRENCY: &str = "BATCHOPS_COPY_PART_CONCURRENCY";

/// How objects are copied: above `multipart_threshold` bytes with UploadPartCopy, in parts of
/// `part_size` bytes (grown when the object would need more than 10,000 parts), at most
/// `part_concurrency` parts at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySettings {
    pub multipart_threshold: u64,
    pub part_size: u64,
    pub part_concurrency: usize,
}

impl Default for CopySettings {
    fn default() -> Self {
        CopySettings {
            multipart_threshold: MAX_SINGLE_COPY_BYTES,
            part_size: 512 * 1024 * 1024,
            part_concurrency: 8,
        }
    }
}

impl CopySettings {
    /// The defaults, overridden by `BATCHOPS_MULTIPART_COPY_THRESHOLD`, `BATCHOPS_COPY_PART_SIZE`
    /// and `BATCHOPS_COPY_PART_CONCURRENCY` (bytes, bytes, parts). The threshold never exceeds
    /// what CopyObject can do; the part size stays within S3's bounds.
    pub fn from_env() -> Self {
        let defaults = CopySettings::default();
        let read = |name: &str, default: u64| -> u64 {
            match std::env::var(name).ok().map(|v| v.trim().parse::<u64>()) {
                Some(Ok(value)) => value,
                Some(Err(_)) => {
                    tracing::warn!(variable = name, "not a number of bytes; using the default");
                    default
                }
                None => default,
            }
        };
        CopySettings {
            multipart_threshold: read(ENV_MULTIPART_COPY_THRESHOLD, defaults.multipart_threshold)
                .min(MAX_SINGLE_COPY_BYTES),
            part_size: read(ENV_COPY_PART_SIZE, defaults.part_size)
                .clamp(MIN_PART_BYTES, MAX_SINGLE_COPY_BYTES),
            part_concurrency: read(ENV_COPY_PART_CONCURRENCY, defaults.part_concurrency as u64)
                .clamp(1, 64) as usize,
        }
    }

    pub fn needs_multipart(&self, size: u64) -> bool {
        size > self.multipart_threshold
    }
}

/// The byte ranges (inclusive) of the parts of an object of `size` bytes: `part_size` each, grown
/// so that there are at most 10,000.
pub fn part_ranges(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    if size == 0 {
        return Vec::new();
    }
    let part_size = part_size.max(size.div_ceil(MAX_PARTS)).max(1);
    (0..size.div_ceil(part_size))
        .map(|i| {
            let start = i * part_size;
            (start, (start + part_size).min(size) - 1)
        })
        .collect()
}

/// `CopySource` of a task: bucket and URL-encoded key, with the version when the manifest names one.
pub fn copy_source(task: &Task) -> String {
    let key = utf8_percent_encode(&task.key, COPY_SOURCE_ESCAPES);
    match &task.version_id {
        Some(version) => format!(
            "{}/{key}?versionId={}",
            task.bucket,
            utf8_percent_encode(version, COPY_SOURCE_ESCAPES)
        ),
        None => format!("{}/{key}", task.bucket),
    }
}

/// Everything but unreserved characters and the path separator is escaped in a copy source.
const COPY_SOURCE_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');
/// Tag sets travel as a URL query string (`x-amz-tagging`).
const QUERY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn tagging_header(tags: &[S3Tag]) -> String {
    tags.iter()
        .map(|t| {
            format!(
                "{}={}",
                utf8_percent_encode(&t.key, QUERY_ESCAPES),
                utf8_percent_encode(&t.value, QUERY_ESCAPES)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The `x-amz-grant-*` header value for one permission: `id="..", uri=".."`.
pub fn grant_header(grants: &[S3Grant], permission: GrantPermission) -> Option<String> {
    let grantees: Vec<String> = grants
        .iter()
        .filter(|g| g.permission == permission)
        .map(|g| {
            let kind = match g.grantee.type_identifier {
                GranteeType::Id => "id",
                GranteeType::EmailAddress => "emailAddress",
                GranteeType::Uri => "uri",
            };
            format!("{kind}=\"{}\"", g.grantee.identifier)
        })
        .collect();
    (!grantees.is_empty()).then(|| grantees.join(", "))
}

fn smithy_time(date: &chrono::DateTime<chrono::Utc>) -> SmithyDateTime {
    SmithyDateTime::from_millis(date.timestamp_millis())
}

/// Metadata of a new object (REPLACE: from the job; multipart COPY: from the source).
#[derive(Debug, Clone, Default, PartialEq)]
struct Metadata {
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    content_type: Option<String>,
    expires: Option<SmithyDateTime>,
    user: Option<HashMap<String, String>>,
}

impl Metadata {
    fn from_job(meta: &ObjectMetadata) -> Self {
        Metadata {
            cache_control: meta.cache_control.clone(),
            content_disposition: meta.content_disposition.clone(),
            content_encoding: meta.content_encoding.clone(),
            content_language: meta.content_language.clone(),
            content_type: meta.content_type.clone(),
            expires: meta.http_expires_date.as_ref().map(smithy_time),
            user: meta
                .user_metadata
                .as_ref()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        }
    }

    fn from_source(head: &HeadObjectOutput) -> Self {
        Metadata {
            cache_control: head.cache_control().map(String::from),
            content_disposition: head.content_disposition().map(String::from),
            content_encoding: head.content_encoding().map(String::from),
            content_language: head.content_language().map(String::from),
            content_type: head.content_type().map(String::from),
            #[allow(deprecated)]
            expires: head.expires().copied(),
            user: head.metadata().cloned(),
        }
    }
}

/// The destination settings of every copy of a job, built once per batch.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    target_bucket: String,
    key_prefix: String,
    replace_metadata: Option<Metadata>,
    /// `Some` when the job sets the copies' tags (REPLACE); `None` copies the source's tags.
    tagging: Option<String>,
    acl: Option<ObjectCannedAcl>,
    grant_full_control: Option<String>,
    grant_read: Option<String>,
    grant_read_acp: Option<String>,
    grant_write_acp: Option<String>,
    storage_class: Option<S3StorageClass>,
    server_side_encryption: Option<ServerSideEncryption>,
    ssekms_key_id: Option<String>,
    bucket_key_enabled: Option<bool>,
    checksum_algorithm: Option<S3ChecksumAlgorithm>,
    request_payer: Option<RequestPayer>,
    website_redirect_location: Option<String>,
    if_modified_since: Option<SmithyDateTime>,
    if_unmodified_since: Option<SmithyDateTime>,
    object_lock_mode: Option<S3ObjectLockMode>,
    object_lock_retain_until_date: Option<SmithyDateTime>,
    object_lock_legal_hold_status: Option<ObjectLockLegalHoldStatus>,
    settings: CopySettings,
}

impl CopyPlan {
    pub fn new(op: &CopyObjectOperation, settings: CopySettings) -> Result<Self, String> {
        let target_bucket = op
            .target_bucket()
            .ok_or("Operation.S3PutObjectCopy.TargetResource is required")?;
        let grants = op.access_control_grants.as_deref().unwrap_or_default();
        if grants
            .iter()
            .any(|g| g.permission == GrantPermission::Write)
        {
            return Err("AccessControlGrants: WRITE cannot be granted on an object; use FULL_CONTROL, READ, READ_ACP or WRITE_ACP".into());
        }
        let replace = op.effective_metadata_directive() == MetadataDirective::Replace;
        let new_meta = op.new_object_metadata.as_ref();
        let sse = match (
            new_meta.and_then(|m| m.sse_algorithm),
            &op.sse_aws_kms_key_id,
        ) {
            (_, Some(_)) | (Some(SseAlgorithm::Kms), None) => Some(ServerSideEncryption::AwsKms),
            (Some(SseAlgorithm::Aes256), None) => Some(ServerSideEncryption::Aes256),
            (None, None) => None,
        };
        Ok(CopyPlan {
            target_bucket,
            key_prefix: op.target_key_prefix.clone().unwrap_or_default(),
            replace_metadata: replace.then(|| new_meta.map(Metadata::from_job).unwrap_or_default()),
            tagging: op.new_object_tagging.as_deref().map(tagging_header),
            acl: op
                .canned_access_control_list
                .map(|acl| ObjectCannedAcl::from(acl.as_str())),
            grant_full_control: grant_header(grants, GrantPermission::FullControl),
            grant_read: grant_header(grants, GrantPermission::Read),
            grant_read_acp: grant_header(grants, GrantPermission::ReadAcp),
            grant_write_acp: grant_header(grants, GrantPermission::WriteAcp),
            storage_class: op.storage_class.map(|c| S3StorageClass::from(c.as_str())),
            server_side_encryption: sse,
            ssekms_key_id: op.sse_aws_kms_key_id.clone(),
            bucket_key_enabled: op.bucket_key_enabled,
            checksum_algorithm: op
                .checksum_algorithm
                .map(|c| S3ChecksumAlgorithm::from(c.as_str())),
            request_payer: op
                .requester_pays
                .unwrap_or(false)
                .then_some(RequestPayer::Requester),
            website_redirect_location: op.redirect_location.clone(),
            if_modified_since: op.modified_since_constraint.as_ref().map(smithy_time),
            if_unmodified_since: op.un_modified_since_constraint.as_ref().map(smithy_time),
            object_lock_mode: op
                .object_lock_mode
                .map(|m| S3ObjectLockMode::from(m.as_str())),
            object_lock_retain_until_date: op
                .object_lock_retain_until_date
                .as_ref()
                .map(smithy_time),
            object_lock_legal_hold_status: op
                .object_lock_legal_hold_status
                .map(|s| ObjectLockLegalHoldStatus::from(s.as_str())),
            settings,
        })
    }

    fn target_key(&self, task: &Task) -> String {
        format!("{}{}", self.key_prefix, task.key)
    }
}

/// Sets what CopyObject and CreateMultipartUpload share (same setter names on both builders).
macro_rules! destination {
    ($builder:expr, $plan:expr, $metadata:expr, $tagging:expr) => {{
        let plan: &CopyPlan = $plan;
        let metadata: Option<&Metadata> = $metadata;
        let mut b = $builder
            .bucket(&plan.target_bucket)
            .set_acl(plan.acl.clone())
            .set_grant_full_control(plan.grant_full_control.clone())
            .set_grant_read(plan.grant_read.clone())
            .set_grant_read_acp(plan.grant_read_acp.clone())
            .set_grant_write_acp(plan.grant_write_acp.clone())
            .set_storage_class(plan.storage_class.clone())
            .set_server_side_encryption(plan.server_side_encryption.clone())
            .set_ssekms_key_id(plan.ssekms_key_id.clone())
            .set_bucket_key_enabled(plan.bucket_key_enabled)
            .set_checksum_algorithm(plan.checksum_algorithm.clone())
            .set_request_payer(plan.request_payer.clone())
            .set_website_redirect_location(plan.website_redirect_location.clone())
            .set_object_lock_mode(plan.object_lock_mode.clone())
            .set_object_lock_retain_until_date(plan.object_lock_retain_until_date)
            .set_object_lock_legal_hold_status(plan.object_lock_legal_hold_status.clone())
            .set_tagging($tagging);
        if let Some(m) = metadata {
            b = b
                .set_cache_control(m.cache_control.clone())
                .set_content_disposition(m.content_disposition.clone())
                .set_content_encoding(m.content_encoding.clone())
                .set_content_language(m.content_language.clone())
                .set_content_type(m.content_type.clone())
                .set_expires(m.expires)
                .set_metadata(m.user.clone());
        }
        b
    }};
}

/// One copy task: HEAD the source for its size, then CopyObject or a multipart copy.
async fn copy_object(ctx: &Context, plan: &CopyPlan, task: &Task, at: &TaskAt<'_>) -> TaskRun {
    let head = match head_source(ctx, task, plan.request_payer.clone()).await {
        Ok(head) => head,
        Err(failure) => return TaskRun::Done(failure.into_outcome(task)),
    };
    if let Some(failure) = archived_source_failure(&head) {
        return TaskRun::Done(failure.into_outcome(task));
    }
    copy_with_head(ctx, plan, task, &head, at).await
}

/// The source object's HEAD (its version when the task names one).
async fn head_source(
    ctx: &Context,
    task: &Task,
    request_payer: Option<RequestPayer>,
) -> Result<HeadObjectOutput, Failure> {
    s3_call(ctx, &task.bucket, |s3| {
        let request_payer = request_payer.clone();
        async move {
            s3.head_object()
                .bucket(&task.bucket)
                .key(&task.key)
                .set_version_id(task.version_id.clone())
                .set_request_payer(request_payer)
                .send()
                .await
                .map_err(|e| source_head_failure(&classify_s3_error(&e), task))
        }
    })
    .await
}

/// Copies a source whose HEAD is known: CopyObject, or a multipart copy above the threshold.
async fn copy_with_head(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
    head: &HeadObjectOutput,
    at: &TaskAt<'_>,
) -> TaskRun {
    let size = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
    let result = if plan.settings.needs_multipart(size) {
        match multipart_copy(ctx, plan, task, head, size, at).await {
            Ok(Copied::Whole) => Ok(()),
            Ok(Copied::Partly) => return TaskRun::Unfinished,
            Err(failure) => Err(failure),
        }
    } else {
        single_copy(ctx, plan, task).await
    };
    TaskRun::Done(match result {
        Ok(()) => s3_success_outcome(task),
        Err(failure) => failure.into_outcome(task),
    })
}

// ---------------------------------------------------------------------------------------------
// S3UpdateObjectEncryption: S3 re-encrypts an object's data key in place; batchops copies the
// object onto itself with the new SSE-KMS settings, keeping its storage class, metadata, tags and
// website redirect. The copy is a new object: its ETag and Last-Modified change, and in a
// versioned bucket it is a new version (the older ones keep their encryption).

/// What every task of an S3UpdateObjectEncryption job shares.
#[derive(Debug, Clone)]
pub struct EncryptionPlan {
    kms_key_arn: String,
    bucket_key_enabled: Option<bool>,
    settings: CopySettings,
}

impl EncryptionPlan {
    pub fn new(
        op: &UpdateObjectEncryptionOperation,
        settings: CopySettings,
    ) -> Result<Self, String> {
        let kms = op
            .sse_kms()
            .ok_or("Operation.S3UpdateObjectEncryption needs ObjectEncryption.SSEKMS")?;
        Ok(EncryptionPlan {
            kms_key_arn: kms.kms_key_arn.clone(),
            bucket_key_enabled: kms.bucket_key_enabled,
            settings,
        })
    }

    /// The copy of one object onto itself: the new encryption, everything else as the object
    /// has it (a copy left to its defaults would move the object to STANDARD and drop its
    /// website redirect).
    fn in_place(&self, task: &Task, head: &HeadObjectOutput) -> CopyPlan {
        CopyPlan {
            target_bucket: task.bucket.clone(),
            key_prefix: String::new(),
            replace_metadata: None,
            tagging: None,
            acl: None,
            grant_full_control: None,
            grant_read: None,
            grant_read_acp: None,
            grant_write_acp: None,
            storage_class: head.storage_class().cloned(),
            server_side_encryption: Some(ServerSideEncryption::AwsKms),
            ssekms_key_id: Some(self.kms_key_arn.clone()),
            bucket_key_enabled: self.bucket_key_enabled,
            checksum_algorithm: None,
            request_payer: None,
            website_redirect_location: head.website_redirect_location().map(String::from),
            if_modified_since: None,
            if_unmodified_since: None,
            object_lock_mode: None,
            object_lock_retain_until_date: None,
            object_lock_legal_hold_status: None,
            settings: self.settings,
        }
    }
}

/// One S3UpdateObjectEncryption task: the object's HEAD, S3's refusals, then the copy onto itself.
async fn update_encryption(
    ctx: &Context,
    plan: &EncryptionPlan,
    task: &Task,
    at: &TaskAt<'_>,
) -> TaskRun {
    let head = match head_source(ctx, task, None).await {
        Ok(head) => head,
        Err(failure) => return TaskRun::Done(failure.into_outcome(task)),
    };
    if let Some(failure) = unsupported_encryption(&head).or_else(|| archived_source_failure(&head))
    {
        return TaskRun::Done(failure.into_outcome(task));
    }
    if let Some(version) = &task.version_id {
        if let Some(failure) = not_current_version(ctx, task, version).await {
            return TaskRun::Done(failure.into_outcome(task));
        }
    }
    copy_with_head(ctx, &plan.in_place(task, &head), task, &head, at).await
}

/// S3's UpdateObjectEncryption takes objects encrypted with SSE-S3 or SSE-KMS only.
fn unsupported_encryption(head: &HeadObjectOutput) -> Option<Failure> {
    let what = if head.sse_customer_algorithm().is_some() {
        "encrypted with a customer-provided key (SSE-C)"
    } else {
        match head.server_side_encryption() {
            Some(ServerSideEncryption::Aes256 | ServerSideEncryption::AwsKms) => return None,
            Some(ServerSideEncryption::AwsKmsDsse) => "encrypted with DSSE-KMS",
            _ => "not encrypted",
        }
    };
    Some(Failure {
        retryable: false,
        error_code: "InvalidRequest".into(),
        http_status: Some(400),
        message: format!(
            "the object is {what}: UpdateObjectEncryption changes only objects encrypted with SSE-S3 or SSE-KMS (S3PutObjectCopy can encrypt others)"
        ),
        bucket_region: None,
    })
}

/// A copy of a version onto its key becomes the current version: only the current version may be
/// re-encrypted that way.
async fn not_current_version(ctx: &Context, task: &Task, version: &str) -> Option<Failure> {
    let current = s3_call(ctx, &task.bucket, |s3| async move {
        s3.head_object()
            .bucket(&task.bucket)
            .key(&task.key)
            .send()
            .await
            .map_err(|e| classify_s3_error(&e))
    })
    .await;
    let current = match current {
        Ok(head) => head.version_id().unwrap_or("null").to_string(),
        // The key's current version is a delete marker, or it cannot be read: say why.
        Err(failure) if failure.http_status == Some(404) => "a delete marker".to_string(),
        Err(failure) => return Some(failure),
    };
    (current != version).then(|| Failure {
        retryable: false,
        error_code: "InvalidRequest".into(),
        http_status: Some(400),
        message: format!(
            "version {version} is not the object's current version (that is {current}): batchops updates encryption by copying the object onto itself, which would make this version current again"
        ),
        bucket_region: None,
    })
}

/// S3 copies an object in S3 Glacier Flexible Retrieval or Deep Archive only once it is restored;
/// it refuses with `InvalidObjectState` (403). Checked up front so that a large copy does not
/// start a multipart upload that cannot finish.
fn archived_source_failure(head: &HeadObjectOutput) -> Option<Failure> {
    let archived = matches!(
        head.storage_class(),
        Some(S3StorageClass::Glacier | S3StorageClass::DeepArchive)
    );
    let restored = head
        .restore()
        .is_some_and(|r| r.contains("ongoing-request=\"false\""));
    (archived && !restored).then(|| Failure {
        retryable: false,
        error_code: "InvalidObjectState".into(),
        http_status: Some(403),
        message: "The operation is not valid for the object's storage class".into(),
        bucket_region: None,
    })
}

/// A HEAD answer has no body: name a missing source the way CopyObject would (NoSuchKey).
fn source_head_failure(failure: &Failure, task: &Task) -> Failure {
    let mut failure = failure.clone();
    if failure.http_status == Some(404) && failure.error_code == "NotFound" {
        if task.version_id.is_some() {
            failure.error_code = "NoSuchVersion".into();
            failure.message = "The specified version does not exist.".into();
        } else {
            failure.error_code = "NoSuchKey".into();
            failure.message = "The specified key does not exist.".into();
        }
    } else if failure.http_status == Some(403) && failure.error_code == "AccessDenied" {
        failure.message = "Access Denied".into();
    }
    failure
}

async fn single_copy(ctx: &Context, plan: &CopyPlan, task: &Task) -> Result<(), Failure> {
    let source = copy_source(task);
    let key = plan.target_key(task);
    let (source, key) = (&source, &key);
    s3_call(ctx, &plan.target_bucket, |s3| async move {
        let request = destination!(
            s3.copy_object(),
            plan,
            plan.replace_metadata.as_ref(),
            plan.tagging.clone()
        )
        .key(key)
        .copy_source(source)
        .set_metadata_directive(
            plan.replace_metadata
                .as_ref()
                .map(|_| S3MetadataDirective::Replace),
        )
        .set_tagging_directive(plan.tagging.as_ref().map(|_| TaggingDirective::Replace))
        .set_copy_source_if_modified_since(plan.if_modified_since)
        .set_copy_source_if_unmodified_since(plan.if_unmodified_since);
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await
}

/// How far a multipart copy got in this invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copied {
    Whole,
    /// Time ran out: the upload is recorded and the next invocation copies the other parts.
    Partly,
}

/// A copy too large for CopyObject: parts copied concurrently with UploadPartCopy, each pinned to
/// the source as its HEAD saw it (`x-amz-copy-source-if-match` with its ETag; the version when
/// the task names one), so that a source overwritten mid-copy fails the task with S3's
/// `PreconditionFailed` (412) instead of completing a torn object. Any failure aborts the upload,
/// so no parts are left behind (and billed). When the executor's time runs out, the parts still
/// to copy are left to the next invocation: the upload is recorded in the job's table
/// ([`UploadRecord`]), found again by the task's batch and index, and resumed from S3's list of
/// its parts; the reporter and the sweeper abort recorded uploads of jobs that end.
async fn multipart_copy(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
    head: &HeadObjectOutput,
    size: u64,
    at: &TaskAt<'_>,
) -> Result<Copied, Failure> {
    let key = plan.target_key(task);
    let etag = head.e_tag().unwrap_or_default().to_string();
    let store = (!ctx.settings.table.is_empty()).then(|| crate::store::Store::from_context(ctx));
    let record = match &store {
        Some(store) => store
            .get_upload(at.job_id, at.batch_id, at.index)
            .await
            .map_err(store_failure)?,
        None => None,
    };
    let (upload_id, done) = match record {
        Some(record) if record.source_etag == etag => {
            let done = read_parts_list(ctx, &record.parts_key).await?;
            (record.upload_id, done)
        }
        Some(record) => {
            // The source changed since the copy began: its parts would tear the object.
            abort_upload(ctx, plan, &record.key, &record.upload_id).await;
            if let Some(store) = &store {
                store
                    .delete_upload(at.job_id, at.batch_id, at.index)
                    .await
                    .map_err(store_failure)?;
            }
            return Err(Failure {
                retryable: false,
                error_code: "PreconditionFailed".into(),
                http_status: Some(412),
                message: format!(
                    "the source changed during the copy: its ETag was {} when the copy began and is {etag} now",
                    record.source_etag
                ),
                bucket_region: None,
            });
        }
        None => (start_upload(ctx, plan, task, head, &key).await?, Vec::new()),
    };
    tracing::debug!(bucket = %plan.target_bucket, size, parts_done = done.len(), "multipart copy");
    let result = copy_parts(
        ctx, plan, task, &key, &upload_id, size, &etag, &done, at.stop_at,
    )
    .await;
    let outcome = match result {
        Ok(parts) if parts.len() == part_ranges(size, plan.settings.part_size).len() => {
            complete_upload(ctx, plan, &key, &upload_id, parts)
                .await
                .map(|()| Copied::Whole)
        }
        Ok(parts) => {
            let Some(store) = &store else {
                return Err(store_failure(crate::Error::Config(
                    "a multipart copy cannot span invocations without the job table".into(),
                )));
            };
            let parts_key = write_parts_list(ctx, at, &parts).await?;
            let record = crate::store::UploadRecord {
                bucket: plan.target_bucket.clone(),
                key: key.clone(),
                upload_id: upload_id.to_string(),
                source_etag: etag.clone(),
                parts_key,
            };
            store
                .put_upload(at.job_id, at.batch_id, at.index, &record)
                .await
                .map_err(store_failure)?;
            return Ok(Copied::Partly);
        }
        Err(failure) => Err(failure),
    };
    if outcome.is_err() {
        abort_upload(ctx, plan, &key, &upload_id).await;
    }
    if let Some(store) = &store {
        store
            .delete_upload(at.job_id, at.batch_id, at.index)
            .await
            .map_err(store_failure)?;
    }
    outcome
}

/// Aborts the multipart copies that a job (or one batch of it) left unfinished and forgets them:
/// when the job ends, or its batch is given up. Best effort per upload (a lifecycle rule on the
/// target bucket is the last resort); errors of the job table are returned.
pub async fn abort_recorded_uploads(
    ctx: &Context,
    job: &Job,
    batch_id: Option<&str>,
) -> crate::Result<usize> {
    let job_id = job.job_id.as_str();
    let store = crate::store::Store::from_context(ctx);
    let uploads = store.list_uploads(job_id, batch_id).await?;
    if uploads.is_empty() {
        return Ok(0);
    }
    // The uploads were started as the job's role; without it they are left to the bucket's
    // lifecycle rule for incomplete uploads.
    let data = match ctx.for_job(job).await {
        Ok(data) => Some(data),
        Err(err @ crate::Error::RoleNotAssumed { .. }) => {
            tracing::warn!(job_id, error = %err, "cannot abort unfinished multipart copies: the job's role cannot be assumed");
            None
        }
        Err(other) => return Err(other),
    };
    for (batch, index, record) in &uploads {
        let Some(data) = &data else {
            store.delete_upload(job_id, batch, *index).await?;
            continue;
        };
        if let Err(e) = data
            .s3
            .abort_multipart_upload()
            .bucket(&record.bucket)
            .key(&record.key)
            .upload_id(&record.upload_id)
            .send()
            .await
        {
            let failure = classify_s3_error(&e);
            if failure.error_code != "NoSuchUpload" {
                tracing::warn!(job_id, bucket = %record.bucket, code = %failure.error_code, "could not abort an unfinished multipart copy");
            }
        }
        store.delete_upload(job_id, batch, *index).await?;
        tracing::info!(job_id, batch_id = %batch, bucket = %record.bucket, "aborted an unfinished multipart copy");
    }
    Ok(uploads.len())
}

/// A failure of the job table while copying: the task is retried (not failed) by the batch's
/// redelivery.
fn store_failure(err: crate::Error) -> Failure {
    tracing::warn!(error = %err, "the progress of a multipart copy could not be read or saved");
    Failure {
        retryable: true,
        error_code: "InternalError".into(),
        http_status: Some(500),
        message: "the progress of a multipart copy could not be read or saved (the executor's logs give the cause)".into(),
        bucket_region: None,
    }
}

async fn start_upload(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
    head: &HeadObjectOutput,
    key: &str,
) -> Result<String, Failure> {
    // A multipart upload copies neither metadata nor tags: carry the source's over unless the
    // job replaces them, as CopyObject would.
    let metadata = match &plan.replace_metadata {
        Some(replace) => replace.clone(),
        None => Metadata::from_source(head),
    };
    let tagging = match &plan.tagging {
        Some(tagging) => Some(tagging.clone()),
        None => source_tagging(ctx, plan, task).await?,
    };
    let tagging = &tagging;
    let metadata = &metadata;
    let created = s3_call(ctx, &plan.target_bucket, |s3| async move {
        destination!(
            s3.create_multipart_upload(),
            plan,
            Some(metadata),
            tagging.clone()
        )
        .key(key)
        .send()
        .await
        .map_err(|e| classify_s3_error(&e))
    })
    .await?;
    Ok(created.upload_id().unwrap_or_default().to_string())
}

/// The parts copied so far, saved in the system bucket for the invocation that goes on (S3's
/// own ListParts would do, but its list can hold 10,000 parts and one call gives 1,000).
async fn write_parts_list(
    ctx: &Context,
    at: &TaskAt<'_>,
    parts: &[CompletedPart],
) -> Result<String, Failure> {
    let list: Vec<(i32, String)> = parts
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap_or_default(),
                p.e_tag().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = serde_json::to_vec(&list).unwrap_or_default();
    let key = format!(
        "staging/job-{}/uploads/{}-{:06}-{}.json",
        at.job_id,
        at.batch_id,
        at.index,
        uuid::Uuid::new_v4().simple()
    );
    ctx.write_system_object(&key, body)
        .await
        .map_err(store_failure)?;
    Ok(key)
}

async fn read_parts_list(ctx: &Context, key: &str) -> Result<Vec<CompletedPart>, Failure> {
    let bytes = ctx.read_system_object(key).await.map_err(store_failure)?;
    let list: Vec<(i32, String)> = serde_json::from_slice(&bytes)
        .map_err(|e| store_failure(crate::Error::Other(format!("parts list {key}: {e}"))))?;
    Ok(list
        .into_iter()
        .map(|(number, etag)| {
            CompletedPart::builder()
                .part_number(number)
                .e_tag(etag)
                .build()
        })
        .collect())
}

async fn source_tagging(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
) -> Result<Option<String>, Failure> {
    let output = s3_call(ctx, &task.bucket, |s3| async move {
        s3.get_object_tagging()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .set_request_payer(plan.request_payer.clone())
            .send()
            .await
            .map_err(|e| classify_s3_error(&e))
    })
    .await?;
    let tags: Vec<S3Tag> = output
        .tag_set()
        .iter()
        .map(|t| S3Tag {
            key: t.key().to_string(),
            value: t.value().to_string(),
        })
        .collect();
    Ok((!tags.is_empty()).then(|| tagging_header(&tags)))
}

/// Copies the parts not in `done`, at most `part_concurrency` at once, starting none once
/// `stop_at` has passed (but at least one, so every invocation makes progress). Returns every
/// part now in the upload, sorted; fewer than the object has when time ran out.
#[allow(clippy::too_many_arguments)]
async fn copy_parts(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
    key: &str,
    upload_id: &str,
    size: u64,
    etag: &str,
    done: &[CompletedPart],
    stop_at: Option<std::time::Instant>,
) -> Result<Vec<CompletedPart>, Failure> {
    let source = copy_source(task);
    let ranges = part_ranges(size, plan.settings.part_size);
    let missing = ranges.into_iter().enumerate().filter(|(index, _)| {
        let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
        !done.iter().any(|p| p.part_number() == Some(number))
    });
    let parts = stream::iter(missing.enumerate())
        .take_while(|(started, _)| {
            std::future::ready(*started == 0 || !crate::deadline::is_past(stop_at))
        })
        .map(|(_, (index, (first, last)))| {
            let source = &source;
            async move {
                let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
                let output = s3_call(ctx, &plan.target_bucket, |s3| async move {
                    s3.upload_part_copy()
                        .bucket(&plan.target_bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .copy_source(source)
                        .copy_source_range(format!("bytes={first}-{last}"))
                        .copy_source_if_match(etag)
                        .set_copy_source_if_modified_since(plan.if_modified_since)
                        .set_copy_source_if_unmodified_since(plan.if_unmodified_since)
                        .set_request_payer(plan.request_payer.clone())
                        .send()
                        .await
                        .map_err(|e| classify_s3_error(&e))
                })
                .await?;
                let result = output.copy_part_result();
                Ok::<_, Failure>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(result.and_then(|r| r.e_tag()).map(String::from))
                        .set_checksum_crc32(
                            result.and_then(|r| r.checksum_crc32()).map(String::from),
                        )
                        .set_checksum_crc32_c(
                            result.and_then(|r| r.checksum_crc32_c()).map(String::from),
                        )
                        .set_checksum_crc64_nvme(
                            result
                                .and_then(|r| r.checksum_crc64_nvme())
                                .map(String::from),
                        )
                        .set_checksum_sha1(result.and_then(|r| r.checksum_sha1()).map(String::from))
                        .set_checksum_sha256(
                            result.and_then(|r| r.checksum_sha256()).map(String::from),
                        )
                        .build(),
                )
            }
        })
        .buffer_unordered(plan.settings.part_concurrency.max(1));
    let mut parts = collect_until_error(parts).await?;
    parts.extend(done.iter().cloned());
    parts.sort_by_key(|p| p.part_number());
    Ok(parts)
}

/// Collects results until the first error, which ends the stream: parts still in flight are
/// dropped, since the upload is aborted anyway.
async fn collect_until_error<T>(
    stream: impl futures::Stream<Item = Result<T, Failure>>,
) -> Result<Vec<T>, Failure> {
    let mut stream = std::pin::pin!(stream);
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item?);
    }
    Ok(items)
}

async fn complete_upload(
    ctx: &Context,
    plan: &CopyPlan,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
) -> Result<(), Failure> {
    let upload = CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build();
    let upload = &upload;
    s3_call(ctx, &plan.target_bucket, |s3| async move {
        s3.complete_multipart_upload()
            .bucket(&plan.target_bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(upload.clone())
            .set_request_payer(plan.request_payer.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await
}

/// Best effort: a failed abort is logged (a lifecycle rule for incomplete uploads cleans up).
async fn abort_upload(ctx: &Context, plan: &CopyPlan, key: &str, upload_id: &str) {
    let aborted = s3_call(ctx, &plan.target_bucket, |s3| async move {
        s3.abort_multipart_upload()
            .bucket(&plan.target_bucket)
            .key(key)
            .upload_id(upload_id)
            .set_request_payer(plan.request_payer.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await;
    if let Err(failure) = aborted {
        tracing::warn!(
            bucket = %plan.target_bucket,
            code = %failure.error_code,
            "could not abort a failed multipart copy; its parts stay until a lifecycle rule removes them"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// S3PutObjectAcl, S3PutObjectLegalHold, S3PutObjectRetention, S3InitiateRestoreObject,
// S3DeleteObject

/// The ACL a job sets: a canned ACL, or the grants of a full policy. The grants travel as
/// `x-amz-grant-*` headers, which replace the object's ACL exactly as a policy body does: the
/// policy's Owner cannot change an object's owner anyway (S3 only checks it), and emulators such as
/// moto honour the headers but ignore a body.
#[derive(Debug, Clone)]
pub enum AclPlan {
    Canned(ObjectCannedAcl),
    Grants {
        full_control: Option<String>,
        read: Option<String>,
        read_acp: Option<String>,
        write: Option<String>,
        write_acp: Option<String>,
    },
}

impl AclPlan {
    pub fn new(op: &SetObjectAclOperation) -> Result<Self, String> {
        let policy = op
            .access_control_policy
            .as_ref()
            .ok_or("Operation.S3PutObjectAcl.AccessControlPolicy is required")?;
        match (
            &policy.access_control_list,
            policy.canned_access_control_list,
        ) {
            (None, Some(canned)) => Ok(AclPlan::Canned(ObjectCannedAcl::from(canned.as_str()))),
            (Some(list), None) => {
                let grants = list.grants.as_deref().unwrap_or_default();
                Ok(AclPlan::Grants {
                    full_control: grant_header(grants, GrantPermission::FullControl),
                    read: grant_header(grants, GrantPermission::Read),
                    read_acp: grant_header(grants, GrantPermission::ReadAcp),
                    write: grant_header(grants, GrantPermission::Write),
                    write_acp: grant_header(grants, GrantPermission::WriteAcp),
                })
            }
            _ => Err(
                "AccessControlPolicy needs AccessControlList or CannedAccessControlList, not both"
                    .into(),
            ),
        }
    }
}

async fn put_acl(ctx: &Context, plan: &AclPlan, task: &Task) -> TaskOutcome {
    with_s3_retries(ctx, task, |s3| async move {
        let request = s3
            .put_object_acl()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone());
        let request = match plan {
            AclPlan::Canned(acl) => request.acl(acl.clone()),
            AclPlan::Grants {
                full_control,
                read,
                read_acp,
                write,
                write_acp,
            } => request
                .set_grant_full_control(full_control.clone())
                .set_grant_read(read.clone())
                .set_grant_read_acp(read_acp.clone())
                .set_grant_write(write.clone())
                .set_grant_write_acp(write_acp.clone()),
        };
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await
}

async fn put_legal_hold(
    ctx: &Context,
    op: &SetObjectLegalHoldOperation,
    task: &Task,
) -> TaskOutcome {
    let hold = ObjectLockLegalHold::builder()
        .status(ObjectLockLegalHoldStatus::from(
            op.legal_hold.status.as_str(),
        ))
        .build();
    let hold = &hold;
    with_s3_retries(ctx, task, |s3| async move {
        s3.put_object_legal_hold()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .legal_hold(hold.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await
}

async fn put_retention(
    ctx: &Context,
    op: &SetObjectRetentionOperation,
    task: &Task,
) -> TaskOutcome {
    let retention = ObjectLockRetention::builder()
        .set_mode(
            op.retention
                .mode
                .map(|m| ObjectLockRetentionMode::from(m.as_str())),
        )
        .set_retain_until_date(op.retention.retain_until_date.as_ref().map(smithy_time))
        .build();
    let retention = &retention;
    with_s3_retries(ctx, task, |s3| async move {
        s3.put_object_retention()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .retention(retention.clone())
            .set_bypass_governance_retention(op.bypass_governance_retention)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await
}

/// Starts a restore. S3 answers 202 for a new restore and 200 for an object already restored
/// (whose expiry it extends): both succeed. A restore in progress is S3's
/// `RestoreAlreadyInProgress` (409) and an object outside the archive classes its
/// `InvalidObjectState` (403): both fail with S3's code, as S3 Batch Operations reports them.
async fn restore(ctx: &Context, op: &InitiateRestoreObjectOperation, task: &Task) -> TaskOutcome {
    let request = RestoreRequest::builder()
        .set_days(op.expiration_in_days)
        .set_glacier_job_parameters(
            GlacierJobParameters::builder()
                .tier(Tier::from(op.tier().s3_tier()))
                .build()
                .ok(),
        )
        .build();
    let request = &request;
    with_s3_retries(ctx, task, |s3| async move {
        s3.restore_object()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .restore_request(request.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await
}

/// Deletes the listed version, or adds a delete marker when the manifest names no version.
async fn delete_object(ctx: &Context, op: &DeleteObjectOperation, task: &Task) -> TaskOutcome {
    with_s3_retries(ctx, task, |s3| async move {
        s3.delete_object()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .set_bypass_governance_retention(op.bypass_governance_retention)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_s3_error(&e))
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// S3ComputeObjectChecksum

/// A running full-object checksum.
pub enum Checksummer {
    Crc32(u32),
    Crc32c(u32),
    Crc64Nvme(u64),
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
}

/// Reflected CRC tables, built at compile time.
const fn crc64_table(poly: u64) -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// A reflected CRC's register only ever shifts right and XORs in the polynomial, so with a
/// 32-bit polynomial every entry of the 64-bit table fits in 32 bits: one builder serves both.
const fn crc32_table(poly: u32) -> [u32; 256] {
    let wide = crc64_table(poly as u64);
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = wide[i] as u32;
        i += 1;
    }
    table
}

static CRC32_TABLE: [u32; 256] = crc32_table(0xEDB8_8320);
static CRC32C_TABLE: [u32; 256] = crc32_table(0x82F6_3B78);
static CRC64NVME_TABLE: [u64; 256] = crc64_table(0x9A6C_9329_AC4B_C9B5);

fn crc32_update(table: &[u32; 256], mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

fn crc64_update(table: &[u64; 256], mut crc: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        crc = table[((crc ^ u64::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

impl Checksummer {
    /// `None` for algorithms batchops does not compute (refused at job creation).
    pub fn new(algorithm: ComputeChecksumAlgorithm) -> Option<Self> {
        use md5::Digest as _;
        match algorithm {
            ComputeChecksumAlgorithm::Crc32 => Some(Checksummer::Crc32(u32::MAX)),
            ComputeChecksumAlgorithm::Crc32c => Some(Checksummer::Crc32c(u32::MAX)),
            ComputeChecksumAlgorithm::Crc64nvme => Some(Checksummer::Crc64Nvme(u64::MAX)),
            ComputeChecksumAlgorithm::Md5 => Some(Checksummer::Md5(md5::Md5::new())),
            ComputeChecksumAlgorithm::Sha256 => Some(Checksummer::Sha256(sha2::Sha256::new())),
            ComputeChecksumAlgorithm::Sha1 => None,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        use md5::Digest as _;
        match self {
            Checksummer::Crc32(crc) => *crc = crc32_update(&CRC32_TABLE, *crc, bytes),
            Checksummer::Crc32c(crc) => *crc = crc32_update(&CRC32C_TABLE, *crc, bytes),
            Checksummer::Crc64Nvme(crc) => *crc = crc64_update(&CRC64NVME_TABLE, *crc, bytes),
            Checksummer::Md5(h) => h.update(bytes),
            Checksummer::Sha256(h) => h.update(bytes),
        }
    }

    /// The checksum's bytes, big-endian for CRCs, as S3's `x-amz-checksum-*` headers carry them.
    pub fn finish(self) -> Vec<u8> {
        use md5::Digest as _;
        match self {
            Checksummer::Crc32(crc) | Checksummer::Crc32c(crc) => (!crc).to_be_bytes().to_vec(),
            Checksummer::Crc64Nvme(crc) => (!crc).to_be_bytes().to_vec(),
            Checksummer::Md5(h) => h.finalize().to_vec(),
            Checksummer::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// The ResultMessage of a computed checksum: JSON with the algorithm, the type, and the value in
/// base64 (as S3's checksum headers show it) and in hex.
pub fn checksum_message(algorithm: ComputeChecksumAlgorithm, digest: &[u8]) -> String {
    use base64::Engine as _;
    serde_json::json!({
        "checksumAlgorithm": algorithm.as_str(),
        "checksumType": "FULL_OBJECT",
        "checksumBase64": base64::engine::general_purpose::STANDARD.encode(digest),
        "checksumHex": hex::encode(digest),
    })
    .to_string()
}

/// Reads the object as a stream (constant memory whatever its size) and reports its checksum.
async fn compute_checksum(
    ctx: &Context,
    op: &ComputeObjectChecksumOperation,
    task: &Task,
) -> TaskOutcome {
    let algorithm = op.algorithm();
    let result = s3_call(ctx, &task.bucket, |s3| async move {
        let Some(mut checksum) = Checksummer::new(algorithm) else {
            return Err(Failure {
                retryable: false,
                error_code: "InvalidRequest".into(),
                http_status: Some(400),
                message: format!("checksum algorithm {} is not supported", algorithm.as_str()),
                bucket_region: None,
            });
        };
        let output = s3
            .get_object()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .send()
            .await
            .map_err(|e| classify_s3_error(&e))?;
        let mut body = output.body;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => checksum.update(&chunk),
                Ok(None) => break,
                // A body cut short is worth reading again from the start.
                Err(e) => {
                    return Err(Failure {
                        retryable: true,
                        error_code: "RequestTimeout".into(),
                        http_status: None,
                        message: format!("reading the object failed midway: {e}"),
                        bucket_region: None,
                    })
                }
            }
        }
        Ok(checksum.finish())
    })
    .await;
    match result {
        Ok(digest) => TaskOutcome {
            task: task.clone(),
            status: TaskStatus::Succeeded,
            error_code: None,
            http_status: Some(200),
            result_message: checksum_message(algorithm, &digest),
        },
        Err(failure) => failure.into_outcome(task),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::put_object_tagging::PutObjectTaggingError;
    use aws_smithy_types::body::SdkBody;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body.to_string()))
    }

    #[test]
    fn function_arns_split_into_function_and_qualifier() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:resize";
        for (input, name, qualifier) in [
            (arn, arn, None),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:resize:prod",
                arn,
                Some("prod"),
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:resize:7",
                arn,
                Some("7"),
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:resize:$LATEST",
                arn,
                Some("$LATEST"),
            ),
            ("resize", "resize", None),
            ("resize:live", "resize", Some("live")),
            (
                "123456789012:function:resize",
                "123456789012:function:resize",
                None,
            ),
            (
                "123456789012:function:resize:3",
                "123456789012:function:resize",
                Some("3"),
            ),
            ("function:resize:v2", "function:resize", Some("v2")),
        ] {
            assert_eq!(split_function_arn(input), (name, qualifier), "{input}");
        }
    }

    #[test]
    fn exhausted_invokes_say_whether_lambda_throttled() {
        let throttled = Failure {
            retryable: true,
            error_code: "TooManyRequestsException".into(),
            http_status: Some(429),
            message: "Rate Exceeded.".into(),
            bucket_region: None,
        };
        assert_eq!(
            exhausted_invoke_message(&throttled, 3),
            "Lambda throttled the invocation (TooManyRequestsException) on all 3 attempts: Rate Exceeded."
        );
        let broken = Failure {
            retryable: true,
            error_code: "ServiceException".into(),
            http_status: Some(500),
            message: "internal".into(),
            bucket_region: None,
        };
        assert_eq!(
            exhausted_invoke_message(&broken, 1),
            "Lambda Invoke failed (ServiceException) on all 1 attempt: internal"
        );
    }

    fn s3_service_error(
        code: &str,
        message: &str,
        status: u16,
    ) -> SdkError<PutObjectTaggingError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(PutObjectTaggingError::generic(meta), response(status, ""))
    }

    #[test]
    fn no_such_key_is_a_final_failure_with_s3s_code_status_and_message() {
        let failure = classify_s3_error(&s3_service_error(
            "NoSuchKey",
            "The specified key does not exist.",
            404,
        ));
        assert_eq!(
            failure,
            Failure {
                retryable: false,
                error_code: "NoSuchKey".into(),
                http_status: Some(404),
                message: "The specified key does not exist.".into(),
                bucket_region: None,
            }
        );
    }

    #[test]
    fn access_denied_and_invalid_request_are_final() {
        for (code, status) in [
            ("AccessDenied", 403),
            ("InvalidRequest", 400),
            ("InvalidTag", 400),
        ] {
            let failure = classify_s3_error(&s3_service_error(code, "no", status));
            assert!(!failure.retryable, "{code}");
            assert_eq!(failure.error_code, code);
            assert_eq!(failure.http_status, Some(status));
        }
    }

    #[test]
    fn slow_down_and_server_errors_are_retried() {
        for (code, status) in [
            ("SlowDown", 503),
            ("ServiceUnavailable", 503),
            ("InternalError", 500),
            ("SomethingNew", 502),
            ("TooManyRequestsException", 429),
            ("RequestTimeout", 400),
        ] {
            let failure = classify_s3_error(&s3_service_error(code, "later", status));
            assert!(failure.retryable, "{code}");
            assert_eq!(failure.error_code, code);
            assert_eq!(failure.http_status, Some(status));
        }
    }

    #[test]
    fn a_response_without_an_error_code_is_named_after_its_status() {
        let err: SdkError<PutObjectTaggingError, HttpResponse> = SdkError::service_error(
            PutObjectTaggingError::generic(ErrorMetadata::builder().build()),
            response(503, ""),
        );
        let failure = classify_s3_error(&err);
        assert!(failure.retryable);
        assert_eq!(failure.error_code, "ServiceUnavailable");
        assert_eq!(failure.http_status, Some(503));
        assert_eq!(failure.message, "HTTP 503 with no error message");
    }

    #[test]
    fn an_unparsed_error_body_is_quoted_briefly_in_the_message() {
        let html = format!("<html>{}</html>", "x".repeat(1000));
        let err: SdkError<PutObjectTaggingError, HttpResponse> = SdkError::service_error(
            PutObjectTaggingError::generic(ErrorMetadata::builder().build()),
            response(500, &html),
        );
        let failure = classify_s3_error(&err);
        assert_eq!(failure.error_code, "InternalError");
        assert!(
            failure.message.starts_with("HTTP 500: <html>xxx"),
            "{}",
            failure.message
        );
        assert!(failure.message.ends_with("..."));
        assert!(failure.message.len() < 320, "{}", failure.message);
    }

    #[test]
    fn timeouts_and_broken_connections_are_retried_without_a_status() {
        let timeout: SdkError<PutObjectTaggingError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        let failure = classify_s3_error(&timeout);
        assert!(failure.retryable);
        assert_eq!(failure.error_code, "RequestTimeout");
        assert_eq!(failure.http_status, None);
        assert!(failure.message.contains("timed out"), "{}", failure.message);

        let failure = classify_parts(None, None, None, Some(Transport::Connection), || {
            "connection refused".into()
        });
        assert!(failure.retryable);
        assert_eq!(failure.error_code, "ConnectionError");
        assert_eq!(failure.message, "connection refused");
    }

    #[test]
    fn construction_failures_are_final() {
        let err: SdkError<PutObjectTaggingError, HttpResponse> =
            SdkError::construction_failure("bucket is required");
        let failure = classify_s3_error(&err);
        assert!(!failure.retryable);
        assert_eq!(failure.error_code, "InvalidRequest");
    }

    #[test]
    fn failures_become_report_rows() {
        let task = Task {
            bucket: "b".into(),
            key: "k".into(),
            version_id: None,
            size: None,
        };
        let outcome =
            classify_s3_error(&s3_service_error("NoSuchKey", "gone", 404)).into_outcome(&task);
        assert_eq!(outcome.status, TaskStatus::Failed);
        assert_eq!(outcome.error_code.as_deref(), Some("NoSuchKey"));
        assert_eq!(outcome.http_status, Some(404));
        assert_eq!(outcome.result_message, "gone");
        let ok = s3_success_outcome(&task);
        assert_eq!(ok.status, TaskStatus::Succeeded);
        assert_eq!(ok.http_status, Some(200));
        assert_eq!(ok.error_code, None);
        assert_eq!(ok.result_message, "Successful");
    }

    mod lambda {
        use super::*;
        use aws_sdk_lambda::operation::invoke::InvokeError;

        fn unhandled(status: u16, body: &str) -> SdkError<InvokeError, HttpResponse> {
            SdkError::service_error(
                InvokeError::generic(ErrorMetadata::builder().build()),
                response(status, body),
            )
        }

        fn service(code: &str, status: u16) -> SdkError<InvokeError, HttpResponse> {
            let meta = ErrorMetadata::builder().code(code).message("m").build();
            SdkError::service_error(InvokeError::generic(meta), response(status, "{}"))
        }

        #[test]
        fn a_500_with_lambdas_error_document_is_a_function_error() {
            // What `cargo lambda watch` answers when the handler returns an error.
            let body = r#"{"errorType":"SimulatedFunctionError","errorMessage":"boom"}"#;
            assert_eq!(
                classify_invoke_error(&unhandled(500, body)),
                InvokeFailure::FunctionError(body.as_bytes().to_vec())
            );
        }

        #[test]
        fn a_500_from_the_service_is_retried_not_a_function_error() {
            match classify_invoke_error(&service("ServiceException", 500)) {
                InvokeFailure::Api(f) => {
                    assert!(f.retryable);
                    assert_eq!(f.error_code, "ServiceException");
                    assert_eq!(f.http_status, Some(500));
                }
                other => panic!("expected an API failure, got {other:?}"),
            }
            match classify_invoke_error(&unhandled(500, "<html>oops</html>")) {
                InvokeFailure::Api(f) => assert!(f.retryable),
                other => panic!("expected an API failure, got {other:?}"),
            }
        }

        #[test]
        fn throttling_is_retried() {
            for (code, status) in [
                ("TooManyRequestsException", 429),
                ("ResourceConflictException", 409),
            ] {
                match classify_invoke_error(&service(code, status)) {
                    InvokeFailure::Api(f) => {
                        assert!(f.retryable, "{code}");
                        assert_eq!(f.error_code, code);
                        assert_eq!(f.http_status, Some(status));
                    }
                    other => panic!("expected an API failure, got {other:?}"),
                }
            }
            let timeout: SdkError<InvokeError, HttpResponse> = SdkError::timeout_error("slow");
            assert!(
                matches!(classify_invoke_error(&timeout), InvokeFailure::Api(f) if f.retryable)
            );
        }

        #[test]
        fn a_missing_function_is_final() {
            match classify_invoke_error(&service("ResourceNotFoundException", 404)) {
                InvokeFailure::Api(f) => {
                    assert!(!f.retryable);
                    assert_eq!(f.error_code, "ResourceNotFoundException");
                    assert_eq!(f.http_status, Some(404));
                }
                other => panic!("expected an API failure, got {other:?}"),
            }
            // cargo lambda's answer for a function it does not serve.
            let body = r#"{"detail":"that function doesn't exist","title":"Missing function"}"#;
            match classify_invoke_error(&unhandled(404, body)) {
                InvokeFailure::Api(f) => {
                    assert!(!f.retryable);
                    assert_eq!(f.error_code, "NotFound");
                    assert_eq!(f.http_status, Some(404));
                }
                other => panic!("expected an API failure, got {other:?}"),
            }
        }

        #[test]
        fn function_error_documents_are_recognised_only_on_500() {
            assert!(is_function_error_document(500, br#"{"errorMessage":"x"}"#));
            assert!(is_function_error_document(500, br#"{"errorType":"x"}"#));
            assert!(!is_function_error_document(502, br#"{"errorMessage":"x"}"#));
            assert!(!is_function_error_document(
                500,
                br#"{"Type":"Service","message":"x"}"#
            ));
            assert!(!is_function_error_document(500, b"not json"));
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered_into_the_upper_half() {
        let base = Duration::from_millis(200);
        assert_eq!(backoff_delay(base, 1, 1.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(base, 1, 0.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(base, 2, 1.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(base, 4, 1.0), Duration::from_millis(1600));
        assert_eq!(backoff_delay(base, 40, 1.0), MAX_BACKOFF);
        assert_eq!(backoff_delay(base, u32::MAX, 0.0), MAX_BACKOFF / 2);
        assert_eq!(backoff_delay(base, 0, 1.0), base);
        assert_eq!(backoff_delay(base, 1, f64::NAN), Duration::from_millis(100));
        for i in 0..100 {
            let d = backoff_delay(base, 3, i as f64 / 100.0);
            assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(800));
        }
    }

    mod operations {
        use super::*;
        use crate::job::{S3Grantee, SetObjectAclOperation};

        fn task(key: &str, version: Option<&str>) -> Task {
            Task {
                bucket: "src".into(),
                key: key.into(),
                version_id: version.map(String::from),
                size: None,
            }
        }

        #[test]
        fn parts_cover_the_object_in_order_and_never_exceed_ten_thousand() {
            let mib = 1024 * 1024;
            assert_eq!(
                part_ranges(12 * mib, 5 * mib),
                vec![
                    (0, 5 * mib - 1),
                    (5 * mib, 10 * mib - 1),
                    (10 * mib, 12 * mib - 1)
                ]
            );
            assert_eq!(part_ranges(5 * mib, 5 * mib), vec![(0, 5 * mib - 1)]);
            assert!(part_ranges(0, 5 * mib).is_empty());
            // 5 TB in 5 MiB parts would be a million parts: the part size grows instead.
            let size = 5 * 1024 * 1024 * mib;
            let parts = part_ranges(size, 5 * mib);
            assert!(parts.len() as u64 <= MAX_PARTS, "{}", parts.len());
            assert_eq!(parts.first().map(|p| p.0), Some(0));
            assert_eq!(parts.last().map(|p| p.1), Some(size - 1));
            assert!(parts.windows(2).all(|w| w[1].0 == w[0].1 + 1));
        }

        #[test]
        fn multipart_starts_above_the_threshold_which_defaults_to_s3s_copy_limit() {
            let settings = CopySettings::default();
            assert!(!settings.needs_multipart(MAX_SINGLE_COPY_BYTES));
            assert!(settings.needs_multipart(MAX_SINGLE_COPY_BYTES + 1));
        }

        #[test]
        fn copy_sources_are_url_encoded_and_keep_the_version() {
            assert_eq!(
                copy_source(&task("a b/c+d.txt", None)),
                "src/a%20b/c%2Bd.txt"
            );
            assert_eq!(
                copy_source(&task("k", Some("v1+x"))),
                "src/k?versionId=v1%2Bx"
            );
        }

        #[test]
        fn tags_and_grants_become_s3_headers() {
            let tags = vec![
                S3Tag {
                    key: "a b".into(),
                    value: "x&y".into(),
                },
                S3Tag {
                    key: "c".into(),
                    value: "".into(),
                },
            ];
            assert_eq!(tagging_header(&tags), "a%20b=x%26y&c=");
            let grant = |kind, id: &str, permission| S3Grant {
                grantee: S3Grantee {
                    type_identifier: kind,
                    identifier: id.into(),
                    display_name: None,
                },
                permission,
            };
            let grants = vec![
                grant(GranteeType::Id, "abc", GrantPermission::Read),
                grant(
                    GranteeType::Uri,
                    "http://acs/AllUsers",
                    GrantPermission::Read,
                ),
                grant(
                    GranteeType::EmailAddress,
                    "a@b.c",
                    GrantPermission::FullControl,
                ),
            ];
            assert_eq!(
                grant_header(&grants, GrantPermission::Read).as_deref(),
                Some(r#"id="abc", uri="http://acs/AllUsers""#)
            );
            assert_eq!(
                grant_header(&grants, GrantPermission::FullControl).as_deref(),
                Some(r#"emailAddress="a@b.c""#)
            );
            assert_eq!(grant_header(&grants, GrantPermission::WriteAcp), None);
        }

        #[test]
        fn a_copy_plan_refuses_write_grants_and_sets_replace_only_when_asked() {
            let op: CopyObjectOperation = serde_json::from_value(serde_json::json!({
                "TargetResource": "arn:aws:s3:::dst",
                "AccessControlGrants": [{"Grantee": {"TypeIdentifier": "id", "Identifier": "x"}, "Permission": "WRITE"}]
            }))
            .unwrap();
            assert!(CopyPlan::new(&op, CopySettings::default())
                .unwrap_err()
                .contains("WRITE"));
            let op: CopyObjectOperation = serde_json::from_value(serde_json::json!({
                "TargetResource": "arn:aws:s3:::dst", "TargetKeyPrefix": "p/"
            }))
            .unwrap();
            let plan = CopyPlan::new(&op, CopySettings::default()).unwrap();
            assert_eq!(plan.target_bucket, "dst");
            assert_eq!(plan.target_key(&task("k", None)), "p/k");
            assert!(plan.replace_metadata.is_none());
            assert!(plan.tagging.is_none());
            let op: CopyObjectOperation = serde_json::from_value(serde_json::json!({
                "TargetResource": "arn:aws:s3:::dst",
                "NewObjectMetadata": {"ContentType": "text/plain", "SSEAlgorithm": "KMS"},
                "RequesterPays": true
            }))
            .unwrap();
            let plan = CopyPlan::new(&op, CopySettings::default()).unwrap();
            assert_eq!(
                plan.replace_metadata
                    .as_ref()
                    .and_then(|m| m.content_type.as_deref()),
                Some("text/plain")
            );
            assert_eq!(
                plan.server_side_encryption,
                Some(ServerSideEncryption::AwsKms)
            );
            assert_eq!(plan.request_payer, Some(RequestPayer::Requester));
        }

        #[test]
        fn a_missing_source_is_named_as_copy_object_names_it() {
            let head_404 = classify_parts(None, None, Some(404), None, || "HTTP 404".into());
            let failure = source_head_failure(&head_404, &task("k", None));
            assert_eq!(failure.error_code, "NoSuchKey");
            assert_eq!(failure.http_status, Some(404));
            assert_eq!(failure.message, "The specified key does not exist.");
            let failure = source_head_failure(&head_404, &task("k", Some("v")));
            assert_eq!(failure.error_code, "NoSuchVersion");
            let head_403 = classify_parts(None, None, Some(403), None, || "HTTP 403".into());
            let failure = source_head_failure(&head_403, &task("k", None));
            assert_eq!(
                (failure.error_code.as_str(), failure.http_status),
                ("AccessDenied", Some(403))
            );
        }

        #[test]
        fn archived_sources_fail_with_invalid_object_state_until_restored() {
            let head = |class: S3StorageClass, restore: Option<&str>| {
                HeadObjectOutput::builder()
                    .storage_class(class)
                    .set_restore(restore.map(String::from))
                    .build()
            };
            let failure = archived_source_failure(&head(S3StorageClass::Glacier, None)).unwrap();
            assert_eq!(failure.error_code, "InvalidObjectState");
            assert_eq!(failure.http_status, Some(403));
            assert!(!failure.retryable);
            assert!(archived_source_failure(&head(
                S3StorageClass::DeepArchive,
                Some(r#"ongoing-request="true""#)
            ))
            .is_some());
            assert!(archived_source_failure(&head(
                S3StorageClass::Glacier,
                Some(r#"ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT""#)
            ))
            .is_none());
            assert!(archived_source_failure(&head(S3StorageClass::StandardIa, None)).is_none());
        }

        #[test]
        fn acl_policies_become_grant_headers() {
            let op: SetObjectAclOperation = serde_json::from_value(serde_json::json!({
                "AccessControlPolicy": {"AccessControlList": {
                    "Owner": {"ID": "owner"},
                    "Grants": [{"Grantee": {"TypeIdentifier": "id", "Identifier": "owner"}, "Permission": "FULL_CONTROL"}]
                }}
            }))
            .unwrap();
            match AclPlan::new(&op).unwrap() {
                AclPlan::Grants {
                    full_control, read, ..
                } => {
                    assert_eq!(full_control.as_deref(), Some(r#"id="owner""#));
                    assert_eq!(read, None);
                }
                other => panic!("expected grants, got {other:?}"),
            }
            let op: SetObjectAclOperation = serde_json::from_value(serde_json::json!({
                "AccessControlPolicy": {"CannedAccessControlList": "bucket-owner-full-control"}
            }))
            .unwrap();
            assert!(matches!(
                AclPlan::new(&op).unwrap(),
                AclPlan::Canned(ObjectCannedAcl::BucketOwnerFullControl)
            ));
        }

        #[test]
        fn checksums_match_the_standard_check_values() {
            let check = |algorithm| {
                let mut sum = Checksummer::new(algorithm).unwrap();
                // Fed in two pieces: a stream arrives in chunks.
                sum.update(b"1234");
                sum.update(b"56789");
                hex::encode(sum.finish())
            };
            assert_eq!(check(ComputeChecksumAlgorithm::Crc32), "cbf43926");
            assert_eq!(check(ComputeChecksumAlgorithm::Crc32c), "e3069283");
            assert_eq!(
                check(ComputeChecksumAlgorithm::Crc64nvme),
                "ae8b14860a799888"
            );
            assert_eq!(
                check(ComputeChecksumAlgorithm::Md5),
                "25f9e794323b453885f5181f1b624d0b"
            );
            assert_eq!(
                check(ComputeChecksumAlgorithm::Sha256),
                "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
            );
            assert!(Checksummer::new(ComputeChecksumAlgorithm::Sha1).is_none());
            let message: serde_json::Value = serde_json::from_str(&checksum_message(
                ComputeChecksumAlgorithm::Crc32,
                &[0xcb, 0xf4, 0x39, 0x26],
            ))
            .unwrap();
            assert_eq!(message["checksumBase64"], "y/Q5Jg==");
            assert_eq!(message["checksumType"], "FULL_OBJECT");
        }
    }
}
