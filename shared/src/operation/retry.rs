//! Retries: another attempt for what `crate::error::aws` classifies as worth one (with capped,
//! jittered backoff), and how a final failure becomes a report row with S3's code, status and
//! message.

use super::*;
use std::future::Future;
use std::time::{Duration, Instant};

use super::concurrency::Sent;

use crate::manifest::Task;
use crate::report::{TaskOutcome, TaskStatus};
use crate::Context;

pub use crate::error::aws::*;

/// No retry waits longer than this, however many attempts came before.
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Calls S3 for `task` until it succeeds, fails for good, or attempts run out.
pub(super) async fn with_s3_retries<F, Fut>(ctx: &Context, task: &Task, call: F) -> TaskOutcome
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
pub(super) async fn s3_call<T, F, Fut>(
    ctx: &Context,
    bucket: &str,
    mut call: F,
) -> Result<T, Failure>
where
    F: FnMut(aws_sdk_s3::Client) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    // The SDK does not retry these (see `crate::region`): every attempt is one of ours, spaced
    // by the backoff, so that a task never waits out more than `lambda_max_attempts` of them.
    let max_attempts = ctx.settings.lambda_max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let permit = ctx
            .s3_concurrency
            .acquire(
                bucket,
                ctx.settings.executor_concurrency,
                most_in_flight(ctx),
            )
            .await;
        let sent_at = Instant::now();
        let answer = call(ctx.s3_for_bucket(bucket)).await;
        if answer.as_ref().is_err_and(is_throttle) {
            ctx.throttles
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            permit.finish(Sent::Throttled);
        } else {
            permit.finish(Sent::Answered(sent_at.elapsed()));
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

/// The most S3 requests one process sends to a bucket at once: every task slot, each with a
/// copy's parts at once. The adaptive limit starts here and never grows past it.
fn most_in_flight(ctx: &Context) -> usize {
    ctx.settings.executor_concurrency.max(1) * ctx.settings.copy.part_concurrency.max(1)
}

pub(super) fn s3_success_outcome(task: &Task) -> TaskOutcome {
    TaskOutcome {
        task: task.clone(),
        status: TaskStatus::Succeeded,
        error_code: None,
        http_status: Some(200),
        result_message: SUCCESS_MESSAGE.into(),
    }
}

pub(super) async fn pause(ctx: &Context, failed_attempt: u32) {
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
    crate::backoff::delay(base, MAX_BACKOFF, failed_attempt, jitter)
}

impl Failure {
    /// The failed outcome of `task`: the failure's error code, HTTP status and message.
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
