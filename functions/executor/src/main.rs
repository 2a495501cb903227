//! The executor Lambda: builds the clients once, then hands each SQS event to
//! `batchops::executor::handle_until` with the invocation's deadline, answering with a partial
//! batch response.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::time::{Duration, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    batchops::telemetry::init_json();
    let ctx = batchops::Context::from_env().await?;
    ctx.warm_up().await;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        Ok::<SqsBatchResponse, Error>(
            batchops::executor::handle_until(ctx, event.payload, Some(deadline)).await,
        )
    }))
    .await
}
