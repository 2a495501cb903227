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
    /// `CreateJob`: start a new job from an S3 Control CreateJob request.
    CreateJob(CreateJobRequest),
    /// `DryRunJob`: read the manifest and estimate a job's tasks, cost and time without running it.
    DryRunJob(DryRunJobInput),
    /// `DescribeJob`: one job's full descriptor.
    DescribeJob(JobIdInput),
    /// `ListJobs`: a page of jobs, optionally filtered by status and tags.
    ListJobs(ListJobsInput),
    /// `UpdateJobStatus`: confirm a Suspended job (`Ready`) or cancel one (`Cancelled`).
    UpdateJobStatus(UpdateJobStatusInput),
    /// `UpdateJobPriority`: set a job's priority (0 or greater); refused once the job has ended.
    UpdateJobPriority(UpdateJobPriorityInput),
    /// `UpdateJobRate`: set or remove a job's `MaxTasksPerSecond` limit.
    UpdateJobRate(UpdateJobRateInput),
    /// `GetJobTagging`: a job's current tags.
    GetJobTagging(JobIdInput),
    /// `PutJobTagging`: replace a job's whole tag set.
    PutJobTagging(PutJobTaggingInput),
    /// `DeleteJobTagging`: remove every tag from a job.
    DeleteJobTagging(JobIdInput),
    /// `CloneJob`: a new job with the spec and tags of an existing one.
    CloneJob(SourceJobInput),
    /// `RerunFailedTasks`: a new job over only the tasks that failed in an ended job.
    RerunFailedTasks(SourceJobInput),
    /// `PutJobTemplate`: store or replace a template that starts a job per S3 Inventory delivery.
    PutJobTemplate(PutJobTemplateInput),
    /// `ListJobTemplates`: every stored job template, by name.
    ListJobTemplates(ListJobTemplatesInput),
    /// `DeleteJobTemplate`: remove a job template by name.
    DeleteJobTemplate(TemplateNameInput),
}

/// Every `Action` name the control Lambda accepts, in the order error messages list them.
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
    /// Answer to CreateJob, CloneJob and RerunFailedTasks: the new (or existing) job's id.
    CreateJob(CreateJobResponse),
    /// Answer to DryRunJob: the estimate of what the job would do.
    DryRunJob(Box<DryRunJobResponse>),
    /// Answer to DescribeJob: `{"Job": ...}` with the job's descriptor.
    DescribeJob(DescribeJobResponse),
    /// Answer to ListJobs: one page of jobs and the token of the next.
    ListJobs(ListJobsResponse),
    /// Answer to UpdateJobStatus: the status the job moved to.
    UpdateJobStatus(UpdateJobStatusResponse),
    /// Answer to UpdateJobPriority: the job's new priority.
    UpdateJobPriority(UpdateJobPriorityResponse),
    /// Answer to UpdateJobRate: the job's rate limit as it now stands.
    UpdateJobRate(UpdateJobRateResponse),
    /// Answer to GetJobTagging: the job's tags.
    GetJobTagging(GetJobTaggingResponse),
    /// Answer to PutJobTagging and DeleteJobTagging: an empty object.
    JobTaggingUpdated(JobTaggingUpdated),
    /// Answer to PutJobTemplate: the template as stored.
    PutJobTemplate(JobTemplateDescriptor),
    /// Answer to ListJobTemplates: every template, sorted by name.
    ListJobTemplates(ListJobTemplatesResponse),
    /// Answer to DeleteJobTemplate: an empty object.
    DeleteJobTemplate(DeleteJobTemplateResponse),
}

/// The input of the actions that name one job: DescribeJob, GetJobTagging and DeleteJobTagging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobIdInput {
    /// `JobId`: the job to act on.
    pub job_id: String,
    /// Accepted as S3 Control requests carry it; batchops runs in one account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// The input of ListJobs, in S3 Control's shape plus a tag filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ListJobsInput {
    /// `JobStatuses`: only jobs in one of these statuses; empty (the default) lists every status.
    #[serde(default)]
    pub job_statuses: Vec<JobStatus>,
    /// Only jobs that carry every one of these tags (batchops' own filter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<S3Tag>,
    /// `MaxResults`: the most jobs on one page, 1 to 1,000; `None` means 1,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<usize>,
    /// `NextToken`: a previous page's token, to read the page after it; `None` starts at the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// `AccountId`: accepted as S3 Control requests carry it; batchops runs in one account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// The input of UpdateJobStatus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateJobStatusInput {
    /// `JobId`: the job whose status to change.
    pub job_id: String,
    /// `RequestedJobStatus`: `Ready` to confirm a Suspended job, or `Cancelled` to cancel it;
    /// any other status is refused.
    pub requested_job_status: JobStatus,
    /// `StatusUpdateReason`: why the status changed, kept on the job and shown by DescribeJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_reason: Option<String>,
    /// `AccountId`: accepted as S3 Control requests carry it; batchops runs in one account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// The input of UpdateJobPriority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateJobPriorityInput {
    /// `JobId`: the job whose priority to change.
    pub job_id: String,
    /// `Priority`: the new priority, 0 or greater; a higher one's batches run first.
    pub priority: i32,
    /// `AccountId`: accepted as S3 Control requests carry it; batchops runs in one account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// batchops' own UpdateJobRate: a job's rate limit, or none (`MaxTasksPerSecond` left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateJobRateInput {
    /// `JobId`: the job whose rate limit to change.
    pub job_id: String,
    /// `MaxTasksPerSecond`: the new limit on tasks started per second; `None` removes the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_second: Option<u32>,
    /// `AccountId`: accepted as S3 Control requests carry it; batchops runs in one account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// The input of PutJobTagging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutJobTaggingInput {
    /// `JobId`: the job whose tags to replace.
    pub job_id: String,
    /// `Tags`: the job's new tag set, replacing the old one; empty deletes every tag.
    pub tags: Vec<S3Tag>,
    /// `AccountId`: accepted as S3 Control requests carry it; batchops runs in one account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// The input of PutJobTemplate (batchops' own action).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutJobTemplateInput {
    /// `Name`: the template's name, 1 to 128 letters, digits, `-`, `_` or `.`; an existing one is
    /// replaced.
    pub name: String,
    /// `s3://bucket/prefix`
    pub manifest_prefix: String,
    /// A CreateJob request without Manifest.
    pub template: CreateJobRequest,
}

/// The input of ListJobTemplates: an empty object, as the action takes no parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListJobTemplatesInput {}

/// The input of DeleteJobTemplate: the template to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TemplateNameInput {
    /// `Name`: the job template's name.
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

    /// Reads a control Lambda event, `{"Action": ..., "Input": ...}` (a missing or null `Input` is
    /// `{}`). Fails with `InvalidRequest` on an unknown action or an input of the wrong shape.
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
