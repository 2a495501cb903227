//! The store: job records, batch commits and job templates in one DynamoDB table.
//!
//! Layout (keys `pk`/`sk`, both strings):
//! - job: `pk=JOB#<id>`, `sk=JOB`; the CreateJob request as a JSON string plus scalar attributes;
//! - batch commit: `pk=JOB#<id>`, `sk=BATCH#<batch id>`, with the outcome counts and the result part;
//! - planning checkpoint of one plan part: `pk=JOB#<id>`, `sk=PLAN#<part>` (see `plan::PlanCheckpoint`);
//! - ClientRequestToken: `pk=TOKEN#<token>`, `sk=TOKEN`, holding the id of the job it created;
//! - job template: `pk=TEMPLATE`, `sk=<name>`.

use crate::error::{Error, Result};
use crate::job::{
    CreateJobRequest, FailureReason, Job, JobSource, JobStatus, JobTracking, Progress, S3Tag,
};
use crate::plan::{PlanCheckpoint, PlanPart};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TableStatus, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tracing::{debug, warn};

/// Outcome counts of one batch, added to the job's progress exactly once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCounts {
    pub succeeded: u64,
    pub failed: u64,
    /// Tasks not run because the job was cancelled or failing.
    pub not_run: u64,
}

/// What has been committed of a batch: its first `tasks_done` tasks, in one or more segments
/// (an executor that runs out of time commits what it ran and hands the rest on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
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
    pub id: String,
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
    pub from: u64,
    pub to: u64,
    pub batch_tasks: u64,
    pub counts: BatchCounts,
    pub part_key: Option<String>,
}

/// What a segment commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentCommit {
    /// The segment counted; `batch_done` when it was the batch's last.
    Committed { batch_done: bool },
    /// Another delivery committed these tasks first (or moved past `from`); nothing counted.
    Lost,
}

/// A multipart copy left for the next invocation (its executor ran out of time), kept under the
/// task's batch and index so that the task's next run resumes it, and the reporter or the
/// sweeper aborts it if the job ends without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub bucket: String,
    pub key: String,
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
    pub name: String,
    pub manifest_bucket: String,
    pub manifest_prefix: String,
    pub request: CreateJobRequest,
}

/// What `put_new_job` did: stored the job, or found the job of the same ClientRequestToken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutJobOutcome {
    Created,
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

/// How long `create_table_if_missing` waits for a new table to become active.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

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
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
            commit_patience: Duration::from_secs(30),
            events: None,
        }
    }

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

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing, keys `pk`/`sk`, the job list index) when missing,
    /// and adds the index to a table made without it; for `batchops local up` and tests.
    pub async fn create_table_if_missing(&self) -> Result<()> {
        if self.table_status().await?.is_none() {
            let created = self
                .client
                .create_table()
                .table_name(&self.table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(string_attribute(PK)?)
                .attribute_definitions(string_attribute(SK)?)
                .attribute_definitions(string_attribute(A_LIST_PK)?)
                .attribute_definitions(string_attribute(A_LIST_SK)?)
                .key_schema(key_element(PK, KeyType::Hash)?)
                .key_schema(key_element(SK, KeyType::Range)?)
                .global_secondary_indexes(jobs_index()?)
                .send()
                .await;
            match created {
                Ok(_) => debug!(table = %self.table, "created table"),
                // Somebody else created it meanwhile: fine, wait for it like for our own.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => return Err(Error::aws("DynamoDB", "CreateTable", e)),
            }
        }
        self.wait_until_active().await?;
        if !self.has_jobs_index().await? {
            self.client
                .update_table()
                .table_name(&self.table)
                .attribute_definitions(string_attribute(A_LIST_PK)?)
                .attribute_definitions(string_attribute(A_LIST_SK)?)
                .global_secondary_index_updates(
                    aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                        .create(
                            aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
                                .index_name(JOBS_INDEX)
                                .key_schema(key_element(A_LIST_PK, KeyType::Hash)?)
                                .key_schema(key_element(A_LIST_SK, KeyType::Range)?)
                                .projection(jobs_index_projection())
                                .build()
                                .map_err(|e| Error::Other(format!("building the index: {e}")))?,
                        )
                        .build(),
                )
                .send()
                .await
                .map_err(|e| Error::aws("DynamoDB", "UpdateTable", e))?;
            self.wait_until_active().await?;
        }
        Ok(())
    }

    async fn has_jobs_index(&self) -> Result<bool> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "DescribeTable", e))?;
        Ok(out
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .any(|i| i.index_name() == Some(JOBS_INDEX)))
    }

    async fn table_status(&self) -> Result<Option<TableStatus>> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.table()
                    .and_then(|t| t.table_status())
                    .cloned()
                    .unwrap_or(TableStatus::Active),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("DynamoDB", "DescribeTable", e)),
        }
    }

    async fn wait_until_active(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
        loop {
            if self.table_status().await? == Some(TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Other(format!(
                    "DynamoDB table {} did not become ACTIVE within {}s",
                    self.table,
                    TABLE_ACTIVE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Stores a new job. With a ClientRequestToken, a second call with the same token stores
    /// nothing and returns the first job's id.
    pub async fn put_new_job(&self, job: &Job) -> Result<PutJobOutcome> {
        let item = job_to_item(job)?;
        let Some(token) = job.request.client_request_token.as_deref() else {
            return self.put_job_without_token(job, item).await;
        };
        let token_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(token_item(token, &job.job_id)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::Other(format!("building token put: {e}")))?;
        let job_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::Other(format!("building job put: {e}")))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(token_put).build())
            .transact_items(TransactWriteItem::builder().put(job_put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutJobOutcome::Created),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if is_condition_failure(&codes, 0) => {
                    let existing = self.job_id_of_token(token).await?;
                    debug!(token, job_id = %existing, "ClientRequestToken seen before");
                    Ok(PutJobOutcome::Existing(existing))
                }
                Some(codes) if is_condition_failure(&codes, 1) => Err(Error::Other(format!(
                    "a job with id {} exists already",
                    job.job_id
                ))),
                _ => Err(Error::aws("DynamoDB", "TransactWriteItems", e)),
            },
        }
    }

    async fn put_job_without_token(&self, job: &Job, item: Item) -> Result<PutJobOutcome> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutJobOutcome::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Other(format!(
                    "a job with id {} exists already",
                    job.job_id
                )))
            }
            Err(e) => Err(Error::aws("DynamoDB", "PutItem", e)),
        }
    }

    async fn job_id_of_token(&self, token: &str) -> Result<String> {
        let item = self
            .get_item(format!("TOKEN#{token}"), TOKEN_SK.to_string())
            .await?
            .ok_or_else(|| {
                Error::Other(format!(
                    "ClientRequestToken {token:?} is taken but its record is gone"
                ))
            })?;
        Ok(get_s(&item, A_JOB_ID)?.to_string())
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

    /// Reads a job (strongly consistent). `Error::JobNotFound` when there is none, or when it
    /// ended more than [`RETENTION`] ago (DynamoDB deletes expired items only eventually).
    pub async fn get_job(&self, job_id: &str) -> Result<Job> {
        let item = self
            .get_item(job_pk(job_id), JOB_SK.to_string())
            .await?
            .filter(|item| !is_expired(item, Utc::now()))
            .ok_or_else(|| Error::JobNotFound(job_id.to_string()))?;
        job_from_item(&item)
    }

    /// Every job, or those in the given statuses, newest first (all pages of the index).
    pub async fn list_jobs(&self, statuses: &[JobStatus]) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = self
                .list_jobs_page(statuses, MAX_LIST_RESULTS, token.as_deref())
                .await?;
            jobs.extend(page);
            match next {
                Some(next) => token = Some(next),
                None => return Ok(jobs),
            }
        }
    }

    /// Up to `max_results` jobs (those in `statuses`, or all), newest first, after the position
    /// `next_token` names, and the token of the next page when there may be more. Reads the job
    /// list index (no Scan), so a page costs the same whatever the number of jobs; jobs that
    /// ended more than 90 days ago are not listed.
    pub async fn list_jobs_page(
        &self,
        statuses: &[JobStatus],
        max_results: usize,
        next_token: Option<&str>,
    ) -> Result<(Vec<Job>, Option<String>)> {
        let max_results = max_results.clamp(1, MAX_LIST_RESULTS);
        let mut start = next_token.map(decode_list_token).transpose()?;
        let mut keys: Vec<Item> = Vec::new();
        let token = loop {
            let remaining = (max_results - keys.len()) as i32;
            let mut filter = "(attribute_not_exists(#ttl) OR #ttl > :now)".to_string();
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(JOBS_INDEX)
                .key_condition_expression("list_pk = :jobs")
                .expression_attribute_values(":jobs", s(LIST_PK_JOBS))
                .expression_attribute_values(":now", n(Utc::now().timestamp()))
                .expression_attribute_names("#ttl", A_TTL)
                .scan_index_forward(false)
                .limit(remaining)
                .set_exclusive_start_key(start.take());
            if !statuses.is_empty() {
                let names: Vec<String> = (0..statuses.len()).map(|i| format!(":s{i}")).collect();
                filter.push_str(&format!(" AND #status IN ({})", names.join(", ")));
                request = request.expression_attribute_names("#status", A_STATUS);
                for (name, status) in names.iter().zip(statuses) {
                    request = request.expression_attribute_values(name, s(status.as_str()));
                }
            }
            let out = request
                .filter_expression(filter)
                .send()
                .await
                .map_err(|e| Error::aws("DynamoDB", "Query", e))?;
            keys.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(last) if keys.len() >= max_results => break Some(encode_list_token(&last)?),
                Some(last) => start = Some(last),
                None => break None,
            }
        };
        let jobs = self.get_jobs(&keys).await?;
        Ok((jobs, token))
    }

    /// The job items of the given index entries, in their order (consistent reads).
    async fn get_jobs(&self, entries: &[Item]) -> Result<Vec<Job>> {
        let mut jobs = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(100) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|e| {
                    Ok(Item::from([
                        (PK.to_string(), s(get_s(e, PK)?)),
                        (SK.to_string(), s(JOB_SK)),
                    ]))
                })
                .collect::<Result<_>>()?;
            let mut found: HashMap<String, Job> = HashMap::new();
            let mut pending = keys;
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::Other(format!("building BatchGetItem: {e}")))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| Error::aws("DynamoDB", "BatchGetItem", e))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let job = job_from_item(&item)?;
                    found.insert(job.job_id.clone(), job);
                }
                pending = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.table)
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(commit_backoff(attempt)).await;
                }
            }
            for entry in chunk {
                let pk = get_s(entry, PK)?;
                let id = pk.strip_prefix("JOB#").unwrap_or(pk);
                // An entry whose item vanished meanwhile (expired) is skipped.
                if let Some(job) = found.remove(id) {
                    jobs.push(job);
                }
            }
        }
        Ok(jobs)
    }

    /// Moves a job to `to` if its current status is `from` and `job::can_transition(from, to)`.
    /// Records the termination date (terminal statuses), suspended date, active time, the status
    /// update reason and appends `failure` to FailureReasons. Returns false when the job was not in
    /// `from` any more (somebody else moved it first).
    pub async fn transition(
        &self,
        job_id: &str,
        from: JobStatus,
        to: JobStatus,
        reason: Option<String>,
        failure: Option<FailureReason>,
    ) -> Result<bool> {
        crate::job::check_transition(job_id, from, to)?;
        // Read first: leaving Active adds the time spent there, which needs `active_since`. The
        // write below is conditional on the status, so nothing read here can be stale.
        let job = self.get_job(job_id).await?;
        if job.status != from {
            debug!(job_id, %from, %to, current = %job.status, "transition lost: status moved");
            return Ok(false);
        }
        let now = Utc::now();
        let update = transition_update(
            from,
            to,
            job.active_since,
            now,
            reason.as_deref(),
            failure.as_ref(),
        );
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression(update.expression())
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", A_STATUS)
            .expression_attribute_values(":from", s(from.as_str()));
        for (name, value) in update.values {
            request = request.expression_attribute_values(name, value);
        }
        if to.is_terminal() {
            request = request.expression_attribute_names("#ttl", A_TTL);
        }
        match request.send().await {
            Ok(_) => {
                debug!(job_id, %from, %to, "job status changed");
                if let Some(sink) = &self.events {
                    let detail = crate::events::status_changed(
                        &job,
                        to,
                        reason.as_deref(),
                        failure.as_ref(),
                        now,
                    );
                    crate::events::send(sink, &detail).await;
                }
                Ok(true)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::aws("DynamoDB", "UpdateItem", e)),
        }
    }

    /// Runs `SET <expression>` on an existing job; JobNotFound when there is no such job.
    async fn set_on_job(
        &self,
        job_id: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<()> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::JobNotFound(job_id.to_string()))
            }
            Err(e) => Err(Error::aws("DynamoDB", "UpdateItem", e)),
        }
    }

    /// Sets TotalNumberOfTasks (counted while preparing a job that awaits confirmation).
    pub async fn set_total_tasks(&self, job_id: &str, total: u64) -> Result<()> {
        self.set_on_job(job_id, "SET total_tasks = :t", vec![(":t", n(total))])
            .await
    }

    /// Records that planning is complete: the total number of tasks and of batches sent.
    /// Idempotent (SET, not ADD), so a replanned manifest does not double anything.
    pub async fn finish_planning(
        &self,
        job_id: &str,
        total_tasks: u64,
        batches: u64,
    ) -> Result<()> {
        self.set_on_job(
            job_id,
            "SET total_tasks = :t, batches_planned = :b",
            vec![(":t", n(total_tasks)), (":b", n(batches))],
        )
        .await
    }

    /// Creates the checkpoints of a job's plan parts, at their start, unless they exist already
    /// (a plan request delivered again must not move a part back).
    pub async fn put_plan_parts(&self, job_id: &str, parts: &[PlanPart]) -> Result<()> {
        for part in parts {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(checkpoint_to_item(
                    job_id,
                    &PlanCheckpoint {
                        updated_at: Some(Utc::now()),
                        ..PlanCheckpoint::start(*part)
                    },
                )))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(Error::aws("DynamoDB", "PutItem", e)),
            }
        }
        Ok(())
    }

    /// The checkpoint of one plan part (strongly consistent); `None` when planning has not
    /// created it.
    pub async fn get_plan_part(
        &self,
        job_id: &str,
        part: PlanPart,
    ) -> Result<Option<PlanCheckpoint>> {
        self.get_item(job_pk(job_id), plan_sk(part))
            .await?
            .map(|item| checkpoint_from_item(&item))
            .transpose()
    }

    /// Every plan part checkpoint of a job (all pages, consistent), in part order.
    pub async fn list_plan_parts(&self, job_id: &str) -> Result<Vec<PlanCheckpoint>> {
        let items = self
            .query_all(&job_pk(job_id), Some(PLAN_SK_PREFIX))
            .await?;
        let mut parts = items
            .iter()
            .map(checkpoint_from_item)
            .collect::<Result<Vec<_>>>()?;
        parts.sort_by_key(|p| p.part);
        Ok(parts)
    }

    /// Moves a part's checkpoint from `from` to `to` if it still is at `from`. False when another
    /// run of the same part (a redelivered message) moved it first: that run's batches are the
    /// same batches (same ids, same tasks), and the loser stops without a continuation.
    pub async fn advance_plan_part(
        &self,
        job_id: &str,
        from: &PlanCheckpoint,
        to: &PlanCheckpoint,
    ) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&plan_sk(to.part)))
            .update_expression(
                "SET next_task = :nt, batches = :nb, done = :nd, updated_at = :now, #resume = :resume",
            )
            .expression_attribute_names("#resume", A_RESUME)
            .expression_attribute_values(":resume", resume_value(to.resume))
            .expression_attribute_values(":now", s(&time_to_string(Utc::now())))
            .condition_expression("next_task = :ot AND batches = :ob AND done = :od")
            .expression_attribute_values(":nt", n(to.next_task))
            .expression_attribute_values(":nb", n(to.batches))
            .expression_attribute_values(":nd", AttributeValue::Bool(to.done))
            .expression_attribute_values(":ot", n(from.next_task))
            .expression_attribute_values(":ob", n(from.batches))
            .expression_attribute_values(":od", AttributeValue::Bool(from.done))
            .send()
            .await;
        condition_held(result, "UpdateItem")
    }

    /// Records that the continue message for `next_task` is on the plan queue.
    pub async fn mark_plan_part_continued(
        &self,
        job_id: &str,
        part: PlanPart,
        next_task: u64,
    ) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&plan_sk(part)))
            .update_expression("SET continued_at = :n, updated_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":n", n(next_task))
            .expression_attribute_values(":now", s(&time_to_string(Utc::now())))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "UpdateItem", e))?;
        Ok(())
    }

    /// Records that a run of `part` may send batches with sequence numbers below `up_to`
    /// (write-ahead: before it sends them). Only ever raises the mark.
    pub async fn reserve_plan_batches(
        &self,
        job_id: &str,
        part: PlanPart,
        up_to: u64,
    ) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&plan_sk(part)))
            .update_expression("SET reserved = :up, updated_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(reserved) OR reserved < :up)",
            )
            .expression_attribute_values(":up", n(up_to))
            .expression_attribute_values(":now", s(&time_to_string(Utc::now())))
            .send()
            .await;
        // Not applied: already reserved that far (a concurrent run of the same part).
        condition_held(result, "UpdateItem").map(|_| ())
    }

    /// Commits a whole batch of `counts.succeeded + failed + not_run` tasks as one segment.
    /// Returns false (and changes nothing) for a batch that was committed before.
    pub async fn commit_batch(
        &self,
        job_id: &str,
        batch_id: &str,
        counts: BatchCounts,
        part_key: Option<&str>,
    ) -> Result<bool> {
        let tasks = counts.succeeded + counts.failed + counts.not_run;
        let segment = Segment {
            from: 0,
            to: tasks,
            batch_tasks: tasks,
            counts,
            part_key: part_key.map(str::to_string),
        };
        Ok(matches!(
            self.commit_segment(job_id, batch_id, &segment).await?,
            SegmentCommit::Committed { .. }
        ))
    }

    /// Commits one segment of a batch exactly once: in one transaction, moves the batch's
    /// `tasks_done` from `segment.from` to `segment.to` (creating the batch record for the first
    /// segment), appends the segment's result part, and adds its counts to the job (and the batch
    /// to `batches_committed` when it is the last). A segment whose `from` is not where the batch
    /// stands was committed by another delivery: nothing changes and the answer is `Lost`.
    /// Throttling, server errors and conflicts with concurrent commits are retried with backoff.
    pub async fn commit_segment(
        &self,
        job_id: &str,
        batch_id: &str,
        segment: &Segment,
    ) -> Result<SegmentCommit> {
        let now = time_to_string(Utc::now());
        let batch_done = segment.to >= segment.batch_tasks;
        let counts = segment.counts;
        let mut set = vec![
            "batch_id = :id",
            "tasks = :tasks",
            "tasks_done = :to",
            "updated_at = :now",
        ];
        if segment.part_key.is_some() {
            set.push("parts = list_append(if_not_exists(parts, :empty), :part)");
        }
        let condition = if segment.from == 0 {
            "attribute_not_exists(pk)"
        } else {
            "tasks_done = :from"
        };
        let mut batch_update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&format!("{BATCH_SK_PREFIX}{batch_id}")))
            .update_expression(format!(
                "SET {} ADD succeeded :s, failed :f, not_run :n",
                set.join(", ")
            ))
            .condition_expression(condition)
            .expression_attribute_values(":id", s(batch_id))
            .expression_attribute_values(":tasks", n(segment.batch_tasks))
            .expression_attribute_values(":to", n(segment.to))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":s", n(counts.succeeded))
            .expression_attribute_values(":f", n(counts.failed))
            .expression_attribute_values(":n", n(counts.not_run));
        if let Some(part) = &segment.part_key {
            batch_update = batch_update
                .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                .expression_attribute_values(":part", AttributeValue::L(vec![s(part)]));
        }
        if segment.from > 0 {
            batch_update = batch_update.expression_attribute_values(":from", n(segment.from));
        }
        let batch_update = batch_update
            .build()
            .map_err(|e| Error::Other(format!("building batch update: {e}")))?;
        let add_batch = if batch_done {
            ", batches_committed :one"
        } else {
            ""
        };
        let mut job_update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression(format!(
                "SET last_progress_at = :now ADD succeeded :s, failed :f, not_run :n{add_batch}"
            ))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":s", n(counts.succeeded))
            .expression_attribute_values(":f", n(counts.failed))
            .expression_attribute_values(":n", n(counts.not_run));
        if batch_done {
            job_update = job_update.expression_attribute_values(":one", n(1u64));
        }
        let job_update = job_update
            .build()
            .map_err(|e| Error::Other(format!("building job update: {e}")))?;
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .update(batch_update.clone())
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .update(job_update.clone())
                        .build(),
                )
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(SegmentCommit::Committed { batch_done }),
                Err(e) => e,
            };
            match cancellation_codes(&err) {
                Some(codes) if is_condition_failure(&codes, 0) => {
                    if self.holds_own_part(job_id, batch_id, segment).await? {
                        debug!(
                            job_id,
                            batch_id,
                            from = segment.from,
                            "an earlier attempt of this commit took effect; its answer was lost"
                        );
                        return Ok(SegmentCommit::Committed { batch_done });
                    }
                    debug!(
                        job_id,
                        batch_id,
                        from = segment.from,
                        "segment committed before; counting nothing"
                    );
                    return Ok(SegmentCommit::Lost);
                }
                Some(codes) if is_condition_failure(&codes, 1) => {
                    return Err(Error::JobNotFound(job_id.to_string()))
                }
                _ if started.elapsed() < self.commit_patience
                    && is_transient_transaction_error(&err) =>
                {
                    warn!(
                        job_id,
                        batch_id,
                        attempt,
                        error = %aws_smithy_types::error::display::DisplayErrorContext(&err),
                        "batch commit failed for now; retrying"
                    );
                    tokio::time::sleep(commit_backoff(attempt)).await;
                }
                _ => return Err(Error::aws("DynamoDB", "TransactWriteItems", err)),
            }
        }
    }

    /// Whether the batch's record lists this commit's own result part: then the condition that
    /// failed met this very commit, applied by an attempt whose answer was lost (the SDK retries
    /// a 500 or a timeout), not another delivery's. Its part must then be kept. A segment
    /// without a part cannot be told apart, and need not be: it has nothing to delete, and a
    /// batch that is not done yet is taken up again from where it stands.
    async fn holds_own_part(
        &self,
        job_id: &str,
        batch_id: &str,
        segment: &Segment,
    ) -> Result<bool> {
        let Some(part) = &segment.part_key else {
            return Ok(false);
        };
        Ok(self
            .get_batch(job_id, batch_id)
            .await?
            .is_some_and(|record| record.parts.contains(part)))
    }

    /// The commit record of a batch (strongly consistent); `None` before its first commit.
    pub async fn get_batch(&self, job_id: &str, batch_id: &str) -> Result<Option<BatchRecord>> {
        self.get_item(job_pk(job_id), format!("{BATCH_SK_PREFIX}{batch_id}"))
            .await?
            .map(|item| batch_from_item(&item))
            .transpose()
    }

    /// Names `deferral` as the batch's deferred copy, which the caller has just sent, unless the
    /// copy named before is still on its way (due after `now`) and is not `previous` (the copy
    /// the caller is itself). `false` when another copy holds the claim: the caller's copy then
    /// stands down when it arrives (it is not the one named), and the named one carries on.
    /// Sending before claiming keeps the rule that a named copy exists.
    pub async fn claim_deferral(
        &self,
        job_id: &str,
        batch_id: &str,
        deferral: &Deferral,
        previous: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut condition = format!(
            "attribute_exists(pk) AND (attribute_not_exists({A_DEFERRAL_DUE}) OR {A_DEFERRAL_DUE} <= :now"
        );
        if previous.is_some() {
            condition.push_str(&format!(" OR {A_DEFERRAL_ID} = :previous"));
        }
        condition.push(')');
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&format!("{BATCH_SK_PREFIX}{batch_id}")))
            .update_expression(format!(
                "SET {A_DEFERRAL_ID} = :id, {A_DEFERRAL_DUE} = :due"
            ))
            .condition_expression(condition)
            .expression_attribute_values(":id", s(&deferral.id))
            .expression_attribute_values(":due", n(deferral.due.timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()));
        if let Some(previous) = previous {
            update = update.expression_attribute_values(":previous", s(previous));
        }
        condition_held(update.send().await, "UpdateItem")
    }

    /// Claims the right to send the finalize request: planning is complete, every batch has
    /// committed, and finalize was not sent, or (with `resend_after`) was sent longer ago than
    /// that without the job ending. Returns the claim's time for exactly one caller, which then
    /// sends the request (and gives the claim back with [`Store::release_finalize`] if it cannot).
    pub async fn claim_finalize(
        &self,
        job_id: &str,
        now: DateTime<Utc>,
        resend_after: Option<Duration>,
    ) -> Result<Option<DateTime<Utc>>> {
        let stale_before = resend_after
            .map(|after| now - chrono::Duration::from_std(after).unwrap_or(chrono::TimeDelta::MAX));
        let mut condition = String::from(
            "attribute_exists(batches_planned) AND batches_committed >= batches_planned \
             AND (attribute_not_exists(finalize_sent) OR finalize_sent = :false",
        );
        if stale_before.is_some() {
            condition.push_str(" OR attribute_not_exists(finalize_at) OR finalize_at < :stale");
        }
        condition.push(')');
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET finalize_sent = :true, finalize_at = :now")
            .condition_expression(condition)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", s(&time_to_string(now)));
        if let Some(stale) = stale_before {
            request = request.expression_attribute_values(":stale", s(&time_to_string(stale)));
        }
        match request.send().await {
            Ok(_) => Ok(Some(now)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("DynamoDB", "UpdateItem", e)),
        }
    }

    /// Gives back a finalize claim made at `claimed_at` whose request could not be sent, so that
    /// the next caller (a redelivered batch, the sweeper) claims and sends it. Best effort: if
    /// this fails too, the sweeper resends once the claim is old.
    pub async fn release_finalize(&self, job_id: &str, claimed_at: DateTime<Utc>) {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET finalize_sent = :false")
            .condition_expression("finalize_at = :at")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":at", s(&time_to_string(claimed_at)))
            .send()
            .await;
        if let Err(e) = result {
            warn!(job_id, error = %Error::aws("DynamoDB", "UpdateItem", e), "could not give back the finalize claim; the sweeper will resend it");
        }
    }

    /// The reporter's saved state of a job's report (its step number and the state), if any.
    pub async fn get_report_state<T: serde::de::DeserializeOwned>(
        &self,
        job_id: &str,
    ) -> Result<Option<(u64, T)>> {
        self.get_job_state(job_id, REPORT_SK).await
    }

    /// Saves the report state; see [`Store::save_job_state`].
    pub async fn save_report_state<T: Serialize>(
        &self,
        job_id: &str,
        step: u64,
        state: &T,
        expires_at: Option<i64>,
    ) -> Result<bool> {
        self.save_job_state(job_id, REPORT_SK, step, state, expires_at)
            .await
    }

    /// A state that a piece of work saves between invocations (item `sk=<name>` in the job's
    /// partition): its step number and the state, if any.
    pub async fn get_job_state<T: serde::de::DeserializeOwned>(
        &self,
        job_id: &str,
        name: &str,
    ) -> Result<Option<(u64, T)>> {
        let Some(item) = self.get_item(job_pk(job_id), name.to_string()).await? else {
            return Ok(None);
        };
        let state =
            serde_json::from_str(get_s(&item, A_STATE)?).map_err(|e| malformed(A_STATE, e))?;
        Ok(Some((get_n_or_zero(&item, A_STEP)?, state)))
    }

    /// When the report state was last saved; `None` before the reporter began.
    pub async fn report_saved_at(&self, job_id: &str) -> Result<Option<DateTime<Utc>>> {
        match self.get_item(job_pk(job_id), REPORT_SK.to_string()).await? {
            Some(item) => get_opt_time(&item, A_UPDATED_AT),
            None => Ok(None),
        }
    }

    /// Saves a job state as step `step`, if the saved one is still step `step - 1` (or, for
    /// step 0, none is saved): of two invocations working on the same thing, one saves and the
    /// other learns that it lost (false).
    pub async fn save_job_state<T: Serialize>(
        &self,
        job_id: &str,
        name: &str,
        step: u64,
        state: &T,
        expires_at: Option<i64>,
    ) -> Result<bool> {
        let json = serde_json::to_string(state)
            .map_err(|e| Error::Other(format!("cannot encode the {name} state: {e}")))?;
        let mut item = Item::from([
            (PK.to_string(), s(&job_pk(job_id))),
            (SK.to_string(), s(name)),
            (A_STEP.to_string(), n(step)),
            (A_STATE.to_string(), s(&json)),
            (A_UPDATED_AT.to_string(), s(&time_to_string(Utc::now()))),
        ]);
        if let Some(ttl) = expires_at {
            item.insert(A_TTL.to_string(), n(ttl));
        }
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        request = if step == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("step = :prev")
                .expression_attribute_values(":prev", n(step - 1))
        };
        condition_held(request.send().await, "PutItem")
    }

    /// Up to `limit` batch records of a job after batch `after` (in batch id order), and the id
    /// to continue after when there are more.
    pub async fn batches_after(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<BatchRecord>, Option<String>)> {
        let after_sk = after.map(|id| format!("{BATCH_SK_PREFIX}{id}"));
        let (items, more) = self
            .query_page(&job_pk(job_id), BATCH_SK_PREFIX, after_sk, limit, None)
            .await?;
        let records = items
            .iter()
            .map(batch_from_item)
            .collect::<Result<Vec<_>>>()?;
        let next = more
            .then(|| records.last().map(|r| r.batch_id.clone()))
            .flatten();
        Ok((records, next))
    }

    /// One page of a partition's items in sort key order after `after_sk` (keys only when
    /// `projection` is given), and whether more follow.
    async fn query_page(
        &self,
        pk: &str,
        sk_prefix: &str,
        after_sk: Option<String>,
        limit: i32,
        projection: Option<&str>,
    ) -> Result<(Vec<Item>, bool)> {
        let start = after_sk.map(|sk| {
            Item::from([
                (PK.to_string(), s(pk)),
                (SK.to_string(), AttributeValue::S(sk)),
            ])
        });
        let mut request = self.client.query().table_name(&self.table);
        // DynamoDB refuses an empty string in a key condition: no prefix, no begins_with.
        request = if sk_prefix.is_empty() {
            request.key_condition_expression("pk = :pk")
        } else {
            request
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(sk_prefix))
        };
        let out = request
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .limit(limit)
            .set_exclusive_start_key(start)
            .set_projection_expression(projection.map(str::to_string))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "Query", e))?;
        let more = out
            .last_evaluated_key
            .as_ref()
            .is_some_and(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), more))
    }

    /// Gives the job's items (batches, plan parts, report state, and its ClientRequestToken's
    /// record) the table's TTL `expires_at` (epoch seconds), a page at a time from `after_sk`.
    /// Stops between pages once `stop_at` has passed and returns the sort key to go on after;
    /// `None` when every item has its TTL.
    pub async fn expire_job_items(
        &self,
        job: &Job,
        expires_at: i64,
        mut after_sk: Option<String>,
        stop_at: Option<std::time::Instant>,
    ) -> Result<Option<String>> {
        let pk = job_pk(&job.job_id);
        if after_sk.is_none() {
            if let Some(token) = &job.request.client_request_token {
                self.set_ttl(&format!("TOKEN#{token}"), TOKEN_SK, expires_at)
                    .await?;
            }
        }
        loop {
            let (items, more) = self
                .query_page(&pk, "", after_sk.clone(), 500, Some("pk, sk"))
                .await?;
            let keys: Vec<String> = items
                .iter()
                .map(|item| get_s(item, SK).map(str::to_string))
                .collect::<Result<_>>()?;
            futures::stream::iter(keys.iter())
                .map(|sk| self.set_ttl(&pk, sk, expires_at))
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<()>>>()?;
            after_sk = keys.last().cloned();
            if !more || after_sk.is_none() {
                return Ok(None);
            }
            if crate::deadline::is_past(stop_at) {
                return Ok(after_sk);
            }
        }
    }

    /// Gives the items of a job that ended without the reporter (failed while preparing,
    /// cancelled before it ran, Suspended too long) their TTL: a few items, all at once. Best
    /// effort: a failure is logged, and the items then stay until deleted by hand.
    pub async fn expire_ended_job(&self, job_id: &str) {
        let result = async {
            let job = self.get_job(job_id).await?;
            let ended = job.termination_date.unwrap_or_else(Utc::now);
            self.expire_job_items(&job, expiry_of(ended), None, None)
                .await
                .map(|_| ())
        }
        .await;
        if let Err(err) = result {
            warn!(job_id, error = %err, "could not give the items of an ended job their TTL");
        }
    }

    async fn set_ttl(&self, pk: &str, sk: &str, expires_at: i64) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .update_expression("SET #ttl = :ttl")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#ttl", A_TTL)
            .expression_attribute_values(":ttl", n(expires_at))
            .send()
            .await;
        // Not applied: gone already (expired, or a token whose record was never written).
        condition_held(result, "UpdateItem").map(|_| ())
    }

    /// Records what the job is planned from (its pinned manifest, or the snapshot of its
    /// manifest generator's listing), unless something is recorded already; returns what is.
    pub async fn set_job_source(&self, job_id: &str, source: &JobSource) -> Result<JobSource> {
        let json = serde_json::to_string(source)
            .map_err(|e| Error::Other(format!("cannot encode the job's source: {e}")))?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET #source = if_not_exists(#source, :source)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#source", A_SOURCE)
            .expression_attribute_values(":source", s(&json))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "UpdateItem", e))?;
        match out.attributes.as_ref().and_then(|a| a.get(A_SOURCE)) {
            Some(AttributeValue::S(stored)) => {
                serde_json::from_str(stored).map_err(|e| malformed(A_SOURCE, e))
            }
            _ => Ok(source.clone()),
        }
    }

    /// The multipart copy left by an earlier run of task `index` of a batch, if any.
    pub async fn get_upload(
        &self,
        job_id: &str,
        batch_id: &str,
        index: u64,
    ) -> Result<Option<UploadRecord>> {
        self.get_item(job_pk(job_id), upload_sk(batch_id, index))
            .await?
            .map(|item| upload_from_item(&item))
            .transpose()
    }

    pub async fn put_upload(
        &self,
        job_id: &str,
        batch_id: &str,
        index: u64,
        record: &UploadRecord,
    ) -> Result<()> {
        let json = serde_json::to_string(record)
            .map_err(|e| Error::Other(format!("cannot encode an upload record: {e}")))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(&job_pk(job_id)))
            .item(SK, s(&upload_sk(batch_id, index)))
            .item(A_UPLOAD, s(&json))
            .item(A_UPDATED_AT, s(&time_to_string(Utc::now())))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "PutItem", e))?;
        Ok(())
    }

    pub async fn delete_upload(&self, job_id: &str, batch_id: &str, index: u64) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&upload_sk(batch_id, index)))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "DeleteItem", e))?;
        Ok(())
    }

    /// The multipart copies a job (or, with `batch_id`, one of its batches) left unfinished:
    /// `(batch id, task index, record)`.
    pub async fn list_uploads(
        &self,
        job_id: &str,
        batch_id: Option<&str>,
    ) -> Result<Vec<(String, u64, UploadRecord)>> {
        let prefix = match batch_id {
            Some(batch) => format!("{UPLOAD_SK_PREFIX}{batch}#"),
            None => UPLOAD_SK_PREFIX.to_string(),
        };
        let items = self.query_all(&job_pk(job_id), Some(&prefix)).await?;
        items
            .iter()
            .map(|item| {
                let sk = get_s(item, SK)?;
                let (batch, index) = sk
                    .strip_prefix(UPLOAD_SK_PREFIX)
                    .and_then(|rest| rest.rsplit_once('#'))
                    .and_then(|(batch, index)| Some((batch, index.parse().ok()?)))
                    .ok_or_else(|| malformed(SK, format!("{sk:?} is not an upload key")))?;
                Ok((batch.to_string(), index, upload_from_item(item)?))
            })
            .collect()
    }

    /// Records a repair or diagnosis as the job's StatusUpdateReason.
    pub async fn set_status_update_reason(&self, job_id: &str, reason: &str) -> Result<()> {
        self.set_on_job(
            job_id,
            "SET status_update_reason = :r",
            vec![(":r", s(reason))],
        )
        .await
    }

    /// The committed batches of a job (all pages).
    pub async fn list_batches(&self, job_id: &str) -> Result<Vec<BatchRecord>> {
        let items = self
            .query_all(&job_pk(job_id), Some(BATCH_SK_PREFIX))
            .await?;
        items.iter().map(batch_from_item).collect()
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

    /// Sets the job's rate limit (tasks per second), or removes it.
    pub async fn set_rate(&self, job_id: &str, rate: Option<u32>) -> Result<()> {
        match rate {
            Some(rate) => {
                self.set_on_job(job_id, "SET max_tps = :r", vec![(":r", n(rate))])
                    .await
            }
            None => self.set_on_job(job_id, "REMOVE max_tps", Vec::new()).await,
        }
    }

    /// The job's rate limiter item (`crate::rate`), as it stands.
    pub async fn get_limiter(&self, job_id: &str) -> Result<Limiter> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(RATE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(Limiter::default());
        };
        Ok(Limiter {
            next_start_ms: get_opt_n(&item, A_NEXT_START)?,
            rate: get_opt_n(&item, A_LIMITER_RATE)?,
        })
    }

    /// Moves the limiter's next start from `last` (as read) to `next`; false when another
    /// executor moved it first.
    pub async fn advance_limiter(
        &self,
        job_id: &str,
        last: Option<u64>,
        next: u64,
    ) -> Result<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(RATE_SK))
            .update_expression("SET next_start_ms = :next")
            .expression_attribute_values(":next", n(next));
        update = match last {
            Some(last) => update
                .condition_expression("next_start_ms = :last")
                .expression_attribute_values(":last", n(last)),
            None => update.condition_expression("attribute_not_exists(next_start_ms)"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::aws("DynamoDB", "UpdateItem", e)),
        }
    }

    /// Sets the rate the limiter uses from its next lease on (0: no limit), so that a change
    /// reaches the batches already running.
    pub async fn set_limiter_rate(&self, job_id: &str, rate: u32) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(RATE_SK))
            .update_expression("SET #rate = :r")
            .expression_attribute_names("#rate", A_LIMITER_RATE)
            .expression_attribute_values(":r", n(rate))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "UpdateItem", e))?;
        Ok(())
    }

    /// Replaces the job's tags; an empty set leaves it with none (stored as `[]`, so that the
    /// request's tags do not come back).
    pub async fn set_job_tags(&self, job_id: &str, tags: &[S3Tag]) -> Result<()> {
        self.set_on_job(job_id, "SET tags = :t", vec![(":t", s(&tags_json(tags)?))])
            .await
    }

    pub async fn update_priority(&self, job_id: &str, priority: i32) -> Result<()> {
        self.set_on_job(job_id, "SET priority = :p", vec![(":p", n(priority))])
            .await
    }

    pub async fn put_template(&self, template: &JobTemplate) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(template_to_item(template)?))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "PutItem", e))?;
        Ok(())
    }

    pub async fn list_templates(&self) -> Result<Vec<JobTemplate>> {
        let items = self.query_all(TEMPLATE_PK, None).await?;
        items.iter().map(template_from_item).collect()
    }

    /// Returns false when there was no template of that name.
    pub async fn delete_template(&self, name: &str) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(TEMPLATE_PK))
            .key(SK, s(name))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

fn string_attribute(name: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| Error::Other(format!("building attribute definition: {e}")))
}

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| Error::Other(format!("building key schema: {e}")))
}

/// The cancellation reason codes of a cancelled transaction ("None" for items that were fine),
/// in the order of the transaction's items; None for any other error.
fn cancellation_codes<R>(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> Option<Vec<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
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

fn is_condition_failure(codes: &[String], index: usize) -> bool {
    codes.get(index).map(String::as_str) == Some("ConditionalCheckFailed")
}

/// Backoff between commit attempts, with jitter: from 50 ms doubling up to four seconds, so that
/// the attempts of the commit's patience (30 s by default) outlast a DynamoDB hiccup of several
/// seconds (each attempt also carries the SDK's own retries).
fn commit_backoff(attempt: u32) -> Duration {
    let ceiling = 50u64.saturating_mul(1 << attempt.min(7)).min(4000);
    Duration::from_millis(fastrand::u64(ceiling / 2..=ceiling))
}

/// Errors of a transaction that may pass on another try: throttling, server errors, timeouts,
/// broken connections, and cancellations for conflicts or throttling (never a failed condition).
fn is_transient_transaction_error(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
    if let Some(codes) = cancellation_codes(err) {
        return !codes.iter().any(|c| c == "ConditionalCheckFailed")
            && codes.iter().any(|c| {
                matches!(
                    c.as_str(),
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                )
            });
    }
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            status >= 500
                || matches!(
                    service.err().code(),
                    Some(
                        "ProvisionedThroughputExceededException"
                            | "ThrottlingException"
                            | "RequestLimitExceeded"
                            | "TransactionInProgressException"
                            | "InternalServerError"
                    )
                )
        }
        _ => false,
    }
}

/// The changes of one status transition, as an update expression and its values.
#[derive(Debug, Default, PartialEq)]
struct TransitionUpdate {
    set: Vec<String>,
    remove: Vec<String>,
    values: Vec<(String, AttributeValue)>,
}

impl TransitionUpdate {
    fn set(&mut self, clause: &str, placeholder: &str, value: AttributeValue) {
        self.set.push(clause.to_string());
        self.values.push((placeholder.to_string(), value));
    }

    fn expression(&self) -> String {
        let mut expression = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        expression
    }
}

/// What a transition writes: the status, the dates and timers it implies, the reason and failure.
fn transition_update(
    from: JobStatus,
    to: JobStatus,
    active_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    reason: Option<&str>,
    failure: Option<&FailureReason>,
) -> TransitionUpdate {
    let mut update = TransitionUpdate::default();
    update.set("#status = :to", ":to", s(to.as_str()));
    if to.is_terminal() {
        update.set("termination_date = :now", ":now", s(&time_to_string(now)));
        update.set("#ttl = :ttl", ":ttl", n(expiry_of(now)));
    } else if to == JobStatus::Suspended {
        update.set("suspended_date = :now", ":now", s(&time_to_string(now)));
    }
    if from == JobStatus::Active {
        // Whole seconds, as S3 reports them; a job that was never marked active adds nothing.
        let elapsed = active_since
            .map(|since| (now - since).num_seconds().max(0))
            .unwrap_or(0);
        update.set(
            "elapsed_active_seconds = if_not_exists(elapsed_active_seconds, :zero) + :elapsed",
            ":elapsed",
            n(elapsed),
        );
        update.values.push((":zero".into(), n(0)));
        update.remove.push(A_ACTIVE_SINCE.to_string());
    }
    if to == JobStatus::Active {
        update.set("active_since = :since", ":since", s(&time_to_string(now)));
    }
    if let Some(reason) = reason {
        update.set("status_update_reason = :reason", ":reason", s(reason));
    }
    if let Some(failure) = failure {
        update.set(
            "failure_reasons = list_append(if_not_exists(failure_reasons, :empty), :failure)",
            ":failure",
            AttributeValue::L(vec![failure_to_value(failure)]),
        );
        update
            .values
            .push((":empty".into(), AttributeValue::L(vec![])));
    }
    update
}

fn jobs_index_projection() -> aws_sdk_dynamodb::types::Projection {
    aws_sdk_dynamodb::types::Projection::builder()
        .projection_type(aws_sdk_dynamodb::types::ProjectionType::Include)
        .non_key_attributes(A_STATUS)
        .non_key_attributes(A_TTL)
        .build()
}

fn jobs_index() -> Result<aws_sdk_dynamodb::types::GlobalSecondaryIndex> {
    aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
        .index_name(JOBS_INDEX)
        .key_schema(key_element(A_LIST_PK, KeyType::Hash)?)
        .key_schema(key_element(A_LIST_SK, KeyType::Range)?)
        .projection(jobs_index_projection())
        .build()
        .map_err(|e| Error::Other(format!("building the job list index: {e}")))
}

/// The job list index's sort key: creation time with a fixed number of digits (so that text
/// order is time order), then the id.
fn list_sort_key(job: &Job) -> String {
    format!(
        "{}#{}",
        job.creation_time
            .to_rfc3339_opts(SecondsFormat::Nanos, true),
        job.job_id
    )
}

/// A ListJobs NextToken: the index position to go on after, base64 of its keys.
fn encode_list_token(last: &Item) -> Result<String> {
    use base64::Engine;
    let keys = serde_json::json!({
        "ListSk": get_s(last, A_LIST_SK)?,
        "Pk": get_s(last, PK)?,
    });
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(keys.to_string()))
}

fn decode_list_token(token: &str) -> Result<Item> {
    use base64::Engine;
    let invalid = || {
        Error::InvalidRequest(format!(
            "NextToken {token:?} is not a token that ListJobs gave"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let keys: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let list_sk = keys["ListSk"].as_str().ok_or_else(invalid)?;
    let pk = keys["Pk"]
        .as_str()
        .filter(|pk| pk.starts_with("JOB#"))
        .ok_or_else(invalid)?;
    Ok(Item::from([
        (A_LIST_PK.to_string(), s(LIST_PK_JOBS)),
        (A_LIST_SK.to_string(), s(list_sk)),
        (PK.to_string(), s(pk)),
        (SK.to_string(), s(JOB_SK)),
    ]))
}

/// The TTL (epoch seconds) of the items of a job that ended at `ended`.
pub fn expiry_of(ended: DateTime<Utc>) -> i64 {
    ended.timestamp() + RETENTION.as_secs() as i64
}

/// An item whose TTL has passed: DynamoDB deletes it eventually, batchops treats it as gone now.
fn is_expired(item: &Item, now: DateTime<Utc>) -> bool {
    matches!(get_opt_n::<i64>(item, A_TTL), Ok(Some(ttl)) if ttl <= now.timestamp())
}

fn upload_sk(batch_id: &str, index: u64) -> String {
    format!("{UPLOAD_SK_PREFIX}{batch_id}#{index:06}")
}

fn upload_from_item(item: &Item) -> Result<UploadRecord> {
    serde_json::from_str(get_s(item, A_UPLOAD)?).map_err(|e| malformed(A_UPLOAD, e))
}

fn plan_sk(part: PlanPart) -> String {
    format!("{PLAN_SK_PREFIX}{}", part.id())
}

/// A plan part checkpoint as a DynamoDB item.
pub fn checkpoint_to_item(job_id: &str, checkpoint: &PlanCheckpoint) -> Item {
    let mut item = Item::from([
        (PK.to_string(), s(&job_pk(job_id))),
        (SK.to_string(), s(&plan_sk(checkpoint.part))),
        (A_PART.to_string(), s(&checkpoint.part.id())),
        (A_NEXT_TASK.to_string(), n(checkpoint.next_task)),
        (A_BATCHES.to_string(), n(checkpoint.batches)),
        (A_DONE.to_string(), AttributeValue::Bool(checkpoint.done)),
    ]);
    if let Some(at) = checkpoint.continued_at {
        item.insert(A_CONTINUED_AT.to_string(), n(at));
    }
    if checkpoint.reserved > 0 {
        item.insert(A_RESERVED.to_string(), n(checkpoint.reserved));
    }
    if let Some(at) = checkpoint.updated_at {
        item.insert(A_UPDATED_AT.to_string(), s(&time_to_string(at)));
    }
    if checkpoint.resume.is_some() {
        item.insert(A_RESUME.to_string(), resume_value(checkpoint.resume));
    }
    item
}

/// A CSV resume point as `[task, byte, line]`, or NULL.
fn resume_value(point: Option<crate::manifest::ResumePoint>) -> AttributeValue {
    match point {
        Some(p) => AttributeValue::L(vec![n(p.task), n(p.byte), n(p.line)]),
        None => AttributeValue::Null(true),
    }
}

fn resume_from_item(item: &Item) -> Result<Option<crate::manifest::ResumePoint>> {
    match item.get(A_RESUME) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::L(values)) => {
            let number = |i: usize| -> Result<u64> {
                match values.get(i) {
                    Some(AttributeValue::N(v)) => {
                        v.parse().map_err(|_| malformed(A_RESUME, format!("{v:?}")))
                    }
                    other => Err(malformed(A_RESUME, format!("{other:?}"))),
                }
            };
            Ok(Some(crate::manifest::ResumePoint {
                task: number(0)?,
                byte: number(1)?,
                line: number(2)?,
            }))
        }
        Some(other) => Err(malformed(A_RESUME, format!("{other:?}"))),
    }
}

pub fn checkpoint_from_item(item: &Item) -> Result<PlanCheckpoint> {
    Ok(PlanCheckpoint {
        part: PlanPart::parse(get_s(item, A_PART)?).map_err(|e| malformed(A_PART, e))?,
        next_task: get_n_or_zero(item, A_NEXT_TASK)?,
        batches: get_n_or_zero(item, A_BATCHES)?,
        done: get_bool(item, A_DONE)?,
        continued_at: get_opt_n(item, A_CONTINUED_AT)?,
        reserved: get_n_or_zero(item, A_RESERVED)?,
        updated_at: get_opt_time(item, A_UPDATED_AT)?,
        resume: resume_from_item(item)?,
    })
}

fn job_pk(job_id: &str) -> String {
    format!("JOB#{job_id}")
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Timestamps are stored as RFC 3339 in UTC with full precision, so they read back unchanged.
fn time_to_string(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn malformed(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Other(format!("stored record is malformed: {what}: {detail}"))
}

fn get_opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
        Some(other) => Err(malformed(name, format!("expected a string, got {other:?}"))),
    }
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    get_opt_s(item, name)?.ok_or_else(|| malformed(name, "missing"))
}

fn get_opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| malformed(name, format!("{v:?} is not a valid number here"))),
        Some(other) => Err(malformed(name, format!("expected a number, got {other:?}"))),
    }
}

/// Counters that commits create with ADD read as 0 until the first commit.
fn get_n_or_zero<T: std::str::FromStr + Default>(item: &Item, name: &str) -> Result<T> {
    Ok(get_opt_n(item, name)?.unwrap_or_default())
}

fn get_opt_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>> {
    get_opt_s(item, name)?
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| malformed(name, e))
        })
        .transpose()
}

fn get_bool(item: &Item, name: &str) -> Result<bool> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(false),
        Some(AttributeValue::Bool(v)) => Ok(*v),
        Some(other) => Err(malformed(
            name,
            format!("expected a boolean, got {other:?}"),
        )),
    }
}

fn failure_to_value(failure: &FailureReason) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        (FAILURE_CODE.to_string(), s(&failure.failure_code)),
        (FAILURE_REASON.to_string(), s(&failure.failure_reason)),
    ]))
}

fn failure_from_value(value: &AttributeValue) -> Result<FailureReason> {
    let AttributeValue::M(map) = value else {
        return Err(malformed(A_FAILURES, "an entry is not a map"));
    };
    Ok(FailureReason {
        failure_code: get_s(map, FAILURE_CODE)?.to_string(),
        failure_reason: get_s(map, FAILURE_REASON)?.to_string(),
    })
}

/// The job record as a DynamoDB item.
pub fn job_to_item(job: &Job) -> Result<Item> {
    let request = serde_json::to_string(&job.request)
        .map_err(|e| Error::Other(format!("cannot serialise job {}: {e}", job.job_id)))?;
    let mut item = Item::from([
        (PK.to_string(), s(&job_pk(&job.job_id))),
        (SK.to_string(), s(JOB_SK)),
        (A_JOB_ID.to_string(), s(&job.job_id)),
        (A_LIST_PK.to_string(), s(LIST_PK_JOBS)),
        (A_LIST_SK.to_string(), s(&list_sort_key(job))),
        (A_REQUEST.to_string(), s(&request)),
        (A_STATUS.to_string(), s(job.status.as_str())),
        (A_PRIORITY.to_string(), n(job.priority)),
        (
            A_CREATION_TIME.to_string(),
            s(&time_to_string(job.creation_time)),
        ),
        (A_ELAPSED_ACTIVE.to_string(), n(job.elapsed_active_seconds)),
        (
            A_FAILURES.to_string(),
            AttributeValue::L(job.failure_reasons.iter().map(failure_to_value).collect()),
        ),
        (A_SUCCEEDED.to_string(), n(job.progress.succeeded)),
        (A_FAILED.to_string(), n(job.progress.failed)),
        (A_NOT_RUN.to_string(), n(job.progress.not_run)),
        (A_COMMITTED.to_string(), n(job.progress.batches_committed)),
        (
            A_FINALIZE.to_string(),
            AttributeValue::Bool(job.finalize_sent),
        ),
    ]);
    let optional_times = [
        (A_TERMINATION_DATE, job.termination_date),
        (A_SUSPENDED_DATE, job.suspended_date),
        (A_ACTIVE_SINCE, job.active_since),
        (A_FINALIZE_AT, job.tracking.finalize_at),
        (A_PROGRESS_AT, job.tracking.last_progress_at),
    ];
    for (name, time) in optional_times {
        if let Some(time) = time {
            item.insert(name.to_string(), s(&time_to_string(time)));
        }
    }
    if let Some(reason) = &job.status_update_reason {
        item.insert(A_REASON.to_string(), s(reason));
    }
    if let Some(total) = job.progress.total_tasks {
        item.insert(A_TOTAL.to_string(), n(total));
    }
    if let Some(planned) = job.progress.batches_planned {
        item.insert(A_PLANNED.to_string(), n(planned));
    }
    item.insert(A_TAGS.to_string(), s(&tags_json(&job.tags)?));
    if let Some(rate) = job.max_tasks_per_second {
        item.insert(A_RATE.to_string(), n(rate));
    }
    if let Some(source) = &job.tracking.source {
        let json = serde_json::to_string(source)
            .map_err(|e| Error::Other(format!("cannot encode the job's source: {e}")))?;
        item.insert(A_SOURCE.to_string(), s(&json));
    }
    Ok(item)
}

/// A job record read back from its DynamoDB item.
pub fn job_from_item(item: &Item) -> Result<Job> {
    let pk = get_s(item, PK)?;
    let job_id = pk
        .strip_prefix("JOB#")
        .ok_or_else(|| malformed(PK, format!("{pk:?} is not a job key")))?
        .to_string();
    let request: CreateJobRequest =
        serde_json::from_str(get_s(item, A_REQUEST)?).map_err(|e| malformed(A_REQUEST, e))?;
    let failure_reasons = match item.get(A_FAILURES) {
        None | Some(AttributeValue::Null(_)) => Vec::new(),
        Some(AttributeValue::L(list)) => {
            list.iter().map(failure_from_value).collect::<Result<_>>()?
        }
        Some(other) => {
            return Err(malformed(
                A_FAILURES,
                format!("expected a list, got {other:?}"),
            ))
        }
    };
    Ok(Job {
        status: JobStatus::parse(get_s(item, A_STATUS)?).map_err(|e| malformed(A_STATUS, e))?,
        priority: get_opt_n(item, A_PRIORITY)?.unwrap_or(request.priority),
        creation_time: get_opt_time(item, A_CREATION_TIME)?
            .ok_or_else(|| malformed(A_CREATION_TIME, "missing"))?,
        termination_date: get_opt_time(item, A_TERMINATION_DATE)?,
        suspended_date: get_opt_time(item, A_SUSPENDED_DATE)?,
        active_since: get_opt_time(item, A_ACTIVE_SINCE)?,
        elapsed_active_seconds: get_n_or_zero(item, A_ELAPSED_ACTIVE)?,
        status_update_reason: get_opt_s(item, A_REASON)?.map(str::to_string),
        failure_reasons,
        progress: Progress {
            total_tasks: get_opt_n(item, A_TOTAL)?,
            succeeded: get_n_or_zero(item, A_SUCCEEDED)?,
            failed: get_n_or_zero(item, A_FAILED)?,
            not_run: get_n_or_zero(item, A_NOT_RUN)?,
            batches_planned: get_opt_n(item, A_PLANNED)?,
            batches_committed: get_n_or_zero(item, A_COMMITTED)?,
        },
        finalize_sent: get_bool(item, A_FINALIZE)?,
        tags: match get_opt_s(item, A_TAGS)? {
            Some(json) => serde_json::from_str(json).map_err(|e| malformed(A_TAGS, e))?,
            None => request.tags.clone().unwrap_or_default(),
        },
        max_tasks_per_second: get_opt_n(item, A_RATE)?,
        tracking: JobTracking {
            finalize_at: get_opt_time(item, A_FINALIZE_AT)?,
            last_progress_at: get_opt_time(item, A_PROGRESS_AT)?,
            source: get_opt_s(item, A_SOURCE)?
                .map(|json| serde_json::from_str(json).map_err(|e| malformed(A_SOURCE, e)))
                .transpose()?,
        },
        job_id,
        request,
    })
}

fn tags_json(tags: &[S3Tag]) -> Result<String> {
    serde_json::to_string(tags).map_err(|e| Error::Other(format!("cannot encode job tags: {e}")))
}

fn token_item(token: &str, job_id: &str) -> Item {
    Item::from([
        (PK.to_string(), s(&format!("TOKEN#{token}"))),
        (SK.to_string(), s(TOKEN_SK)),
        (A_JOB_ID.to_string(), s(job_id)),
    ])
}

/// A batch commit record as a DynamoDB item.
pub fn batch_to_item(job_id: &str, batch: &BatchRecord) -> Item {
    let mut item = Item::from([
        (PK.to_string(), s(&job_pk(job_id))),
        (
            SK.to_string(),
            s(&format!("{BATCH_SK_PREFIX}{}", batch.batch_id)),
        ),
        (A_BATCH_ID.to_string(), s(&batch.batch_id)),
        (A_SUCCEEDED.to_string(), n(batch.counts.succeeded)),
        (A_FAILED.to_string(), n(batch.counts.failed)),
        (A_NOT_RUN.to_string(), n(batch.counts.not_run)),
        (A_TASKS.to_string(), n(batch.tasks)),
        (A_TASKS_DONE.to_string(), n(batch.tasks_done)),
    ]);
    if !batch.parts.is_empty() {
        item.insert(
            A_PARTS.to_string(),
            AttributeValue::L(batch.parts.iter().map(|p| s(p)).collect()),
        );
    }
    if let Some(at) = batch.updated_at {
        item.insert(A_UPDATED_AT.to_string(), s(&time_to_string(at)));
    }
    if let Some(deferral) = &batch.deferral {
        item.insert(A_DEFERRAL_ID.to_string(), s(&deferral.id));
        item.insert(
            A_DEFERRAL_DUE.to_string(),
            n(deferral.due.timestamp_millis()),
        );
    }
    item
}

pub fn batch_from_item(item: &Item) -> Result<BatchRecord> {
    let counts = BatchCounts {
        succeeded: get_n_or_zero(item, A_SUCCEEDED)?,
        failed: get_n_or_zero(item, A_FAILED)?,
        not_run: get_n_or_zero(item, A_NOT_RUN)?,
    };
    let parts = match item.get(A_PARTS) {
        None | Some(AttributeValue::Null(_)) => Vec::new(),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(key) => Ok(key.clone()),
                other => Err(malformed(
                    A_PARTS,
                    format!("expected strings, got {other:?}"),
                )),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(malformed(
                A_PARTS,
                format!("expected a list, got {other:?}"),
            ))
        }
    };
    let done = counts.succeeded + counts.failed + counts.not_run;
    Ok(BatchRecord {
        batch_id: get_s(item, A_BATCH_ID)?.to_string(),
        counts,
        tasks: get_opt_n(item, A_TASKS)?.unwrap_or(done),
        tasks_done: get_opt_n(item, A_TASKS_DONE)?.unwrap_or(done),
        parts,
        updated_at: get_opt_time(item, A_UPDATED_AT)?,
        deferral: deferral_from_item(item)?,
    })
}

fn deferral_from_item(item: &Item) -> Result<Option<Deferral>> {
    let (Some(id), Some(due)) = (
        get_opt_s(item, A_DEFERRAL_ID)?,
        get_opt_n::<i64>(item, A_DEFERRAL_DUE)?,
    ) else {
        return Ok(None);
    };
    let due = DateTime::from_timestamp_millis(due)
        .ok_or_else(|| malformed(A_DEFERRAL_DUE, format!("{due} is not a time")))?;
    Ok(Some(Deferral {
        id: id.to_string(),
        due,
    }))
}

/// A job template as a DynamoDB item.
pub fn template_to_item(template: &JobTemplate) -> Result<Item> {
    let request = serde_json::to_string(&template.request).map_err(|e| {
        Error::Other(format!(
            "cannot serialise job template {}: {e}",
            template.name
        ))
    })?;
    Ok(Item::from([
        (PK.to_string(), s(TEMPLATE_PK)),
        (SK.to_string(), s(&template.name)),
        (A_NAME.to_string(), s(&template.name)),
        (A_MANIFEST_BUCKET.to_string(), s(&template.manifest_bucket)),
        (A_MANIFEST_PREFIX.to_string(), s(&template.manifest_prefix)),
        (A_REQUEST.to_string(), s(&request)),
    ]))
}

pub fn template_from_item(item: &Item) -> Result<JobTemplate> {
    Ok(JobTemplate {
        name: get_s(item, SK)?.to_string(),
        manifest_bucket: get_s(item, A_MANIFEST_BUCKET)?.to_string(),
        manifest_prefix: get_opt_s(item, A_MANIFEST_PREFIX)?
            .unwrap_or_default()
            .to_string(),
        request: serde_json::from_str(get_s(item, A_REQUEST)?)
            .map_err(|e| malformed(A_REQUEST, e))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn request() -> CreateJobRequest {
        CreateJobRequest::parse(
            r#"{
            "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}},
            "Report": {"Bucket": "arn:aws:s3:::reports", "Enabled": true, "Prefix": "p",
                       "Format": "Report_CSV_20180820", "ReportScope": "FailedTasksOnly"},
            "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                         "Location": {"ObjectArn": "arn:aws:s3:::m/manifest.csv", "ETag": "e"}},
            "ClientRequestToken": "tok",
            "Priority": 7,
            "Description": "d"
        }"#,
        )
        .unwrap()
    }

    fn time(secs: i64, nanos: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, nanos).unwrap()
    }

    fn full_job() -> Job {
        Job {
            job_id: "0b9f7c3e-1111-2222-3333-444455556666".into(),
            request: request(),
            status: JobStatus::Failed,
            priority: 42,
            creation_time: time(0, 123_456_789),
            termination_date: Some(time(100, 0)),
            suspended_date: Some(time(10, 5)),
            active_since: Some(time(20, 999)),
            elapsed_active_seconds: 77,
            status_update_reason: Some("because".into()),
            failure_reasons: vec![FailureReason {
                failure_code: "TaskFailureThresholdExceeded".into(),
                failure_reason: "too many".into(),
            }],
            progress: Progress {
                total_tasks: Some(3000),
                succeeded: 1,
                failed: 2000,
                not_run: 999,
                batches_planned: Some(30),
                batches_committed: 30,
            },
            finalize_sent: true,
            tags: vec![S3Tag {
                key: "team".into(),
                value: "a, \"b\"".into(),
            }],
            max_tasks_per_second: Some(250),
            tracking: JobTracking {
                finalize_at: Some(time(90, 1)),
                last_progress_at: Some(time(80, 2)),
                source: Some(JobSource {
                    manifest: request().manifest.unwrap(),
                    pin: crate::manifest::ManifestPin {
                        etag: Some("\"e\"".into()),
                        version_id: Some("v1".into()),
                    },
                    tasks: Some(3000),
                }),
            },
        }
    }

    #[test]
    fn job_round_trips_through_an_item() {
        let job = full_job();
        let item = job_to_item(&job).unwrap();
        assert_eq!(item[PK], s(&format!("JOB#{}", job.job_id)));
        assert_eq!(item[SK], s("JOB"));
        assert_eq!(job_from_item(&item).unwrap(), job);
    }

    #[test]
    fn a_job_stored_before_job_tagging_has_the_tags_of_its_request() {
        let mut job = full_job();
        let asked = vec![S3Tag {
            key: "k".into(),
            value: "v".into(),
        }];
        job.request.tags = Some(asked.clone());
        let mut item = job_to_item(&job).unwrap();
        item.remove(A_TAGS);
        assert_eq!(job_from_item(&item).unwrap().tags, asked);
        // Once tagging has run, the stored set wins, even when it is empty.
        job.tags = vec![];
        let item = job_to_item(&job).unwrap();
        assert_eq!(item[A_TAGS], s("[]"));
        assert_eq!(job_from_item(&item).unwrap().tags, vec![]);
    }

    #[test]
    fn new_job_round_trips_and_omits_unset_attributes() {
        let job = Job {
            status: JobStatus::New,
            termination_date: None,
            suspended_date: None,
            active_since: None,
            elapsed_active_seconds: 0,
            status_update_reason: None,
            failure_reasons: vec![],
            progress: Progress::default(),
            finalize_sent: false,
            tags: vec![],
            max_tasks_per_second: None,
            tracking: JobTracking::default(),
            ..full_job()
        };
        let item = job_to_item(&job).unwrap();
        for absent in [
            A_TERMINATION_DATE,
            A_SUSPENDED_DATE,
            A_ACTIVE_SINCE,
            A_REASON,
            A_TOTAL,
            A_PLANNED,
            A_RATE,
        ] {
            assert!(!item.contains_key(absent), "{absent} should be absent");
        }
        assert_eq!(job_from_item(&item).unwrap(), job);
    }

    #[test]
    fn counters_missing_from_an_item_read_as_zero() {
        let mut item = job_to_item(&full_job()).unwrap();
        for name in [
            A_SUCCEEDED,
            A_FAILED,
            A_NOT_RUN,
            A_COMMITTED,
            A_FINALIZE,
            A_ELAPSED_ACTIVE,
        ] {
            item.remove(name);
        }
        let job = job_from_item(&item).unwrap();
        assert_eq!(job.progress.succeeded, 0);
        assert_eq!(job.progress.batches_committed, 0);
        assert_eq!(job.elapsed_active_seconds, 0);
        assert!(!job.finalize_sent);
    }

    #[test]
    fn malformed_items_are_errors_not_panics() {
        let mut item = job_to_item(&full_job()).unwrap();
        item.insert(A_STATUS.into(), s("Sleeping"));
        assert!(job_from_item(&item).is_err());
        let mut item = job_to_item(&full_job()).unwrap();
        item.insert(A_SUCCEEDED.into(), s("many"));
        let err = job_from_item(&item).unwrap_err().to_string();
        assert!(err.contains("succeeded"), "{err}");
        let mut item = job_to_item(&full_job()).unwrap();
        item.insert(PK.into(), s("TEMPLATE"));
        assert!(job_from_item(&item).is_err());
    }

    #[test]
    fn batch_round_trips_through_an_item() {
        let batch = BatchRecord {
            batch_id: "b-00000042".into(),
            counts: BatchCounts {
                succeeded: 3,
                failed: 2,
                not_run: 1,
            },
            tasks: 9,
            tasks_done: 6,
            parts: vec![
                "parts/job/b-00000042/abc.csv".into(),
                "parts/job/b-00000042/def.csv".into(),
            ],
            updated_at: Some("2026-12-02T10:00:00.123Z".parse().unwrap()),
            deferral: Some(Deferral {
                id: "d1".into(),
                due: "2026-12-02T10:00:20.123Z".parse().unwrap(),
            }),
        };
        let item = batch_to_item("j", &batch);
        assert_eq!(item[SK], s("BATCH#b-00000042"));
        assert_eq!(batch_from_item(&item).unwrap(), batch);
        assert!(!batch.is_done());
        let without_part = BatchRecord {
            parts: vec![],
            tasks: 6,
            ..batch
        };
        assert!(without_part.is_done());
        assert_eq!(
            batch_from_item(&batch_to_item("j", &without_part)).unwrap(),
            without_part
        );
    }

    #[test]
    fn plan_checkpoint_round_trips_through_an_item() {
        for checkpoint in [
            PlanCheckpoint::start(PlanPart::Whole),
            PlanCheckpoint {
                part: PlanPart::InventoryFile(12),
                next_task: 123_456_789,
                batches: 4321,
                done: true,
                continued_at: Some(123_000_000),
                reserved: 4400,
                updated_at: Some(time(5, 0)),
                resume: Some(crate::manifest::ResumePoint {
                    task: 123_456_000,
                    byte: 9_876_543_210,
                    line: 123_456_001,
                }),
            },
        ] {
            let item = checkpoint_to_item("j", &checkpoint);
            assert_eq!(item[PK], s("JOB#j"));
            assert_eq!(
                item[SK],
                s(&format!("PLAN#{}", checkpoint.part.id())),
                "plan items never start with BATCH#, so list_batches does not see them"
            );
            assert_eq!(checkpoint_from_item(&item).unwrap(), checkpoint);
        }
        let mut item = checkpoint_to_item("j", &PlanCheckpoint::start(PlanPart::Whole));
        item.insert(A_PART.into(), s("x7"));
        assert!(checkpoint_from_item(&item).is_err());
    }

    #[test]
    fn template_round_trips_through_an_item() {
        let mut req = request();
        req.manifest = None;
        req.client_request_token = None;
        let template = JobTemplate {
            name: "nightly".into(),
            manifest_bucket: "inventory".into(),
            manifest_prefix: "inv/source/config/".into(),
            request: req,
        };
        let item = template_to_item(&template).unwrap();
        assert_eq!(item[PK], s("TEMPLATE"));
        assert_eq!(template_from_item(&item).unwrap(), template);
    }

    #[test]
    fn entering_active_starts_the_timer() {
        let now = time(50, 0);
        let update = transition_update(JobStatus::Ready, JobStatus::Active, None, now, None, None);
        assert_eq!(
            update.expression(),
            "SET #status = :to, active_since = :since"
        );
        assert!(update
            .values
            .contains(&(":since".into(), s(&time_to_string(now)))));
    }

    #[test]
    fn leaving_active_adds_whole_seconds_and_stops_the_timer() {
        let update = transition_update(
            JobStatus::Active,
            JobStatus::Complete,
            Some(time(10, 0)),
            time(75, 900_000_000),
            Some("done"),
            None,
        );
        let expression = update.expression();
        assert!(
            expression.contains("termination_date = :now"),
            "{expression}"
        );
        assert!(
            expression.contains("elapsed_active_seconds = if_not_exists"),
            "{expression}"
        );
        assert!(expression.ends_with(" REMOVE active_since"), "{expression}");
        assert!(
            expression.contains("status_update_reason = :reason"),
            "{expression}"
        );
        assert!(update.values.contains(&(":elapsed".into(), n(65))));
        assert!(update.values.contains(&(":to".into(), s("Complete"))));
    }

    #[test]
    fn suspension_and_failures_are_recorded() {
        let update = transition_update(
            JobStatus::Preparing,
            JobStatus::Suspended,
            None,
            time(0, 0),
            None,
            None,
        );
        assert!(update.expression().contains("suspended_date = :now"));
        assert!(!update.expression().contains("termination_date"));
        let failure = FailureReason {
            failure_code: "ManifestReadFailed".into(),
            failure_reason: "ETag mismatch".into(),
        };
        let update = transition_update(
            JobStatus::Preparing,
            JobStatus::Failed,
            None,
            time(0, 0),
            None,
            Some(&failure),
        );
        assert!(update.expression().contains("list_append"));
        assert!(update.values.contains(&(
            ":failure".into(),
            AttributeValue::L(vec![failure_to_value(&failure)])
        )));
        assert!(update.values.iter().any(|(name, _)| name == ":empty"));
    }

    #[test]
    fn the_list_index_orders_jobs_newest_first_by_text() {
        let job = |id: &str, secs: i64, nanos: u32| Job {
            job_id: id.into(),
            creation_time: time(secs, nanos),
            ..full_job()
        };
        let mut keys = [
            list_sort_key(&job("a", 1, 0)),
            list_sort_key(&job("b", 3, 0)),
            list_sort_key(&job("c", 1, 500_000_000)),
            list_sort_key(&job("d", 1, 5)),
        ];
        keys.sort_by(|x, y| y.cmp(x));
        let ids: Vec<&str> = keys.iter().map(|k| k.rsplit('#').next().unwrap()).collect();
        assert_eq!(ids, ["b", "c", "d", "a"], "{keys:?}");
    }

    #[test]
    fn list_tokens_round_trip_and_bad_ones_are_refused() {
        let item = Item::from([
            (A_LIST_PK.to_string(), s(LIST_PK_JOBS)),
            (
                A_LIST_SK.to_string(),
                s("2026-12-02T00:00:00.000000000Z#j1"),
            ),
            (PK.to_string(), s("JOB#j1")),
            (SK.to_string(), s(JOB_SK)),
        ]);
        let token = encode_list_token(&item).unwrap();
        assert_eq!(decode_list_token(&token).unwrap(), item);
        for bad in ["", "not base64!", "e30"] {
            assert!(
                matches!(decode_list_token(bad), Err(Error::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn commit_backoff_grows_and_stays_bounded() {
        for attempt in 1..20 {
            let delay = commit_backoff(attempt);
            assert!(delay >= Duration::from_millis(50) && delay <= Duration::from_secs(4));
        }
        let total: Duration = (1..10).map(commit_backoff).sum();
        assert!(total >= Duration::from_secs(8), "{total:?}");
    }
}
