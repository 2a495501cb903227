//! The queues: plan requests, task batches and finalize requests, as SQS messages.

use crate::error::{Error, Result};
use crate::Context;
use serde::{Deserialize, Serialize};

/// A message on the plan queue besides S3 event notifications: plan (or prepare) this job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    #[serde(rename = "PlanJobId")]
    pub job_id: String,
    /// Plan (or continue planning) only this part (`plan::PlanPart::id`): a continuation after
    /// a checkpoint, or one data file of a large inventory. The part's checkpoint in the store
    /// says where to resume, so a message delivered twice plans nothing twice.
    #[serde(rename = "Part", default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    /// On a continuation: the part's `next_task` when it was sent. A copy delivered after the part
    /// moved on (and was continued from there) is stale and ignored.
    #[serde(rename = "From", default, skip_serializing_if = "Option::is_none")]
    pub from_task: Option<u64>,
}

/// A message on the report queue, and the reporter's direct-invocation event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeRequest {
    #[serde(rename = "FinalizeJobId")]
    pub job_id: String,
}

async fn send(ctx: &Context, queue_url: &str, body: String) -> Result<()> {
    ctx.sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "SendMessage", e))?;
    Ok(())
}

pub async fn send_plan_request(ctx: &Context, job_id: &str) -> Result<()> {
    send_plan_request_for(ctx, job_id, None).await
}

/// A plan request for one part of the job (`plan::PlanPart::id`), or for the whole job.
pub async fn send_plan_request_for(ctx: &Context, job_id: &str, part: Option<&str>) -> Result<()> {
    send_plan_message(
        ctx,
        &PlanRequest {
            job_id: job_id.to_string(),
            part: part.map(str::to_string),
            from_task: None,
        },
    )
    .await
}

/// Any plan request, e.g. a continuation with its `From`.
pub async fn send_plan_message(ctx: &Context, request: &PlanRequest) -> Result<()> {
    let body = serde_json::to_string(request).map_err(|e| Error::Message(e.to_string()))?;
    send(ctx, &ctx.settings.plan_queue_url, body).await
}

/// A task batch (or the rest of one) on the task queue.
pub async fn send_task_batch(ctx: &Context, batch: &crate::plan::TaskBatch) -> Result<()> {
    send(ctx, &ctx.settings.task_queue_url, batch.to_body()).await
}

/// A task batch that becomes visible only after `delay` (SQS allows up to 15 minutes).
pub async fn send_task_batch_later(
    ctx: &Context,
    batch: &crate::plan::TaskBatch,
    delay: std::time::Duration,
) -> Result<()> {
    send_task_body_later(ctx, &batch.to_body(), delay).await
}

/// A task batch message's body, sent again to become visible only after `delay`.
pub async fn send_task_body_later(
    ctx: &Context,
    body: &str,
    delay: std::time::Duration,
) -> Result<()> {
    ctx.sqs
        .send_message()
        .queue_url(&ctx.settings.task_queue_url)
        .message_body(body)
        .delay_seconds(delay.as_secs().clamp(1, 900) as i32)
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "SendMessage", e))?;
    Ok(())
}

pub async fn send_finalize_request(ctx: &Context, job_id: &str) -> Result<()> {
    let body = serde_json::to_string(&FinalizeRequest {
        job_id: job_id.to_string(),
    })
    .map_err(|e| Error::Message(e.to_string()))?;
    send(ctx, &ctx.settings.report_queue_url, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_request_without_part_keeps_its_original_shape() {
        let plain = PlanRequest {
            job_id: "j".into(),
            part: None,
            from_task: None,
        };
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"PlanJobId":"j"}"#
        );
        let parsed: PlanRequest = serde_json::from_str(r#"{"PlanJobId":"j"}"#).unwrap();
        assert_eq!(parsed, plain);
    }

    #[test]
    fn plan_request_for_a_part_round_trips() {
        let request = PlanRequest {
            job_id: "j".into(),
            part: Some("f000003".into()),
            from_task: Some(1200),
        };
        let body = serde_json::to_string(&request).unwrap();
        assert_eq!(body, r#"{"PlanJobId":"j","Part":"f000003","From":1200}"#);
        assert_eq!(serde_json::from_str::<PlanRequest>(&body).unwrap(), request);
    }
}
