//! The integration tests: one binary, a module per area, against real servers over the wire
//! (one moto server per run for S3, SQS, DynamoDB, STS and IAM; `cargo lambda watch` for the
//! LambdaInvoke tests; scripted HTTP endpoints for what moto cannot do). `tests/common` holds the
//! servers, the `Stack` fixture and the scripted endpoint.
//!
//! Run one area with a filter: `cargo test -p batchops-cli --test tests e2e::`.

mod common;

mod chaos;
mod cli;
mod continuation;
mod e2e;
mod ending;
mod event_handlers;
mod events;
mod generator;
mod hostile;
mod inventory_formats;
mod lambda_contract;
mod operations;
mod pinning;
mod planner_calls;
mod reporting;
mod roles;
mod startup;
mod store_control;
