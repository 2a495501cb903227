//! batchops: S3 Batch Operations as a serverless application.
//!
//! Modules follow the concepts of S3 Batch Operations: a [`job`] reads a [`manifest`], is split by the
//! [`plan`] into batches on a [`queue`], each task runs an [`operation`] (or a Lambda [`invocation`]),
//! outcomes are committed to the [`store`] and summarised in the [`report`].

pub mod backoff;
pub mod context;
pub mod control;
pub mod deadline;
pub mod dry_run;
pub mod error;
pub mod events;
pub mod executor;
pub mod fault;
pub mod generator;
pub mod invocation;
pub mod job;
pub mod local;
pub mod manifest;
pub mod operation;
pub mod plan;
pub mod planner;
pub mod pricing;
pub mod priority;
pub mod queue;
pub mod rate;
pub mod region;
pub mod report;
pub mod reporter;
pub mod role;
pub mod store;
pub mod sweeper;
pub mod telemetry;
pub mod trigger;

pub use context::Context;
pub use error::{Error, Result};
