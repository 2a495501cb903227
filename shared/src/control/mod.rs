//! The control plane: CreateJob, DescribeJob, ListJobs, UpdateJobStatus, UpdateJobPriority, job
//! tagging ([`tagging`]), clones and re-runs of failed tasks ([`rerun`]) and job templates, with
//! request and response JSON in S3 Control's shape. Used by the control Lambda and the CLI.

mod client;
mod jobs;
mod request;
pub mod rerun;
mod responses;
pub mod tagging;
mod templates;
#[cfg(test)]
mod tests;

pub use client::*;
pub use jobs::*;
pub use request::*;
pub use responses::*;
pub use templates::*;

pub use crate::dry_run::{dry_run, DryRunJobInput, DryRunJobResponse};

pub use rerun::{
    clone_job, derived_request, rerun_failed_tasks, SourceJobInput, CLONE_OF_TAG, RERUN_OF_TAG,
};

pub use tagging::{
    delete_job_tagging, get_job_tagging, has_tags, parse_tag, put_job_tagging,
    GetJobTaggingResponse, JobTaggingUpdated,
};

/// S3's limit on a job description.
const MAX_DESCRIPTION_CHARS: usize = 256;

/// Age after which a job still in New is taken as abandoned by the call that created it.
const STALE_NEW_JOB_SECONDS: i64 = 60;

/// How often UpdateJobStatus re-reads a job whose status moved under it before giving up.
const STATUS_UPDATE_ATTEMPTS: usize = 5;

/// The file name S3 Inventory gives the manifest of each delivery.
const INVENTORY_MANIFEST_NAME: &str = "manifest.json";

/// Why a job waits in Suspended: the only cause batchops has.
const SUSPENDED_CAUSE: &str = "AwaitingConfirmation";
