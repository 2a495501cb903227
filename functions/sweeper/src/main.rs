//! The sweeper Lambda: run on a schedule (EventBridge), it repairs jobs that nothing else will
//! move (`batchops::sweeper`). Any event starts one sweep; the answer is what it repaired.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    batchops::telemetry::init_json();
    let ctx = batchops::Context::from_env().await?;
    ctx.warm_up().await;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        batchops::sweeper::handle(ctx, event.payload).await
    }))
    .await
}
