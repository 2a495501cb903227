//! The queues: plan requests, task batches and finalize requests, as SQS messages.

use crate::error::{Error, Result};
use crate::Context;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// A message on the plan queue besides S3 event notifications: plan (or prepare) this job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// `PlanJobId`: the job to plan.
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
    /// `FinalizeJobId`: the job whose completion report to write and final status to set.
    #[serde(rename = "FinalizeJobId")]
    pub job_id: String,
}

/// Handles the messages of an SQS event one after the other and answers with a partial batch
/// response: the ids of the messages whose handling failed (logged with `what`), so that only
/// those are delivered again (the event source mapping sets `ReportBatchItemFailures`). The
/// executor and the reporter answer their queues with it.
pub async fn partial_batch<F, Fut>(event: SqsEvent, what: &str, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(String, String) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let message_id = record.message_id.unwrap_or_default();
        let body = record.body.unwrap_or_default();
        if let Err(err) = handle(message_id.clone(), body).await {
            tracing::error!(%message_id, error = %err, kind = err.kind(), "{what}; it will be delivered again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
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

/// Sends a plan request for the whole job to the plan queue; fails if SQS refuses it.
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

/// Sends a finalize request for the job to the report queue, which the reporter reads;
/// fails if SQS refuses it.
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

    #[tokio::test]
    async fn a_partial_batch_response_names_exactly_the_messages_that_failed() {
        let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [
            {"messageId": "m-1", "body": "ok", "eventSource": "aws:sqs"},
            {"messageId": "m-2", "body": "fail", "eventSource": "aws:sqs"},
            {"messageId": "m-3", "body": "ok", "eventSource": "aws:sqs"},
            {"messageId": "m-4", "body": "fail", "eventSource": "aws:sqs"}
        ]}))
        .unwrap();
        let mut seen = Vec::new();
        let response = partial_batch(event, "test", |id, body| {
            seen.push(id);
            async move {
                match body.as_str() {
                    "ok" => Ok(()),
                    _ => Err(Error::NotReady("not yet".into())),
                }
            }
        })
        .await;
        assert_eq!(
            seen,
            ["m-1", "m-2", "m-3", "m-4"],
            "every message, in order"
        );
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m-2", "m-4"]);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-4"}]})
        );
    }

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
