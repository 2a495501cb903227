//! The job: the CreateJob request in S3 Control's JSON, the job's status machine, its progress and
//! the failure-threshold rule.

mod copy_operation;
pub mod manifest_generator;
mod object_operations;
mod operation;
mod request;
mod status;
#[cfg(test)]
mod tests;
mod timestamp;

pub use copy_operation::*;
pub use object_operations::*;
pub use operation::*;
pub use request::*;
pub use status::*;

// The manifest member of a request is the manifest module's (a lower module); named here too
// because it is part of the CreateJob request.
pub use crate::manifest::{
    bucket_from_arn, parse_object_arn, JobManifest, ManifestLocation, ManifestSpec,
    CSV_MANIFEST_FORMAT, INVENTORY_CSV_FORMAT,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One entry of a job's `FailureReasons`: why the job failed, as DescribeJob reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailureReason {
    /// `FailureCode`: a short machine-readable code for the failure.
    pub failure_code: String,
    /// `FailureReason`: the failure explained in words.
    pub failure_reason: String,
}

/// Progress counters, kept in the job record and updated only by batch commits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Known once the manifest has been read through.
    pub total_tasks: Option<u64>,
    /// Tasks that ran and succeeded (`NumberOfTasksSucceeded`).
    pub succeeded: u64,
    /// Tasks that ran and failed (`NumberOfTasksFailed`).
    pub failed: u64,
    /// Tasks of batches that were not run (job cancelled or failing).
    pub not_run: u64,
    /// Known once planning is complete.
    pub batches_planned: Option<u64>,
    /// Batches whose tasks have all been committed (counted here exactly once).
    pub batches_committed: u64,
    /// The batches of a canary (`BatchOps.CanaryTasks`), known once they are all sent; cleared
    /// when the canary's report is written and the job waits in Suspended.
    pub canary_batches: Option<u64>,
}

impl Progress {
    /// True when planning is finished and every planned batch has committed.
    pub fn all_batches_committed(&self) -> bool {
        self.batches_planned
            .is_some_and(|planned| self.batches_committed >= planned)
    }

    /// True when every batch of a canary has committed and its report is due.
    pub fn canary_committed(&self) -> bool {
        self.batches_planned.is_none()
            && self
                .canary_batches
                .is_some_and(|canary| self.batches_committed >= canary)
    }

    /// True when a report is due: the job's final one, or its canary's.
    pub fn report_due(&self) -> bool {
        self.all_batches_committed() || self.canary_committed()
    }
}

/// A job as stored: the request that made it plus everything that happened since.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job's id, the key of its record and the last part of its ARN.
    pub job_id: String,
    /// The CreateJob request as it was made (kept unchanged, so repeats can be compared).
    pub request: CreateJobRequest,
    /// Where the job is in its status machine.
    pub status: JobStatus,
    /// The job's `Priority` (the request's at first, changed by UpdateJobPriority); between
    /// Active jobs, higher runs first.
    pub priority: i32,
    /// When CreateJob stored the job.
    pub creation_time: DateTime<Utc>,
    /// When the job reached a terminal status; `None` while it has not.
    pub termination_date: Option<DateTime<Utc>>,
    /// When the job last went Suspended; `None` if it never has.
    pub suspended_date: Option<DateTime<Utc>>,
    /// When the job last became Active; `None` while it is not Active.
    pub active_since: Option<DateTime<Utc>>,
    /// Whole seconds spent Active in earlier spells, not counting the current one
    /// (see `active_since`).
    pub elapsed_active_seconds: i64,
    /// The `StatusUpdateReason` last given with a status change or repair; `None`: none yet.
    pub status_update_reason: Option<String>,
    /// The job's `FailureReasons`, in the order they were recorded.
    pub failure_reasons: Vec<FailureReason>,
    /// Task and batch counters.
    pub progress: Progress,
    /// The request to write the report is claimed (sent once per report); set back to false
    /// if it could not be sent, so that it is sent again.
    pub finalize_sent: bool,
    /// The job's own tags (S3 Control's job tagging): the request's `Tags` at first, replaced by
    /// PutJobTagging and emptied by DeleteJobTagging. The request itself keeps what was asked,
    /// so that a repeated CreateJob with the same token still compares equal.
    pub tags: Vec<S3Tag>,
    /// At most this many tasks start per second (`crate::rate`): the request's
    /// `BatchOps.MaxTasksPerSecond` at first, changed by `update-job-rate`; `None`: no limit.
    pub max_tasks_per_second: Option<u32>,
    /// Bookkeeping that is not part of S3's view of a job.
    pub tracking: JobTracking,
}

/// When things last happened to a job: what the sweeper reads to tell a stuck job from a busy one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobTracking {
    /// When the finalize request was last sent (claimed).
    pub finalize_at: Option<DateTime<Utc>>,
    /// The last batch commit or planning checkpoint.
    pub last_progress_at: Option<DateTime<Utc>>,
    /// What the job is planned from, fixed by the first read.
    pub source: Option<JobSource>,
    /// The job's canary has run and its report is written: planning goes on past it.
    pub canary_done: bool,
}

/// What a job's tasks are read from, fixed the first time planning reads it: the manifest with
/// its pin (ETag and version), or, for a manifest generator, the CSV manifest its listing was
/// written to (listed once; later reads and continuations use that file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobSource {
    /// The manifest to read: the request's own, or the CSV a generator's listing was written to.
    pub manifest: JobManifest,
    /// The manifest object's ETag and version as first read; later reads ask for that object.
    pub pin: crate::manifest::ManifestPin,
    /// The number of tasks, when the source says it (a generator's listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
}

impl Job {
    /// The request's manifest; `Error::InvalidRequest` when the request has none.
    pub fn manifest(&self) -> Result<&JobManifest> {
        self.request
            .manifest
            .as_ref()
            .ok_or_else(|| Error::InvalidRequest(format!("job {} has no manifest", self.job_id)))
    }

    /// The request's `ConfirmationRequired`; false when it was not given.
    pub fn confirmation_required(&self) -> bool {
        self.request.confirmation_required.unwrap_or(false)
    }

    /// The tasks of the job's canary while it is still to run: planning stops after them.
    pub fn canary_limit(&self) -> Option<u64> {
        if self.tracking.canary_done {
            return None;
        }
        self.request.batch_ops.as_ref().and_then(|b| b.canary_tasks)
    }

    /// The canary has run (its report is written) and the job waits for confirmation of the
    /// rest, or has gone on since.
    pub fn canary_ran(&self) -> bool {
        self.tracking.canary_done
    }

    /// The job's ARN, `arn:aws:s3:<region>:<account>:job/<id>`: the region from `AWS_REGION`
    /// (default `us-east-1`), the account from the request's `AccountId` (default all zeros).
    pub fn job_arn(&self) -> String {
        format!(
            "arn:aws:s3:{}:{}:job/{}",
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            self.request.account_id.as_deref().unwrap_or("000000000000"),
            self.job_id
        )
    }
}
