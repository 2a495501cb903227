//! The job actions: CreateJob (once per ClientRequestToken), DescribeJob, ListJobs,
//! UpdateJobStatus, UpdateJobPriority and UpdateJobRate.

use super::*;
use crate::error::{Error, Result};
use crate::job::{BatchOpsOptions, CreateJobRequest, Job, JobStatus};
use crate::store::{PutJobOutcome, Store};

use crate::Context;
use chrono::{DateTime, Utc};
use tracing::{debug, info};

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
pub(super) async fn create_job_as(
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
    let store = ctx.store();
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
pub(super) async fn start_job(ctx: &Context, store: &Store, job_id: &str) -> Result<()> {
    crate::queue::send_plan_request(ctx, job_id).await?;
    // The planner may have moved the job already; either way it is Preparing or beyond.
    store
        .transition(job_id, JobStatus::New, JobStatus::Preparing, None, None)
        .await?;
    Ok(())
}

/// DescribeJob: the stored job as a `JobDescriptor`, timers counted up to now.
/// Fails with `JobNotFound` when no such job is stored (or it has expired).
pub async fn describe_job(ctx: &Context, job_id: &str) -> Result<DescribeJobResponse> {
    let job = ctx.store().get_job(job_id).await?;
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
        batch_ops: batch_ops_view(job),
    }
}

/// The job's `BatchOps` settings as they are now (the rate may have changed since creation).
pub(super) fn batch_ops_view(job: &Job) -> Option<BatchOpsOptions> {
    let options = BatchOpsOptions {
        max_tasks_per_second: job.max_tasks_per_second,
        canary_tasks: job.request.batch_ops.as_ref().and_then(|b| b.canary_tasks),
    };
    (options != BatchOpsOptions::default()).then_some(options)
}

/// The job's `ProgressSummary` at `now`: task counts so far, and the seconds spent Active
/// (including the current stretch when the job is Active).
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

/// The ListJobs entry for a job at `now`: id, description, operation name, priority, status,
/// dates and progress.
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
    let store = ctx.store();
    for _ in 0..STATUS_UPDATE_ATTEMPTS {
        let job = store.get_job(job_id).await?;
        let current = job.status;
        let mut target = requested_transition(job_id, current, requested)?;
        if target == JobStatus::Cancelled && current == JobStatus::Suspended && job.canary_ran() {
            // The canary's tasks ran: they are counted and reported like any cancelled job's.
            target = JobStatus::Cancelling;
        }
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
        // A confirmed job is planned now. A job cancelled where no planner is at work (before
        // planning began, or while it waits after its canary) has plan parts nobody would close:
        // the planner is asked to, and settles it (Cancelling → Cancelled). An Active job being
        // planned stops by itself; one planned is finished by its executors and the reporter.
        let waits_after_canary = job.progress.batches_planned.is_none()
            && (job.progress.canary_batches.is_some() || current == JobStatus::Suspended);
        if target == JobStatus::Ready
            || (target == JobStatus::Cancelling
                && (matches!(current, JobStatus::Preparing | JobStatus::Ready)
                    || waits_after_canary))
        {
            crate::queue::send_plan_request(ctx, job_id).await?;
        }
        return Ok(UpdateJobStatusResponse {
            job_id: job_id.to_string(),
            status: target,
            status_update_reason: reason,
        });
    }
    Err(Error::Conflict(format!(
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
pub(super) async fn refuse_if_ended(store: &Store, job_id: &str, what: &str) -> Result<()> {
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
