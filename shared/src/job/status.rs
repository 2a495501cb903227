//! The job's status machine (the one place that says which changes are allowed) and S3 Batch
//! Operations' failure threshold.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::{Error, Result};

/// Job statuses, spelled as S3 Control spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    /// Just created; nothing done yet.
    New,
    /// Taken up by the planner, which readies it to run or to wait for confirmation.
    Preparing,
    /// Waiting for confirmation (`ConfirmationRequired`, or after a canary) before it runs on.
    Suspended,
    /// Confirmed (UpdateJobStatus to Ready); becomes Active when the planner takes it up.
    Ready,
    /// Its batches are running.
    Active,
    /// Stepping aside for a job of higher priority; becomes Paused.
    Pausing,
    /// Outranked by a job of higher priority; becomes Active again once no longer outranked.
    Paused,
    /// Every task ran (successfully or not) and the job is finished. Terminal.
    Complete,
    /// A cancel was asked for after preparation began: batches not yet run are skipped, and
    /// it ends Cancelled.
    Cancelling,
    /// Ended by a cancel (UpdateJobStatus to Cancelled). Terminal.
    Cancelled,
    /// Stopped by a failure (such as the failure threshold): queued batches are not run, and
    /// it ends Failed.
    Failing,
    /// Ended in failure; the job's `FailureReasons` say why. Terminal.
    Failed,
}

/// Every status, in the order of the enum; [`JobStatus::parse`] looks names up here.
pub const ALL_STATUSES: &[JobStatus] = &[
    JobStatus::New,
    JobStatus::Preparing,
    JobStatus::Suspended,
    JobStatus::Ready,
    JobStatus::Active,
    JobStatus::Pausing,
    JobStatus::Paused,
    JobStatus::Complete,
    JobStatus::Cancelling,
    JobStatus::Cancelled,
    JobStatus::Failing,
    JobStatus::Failed,
];

impl JobStatus {
    /// The status's name as S3 Control spells it, such as `"Active"`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::New => "New",
            JobStatus::Preparing => "Preparing",
            JobStatus::Suspended => "Suspended",
            JobStatus::Ready => "Ready",
            JobStatus::Active => "Active",
            JobStatus::Pausing => "Pausing",
            JobStatus::Paused => "Paused",
            JobStatus::Complete => "Complete",
            JobStatus::Cancelling => "Cancelling",
            JobStatus::Cancelled => "Cancelled",
            JobStatus::Failing => "Failing",
            JobStatus::Failed => "Failed",
        }
    }

    /// The status named `s`, spelled exactly as S3 Control spells it; fails with
    /// `Error::InvalidRequest` for any other string.
    pub fn parse(s: &str) -> Result<Self> {
        ALL_STATUSES
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::InvalidRequest(format!("unknown job status {s:?}")))
    }

    /// Whether the job is over: Complete, Cancelled or Failed. No status change leaves these.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Complete | JobStatus::Cancelled | JobStatus::Failed
        )
    }

    /// Batches of a job in these states are not run: their tasks are counted as not run.
    pub fn stops_execution(self) -> bool {
        matches!(
            self,
            JobStatus::Cancelling | JobStatus::Cancelled | JobStatus::Failing | JobStatus::Failed
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one place that says which status changes are allowed.
pub fn can_transition(from: JobStatus, to: JobStatus) -> bool {
    use JobStatus::*;
    matches!(
        (from, to),
        (New, Preparing)
            | (New, Failed)
            | (New, Cancelled)
            | (Preparing, Suspended)
            | (Preparing, Ready)
            | (Preparing, Active)
            | (Preparing, Failed)
            | (Preparing, Cancelling)
            | (Preparing, Cancelled)
            | (Suspended, Ready)
            | (Suspended, Cancelled)
            // After a canary its tasks are counted and reported: a cancel goes the long way.
            | (Suspended, Cancelling)
            // S3 fails a job left awaiting confirmation for 30 days.
            | (Suspended, Failed)
            | (Ready, Active)
            | (Ready, Cancelling)
            | (Ready, Cancelled)
            | (Ready, Failed)
            | (Active, Complete)
            | (Active, Cancelling)
            | (Active, Failing)
            | (Active, Failed)
            | (Active, Pausing)
            // A canary's batches have all committed: the job waits for confirmation.
            | (Active, Suspended)
            | (Pausing, Suspended)
            | (Paused, Suspended)
            | (Pausing, Paused)
            | (Paused, Active)
            | (Pausing, Cancelling)
            | (Paused, Cancelling)
            | (Cancelling, Cancelled)
            | (Failing, Failed)
    )
}

/// `Ok` when `from` may change to `to` ([`can_transition`]); otherwise
/// `Error::InvalidTransition` naming the job and both statuses.
pub fn check_transition(job_id: &str, from: JobStatus, to: JobStatus) -> Result<()> {
    if can_transition(from, to) {
        Ok(())
    } else {
        Err(Error::InvalidTransition {
            job_id: job_id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

/// S3 Batch Operations' failure threshold: after the first 1,000 tasks, a job whose failure rate
/// exceeds 50% is stopped.
pub const FAILURE_THRESHOLD_MIN_TASKS: u64 = 1000;

/// Whether a job with these task counts has crossed the failure threshold: at least
/// [`FAILURE_THRESHOLD_MIN_TASKS`] tasks done and more than half of them failed.
pub fn failure_threshold_exceeded(succeeded: u64, failed: u64) -> bool {
    let done = succeeded + failed;
    done >= FAILURE_THRESHOLD_MIN_TASKS && failed * 2 > done
}

/// `FailureCode` recorded on a job stopped by the failure threshold.
pub const THRESHOLD_FAILURE_CODE: &str = "TaskFailureThresholdExceeded";
