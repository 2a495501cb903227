//! The control Lambda: builds the clients once, then hands each event to `batchops::control::handle`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    batchops::telemetry::init_json();
    let ctx = batchops::Context::from_env().await?;
    ctx.warm_up().await;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A batchops::Error answers with its kind as `errorType` (e.g. batchops.InvalidRequest).
        batchops::control::handle(ctx, event.payload).await
    }))
    .await
}
