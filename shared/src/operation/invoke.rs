//! LambdaInvoke: one invocation per task, with its retries; the payload contract itself is
//! [`crate::invocation`].

use super::*;
use aws_sdk_lambda::primitives::Blob;

use crate::invocation::{self, InvocationRequest, InvocationTask, Judgement, SchemaVersion};
use crate::job::LambdaInvokeOperation;
use crate::manifest::Task;
use crate::report::TaskOutcome;
use crate::Context;

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
pub(super) async fn invoke(
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

pub(super) enum Attempt {
    Final(TaskOutcome),
    Again(Pending),
}

/// Why another attempt is worth making.
pub(super) enum Pending {
    /// The function answered `TemporaryFailure` (with its result string).
    Temporary(String),
    /// The Invoke API itself throttled, failed on the server side or timed out.
    Throttled(Failure),
}

pub(super) async fn invoke_once(
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
