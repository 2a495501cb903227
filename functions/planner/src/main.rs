//! The planner Lambda: builds the clients once, then hands each event to
//! `batchops::planner::handle_until` with the invocation's deadline, so that planning checkpoints
//! and continues itself before Lambda stops it.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    batchops::telemetry::init_json();
    let ctx = batchops::Context::from_env().await?;
    ctx.warm_up().await;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        batchops::planner::handle_until(ctx, event.payload, Some(deadline)).await
    }))
    .await
}
