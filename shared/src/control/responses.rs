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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateJobResponse {
    pub job_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeJobResponse {
    pub job: JobDescriptor,
}

/// S3 Control's JobDescriptor; optional members that are unset are left out, as AWS does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobDescriptor {
    pub job_id: String,
    pub job_arn: String,
    pub confirmation_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: JobStatus,
    pub operation: JobOperation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<JobManifest>,
    pub priority: i32,
    pub progress_summary: ProgressSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_reasons: Vec<FailureReason>,
    pub report: JobReport,
    #[serde(with = "iso8601")]
    pub creation_time: DateTime<Utc>,
    #[serde(default, with = "iso8601_opt", skip_serializing_if = "Option::is_none")]
    pub termination_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, with = "iso8601_opt", skip_serializing_if = "Option::is_none")]
    pub suspended_date: Option<DateTime<Utc>>,
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
    pub number_of_tasks_succeeded: u64,
    pub number_of_tasks_failed: u64,
    pub timers: JobTimers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobTimers {
    pub elapsed_time_in_active_seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListJobsResponse {
    pub jobs: Vec<JobListDescriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// S3 Control's JobListDescriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobListDescriptor {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The operation's name, e.g. `S3PutObjectTagging`.
    pub operation: String,
    pub priority: i32,
    pub status: JobStatus,
    #[serde(with = "iso8601")]
    pub creation_time: DateTime<Utc>,
    #[serde(default, with = "iso8601_opt", skip_serializing_if = "Option::is_none")]
    pub termination_date: Option<DateTime<Utc>>,
    pub progress_summary: ProgressSummary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateJobStatusResponse {
    pub job_id: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateJobPriorityResponse {
    pub job_id: String,
    pub priority: i32,
}

/// A job template as the control plane shows it: `ManifestPrefix` as an `s3://bucket/prefix` URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobTemplateDescriptor {
    pub name: String,
    pub manifest_prefix: String,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListJobTemplatesResponse {
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
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_second: Option<u32>,
}
