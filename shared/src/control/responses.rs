//! The control plane's answers, in S3 Control's JSON shape (field names, casing, ISO 8601 dates,
//! optional fields left out).

use crate::job::{
    BatchOpsOptions, CreateJobRequest, FailureReason, JobManifest, JobOperation, JobReport,
    JobStatus,
};
use crate::store::JobTemplate;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Responses, in S3 Control's shape.

/// S3 Control's CreateJob output, also the answer of CloneJob and RerunFailedTasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateJobResponse {
    /// `JobId`: the new job's id, or the earlier job's when its ClientRequestToken was seen before.
    pub job_id: String,
}

/// S3 Control's DescribeJob output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeJobResponse {
    /// `Job`: the job's descriptor.
    pub job: JobDescriptor,
}

/// S3 Control's JobDescriptor; optional members that are unset are left out, as AWS does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobDescriptor {
    /// `JobId`: the job's id.
    pub job_id: String,
    /// `JobArn`: `arn:aws:s3:<region>:<account>:job/<id>`, with the request's `AccountId` (zeros
    /// when it had none).
    pub job_arn: String,
    /// `ConfirmationRequired`: whether the job waits in Suspended until confirmed (default false).
    pub confirmation_required: bool,
    /// `Description`: the request's description; left out when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Status`: the job's current status.
    pub status: JobStatus,
    /// `Operation`: what each task does, as requested.
    pub operation: JobOperation,
    /// `Manifest`: the manifest as requested; left out for a job built by a `ManifestGenerator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<JobManifest>,
    /// `Priority`: the job's current priority (after any UpdateJobPriority).
    pub priority: i32,
    /// `ProgressSummary`: task counts so far and the time spent Active.
    pub progress_summary: ProgressSummary,
    /// `StatusUpdateReason`: the reason last given with a status change; left out when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_reason: Option<String>,
    /// `FailureReasons`: why the job failed; left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_reasons: Vec<FailureReason>,
    /// `Report`: the completion report's settings, as requested.
    pub report: JobReport,
    /// `CreationTime`: when CreateJob stored the job.
    #[serde(with = "iso8601")]
    pub creation_time: DateTime<Utc>,
    /// `TerminationDate`: when the job reached a terminal status; left out before it has.
    #[serde(default, with = "iso8601_opt", skip_serializing_if = "Option::is_none")]
    pub termination_date: Option<DateTime<Utc>>,
    /// `RoleArn`: the role the job's work runs as; left out when the request gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `SuspendedDate`: when the job last went Suspended; left out if it never has.
    #[serde(default, with = "iso8601_opt", skip_serializing_if = "Option::is_none")]
    pub suspended_date: Option<DateTime<Utc>>,
    /// `SuspendedCause`: `AwaitingConfirmation` whenever `SuspendedDate` is set, else left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_cause: Option<String>,
    /// batchops' own settings as they stand (the rate limit, after any `update-job-rate`);
    /// left out when there are none.
    #[serde(rename = "BatchOps", default, skip_serializing_if = "Option::is_none")]
    pub batch_ops: Option<BatchOpsOptions>,
}

/// S3 Control's JobProgressSummary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProgressSummary {
    /// Known once the manifest has been read through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_number_of_tasks: Option<u64>,
    /// `NumberOfTasksSucceeded`: tasks done successfully so far.
    pub number_of_tasks_succeeded: u64,
    /// `NumberOfTasksFailed`: tasks that failed so far.
    pub number_of_tasks_failed: u64,
    /// `Timers`: how long the job has been running.
    pub timers: JobTimers,
}

/// S3 Control's JobTimers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobTimers {
    /// `ElapsedTimeInActiveSeconds`: seconds spent Active so far, including the current stretch.
    pub elapsed_time_in_active_seconds: i64,
}

/// S3 Control's ListJobs output: one page of jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListJobsResponse {
    /// `Jobs`: the page's jobs that match the filters, newest first.
    pub jobs: Vec<JobListDescriptor>,
    /// `NextToken`: give it as the next call's `NextToken` to read on; left out on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// S3 Control's JobListDescriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobListDescriptor {
    /// `JobId`: the job's id.
    pub job_id: String,
    /// `Description`: the request's description; left out when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The operation's name, e.g. `S3PutObjectTagging`.
    pub operation: String,
    /// `Priority`: the job's current priority.
    pub priority: i32,
    /// `Status`: the job's current status.
    pub status: JobStatus,
    /// `CreationTime`: when CreateJob stored the job.
    #[serde(with = "iso8601")]
    pub creation_time: DateTime<Utc>,
    /// `TerminationDate`: when the job reached a terminal status; left out before it has.
    #[serde(default, with = "iso8601_opt", skip_serializing_if = "Option::is_none")]
    pub termination_date: Option<DateTime<Utc>>,
    /// `ProgressSummary`: task counts so far and the time spent Active.
    pub progress_summary: ProgressSummary,
}

/// S3 Control's UpdateJobStatus output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateJobStatusResponse {
    /// `JobId`: the job whose status changed.
    pub job_id: String,
    /// `Status`: the status the job moved to: `Ready`, `Cancelled`, or `Cancelling` while running
    /// work stops.
    pub status: JobStatus,
    /// `StatusUpdateReason`: the request's reason, echoed; left out when it gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_reason: Option<String>,
}

/// S3 Control's UpdateJobPriority output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateJobPriorityResponse {
    /// `JobId`: the job whose priority changed.
    pub job_id: String,
    /// `Priority`: the job's new priority.
    pub priority: i32,
}

/// A job template as the control plane shows it: `ManifestPrefix` as an `s3://bucket/prefix` URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobTemplateDescriptor {
    /// `Name`: the template's name.
    pub name: String,
    /// `ManifestPrefix`: where the S3 Inventory deliveries that start jobs arrive.
    pub manifest_prefix: String,
    /// `Template`: the CreateJob request each delivery starts, without `Manifest`.
    pub template: CreateJobRequest,
}

impl From<&JobTemplate> for JobTemplateDescriptor {
    fn from(t: &JobTemplate) -> Self {
        JobTemplateDescriptor {
            name: t.name.clone(),
            manifest_prefix: format!("s3://{}/{}", t.manifest_bucket, t.manifest_prefix),
            template: t.request.clone(),
        }
    }
}

/// ListJobTemplates' answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListJobTemplatesResponse {
    /// `JobTemplates`: every stored template, sorted by name.
    pub job_templates: Vec<JobTemplateDescriptor>,
}

/// DeleteJobTemplate answers with an empty object, like AWS delete operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteJobTemplateResponse {}

/// ISO 8601 timestamps in UTC with milliseconds, e.g. `2026-11-25T01:02:03.456Z`.
mod iso8601 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

mod iso8601_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::iso8601::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::iso8601")] DateTime<Utc>);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(t)| t))
    }
}

/// UpdateJobRate's answer: the job and its rate limit as it now stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateJobRateResponse {
    /// `JobId`: the job whose rate limit changed.
    pub job_id: String,
    /// `MaxTasksPerSecond`: the job's limit on tasks started per second; left out when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_second: Option<u32>,
}
