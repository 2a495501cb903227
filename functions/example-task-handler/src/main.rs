//! The example task handler: a user function for batchops' `LambdaInvoke` operation. See
//! [`handler`] for what it answers and the test knobs.

mod handler;
mod s3;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    batchops::telemetry::init_json();
    let handler = Arc::new(handler::Handler::new(s3::S3Store::from_env().await));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = Arc::clone(&handler);
        async move { handler.handle(event.payload).await }
    }))
    .await
}
