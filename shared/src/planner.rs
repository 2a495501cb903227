//! The planner: turns a job's manifest into task-batch messages on the task queue.
//!
//! It is triggered by a plan request (a job made through the control plane, or a confirmed job) or
//! by an S3 event for a newly delivered inventory `manifest.json` (an automatic job per job template).
//! A job that needs confirmation is prepared first: its manifest is read through and counted, and
//! the job waits in Suspended; once confirmed, the planner reads it again and queues the batches.

use crate::control;
use crate::error::{Error, Result};
use crate::job::{FailureReason, Job, JobStatus};
use crate::manifest::{self, Task};
use crate::plan::{BatchPacker, TaskBatch};
use crate::reporter::finalize_if_done;
use crate::store::Store;
use crate::Context;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use tracing::{info, warn};

/// Messages sent to the task queue at once while planning.
const SEND_CONCURRENCY: usize = 8;
/// How often (in batches) planning looks at the job's status, to stop early when it is cancelled.
const STATUS_CHECK_EVERY: u64 = 50;

pub const MANIFEST_FAILURE_CODE: &str = "ManifestReadFailed";

/// The planner Lambda's entry point: an SQS event of the plan queue, or a direct S3 event.
pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    for work in parse_event(&event)? {
        match work {
            PlannerWork::Plan(job_id) => plan_job(ctx, &job_id).await?,
            PlannerWork::ManifestArrived { bucket, key, etag } => {
                start_template_jobs(ctx, &bucket, &key, etag.as_deref()).await?
            }
        }
    }
    Ok(Value::Null)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannerWork {
    Plan(String),
    ManifestArrived {
        bucket: String,
        key: String,
        etag: Option<String>,
    },
}

/// Reads the planner's event: `{"PlanJobId"}`, an S3 event, or an SQS event whose bodies are either.
pub fn parse_event(event: &Value) -> Result<Vec<PlannerWork>> {
    if let Some(job_id) = event.get("PlanJobId").and_then(Value::as_str) {
        return Ok(vec![PlannerWork::Plan(job_id.to_string())]);
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        // S3 sends `{"Event":"s3:TestEvent",...}` when a notification is configured.
        if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            return Ok(Vec::new());
        }
        return Err(Error::Message(
            "planner event is neither a plan request, an S3 event nor an SQS event".into(),
        ));
    };
    let mut work = Vec::new();
    for record in records {
        let source = record
            .get("eventSource")
            .or_else(|| record.get("EventSource"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        match source {
            "aws:sqs" => {
                let body = record.get("body").and_then(Value::as_str).ok_or_else(|| {
                    Error::Message("SQS record without a body in the planner event".into())
                })?;
                let inner: Value = serde_json::from_str(body)
                    .map_err(|e| Error::Message(format!("plan queue message is not JSON: {e}")))?;
                work.extend(parse_event(&inner)?);
            }
            "aws:s3" => work.extend(parse_s3_record(record)?),
            other => {
                return Err(Error::Message(format!(
                    "planner event record has unexpected eventSource {other:?}"
                )))
            }
        }
    }
    Ok(work)
}

fn parse_s3_record(record: &Value) -> Result<Option<PlannerWork>> {
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !name.starts_with("ObjectCreated") {
        return Ok(None);
    }
    let s3 = record
        .get("s3")
        .ok_or_else(|| Error::Message("S3 record without s3".into()))?;
    let bucket = s3
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Message("S3 record without bucket name".into()))?;
    let raw_key = s3
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Message("S3 record without object key".into()))?;
    // S3 event keys are URL-encoded (spaces as '+').
    let key = manifest::decode_key(raw_key)
        .map_err(|e| Error::Message(format!("S3 event key {raw_key:?}: {e}")))?;
    let etag = s3
        .pointer("/object/eTag")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Some(PlannerWork::ManifestArrived {
        bucket: bucket.to_string(),
        key,
        etag,
    }))
}

/// Starts one job for every template whose prefix covers a newly delivered inventory manifest.
async fn start_template_jobs(
    ctx: &Context,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<()> {
    if !key.ends_with("manifest.json") {
        return Ok(());
    }
    let templates = Store::from_context(ctx).list_templates().await?;
    let matching = control::matching_templates(&templates, bucket, key);
    if matching.is_empty() {
        info!(
            bucket,
            key, "inventory manifest arrived; no job template covers it"
        );
    }
    for template in matching {
        let created = control::create_job_from_inventory(ctx, template, bucket, key, etag).await?;
        info!(template = %template.name, job_id = %created.job_id, "started job for inventory arrival");
    }
    Ok(())
}

/// Prepares or plans one job, depending on its status.
pub async fn plan_job(ctx: &Context, job_id: &str) -> Result<()> {
    let store = Store::from_context(ctx);
    let mut job = store.get_job(job_id).await?;
    if job.status == JobStatus::New {
        store
            .transition(job_id, JobStatus::New, JobStatus::Preparing, None, None)
            .await?;
        job.status = JobStatus::Preparing;
    }
    match job.status {
        JobStatus::Preparing if job.confirmation_required() => {
            prepare_for_confirmation(ctx, &job).await
        }
        JobStatus::Preparing | JobStatus::Ready => {
            if store
                .transition(job_id, job.status, JobStatus::Active, None, None)
                .await?
            {
                queue_batches(ctx, &job).await
            } else {
                Ok(())
            }
        }
        // A plan request delivered again: batch ids are deterministic, so replanning counts nothing twice.
        JobStatus::Active if job.progress.batches_planned.is_none() => {
            queue_batches(ctx, &job).await
        }
        JobStatus::Cancelling | JobStatus::Failing if job.progress.batches_planned.is_none() => {
            store
                .finish_planning(job_id, job.progress.total_tasks.unwrap_or(0), 0)
                .await?;
            finalize_if_done(ctx, job_id).await
        }
        status => {
            info!(job_id, %status, "plan request ignored in this status");
            Ok(())
        }
    }
}

/// Reads the manifest through to count its tasks, then waits for confirmation.
async fn prepare_for_confirmation(ctx: &Context, job: &Job) -> Result<()> {
    let store = Store::from_context(ctx);
    let manifest = job.manifest()?.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Task>>(4);
    let reader = manifest::read_tasks(&ctx.s3, &manifest, tx);
    let drain = async { while rx.recv().await.is_some() {} };
    let (read, ()) = tokio::join!(reader, drain);
    match read {
        Ok(total) => {
            store.set_total_tasks(&job.job_id, total).await?;
            store
                .transition(
                    &job.job_id,
                    JobStatus::Preparing,
                    JobStatus::Suspended,
                    None,
                    None,
                )
                .await?;
            info!(job_id = %job.job_id, total, "job prepared, awaiting confirmation");
            Ok(())
        }
        Err(err) => fail_preparing(ctx, job, JobStatus::Preparing, err).await,
    }
}

async fn fail_preparing(ctx: &Context, job: &Job, from: JobStatus, err: Error) -> Result<()> {
    let Error::Manifest(reason) = err else {
        return Err(err);
    };
    warn!(job_id = %job.job_id, %reason, "manifest cannot be read; job fails");
    let failure = FailureReason {
        failure_code: MANIFEST_FAILURE_CODE.into(),
        failure_reason: reason,
    };
    Store::from_context(ctx)
        .transition(&job.job_id, from, JobStatus::Failed, None, Some(failure))
        .await?;
    Ok(())
}

/// Streams the manifest, packs tasks into batches and sends them; then records the totals.
async fn queue_batches(ctx: &Context, job: &Job) -> Result<()> {
    let store = Store::from_context(ctx);
    let manifest = job.manifest()?.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Task>>(8);
    let reader = manifest::read_tasks(&ctx.s3, &manifest, tx);
    let sender = send_batches(ctx, &job.job_id, rx);
    let (read, sent) = tokio::join!(reader, sender);
    let sent = sent?;
    match read {
        Ok(_) => {
            store
                .finish_planning(&job.job_id, sent.tasks, sent.batches)
                .await?;
            info!(job_id = %job.job_id, tasks = sent.tasks, batches = sent.batches, "planning complete");
        }
        // The job stopped while planning; the reader saw its channel close.
        Err(Error::Manifest(_)) if sent.stopped => {
            store
                .finish_planning(&job.job_id, sent.tasks, sent.batches)
                .await?;
        }
        Err(Error::Manifest(reason)) => {
            warn!(job_id = %job.job_id, %reason, "manifest failed while planning; job fails");
            let failure = FailureReason {
                failure_code: MANIFEST_FAILURE_CODE.into(),
                failure_reason: reason,
            };
            // Batches already queued are accounted as not run; the reporter then sets Failed.
            store
                .transition(
                    &job.job_id,
                    JobStatus::Active,
                    JobStatus::Failing,
                    None,
                    Some(failure),
                )
                .await?;
            store
                .finish_planning(&job.job_id, sent.tasks, sent.batches)
                .await?;
        }
        Err(other) => return Err(other),
    }
    finalize_if_done(ctx, &job.job_id).await
}

#[derive(Debug, Default)]
struct Sent {
    tasks: u64,
    batches: u64,
    /// Planning stopped early because the job stopped (cancelled or failing).
    stopped: bool,
}

async fn send_batches(
    ctx: &Context,
    job_id: &str,
    mut rx: tokio::sync::mpsc::Receiver<Vec<Task>>,
) -> Result<Sent> {
    let store = Store::from_context(ctx);
    let mut packer = BatchPacker::new(job_id, "b", ctx.settings.max_message_bytes);
    let mut in_flight = FuturesUnordered::new();
    let mut sent = Sent::default();
    while let Some(chunk) = rx.recv().await {
        for task in chunk {
            if let Some(batch) = packer.push(task) {
                while in_flight.len() >= SEND_CONCURRENCY {
                    if let Some(result) = in_flight.next().await {
                        result?;
                    }
                }
                sent.tasks += batch.tasks.len() as u64;
                in_flight.push(send_batch(ctx, batch));
                sent.batches += 1;
                if sent.batches % STATUS_CHECK_EVERY == 0
                    && store.get_job(job_id).await?.status.stops_execution()
                {
                    sent.stopped = true;
                }
            }
            if sent.stopped {
                break;
            }
        }
        if sent.stopped {
            // Tasks not yet sent are not part of the job: only queued batches are counted.
            break;
        }
    }
    if !sent.stopped {
        if let Some(batch) = packer.finish() {
            sent.tasks += batch.tasks.len() as u64;
            in_flight.push(send_batch(ctx, batch));
            sent.batches += 1;
        }
    }
    while let Some(result) = in_flight.next().await {
        result?;
    }
    Ok(sent)
}

async fn send_batch(ctx: &Context, batch: TaskBatch) -> Result<()> {
    ctx.sqs
        .send_message()
        .queue_url(&ctx.settings.task_queue_url)
        .message_body(batch.to_body())
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "SendMessage", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_plan_requests_direct_and_in_sqs() {
        let direct = json!({"PlanJobId": "j1"});
        assert_eq!(
            parse_event(&direct).unwrap(),
            vec![PlannerWork::Plan("j1".into())]
        );
        let sqs =
            json!({"Records": [{"eventSource": "aws:sqs", "body": "{\"PlanJobId\":\"j2\"}"}]});
        assert_eq!(
            parse_event(&sqs).unwrap(),
            vec![PlannerWork::Plan("j2".into())]
        );
    }

    #[test]
    fn reads_s3_events_direct_and_wrapped_and_decodes_keys() {
        let s3 = json!({"Records": [{
            "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "inv"}, "object": {"key": "inv/src/cfg/2026-11-25T01-00Z/my+manifest%2B.json", "eTag": "abc"}}
        }]});
        let expected = PlannerWork::ManifestArrived {
            bucket: "inv".into(),
            key: "inv/src/cfg/2026-11-25T01-00Z/my manifest+.json".into(),
            etag: Some("abc".into()),
        };
        assert_eq!(parse_event(&s3).unwrap(), vec![expected.clone()]);
        let wrapped = json!({"Records": [{"eventSource": "aws:sqs", "body": s3.to_string()}]});
        assert_eq!(parse_event(&wrapped).unwrap(), vec![expected]);
    }

    #[test]
    fn ignores_test_events_and_removals_and_rejects_garbage() {
        let test_event = json!({"Records": [{"eventSource": "aws:sqs",
            "body": "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}"}]});
        assert!(parse_event(&test_event).unwrap().is_empty());
        let removed = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
        assert!(parse_event(&removed).unwrap().is_empty());
        assert!(parse_event(&json!({"hello": 1})).is_err());
        let bad_body = json!({"Records": [{"eventSource": "aws:sqs", "body": "not json"}]});
        assert!(parse_event(&bad_body).is_err());
    }
}
