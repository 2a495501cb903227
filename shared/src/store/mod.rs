//! The store: job records, batch commits and job templates in one DynamoDB table.
//!
//! Layout (keys `pk`/`sk`, both strings):
//! - job: `pk=JOB#<id>`, `sk=JOB`; the CreateJob request as a JSON string plus scalar attributes;
//! - batch commit: `pk=JOB#<id>`, `sk=BATCH#<batch id>`, with the outcome counts and the result part;
//! - planning checkpoint of one plan part: `pk=JOB#<id>`, `sk=PLAN#<part>` (see `plan::PlanCheckpoint`);
//! - ClientRequestToken: `pk=TOKEN#<token>`, `sk=TOKEN`, holding the id of the job it created;
//! - job template: `pk=TEMPLATE`, `sk=<name>`.

mod batches;
mod items;
mod jobs;
mod limiter;
mod plan_parts;
mod state;
mod table;
mod templates;
#[cfg(test)]
mod tests;

pub use batches::*;
pub use items::*;
use jobs::*;
pub use plan_parts::*;
pub use state::*;
pub use templates::*;

use crate::error::{Error, Result};
use crate::job::CreateJobRequest;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// Outcome counts of one batch, added to the job's progress exactly once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCounts {
    /// Tasks that succeeded.
    pub succeeded: u64,
    /// Tasks that failed.
    pub failed: u64,
    /// Tasks not run because the job was cancelled or failing.
    pub not_run: u64,
}

/// What has been committed of a batch: its first `tasks_done` tasks, in one or more segments
/// (an executor that runs out of time commits what it ran and hands the rest on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// The batch's id; the record's sort key is `BATCH#<batch id>`.
    pub batch_id: String,
    /// Counts of the committed tasks, all segments together.
    pub counts: BatchCounts,
    /// Tasks in the whole batch.
    pub tasks: u64,
    /// Tasks committed so far: the batch's first `tasks_done` tasks.
    pub tasks_done: u64,
    /// Keys in the system bucket of the result parts (report rows) of the winning attempts, one
    /// per segment that had rows to report, in task order.
    pub parts: Vec<String>,
    /// When the last segment committed.
    pub updated_at: Option<DateTime<Utc>>,
    /// The deferred copy of the batch last sent, see [`Store::claim_deferral`].
    pub deferral: Option<Deferral>,
}

/// A job's rate limiter item (`crate::rate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limiter {
    /// From when (epoch ms) the next lease may start; `None` before the first lease.
    pub next_start_ms: Option<u64>,
    /// The rate set by `update-job-rate` (0: no limit); `None` when it was never changed.
    pub rate: Option<u32>,
}

/// A deferred copy of a batch on its way: its id and when it becomes visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferral {
    /// A random id the copy's message carries, so that a copy can tell whether it is the one named.
    pub id: String,
    /// When the copy becomes visible on the task queue; until then it holds the claim.
    pub due: DateTime<Utc>,
}

impl BatchRecord {
    /// Every task of the batch is committed.
    pub fn is_done(&self) -> bool {
        self.tasks_done >= self.tasks
    }
}

/// One commit of a batch: its tasks `from..to` (of `batch_tasks`) with their counts and the
/// result part that holds their report rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Index within the batch of the segment's first task; the commit counts only if the batch's
    /// `tasks_done` stands there.
    pub from: u64,
    /// Index one past the segment's last task: the batch's `tasks_done` after the commit.
    pub to: u64,
    /// Tasks in the whole batch; the segment is the batch's last when `to` reaches this.
    pub batch_tasks: u64,
    /// Outcome counts of the segment's tasks, added to the job's progress.
    pub counts: BatchCounts,
    /// Key in the system bucket of the segment's result part (its report rows); `None`: no rows.
    pub part_key: Option<String>,
}

/// What a segment commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentCommit {
    /// The segment counted; `batch_done` when it was the batch's last.
    Committed {
        /// True when the segment was the batch's last: every task of the batch is committed.
        batch_done: bool,
    },
    /// Another delivery committed these tasks first (or moved past `from`); nothing counted.
    Lost,
}

/// A multipart copy left for the next invocation (its executor ran out of time), kept under the
/// task's batch and index so that the task's next run resumes it, and the reporter or the
/// sweeper aborts it if the job ends without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The copy's destination bucket.
    pub bucket: String,
    /// The copy's destination key.
    pub key: String,
    /// S3's `UploadId` of the multipart upload.
    pub upload_id: String,
    /// The source's ETag when the copy began: every part is copied from that object.
    pub source_etag: String,
    /// The parts copied so far (number and ETag), saved as JSON in the system bucket.
    pub parts_key: String,
}

/// A job template: a CreateJob request without Manifest, started for every inventory
/// `manifest.json` that arrives under `s3://manifest_bucket/manifest_prefix`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobTemplate {
    /// The template's name, also the sort key of its item (`pk=TEMPLATE`).
    pub name: String,
    /// The bucket where the inventory deliveries arrive.
    pub manifest_bucket: String,
    /// The key prefix they arrive under; empty for the whole bucket.
    pub manifest_prefix: String,
    /// The CreateJob request each delivery starts, without `Manifest` or `ClientRequestToken`.
    pub request: CreateJobRequest,
}

/// What `put_new_job` did: stored the job, or found the job of the same ClientRequestToken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutJobOutcome {
    /// The job was stored (with its ClientRequestToken, if it has one).
    Created,
    /// The token was used before: nothing was stored, and this is the id of the job it created.
    Existing(String),
}

/// One DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

const PK: &str = "pk";

const SK: &str = "sk";

const JOB_SK: &str = "JOB";

const TOKEN_SK: &str = "TOKEN";

const TEMPLATE_PK: &str = "TEMPLATE";

const BATCH_SK_PREFIX: &str = "BATCH#";

const PLAN_SK_PREFIX: &str = "PLAN#";

const REPORT_SK: &str = "REPORT";

const CANARY_REPORT_SK: &str = "CANARY_REPORT";

const UPLOAD_SK_PREFIX: &str = "UPLOAD#";

/// The job list index: every job item carries `list_pk = "JOBS"` and `list_sk = <creation time>#<id>`,
/// so ListJobs is one Query, newest first. Only the status and the TTL are projected, so that
/// the commits that update a job's counters do not write to the index.
pub const JOBS_INDEX: &str = "jobs-by-creation";

const A_LIST_PK: &str = "list_pk";

const A_LIST_SK: &str = "list_sk";

const LIST_PK_JOBS: &str = "JOBS";

/// S3 Control's largest ListJobs page.
pub const MAX_LIST_RESULTS: usize = 1000;

/// How long a job and everything it left in the table are kept after it ends, as S3 keeps jobs:
/// the items carry the table's TTL attribute, `ttl`, this long after the job's end.
pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

// Job item attribute names.
const A_REQUEST: &str = "request";

const A_STATUS: &str = "status";

const A_PRIORITY: &str = "priority";

const A_CREATION_TIME: &str = "creation_time";

const A_TERMINATION_DATE: &str = "termination_date";

const A_SUSPENDED_DATE: &str = "suspended_date";

const A_ACTIVE_SINCE: &str = "active_since";

const A_ELAPSED_ACTIVE: &str = "elapsed_active_seconds";

const A_REASON: &str = "status_update_reason";

const A_FAILURES: &str = "failure_reasons";

const A_TOTAL: &str = "total_tasks";

const A_SUCCEEDED: &str = "succeeded";

const A_FAILED: &str = "failed";

const A_NOT_RUN: &str = "not_run";

const A_PLANNED: &str = "batches_planned";

const A_COMMITTED: &str = "batches_committed";

const A_FINALIZE: &str = "finalize_sent";

const A_FINALIZE_AT: &str = "finalize_at";

/// The batches of a job's canary, once all are sent; removed when its report is written.
const A_CANARY_BATCHES: &str = "canary_batches";

/// The canary's report is written: planning goes past the canary.
const A_CANARY_DONE: &str = "canary_done";

const A_TTL: &str = "ttl";

const A_SOURCE: &str = "source";

/// The job's own tags as JSON (`[{"Key": ..., "Value": ...}]`, `[]` when it has none); jobs
/// stored before job tagging existed lack it, and have the tags of their request.
const A_TAGS: &str = "tags";

/// The job's rate limit (tasks per second); absent when it has none.
const A_RATE: &str = "max_tps";

/// The rate limiter's item of a job and its one attribute: the time (epoch ms) from which the
/// next lease of tasks may start (`crate::rate`).
const RATE_SK: &str = "RATE";

const A_NEXT_START: &str = "next_start_ms";

/// The rate set by `update-job-rate` (0: no limit), which wins over the one a batch read.
const A_LIMITER_RATE: &str = "rate";

const A_UPLOAD: &str = "upload";

const A_STEP: &str = "step";

const A_STATE: &str = "state";

const A_PROGRESS_AT: &str = "last_progress_at";

// Other items.
const A_JOB_ID: &str = "job_id";

const A_BATCH_ID: &str = "batch_id";

const A_PARTS: &str = "parts";

const A_TASKS: &str = "tasks";

const A_TASKS_DONE: &str = "tasks_done";

const A_MANIFEST_BUCKET: &str = "manifest_bucket";

const A_MANIFEST_PREFIX: &str = "manifest_prefix";

const A_NAME: &str = "name";

const A_PART: &str = "part";

const A_NEXT_TASK: &str = "next_task";

const A_BATCHES: &str = "batches";

const A_DONE: &str = "done";

const A_CONTINUED_AT: &str = "continued_at";

const A_RESERVED: &str = "reserved";

const A_RESUME: &str = "resume";

const A_UPDATED_AT: &str = "updated_at";

const A_DEFERRAL_ID: &str = "deferral_id";

/// Epoch milliseconds, so that the claim's condition compares numbers.
const A_DEFERRAL_DUE: &str = "deferral_due";

const FAILURE_CODE: &str = "FailureCode";

const FAILURE_REASON: &str = "FailureReason";

/// Access to the stack's DynamoDB table (layout in the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// How long a commit keeps retrying transient errors.
    commit_patience: Duration,
    /// Where every status change is announced (`crate::events`).
    events: Option<crate::events::EventSink>,
}

impl Store {
    /// A store on `table` with a 30-second commit patience and no status-change events.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
            commit_patience: Duration::from_secs(30),
            events: None,
        }
    }
    /// The store of the context's table, with its settings' commit patience and, when an event bus
    /// is set (`BATCHOPS_EVENT_BUS`), status-change events sent to it.
    pub fn from_context(ctx: &crate::Context) -> Self {
        Store {
            commit_patience: ctx.settings.commit_patience,
            events: ctx
                .settings
                .event_bus
                .as_ref()
                .map(|bus| crate::events::EventSink {
                    client: ctx.eventbridge.clone(),
                    bus: bus.clone(),
                }),
            ..Store::new(ctx.dynamodb.clone(), ctx.settings.table.clone())
        }
    }
    /// The DynamoDB table's name.
    pub fn table(&self) -> &str {
        &self.table
    }
    async fn get_item(&self, pk: String, sk: String) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(pk))
            .key(SK, AttributeValue::S(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "GetItem", e))?;
        Ok(out.item)
    }
    /// Every item of a partition (optionally with a sort key prefix), all pages, consistent.
    async fn query_all(&self, pk: &str, sk_prefix: Option<&str>) -> Result<Vec<Item>> {
        let condition = if sk_prefix.is_some() {
            "pk = :pk AND begins_with(sk, :prefix)"
        } else {
            "pk = :pk"
        };
        let mut items = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start_key.take());
            if let Some(prefix) = sk_prefix {
                request = request.expression_attribute_values(":prefix", s(prefix));
            }
            let out = request
                .send()
                .await
                .map_err(|e| Error::aws("DynamoDB", "Query", e))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }
}

/// `Ok(true)` when a conditional write was applied, `Ok(false)` when its condition did not hold.
fn condition_held<T, E>(
    result: std::result::Result<
        T,
        aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
    operation: &'static str,
) -> Result<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(Error::aws("DynamoDB", operation, e)),
    }
}

fn job_pk(job_id: &str) -> String {
    format!("JOB#{job_id}")
}
