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

/// What one job's orchestration used, counted request by request (the executor benchmark
/// counts them at the server): batchops' own requests and time, not the tasks' requests, which
/// S3 Batch Operations would send and bill the same.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Orchestration {
    /// Invocations of the stack's functions (one per SQS message: the event sources' batch
    /// size is 1).
    pub lambda_invocations: u64,
    /// Duration of those invocations times their memory, in GB-seconds.
    pub lambda_gb_seconds: f64,
    /// SQS requests as billed: each started 64 KiB of a payload is a request
    /// ([`sqs_billed_requests`]).
    pub sqs_requests: u64,
    /// DynamoDB write request units ([`dynamodb_write_units`]).
    pub dynamodb_write_units: u64,
    /// DynamoDB read request units ([`dynamodb_read_units`]).
    pub dynamodb_read_units: u64,
    /// batchops' own S3 PUT-class requests (result parts, the report, checkpoints).
    pub s3_put_requests: u64,
    /// batchops' own S3 GET-class requests (the manifest, result parts read back).
    pub s3_get_requests: u64,
}

/// [`Orchestration`] priced, in US dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OrchestrationCost {
    /// Lambda requests and duration.
    pub lambda: f64,
    /// SQS requests.
    pub sqs: f64,
    /// DynamoDB request units.
    pub dynamodb: f64,
    /// batchops' own S3 requests.
    pub s3: f64,
}

impl OrchestrationCost {
    /// The whole orchestration.
    pub fn total(&self) -> f64 {
        self.lambda + self.sqs + self.dynamodb + self.s3
    }

    /// Each part multiplied by `factor` (a cost per task by a million tasks, say).
    pub fn scaled(&self, factor: f64) -> OrchestrationCost {
        OrchestrationCost {
            lambda: self.lambda * factor,
            sqs: self.sqs * factor,
            dynamodb: self.dynamodb * factor,
            s3: self.s3 * factor,
        }
    }
}

impl Orchestration {
    /// What AWS would bill for it at `prices`.
    pub fn cost(&self, prices: &Prices) -> OrchestrationCost {
        OrchestrationCost {
            lambda: self.lambda_invocations as f64 * prices.lambda_request
                + self.lambda_gb_seconds * prices.lambda_arm64_gb_second,
            sqs: self.sqs_requests as f64 * prices.sqs_request,
            dynamodb: self.dynamodb_write_units as f64 * prices.dynamodb_write_unit
                + self.dynamodb_read_units as f64 * prices.dynamodb_read_unit,
            s3: self.s3_put_requests as f64 * prices.s3_put_request
                + self.s3_get_requests as f64 * prices.s3_get_request,
        }
    }
}

/// S3 Batch Operations' fee for `jobs` jobs of `tasks` tasks in all.
pub fn batch_operations_fee(jobs: u64, tasks: u64, prices: &Prices) -> f64 {
    jobs as f64 * prices.batch_operations_job + tasks as f64 * prices.batch_operations_task
}

/// Billed SQS requests for one request carrying `payload_bytes`: one per started 64 KiB, at
/// least one.
pub fn sqs_billed_requests(payload_bytes: u64) -> u64 {
    payload_bytes.div_ceil(SQS_BILLED_CHUNK_BYTES).max(1)
}

/// Write request units of writing one item of `item_bytes`: one per started KB, at least one;
/// twice that inside a transaction.
pub fn dynamodb_write_units(item_bytes: u64, in_transaction: bool) -> u64 {
    dynamodb_units(item_bytes, 1024, in_transaction)
}

/// Read request units of a strongly consistent read returning `bytes`: one per started 4 KB, at
/// least one; twice that inside a transaction.
pub fn dynamodb_read_units(bytes: u64, in_transaction: bool) -> u64 {
    dynamodb_units(bytes, 4096, in_transaction)
}

/// One unit per started `unit_bytes`, at least one; twice that inside a transaction.
fn dynamodb_units(bytes: u64, unit_bytes: u64, in_transaction: bool) -> u64 {
    let units = bytes.div_ceil(unit_bytes).max(1);
    if in_transaction {
        2 * units
    } else {
        units
    }
}

/// GB-seconds of `seconds` of a function with `memory_mb` of memory.
pub fn lambda_gb_seconds(seconds: f64, memory_mb: u64) -> f64 {
    seconds * memory_mb as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_bills_each_started_64_kib() {
        assert_eq!(sqs_billed_requests(0), 1);
        assert_eq!(sqs_billed_requests(65_536), 1);
        assert_eq!(sqs_billed_requests(65_537), 2);
        assert_eq!(sqs_billed_requests(256 * 1024), 4);
    }

    #[test]
    fn dynamodb_bills_per_started_kb_written_and_4_kb_read_twice_in_transactions() {
        assert_eq!(dynamodb_write_units(10, false), 1);
        assert_eq!(dynamodb_write_units(1025, false), 2);
        assert_eq!(dynamodb_write_units(1025, true), 4);
        assert_eq!(dynamodb_read_units(4096, false), 1);
        assert_eq!(dynamodb_read_units(4097, true), 4);
    }

    #[test]
    fn an_orchestration_is_priced_part_by_part_and_scaled() {
        let used = Orchestration {
            lambda_invocations: 10,
            lambda_gb_seconds: 2.0,
            sqs_requests: 30,
            dynamodb_write_units: 40,
            dynamodb_read_units: 8,
            s3_put_requests: 11,
            s3_get_requests: 12,
        };
        let p = US_EAST_1;
        let cost = used.cost(&p);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(
            cost.lambda,
            10.0 * p.lambda_request + 2.0 * p.lambda_arm64_gb_second
        ));
        assert!(close(cost.sqs, 30.0 * p.sqs_request));
        assert!(close(
            cost.dynamodb,
            40.0 * p.dynamodb_write_unit + 8.0 * p.dynamodb_read_unit
        ));
        assert!(close(
            cost.s3,
            11.0 * p.s3_put_request + 12.0 * p.s3_get_request
        ));
        let million = cost.scaled(1_000.0);
        assert!(close(million.total(), cost.total() * 1_000.0));
        assert!(close(million.sqs, cost.sqs * 1_000.0));
        assert!(close(batch_operations_fee(1, 1_000_000, &p), 0.25 + 1.00));
        assert!(close(lambda_gb_seconds(2.0, 512), 1.0));
    }
}
