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
use aws_sdk_s3::types::{Tag, Tagging};
use futures::stream::{self, StreamExt};
use std::future::Future;
use std::time::Duration;

use crate::invocation::{self, InvocationRequest, InvocationTask, Judgement, SchemaVersion};
use crate::job::{Job, JobOperation, LambdaInvokeOperation, PutObjectTaggingOperation};
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

/// Runs the job's operation on every task, at most `ctx.settings.executor_concurrency` at once,
/// and returns one outcome per task in the order of `tasks`. Never fails as a whole: every error
/// becomes a failed outcome with S3's error code, HTTP status and message.
pub async fn run_tasks(
    ctx: &Context,
    job: &Job,
    batch_id: &str,
    tasks: &[Task],
) -> Vec<TaskOutcome> {
    let prepared = prepare(&job.request.operation);
    let concurrency = ctx.settings.executor_concurrency.max(1);
    stream::iter(tasks.iter().enumerate())
        .map(|(index, task)| {
            let prepared = &prepared;
            async move {
                match prepared {
                    Prepared::PutTagging(tagging) => put_tagging(ctx, tagging, task).await,
                    Prepared::DeleteTagging => delete_tagging(ctx, task).await,
                    Prepared::Invoke(op, schema) => {
                        let task_id = format!("{batch_id}-{index}");
                        invoke(ctx, op, *schema, &job.job_id, &task_id, task).await
                    }
                    Prepared::Invalid(reason) => invalid_operation_outcome(task, reason),
                }
            }
        })
        .buffered(concurrency)
        .collect()
        .await
}

/// What every task of the batch shares, built once.
enum Prepared<'a> {
    PutTagging(Tagging),
    DeleteTagging,
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
    with_s3_retries(ctx, task, || async {
        ctx.s3
            .put_object_tagging()
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
    with_s3_retries(ctx, task, || async {
        ctx.s3
            .delete_object_tagging()
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

/// Calls S3 until it succeeds, fails for good, or attempts run out.
async fn with_s3_retries<F, Fut>(ctx: &Context, task: &Task, mut call: F) -> TaskOutcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let max_attempts = ctx.settings.lambda_max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(()) => return s3_success_outcome(task),
            Err(failure) if failure.retryable && attempt < max_attempts => {
                tracing::debug!(code = %failure.error_code, attempt, "S3 call will be retried");
                pause(ctx, attempt).await;
                attempt += 1;
            }
            Err(failure) => return failure.into_outcome(task),
        }
    }
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
        if attempt >= max_attempts {
            return match pending {
                Pending::Temporary(result_string) => {
                    invocation::temporary_failure_outcome(task, attempt, &result_string)
                }
                Pending::Throttled(mut failure) => {
                    failure.message = format!(
                        "Lambda Invoke failed after {attempt} attempts: {}",
                        failure.message
                    );
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
    let result = ctx
        .lambda
        .invoke()
        .function_name(&op.function_arn)
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Worth another attempt (throttling, server error, timeout, broken connection).
    pub retryable: bool,
    /// The service's error code (`NoSuchKey`, `SlowDown`, ...).
    pub error_code: String,
    /// The HTTP status of the service's answer; `None` when no answer came.
    pub http_status: Option<u16>,
    /// The service's error message.
    pub message: String,
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
    classify_parts(
        err.code(),
        err.message(),
        status,
        transport_problem(err),
        || describe(err),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::put_object_tagging::PutObjectTaggingError;
    use aws_smithy_types::body::SdkBody;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body.to_string()))
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
}
