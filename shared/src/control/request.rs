//! The control Lambda's request, `{"Action": ..., "Input": ...}`, as a serde-tagged enum, and
//! its dispatch.

use super::*;
use crate::error::{Error, Result};
use crate::job::{CreateJobRequest, JobStatus, S3Tag};

use crate::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The control Lambda's event.

/// A control request: `{"Action": "...", "Input": {...}}`, Input in S3 Control's request shape
/// (DryRunJob, UpdateJobRate, CloneJob and RerunFailedTasks are batchops' own).
#[derive(Debug, Clone, PartialEq)]
pub enum ControlRequest {
    CreateJob(CreateJobRequest),
    DryRunJob(DryRunJobInput),
    DescribeJob(JobIdInput),
    ListJobs(ListJobsInput),
    UpdateJobStatus(UpdateJobStatusInput),
    UpdateJobPriority(UpdateJobPriorityInput),
    UpdateJobRate(UpdateJobRateInput),
    GetJobTagging(JobIdInput),
    PutJobTagging(PutJobTaggingInput),
    DeleteJobTagging(JobIdInput),
    CloneJob(SourceJobInput),
    RerunFailedTasks(SourceJobInput),
    PutJobTemplate(PutJobTemplateInput),
    ListJobTemplates(ListJobTemplatesInput),
    DeleteJobTemplate(TemplateNameInput),
}

pub const CONTROL_ACTIONS: &[&str] = &[
    "CreateJob",
    "DryRunJob",
    "DescribeJob",
    "ListJobs",
    "UpdateJobStatus",
    "UpdateJobPriority",
    "UpdateJobRate",
    "GetJobTagging",
    "PutJobTagging",
    "DeleteJobTagging",
    "CloneJob",
    "RerunFailedTasks",
    "PutJobTemplate",
    "ListJobTemplates",
    "DeleteJobTemplate",
];

/// The answer to a control request, serialised as the response alone (in its own field order).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ControlResponse {
    CreateJob(CreateJobResponse),
    DryRunJob(Box<DryRunJobResponse>),
    DescribeJob(DescribeJobResponse),
    ListJobs(ListJobsResponse),
    UpdateJobStatus(UpdateJobStatusResponse),
    UpdateJobPriority(UpdateJobPriorityResponse),
    UpdateJobRate(UpdateJobRateResponse),
    GetJobTagging(GetJobTaggingResponse),
    JobTaggingUpdated(JobTaggingUpdated),
    PutJobTemplate(JobTemplateDescriptor),
    ListJobTemplates(ListJobTemplatesResponse),
    DeleteJobTemplate(DeleteJobTemplateResponse),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobIdInput {
    pub job_id: String,
    /// Accepted as S3 Control requests carry it; batchops runs in one account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ListJobsInput {
    #[serde(default)]
    pub job_statuses: Vec<JobStatus>,
    /// Only jobs that carry every one of these tags (batchops' own filter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<S3Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateJobStatusInput {
    pub job_id: String,
    pub requested_job_status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateJobPriorityInput {
    pub job_id: String,
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// batchops' own UpdateJobRate: a job's rate limit, or none (`MaxTasksPerSecond` left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateJobRateInput {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_second: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutJobTaggingInput {
    pub job_id: String,
    pub tags: Vec<S3Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutJobTemplateInput {
    pub name: String,
    /// `s3://bucket/prefix`
    pub manifest_prefix: String,
    /// A CreateJob request without Manifest.
    pub template: CreateJobRequest,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListJobTemplatesInput {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TemplateNameInput {
    pub name: String,
}

impl ControlRequest {
    /// The control Lambda's event for this request: the inverse of [`ControlRequest::parse`].
    pub fn to_event(&self) -> Result<Value> {
        let (action, input) = match self {
            ControlRequest::CreateJob(r) => ("CreateJob", serde_json::to_value(r)),
            ControlRequest::DryRunJob(i) => ("DryRunJob", serde_json::to_value(i)),
            ControlRequest::DescribeJob(i) => ("DescribeJob", serde_json::to_value(i)),
            ControlRequest::ListJobs(i) => ("ListJobs", serde_json::to_value(i)),
            ControlRequest::UpdateJobStatus(i) => ("UpdateJobStatus", serde_json::to_value(i)),
            ControlRequest::UpdateJobPriority(i) => ("UpdateJobPriority", serde_json::to_value(i)),
            ControlRequest::UpdateJobRate(i) => ("UpdateJobRate", serde_json::to_value(i)),
            ControlRequest::GetJobTagging(i) => ("GetJobTagging", serde_json::to_value(i)),
            ControlRequest::PutJobTagging(i) => ("PutJobTagging", serde_json::to_value(i)),
            ControlRequest::DeleteJobTagging(i) => ("DeleteJobTagging", serde_json::to_value(i)),
            ControlRequest::CloneJob(i) => ("CloneJob", serde_json::to_value(i)),
            ControlRequest::RerunFailedTasks(i) => ("RerunFailedTasks", serde_json::to_value(i)),
            ControlRequest::PutJobTemplate(i) => ("PutJobTemplate", serde_json::to_value(i)),
            ControlRequest::ListJobTemplates(i) => ("ListJobTemplates", serde_json::to_value(i)),
            ControlRequest::DeleteJobTemplate(i) => ("DeleteJobTemplate", serde_json::to_value(i)),
        };
        let input = input.map_err(|e| Error::encode(format!("the {action} input"), e))?;
        Ok(serde_json::json!({"Action": action, "Input": input}))
    }

    pub fn parse(event: &Value) -> Result<Self> {
        let action = event.get("Action").and_then(Value::as_str).ok_or_else(|| {
            Error::InvalidRequest(format!(
                "control event needs \"Action\" (one of {}) and \"Input\"",
                CONTROL_ACTIONS.join(", ")
            ))
        })?;
        let input = match event.get("Input") {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(input) => input.clone(),
        };
        match action {
            "CreateJob" => input_of(action, input).map(ControlRequest::CreateJob),
            "DryRunJob" => input_of(action, input).map(ControlRequest::DryRunJob),
            "DescribeJob" => input_of(action, input).map(ControlRequest::DescribeJob),
            "ListJobs" => input_of(action, input).map(ControlRequest::ListJobs),
            "UpdateJobStatus" => input_of(action, input).map(ControlRequest::UpdateJobStatus),
            "UpdateJobPriority" => input_of(action, input).map(ControlRequest::UpdateJobPriority),
            "UpdateJobRate" => input_of(action, input).map(ControlRequest::UpdateJobRate),
            "GetJobTagging" => input_of(action, input).map(ControlRequest::GetJobTagging),
            "PutJobTagging" => input_of(action, input).map(ControlRequest::PutJobTagging),
            "DeleteJobTagging" => input_of(action, input).map(ControlRequest::DeleteJobTagging),
            "CloneJob" => input_of(action, input).map(ControlRequest::CloneJob),
            "RerunFailedTasks" => input_of(action, input).map(ControlRequest::RerunFailedTasks),
            "PutJobTemplate" => input_of(action, input).map(ControlRequest::PutJobTemplate),
            "ListJobTemplates" => input_of(action, input).map(ControlRequest::ListJobTemplates),
            "DeleteJobTemplate" => input_of(action, input).map(ControlRequest::DeleteJobTemplate),
            other => Err(Error::InvalidRequest(format!(
                "unknown control Action {other:?}; expected one of {}",
                CONTROL_ACTIONS.join(", ")
            ))),
        }
    }
}

pub(super) fn input_of<T: serde::de::DeserializeOwned>(action: &str, input: Value) -> Result<T> {
    serde_json::from_value(input).map_err(|e| Error::InvalidRequest(format!("{action} Input: {e}")))
}

pub(super) fn to_json<T: Serialize>(response: &T) -> Result<Value> {
    serde_json::to_value(response).map_err(|e| Error::encode("the response", e))
}

/// The control Lambda's handler: runs one control request and returns its S3 Control-shaped
/// response.
pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    // Boxed: the future of every action in one is deeper than the compiler's layout limit.
    let response = Box::pin(run(ctx, ControlRequest::parse(&event)?)).await?;
    to_json(&response)
}

/// Runs one control request: what the control Lambda and the CLI (acting on a table directly)
/// both do.
pub async fn run(ctx: &Context, request: ControlRequest) -> Result<ControlResponse> {
    use ControlRequest as R;
    use ControlResponse as A;
    Ok(match request {
        R::CreateJob(request) => A::CreateJob(create_job(ctx, request, None).await?),
        R::DryRunJob(input) => A::DryRunJob(Box::new(dry_run(ctx, &input).await?)),
        R::DescribeJob(input) => A::DescribeJob(describe_job(ctx, &input.job_id).await?),
        R::ListJobs(input) => A::ListJobs(list_jobs(ctx, &input).await?),
        R::UpdateJobStatus(input) => A::UpdateJobStatus(
            update_job_status(
                ctx,
                &input.job_id,
                input.requested_job_status,
                input.status_update_reason,
            )
            .await?,
        ),
        R::UpdateJobPriority(input) => {
            A::UpdateJobPriority(update_job_priority(ctx, &input.job_id, input.priority).await?)
        }
        R::UpdateJobRate(input) => {
            A::UpdateJobRate(update_job_rate(ctx, &input.job_id, input.max_tasks_per_second).await?)
        }
        R::GetJobTagging(input) => A::GetJobTagging(get_job_tagging(ctx, &input.job_id).await?),
        R::PutJobTagging(input) => {
            A::JobTaggingUpdated(put_job_tagging(ctx, &input.job_id, &input.tags).await?)
        }
        R::DeleteJobTagging(input) => {
            A::JobTaggingUpdated(delete_job_tagging(ctx, &input.job_id).await?)
        }
        R::CloneJob(input) => A::CreateJob(clone_job(ctx, &input).await?),
        R::RerunFailedTasks(input) => A::CreateJob(rerun_failed_tasks(ctx, &input).await?),
        R::PutJobTemplate(input) => A::PutJobTemplate(
            put_job_template(ctx, &input.name, &input.manifest_prefix, input.template).await?,
        ),
        R::ListJobTemplates(_) => A::ListJobTemplates(list_job_templates(ctx).await?),
        R::DeleteJobTemplate(input) => {
            A::DeleteJobTemplate(delete_job_template(ctx, &input.name).await?)
        }
    })
}
