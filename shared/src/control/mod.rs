//! The control plane: CreateJob, DescribeJob, ListJobs, UpdateJobStatus, UpdateJobPriority, job
//! tagging ([`tagging`]), clones and re-runs of failed tasks ([`rerun`]) and job templates, with
//! request and response JSON in S3 Control's shape. Used by the control Lambda and the CLI.

use crate::context::{self, Settings};
pub use crate::dry_run::{dry_run, DryRunJobInput, DryRunJobResponse};
use crate::error::{Error, Result};
use crate::job::{
    BatchOpsOptions, CreateJobRequest, FailureReason, Job, JobManifest, JobOperation, JobReport,
    JobStatus, ManifestLocation, ManifestSpec, S3Tag, INVENTORY_CSV_FORMAT,
};
use crate::store::{JobTemplate, PutJobOutcome, Store};

pub mod rerun;
pub mod tagging;

use crate::Context;
use chrono::{DateTime, Utc};
pub use rerun::{
    clone_job, derived_request, rerun_failed_tasks, SourceJobInput, CLONE_OF_TAG, RERUN_OF_TAG,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
pub use tagging::{
    delete_job_tagging, get_job_tagging, has_tags, parse_tag, put_job_tagging,
    GetJobTaggingResponse, JobTaggingUpdated,
};
use tracing::{debug, info};

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

// ---------------------------------------------------------------------------------------------
// Operations.

/// CreateJob. `confirmation_override` (the CLI's `--[no-]confirmation-required`) wins over the
/// request's ConfirmationRequired, which defaults to false as in the S3 API.
/// Idempotent on ClientRequestToken: the same token with the same request gives the same JobId
/// and queues nothing new; with a different request it is refused, as S3 refuses it.
pub async fn create_job(
    ctx: &Context,
    request: CreateJobRequest,
    confirmation_override: Option<bool>,
) -> Result<CreateJobResponse> {
    let job_id = uuid::Uuid::new_v4().to_string();
    create_job_as(ctx, job_id, request, confirmation_override).await
}

/// CreateJob with the id of the new job chosen by the caller (who wrote something under it
/// first, such as a re-run's manifest).
async fn create_job_as(
    ctx: &Context,
    job_id: String,
    mut request: CreateJobRequest,
    confirmation_override: Option<bool>,
) -> Result<CreateJobResponse> {
    if let Some(required) = confirmation_override {
        request.confirmation_required = Some(required);
    }
    request.validate()?;
    let job = new_job(job_id, request, Utc::now());
    let store = Store::from_context(ctx);
    let job_id = match store.put_new_job(&job).await? {
        PutJobOutcome::Created => {
            info!(job_id = %job.job_id, operation = job.request.operation.name(), "job created");
            start_job(ctx, &store, &job.job_id).await?;
            job.job_id
        }
        PutJobOutcome::Existing(job_id) => {
            let existing = store.get_job(&job_id).await?;
            if existing.request != job.request {
                return Err(Error::Idempotency(format!(
                    "ClientRequestToken {:?} was used for job {job_id} with a different request; use a new token for a new job",
                    job.request.client_request_token.as_deref().unwrap_or_default()
                )));
            }
            if needs_restart(&existing, Utc::now()) {
                info!(
                    job_id,
                    "job of this ClientRequestToken was never queued; queueing it"
                );
                start_job(ctx, &store, &job_id).await?;
            }
            job_id
        }
    };
    Ok(CreateJobResponse { job_id })
}

/// A job as CreateJob stores it: New, with the request's priority and nothing done yet.
pub fn new_job(job_id: String, request: CreateJobRequest, now: DateTime<Utc>) -> Job {
    let tags = request.tags.clone().unwrap_or_default();
    let max_tasks_per_second = request
        .batch_ops
        .as_ref()
        .and_then(|b| b.max_tasks_per_second);
    Job {
        job_id,
        priority: request.priority,
        request,
        status: JobStatus::New,
        creation_time: now,
        termination_date: None,
        suspended_date: None,
        active_since: None,
        elapsed_active_seconds: 0,
        status_update_reason: None,
        failure_reasons: Vec::new(),
        progress: Default::default(),
        finalize_sent: false,
        tags,
        max_tasks_per_second,
        tracking: Default::default(),
    }
}

/// True for a job still New well after its creation: the call that stored it stopped before it
/// queued it. A younger New job is being started by a concurrent call with the same token, which
/// must not be queued twice.
pub fn needs_restart(job: &Job, now: DateTime<Utc>) -> bool {
    job.status == JobStatus::New
        && now - job.creation_time > chrono::Duration::seconds(STALE_NEW_JOB_SECONDS)
}

/// Hands a New job to the planner. The request goes first: if this call dies before the status
/// changes, the job stays New and a retry with the same token queues it again.
async fn start_job(ctx: &Context, store: &Store, job_id: &str) -> Result<()> {
    crate::queue::send_plan_request(ctx, job_id).await?;
    // The planner may have moved the job already; either way it is Preparing or beyond.
    store
        .transition(job_id, JobStatus::New, JobStatus::Preparing, None, None)
        .await?;
    Ok(())
}

pub async fn describe_job(ctx: &Context, job_id: &str) -> Result<DescribeJobResponse> {
    let job = Store::from_context(ctx).get_job(job_id).await?;
    Ok(DescribeJobResponse {
        job: job_descriptor(&job, Utc::now()),
    })
}

/// The DescribeJob view of a job at `now` (the active timer runs while the job is Active).
pub fn job_descriptor(job: &Job, now: DateTime<Utc>) -> JobDescriptor {
    JobDescriptor {
        job_id: job.job_id.clone(),
        job_arn: job.job_arn(),
        confirmation_required: job.confirmation_required(),
        description: job.request.description.clone(),
        status: job.status,
        operation: job.request.operation.clone(),
        manifest: job.request.manifest.clone(),
        priority: job.priority,
        progress_summary: progress_summary(job, now),
        status_update_reason: job.status_update_reason.clone(),
        failure_reasons: job.failure_reasons.clone(),
        report: job.request.report.clone(),
        creation_time: job.creation_time,
        termination_date: job.termination_date,
        role_arn: job.request.role_arn.clone(),
        suspended_date: job.suspended_date,
        suspended_cause: job.suspended_date.map(|_| SUSPENDED_CAUSE.to_string()),
        batch_ops: job.max_tasks_per_second.map(|rate| BatchOpsOptions {
            max_tasks_per_second: Some(rate),
        }),
    }
}

pub fn progress_summary(job: &Job, now: DateTime<Utc>) -> ProgressSummary {
    let running = match (job.status, job.active_since) {
        (JobStatus::Active, Some(since)) => (now - since).num_seconds().max(0),
        _ => 0,
    };
    ProgressSummary {
        total_number_of_tasks: job.progress.total_tasks,
        number_of_tasks_succeeded: job.progress.succeeded,
        number_of_tasks_failed: job.progress.failed,
        timers: JobTimers {
            elapsed_time_in_active_seconds: job.elapsed_active_seconds + running,
        },
    }
}

pub fn job_list_descriptor(job: &Job, now: DateTime<Utc>) -> JobListDescriptor {
    JobListDescriptor {
        job_id: job.job_id.clone(),
        description: job.request.description.clone(),
        operation: job.request.operation.name().to_string(),
        priority: job.priority,
        status: job.status,
        creation_time: job.creation_time,
        termination_date: job.termination_date,
        progress_summary: progress_summary(job, now),
    }
}

/// ListJobs: the jobs (or those in `JobStatuses`, and with every tag of `Tags`), newest first,
/// a page of at most `MaxResults` (S3 Control's, 1 to 1,000; default 1,000) from `NextToken` on;
/// the response's NextToken asks for the next page.
pub async fn list_jobs(ctx: &Context, input: &ListJobsInput) -> Result<ListJobsResponse> {
    let max = input.max_results.unwrap_or(crate::store::MAX_LIST_RESULTS);
    if !(1..=crate::store::MAX_LIST_RESULTS).contains(&max) {
        return Err(Error::InvalidRequest(format!(
            "MaxResults must be between 1 and {}, got {max}",
            crate::store::MAX_LIST_RESULTS
        )));
    }
    let store = ctx.store();
    let mut jobs = Vec::new();
    let mut token = input.next_token.clone();
    // Pages of at most the places left: a page never holds more matches than fit, so no match
    // is skipped by the token that follows it.
    loop {
        let (page, next) = store
            .list_jobs_page(&input.job_statuses, max - jobs.len(), token.as_deref())
            .await?;
        jobs.extend(page.into_iter().filter(|j| has_tags(j, &input.tags)));
        token = next;
        if jobs.len() >= max || token.is_none() {
            break;
        }
    }
    let now = Utc::now();
    Ok(ListJobsResponse {
        jobs: jobs.iter().map(|j| job_list_descriptor(j, now)).collect(),
        next_token: token,
    })
}

/// UpdateJobStatus: `Ready` confirms a Suspended job; `Cancelled` cancels a job that has not
/// finished (directly when nothing runs yet, through Cancelling otherwise).
pub async fn update_job_status(
    ctx: &Context,
    job_id: &str,
    requested: JobStatus,
    reason: Option<String>,
) -> Result<UpdateJobStatusResponse> {
    let store = Store::from_context(ctx);
    for _ in 0..STATUS_UPDATE_ATTEMPTS {
        let current = store.get_job(job_id).await?.status;
        let target = requested_transition(job_id, current, requested)?;
        if !store
            .transition(job_id, current, target, reason.clone(), None)
            .await?
        {
            debug!(job_id, %current, "job status moved during UpdateJobStatus; reading again");
            continue;
        }
        info!(job_id, from = %current, to = %target, "job status updated");
        if target.is_terminal() {
            store.expire_ended_job(job_id).await;
        }
        // A confirmed job is planned now. A job cancelled before it was planned has no batches
        // that could finish it: the planner settles it (Cancelling → Cancelled) instead.
        if target == JobStatus::Ready
            || (target == JobStatus::Cancelling
                && matches!(current, JobStatus::Preparing | JobStatus::Ready))
        {
            crate::queue::send_plan_request(ctx, job_id).await?;
        }
        return Ok(UpdateJobStatusResponse {
            job_id: job_id.to_string(),
            status: target,
            status_update_reason: reason,
        });
    }
    Err(Error::Other(format!(
        "job {job_id} kept changing status while its status was being updated; try again"
    )))
}

/// The status a job moves to when `requested` is asked for in status `current`.
pub fn requested_transition(
    job_id: &str,
    current: JobStatus,
    requested: JobStatus,
) -> Result<JobStatus> {
    use JobStatus::*;
    let refused = || Error::InvalidTransition {
        job_id: job_id.to_string(),
        from: current.to_string(),
        to: requested.to_string(),
    };
    match requested {
        Ready if current == Suspended => Ok(Ready),
        Ready => Err(refused()),
        Cancelled => match current {
            New | Suspended => Ok(Cancelled),
            Preparing | Ready | Active | Pausing | Paused => Ok(Cancelling),
            _ => Err(refused()),
        },
        other => Err(Error::InvalidRequest(format!(
            "RequestedJobStatus must be Ready or Cancelled, got {other}"
        ))),
    }
}

/// Refuses to change `what` of a job that has ended (or does not exist).
async fn refuse_if_ended(store: &Store, job_id: &str, what: &str) -> Result<()> {
    let job = store.get_job(job_id).await?;
    if job.status.is_terminal() {
        return Err(Error::InvalidRequest(format!(
            "job {job_id} is {}: the {what} of a job that has ended cannot change",
            job.status
        )));
    }
    Ok(())
}

/// UpdateJobPriority: refused on a job that has ended.
pub async fn update_job_priority(
    ctx: &Context,
    job_id: &str,
    priority: i32,
) -> Result<UpdateJobPriorityResponse> {
    if priority < 0 {
        return Err(Error::InvalidRequest(format!(
            "Priority must be 0 or greater, got {priority}"
        )));
    }
    let store = ctx.store();
    refuse_if_ended(&store, job_id, "priority").await?;
    // Batches look at priorities as they start (`crate::priority`): the change applies from the
    // next batch of any job.
    store.update_priority(job_id, priority).await?;
    ctx.running_jobs.forget().await;
    Ok(UpdateJobPriorityResponse {
        job_id: job_id.to_string(),
        priority,
    })
}

/// UpdateJobRate's answer: the job and its rate limit as it now stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateJobRateResponse {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_second: Option<u32>,
}

/// UpdateJobRate (batchops' own): sets a job's rate limit, or removes it with `None`. Batches
/// that start after the change run at the new rate (`crate::rate`); refused on ended jobs.
pub async fn update_job_rate(
    ctx: &Context,
    job_id: &str,
    rate: Option<u32>,
) -> Result<UpdateJobRateResponse> {
    if let Some(rate) = rate {
        crate::job::validate_rate("MaxTasksPerSecond", rate)?;
    }
    let store = ctx.store();
    refuse_if_ended(&store, job_id, "rate").await?;
    store.set_rate(job_id, rate).await?;
    // The limiter's own copy reaches the batches already running, at their next lease.
    store.set_limiter_rate(job_id, rate.unwrap_or(0)).await?;
    info!(job_id, max_tasks_per_second = ?rate, "job rate limit changed");
    Ok(UpdateJobRateResponse {
        job_id: job_id.to_string(),
        max_tasks_per_second: rate,
    })
}

// ---------------------------------------------------------------------------------------------
// Job templates.

/// Stores (or replaces) a job template for inventory manifests under `manifest_prefix_url`
/// (`s3://bucket/prefix`).
pub async fn put_job_template(
    ctx: &Context,
    name: &str,
    manifest_prefix_url: &str,
    request: CreateJobRequest,
) -> Result<JobTemplateDescriptor> {
    let template = job_template(name, manifest_prefix_url, request)?;
    Store::from_context(ctx).put_template(&template).await?;
    info!(name, prefix = manifest_prefix_url, "job template stored");
    Ok(JobTemplateDescriptor::from(&template))
}

/// Checks a template and builds it: a valid name, an `s3://` prefix, and a request that makes a
/// valid job once a manifest is filled in.
pub fn job_template(
    name: &str,
    manifest_prefix_url: &str,
    request: CreateJobRequest,
) -> Result<JobTemplate> {
    validate_template_name(name)?;
    let (manifest_bucket, manifest_prefix) = parse_s3_url(manifest_prefix_url)?;
    if request.manifest.is_some() {
        return Err(Error::InvalidRequest(
            "a job template must not have a Manifest: each inventory manifest.json that arrives under the prefix becomes the job's manifest".into(),
        ));
    }
    if request.client_request_token.is_some() {
        return Err(Error::InvalidRequest(
            "a job template must not have a ClientRequestToken: each inventory arrival gets its own".into(),
        ));
    }
    if request.confirmation_required == Some(true) {
        return Err(Error::InvalidRequest(
            "jobs from a job template start without confirmation: remove ConfirmationRequired or set it to false".into(),
        ));
    }
    let template = JobTemplate {
        name: name.to_string(),
        manifest_bucket,
        manifest_prefix,
        request,
    };
    let sample_key = format!("{}{INVENTORY_MANIFEST_NAME}", template.manifest_prefix);
    inventory_job_request(&template, &template.manifest_bucket, &sample_key, None).validate()?;
    Ok(template)
}

fn validate_template_name(name: &str) -> Result<()> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.len() > 128 || !valid_chars {
        return Err(Error::InvalidRequest(format!(
            "job template name {name:?} must be 1 to 128 characters of letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// Splits `s3://bucket/prefix` (the prefix may be empty) into bucket and prefix.
pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        Error::InvalidRequest(format!("{url:?} is not an S3 URL (s3://bucket/prefix)"))
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "{url:?} names no bucket (s3://bucket/prefix)"
        )));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

pub async fn list_job_templates(ctx: &Context) -> Result<ListJobTemplatesResponse> {
    let mut templates = Store::from_context(ctx).list_templates().await?;
    templates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ListJobTemplatesResponse {
        job_templates: templates.iter().map(JobTemplateDescriptor::from).collect(),
    })
}

pub async fn delete_job_template(ctx: &Context, name: &str) -> Result<DeleteJobTemplateResponse> {
    if Store::from_context(ctx).delete_template(name).await? {
        info!(name, "job template deleted");
        Ok(DeleteJobTemplateResponse {})
    } else {
        Err(Error::InvalidRequest(format!(
            "there is no job template named {name:?}"
        )))
    }
}

/// The templates that cover an object that just arrived: same bucket, key under the template's
/// prefix, and the object is an inventory `manifest.json`.
pub fn matching_templates<'a>(
    templates: &'a [JobTemplate],
    bucket: &str,
    key: &str,
) -> Vec<&'a JobTemplate> {
    if !key.ends_with(INVENTORY_MANIFEST_NAME) {
        return Vec::new();
    }
    templates
        .iter()
        .filter(|t| t.manifest_bucket == bucket && key.starts_with(&t.manifest_prefix))
        .collect()
}

/// Starts the job of a template for an inventory manifest that arrived (no confirmation). A
/// redelivered S3 event yields the same ClientRequestToken, so it does not start a second job.
pub async fn create_job_from_inventory(
    ctx: &Context,
    template: &JobTemplate,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<CreateJobResponse> {
    let request = inventory_job_request(template, bucket, key, etag);
    create_job(ctx, request, Some(false)).await
}

/// The CreateJob request of a template for one inventory manifest.
pub fn inventory_job_request(
    template: &JobTemplate,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> CreateJobRequest {
    let mut request = template.request.clone();
    request.manifest = Some(JobManifest {
        spec: ManifestSpec {
            format: INVENTORY_CSV_FORMAT.to_string(),
            fields: None,
        },
        location: ManifestLocation {
            object_arn: format!("arn:aws:s3:::{bucket}/{key}"),
            object_version_id: None,
            etag: etag.map(str::to_string),
        },
    });
    request.confirmation_required = Some(false);
    request.client_request_token = Some(inventory_token(&template.name, bucket, key, etag));
    if request.description.is_none() {
        let description = format!("job template {}: s3://{bucket}/{key}", template.name);
        request.description = Some(description.chars().take(MAX_DESCRIPTION_CHARS).collect());
    }
    request
}

/// A ClientRequestToken fixed by the template and the manifest object (64 hex characters, S3's
/// maximum token length).
pub fn inventory_token(template: &str, bucket: &str, key: &str, etag: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    for part in [template, bucket, key, etag.unwrap_or("")] {
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

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
        let input =
            input.map_err(|e| Error::Other(format!("cannot serialise the {action} input: {e}")))?;
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

fn input_of<T: serde::de::DeserializeOwned>(action: &str, input: Value) -> Result<T> {
    serde_json::from_value(input).map_err(|e| Error::InvalidRequest(format!("{action} Input: {e}")))
}

fn to_json<T: Serialize>(response: &T) -> Result<Value> {
    serde_json::to_value(response)
        .map_err(|e| Error::Other(format!("cannot serialise the response: {e}")))
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

/// Sends a control request to a deployed stack's control function and returns its answer, in S3
/// Control's shape: the CLI's way to a stack, which needs `lambda:InvokeFunction` on that one
/// function and nothing on the stack's table or queues.
pub async fn invoke_control(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    request: &ControlRequest,
) -> Result<Value> {
    let payload = serde_json::to_vec(&request.to_event()?)
        .map_err(|e| Error::Other(format!("cannot serialise the control request: {e}")))?;
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .map_err(|e| Error::aws("Lambda", "Invoke", e))?;
    let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    let answer: Value = serde_json::from_slice(body).map_err(|e| {
        Error::Other(format!(
            "the control function {function} answered something that is not JSON ({e})"
        ))
    })?;
    if out.function_error().is_some() {
        let message = answer
            .get("errorMessage")
            .and_then(Value::as_str)
            .unwrap_or("no errorMessage");
        return Err(Error::Other(format!(
            "the control function {function} refused the request: {message}"
        )));
    }
    Ok(answer)
}

// ---------------------------------------------------------------------------------------------
// The CLI's context.

/// The CLI's context: settings from the `BATCHOPS_*` variables as in the Lambdas; each one unset
/// falls back to the resource `batchops local up` creates (`context::LOCAL_*`), queue URLs
/// resolved with GetQueueUrl.
pub async fn cli_context() -> Result<Context> {
    let config = context::load_aws_config().await;
    check_credentials(&config).await?;
    let settings = cli_settings(&aws_sdk_sqs::Client::new(&config)).await?;
    Ok(Context::from_config(&config, settings))
}

/// Finds credentials before the first call, so that having none is said plainly (the SDK's own
/// error names the last place it looked, the EC2 instance metadata service).
pub async fn check_credentials(config: &aws_config::SdkConfig) -> Result<()> {
    use aws_credential_types::provider::error::CredentialsError;
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = config.credentials_provider() else {
        return Err(Error::Config(NO_CREDENTIALS.into()));
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(CredentialsError::CredentialsNotLoaded(_)) => Err(Error::Config(NO_CREDENTIALS.into())),
        Err(other) => Err(Error::Config(format!(
            "cannot load AWS credentials: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&other)
        ))),
    }
}

const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values do for a local emulator such as moto), or AWS_PROFILE, or run where an IAM role provides them";

async fn cli_settings(sqs: &aws_sdk_sqs::Client) -> Result<Settings> {
    if let Ok(settings) = Settings::from_env() {
        return Ok(settings);
    }
    let queue_url = |var: &'static str, name: &'static str| async move {
        match context::env_value(var) {
            Some(url) => Ok(url),
            None => local_queue_url(sqs, name, var).await,
        }
    };
    Ok(Settings {
        table: context::env_value(context::ENV_TABLE)
            .unwrap_or_else(|| context::LOCAL_TABLE.into()),
        plan_queue_url: queue_url(context::ENV_PLAN_QUEUE_URL, context::LOCAL_PLAN_QUEUE).await?,
        task_queue_url: queue_url(context::ENV_TASK_QUEUE_URL, context::LOCAL_TASK_QUEUE).await?,
        report_queue_url: queue_url(context::ENV_REPORT_QUEUE_URL, context::LOCAL_REPORT_QUEUE)
            .await?,
        system_bucket: context::env_value(context::ENV_SYSTEM_BUCKET)
            .unwrap_or_else(|| context::LOCAL_SYSTEM_BUCKET.into()),
        ..Settings::tuning_from_env()?
    })
}

async fn local_queue_url(sqs: &aws_sdk_sqs::Client, name: &str, var: &str) -> Result<String> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => out
            .queue_url()
            .map(str::to_string)
            .ok_or_else(|| Error::Config(format!("GetQueueUrl returned no URL for queue {name}"))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            Err(Error::Config(format!(
                "queue {name} does not exist on this endpoint: run `batchops local up` first, or set {var}"
            )))
        }
        Err(e) => Err(Error::aws("SQS", "GetQueueUrl", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Progress;
    use chrono::TimeZone;
    use serde_json::json;

    const CREATE_JOB: &str = r#"{
        "AccountId": "123456789012",
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}},
        "Report": {"Bucket": "arn:aws:s3:::reports", "Enabled": true, "Prefix": "r",
                   "Format": "Report_CSV_20180820", "ReportScope": "AllTasks"},
        "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                     "Location": {"ObjectArn": "arn:aws:s3:::m/manifest.csv", "ETag": "e"}},
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batch",
        "Description": "tag"
    }"#;

    fn time(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
    }

    fn job() -> Job {
        new_job(
            "job-1".into(),
            CreateJobRequest::parse(CREATE_JOB).unwrap(),
            time(0),
        )
    }

    fn template_request() -> CreateJobRequest {
        let mut request = CreateJobRequest::parse(CREATE_JOB).unwrap();
        request.manifest = None;
        request
    }

    fn template(name: &str, bucket: &str, prefix: &str) -> JobTemplate {
        JobTemplate {
            name: name.into(),
            manifest_bucket: bucket.into(),
            manifest_prefix: prefix.into(),
            request: template_request(),
        }
    }

    #[test]
    fn new_jobs_start_new_with_the_requested_priority() {
        let job = job();
        assert_eq!(job.status, JobStatus::New);
        assert_eq!(job.priority, 10);
        assert_eq!(job.progress, Progress::default());
        assert!(!job.finalize_sent);
    }

    #[test]
    fn only_an_old_new_job_is_restarted() {
        let job = job();
        assert!(!needs_restart(&job, time(5)));
        assert!(needs_restart(&job, time(61)));
        let preparing = Job {
            status: JobStatus::Preparing,
            ..job
        };
        assert!(!needs_restart(&preparing, time(600)));
    }

    #[test]
    fn describe_job_json_has_s3_control_names_and_omits_unset_fields() {
        let value = serde_json::to_value(DescribeJobResponse {
            job: job_descriptor(&job(), time(5)),
        })
        .unwrap();
        let j = &value["Job"];
        assert_eq!(j["JobId"], "job-1");
        assert_eq!(
            j["JobArn"],
            format!(
                "arn:aws:s3:{}:123456789012:job/job-1",
                std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
            )
        );
        assert_eq!(j["ConfirmationRequired"], false);
        assert_eq!(j["Status"], "New");
        assert_eq!(j["Priority"], 10);
        assert_eq!(j["Description"], "tag");
        assert_eq!(j["RoleArn"], "arn:aws:iam::123456789012:role/batch");
        assert_eq!(
            j["Operation"]["S3PutObjectTagging"]["TagSet"][0]["Key"],
            "k"
        );
        assert_eq!(j["Manifest"]["Location"]["ETag"], "e");
        assert_eq!(j["Report"]["ReportScope"], "AllTasks");
        assert_eq!(j["CreationTime"], "2025-06-15T15:06:40.000Z");
        let summary = &j["ProgressSummary"];
        assert_eq!(summary["NumberOfTasksSucceeded"], 0);
        assert_eq!(summary["NumberOfTasksFailed"], 0);
        assert_eq!(summary["Timers"]["ElapsedTimeInActiveSeconds"], 0);
        for absent in [
            "TerminationDate",
            "SuspendedDate",
            "SuspendedCause",
            "FailureReasons",
            "StatusUpdateReason",
        ] {
            assert!(j.get(absent).is_none(), "{absent} should be omitted: {j}");
        }
        assert!(summary.get("TotalNumberOfTasks").is_none());
    }

    #[test]
    fn describe_job_shows_progress_failures_dates_and_the_running_timer() {
        let mut job = job();
        job.status = JobStatus::Active;
        job.active_since = Some(time(100));
        job.elapsed_active_seconds = 7;
        job.suspended_date = Some(time(50));
        job.status_update_reason = Some("go".into());
        job.failure_reasons = vec![FailureReason {
            failure_code: "X".into(),
            failure_reason: "y".into(),
        }];
        job.progress.total_tasks = Some(10);
        job.progress.succeeded = 4;
        job.progress.failed = 1;
        let value = serde_json::to_value(job_descriptor(&job, time(130))).unwrap();
        assert_eq!(value["ProgressSummary"]["TotalNumberOfTasks"], 10);
        assert_eq!(value["ProgressSummary"]["NumberOfTasksSucceeded"], 4);
        assert_eq!(value["ProgressSummary"]["NumberOfTasksFailed"], 1);
        assert_eq!(
            value["ProgressSummary"]["Timers"]["ElapsedTimeInActiveSeconds"],
            37
        );
        assert_eq!(
            value["FailureReasons"],
            json!([{"FailureCode": "X", "FailureReason": "y"}])
        );
        assert_eq!(value["StatusUpdateReason"], "go");
        assert_eq!(value["SuspendedCause"], "AwaitingConfirmation");
        assert_eq!(value["SuspendedDate"], "2025-06-15T15:07:30.000Z");
        // The response reads back (the CLI and tests parse it).
        let back: JobDescriptor = serde_json::from_value(value).unwrap();
        assert_eq!(back.suspended_date, Some(time(50)));

        job.status = JobStatus::Complete;
        job.active_since = None;
        job.termination_date = Some(time(200));
        let value = serde_json::to_value(job_descriptor(&job, time(500))).unwrap();
        assert_eq!(
            value["ProgressSummary"]["Timers"]["ElapsedTimeInActiveSeconds"],
            7
        );
        assert_eq!(value["TerminationDate"], "2025-06-15T15:10:00.000Z");
    }

    #[test]
    fn list_descriptor_names_the_operation() {
        let value = serde_json::to_value(job_list_descriptor(&job(), time(0))).unwrap();
        assert_eq!(value["Operation"], "S3PutObjectTagging");
        assert_eq!(value["JobId"], "job-1");
        assert_eq!(value["Status"], "New");
        assert!(value.get("TerminationDate").is_none());
        assert!(value.get("Manifest").is_none());
    }

    #[test]
    fn confirm_only_a_suspended_job() {
        use JobStatus::*;
        assert_eq!(requested_transition("j", Suspended, Ready).unwrap(), Ready);
        for status in [New, Preparing, Ready, Active, Complete, Cancelled] {
            let err = requested_transition("j", status, Ready).unwrap_err();
            assert!(
                matches!(err, Error::InvalidTransition { .. }),
                "{status}: {err}"
            );
        }
    }

    #[test]
    fn cancel_goes_direct_before_work_and_through_cancelling_after() {
        use JobStatus::*;
        for status in [New, Suspended] {
            assert_eq!(
                requested_transition("j", status, Cancelled).unwrap(),
                Cancelled
            );
        }
        for status in [Preparing, Ready, Active, Pausing, Paused] {
            assert_eq!(
                requested_transition("j", status, Cancelled).unwrap(),
                Cancelling
            );
        }
        for status in [Cancelling, Cancelled, Complete, Failing, Failed] {
            let err = requested_transition("j", status, Cancelled).unwrap_err();
            assert!(
                matches!(err, Error::InvalidTransition { .. }),
                "{status}: {err}"
            );
        }
        // Every transition chosen is one the status machine allows.
        for from in crate::job::ALL_STATUSES {
            for requested in [Ready, Cancelled] {
                if let Ok(to) = requested_transition("j", *from, requested) {
                    assert!(crate::job::can_transition(*from, to), "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn only_ready_and_cancelled_may_be_requested() {
        let err = requested_transition("j", JobStatus::Active, JobStatus::Complete).unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)));
        assert!(err.to_string().contains("Ready or Cancelled"), "{err}");
    }

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_s3_url("s3://b/inv/x/").unwrap(),
            ("b".into(), "inv/x/".into())
        );
        assert_eq!(parse_s3_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert_eq!(parse_s3_url("s3://b/").unwrap(), ("b".into(), "".into()));
        assert!(parse_s3_url("b/inv").is_err());
        assert!(parse_s3_url("s3:///inv").is_err());
    }

    #[test]
    fn templates_refuse_a_manifest_a_token_confirmation_and_bad_names() {
        let ok = job_template("nightly", "s3://inv/prefix/", template_request()).unwrap();
        assert_eq!(ok.manifest_bucket, "inv");
        assert_eq!(ok.manifest_prefix, "prefix/");

        let with_manifest = CreateJobRequest::parse(CREATE_JOB).unwrap();
        let err = job_template("t", "s3://inv/p", with_manifest).unwrap_err();
        assert!(
            err.to_string().contains("must not have a Manifest"),
            "{err}"
        );

        let mut with_token = template_request();
        with_token.client_request_token = Some("t".into());
        assert!(job_template("t", "s3://inv/p", with_token).is_err());

        let mut confirm = template_request();
        confirm.confirmation_required = Some(true);
        assert!(job_template("t", "s3://inv/p", confirm).is_err());

        assert!(job_template("bad name", "s3://inv/p", template_request()).is_err());
        assert!(job_template("", "s3://inv/p", template_request()).is_err());
        assert!(job_template("t", "inv/p", template_request()).is_err());

        let mut bad_report = template_request();
        bad_report.report.bucket = None;
        let err = job_template("t", "s3://inv/p", bad_report).unwrap_err();
        assert!(err.to_string().contains("Report.Bucket"), "{err}");
    }

    #[test]
    fn matching_templates_need_bucket_prefix_and_manifest_json() {
        let templates = vec![
            template("a", "inv", "src/cfg/"),
            template("b", "inv", "src/"),
            template("c", "other", "src/cfg/"),
            template("d", "inv", ""),
        ];
        let names = |bucket, key| -> Vec<String> {
            matching_templates(&templates, bucket, key)
                .into_iter()
                .map(|t| t.name.clone())
                .collect()
        };
        assert_eq!(
            names("inv", "src/cfg/2026-01-01T01-00Z/manifest.json"),
            ["a", "b", "d"]
        );
        assert_eq!(names("inv", "elsewhere/manifest.json"), ["d"]);
        assert!(names("inv", "src/cfg/2026-01-01T01-00Z/manifest.checksum").is_empty());
        assert!(names("inv", "src/cfg/data/x.csv.gz").is_empty());
        assert_eq!(names("other", "src/cfg/manifest.json"), ["c"]);
        assert!(names("nobody", "src/cfg/manifest.json").is_empty());
    }

    #[test]
    fn inventory_requests_use_the_inventory_manifest_and_a_stable_token() {
        let t = template("nightly", "inv", "src/");
        let key = "src/cfg/2026-01-01T01-00Z/manifest.json";
        let request = inventory_job_request(&t, "inv", key, Some("abc"));
        request.validate().unwrap();
        let manifest = request.manifest.as_ref().unwrap();
        assert_eq!(manifest.spec.format, INVENTORY_CSV_FORMAT);
        assert_eq!(
            manifest.location.object_arn,
            format!("arn:aws:s3:::inv/{key}")
        );
        assert_eq!(manifest.location.etag.as_deref(), Some("abc"));
        assert_eq!(request.confirmation_required, Some(false));
        assert_eq!(request.priority, 10);
        let token = request.client_request_token.clone().unwrap();
        assert_eq!(token.len(), 64);
        // Same arrival, same token; any difference, another token.
        assert_eq!(
            inventory_job_request(&t, "inv", key, Some("abc")).client_request_token,
            Some(token.clone())
        );
        for other in [
            inventory_token("nightly", "inv", key, Some("abd")),
            inventory_token("nightly", "inv", key, None),
            inventory_token("weekly", "inv", key, Some("abc")),
            inventory_token("nightly", "inv2", key, Some("abc")),
            inventory_token("nightly", "inv", "src/other/manifest.json", Some("abc")),
        ] {
            assert_ne!(other, token);
        }
        assert_ne!(
            inventory_token("ab", "c", "k", None),
            inventory_token("a", "bc", "k", None)
        );
    }

    #[test]
    fn parses_every_control_action() {
        let create: Value = serde_json::from_str(CREATE_JOB).unwrap();
        let cases = [
            json!({"Action": "CreateJob", "Input": create}),
            json!({"Action": "DescribeJob", "Input": {"JobId": "j", "AccountId": "1"}}),
            json!({"Action": "ListJobs", "Input": {"JobStatuses": ["Active", "Complete"]}}),
            json!({"Action": "ListJobs"}),
            json!({"Action": "UpdateJobStatus", "Input": {"JobId": "j", "RequestedJobStatus": "Ready", "StatusUpdateReason": "ok"}}),
            json!({"Action": "UpdateJobPriority", "Input": {"JobId": "j", "Priority": 3}}),
            json!({"Action": "PutJobTemplate", "Input": {"Name": "n", "ManifestPrefix": "s3://b/p", "Template": serde_json::to_value(template_request()).unwrap()}}),
            json!({"Action": "ListJobTemplates", "Input": {}}),
            json!({"Action": "DeleteJobTemplate", "Input": {"Name": "n"}}),
        ];
        for case in &cases {
            ControlRequest::parse(case).unwrap_or_else(|e| panic!("{case}: {e}"));
        }
        assert_eq!(
            ControlRequest::parse(&cases[2]).unwrap(),
            ControlRequest::ListJobs(ListJobsInput {
                job_statuses: vec![JobStatus::Active, JobStatus::Complete],
                account_id: None,
                ..Default::default()
            })
        );
        assert_eq!(
            ControlRequest::parse(&cases[4]).unwrap(),
            ControlRequest::UpdateJobStatus(UpdateJobStatusInput {
                job_id: "j".into(),
                requested_job_status: JobStatus::Ready,
                status_update_reason: Some("ok".into()),
                account_id: None
            })
        );
    }

    #[test]
    fn refuses_unknown_actions_and_bad_inputs_clearly() {
        let err = ControlRequest::parse(&json!({"Action": "DeleteJob", "Input": {}})).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown control Action \"DeleteJob\""),
            "{err}"
        );
        assert!(err.to_string().contains("DescribeJob"), "{err}");
        let err = ControlRequest::parse(&json!({"Input": {}})).unwrap_err();
        assert!(err.to_string().contains("Action"), "{err}");
        let err = ControlRequest::parse(&json!({"Action": "DescribeJob", "Input": {"JobID": "j"}}))
            .unwrap_err();
        assert!(err.to_string().contains("DescribeJob Input"), "{err}");
        let err = ControlRequest::parse(&json!({"Action": "UpdateJobStatus",
            "Input": {"JobId": "j", "RequestedJobStatus": "Go"}}))
        .unwrap_err();
        assert!(err.to_string().contains("UpdateJobStatus Input"), "{err}");
    }

    #[test]
    fn responses_serialise_in_s3_control_shape() {
        let created = serde_json::to_value(CreateJobResponse { job_id: "j".into() }).unwrap();
        assert_eq!(created, json!({"JobId": "j"}));
        let status = serde_json::to_value(UpdateJobStatusResponse {
            job_id: "j".into(),
            status: JobStatus::Cancelling,
            status_update_reason: None,
        })
        .unwrap();
        assert_eq!(status, json!({"JobId": "j", "Status": "Cancelling"}));
        let priority = serde_json::to_value(UpdateJobPriorityResponse {
            job_id: "j".into(),
            priority: 5,
        })
        .unwrap();
        assert_eq!(priority, json!({"JobId": "j", "Priority": 5}));
        let t = template("n", "b", "p/");
        let listed = serde_json::to_value(ListJobTemplatesResponse {
            job_templates: vec![JobTemplateDescriptor::from(&t)],
        })
        .unwrap();
        assert_eq!(listed["JobTemplates"][0]["Name"], "n");
        assert_eq!(listed["JobTemplates"][0]["ManifestPrefix"], "s3://b/p/");
        assert!(listed["JobTemplates"][0]["Template"]
            .get("Manifest")
            .is_none());
        assert_eq!(
            serde_json::to_value(DeleteJobTemplateResponse {}).unwrap(),
            json!({})
        );
    }
}
