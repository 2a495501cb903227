//! Job items to and from DynamoDB attributes, and the attribute readers every item mapping uses.

use super::*;
use crate::error::{Error, Result};
use crate::job::{CreateJobRequest, FailureReason, Job, JobStatus, JobTracking, Progress, S3Tag};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

pub(super) fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Timestamps are stored as RFC 3339 in UTC with full precision, so they read back unchanged.
pub(super) fn time_to_string(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(super) fn malformed(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Malformed {
        what: "a stored record".into(),
        reason: format!("{what}: {detail}"),
    }
}

pub(super) fn get_opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.as_str())),
        Some(other) => Err(malformed(name, format!("expected a string, got {other:?}"))),
    }
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    get_opt_s(item, name)?.ok_or_else(|| malformed(name, "missing"))
}

pub(super) fn get_opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| malformed(name, format!("{v:?} is not a valid number here"))),
        Some(other) => Err(malformed(name, format!("expected a number, got {other:?}"))),
    }
}

/// Counters that commits create with ADD read as 0 until the first commit.
pub(super) fn get_n_or_zero<T: std::str::FromStr + Default>(item: &Item, name: &str) -> Result<T> {
    Ok(get_opt_n(item, name)?.unwrap_or_default())
}

pub(super) fn get_opt_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>> {
    get_opt_s(item, name)?
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| malformed(name, e))
        })
        .transpose()
}

pub(super) fn get_bool(item: &Item, name: &str) -> Result<bool> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(false),
        Some(AttributeValue::Bool(v)) => Ok(*v),
        Some(other) => Err(malformed(
            name,
            format!("expected a boolean, got {other:?}"),
        )),
    }
}

pub(super) fn failure_to_value(failure: &FailureReason) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        (FAILURE_CODE.to_string(), s(&failure.failure_code)),
        (FAILURE_REASON.to_string(), s(&failure.failure_reason)),
    ]))
}

pub(super) fn failure_from_value(value: &AttributeValue) -> Result<FailureReason> {
    let AttributeValue::M(map) = value else {
        return Err(malformed(A_FAILURES, "an entry is not a map"));
    };
    Ok(FailureReason {
        failure_code: get_s(map, FAILURE_CODE)?.to_string(),
        failure_reason: get_s(map, FAILURE_REASON)?.to_string(),
    })
}

/// The job record as a DynamoDB item.
pub fn job_to_item(job: &Job) -> Result<Item> {
    let request = serde_json::to_string(&job.request)
        .map_err(|e| Error::encode(format!("job {}", job.job_id), e))?;
    let mut item = Item::from([
        (PK.to_string(), s(&job_pk(&job.job_id))),
        (SK.to_string(), s(JOB_SK)),
        (A_JOB_ID.to_string(), s(&job.job_id)),
        (A_LIST_PK.to_string(), s(LIST_PK_JOBS)),
        (A_LIST_SK.to_string(), s(&list_sort_key(job))),
        (A_REQUEST.to_string(), s(&request)),
        (A_STATUS.to_string(), s(job.status.as_str())),
        (A_PRIORITY.to_string(), n(job.priority)),
        (
            A_CREATION_TIME.to_string(),
            s(&time_to_string(job.creation_time)),
        ),
        (A_ELAPSED_ACTIVE.to_string(), n(job.elapsed_active_seconds)),
        (
            A_FAILURES.to_string(),
            AttributeValue::L(job.failure_reasons.iter().map(failure_to_value).collect()),
        ),
        (A_SUCCEEDED.to_string(), n(job.progress.succeeded)),
        (A_FAILED.to_string(), n(job.progress.failed)),
        (A_NOT_RUN.to_string(), n(job.progress.not_run)),
        (A_COMMITTED.to_string(), n(job.progress.batches_committed)),
        (
            A_FINALIZE.to_string(),
            AttributeValue::Bool(job.finalize_sent),
        ),
    ]);
    let optional_times = [
        (A_TERMINATION_DATE, job.termination_date),
        (A_SUSPENDED_DATE, job.suspended_date),
        (A_ACTIVE_SINCE, job.active_since),
        (A_FINALIZE_AT, job.tracking.finalize_at),
        (A_PROGRESS_AT, job.tracking.last_progress_at),
    ];
    for (name, time) in optional_times {
        if let Some(time) = time {
            item.insert(name.to_string(), s(&time_to_string(time)));
        }
    }
    if let Some(reason) = &job.status_update_reason {
        item.insert(A_REASON.to_string(), s(reason));
    }
    if let Some(total) = job.progress.total_tasks {
        item.insert(A_TOTAL.to_string(), n(total));
    }
    if let Some(planned) = job.progress.batches_planned {
        item.insert(A_PLANNED.to_string(), n(planned));
    }
    if let Some(canary) = job.progress.canary_batches {
        item.insert(A_CANARY_BATCHES.to_string(), n(canary));
    }
    if job.tracking.canary_done {
        item.insert(A_CANARY_DONE.to_string(), AttributeValue::Bool(true));
    }
    item.insert(A_TAGS.to_string(), s(&tags_json(&job.tags)?));
    if let Some(rate) = job.max_tasks_per_second {
        item.insert(A_RATE.to_string(), n(rate));
    }
    if let Some(source) = &job.tracking.source {
        let json =
            serde_json::to_string(source).map_err(|e| Error::encode("the job's source", e))?;
        item.insert(A_SOURCE.to_string(), s(&json));
    }
    Ok(item)
}

/// A job record read back from its DynamoDB item.
pub fn job_from_item(item: &Item) -> Result<Job> {
    let pk = get_s(item, PK)?;
    let job_id = pk
        .strip_prefix("JOB#")
        .ok_or_else(|| malformed(PK, format!("{pk:?} is not a job key")))?
        .to_string();
    let request: CreateJobRequest =
        serde_json::from_str(get_s(item, A_REQUEST)?).map_err(|e| malformed(A_REQUEST, e))?;
    let failure_reasons = match item.get(A_FAILURES) {
        None | Some(AttributeValue::Null(_)) => Vec::new(),
        Some(AttributeValue::L(list)) => {
            list.iter().map(failure_from_value).collect::<Result<_>>()?
        }
        Some(other) => {
            return Err(malformed(
                A_FAILURES,
                format!("expected a list, got {other:?}"),
            ))
        }
    };
    Ok(Job {
        status: JobStatus::parse(get_s(item, A_STATUS)?).map_err(|e| malformed(A_STATUS, e))?,
        priority: get_opt_n(item, A_PRIORITY)?.unwrap_or(request.priority),
        creation_time: get_opt_time(item, A_CREATION_TIME)?
            .ok_or_else(|| malformed(A_CREATION_TIME, "missing"))?,
        termination_date: get_opt_time(item, A_TERMINATION_DATE)?,
        suspended_date: get_opt_time(item, A_SUSPENDED_DATE)?,
        active_since: get_opt_time(item, A_ACTIVE_SINCE)?,
        elapsed_active_seconds: get_n_or_zero(item, A_ELAPSED_ACTIVE)?,
        status_update_reason: get_opt_s(item, A_REASON)?.map(str::to_string),
        failure_reasons,
        progress: Progress {
            total_tasks: get_opt_n(item, A_TOTAL)?,
            succeeded: get_n_or_zero(item, A_SUCCEEDED)?,
            failed: get_n_or_zero(item, A_FAILED)?,
            not_run: get_n_or_zero(item, A_NOT_RUN)?,
            batches_planned: get_opt_n(item, A_PLANNED)?,
            batches_committed: get_n_or_zero(item, A_COMMITTED)?,
            canary_batches: get_opt_n(item, A_CANARY_BATCHES)?,
        },
        finalize_sent: get_bool(item, A_FINALIZE)?,
        tags: match get_opt_s(item, A_TAGS)? {
            Some(json) => serde_json::from_str(json).map_err(|e| malformed(A_TAGS, e))?,
            None => request.tags.clone().unwrap_or_default(),
        },
        max_tasks_per_second: get_opt_n(item, A_RATE)?,
        tracking: JobTracking {
            finalize_at: get_opt_time(item, A_FINALIZE_AT)?,
            last_progress_at: get_opt_time(item, A_PROGRESS_AT)?,
            source: get_opt_s(item, A_SOURCE)?
                .map(|json| serde_json::from_str(json).map_err(|e| malformed(A_SOURCE, e)))
                .transpose()?,
            canary_done: get_bool(item, A_CANARY_DONE)?,
        },
        job_id,
        request,
    })
}

pub(super) fn tags_json(tags: &[S3Tag]) -> Result<String> {
    serde_json::to_string(tags).map_err(|e| Error::encode("job tags", e))
}

pub(super) fn token_item(token: &str, job_id: &str) -> Item {
    Item::from([
        (PK.to_string(), s(&format!("TOKEN#{token}"))),
        (SK.to_string(), s(TOKEN_SK)),
        (A_JOB_ID.to_string(), s(job_id)),
    ])
}
