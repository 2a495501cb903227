//! The store: job records, batch commits and job templates in one DynamoDB table.

use crate::error::{Error, Result};
use crate::job::{CreateJobRequest, FailureReason, Job, JobStatus};
use serde::{Deserialize, Serialize};

/// Outcome counts of one batch, added to the job's progress exactly once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCounts {
    pub succeeded: u64,
    pub failed: u64,
    /// Tasks not run because the job was cancelled or failing.
    pub not_run: u64,
}

/// The winning commit of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub batch_id: String,
    pub counts: BatchCounts,
    /// Key in the system bucket of the result part (report rows) written by the winning attempt.
    pub part_key: Option<String>,
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

#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn unimplemented_yet(what: &str) -> Error {
    Error::Other(format!("store::{what} is not implemented yet"))
}

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
        }
    }

    pub fn from_context(ctx: &crate::Context) -> Self {
        Store::new(ctx.dynamodb.clone(), ctx.settings.table.clone())
    }

    /// Creates the table (on-demand billing, keys `pk`/`sk`) when missing; for `batchops local up`.
    pub async fn create_table_if_missing(&self) -> Result<()> {
        let _ = (&self.client, &self.table);
        Err(unimplemented_yet("create_table_if_missing"))
    }

    /// Stores a new job. With a ClientRequestToken, a second call with the same token stores
    /// nothing and returns the first job's id.
    pub async fn put_new_job(&self, _job: &Job) -> Result<PutJobOutcome> {
        Err(unimplemented_yet("put_new_job"))
    }

    /// Reads a job (strongly consistent). `Error::JobNotFound` when there is none.
    pub async fn get_job(&self, _job_id: &str) -> Result<Job> {
        Err(unimplemented_yet("get_job"))
    }

    /// Every job, or those in the given statuses, newest first.
    pub async fn list_jobs(&self, _statuses: &[JobStatus]) -> Result<Vec<Job>> {
        Err(unimplemented_yet("list_jobs"))
    }

    /// Moves a job to `to` if its current status is `from` and `job::can_transition(from, to)`.
    /// Records the termination date (terminal statuses), suspended date, active time, the status
    /// update reason and appends `failure` to FailureReasons. Returns false when the job was not in
    /// `from` any more (somebody else moved it first).
    pub async fn transition(
        &self,
        _job_id: &str,
        _from: JobStatus,
        _to: JobStatus,
        _reason: Option<String>,
        _failure: Option<FailureReason>,
    ) -> Result<bool> {
        Err(unimplemented_yet("transition"))
    }

    /// Sets TotalNumberOfTasks (counted while preparing a job that awaits confirmation).
    pub async fn set_total_tasks(&self, _job_id: &str, _total: u64) -> Result<()> {
        Err(unimplemented_yet("set_total_tasks"))
    }

    /// Records that planning is complete: the total number of tasks and of batches sent.
    /// Idempotent (SET, not ADD), so a replanned manifest does not double anything.
    pub async fn finish_planning(
        &self,
        _job_id: &str,
        _total_tasks: u64,
        _batches: u64,
    ) -> Result<()> {
        Err(unimplemented_yet("finish_planning"))
    }

    /// Commits one batch exactly once: in one transaction, creates the batch record only if it does
    /// not exist and adds its counts to the job. Returns false (and changes nothing) for a batch
    /// that was committed before.
    pub async fn commit_batch(
        &self,
        _job_id: &str,
        _batch_id: &str,
        _counts: BatchCounts,
        _part_key: Option<&str>,
    ) -> Result<bool> {
        Err(unimplemented_yet("commit_batch"))
    }

    /// Sets the job's finalize flag if planning is complete, every batch has committed and the
    /// flag was not set. True for exactly one caller, which then sends the finalize message.
    pub async fn claim_finalize(&self, _job_id: &str) -> Result<bool> {
        Err(unimplemented_yet("claim_finalize"))
    }

    /// The committed batches of a job (all pages).
    pub async fn list_batches(&self, _job_id: &str) -> Result<Vec<BatchRecord>> {
        Err(unimplemented_yet("list_batches"))
    }

    pub async fn update_priority(&self, _job_id: &str, _priority: i32) -> Result<()> {
        Err(unimplemented_yet("update_priority"))
    }

    pub async fn put_template(&self, _template: &JobTemplate) -> Result<()> {
        Err(unimplemented_yet("put_template"))
    }

    pub async fn list_templates(&self) -> Result<Vec<JobTemplate>> {
        Err(unimplemented_yet("list_templates"))
    }

    /// Returns false when there was no template of that name.
    pub async fn delete_template(&self, _name: &str) -> Result<bool> {
        Err(unimplemented_yet("delete_template"))
    }
}
