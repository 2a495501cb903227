//! What AWS charges, in one table: the prices behind the dry run's cost estimate
//! ([`crate::dry_run`]), for this stack and for S3 Batch Operations doing the same job.
//!
//! List prices of Region us-east-1 (US East, N. Virginia) as AWS publishes them on the pricing
//! pages of S3, S3 Batch Operations, Lambda, SQS and DynamoDB (on-demand capacity), without free
//! tiers or discounts. Prices change and differ by Region: edit this table, nothing else holds a
//! price.

/// Prices in US dollars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// The Region these prices are of.
    pub region: &'static str,
    /// S3 PUT, COPY, POST and LIST requests (PutObjectTagging, PutObjectAcl, CopyObject,
    /// UploadPartCopy, ... are billed as PUTs), per request.
    pub s3_put_request: f64,
    /// S3 GET, HEAD and all other requests, per request. DELETE requests are free.
    pub s3_get_request: f64,
    /// RestoreObject from S3 Glacier Flexible Retrieval, Standard tier: per request, per GB.
    pub restore_standard_request: f64,
    /// RestoreObject, Standard tier: per GB retrieved.
    pub restore_standard_gb: f64,
    /// RestoreObject, Bulk tier: free from S3 Glacier Flexible Retrieval.
    pub restore_bulk_request: f64,
    /// RestoreObject, Bulk tier: per GB retrieved.
    pub restore_bulk_gb: f64,
    /// Lambda requests, per request.
    pub lambda_request: f64,
    /// Lambda duration on arm64 (this stack's architecture), per GB-second.
    pub lambda_arm64_gb_second: f64,
    /// SQS standard queue requests, per request; each 64 KiB chunk of a payload is a request.
    pub sqs_request: f64,
    /// DynamoDB on-demand write and read request units.
    pub dynamodb_write_unit: f64,
    /// DynamoDB on-demand read request units, per unit.
    pub dynamodb_read_unit: f64,
    /// S3 Batch Operations: per job, and per object operation (task).
    pub batch_operations_job: f64,
    /// S3 Batch Operations: per object operation (task).
    pub batch_operations_task: f64,
}

/// The prices the estimate uses.
pub const US_EAST_1: Prices = Prices {
    region: "us-east-1",
    s3_put_request: 0.005 / 1_000.0,
    s3_get_request: 0.0004 / 1_000.0,
    restore_standard_request: 0.05 / 1_000.0,
    restore_standard_gb: 0.01,
    restore_bulk_request: 0.0,
    restore_bulk_gb: 0.0,
    lambda_request: 0.20 / 1_000_000.0,
    lambda_arm64_gb_second: 0.000_013_333_4,
    sqs_request: 0.40 / 1_000_000.0,
    dynamodb_write_unit: 0.625 / 1_000_000.0,
    dynamodb_read_unit: 0.125 / 1_000_000.0,
    batch_operations_job: 0.25,
    batch_operations_task: 1.00 / 1_000_000.0,
};

/// The size of one billed SQS request: a payload is billed per started 64 KiB.
pub const SQS_BILLED_CHUNK_BYTES: u64 = 64 * 1024;

/// Memory of this stack's functions, as `template.yaml` sets it (a test keeps them equal).
pub const PLANNER_MEMORY_MB: u64 = 1769;
/// Memory of the executor function, in MB.
pub const EXECUTOR_MEMORY_MB: u64 = 512;
/// Memory of the reporter function, in MB.
pub const REPORTER_MEMORY_MB: u64 = 1024;

/// The template's default `ExecutorMaxConcurrency`: executor invocations at once.
pub const DEFAULT_EXECUTOR_INVOCATIONS: u64 = 20;
